//! Parser of pfctl(8) rule listings (`pfctl -s nat`, `-s rules`,
//! `-a <anchor> -s nat`, recursive `-a '*'` output with `{ }` blocks) and of
//! single rules in the canonical form pfctl prints (`print_rule()` in
//! sbin/pfctl/pfctl_parser.c, pf.conf(5) grammar).
//!
//! It extracts what jnet needs: which anchor each rule belongs to, the
//! translation rules (`rdr`, `nat`) with their addresses and ports, the
//! anchor hooks (`nat-anchor "jnet/*"`, ...), redirections owned by others
//! ([`ForeignRedirect`]), and the conversion of a canonical rule into jnet's
//! IR. Filter options it does not model are kept as raw tokens, never
//! guessed at. It does not run pfctl; the `os` layer hands the text in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

use crate::core::listeners::ForeignRedirect;
use crate::core::names::IfName;
use crate::core::ports::{PortRange, Proto};
use crate::core::rules::ir::{Family, Nat, NatTarget, RdrDest, Redirect};
use crate::core::rules::pf::{anchor_hook_lines, dynif_multiaddr, service_port};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PfListError {
    #[error("pfctl listing line {line}: {reason}: {text:?}")]
    Line { line: usize, text: String, reason: String },
    #[error("pfctl listing: unbalanced '}}' at line {line}")]
    Unbalanced { line: usize },
}

/// A port condition (`port = 80`, `port 80:90`, `port >= 1024`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortOp {
    Eq(u16),
    Ne(u16),
    Lt(u16),
    Le(u16),
    Gt(u16),
    Ge(u16),
    /// `lo:hi`, inclusive.
    Range(u16, u16),
    /// `lo >< hi`, exclusive.
    Inside(u16, u16),
    /// `lo <> hi`: outside the range.
    Outside(u16, u16),
}

impl PortOp {
    /// The port ranges the condition matches (port 0 never matches).
    pub fn ranges(self) -> Vec<PortRange> {
        let r = |lo: u32, hi: u32| -> Option<PortRange> {
            let lo = lo.max(1);
            if lo > hi || hi > 65535 {
                None
            } else {
                PortRange::new(lo as u16, hi as u16).ok()
            }
        };
        let (a, b) = match self {
            PortOp::Eq(p) => (r(p.into(), p.into()), None),
            PortOp::Ne(p) => (r(1, u32::from(p).saturating_sub(1)), r(u32::from(p) + 1, 65535)),
            PortOp::Lt(p) => (r(1, u32::from(p).saturating_sub(1)), None),
            PortOp::Le(p) => (r(1, p.into()), None),
            PortOp::Gt(p) => (r(u32::from(p) + 1, 65535), None),
            PortOp::Ge(p) => (r(p.into(), 65535), None),
            PortOp::Range(lo, hi) => (r(lo.into(), hi.into()), None),
            PortOp::Inside(lo, hi) => (r(u32::from(lo) + 1, u32::from(hi).saturating_sub(1)), None),
            PortOp::Outside(lo, hi) => (r(1, u32::from(lo).saturating_sub(1)), r(u32::from(hi) + 1, 65535)),
        };
        a.into_iter().chain(b).collect()
    }
}

/// One side of `from ... to ...`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    pub negated: bool,
    /// The address as printed: `any`, `(vtnet0)`, `10.0.0.0/24`, `<tbl>`,
    /// `{ a, b }`, `self`, ...
    pub addr: String,
    pub port: Option<PortOp>,
}

/// The translation part after `->`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pool {
    /// Addresses as printed (one, or the members of `{ ... }`).
    pub addrs: Vec<String>,
    /// `port lo[:hi]`.
    pub port: Option<(u16, u16)>,
    /// Pool options in order: `round-robin`, `static-port`, `sticky-address`,
    /// `source-hash 0x...`, `map-e-portset a/b/c`, `endpoint-independent`...
    pub options: Vec<String>,
}

/// A rule in canonical pfctl form, split into the parts jnet reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PfRule {
    /// `rdr`, `nat`, `binat`, `pass`, `block`, `scrub`, `anchor`,
    /// `nat-anchor`, `rdr-anchor`, `binat-anchor`, ... (`no ` prefixed for
    /// `no nat` etc.).
    pub action: String,
    /// Anchor name for anchor calls (as printed, e.g. `jnet/*`).
    pub anchor_call: Option<String>,
    /// `rdr pass` / `nat pass`.
    pub pass: bool,
    pub log: bool,
    /// `on [!] ifname`.
    pub interface: Option<(bool, String)>,
    /// `inet` or `inet6`.
    pub af: Option<String>,
    pub protos: Vec<String>,
    /// `None` for `all`.
    pub from: Option<Endpoint>,
    pub to: Option<Endpoint>,
    pub label: Option<String>,
    pub pool: Option<Pool>,
    /// Tokens jnet does not model (`quick`, `in`, `flags S/SA`, `keep state`...).
    pub other: Vec<String>,
    /// The rule opened a `{` block (recursive listings, inline anchors).
    pub opens_block: bool,
}

impl PfRule {
    pub fn is_anchor_call(&self) -> bool {
        self.anchor_call.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
}

impl Tok {
    fn text(&self) -> &str {
        match self {
            Tok::Word(s) | Tok::Quoted(s) => s,
        }
    }
}

fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => s.push(ch),
                    None => return Err("unterminated quoted string".into()),
                }
            }
            out.push(Tok::Quoted(s));
        } else {
            let mut s = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '"' {
                    break;
                }
                s.push(ch);
                chars.next();
            }
            // why: pfctl prints lists as `{ a, b }`; a trailing comma is a
            // separator, not part of the address.
            if let Some(stripped) = s.strip_suffix(',') {
                if !stripped.is_empty() {
                    out.push(Tok::Word(stripped.to_string()));
                }
                out.push(Tok::Word(",".into()));
            } else {
                out.push(Tok::Word(s));
            }
        }
    }
    Ok(out)
}

struct Cursor {
    toks: Vec<Tok>,
    i: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.i).map(Tok::text)
    }
    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.i) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn next_text(&mut self) -> Option<String> {
        self.next().map(|t| t.text().to_string())
    }
    fn eat(&mut self, w: &str) -> bool {
        if self.peek_word() == Some(w) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Reads `{ a , b }` or one token; returns the members.
    fn list(&mut self) -> Result<Vec<String>, String> {
        if self.eat("{") {
            let mut v = Vec::new();
            loop {
                match self.next_text() {
                    Some(t) if t == "}" => return Ok(v),
                    Some(t) if t == "," => {}
                    Some(t) => v.push(t),
                    None => return Err("unterminated '{' list".into()),
                }
            }
        }
        self.next_text()
            .map(|t| vec![t])
            .ok_or_else(|| "unexpected end of rule".to_string())
    }
}

/// A port number or a service name from the built-in table.
pub fn parse_port_name(s: &str) -> Result<u16, String> {
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse::<u16>().map_err(|_| format!("port {s} is out of range"));
    }
    service_port(s).ok_or_else(|| format!("unknown service name {s:?}"))
}

fn parse_port_op(c: &mut Cursor) -> Result<PortOp, String> {
    let first = c.next_text().ok_or("missing port after 'port'")?;
    let one = |c: &mut Cursor| -> Result<u16, String> { parse_port_name(&c.next_text().ok_or("missing port value")?) };
    Ok(match first.as_str() {
        "=" => PortOp::Eq(one(c)?),
        "!=" => PortOp::Ne(one(c)?),
        "<" => PortOp::Lt(one(c)?),
        "<=" => PortOp::Le(one(c)?),
        ">" => PortOp::Gt(one(c)?),
        ">=" => PortOp::Ge(one(c)?),
        other => {
            if let Some((a, b)) = other.split_once(':') {
                PortOp::Range(parse_port_name(a)?, parse_port_name(b)?)
            } else {
                let lo = parse_port_name(other)?;
                if c.eat("><") {
                    PortOp::Inside(lo, one(c)?)
                } else if c.eat("<>") {
                    PortOp::Outside(lo, one(c)?)
                } else {
                    PortOp::Eq(lo)
                }
            }
        }
    })
}

fn parse_endpoint(c: &mut Cursor) -> Result<Endpoint, String> {
    let mut ep = Endpoint {
        negated: c.eat("!"),
        ..Endpoint::default()
    };
    let members = if c.peek_word() == Some("{") {
        let m = c.list()?;
        format!("{{ {} }}", m.join(", "))
    } else {
        c.next_text().ok_or("missing address")?
    };
    ep.addr = members;
    if c.eat("port") {
        ep.port = Some(parse_port_op(c)?);
    }
    if c.eat("os") {
        c.next();
    }
    Ok(ep)
}

const ANCHOR_KINDS: [&str; 4] = ["anchor", "nat-anchor", "rdr-anchor", "binat-anchor"];

/// Parses one rule line in canonical pfctl form (an optional `@N ` rule
/// number from `-vv` is skipped).
pub fn parse_rule(line: &str) -> Result<PfRule, String> {
    let mut c = Cursor {
        toks: tokenize(line)?,
        i: 0,
    };
    if c.peek_word().is_some_and(|w| w.starts_with('@')) {
        c.next();
    }
    let mut r = PfRule::default();
    let first = c.next_text().ok_or("empty rule")?;
    r.action = if first == "no" {
        format!("no {}", c.next_text().ok_or("missing action after 'no'")?)
    } else {
        first
    };
    if ANCHOR_KINDS.contains(&r.action.as_str()) {
        if let Some(Tok::Quoted(name)) = c.toks.get(c.i) {
            r.anchor_call = Some(name.clone());
            c.i += 1;
        } else {
            r.anchor_call = Some(String::new());
        }
    }
    let is_translation = matches!(r.action.as_str(), "nat" | "rdr" | "binat");
    // Header: everything up to `all` / `from`.
    while let Some(w) = c.peek() {
        match w {
            "all" => {
                c.next();
                break;
            }
            "from" => {
                c.next();
                r.from = Some(parse_endpoint(&mut c)?);
                if !c.eat("to") {
                    return Err("expected 'to' after the source".into());
                }
                r.to = Some(parse_endpoint(&mut c)?);
                break;
            }
            "pass" if is_translation => {
                c.next();
                r.pass = true;
            }
            "log" => {
                c.next();
                r.log = true;
                if c.peek_word().is_some_and(|w| w.starts_with('(')) {
                    while let Some(t) = c.next_text() {
                        if t.ends_with(')') {
                            break;
                        }
                    }
                }
            }
            "on" => {
                c.next();
                let neg = c.eat("!");
                let name = c.next_text().ok_or("missing interface after 'on'")?;
                r.interface = Some((neg, name));
            }
            "inet" | "inet6" => r.af = c.next_text(),
            "proto" => {
                c.next();
                r.protos = c.list()?;
            }
            "{" | "->" | "label" => break,
            _ => r.other.extend(c.next_text()),
        }
    }
    // Options after from/to, up to `->`.
    while let Some(w) = c.peek() {
        match w {
            "->" => {
                c.next();
                r.pool = Some(parse_pool(&mut c)?);
                break;
            }
            "label" => {
                c.next();
                r.label = Some(c.next_text().ok_or("missing label text")?);
            }
            "{" if c.i + 1 == c.toks.len() => {
                c.next();
                r.opens_block = true;
            }
            _ => r.other.extend(c.next_text()),
        }
    }
    if let (Some(pool), Some(to)) = (r.pool.as_mut(), r.to.as_ref()) {
        if let Some((lo, 0)) = pool.port {
            let span = match to.port {
                Some(PortOp::Range(a, b)) => b.saturating_sub(a),
                _ => 0,
            };
            let hi = lo.checked_add(span).ok_or("target port range passes 65535")?;
            pool.port = Some((lo, hi));
        }
    }
    if c.peek().is_some() {
        // A `{` after a pool never occurs in pfctl output; keep it visible.
        r.other.extend(c.toks[c.i..].iter().map(|t| t.text().to_string()));
    }
    Ok(r)
}

fn parse_pool(c: &mut Cursor) -> Result<Pool, String> {
    let mut p = Pool {
        addrs: c.list()?,
        ..Pool::default()
    };
    if c.eat("port") {
        let t = c.next_text().ok_or("missing port after 'port'")?;
        let (a, b) = match t.split_once(':') {
            Some((a, b)) => (a, b),
            None => (t.as_str(), t.as_str()),
        };
        let lo = parse_port_name(a)?;
        // why: `port 8080:*` maps the destination range one-to-one from
        // 8080; 0 marks it until parse_rule knows that range.
        let hi = if b == "*" { 0 } else { parse_port_name(b)? };
        p.port = Some((lo, hi));
    }
    while let Some(t) = c.next_text() {
        if matches!(t.as_str(), "source-hash" | "map-e-portset") {
            let arg = c.next_text().unwrap_or_default();
            p.options.push(format!("{t} {arg}"));
        } else {
            p.options.push(t);
        }
    }
    Ok(p)
}

/// Why a canonical rule cannot be expressed in jnet's IR.
fn nope<T>(why: &str) -> Result<T, String> {
    Err(why.to_string())
}

/// An address or network of `family` as pfctl prints it (a bare address
/// is a host network).
fn ip_net(s: &str, family: Family) -> Option<IpNetwork> {
    let n: IpNetwork = if s.contains('/') {
        s.parse().ok()?
    } else {
        let a: IpAddr = s.parse().ok()?;
        IpNetwork::new(a, family.host_bits()).ok()?
    };
    (Family::of_net(&n) == family).then_some(n)
}

/// One address of `family`.
fn ip_addr(s: &str, family: Family) -> Option<IpAddr> {
    let a: IpAddr = s.parse().ok()?;
    (Family::of(a) == family).then_some(a)
}

/// The whole family (`any` in a nat rule): `0.0.0.0/0` or `::/0`.
fn any_net(family: Family) -> IpNetwork {
    let a = match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    IpNetwork::new(a, 0).expect("/0 is valid")
}

fn single_proto(r: &PfRule) -> Result<Option<Proto>, String> {
    match r.protos.as_slice() {
        [] => Ok(None),
        [p] => p
            .parse::<Proto>()
            .map(Some)
            .map_err(|_| format!("protocol {p} is not tcp or udp")),
        _ => nope("several protocols"),
    }
}

fn common_checks(r: &PfRule) -> Result<(IfName, Family), String> {
    let family = match r.af.as_deref() {
        Some("inet") => Family::Inet,
        Some("inet6") => Family::Inet6,
        _ => return nope("no address family (inet or inet6)"),
    };
    if !r.other.is_empty() {
        return Err(format!("options jnet does not model: {}", r.other.join(" ")));
    }
    match &r.interface {
        Some((false, i)) => Ok((IfName::new(i).map_err(|e| e.to_string())?, family)),
        Some((true, _)) => nope("negated interface"),
        None => nope("no interface"),
    }
}

/// Converts a canonical `rdr` rule into a [`Redirect`], or says why jnet's
/// IR cannot express it.
pub fn redirect_from_rule(r: &PfRule) -> Result<Redirect, String> {
    if r.action != "rdr" {
        return nope("not an rdr rule");
    }
    let (interface, family) = common_checks(r)?;
    let proto = single_proto(r)?.ok_or("no protocol")?;
    let (from, to) = match (&r.from, &r.to) {
        (Some(f), Some(t)) => (f, t),
        _ => return nope("matches all destinations and ports"),
    };
    if from.negated || to.negated || from.port.is_some() {
        return nope("negated address or source port");
    }
    let source = match from.addr.as_str() {
        "any" => None,
        a => Some(ip_net(a, family).ok_or_else(|| format!("source is not an {family} address or network"))?),
    };
    let external = match to.addr.as_str() {
        "any" => RdrDest::Any,
        a if a == format!("({interface}:0)") => RdrDest::Interface,
        a => match ip_addr(a, family) {
            Some(ip) => RdrDest::Address(ip),
            None => {
                return Err(format!(
                    "destination is not any, the rule's interface or one {family} address"
                ))
            }
        },
    };
    let host_ports = match to.port {
        Some(PortOp::Eq(p)) => PortRange::single(p),
        Some(PortOp::Range(lo, hi)) => PortRange::new(lo, hi),
        Some(_) => return nope("destination port operator other than = or :"),
        None => return nope("no destination port"),
    }
    .map_err(|e| e.to_string())?;
    let pool = r.pool.as_ref().ok_or("no translation")?;
    let [target] = pool.addrs.as_slice() else {
        return nope("pool of several addresses");
    };
    let target = ip_addr(target, family).ok_or_else(|| format!("target is not one {family} address"))?;
    if !pool.options.is_empty() {
        return nope("pool options");
    }
    let target_ports = match pool.port {
        Some((lo, hi)) => Some(PortRange::new(lo, hi).map_err(|e| e.to_string())?),
        None => None,
    };
    let rd = Redirect {
        pass: r.pass,
        log: r.log,
        proto,
        interface,
        source,
        external,
        host_ports,
        target,
        target_ports,
        label: r.label.clone(),
    };
    rd.validate().map_err(|e| e.to_string())?;
    Ok(rd)
}

/// Converts a canonical `nat` rule into a [`Nat`], or says why it cannot.
pub fn nat_from_rule(r: &PfRule) -> Result<Nat, String> {
    if r.action != "nat" {
        return nope("not a nat rule");
    }
    let (interface, family) = common_checks(r)?;
    let proto = single_proto(r)?;
    let any = any_net(family);
    let (source, destination) = match (&r.from, &r.to) {
        (None, None) => (any, None),
        (Some(f), Some(t)) => {
            if f.negated || t.negated || f.port.is_some() || t.port.is_some() {
                return nope("negated address or port condition");
            }
            let s = if f.addr == "any" {
                any
            } else {
                ip_net(&f.addr, family).ok_or_else(|| format!("source is not {family}"))?
            };
            let d = if t.addr == "any" {
                None
            } else {
                Some(ip_net(&t.addr, family).ok_or_else(|| format!("destination is not {family}"))?)
            };
            (s, d)
        }
        _ => return nope("malformed from/to"),
    };
    let pool = r.pool.as_ref().ok_or("no translation")?;
    let [addr] = pool.addrs.as_slice() else {
        return nope("pool of several addresses");
    };
    if pool.port.is_some() {
        return nope("explicit nat port range");
    }
    let translation = if let Some(inner) = addr.strip_prefix('(').and_then(|a| a.strip_suffix(')')) {
        let (name, first_only) = match inner.strip_suffix(":0") {
            Some(n) => (n, true),
            None => (inner, false),
        };
        if name.contains(':') {
            return nope("interface modifier other than :0");
        }
        let ifname = IfName::new(name).map_err(|e| e.to_string())?;
        let want: &[&str] = if dynif_multiaddr(name, first_only) {
            &["round-robin"]
        } else {
            &[]
        };
        if pool.options != want {
            return nope("pool options other than the implied round-robin");
        }
        NatTarget::Interface { ifname, first_only }
    } else {
        if !pool.options.is_empty() {
            return nope("pool options");
        }
        NatTarget::Address {
            address: ip_addr(addr, family).ok_or_else(|| format!("translation is not one {family} address"))?,
        }
    };
    let n = Nat {
        pass: r.pass,
        log: r.log,
        interface,
        proto,
        source,
        destination,
        translation,
        label: r.label.clone(),
    };
    n.validate().map_err(|e| e.to_string())?;
    Ok(n)
}

/// A rule of a listing, with the anchor it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRule {
    /// Anchor path (`jnet/www`); empty for the main ruleset (pf.conf).
    pub anchor: String,
    pub rule: PfRule,
    /// The line as printed, trimmed.
    pub text: String,
    /// 1-based line number in the listing.
    pub line: usize,
}

/// A parsed pfctl listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PfListing {
    pub rules: Vec<ListedRule>,
    /// Rule lines jnet could not read (an operator or a service name it
    /// does not know, ...), each with its line number and reason. One such
    /// rule never aborts the whole listing: the caller reports it per rule
    /// (F3). Listings are read with `pfctl -P`, so ports are numbers.
    pub unparsed: Vec<PfListError>,
}

fn join_anchor(parent: &str, name: &str) -> String {
    let name = name
        .strip_suffix("/*")
        .or_else(|| name.strip_suffix('*'))
        .unwrap_or(name);
    let name = name.trim_end_matches('/');
    if let Some(abs) = name.strip_prefix('/') {
        abs.to_string()
    } else if parent.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        parent.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Parses a listing. `anchor` is the anchor the listing was taken from
/// (`pfctl -a <anchor>`), empty for the main ruleset. Counter lines
/// (`[ Evaluations: ...]`, from `-v`), section titles and blank lines are
/// skipped; `{ ... }` blocks after anchor calls nest rules under that anchor.
pub fn parse_listing(text: &str, anchor: &str) -> Result<PfListing, PfListError> {
    let mut stack: Vec<String> = vec![anchor.trim_end_matches("/*").to_string()];
    let mut out = PfListing::default();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('[') || t.ends_with("RULES:") || t.starts_with('#') {
            continue;
        }
        if t == "}" {
            if stack.len() == 1 {
                return Err(PfListError::Unbalanced { line });
            }
            stack.pop();
            continue;
        }
        let rule = match parse_rule(t) {
            Ok(r) => r,
            Err(reason) => {
                // why: an anchor line (`anchor "x" {`) that fails would
                // leave the block stack wrong, so that stays fatal.
                if t.ends_with('{') {
                    return Err(PfListError::Line {
                        line,
                        text: t.to_string(),
                        reason,
                    });
                }
                out.unparsed.push(PfListError::Line {
                    line,
                    text: t.to_string(),
                    reason,
                });
                continue;
            }
        };
        let current = stack.last().expect("stack never empty").clone();
        if rule.opens_block {
            let name = rule.anchor_call.clone().unwrap_or_default();
            stack.push(join_anchor(&current, &name));
        }
        out.rules.push(ListedRule {
            anchor: current,
            rule,
            text: t.to_string(),
            line,
        });
    }
    Ok(out)
}

/// Whether a listed rule redirects inbound traffic: an old-style `rdr`
/// (from `pfctl -s nat`), or, on FreeBSD 15, a `pass`/`match` filter rule
/// with OpenBSD-style `rdr-to` or `binat-to` (from `pfctl -s rules`;
/// freebsd-src a6c9cdc4 sbin/pfctl/tests/files/pf1079.ok, 5ecc60fb
/// pf0019.ok). `rdr-to` applies to inbound packets only (pf.conf(5)
/// freebsd-src 0077daf9, "rdr-to"), so an `out` rule is skipped (F12).
pub fn is_redirection(r: &PfRule) -> bool {
    if r.action == "rdr" {
        return true;
    }
    matches!(r.action.as_str(), "pass" | "match")
        && !r.other.iter().any(|t| t == "out")
        && r.other.iter().any(|t| t == "rdr-to" || t == "binat-to")
}

/// Whether `anchor` is `root` or below it.
pub fn under_root(anchor: &str, root: &str) -> bool {
    anchor == root || anchor.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// The `rdr` rules of a listing that jnet does not own (main ruleset or an
/// anchor outside `root`), as [`ForeignRedirect`]s: one per protocol and
/// port range (a rule without `proto` counts for tcp and udp; without a
/// destination port, for all ports).
pub fn foreign_redirects(listing: &PfListing, root: &str) -> Vec<ForeignRedirect> {
    let mut out = Vec::new();
    for lr in &listing.rules {
        let r = &lr.rule;
        if !is_redirection(r) || under_root(&lr.anchor, root) {
            continue;
        }
        let protos: Vec<Proto> = if r.protos.is_empty() {
            vec![Proto::Tcp, Proto::Udp]
        } else {
            r.protos.iter().filter_map(|p| p.parse().ok()).collect()
        };
        let to = r.to.as_ref();
        let ranges = match to.and_then(|t| t.port) {
            Some(op) => op.ranges(),
            None => vec![PortRange::new(1, 65535).expect("valid")],
        };
        let address = to.filter(|t| !t.negated).and_then(|t| {
            let a = t
                .addr
                .strip_suffix("/32")
                .or_else(|| t.addr.strip_suffix("/128"))
                .unwrap_or(&t.addr);
            a.parse::<IpAddr>().ok()
        });
        let owner = if lr.anchor.is_empty() {
            "pf.conf".to_string()
        } else {
            lr.anchor.clone()
        };
        for p in &protos {
            for pr in &ranges {
                out.push(ForeignRedirect {
                    proto: *p,
                    ports: *pr,
                    address,
                    owner: owner.clone(),
                    rule: lr.text.clone(),
                });
            }
        }
    }
    out
}

/// Result of looking for jnet's anchor hooks in the main ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookCheck {
    /// Lines to add to pf.conf (exact text).
    pub missing: Vec<String>,
    /// Hooks that may be present but cannot be told apart: older pfctl
    /// prints only the last path component (`nat-anchor "/*"`).
    pub unverifiable: Vec<String>,
}

/// Checks that the main ruleset calls `nat-anchor "<root>/*"` and
/// `rdr-anchor "<root>/*"` (in `pfctl -s nat`). The filter hook
/// `anchor "<root>/*"` is not checked: jnet's anchors hold only nat and
/// `rdr pass` rules (F17; see os::freebsd::pfctl::missing_anchor_hooks).
pub fn check_anchor_hooks(listings: &[&PfListing], root: &str) -> HookCheck {
    let mut check = HookCheck::default();
    let want = format!("{root}/*");
    let abs = format!("/{want}");
    for (kind, line) in ["nat-anchor", "rdr-anchor"].iter().zip(anchor_hook_lines(root)) {
        let calls: Vec<&str> = listings
            .iter()
            .flat_map(|l| l.rules.iter())
            .filter(|lr| lr.anchor.is_empty() && lr.rule.action == *kind)
            .filter_map(|lr| lr.rule.anchor_call.as_deref())
            .collect();
        if calls.iter().any(|c| *c == want || *c == abs) {
            continue;
        }
        if calls.contains(&"/*") {
            check.unverifiable.push(line);
        } else {
            check.missing.push(line);
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rules::pf::{render_nat, render_redirect, PortNames};

    #[test]
    fn tokenizes_quotes_and_lists() {
        let r =
            parse_rule(r#"pass in quick on lo0 inet6 all flags S/SA keep state label "pass IPv6 loopback""#).unwrap();
        assert_eq!(r.label.as_deref(), Some("pass IPv6 loopback"));
        assert_eq!(r.other, vec!["in", "quick", "flags", "S/SA", "keep", "state"]);
        let r = parse_rule(
            "nat on vtnet0 inet proto tcp from 192.0.2.1 to 192.0.2.2 -> { 203.0.113.1, (vlan1060) } round-robin",
        )
        .unwrap();
        assert_eq!(r.pool.unwrap().addrs, vec!["203.0.113.1", "(vlan1060)"]);
    }

    #[test]
    fn rdr_fields_and_services() {
        let r = parse_rule("rdr pass log on em0 inet proto tcp from any to 198.51.100.1 port = https -> 192.0.2.10")
            .unwrap();
        assert!(r.pass && r.log);
        assert_eq!(r.to.as_ref().unwrap().port, Some(PortOp::Eq(443)));
        let rd = redirect_from_rule(&r).unwrap();
        assert_eq!(
            rd.external,
            RdrDest::Address(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
        );
        assert_eq!(rd.target_ports, None);
        assert_eq!(
            render_redirect(&rd, PortNames::Services),
            "rdr pass log on em0 inet proto tcp from any to 198.51.100.1 port = https -> 192.0.2.10"
        );
        let r = parse_rule(
            "rdr on vtnet0 inet proto tcp from 192.0.2.1 to 192.0.2.2 port 1004:2004 -> 192.0.2.3 port 1004",
        )
        .unwrap();
        let e = redirect_from_rule(&r).unwrap_err();
        assert!(e.contains("different lengths"), "{e}");
        assert!(parse_rule("rdr on em0 inet proto tcp from any to any port = nosuchservice -> 10.0.0.1").is_err());
        // pf.conf's `port 8080:*` target (one-to-one from the first port).
        let r = parse_rule("rdr on em0 inet proto tcp from any to any port 80:90 -> 10.0.0.1 port 8080:*").unwrap();
        assert_eq!(r.pool.as_ref().unwrap().port, Some((8080, 8090)));
    }

    #[test]
    fn inet6_rules_convert_and_render_back() {
        for line in [
            "rdr pass on vtnet0 inet6 proto tcp from any to (vtnet0:0) port = 80 -> 2001:db8::5 port 80",
            "rdr on em0 inet6 proto udp from 2001:db8:ff::/48 to 2001:db8:1::7 port 5000:5002 -> fd00::5 port 6000:6002",
            "rdr log on em0 inet6 proto tcp from any to any port = 22 -> 2001:db8::9",
        ] {
            let rd = redirect_from_rule(&parse_rule(line).unwrap()).unwrap();
            assert!(rd.target.is_ipv6(), "{line}");
            assert_eq!(render_redirect(&rd, PortNames::Numeric), line);
        }
        for line in [
            "nat on vtnet0 inet6 from fd00::/64 to any -> (vtnet0:0)",
            "nat on vtnet0 inet6 all -> 2001:db8::1",
            "nat pass on em0 inet6 proto udp from 2001:db8::9 to 2001:db8:100::/40 -> 2001:db8::1",
        ] {
            let n = nat_from_rule(&parse_rule(line).unwrap()).unwrap();
            assert_eq!(render_nat(&n), line);
        }
        // One family per rule.
        let e = redirect_from_rule(
            &parse_rule("rdr on em0 inet6 proto tcp from any to any port = 22 -> 10.0.0.9").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e, "target is not one inet6 address");
        let e = nat_from_rule(&parse_rule("nat on em0 inet from fd00::/64 to any -> (em0)").unwrap()).unwrap_err();
        assert_eq!(e, "source is not inet");
        // (if) for inet6 would pick link-local addresses: not jnet's form.
        let e = nat_from_rule(&parse_rule("nat on em0 inet6 from fd00::/64 to any -> (em0) round-robin").unwrap())
            .unwrap_err();
        assert!(e.contains("link-local"), "{e}");
    }

    #[test]
    fn port_ops() {
        let r = parse_rule("rdr on em0 inet proto tcp from any to any port 1000 >< 1005 -> 10.0.0.1").unwrap();
        assert_eq!(
            r.to.as_ref().unwrap().port.unwrap().ranges(),
            vec![PortRange::new(1001, 1004).unwrap()]
        );
        assert_eq!(PortOp::Ne(80).ranges().len(), 2);
        assert_eq!(PortOp::Ge(1024).ranges(), vec![PortRange::new(1024, 65535).unwrap()]);
        assert_eq!(PortOp::Lt(1).ranges(), vec![]);
    }

    #[test]
    fn nat_conversion() {
        let r = parse_rule("nat on vtnet0 inet from 10.0.0.2 to any -> (vtnet0) round-robin").unwrap();
        let n = nat_from_rule(&r).unwrap();
        assert_eq!(
            n.translation,
            NatTarget::Interface {
                ifname: IfName::new("vtnet0").unwrap(),
                first_only: false
            }
        );
        assert_eq!(
            render_nat(&n),
            "nat on vtnet0 inet from 10.0.0.2 to any -> (vtnet0) round-robin"
        );
        let r = parse_rule("nat on pppoe0 inet from 192.168.50.246 to any -> 64.229.137.103 static-port").unwrap();
        assert_eq!(nat_from_rule(&r).unwrap_err(), "pool options");
        let r = parse_rule("nat on vtnet1 inet from ! (vtnet1) to any -> (vtnet1) round-robin endpoint-independent")
            .unwrap();
        assert!(nat_from_rule(&r).is_err());
    }

    #[test]
    fn recursive_listing_and_foreign() {
        let text = "\
no nat proto carp all
nat-anchor \"jnet/*\" all {
  nat-anchor \"www\" all {
    nat on vtnet0 inet from 10.0.0.5 to any -> (vtnet0) round-robin
  }
}
rdr-anchor \"jnet/*\" all {
  rdr-anchor \"www\" all {
    rdr pass on vtnet0 inet proto tcp from any to (vtnet0) port = 80 -> 10.0.0.5 port 80
  }
}
rdr-anchor \"bastille/*\" all {
  rdr-anchor \"db\" all {
    rdr pass on vtnet0 inet proto udp from any to 192.0.2.9 port 5000:5010 -> 10.17.89.2
  }
}
  [ Evaluations: 0 Packets: 0 Bytes: 0 States: 0 ]
rdr on em0 inet all -> 10.0.0.9
";
        let l = parse_listing(text, "").unwrap();
        let anchors: Vec<&str> = l.rules.iter().map(|r| r.anchor.as_str()).collect();
        assert_eq!(
            anchors,
            vec![
                "",
                "",
                "jnet",
                "jnet/www",
                "",
                "jnet",
                "jnet/www",
                "",
                "bastille",
                "bastille/db",
                ""
            ]
        );
        let f = foreign_redirects(&l, "jnet");
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].owner, "bastille/db");
        assert_eq!(f[0].proto, Proto::Udp);
        assert_eq!(f[0].ports, PortRange::new(5000, 5010).unwrap());
        assert_eq!(f[0].address, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(
            (f[1].owner.as_str(), f[1].proto, f[1].ports.len()),
            ("pf.conf", Proto::Tcp, 65535)
        );
        assert_eq!(f[2].proto, Proto::Udp);
        let hooks = check_anchor_hooks(&[&l], "jnet");
        assert_eq!(
            hooks.missing,
            Vec::<String>::new(),
            "the filter hook is not required (F17)"
        );
        assert!(parse_listing("}\n", "").is_err());
    }

    /// F12: `rdr-to` / `binat-to` on filter rules count as redirections;
    /// `nat-to` alone and outbound rules do not.
    #[test]
    fn filter_rule_redirections() {
        let l = parse_listing(
            "pass in on lo0 inet proto tcp from any to 1.2.3.4 port = 2222 flags S/SA keep state nat-to 10.0.0.2 port 22 rdr-to 10.0.0.10\n\
             match in on lo0 inet proto tcp from any to 1.2.3.4 port = 2222 rdr-to 10.0.0.10 port 22\n\
             pass in on em0 inet from any to 192.0.2.1 binat-to 10.0.0.3\n\
             pass out on em0 inet from 10.0.0.3 to any nat-to 192.0.2.1\n\
             pass out on em0 inet proto tcp from any to 192.0.2.9 port = 80 rdr-to 10.0.0.3\n\
             pass in on em0 inet proto tcp from any to any port = 22 flags S/SA keep state\n",
            "bastille/web",
        )
        .unwrap();
        let f = foreign_redirects(&l, "jnet");
        assert_eq!(f.len(), 4, "{f:#?}");
        assert_eq!((f[0].proto, f[0].ports.lo()), (Proto::Tcp, 2222));
        // binat-to without proto/port: every tcp and udp port of the address.
        assert_eq!(
            (f[2].proto, f[2].ports.len(), f[3].proto),
            (Proto::Tcp, 65535, Proto::Udp)
        );
        assert_eq!(f[2].address, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(f[0].owner, "bastille/web");
    }

    #[test]
    fn old_pfctl_hooks_are_unverifiable() {
        let l = parse_listing(
            "nat-anchor \"/*\" all\nrdr-anchor \"jnet/*\" all\nanchor \"/*\" all\n",
            "",
        )
        .unwrap();
        let h = check_anchor_hooks(&[&l], "jnet");
        assert_eq!(h.missing, Vec::<String>::new());
        assert_eq!(h.unverifiable, vec!["nat-anchor \"jnet/*\""]);
    }

    #[test]
    fn bad_lines_name_the_line() {
        // F3: one rule with a name jnet does not know (here as plain
        // `pfctl -s nat` prints port 1194) is reported on its own; the
        // rules around it are still read.
        let l = parse_listing(
            "nat-anchor \"jnet/*\" all\nrdr on em0 inet proto tcp from any to any port = openvpn -> 10.0.0.1\n\
             rdr on em0 inet proto tcp from any to any port = 1194 -> 10.0.0.2\n",
            "",
        )
        .unwrap();
        assert_eq!(l.rules.len(), 2);
        assert_eq!(l.unparsed.len(), 1);
        let e = l.unparsed[0].to_string();
        assert!(
            e.starts_with("pfctl listing line 2: unknown service name \"openvpn\""),
            "{e}"
        );
        let f = foreign_redirects(&l, "jnet");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].ports, PortRange::single(1194).unwrap());
        // A broken anchor block line still fails the listing.
        assert!(parse_listing("anchor \"x\" on em0 from any port = nope to any {\n}\n", "").is_err());
    }
}
