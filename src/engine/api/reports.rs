//! The report verbs of [`Engine`]: `list`, `pools`, `inventory` and
//! `check`. They read the inventory (and with shared pools the fleet's
//! leases) and observe the host; they change nothing.

use serde::Serialize;

use super::fleet::FleetData;
use super::Engine;
use crate::core::check::Report as CheckReport;
use crate::core::lifecycle::Phase;
use crate::core::names::JailName;
use crate::engine::report::{self, Assignment, Drift, ExposeRow, HostReport, InventoryReport, PoolReport};
use crate::error::{Error, Result};
use crate::os::{self, IfAddr};
use crate::store::Inventory;

/// One row of `jnet list` (schemas/list.schema.json): the assignment plus
/// every exposure with its origin (`expose` keeps only `jnet expose`'s).
#[derive(Debug)]
pub struct ListRow {
    pub assignment: Assignment,
    pub exposures: Vec<ExposeRow>,
}

// why by hand, not `#[serde(flatten)]`: flatten buffers every row in an
// intermediate map first, a tenth of `list --format json` at 10,000 jails.
// The fields are Assignment's, in its order, then `exposures`.
impl Serialize for ListRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let a = &self.assignment;
        let mut m = s.serialize_map(Some(12))?;
        m.serialize_entry("jail", &a.jail)?;
        m.serialize_entry("host", &a.host)?;
        m.serialize_entry("mode", &a.mode)?;
        m.serialize_entry("address", &a.address)?;
        m.serialize_entry("pool", &a.pool)?;
        m.serialize_entry("interface", &a.interface)?;
        m.serialize_entry("addresses", &a.addresses)?;
        m.serialize_entry("phase", &a.phase)?;
        m.serialize_entry("ports", &a.ports)?;
        m.serialize_entry("expose", &a.expose)?;
        m.serialize_entry("exposures", &self.exposures)?;
        m.end()
    }
}

/// `jnet list`.
#[derive(Debug, Serialize)]
pub struct ListReport {
    pub jails: Vec<ListRow>,
}

/// `jnet pools` (schemas/pools.schema.json).
#[derive(Debug, Serialize)]
pub struct PoolsReport {
    pub pools: Vec<PoolReport>,
    /// With shared pools: the hosts of the fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<HostReport>>,
}

/// What the Prometheus exposition of `jnet pools` shows beyond the pools:
/// the same sources as `inventory`, so the drift gauges agree with it.
#[derive(Debug)]
pub struct PoolMetrics {
    pub pools: Vec<PoolReport>,
    pub phases: Vec<Phase>,
    pub drift: Vec<Drift>,
}

/// `jnet check`: the port check's report, the notes on what could not be
/// observed, and how many jails were checked.
#[derive(Debug)]
pub struct CheckOutcome {
    pub report: CheckReport,
    pub notes: Vec<String>,
    pub checked: usize,
}

/// Addresses inside running jails' own network stacks, as `jail:<name>`
/// (on Linux a dedicated jail's address lives in its namespace, not on a
/// host interface, so without these every running jail would look like
/// missing drift). Empty when they cannot be read, e.g. without root.
fn jail_stack_addresses(e: &Engine) -> Vec<IfAddr> {
    let running = e.host().and_then(|h| Ok(h.running_jails()?));
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

impl Engine {
    fn ports_of(&self, inv: &Inventory) -> Result<std::collections::BTreeMap<JailName, Vec<String>>> {
        report::declared_ports(&self.config, inv, &self.profiles)
    }

    /// `--host H`: a valid host id, and with the file store this host only.
    fn check_only(&self, only: Option<&str>) -> Result<()> {
        if let Some(h) = only {
            super::fleet::check_host(h)?;
            if self.store.fleet().is_none() && h != self.host_id() {
                return Err(Error::data(format!(
                    "--host {h}: this host ({}) uses the file store and knows only its own jails",
                    self.host_id()
                )));
            }
        }
        Ok(())
    }

    /// Pool usage: this host's inventory, plus with shared pools every
    /// other host's leases (and the per-host counts); with the host's
    /// interface addresses the rows were computed against.
    fn pool_rows(
        &self,
        inv: &Inventory,
        fleet: Option<&FleetData>,
        only: Option<&str>,
    ) -> Result<(Vec<PoolReport>, Vec<IfAddr>)> {
        let host = os::stack_interface_addresses();
        let mut held = inv.taken();
        if let Some(d) = fleet {
            for l in &d.leases {
                held.insert_addr(l.address);
            }
        }
        let mut rows = report::pools_held(&self.config, &held, &inv.taken6(), self.conf_addrs()?, &host);
        if let Some(d) = fleet {
            super::fleet::add_pool_hosts(&mut rows, d, only);
        }
        Ok((rows, host))
    }

    /// `jnet list`.
    pub fn list(&self) -> Result<ListReport> {
        let inv = self.store.read()?;
        // why one set of views: ports and exposures both come from them,
        // and building them twice was a third of `list` at 10,000 jails.
        let views = crate::engine::jails::views(&self.config, &inv, &self.profiles)?;
        let ports = report::ports_of_views(&views);
        let mut origins = report::exposures_of_views(&self.config, &views);
        drop(views);
        let jails = report::assignments(&inv, &|n| ports.get(n).cloned().unwrap_or_default(), &self.host_id())
            .into_iter()
            .map(|a| ListRow {
                exposures: JailName::new(&a.jail)
                    .ok()
                    .and_then(|n| origins.remove(&n))
                    .unwrap_or_default(),
                assignment: a,
            })
            .collect();
        Ok(ListReport { jails })
    }

    /// `jnet pools [--host H]`.
    pub fn pools(&self, only: Option<&str>) -> Result<PoolsReport> {
        self.check_only(only)?;
        let inv = self.store.read()?;
        let fleet = self.fleet_data()?;
        let (pools, _) = self.pool_rows(&inv, fleet.as_ref(), only)?;
        let hosts = fleet.as_ref().map(|d| self.host_reports(d, only));
        Ok(PoolsReport { pools, hosts })
    }

    /// `jnet pools --format prometheus`.
    pub fn pool_metrics(&self, only: Option<&str>) -> Result<PoolMetrics> {
        self.check_only(only)?;
        let inv = self.store.read()?;
        let fleet = self.fleet_data()?;
        let (pools, host) = self.pool_rows(&inv, fleet.as_ref(), only)?;
        Ok(PoolMetrics {
            pools,
            phases: inv.jails.values().map(|r| r.phase).collect(),
            drift: report::drift(&self.config, &inv, &[host, jail_stack_addresses(self)].concat()),
        })
    }

    /// `jnet inventory [--host H]`.
    pub fn inventory(&self, only: Option<&str>) -> Result<InventoryReport> {
        self.check_only(only)?;
        let inv = self.store.read()?;
        let fleet = self.fleet_data()?;
        let (pools, host) = self.pool_rows(&inv, fleet.as_ref(), only)?;
        let ports = self.ports_of(&inv)?;
        let me = self.host_id();
        let mut assignments = report::assignments(&inv, &|n| ports.get(n).cloned().unwrap_or_default(), &me);
        if let Some(d) = &fleet {
            assignments.extend(self.other_assignments(d, &me));
        }
        assignments.retain(|a| only.is_none_or(|h| h == a.host));
        Ok(InventoryReport {
            pools,
            assignments,
            // why this host only: drift compares records with this host's
            // interfaces; other hosts' jails are not here to compare.
            drift: report::drift(&self.config, &inv, &[host, jail_stack_addresses(self)].concat()),
            hosts: fleet.as_ref().map(|d| self.host_reports(d, only)),
        })
    }

    /// `jnet check [JAIL...]`: the port check of `jails` (every jail with
    /// an address when empty), analysed together.
    pub fn check(&self, jails: &[JailName]) -> Result<CheckOutcome> {
        let inv = self.store.read()?;
        let views = crate::engine::jails::views(&self.config, &inv, &self.profiles)?;
        for j in jails {
            if views.get(j).is_none_or(|v| v.record.is_none()) {
                return Err(Error::data(format!(
                    "jail {j} has no address in the inventory; assign one first (jnet assign {j} --inherit | --pool P | ADDRESS)"
                )));
            }
        }
        let host = self.host()?;
        let out = crate::engine::portcheck::run(host.as_ref(), &self.config, &views, jails)?;
        let checked = if jails.is_empty() {
            views.values().filter(|v| v.record.is_some()).count()
        } else {
            jails.len()
        };
        Ok(CheckOutcome {
            report: out.report,
            notes: out.notes,
            checked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Mode;

    /// The hand-written row has exactly the assignment's fields, in its
    /// order, then `exposures`: a field added to `Assignment` must be
    /// added there too.
    #[test]
    fn a_list_row_is_its_assignment_plus_exposures() {
        let a = Assignment {
            jail: "www".into(),
            host: "h".into(),
            mode: Mode::Dedicated,
            address: Some("192.0.2.5".parse().unwrap()),
            pool: Some("lan".into()),
            interface: Some("em0".into()),
            addresses: vec![report::AddressRow::new(
                "192.0.2.5".parse().unwrap(),
                Some("lan".into()),
                Some("em0".into()),
            )],
            phase: None,
            ports: vec!["tcp/80".into()],
            expose: vec![],
        };
        let mut want = serde_json::to_value(&a).unwrap();
        want["exposures"] = serde_json::json!([]);
        let row = ListRow {
            assignment: a,
            exposures: vec![],
        };
        let got = serde_json::to_value(&row).unwrap();
        assert_eq!(got, want);
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&got), keys(&want));
    }
}
