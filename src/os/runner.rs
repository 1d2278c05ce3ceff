//! The one runner for external tools (pfctl, nft, sockstat, netstat).
//!
//! It logs the full command at debug level, feeds optional stdin, reads
//! stdout and stderr without deadlocking (stdin is written from a thread),
//! and turns a non-zero exit into `OsError::Command` carrying program,
//! arguments, status and stderr. Arguments are passed as a vector, never
//! through a shell.

use std::io::Write;
use std::process::{Command, Stdio};

use super::OsError;

/// Output of a successful command.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args...`, optionally with `stdin`; fails on non-zero exit.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<Output, OsError> {
    let (code, out) = run_status(program, args, stdin)?;
    if code != Some(0) {
        return Err(OsError::Command {
            program: program.to_string(),
            args: args.join(" "),
            status: code.map_or_else(|| "a signal".to_string(), |c| format!("status {c}")),
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out)
}

/// Runs a command and returns its exit code (None when killed by a signal)
/// and output, whatever the code.
pub fn run_status(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(Option<i32>, Output), OsError> {
    tracing::debug!(program, ?args, stdin_bytes = stdin.map_or(0, str::len), "run");
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OsError::Missing(program.to_string()),
            _ => OsError::Sys {
                op: format!("spawn {program}"),
                source: e,
            },
        })?;
    // why: writing stdin from this thread while the child fills its stdout
    // pipe can deadlock; a writer thread keeps both sides moving.
    let writer = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_string();
            Some(std::thread::spawn(move || pipe.write_all(text.as_bytes())))
        }
        _ => None,
    };
    let out = child.wait_with_output().map_err(|e| OsError::Sys {
        op: format!("wait for {program}"),
        source: e,
    })?;
    if let Some(w) = writer {
        // A child that exits without reading stdin gives EPIPE: its exit
        // status and stderr say more than the broken pipe does.
        let _ = w.join();
    }
    let code = out.status.code();
    tracing::debug!(program, ?code, "exited");
    Ok((
        code,
        Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_stdout_and_stdin() {
        let out = run("cat", &[], Some("hello")).unwrap();
        assert_eq!(out.stdout, "hello");
    }

    #[test]
    fn failure_carries_stderr_and_args() {
        let err = run("sh", &["-c", "echo boom >&2; exit 3"], None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("status 3") && msg.contains("boom") && msg.contains("-c"),
            "{msg}"
        );
    }

    #[test]
    fn missing_program() {
        assert!(matches!(
            run("/nonexistent/jnet-tool", &[], None),
            Err(OsError::Missing(_))
        ));
    }
}
