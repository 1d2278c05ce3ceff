//! Handlers of the lifecycle verbs over several jails: `start`, `stop`,
//! `restart JAIL... | --all` and `plan JAIL JAIL... | --all`. They parse the
//! targets, call `engine::multi` and print its summary; the walk itself
//! (depend order, skipping, refusals) is the engine's.
//!
//! Output: each jail's steps and outcome, in the order the jails ran, and
//! a summary line when more than one jail was touched. With `--all` a
//! successful walk prints nothing unless `-v` (an rc.d script at boot wants
//! silence when all is well); a failure always prints every jail's outcome
//! and exits with the first failed jail's status.

use serde::Serialize;

use crate::cli::args::{Format, JailsArgs};
use crate::cli::commands::targets;
use crate::cli::exit::ExitStatus;
use crate::cli::output::{print_json, printable};
use crate::engine::api::lifecycle::StepReport;
use crate::engine::multi::{JailResult, Planned, Summary, Verb};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// `jnet start|stop|restart JAIL... | --all`.
pub fn lifecycle(e: &Engine, verb: Verb, a: &JailsArgs, quiet: bool) -> Result<ExitStatus> {
    let summary = e.run(verb, &targets(&a.jails, a.all)?)?;
    if a.format == Format::Json {
        print_json(&summary)?;
        return finish_as(&summary, true, true);
    }
    finish(&summary, a.all && quiet)
}

/// Prints `summary` (unless `quiet` and all went well) and turns it into
/// the exit status.
fn finish(summary: &Summary, quiet: bool) -> Result<ExitStatus> {
    finish_as(summary, quiet, false)
}

/// [`finish`]; `json`: the summary was printed as JSON already.
fn finish_as(summary: &Summary, quiet: bool, json: bool) -> Result<ExitStatus> {
    let first = summary.first_error();
    // One jail that failed: its own error, exactly as a one-jail verb
    // always reported it (message and exit status).
    if let ([j], Some(kind)) = (summary.jails.as_slice(), first) {
        return Err(Error::Step {
            kind,
            message: j
                .error
                .clone()
                .unwrap_or_else(|| format!("{} {}: failed", summary.verb, j.jail)),
        });
    }
    if !quiet {
        print!("{}", text(summary, true));
    } else if first.is_some() && !json {
        print!("{}", text(summary, false));
    }
    match first {
        None => Ok(ExitStatus::Ok),
        Some(kind) => Err(Error::Step {
            kind,
            message: failure_message(summary),
        }),
    }
}

/// The text report: per jail its steps (when `steps`) and outcome, then
/// the summary line when more than one jail was touched.
pub fn text(summary: &Summary, steps: bool) -> String {
    let mut out = String::new();
    if summary.jails.is_empty() {
        return format!(
            "{}: no jails with an address in the inventory; nothing to do\n",
            summary.verb
        );
    }
    for j in &summary.jails {
        if steps {
            for st in &j.steps {
                out.push_str(&format!("  {}\n", printable(st)));
            }
        }
        let line = match j.outcome {
            JailResult::AlreadyRunning => format!("{}: already running; nothing changed", j.jail),
            JailResult::AlreadyStopped => format!("{}: already stopped; nothing changed", j.jail),
            JailResult::Failed => format!(
                "{}: {} failed: {}",
                j.jail,
                summary.verb,
                printable(j.error.as_deref().unwrap_or("unknown error"))
            ),
            JailResult::Skipped => format!(
                "{}: skipped: {} did not {}",
                j.jail,
                j.because.as_deref().unwrap_or("a jail it waits for"),
                summary.verb
            ),
            _ => format!("{}: {}", j.jail, j.outcome.as_str()),
        };
        out.push_str(&line);
        out.push('\n');
    }
    if summary.jails.len() > 1 {
        out.push_str(&summary.line());
        out.push('\n');
    }
    out
}

/// The error `main` prints on stderr after a walk with failures: each
/// failed jail with its error, then the jails skipped because of them.
fn failure_message(summary: &Summary) -> String {
    let failed: Vec<String> = summary
        .jails
        .iter()
        .filter(|j| j.outcome == JailResult::Failed)
        .map(|j| format!("{}: {}", j.jail, j.error.as_deref().unwrap_or("unknown error")))
        .collect();
    let skipped: Vec<&str> = summary
        .jails
        .iter()
        .filter(|j| j.outcome == JailResult::Skipped)
        .map(|j| j.jail.as_str())
        .collect();
    let mut m = format!(
        "{}: {} of {} jail(s) failed: {}",
        summary.verb,
        failed.len(),
        summary.jails.len(),
        failed.join("; ")
    );
    if !skipped.is_empty() {
        m.push_str(&format!("; skipped because of them: {}", skipped.join(", ")));
    }
    m
}

/// `jnet plan JAIL JAIL... | --all [--stop] [--format json]`
/// (schemas/plan-multi.schema.json).
pub fn plan(planned: &[Planned], stop: bool, format: Format) -> Result<ExitStatus> {
    let report = PlanMulti {
        verb: if stop { "stop" } else { "start" },
        jails: planned
            .iter()
            .map(|p| {
                let (steps, text, error, because) = match &p.plan {
                    Ok(Ok((plan, d))) => (StepReport::all(plan, d), Some(plan.render(d)), None, None),
                    Ok(Err(e)) => (vec![], None, Some(e.to_string()), None),
                    Err(because) => (vec![], None, None, Some(because.clone())),
                };
                (
                    JailPlan {
                        jail: p.jail.clone(),
                        target: p.target,
                        steps,
                        error,
                        skipped_because: because,
                    },
                    text,
                )
            })
            .collect(),
    };
    let failed = report.jails.iter().any(|(j, _)| j.error.is_some());
    if format == Format::Json {
        #[derive(Serialize)]
        struct Out<'a> {
            verb: &'a str,
            jails: Vec<&'a JailPlan>,
        }
        print_json(&Out {
            verb: report.verb,
            jails: report.jails.iter().map(|(j, _)| j).collect(),
        })?;
    } else {
        for (j, text) in &report.jails {
            println!(
                "# {} {}{}",
                report.verb,
                j.jail,
                if j.target { "" } else { " (depend)" }
            );
            match (text, &j.error, &j.skipped_because) {
                (Some(t), _, _) => print!("{t}"),
                (None, Some(e), _) => println!("cannot plan: {}", printable(e)),
                (None, None, Some(b)) => println!("skipped: {b} cannot be planned"),
                (None, None, None) => {}
            }
        }
    }
    Ok(if failed { ExitStatus::DataErr } else { ExitStatus::Ok })
}

struct PlanMulti {
    verb: &'static str,
    jails: Vec<(JailPlan, Option<String>)>,
}

/// One jail of `jnet plan` over several jails.
#[derive(Debug, Serialize)]
struct JailPlan {
    jail: String,
    /// Named by the command (or --all), not pulled in by depend.
    target: bool,
    steps: Vec<StepReport>,
    /// Why the jail cannot be planned; null when it can.
    error: Option<String>,
    /// The jail it waits for that cannot be planned; null otherwise.
    skipped_because: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::multi::JailOutcome;

    fn o(jail: &str, outcome: JailResult) -> JailOutcome {
        JailOutcome {
            jail: jail.into(),
            outcome,
            target: true,
            steps: vec!["create jail".into()],
            because: None,
            error: None,
            kind: None,
        }
    }

    #[test]
    fn text_and_exit_of_a_walk() {
        let mut db = o("db", JailResult::Failed);
        db.error = Some("start db: step create failed".into());
        db.kind = Some(crate::error::ErrorKind::Unavailable);
        let mut www = o("www", JailResult::Skipped);
        www.because = Some("db".into());
        let s = Summary {
            verb: Verb::Start,
            jails: vec![o("base", JailResult::Started), db, www],
        };
        assert_eq!(
            text(&s, true),
            "  create jail\nbase: started\n  create jail\ndb: start failed: start db: step create failed\n  \
             create jail\nwww: skipped: db did not start\nstart: 3 jail(s): 1 started, 1 failed (db), 1 skipped (www)\n"
        );
        let e = finish(&s, true).unwrap_err();
        assert_eq!(ExitStatus::of(&e), ExitStatus::Unavailable);
        assert_eq!(
            e.to_string(),
            "start: 1 of 3 jail(s) failed: db: start db: step create failed; skipped because of them: www"
        );
        // Quiet and all well: nothing printed, exit 0.
        let ok = Summary {
            verb: Verb::Start,
            jails: vec![o("base", JailResult::AlreadyRunning)],
        };
        assert_eq!(finish(&ok, true).unwrap(), ExitStatus::Ok);
        assert_eq!(text(&ok, false), "base: already running; nothing changed\n");
        // One jail failing keeps its own message and status.
        let mut one = o("www", JailResult::Failed);
        one.error = Some("start www: step x failed".into());
        one.kind = Some(crate::error::ErrorKind::Conflicts);
        let s = Summary {
            verb: Verb::Start,
            jails: vec![one],
        };
        let e = finish(&s, false).unwrap_err();
        assert_eq!(
            (ExitStatus::of(&e), e.to_string()),
            (ExitStatus::Findings, "start www: step x failed".into())
        );
    }
}
