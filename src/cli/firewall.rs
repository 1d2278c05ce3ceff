//! Printing the firewall verbs' reports: `expose`, `unexpose` and `pf
//! render|reload|status`.

use crate::cli::args::Format;
use crate::cli::exit::ExitStatus;
use crate::cli::output::{print_json, Table};
use crate::engine::api::firewall::{
    ExposeReport, FirewallStatus, ReloadAllReport, ReloadReport, Rendered, UnexposeReport,
};
use crate::engine::firewall::{Reloaded, State};
use crate::error::{Error, Result};

pub fn exposed(r: &ExposeReport) -> Result<ExitStatus> {
    let (jail, e) = (&r.jail, &r.expose);
    if r.already {
        println!("{jail}: {e} is already exposed; nothing changed");
    } else if r.addresses.is_empty() {
        println!("{jail}: exposed {e}");
    } else {
        let to: Vec<String> = r.addresses.iter().map(ToString::to_string).collect();
        println!("{jail}: exposed {e} -> {}", to.join(", "));
    }
    Ok(ExitStatus::Ok)
}

pub fn unexposed(r: &UnexposeReport) -> Result<ExitStatus> {
    let jail = &r.jail;
    match &r.removed {
        Some(found) => println!("{jail}: no longer exposes {found}"),
        None => println!("{jail}: {}/{} is not exposed; nothing changed", r.proto, r.host_ports),
    }
    Ok(ExitStatus::Ok)
}

/// `pf render`: each jail's rules, a blank line between jails; a jail
/// named alone that needs none says so.
pub fn rendered(jails: &[Rendered], named: bool) -> Result<ExitStatus> {
    let mut first = true;
    for r in jails {
        let Some(text) = &r.text else {
            if named {
                println!("# jail {}: no exposures and no nat, nothing to load", r.jail);
            }
            continue;
        };
        if !first {
            println!();
        }
        first = false;
        print!("{text}");
    }
    Ok(ExitStatus::Ok)
}

pub fn reloaded(r: &ReloadReport) -> Result<ExitStatus> {
    if r.rules == 0 {
        println!("{}: no rules; {} flushed", r.jail, r.anchor);
    } else {
        println!("{}: loaded {} rule(s) into {}", r.jail, r.rules, r.anchor);
    }
    Ok(ExitStatus::Ok)
}

/// `jnet pf reload --all`: quiet on success unless -v, every failure
/// named, exit status of the first.
pub fn reloaded_all(r: &ReloadAllReport, quiet: bool) -> Result<ExitStatus> {
    let anchor = &r.anchor_root;
    let mut failed: Vec<(String, &Error)> = Vec::new();
    let mut loaded = 0;
    for (j, res) in &r.jails {
        match res {
            Ok(Reloaded::Loaded(n)) => {
                loaded += 1;
                if !quiet {
                    println!("{j}: loaded {n} rule(s) into {anchor}/{j}");
                }
            }
            Ok(Reloaded::NoRules) => {
                loaded += 1;
                if !quiet {
                    println!("{j}: running, no rules; {anchor}/{j} flushed");
                }
            }
            Ok(Reloaded::FlushedStale) => {
                if !quiet {
                    println!("{j}: not running; stale rules in {anchor}/{j} flushed");
                }
            }
            Ok(Reloaded::Idle) => {}
            Err(e) => failed.push((j.to_string(), e)),
        }
    }
    if !quiet && loaded == 0 && failed.is_empty() {
        println!("no running jails; no rules loaded");
    }
    let Some(kind) = failed.first().map(|(_, e)| e.kind()) else {
        return Ok(ExitStatus::Ok);
    };
    let each: Vec<String> = failed.iter().map(|(j, e)| format!("{j}: {e}")).collect();
    Err(Error::Step {
        kind,
        message: format!(
            "pf reload --all: {} jail(s) failed (the others were reloaded): {}",
            failed.len(),
            each.join("; ")
        ),
    })
}

pub fn status(out: &FirewallStatus, format: Format) -> Result<ExitStatus> {
    if format == Format::Json {
        return print_json(out);
    }
    for h in &out.hooks_missing {
        println!("pf.conf lacks: {h}");
    }
    let mut t = Table::new(&["JAIL", "ANCHOR", "STATE", "DETAILS"]);
    for a in &out.anchors {
        let (st, details) = match &a.state {
            State::InSync => ("in-sync", String::new()),
            State::NotLoaded => ("not-loaded", "run: jnet pf reload ".to_string() + &a.jail),
            State::Drift { missing, unexpected } => (
                "drift",
                format!("{} missing, {} unexpected", missing.len(), unexpected.len()),
            ),
            State::Stale { rules } => (
                "stale",
                format!("{} rule(s) loaded for a jail that needs none", rules.len()),
            ),
            State::Empty => ("empty", String::new()),
        };
        t.row(vec![a.jail.clone(), a.anchor.clone(), st.to_string(), details]);
    }
    t.print();
    Ok(ExitStatus::Ok)
}
