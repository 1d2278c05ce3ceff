//! Printing the one-jail lifecycle reports: `plan JAIL`, `status`, `exec`
//! and `hook`.

use std::io::Write;

use serde::Serialize;

use crate::cli::args::Format;
use crate::cli::exit::ExitStatus;
use crate::cli::output::{print_json, Table};
use crate::core::names::JailName;
use crate::engine::api::lifecycle::{JailPlan, StatusRow, StepReport};
use crate::error::Result;

/// `jnet plan JAIL --format json` (schemas/plan.schema.json).
#[derive(Debug, Serialize)]
struct PlanReport {
    jail: String,
    verb: String,
    steps: Vec<StepReport>,
}

pub fn plan(p: &JailPlan, format: Format) -> Result<ExitStatus> {
    if format == Format::Json {
        return print_json(&PlanReport {
            jail: p.jail.to_string(),
            verb: p.plan.verb.to_string(),
            steps: StepReport::all(&p.plan, &p.desired),
        });
    }
    print!("{}", p.plan.render(&p.desired));
    if let Some(n) = &p.depend {
        let stop = n.verb == crate::engine::multi::Verb::Stop;
        println!(
            "# jnet {} {} also {}s, first (jail.conf depend): {}; see: jnet plan{} {}",
            n.verb,
            p.jail,
            n.verb,
            n.others.join(", "),
            if stop { " --stop" } else { "" },
            n.order.join(" ")
        );
    }
    Ok(ExitStatus::Ok)
}

pub fn hooked(jail: &JailName, steps: &[String]) -> Result<ExitStatus> {
    for st in steps {
        tracing::info!(%jail, "{st}");
    }
    Ok(ExitStatus::Ok)
}

/// `jnet exec`: like jexec(8), the command's own exit status becomes
/// jnet's.
pub fn exec(code: i32) -> Result<ExitStatus> {
    if code == 0 {
        return Ok(ExitStatus::Ok);
    }
    let _ = std::io::stdout().flush();
    // why: ExitStatus only holds jnet's own codes; a command's status is
    // passed through as is, like jexec does.
    std::process::exit(code.clamp(1, 255));
}

pub fn status(rows: &[StatusRow], format: Format) -> Result<ExitStatus> {
    if format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            jails: &'a [StatusRow],
        }
        return print_json(&Out { jails: rows });
    }
    let mut t = Table::new(&["JID", "NAME", "ADDRESS", "STATE", "PORTS"]);
    for r in rows {
        t.row(vec![
            r.id.map_or_else(|| "-".to_string(), |i| i.to_string()),
            r.name.clone(),
            r.addresses.join(","),
            r.state.clone(),
            r.ports.join(","),
        ]);
    }
    t.print();
    Ok(ExitStatus::Ok)
}
