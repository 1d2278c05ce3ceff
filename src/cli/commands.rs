//! Command handlers: turn raw arguments into validated requests, call the
//! engine, print results (tables or JSON on stdout). Errors are returned to
//! `main`, which prints them on stderr and picks the exit code.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::cli::args::{AssignArgs, Cli, Command, Format};
use crate::cli::output::{print_json, Table};
use crate::core::config::Config;
use crate::core::names::{IfName, JailName, PoolName};
use crate::engine::addresses::{self, AssignRequest, Imported, Observed, Outcome};
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
}

impl Session {
    pub fn open(cli: &Cli) -> Result<Session> {
        let config_path = cli.config.clone().unwrap_or_else(sources::default_config_path);
        let config = sources::load_config(&config_path)?;
        let state = sources::state_dir(cli.state_dir.as_deref(), &config, &config_path);
        if !(cli.lock_timeout.is_finite() && cli.lock_timeout >= 0.0) {
            return Err(Error::data(format!("--lock-timeout {}: must be a number of seconds >= 0", cli.lock_timeout)));
        }
        let store = Store::new(state, Duration::from_secs_f64(cli.lock_timeout));
        let profiles = Profiles::new(&sources::config_dir(&config_path));
        Ok(Session { config_path, config, store, profiles, conf_jails: OnceCell::new() })
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

    fn ports_of(&self) -> Result<BTreeMap<JailName, Vec<String>>> {
        report::declared_ports(&self.config, &self.profiles)
    }
}

/// Runs one parsed command; returns the exit status for success paths that
/// are not plain 0 (e.g. `check` with findings).
pub fn run(cli: &Cli) -> Result<ExitStatus> {
    let s = Session::open(cli)?;
    match &cli.command {
        Command::Assign(a) => assign(&s, a),
        Command::Release { jail } => release(&s, jail),
        Command::List(f) => list(&s, f.format),
        Command::Pools(f) => pools(&s, f.format),
        Command::Inventory(f) => inventory(&s, f.format),
        Command::Import => import(&s),
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
    let observed = Observed { jail_conf: s.conf_jails()?, host: &host };
    match addresses::assign(&s.config, &s.store, &jail, &req, &observed)? {
        Outcome::Unchanged(r) => println!("{jail}: already {}; nothing changed", describe(&r)),
        Outcome::Changed { record, previous: Some(p) } => {
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

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn list(s: &Session, format: Format) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let ports = s.ports_of()?;
    let rows = report::assignments(&inv, &|n| ports.get(n).cloned().unwrap_or_default());
    if format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            jails: &'a [report::Assignment],
        }
        return print_json(&Out { jails: &rows });
    }
    let mut t = Table::new(&["JAIL", "MODE", "ADDRESS", "POOL", "INTERFACE", "STATE", "PORTS", "EXPOSE"]);
    for r in &rows {
        t.row(vec![
            r.jail.clone(),
            r.mode.as_str().to_string(),
            opt(&r.address),
            opt(&r.pool),
            opt(&r.interface),
            r.phase.to_string(),
            r.ports.join(","),
            r.expose.join(","),
        ]);
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
    let mut t = Table::new(&["POOL", "NETWORK", "INTERFACE", "SIZE", "USED", "RESERVED", "FREE", "USE%", "NAT"]);
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

fn pools(s: &Session, format: Format) -> Result<ExitStatus> {
    let (rows, _) = pool_rows(s)?;
    if format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            pools: &'a [report::PoolReport],
        }
        return print_json(&Out { pools: &rows });
    }
    print_pools(&rows);
    Ok(ExitStatus::Ok)
}

fn inventory(s: &Session, format: Format) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let host = os::stack_interface_addresses();
    let ports = s.ports_of()?;
    let rep = report::InventoryReport {
        pools: report::pools(&s.config, &inv, s.conf_jails()?, &host),
        assignments: report::assignments(&inv, &|n| ports.get(n).cloned().unwrap_or_default()),
        drift: report::drift(&s.config, &inv, &host),
    };
    if format == Format::Json {
        return print_json(&rep);
    }
    print_pools(&rep.pools);
    println!();
    let mut t = Table::new(&["JAIL", "MODE", "ADDRESS", "POOL", "INTERFACE", "STATE"]);
    for r in &rep.assignments {
        t.row(vec![
            r.jail.clone(),
            r.mode.as_str().to_string(),
            opt(&r.address),
            opt(&r.pool),
            opt(&r.interface),
            r.phase.to_string(),
        ]);
    }
    t.print();
    if rep.drift.is_empty() {
        println!("\nno drift: the inventory matches the host");
    } else {
        println!("\ndrift:");
        for d in &rep.drift {
            println!("  {}: {}", if d.kind == report::DriftKind::Missing { "missing" } else { "stray" }, d.message);
        }
    }
    Ok(ExitStatus::Ok)
}

fn import(s: &Session) -> Result<ExitStatus> {
    let Some(path) = sources::jail_conf_path(&s.config, &s.config_path) else {
        return Err(Error::config(format!("{}: host.jail_conf is not set; nothing to import", s.config.file)));
    };
    let jails = s.conf_jails()?;
    let res = addresses::import(&s.config, &s.store, jails)?;
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
