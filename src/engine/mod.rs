//! The engine: combines config, inventory and host adapters; builds desired
//! state, observes the host, plans and applies with rollback.

pub mod jailconf_fs;
