//! Linux `/proc/net/{tcp,tcp6,udp,udp6}` (proc(5), `net/ipv4/tcp_ipv4.c`,
//! `net/ipv6/tcp_ipv6.c`, `net/ipv4/udp.c`).
//!
//! Row: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when
//! retrnsmt uid timeout inode ...`. Addresses are hex: IPv4 as one `%08X`
//! of the address in network order read as a native `u32`, IPv6 as four such
//! words; ports are `%04X` in host order. Listeners are tcp rows in state
//! `0A` (LISTEN) and udp rows in state `07` (unconnected) with a local port.
//!
//! Limitation: /proc does not show IPV6_V6ONLY. An IPv6 socket on `::` is
//! taken as dual-stack unless `bindv6only` (from
//! /proc/sys/net/ipv6/bindv6only) says new sockets default to v6-only; a
//! program that sets IPV6_V6ONLY itself (nginx's default for `[::]`) is then
//! still reported dual-stack, which can only over-report a v4 conflict.
//! sock_diag netlink (INET_DIAG_SKV6ONLY) gives the exact flag.
//!
//! Owners are not resolved here: the inode is kept in [`Owner::inode`] for
//! the adapter to map to a pid.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{normalize, Listener, ListenerParseError, Owner, Stack};
use crate::core::ports::Proto;

const TOOL: &str = "/proc/net";

/// Which /proc/net file the text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcNetFile {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
}

impl ProcNetFile {
    /// File name under /proc/net (also /proc/<pid>/net for a namespace).
    pub fn file_name(self) -> &'static str {
        match self {
            ProcNetFile::Tcp => "tcp",
            ProcNetFile::Tcp6 => "tcp6",
            ProcNetFile::Udp => "udp",
            ProcNetFile::Udp6 => "udp6",
        }
    }
    pub const ALL: [ProcNetFile; 4] = [ProcNetFile::Tcp, ProcNetFile::Tcp6, ProcNetFile::Udp, ProcNetFile::Udp6];

    fn proto(self) -> Proto {
        match self {
            ProcNetFile::Tcp | ProcNetFile::Tcp6 => Proto::Tcp,
            ProcNetFile::Udp | ProcNetFile::Udp6 => Proto::Udp,
        }
    }
    fn v6(self) -> bool {
        matches!(self, ProcNetFile::Tcp6 | ProcNetFile::Udp6)
    }
}

/// Where a /proc/net listing comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcNetContext {
    /// The network namespace read: host, or a jail's netns.
    pub stack: Stack,
    /// The jail owning that namespace, if any.
    pub jail: Option<String>,
    /// `/proc/sys/net/ipv6/bindv6only` of that namespace is 1.
    pub bindv6only: bool,
}

const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// Parses one /proc/net/{tcp,tcp6,udp,udp6} file.
pub fn parse_proc_net(
    text: &str,
    file: ProcNetFile,
    ctx: &ProcNetContext,
) -> Result<Vec<Listener>, ListenerParseError> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.is_empty() || toks[0] == "sl" {
            continue;
        }
        let malformed = |reason: &str| ListenerParseError::Malformed {
            tool: TOOL,
            line: lineno,
            reason: format!("{}: {reason}", file.file_name()),
            text: line.to_string(),
        };
        if toks.len() < 10 || !toks[0].ends_with(':') {
            return Err(malformed("expected at least 10 columns"));
        }
        let state = toks[3];
        let wanted = match file.proto() {
            Proto::Tcp => TCP_LISTEN,
            Proto::Udp => UDP_UNCONNECTED,
        };
        if !state.eq_ignore_ascii_case(wanted) {
            continue;
        }
        let (addr, port) = hex_endpoint(toks[1], file.v6()).ok_or_else(|| malformed("bad local address"))?;
        if port == 0 {
            continue;
        }
        let inode: u64 = toks[9].parse().map_err(|_| malformed("bad inode"))?;
        let address = normalize(addr);
        let dual_stack = matches!(addr, IpAddr::V6(a) if a.is_unspecified()) && !ctx.bindv6only;
        out.push(Listener {
            proto: file.proto(),
            address,
            port,
            dual_stack,
            stack: ctx.stack.clone(),
            owner: Owner {
                pid: None,
                command: None,
                jail: ctx.jail.clone(),
                inode: Some(inode),
            },
        });
    }
    Ok(out)
}

/// `0100007F:0277` → 127.0.0.1:631. The address words are the kernel's
/// in-memory (network-order) bytes printed as native u32s, so decoding uses
/// native byte order: this parses the /proc of the machine it runs on.
fn hex_endpoint(s: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(u32::to_ne_bytes);
    let addr = if v6 {
        if a.len() != 32 || !a.is_ascii() {
            return None;
        }
        let mut b = [0u8; 16];
        for i in 0..4 {
            b[i * 4..i * 4 + 4].copy_from_slice(&word(&a[i * 8..i * 8 + 8])?);
        }
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        if a.len() != 8 {
            return None;
        }
        IpAddr::V4(Ipv4Addr::from(word(a)?))
    };
    Some((addr, port))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    fn ctx(bindv6only: bool) -> ProcNetContext {
        ProcNetContext {
            stack: Stack::Host,
            jail: None,
            bindv6only,
        }
    }

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21419 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19832 1 0000000000000000 100 0 0 10 0
   2: 0500000A:0016 0700000A:C350 01 00000000:00000000 02:000A7B2F 00000000     0        0 99123 4 0000000000000000 20 4 29 10 -1
";

    #[test]
    fn tcp_v4() {
        let ls = parse_proc_net(TCP, ProcNetFile::Tcp, &ctx(false)).unwrap();
        assert_eq!(ls.len(), 2);
        assert_eq!((ls[0].address, ls[0].port), ("127.0.0.1".parse().unwrap(), 631));
        assert_eq!(ls[0].owner.inode, Some(21419));
        assert_eq!(
            (ls[1].address, ls[1].port, ls[1].dual_stack),
            ("0.0.0.0".parse().unwrap(), 22, false)
        );
    }

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3002 1 0000000000000000 100 0 0 10 0
   2: B80D0120000000000000000005000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3003 1 0000000000000000 100 0 0 10 0
   3: 0000000000000000FFFF00000500000A:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3004 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn tcp_v6_and_dual_stack() {
        let ls = parse_proc_net(TCP6, ProcNetFile::Tcp6, &ctx(false)).unwrap();
        assert_eq!(ls.len(), 4);
        assert_eq!(
            (ls[0].address, ls[0].port, ls[0].dual_stack),
            ("::".parse().unwrap(), 80, true)
        );
        assert_eq!(
            (ls[1].address, ls[1].port, ls[1].dual_stack),
            ("::1".parse().unwrap(), 8080, false)
        );
        assert_eq!(ls[2].address, "2001:db8::5".parse::<IpAddr>().unwrap());
        assert_eq!(ls[3].address, "10.0.0.5".parse::<IpAddr>().unwrap(), "v4-mapped is v4");
        let ls = parse_proc_net(TCP6, ProcNetFile::Tcp6, &ctx(true)).unwrap();
        assert!(!ls[0].dual_stack, "bindv6only=1 makes :: v6-only");
    }

    #[test]
    fn udp_unconnected_only() {
        let udp = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 501 2 0000000000000000 0
  101: 0500000A:A000 3500000A:0035 01 00000000:00000000 00:00000000 00000000     0        0 502 2 0000000000000000 0
  102: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 503 2 0000000000000000 0
";
        let ls = parse_proc_net(udp, ProcNetFile::Udp, &ctx(false)).unwrap();
        assert_eq!(ls.len(), 1);
        assert_eq!((ls[0].proto, ls[0].port), (Proto::Udp, 53));
    }

    #[test]
    fn malformed_rows() {
        let e = parse_proc_net(
            "   0: zz:0016 00000000:0000 0A 0 0 0 0 0 1\n",
            ProcNetFile::Tcp,
            &ctx(false),
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(parse_proc_net("   0: 0100007F:0277\n", ProcNetFile::Tcp, &ctx(false)).is_err());
        assert!(parse_proc_net("", ProcNetFile::Tcp, &ctx(false)).unwrap().is_empty());
    }
}
