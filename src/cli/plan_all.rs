//! `jnet plan` without a jail: the whole host at a glance, changing
//! nothing. For every jail named in jnet.toml, the inventory or jail.conf it
//! shows the address it has (or would get), the result of the port check,
//! the firewall rules it needs and the steps a start would take.
//!
//! Jails without an inventory record are previewed: `ip4 = inherit` or a
//! static `ip4.addr` from jail.conf, else the lowest free address of the
//! jail's configured pool, computed exactly as `jnet assign --pool` would.
//! Previews live in a copy of the inventory in memory; nothing is written.
//! Without root the host's jail and firewall state cannot be read: the plan
//! then assumes nothing is running, and says so.

use std::net::IpAddr;

use crate::cli::commands::Session;
use crate::core::alloc;
use crate::core::check::Severity;
use crate::core::names::JailName;
use crate::core::plan::{self, Observed};
use crate::engine::desired::{self, Context};
use crate::engine::host::system_host;
use crate::engine::lifecycle::Engine;
use crate::engine::{firewall, jails, portcheck};
use crate::error::{Error, ExitStatus, Result};
use crate::store::{Inventory, JailRecord, Mode};

/// Where a jail's address in the plan comes from.
fn preview(s: &Session, inv: &Inventory, name: &JailName) -> Result<Option<(JailRecord, String)>> {
    if let Some(c) = s.conf_jails()?.iter().find(|c| c.name == name.as_str()) {
        if c.inherit {
            return Ok(Some((
                JailRecord::inherit(),
                format!("ip4 = inherit in jail.conf ({})", c.location),
            )));
        }
        if let Some((iface, a)) = c.addrs.first() {
            let pool = s.config.pool_of(*a);
            let iface = iface
                .as_deref()
                .and_then(|i| crate::core::names::IfName::new(i).ok())
                .or_else(|| pool.map(|p| p.interface.clone()));
            let rec = JailRecord::dedicated(*a, pool.map(|p| p.name.clone()), iface);
            return Ok(Some((rec, format!("ip4.addr in jail.conf ({})", c.location))));
        }
    }
    let Some(pool) = s
        .config
        .jails
        .get(name)
        .and_then(|j| j.pool.as_ref())
        .and_then(|p| s.config.pools.get(p))
    else {
        return Ok(None);
    };
    let mut taken = inv.taken();
    for c in s.conf_jails()? {
        for (_, a) in &c.addrs {
            taken.insert_addr(*a);
        }
    }
    for i in crate::os::stack_interface_addresses() {
        if let IpAddr::V4(a) = i.address {
            taken.insert_addr(a);
        }
    }
    Ok(alloc::lowest_free(pool, &taken).map(|a| {
        let rec = JailRecord::dedicated(a, Some(pool.name.clone()), Some(pool.interface.clone()));
        (rec, format!("lowest free address of pool {}", pool.name))
    }))
}

fn permission(e: &Error) -> bool {
    e.exit_status() == ExitStatus::NoPerm
}

pub fn plan_all(s: &Session) -> Result<ExitStatus> {
    let mut inv = s.store.read()?;
    let mut names: Vec<JailName> = s.config.jails.keys().cloned().collect();
    names.extend(inv.jails.keys().cloned());
    for c in s.conf_jails()? {
        // jail.conf may hold names jnet cannot manage; those are listed, not planned.
        match JailName::new(&c.name) {
            Ok(n) => names.push(n),
            Err(e) => println!("# {}: {e}; jnet does not manage it", c.location),
        }
    }
    names.sort();
    names.dedup();
    let mut origin = std::collections::BTreeMap::new();
    for n in &names {
        if inv.jails.contains_key(n) {
            origin.insert(n.clone(), "in the inventory".to_string());
            continue;
        }
        if let Some((rec, why)) = preview(s, &inv, n)? {
            inv.jails.insert(n.clone(), rec);
            origin.insert(n.clone(), format!("preview: {why}"));
        }
    }
    let host = system_host()?;
    let views = jails::views(&s.config, &inv, &s.profiles)?;
    let mut notes = vec![];
    let check = match portcheck::run(host.as_ref(), &s.config, &views, &[]) {
        Ok(o) => {
            notes.extend(o.notes);
            Some(o.report)
        }
        Err(e) => {
            notes.push(format!("port check not run: {e}"));
            None
        }
    };
    let ctx = Context {
        config: &s.config,
        config_path: &s.config_path,
        profiles: &s.profiles,
        inventory: &inv,
        conf_jails: s.conf_jails()?,
    };
    let checker = desired::port_checker(&ctx, host.as_ref(), &s.store);
    let engine = Engine::new(host.as_ref(), &s.store, checker.as_ref());
    let mut blind = false;
    for n in &names {
        let Some(v) = views.get(n) else { continue };
        println!("== {n}");
        let Some(rec) = &v.record else {
            println!("   no address: jnet assign {n} --inherit | --pool POOL | ADDRESS");
            println!();
            continue;
        };
        let addr = match rec.mode {
            Mode::Inherit => "inherit (host addresses)".to_string(),
            Mode::Dedicated => rec.address.map(|a| a.to_string()).unwrap_or_default(),
        };
        println!(
            "   address: {addr} ({}), state {}",
            origin.get(n).map_or("", String::as_str),
            rec.phase
        );
        let ports: Vec<String> = v.settings.ports.iter().map(|p| p.to_string()).collect();
        let expose: Vec<String> = v.exposures.iter().map(|e| e.to_string()).collect();
        println!(
            "   ports: {}; exposes: {}; nat: {}",
            if ports.is_empty() {
                "-".to_string()
            } else {
                ports.join(", ")
            },
            if expose.is_empty() {
                "-".to_string()
            } else {
                expose.join(", ")
            },
            if v.nat { "yes" } else { "no" }
        );
        if let Some(r) = &check {
            for c in r.conflicts.iter().filter(|c| &c.jail == n) {
                let sev = if c.severity == Severity::Error {
                    "conflict"
                } else {
                    "warning"
                };
                println!("   {sev}: {}", c.message);
            }
        }
        let d = match desired::build(&ctx, n) {
            Ok(d) => d,
            Err(e) => {
                println!("   cannot plan: {e}");
                println!();
                continue;
            }
        };
        if let Ok(Some(rules)) = firewall::jail_rules(&s.config, v) {
            println!(
                "   firewall: {} rule(s) in {}/{n}",
                rules.redirects.len() + rules.nats.len(),
                s.config.host.anchor
            );
        }
        let p = match engine.plan_in_phase(plan::Verb::Start, &d, rec.phase) {
            Ok(p) => p,
            Err(e) if permission(&e) => {
                blind = true;
                plan::plan_start(&d, &Observed::NOTHING)
            }
            Err(e @ Error::Data(_)) => {
                println!("   cannot start: {e}");
                println!();
                continue;
            }
            Err(e) => return Err(e),
        };
        for line in p.render(&d).lines() {
            println!("   {line}");
        }
        println!();
    }
    if blind {
        notes.push("not root: jails and firewall of this host not read; planned as if nothing were running".into());
    }
    if let Some(r) = &check {
        println!("port check: {} conflict(s), {} warning(s)", r.errors(), r.warnings());
    }
    for n in notes {
        println!("note: {n}");
    }
    Ok(ExitStatus::Ok)
}
