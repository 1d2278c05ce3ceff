//! jnet's integration tests, one test binary (issue 9 A7): each module is
//! one subject (the CLI, schemas, corpus conformance, the Linux backend end
//! to end, shared pools against a real PostgreSQL), the helpers they share
//! are `common`. One binary links once, and `cargo test --test tests
//! <module>::` runs one subject. Linux-only modules are empty elsewhere.

mod common;

mod check_analysis;
mod check_linux;
mod cli;
mod completions;
mod crash_torture;
mod dualstack_linux;
mod facts_cache;
mod firewall_linux;
mod fleet_cli;
mod fleet_pg;
mod jailconf_corpus;
mod lifecycle_linux;
mod linux_os;
mod listeners_corpus;
mod manpage;
mod multi_linux;
mod packaging;
mod pf_corpus;
mod pf_grammar;
mod rules_golden;
mod schemas;
mod walkthrough_linux;
