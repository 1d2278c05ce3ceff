//! `jnet pools --format prometheus`: the pool report, the inventory's jail
//! phases and the drift count as gauges in the Prometheus text exposition
//! format (version 0.0.4), for node_exporter's textfile collector.
//!
//! It only formats values the JSON reports also carry (`pools` and
//! `inventory --format json`), so the two can never disagree; it reads
//! nothing and serves nothing over HTTP.

use std::fmt::Write;

use crate::core::lifecycle::Phase;
use crate::engine::report::{Count, Drift, DriftKind, PoolReport};

/// Every phase, so a phase with no jail still exports 0 (a series that
/// disappears reads as "no data", not as zero, in most alert rules).
const PHASES: [Phase; 6] = [
    Phase::Defined,
    Phase::Starting,
    Phase::Running,
    Phase::Stopping,
    Phase::Stopped,
    Phase::Failed,
];

/// What the exposition is built from.
pub struct Input<'a> {
    pub pools: &'a [PoolReport],
    /// The phase of every jail in the inventory.
    pub phases: &'a [Phase],
    pub drift: &'a [Drift],
}

/// A label value as the exposition format wants it: backslash, double quote
/// and line feed escaped.
fn label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

fn header(o: &mut String, name: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} gauge");
}

/// A per-pool gauge: metric name, HELP text, and the value it reads.
// why exact integers: the text format takes any number, and a gauge of an
// IPv6 pool's size is beyond u64 (a /48 holds 2^80 addresses).
type Gauge = (&'static str, &'static str, fn(&PoolReport) -> Count);

/// The whole exposition, one family after the other, each with its HELP
/// and TYPE lines.
pub fn render(i: &Input) -> String {
    let mut o = String::new();
    let per_pool: [Gauge; 4] = [
        ("jnet_pool_size", "Addresses the pool can hand out.", |p| p.size),
        (
            "jnet_pool_used",
            "Pool addresses held by jails in the inventory.",
            |p| p.used,
        ),
        (
            "jnet_pool_reserved",
            "Pool addresses held outside the inventory (jail.conf, host interfaces).",
            |p| p.reserved,
        ),
        ("jnet_pool_free", "Pool addresses still free to hand out.", |p| p.free),
    ];
    for (name, help, value) in per_pool {
        header(&mut o, name, help);
        for p in i.pools {
            if name == "jnet_pool_size" {
                // why: network and interface only on one family, so the
                // others join on `pool` alone without duplicating labels.
                let _ = writeln!(
                    o,
                    "{name}{{pool=\"{}\",network=\"{}\",interface=\"{}\"}} {}",
                    label(&p.name),
                    label(&p.network),
                    label(&p.interface),
                    value(p)
                );
            } else {
                let _ = writeln!(o, "{name}{{pool=\"{}\"}} {}", label(&p.name), value(p));
            }
        }
    }
    header(&mut o, "jnet_jails", "Jails in the inventory, by lifecycle phase.");
    for ph in PHASES {
        let n = i.phases.iter().filter(|p| **p == ph).count();
        let _ = writeln!(o, "jnet_jails{{phase=\"{ph}\"}} {n}");
    }
    header(&mut o, "jnet_jails_running", "Jails the inventory shows running.");
    let running = i.phases.iter().filter(|p| **p == Phase::Running).count();
    let _ = writeln!(o, "jnet_jails_running {running}");
    header(
        &mut o,
        "jnet_drift",
        "Differences between the inventory and the host's addresses, by kind.",
    );
    for (kind, k) in [(DriftKind::Missing, "missing"), (DriftKind::Stray, "stray")] {
        let n = i.drift.iter().filter(|d| d.kind == kind).count();
        let _ = writeln!(o, "jnet_drift{{kind=\"{k}\"}} {n}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, size: u64, used: u64) -> PoolReport {
        PoolReport {
            name: name.into(),
            family: crate::core::model::AddressFamily::Inet,
            network: "192.0.2.0/24".into(),
            interface: "em0".into(),
            size: Count(size.into()),
            used: Count(used.into()),
            reserved: Count(1),
            free: Count((size - used - 1).into()),
            utilisation: 0.0,
            nat: false,
            hosts: None,
        }
    }

    /// Each line is a comment (`# HELP`/`# TYPE`) or `name{labels} value`
    /// with a name of [a-zA-Z_:][a-zA-Z0-9_:]* and a numeric value.
    fn sample_lines(text: &str) -> Vec<(String, f64)> {
        let mut out = vec![];
        for line in text.lines() {
            if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .enumerate()
                    .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())),
                "{line:?}"
            );
            if series.contains('{') {
                assert!(series.ends_with('}'), "{line:?}");
            }
            out.push((series.to_string(), value.parse().unwrap_or_else(|_| panic!("{line:?}"))));
        }
        out
    }

    #[test]
    fn pools_phases_and_drift_become_gauges() {
        let pools = [pool("lan", 191, 3), pool("dmz", 14, 0)];
        let phases = [Phase::Running, Phase::Running, Phase::Stopped];
        let text = render(&Input {
            pools: &pools,
            phases: &phases,
            drift: &[],
        });
        let s = sample_lines(&text);
        let get = |k: &str| s.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert_eq!(
            get("jnet_pool_size{pool=\"lan\",network=\"192.0.2.0/24\",interface=\"em0\"}"),
            Some(191.0)
        );
        assert_eq!(get("jnet_pool_used{pool=\"lan\"}"), Some(3.0));
        assert_eq!(get("jnet_pool_free{pool=\"lan\"}"), Some(187.0));
        assert_eq!(get("jnet_pool_free{pool=\"dmz\"}"), Some(13.0));
        assert_eq!(get("jnet_jails{phase=\"running\"}"), Some(2.0));
        assert_eq!(get("jnet_jails{phase=\"failed\"}"), Some(0.0));
        assert_eq!(get("jnet_jails_running"), Some(2.0));
        assert_eq!(get("jnet_drift{kind=\"missing\"}"), Some(0.0));
        // One TYPE line per family, before its samples.
        for fam in ["jnet_pool_size", "jnet_jails", "jnet_drift"] {
            assert_eq!(text.matches(&format!("# TYPE {fam} gauge\n")).count(), 1, "{fam}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
