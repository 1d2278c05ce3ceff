//! The lifecycle engine: observes a jail on the host, plans with
//! `core::plan`, applies the steps in order, records the phase in the
//! inventory after every transition, and on a failed start undoes the
//! completed steps in reverse so the jail is left stopped.
//!
//! It also runs the parts of a plan that the jail(8) hooks own
//! (jail.conf(5) `exec.prestart` etc. calling `jnet hook ...`).
//! It does not build the desired state (`engine::desired`) nor print
//! anything (the CLI does).

use crate::core::lifecycle::Phase;
use crate::core::names::JailName;
use crate::core::plan::{self, Action, Desired, Observed, Plan, RulesState, Verb};
use crate::error::{Error, ErrorKind, Result};
use crate::os::{Host, OsError};
use crate::store::inventory::RecordBasis;
use crate::store::Backend;

/// The pre-start port check. An error means "conflict, refuse the start";
/// its message is shown to the user.
pub trait PortChecker {
    fn check(&self, jail: &JailName) -> Result<()>;
}

/// Errors of the lifecycle engine.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("jail {0} is not in the inventory (give it an address first: jnet assign)")]
    NotInInventory(JailName),
    #[error("jail {jail}: desired state is for jail {other}")]
    WrongJail { jail: JailName, other: JailName },
    #[error("{verb} {jail}: step {step} failed: {error}{}", undo_note(undo_failures))]
    StepFailed {
        verb: String,
        jail: JailName,
        step: String,
        error: StepError,
        undo_failures: Vec<String>,
    },
    #[error("stop {jail}: {}", failures.join("; "))]
    StopFailed { jail: JailName, failures: Vec<String> },
}

fn undo_note(f: &[String]) -> String {
    if f.is_empty() {
        "; completed steps were undone".to_string()
    } else {
        format!("; undo failed too, jail marked failed: {}", f.join("; "))
    }
}

impl From<LifecycleError> for Error {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::NotInInventory(_) | LifecycleError::WrongJail { .. } => Error::Data(e.to_string()),
            LifecycleError::StepFailed { ref error, .. } => Error::Step {
                kind: error.kind,
                message: e.to_string(),
            },
            _ => Error::Lifecycle(e.to_string()),
        }
    }
}

/// What a verb did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Steps applied (their descriptions, in order).
    Done(Vec<String>),
    AlreadyRunning,
    AlreadyStopped,
}

/// Which jail(8) hook is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPhase {
    Prestart,
    Poststart,
    Prestop,
    Poststop,
}

/// The host as seen for one jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub observed: Observed,
    pub jid: Option<u32>,
    /// Why the jail's address cannot be attached: it is on a host interface
    /// and jnet did not put it there (see [`Lifecycle::observe`]).
    pub foreign_address: Option<String>,
}

impl Observation {
    fn refuse_foreign_address(&self) -> Result<()> {
        match &self.foreign_address {
            Some(why) => Err(Error::Data(why.clone())),
            None => Ok(()),
        }
    }
}

pub struct Lifecycle<'a> {
    host: &'a dyn Host,
    store: &'a dyn Backend,
    checker: &'a dyn PortChecker,
    basis: Option<RecordBasis>,
}

impl<'a> Lifecycle<'a> {
    pub fn new(host: &'a dyn Host, store: &'a dyn Backend, checker: &'a dyn PortChecker) -> Self {
        Lifecycle {
            host,
            store,
            checker,
            basis: None,
        }
    }

    /// The record the desired state was built from: a verb refuses to
    /// begin (exit 75, nothing done) when the locked inventory no longer
    /// matches it, e.g. an `assign` that got the lock first (H4).
    pub fn with_basis(mut self, basis: RecordBasis) -> Self {
        self.basis = Some(basis);
        self
    }

    /// Looks at the host for `d`'s jail, whose inventory phase is `phase`.
    ///
    /// Ownership of a dedicated address (H7): it counts as jnet's, attached
    /// for this jail, when the jail's own stack lists it (Linux: jnet's
    /// namespace; FreeBSD: the jail's ip4.addr), or when it is on a host
    /// interface while the phase says jnet may have put it there (starting,
    /// running, stopping, failed). On a host interface in any other phase
    /// it is someone else's: a start refuses to take it over, and a stop
    /// never removes it.
    pub fn observe(&self, d: &Desired, phase: Phase) -> Result<Observation> {
        let jail = d.jail();
        let running = self.host.running_jails()?;
        let rj = running.iter().find(|r| r.name == jail.as_str());
        // why: a listed jail with id 0 is only a leftover network (Linux
        // lists bare namespaces so stop can clean them up).
        let jail_running = rj.is_some_and(|r| r.id != 0);
        let mut foreign_address = None;
        // The network is attached when every own address is: in the
        // jail's stack, or on a host interface while the jail is jnet's.
        let ours = matches!(
            phase,
            Phase::Starting | Phase::Running | Phase::Stopping | Phase::Failed
        );
        let mut network_attached = true;
        let mut host_addresses: Option<Vec<crate::os::IfAddr>> = None;
        for (a, _, _) in d.spec.network.own_addresses() {
            let in_jail = rj.is_some_and(|r| r.addresses.contains(&a));
            let on_host = if in_jail {
                None
            } else {
                if host_addresses.is_none() {
                    host_addresses = Some(self.host.interface_addresses()?);
                }
                host_addresses.iter().flatten().find(|x| x.address == a).cloned()
            };
            if let (Some(h), false, None) = (&on_host, ours, &foreign_address) {
                foreign_address = Some(format!(
                    "jail {jail}: {a} is already configured on host interface {} and jnet did not add it \
                     (the jail is {phase}); remove it there or assign the jail another address",
                    h.interface
                ));
            }
            network_attached &= in_jail || (on_host.is_some() && ours);
        }
        let rules = match self.host.loaded_rules(&d.anchor_root, jail) {
            Ok(None) => RulesState::Absent,
            Ok(Some(listing)) => RulesState::Loaded {
                matches: d.rules.as_deref().is_some_and(|r| plan::rules_match(r, &listing)),
            },
            // No firewall tool: nothing can be loaded, which is fine as long
            // as the jail needs no rules.
            Err(OsError::Missing(p)) if d.rules.is_none() => {
                tracing::debug!(program = p, "firewall tool missing; jail has no rules");
                RulesState::Absent
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Observation {
            observed: Observed {
                jail_running,
                network_attached,
                rules,
            },
            jid: rj.filter(|r| r.id != 0).map(|r| r.id),
            foreign_address,
        })
    }

    /// The plan for `verb` without applying it.
    pub fn plan(&self, verb: Verb, d: &Desired) -> Result<Plan> {
        let phase = self.current_phase(d.jail(), d)?;
        self.plan_in_phase(verb, d, phase)
    }

    /// [`Lifecycle::plan`] for a jail whose inventory phase the caller read
    /// (or previews: a jail not yet in the inventory is `defined`).
    pub fn plan_in_phase(&self, verb: Verb, d: &Desired, phase: Phase) -> Result<Plan> {
        let obs = self.observe(d, phase)?;
        if verb == Verb::Start {
            obs.refuse_foreign_address()?;
        }
        let o = obs.observed;
        Ok(match verb {
            Verb::Start => plan::plan_start(d, &o),
            Verb::Stop => plan::plan_stop(d, &o),
        })
    }

    fn set_phase(&self, jail: &JailName, phase: Phase, jid: Option<u32>) -> Result<()> {
        self.write_phase(jail, phase, jid, None)
    }

    /// The first phase write of a verb: a compare-and-set against the basis
    /// the plan was built from, under the inventory lock.
    fn begin(&self, jail: &JailName, phase: Phase, jid: Option<u32>) -> Result<()> {
        self.write_phase(jail, phase, jid, self.basis.as_ref())
    }

    fn write_phase(&self, jail: &JailName, phase: Phase, jid: Option<u32>, basis: Option<&RecordBasis>) -> Result<()> {
        self.store.update(|inv| {
            let r = inv
                .jails
                .get_mut(jail)
                .ok_or_else(|| LifecycleError::NotInInventory(jail.clone()))?;
            if let Some(b) = basis {
                if r.basis() != *b {
                    let mode = r.mode().as_str();
                    let held: Vec<String> = r.addresses().map(|a| a.to_string()).collect();
                    let what = if held.is_empty() {
                        format!("now {mode}")
                    } else {
                        format!("now {mode} {}", held.join(" "))
                    };
                    return Err(Error::Changed {
                        jail: jail.to_string(),
                        what,
                    });
                }
            }
            r.phase = phase;
            r.jid = jid;
            Ok(())
        })?;
        tracing::info!(%jail, %phase, "phase");
        Ok(())
    }

    fn current_phase(&self, jail: &JailName, d: &Desired) -> Result<Phase> {
        if jail != d.jail() {
            return Err(LifecycleError::WrongJail {
                jail: jail.clone(),
                other: d.jail().clone(),
            }
            .into());
        }
        let inv = self.store.read()?;
        Ok(inv
            .jails
            .get(jail)
            .ok_or_else(|| LifecycleError::NotInInventory(jail.clone()))?
            .phase)
    }

    /// Runs one action; returns the jail id when it created the jail.
    fn apply(&self, d: &Desired, a: &Action) -> std::result::Result<Option<u32>, StepError> {
        let jail = d.jail();
        let sh = |c: &str| vec!["/bin/sh".to_string(), "-c".to_string(), c.to_string()];
        let code = |r: std::result::Result<i32, OsError>, c: &str| match r {
            Ok(0) => Ok(None),
            Ok(n) => Err(StepError {
                message: format!("command {c:?} exited with status {n}"),
                kind: ErrorKind::Internal,
            }),
            Err(e) => Err(s(e)),
        };
        tracing::debug!(%jail, step = a.kind(), "apply");
        match a {
            Action::CheckPorts => self.checker.check(jail).map(|_| None).map_err(|e| StepError {
                message: e.to_string(),
                kind: e.kind(),
            }),
            Action::AttachNetwork => self.host.attach_network(jail, &d.spec.network).map(|_| None).map_err(s),
            Action::DetachNetwork => self.host.detach_network(jail, &d.spec.network).map(|_| None).map_err(s),
            Action::CreateJail => self.host.create_jail(&d.spec).map(Some).map_err(s),
            Action::TerminateJail => self.host.terminate_jail(jail, d.stop_timeout).map(|_| None).map_err(s),
            Action::RemoveJail => self.host.remove_jail(jail).map(|_| None).map_err(s),
            Action::Mount(m) => self.host.mount(jail, m).map(|_| None).map_err(s),
            Action::Unmount(m) => self.host.unmount(jail, m).map(|_| None).map_err(s),
            Action::ExecHost { command, .. } => code(
                self.host.exec_on_host_with(jail.as_str(), command, &d.exec.options),
                command,
            ),
            Action::ExecJail { command, .. } => code(
                self.host.exec_in_jail_with(jail, &sh(command), &d.exec.options),
                command,
            ),
            Action::LoadRules => match &d.rules {
                Some(r) => self.host.load_rules(&d.anchor_root, jail, r).map(|_| None).map_err(s),
                None => Ok(None),
            },
            Action::FlushRules => self.host.flush_rules(&d.anchor_root, jail).map(|_| None).map_err(s),
        }
    }

    /// Applies a start-shaped plan; on failure undoes and records the phase.
    /// `done_phase` is recorded on success.
    fn run_forward(&self, d: &Desired, p: &Plan, mut jid: Option<u32>, done_phase: Phase) -> Result<Outcome> {
        let jail = d.jail();
        self.begin(jail, Phase::Starting, jid)?;
        let mut done: Vec<&plan::Step> = Vec::new();
        for step in &p.steps {
            match self.apply(d, &step.action) {
                Ok(id) => {
                    if id.is_some() {
                        jid = id;
                    }
                    done.push(step);
                }
                Err(error) => {
                    tracing::warn!(%jail, step = step.action.kind(), %error, "step failed, undoing");
                    let mut undo_failures = Vec::new();
                    let undo = done
                        .iter()
                        .rev()
                        .filter_map(|s| s.undo.as_ref())
                        .chain(p.adopted.iter());
                    for u in undo {
                        if let Err(e) = self.apply(d, u) {
                            undo_failures.push(format!("{}: {e}", u.kind()));
                        }
                    }
                    // why: a plan made for a running jail (a rules reload)
                    // that fails leaves the jail up and running, never torn
                    // down (H10).
                    let (phase, jid) = match (p.on_running, undo_failures.is_empty()) {
                        (true, _) => (Phase::Running, jid),
                        (false, true) => (Phase::Stopped, None),
                        (false, false) => (Phase::Failed, None),
                    };
                    self.set_phase(jail, phase, jid)?;
                    return Err(LifecycleError::StepFailed {
                        verb: p.verb.to_string(),
                        jail: jail.clone(),
                        step: step.action.describe(d),
                        error,
                        undo_failures,
                    }
                    .into());
                }
            }
        }
        self.set_phase(jail, done_phase, jid)?;
        if done_phase == Phase::Running && !d.persist && p.steps.iter().any(|s| s.action == Action::CreateJail) {
            // why: jail(8) clears persist once exec.poststart is done, so
            // the jail ends with its last process (F14); a failure here
            // leaves a jail that persists, which is no reason to undo it.
            if let Err(e) = self.host.release_persist(d.jail()) {
                tracing::warn!(jail = %d.jail(), error = %e, "could not clear persist; the jail outlives its processes");
            }
        }
        Ok(Outcome::Done(p.steps.iter().map(|s| s.action.describe(d)).collect()))
    }

    /// Applies a stop-shaped plan: every step is tried (resources must go
    /// even when a hook fails); the phase is `stopped` unless a removal
    /// step failed, then `failed`.
    fn run_teardown(&self, d: &Desired, p: &Plan, done_phase: Phase) -> Result<Outcome> {
        let jail = d.jail();
        let mut failures = Vec::new();
        let mut resource_failed = false;
        for step in &p.steps {
            if let Err(e) = self.apply(d, &step.action) {
                tracing::warn!(%jail, step = step.action.kind(), error = %e, "stop step failed, going on");
                resource_failed |= matches!(
                    step.action,
                    Action::RemoveJail | Action::FlushRules | Action::DetachNetwork
                );
                failures.push(format!("step {} failed: {e}", step.action.describe(d)));
            }
        }
        let phase = if resource_failed { Phase::Failed } else { done_phase };
        self.set_phase(jail, phase, None)?;
        if failures.is_empty() {
            Ok(Outcome::Done(p.steps.iter().map(|s| s.action.describe(d)).collect()))
        } else {
            Err(LifecycleError::StopFailed {
                jail: jail.clone(),
                failures,
            }
            .into())
        }
    }

    /// Brings the jail up. Idempotent: a running jail is left alone.
    ///
    /// why the jail lock: two `jnet start www` at once would both plan from
    /// "stopped", run exec.start twice and undo each other's steps (H3).
    /// Held for the whole verb, a second caller waits, then finds the jail
    /// running ("already running"), or gives up after the lock timeout with
    /// exit 75 ("busy").
    pub fn start(&self, jail: &JailName, d: &Desired) -> Result<Outcome> {
        let _lock = self.store.lock_jail(jail)?;
        self.start_locked(jail, d)
    }

    fn start_locked(&self, jail: &JailName, d: &Desired) -> Result<Outcome> {
        let phase = self.current_phase(jail, d)?;
        let obs = self.observe(d, phase)?;
        let p = plan::plan_start(d, &obs.observed);
        refuse_unsupported(d, &p)?;
        if p.steps.iter().any(|s| s.action == Action::AttachNetwork) {
            obs.refuse_foreign_address()?;
        }
        if p.is_empty() {
            if phase != Phase::Running {
                self.begin(jail, Phase::Running, obs.jid)?;
            }
            return Ok(Outcome::AlreadyRunning);
        }
        self.run_forward(d, &p, obs.jid, Phase::Running)
    }

    /// Takes the jail down. Idempotent: a stopped jail is left alone. Holds
    /// the jail lock, as `start` does.
    pub fn stop(&self, jail: &JailName, d: &Desired) -> Result<Outcome> {
        let _lock = self.store.lock_jail(jail)?;
        self.stop_locked(jail, d)
    }

    fn stop_locked(&self, jail: &JailName, d: &Desired) -> Result<Outcome> {
        let phase = self.current_phase(jail, d)?;
        let obs = self.observe(d, phase)?;
        let p = plan::plan_stop(d, &obs.observed);
        if p.is_empty() {
            if phase != Phase::Stopped && phase != Phase::Defined {
                self.set_phase(jail, Phase::Stopped, None)?;
            }
            return Ok(Outcome::AlreadyStopped);
        }
        self.begin(jail, Phase::Stopping, obs.jid)?;
        self.run_teardown(d, &p, Phase::Stopped)
    }

    /// Stop, then start, under one hold of the jail lock (no other verb on
    /// the jail can slip in between).
    pub fn restart(&self, jail: &JailName, d: &Desired) -> Result<Outcome> {
        let _lock = self.store.lock_jail(jail)?;
        let mut steps = match self.stop_locked(jail, d)? {
            Outcome::Done(s) => s,
            _ => vec![],
        };
        match self.start_locked(jail, d)? {
            Outcome::Done(s) => steps.extend(s),
            _ => return Ok(Outcome::AlreadyRunning),
        }
        Ok(Outcome::Done(steps))
    }

    /// The part of the plan a jail(8) hook owns (issue 5 item 5):
    /// prestart = port check + address; poststart = firewall load;
    /// prestop = nothing but the phase; poststop = firewall flush +
    /// address removal. jail(8) itself creates and removes the jail and runs
    /// the exec.* commands, so those steps are never taken here.
    pub fn hook(&self, hook: HookPhase, d: &Desired) -> Result<Outcome> {
        let jail = d.jail();
        let _lock = self.store.lock_jail(jail)?;
        let phase = self.current_phase(jail, d)?;
        let obs = self.observe(d, phase)?;
        if hook == HookPhase::Prestart {
            obs.refuse_foreign_address()?;
        }
        // why: under jail(8) the jail does not exist yet at prestart, and
        // at poststart it exists but is not ours to create: plan as if
        // absent and keep only the hook's part.
        let o = Observed {
            jail_running: false,
            ..obs.observed
        };
        match hook {
            HookPhase::Prestart => {
                let p = plan::plan_start(d, &o).retain(|a| matches!(a, Action::CheckPorts | Action::AttachNetwork));
                let p = Plan { adopted: vec![], ..p };
                self.run_forward(d, &p, None, Phase::Starting)
            }
            HookPhase::Poststart => {
                let p = plan::plan_start(d, &o).retain(|a| matches!(a, Action::LoadRules | Action::FlushRules));
                let p = Plan { adopted: vec![], ..p };
                self.run_forward(d, &p, obs.jid, Phase::Running)
            }
            HookPhase::Prestop => {
                self.set_phase(jail, Phase::Stopping, obs.jid)?;
                Ok(Outcome::Done(vec![]))
            }
            HookPhase::Poststop => {
                let p = plan::plan_stop(d, &o).retain(|a| matches!(a, Action::FlushRules | Action::DetachNetwork));
                self.run_teardown(d, &p, Phase::Stopped)
            }
        }
    }
}

/// A failed step: its message and the kind of its cause, so a port
/// conflict still exits 1 and a permission problem 77.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub message: String,
    pub kind: ErrorKind,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A start that would create the jail is refused, before any step runs,
/// while jail.conf sets a parameter jail(8) would act on and jnet cannot
/// (finding F9): the jail would otherwise get a different life than under
/// `service jail start`, silently.
fn refuse_unsupported(d: &Desired, p: &Plan) -> Result<()> {
    let creates = p.steps.iter().any(|s| s.action == Action::CreateJail);
    if !creates || d.unsupported.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = d.unsupported.iter().map(|(k, at)| format!("{k} ({at})")).collect();
    Err(Error::config(format!(
        "jail {}: jail.conf sets {}, which jnet's start cannot honour; nothing was changed. \
         Remove the setting, or start this jail with jail(8) and the `jnet jail-conf` hooks",
        d.jail(),
        list.join(", ")
    )))
}

fn s(e: OsError) -> StepError {
    StepError {
        message: e.to_string(),
        kind: e.kind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::IfName;
    use crate::core::plan::ExecHooks;
    use crate::engine::fake_host::FakeHost;
    use crate::os::JailSpec;
    use crate::store::{JailRecord, Store};
    use std::cell::RefCell;
    use std::path::PathBuf;
    use std::time::Duration;

    /// Records calls into the same log as the host so order is visible.
    struct Checker<'a> {
        host: &'a FakeHost,
        refuse: RefCell<bool>,
    }
    impl<'a> Checker<'a> {
        /// A checker that records its calls and finds no conflict.
        fn passing(host: &'a FakeHost) -> Self {
            Checker {
                host,
                refuse: RefCell::new(false),
            }
        }
    }
    impl PortChecker for Checker<'_> {
        fn check(&self, jail: &JailName) -> Result<()> {
            self.host.calls.borrow_mut().push(format!("check_ports {jail}"));
            if *self.refuse.borrow() {
                return Err(Error::Data(format!("{jail}: tcp/80 is taken by nginx (pid 42)")));
            }
            Ok(())
        }
    }

    fn jn(s: &str) -> JailName {
        JailName::new(s).unwrap()
    }

    fn desired(dedicated: bool) -> Desired {
        Desired {
            spec: JailSpec {
                name: jn("www"),
                path: PathBuf::from("/"),
                hostname: None,
                network: if dedicated {
                    crate::os::JailNetwork::inet_only(crate::os::OwnAddress {
                        address: "10.0.0.5".parse().unwrap(),
                        prefix: 24,
                        interface: IfName::new("jnbr0").unwrap(),
                        gateway: None,
                    })
                } else {
                    crate::os::JailNetwork::INHERIT
                },
                params: vec![],
            },
            exec: ExecHooks {
                prestart: vec!["pre".into()],
                start: vec!["daemon".into()],
                poststart: vec!["post".into()],
                prestop: vec!["prestop".into()],
                stop: vec!["halt".into()],
                poststop: vec!["poststop".into()],
                ..Default::default()
            },
            rules: Some("rdr pass on em0 inet proto tcp from any to (em0) port 80 -> 10.0.0.5 port 80\n".into()),
            port_check: true,
            anchor_root: "jnet".into(),
            stop_timeout: crate::core::plan::DEFAULT_STOP_TIMEOUT,
            unsupported: vec![],
            persist: false,
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        host: FakeHost,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), Duration::from_secs(1));
        store
            .update(|inv| {
                inv.jails.insert(
                    jn("www"),
                    JailRecord::dedicated("10.0.0.5".parse().unwrap(), None, None),
                );
                Ok(())
            })
            .unwrap();
        Fixture {
            _dir: dir,
            store,
            host: FakeHost::new(),
        }
    }

    fn phase(f: &Fixture) -> (Phase, Option<u32>) {
        let r = f.store.read().unwrap().jails[&jn("www")].clone();
        (r.phase, r.jid)
    }

    const START_CALLS: [&str; 8] = [
        "check_ports www",
        "attach_network www",
        "exec_on_host: pre",
        "create_jail www",
        "exec_in_jail www: daemon",
        "exec_on_host: post",
        "load_rules www",
        "release_persist www",
    ];

    /// H4: `start` planned from a read taken before the locks; an
    /// `assign` that got the inventory lock first moved the jail to another
    /// address. The start must refuse (exit 75) with nothing done, instead
    /// of starting the jail on the old address the inventory no longer says.
    #[test]
    fn a_start_planned_from_a_stale_record_is_refused_with_nothing_done() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let basis = f.store.read().unwrap().jails[&jn("www")].basis();
        f.store
            .update(|inv| {
                inv.jails.insert(
                    jn("www"),
                    JailRecord::dedicated("10.0.0.9".parse().unwrap(), None, None),
                );
                Ok(())
            })
            .unwrap();
        let e = Lifecycle::new(&f.host, &f.store, &c).with_basis(basis.clone());
        let err = e.start(&jn("www"), &desired(true)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
        assert!(err.to_string().contains("now dedicated 10.0.0.9"), "{err}");
        assert!(f.host.take_calls().is_empty());
        assert_eq!(phase(&f), (Phase::Defined, None));

        // The same for stop, and nothing is refused while the basis holds.
        let e = Lifecycle::new(&f.host, &f.store, &c).with_basis(f.store.read().unwrap().jails[&jn("www")].basis());
        e.start(&jn("www"), &desired(true)).unwrap();
        let e = Lifecycle::new(&f.host, &f.store, &c).with_basis(basis);
        assert_eq!(e.stop(&jn("www"), &desired(true)).unwrap_err().kind(), ErrorKind::Busy);
        assert_eq!(phase(&f).0, Phase::Running);
    }

    /// H7: the jail's address is already on a host interface and jnet did
    /// not put it there (the jail is stopped). Start refuses with nothing
    /// done; stop plans no removal of it.
    #[test]
    fn an_address_jnet_did_not_add_is_neither_taken_over_nor_removed() {
        let f = fixture();
        f.host.state.borrow_mut().host_addresses.push(crate::os::IfAddr {
            interface: "em0".into(),
            address: "10.0.0.5".parse().unwrap(),
            prefix: 24,
        });
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let d = desired(true);
        let err = e.start(&jn("www"), &d).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert!(
            err.to_string().contains("host interface em0 and jnet did not add it"),
            "{err}"
        );
        assert!(f.host.take_calls().is_empty());
        assert!(e.plan(Verb::Start, &d).is_err());
        let stop = e.plan(Verb::Stop, &d).unwrap();
        assert!(
            !stop.steps.iter().any(|s| s.action == Action::DetachNetwork),
            "{stop:?}"
        );
        e.stop(&jn("www"), &d).unwrap();
        assert!(!f.host.take_calls().iter().any(|c| c.starts_with("detach")));
        assert_eq!(f.host.snapshot().host_addresses.len(), 1);

        // Where jnet may have added it (a start that died half-way), a stop
        // takes it away.
        f.store
            .update(|inv| {
                inv.jails.get_mut(&jn("www")).unwrap().phase = Phase::Starting;
                Ok(())
            })
            .unwrap();
        let stop = e.plan(Verb::Stop, &d).unwrap();
        assert!(stop.steps.iter().any(|s| s.action == Action::DetachNetwork), "{stop:?}");
    }

    #[test]
    fn start_then_stop_in_order_with_phases() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let d = desired(true);
        let out = e.start(&jn("www"), &d).unwrap();
        assert!(matches!(&out, Outcome::Done(s) if s.len() == 7), "{out:?}");
        assert_eq!(f.host.take_calls(), START_CALLS);
        assert_eq!(phase(&f), (Phase::Running, Some(1)));
        let st = f.host.snapshot();
        assert_eq!((st.networks.len(), st.jails.len(), st.rules.len()), (1, 1, 1));

        e.stop(&jn("www"), &d).unwrap();
        assert_eq!(
            f.host.take_calls(),
            [
                "exec_on_host: prestop",
                "exec_in_jail www: halt",
                "terminate_jail www 10s",
                "remove_jail www",
                "flush_rules www",
                "exec_on_host: poststop",
                "detach_network www"
            ]
        );
        assert!(f.host.snapshot().is_empty());
        assert_eq!(phase(&f), (Phase::Stopped, None));
    }

    #[test]
    fn unsupported_jail_conf_settings_refuse_the_start_before_any_step() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let mut d = desired(true);
        d.unsupported = vec![("mount.devfs".into(), "/etc/jail.conf:7".into())];
        let err = e.start(&jn("www"), &d).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("jail www") && msg.contains("mount.devfs (/etc/jail.conf:7)"),
            "{msg}"
        );
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(f.host.take_calls().is_empty(), "nothing may run before the refusal");
        assert_eq!(phase(&f).0, Phase::Defined);
    }

    #[test]
    fn failure_at_every_start_step_undoes_in_reverse() {
        // The last call, clearing persist, cannot fail a start (see below).
        for (i, failing) in START_CALLS[..START_CALLS.len() - 1].iter().enumerate() {
            let f = fixture();
            let c = Checker {
                host: &f.host,
                refuse: RefCell::new(i == 0),
            };
            if i > 0 {
                f.host.fail_on(*failing);
            }
            let e = Lifecycle::new(&f.host, &f.store, &c);
            let err = e.start(&jn("www"), &desired(true)).unwrap_err().to_string();
            assert!(
                err.starts_with("start www: step ") && err.contains("completed steps were undone"),
                "{err}"
            );
            assert_eq!(phase(&f), (Phase::Stopped, None), "failing {failing}");
            assert!(
                f.host.snapshot().is_empty(),
                "failing {failing}: {:?}",
                f.host.snapshot()
            );
            // The calls: everything up to and including the failure, then
            // the undo of each completed undoable step, newest first.
            let mut want: Vec<String> = START_CALLS[..=i].iter().map(|s| s.to_string()).collect();
            for done in START_CALLS[..i].iter().rev() {
                match *done {
                    "attach_network www" => want.push("detach_network www".into()),
                    "create_jail www" => want.push("remove_jail www".into()),
                    "load_rules www" => want.push("flush_rules www".into()),
                    _ => {}
                }
            }
            assert_eq!(f.host.take_calls(), want, "failing {failing}");
        }
    }

    #[test]
    fn persist_is_cleared_after_a_start_unless_jail_conf_asks_for_it() {
        // F14: a failure to clear persist leaves a working jail running.
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        f.host.fail_on("release_persist www");
        e.start(&jn("www"), &desired(true)).unwrap();
        assert_eq!(f.host.take_calls(), START_CALLS);
        assert_eq!(phase(&f), (Phase::Running, Some(1)));
        // jail.conf `persist`: left alone.
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let mut d = desired(true);
        d.persist = true;
        e.start(&jn("www"), &d).unwrap();
        assert_eq!(f.host.take_calls(), START_CALLS[..START_CALLS.len() - 1]);
    }

    #[test]
    fn a_jail_busy_with_another_verb_is_refused_after_the_lock_timeout() {
        // H3: the lock another process holds while it starts or stops www.
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let held = f.store.lock_jail(&jn("www")).unwrap();
        for verb in ["start", "stop", "restart"] {
            let d = desired(true);
            let r = match verb {
                "start" => e.start(&jn("www"), &d),
                "stop" => e.stop(&jn("www"), &d),
                _ => e.restart(&jn("www"), &d),
            };
            let err = r.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Busy, "{verb}: {err}");
            assert!(err.to_string().contains("jail www is busy"), "{verb}: {err}");
        }
        assert!(
            f.host.take_calls().is_empty(),
            "nothing may run while another verb holds www"
        );
        assert_eq!(phase(&f).0, Phase::Defined);
        drop(held);
        e.start(&jn("www"), &desired(true)).unwrap();
        assert_eq!(phase(&f), (Phase::Running, Some(1)));
    }

    #[test]
    fn a_failed_rules_reload_leaves_a_running_jail_up() {
        // H10: start of a running jail whose rules must be reloaded.
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        e.start(&jn("www"), &desired(true)).unwrap();
        f.host.take_calls();
        // Its exposures are gone from the config: the start flushes them.
        let mut d = desired(true);
        d.rules = None;
        f.host.fail_on("flush_rules www");
        let err = e.start(&jn("www"), &d).unwrap_err().to_string();
        assert!(err.contains("step flush firewall rules jnet/www failed"), "{err}");
        assert_eq!(
            f.host.take_calls(),
            ["flush_rules www"],
            "nothing but the firewall step may run"
        );
        let st = f.host.snapshot();
        assert_eq!((st.networks.len(), st.jails.len()), (1, 1), "the jail must stay up");
        assert_eq!(phase(&f), (Phase::Running, Some(1)));
    }

    #[test]
    fn failure_messages_name_the_step() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        f.host.fail_on("exec_in_jail www: daemon");
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let err = e.start(&jn("www"), &desired(true)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "start www: step run exec.start inside www: daemon failed: command \"daemon\" exited with status 1; \
             completed steps were undone"
        );
        let c = Checker {
            host: &f.host,
            refuse: RefCell::new(true),
        };
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let err = e.start(&jn("www"), &desired(true)).unwrap_err().to_string();
        assert!(err.contains("port check") || err.contains("ports of www"), "{err}");
        assert!(err.contains("tcp/80 is taken by nginx"), "{err}");
    }

    #[test]
    fn undo_failure_marks_failed_and_names_it() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        f.host.fail_on("load_rules www");
        f.host.fail_on("remove_jail www");
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let err = e.start(&jn("www"), &desired(true)).unwrap_err().to_string();
        assert!(
            err.contains("undo failed too, jail marked failed: remove jail: "),
            "{err}"
        );
        assert_eq!(phase(&f).0, Phase::Failed);
        // The other undo steps still ran.
        let calls = f.host.take_calls();
        assert!(
            calls.ends_with(&["remove_jail www".to_string(), "detach_network www".to_string()]),
            "{calls:?}"
        );
        // A later stop cleans up once the host cooperates.
        f.host.clear_failures();
        e.stop(&jn("www"), &desired(true)).unwrap();
        assert!(f.host.snapshot().is_empty());
        assert_eq!(phase(&f).0, Phase::Stopped);
    }

    #[test]
    fn verbs_are_idempotent() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let d = desired(true);
        assert_eq!(e.stop(&jn("www"), &d).unwrap(), Outcome::AlreadyStopped);
        assert_eq!(phase(&f).0, Phase::Defined, "a never-started jail stays defined");
        e.start(&jn("www"), &d).unwrap();
        f.host.take_calls();
        assert_eq!(e.start(&jn("www"), &d).unwrap(), Outcome::AlreadyRunning);
        assert!(f.host.take_calls().is_empty(), "already running: no host changes");
        assert_eq!(phase(&f), (Phase::Running, Some(1)));
        e.stop(&jn("www"), &d).unwrap();
        assert_eq!(e.stop(&jn("www"), &d).unwrap(), Outcome::AlreadyStopped);
        assert!(f.host.snapshot().is_empty());
    }

    #[test]
    fn partial_start_is_completed_and_failed_retry_cleans_everything() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let d = desired(true);
        // An earlier run attached the address and died.
        f.host.attach_network(&jn("www"), &d.spec.network).unwrap();
        f.host.take_calls();
        f.host.fail_on("load_rules www");
        e.start(&jn("www"), &d).unwrap_err();
        let calls = f.host.take_calls();
        assert!(!calls.contains(&"attach_network www".to_string()), "{calls:?}");
        assert!(
            calls.ends_with(&["remove_jail www".to_string(), "detach_network www".to_string()]),
            "{calls:?}"
        );
        assert!(f.host.snapshot().is_empty(), "adopted address removed too");
        // Jail running without rules: start only loads them.
        f.host.clear_failures();
        e.start(&jn("www"), &d).unwrap();
        f.host.flush_rules("jnet", &jn("www")).unwrap();
        f.host.take_calls();
        e.start(&jn("www"), &d).unwrap();
        assert_eq!(f.host.take_calls(), ["load_rules www"]);
    }

    #[test]
    fn stop_of_half_started_jail() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let d = desired(true);
        f.host.attach_network(&jn("www"), &d.spec.network).unwrap();
        f.host.load_rules("jnet", &jn("www"), "x").unwrap();
        f.host.take_calls();
        e.stop(&jn("www"), &d).unwrap();
        // No jail: no exec hooks, no removal; rules and address go.
        assert_eq!(f.host.take_calls(), ["flush_rules www", "detach_network www"]);
        assert!(f.host.snapshot().is_empty());
        assert_eq!(phase(&f).0, Phase::Stopped);
    }

    #[test]
    fn stop_presses_on_after_failures() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let d = desired(true);
        e.start(&jn("www"), &d).unwrap();
        f.host.fail_on("exec_in_jail www: halt");
        let err = e.stop(&jn("www"), &d).unwrap_err().to_string();
        assert!(err.contains("exec.stop") && err.contains("status 1"), "{err}");
        assert!(
            f.host.snapshot().is_empty(),
            "resources removed despite the hook failure"
        );
        assert_eq!(phase(&f).0, Phase::Stopped);
        e.start(&jn("www"), &d).unwrap();
        f.host.fail_on("detach_network www");
        e.stop(&jn("www"), &d).unwrap_err();
        assert_eq!(phase(&f).0, Phase::Failed);
    }

    #[test]
    fn inherit_jail_has_no_network_steps_and_restart() {
        let f = fixture();
        f.store
            .update(|inv| {
                inv.jails.insert(jn("www"), JailRecord::inherit());
                Ok(())
            })
            .unwrap();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let mut d = desired(false);
        d.rules = None;
        e.start(&jn("www"), &d).unwrap();
        let calls = f.host.take_calls();
        assert!(
            !calls.iter().any(|c| c.contains("network") || c.contains("rules")),
            "{calls:?}"
        );
        let out = e.restart(&jn("www"), &d).unwrap();
        assert!(
            matches!(&out, Outcome::Done(s) if s.iter().any(|x| x.starts_with("remove jail"))),
            "{out:?}"
        );
        assert_eq!(phase(&f).0, Phase::Running);
    }

    #[test]
    fn hooks_do_their_part_only() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let d = desired(true);
        e.hook(HookPhase::Prestart, &d).unwrap();
        assert_eq!(f.host.take_calls(), ["check_ports www", "attach_network www"]);
        assert_eq!(phase(&f).0, Phase::Starting);
        // jail(8) creates the jail here.
        f.host.create_jail(&d.spec).unwrap();
        f.host.take_calls();
        e.hook(HookPhase::Poststart, &d).unwrap();
        assert_eq!(f.host.take_calls(), ["load_rules www"]);
        assert_eq!(phase(&f), (Phase::Running, Some(1)));
        e.hook(HookPhase::Prestop, &d).unwrap();
        assert!(f.host.take_calls().is_empty());
        assert_eq!(phase(&f).0, Phase::Stopping);
        f.host.remove_jail(&jn("www")).unwrap();
        f.host.take_calls();
        e.hook(HookPhase::Poststop, &d).unwrap();
        assert_eq!(f.host.take_calls(), ["flush_rules www", "detach_network www"]);
        assert!(f.host.snapshot().is_empty());
        assert_eq!(phase(&f).0, Phase::Stopped);
        // A refused prestart leaves nothing behind and says why.
        let c = Checker {
            host: &f.host,
            refuse: RefCell::new(true),
        };
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let err = e.hook(HookPhase::Prestart, &d).unwrap_err().to_string();
        assert!(err.contains("tcp/80 is taken"), "{err}");
        assert!(f.host.snapshot().is_empty());
    }

    #[test]
    fn unknown_jail_is_refused() {
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let mut d = desired(true);
        d.spec.name = jn("ghost");
        let err = e.start(&jn("ghost"), &d).unwrap_err();
        assert!(err.to_string().contains("jail ghost is not in the inventory"), "{err}");
        assert!(e
            .start(&jn("www"), &d)
            .unwrap_err()
            .to_string()
            .contains("desired state is for jail ghost"));
        assert!(f.host.take_calls().is_empty());
    }

    /// F9: jail.conf mounts run at jail(8)'s points (after the address,
    /// before exec.prestart; unmounted after exec.poststop, in reverse) and
    /// are undone when a later step fails; the exec.* settings reach every
    /// exec call.
    #[test]
    fn mounts_and_exec_settings_follow_jail_8() {
        use crate::os::mount::{builtin, Builtin};
        let f = fixture();
        let c = Checker::passing(&f.host);
        let e = Lifecycle::new(&f.host, &f.store, &c);
        let mut d = desired(true);
        let root = std::path::Path::new("/jails/www");
        d.exec.mounts = vec![
            builtin(root, Builtin::Devfs { ruleset: 4 }).unwrap(),
            builtin(root, Builtin::Procfs).unwrap(),
        ];
        d.exec.options.jail_user = Some("www".into());
        d.exec.options.timeout = Some(Duration::from_secs(5));
        f.host.fail_on("create_jail www");
        assert!(e.start(&jn("www"), &d).is_err());
        let calls = f.host.take_calls();
        let at = |c: &str| {
            calls
                .iter()
                .position(|x| x == c)
                .unwrap_or_else(|| panic!("{c}: {calls:?}"))
        };
        assert!(at("attach_network www") < at("mount www: /jails/www/dev"));
        assert!(at("mount www: /jails/www/proc") < at("exec_on_host: pre"));
        // Undone in reverse after the failed create.
        assert!(at("unmount www: /jails/www/proc") < at("unmount www: /jails/www/dev"));
        assert!(f.host.snapshot().is_empty(), "{:?}", f.host.snapshot());

        f.host.clear_failures();
        e.start(&jn("www"), &d).unwrap();
        f.host.take_calls();
        e.stop(&jn("www"), &d).unwrap();
        let calls = f.host.take_calls();
        let at = |c: &str| {
            calls
                .iter()
                .position(|x| x == c)
                .unwrap_or_else(|| panic!("{c}: {calls:?}"))
        };
        assert!(at("exec_on_host: poststop") < at("unmount www: /jails/www/proc"));
        assert!(at("unmount www: /jails/www/proc") < at("unmount www: /jails/www/dev"));
        assert!(at("unmount www: /jails/www/dev") < at("detach_network www"));
        let opts = f.host.exec_options.borrow();
        assert!(!opts.is_empty() && opts.iter().all(|o| o == &d.exec.options));
    }
}
