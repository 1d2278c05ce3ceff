//! Command handlers: turn raw arguments into validated requests, call the
//! engine, print results (tables or JSON on stdout). Errors are returned to
//! `main`, which prints them on stderr and picks the exit code.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::cli::args::{AssignArgs, CheckArgs, Cli, Command, Format, PoolsFormat};
use crate::cli::lifecycle;
use crate::cli::output::{print_json, Table};
use crate::core::config::Config;
use crate::core::names::{IfName, JailName, PoolName};
use crate::engine::addresses::{self, AssignRequest, Imported, Observed, Outcome};
use crate::engine::facts_cache;
use crate::engine::jails_conf::{self, ConfJail};
use crate::engine::report;
use crate::engine::sources::{self, Profiles};
use crate::error::{Error, ExitStatus, Result};
use crate::os::{self, IfAddr};
use crate::store::{JailRecord, Mode, Store};

/// Everything a command may need, loaded lazily where it costs.
pub struct Session {
    pub config_path: PathBuf,
    pub config: Config,
    pub store: Store,
    pub profiles: Profiles,
    conf_jails: OnceCell<Vec<ConfJail>>,
    conf_addrs: OnceCell<jails_conf::ConfAddrs>,
    /// The facts cache, for the commands that use it (`assign`); its
    /// config has no jails.
    facts: Option<facts_cache::Session>,
}

impl Session {
    pub fn open(cli: &Cli) -> Result<Session> {
        let config_path = cli.config.clone().unwrap_or_else(sources::default_config_path);
        // why: `assign` reads neither the config's jails nor jail.conf
        // beyond its addresses; at 10,000 declared jails parsing them was
        // all of its time (issue 10). See engine::facts_cache.
        let (config, facts) = if matches!(cli.command, Command::Assign(_)) {
            facts_cache::open_config(&config_path, cli.state_dir.as_deref())?
        } else {
            (sources::load_config(&config_path)?, None)
        };
        let state = sources::state_dir(cli.state_dir.as_deref(), &config, &config_path);
        // why try_from: `from_secs_f64` panics on values it cannot hold
        // (1e30, 2^64), which is_finite lets through (H13).
        let lock_timeout = Duration::try_from_secs_f64(cli.lock_timeout).map_err(|_| {
            Error::data(format!(
                "--lock-timeout {}: must be a number of seconds >= 0 and below 2^64",
                cli.lock_timeout
            ))
        })?;
        let store = Store::new(state, lock_timeout);
        let profiles = Profiles::new(&sources::config_dir(&config_path));
        Ok(Session {
            config_path,
            config,
            store,
            profiles,
            conf_jails: OnceCell::new(),
            conf_addrs: OnceCell::new(),
            facts,
        })
    }

    /// Jails of jail.conf (empty when `host.jail_conf` is not set).
    pub fn conf_jails(&self) -> Result<&[ConfJail]> {
        if let Some(v) = self.conf_jails.get() {
            return Ok(v);
        }
        let v = match sources::jail_conf_path(&self.config, &self.config_path) {
            Some(p) => jails_conf::read(&p)?,
            None => vec![],
        };
        Ok(self.conf_jails.get_or_init(|| v))
    }

    /// jail.conf's static addresses (see [`Session::conf_jails`]).
    pub fn conf_addrs(&self) -> Result<&jails_conf::ConfAddrs> {
        if let Some(v) = self.conf_addrs.get() {
            return Ok(v);
        }
        let v = match &self.facts {
            Some(f) => {
                let (addrs, jails) =
                    f.conf_addrs(sources::jail_conf_path(&self.config, &self.config_path).as_deref())?;
                if let Some(j) = jails {
                    let _ = self.conf_jails.set(j);
                }
                addrs
            }
            None => jails_conf::ConfAddrs::from_jails(self.conf_jails()?),
        };
        Ok(self.conf_addrs.get_or_init(|| v))
    }

    fn ports_of(&self, inv: &crate::store::Inventory) -> Result<BTreeMap<JailName, Vec<String>>> {
        report::declared_ports(&self.config, inv, &self.profiles)
    }
}

/// Runs one parsed command; returns the exit status for success paths that
/// are not plain 0 (e.g. `check` with findings).
pub fn run(cli: &Cli) -> Result<ExitStatus> {
    // why: completions are generated at package build time, where no jnet.toml exists.
    if let Command::Completions { shell } = &cli.command {
        return crate::cli::completions::print(*shell).map(|()| ExitStatus::Ok);
    }
    let s = Session::open(cli)?;
    match &cli.command {
        Command::Assign(a) => assign(&s, a),
        Command::Release { jail } => release(&s, jail),
        Command::List(f) => list(&s, f.format),
        Command::Pools(f) => pools(&s, f.format),
        Command::Inventory(f) => inventory(&s, f.format),
        Command::Import => import(&s),
        Command::Check(a) => check(&s, a),
        Command::Expose(a) => crate::cli::firewall::expose(&s, a),
        Command::Unexpose { jail, spec } => crate::cli::firewall::unexpose(&s, jail, spec),
        Command::Pf(c) => crate::cli::firewall::pf(&s, c),
        Command::Start { jail } => require_root(&format!("jnet start {jail}")).and_then(|_| lifecycle::start(&s, jail)),
        Command::Stop { jail } => require_root(&format!("jnet stop {jail}")).and_then(|_| lifecycle::stop(&s, jail)),
        Command::Restart { jail } => {
            require_root(&format!("jnet restart {jail}")).and_then(|_| lifecycle::restart(&s, jail))
        }
        Command::Status { jail, format } => lifecycle::status(&s, jail.as_deref(), format.format),
        Command::Plan {
            jail: Some(jail),
            stop,
            format,
        } => lifecycle::plan(&s, jail, *stop, format.format),
        Command::Plan {
            jail: None,
            stop: false,
            format,
        } => crate::cli::plan_all::plan_all(&s, format.format),
        Command::Plan { jail: None, stop: true, .. } => Err(Error::data("plan --stop needs a jail")),
        Command::Exec { jail, argv } => {
            require_root(&format!("jnet exec {jail}")).and_then(|_| lifecycle::exec(&s, jail, argv))
        }
        Command::Hook { phase, jail } => {
            require_root(&format!("jnet hook {jail}")).and_then(|_| lifecycle::hook(&s, *phase, jail))
        }
        Command::JailConf { jail } => lifecycle::jail_conf(&s, jail),
        Command::Completions { shell } => crate::cli::completions::print(*shell).map(|()| ExitStatus::Ok),
    }
}

pub fn jail_name(s: &str) -> Result<JailName> {
    JailName::new(s).map_err(|e| Error::data(e.to_string()))
}

fn describe(r: &JailRecord) -> String {
    match r.mode {
        Mode::Inherit => "inherit (host addresses)".to_string(),
        Mode::Dedicated => {
            let mut s = r.address.map(|a| a.to_string()).unwrap_or_default();
            if let Some(p) = &r.pool {
                s.push_str(&format!(" from pool {p}"));
            }
            if let Some(i) = &r.interface {
                s.push_str(&format!(" on {i}"));
            }
            s
        }
    }
}

fn assign(s: &Session, a: &AssignArgs) -> Result<ExitStatus> {
    let jail = jail_name(&a.jail)?;
    let req = match (&a.address, &a.pool, a.inherit) {
        (Some(addr), None, false) => {
            let address: Ipv4Addr = addr
                .parse()
                .map_err(|_| Error::data(format!("{addr:?} is not an IPv4 address (expected a.b.c.d)")))?;
            if address.is_unspecified() || address.is_broadcast() || address.is_multicast() || address.is_loopback() {
                return Err(Error::data(format!("{address} cannot be a jail address")));
            }
            let interface = match &a.interface {
                Some(i) => Some(IfName::new(i).map_err(|e| Error::data(e.to_string()))?),
                None => None,
            };
            AssignRequest::Address { address, interface }
        }
        (None, Some(p), false) => AssignRequest::Pool(PoolName::new(p).map_err(|e| Error::data(e.to_string()))?),
        (None, None, true) => AssignRequest::Inherit,
        _ => return Err(Error::data("give exactly one of <ADDRESS>, --pool or --inherit")),
    };
    let host: Vec<IfAddr> = match req {
        AssignRequest::Inherit => vec![],
        _ => os::stack_interface_addresses(),
    };
    let observed = Observed {
        jail_conf: s.conf_addrs()?,
        host: &host,
    };
    match addresses::assign(&s.config, &s.store, &jail, &req, &observed)? {
        Outcome::Unchanged(r) => println!("{jail}: already {}; nothing changed", describe(&r)),
        Outcome::Changed {
            record,
            previous: Some(p),
        } => {
            println!("{jail}: {} (was {})", describe(&record), describe(&p))
        }
        Outcome::Changed { record, previous: None } => println!("{jail}: {}", describe(&record)),
    }
    Ok(ExitStatus::Ok)
}

fn release(s: &Session, jail: &str) -> Result<ExitStatus> {
    let jail = jail_name(jail)?;
    match addresses::release(&s.store, &jail)? {
        Some(r) => println!("{jail}: released {}", describe(&r)),
        None => println!("{jail}: not in the inventory; nothing changed"),
    }
    Ok(ExitStatus::Ok)
}

/// JAIL MODE ADDRESS POOL INTERFACE STATE cells of an assignment row.
fn assignment_cells(r: &report::Assignment) -> Vec<String> {
    vec![
        r.jail.clone(),
        r.mode.as_str().to_string(),
        opt(&r.address),
        opt(&r.pool),
        opt(&r.interface),
        r.phase.to_string(),
    ]
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn list(s: &Session, format: Format) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let ports = s.ports_of(&inv)?;
    let rows = report::assignments(&inv, &|n| ports.get(n).cloned().unwrap_or_default());
    if format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            jails: &'a [report::Assignment],
        }
        return print_json(&Out { jails: &rows });
    }
    let mut t = Table::new(&[
        "JAIL",
        "MODE",
        "ADDRESS",
        "POOL",
        "INTERFACE",
        "STATE",
        "PORTS",
        "EXPOSE",
    ]);
    for r in &rows {
        let mut cells = assignment_cells(r);
        cells.extend([r.ports.join(","), r.expose.join(",")]);
        t.row(cells);
    }
    t.print();
    Ok(ExitStatus::Ok)
}

fn pool_rows(s: &Session) -> Result<(Vec<report::PoolReport>, Vec<IfAddr>)> {
    let inv = s.store.read()?;
    let host = os::stack_interface_addresses();
    Ok((report::pools(&s.config, &inv, s.conf_jails()?, &host), host))
}

fn print_pools(rows: &[report::PoolReport]) {
    let mut t = Table::new(&[
        "POOL",
        "NETWORK",
        "INTERFACE",
        "SIZE",
        "USED",
        "RESERVED",
        "FREE",
        "USE%",
        "NAT",
    ]);
    for p in rows {
        t.row(vec![
            p.name.clone(),
            p.network.clone(),
            p.interface.clone(),
            p.size.to_string(),
            p.used.to_string(),
            p.reserved.to_string(),
            p.free.to_string(),
            format!("{:.1}", p.utilisation),
            if p.nat { "yes" } else { "no" }.to_string(),
        ]);
    }
    t.print();
}

fn pools(s: &Session, format: PoolsFormat) -> Result<ExitStatus> {
    let (rows, host) = pool_rows(s)?;
    match format {
        PoolsFormat::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                pools: &'a [report::PoolReport],
            }
            print_json(&Out { pools: &rows })?;
        }
        PoolsFormat::Prometheus => {
            // why the same sources as `inventory`: the drift gauges must
            // agree with `jnet inventory --format json`.
            let inv = s.store.read()?;
            let phases: Vec<_> = inv.jails.values().map(|r| r.phase).collect();
            let drift = report::drift(&s.config, &inv, &[host, jail_stack_addresses()].concat());
            print!(
                "{}",
                crate::cli::metrics::render(&crate::cli::metrics::Input {
                    pools: &rows,
                    phases: &phases,
                    drift: &drift,
                })
            );
        }
        PoolsFormat::Table => print_pools(&rows),
    }
    Ok(ExitStatus::Ok)
}

/// Addresses inside running jails' own network stacks, as `jail:<name>`
/// (on Linux a dedicated jail's address lives in its namespace, not on a
/// host interface, so without these every running jail would look like
/// missing drift). Empty when they cannot be read, e.g. without root.
fn jail_stack_addresses() -> Vec<IfAddr> {
    let running = crate::engine::host::system_host().and_then(|h| Ok(h.running_jails()?));
    match running {
        Ok(jails) => jails
            .into_iter()
            .flat_map(|j| {
                let interface = format!("jail:{}", j.name);
                j.addresses.into_iter().map(move |address| IfAddr {
                    interface: interface.clone(),
                    address,
                    prefix: if address.is_ipv4() { 32 } else { 128 },
                })
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "addresses inside running jails not read");
            vec![]
        }
    }
}

fn inventory(s: &Session, format: Format) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let host = os::stack_interface_addresses();
    let ports = s.ports_of(&inv)?;
    let rep = report::InventoryReport {
        pools: report::pools(&s.config, &inv, s.conf_jails()?, &host),
        assignments: report::assignments(&inv, &|n| ports.get(n).cloned().unwrap_or_default()),
        drift: report::drift(&s.config, &inv, &[host, jail_stack_addresses()].concat()),
    };
    if format == Format::Json {
        return print_json(&rep);
    }
    print_pools(&rep.pools);
    println!();
    let mut t = Table::new(&["JAIL", "MODE", "ADDRESS", "POOL", "INTERFACE", "STATE"]);
    for r in &rep.assignments {
        t.row(assignment_cells(r));
    }
    t.print();
    if rep.drift.is_empty() {
        println!("\nno drift: the inventory matches the host");
    } else {
        println!("\ndrift:");
        for d in &rep.drift {
            println!(
                "  {}: {}",
                if d.kind == report::DriftKind::Missing {
                    "missing"
                } else {
                    "stray"
                },
                d.message
            );
        }
    }
    Ok(ExitStatus::Ok)
}

fn import(s: &Session) -> Result<ExitStatus> {
    let Some(path) = sources::jail_conf_path(&s.config, &s.config_path) else {
        return Err(Error::config(format!(
            "{}: host.jail_conf is not set; nothing to import",
            s.config.file
        )));
    };
    let jails = s.conf_jails()?;
    let host = os::stack_interface_addresses();
    let conf = jails_conf::ConfAddrs::from_jails(jails);
    let observed = Observed {
        jail_conf: &conf,
        host: &host,
    };
    let res = addresses::import(&s.config, &s.store, jails, &observed)?;
    let (mut added, mut updated, mut same) = (0, 0, 0);
    for r in &res {
        match r {
            Imported::Added(n, rec) => {
                added += 1;
                println!("{n}: added, {}", describe(rec));
            }
            Imported::Updated(n, rec) => {
                updated += 1;
                println!("{n}: updated, {}", describe(rec));
            }
            Imported::Unchanged(_) => same += 1,
            Imported::Skipped(n, why) => println!("{n}: skipped ({why})"),
        }
    }
    println!("{}: {added} added, {updated} updated, {same} unchanged", path.display());
    Ok(ExitStatus::Ok)
}

/// The port check for `jails` (all when empty); prints the report and
/// returns 0 when clean, 1 on conflicts.
pub fn check_jails(s: &Session, jails: &[JailName], strict: bool, format: Format) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let views = crate::engine::jails::views(&s.config, &inv, &s.profiles)?;
    for j in jails {
        if views.get(j).is_none_or(|v| v.record.is_none()) {
            return Err(Error::data(format!(
                "jail {j} has no address in the inventory; assign one first (jnet assign {j} --inherit | --pool P | ADDRESS)"
            )));
        }
    }
    let host = crate::engine::host::system_host()?;
    let out = crate::engine::portcheck::run(host.as_ref(), &s.config, &views, jails)?;
    for n in &out.notes {
        eprintln!("jnet: note: {}", crate::cli::output::printable(n));
    }
    if format == Format::Json {
        print_json(&out.report)?;
    } else {
        for c in &out.report.conflicts {
            let sev = match c.severity {
                crate::core::check::Severity::Error => "error",
                crate::core::check::Severity::Warning => "warning",
            };
            println!("{sev}: {}", crate::cli::output::printable(&c.message));
        }
        let checked = if jails.is_empty() {
            views.values().filter(|v| v.record.is_some()).count()
        } else {
            jails.len()
        };
        println!(
            "{} error(s), {} warning(s) in {checked} jail(s) checked",
            out.report.errors(),
            out.report.warnings()
        );
    }
    Ok(out.report.exit_status(strict))
}

fn check(s: &Session, a: &CheckArgs) -> Result<ExitStatus> {
    let jails = a.jails.iter().map(|j| jail_name(j)).collect::<Result<Vec<_>>>()?;
    check_jails(s, &jails, a.strict, a.format)
}

/// Refuses early, with exit 77, a command that changes the host when jnet
/// is not root, instead of failing halfway in a tool or syscall.
pub fn require_root(what: &str) -> Result<()> {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Error::NoPerm(what.to_string()));
    }
    Ok(())
}
