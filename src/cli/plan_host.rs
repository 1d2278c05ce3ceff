//! Printing `jnet plan` without a jail ([`Engine::plan_host`]'s report):
//! per jail its address and where it comes from, the port check's
//! findings, the firewall rules and the start steps, then the notes.
//!
//! [`Engine::plan_host`]: crate::engine::Engine::plan_host

use crate::cli::args::Format;
use crate::cli::exit::ExitStatus;
use crate::cli::output::print_json;
use crate::engine::api::plan_host::PlanAll;
use crate::error::Result;

pub fn print(report: &PlanAll, format: Format) -> Result<ExitStatus> {
    if format == Format::Json {
        print_json(report)?;
    } else {
        print!("{}", render(report));
    }
    Ok(ExitStatus::Ok)
}

fn render(r: &PlanAll) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for u in &r.unmanaged {
        let _ = writeln!(o, "# {u}");
    }
    let dash = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    for j in &r.jails {
        let n = &j.name;
        let _ = writeln!(o, "== {n}");
        let Some(mode) = j.mode else {
            let _ = writeln!(o, "   no address: jnet assign {n} --inherit | --pool POOL | ADDRESS\n");
            continue;
        };
        let addr = if mode == "inherit" {
            "inherit (host addresses)".to_string()
        } else {
            j.address.clone().unwrap_or_default()
        };
        let _ = writeln!(
            o,
            "   address: {addr} ({}), state {}",
            j.origin.as_deref().unwrap_or(""),
            j.phase.as_deref().unwrap_or("")
        );
        let _ = writeln!(
            o,
            "   ports: {}; exposes: {}; nat: {}",
            dash(&j.ports),
            dash(&j.exposes),
            if j.nat { "yes" } else { "no" }
        );
        for f in &j.findings {
            let sev = if f.severity == "error" { "conflict" } else { "warning" };
            let _ = writeln!(o, "   {sev}: {}", f.message);
        }
        if let Some(p) = &j.problem {
            let _ = writeln!(o, "   {p}\n");
            continue;
        }
        if let Some(f) = &j.firewall {
            let _ = writeln!(o, "   firewall: {} rule(s) in {}", f.rules, f.anchor);
        }
        if j.steps.is_empty() {
            let _ = writeln!(o, "   {n}: already running; nothing to do");
        }
        for (i, st) in j.steps.iter().enumerate() {
            let _ = write!(o, "   {}. {}", i + 1, st.action);
            if let Some(u) = &st.undo {
                let _ = write!(o, "  [undo: {u}]");
            }
            o.push('\n');
        }
        o.push('\n');
    }
    if let Some(c) = &r.port_check {
        let _ = writeln!(o, "port check: {} conflict(s), {} warning(s)", c.conflicts, c.warnings);
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}
