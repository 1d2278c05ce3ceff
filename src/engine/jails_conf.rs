//! What the engine takes from jail.conf: each jail's IPv4 mode, static
//! addresses and interface, reduced from the full parse in `core::jailconf`.

use std::net::Ipv4Addr;

/// One jail of jail.conf as far as addresses are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Reads jail.conf at `path` (with its includes) and reduces each jail.
pub fn read(path: &std::path::Path) -> crate::error::Result<Vec<ConfJail>> {
    Err(crate::error::Error::Unavailable(format!(
        "{}: jail.conf reading is not wired yet",
        path.display()
    )))
}
