//! Printing the reports: `list`, `pools`, `inventory` and `check`, as
//! tables or JSON (schemas/*.schema.json).

use crate::cli::args::{Format, PoolsFormat};
use crate::cli::exit::ExitStatus;
use crate::cli::output::{print_json, printable, Table};
use crate::core::check::Severity;
use crate::engine::api::reports::{CheckOutcome, ListReport};
use crate::engine::report::{self, Assignment, InventoryReport, PoolReport};
use crate::engine::Engine;
use crate::error::Result;

/// JAIL MODE ADDRESS POOL INTERFACE STATE cells of an assignment row; a
/// dual-stack jail lists both addresses (IPv4 first), and its pools and
/// interfaces once each.
fn assignment_cells(r: &Assignment) -> Vec<String> {
    let joined = |f: &dyn Fn(&report::AddressRow) -> Option<String>| {
        let mut v: Vec<String> = vec![];
        for x in r.addresses.iter().filter_map(f) {
            if !v.contains(&x) {
                v.push(x);
            }
        }
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    vec![
        r.jail.clone(),
        r.mode.as_str().to_string(),
        joined(&|a| Some(a.address.to_string())),
        joined(&|a| a.pool.clone()),
        joined(&|a| a.interface.clone()),
        opt(&r.phase),
    ]
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

pub fn list(r: &ListReport, format: Format) -> Result<ExitStatus> {
    if format == Format::Json {
        return print_json(r);
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
    for row in &r.jails {
        let mut cells = assignment_cells(&row.assignment);
        let expose: Vec<String> = row.exposures.iter().map(report::ExposeRow::cell).collect();
        cells.extend([row.assignment.ports.join(","), expose.join(",")]);
        t.row(cells);
    }
    t.print();
    Ok(ExitStatus::Ok)
}

fn print_pools(rows: &[PoolReport]) {
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

/// `jnet pools`: the Prometheus form asks the engine for the drift gauges
/// too, the others for the pools alone.
pub fn pools(e: &Engine, format: PoolsFormat, only: Option<&str>) -> Result<ExitStatus> {
    if format == PoolsFormat::Prometheus {
        let m = e.pool_metrics(only)?;
        print!(
            "{}",
            crate::cli::metrics::render(&crate::cli::metrics::Input {
                pools: &m.pools,
                phases: &m.phases,
                drift: &m.drift,
            })
        );
        return Ok(ExitStatus::Ok);
    }
    let r = e.pools(only)?;
    if format == PoolsFormat::Json {
        return print_json(&r);
    }
    print_pools(&r.pools);
    if let Some(h) = &r.hosts {
        println!();
        crate::cli::fleet::print_hosts(h);
    }
    Ok(ExitStatus::Ok)
}

pub fn inventory(rep: &InventoryReport, format: Format) -> Result<ExitStatus> {
    if format == Format::Json {
        return print_json(rep);
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

/// The port check's report; exit 0 when clean, 1 on conflicts (and on
/// warnings with `--strict`).
pub fn check(out: &CheckOutcome, strict: bool, format: Format) -> Result<ExitStatus> {
    for n in &out.notes {
        eprintln!("jnet: note: {}", printable(n));
    }
    if format == Format::Json {
        print_json(&out.report)?;
    } else {
        for c in &out.report.conflicts {
            let sev = match c.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!("{sev}: {}", printable(&c.message));
        }
        println!(
            "{} error(s), {} warning(s) in {} jail(s) checked",
            out.report.errors(),
            out.report.warnings(),
            out.checked
        );
    }
    Ok(if out.report.failed(strict) {
        ExitStatus::Findings
    } else {
        ExitStatus::Ok
    })
}
