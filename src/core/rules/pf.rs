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

use std::fmt::Write as _;

use minijinja::Environment;
use serde::Serialize;

use ipnetwork::IpNetwork;

use crate::core::rules::ir::{fmt_net, JailRules, Nat, NatTarget, RdrDest, Redirect};

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
    match (names, service_name(port)) {
        (PortNames::Services, Some(n)) => {
            let _ = write!(out, " port = {n}");
        }
        _ => {
            let _ = write!(out, " port = {port}");
        }
    }
}

/// One `rdr` line in canonical form, without a newline. The rule must have
/// passed [`Redirect::validate`].
pub fn render_redirect(r: &Redirect, names: PortNames) -> String {
    let mut out = String::with_capacity(120);
    out.push_str("rdr");
    if r.pass {
        out.push_str(" pass");
    }
    if r.log {
        out.push_str(" log");
    }
    let _ = write!(out, " on {} {} proto {} from ", r.interface, r.family().pf(), r.proto);
    match &r.source {
        Some(s) => out.push_str(&pf_addr(s)),
        None => out.push_str("any"),
    }
    out.push_str(" to ");
    match r.external {
        RdrDest::Interface => {
            // why: `:0` keeps the interface's aliases out; a bare `(if)`
            // expands to every address on it, other jails' aliases included
            // (sys/netpfil/pf/pf_if.c pfi_instance_add(), NOALIAS at
            // l.689-698, FreeBSD main e7646b05; pf.conf(5) l.1683-1693).
            let _ = write!(out, "({}:0)", r.interface);
        }
        RdrDest::Address(a) => {
            let _ = write!(out, "{a}");
        }
        RdrDest::Any => out.push_str("any"),
    }
    let h = r.host_ports;
    if h.is_single() {
        push_port_eq(&mut out, h.lo(), names);
    } else {
        let _ = write!(out, " port {}:{}", h.lo(), h.hi());
    }
    // why: no `label` here. pfctl's nat/rdr production has no label slot
    // (sbin/pfctl/parse.y `natrule : nataction interface af proto fromto tag
    // tagged rtable redirpool pool_opts`, FreeBSD main e7646b05 l.4559-4560;
    // pf.conf(5) GRAMMAR `nat-rule`/`rdr-rule`); `label` is only reachable
    // from `filter_opt` (parse.y l.2806). The anchor name records ownership.
    let _ = write!(out, " -> {}", r.target);
    if let Some(t) = r.target_ports {
        // why: pfctl prints the second proxy port only when it differs
        // (print_pool(), PF_RDR case).
        let _ = write!(out, " port {}", t.lo());
        if !t.is_single() {
            let _ = write!(out, ":{}", t.hi());
        }
    }
    out
}

fn pf_addr(n: &IpNetwork) -> String {
    if n.prefix() == 0 && n.ip().is_unspecified() {
        "any".to_string()
    } else {
        fmt_net(n)
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
    out.push_str("nat");
    if n.pass {
        out.push_str(" pass");
    }
    if n.log {
        out.push_str(" log");
    }
    let _ = write!(out, " on {} {}", n.interface, n.family().pf());
    if let Some(p) = n.proto {
        let _ = write!(out, " proto {}", p.as_str());
    }
    let src = pf_addr(&n.source);
    let dst = n.destination.as_ref().map_or_else(|| "any".to_string(), pf_addr);
    if src == "any" && dst == "any" {
        out.push_str(" all");
    } else {
        let _ = write!(out, " from {src} to {dst}");
    }
    // why: no `label` on nat either (parse.y `natrule`, see render_redirect).
    out.push_str(" -> ");
    match &n.translation {
        NatTarget::Interface { ifname, first_only } => {
            if *first_only {
                let _ = write!(out, "({ifname}:0)");
            } else {
                let _ = write!(out, "({ifname})");
            }
            if dynif_multiaddr(ifname.as_str(), *first_only) {
                out.push_str(" round-robin");
            }
        }
        NatTarget::Address { address } => {
            let _ = write!(out, "{address}");
        }
    }
    out
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

fn macros(rules: &JailRules) -> Vec<Macro> {
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
    let mut addrs: Vec<String> = Vec::new();
    for a in rules.redirects.iter().map(|r| r.target.to_string()) {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    let numbered = |base: &str, i: usize| {
        if i == 0 {
            base.to_string()
        } else {
            format!("{base}_{}", i + 1)
        }
    };
    let mut m: Vec<Macro> = ifs
        .iter()
        .enumerate()
        .map(|(i, v)| Macro {
            name: numbered("ext_if", i),
            value: v.to_string(),
        })
        .collect();
    m.extend(addrs.into_iter().enumerate().map(|(i, v)| Macro {
        name: numbered("jail_addr", i),
        value: v,
    }));
    m
}

/// A compiled anchor template.
pub struct PfTemplate {
    env: Environment<'static>,
    name: String,
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
        })
    }

    /// The template compiled into the binary.
    pub fn embedded() -> PfTemplate {
        PfTemplate::new("<embedded>/anchor.pf.j2", EMBEDDED_ANCHOR_TEMPLATE).expect("embedded pf template compiles")
    }

    /// The full text of anchor `<anchor_root>/<jail>`, ready for
    /// `pfctl -a <anchor> -f -`. Rules must have been validated.
    pub fn render(&self, rules: &JailRules, anchor_root: &str, names: PortNames) -> Result<String, PfRenderError> {
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
