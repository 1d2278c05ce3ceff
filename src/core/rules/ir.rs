//! The typed firewall rule IR: port redirections (pf `rdr`, nft `dnat`) and
//! outbound address translation (pf `nat`, nft `masquerade`/`snat`), grouped
//! per jail, with the validation pf.conf(5) applies to such rules.
//!
//! The IR is family-neutral: every address is an `IpAddr` / `IpNetwork`,
//! and a rule's family (pf `inet` / `inet6`, nft `ip` / `ip6`) is the
//! family of its addresses, which validation requires to be one. A jail
//! holds at most one address per family; [`JailRules::from_exposures`]
//! emits one redirect per family for each exposure and nat only for the
//! families the caller asks for. This module renders nothing and does no
//! I/O: see `pf` and `nft` for the text forms.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use serde::Serialize;

use crate::core::names::{IfName, JailName};
use crate::core::ports::{Expose, PortRange, Proto};

/// pf's `PF_RULE_LABEL_SIZE` is 64 bytes including the terminating NUL.
pub const PF_LABEL_MAX: usize = 63;

/// An address family of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    pub fn of(a: IpAddr) -> Family {
        match a {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
    pub fn of_net(n: &IpNetwork) -> Family {
        Family::of(n.ip())
    }
    /// The pf keyword (`inet`, `inet6`), also the name used in messages.
    pub fn pf(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
        }
    }
    /// The nft protocol keyword (`ip`, `ip6`).
    pub fn nft(self) -> &'static str {
        match self {
            Family::Inet => "ip",
            Family::Inet6 => "ip6",
        }
    }
    /// The address prefix length of a host (32, 128).
    pub fn host_bits(self) -> u8 {
        match self {
            Family::Inet => 32,
            Family::Inet6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pf())
    }
}

/// Why a rule was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{rule}: host ports {host} and target ports {target} have different lengths")]
    RangeMismatch { rule: String, host: String, target: String },
    #[error("{rule}: target address {addr} cannot receive redirected traffic")]
    BadTarget { rule: String, addr: IpAddr },
    #[error("{rule}: external address {addr} is not a unicast host address")]
    BadExternal { rule: String, addr: IpAddr },
    #[error("{rule}: network {net} has host bits set (pf would use {masked})")]
    HostBits {
        rule: String,
        net: IpNetwork,
        masked: IpNetwork,
    },
    #[error("{rule}: label {label:?} is invalid: {reason}")]
    BadLabel {
        rule: String,
        label: String,
        reason: &'static str,
    },
    #[error("{rule}: mixes address families: {what} {addr} is not {family} like the rest of the rule")]
    MixedFamily {
        rule: String,
        what: &'static str,
        addr: String,
        family: Family,
    },
    #[error(
        "{rule}: an inet6 translation to all addresses of ({ifname}) would include its link-local addresses; use ({ifname}:0)"
    )]
    Inet6InterfacePool { rule: String, ifname: IfName },
    #[error("jail {jail}: exposures {a} and {b} redirect overlapping host ports")]
    Overlap { jail: JailName, a: String, b: String },
    #[error("jail {jail}: two {family} addresses {a} and {b}; a jail holds at most one address per family")]
    TwoAddresses {
        jail: JailName,
        family: Family,
        a: IpAddr,
        b: IpAddr,
    },
    #[error(
        "jail {jail}: exposure {exposure} is bound to {family} address {addr}, but the jail has no {family} address"
    )]
    NoFamilyAddress {
        jail: JailName,
        exposure: String,
        family: Family,
        addr: IpAddr,
    },
    #[error("jail {jail}: exposure {exposure} has no jail address to redirect to")]
    NoAddress { jail: JailName, exposure: String },
    #[error("jail {jail}: {family} nat of {source_net} was asked for, but the jail has no {family} address")]
    NatWithoutAddress {
        jail: JailName,
        family: Family,
        source_net: IpNetwork,
    },
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
    /// The first address of the rule's family on the rule's interface,
    /// followed when it changes: pf `(vtnet0:0)` (no aliases, so other
    /// jails' aliases on the same interface are not matched;
    /// sys/netpfil/pf/pf_if.c NOALIAS handling; for inet6 the `:0` form
    /// also skips link-local addresses: sbin/pfctl/pfctl_parser.c
    /// ifa_lookup(), PFI_AFLAG_NOALIAS with IN6_IS_ADDR_LINKLOCAL,
    /// freebsd-src 04fecb9b); the jnet default.
    Interface,
    /// One external address (an exposure bound with `--address`).
    Address(IpAddr),
    /// Any destination arriving on the interface (pf `any`), as other tools
    /// (Bastille) write it; jnet only parses this form.
    Any,
}

/// A port redirection: traffic arriving on `interface` for `host_ports`
/// goes to `target:target_ports`. Its family is the target's.
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
    pub source: Option<IpNetwork>,
    pub external: RdrDest,
    pub host_ports: PortRange,
    pub target: IpAddr,
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
        address: IpAddr,
    },
}

/// Outbound translation of a jail's (or pool's) source addresses. Its
/// family is the source network's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Nat {
    /// pf `nat pass`.
    pub pass: bool,
    pub log: bool,
    pub interface: IfName,
    /// `None` = every protocol (pf prints no `proto`).
    pub proto: Option<Proto>,
    /// A host network (/32, /128) is one jail address and is printed bare;
    /// `0.0.0.0/0` / `::/0` is every source of the family.
    #[serde(serialize_with = "ser_net")]
    pub source: IpNetwork,
    /// `None` = any destination.
    #[serde(serialize_with = "ser_opt_net")]
    pub destination: Option<IpNetwork>,
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

/// One exposure as the IR reads it: [`Expose`] with an external address
/// of either family (`--address 2001:db8::7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    pub proto: Proto,
    pub host: PortRange,
    pub jail: PortRange,
    pub address: Option<IpAddr>,
}

impl Exposure {
    fn host_overlaps(&self, o: &Exposure) -> bool {
        self.proto == o.proto
            && self.host.overlaps(o.host)
            && match (self.address, o.address) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl From<&Expose> for Exposure {
    fn from(e: &Expose) -> Exposure {
        Exposure {
            proto: e.proto,
            host: e.host,
            jail: e.jail,
            address: e.address,
        }
    }
}

impl fmt::Display for Exposure {
    /// The `Expose` text form, the address bracketed when it is IPv6.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            Some(IpAddr::V4(a)) => write!(f, "{a}:")?,
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            None => {}
        }
        write!(f, "{}/{}", self.proto, self.host)?;
        if self.jail != self.host {
            write!(f, ":{}", self.jail)?;
        }
        Ok(())
    }
}

/// Which families get outbound nat, and of which source network (the
/// jail's address as a host network, or its pool's network). Explicit per
/// family: IPv6 nat is only where the pool sets `nat = true`, never implied
/// by IPv4 nat (issue 9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatSources {
    pub inet: Option<Ipv4Network>,
    pub inet6: Option<Ipv6Network>,
}

impl NatSources {
    /// No nat for either family.
    pub fn none() -> NatSources {
        NatSources::default()
    }
    /// IPv4 nat of `n` only.
    pub fn inet(n: Ipv4Network) -> NatSources {
        NatSources {
            inet: Some(n),
            inet6: None,
        }
    }
}

// why: ipnetwork's serde support is behind a feature jnet does not enable;
// the text form is what JSON output wants anyway.
fn ser_net<S: serde::Serializer>(n: &IpNetwork, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}
fn ser_opt_net<S: serde::Serializer>(n: &Option<IpNetwork>, s: S) -> Result<S::Ok, S::Error> {
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

/// A network in pf's printed form: bare address for a host network (/32,
/// /128), `addr/bits` otherwise (sbin/pfctl/pf_print_state.c print_addr():
/// `/bits` only when bits != 32 (inet) or 128 (inet6)).
pub(crate) fn fmt_net(n: &IpNetwork) -> String {
    let mut s = String::with_capacity(20);
    push_net(&mut s, n);
    s
}

/// [`fmt_net`] appended to `out`.
pub(crate) fn push_net(out: &mut String, n: &IpNetwork) {
    push_ip(out, n.ip());
    if n.prefix() != Family::of_net(n).host_bits() {
        out.push('/');
        push_u16(out, n.prefix().into());
    }
}

/// Appends `a` as `Display` prints it. why: `Ipv4Addr`'s `Display` goes
/// through the formatting machinery four times per address, which was the
/// largest single cost of rendering rules for thousands of jails (issue
/// 10); IPv4 is written digit by digit, IPv6 (rarer, and with RFC 5952
/// zero compression to get right) keeps `Display`.
pub(crate) fn push_ip(out: &mut String, a: IpAddr) {
    match a {
        IpAddr::V4(a) => {
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u16(out, o.into());
            }
        }
        IpAddr::V6(a) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{a}");
        }
    }
}

/// Appends a decimal number (ports, octets) without the formatter.
pub(crate) fn push_u16(out: &mut String, n: u16) {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
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

fn check_net(rule: &dyn Fn() -> String, n: &IpNetwork) -> Result<(), RuleError> {
    let masked = IpNetwork::new(n.network(), n.prefix()).expect("prefix already valid");
    if masked.ip() != n.ip() {
        return Err(RuleError::HostBits {
            rule: rule(),
            net: *n,
            masked,
        });
    }
    Ok(())
}

fn check_family(
    rule: &dyn Fn() -> String,
    family: Family,
    what: &'static str,
    addr: IpAddr,
    text: &dyn Fn() -> String,
) -> Result<(), RuleError> {
    if Family::of(addr) != family {
        return Err(RuleError::MixedFamily {
            rule: rule(),
            what,
            addr: text(),
            family,
        });
    }
    Ok(())
}

/// A host address a rule may name as a target or external address.
fn unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => unicast6(a),
    }
}

fn unicast6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    // why link-local is refused: it needs a scope (`%if`) that neither pf
    // nor nft rule text carries for a target. why the IPv4-mapped
    // (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) forms are
    // refused: they are IPv4 addresses in disguise, and libc's inet_ntop
    // (lib/libc/inet/inet_ntop.c inet_ntop6(), which pfctl's print_addr
    // uses) prints the compatible form dotted where Rust prints hex, so the
    // printed rule would not compare equal with the rendered one.
    let link_local = s[0] & 0xffc0 == 0xfe80;
    let v4_embedded = s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && s[6] != 0));
    !(a.is_unspecified() || a.is_multicast() || link_local || v4_embedded)
}

fn v6_text(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

impl Redirect {
    /// The ports the jail receives on (the host ports when unchanged).
    pub fn effective_target_ports(&self) -> PortRange {
        self.target_ports.unwrap_or(self.host_ports)
    }

    /// The rule's address family: its target's.
    pub fn family(&self) -> Family {
        Family::of(self.target)
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
        // why one family: a pf rule carries one `af` (parse.y `natrule :
        // nataction interface af ...`), and nft's `dnat ip` / `dnat ip6`
        // name the family of their address; a rule mixing the two would be
        // refused or would never match.
        let family = self.family();
        if let RdrDest::Address(a) = self.external {
            check_family(&rule, family, "external address", a, &|| a.to_string())?;
            if !unicast(a) {
                return Err(RuleError::BadExternal { rule: rule(), addr: a });
            }
        }
        if let Some(s) = &self.source {
            check_family(&rule, family, "source network", s.ip(), &|| s.to_string())?;
            check_net(&rule, s)?;
        }
        check_label(&rule, &self.label)
    }
}

impl fmt::Display for Redirect {
    /// Short human form for messages: `rdr tcp on vtnet0 (vtnet0:0):80 ->
    /// 10.0.0.5:80` (an IPv6 address in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dest = match self.external {
            RdrDest::Interface => format!("({}:0)", self.interface),
            RdrDest::Address(a) => v6_text(a),
            RdrDest::Any => "any".to_string(),
        };
        write!(
            f,
            "rdr {} on {} {}:{} -> {}:{}",
            self.proto,
            self.interface,
            dest,
            self.host_ports,
            v6_text(self.target),
            self.effective_target_ports()
        )
    }
}

impl Nat {
    /// The rule's address family: its source network's.
    pub fn family(&self) -> Family {
        Family::of_net(&self.source)
    }

    pub fn validate(&self) -> Result<(), RuleError> {
        let rule = || self.to_string();
        let family = self.family();
        check_net(&rule, &self.source)?;
        if let Some(d) = &self.destination {
            check_family(&rule, family, "destination network", d.ip(), &|| d.to_string())?;
            check_net(&rule, d)?;
        }
        match &self.translation {
            NatTarget::Address { address } => {
                check_family(&rule, family, "translation address", *address, &|| address.to_string())?;
                if !unicast(*address) {
                    return Err(RuleError::BadTarget {
                        rule: rule(),
                        addr: *address,
                    });
                }
            }
            // why: `(if)` is a round-robin pool of every address of the
            // family on the interface, and for inet6 that includes its
            // fe80:: link-local addresses, which cannot source traffic
            // beyond the link; only the `:0` form skips them
            // (sbin/pfctl/pfctl_parser.c ifa_lookup(), PFI_AFLAG_NOALIAS
            // with IN6_IS_ADDR_LINKLOCAL, freebsd-src 04fecb9b).
            NatTarget::Interface {
                ifname,
                first_only: false,
            } if family == Family::Inet6 => {
                return Err(RuleError::Inet6InterfacePool {
                    rule: rule(),
                    ifname: ifname.clone(),
                });
            }
            NatTarget::Interface { .. } => {}
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

fn nat_rule(external_if: &IfName, source: IpNetwork, label: &Option<String>) -> Nat {
    Nat {
        pass: false,
        log: false,
        interface: external_if.clone(),
        proto: None,
        source,
        destination: None,
        // why `:0` for inet6: see Nat::validate (link-local addresses).
        translation: NatTarget::Interface {
            ifname: external_if.clone(),
            first_only: Family::of_net(&source) == Family::Inet6,
        },
        label: label.clone(),
    }
}

impl JailRules {
    /// Builds a jail's rules from its addresses (at most one per family),
    /// its exposures and the families that get nat: per exposure one
    /// `rdr pass` on the external interface for each of the jail's
    /// families, IPv4 first (only the bound address's family when the
    /// exposure has an external address), then one `nat` to the
    /// interface's address per family in `nat`; all labelled `jnet:<jail>`.
    /// An exposure's external address may be of either family
    /// (`--address 2001:db8::7`); [`JailRules::from_exposure_list`] is the
    /// same over the IR's own [`Exposure`].
    pub fn from_exposures(
        jail: &JailName,
        jail_addrs: &[IpAddr],
        external_if: &IfName,
        exposures: &[Expose],
        nat: NatSources,
    ) -> Result<JailRules, RuleError> {
        let list: Vec<Exposure> = exposures.iter().map(Exposure::from).collect();
        Self::from_exposure_list(jail, jail_addrs, external_if, &list, nat)
    }

    /// [`JailRules::from_exposures`] over exposures whose external address
    /// may be IPv6 (`--address 2001:db8::7`).
    pub fn from_exposure_list(
        jail: &JailName,
        jail_addrs: &[IpAddr],
        external_if: &IfName,
        exposures: &[Exposure],
        nat: NatSources,
    ) -> Result<JailRules, RuleError> {
        let (mut v4, mut v6) = (None, None);
        for &a in jail_addrs {
            let slot = match a {
                IpAddr::V4(_) => &mut v4,
                IpAddr::V6(_) => &mut v6,
            };
            if let Some(first) = *slot {
                if first != a {
                    return Err(RuleError::TwoAddresses {
                        jail: jail.clone(),
                        family: Family::of(a),
                        a: first,
                        b: a,
                    });
                }
            }
            *slot = Some(a);
        }
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
        let mut redirects = Vec::with_capacity(exposures.len() * jail_addrs.len().max(1));
        for e in exposures {
            let targets: [Option<IpAddr>; 2] = match e.address {
                None => [v4, v6],
                Some(x) => {
                    let t = match x {
                        IpAddr::V4(_) => v4,
                        IpAddr::V6(_) => v6,
                    };
                    if t.is_none() {
                        return Err(RuleError::NoFamilyAddress {
                            jail: jail.clone(),
                            exposure: e.to_string(),
                            family: Family::of(x),
                            addr: x,
                        });
                    }
                    [t, None]
                }
            };
            if targets == [None, None] {
                return Err(RuleError::NoAddress {
                    jail: jail.clone(),
                    exposure: e.to_string(),
                });
            }
            for target in targets.into_iter().flatten() {
                redirects.push(Redirect {
                    pass: true,
                    log: false,
                    proto: e.proto,
                    interface: external_if.clone(),
                    source: None,
                    external: e.address.map_or(RdrDest::Interface, RdrDest::Address),
                    host_ports: e.host,
                    target,
                    target_ports: Some(e.jail),
                    label: label.clone(),
                });
            }
        }
        let mut nats = Vec::new();
        for (source, have) in [
            (nat.inet.map(IpNetwork::V4), v4.is_some()),
            (nat.inet6.map(IpNetwork::V6), v6.is_some()),
        ] {
            let Some(source) = source else { continue };
            if !have {
                return Err(RuleError::NatWithoutAddress {
                    jail: jail.clone(),
                    family: Family::of_net(&source),
                    source_net: source,
                });
            }
            nats.push(nat_rule(external_if, source, &label));
        }
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
    use std::net::Ipv4Addr;

    fn jail() -> JailName {
        JailName::new("www").unwrap()
    }
    fn ifn() -> IfName {
        IfName::new("vtnet0").unwrap()
    }
    fn pr(lo: u16, hi: u16) -> PortRange {
        PortRange::new(lo, hi).unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn v4(a: [u8; 4]) -> Vec<IpAddr> {
        vec![IpAddr::V4(Ipv4Addr::from(a))]
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
            target: ip("10.0.0.5"),
            target_ports: Some(pr(80, 80)),
            label: None,
        }
    }
    fn ex6(addr: Option<&str>, proto: Proto, host: u16, jail: u16) -> Exposure {
        Exposure {
            proto,
            host: PortRange::single(host).unwrap(),
            jail: PortRange::single(jail).unwrap(),
            address: addr.map(ip),
        }
    }

    #[test]
    fn builds_from_exposures() {
        let ex: Vec<Expose> = vec![
            "tcp/80".parse().unwrap(),
            crate::core::ports::parse_expose_with_address("192.0.2.7:udp/5000-5010:6000-6010").unwrap(),
        ];
        let net: Ipv4Network = "10.66.0.5/32".parse().unwrap();
        let r = JailRules::from_exposures(&jail(), &v4([10, 66, 0, 5]), &ifn(), &ex, NatSources::inet(net)).unwrap();
        assert_eq!(r.redirects.len(), 2);
        assert_eq!(r.redirects[0].external, RdrDest::Interface);
        assert_eq!(r.redirects[1].external, RdrDest::Address(ip("192.0.2.7")));
        assert_eq!(r.redirects[1].target_ports, Some(pr(6000, 6010)));
        assert_eq!(r.redirects[0].label.as_deref(), Some("jnet:www"));
        assert_eq!(r.nats.len(), 1);
        assert_eq!(r.nats[0].source, IpNetwork::V4(net));
        assert_eq!(
            r.nats[0].translation,
            NatTarget::Interface {
                ifname: ifn(),
                first_only: false
            }
        );
    }

    /// An exposure bound to an IPv6 external address on a dual-stack jail
    /// yields the inet6 rdr only; one bound to IPv4 the inet one only; an
    /// unbound one both. On an IPv4-only jail the IPv6-bound one is refused.
    #[test]
    fn bound_exposures_redirect_only_their_family() {
        let at = |s: &str| crate::core::ports::parse_expose_with_address(s).unwrap();
        let ex = [at("[2001:db8::1]:tcp/80"), at("192.0.2.7:tcp/80"), at("udp/53")];
        let addrs = [ip("10.0.0.5"), ip("2001:db8::5")];
        let r = JailRules::from_exposures(&jail(), &addrs, &ifn(), &ex, NatSources::none()).unwrap();
        let got: Vec<(RdrDest, IpAddr)> = r.redirects.iter().map(|x| (x.external, x.target)).collect();
        assert_eq!(
            got,
            [
                (RdrDest::Address(ip("2001:db8::1")), ip("2001:db8::5")),
                (RdrDest::Address(ip("192.0.2.7")), ip("10.0.0.5")),
                (RdrDest::Interface, ip("10.0.0.5")),
                (RdrDest::Interface, ip("2001:db8::5")),
            ]
        );
        let e =
            JailRules::from_exposures(&jail(), &v4([10, 0, 0, 5]), &ifn(), &ex[..1], NatSources::none()).unwrap_err();
        assert!(
            matches!(
                e,
                RuleError::NoFamilyAddress {
                    family: Family::Inet6,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn dual_stack_emits_one_redirect_per_family() {
        let addrs = [ip("2001:db8::5"), ip("10.0.0.5")];
        let ex = [
            ex6(None, Proto::Tcp, 80, 80),
            ex6(Some("192.0.2.7"), Proto::Tcp, 443, 443),
            ex6(Some("2001:db8:1::7"), Proto::Udp, 53, 5353),
        ];
        let nat = NatSources {
            inet: Some("10.0.0.0/24".parse().unwrap()),
            inet6: Some("fd00::/64".parse().unwrap()),
        };
        let r = JailRules::from_exposure_list(&jail(), &addrs, &ifn(), &ex, nat).unwrap();
        let got: Vec<(IpAddr, RdrDest, u16)> = r
            .redirects
            .iter()
            .map(|x| (x.target, x.external, x.host_ports.lo()))
            .collect();
        assert_eq!(
            got,
            vec![
                // The unbound exposure: inet, then inet6 next to it.
                (ip("10.0.0.5"), RdrDest::Interface, 80),
                (ip("2001:db8::5"), RdrDest::Interface, 80),
                // Bound exposures: only their address's family.
                (ip("10.0.0.5"), RdrDest::Address(ip("192.0.2.7")), 443),
                (ip("2001:db8::5"), RdrDest::Address(ip("2001:db8:1::7")), 53),
            ]
        );
        assert_eq!(r.nats.len(), 2);
        assert_eq!((r.nats[0].family(), r.nats[1].family()), (Family::Inet, Family::Inet6));
        // IPv6 nat takes the interface's first non-link-local address.
        assert_eq!(
            r.nats[1].translation,
            NatTarget::Interface {
                ifname: ifn(),
                first_only: true
            }
        );
        // No IPv6 nat unless asked for, even with an IPv6 address.
        let r = JailRules::from_exposure_list(
            &jail(),
            &addrs,
            &ifn(),
            &ex,
            NatSources::inet("10.0.0.0/24".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(r.nats.len(), 1);
        assert_eq!(r.nats[0].family(), Family::Inet);
        // An IPv6-only jail.
        let r =
            JailRules::from_exposure_list(&jail(), &[ip("2001:db8::5")], &ifn(), &ex[..1], NatSources::none()).unwrap();
        assert_eq!(r.redirects.len(), 1);
        assert_eq!(r.redirects[0].family(), Family::Inet6);
    }

    #[test]
    fn family_errors_are_clear() {
        let bound6 = [ex6(Some("2001:db8:1::7"), Proto::Tcp, 80, 80)];
        let e = JailRules::from_exposure_list(&jail(), &v4([10, 0, 0, 5]), &ifn(), &bound6, NatSources::none())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "jail www: exposure [2001:db8:1::7]:tcp/80 is bound to inet6 address 2001:db8:1::7, but the jail has no inet6 address"
        );
        let bound4 = [ex6(Some("192.0.2.7"), Proto::Tcp, 80, 8080)];
        let e = JailRules::from_exposure_list(&jail(), &[ip("2001:db8::5")], &ifn(), &bound4, NatSources::none())
            .unwrap_err();
        assert!(
            matches!(
                e,
                RuleError::NoFamilyAddress {
                    family: Family::Inet,
                    ..
                }
            ),
            "{e}"
        );
        let e = JailRules::from_exposure_list(
            &jail(),
            &[ip("10.0.0.5"), ip("10.0.0.6")],
            &ifn(),
            &bound4,
            NatSources::none(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "jail www: two inet addresses 10.0.0.5 and 10.0.0.6; a jail holds at most one address per family"
        );
        let e = JailRules::from_exposure_list(&jail(), &[], &ifn(), &bound6[..0], NatSources::none()).unwrap();
        assert!(e.is_empty());
        let e = JailRules::from_exposure_list(
            &jail(),
            &v4([10, 0, 0, 5]),
            &ifn(),
            &[],
            NatSources {
                inet: None,
                inet6: Some("fd00::/64".parse().unwrap()),
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "jail www: inet6 nat of fd00::/64 was asked for, but the jail has no inet6 address"
        );
        let e = JailRules::from_exposure_list(
            &jail(),
            &[],
            &ifn(),
            &[ex6(None, Proto::Tcp, 80, 80)],
            NatSources::none(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "jail www: exposure tcp/80 has no jail address to redirect to"
        );
    }

    #[test]
    fn mixed_family_rules_are_refused_with_the_rule_named() {
        let mut r = rdr();
        r.external = RdrDest::Address(ip("2001:db8::7"));
        assert_eq!(
            r.validate().unwrap_err().to_string(),
            "rdr tcp on vtnet0 [2001:db8::7]:80 -> 10.0.0.5:80: mixes address families: external address 2001:db8::7 is not inet like the rest of the rule"
        );
        let mut r = rdr();
        r.target = ip("2001:db8::5");
        r.source = Some("192.0.2.0/24".parse().unwrap());
        assert!(matches!(
            r.validate(),
            Err(RuleError::MixedFamily {
                what: "source network",
                family: Family::Inet6,
                ..
            })
        ));
        let n = Nat {
            pass: false,
            log: false,
            interface: ifn(),
            proto: None,
            source: "fd00::/64".parse().unwrap(),
            destination: Some("10.0.0.0/8".parse().unwrap()),
            translation: NatTarget::Address {
                address: ip("2001:db8::1"),
            },
            label: None,
        };
        assert!(matches!(
            n.validate(),
            Err(RuleError::MixedFamily {
                what: "destination network",
                ..
            })
        ));
        let n = Nat {
            destination: None,
            translation: NatTarget::Address {
                address: ip("192.0.2.1"),
            },
            ..n
        };
        assert!(matches!(
            n.validate(),
            Err(RuleError::MixedFamily {
                what: "translation address",
                ..
            })
        ));
        let n = Nat {
            translation: NatTarget::Interface {
                ifname: ifn(),
                first_only: false,
            },
            ..n
        };
        assert!(n.validate().unwrap_err().to_string().contains("link-local"));
    }

    #[test]
    fn overlapping_exposures_are_refused() {
        let ex: Vec<Expose> = vec!["tcp/80-90".parse().unwrap(), "tcp/85:8085".parse().unwrap()];
        let e = JailRules::from_exposures(&jail(), &v4([10, 0, 0, 5]), &ifn(), &ex, NatSources::none()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "jail www: exposures tcp/80-90 and tcp/85:8085 redirect overlapping host ports"
        );
        // Different protocols do not overlap.
        let ex: Vec<Expose> = vec!["tcp/80".parse().unwrap(), "udp/80".parse().unwrap()];
        assert!(JailRules::from_exposures(&jail(), &v4([10, 0, 0, 5]), &ifn(), &ex, NatSources::none()).is_ok());
        // Nor do the same ports bound to addresses of two families.
        let ex = [
            ex6(Some("192.0.2.7"), Proto::Tcp, 80, 80),
            ex6(Some("2001:db8::7"), Proto::Tcp, 80, 80),
        ];
        let addrs = [ip("10.0.0.5"), ip("2001:db8::5")];
        assert_eq!(
            JailRules::from_exposure_list(&jail(), &addrs, &ifn(), &ex, NatSources::none())
                .unwrap()
                .redirects
                .len(),
            2
        );
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

        for bad in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "ff02::1",
            "fe80::1",
            "::ffff:10.0.0.5",
            "::10.0.0.5",
        ] {
            let mut r = rdr();
            r.target = ip(bad);
            assert!(matches!(r.validate(), Err(RuleError::BadTarget { .. })), "{bad}");
            let mut r = rdr();
            r.target = if ip(bad).is_ipv4() {
                ip("10.0.0.5")
            } else {
                ip("2001:db8::5")
            };
            r.external = RdrDest::Address(ip(bad));
            assert!(matches!(r.validate(), Err(RuleError::BadExternal { .. })), "{bad}");
        }
        // Loopback and ordinary global or ULA addresses are fine.
        for good in ["::1", "2001:db8::5", "fd00::5"] {
            let mut r = rdr();
            r.target = ip(good);
            assert!(r.validate().is_ok(), "{good}");
        }

        let mut r = rdr();
        r.source = Some("192.0.2.1/24".parse().unwrap());
        assert_eq!(
            r.validate().unwrap_err().to_string(),
            "rdr tcp on vtnet0 (vtnet0:0):80 -> 10.0.0.5:80: network 192.0.2.1/24 has host bits set (pf would use 192.0.2.0/24)"
        );
        let mut r = rdr();
        r.target = ip("2001:db8::5");
        r.source = Some("2001:db8::1/64".parse().unwrap());
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .ends_with("network 2001:db8::1/64 has host bits set (pf would use 2001:db8::/64)"));

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
            translation: NatTarget::Address { address: ip("0.0.0.0") },
            label: None,
        };
        assert!(matches!(n.validate(), Err(RuleError::BadTarget { .. })));
    }

    #[test]
    fn fast_address_text_matches_display() {
        for a in [
            "0.0.0.0",
            "10.0.0.5",
            "255.255.255.255",
            "192.0.2.17",
            "2001:db8::5",
            "::",
            "fd00:8::8",
        ] {
            let mut s = String::new();
            push_ip(&mut s, ip(a));
            assert_eq!(s, ip(a).to_string());
        }
        for n in [0u16, 7, 10, 99, 100, 65535] {
            let mut s = String::new();
            push_u16(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for (n, want) in [
            ("10.0.0.5/32", "10.0.0.5"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::5/128", "2001:db8::5"),
            ("fd00::/64", "fd00::/64"),
        ] {
            assert_eq!(fmt_net(&n.parse().unwrap()), want);
        }
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
        r.target = ip("0.0.0.0");
        let jr = JailRules {
            jail: jail(),
            redirects: vec![r],
            nats: vec![],
        };
        assert!(jr.validate().unwrap_err().to_string().starts_with("jail www: rdr tcp"));
    }
}
