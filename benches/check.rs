//! Port-conflict analysis at scale: 1,000 jails (600 inherit, 400 dedicated
//! non-VNET on one shared port pair, FreeBSD model) and 10,000 listeners,
//! checking every jail (`jnet check`) and one jail (`jnet hook prestart`).
//! Target: well under 20 ms for the analysis.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use jnet::core::check::{analyze, CheckInput, Claim, ClaimAddr, Exposure, Platform};
use jnet::core::listeners::{ForeignRedirect, Listener, Owner, Stack};
use jnet::core::names::JailName;
use jnet::core::ports::{PortRange, Proto};

fn name(i: usize) -> JailName {
    format!("j{i}").parse().unwrap()
}

fn jail_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8))
}

fn single(p: u16) -> PortRange {
    PortRange::single(p).unwrap()
}

fn build() -> CheckInput {
    let mut claims = Vec::new();
    let mut listeners = Vec::new();
    let mut exposures = Vec::new();
    for i in 0..1000 {
        let jail = name(i);
        if i < 600 {
            // Inherit jails: distinct service ports, tcp and udp; every
            // 100th collides with its neighbour.
            let port = 20000 + i as u16 - u16::from(i % 100 == 99);
            for proto in [Proto::Tcp, Proto::Udp] {
                claims.push(Claim {
                    jail: jail.clone(),
                    stack: Stack::Host,
                    proto,
                    ports: single(port),
                    addresses: ClaimAddr::Wildcard,
                });
            }
        } else {
            // Dedicated jails: everyone on 80 and 443 on its own address.
            for p in [80, 443] {
                claims.push(Claim {
                    jail: jail.clone(),
                    stack: Stack::Host,
                    proto: Proto::Tcp,
                    ports: single(p),
                    addresses: ClaimAddr::Specific(vec![jail_ip(i)]),
                });
                listeners.push(Listener {
                    proto: Proto::Tcp,
                    address: jail_ip(i),
                    port: p,
                    dual_stack: false,
                    stack: Stack::Host,
                    owner: Owner {
                        pid: Some(i as u32),
                        command: Some("nginx".into()),
                        jail: Some(jail.to_string()),
                        inode: None,
                    },
                });
            }
            exposures.push(Exposure {
                jail: jail.clone(),
                proto: Proto::Tcp,
                host_ports: single(30000 + i as u16),
                address: None,
                interface: "vtnet0".parse().unwrap(),
            });
        }
    }
    // Fill up to 10,000 listeners with host daemons and per-jail sockets on
    // ports nobody claims, plus a few that do collide.
    let mut k = 0u32;
    while listeners.len() < 10_000 {
        let port = 40000 + (k % 20000) as u16;
        let address = match k % 3 {
            0 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            1 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => "::".parse().unwrap(),
        };
        listeners.push(Listener {
            proto: if k.is_multiple_of(4) { Proto::Udp } else { Proto::Tcp },
            address,
            port,
            dual_stack: k % 3 == 2,
            stack: Stack::Host,
            owner: Owner {
                pid: Some(100_000 + k),
                command: Some("daemon".into()),
                jail: None,
                inode: None,
            },
        });
        k += 1;
    }
    listeners.push(Listener {
        proto: Proto::Tcp,
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 20005,
        dual_stack: false,
        stack: Stack::Host,
        owner: Owner::default(),
    });
    let redirects = (0..50)
        .map(|i| ForeignRedirect {
            proto: Proto::Tcp,
            ports: single(50000 + i),
            address: None,
            owner: "anchor \"other\"".into(),
            rule: "rdr pass on vtnet0 inet proto tcp from any to any port 50000 -> 10.9.0.1".into(),
        })
        .collect();
    let mut interface_addrs = BTreeMap::new();
    interface_addrs.insert("vtnet0".parse().unwrap(), vec!["192.0.2.1".parse().unwrap()]);
    CheckInput {
        platform: Platform::FreeBsd,
        checked: (0..1000).map(name).collect(),
        claims,
        listeners,
        exposures,
        redirects,
        interface_addrs,
    }
}

fn bench(c: &mut Criterion) {
    let all = build();
    let report = analyze(&all);
    eprintln!(
        "check-all: {} claims, {} listeners, {} exposures -> {} errors, {} warnings",
        all.claims.len(),
        all.listeners.len(),
        all.exposures.len(),
        report.errors(),
        report.warnings()
    );
    c.bench_function("analyze 1000 jails x 10000 listeners, check all", |b| {
        b.iter(|| analyze(black_box(&all)))
    });
    let one = CheckInput {
        checked: vec![name(700)],
        ..all.clone()
    };
    c.bench_function("analyze 1000 jails x 10000 listeners, check one", |b| {
        b.iter(|| analyze(black_box(&one)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
