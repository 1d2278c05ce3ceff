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

use crate::core::rules::ir::{fmt_net, Family, JailRules, Nat, NatTarget, RdrDest, Redirect};

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

fn nft_range(r: PortRange) -> String {
    if r.is_single() {
        r.lo().to_string()
    } else {
        format!("{}-{}", r.lo(), r.hi())
    }
}

/// An address where a `:port` may follow: IPv6 in brackets.
fn addr_port(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// The `dnat` statement for a redirect.
fn dnat_stmt(r: &Redirect) -> String {
    let t = r.target;
    let fam = r.family().nft();
    match r.target_ports {
        None => format!("dnat {fam} to {t}"),
        Some(tp) if tp.is_single() => format!("dnat {fam} to {}:{}", addr_port(t), tp.lo()),
        // why: `dnat to addr:9000-9010` means "pick any port in the range",
        // not pf's one-to-one shift; an unchanged range needs no port at all.
        Some(tp) if tp == r.host_ports => format!("dnat {fam} to {t}"),
        Some(tp) => {
            let mut m = String::with_capacity(tp.len() as usize * 14);
            for (i, (h, j)) in (r.host_ports.lo()..=r.host_ports.hi())
                .zip(tp.lo()..=tp.hi())
                .enumerate()
            {
                if i > 0 {
                    m.push_str(", ");
                }
                let _ = write!(m, "{h} : {j}");
            }
            // why this spacing: it is nft's canonical listing form (nft
            // 1.0.6 `nft list chain` prints `to 10.0.0.5:tcp dport map
            // { 8000 : 9000 }`), so the drift check compares like with like
            // (hardening H11); nft reads it back unchanged.
            format!("dnat {fam} to {}:{} dport map {{ {m} }}", addr_port(t), r.proto)
        }
    }
}

fn comment(label: &Option<String>) -> String {
    label.as_ref().map(|l| format!(" comment \"{l}\"")).unwrap_or_default()
}

/// Match part of a redirect, without the interface (shared by the
/// prerouting and output rules).
fn rdr_match(r: &Redirect, dest: &str) -> String {
    let mut m = String::new();
    if let Some(s) = &r.source {
        let _ = write!(m, "{} saddr {} ", r.family().nft(), fmt_net(s));
    }
    m.push_str(dest);
    let _ = write!(m, "{} dport {}", r.proto, nft_range(r.host_ports));
    m
}

fn log_stmt(log: bool, jail: &JailName) -> String {
    if log {
        format!("log prefix \"jnet:{jail} \" ")
    } else {
        String::new()
    }
}

fn redirect_rules(r: &Redirect, jail: &JailName) -> (String, Option<String>) {
    let log = log_stmt(r.log, jail);
    let fam = r.family();
    let (pre_dest, out_dest) = match r.external {
        // why: pf's `to (vtnet0)` matches the interface's own addresses; fib
        // keeps forwarded traffic for other hosts out of the redirect. A
        // packet of the other family may match the inet rule's ports, but
        // `dnat ip` leaves it alone (Linux net/netfilter/nft_nat.c
        // nft_nat_inet_eval() only translates packets of the statement's
        // family), so it reaches the inet6 rule next to it.
        RdrDest::Interface if fam == Family::Inet => (
            "fib daddr type local ".to_string(),
            Some("fib daddr type local ip daddr != 127.0.0.0/8 ".to_string()),
        ),
        RdrDest::Interface => (
            "fib daddr type local ".to_string(),
            Some("fib daddr type local ip6 daddr != ::1 ".to_string()),
        ),
        RdrDest::Address(a) => {
            let m = format!("{} daddr {a} ", fam.nft());
            (m.clone(), Some(m))
        }
        // pf `rdr on if ... to any` only sees packets arriving on `if`.
        RdrDest::Any => (String::new(), None),
    };
    let tail = format!("{log}{}{}", dnat_stmt(r), comment(&r.label));
    let pre = format!("iifname \"{}\" {} {tail}", r.interface, rdr_match(r, &pre_dest));
    let out = out_dest.map(|d| format!("{} {tail}", rdr_match(r, &d)));
    (pre, out)
}

fn nat_rule(n: &Nat, jail: &JailName) -> String {
    let mut s = String::new();
    let fam = n.family();
    if n.source.prefix() != 0 {
        let _ = write!(s, "{} saddr {} ", fam.nft(), fmt_net(&n.source));
    } else if fam == Family::Inet6 {
        // why: with no address match a masquerade would apply to both
        // families; an inet6 rule must only see IPv6. (The inet form keeps
        // its historical text; jnet never renders an inet nat of /0.)
        s.push_str("meta nfproto ipv6 ");
    }
    if let Some(d) = &n.destination {
        let _ = write!(s, "{} daddr {} ", fam.nft(), fmt_net(d));
    }
    let _ = write!(s, "oifname \"{}\" ", n.interface);
    if let Some(p) = n.proto {
        let _ = write!(s, "meta l4proto {p} ");
    }
    s.push_str(&log_stmt(n.log, jail));
    match &n.translation {
        // why: masquerade takes the outgoing interface's primary address at
        // packet time, which is pf's `(if)` / `(if:0)` for the interface the
        // rule is on.
        NatTarget::Interface { .. } => s.push_str("masquerade"),
        NatTarget::Address { address } => {
            let _ = write!(s, "snat {} to {address}", fam.nft());
        }
    }
    s.push_str(&comment(&n.label));
    s
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
    let mut s = String::with_capacity(512 + 160 * (rules.redirects.len() * 2 + rules.nats.len()));
    let _ = writeln!(s, "# jnet: chains of jail {jail}");
    let _ = writeln!(s, "add table inet {table}");
    for (c, h) in chains.iter().zip(HOOKS) {
        let _ = writeln!(s, "add chain inet {table} {c} {{ {h} }}");
    }
    for c in &chains {
        let _ = writeln!(s, "flush chain inet {table} {c}");
    }
    let mut outs = Vec::new();
    for r in &rules.redirects {
        let (pre, out) = redirect_rules(r, jail);
        let _ = writeln!(s, "add rule inet {table} {} {pre}", chains[0]);
        outs.extend(out);
    }
    for o in outs {
        let _ = writeln!(s, "add rule inet {table} {} {o}", chains[1]);
    }
    for n in &rules.nats {
        let _ = writeln!(s, "add rule inet {table} {} {}", chains[2], nat_rule(n, jail));
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
