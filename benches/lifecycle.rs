//! Lifecycle overhead against the recording fake host: the pure planner,
//! and a whole start + stop (observe, plan, apply, and the inventory phase
//! writes — each an fsynced atomic replace in a temp directory).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jnet::core::names::{IfName, JailName};
use jnet::core::plan::{plan_start, plan_stop, Desired, ExecHooks, Observed};
use jnet::engine::fake_host::FakeHost;
use jnet::engine::lifecycle::{Lifecycle, PortChecker};
use jnet::os::{JailNetwork, JailSpec};
use jnet::store::{JailRecord, Store};

struct Free;
impl PortChecker for Free {
    fn check(&self, _: &JailName) -> jnet::Result<()> {
        Ok(())
    }
}

fn desired() -> Desired {
    Desired {
        spec: JailSpec {
            name: JailName::new("www").unwrap(),
            path: PathBuf::from("/"),
            hostname: None,
            network: JailNetwork::inet_only(jnet::os::OwnAddress {
                address: "10.0.0.5".parse().unwrap(),
                prefix: 24,
                interface: IfName::new("jnbr0").unwrap(),
                gateway: Some("10.0.0.1".parse().unwrap()),
            }),
            params: vec![],
        },
        exec: ExecHooks {
            start: vec!["/bin/sh /etc/rc".into()],
            stop: vec!["/bin/sh /etc/rc.shutdown".into()],
            ..Default::default()
        },
        rules: Some(
            (0..4)
                .map(|i| {
                    format!(
                        "rdr pass on em0 inet proto tcp from any to (em0) port {} -> 10.0.0.5 port 80\n",
                        8080 + i
                    )
                })
                .collect(),
        ),
        port_check: true,
        anchor_root: "jnet".into(),
        stop_timeout: jnet::core::plan::DEFAULT_STOP_TIMEOUT,
        unsupported: vec![],
        persist: false,
    }
}

fn bench(c: &mut Criterion) {
    let d = desired();
    c.bench_function("plan start+stop (pure)", |b| {
        b.iter(|| {
            let s = plan_start(black_box(&d), black_box(&Observed::NOTHING));
            let t = plan_stop(black_box(&d), black_box(&Observed::NOTHING));
            (s.steps.len(), t.steps.len())
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path(), Duration::from_secs(5));
    store
        .update(|inv| {
            inv.jails.insert(
                d.spec.name.clone(),
                JailRecord::dedicated("10.0.0.5".parse().unwrap(), None, None),
            );
            Ok(())
        })
        .unwrap();
    let host = FakeHost::new();
    let engine = Lifecycle::new(&host, &store, &Free);
    c.bench_function(
        "engine start+stop, fake host, 4 exposures (incl. inventory writes)",
        |b| {
            b.iter(|| {
                engine.start(&d.spec.name, &d).unwrap();
                engine.stop(&d.spec.name, &d).unwrap();
                host.take_calls();
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
