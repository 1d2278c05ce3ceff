//! The typed firewall rule IR: port redirections (pf `rdr`, nft `dnat`) and
//! outbound address translation (pf `nat`, nft `masquerade`/`snat`), grouped
//! per jail, with the validation pf.conf(5) applies to such rules.
//!
//! The IR is IPv4 only (pf `inet`), the address family jnet assigns to jails;
//! IPv6 never reaches it, so "wrong family" is ruled out by the types and by
//! the listing parser that refuses `inet6` lines. This module renders nothing
//! and does no I/O: see `pf` and `nft` for the text forms.

use std::fmt;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use serde::Serialize;

use crate::core::names::{IfName, JailName};
use crate::core::ports::{Expose, PortRange, Proto};

/// pf's `PF_RULE_LABEL_SIZE` is 64 bytes including the terminating NUL.
pub const PF_LABEL_MAX: usize = 63;

/// Why a rule was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{rule}: host ports {host} and target ports {target} have different lengths")]
    RangeMismatch { rule: String, host: String, target: String },
    #[error("{rule}: target address {addr} cannot receive redirected traffic")]
    BadTarget { rule: String, addr: Ipv4Addr },
    #[error("{rule}: external address {addr} is not a unicast host address")]
    BadExternal { rule: String, addr: Ipv4Addr },
    #[error("{rule}: network {net} has host bits set (pf would use {masked})")]
    HostBits {
        rule: String,
        net: Ipv4Network,
        masked: Ipv4Network,
    },
    #[error("{rule}: label {label:?} is invalid: {reason}")]
    BadLabel {
        rule: String,
        label: String,
        reason: &'static str,
    },
    #[error("jail {jail}: exposures {a} and {b} redirect overlapping host ports")]
    Overlap { jail: JailName, a: String, b: String },
    #[error("jail {jail}: {source}")]
    InJail {
        jail: JailName,
        #[source]
        source: Box<RuleError>,
    },
}

/// Which destination address a redirect matches (`to ...` in pf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "address", rename_all = "lowercase")]
pub enum RdrDest {
    /// The first address of the rule's interface, followed when it changes:
    /// pf `(vtnet0:0)` (no aliases, so other jails' aliases on the same
    /// interface are not matched; sys/netpfil/pf/pf_if.c NOALIAS handling);
    /// the jnet default.
    Interface,
    /// One external address (an exposure bound with `--address`).
    Address(Ipv4Addr),
    /// Any destination arriving on the interface (pf `any`), as other tools
    /// (Bastille) write it; jnet only parses this form.
    Any,
}

/// A port redirection: traffic arriving on `interface` for `host_ports`
/// goes to `target:target_ports`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Redirect {
    /// pf `rdr pass`: the redirected packets skip the filter rules. jnet sets
    /// it so an exposure works without the admin writing a pass rule.
    pub pass: bool,
    pub log: bool,
    pub proto: Proto,
    pub interface: IfName,
    /// Only clients from this network (pf `from <net>`); `None` = any.
    #[serde(serialize_with = "ser_opt_net")]
    pub source: Option<Ipv4Network>,
    pub external: RdrDest,
    pub host_ports: PortRange,
    pub target: Ipv4Addr,
    /// `None` keeps the destination port (pf prints no `port` after `->`).
    pub target_ports: Option<PortRange>,
    /// Owner label: nft `comment` only. pf nat/rdr rules have no label slot
    /// (sbin/pfctl/parse.y `natrule`), so the pf renderer never prints it.
    pub label: Option<String>,
}

/// What a nat rule rewrites the source address to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NatTarget {
    /// The interface's address(es), followed on change: pf `(ifname)`, or
    /// `(ifname:0)` (first address only, no aliases) when `first_only`.
    Interface {
        ifname: IfName,
        first_only: bool,
    },
    Address {
        address: Ipv4Addr,
    },
}

/// Outbound translation of a jail's (or pool's) source addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Nat {
    /// pf `nat pass`.
    pub pass: bool,
    pub log: bool,
    pub interface: IfName,
    /// `None` = every protocol (pf prints no `proto`).
    pub proto: Option<Proto>,
    /// A /32 is one jail address and is printed bare.
    #[serde(serialize_with = "ser_net")]
    pub source: Ipv4Network,
    /// `None` = any destination.
    #[serde(serialize_with = "ser_opt_net")]
    pub destination: Option<Ipv4Network>,
    pub translation: NatTarget,
    pub label: Option<String>,
}

/// Everything jnet loads for one jail (one pf anchor, one nft chain set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JailRules {
    pub jail: JailName,
    pub redirects: Vec<Redirect>,
    pub nats: Vec<Nat>,
}

// why: ipnetwork's serde support is behind a feature jnet does not enable;
// the text form is what JSON output wants anyway.
fn ser_net<S: serde::Serializer>(n: &Ipv4Network, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}
fn ser_opt_net<S: serde::Serializer>(n: &Option<Ipv4Network>, s: S) -> Result<S::Ok, S::Error> {
    match n {
        Some(n) => s.collect_str(n),
        None => s.serialize_none(),
    }
}

/// The owner label jnet puts on a jail's rules: `jnet:<jail>`, cut to pf's
/// 63-byte limit (names are ASCII, so the cut is on a character boundary).
/// Ownership proper is the anchor / chain name; the label is for humans and
/// nft comments (pf nat/rdr cannot carry a label: parse.y `natrule`).
pub fn owner_label(jail: &JailName) -> String {
    let mut l = format!("jnet:{jail}");
    l.truncate(PF_LABEL_MAX);
    l
}

pub(crate) fn fmt_net(n: &Ipv4Network) -> String {
    if n.prefix() == 32 {
        n.ip().to_string()
    } else {
        format!("{}/{}", n.ip(), n.prefix())
    }
}

/// Port range in pf's `lo:hi` form (a single port prints as the number).
pub(crate) fn pf_range(r: PortRange) -> String {
    if r.is_single() {
        r.lo().to_string()
    } else {
        format!("{}:{}", r.lo(), r.hi())
    }
}

// why `rule` is a function: the rule's text is needed only in an error,
// and formatting every rule to validate it was a large share of `pf render`
// at thousands of jails (issue 10).
fn check_label(rule: &dyn Fn() -> String, label: &Option<String>) -> Result<(), RuleError> {
    let Some(l) = label else { return Ok(()) };
    let bad = |reason| RuleError::BadLabel {
        rule: rule(),
        label: l.clone(),
        reason,
    };
    if l.is_empty() {
        return Err(bad("must not be empty"));
    }
    if l.len() > PF_LABEL_MAX {
        return Err(bad("longer than 63 bytes (pf PF_RULE_LABEL_SIZE)"));
    }
    // why: the label is written between double quotes in pf and nft text;
    // a quote, backslash or control character would end or corrupt the rule.
    if !l.bytes().all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\') {
        return Err(bad("only printable ASCII without '\"' or '\\' is allowed"));
    }
    Ok(())
}

fn check_net(rule: &dyn Fn() -> String, n: &Ipv4Network) -> Result<(), RuleError> {
    let masked = Ipv4Network::new(n.network(), n.prefix()).expect("prefix already valid");
    if masked.ip() != n.ip() {
        return Err(RuleError::HostBits {
            rule: rule(),
            net: *n,
            masked,
        });
    }
    Ok(())
}

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast())
}

impl Redirect {
    /// The ports the jail receives on (the host ports when unchanged).
    pub fn effective_target_ports(&self) -> PortRange {
        self.target_ports.unwrap_or(self.host_ports)
    }

    /// Rejects what pfctl(8) or the kernel would refuse or silently mangle.
    pub fn validate(&self) -> Result<(), RuleError> {
        let rule = || self.to_string();
        if let Some(t) = self.target_ports {
            // why: pf accepts `port 80:90 -> x port 8080` (all to one port) and
            // a longer target range is cut silently; jnet only emits 1:1 maps,
            // which are what `Expose` promises.
            if t.len() != self.host_ports.len() {
                return Err(RuleError::RangeMismatch {
                    rule: rule(),
                    host: pf_range(self.host_ports),
                    target: pf_range(t),
                });
            }
        }
        if !unicast(self.target) {
            return Err(RuleError::BadTarget {
                rule: rule(),
                addr: self.target,
            });
        }
        if let RdrDest::Address(a) = self.external {
            if !unicast(a) {
                return Err(RuleError::BadExternal { rule: rule(), addr: a });
            }
        }
        if let Some(s) = &self.source {
            check_net(&rule, s)?;
        }
        check_label(&rule, &self.label)
    }
}

impl fmt::Display for Redirect {
    /// Short human form for messages: `tcp vtnet0:80 -> 10.0.0.5:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dest = match self.external {
            RdrDest::Interface => format!("({}:0)", self.interface),
            RdrDest::Address(a) => a.to_string(),
            RdrDest::Any => "any".to_string(),
        };
        write!(
            f,
            "rdr {} on {} {}:{} -> {}:{}",
            self.proto,
            self.interface,
            dest,
            self.host_ports,
            self.target,
            self.effective_target_ports()
        )
    }
}

impl Nat {
    pub fn validate(&self) -> Result<(), RuleError> {
        let rule = || self.to_string();
        check_net(&rule, &self.source)?;
        if let Some(d) = &self.destination {
            check_net(&rule, d)?;
        }
        if let NatTarget::Address { address } = self.translation {
            if !unicast(address) {
                return Err(RuleError::BadTarget {
                    rule: rule(),
                    addr: address,
                });
            }
        }
        check_label(&rule, &self.label)
    }
}

impl fmt::Display for Nat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let to = match &self.translation {
            NatTarget::Interface {
                ifname,
                first_only: false,
            } => format!("({ifname})"),
            NatTarget::Interface {
                ifname,
                first_only: true,
            } => format!("({ifname}:0)"),
            NatTarget::Address { address } => address.to_string(),
        };
        write!(f, "nat on {} from {} -> {}", self.interface, fmt_net(&self.source), to)
    }
}

impl JailRules {
    /// Builds a jail's rules from its exposures and optional nat source (the
    /// jail address or its pool network): one `rdr pass` per exposure on the
    /// external interface (bound to the exposure's address when it has one)
    /// and one `nat` to the interface's address, all labelled `jnet:<jail>`.
    pub fn from_exposures(
        jail: &JailName,
        jail_addr: Ipv4Addr,
        external_if: &IfName,
        exposures: &[Expose],
        nat_source: Option<Ipv4Network>,
    ) -> Result<JailRules, RuleError> {
        for (i, a) in exposures.iter().enumerate() {
            if let Some(b) = exposures[i + 1..].iter().find(|b| a.host_overlaps(b)) {
                return Err(RuleError::Overlap {
                    jail: jail.clone(),
                    a: a.to_string(),
                    b: b.to_string(),
                });
            }
        }
        let label = Some(owner_label(jail));
        let redirects = exposures
            .iter()
            .map(|e| Redirect {
                pass: true,
                log: false,
                proto: e.proto,
                interface: external_if.clone(),
                source: None,
                external: e.address.map_or(RdrDest::Interface, RdrDest::Address),
                host_ports: e.host,
                target: jail_addr,
                target_ports: Some(e.jail),
                label: label.clone(),
            })
            .collect();
        let nats = nat_source
            .map(|source| Nat {
                pass: false,
                log: false,
                interface: external_if.clone(),
                proto: None,
                source,
                destination: None,
                translation: NatTarget::Interface {
                    ifname: external_if.clone(),
                    first_only: false,
                },
                label: label.clone(),
            })
            .into_iter()
            .collect();
        let rules = JailRules {
            jail: jail.clone(),
            redirects,
            nats,
        };
        rules.validate()?;
        Ok(rules)
    }

    /// Validates every rule; the error names the jail.
    pub fn validate(&self) -> Result<(), RuleError> {
        let wrap = |e| RuleError::InJail {
            jail: self.jail.clone(),
            source: Box::new(e),
        };
        for r in &self.redirects {
            r.validate().map_err(wrap)?;
        }
        for n in &self.nats {
            n.validate().map_err(wrap)?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.redirects.is_empty() && self.nats.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail() -> JailName {
        JailName::new("www").unwrap()
    }
    fn ifn() -> IfName {
        IfName::new("vtnet0").unwrap()
    }
    fn pr(lo: u16, hi: u16) -> PortRange {
        PortRange::new(lo, hi).unwrap()
    }
    fn rdr() -> Redirect {
        Redirect {
            pass: true,
            log: false,
            proto: Proto::Tcp,
            interface: ifn(),
            source: None,
            external: RdrDest::Interface,
            host_ports: pr(80, 80),
            target: Ipv4Addr::new(10, 0, 0, 5),
            target_ports: Some(pr(80, 80)),
            label: None,
        }
    }

    #[test]
    fn builds_from_exposures() {
        let ex: Vec<Expose> = vec![
            "tcp/80".parse().unwrap(),
            crate::core::ports::parse_expose_with_address("192.0.2.7:udp/5000-5010:6000-6010").unwrap(),
        ];
        let net: Ipv4Network = "10.66.0.5/32".parse().unwrap();
        let r = JailRules::from_exposures(&jail(), Ipv4Addr::new(10, 66, 0, 5), &ifn(), &ex, Some(net)).unwrap();
        assert_eq!(r.redirects.len(), 2);
        assert_eq!(r.redirects[0].external, RdrDest::Interface);
        assert_eq!(r.redirects[1].external, RdrDest::Address(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(r.redirects[1].target_ports, Some(pr(6000, 6010)));
        assert_eq!(r.redirects[0].label.as_deref(), Some("jnet:www"));
        assert_eq!(r.nats.len(), 1);
        assert_eq!(r.nats[0].source, net);
    }

    #[test]
    fn overlapping_exposures_are_refused() {
        let ex: Vec<Expose> = vec!["tcp/80-90".parse().unwrap(), "tcp/85:8085".parse().unwrap()];
        let e = JailRules::from_exposures(&jail(), Ipv4Addr::new(10, 0, 0, 5), &ifn(), &ex, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "jail www: exposures tcp/80-90 and tcp/85:8085 redirect overlapping host ports"
        );
        // Different protocols do not overlap.
        let ex: Vec<Expose> = vec!["tcp/80".parse().unwrap(), "udp/80".parse().unwrap()];
        assert!(JailRules::from_exposures(&jail(), Ipv4Addr::new(10, 0, 0, 5), &ifn(), &ex, None).is_ok());
    }

    #[test]
    fn validation_cases() {
        let mut r = rdr();
        r.host_ports = pr(8000, 8010);
        r.target_ports = Some(pr(9000, 9005));
        assert_eq!(
            r.validate().unwrap_err().to_string(),
            "rdr tcp on vtnet0 (vtnet0:0):8000-8010 -> 10.0.0.5:9000-9005: host ports 8000:8010 and target ports 9000:9005 have different lengths"
        );
        r.target_ports = None;
        assert!(r.validate().is_ok());

        for bad in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1)] {
            let mut r = rdr();
            r.target = bad;
            assert!(matches!(r.validate(), Err(RuleError::BadTarget { .. })), "{bad}");
            let mut r = rdr();
            r.external = RdrDest::Address(bad);
            assert!(matches!(r.validate(), Err(RuleError::BadExternal { .. })), "{bad}");
        }

        let mut r = rdr();
        r.source = Some("192.0.2.1/24".parse().unwrap());
        assert_eq!(
            r.validate().unwrap_err().to_string(),
            "rdr tcp on vtnet0 (vtnet0:0):80 -> 10.0.0.5:80: network 192.0.2.1/24 has host bits set (pf would use 192.0.2.0/24)"
        );

        for (label, ok) in [
            ("jnet:www", true),
            ("", false),
            ("a\"b", false),
            ("a\nb", false),
            (&"x".repeat(64)[..], false),
            (&"x".repeat(63)[..], true),
        ] {
            let mut r = rdr();
            r.label = Some(label.to_string());
            assert_eq!(r.validate().is_ok(), ok, "{label:?}");
        }

        let n = Nat {
            pass: false,
            log: false,
            interface: ifn(),
            proto: None,
            source: "10.66.0.0/24".parse().unwrap(),
            destination: None,
            translation: NatTarget::Address {
                address: Ipv4Addr::UNSPECIFIED,
            },
            label: None,
        };
        assert!(matches!(n.validate(), Err(RuleError::BadTarget { .. })));
    }

    #[test]
    fn label_is_cut_to_pf_limit() {
        let long = JailName::new(&"j".repeat(63)).unwrap();
        let l = owner_label(&long);
        assert_eq!(l.len(), 63);
        assert!(l.starts_with("jnet:jjj"));
    }

    #[test]
    fn jail_error_names_the_jail() {
        let mut r = rdr();
        r.target = Ipv4Addr::UNSPECIFIED;
        let jr = JailRules {
            jail: jail(),
            redirects: vec![r],
            nats: vec![],
        };
        assert!(jr.validate().unwrap_err().to_string().starts_with("jail www: rdr tcp"));
    }
}
