//! Lifecycle verbs over several jails (`jnet start|stop|restart|plan JAIL...`
//! and `--all`), in jail.conf(5) `depend` order as jail(8) orders them.
//!
//! What it is: a driver over the per-jail lifecycle of
//! [`crate::engine::lifecycle::Lifecycle`]. It builds the `depend` graph from
//! jail.conf ([`graph`]), computes the whole walk with
//! [`crate::core::depend::Graph::order`] before anything runs (a loop or a
//! name no jail defines refuses the command then), and runs one jail after
//! the other with [`crate::core::depend::run`]: starting a jail first
//! starts every jail it depends on, each completely (up to its
//! exec.poststart, as jail(8)'s `startcommands` finishes a jail before
//! `dep_done` releases the ones waiting on it: usr.sbin/jail/jail.c and
//! state.c, freebsd-src 20a9e238); stopping a jail first stops every jail
//! that depends on it. When a jail fails, the jails waiting on it are
//! skipped and independent ones still run; [`Summary`] says what happened
//! to each.
//!
//! What it is not: it prints nothing (the CLI does) and decides no exit
//! code (the CLI maps [`Summary::first_error`]).
//!
//! Locks: each jail's own verb takes and drops that jail's lock; the walk
//! never holds one jail's lock while it works on another, and a busy jail
//! gives up after the lock timeout (exit 75) instead of waiting forever.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::core::config::Config;
use crate::core::depend::{self, DependError, Direction, Graph};
use crate::core::names::JailName;
use crate::core::plan::{Desired, Plan, Verb as PlanVerb};
use crate::engine::desired::{self, Context};
use crate::engine::jails_conf::ConfJail;
use crate::engine::lifecycle::{Lifecycle, LifecycleError, Outcome};
use crate::engine::sources::Profiles;
use crate::error::{Error, ErrorKind, Result};
use crate::os::Host;
use crate::store::{Backend, Inventory};

/// The lifecycle verb a walk runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
        })
    }
}

/// Which jails a command names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every jail that has an address in the inventory.
    All,
    /// These, in the order given.
    Named(Vec<JailName>),
}

impl Targets {
    /// The target names: `All` is every inventory jail, by name.
    pub fn names(&self, inv: &Inventory) -> Vec<String> {
        match self {
            Targets::All => inv.jails.keys().map(|j| j.to_string()).collect(),
            Targets::Named(v) => v.iter().map(|j| j.to_string()).collect(),
        }
    }
}

/// The `depend` graph over every jail jnet knows: those of the inventory,
/// of jnet.toml and of jail.conf. Edges come from jail.conf's `depend`.
/// A `depend` value naming none of them is an error, as in jail(8)
/// (state.c `dep_setup`: "depends on undefined jail").
pub fn graph(conf_jails: &[ConfJail], config: &Config, inv: &Inventory) -> Result<Graph<String>> {
    let mut nodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in inv.jails.keys().chain(config.jails.keys()) {
        nodes.entry(n.to_string()).or_default();
    }
    for c in conf_jails {
        nodes
            .entry(c.name.clone())
            .or_default()
            .extend(c.depend.iter().cloned());
    }
    Graph::new(nodes).map_err(|e| refusal(conf_jails, e))
}

/// A graph error as the refusal the user sees, naming where the edge is.
fn refusal(conf_jails: &[ConfJail], e: DependError<String>) -> Error {
    let at = |j: &str| {
        conf_jails
            .iter()
            .find(|c| c.name == j)
            .map(|c| format!("{}: ", c.location))
            .unwrap_or_default()
    };
    match &e {
        DependError::Undefined { jail, .. } => Error::data(format!("{}{e} (jail.conf depend)", at(jail))),
        DependError::Cycle(_) => Error::data(format!("jail.conf depend: {e}; nothing was done")),
        DependError::Unknown(j) => Error::data(format!(
            "jail {j} is not in the inventory (give it an address first: jnet assign), nor in jnet.toml or jail.conf"
        )),
    }
}

/// What happened to one jail of a walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JailResult {
    Started,
    Stopped,
    Restarted,
    AlreadyRunning,
    AlreadyStopped,
    Failed,
    Skipped,
}

impl JailResult {
    /// Every outcome, in the order the summary line names them.
    pub const ALL: [JailResult; 7] = [
        JailResult::Started,
        JailResult::Stopped,
        JailResult::Restarted,
        JailResult::AlreadyRunning,
        JailResult::AlreadyStopped,
        JailResult::Failed,
        JailResult::Skipped,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            JailResult::Started => "started",
            JailResult::Stopped => "stopped",
            JailResult::Restarted => "restarted",
            JailResult::AlreadyRunning => "already running",
            JailResult::AlreadyStopped => "already stopped",
            JailResult::Failed => "failed",
            JailResult::Skipped => "skipped",
        }
    }

    pub fn ok(&self) -> bool {
        !matches!(self, JailResult::Failed | JailResult::Skipped)
    }
}

/// One jail's line of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct JailOutcome {
    pub jail: String,
    pub outcome: JailResult,
    /// Whether the jail was named by the command (or by `--all`), rather
    /// than pulled in by `depend`.
    pub target: bool,
    /// The steps applied, in order (empty when nothing changed).
    pub steps: Vec<String>,
    /// Skipped: the jail it waited for that failed or was skipped.
    pub because: Option<String>,
    /// Failed: why.
    pub error: Option<String>,
    #[serde(skip)]
    pub kind: Option<ErrorKind>,
}

/// The outcome of a whole walk, one entry per jail in the order they ran.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub verb: Verb,
    pub jails: Vec<JailOutcome>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.jails.iter().all(|j| j.outcome.ok())
    }

    /// The failure kind of the first failed jail, when any failed (a
    /// skipped jail alone cannot happen: something it waited for failed).
    pub fn first_error(&self) -> Option<ErrorKind> {
        self.jails
            .iter()
            .find(|j| j.outcome == JailResult::Failed)
            .map(|j| j.kind.unwrap_or(ErrorKind::Internal))
    }

    /// `start: 3 jail(s): 1 started, 1 failed (db), 1 skipped (www)`.
    pub fn line(&self) -> String {
        let parts: Vec<String> = JailResult::ALL
            .iter()
            .filter_map(|k| {
                let v: Vec<&str> = self
                    .jails
                    .iter()
                    .filter(|j| &j.outcome == k)
                    .map(|j| j.jail.as_str())
                    .collect();
                match (v.len(), k.ok()) {
                    (0, _) => None,
                    (n, true) => Some(format!("{n} {}", k.as_str())),
                    (n, false) => Some(format!("{n} {} ({})", k.as_str(), v.join(", "))),
                }
            })
            .collect();
        format!("{}: {} jail(s): {}", self.verb, self.jails.len(), parts.join(", "))
    }
}

/// One jail of a multi-jail plan.
pub struct Planned {
    pub jail: String,
    pub target: bool,
    /// The plan, or why it could not be made; `Err(because)` when skipped
    /// because the jail it waits for could not be planned.
    pub plan: std::result::Result<Result<(Plan, Desired)>, String>,
}

/// One step of a walk, as the per-jail operation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Start,
    Stop,
    /// Stop and start under one hold of the jail's lock (a restart that
    /// touches one jail only).
    Restart,
}

/// The walk's order, computed before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    pub verb: Verb,
    /// The jails the command named, in the order given.
    pub targets: Vec<String>,
    /// Start order (start, restart) or stop order (stop, restart).
    pub start: Vec<String>,
    pub stop: Vec<String>,
}

/// The order of `verb` over `targets` in `graph`; a loop or an unknown jail
/// is an error before anything runs.
pub fn walk(graph: &Graph<String>, conf_jails: &[ConfJail], verb: Verb, targets: Vec<String>) -> Result<Walk> {
    let order = |dir, t: &[String]| graph.order(t, dir).map_err(|e| refusal(conf_jails, e));
    let (start, stop) = match verb {
        Verb::Start => (order(Direction::Start, &targets)?, vec![]),
        Verb::Stop => (vec![], order(Direction::Stop, &targets)?),
        Verb::Restart => {
            // Restart stops the targets and what depends on them, then
            // starts all of those again, dependencies first.
            let stop = order(Direction::Stop, &targets)?;
            (order(Direction::Start, &stop)?, stop)
        }
    };
    Ok(Walk {
        verb,
        targets,
        start,
        stop,
    })
}

/// Runs `walk`, calling `op(jail, step)` for each jail in turn; a jail
/// waiting on one that failed or was skipped is skipped.
pub fn drive(graph: &Graph<String>, walk: &Walk, mut op: impl FnMut(&str, Step) -> Result<Outcome>) -> Summary {
    let targets: BTreeSet<&String> = walk.targets.iter().collect();
    let mut done: BTreeMap<String, JailOutcome> = BTreeMap::new();
    let mut ran: Vec<String> = Vec::new();
    let record = |jail: &str, r: Result<Outcome>, done: &mut BTreeMap<String, JailOutcome>| {
        let (outcome, steps, error, kind) = match r {
            Ok(Outcome::Done(steps)) => (None, steps, None, None),
            Ok(Outcome::AlreadyRunning) => (Some(JailResult::AlreadyRunning), vec![], None, None),
            Ok(Outcome::AlreadyStopped) => (Some(JailResult::AlreadyStopped), vec![], None, None),
            Err(e) => (Some(JailResult::Failed), vec![], Some(e.to_string()), Some(e.kind())),
        };
        let ok = outcome.as_ref().is_none_or(JailResult::ok);
        let e = done.entry(jail.to_string()).or_insert_with(|| JailOutcome {
            jail: jail.to_string(),
            outcome: JailResult::Failed,
            target: targets.contains(&jail.to_string()),
            steps: vec![],
            because: None,
            error: None,
            kind: None,
        });
        e.steps.extend(steps);
        e.error = error;
        e.kind = kind;
        e.outcome = outcome.unwrap_or(e.outcome.clone());
        ok
    };
    // why one jail at a time: a start finishes a jail (through
    // exec.poststart and its rules) before the next one begins, as
    // jail(8) does; parallel starts would also fight over the host scan.
    let single_restart = walk.verb == Verb::Restart && walk.stop.len() == 1 && walk.start.len() == 1;
    if single_restart {
        let j = &walk.stop[0];
        let r = op(j, Step::Restart);
        let fresh = matches!(r, Ok(Outcome::Done(_)));
        record(j, r, &mut done);
        if let Some(o) = done.get_mut(j) {
            if fresh {
                o.outcome = JailResult::Restarted;
            }
        }
        ran.push(j.clone());
    } else {
        if !walk.stop.is_empty() {
            let res = depend::run(graph, &walk.stop, Direction::Stop, |j| {
                let r = op(j, Step::Stop);
                let fresh = matches!(r, Ok(Outcome::Done(_)));
                let ok = record(j, r, &mut done);
                if let (Some(o), true) = (done.get_mut(j), fresh) {
                    o.outcome = JailResult::Stopped;
                }
                ok
            });
            note_skips(&res, &mut done, &targets);
            ran.extend(walk.stop.iter().cloned());
        }
        if !walk.start.is_empty() {
            let restarting = walk.verb == Verb::Restart;
            let res = depend::run(graph, &walk.start, Direction::Start, |j| {
                // A jail whose stop did not succeed is not started again;
                // its outcome stays the stop's.
                if restarting && done.get(j).is_some_and(|o| !o.outcome.ok()) {
                    return false;
                }
                let r = op(j, Step::Start);
                let fresh = matches!(r, Ok(Outcome::Done(_)));
                let was_stopped = done.get(j).is_some_and(|o| o.outcome == JailResult::Stopped);
                let ok = record(j, r, &mut done);
                if let (Some(o), true) = (done.get_mut(j), fresh) {
                    o.outcome = if restarting && was_stopped {
                        JailResult::Restarted
                    } else {
                        JailResult::Started
                    };
                }
                ok
            });
            note_skips(&res, &mut done, &targets);
            let seen: BTreeSet<String> = ran.iter().cloned().collect();
            ran.extend(walk.start.iter().filter(|j| !seen.contains(*j)).cloned());
        }
    }
    Summary {
        verb: walk.verb,
        jails: ran.iter().filter_map(|j| done.remove(j)).collect(),
    }
}

fn note_skips(
    res: &[(String, depend::Outcome<String>)],
    done: &mut BTreeMap<String, JailOutcome>,
    targets: &BTreeSet<&String>,
) {
    for (j, o) in res {
        if let depend::Outcome::Skipped { because } = o {
            let e = done.entry(j.clone()).or_insert_with(|| JailOutcome {
                jail: j.clone(),
                outcome: JailResult::Skipped,
                target: targets.contains(j),
                steps: vec![],
                because: None,
                error: None,
                kind: None,
            });
            // A restart's stop may have succeeded: the start was skipped.
            e.outcome = JailResult::Skipped;
            e.because = Some(because.clone());
        }
    }
}

/// Everything the per-jail lifecycle is built from (what a CLI session
/// holds), borrowed for one walk.
pub struct Sources<'a> {
    pub config: &'a Config,
    pub config_path: &'a Path,
    pub profiles: &'a Profiles,
    pub store: &'a dyn Backend,
    pub conf_jails: &'a [ConfJail],
}

impl Sources<'_> {
    /// One jail's verb over `host`, with its desired state built from the
    /// inventory as it is now (earlier jails of the walk changed it).
    pub fn run_one(&self, host: &dyn Host, jail: &str, step: Step) -> Result<Outcome> {
        self.with_engine(host, jail, |e, j, d| match step {
            Step::Start => e.start(j, d),
            Step::Stop => e.stop(j, d),
            Step::Restart => e.restart(j, d),
        })
    }

    /// The plan of `verb` for one jail (nothing applied).
    pub fn plan_one(&self, host: &dyn Host, jail: &str, verb: PlanVerb) -> Result<(Plan, Desired)> {
        self.with_engine(host, jail, |e, _, d| Ok((e.plan(verb, d)?, d.clone())))
    }

    fn with_engine<T>(
        &self,
        host: &dyn Host,
        jail: &str,
        f: impl FnOnce(&Lifecycle, &JailName, &Desired) -> Result<T>,
    ) -> Result<T> {
        let jail = JailName::new(jail).map_err(|e| Error::data(e.to_string()))?;
        let inv = self.store.read()?;
        let ctx = Context {
            config: self.config,
            config_path: self.config_path,
            profiles: self.profiles,
            inventory: &inv,
            conf_jails: self.conf_jails,
        };
        let basis = inv
            .jails
            .get(&jail)
            .map(|r| r.basis())
            .ok_or_else(|| LifecycleError::NotInInventory(jail.clone()))?;
        let d = desired::build(&ctx, &jail)?;
        let checker = desired::port_checker(&ctx, host, self.store);
        let engine = Lifecycle::new(host, self.store, checker.as_ref()).with_basis(basis);
        f(&engine, &jail, &d)
    }

    /// The graph and walk of `verb` over `targets`, or the refusal.
    pub fn walk(&self, verb: Verb, targets: &Targets) -> Result<(Graph<String>, Walk)> {
        let inv = self.store.read()?;
        let g = graph(self.conf_jails, self.config, &inv)?;
        let w = walk(&g, self.conf_jails, verb, targets.names(&inv))?;
        Ok((g, w))
    }

    /// The plans of `verb` (start or stop) over `targets`, in the order the
    /// verb would run them; nothing is applied. A jail that cannot be
    /// planned has its error, and the jails waiting on it are skipped.
    pub fn plan(&self, host: &dyn Host, stop: bool, targets: &Targets) -> Result<Vec<Planned>> {
        let verb = if stop { Verb::Stop } else { Verb::Start };
        let (g, w) = self.walk(verb, targets)?;
        let (order, dir, pverb) = if stop {
            (&w.stop, Direction::Stop, PlanVerb::Stop)
        } else {
            (&w.start, Direction::Start, PlanVerb::Start)
        };
        let named: BTreeSet<&str> = w.targets.iter().map(String::as_str).collect();
        let mut plans: BTreeMap<String, Result<(Plan, Desired)>> = BTreeMap::new();
        let res = depend::run(&g, order, dir, |j| {
            let r = self.plan_one(host, j, pverb);
            let ok = r.is_ok();
            plans.insert(j.clone(), r);
            ok
        });
        Ok(res
            .into_iter()
            .map(|(jail, o)| Planned {
                target: named.contains(jail.as_str()),
                plan: match o {
                    depend::Outcome::Skipped { because } => Err(because),
                    _ => Ok(plans.remove(&jail).unwrap_or_else(|| Err(Error::data("not planned")))),
                },
                jail,
            })
            .collect())
    }

    /// Runs `verb` over `targets` on `host` (see the module doc).
    pub fn run(&self, host: &dyn Host, verb: Verb, targets: &Targets) -> Result<Summary> {
        let (g, w) = self.walk(verb, targets)?;
        let named: BTreeSet<&str> = w.targets.iter().map(String::as_str).collect();
        Ok(drive(&g, &w, |j, step| {
            if !named.contains(j) {
                if let Some(r) = self.foreign(host, j, step) {
                    return r;
                }
            }
            self.run_one(host, j, step)
        }))
    }

    /// A jail pulled in by `depend` that jnet does not manage (in jail.conf
    /// or jnet.toml, without an address in the inventory): jnet cannot
    /// start or stop it, but what it waits for may already be so, e.g. a
    /// jail `service jail` runs. Running for a start, or not running for a
    /// stop, lets the walk go on; otherwise the jail fails, saying why.
    /// None when the jail is jnet's (the lifecycle handles it).
    fn foreign(&self, host: &dyn Host, jail: &str, step: Step) -> Option<Result<Outcome>> {
        let managed = JailName::new(jail)
            .ok()
            .and_then(|n| self.store.read().ok().map(|inv| inv.jails.contains_key(&n)));
        if managed != Some(false) {
            return None;
        }
        let running = match host.running_jails() {
            Ok(r) => r.iter().any(|r| r.name == jail && r.id != 0),
            Err(e) => return Some(Err(e.into())),
        };
        Some(match (step, running) {
            (Step::Start, true) => Ok(Outcome::AlreadyRunning),
            (Step::Stop, false) => Ok(Outcome::AlreadyStopped),
            (Step::Start | Step::Restart, false) => Err(Error::data(format!(
                "jail {jail} is needed (jail.conf depend) but has no address in jnet's inventory and is not \
                 running: start it with jail(8), or give it an address (jnet assign {jail} ...)"
            ))),
            (Step::Stop | Step::Restart, true) => Err(Error::data(format!(
                "jail {jail} depends on a jail being stopped but is not jnet's (no address in the inventory) \
                 and is running: stop it with jail(8) first"
            ))),
        })
    }
}

#[cfg(test)]
mod tests;
