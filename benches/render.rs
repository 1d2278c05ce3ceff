//! Render every jail's firewall rules for 1,000 jails with 4 exposures and
//! nat each: pf anchors (through the embedded template) and nft scripts.
//! Target (DESIGN.md section 6): well under 20 ms for the whole set.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion};
use ipnetwork::Ipv4Network;

use jnet::core::names::{IfName, JailName};
use jnet::core::ports::Expose;
use jnet::core::rules::nft::render_nft_jail;
use jnet::core::rules::pf::{PfTemplate, PortNames};
use jnet::core::rules::JailRules;

fn jails(n: u32) -> Vec<JailRules> {
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
            JailRules::from_exposures(&name, addr, &ext, &ex, Some(Ipv4Network::new(addr, 32).unwrap())).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let all = jails(1000);
    let tmpl = PfTemplate::embedded();
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
