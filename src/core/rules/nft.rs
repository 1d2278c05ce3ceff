//! nft renderer (Linux, nft(8) script syntax as read by `nft -f`).
//!
//! Layout: one table `inet <root>` (the anchor root, `jnet` by default)
//! that holds, per jail, three *base* chains of type nat:
//!
//! * `jail_<jail>_dnat` — hook prerouting, priority dstnat: exposures for
//!   traffic arriving on the external interface;
//! * `jail_<jail>_out` — hook output, priority -100: the same exposures for
//!   connections the host itself opens to its external address, so a client
//!   on the host reaches the jail like a remote one;
//! * `jail_<jail>_snat` — hook postrouting, priority srcnat: nat
//!   (masquerade / snat) of the jail's or pool's source addresses.
//!
//! why per-jail base chains instead of shared base chains jumping to
//! per-jail regular chains: removing a jump rule needs its handle, which a
//! pure renderer cannot know and which changes under concurrent edits;
//! with per-jail base chains, replacing a jail is `flush chain` + `add
//! rule`, removing it is `delete chain`, and neither touches another jail's
//! chains or any other table. The kernel stops at the first nat chain that
//! sets a binding for a connection, so several nat chains on one hook are
//! fine; jnet's port check keeps jails' host ports disjoint.
//!
//! Both families live in the one `inet` table: an IPv6 rule matches with
//! `ip6 saddr` / `ip6 daddr` and translates with `dnat ip6 to` / `snat ip6
//! to`, an address followed by a port written `[addr]:port` (nft(8),
//! "NAT STATEMENTS": "dnat to [2001:838:35f:1::]:80"; nft prints the
//! brackets back whenever a port follows: nftables src/statement.c
//! nat_stmt_print()).
//!
//! Each script is applied atomically by `nft -f` (one transaction). The
//! chain prefix `jail_` keeps names valid nft identifiers for jail names
//! that start with a digit (nft does not accept quoted chain names).
//! This module only renders text.

use std::fmt::Write as _;

use crate::core::names::JailName;
use crate::core::ports::PortRange;
use std::net::IpAddr;

use crate::core::rules::ir::{push_ip, push_net, push_u16, Family, JailRules, Nat, NatTarget, RdrDest, Redirect};

/// The three chains of a jail: (dnat, out, snat).
pub fn jail_chains(jail: &JailName) -> [String; 3] {
    [
        format!("jail_{jail}_dnat"),
        format!("jail_{jail}_out"),
        format!("jail_{jail}_snat"),
    ]
}

const HOOKS: [&str; 3] = [
    "type nat hook prerouting priority dstnat; policy accept;",
    "type nat hook output priority -100; policy accept;",
    "type nat hook postrouting priority srcnat; policy accept;",
];

// why push_* instead of `format!`: a script is rendered per jail for
// thousands of jails; appending pieces avoids the formatter and the
// intermediate strings (issue 10). The text is unchanged (goldens).

fn push_range(out: &mut String, r: PortRange) {
    push_u16(out, r.lo());
    if !r.is_single() {
        out.push('-');
        push_u16(out, r.hi());
    }
}

/// An address where a `:port` may follow: IPv6 in brackets.
fn push_addr_port(out: &mut String, a: IpAddr) {
    if a.is_ipv6() {
        out.push('[');
        push_ip(out, a);
        out.push(']');
    } else {
        push_ip(out, a);
    }
}

/// The `dnat` statement for a redirect.
#[cfg(test)]
fn dnat_stmt(r: &Redirect) -> String {
    let mut s = String::new();
    push_dnat(&mut s, r);
    s
}

fn push_dnat(out: &mut String, r: &Redirect) {
    let t = r.target;
    out.push_str("dnat ");
    out.push_str(r.family().nft());
    out.push_str(" to ");
    match r.target_ports {
        // why: `dnat to addr:9000-9010` means "pick any port in the range",
        // not pf's one-to-one shift; an unchanged range needs no port at all.
        None => push_ip(out, t),
        Some(tp) if tp == r.host_ports && !tp.is_single() => push_ip(out, t),
        Some(tp) if tp.is_single() => {
            push_addr_port(out, t);
            out.push(':');
            push_u16(out, tp.lo());
        }
        Some(tp) => {
            // why this spacing: it is nft's canonical listing form (nft
            // 1.0.6 `nft list chain` prints `to 10.0.0.5:tcp dport map
            // { 8000 : 9000 }`), so the drift check compares like with like
            // (hardening H11); nft reads it back unchanged.
            push_addr_port(out, t);
            out.push(':');
            out.push_str(r.proto.as_str());
            out.push_str(" dport map { ");
            for (i, (h, j)) in (r.host_ports.lo()..=r.host_ports.hi())
                .zip(tp.lo()..=tp.hi())
                .enumerate()
            {
                if i > 0 {
                    out.push_str(", ");
                }
                push_u16(out, h);
                out.push_str(" : ");
                push_u16(out, j);
            }
            out.push_str(" }");
        }
    }
}

fn push_comment(out: &mut String, label: &Option<String>) {
    if let Some(l) = label {
        out.push_str(" comment \"");
        out.push_str(l);
        out.push('"');
    }
}

fn push_log(out: &mut String, log: bool, jail: &JailName) {
    if log {
        out.push_str("log prefix \"jnet:");
        out.push_str(jail.as_str());
        out.push_str(" \" ");
    }
}

/// Which destination a redirect's rule matches: in prerouting and in
/// output (`None`: no output rule).
fn rdr_dests(r: &Redirect) -> (Dest, Option<Dest>) {
    match r.external {
        // why: pf's `to (vtnet0)` matches the interface's own addresses; fib
        // keeps forwarded traffic for other hosts out of the redirect. A
        // packet of the other family may match the inet rule's ports, but
        // `dnat ip` leaves it alone (Linux net/netfilter/nft_nat.c
        // nft_nat_inet_eval() only translates packets of the statement's
        // family), so it reaches the inet6 rule next to it.
        RdrDest::Interface if r.family() == Family::Inet => (
            Dest::Text("fib daddr type local "),
            Some(Dest::Text("fib daddr type local ip daddr != 127.0.0.0/8 ")),
        ),
        RdrDest::Interface => (
            Dest::Text("fib daddr type local "),
            Some(Dest::Text("fib daddr type local ip6 daddr != ::1 ")),
        ),
        RdrDest::Address(a) => (Dest::Addr(a), Some(Dest::Addr(a))),
        // pf `rdr on if ... to any` only sees packets arriving on `if`.
        RdrDest::Any => (Dest::Text(""), None),
    }
}

#[derive(Clone, Copy)]
enum Dest {
    Text(&'static str),
    /// `ip daddr a ` / `ip6 daddr a `.
    Addr(IpAddr),
}

/// Match part of a redirect, without the interface (shared by the
/// prerouting and output rules), then the statements.
fn push_rdr_rule(out: &mut String, r: &Redirect, dest: Dest, jail: &JailName) {
    let fam = r.family().nft();
    if let Some(s) = &r.source {
        out.push_str(fam);
        out.push_str(" saddr ");
        push_net(out, s);
        out.push(' ');
    }
    match dest {
        Dest::Text(t) => out.push_str(t),
        Dest::Addr(a) => {
            out.push_str(fam);
            out.push_str(" daddr ");
            push_ip(out, a);
            out.push(' ');
        }
    }
    out.push_str(r.proto.as_str());
    out.push_str(" dport ");
    push_range(out, r.host_ports);
    out.push(' ');
    push_log(out, r.log, jail);
    push_dnat(out, r);
    push_comment(out, &r.label);
}

fn push_nat_rule(out: &mut String, n: &Nat, jail: &JailName) {
    let fam = n.family();
    if n.source.prefix() != 0 {
        out.push_str(fam.nft());
        out.push_str(" saddr ");
        push_net(out, &n.source);
        out.push(' ');
    } else {
        // why: a /0 source has no address match, and in table `inet` a rule
        // without one sees both families: an inet nat of 0.0.0.0/0 would
        // also masquerade IPv6, an inet6 one of ::/0 IPv4. `meta nfproto`
        // keeps each to its own family (nft(8), META EXPRESSIONS: nfproto
        // is the netfilter protocol family, ipv4 or ipv6).
        out.push_str(match fam {
            Family::Inet => "meta nfproto ipv4 ",
            Family::Inet6 => "meta nfproto ipv6 ",
        });
    }
    if let Some(d) = &n.destination {
        out.push_str(fam.nft());
        out.push_str(" daddr ");
        push_net(out, d);
        out.push(' ');
    }
    out.push_str("oifname \"");
    out.push_str(n.interface.as_str());
    out.push_str("\" ");
    if let Some(p) = n.proto {
        out.push_str("meta l4proto ");
        out.push_str(p.as_str());
        out.push(' ');
    }
    push_log(out, n.log, jail);
    match &n.translation {
        // why: masquerade takes the outgoing interface's primary address at
        // packet time, which is pf's `(if)` / `(if:0)` for the interface the
        // rule is on.
        NatTarget::Interface { .. } => out.push_str("masquerade"),
        NatTarget::Address { address } => {
            out.push_str("snat ");
            out.push_str(fam.nft());
            out.push_str(" to ");
            push_ip(out, *address);
        }
    }
    push_comment(out, &n.label);
}

/// Script that creates table `inet <table>` if missing (idempotent; never
/// flushes it).
pub fn render_nft_base(table: &str) -> String {
    format!("# jnet: table {table}, one set of nat chains per jail\nadd table inet {table}\n")
}

/// Script that installs or replaces one jail's chains and rules in one
/// transaction. Rules must have been validated; `table` is the anchor root,
/// validated once, by `core::config::valid_anchor` when the config is read
/// (letters, digits, `_`, `-`, starting with a letter: all valid nft
/// identifiers, `my-jnet` included).
pub fn render_nft_jail(rules: &JailRules, table: &str) -> String {
    let jail = &rules.jail;
    let chains = jail_chains(jail);
    let mut s = String::with_capacity(512 + 170 * (rules.redirects.len() * 2 + rules.nats.len()));
    let add_rule = |s: &mut String, chain: &str| {
        s.push_str("add rule inet ");
        s.push_str(table);
        s.push(' ');
        s.push_str(chain);
        s.push(' ');
    };
    s.push_str("# jnet: chains of jail ");
    s.push_str(jail.as_str());
    s.push_str("\nadd table inet ");
    s.push_str(table);
    s.push('\n');
    for (c, h) in chains.iter().zip(HOOKS) {
        s.push_str("add chain inet ");
        s.push_str(table);
        s.push(' ');
        s.push_str(c);
        s.push_str(" { ");
        s.push_str(h);
        s.push_str(" }\n");
    }
    for c in &chains {
        s.push_str("flush chain inet ");
        s.push_str(table);
        s.push(' ');
        s.push_str(c);
        s.push('\n');
    }
    for r in &rules.redirects {
        add_rule(&mut s, &chains[0]);
        s.push_str("iifname \"");
        s.push_str(r.interface.as_str());
        s.push_str("\" ");
        push_rdr_rule(&mut s, r, rdr_dests(r).0, jail);
        s.push('\n');
    }
    for r in &rules.redirects {
        if let Some(d) = rdr_dests(r).1 {
            add_rule(&mut s, &chains[1]);
            push_rdr_rule(&mut s, r, d, jail);
            s.push('\n');
        }
    }
    for n in &rules.nats {
        add_rule(&mut s, &chains[2]);
        push_nat_rule(&mut s, n, jail);
        s.push('\n');
    }
    s
}

/// Script that removes one jail's chains; succeeds whether or not they
/// exist (each chain is first added, which is a no-op when present).
pub fn render_nft_remove(jail: &JailName, table: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# jnet: remove chains of jail {jail}");
    let _ = writeln!(s, "add table inet {table}");
    for (c, h) in jail_chains(jail).iter().zip(HOOKS) {
        let _ = writeln!(s, "add chain inet {table} {c} {{ {h} }}");
        let _ = writeln!(s, "flush chain inet {table} {c}");
        let _ = writeln!(s, "delete chain inet {table} {c}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::IfName;
    use crate::core::rules::ir::NatSources;
    use std::net::Ipv4Addr;

    #[test]
    fn chain_names_are_identifiers() {
        let j = JailName::new("1web").unwrap();
        assert_eq!(jail_chains(&j), ["jail_1web_dnat", "jail_1web_out", "jail_1web_snat"]);
    }

    #[test]
    fn shifted_range_becomes_a_map() {
        let ex = vec![
            "tcp/8000-8002:9000-9002".parse().unwrap(),
            "tcp/7000-7001".parse().unwrap(),
        ];
        let r = JailRules::from_exposures(
            &JailName::new("www").unwrap(),
            &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))],
            &IfName::new("eth0").unwrap(),
            &ex,
            NatSources::none(),
        )
        .unwrap();
        assert_eq!(
            dnat_stmt(&r.redirects[0]),
            "dnat ip to 10.0.0.5:tcp dport map { 8000 : 9000, 8001 : 9001, 8002 : 9002 }"
        );
        assert_eq!(dnat_stmt(&r.redirects[1]), "dnat ip to 10.0.0.5");
    }

    /// A nat whose source is a whole family (`0.0.0.0/0`, `::/0`) has no
    /// address match; in table `inet` it must still be kept to its family.
    #[test]
    fn nat_of_every_source_matches_its_family_only() {
        let jail = JailName::new("www").unwrap();
        let ifn = IfName::new("eth0").unwrap();
        let render = |src: &str| {
            let mut r = JailRules::from_exposures(&jail, &[], &ifn, &[], NatSources::none()).unwrap();
            r.nats.push(Nat {
                pass: false,
                log: false,
                interface: ifn.clone(),
                proto: None,
                source: src.parse().unwrap(),
                destination: None,
                translation: NatTarget::Interface {
                    ifname: ifn.clone(),
                    first_only: true,
                },
                label: None,
            });
            let mut out = String::new();
            push_nat_rule(&mut out, &r.nats[0], &jail);
            out
        };
        assert_eq!(render("0.0.0.0/0"), "meta nfproto ipv4 oifname \"eth0\" masquerade");
        assert_eq!(render("::/0"), "meta nfproto ipv6 oifname \"eth0\" masquerade");
        assert_eq!(
            render("10.0.0.0/24"),
            "ip saddr 10.0.0.0/24 oifname \"eth0\" masquerade"
        );
    }

    #[test]
    fn remove_touches_only_the_jail() {
        let s = render_nft_remove(&JailName::new("www").unwrap(), "jnet");
        for line in s.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.starts_with("add table inet jnet") || line.contains(" inet jnet jail_www_"),
                "{line}"
            );
        }
        assert!(!s.contains("flush ruleset") && !s.contains("flush table"));
    }
}
