//! Golden tests of the pf and nft renderers (exact text in tests/golden/;
//! regenerate with UPDATE_GOLDEN=1 and review the diff), and, as root with
//! nft(8) and unshare(1) available, a check that the nft scripts load and
//! replace/remove one jail atomically inside a throwaway network namespace
//! (never the machine's own ruleset).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;

use jnet::core::names::{IfName, JailName};
use jnet::core::ports::{parse_expose_with_address, PortRange, Proto};
use jnet::core::rules::ir::{Exposure, NatSources};
use jnet::core::rules::nft::{render_nft_base, render_nft_jail, render_nft_remove};
use jnet::core::rules::pf::{render_rule_lines, PfTemplate, PortNames, GENERATOR};
use jnet::core::rules::pflist::{nat_from_rule, parse_rule, redirect_from_rule};
use jnet::core::rules::{JailRules, Nat, NatTarget, RdrDest, Redirect};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")).join(name)
}

fn check_golden(name: &str, actual: &str) {
    let p = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, actual.replace(GENERATOR, "jnet <version>")).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    // why: the generator string carries the crate version; goldens hold it
    // as written at generation time, compare with the version masked.
    let mask = |t: &str| t.replace(GENERATOR, "jnet <version>");
    let (actual, expected) = (mask(actual), mask(&expected));
    assert_eq!(actual, expected, "golden {} differs", p.display());
}

fn jail(n: &str) -> JailName {
    JailName::new(n).unwrap()
}
fn ifn(n: &str) -> IfName {
    IfName::new(n).unwrap()
}

/// The three jails every golden is made of.
fn samples() -> Vec<JailRules> {
    let www = JailRules::from_exposures(
        &jail("www"),
        &[Ipv4Addr::new(10, 0, 0, 5).into()],
        &ifn("vtnet0"),
        &[
            "tcp/80".parse().unwrap(),
            "tcp/8443:443".parse().unwrap(),
            parse_expose_with_address("192.0.2.7:udp/5000-5002:6000-6002").unwrap(),
        ],
        NatSources::inet("10.0.0.5/32".parse().unwrap()),
    )
    .unwrap();

    let mut db = JailRules::from_exposures(
        &jail("1db"),
        &[Ipv4Addr::new(10, 66, 0, 7).into()],
        &ifn("eth0"),
        &["tcp/5432".parse().unwrap()],
        NatSources::inet("10.66.0.0/24".parse().unwrap()),
    )
    .unwrap();
    db.nats[0].translation = NatTarget::Interface {
        ifname: ifn("eth0"),
        first_only: true,
    };

    let edge = JailRules {
        jail: jail("edge"),
        redirects: vec![Redirect {
            pass: false,
            log: true,
            proto: Proto::Tcp,
            interface: ifn("em0"),
            source: Some("198.51.100.0/24".parse().unwrap()),
            external: RdrDest::Any,
            host_ports: PortRange::new(6000, 6010).unwrap(),
            target: Ipv4Addr::new(10, 0, 0, 9).into(),
            target_ports: None,
            label: Some("jnet:edge".into()),
        }],
        nats: vec![
            Nat {
                pass: true,
                log: false,
                interface: ifn("em0"),
                proto: Some(Proto::Udp),
                source: "10.0.0.9/32".parse().unwrap(),
                destination: Some("203.0.113.0/24".parse().unwrap()),
                translation: NatTarget::Address {
                    address: Ipv4Addr::new(198, 51, 100, 1).into(),
                },
                label: Some("jnet:edge".into()),
            },
            // An inet nat of every source: on nft it must not match IPv6
            // (table inet sees both families), so it carries `meta nfproto ipv4`.
            Nat {
                pass: false,
                log: false,
                interface: ifn("em0"),
                proto: None,
                source: "0.0.0.0/0".parse().unwrap(),
                destination: None,
                translation: NatTarget::Interface {
                    ifname: ifn("em0"),
                    first_only: false,
                },
                label: Some("jnet:edge".into()),
            },
        ],
    };
    edge.validate().unwrap();
    vec![www, db, edge, dual(), v6only()]
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn exposure(address: Option<&str>, spec: &str) -> Exposure {
    let e: jnet::core::ports::Expose = spec.parse().unwrap();
    Exposure {
        address: address.map(ip),
        ..Exposure::from(&e)
    }
}

/// A dual-stack jail: every unbound exposure twice (inet, then inet6 next
/// to it), bound exposures in their address's family, nat for both
/// families (the IPv6 pool asked for it).
fn dual() -> JailRules {
    JailRules::from_exposure_list(
        &jail("dual"),
        &[ip("10.0.0.8"), ip("fd00:8::8")],
        &ifn("vtnet0"),
        &[
            exposure(None, "tcp/80"),
            exposure(None, "tcp/8443:443"),
            exposure(Some("2001:db8:1::7"), "udp/5000-5002:6000-6002"),
            exposure(Some("192.0.2.7"), "tcp/25"),
        ],
        NatSources {
            inet: Some("10.0.0.8/32".parse().unwrap()),
            inet6: Some("fd00:8::/64".parse().unwrap()),
        },
    )
    .unwrap()
}

/// An IPv6-only jail, plus the hand-written forms (source network, `any`
/// destination, log, nat to one address) in inet6.
fn v6only() -> JailRules {
    let mut r = JailRules::from_exposure_list(
        &jail("v6"),
        &[ip("2001:db8::9")],
        &ifn("em0"),
        &[exposure(None, "tcp/2222:22"), exposure(None, "udp/53")],
        NatSources::none(),
    )
    .unwrap();
    r.redirects.push(Redirect {
        pass: false,
        log: true,
        proto: Proto::Tcp,
        interface: ifn("em0"),
        source: Some("2001:db8:ff::/48".parse().unwrap()),
        external: RdrDest::Any,
        host_ports: PortRange::new(6000, 6010).unwrap(),
        target: ip("2001:db8::9"),
        target_ports: None,
        label: Some("jnet:v6".into()),
    });
    r.nats.push(Nat {
        pass: true,
        log: false,
        interface: ifn("em0"),
        proto: Some(Proto::Udp),
        source: "2001:db8::9/128".parse().unwrap(),
        destination: Some("2001:db8:100::/40".parse().unwrap()),
        translation: NatTarget::Address {
            address: ip("2001:db8::1"),
        },
        label: Some("jnet:v6".into()),
    });
    r.nats.push(Nat {
        pass: false,
        log: false,
        interface: ifn("em0"),
        proto: None,
        source: "::/0".parse().unwrap(),
        destination: None,
        translation: NatTarget::Interface {
            ifname: ifn("em0"),
            first_only: true,
        },
        label: Some("jnet:v6".into()),
    });
    r.validate().unwrap();
    r
}

#[test]
fn pf_anchors_golden() {
    let t = PfTemplate::embedded();
    for r in samples() {
        let text = t.render(&r, "jnet", PortNames::Numeric).unwrap();
        check_golden(&format!("pf/{}.anchor", r.jail), &text);
    }
}

/// jnet's own pf output parses back into the same IR (what `jnet pf status`
/// relies on to compare a loaded anchor with the inventory), except the
/// owner label: pf nat/rdr rules cannot carry one (sbin/pfctl/parse.y
/// `natrule`), so it is never rendered and never read back (F1).
#[test]
fn pf_lines_parse_back_to_the_same_ir() {
    for r in samples() {
        for names in [PortNames::Numeric, PortNames::Services] {
            let lines = render_rule_lines(&r, names);
            let (nats, rdrs) = lines.split_at(r.nats.len());
            for (line, n) in nats.iter().zip(&r.nats) {
                assert!(!line.contains("label"), "{line}");
                let n = Nat {
                    label: None,
                    ..n.clone()
                };
                assert_eq!(nat_from_rule(&parse_rule(line).unwrap()).unwrap(), n, "{line}");
            }
            for (line, rd) in rdrs.iter().zip(&r.redirects) {
                assert!(!line.contains("label"), "{line}");
                let rd = Redirect {
                    label: None,
                    ..rd.clone()
                };
                assert_eq!(redirect_from_rule(&parse_rule(line).unwrap()).unwrap(), rd, "{line}");
            }
        }
    }
}

#[test]
fn nft_scripts_golden() {
    check_golden("nft/base.nft", &render_nft_base("jnet"));
    for r in samples() {
        check_golden(&format!("nft/{}.nft", r.jail), &render_nft_jail(&r, "jnet"));
    }
    check_golden("nft/remove-www.nft", &render_nft_remove(&jail("www"), "jnet"));
}

// ---- privileged: nft inside a throwaway network namespace ----

fn nft_available() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let tools = ["nft", "unshare"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if root && tools {
        return true;
    }
    eprintln!("SKIP: nft namespace test needs root, nft and unshare (root={root}, tools={tools})");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "nft prerequisites missing under CI=true"
    );
    false
}

/// Runs `sh -c script` in a new network namespace; returns stdout.
fn in_netns(script: &str) -> String {
    let out = Command::new("unshare")
        .args(["-n", "sh", "-ec", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "netns script failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        script
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn nft_scripts_load_replace_and_remove_in_netns() {
    if !nft_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let s = samples();
    let base = w("base.nft", &render_nft_base("jnet"));
    let www = w("www.nft", &render_nft_jail(&s[0], "jnet"));
    let db = w("db.nft", &render_nft_jail(&s[1], "jnet"));
    let edge = w("edge.nft", &render_nft_jail(&s[2], "jnet"));
    let mut www2 = s[0].clone();
    www2.redirects.truncate(1);
    let www2 = w("www2.nft", &render_nft_jail(&www2, "jnet"));
    let rm = w("rm.nft", &render_nft_remove(&jail("www"), "jnet"));
    let foreign = w(
        "foreign.nft",
        "table inet foreign {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n  tcp dport 9999 dnat ip to 10.9.9.9\n }\n}\n",
    );
    let script = format!(
        "nft -c -f {base}; nft -c -f {www}; nft -c -f {db}; nft -c -f {edge}; nft -c -f {rm}\n\
         nft -f {foreign}; nft list table inet foreign > {d}/foreign.before\n\
         nft -f {base}; nft -f {www}; nft -f {db}; nft -f {edge}\n\
         echo '== loaded'; nft list table inet jnet\n\
         nft -f {www2}; echo '== replaced'; nft list chain inet jnet jail_www_dnat\n\
         nft -f {rm}; nft -f {rm}; echo '== removed'; nft list table inet jnet\n\
         nft list table inet foreign > {d}/foreign.after; cmp {d}/foreign.before {d}/foreign.after; echo '== foreign same'",
        d = dir.path().display()
    );
    let out = in_netns(&script);
    let section = |from: &str, to: &str| -> String {
        let a = out.find(from).unwrap_or_else(|| panic!("{from} missing in\n{out}"));
        let b = out[a..].find(to).map_or(out.len(), |b| a + b);
        out[a..b].to_string()
    };
    let loaded = section("== loaded", "== replaced");
    for c in [
        "jail_www_dnat",
        "jail_www_out",
        "jail_www_snat",
        "jail_1db_dnat",
        "jail_edge_snat",
    ] {
        assert!(loaded.contains(&format!("chain {c} {{")), "{c} not loaded:\n{loaded}");
    }
    // nft prints the map target without the spaces jnet writes.
    assert!(
        loaded.contains("ip daddr 192.0.2.7 udp dport 5000-5002 dnat ip to 10.0.0.5:udp dport map { 5000 : 6000, 5001 : 6001, 5002 : 6002 }"),
        "{loaded}"
    );
    // The inet nat of 0.0.0.0/0 loads with its family match, so it never
    // masquerades IPv6 in the inet table.
    assert!(
        loaded.contains("meta nfproto ipv4 oifname \"em0\" masquerade"),
        "{loaded}"
    );
    let replaced = section("== replaced", "== removed");
    assert_eq!(replaced.matches("dnat ip to").count(), 1, "{replaced}");
    let removed = section("== removed", "== foreign same");
    assert!(!removed.contains("jail_www_"), "{removed}");
    assert!(
        removed.contains("chain jail_1db_dnat {") && removed.contains("chain jail_edge_dnat {"),
        "{removed}"
    );
    assert!(out.contains("== foreign same"));
}

/// The IPv6 (and dual-stack) scripts pass `nft -c -f` (check mode: parsed
/// and validated by the kernel, nothing committed), load, and list back as
/// the same rules: the drift check would call them in sync. Runs only in a
/// network namespace the test creates.
#[test]
fn nft_ipv6_scripts_check_load_and_list_back_in_sync() {
    use jnet::core::rules::drift::{compare, State, Syntax};
    if !nft_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (dual, v6) = (dual(), v6only());
    let scripts = format!("{}{}", render_nft_jail(&dual, "jnet"), render_nft_jail(&v6, "jnet"));
    assert!(scripts.contains("dnat ip6 to [fd00:8::8]:80") && scripts.contains("ip6 saddr fd00:8::/64"));
    let base = w("base.nft", &render_nft_base("jnet"));
    let d = w("dual.nft", &render_nft_jail(&dual, "jnet"));
    let s6 = w("v6.nft", &render_nft_jail(&v6, "jnet"));
    let out = in_netns(&format!(
        "nft -c -f {base}; nft -f {base}; nft -c -f {d}; nft -c -f {s6}; echo '== checked'\n\
         nft -f {d}; nft -f {s6}; nft list table inet jnet"
    ));
    let listing = &out[out.find("== checked").expect("check mode passed")..];
    assert_eq!(
        compare(Syntax::Nft, Some(&scripts), Some(listing)),
        State::InSync,
        "listing:\n{listing}"
    );
    // A tampered IPv6 listing is drift, not sync.
    let tampered = listing.replacen("[fd00:8::8]:80", "[fd00:8::9]:80", 1);
    assert!(matches!(
        compare(Syntax::Nft, Some(&scripts), Some(&tampered)),
        State::Drift { .. }
    ));
}
