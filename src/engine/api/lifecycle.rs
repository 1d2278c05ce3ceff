//! The lifecycle verbs of [`Engine`]: `plan`, `start`, `stop`, `restart`
//! over one or several jails (in jail.conf `depend` order,
//! `engine::multi`), `status`, `hook`, `exec` and `jail-conf`. The
//! per-jail work is `engine::lifecycle::Lifecycle`'s; this module builds
//! its inputs and returns what happened.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Engine;
use crate::core::model::{FamilyNetwork, JailNetwork, Mode, RunningJail};
use crate::core::names::JailName;
use crate::core::plan::{Desired, Plan, Verb as PlanVerb};
use crate::engine::desired;
use crate::engine::lifecycle::{HookPhase, Lifecycle, LifecycleError, Outcome};
use crate::engine::multi::{Planned, Sources, Summary, Targets, Verb};
use crate::engine::snapshot::Snapshot;
use crate::error::{Error, Result};
use crate::store::Inventory;

/// One step of a plan, in the order it runs.
#[derive(Debug, Serialize)]
pub struct StepReport {
    /// Which part of the lifecycle it is (`address`, `create jail`,
    /// `exec.start`, `firewall load`, ...).
    pub kind: &'static str,
    /// What it does, as the text plan says it.
    pub action: String,
    /// What undoes it when a later step fails; null when nothing must.
    pub undo: Option<String>,
}

impl StepReport {
    pub fn all(p: &Plan, d: &Desired) -> Vec<StepReport> {
        p.steps
            .iter()
            .map(|s| StepReport {
                kind: s.action.kind(),
                action: s.action.describe(d),
                undo: s.undo.as_ref().map(|u| u.describe(d)),
            })
            .collect()
    }
}

/// The other jails a one-jail start (stop) takes along by jail.conf
/// `depend`, in the order the verb runs them (the jail itself included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependNote {
    pub verb: Verb,
    pub others: Vec<String>,
    pub order: Vec<String>,
}

/// `jnet plan JAIL [--stop]`.
pub struct JailPlan {
    pub jail: JailName,
    pub plan: Plan,
    pub desired: Desired,
    /// Set when a start (stop) of the jail would run other jails too.
    pub depend: Option<DependNote>,
}

/// One row of `jnet status`.
#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub id: Option<u32>,
    pub name: String,
    pub addresses: Vec<String>,
    pub state: String,
    pub ports: Vec<String>,
}

/// Which rows `jnet status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusFilter {
    /// Running or between states (no jail named).
    Active,
    /// Every jail of the inventory, plus running jails jnet does not manage.
    All,
    /// These jails.
    Named(Vec<JailName>),
}

/// Rows for `jnet status`: running jails from the host, joined with the
/// inventory, plus jails the inventory shows mid-transition or failed.
fn status_rows(
    running: &[RunningJail],
    inv: &Inventory,
    ports: &BTreeMap<JailName, Vec<String>>,
    only: &StatusFilter,
) -> Vec<StatusRow> {
    let mut rows: BTreeMap<String, StatusRow> = BTreeMap::new();
    for r in running {
        let name = JailName::new(&r.name).ok();
        let rec = name.as_ref().and_then(|n| inv.jails.get(n));
        rows.insert(
            r.name.clone(),
            StatusRow {
                id: (r.id != 0).then_some(r.id),
                name: r.name.clone(),
                addresses: r.addresses.iter().map(|a| a.to_string()).collect(),
                state: rec.map_or_else(|| "unmanaged".to_string(), |x| x.phase.to_string()),
                ports: name.as_ref().and_then(|n| ports.get(n)).cloned().unwrap_or_default(),
            },
        );
    }
    for (n, rec) in &inv.jails {
        let row = rows.entry(n.to_string()).or_insert_with(|| StatusRow {
            id: None,
            name: n.to_string(),
            addresses: vec![],
            state: rec.phase.to_string(),
            ports: ports.get(n).cloned().unwrap_or_default(),
        });
        if row.addresses.is_empty() {
            row.addresses = match rec.mode() {
                Mode::Inherit => vec!["inherit".to_string()],
                Mode::Dedicated => rec.addresses().map(|a| a.to_string()).collect(),
            };
        }
    }
    rows.into_values()
        .filter(|r| match only {
            StatusFilter::Named(v) => v.iter().any(|j| r.name == j.as_str()),
            StatusFilter::All => r.state != "unmanaged" || r.id.is_some(),
            // Without a jail: what is up or in between, like jls.
            StatusFilter::Active => r.id.is_some() || !matches!(r.state.as_str(), "stopped" | "defined"),
        })
        .collect()
}

/// The jail.conf(5) block that lets stock jail(8) drive a jnet jail
/// through hooks (FreeBSD syntax). `jnet` is the absolute path of the jnet
/// binary: rc(8) and service(8) run jail(8) with
/// PATH=/sbin:/bin:/usr/sbin:/usr/bin (libexec/rc/rc:50,
/// usr.sbin/service/service.sh:174, FreeBSD main 2022-07 e7646b05), where a
/// port's /usr/local/bin/jnet is not found, and jail(8) execvp's a hook
/// line without shell metacharacters with its own environment
/// (usr.sbin/jail/command.c:611-627, 782) (F6).
pub fn jail_conf_fragment(jail: &JailName, network: &JailNetwork, jnet: &std::path::Path) -> String {
    let mut out = format!("{jail} {{\n");
    // why (F15): jail(8) adds an `iface|addr` alias itself before
    // exec.prestart and removes it after exec.poststop (jail.c:92 vs 102,
    // 118 vs 128), and does so for every address without `|` too when an
    // `interface` is set, a global one included (config.c:609-615). jnet's
    // hooks add and remove the aliases here, so the block gives bare
    // addresses and no interface.
    const NOTE: &str = "is added by \"jnet hook prestart\" and removed by\n\
                 \t# \"jnet hook poststop\". jail(8) adds an alias itself before exec.prestart and\n\
                 \t# removes it after exec.poststop when the address has \"iface|\" or an \"interface\" is\n\
                 \t# set, a global one included: keep both away from this jail, or the alias is\n\
                 \t# added twice and jail(8)'s own removal fails at stop.\n";
    let own = |out: &mut String, family: &str, address: String, prefix: u8, interface: &crate::core::names::IfName| {
        out.push_str(&format!(
            "\t# {address}/{prefix} on {interface} {NOTE}\t{family}.addr = \"{address}\";\n"
        ));
    };
    match &network.inet {
        FamilyNetwork::Inherit => out.push_str("\tip4 = inherit;\n"),
        FamilyNetwork::Disable => out.push_str("\tip4 = disable;\n"),
        FamilyNetwork::Own(o) => own(&mut out, "ip4", o.address.to_string(), o.prefix, &o.interface),
    }
    // why ip6 = inherit spelled out: jail(8) leaves IPv6 disabled in a jail
    // created without `ip6` (sys/kern/kern_jail.c), while jnet's own start
    // gives an inherit jail the host's IPv6 too (os::freebsd::params).
    // Disabled is that default, so it is left unsaid.
    match &network.inet6 {
        FamilyNetwork::Inherit => out.push_str("\tip6 = inherit;\n"),
        FamilyNetwork::Disable => {}
        FamilyNetwork::Own(o) => own(&mut out, "ip6", o.address.to_string(), o.prefix, &o.interface),
    }
    let jnet = jnet.display();
    for h in ["prestart", "poststart", "prestop", "poststop"] {
        out.push_str(&format!("\texec.{h} += \"{jnet} hook {h} $name\";\n"));
    }
    out.push_str("}\n");
    out
}

impl Engine {
    fn sources(&self) -> Result<Sources<'_>> {
        Ok(Sources {
            config: &self.config,
            config_path: &self.config_path,
            profiles: &self.profiles,
            store: self.store.as_ref(),
            conf_jails: self.conf_jails()?,
        })
    }

    /// Runs `f` with a lifecycle runner over the host for `jail`'s
    /// desired state, planned from the inventory record as it is now.
    fn with_lifecycle<T>(&self, jail: &JailName, f: impl FnOnce(&Lifecycle, &Desired) -> Result<T>) -> Result<T> {
        let inv = self.store.read()?;
        let ctx = self.context(&inv)?;
        let d = desired::build(&ctx, jail)?;
        let basis = inv
            .jails
            .get(jail)
            .map(|r| r.basis())
            .ok_or_else(|| LifecycleError::NotInInventory(jail.clone()))?;
        let host = self.host()?;
        let checker = desired::port_checker(&ctx, host.as_ref(), self.store.as_ref());
        let lc = Lifecycle::new(host.as_ref(), self.store.as_ref(), checker.as_ref()).with_basis(basis);
        f(&lc, &d)
    }

    /// `jnet plan JAIL [--stop]`: what a start (stop) would do; nothing is
    /// applied.
    pub fn plan(&self, jail: &JailName, stop: bool) -> Result<JailPlan> {
        let verb = if stop { PlanVerb::Stop } else { PlanVerb::Start };
        let (plan, desired) = self.with_lifecycle(jail, |lc, d| Ok((lc.plan(verb, d)?, d.clone())))?;
        Ok(JailPlan {
            jail: jail.clone(),
            plan,
            desired,
            depend: self.depend_note(jail, stop),
        })
    }

    /// The other jails a start (stop) of `jail` runs by `depend`, or None.
    fn depend_note(&self, jail: &JailName, stop: bool) -> Option<DependNote> {
        let verb = if stop { Verb::Stop } else { Verb::Start };
        let (_, w) = self
            .sources()
            .ok()?
            .walk(verb, &Targets::Named(vec![jail.clone()]))
            .ok()?;
        let order = if stop { w.stop } else { w.start };
        let others: Vec<String> = order.iter().filter(|j| j.as_str() != jail.as_str()).cloned().collect();
        if others.is_empty() {
            return None;
        }
        Some(DependNote { verb, others, order })
    }

    /// `jnet plan JAIL JAIL... | --all [--stop]`: each jail's plan in the
    /// order the verb would run them. The host is observed once for all of
    /// them (a snapshot), as nothing is applied.
    pub fn plan_many(&self, targets: &Targets, stop: bool) -> Result<Vec<Planned>> {
        let real = self.host()?;
        let host = Snapshot::new(real.as_ref());
        self.sources()?.plan(&host, stop, targets)
    }

    /// `jnet start|stop|restart JAIL... | --all`: the walk in `depend`
    /// order; each jail's outcome is in the summary, failures included.
    pub fn run(&self, verb: Verb, targets: &Targets) -> Result<Summary> {
        let what = match targets {
            Targets::All => format!("jnet {verb} --all"),
            Targets::Named(v) => format!(
                "jnet {verb} {}",
                v.iter().map(|j| j.as_str()).collect::<Vec<_>>().join(" ")
            ),
        };
        self.require_root(&what)?;
        let src = self.sources()?;
        let host = self.host()?;
        src.run(host.as_ref(), verb, targets)
    }

    /// `jnet status [JAIL...] [--all]`.
    pub fn status(&self, only: &StatusFilter) -> Result<Vec<StatusRow>> {
        let running = self.host()?.running_jails()?;
        let inv = self.store.read()?;
        let ports = crate::engine::report::declared_ports(&self.config, &inv, &self.profiles)?;
        let rows = status_rows(&running, &inv, &ports, only);
        if let StatusFilter::Named(names) = only {
            if let Some(j) = names.iter().find(|j| !rows.iter().any(|r| r.name == j.as_str())) {
                return Err(Error::data(format!("jail {j} is neither running nor in the inventory")));
            }
        }
        Ok(rows)
    }

    /// `jnet hook PHASE JAIL`, as jail(8) calls it: the steps of that
    /// phase; returns their descriptions.
    pub fn hook(&self, phase: HookPhase, jail: &JailName) -> Result<Vec<String>> {
        self.require_root(&format!("jnet hook {jail}"))?;
        self.with_lifecycle(jail, |lc, d| {
            Ok(match lc.hook(phase, d)? {
                Outcome::Done(steps) => steps,
                Outcome::AlreadyRunning | Outcome::AlreadyStopped => vec![],
            })
        })
    }

    /// `jnet exec JAIL -- CMD...`: runs the command inside the running
    /// jail; returns its exit code.
    pub fn exec(&self, jail: &JailName, argv: &[String]) -> Result<i32> {
        self.require_root(&format!("jnet exec {jail}"))?;
        let host = self.host()?;
        let running = host.running_jails()?;
        if !running.iter().any(|r| r.name == jail.as_str() && r.id != 0) {
            return Err(Error::data(format!("jail {jail} is not running")));
        }
        Ok(host.exec_in_jail(jail, argv)?)
    }

    /// `jnet jail-conf JAIL`: the jail.conf block with jnet's hooks.
    pub fn jail_conf(&self, jail: &JailName) -> Result<String> {
        let inv = self.store.read()?;
        let rec = inv
            .jails
            .get(jail)
            .ok_or_else(|| Error::data(format!("jail {jail} is not in the inventory")))?;
        // Only the network side is needed: no rules, no checker.
        let network = desired::network(&self.config, jail, rec)?;
        let exe = std::env::current_exe().map_err(|e| {
            Error::data(format!(
                "cannot tell the path of the jnet binary for the hook lines: {e}"
            ))
        })?;
        Ok(jail_conf_fragment(jail, &network, &exe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::IfName;
    use crate::store::JailRecord;

    const HOOKS: &str = "\texec.prestart += \"/usr/local/bin/jnet hook prestart $name\";\n\
        \texec.poststart += \"/usr/local/bin/jnet hook poststart $name\";\n\
        \texec.prestop += \"/usr/local/bin/jnet hook prestop $name\";\n\
        \texec.poststop += \"/usr/local/bin/jnet hook poststop $name\";\n}\n";
    const JNET: &str = "/usr/local/bin/jnet";

    #[test]
    fn jail_conf_fragments() {
        let www = JailName::new("www").unwrap();
        assert_eq!(
            jail_conf_fragment(&www, &JailNetwork::INHERIT, JNET.as_ref()),
            format!("www {{\n\tip4 = inherit;\n\tip6 = inherit;\n{HOOKS}")
        );
        let ded = JailNetwork::inet_only(crate::os::OwnAddress {
            address: "10.0.0.5".parse().unwrap(),
            prefix: 24,
            interface: IfName::new("vtnet0").unwrap(),
            gateway: None,
        });
        let f = jail_conf_fragment(&www, &ded, JNET.as_ref());
        assert!(f.starts_with("www {\n\t# 10.0.0.5/24 on vtnet0 is added by"), "{f}");
        assert!(f.contains("\tip4.addr = \"10.0.0.5\";\n"), "{f}");
        assert!(f.ends_with(HOOKS), "{f}");
    }

    #[test]
    fn status_joins_host_and_inventory() {
        let mut inv = Inventory::default();
        let mut www = JailRecord::dedicated("10.0.0.5".parse().unwrap(), None, None);
        www.phase = crate::core::lifecycle::Phase::Running;
        inv.jails.insert(JailName::new("www").unwrap(), www);
        let mut db = JailRecord::inherit();
        db.phase = crate::core::lifecycle::Phase::Failed;
        inv.jails.insert(JailName::new("db").unwrap(), db);
        inv.jails.insert(JailName::new("idle").unwrap(), JailRecord::inherit());
        let running = [
            RunningJail {
                id: 3,
                name: "www".into(),
                addresses: vec!["10.0.0.5".parse().unwrap()],
                path: "/".into(),
            },
            RunningJail {
                id: 7,
                name: "other".into(),
                addresses: vec![],
                path: "/".into(),
            },
        ];
        let ports = BTreeMap::from([(JailName::new("www").unwrap(), vec!["tcp/80".to_string()])]);
        let rows = status_rows(&running, &inv, &ports, &StatusFilter::Active);
        let text: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{:?} {} {} {} {}",
                    r.id,
                    r.name,
                    r.addresses.join(","),
                    r.state,
                    r.ports.join(",")
                )
            })
            .collect();
        assert_eq!(
            text,
            [
                "None db inherit failed ",
                "Some(7) other  unmanaged ",
                "Some(3) www 10.0.0.5 running tcp/80",
            ]
        );
        let idle = JailName::new("idle").unwrap();
        let rows = status_rows(&running, &inv, &ports, &StatusFilter::Named(vec![idle.clone()]));
        assert_eq!((rows.len(), rows[0].state.as_str()), (1, "defined"));
        let www = JailName::new("www").unwrap();
        let rows = status_rows(&running, &inv, &ports, &StatusFilter::Named(vec![www, idle]));
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["idle", "www"]);
        // --all: every inventory jail, stopped ones too, and running others.
        let rows = status_rows(&running, &inv, &ports, &StatusFilter::All);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["db", "idle", "other", "www"]);
    }
}
