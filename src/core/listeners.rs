//! Listening-socket and redirection model, and parsers of listener listings.
//!
//! What it does: turns the text (or JSON) that the `os` adapters fetch into
//! [`Listener`] values:
//!
//! - FreeBSD `sockstat -46lqn` / `-46lwqn` text, both the printf layout of
//!   FreeBSD <= 14 and the libxo layout of FreeBSD 15 ([`parse_sockstat`]),
//!   and `sockstat --libxo json` ([`parse_sockstat_json`]) — sockstat(1);
//! - FreeBSD `netstat -anW -p tcp|udp --libxo json` ([`parse_netstat_json`])
//!   — netstat(1), `usr.bin/netstat/inet.c`;
//! - Linux `/proc/net/{tcp,tcp6,udp,udp6}` ([`parse_proc_net`]) — proc(5).
//!
//! What it does not do: run anything or read files (the pure core does no
//! I/O), map a Linux socket inode to a pid (the adapter walks /proc/*/fd),
//! resolve FreeBSD jids (sockstat has no jail column: the adapter runs it
//! once per jail with `-j` and passes the jail as context), or parse pf/nft
//! redirections (they arrive here already as [`ForeignRedirect`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::core::names::JailName;
use crate::core::ports::{PortRange, Proto};

mod netstat;
mod procnet;
mod sockstat;

pub use netstat::{parse_netstat_json, NetstatContext};
pub use procnet::{parse_proc_net, ProcNetContext, ProcNetFile};
pub use sockstat::{parse_sockstat, parse_sockstat_json, SockstatContext, SockstatLayout};

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
    /// Socket inode (Linux /proc/net/*): the key the adapter uses to find the
    /// owning process through /proc/<pid>/fd. `None` on FreeBSD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

/// A socket in LISTEN state (tcp) or bound and unconnected (udp).
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

impl Listener {
    /// Bound to the unspecified address of its family.
    pub fn is_wildcard(&self) -> bool {
        self.address.is_unspecified()
    }
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

/// Why a listener listing could not be parsed. Every variant names the tool
/// and, for text, the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenerParseError {
    /// FreeBSD 15's sockstat cuts address columns to 21 characters unless
    /// `-w` is given; a cut address cannot be trusted (the port is lost).
    #[error("{tool} line {line}: address {text:?} may be truncated to {width} characters; run it with -w")]
    Truncated {
        tool: &'static str,
        line: usize,
        text: String,
        width: usize,
    },
    /// A row that looks like an Internet socket but does not parse.
    #[error("{tool} line {line}: {reason}: {text:?}")]
    Malformed {
        tool: &'static str,
        line: usize,
        reason: String,
        text: String,
    },
    /// libxo JSON that is not the documented structure.
    #[error("{tool} json: {reason}")]
    Json { tool: &'static str, reason: String },
}

/// Parses a FreeBSD `addr:port` as printed by sockstat (`*` for the
/// unspecified address and for port 0, IPv6 without brackets, scope as
/// `%ifname`). The port is split off at the last `:`.
/// Returns `(address, port)` with `None` for the unspecified address.
pub(crate) fn split_host_port(s: &str) -> Option<(Option<IpAddr>, u16)> {
    let (a, p) = s.rsplit_once(':')?;
    let port = if p == "*" { 0 } else { p.parse::<u16>().ok()? };
    Some((parse_addr(a)?, port))
}

/// `*` → `None` (unspecified), else the numeric address with any `%scope`
/// dropped (the scope does not matter for port conflicts on one host).
pub(crate) fn parse_addr(a: &str) -> Option<Option<IpAddr>> {
    if a == "*" {
        return Some(None);
    }
    let a = a.split_once('%').map_or(a, |(x, _)| x);
    let a = a.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(a);
    let ip: IpAddr = a.parse().ok()?;
    Some(Some(normalize(ip)))
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is an IPv4 socket for conflict
/// purposes.
pub(crate) fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Protocol and families from a FreeBSD protocol name (`tcp4`, `tcp6`,
/// `tcp46`, `udp4`, ...). `None` for everything jnet does not check
/// (sctp, unix `stream`/`dgram`/`seqpack`, `toe`, ...).
pub(crate) fn freebsd_proto(s: &str) -> Option<(Proto, Family)> {
    let (proto, fam) = if let Some(f) = s.strip_prefix("tcp") {
        (Proto::Tcp, f)
    } else if let Some(f) = s.strip_prefix("udp") {
        (Proto::Udp, f)
    } else {
        return None;
    };
    let fam = match fam {
        "4" => Family::V4,
        "6" => Family::V6,
        "46" => Family::Dual,
        _ => return None,
    };
    Some((proto, fam))
}

/// Address families a FreeBSD inpcb serves (`INP_IPV4`/`INP_IPV6` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
    /// An IPv6 socket that also accepts IPv4 (`tcp46`).
    Dual,
}

impl Family {
    /// The concrete wildcard address for a socket of this family.
    pub(crate) fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 | Family::Dual => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("*:80"), Some((None, 80)));
        assert_eq!(split_host_port("*:*"), Some((None, 0)));
        assert_eq!(
            split_host_port("10.0.0.10:53"),
            Some((Some("10.0.0.10".parse().unwrap()), 53))
        );
        assert_eq!(split_host_port("::1:25"), Some((Some("::1".parse().unwrap()), 25)));
        assert_eq!(
            split_host_port("2001:db8::5:443"),
            Some((Some("2001:db8::5".parse().unwrap()), 443))
        );
        assert_eq!(
            split_host_port("fe80::1%lo0:123"),
            Some((Some("fe80::1".parse().unwrap()), 123))
        );
        assert_eq!(
            split_host_port("::ffff:10.1.2.3:8080"),
            Some((Some("10.1.2.3".parse().unwrap()), 8080))
        );
        for bad in ["80", "x:80", "*:http", "1.2.3.4:70000", "", "2001:db8:1234:5678:9a"] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn proto_names() {
        assert_eq!(freebsd_proto("tcp46"), Some((Proto::Tcp, Family::Dual)));
        assert_eq!(freebsd_proto("udp6"), Some((Proto::Udp, Family::V6)));
        assert_eq!(freebsd_proto("tcp4"), Some((Proto::Tcp, Family::V4)));
        for other in ["sctp4", "stream", "dgram", "tcp", "udp64", "toe4"] {
            assert_eq!(freebsd_proto(other), None, "{other}");
        }
    }
}
