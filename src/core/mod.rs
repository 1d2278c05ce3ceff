//! The pure core: validated model types, address arithmetic and allocation,
//! configuration schema, jail.conf(5) parsing, port-conflict analysis, the
//! firewall rule IR and its renderers, and the lifecycle planner.
//!
//! Nothing in here touches the file system, processes, sockets or the clock;
//! callers pass text in and get values out.

pub mod alloc;
pub mod check;
pub mod config;
pub mod depend;
pub mod jailconf;
pub mod lifecycle;
pub mod listeners;
pub mod model;
pub mod names;
pub mod plan;
pub mod ports;
pub mod range;
pub mod rules;
pub mod toml_subset;
