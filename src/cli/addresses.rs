//! Printing the address verbs' reports: `assign`, `release`, `import`.

use crate::cli::exit::ExitStatus;
use crate::core::model::Mode;
use crate::engine::api::addresses::{AssignReport, Holding, ImportLine, ImportReport, ReleaseReport};
use crate::error::Result;

/// `inherit (host addresses)`, or `10.0.0.5 from pool lan on vtnet0`, or
/// both families: `10.0.0.5 from pool lan on vtnet0, fd00::5 from pool
/// lan6 on vtnet0`, with a family the jail inherits named (`..., inet6
/// inherited from the host`).
fn describe(h: &Holding) -> String {
    match h.mode {
        Mode::Inherit if h.families == ["inherit", "inherit"] => "inherit (host addresses)".to_string(),
        _ => {
            let mut parts: Vec<String> = h
                .leases
                .iter()
                .map(|(a, pool, iface)| {
                    let mut s = a.to_string();
                    if let Some(p) = pool {
                        s.push_str(&format!(" from pool {p}"));
                    }
                    if let Some(i) = iface {
                        s.push_str(&format!(" on {i}"));
                    }
                    s
                })
                .collect();
            for (family, mode) in ["inet", "inet6"].iter().zip(h.families) {
                match mode {
                    "inherit" => parts.push(format!("{family} inherited from the host")),
                    // why: an own address in one family and none in the
                    // other is the usual case, not worth a word.
                    "disable" if h.leases.is_empty() => parts.push(format!("{family} disabled")),
                    _ => {}
                }
            }
            parts.join(", ")
        }
    }
}

pub fn assign(r: &AssignReport) -> Result<ExitStatus> {
    let jail = &r.jail;
    match (&r.was, r.unchanged) {
        (_, true) => println!("{jail}: already {}; nothing changed", describe(&r.now)),
        (Some(p), false) => println!("{jail}: {} (was {})", describe(&r.now), describe(p)),
        (None, false) => println!("{jail}: {}", describe(&r.now)),
    }
    Ok(ExitStatus::Ok)
}

pub fn release(r: &ReleaseReport) -> Result<ExitStatus> {
    let jail = &r.jail;
    match &r.released {
        Some(h) => println!("{jail}: released {}", describe(h)),
        None => println!("{jail}: not in the inventory; nothing changed"),
    }
    Ok(ExitStatus::Ok)
}

pub fn import(r: &ImportReport) -> Result<ExitStatus> {
    let (mut added, mut updated, mut same) = (0, 0, 0);
    for l in &r.jails {
        match l {
            ImportLine::Added(n, h) => {
                added += 1;
                println!("{n}: added, {}", describe(h));
            }
            ImportLine::Updated(n, h) => {
                updated += 1;
                println!("{n}: updated, {}", describe(h));
            }
            ImportLine::Unchanged(_) => same += 1,
            ImportLine::Skipped(n, why) => println!("{n}: skipped ({why})"),
        }
    }
    println!(
        "{}: {added} added, {updated} updated, {same} unchanged",
        r.path.display()
    );
    Ok(ExitStatus::Ok)
}
