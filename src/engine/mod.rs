//! The engine: the only layer that combines config, jail.conf, inventory and
//! host adapters. It builds desired state, observes the host, plans, and
//! applies with rollback. Output formatting is the CLI's job.

pub mod addresses;
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
