//! Benchmarks of the allocator and the inventory store:
//! - lowest free address of a /8 pool with 10,000 / 100,000 taken addresses
//!   (the core allocator over a RangeSet, and the store's fast view over the
//!   on-disk index with no write);
//! - the same search by family and pool size (IPv4 /24 and /16, IPv6 /64
//!   and /48, 10,000 taken where they fit), and a take-the-lowest cycle, to
//!   show an IPv6 pool allocates as fast as an IPv4 one (issue 9 B1);
//! - parse and serialise of a 10,000-jail inventory (the full path used by
//!   list, inventory, import);
//! - one `assign --pool` + `release` through the engine on a 10,000 /
//!   100,000-jail inventory: lock, index, journal append with fdatasync,
//!   and the amortised compactions;
//! - parsing a jail.conf of 10,000 jails and a jnet.toml of 10,000 jails
//!   (each with a profile, 4 ports and 4 exposures), inputs generated here
//!   (issue 10 budgets: 10 ms and 20 ms).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use jnet::core::alloc;
use jnet::core::config::parse_config;
use jnet::core::names::JailName;
use jnet::core::range::{RangeSet, Span, Unit};
use jnet::engine::addresses::{assign, release, AssignRequest, Observed};
use jnet::store::{Inventory, JailRecord, Store};

const CONFIG: &str = "[host]\nexternal_interface=\"eth0\"\n[pools.big]\nnetwork=\"10.0.0.0/8\"\ninterface=\"lo1\"\ngateway=\"10.0.0.1\"\n";

/// Jails j0.. holding 10.0.0.2 upwards, with every 7th address of the upper
/// half free again (as scripts/scale.py builds them).
fn inventory(n: u32) -> Inventory {
    let mut inv = Inventory::default();
    let pool = Some(jnet::core::names::PoolName::new("big").unwrap());
    let ifn = Some(jnet::core::names::IfName::new("lo1").unwrap());
    for i in 0..n {
        if i % 7 == 3 && i > n / 2 {
            continue;
        }
        let a = Ipv4Addr::from(0x0a00_0002 + i);
        inv.jails.insert(
            JailName::new(&format!("j{i}")).unwrap(),
            JailRecord::dedicated(a, pool.clone(), ifn.clone()),
        );
    }
    inv
}

fn store_with(n: u32) -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let st = Store::new(d.path(), Duration::from_secs(5));
    let inv = inventory(n);
    st.update(|i| {
        *i = inv;
        Ok(())
    })
    .unwrap();
    (d, st)
}

fn allocation(c: &mut Criterion) {
    let cfg = parse_config("bench.toml", CONFIG).unwrap();
    let pool = &cfg.pools.values().next().unwrap();
    let mut g = c.benchmark_group("lowest_free");
    for n in [10_000u32, 100_000] {
        let mut taken = RangeSet::new();
        for r in inventory(n).jails.values() {
            taken.insert_addr(r.address().unwrap());
        }
        g.bench_with_input(BenchmarkId::new("rangeset", n), &taken, |b, t| {
            b.iter(|| black_box(alloc::lowest_free(pool, t)))
        });
        let (_d, st) = store_with(n);
        g.bench_with_input(BenchmarkId::new("store_fast_view", n), &st, |b, st| {
            b.iter(|| {
                black_box(
                    st.update_view(|v| v.lowest_free(&pool.assignable, &RangeSet::new()))
                        .unwrap(),
                )
            })
        });
    }
    g.finish();
}

/// `n` taken addresses from `first` upwards, densely, with every 7th of the
/// upper half free again; and the assignable set `first ..= last`.
fn taken_by_family<T: Unit>(first: T, last: T, n: u32) -> (RangeSet<T>, RangeSet<T>) {
    let mut pool = RangeSet::<T>::empty();
    pool.insert(Span::new(first, last).unwrap());
    let mut taken = RangeSet::<T>::empty();
    let mut a = first;
    for i in 0..n {
        if !(i % 7 == 3 && i > n / 2) {
            taken.insert(Span::new(a, a).unwrap());
        }
        a = a.succ();
    }
    (pool, taken)
}

fn bench_family<T: Unit>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    first: T,
    last: T,
    n: u32,
) {
    let (pool, taken) = taken_by_family(first, last, n);
    g.bench_function(format!("{name}/lowest_free_{n}_taken"), |b| {
        b.iter(|| black_box(pool.lowest_not_in(&taken)))
    });
    // One allocation as assign does it: find the lowest free, take it, and
    // (untimed in effect, same cost) give it back so every iteration starts
    // from the same set.
    g.bench_function(format!("{name}/take_and_return_{n}_taken"), |b| {
        let mut t = taken.clone();
        b.iter(|| {
            let a = pool.lowest_not_in(&t).unwrap();
            t.insert(Span::new(a, a).unwrap());
            t.remove(Span::new(a, a).unwrap());
            black_box(a)
        })
    });
}

fn allocation_by_family(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc_family");
    let v4 = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
    let v6 = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
    bench_family(&mut g, "ipv4_24", v4("192.0.2.1"), v4("192.0.2.254"), 200);
    bench_family(&mut g, "ipv4_16", v4("10.1.0.1"), v4("10.1.255.254"), 10_000);
    // IPv6 pools skip only the subnet-router anycast (the network address).
    bench_family(
        &mut g,
        "ipv6_64",
        v6("2001:db8:0:1::1"),
        v6("2001:db8:0:1:ffff:ffff:ffff:ffff"),
        10_000,
    );
    bench_family(
        &mut g,
        "ipv6_48",
        v6("2001:db8:1::1"),
        v6("2001:db8:1:ffff:ffff:ffff:ffff:ffff"),
        10_000,
    );
    g.finish();
}

fn parse_serialise(c: &mut Criterion) {
    let text = inventory(10_000).to_text();
    let inv = Inventory::from_text(&text).unwrap();
    let mut g = c.benchmark_group("inventory_10k");
    g.bench_function("parse", |b| {
        b.iter(|| black_box(Inventory::from_text(black_box(&text)).unwrap()))
    });
    g.bench_function("serialise", |b| b.iter(|| black_box(inv.to_text())));
    g.finish();
}

fn fast_assign(c: &mut Criterion) {
    let cfg = parse_config("bench.toml", CONFIG).unwrap();
    let req = AssignRequest::Pool(jnet::core::names::PoolName::new("big").unwrap());
    let obs = Observed {
        jail_conf: &jnet::engine::jails_conf::ConfAddrs::EMPTY,
        host: &[],
    };
    let jail = JailName::new("newjail").unwrap();
    let mut g = c.benchmark_group("assign_release");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    for n in [10_000u32, 100_000] {
        let (_d, st) = store_with(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &st, |b, st| {
            b.iter(|| {
                black_box(assign(&cfg, st, &jail, &req, &obs).unwrap());
                black_box(release(st, &jail, None).unwrap());
            })
        });
    }
    g.finish();
}

/// A jail.conf as administrators write it: a `*` block with variables and
/// hooks, then one block per jail with a hostname, path and address.
fn jail_conf(n: u32) -> String {
    let mut t = String::from(
        "exec.start = \"/bin/sh /etc/rc\";\nexec.stop = \"/bin/sh /etc/rc.shutdown\";\nmount.devfs;\n\
         $base = \"/usr/local/jails\";\npath = \"$base/$name\";\nexec.prestart += \"/usr/local/bin/jnet hook prestart $name\";\n",
    );
    for i in 0..n {
        let a = Ipv4Addr::from(0x0a00_0002 + i);
        t.push_str(&format!(
            "j{i} {{\n  host.hostname = \"j{i}.example.org\";\n  ip4.addr = \"lo1|{a}/32\";\n  persist;\n}}\n"
        ));
    }
    t
}

/// A jnet.toml with `n` jails, each with a profile, 4 ports and 4 exposures.
fn jnet_toml(n: u32) -> String {
    let mut t = String::from(CONFIG);
    for i in 0..n {
        let p = 1000 + (i % 50_000) as u16;
        t.push_str(&format!(
            "[jails.j{i}]\nprofile = \"web\"\npool = \"big\"\nports = [\"tcp/80\", \"tcp/443\", \"udp/53\", \"tcp/{p}\"]\n\
             expose = [\"tcp/{p}:80\", \"tcp/{q}:443\", \"udp/{p}:53\", \"tcp/{r}\"]\n",
            q = p.wrapping_add(10_000),
            r = p.wrapping_add(20_000),
        ));
    }
    t
}

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_10k");
    let conf = jail_conf(10_000);
    let loader = jnet::core::jailconf::MemLoader::new();
    assert_eq!(
        jnet::core::jailconf::parse("/etc/jail.conf", &conf, &loader)
            .unwrap()
            .jails()
            .len(),
        10_000
    );
    g.bench_function("jail.conf", |b| {
        b.iter(|| black_box(jnet::core::jailconf::parse("/etc/jail.conf", black_box(&conf), &loader).unwrap()))
    });
    let toml = jnet_toml(10_000);
    assert_eq!(parse_config("jnet.toml", &toml).unwrap().jails.len(), 10_000);
    g.bench_function("jnet.toml", |b| {
        b.iter(|| black_box(parse_config("jnet.toml", black_box(&toml)).unwrap()))
    });
    g.finish();
}

criterion_group!(
    benches,
    allocation,
    allocation_by_family,
    parse_serialise,
    fast_assign,
    parsing
);
criterion_main!(benches);
