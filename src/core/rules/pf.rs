//! pf renderer (FreeBSD pf.conf(5) syntax: `rdr on ... -> addr port n`,
//! `nat on ... -> (if)`; not OpenBSD's `rdr-to`/`nat-to`) and the anchor
//! template.
//!
//! Rules come out in the canonical form pfctl(8) prints back with `-nv` or
//! `-s nat` (`print_rule()` in sbin/pfctl/pfctl_parser.c): `inet` or
//! `inet6` spelled out right after `on <if>` (FreeBSD's own expected
//! outputs: sbin/pfctl/tests/files/pf1061.ok..pf1064.ok, e.g. `nat on
//! vtnet0 inet6 proto tcp from 2001:db8::1 to 2001:db8::2 -> (vlan1063)
//! round-robin`), addresses as inet_ntop prints them with `/bits` only
//! when not a host (print_addr() in sbin/pfctl/pf_print_state.c), and an
//! IPv6 target followed by ` port N` like an IPv4 one, no brackets
//! (print_pool(), PF_RDR case: print_addr() then `printf(" port %u")`,
//! freebsd-src 04fecb9b),
//! `port = 80` for one port and `port 80:90` for a range, no `label` (nat/rdr
//! have none in parse.y's `natrule`), `round-robin` added when the translation is an interface that may
//! carry several addresses. That makes a loaded anchor comparable line by
//! line with what jnet would render. This module does no I/O: the caller
//! passes the template source (admin override, shipped file, or
//! [`EMBEDDED_ANCHOR_TEMPLATE`]).

use minijinja::Environment;
use serde::Serialize;

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::core::rules::ir::{push_ip, push_net, push_u16, JailRules, Nat, NatTarget, RdrDest, Redirect};

/// The shipped anchor template, compiled in so the binary works without the
/// `pf-templates/` directory.
pub const EMBEDDED_ANCHOR_TEMPLATE: &str = include_str!("../../../pf-templates/anchor.pf.j2");
/// File name of the anchor template in a `pf-templates/` directory.
pub const ANCHOR_TEMPLATE_NAME: &str = "anchor.pf.j2";
/// The generator named in anchor headers.
pub const GENERATOR: &str = concat!("jnet ", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum PfRenderError {
    #[error("pf template {name}: {detail}")]
    Template { name: String, detail: String },
    #[error("pf template {name} dropped rule {rule:?} of jail {jail}; a template must output every line of `rules`")]
    RuleMissing { name: String, jail: String, rule: String },
}

/// How single ports are printed. pfctl prints `/etc/services` names
/// (`port = http`) unless run with `-P` (PF_OPT_NUMERIC: sbin/pfctl/pfctl.c
/// main() case 'P', FreeBSD main e7646b05 l.2799-2801; `-N` means "load only
/// NAT rules", l.2766-2768); both load identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortNames {
    /// `port = 80`: what jnet loads and what `pfctl -P` prints.
    #[default]
    Numeric,
    /// `port = http` for the ports in [`SERVICES`], as plain `pfctl -s nat`.
    Services,
}

/// A small subset of FreeBSD's /etc/services (tcp and udp share these
/// names there); enough to read listings of common services.
pub const SERVICES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("tftp", 69),
    ("http", 80),
    ("kerberos-sec", 88),
    ("pop3", 110),
    ("sunrpc", 111),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("mysql", 3306),
    ("postgresql", 5432),
    ("http-alt", 8080),
];

/// Port number of a service name from [`SERVICES`].
pub fn service_port(name: &str) -> Option<u16> {
    SERVICES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// Service name of a port from [`SERVICES`].
pub fn service_name(port: u16) -> Option<&'static str> {
    SERVICES.iter().find(|(_, p)| *p == port).map(|(n, _)| *n)
}

fn push_port_eq(out: &mut String, port: u16, names: PortNames) {
    out.push_str(" port = ");
    match (names, service_name(port)) {
        (PortNames::Services, Some(n)) => out.push_str(n),
        _ => push_u16(out, port),
    }
}

/// `lo:hi`.
fn push_range(out: &mut String, lo: u16, hi: u16) {
    push_u16(out, lo);
    out.push(':');
    push_u16(out, hi);
}

/// One `rdr` line in canonical form, without a newline. The rule must have
/// passed [`Redirect::validate`].
pub fn render_redirect(r: &Redirect, names: PortNames) -> String {
    let mut out = String::with_capacity(120);
    push_redirect(&mut out, r, names);
    out
}

// why push_* instead of `write!`: rendering is per rule for thousands of
// jails; appending pieces avoids the formatter (issue 10).
fn push_redirect(out: &mut String, r: &Redirect, names: PortNames) {
    out.push_str("rdr");
    if r.pass {
        out.push_str(" pass");
    }
    if r.log {
        out.push_str(" log");
    }
    out.push_str(" on ");
    out.push_str(r.interface.as_str());
    out.push(' ');
    out.push_str(r.family().pf());
    out.push_str(" proto ");
    out.push_str(r.proto.as_str());
    out.push_str(" from ");
    match &r.source {
        Some(s) => push_pf_addr(out, s),
        None => out.push_str("any"),
    }
    out.push_str(" to ");
    match r.external {
        RdrDest::Interface => {
            // why: `:0` keeps the interface's aliases out; a bare `(if)`
            // expands to every address on it, other jails' aliases included
            // (sys/netpfil/pf/pf_if.c pfi_instance_add(), NOALIAS at
            // l.689-698, FreeBSD main e7646b05; pf.conf(5) l.1683-1693).
            out.push('(');
            out.push_str(r.interface.as_str());
            out.push_str(":0)");
        }
        RdrDest::Address(a) => push_ip(out, a),
        RdrDest::Any => out.push_str("any"),
    }
    let h = r.host_ports;
    if h.is_single() {
        push_port_eq(out, h.lo(), names);
    } else {
        out.push_str(" port ");
        push_range(out, h.lo(), h.hi());
    }
    // why: no `label` here. pfctl's nat/rdr production has no label slot
    // (sbin/pfctl/parse.y `natrule : nataction interface af proto fromto tag
    // tagged rtable redirpool pool_opts`, FreeBSD main e7646b05 l.4559-4560;
    // pf.conf(5) GRAMMAR `nat-rule`/`rdr-rule`); `label` is only reachable
    // from `filter_opt` (parse.y l.2806). The anchor name records ownership.
    out.push_str(" -> ");
    push_ip(out, r.target);
    if let Some(t) = r.target_ports {
        // why: pfctl prints the second proxy port only when it differs
        // (print_pool(), PF_RDR case).
        out.push_str(" port ");
        if t.is_single() {
            push_u16(out, t.lo());
        } else {
            push_range(out, t.lo(), t.hi());
        }
    }
}

fn is_any(n: &IpNetwork) -> bool {
    n.prefix() == 0 && n.ip().is_unspecified()
}

fn push_pf_addr(out: &mut String, n: &IpNetwork) {
    if is_any(n) {
        out.push_str("any");
    } else {
        push_net(out, n);
    }
}

/// Whether pf treats an interface translation as a multi-address pool and
/// forces `round-robin` (parse.y `DYNIF_MULTIADDR`): always for `(if)`, and
/// for `(if:0)` unless the name ends in a digit (an interface group).
pub fn dynif_multiaddr(ifname: &str, first_only: bool) -> bool {
    !first_only || !ifname.as_bytes().last().is_some_and(u8::is_ascii_digit)
}

/// One `nat` line in canonical form, without a newline.
pub fn render_nat(n: &Nat) -> String {
    let mut out = String::with_capacity(100);
    push_nat(&mut out, n);
    out
}

fn push_nat(out: &mut String, n: &Nat) {
    out.push_str("nat");
    if n.pass {
        out.push_str(" pass");
    }
    if n.log {
        out.push_str(" log");
    }
    out.push_str(" on ");
    out.push_str(n.interface.as_str());
    out.push(' ');
    out.push_str(n.family().pf());
    if let Some(p) = n.proto {
        out.push_str(" proto ");
        out.push_str(p.as_str());
    }
    let dst_any = n.destination.as_ref().is_none_or(is_any);
    if is_any(&n.source) && dst_any {
        out.push_str(" all");
    } else {
        out.push_str(" from ");
        push_pf_addr(out, &n.source);
        out.push_str(" to ");
        match &n.destination {
            Some(d) => push_pf_addr(out, d),
            None => out.push_str("any"),
        }
    }
    // why: no `label` on nat either (parse.y `natrule`, see render_redirect).
    out.push_str(" -> ");
    match &n.translation {
        NatTarget::Interface { ifname, first_only } => {
            out.push('(');
            out.push_str(ifname.as_str());
            out.push_str(if *first_only { ":0)" } else { ")" });
            if dynif_multiaddr(ifname.as_str(), *first_only) {
                out.push_str(" round-robin");
            }
        }
        NatTarget::Address { address } => push_ip(out, *address),
    }
}

/// The rule lines of one jail, nat first then rdr: the order in which
/// `pfctl -a <anchor> -s nat` lists them, so a loaded anchor can be compared
/// with this list directly.
pub fn render_rule_lines(rules: &JailRules, names: PortNames) -> Vec<String> {
    let mut v = Vec::with_capacity(rules.nats.len() + rules.redirects.len());
    v.extend(rules.nats.iter().map(render_nat));
    v.extend(rules.redirects.iter().map(|r| render_redirect(r, names)));
    v
}

#[derive(Serialize)]
struct Macro {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct AnchorCtx<'a> {
    jail: &'a str,
    anchor: String,
    generator: &'a str,
    macros: Vec<Macro>,
    nat_rules: Vec<String>,
    rdr_rules: Vec<String>,
    rules: Vec<String>,
}

/// The distinct interfaces and jail addresses of a jail's rules, in first
/// use order: the anchor's `ext_if`, `ext_if_2`, ... and `jail_addr`,
/// `jail_addr_2`, ... macros.
fn macro_sources(rules: &JailRules) -> (Vec<&str>, Vec<IpAddr>) {
    let mut ifs: Vec<&str> = Vec::new();
    for i in rules
        .redirects
        .iter()
        .map(|r| r.interface.as_str())
        .chain(rules.nats.iter().map(|n| n.interface.as_str()))
    {
        if !ifs.contains(&i) {
            ifs.push(i);
        }
    }
    let mut addrs: Vec<IpAddr> = Vec::new();
    for a in rules.redirects.iter().map(|r| r.target) {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    (ifs, addrs)
}

/// `base`, `base_2`, `base_3`, ... for the i-th (0-based) macro.
fn push_macro_name(out: &mut String, base: &str, i: usize) {
    out.push_str(base);
    if i > 0 {
        out.push('_');
        push_u16(out, u16::try_from(i + 1).unwrap_or(u16::MAX));
    }
}

fn macros(rules: &JailRules) -> Vec<Macro> {
    let (ifs, addrs) = macro_sources(rules);
    let name = |base: &str, i: usize| {
        let mut s = String::new();
        push_macro_name(&mut s, base, i);
        s
    };
    let mut m: Vec<Macro> = ifs
        .iter()
        .enumerate()
        .map(|(i, v)| Macro {
            name: name("ext_if", i),
            value: v.to_string(),
        })
        .collect();
    m.extend(addrs.into_iter().enumerate().map(|(i, v)| Macro {
        name: name("jail_addr", i),
        value: v.to_string(),
    }));
    m
}

/// A compiled anchor template.
pub struct PfTemplate {
    env: Environment<'static>,
    name: String,
    /// The source is [`EMBEDDED_ANCHOR_TEMPLATE`]: rendered by
    /// [`render_embedded`], which writes the same bytes without the
    /// template engine (issue 10: the engine was half the cost of `pf
    /// render` at thousands of jails).
    native: bool,
}

impl PfTemplate {
    /// Compiles template source; `name` (a path, for messages) is kept.
    pub fn new(name: &str, source: &str) -> Result<PfTemplate, PfRenderError> {
        let mut env = Environment::new();
        // why: the template is plain text, not HTML; escaping would corrupt
        // nothing today but must never apply to rule lines.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_trim_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| tmpl_err(name, &e))?;
        Ok(PfTemplate {
            env,
            name: name.to_string(),
            native: source == EMBEDDED_ANCHOR_TEMPLATE,
        })
    }

    /// The template compiled into the binary.
    pub fn embedded() -> PfTemplate {
        PfTemplate::new("<embedded>/anchor.pf.j2", EMBEDDED_ANCHOR_TEMPLATE).expect("embedded pf template compiles")
    }

    /// The full text of anchor `<anchor_root>/<jail>`, ready for
    /// `pfctl -a <anchor> -f -`. Rules must have been validated.
    pub fn render(&self, rules: &JailRules, anchor_root: &str, names: PortNames) -> Result<String, PfRenderError> {
        if self.native {
            return Ok(render_embedded(rules, anchor_root, names));
        }
        self.render_interpreted(rules, anchor_root, names)
    }

    /// [`PfTemplate::render`] through the template engine, whatever the
    /// source.
    fn render_interpreted(
        &self,
        rules: &JailRules,
        anchor_root: &str,
        names: PortNames,
    ) -> Result<String, PfRenderError> {
        let nat_rules: Vec<String> = rules.nats.iter().map(render_nat).collect();
        let rdr_rules: Vec<String> = rules.redirects.iter().map(|r| render_redirect(r, names)).collect();
        let all: Vec<String> = nat_rules.iter().chain(rdr_rules.iter()).cloned().collect();
        let ctx = AnchorCtx {
            jail: rules.jail.as_str(),
            anchor: format!("{anchor_root}/{}", rules.jail),
            generator: GENERATOR,
            macros: macros(rules),
            nat_rules,
            rdr_rules,
            rules: all,
        };
        let tmpl = self
            .env
            .get_template(&self.name)
            .map_err(|e| tmpl_err(&self.name, &e))?;
        let text = tmpl.render(&ctx).map_err(|e| tmpl_err(&self.name, &e))?;
        // why: an overriding template that forgets the rules would load an
        // empty anchor and silently unexpose the jail.
        for rule in &ctx.rules {
            if !text.lines().any(|l| l == rule) {
                return Err(PfRenderError::RuleMissing {
                    name: self.name.clone(),
                    jail: rules.jail.to_string(),
                    rule: rule.clone(),
                });
            }
        }
        Ok(text)
    }
}

/// What the embedded template (pf-templates/anchor.pf.j2, with the
/// environment's `trim_blocks`: a block tag's own newline is dropped)
/// renders, written directly. Tests hold the two byte-identical.
fn render_embedded(rules: &JailRules, anchor_root: &str, names: PortNames) -> String {
    let jail = rules.jail.as_str();
    let n = rules.nats.len() + rules.redirects.len();
    let mut out = String::with_capacity(256 + 110 * n);
    out.push_str("# pf anchor ");
    out.push_str(anchor_root);
    out.push('/');
    out.push_str(jail);
    out.push_str(" for jail ");
    out.push_str(jail);
    out.push_str("\n# Generated by ");
    out.push_str(GENERATOR);
    out.push_str(" from its inventory. Do not edit: the next\n# `jnet pf reload ");
    out.push_str(jail);
    out.push_str("` replaces this whole anchor.\n");
    let (ifs, addrs) = macro_sources(rules);
    for (i, v) in ifs.iter().enumerate() {
        push_macro_name(&mut out, "ext_if", i);
        out.push_str(" = \"");
        out.push_str(v);
        out.push_str("\"\n");
    }
    for (i, v) in addrs.iter().enumerate() {
        push_macro_name(&mut out, "jail_addr", i);
        out.push_str(" = \"");
        push_ip(&mut out, *v);
        out.push_str("\"\n");
    }
    out.push('\n');
    for nat in &rules.nats {
        push_nat(&mut out, nat);
        out.push('\n');
    }
    for r in &rules.redirects {
        push_redirect(&mut out, r, names);
        out.push('\n');
    }
    out
}

fn tmpl_err(name: &str, e: &minijinja::Error) -> PfRenderError {
    let detail = match e.line() {
        Some(l) => format!("line {l}: {e}"),
        None => e.to_string(),
    };
    PfRenderError::Template {
        name: name.to_string(),
        detail,
    }
}

/// The lines `pf.conf` needs so pf evaluates jnet's anchors.
pub fn anchor_hook_lines(anchor_root: &str) -> [String; 3] {
    [
        format!("nat-anchor \"{anchor_root}/*\""),
        format!("rdr-anchor \"{anchor_root}/*\""),
        format!("anchor \"{anchor_root}/*\""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::{IfName, JailName};
    use crate::core::ports::{PortRange, Proto};
    use crate::core::rules::ir::NatSources;
    use std::net::{IpAddr, Ipv4Addr};

    fn rules() -> JailRules {
        let ex = vec!["tcp/80".parse().unwrap(), "udp/5000-5010:6000-6010".parse().unwrap()];
        JailRules::from_exposures(
            &JailName::new("www").unwrap(),
            &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))],
            &IfName::new("vtnet0").unwrap(),
            &ex,
            NatSources::inet("10.0.0.5/32".parse().unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn canonical_lines() {
        let r = rules();
        assert_eq!(
            render_rule_lines(&r, PortNames::Numeric),
            vec![
                "nat on vtnet0 inet from 10.0.0.5 to any -> (vtnet0) round-robin",
                "rdr pass on vtnet0 inet proto tcp from any to (vtnet0:0) port = 80 -> 10.0.0.5 port 80",
                "rdr pass on vtnet0 inet proto udp from any to (vtnet0:0) port 5000:5010 -> 10.0.0.5 port 6000:6010",
            ]
        );
        assert!(render_redirect(&r.redirects[0], PortNames::Services).contains("port = http -> "));
    }

    #[test]
    fn inet6_lines_sit_next_to_inet_ones() {
        let ex = vec!["tcp/80".parse().unwrap(), "udp/5000-5010:6000-6010".parse().unwrap()];
        let r = JailRules::from_exposures(
            &JailName::new("www").unwrap(),
            &["10.0.0.5".parse().unwrap(), "2001:db8::5".parse().unwrap()],
            &IfName::new("vtnet0").unwrap(),
            &ex,
            NatSources {
                inet: None,
                inet6: Some("fd00::/64".parse().unwrap()),
            },
        )
        .unwrap();
        assert_eq!(
            render_rule_lines(&r, PortNames::Numeric),
            vec![
                "nat on vtnet0 inet6 from fd00::/64 to any -> (vtnet0:0)",
                "rdr pass on vtnet0 inet proto tcp from any to (vtnet0:0) port = 80 -> 10.0.0.5 port 80",
                "rdr pass on vtnet0 inet6 proto tcp from any to (vtnet0:0) port = 80 -> 2001:db8::5 port 80",
                "rdr pass on vtnet0 inet proto udp from any to (vtnet0:0) port 5000:5010 -> 10.0.0.5 port 6000:6010",
                "rdr pass on vtnet0 inet6 proto udp from any to (vtnet0:0) port 5000:5010 -> 2001:db8::5 port 6000:6010",
            ]
        );
        let mut n = r.nats[0].clone();
        n.source = "::/0".parse().unwrap();
        n.translation = NatTarget::Address {
            address: "2001:db8::1".parse().unwrap(),
        };
        assert_eq!(render_nat(&n), "nat on vtnet0 inet6 all -> 2001:db8::1");
        n.source = "2001:db8::5/128".parse().unwrap();
        assert_eq!(
            render_nat(&n),
            "nat on vtnet0 inet6 from 2001:db8::5 to any -> 2001:db8::1"
        );
    }

    #[test]
    fn nat_forms() {
        let mut n = rules().nats[0].clone();
        n.label = None;
        n.translation = NatTarget::Interface {
            ifname: IfName::new("vtnet0").unwrap(),
            first_only: true,
        };
        assert_eq!(render_nat(&n), "nat on vtnet0 inet from 10.0.0.5 to any -> (vtnet0:0)");
        // An interface group (no trailing digit) stays a pool even with :0.
        n.translation = NatTarget::Interface {
            ifname: IfName::new("egress").unwrap(),
            first_only: true,
        };
        assert_eq!(
            render_nat(&n),
            "nat on vtnet0 inet from 10.0.0.5 to any -> (egress:0) round-robin"
        );
        n.source = "0.0.0.0/0".parse().unwrap();
        n.translation = NatTarget::Address {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        };
        assert_eq!(render_nat(&n), "nat on vtnet0 inet all -> 192.0.2.1");
        n.proto = Some(Proto::Udp);
        n.destination = Some("192.0.2.0/24".parse().unwrap());
        assert_eq!(
            render_nat(&n),
            "nat on vtnet0 inet proto udp from any to 192.0.2.0/24 -> 192.0.2.1"
        );
    }

    #[test]
    fn target_port_omitted_when_none() {
        let mut r = rules().redirects[0].clone();
        r.target_ports = None;
        r.label = None;
        r.external = RdrDest::Address(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)));
        r.host_ports = PortRange::single(443).unwrap();
        assert_eq!(
            render_redirect(&r, PortNames::Services),
            "rdr pass on vtnet0 inet proto tcp from any to 198.51.100.1 port = https -> 10.0.0.5"
        );
    }

    #[test]
    fn embedded_template_renders_header_macros_and_rules() {
        let text = PfTemplate::embedded()
            .render(&rules(), "jnet", PortNames::Numeric)
            .unwrap();
        let expected = format!(
            "# pf anchor jnet/www for jail www\n\
             # Generated by {GENERATOR} from its inventory. Do not edit: the next\n\
             # `jnet pf reload www` replaces this whole anchor.\n\
             ext_if = \"vtnet0\"\n\
             jail_addr = \"10.0.0.5\"\n\
             \n\
             {}\n",
            render_rule_lines(&rules(), PortNames::Numeric).join("\n")
        );
        assert_eq!(text, expected);
    }

    /// The direct rendering of the embedded template is byte-identical to
    /// the template engine's, for IPv4, dual-stack, IPv6-only and empty
    /// rule sets, several interfaces, and both port-name modes.
    #[test]
    fn embedded_fast_path_matches_the_template_engine() {
        let t = PfTemplate::embedded();
        assert!(t.native);
        let mut sets = vec![rules()];
        let dual = JailRules::from_exposures(
            &JailName::new("d").unwrap(),
            &["10.0.0.8".parse().unwrap(), "fd00::8".parse().unwrap()],
            &IfName::new("em0").unwrap(),
            &["tcp/80".parse().unwrap(), "udp/53:5353".parse().unwrap()],
            NatSources {
                inet: Some("10.0.0.0/24".parse().unwrap()),
                inet6: Some("fd00::/64".parse().unwrap()),
            },
        )
        .unwrap();
        let mut v6 = dual.clone();
        v6.redirects.retain(|r| r.target.is_ipv6());
        v6.nats.retain(|n| n.source.is_ipv6());
        let mut two_ifs = rules();
        two_ifs.redirects[1].interface = IfName::new("lagg0").unwrap();
        let empty = JailRules {
            jail: JailName::new("e").unwrap(),
            redirects: vec![],
            nats: vec![],
        };
        sets.extend([dual, v6, two_ifs, empty]);
        for r in &sets {
            for names in [PortNames::Numeric, PortNames::Services] {
                let fast = t.render(r, "jnet", names).unwrap();
                let slow = t.render_interpreted(r, "jnet", names).unwrap();
                assert_eq!(fast, slow, "jail {}", r.jail);
            }
        }
        // Any other source goes through the engine.
        let custom = PfTemplate::new("t", &format!("# custom\n{EMBEDDED_ANCHOR_TEMPLATE}")).unwrap();
        assert!(!custom.native);
        assert!(custom
            .render(&rules(), "jnet", PortNames::Numeric)
            .unwrap()
            .starts_with("# custom\n"));
    }

    #[test]
    fn template_errors() {
        let e = PfTemplate::new("/etc/jnet/pf-templates/anchor.pf.j2", "{% for x in %}")
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("pf template /etc/jnet/pf-templates/anchor.pf.j2: line 1:"),
            "{e}"
        );
        let t = PfTemplate::new("t", "# only a header for {{ jail }}\n").unwrap();
        let e = t.render(&rules(), "jnet", PortNames::Numeric).unwrap_err();
        assert!(matches!(e, PfRenderError::RuleMissing { .. }), "{e}");
        let t = PfTemplate::new("t", "{{ nosuchvar }}").unwrap();
        assert!(t.render(&rules(), "jnet", PortNames::Numeric).is_err());
    }

    #[test]
    fn hook_lines() {
        assert_eq!(anchor_hook_lines("jnet")[1], "rdr-anchor \"jnet/*\"");
    }
}
