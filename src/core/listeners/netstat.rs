//! FreeBSD `netstat -anW -p tcp|udp --libxo json` listings.
//!
//! Structure (netstat(1), `usr.bin/netstat/main.c` and `inet.c`/`inet6.c`):
//! container `statistics`, list `socket`, per socket `protocol` (`tcp4`,
//! `tcp6`, `tcp46`, `udp4`, ...), `receive-bytes-waiting`,
//! `send-bytes-waiting`, containers `local` and `remote` with string
//! `address` (`*` for the unspecified address) and `port` (`*` for 0), and
//! for tcp `tcp-state`.
//!
//! netstat knows no owning process: listeners come back with an empty
//! [`Owner`] (sockstat gives pids). Without `-W` netstat cuts IPv6 addresses
//! to 16 characters even in JSON; such an address is reported as
//! [`ListenerParseError::Truncated`]. With `-n` ports are numeric; a service
//! name is an error.

use serde_json::Value;

use super::sockstat::xo_endpoint;
use super::{freebsd_proto, Family, Listener, ListenerParseError, Owner, Stack};
use crate::core::ports::Proto;

const TOOL: &str = "netstat";

/// Width netstat cuts IPv6 addresses to without `-W`.
const NARROW_V6: usize = 16;

/// Where a netstat listing comes from and how it was run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetstatContext {
    /// The stack listed (netstat inside a VNET jail lists that jail's).
    pub stack: Stack,
    /// The jail whose stack this is, if any.
    pub jail: Option<String>,
    /// `-W` was given (addresses are not cut).
    pub wide: bool,
}

/// Parses `netstat -an[W] -p tcp|udp --libxo json`. Keeps tcp sockets in
/// LISTEN and udp sockets with a local port and no remote end.
pub fn parse_netstat_json(text: &str, ctx: &NetstatContext) -> Result<Vec<Listener>, ListenerParseError> {
    let jerr = |reason: String| ListenerParseError::Json { tool: TOOL, reason };
    let v: Value = serde_json::from_str(text).map_err(|e| jerr(e.to_string()))?;
    let stats = v
        .get("statistics")
        .ok_or_else(|| jerr("expected {\"statistics\": {\"socket\": [...]}}".into()))?;
    let socks = match stats.get("socket") {
        Some(Value::Array(a)) => a.as_slice(),
        None => &[],
        Some(_) => return Err(jerr("\"socket\" is not a list".into())),
    };
    let mut out = Vec::new();
    for (i, s) in socks.iter().enumerate() {
        let Some(pname) = s.get("protocol").and_then(Value::as_str) else {
            continue; // unix-domain rows have "type", not "protocol"
        };
        let Some((proto, fam)) = freebsd_proto(pname.trim()) else {
            continue;
        };
        if !ctx.wide {
            if let Some(a) = s.get("local").and_then(|l| l.get("address")).and_then(Value::as_str) {
                if a.contains(':') && a.len() >= NARROW_V6 {
                    return Err(ListenerParseError::Truncated {
                        tool: TOOL,
                        line: i + 1,
                        text: a.to_string(),
                        width: NARROW_V6,
                    });
                }
            }
        }
        let (addr, port) = xo_endpoint(s.get("local")).ok_or_else(|| {
            jerr(format!(
                "socket {} ({pname}) has no valid local address/port (run netstat with -n)",
                i + 1
            ))
        })?;
        if port == 0 {
            continue;
        }
        let keep = match proto {
            Proto::Tcp => s.get("tcp-state").and_then(Value::as_str).map(str::trim) == Some("LISTEN"),
            Proto::Udp => match xo_endpoint(s.get("remote")) {
                None => true,
                Some((a, p)) => a.is_none() && p == 0,
            },
        };
        if !keep {
            continue;
        }
        let address = addr.unwrap_or_else(|| fam.unspecified());
        out.push(Listener {
            proto,
            address,
            port,
            dual_stack: fam == Family::Dual && address.is_unspecified(),
            stack: ctx.stack.clone(),
            owner: Owner {
                jail: ctx.jail.clone(),
                ..Owner::default()
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(wide: bool) -> NetstatContext {
        NetstatContext {
            stack: Stack::Host,
            jail: None,
            wide,
        }
    }

    const SAMPLE: &str = r#"{"statistics": {"socket": [
 {"protocol": "tcp46", "receive-bytes-waiting": 0, "send-bytes-waiting": 0,
  "local": {"address": "*", "port": "80"}, "remote": {"address": "*", "port": "*"}, "tcp-state": "LISTEN"},
 {"protocol": "tcp4", "receive-bytes-waiting": 0, "send-bytes-waiting": 0,
  "local": {"address": "10.0.0.5", "port": "22"}, "remote": {"address": "192.0.2.7", "port": "50000"}, "tcp-state": "ESTABLISHED"},
 {"protocol": "tcp6", "receive-bytes-waiting": 0, "send-bytes-waiting": 0,
  "local": {"address": "::1", "port": "5432"}, "remote": {"address": "*", "port": "*"}, "tcp-state": "LISTEN "},
 {"protocol": "udp4", "receive-bytes-waiting": 0, "send-bytes-waiting": 0,
  "local": {"address": "*", "port": "514"}, "remote": {"address": "*", "port": "*"}},
 {"protocol": "udp4", "receive-bytes-waiting": 0, "send-bytes-waiting": 0,
  "local": {"address": "10.0.0.5", "port": "41000"}, "remote": {"address": "192.0.2.53", "port": "53"}}
]}}"#;

    #[test]
    fn listeners_from_json() {
        let ls = parse_netstat_json(SAMPLE, &ctx(false)).unwrap();
        assert_eq!(ls.len(), 3, "{ls:#?}");
        assert!(ls[0].dual_stack && ls[0].address.is_unspecified() && ls[0].address.is_ipv6());
        assert_eq!((ls[1].address.to_string(), ls[1].port), ("::1".to_string(), 5432));
        assert_eq!(
            (ls[2].proto, ls[2].port, ls[2].address.is_ipv4()),
            (Proto::Udp, 514, true)
        );
        assert_eq!(ls[2].owner, Owner::default());
    }

    #[test]
    fn narrow_v6_is_truncation() {
        let t = r#"{"statistics": {"socket": [{"protocol": "tcp6",
  "local": {"address": "2001:db8:aaaa:bb", "port": "443"}, "remote": {"address": "*", "port": "*"}, "tcp-state": "LISTEN"}]}}"#;
        assert!(matches!(
            parse_netstat_json(t, &ctx(false)),
            Err(ListenerParseError::Truncated { .. })
        ));
        // With -W that (invalid) address is a plain error, not a guess.
        assert!(matches!(
            parse_netstat_json(t, &ctx(true)),
            Err(ListenerParseError::Json { .. })
        ));
    }

    #[test]
    fn structure_errors() {
        assert!(parse_netstat_json("{}", &ctx(true)).is_err());
        assert!(parse_netstat_json(r#"{"statistics": {"socket": 3}}"#, &ctx(true)).is_err());
        assert_eq!(parse_netstat_json(r#"{"statistics": {}}"#, &ctx(true)).unwrap(), vec![]);
        let named = r#"{"statistics": {"socket": [{"protocol": "tcp4",
  "local": {"address": "*", "port": "http"}, "remote": {"address": "*", "port": "*"}, "tcp-state": "LISTEN"}]}}"#;
        let e = parse_netstat_json(named, &ctx(true)).unwrap_err();
        assert!(e.to_string().contains("-n"), "{e}");
    }
}
