//! The `jnet` binary: parse arguments, set up logging, dispatch, map errors
//! to sysexits(3) codes.

use std::process::ExitCode;

use clap::Parser;
use jnet::cli::exit::ExitStatus;
use jnet::cli::{commands, Cli};

/// Restores the default action of SIGPIPE, so that `jnet pf render | head`
/// ends jnet quietly when the reader goes away, as it ends any Unix filter,
/// instead of a panic in print! on EPIPE (Rust ignores SIGPIPE by default).
fn default_sigpipe() {
    #[cfg(unix)]
    {
        use nix::sys::signal::{signal, SigHandler, Signal};
        // SAFETY: called first thing in main, before any thread exists;
        // SIG_DFL installs no handler code.
        #[allow(unsafe_code)]
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitStatus::Ok,
                _ => ExitStatus::Usage,
            };
            let _ = e.print();
            return ExitCode::from(code.code());
        }
    };
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("JNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();

    match commands::run(&cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(e) => {
            // why printable: error texts can quote host-supplied names (H21).
            let text = e.to_string();
            let lines: Vec<_> = text.lines().map(jnet::cli::output::printable).collect();
            eprintln!("jnet: {}", lines.join("\n"));
            ExitCode::from(ExitStatus::of(&e).code())
        }
    }
}
