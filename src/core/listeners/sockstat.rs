//! FreeBSD sockstat(1) listings: text (`sockstat -46lqn`, `-46lwqn`) and
//! `sockstat --libxo json`.
//!
//! Text layouts (see corpus/cmdout/FORMATS.md, read from
//! `usr.bin/sockstat/sockstat.c` and the FreeBSD 15 `main.c`):
//! - printf layout (FreeBSD <= 14): columns are placed by a cursor, so a long
//!   user name, pid or address pushes later columns right and nothing but
//!   COMMAND is ever cut. Only a whitespace split is robust.
//! - libxo layout (FreeBSD 15): per-run column widths, single-space
//!   separators, and without `-w` the address columns are cut to 21
//!   characters. A cut address is reported as
//!   [`ListenerParseError::Truncated`], never guessed at.
//!
//! Rows: `USER COMMAND PID FD PROTO LOCAL FOREIGN [extra columns]`. Rows
//! without an owning process print `?` (printf) or `??` (libxo) in the first
//! four columns. Only tcp/udp rows are kept; unix and sctp rows are skipped,
//! and so are FreeBSD 15's continuation rows (`??` in the first five
//! columns). PROTO is found from the right, since COMMAND may hold blanks
//! and is chosen by whoever runs the process (H22).
//! sockstat has no jail column: the caller says which jail/stack the listing
//! belongs to (it runs `sockstat -j <jail>` per jail when it needs that).

use serde_json::Value;

use super::{freebsd_proto, parse_addr, split_host_port, Family, Listener, ListenerParseError, Owner, Stack};
use crate::core::ports::Proto;

const TOOL: &str = "sockstat";

/// Width FreeBSD 15's sockstat cuts address columns to without `-w`.
const LIBXO_ADDR_WIDTH: usize = 21;

/// Which sockstat text layout to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockstatLayout {
    /// FreeBSD <= 14: printf with a moving cursor; never truncates addresses.
    Printf,
    /// FreeBSD >= 15: libxo; address columns cut to 21 characters unless
    /// `wide` (`-w`).
    Libxo { wide: bool },
}

impl SockstatLayout {
    /// The layout of FreeBSD release `major` (from `uname -r` or
    /// `kern.osreldate / 100000`), run with or without `-w`.
    pub fn for_release(major: u32, wide: bool) -> Self {
        if major >= 15 {
            SockstatLayout::Libxo { wide }
        } else {
            SockstatLayout::Printf
        }
    }

    fn truncates(self) -> bool {
        matches!(self, SockstatLayout::Libxo { wide: false })
    }
}

/// Where a sockstat listing comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockstatContext {
    /// The stack the sockets live in: `Host` for a host-wide listing and for
    /// `-j` on a non-VNET jail; the jail's own for `-j` on a VNET jail.
    pub stack: Stack,
    /// The jail the listing was filtered to with `-j`, if any.
    pub jail: Option<String>,
}

impl SockstatContext {
    /// A host-wide listing (no `-j`).
    pub fn host() -> Self {
        SockstatContext {
            stack: Stack::Host,
            jail: None,
        }
    }
}

fn is_num_or_unknown(t: &str) -> bool {
    t == "?" || t == "??" || (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
}

fn known(t: &str) -> Option<&str> {
    (t != "?" && t != "??").then_some(t)
}

/// Parses `sockstat -46l[w]qn` text (a header line is skipped if present).
pub fn parse_sockstat(
    text: &str,
    layout: SockstatLayout,
    ctx: &SockstatContext,
) -> Result<Vec<Listener>, ListenerParseError> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        // why: SCTP multi-address continuation lines start at the address
        // columns with blanks; tcp/udp never have them.
        if line.trim().is_empty() || line.starts_with(char::is_whitespace) {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks[0] == "USER" && toks.get(1) == Some(&"COMMAND") {
            continue;
        }
        let malformed = |reason: &str| ListenerParseError::Malformed {
            tool: TOOL,
            line: lineno,
            reason: reason.to_string(),
            text: line.to_string(),
        };
        // why: FreeBSD 15 prints each further local/foreign address of a
        // multi-address (SCTP) socket on its own row with `??` in USER,
        // COMMAND, PID, FD and PROTO (freebsd-src f48c6390
        // usr.bin/sockstat/main.c display_sock()). Owner-less sockets print
        // `??` in the first four columns only, with a real PROTO, so five
        // `??` mean a continuation row (F7).
        if toks.len() >= 5 && toks[..5].iter().all(|t| *t == "??") {
            continue;
        }
        // why: COMMAND is process-controlled (p_comm, up to MAXCOMLEN = 19
        // bytes, from the executable's file name) and may contain blanks,
        // even a fake `1 2 tcp4 *:80`. Everything from PID on is printed by
        // sockstat itself in a fixed format, so PROTO is anchored from the
        // right: the LAST word that follows two numeric (or unknown) columns
        // and is itself followed by a parseable local address (H22).
        let p = (4..toks.len())
            .rev()
            .find(|&i| {
                is_num_or_unknown(toks[i - 2])
                    && is_num_or_unknown(toks[i - 1])
                    && toks[i].bytes().all(|b| b.is_ascii_alphanumeric())
                    && toks[i].bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                    && local_follows(&toks, i)
            })
            .ok_or_else(|| malformed("no USER COMMAND PID FD PROTO LOCAL columns"))?;
        let Some((proto, mut fam)) = freebsd_proto(toks[p]) else {
            continue; // unix, sctp, ...: not ours
        };
        let mut l = p + 1;
        // why: one corpus capture (Mail-Toaster-6 issue 153) shows `tcp4 6`
        // for `tcp46`; accept that mangling rather than mis-reading `6` as
        // the local address.
        if fam == Family::V4 && toks.get(l) == Some(&"6") {
            fam = Family::Dual;
            l += 1;
        }
        let local = *toks.get(l).ok_or_else(|| malformed("missing local address"))?;
        let foreign = toks.get(l + 1).copied();
        if layout.truncates() && local.len() >= LIBXO_ADDR_WIDTH {
            return Err(ListenerParseError::Truncated {
                tool: TOOL,
                line: lineno,
                text: local.to_string(),
                width: LIBXO_ADDR_WIDTH,
            });
        }
        let (addr, port) = split_host_port(local).ok_or_else(|| malformed("bad local address"))?;
        if port == 0 {
            continue; // bound to no port yet
        }
        // With -s a state column follows; keep only LISTEN for tcp.
        let extra = toks.get(l + 2..).unwrap_or(&[]);
        let unconnected = matches!(foreign, None | Some("*:*"));
        let keep = match proto {
            Proto::Tcp => unconnected && !extra.iter().any(|t| is_tcp_state(t) && *t != "LISTEN"),
            Proto::Udp => unconnected,
        };
        if !keep {
            continue;
        }
        let pid = known(toks[p - 2]).and_then(|t| t.parse().ok());
        let command = toks[1..p - 2].join(" ");
        out.push(make(
            proto,
            fam,
            addr,
            port,
            ctx,
            pid,
            known(&command).map(str::to_string),
        ));
    }
    Ok(out)
}

/// Whether the word after PROTO at `i` (or after the `6` of the mangled
/// `tcp4 6`, see below) is an address column: `host:port`, `*:port`, or a
/// unix path / `(not connected)`-style column of a non-inet row.
fn local_follows(toks: &[&str], i: usize) -> bool {
    let mut l = i + 1;
    if toks.get(l) == Some(&"6") && toks.get(l + 1).is_some() {
        l += 1;
    }
    match toks.get(l) {
        // why: a cut libxo address (no `-w`) need not split; it is
        // reported as Truncated further on, not as malformed.
        Some(t) if freebsd_proto(toks[i]).is_some() => split_host_port(t).is_some() || t.len() >= LIBXO_ADDR_WIDTH,
        // why: unix/sctp rows are skipped later; any column will do.
        Some(_) => true,
        None => freebsd_proto(toks[i]).is_none(),
    }
}

fn is_tcp_state(t: &str) -> bool {
    matches!(
        t,
        "CLOSED"
            | "LISTEN"
            | "SYN_SENT"
            | "SYN_RCVD"
            | "ESTABLISHED"
            | "CLOSE_WAIT"
            | "FIN_WAIT_1"
            | "CLOSING"
            | "LAST_ACK"
            | "FIN_WAIT_2"
            | "TIME_WAIT"
    )
}

fn make(
    proto: Proto,
    fam: Family,
    addr: Option<std::net::IpAddr>,
    port: u16,
    ctx: &SockstatContext,
    pid: Option<u32>,
    command: Option<String>,
) -> Listener {
    let address = addr.unwrap_or_else(|| fam.unspecified());
    Listener {
        proto,
        address,
        port,
        dual_stack: fam == Family::Dual && address.is_unspecified(),
        stack: ctx.stack.clone(),
        owner: Owner {
            pid,
            command,
            jail: ctx.jail.clone(),
            inode: None,
        },
    }
}

/// Parses `sockstat -46l --libxo json` (FreeBSD 15): container `sockstat`,
/// list `socket`, per socket `user`, `command`, `pid`, `fd`, `proto`,
/// `local`/`foreign` containers with `address` and `port`, and optionally
/// `conn-state`. Addresses are never truncated in JSON.
pub fn parse_sockstat_json(text: &str, ctx: &SockstatContext) -> Result<Vec<Listener>, ListenerParseError> {
    let jerr = |reason: String| ListenerParseError::Json { tool: TOOL, reason };
    let v: Value = serde_json::from_str(text).map_err(|e| jerr(e.to_string()))?;
    let socks = match v.get("sockstat").and_then(|s| s.get("socket")) {
        Some(Value::Array(a)) => a.as_slice(),
        // An empty listing may omit the list entirely.
        None if v.get("sockstat").is_some() => &[],
        _ => return Err(jerr("expected {\"sockstat\": {\"socket\": [...]}}".into())),
    };
    let mut out = Vec::new();
    for (i, s) in socks.iter().enumerate() {
        let Some(pname) = s.get("proto").and_then(Value::as_str) else {
            return Err(jerr(format!("socket {i} has no proto")));
        };
        let Some((proto, fam)) = freebsd_proto(pname) else {
            continue;
        };
        let (addr, port) = xo_endpoint(s.get("local"))
            .ok_or_else(|| jerr(format!("socket {i} ({pname}) has no valid local address/port")))?;
        if port == 0 {
            continue;
        }
        let unconnected = match xo_endpoint(s.get("foreign")) {
            None => true,
            Some((a, p)) => a.is_none() && p == 0,
        };
        let state_ok = s
            .get("conn-state")
            .and_then(Value::as_str)
            .is_none_or(|st| st.trim() == "LISTEN");
        if !unconnected || (proto == Proto::Tcp && !state_ok) {
            continue;
        }
        let pid = s.get("pid").and_then(json_u32);
        let command = s
            .get("command")
            .and_then(Value::as_str)
            .and_then(known)
            .map(str::to_string);
        out.push(make(proto, fam, addr, port, ctx, pid, command));
    }
    Ok(out)
}

/// `{"address": "*", "port": 80}` → `(None, 80)`; the port may be a number
/// or a numeric string, `*` meaning 0.
pub(super) fn xo_endpoint(v: Option<&Value>) -> Option<(Option<std::net::IpAddr>, u16)> {
    let v = v?;
    let addr = parse_addr(v.get("address")?.as_str()?.trim())?;
    let port = match v.get("port")? {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        Value::String(s) if s.trim() == "*" => 0,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some((addr, port))
}

fn json_u32(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => u32::try_from(n.as_u64()?).ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// H22: a process named `x 1 2 tcp4 *:80` holding a UDP socket must not
    /// read as a TCP listener on port 80.
    #[test]
    fn command_with_blanks_cannot_steer_proto() {
        for layout in [SockstatLayout::Printf, SockstatLayout::Libxo { wide: true }] {
            let text = "nobody x 1 2 tcp4 *:80 1234 5 udp4 *:5000 *:*\n";
            let ls = parse_sockstat(text, layout, &SockstatContext::host()).unwrap();
            assert_eq!(ls.len(), 1, "{ls:#?}");
            assert_eq!((ls[0].proto, ls[0].port), (Proto::Udp, 5000));
            assert_eq!(ls[0].owner.pid, Some(1234));
            assert_eq!(ls[0].owner.command.as_deref(), Some("x 1 2 tcp4 *:80"));
        }
    }

    /// F7: FreeBSD 15 continuation rows of a multi-address SCTP socket
    /// (`??` in USER COMMAND PID FD PROTO, usr.bin/sockstat/main.c
    /// display_sock()) are skipped; an owner-less tcp row is still read.
    #[test]
    fn freebsd15_continuation_rows_are_skipped() {
        let text = "\
root sctpd 700 3 sctp4 10.0.0.1:9899 *:*
?? ?? ?? ?? ?? 10.0.0.2:9899 *:*
?? ?? ?? ?? ?? 192.0.2.1:9899
?? ?? ?? ?? tcp4 *:2049 *:*
";
        let ls = parse_sockstat(text, SockstatLayout::Libxo { wide: true }, &SockstatContext::host()).unwrap();
        assert_eq!(ls.len(), 1, "{ls:#?}");
        assert_eq!((ls[0].proto, ls[0].port, ls[0].owner.pid), (Proto::Tcp, 2049, None));
    }

    #[test]
    fn printf_layout_rows() {
        let text = "\
USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS      
root     sshd        1718 6  tcp6   *:22                  *:*
root     sshd        1718 7  tcp4   *:22                  *:*
www      nginx        812 6  tcp46  *:80                  *:*
unbound  unbound    31590 3  udp4   10.0.0.20:53          *:*
averylongusername nginx 99 4 tcp6   2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff:8443 *:*
?        ?          ?     ?  udp6   fe80::1%lo0:123       *:*
root     syslogd      500 5  dgram  /var/run/log
ntpd     ntpd         620 21 udp4   10.0.0.20:123         192.0.2.9:123
";
        let ls = parse_sockstat(text, SockstatLayout::Printf, &SockstatContext::host()).unwrap();
        assert_eq!(ls.len(), 6, "{ls:#?}");
        assert_eq!((ls[0].address, ls[0].port, ls[0].dual_stack), (ip("::"), 22, false));
        assert_eq!((ls[1].address, ls[1].proto), (ip("0.0.0.0"), Proto::Tcp));
        assert_eq!(ls[1].owner.pid, Some(1718));
        assert_eq!(ls[1].owner.command.as_deref(), Some("sshd"));
        assert!(ls[2].dual_stack);
        assert_eq!(ls[3].proto, Proto::Udp);
        assert_eq!(ls[3].address, ip("10.0.0.20"));
        assert_eq!(ls[4].address, ip("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"));
        assert_eq!(ls[4].port, 8443);
        assert_eq!(ls[4].owner.pid, Some(99));
        assert_eq!(ls[5].owner, Owner::default());
        assert_eq!(ls[5].address, ip("fe80::1"));
    }

    #[test]
    fn command_with_blanks_and_state_column() {
        let text = "\
root     my app       100 3  tcp4   127.0.0.1:8080        *:*                   LISTEN
root     sshd         200 4  tcp4   10.0.0.1:22           192.0.2.1:5555        ESTABLISHED
";
        let ls = parse_sockstat(text, SockstatLayout::Printf, &SockstatContext::host()).unwrap();
        assert_eq!(ls.len(), 1);
        assert_eq!(ls[0].owner.command.as_deref(), Some("my app"));
        assert_eq!(ls[0].owner.pid, Some(100));
    }

    #[test]
    fn libxo_truncation_is_reported_not_guessed() {
        let text = "\
USER COMMAND  PID FD PROTO LOCAL ADDRESS         FOREIGN ADDRESS
root nginx    812  6 tcp6  2001:db8:aaaa:bbbb:cc *:*
";
        let err = parse_sockstat(text, SockstatLayout::Libxo { wide: false }, &SockstatContext::host()).unwrap_err();
        assert!(matches!(err, ListenerParseError::Truncated { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("-w"));
        // The same width is fine when -w was used (widths grow to fit).
        let wide = "root nginx    812  6 tcp6  2001:db8:aaaa:bbbb::1:443 *:*\n";
        let ls = parse_sockstat(wide, SockstatLayout::Libxo { wide: true }, &SockstatContext::host()).unwrap();
        assert_eq!(ls[0].port, 443);
        // Short addresses in the truncating layout are fine.
        let short = "?? ??        ?? ?? udp4  *:5353                *:*\n";
        let ls = parse_sockstat(short, SockstatLayout::Libxo { wide: false }, &SockstatContext::host()).unwrap();
        assert_eq!((ls[0].port, ls[0].owner.pid), (5353, None));
    }

    #[test]
    fn layout_for_release() {
        assert_eq!(SockstatLayout::for_release(14, false), SockstatLayout::Printf);
        assert_eq!(
            SockstatLayout::for_release(15, false),
            SockstatLayout::Libxo { wide: false }
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let err = parse_sockstat("hello world\n", SockstatLayout::Printf, &SockstatContext::host()).unwrap_err();
        assert!(matches!(err, ListenerParseError::Malformed { line: 1, .. }));
        let err = parse_sockstat(
            "root x 1 2 tcp4 nonsense *:*\n",
            SockstatLayout::Printf,
            &SockstatContext::host(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn jail_context_is_applied() {
        let jail = "www".parse().unwrap();
        let ctx = SockstatContext {
            stack: Stack::Jail(jail),
            jail: Some("www".into()),
        };
        let ls = parse_sockstat("www nginx 5 6 tcp4 *:80 *:*\n", SockstatLayout::Printf, &ctx).unwrap();
        assert_eq!(ls[0].stack, ctx.stack);
        assert_eq!(ls[0].owner.jail.as_deref(), Some("www"));
    }

    #[test]
    fn json_listing() {
        let text = r#"{"__version": "1", "sockstat": {"socket": [
 {"user": "root", "command": "sshd", "pid": 1718, "fd": 6, "proto": "tcp46",
  "local": {"address": "*", "port": 22}, "foreign": {"address": "*", "port": 0}},
 {"user": "root", "command": "sshd", "pid": 1718, "fd": 7, "proto": "tcp4",
  "local": {"address": "192.0.2.10", "port": 22}, "foreign": {"address": "192.0.2.99", "port": 51000},
  "conn-state": "ESTABLISHED"},
 {"user": "unbound", "command": "unbound", "pid": "66761", "fd": 3, "proto": "udp6",
  "local": {"address": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", "port": 53}, "foreign": {"address": "*", "port": 0}},
 {"user": "root", "command": "syslogd", "pid": 500, "fd": 5, "proto": "dgram", "local": {"path": "/var/run/log"}}
]}}"#;
        let ls = parse_sockstat_json(text, &SockstatContext::host()).unwrap();
        assert_eq!(ls.len(), 2);
        assert!(ls[0].dual_stack && ls[0].address == ip("::") && ls[0].port == 22);
        assert_eq!(ls[1].address, ip("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"));
        assert_eq!(ls[1].owner.pid, Some(66761));
        assert!(parse_sockstat_json("{}", &SockstatContext::host()).is_err());
        assert!(parse_sockstat_json("[", &SockstatContext::host()).is_err());
        assert_eq!(
            parse_sockstat_json(r#"{"sockstat": {}}"#, &SockstatContext::host()).unwrap(),
            vec![]
        );
    }
}
