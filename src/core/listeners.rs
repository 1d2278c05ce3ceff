//! Listening-socket and redirection model, and parsers of listener listings
//! (FreeBSD sockstat/netstat output, Linux /proc/net/*). No I/O: adapters in
//! `os` fetch the text or netlink data and hand it here.

use std::net::IpAddr;

use serde::Serialize;

use crate::core::names::JailName;
use crate::core::ports::{PortRange, Proto};

/// Which network stack a socket or claim lives in. Conflicts exist only
/// within one stack.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Stack {
    /// The host's stack (host daemons, inherit jails, FreeBSD non-VNET jails).
    Host,
    /// A jail's own stack (Linux netns jail, FreeBSD VNET jail).
    Jail(JailName),
}

/// Who owns a socket, as far as the OS tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub pid: Option<u32>,
    pub command: Option<String>,
    /// Jail name (FreeBSD jid resolved to a name) or jnet namespace.
    pub jail: Option<String>,
}

/// A socket in LISTEN state (tcp) or bound (udp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub proto: Proto,
    /// Local address; unspecified (`0.0.0.0` / `::`) means wildcard.
    pub address: IpAddr,
    pub port: u16,
    /// An IPv6 socket that also accepts IPv4 (FreeBSD `tcp46`, Linux
    /// `[::]` without IPV6_V6ONLY).
    pub dual_stack: bool,
    pub stack: Stack,
    pub owner: Owner,
}

/// A redirection of host ports that jnet does not own (another pf anchor,
/// pf.conf itself, another nft table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignRedirect {
    pub proto: Proto,
    pub ports: PortRange,
    /// Destination address the rule matches, `None` for any / interface.
    pub address: Option<IpAddr>,
    /// Where it comes from: pf anchor path, "pf.conf", or "nft table <name>".
    pub owner: String,
    /// The rule text as listed, for messages.
    pub rule: String,
}
