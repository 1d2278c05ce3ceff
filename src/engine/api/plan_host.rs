//! [`Engine::plan_host`], `jnet plan` without a jail: the whole host at a
//! glance, changing nothing. For every jail named in jnet.toml, the inventory or jail.conf it
//! shows the address it has (or would get), the result of the port check,
//! the firewall rules it needs and the steps a start would take.
//!
//! Jails without an inventory record are previewed: `ip4 = inherit` or a
//! static `ip4.addr` from jail.conf, else the lowest free address of the
//! jail's configured pool, computed exactly as `jnet assign --pool` would.
//! Previews live in a copy of the inventory in memory; nothing is written.
//! Without root the host's jail and firewall state cannot be read: the plan
//! then assumes nothing is running, and says so.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::lifecycle::StepReport;
use super::Engine;
use crate::core::alloc;
use crate::core::check::Severity;
use crate::core::names::JailName;
use crate::core::plan::{self, Observed};
use crate::core::range::RangeSet;
use crate::engine::desired;
use crate::engine::jails_conf::ConfJail;
use crate::engine::lifecycle::Lifecycle;
use crate::engine::snapshot::Snapshot;
use crate::engine::{firewall, jails, portcheck};
use crate::error::{Error, Result};
use crate::store::JailRecord;

/// Where a jail's address in the plan comes from. `conf` indexes jail.conf
/// by name; `taken` holds every address the inventory (with the previews
/// made so far), jail.conf and the host's interfaces hold, and gets the
/// preview's address.
fn preview(
    e: &Engine,
    conf: &HashMap<&str, &ConfJail>,
    taken: &mut Taken,
    name: &JailName,
) -> Option<(JailRecord, String)> {
    if let Some(c) = conf.get(name.as_str()) {
        // why the same reading as `jnet import`: the preview is what an
        // import would record.
        if let Ok(Some(rec)) = crate::engine::addresses::conf_record(&e.config, name, c) {
            let what = match (rec.inet.as_str(), rec.inet6.as_str()) {
                ("inherit", _) => "ip4 = inherit",
                ("new", _) => "ip4.addr",
                (_, "inherit") => "ip6 = inherit",
                _ => "ip6.addr",
            };
            return Some((rec, format!("{what} in jail.conf ({})", c.location)));
        }
    }
    let pname = e.config.jails.get(name).and_then(|j| j.pool.as_ref())?;
    if let Some(pool) = e.config.pools6.get(pname) {
        let a = alloc::lowest_free(pool, &taken.inet6)?;
        taken.inet6.insert_addr(a);
        let rec = JailRecord::dedicated6(a, Some(pool.name.clone()), Some(pool.interface.clone()));
        return Some((rec, format!("lowest free address of pool {}", pool.name)));
    }
    let pool = e.config.pools.get(pname)?;
    let a = alloc::lowest_free(pool, &taken.inet)?;
    taken.inet.insert_addr(a);
    let rec = JailRecord::dedicated(a, Some(pool.name.clone()), Some(pool.interface.clone()));
    Some((rec, format!("lowest free address of pool {}", pool.name)))
}

/// Every address held so far, per family (see [`preview`]).
struct Taken {
    inet: RangeSet,
    inet6: RangeSet<u128>,
}

/// `jnet plan --format json` (schemas/plan-all.schema.json); the text plan
/// prints the same values.
#[derive(Debug, Default, Serialize)]
pub struct PlanAll {
    /// jail.conf entries whose names jnet cannot manage, with why.
    pub unmanaged: Vec<String>,
    pub jails: Vec<HostJailPlan>,
    /// Conflicts and warnings of the port check over every jail; null when
    /// it could not run (see `notes`).
    pub port_check: Option<CheckCounts>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct CheckCounts {
    pub conflicts: usize,
    pub warnings: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct HostJailPlan {
    pub name: String,
    /// `inherit` or `dedicated`; null when the jail has no address and
    /// none can be previewed.
    pub mode: Option<&'static str>,
    /// The dedicated address, had or previewed; null otherwise.
    pub address: Option<String>,
    /// `in the inventory`, or `preview: ...` saying where the preview
    /// comes from.
    pub origin: Option<String>,
    pub phase: Option<String>,
    pub ports: Vec<String>,
    pub exposes: Vec<String>,
    pub nat: bool,
    pub findings: Vec<Finding>,
    /// The rules the jail's anchor (pf) or chains (nft) need; null when it
    /// needs none.
    pub firewall: Option<Firewall>,
    pub steps: Vec<StepReport>,
    /// Why the jail cannot be planned or started; null when it can.
    pub problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Firewall {
    /// Redirections plus nat rules.
    pub rules: usize,
    /// `anchor_root/jail`.
    pub anchor: String,
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub severity: &'static str,
    pub message: String,
}

impl Engine {
    /// `jnet plan`: every jail of jnet.toml, the inventory and jail.conf
    /// with its address (had or previewed), port check findings, rules and
    /// start steps; nothing is written or applied.
    pub fn plan_host(&self) -> Result<PlanAll> {
        let s = self;
        let mut out = PlanAll::default();
        let mut inv = s.store.read()?;
        let mut names: Vec<JailName> = s.config.jails.keys().cloned().collect();
        names.extend(inv.jails.keys().cloned());
        for c in s.conf_jails()? {
            // jail.conf may hold names jnet cannot manage; those are listed, not planned.
            match JailName::new(&c.name) {
                Ok(n) => names.push(n),
                Err(e) => out
                    .unmanaged
                    .push(format!("{}: {e}; jnet does not manage it", c.location)),
            }
        }
        names.sort();
        names.dedup();
        let mut origin = std::collections::BTreeMap::new();
        // why built once: per jail, a scan of jail.conf and of the inventory
        // and a listing of the host's addresses made `plan` quadratic (issue 10).
        let conf: HashMap<&str, &ConfJail> = s.conf_jails()?.iter().rev().map(|c| (c.name.as_str(), c)).collect();
        let mut taken = Taken {
            inet: inv.taken(),
            inet6: inv.taken6(),
        };
        for c in s.conf_jails()? {
            for (_, a) in &c.addrs {
                taken.inet.insert_addr(*a);
            }
            for (_, a) in &c.addrs6 {
                taken.inet6.insert_addr(*a);
            }
        }
        for i in crate::os::stack_interface_addresses() {
            match i.address {
                IpAddr::V4(a) => taken.inet.insert_addr(a),
                IpAddr::V6(a) => taken.inet6.insert_addr(a),
            }
        }
        for n in &names {
            if inv.jails.contains_key(n) {
                origin.insert(n.clone(), "in the inventory".to_string());
                continue;
            }
            if let Some((rec, why)) = preview(s, &conf, &mut taken, n) {
                inv.jails.insert(n.clone(), rec);
                origin.insert(n.clone(), format!("preview: {why}"));
            }
        }
        // why a snapshot: the host is observed once for the whole plan (one
        // listing of addresses, running jails, listeners and the firewall's
        // rules), not once per jail (issue 10).
        let real = s.host()?;
        let snapshot = Snapshot::new(real.as_ref());
        let host: &dyn crate::os::Host = &snapshot;
        let views = jails::views(&s.config, &inv, &s.profiles)?;
        let check = match portcheck::run(host, &s.config, &views, &[]) {
            Ok(o) => {
                out.notes.extend(o.notes);
                Some(o.report)
            }
            Err(e) => {
                out.notes.push(format!("port check not run: {e}"));
                None
            }
        };
        let ctx = s.context(&inv)?;
        let checker = desired::port_checker(&ctx, host, s.store.as_ref());
        let engine = Lifecycle::new(host, s.store.as_ref(), checker.as_ref());
        let mut blind = false;
        for n in &names {
            let Some(v) = views.get(n) else { continue };
            let mut j = HostJailPlan {
                name: n.to_string(),
                ..Default::default()
            };
            let Some(rec) = &v.record else {
                out.jails.push(j);
                continue;
            };
            j.mode = Some(rec.mode().as_str());
            j.address = rec.address().map(|a| a.to_string());
            j.origin = origin.get(n).cloned();
            j.phase = Some(rec.phase.to_string());
            j.ports = v.settings.ports.iter().map(|p| p.to_string()).collect();
            j.exposes = v.exposures.iter().map(|e| e.to_string()).collect();
            j.nat = v.nat;
            if let Some(r) = &check {
                j.findings = r
                    .conflicts
                    .iter()
                    .filter(|c| &c.jail == n)
                    .map(|c| Finding {
                        severity: if c.severity == Severity::Error {
                            "error"
                        } else {
                            "warning"
                        },
                        message: c.message.clone(),
                    })
                    .collect();
            }
            let d = match desired::build(&ctx, n) {
                Ok(d) => d,
                Err(e) => {
                    j.problem = Some(format!("cannot plan: {e}"));
                    out.jails.push(j);
                    continue;
                }
            };
            if let Ok(Some(rules)) = firewall::jail_rules(&s.config, v) {
                j.firewall = Some(Firewall {
                    rules: rules.redirects.len() + rules.nats.len(),
                    anchor: format!("{}/{n}", s.config.host.anchor),
                });
            }
            let p = match engine.plan_in_phase(plan::Verb::Start, &d, rec.phase) {
                Ok(p) => p,
                Err(e) if e.is_permission() => {
                    blind = true;
                    plan::plan_start(&d, &Observed::NOTHING)
                }
                Err(e @ Error::Data(_)) => {
                    j.problem = Some(format!("cannot start: {e}"));
                    out.jails.push(j);
                    continue;
                }
                Err(e) => return Err(e),
            };
            j.steps = StepReport::all(&p, &d);
            out.jails.push(j);
        }
        if blind {
            out.notes
                .push("not root: jails and firewall of this host not read; planned as if nothing were running".into());
        }
        out.port_check = check.as_ref().map(|r| CheckCounts {
            conflicts: r.errors(),
            warnings: r.warnings(),
        });
        Ok(out)
    }
}
