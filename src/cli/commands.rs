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
use crate::engine::multi::Verb;
use crate::engine::report;
use crate::engine::sources::{self, Profiles};
use crate::error::{Error, ExitStatus, Result};
use crate::os::{self, IfAddr};
use crate::store::postgres::BackendKind;
use crate::store::{Backend, FleetStore, JailRecord, Mode, Store};

/// Everything a command may need, loaded lazily where it costs.
pub struct Session {
    pub config_path: PathBuf,
    pub config: Config,
    /// The file store, or the fleet backend when `[store]` says postgres.
    pub store: Box<dyn Backend>,
    pub profiles: Profiles,
    /// `-v` count: quiet verbs (`--all`) print on success only when > 0.
    pub verbose: u8,
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
        let local = Store::new(state, lock_timeout);
        let store: Box<dyn Backend> = match config.store.backend {
            BackendKind::File => Box::new(local),
            BackendKind::Postgres => Box::new(FleetStore::new(local, config.store.clone(), config.pools.clone())),
        };
        let profiles = Profiles::new(&sources::config_dir(&config_path));
        Ok(Session {
            config_path,
            config,
            store,
            profiles,
            verbose: cli.verbose,
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

    /// This host's id: `[store] host_id`, else the host name.
    pub fn host_id(&self) -> String {
        if !self.config.store.host_id.is_empty() {
            return self.config.store.host_id.clone();
        }
        #[cfg(any(target_os = "linux", target_os = "freebsd"))]
        if let Ok(Ok(h)) = nix::unistd::gethostname().map(|h| h.into_string()) {
            return h;
        }
        "localhost".to_string()
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
        Command::Release { jail, host: None } => match jail {
            Some(j) => release(&s, j),
            None => Err(Error::data(
                "release needs a jail (or --host HOST to reclaim a dead host's leases)",
            )),
        },
        Command::Release { jail, host: Some(h) } => crate::cli::fleet::release_host(&s, h, jail.as_deref()),
        Command::Store(c) => crate::cli::fleet::store(&s, c),
        Command::List(f) => list(&s, f.format),
        Command::Pools(f) => pools(&s, f.format, f.host.as_deref()),
        Command::Inventory(f) => inventory(&s, f.format, f.host.as_deref()),
        Command::Import => import(&s),
        Command::Check(a) => check(&s, a),
        Command::Expose(a) => crate::cli::firewall::expose(&s, a),
        Command::Unexpose { jail, spec } => crate::cli::firewall::unexpose(&s, jail, spec),
        Command::Pf(c) => crate::cli::firewall::pf(&s, c),
        Command::Start(t) => crate::cli::multi::lifecycle(&s, Verb::Start, t),
        Command::Stop(t) => crate::cli::multi::lifecycle(&s, Verb::Stop, t),
        Command::Restart(t) => crate::cli::multi::lifecycle(&s, Verb::Restart, t),
        Command::Status { jails, all, format } => lifecycle::status(&s, jails, *all, format.format),
        Command::Plan {
            jails,
            all: false,
            stop,
            format,
        } if jails.len() == 1 => lifecycle::plan(&s, &jails[0], *stop, format.format),
        Command::Plan {
            jails,
            all: false,
            stop: false,
            format,
        } if jails.is_empty() => crate::cli::plan_all::plan_all(&s, format.format),
        Command::Plan {
            jails,
            all: false,
            stop: true,
            ..
        } if jails.is_empty() => Err(Error::data("plan --stop needs jails or --all")),
        Command::Plan {
            jails,
            all,
            stop,
            format,
        } => crate::cli::multi::plan(&s, jails, *all, *stop, format.format),
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
        opt(&r.phase),
    ]
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn list(s: &Session, format: Format) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let ports = s.ports_of(&inv)?;
    let mut origins = report::exposures(&s.config, &inv, &s.profiles)?;
    let rows: Vec<ListRow> = report::assignments(&inv, &|n| ports.get(n).cloned().unwrap_or_default(), &s.host_id())
        .into_iter()
        .map(|a| ListRow {
            exposures: JailName::new(&a.jail)
                .ok()
                .and_then(|n| origins.remove(&n))
                .unwrap_or_default(),
            a,
        })
        .collect();
    if format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            jails: &'a [ListRow],
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
        "EXPOSE (ORIGIN)",
    ]);
    for r in &rows {
        let mut cells = assignment_cells(&r.a);
        let expose: Vec<String> = r.exposures.iter().map(report::ExposeRow::cell).collect();
        cells.extend([r.a.ports.join(","), expose.join(",")]);
        t.row(cells);
    }
    t.print();
    Ok(ExitStatus::Ok)
}

/// One row of `jnet list` (schemas/list.schema.json): the assignment plus
/// every exposure with its origin (`expose` keeps only `jnet expose`'s).
#[derive(Serialize)]
struct ListRow {
    #[serde(flatten)]
    a: report::Assignment,
    exposures: Vec<report::ExposeRow>,
}

/// Pool usage: this host's inventory, plus with shared pools every other
/// host's leases (and the per-host counts).
fn pool_rows(
    s: &Session,
    inv: &crate::store::Inventory,
    fleet: Option<&crate::cli::fleet::FleetData>,
    only: Option<&str>,
) -> Result<(Vec<report::PoolReport>, Vec<IfAddr>)> {
    let host = os::stack_interface_addresses();
    let mut held = inv.taken();
    if let Some(d) = fleet {
        for l in &d.leases {
            held.insert_addr(l.address);
        }
    }
    let mut rows = report::pools_held(&s.config, &held, s.conf_jails()?, &host);
    if let Some(d) = fleet {
        crate::cli::fleet::add_pool_hosts(&mut rows, d, only);
    }
    Ok((rows, host))
}

fn check_only(s: &Session, only: Option<&str>) -> Result<()> {
    if let Some(h) = only {
        crate::cli::fleet::check_host(h)?;
        if s.store.fleet().is_none() && h != s.host_id() {
            return Err(Error::data(format!(
                "--host {h}: this host ({}) uses the file store and knows only its own jails",
                s.host_id()
            )));
        }
    }
    Ok(())
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

fn pools(s: &Session, format: PoolsFormat, only: Option<&str>) -> Result<ExitStatus> {
    check_only(s, only)?;
    let inv = s.store.read()?;
    let fleet = crate::cli::fleet::data(s)?;
    let (rows, host) = pool_rows(s, &inv, fleet.as_ref(), only)?;
    let hosts = fleet.as_ref().map(|d| crate::cli::fleet::host_reports(s, d, only));
    match format {
        PoolsFormat::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                pools: &'a [report::PoolReport],
                #[serde(skip_serializing_if = "Option::is_none")]
                hosts: Option<&'a [report::HostReport]>,
            }
            print_json(&Out {
                pools: &rows,
                hosts: hosts.as_deref(),
            })?;
        }
        PoolsFormat::Prometheus => {
            // why the same sources as `inventory`: the drift gauges must
            // agree with `jnet inventory --format json`.
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
        PoolsFormat::Table => {
            print_pools(&rows);
            if let Some(h) = &hosts {
                println!();
                crate::cli::fleet::print_hosts(h);
            }
        }
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

fn inventory(s: &Session, format: Format, only: Option<&str>) -> Result<ExitStatus> {
    check_only(s, only)?;
    let inv = s.store.read()?;
    let fleet = crate::cli::fleet::data(s)?;
    let (pools, host) = pool_rows(s, &inv, fleet.as_ref(), only)?;
    let ports = s.ports_of(&inv)?;
    let me = s.host_id();
    let mut assignments = report::assignments(&inv, &|n| ports.get(n).cloned().unwrap_or_default(), &me);
    if let Some(d) = &fleet {
        assignments.extend(crate::cli::fleet::other_assignments(s, d, &me));
    }
    assignments.retain(|a| only.is_none_or(|h| h == a.host));
    let rep = report::InventoryReport {
        pools,
        assignments,
        // why this host only: drift compares records with this host's
        // interfaces; other hosts' jails are not here to compare.
        drift: report::drift(&s.config, &inv, &[host, jail_stack_addresses()].concat()),
        hosts: fleet.as_ref().map(|d| crate::cli::fleet::host_reports(s, d, only)),
    };
    if format == Format::Json {
        return print_json(&rep);
    }
    print_pools(&rep.pools);
    println!();
    let fleet_mode = rep.hosts.is_some();
    let mut head = vec!["JAIL", "MODE", "ADDRESS", "POOL", "INTERFACE", "STATE"];
    if fleet_mode {
        head.push("HOST");
    }
    let mut t = Table::new(&head);
    for r in &rep.assignments {
        let mut cells = assignment_cells(r);
        if fleet_mode {
            cells.push(r.host.clone());
        }
        t.row(cells);
    }
    t.print();
    if let Some(h) = &rep.hosts {
        println!();
        crate::cli::fleet::print_hosts(h);
    }
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
    // why `--all` is naming none: the check analyses every jail together.
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
