//! What the engine takes from jail.conf: each jail's IPv4 mode, static
//! addresses and interface (for assignment), and the parameters the
//! lifecycle needs (path, hostname, exec.* lists, allow.*), reduced from the
//! full parse in `core::jailconf`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::core::plan::ExecHooks;

/// One jail of jail.conf as far as jnet is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfJail {
    pub name: String,
    /// `file:line` of the jail's block.
    pub location: String,
    /// `ip4 = inherit`.
    pub inherit: bool,
    /// Addresses from `ip4.addr` (with their `iface|` prefix when given).
    pub addrs: Vec<(Option<String>, Ipv4Addr)>,
    /// The `interface` parameter.
    pub interface: Option<String>,
    /// `path` (None: `/`).
    pub path: Option<PathBuf>,
    /// `host.hostname`.
    pub hostname: Option<String>,
    /// `exec.prestart`, `exec.start`, ... in jail.conf order (`+=` appends).
    pub exec: ExecHooks,
    /// Other jail(2) parameters jnet passes through (`allow.*`, ...), as
    /// `name=value` pairs; boolean parameters set without a value are
    /// `("allow.raw_sockets", "true")`.
    pub params: Vec<(String, String)>,
}

/// Reads jail.conf at `path` (with its includes) and reduces each jail.
pub fn read(path: &std::path::Path) -> crate::error::Result<Vec<ConfJail>> {
    Err(crate::error::Error::Unavailable(format!(
        "{}: jail.conf reading is not wired yet",
        path.display()
    )))
}
