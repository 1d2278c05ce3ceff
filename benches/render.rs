//! Render every jail's firewall rules for 1,000 jails with 4 exposures and
//! nat each: pf anchors (through the embedded template) and nft scripts.
//! Target (DESIGN.md section 6): well under 20 ms for the whole set.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use ipnetwork::Ipv4Network;

use jnet::core::names::{IfName, JailName};
use jnet::core::ports::Expose;
use jnet::core::rules::ir::NatSources;
use jnet::core::rules::nft::render_nft_jail;
use jnet::core::rules::pf::{PfTemplate, PortNames};
use jnet::core::rules::JailRules;

/// `n` jails; with `dual`, each also has an IPv6 address (one more
/// redirect per exposure, IPv6 nat of its /128).
fn jails(n: u32, dual: bool) -> Vec<JailRules> {
    let ext = IfName::new("vtnet0").unwrap();
    (0..n)
        .map(|i| {
            let name = JailName::new(&format!("jail{i:04}")).unwrap();
            let addr = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 66, 0, 0)) + i + 1);
            // Four disjoint exposures per jail, one of them a shifted range.
            let base = 10_000 + (i as u16) * 8;
            let ex: Vec<Expose> = vec![
                format!("tcp/{}:80", base).parse().unwrap(),
                format!("tcp/{}:443", base + 1).parse().unwrap(),
                format!("udp/{}:53", base + 2).parse().unwrap(),
                format!("tcp/{}-{}:9000-9002", base + 3, base + 5).parse().unwrap(),
            ];
            let mut addrs = vec![IpAddr::V4(addr)];
            let mut nat = NatSources::inet(Ipv4Network::new(addr, 32).unwrap());
            if dual {
                let a6 = Ipv6Addr::from(u128::from(Ipv6Addr::new(0xfd00, 0x66, 0, 0, 0, 0, 0, 0)) + u128::from(i) + 1);
                addrs.push(IpAddr::V6(a6));
                nat.inet6 = Some(ipnetwork::Ipv6Network::new(a6, 128).unwrap());
            }
            JailRules::from_exposures(&name, &addrs, &ext, &ex, nat).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let all = jails(1000, false);
    let dual = jails(1000, true);
    let tmpl = PfTemplate::embedded();
    c.bench_function("parse exposures and build rules, 1000 jails x 4", |b| {
        b.iter(|| jails(black_box(1000), false).len())
    });
    c.bench_function("render pf anchors, 1000 jails x 4 exposures", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for r in &all {
                bytes += tmpl.render(black_box(r), "jnet", PortNames::Numeric).unwrap().len();
            }
            bytes
        })
    });
    c.bench_function("render nft scripts, 1000 jails x 4 exposures", |b| {
        b.iter(|| {
            all.iter()
                .map(|r| render_nft_jail(black_box(r), "jnet").len())
                .sum::<usize>()
        })
    });
    c.bench_function("render pf anchors, 1000 dual-stack jails x 4 exposures", |b| {
        b.iter(|| {
            dual.iter()
                .map(|r| tmpl.render(black_box(r), "jnet", PortNames::Numeric).unwrap().len())
                .sum::<usize>()
        })
    });
    c.bench_function("render nft scripts, 1000 dual-stack jails x 4 exposures", |b| {
        b.iter(|| {
            dual.iter()
                .map(|r| render_nft_jail(black_box(r), "jnet").len())
                .sum::<usize>()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
