//! The engine: the only layer that combines config, jail.conf, inventory and
//! host adapters. It builds desired state, observes the host, plans, and
//! applies with rollback. Output formatting is the CLI's job.

pub mod addresses;
pub mod report;
pub mod jails_conf;
pub mod sources;
