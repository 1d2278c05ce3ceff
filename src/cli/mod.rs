//! Command-line interface in two layers: `args` (clap structs, raw flags)
//! and `commands` (turns flags into requests, calls the one `Engine`
//! method of the command); the other modules print the engine's reports.
//! `main` only parses, sets up logging, dispatches and maps exit codes.
//! Nothing here reads the store or touches the host.

pub mod addresses;
pub mod args;
pub mod commands;
pub mod completions;
pub mod exit;
pub mod firewall;
pub mod fleet;
pub mod lifecycle;
pub mod metrics;
pub mod multi;
pub mod output;
pub mod plan_host;
pub mod reports;

pub use args::Cli;
