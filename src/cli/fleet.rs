//! The CLI's part of shared pools (issue 11): other hosts' leases and the
//! hosts' liveness in `jnet inventory` / `jnet pools`, the operator's
//! reclaim (`jnet release --host H [JAIL]`) and `jnet store migrate|touch`.
//! With the file backend there is no fleet: the reports are this host's
//! alone and the fleet verbs refuse with exit 78.

use std::collections::BTreeMap;

use crate::cli::args::StoreCommand;
use crate::cli::commands::Session;
use crate::core::names::PoolName;
use crate::engine::report::{Assignment, HostReport, PoolReport};
use crate::error::{Error, ExitStatus, Result};
use crate::store::postgres::config::valid_host_id;
use crate::store::postgres::{HostSeen, Lease, LeaseFilter, PgStore};
use crate::store::{FleetStore, Mode};

/// Every lease of the shared store and every host it knows.
pub struct FleetData {
    pub leases: Vec<Lease>,
    pub hosts: Vec<HostSeen>,
}

fn no_fleet(s: &Session, what: &str) -> Error {
    Error::config(format!(
        "{}: {what} needs shared pools ([store] backend = \"postgres\"); this host uses the file store",
        s.config.file
    ))
}

fn fleet<'a>(s: &'a Session, what: &str) -> Result<&'a FleetStore> {
    s.store.fleet().ok_or_else(|| no_fleet(s, what))
}

/// `Some` with the shared store's leases and hosts (one snapshot each),
/// `None` with the file backend.
pub fn data(s: &Session) -> Result<Option<FleetData>> {
    let Some(f) = s.store.fleet() else {
        return Ok(None);
    };
    f.pg(|pg| {
        Ok(FleetData {
            leases: pg.leases(&LeaseFilter::default())?,
            hosts: pg.hosts()?,
        })
    })
    .map(Some)
}

pub fn check_host(h: &str) -> Result<()> {
    if valid_host_id(h) {
        Ok(())
    } else {
        Err(Error::data(format!(
            "--host {h:?}: a host id is 1-253 letters, digits, '.', '-' or '_'"
        )))
    }
}

/// Other hosts' leases as assignments: no phase, ports or exposures
/// (runtime state stays on each host), the pool's interface as this host
/// configures it.
pub fn other_assignments(s: &Session, d: &FleetData, me: &str) -> Vec<Assignment> {
    d.leases
        .iter()
        .filter(|l| l.host != me)
        .map(|l| Assignment {
            jail: l.jail.clone(),
            host: l.host.clone(),
            mode: Mode::Dedicated,
            address: Some(l.address),
            pool: Some(l.pool.clone()),
            interface: PoolName::new(&l.pool)
                .ok()
                .and_then(|p| s.config.pools.get(&p))
                .map(|p| p.interface.to_string()),
            phase: None,
            ports: vec![],
            expose: vec![],
        })
        .collect()
}

/// The hosts (only `only` when given) with their lease counts and the
/// stale flag.
pub fn host_reports(s: &Session, d: &FleetData, only: Option<&str>) -> Vec<HostReport> {
    let mut leases: BTreeMap<&str, u64> = BTreeMap::new();
    for l in &d.leases {
        *leases.entry(l.host.as_str()).or_default() += 1;
    }
    d.hosts
        .iter()
        .filter(|h| only.is_none_or(|o| o == h.host))
        .map(|h| HostReport {
            host: h.host.clone(),
            last_seen: h.last_seen,
            age_secs: (h.age_secs * 1000.0).round() / 1000.0,
            stale: h.age_secs > s.config.store.stale_after_secs as f64,
            leases: leases.get(h.host.as_str()).copied().unwrap_or(0),
        })
        .collect()
}

/// Adds the per-host lease counts to each pool's report.
pub fn add_pool_hosts(rows: &mut [PoolReport], d: &FleetData, only: Option<&str>) {
    for p in rows {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for l in d
            .leases
            .iter()
            .filter(|l| l.pool == p.name && only.is_none_or(|o| o == l.host))
        {
            *m.entry(l.host.clone()).or_default() += 1;
        }
        p.hosts = Some(
            m.into_iter()
                .map(|(host, leases)| crate::engine::report::PoolHost { host, leases })
                .collect(),
        );
    }
}

pub fn print_hosts(hosts: &[HostReport]) {
    let mut t = crate::cli::output::Table::new(&["HOST", "LEASES", "LAST SEEN (s ago)", "STALE"]);
    for h in hosts {
        t.row(vec![
            h.host.clone(),
            h.leases.to_string(),
            format!("{:.0}", h.age_secs),
            if h.stale { "STALE" } else { "no" }.to_string(),
        ]);
    }
    t.print();
}

/// `jnet release --host H [JAIL]`: the operator's reclaim of another
/// (dead) host's shared leases. This host's own jails go through the
/// ordinary release, which also clears the local record.
pub fn release_host(s: &Session, host: &str, jail: Option<&str>) -> Result<ExitStatus> {
    check_host(host)?;
    let f = fleet(s, "release --host")?;
    if host == f.host_id() {
        return Err(Error::data(format!(
            "--host {host} is this host; release its jails with `jnet release JAIL`, which also clears the local record"
        )));
    }
    if let Some(j) = jail {
        crate::cli::commands::jail_name(j)?;
    }
    let gone = f.pg(|pg| Ok(pg.release_for_host(host, jail)?))?;
    for l in &gone {
        println!(
            "{}: released {} of pool {} (host {})",
            l.jail, l.address, l.pool, l.host
        );
    }
    match (gone.len(), jail) {
        (0, Some(j)) => println!("host {host} holds no lease for jail {j}; nothing changed"),
        (0, None) => println!("host {host} holds no leases; nothing changed"),
        (n, _) => println!("host {host}: {n} lease(s) reclaimed"),
    }
    Ok(ExitStatus::Ok)
}

pub fn store(s: &Session, c: &StoreCommand) -> Result<ExitStatus> {
    let f = fleet(s, "jnet store")?;
    match c {
        StoreCommand::Migrate => {
            let (from, to) = PgStore::migrate(&s.config.store)?;
            if from == to {
                println!("{}: schema is version {to}; nothing to do", f.describe());
            } else {
                println!("{}: schema migrated from version {from} to {to}", f.describe());
            }
        }
        StoreCommand::Touch => {
            f.pg(|pg| Ok(pg.touch()?))?;
            println!("{}: host {} seen", f.describe(), f.host_id());
        }
    }
    Ok(ExitStatus::Ok)
}
