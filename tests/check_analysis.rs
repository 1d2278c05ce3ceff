//! Table-driven tests of the port-conflict analysis (issue 3, item 3): every
//! rule under both platform models, the JSON shape, and the walk-through
//! seed scenario (nginx + Ghost + MariaDB in three inherit jails).

use std::collections::BTreeMap;
use std::net::IpAddr;

use jnet::core::check::{
    analyze, CheckInput, Claim, ClaimAddr, Conflict, Exposure, JailNet, Other, Platform, Report, Severity,
};
use jnet::core::listeners::{ForeignRedirect, Listener, Owner, Stack};
use jnet::core::names::JailName;
use jnet::core::ports::{PortRange, Proto};

fn j(s: &str) -> JailName {
    s.parse().unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn ports(s: &str) -> PortRange {
    s.parse().unwrap()
}

/// An inherit jail's claim in the host stack.
fn inherit(jail: &str, proto: Proto, p: &str) -> Claim {
    Claim {
        jail: j(jail),
        stack: Stack::Host,
        proto,
        ports: ports(p),
        addresses: ClaimAddr::Wildcard,
    }
}
/// A dedicated jail's claim in `stack`.
fn dedicated(jail: &str, stack: Stack, proto: Proto, p: &str, addrs: &[&str]) -> Claim {
    Claim {
        jail: j(jail),
        stack,
        proto,
        ports: ports(p),
        addresses: ClaimAddr::Specific(addrs.iter().map(|a| ip(a)).collect()),
    }
}
fn listener(proto: Proto, addr: &str, port: u16, dual: bool, cmd: &str, pid: u32) -> Listener {
    Listener {
        proto,
        address: ip(addr),
        port,
        dual_stack: dual,
        stack: Stack::Host,
        owner: Owner {
            pid: Some(pid),
            command: Some(cmd.into()),
            jail: None,
            inode: None,
        },
    }
}
fn owned_by(mut l: Listener, jail: &str) -> Listener {
    l.owner.jail = Some(jail.into());
    l
}
fn exposure(jail: &str, proto: Proto, p: &str, addr: Option<&str>, ifname: &str) -> Exposure {
    Exposure {
        jail: j(jail),
        proto,
        host_ports: ports(p),
        address: addr.map(ip),
        interface: ifname.parse().unwrap(),
    }
}
fn redirect(proto: Proto, p: &str, addr: Option<&str>) -> ForeignRedirect {
    ForeignRedirect {
        proto,
        ports: ports(p),
        address: addr.map(ip),
        owner: "anchor \"bastille/web\"".into(),
        rule: format!("rdr pass on vtnet0 inet proto {proto} from any to any port {p} -> 10.17.89.2"),
    }
}

struct Case {
    name: &'static str,
    platform: Platform,
    checked: &'static [&'static str],
    claims: Vec<Claim>,
    listeners: Vec<Listener>,
    exposures: Vec<Exposure>,
    redirects: Vec<ForeignRedirect>,
    /// Expected (severity, checked jail, port, other kind, other name).
    expect: Vec<(Severity, &'static str, u16, &'static str, &'static str)>,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            name: "",
            platform: Platform::FreeBsd,
            checked: &[],
            claims: vec![],
            listeners: vec![],
            exposures: vec![],
            redirects: vec![],
            expect: vec![],
        }
    }
}

fn input(c: &Case) -> CheckInput {
    let mut ifs = BTreeMap::new();
    ifs.insert(
        "vtnet0".parse().unwrap(),
        vec![ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1")],
    );
    CheckInput {
        platform: c.platform,
        checked: c.checked.iter().map(|s| j(s)).collect(),
        claims: c.claims.clone(),
        listeners: c.listeners.clone(),
        exposures: c.exposures.clone(),
        redirects: c.redirects.clone(),
        interface_addrs: ifs,
    }
}

fn summary(c: &Conflict) -> (Severity, String, u16, &'static str, String) {
    let (kind, name) = match &c.other {
        Other::Listener { command, .. } => ("listener", command.clone().unwrap_or_default()),
        Other::Jail { name, .. } => ("jail", name.to_string()),
        Other::Exposure { jail, .. } => ("exposure", jail.to_string()),
        Other::Redirect { owner, .. } => ("redirect", owner.clone()),
    };
    (c.severity, c.jail.to_string(), c.port, kind, name)
}

use Proto::{Tcp, Udp};

fn cases() -> Vec<Case> {
    let www = || Stack::Jail(j("www"));
    vec![
        Case {
            name: "inherit vs inherit on the same port",
            checked: &["web2"],
            claims: vec![inherit("web", Tcp, "80"), inherit("web2", Tcp, "80")],
            expect: vec![(Severity::Error, "web2", 80, "jail", "web")],
            ..Case::default()
        },
        Case {
            name: "inherit vs inherit on different ports",
            checked: &["web", "app"],
            claims: vec![inherit("web", Tcp, "80"), inherit("app", Tcp, "2368")],
            ..Case::default()
        },
        Case {
            name: "inherit vs host wildcard listener",
            checked: &["web"],
            claims: vec![inherit("web", Tcp, "80")],
            listeners: vec![listener(Tcp, "0.0.0.0", 80, false, "nginx", 812)],
            expect: vec![(Severity::Error, "web", 80, "listener", "nginx")],
            ..Case::default()
        },
        Case {
            name: "inherit vs host loopback listener (inherit wildcard meets any address)",
            checked: &["db"],
            claims: vec![inherit("db", Tcp, "3306")],
            listeners: vec![listener(Tcp, "127.0.0.1", 3306, false, "mysqld", 77)],
            expect: vec![(Severity::Error, "db", 3306, "listener", "mysqld")],
            ..Case::default()
        },
        Case {
            name: "inherit vs dedicated claim in the host stack (FreeBSD non-VNET)",
            checked: &["ghost"],
            claims: vec![
                inherit("ghost", Tcp, "80"),
                dedicated("www", Stack::Host, Tcp, "80", &["10.0.0.5"]),
            ],
            expect: vec![(Severity::Error, "ghost", 80, "jail", "www")],
            ..Case::default()
        },
        Case {
            name: "dedicated vs dedicated, same address",
            checked: &["a"],
            claims: vec![
                dedicated("a", Stack::Host, Tcp, "443", &["10.0.0.5"]),
                dedicated("b", Stack::Host, Tcp, "443", &["10.0.0.6", "10.0.0.5"]),
            ],
            expect: vec![(Severity::Error, "a", 443, "jail", "b")],
            ..Case::default()
        },
        Case {
            name: "dedicated jails sharing two addresses are reported once; ranged specific claims are seen",
            checked: &["a"],
            claims: vec![
                dedicated("a", Stack::Host, Tcp, "443", &["10.0.0.5", "10.0.0.6"]),
                dedicated("b", Stack::Host, Tcp, "443", &["10.0.0.6", "10.0.0.5"]),
                dedicated("c", Stack::Host, Tcp, "440-450", &["10.0.0.6"]),
                dedicated("d", Stack::Host, Tcp, "440-450", &["10.0.0.7"]),
                dedicated("e", Stack::Host, Tcp, "443", &["10.0.0.7"]),
            ],
            expect: vec![
                (Severity::Error, "a", 443, "jail", "b"),
                (Severity::Error, "a", 443, "jail", "c"),
            ],
            ..Case::default()
        },
        Case {
            name: "dedicated vs dedicated, different addresses",
            checked: &["a", "b"],
            claims: vec![
                dedicated("a", Stack::Host, Tcp, "443", &["10.0.0.5"]),
                dedicated("b", Stack::Host, Tcp, "443", &["10.0.0.6"]),
            ],
            ..Case::default()
        },
        Case {
            name: "dedicated vs host wildcard daemon on FreeBSD is a warning",
            platform: Platform::FreeBsd,
            checked: &["www"],
            claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["10.0.0.5"])],
            listeners: vec![listener(Tcp, "0.0.0.0", 80, false, "httpd", 900)],
            expect: vec![(Severity::Warning, "www", 80, "listener", "httpd")],
            ..Case::default()
        },
        Case {
            name: "specific vs wildcard in one stack on Linux is an error",
            platform: Platform::Linux,
            checked: &["www"],
            claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["10.0.0.5"])],
            listeners: vec![listener(Tcp, "0.0.0.0", 80, false, "httpd", 900)],
            expect: vec![(Severity::Error, "www", 80, "listener", "httpd")],
            ..Case::default()
        },
        Case {
            name: "Linux dedicated jail lives in its own stack: host listener is no conflict",
            platform: Platform::Linux,
            checked: &["www"],
            claims: vec![dedicated("www", www(), Tcp, "80", &["10.66.0.5"])],
            listeners: vec![listener(Tcp, "0.0.0.0", 80, false, "httpd", 900)],
            ..Case::default()
        },
        Case {
            name: "dedicated vs host listener on exactly its address",
            checked: &["www"],
            claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["10.0.0.5"])],
            listeners: vec![listener(Tcp, "10.0.0.5", 80, false, "httpd", 900)],
            expect: vec![(Severity::Error, "www", 80, "listener", "httpd")],
            ..Case::default()
        },
        Case {
            name: "udp never meets tcp",
            checked: &["dns", "web"],
            claims: vec![inherit("dns", Udp, "53"), inherit("web", Tcp, "53")],
            listeners: vec![
                listener(Tcp, "0.0.0.0", 53, false, "named", 1),
                listener(Udp, "0.0.0.0", 80, false, "x", 2),
            ],
            expect: vec![(Severity::Error, "web", 53, "listener", "named")],
            ..Case::default()
        },
        Case {
            name: "v6-only [::] does not meet a v4 claim",
            checked: &["www"],
            claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["10.0.0.5"])],
            listeners: vec![listener(Tcp, "::", 80, false, "nginx", 5)],
            ..Case::default()
        },
        Case {
            name: "dual-stack [::] covers IPv4 (tcp46)",
            checked: &["www"],
            claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["10.0.0.5"])],
            listeners: vec![listener(Tcp, "::", 80, true, "nginx", 5)],
            expect: vec![(Severity::Warning, "www", 80, "listener", "nginx")],
            ..Case::default()
        },
        Case {
            name: "inherit wildcard meets a v6-only [::] (wildcard vs wildcard in IPv6)",
            checked: &["web"],
            claims: vec![inherit("web", Tcp, "80")],
            listeners: vec![listener(Tcp, "::", 80, false, "nginx", 5)],
            expect: vec![(Severity::Error, "web", 80, "listener", "nginx")],
            ..Case::default()
        },
        Case {
            name: "v4 wildcard listener does not meet a v6 specific claim",
            checked: &["www"],
            claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["2001:db8::5"])],
            listeners: vec![listener(Tcp, "0.0.0.0", 80, false, "nginx", 5)],
            ..Case::default()
        },
        Case {
            name: "a jail's own listeners are not conflicts",
            platform: Platform::Linux,
            checked: &["web", "www"],
            claims: vec![
                inherit("web", Tcp, "80"),
                dedicated("www", www(), Tcp, "443", &["10.66.0.5"]),
            ],
            listeners: vec![
                owned_by(listener(Tcp, "0.0.0.0", 80, false, "nginx", 5), "web"),
                Listener {
                    stack: www(),
                    ..listener(Tcp, "0.0.0.0", 443, false, "nginx", 6)
                },
            ],
            ..Case::default()
        },
        Case {
            name: "another jail's listener names that jail",
            checked: &["web2"],
            claims: vec![inherit("web2", Tcp, "80")],
            listeners: vec![owned_by(listener(Tcp, "0.0.0.0", 80, false, "nginx", 5), "web")],
            expect: vec![(Severity::Error, "web2", 80, "listener", "nginx")],
            ..Case::default()
        },
        Case {
            name: "range claim vs listener inside it",
            checked: &["ftp"],
            claims: vec![inherit("ftp", Tcp, "6000-6010")],
            listeners: vec![
                listener(Tcp, "0.0.0.0", 5999, false, "a", 1),
                listener(Tcp, "0.0.0.0", 6005, false, "b", 2),
                listener(Tcp, "0.0.0.0", 6011, false, "c", 3),
            ],
            expect: vec![(Severity::Error, "ftp", 6005, "listener", "b")],
            ..Case::default()
        },
        Case {
            name: "overlapping ranges meet at the first common port; adjacent ranges do not",
            checked: &["a"],
            claims: vec![
                inherit("a", Tcp, "6000-6010"),
                inherit("b", Tcp, "6008-6020"),
                inherit("c", Tcp, "6011-6020"),
                inherit("d", Tcp, "5990-5999"),
                inherit("e", Tcp, "6003"),
            ],
            expect: vec![
                (Severity::Error, "a", 6003, "jail", "e"),
                (Severity::Error, "a", 6008, "jail", "b"),
            ],
            ..Case::default()
        },
        Case {
            name: "exposure vs host wildcard listener",
            checked: &["www"],
            exposures: vec![exposure("www", Tcp, "80", None, "vtnet0")],
            listeners: vec![listener(Tcp, "0.0.0.0", 80, false, "httpd", 9)],
            expect: vec![(Severity::Error, "www", 80, "listener", "httpd")],
            ..Case::default()
        },
        Case {
            name: "exposure vs listeners on the interface address, loopback and another address",
            checked: &["www"],
            exposures: vec![
                exposure("www", Tcp, "8080", None, "vtnet0"),
                exposure("www", Tcp, "9090", Some("192.0.2.2"), "vtnet0"),
            ],
            listeners: vec![
                listener(Tcp, "192.0.2.1", 8080, false, "on-if", 1),
                listener(Tcp, "127.0.0.1", 8080, false, "loopback", 2),
                listener(Tcp, "192.0.2.1", 9090, false, "other-addr", 3),
                listener(Tcp, "10.9.9.9", 8080, false, "elsewhere", 4),
            ],
            expect: vec![(Severity::Error, "www", 8080, "listener", "on-if")],
            ..Case::default()
        },
        Case {
            name: "exposure on an interface with unknown addresses: only wildcard listeners count",
            checked: &["www"],
            exposures: vec![exposure("www", Tcp, "80", None, "em1")],
            listeners: vec![
                listener(Tcp, "10.9.9.9", 80, false, "specific", 1),
                listener(Tcp, "::", 80, true, "wild", 2),
            ],
            expect: vec![(Severity::Error, "www", 80, "listener", "wild")],
            ..Case::default()
        },
        Case {
            name: "IPv6-bound exposure vs listeners: v6only decides whether an IPv6 wildcard takes IPv4 too",
            checked: &["www"],
            exposures: vec![
                exposure("www", Tcp, "80", Some("2001:db8::1"), "vtnet0"),
                exposure("www", Tcp, "81", Some("192.0.2.1"), "vtnet0"),
                exposure("www", Tcp, "82", Some("192.0.2.1"), "vtnet0"),
                exposure("www", Tcp, "83", Some("2001:db8::1"), "vtnet0"),
            ],
            listeners: vec![
                // An IPv4 wildcard never receives what an IPv6-bound one redirects.
                listener(Tcp, "0.0.0.0", 80, false, "v4-wild", 1),
                listener(Tcp, "::", 80, false, "v6only-wild", 2),
                // v6only=1: IPv6 only, the IPv4-bound exposure is free.
                listener(Tcp, "::", 81, false, "v6only-81", 3),
                // v6only=0: it takes IPv4 too.
                listener(Tcp, "::", 82, true, "dual-82", 4),
                // Another IPv6 address, and the bound one.
                listener(Tcp, "2001:db8::2", 83, false, "other6", 5),
                listener(Tcp, "2001:db8::1", 83, false, "same6", 6),
            ],
            expect: vec![
                (Severity::Error, "www", 80, "listener", "v6only-wild"),
                (Severity::Error, "www", 82, "listener", "dual-82"),
                (Severity::Error, "www", 83, "listener", "same6"),
            ],
            ..Case::default()
        },
        Case {
            name: "exposures bound to different addresses of either family do not meet",
            checked: &["a"],
            exposures: vec![
                exposure("a", Tcp, "80", Some("2001:db8::1"), "vtnet0"),
                exposure("b", Tcp, "80", Some("192.0.2.1"), "vtnet0"),
                exposure("c", Tcp, "80", Some("2001:db8::2"), "vtnet0"),
                exposure("d", Tcp, "80", None, "vtnet0"),
            ],
            expect: vec![(Severity::Error, "a", 80, "exposure", "d")],
            ..Case::default()
        },
        Case {
            name: "exposure vs foreign redirect",
            checked: &["www"],
            exposures: vec![
                exposure("www", Tcp, "80", None, "vtnet0"),
                exposure("www", Tcp, "443", Some("192.0.2.1"), "vtnet0"),
            ],
            redirects: vec![
                redirect(Tcp, "80", None),
                redirect(Udp, "443", None),
                redirect(Tcp, "443", Some("192.0.2.2")),
                redirect(Tcp, "8000-8100", None),
            ],
            expect: vec![(Severity::Error, "www", 80, "redirect", "anchor \"bastille/web\"")],
            ..Case::default()
        },
        Case {
            name: "exposure vs another jail's exposure (range overlap, same interface)",
            checked: &["a"],
            exposures: vec![
                exposure("a", Tcp, "8000-8010", None, "vtnet0"),
                exposure("b", Tcp, "8010", None, "vtnet0"),
                exposure("c", Tcp, "8005", None, "em1"),
                exposure("d", Tcp, "8001", Some("198.51.100.1"), "vtnet0"),
            ],
            expect: vec![(Severity::Error, "a", 8010, "exposure", "b")],
            ..Case::default()
        },
        Case {
            name: "two checked jails exposing one port are reported once",
            checked: &["a", "b"],
            exposures: vec![
                exposure("a", Tcp, "80", None, "vtnet0"),
                exposure("b", Tcp, "80", Some("192.0.2.1"), "vtnet0"),
            ],
            expect: vec![(Severity::Error, "a", 80, "exposure", "b")],
            ..Case::default()
        },
        Case {
            name: "exposure vs another jail's inherit claim; the claim side names the exposure",
            checked: &["www"],
            claims: vec![inherit("ghost", Tcp, "80")],
            exposures: vec![exposure("www", Tcp, "80", None, "vtnet0")],
            expect: vec![(Severity::Error, "www", 80, "jail", "ghost")],
            ..Case::default()
        },
        Case {
            name: "claim vs an unchecked jail's exposure",
            checked: &["ghost"],
            claims: vec![inherit("ghost", Tcp, "80")],
            exposures: vec![exposure("www", Tcp, "80", None, "vtnet0")],
            expect: vec![(Severity::Error, "ghost", 80, "exposure", "www")],
            ..Case::default()
        },
        Case {
            name: "a jail's own exposure and claim do not conflict",
            checked: &["www"],
            claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["192.0.2.1"])],
            exposures: vec![exposure("www", Tcp, "80", None, "vtnet0")],
            listeners: vec![owned_by(listener(Tcp, "192.0.2.1", 80, false, "nginx", 3), "www")],
            ..Case::default()
        },
        Case {
            name: "unchecked jails' conflicts are not reported",
            checked: &["db"],
            claims: vec![
                inherit("web", Tcp, "80"),
                inherit("web2", Tcp, "80"),
                inherit("db", Tcp, "3306"),
            ],
            ..Case::default()
        },
    ]
}

#[test]
fn rules_table() {
    let mut failures = Vec::new();
    for c in cases() {
        let report = analyze(&input(&c));
        let got: Vec<_> = report.conflicts.iter().map(summary).collect();
        let want: Vec<_> = c
            .expect
            .iter()
            .map(|&(s, jail, port, kind, name)| (s, jail.to_string(), port, kind, name.to_string()))
            .collect();
        if got != want {
            failures.push(format!(
                "{}:\n  want {want:?}\n  got  {got:?}\n  {:#?}",
                c.name, report.conflicts
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn messages_name_both_sides() {
    let c = Case {
        checked: &["www"],
        claims: vec![inherit("www", Tcp, "80")],
        listeners: vec![listener(Tcp, "0.0.0.0", 80, false, "nginx", 812)],
        ..Case::default()
    };
    let r = analyze(&input(&c));
    assert_eq!(
        r.conflicts[0].message,
        "jail www claims tcp/80 on * but nginx (pid 812) listens on *:80"
    );

    let c = Case {
        checked: &["www"],
        claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["10.0.0.5"])],
        listeners: vec![owned_by(listener(Tcp, "::", 80, true, "httpd", 9), "old")],
        ..Case::default()
    };
    let r = analyze(&input(&c));
    let m = &r.conflicts[0].message;
    assert!(
        m.starts_with("jail www claims tcp/80 on 10.0.0.5 but httpd (pid 9, jail old) listens on [::]:80"),
        "{m}"
    );
    assert!(m.contains("answers for 10.0.0.5"), "{m}");
    assert_eq!(r.conflicts[0].address, "10.0.0.5");

    let c = Case {
        checked: &["www"],
        exposures: vec![exposure("www", Tcp, "80", None, "vtnet0")],
        redirects: vec![redirect(Tcp, "80", None)],
        ..Case::default()
    };
    let r = analyze(&input(&c));
    assert!(r.conflicts[0].message.starts_with(
        "jail www exposes host port tcp/80 on (vtnet0) but anchor \"bastille/web\" already redirects tcp/80: rdr pass"
    ));
}

#[test]
fn json_shape() {
    let c = Case {
        checked: &["web2", "www"],
        claims: vec![inherit("web", Tcp, "80"), inherit("web2", Tcp, "80")],
        listeners: vec![Listener {
            owner: Owner::default(),
            ..listener(Udp, "0.0.0.0", 80, false, "x", 1)
        }],
        exposures: vec![
            exposure("www", Tcp, "443", None, "vtnet0"),
            exposure("old", Tcp, "443", None, "vtnet0"),
        ],
        redirects: vec![redirect(Udp, "80", None)],
        ..Case::default()
    };
    let c = Case {
        claims: [c.claims.clone(), vec![inherit("web2", Udp, "80")]].concat(),
        ..c
    };
    let v = serde_json::to_value(analyze(&input(&c))).unwrap();
    let want = serde_json::json!({"conflicts": [
        {"severity": "error", "proto": "tcp", "port": 80, "address": "*", "jail": "web2",
         "other": {"kind": "jail", "name": "web", "address": "*"},
         "message": "jail web2 claims tcp/80 on * but jail web also claims tcp/80 on *"},
        {"severity": "error", "proto": "udp", "port": 80, "address": "*", "jail": "web2",
         "other": {"kind": "listener", "pid": null, "command": null, "jail": null, "address": "0.0.0.0", "dual_stack": false},
         "message": "jail web2 claims udp/80 on * but a socket of unknown owner listens on *:80"},
        {"severity": "error", "proto": "tcp", "port": 443, "address": "(vtnet0)", "jail": "www",
         "other": {"kind": "exposure", "jail": "old", "host_port": 443},
         "message": "jail www exposes host port tcp/443 on (vtnet0) but jail old exposes host port tcp/443 on (vtnet0) too"}
    ]});
    assert_eq!(v, want, "{}", serde_json::to_string_pretty(&v).unwrap());
}

#[test]
fn exit_status_and_counts() {
    let c = Case {
        checked: &["www"],
        claims: vec![dedicated("www", Stack::Host, Tcp, "80", &["10.0.0.5"])],
        listeners: vec![listener(Tcp, "0.0.0.0", 80, false, "httpd", 1)],
        ..Case::default()
    };
    let r = analyze(&input(&c));
    assert_eq!((r.errors(), r.warnings()), (0, 1));
    assert!(!r.failed(false));
    assert!(r.failed(true));
    assert!(!Report::default().failed(true));
    let r = analyze(&input(&Case {
        platform: Platform::Linux,
        ..c
    }));
    assert!(r.failed(false));
}

#[test]
fn stack_model_per_platform() {
    let www = j("www");
    assert_eq!(Platform::FreeBsd.stack_of(&www, JailNet::Inherit), Stack::Host);
    assert_eq!(Platform::FreeBsd.stack_of(&www, JailNet::Dedicated), Stack::Host);
    assert_eq!(
        Platform::FreeBsd.stack_of(&www, JailNet::Vnet),
        Stack::Jail(www.clone())
    );
    assert_eq!(Platform::Linux.stack_of(&www, JailNet::Inherit), Stack::Host);
    assert_eq!(
        Platform::Linux.stack_of(&www, JailNet::Dedicated),
        Stack::Jail(www.clone())
    );
    assert_eq!(Platform::FreeBsd.specific_under_wildcard(), Severity::Warning);
    assert_eq!(Platform::Linux.specific_under_wildcard(), Severity::Error);
}

/// The walk-through: nginx, Ghost and MariaDB in three inherit jails pass;
/// a fourth inherit jail on 80 fails naming both. Run under both platforms.
#[test]
fn seed_scenario() {
    for platform in [Platform::FreeBsd, Platform::Linux] {
        let three = vec![
            inherit("web", Tcp, "80"),
            inherit("app", Tcp, "2368"),
            inherit("db", Tcp, "3306"),
        ];
        let running = vec![
            owned_by(listener(Tcp, "0.0.0.0", 80, false, "nginx", 812), "web"),
            owned_by(listener(Tcp, "::", 80, false, "nginx", 812), "web"),
            owned_by(listener(Tcp, "127.0.0.1", 2368, false, "node", 900), "app"),
            owned_by(listener(Tcp, "0.0.0.0", 3306, false, "mysqld", 1000), "db"),
            listener(Tcp, "0.0.0.0", 22, false, "sshd", 700),
        ];
        let mut c = Case {
            platform,
            checked: &["web", "app", "db"],
            claims: three.clone(),
            listeners: running.clone(),
            ..Case::default()
        };
        let r = analyze(&input(&c));
        assert!(r.conflicts.is_empty(), "{platform:?}: {:#?}", r.conflicts);
        assert!(!r.failed(true));

        c.claims.push(inherit("web2", Tcp, "80"));
        c.checked = &["web2"];
        let r = analyze(&input(&c));
        assert!(r.failed(false));
        // web's declared claim and each of its two running sockets.
        assert_eq!(r.conflicts.len(), 3, "{:#?}", r.conflicts);
        assert!(r
            .conflicts
            .iter()
            .all(|x| x.jail.as_str() == "web2" && x.severity == Severity::Error));
        assert!(r
            .conflicts
            .iter()
            .any(|x| x.message == "jail web2 claims tcp/80 on * but jail web also claims tcp/80 on *"));
        assert!(r
            .conflicts
            .iter()
            .any(|x| x.message == "jail web2 claims tcp/80 on * but nginx (pid 812, jail web) listens on *:80"));

        // Checking everything reports the web/web2 pair once.
        c.checked = &["web", "app", "db", "web2"];
        let r = analyze(&input(&c));
        let pair: Vec<_> = r
            .conflicts
            .iter()
            .filter(|x| matches!(x.other, Other::Jail { .. }))
            .collect();
        assert_eq!(pair.len(), 1, "{:#?}", r.conflicts);
    }
}
