//! Handlers of the lifecycle commands: start, stop, restart, status, plan,
//! exec, hook and jail-conf. Each builds the jail's desired state from the
//! session (engine::desired), takes the system's host adapter
//! (engine::host) and the port checker, and runs the engine; output goes to
//! stdout, errors back to `main`.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::cli::args::{Format, HookPhaseArg};
use crate::cli::commands::{jail_name, Session};
use crate::cli::output::{print_json, Table};
use crate::core::names::JailName;
use crate::core::plan::{Desired, Verb};
use crate::engine::desired::{self, Context};
use crate::engine::host::system_host;
use crate::engine::lifecycle::{Engine, HookPhase, Outcome};
use crate::error::{Error, ExitStatus, Result};
use crate::os::JailNetwork;
use crate::store::{Inventory, Mode};

/// Runs `f` with an engine over the system host for `jail`'s desired state.
fn with_engine<T>(s: &Session, jail: &str, f: impl FnOnce(&Engine, &JailName, &Desired) -> Result<T>) -> Result<T> {
    let jail = jail_name(jail)?;
    let inv = s.store.read()?;
    let ctx = Context {
        config: &s.config,
        config_path: &s.config_path,
        profiles: &s.profiles,
        inventory: &inv,
        conf_jails: s.conf_jails()?,
    };
    let d = desired::build(&ctx, &jail)?;
    let basis = inv
        .jails
        .get(&jail)
        .map(|r| r.basis())
        .ok_or_else(|| crate::engine::lifecycle::LifecycleError::NotInInventory(jail.clone()))?;
    let host = system_host()?;
    let checker = desired::port_checker(&ctx, host.as_ref(), &s.store);
    let engine = Engine::new(host.as_ref(), &s.store, checker.as_ref()).with_basis(basis);
    f(&engine, &jail, &d)
}

pub fn plan(s: &Session, jail: &str, stop: bool, format: Format) -> Result<ExitStatus> {
    with_engine(s, jail, |e, j, d| {
        let p = e.plan(if stop { Verb::Stop } else { Verb::Start }, d)?;
        if format == Format::Json {
            print_json(&PlanReport {
                jail: j.to_string(),
                verb: p.verb.to_string(),
                steps: StepReport::all(&p, d),
            })?;
        } else {
            print!("{}", p.render(d));
            if let Some(note) = crate::cli::multi::depend_note(s, j, stop) {
                println!("{note}");
            }
        }
        Ok(ExitStatus::Ok)
    })
}

/// `jnet plan JAIL --format json` (schemas/plan.schema.json).
#[derive(Debug, Serialize)]
struct PlanReport {
    jail: String,
    verb: String,
    steps: Vec<StepReport>,
}

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
    pub fn all(p: &crate::core::plan::Plan, d: &Desired) -> Vec<StepReport> {
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

pub fn hook(s: &Session, phase: HookPhaseArg, jail: &str) -> Result<ExitStatus> {
    let phase = match phase {
        HookPhaseArg::Prestart => HookPhase::Prestart,
        HookPhaseArg::Poststart => HookPhase::Poststart,
        HookPhaseArg::Prestop => HookPhase::Prestop,
        HookPhaseArg::Poststop => HookPhase::Poststop,
    };
    with_engine(s, jail, |e, j, d| {
        if let Outcome::Done(steps) = e.hook(phase, d)? {
            for st in steps {
                tracing::info!(jail = %j, "{st}");
            }
        }
        Ok(ExitStatus::Ok)
    })
}

/// `jnet exec <jail> -- cmd...`: like jexec(8), the command's own exit
/// status becomes jnet's.
pub fn exec(_s: &Session, jail: &str, argv: &[String]) -> Result<ExitStatus> {
    let jail = jail_name(jail)?;
    let host = system_host()?;
    let running = host.running_jails()?;
    if !running.iter().any(|r| r.name == jail.as_str() && r.id != 0) {
        return Err(Error::data(format!("jail {jail} is not running")));
    }
    let code = host.exec_in_jail(&jail, argv)?;
    if code == 0 {
        return Ok(ExitStatus::Ok);
    }
    let _ = std::io::stdout().flush();
    // why: ExitStatus only holds jnet's own codes; a command's status is
    // passed through as is, like jexec does.
    std::process::exit(code.clamp(1, 255));
}

#[derive(Debug, Serialize)]
struct StatusRow {
    id: Option<u32>,
    name: String,
    addresses: Vec<String>,
    state: String,
    ports: Vec<String>,
}

/// Rows for `jnet status`: running jails from the host, joined with the
/// inventory, plus jails the inventory shows mid-transition or failed.
fn status_rows(
    running: &[crate::os::RunningJail],
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
            row.addresses = match (rec.mode, rec.address) {
                (Mode::Inherit, _) => vec!["inherit".to_string()],
                (Mode::Dedicated, Some(a)) => vec![a.to_string()],
                (Mode::Dedicated, None) => vec![],
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

/// Which rows `jnet status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StatusFilter {
    /// Running or between states (no jail named).
    Active,
    /// Every jail of the inventory, plus running jails jnet does not manage.
    All,
    /// These jails.
    Named(Vec<JailName>),
}

pub fn status(s: &Session, jails: &[String], all: bool, format: Format) -> Result<ExitStatus> {
    let names = jails.iter().map(|j| jail_name(j)).collect::<Result<Vec<_>>>()?;
    let only = match (all, names.is_empty()) {
        (true, _) => StatusFilter::All,
        (false, true) => StatusFilter::Active,
        (false, false) => StatusFilter::Named(names.clone()),
    };
    let host = system_host()?;
    let running = host.running_jails()?;
    let inv = s.store.read()?;
    let ports = crate::engine::report::declared_ports(&s.config, &inv, &s.profiles)?;
    let rows = status_rows(&running, &inv, &ports, &only);
    if let Some(j) = names.iter().find(|j| !rows.iter().any(|r| r.name == j.as_str())) {
        return Err(Error::data(format!("jail {j} is neither running nor in the inventory")));
    }
    if format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            jails: &'a [StatusRow],
        }
        return print_json(&Out { jails: &rows });
    }
    let mut t = Table::new(&["JID", "NAME", "ADDRESS", "STATE", "PORTS"]);
    for r in &rows {
        t.row(vec![
            r.id.map_or_else(|| "-".to_string(), |i| i.to_string()),
            r.name.clone(),
            r.addresses.join(","),
            r.state.clone(),
            r.ports.join(","),
        ]);
    }
    t.print();
    Ok(ExitStatus::Ok)
}

/// The jail.conf(5) fragment for `d` (FreeBSD syntax).
/// The jail.conf block that lets stock jail(8) drive a jnet jail through
/// hooks. `jnet` is the absolute path of the jnet binary: rc(8) and
/// service(8) run jail(8) with PATH=/sbin:/bin:/usr/sbin:/usr/bin
/// (libexec/rc/rc:50, usr.sbin/service/service.sh:174, FreeBSD main 2022-07
/// e7646b05), where a port's /usr/local/bin/jnet is not found, and jail(8)
/// execvp's a hook line without shell metacharacters with its own
/// environment (usr.sbin/jail/command.c:611-627, 782) (F6).
pub fn jail_conf_fragment(d: &Desired, jnet: &std::path::Path) -> String {
    let jail = d.jail();
    let mut out = format!("{jail} {{\n");
    match &d.spec.network {
        JailNetwork::Inherit => out.push_str("\tip4 = inherit;\n"),
        JailNetwork::Dedicated {
            address,
            prefix,
            interface,
            ..
        } => {
            // why (F15): jail(8) adds an `iface|addr` alias itself before
            // exec.prestart and removes it after exec.poststop (jail.c:92
            // vs 102, 118 vs 128), and does so for every address without
            // `|` too when an `interface` is set, a global one included
            // (config.c:609-615). jnet's hooks add and remove the alias
            // here, so the block gives a bare address and no interface.
            out.push_str(&format!(
                "\t# {address}/{prefix} on {interface} is added by \"jnet hook prestart\" and removed by\n\
                 \t# \"jnet hook poststop\". jail(8) adds an alias itself before exec.prestart and\n\
                 \t# removes it after exec.poststop when ip4.addr has \"iface|\" or an \"interface\" is\n\
                 \t# set, a global one included: keep both away from this jail, or the alias is\n\
                 \t# added twice and jail(8)'s own removal fails at stop.\n\
                 \tip4.addr = \"{address}\";\n"
            ));
        }
    }
    let jnet = jnet.display();
    for h in ["prestart", "poststart", "prestop", "poststop"] {
        out.push_str(&format!("\texec.{h} += \"{jnet} hook {h} $name\";\n"));
    }
    out.push_str("}\n");
    out
}

pub fn jail_conf(s: &Session, jail: &str) -> Result<ExitStatus> {
    let jail = jail_name(jail)?;
    let inv = s.store.read()?;
    let rec = inv
        .jails
        .get(&jail)
        .ok_or_else(|| Error::data(format!("jail {jail} is not in the inventory")))?;
    // Only the network side is needed: no rules, no checker.
    let network = desired::network(&s.config, &jail, rec)?;
    let d = Desired {
        spec: crate::os::JailSpec {
            name: jail.clone(),
            path: "/".into(),
            hostname: None,
            network,
            params: vec![],
        },
        exec: Default::default(),
        rules: None,
        port_check: false,
        anchor_root: s.config.host.anchor.clone(),
        stop_timeout: crate::core::plan::DEFAULT_STOP_TIMEOUT,
        unsupported: vec![],
        persist: false,
    };
    let exe = std::env::current_exe().map_err(|e| {
        Error::data(format!(
            "cannot tell the path of the jnet binary for the hook lines: {e}"
        ))
    })?;
    print!("{}", jail_conf_fragment(&d, &exe));
    Ok(ExitStatus::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::IfName;
    use crate::os::RunningJail;
    use crate::store::JailRecord;

    fn d(net: JailNetwork) -> Desired {
        Desired {
            spec: crate::os::JailSpec {
                name: JailName::new("www").unwrap(),
                path: "/".into(),
                hostname: None,
                network: net,
                params: vec![],
            },
            exec: Default::default(),
            rules: None,
            port_check: false,
            anchor_root: "jnet".into(),
            stop_timeout: crate::core::plan::DEFAULT_STOP_TIMEOUT,
            unsupported: vec![],
            persist: false,
        }
    }

    const HOOKS: &str = "\texec.prestart += \"/usr/local/bin/jnet hook prestart $name\";\n\
        \texec.poststart += \"/usr/local/bin/jnet hook poststart $name\";\n\
        \texec.prestop += \"/usr/local/bin/jnet hook prestop $name\";\n\
        \texec.poststop += \"/usr/local/bin/jnet hook poststop $name\";\n}\n";
    const JNET: &str = "/usr/local/bin/jnet";

    #[test]
    fn jail_conf_fragments() {
        assert_eq!(
            jail_conf_fragment(&d(JailNetwork::Inherit), JNET.as_ref()),
            format!("www {{\n\tip4 = inherit;\n{HOOKS}")
        );
        let ded = JailNetwork::Dedicated {
            address: "10.0.0.5".parse().unwrap(),
            prefix: 24,
            interface: IfName::new("vtnet0").unwrap(),
            gateway: None,
        };
        let f = jail_conf_fragment(&d(ded), JNET.as_ref());
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
