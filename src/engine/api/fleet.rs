//! The shared-pool verbs of [`Engine`] (issue 11): other hosts' leases and
//! the hosts' liveness for the reports, the operator's reclaim (`release
//! --host H [JAIL]`) and `store migrate|touch`. With the file backend there
//! is no fleet: the reports are this host's alone and the fleet verbs
//! refuse with a configuration error.

use std::collections::BTreeMap;

use super::Engine;
use crate::core::model::Mode;
use crate::core::names::PoolName;
use crate::engine::report::{AddressRow, Assignment, HostReport, PoolHost, PoolReport};
use crate::error::{Error, Result};
use crate::store::postgres::config::valid_host_id;
use crate::store::postgres::{HostSeen, Lease, LeaseFilter, PgStore};
use crate::store::FleetStore;

/// Every lease of the shared store and every host it knows.
pub struct FleetData {
    pub leases: Vec<Lease>,
    pub hosts: Vec<HostSeen>,
}

/// A lease given back by `release --host`.
pub type ReclaimedLease = Lease;

/// The result of `jnet store migrate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The store, as messages name it (never with a password).
    pub store: String,
    pub from: u32,
    pub to: u32,
}

/// A `--host` value: a host id as `[store] host_id` allows it.
pub fn check_host(h: &str) -> Result<()> {
    if valid_host_id(h) {
        Ok(())
    } else {
        Err(Error::data(format!(
            "--host {h:?}: a host id is 1-253 letters, digits, '.', '-' or '_'"
        )))
    }
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
        p.hosts = Some(m.into_iter().map(|(host, leases)| PoolHost { host, leases }).collect());
    }
}

impl Engine {
    fn no_fleet(&self, what: &str) -> Error {
        Error::config(format!(
            "{}: {what} needs shared pools ([store] backend = \"postgres\"); this host uses the file store",
            self.config.file
        ))
    }

    fn fleet(&self, what: &str) -> Result<&FleetStore> {
        self.store.fleet().ok_or_else(|| self.no_fleet(what))
    }

    /// `Some` with the shared store's leases and hosts (one snapshot each),
    /// `None` with the file backend.
    pub(super) fn fleet_data(&self) -> Result<Option<FleetData>> {
        let Some(f) = self.store.fleet() else {
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

    /// Other hosts' leases as assignments: no phase, ports or exposures
    /// (runtime state stays on each host), the pool's interface as this
    /// host configures it.
    pub(super) fn other_assignments(&self, d: &FleetData, me: &str) -> Vec<Assignment> {
        d.leases
            .iter()
            .filter(|l| l.host != me)
            .map(|l| {
                let interface = PoolName::new(&l.pool)
                    .ok()
                    .and_then(|p| self.config.pools.get(&p))
                    .map(|p| p.interface.to_string());
                Assignment {
                    jail: l.jail.clone(),
                    host: l.host.clone(),
                    mode: Mode::Dedicated,
                    address: Some(l.address),
                    pool: Some(l.pool.clone()),
                    addresses: vec![AddressRow::new(
                        std::net::IpAddr::V4(l.address),
                        Some(l.pool.clone()),
                        interface.clone(),
                    )],
                    interface,
                    phase: None,
                    ports: vec![],
                    expose: vec![],
                }
            })
            .collect()
    }

    /// The hosts (only `only` when given) with their lease counts and the
    /// stale flag.
    pub(super) fn host_reports(&self, d: &FleetData, only: Option<&str>) -> Vec<HostReport> {
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
                stale: h.age_secs > self.config.store.stale_after_secs as f64,
                leases: leases.get(h.host.as_str()).copied().unwrap_or(0),
            })
            .collect()
    }

    /// `jnet release --host H [JAIL]`: the operator's reclaim of another
    /// (dead) host's shared leases. This host's own jails go through the
    /// ordinary release, which also clears the local record.
    pub fn release_host(&self, host: &str, jail: Option<&str>) -> Result<Vec<ReclaimedLease>> {
        check_host(host)?;
        let f = self.fleet("release --host")?;
        if host == f.host_id() {
            return Err(Error::data(format!(
                "--host {host} is this host; release its jails with `jnet release JAIL`, which also clears the local record"
            )));
        }
        if let Some(j) = jail {
            super::jail_name(j)?;
        }
        f.pg(|pg| Ok(pg.release_for_host(host, jail)?))
    }

    /// `jnet store migrate`: upgrades the shared store's schema.
    pub fn store_migrate(&self) -> Result<Migrated> {
        let f = self.fleet("jnet store")?;
        let (from, to) = PgStore::migrate(&self.config.store)?;
        Ok(Migrated {
            store: f.describe(),
            from,
            to,
        })
    }

    /// `jnet store touch`: records that this host is alive; returns the
    /// store's name and this host's id.
    pub fn store_touch(&self) -> Result<(String, String)> {
        let f = self.fleet("jnet store")?;
        f.pg(|pg| Ok(pg.touch()?))?;
        Ok((f.describe(), f.host_id().to_string()))
    }
}
