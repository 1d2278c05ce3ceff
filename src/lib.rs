//! jnet — jail networking and firewall controller.
//!
//! Layers (data flows one way): `cli` -> `engine` -> `core` (pure), `store`
//! (inventory on disk) and `os` (the only place with syscalls, netlink,
//! ioctls and external commands). See DESIGN.md for the architecture.
#![deny(unsafe_code)]

pub mod cli;
pub mod core;
pub mod engine;
pub mod error;
pub mod os;
pub mod store;

pub use error::{Error, ErrorKind, Result};
