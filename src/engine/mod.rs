//! The engine: the only layer that combines config, jail.conf, inventory and
//! host adapters. [`Engine`] (in `api`) is jnet's one API, one method per
//! command; the other modules are the pieces its verbs combine (desired
//! state, allocation, the lifecycle runner, rule rendering, reports).
//! Output formatting and exit codes are the CLI's job.

pub mod addresses;
pub mod api;
pub mod desired;
pub mod facts_cache;
// why: test support only; the binary never builds it (issue 9 A7). Unit
// tests get it through cfg(test), integration tests and benches through
// the `test-hooks` feature their dev-dependency on jnet enables.
#[cfg(any(test, feature = "test-hooks"))]
pub mod fake_host;
pub mod firewall;
pub mod host;
pub mod jailconf_fs;
pub mod jails;
pub mod jails_conf;
pub mod lifecycle;
pub mod multi;
pub mod portcheck;
pub mod report;
pub mod snapshot;
pub mod sources;

pub use api::{Engine, Options};
