//! Command-line interface in two layers: `args` (clap structs, raw flags)
//! and `commands` (handlers that validate, call the engine, print).
//! `main` only parses, sets up logging, dispatches and maps exit codes.

pub mod args;
pub mod commands;
pub mod completions;
pub mod firewall;
pub mod lifecycle;
pub mod output;
pub mod metrics;
pub mod plan_all;

pub use args::Cli;
