//! Protocols, ports and port ranges, and the `proto/port` and
//! `proto/host-port[:jail-port]` specs used in config, profiles and the CLI.
//!
//! Parsing here is strict (no port 0, ranges low-high, equal range lengths
//! for exposures); it knows nothing of services or sockets.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port spec {value:?}: {reason}")]
pub struct PortError {
    pub value: String,
    pub reason: String,
}

fn perr(value: &str, reason: impl Into<String>) -> PortError {
    PortError {
        value: value.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, PortError> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(perr(s, "protocol must be tcp or udp")),
        }
    }
}

/// An inclusive port range `lo..=hi` with `1 <= lo <= hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    lo: u16,
    hi: u16,
}

// why: a range always holds at least one element, so `is_empty` would
// always be false.
#[allow(clippy::len_without_is_empty)]
impl PortRange {
    pub fn new(lo: u16, hi: u16) -> Result<Self, PortError> {
        if lo == 0 {
            return Err(perr(&format!("{lo}-{hi}"), "port 0 is not a valid port"));
        }
        if lo > hi {
            return Err(perr(&format!("{lo}-{hi}"), "range start is above its end"));
        }
        Ok(PortRange { lo, hi })
    }
    pub fn single(p: u16) -> Result<Self, PortError> {
        PortRange::new(p, p)
    }
    pub fn lo(self) -> u16 {
        self.lo
    }
    pub fn hi(self) -> u16 {
        self.hi
    }
    pub fn len(self) -> u32 {
        u32::from(self.hi - self.lo) + 1
    }
    pub fn is_single(self) -> bool {
        self.lo == self.hi
    }
    pub fn contains(self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
    pub fn overlaps(self, o: PortRange) -> bool {
        self.lo <= o.hi && o.lo <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// `s` split around the first `sep` (an ASCII byte, so both halves are
/// on character boundaries).
/// why not `str::split_once`: its char searcher cost more than the rest of
/// the parse for the 80,000 specs of a 10,000-jail jnet.toml (issue 10).
fn split_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

fn parse_port(full: &str, s: &str) -> Result<u16, PortError> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) || s.len() > 5 {
        return Err(perr(full, format!("{s:?} is not a port number")));
    }
    // At most five digits: no overflow.
    let n: u32 = s.bytes().fold(0, |n, c| n * 10 + u32::from(c - b'0'));
    if n == 0 || n > 65535 {
        return Err(perr(full, format!("port {n} is outside 1-65535")));
    }
    Ok(n as u16)
}

fn parse_range(full: &str, s: &str) -> Result<PortRange, PortError> {
    match split_byte(s, b'-') {
        Some((a, b)) => {
            let (lo, hi) = (parse_port(full, a)?, parse_port(full, b)?);
            PortRange::new(lo, hi).map_err(|e| perr(full, e.reason))
        }
        None => Ok(PortRange::single(parse_port(full, s)?).expect("nonzero")),
    }
}

fn split_proto(s: &str) -> Result<(Proto, &str), PortError> {
    let (p, rest) = split_byte(s, b'/').ok_or_else(|| perr(s, "expected <proto>/<port>, e.g. tcp/80"))?;
    let proto = p.parse::<Proto>().map_err(|_| perr(s, "protocol must be tcp or udp"))?;
    Ok((proto, rest))
}

/// A port (range) a jail binds: `tcp/80`, `udp/53`, `tcp/6000-6010`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortSpec {
    pub proto: Proto,
    pub ports: PortRange,
}

impl FromStr for PortSpec {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, PortError> {
        let (proto, rest) = split_proto(s)?;
        Ok(PortSpec {
            proto,
            ports: parse_range(s, rest)?,
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.proto, self.ports)
    }
}

/// An exposure: host port (range) redirected to a jail port (range) of the
/// same length, optionally bound to one external address of either family.
/// Text form: `tcp/8443:443`, `tcp/80`, `udp/5000-5010:6000-6010`; bound:
/// `192.0.2.1:tcp/80`, `[2001:db8::1]:tcp/80` (see
/// [`parse_expose_with_address`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expose {
    pub proto: Proto,
    pub host: PortRange,
    pub jail: PortRange,
    pub address: Option<IpAddr>,
}

impl Expose {
    /// Same proto and overlapping host ports on a compatible external
    /// address: two bound to different addresses (of either family) never
    /// conflict; an unbound one redirects every address of the interface,
    /// so it conflicts with any bound one.
    pub fn host_overlaps(&self, o: &Expose) -> bool {
        self.proto == o.proto
            && self.host.overlaps(o.host)
            && match (self.address, o.address) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl FromStr for Expose {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, PortError> {
        let (proto, rest) = split_proto(s)?;
        let (h, j) = match split_byte(rest, b':') {
            Some((h, j)) => (h, j),
            None => (rest, rest),
        };
        let host = parse_range(s, h)?;
        let jail = parse_range(s, j)?;
        if host.len() != jail.len() {
            return Err(perr(
                s,
                format!("host range {host} and jail range {jail} have different lengths"),
            ));
        }
        Ok(Expose {
            proto,
            host,
            jail,
            address: None,
        })
    }
}

impl fmt::Display for Expose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            Some(IpAddr::V4(a)) => write!(f, "{a}:")?,
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            None => {}
        }
        if self.host == self.jail {
            write!(f, "{}/{}", self.proto, self.host)
        } else {
            write!(f, "{}/{}:{}", self.proto, self.host, self.jail)
        }
    }
}

macro_rules! serde_via_str {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(PortSpec);
serde_via_str!(PortRange);

impl Serialize for Expose {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Expose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_expose_with_address(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses the display form, which may carry an external address prefix,
/// as stored in the inventory: `192.0.2.1:tcp/80`, or bracketed for IPv6
/// (`[2001:db8::1]:tcp/80`; unbracketed, the address's own colons would be
/// ambiguous with the port separator). An IPv6 address must also pass
/// [`external_address_error`] (the form is new, so no stored exposure can
/// be refused by it); an IPv4 one is checked only by `expose`, so that an
/// inventory written before keeps reading.
pub fn parse_expose_with_address(s: &str) -> Result<Expose, PortError> {
    let Some(idx) = s.find(":tcp/").or_else(|| s.find(":udp/")) else {
        return s.parse();
    };
    let text = &s[..idx];
    let addr: IpAddr = if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let a: Ipv6Addr = inner
            .parse()
            .map_err(|_| perr(s, format!("{inner:?} is not an IPv6 address")))?;
        if let Some(reason) = external_address_error(IpAddr::V6(a)) {
            return Err(perr(s, reason));
        }
        IpAddr::V6(a)
    } else if text.parse::<Ipv6Addr>().is_ok() {
        return Err(perr(
            s,
            format!("IPv6 address {text} must be bracketed: [{text}]:{}", &s[idx + 1..]),
        ));
    } else {
        IpAddr::V4(text.parse().map_err(|_| {
            perr(
                s,
                format!("{text:?} is not an IPv4 address or a bracketed IPv6 address"),
            )
        })?)
    };
    let mut e: Expose = s[idx + 1..].parse()?;
    e.address = Some(addr);
    Ok(e)
}

/// Why `a` cannot be the external address of an exposure, or `None` when
/// it can. IPv4: unspecified, broadcast and multicast are refused. IPv6
/// likewise unspecified and multicast, and also loopback (traffic to `::1`
/// never arrives on the external interface), link-local (`fe80::/10`
/// needs a scope that neither pf nor nft rule text carries) and
/// IPv4-mapped `::ffff:a.b.c.d` (an IPv4 address in disguise: bind the
/// IPv4 address instead).
pub fn external_address_error(a: IpAddr) -> Option<String> {
    let what = match a {
        IpAddr::V4(v) if v.is_unspecified() => "unspecified",
        IpAddr::V4(v) if v.is_broadcast() => "the broadcast address",
        IpAddr::V4(v) if v.is_multicast() => "multicast",
        IpAddr::V4(_) => return None,
        IpAddr::V6(v) if v.is_unspecified() => "unspecified",
        IpAddr::V6(v) if v.is_loopback() => "loopback",
        IpAddr::V6(v) if v.is_multicast() => "multicast",
        IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => "link-local",
        IpAddr::V6(v) if v.to_ipv4_mapped().is_some() => {
            return Some(format!(
                "{a} is an IPv4-mapped IPv6 address; bind the IPv4 address {} instead",
                v.to_ipv4_mapped().expect("checked")
            ))
        }
        IpAddr::V6(_) => return None,
    };
    Some(format!("{a} is {what}, not an external address"))
}

impl FromStr for PortRange {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, PortError> {
        parse_range(s, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        let p: PortSpec = "tcp/80".parse().unwrap();
        assert_eq!((p.proto, p.ports.lo(), p.ports.hi()), (Proto::Tcp, 80, 80));
        let p: PortSpec = "udp/6000-6010".parse().unwrap();
        assert_eq!(p.ports.len(), 11);
        assert_eq!(p.to_string(), "udp/6000-6010");
        for bad in [
            "80",
            "tcp/0",
            "tcp/65536",
            "sctp/80",
            "tcp/",
            "tcp/80-70",
            "tcp/8a",
            "tcp/ 80",
            "tcp/-1",
            "tcp/1-",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn exposures() {
        let e: Expose = "tcp/8443:443".parse().unwrap();
        assert_eq!((e.host.lo(), e.jail.lo()), (8443, 443));
        assert_eq!(e.to_string(), "tcp/8443:443");
        let e: Expose = "tcp/80".parse().unwrap();
        assert_eq!(e.to_string(), "tcp/80");
        assert!("tcp/8000-8010:9000-9009".parse::<Expose>().is_err());
        assert!("tcp/8000-8010:9000-9010".parse::<Expose>().is_ok());
        let e = parse_expose_with_address("192.0.2.7:udp/53").unwrap();
        assert_eq!(e.address, Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7))));
        assert_eq!(e.to_string(), "192.0.2.7:udp/53");
        assert!(parse_expose_with_address("300.0.2.7:udp/53").is_err());
    }

    #[test]
    fn ipv6_external_addresses() {
        let e = parse_expose_with_address("[2001:db8::1]:tcp/8443:443").unwrap();
        assert_eq!(e.address, Some("2001:db8::1".parse().unwrap()));
        assert_eq!((e.host.lo(), e.jail.lo()), (8443, 443));
        assert_eq!(e.to_string(), "[2001:db8::1]:tcp/8443:443");
        assert_eq!(parse_expose_with_address(&e.to_string()).unwrap(), e);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Expose>(&json).unwrap(), e);
        for (bad, why) in [
            ("2001:db8::1:tcp/80", "must be bracketed"),
            ("[2001:db8::g]:tcp/80", "not an IPv6 address"),
            ("[192.0.2.1]:tcp/80", "not an IPv6 address"),
            ("[::]:tcp/80", "unspecified"),
            ("[::1]:tcp/80", "loopback"),
            ("[ff02::1]:tcp/80", "multicast"),
            ("[fe80::1]:tcp/80", "link-local"),
            ("[febf::1]:tcp/80", "link-local"),
            ("[::ffff:192.0.2.7]:tcp/80", "bind the IPv4 address 192.0.2.7"),
        ] {
            let err = parse_expose_with_address(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        // fec0::/10 is past link-local: accepted.
        assert!(parse_expose_with_address("[fec0::1]:tcp/80").is_ok());
        for bad in ["0.0.0.0", "255.255.255.255", "224.0.0.1"] {
            assert!(external_address_error(bad.parse().unwrap()).is_some(), "{bad}");
        }
        assert_eq!(external_address_error("192.0.2.1".parse().unwrap()), None);
        assert_eq!(external_address_error("2001:db8::1".parse().unwrap()), None);
    }

    #[test]
    fn overlap() {
        let a: Expose = "tcp/80-90".parse().unwrap();
        let b: Expose = "tcp/90:80".parse().unwrap();
        let c: Expose = "udp/80".parse().unwrap();
        assert!(a.host_overlaps(&b));
        assert!(!a.host_overlaps(&c));
        // Bound to different addresses (of either family): no conflict;
        // to the same one, or one unbound: conflict.
        let at = |s: &str| parse_expose_with_address(s).unwrap();
        assert!(!at("[2001:db8::1]:tcp/80").host_overlaps(&at("[2001:db8::2]:tcp/80")));
        assert!(!at("[2001:db8::1]:tcp/80").host_overlaps(&at("192.0.2.1:tcp/80")));
        assert!(at("[2001:db8::1]:tcp/80").host_overlaps(&at("[2001:db8::1]:tcp/70-90")));
        assert!(at("[2001:db8::1]:tcp/80").host_overlaps(&a));
        assert!(a.host_overlaps(&at("192.0.2.1:tcp/85")));
        assert!(!at("[2001:db8::1]:udp/80").host_overlaps(&a));
    }
}
