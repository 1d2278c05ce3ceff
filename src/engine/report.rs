//! Reports over the inventory: jails, pool usage, assignments and drift
//! (inventory vs what the host shows). Pure functions of their inputs;
//! they return serialisable values the CLI prints as tables or JSON.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::core::alloc;
use crate::core::config::{Config, PoolFamily, PoolOf};
use crate::core::lifecycle::Phase;
use crate::core::model::AddressFamily;
use crate::core::names::JailName;
use crate::core::range::RangeSet;
use crate::engine::jails_conf::ConfAddrs;
use crate::os::IfAddr;
use crate::store::{Inventory, Mode};

/// An exact count of addresses. JSON has it as a number up to 2^53 (what
/// every JSON reader holds exactly), beyond as a string of decimal digits:
/// an IPv6 /64 pool holds 2^64 - 1 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Count(pub u128);

/// The largest count JSON gives as a number.
pub const EXACT_IN_JSON: u128 = 1 << 53;

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.0 <= EXACT_IN_JSON {
            s.serialize_u64(self.0 as u64)
        } else {
            s.serialize_str(&self.0.to_string())
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoolReport {
    pub name: String,
    /// `inet` or `inet6`.
    pub family: AddressFamily,
    pub network: String,
    pub interface: String,
    /// Addresses the pool can hand out.
    pub size: Count,
    /// Held by jails in the inventory.
    pub used: Count,
    /// Held outside the inventory (jail.conf, host interfaces).
    pub reserved: Count,
    pub free: Count,
    /// `used / size`, in percent.
    pub utilisation: f64,
    pub nat: bool,
    /// With shared pools: leases of this pool per host (`used` counts
    /// every host's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<PoolHost>>,
}

/// One host's leases in a shared pool.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoolHost {
    pub host: String,
    pub leases: u64,
}

/// One address a jail holds, with the pool and interface it came with
/// (`addresses[]` in the JSON reports; at most one per family).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AddressRow {
    pub address: IpAddr,
    pub family: AddressFamily,
    pub pool: Option<String>,
    pub interface: Option<String>,
}

impl AddressRow {
    pub fn new(address: IpAddr, pool: Option<String>, interface: Option<String>) -> AddressRow {
        AddressRow {
            family: AddressFamily::of(&address),
            address,
            pool,
            interface,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Assignment {
    pub jail: String,
    /// The host whose jail it is (this host's id, or another host of the
    /// fleet for a shared pool's lease).
    pub host: String,
    pub mode: Mode,
    pub address: Option<Ipv4Addr>,
    pub pool: Option<String>,
    pub interface: Option<String>,
    /// Every address the jail holds, IPv4 first; `address`, `pool` and
    /// `interface` above are its IPv4 one's, kept for compatibility.
    pub addresses: Vec<AddressRow>,
    /// `None` for another host's jail: runtime state stays on its host.
    pub phase: Option<Phase>,
    pub ports: Vec<String>,
    pub expose: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    /// A running jail's inventory address is not on its interface.
    Missing,
    /// A pool address is on a host interface but no jail holds it.
    Stray,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Drift {
    pub kind: DriftKind,
    pub address: IpAddr,
    pub interface: Option<String>,
    pub jail: Option<String>,
    pub pool: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InventoryReport {
    pub pools: Vec<PoolReport>,
    pub assignments: Vec<Assignment>,
    pub drift: Vec<Drift>,
    /// With shared pools: every host of the fleet and when it last wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<HostReport>>,
}

/// A host of the fleet as the shared store last saw it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostReport {
    pub host: String,
    /// Seconds since the epoch of its last write.
    pub last_seen: f64,
    /// Seconds between that and the store's clock now.
    pub age_secs: f64,
    /// Not seen for longer than `[store] stale_after_secs`; its leases
    /// stay until an operator reclaims them (`jnet release --host`).
    pub stale: bool,
    /// Leases it holds.
    pub leases: u64,
}

/// Declared ports of a jail from config + profile, as text.
pub type PortsOf<'a> = dyn Fn(&JailName) -> Vec<String> + 'a;

pub fn assignments(inv: &Inventory, ports: &PortsOf, host: &str) -> Vec<Assignment> {
    inv.jails
        .iter()
        .map(|(n, r)| Assignment {
            jail: n.to_string(),
            host: host.to_string(),
            mode: r.mode(),
            address: r.address(),
            pool: r.pool().map(|p| p.to_string()),
            interface: r.interface().map(|i| i.to_string()),
            addresses: r
                .leases()
                .map(|(a, p, i)| AddressRow::new(a, p.map(|p| p.to_string()), i.map(|i| i.to_string())))
                .collect(),
            phase: Some(r.phase),
            ports: ports(n),
            expose: r.exposes.iter().map(|e| e.to_string()).collect(),
        })
        .collect()
}

pub fn pools(config: &Config, inv: &Inventory, jail_conf: &ConfAddrs, host: &[IfAddr]) -> Vec<PoolReport> {
    pools_held(config, &inv.taken(), &inv.taken6(), jail_conf, host)
}

/// [`pools`] with `held` and `held6` the addresses jails hold (with shared
/// pools: every host's leases, not only this host's inventory).
pub fn pools_held(
    config: &Config,
    held: &RangeSet,
    held6: &RangeSet<u128>,
    jail_conf: &ConfAddrs,
    host: &[IfAddr],
) -> Vec<PoolReport> {
    let mut outside = RangeSet::new();
    let mut outside6 = RangeSet::<u128>::empty();
    for (_, _, a) in jail_conf.iter() {
        outside.insert_addr(a);
    }
    for (_, _, a) in jail_conf.iter6() {
        outside6.insert_addr(a);
    }
    for i in host {
        match i.address {
            IpAddr::V4(a) => outside.insert_addr(a),
            IpAddr::V6(a) => outside6.insert_addr(a),
        }
    }
    let v4 = config.pools.values().map(|p| pool_row(p, held, &outside));
    let v6 = config.pools6.values().map(|p| pool_row(p, held6, &outside6));
    v4.chain(v6).collect()
}

/// One pool's row: `held` by jails, `outside` the inventory.
fn pool_row<T: PoolFamily>(p: &PoolOf<T>, held: &RangeSet<T>, outside: &RangeSet<T>) -> PoolReport {
    let (size, used) = alloc::usage(p, held);
    let mut all = held.clone();
    for r in outside.iter_ranges() {
        all.insert(r);
    }
    let (_, taken) = alloc::usage(p, &all);
    PoolReport {
        name: p.name.to_string(),
        family: T::AF,
        network: p.network.to_string(),
        interface: p.interface.to_string(),
        size: Count(size),
        used: Count(used),
        reserved: Count(taken - used),
        free: Count(size - taken),
        utilisation: if size == 0 {
            0.0
        } else {
            (used as f64 * 10000.0 / size as f64).round() / 100.0
        },
        nat: p.nat,
        hosts: None,
    }
}

/// Inventory vs host. `observed` is every IPv4 address the host shows,
/// with the interface (or `jail:<name>` for one inside a jail's own stack).
pub fn drift(config: &Config, inv: &Inventory, observed: &[IfAddr]) -> Vec<Drift> {
    let mut on_host: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for i in observed {
        on_host.entry(i.address).or_insert(&i.interface);
    }
    let mut out = vec![];
    for (n, r) in &inv.jails {
        if r.phase != Phase::Running {
            continue;
        }
        for (a, pool, iface) in r.leases() {
            if on_host.contains_key(&a) {
                continue;
            }
            let iface = iface.map(|i| i.to_string());
            out.push(Drift {
                kind: DriftKind::Missing,
                address: a,
                interface: iface.clone(),
                jail: Some(n.to_string()),
                pool: pool.map(|p| p.to_string()),
                message: format!(
                    "jail {n} is running with {a}, but {a} is not configured on {}",
                    iface.as_deref().unwrap_or("any interface")
                ),
            });
        }
    }
    let held: std::collections::BTreeSet<IpAddr> = inv.jails.values().flat_map(|r| r.addresses()).collect();
    for (a, iface) in on_host {
        if held.contains(&a) {
            continue;
        }
        // A pool address the pool would hand out (not its gateway, not
        // excluded) that sits on an interface without a jail holding it.
        let pool = match a {
            IpAddr::V4(a) => config
                .pool_of(a)
                .filter(|p| p.assignable.contains(u32::from(a)))
                .map(|p| &p.name),
            IpAddr::V6(a) => config
                .pool6_of(a)
                .filter(|p| p.assignable.contains(u128::from(a)))
                .map(|p| &p.name),
        };
        let Some(pool) = pool else { continue };
        out.push(Drift {
            kind: DriftKind::Stray,
            address: a,
            interface: Some(iface.to_string()),
            jail: None,
            pool: Some(pool.to_string()),
            message: format!("{a} of pool {pool} is on interface {iface} but no jail holds it"),
        });
    }
    out
}

/// Declared ports of every jail (config entry merged with its profile), as
/// text, from the engine's one view of a jail.
pub fn declared_ports(
    config: &Config,
    inv: &Inventory,
    profiles: &crate::engine::sources::Profiles,
) -> crate::error::Result<BTreeMap<JailName, Vec<String>>> {
    Ok(ports_of_views(&crate::engine::jails::views(config, inv, profiles)?))
}

/// [`declared_ports`] from views already built.
pub fn ports_of_views(views: &BTreeMap<JailName, crate::engine::jails::JailView>) -> BTreeMap<JailName, Vec<String>> {
    views
        .iter()
        .map(|(n, v)| (n.clone(), v.settings.ports.iter().map(|p| p.to_string()).collect()))
        .collect()
}

/// Where an exposure of `jnet list` comes from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExposeOrigin {
    /// The jail's own `[jails.<name>] expose` in jnet.toml.
    Config,
    /// The jail's profile (`profiles/<name>.toml`).
    Profile,
    /// Added with `jnet expose` (kept in the inventory).
    Expose,
}

/// One exposure of a jail with its origin.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExposeRow {
    pub expose: String,
    pub origin: ExposeOrigin,
    /// `file:line` of the jail's entry (config), the profile's name
    /// (profile), or `jnet expose`.
    pub source: String,
}

impl ExposeRow {
    /// `tcp/80 (config)`, `tcp/443 (profile web)`, `tcp/8080 (expose)`.
    pub fn cell(&self) -> String {
        match self.origin {
            ExposeOrigin::Config => format!("{} (config)", self.expose),
            ExposeOrigin::Profile => format!("{} (profile {})", self.expose, self.source),
            ExposeOrigin::Expose => format!("{} (expose)", self.expose),
        }
    }
}

/// Every exposure of each jail (jnet.toml, its profile, `jnet expose`), in
/// the order the firewall rules take them, each with where it comes from.
/// An exposure declared in several places is listed once, with the first
/// of jail entry, profile, inventory that has it.
pub fn exposures(
    config: &Config,
    inv: &Inventory,
    profiles: &crate::engine::sources::Profiles,
) -> crate::error::Result<BTreeMap<JailName, Vec<ExposeRow>>> {
    Ok(exposures_of_views(
        config,
        &crate::engine::jails::views(config, inv, profiles)?,
    ))
}

/// [`exposures`] from views already built.
pub fn exposures_of_views(
    config: &Config,
    views: &BTreeMap<JailName, crate::engine::jails::JailView>,
) -> BTreeMap<JailName, Vec<ExposeRow>> {
    let mut out = BTreeMap::new();
    for (n, v) in views {
        let entry = config.jails.get(n);
        let own = entry.map(|j| j.settings.expose.as_slice()).unwrap_or(&[]);
        let profile = entry.and_then(|j| j.profile.clone());
        let rows = v
            .exposures
            .iter()
            .map(|e| {
                let (origin, source) = if own.contains(e) {
                    (
                        ExposeOrigin::Config,
                        v.location.clone().unwrap_or_else(|| config.file.clone()),
                    )
                } else if v.settings.expose.contains(e) {
                    (ExposeOrigin::Profile, profile.clone().unwrap_or_default())
                } else {
                    (ExposeOrigin::Expose, "jnet expose".to_string())
                };
                ExposeRow {
                    expose: e.to_string(),
                    origin,
                    source,
                }
            })
            .collect();
        out.insert(n.clone(), rows);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::parse_config;
    use crate::store::JailRecord;

    /// Counts up to 2^53 are JSON numbers, beyond decimal strings (a /64
    /// pool's 2^64 - 1); the table prints every count exactly.
    #[test]
    fn counts_beyond_2_pow_53_are_strings() {
        let j = |n: u128| serde_json::to_value(Count(n)).unwrap();
        assert_eq!(j(EXACT_IN_JSON), serde_json::json!(9007199254740992u64));
        assert_eq!(j(EXACT_IN_JSON + 1), serde_json::json!("9007199254740993"));
        assert_eq!(j((1 << 64) - 1), serde_json::json!("18446744073709551615"));
        assert_eq!(Count((1 << 64) - 1).to_string(), "18446744073709551615");
        let c = parse_config(
            "t",
            "[host]\nexternal_interface=\"em0\"\n[pools.v6]\nnetwork=\"fd00:4::/64\"\ninterface=\"em0\"\ngateway=\"fd00:4::1\"\n",
        )
        .unwrap();
        let p = &pools(&c, &Inventory::default(), &ConfAddrs::EMPTY, &[])[0];
        assert_eq!(
            (p.size, p.used, p.free),
            (Count((1 << 64) - 2), Count(0), Count((1 << 64) - 2))
        );
        let v = serde_json::to_value(p).unwrap();
        assert_eq!(v["size"], "18446744073709551614", "{v}");
        assert_eq!(v["used"], 0, "{v}");
    }

    #[test]
    fn pool_usage_and_drift() {
        let c = parse_config(
            "t",
            "[host]\nexternal_interface=\"em0\"\n[pools.lan]\nnetwork=\"192.0.2.0/28\"\ninterface=\"em0\"\ngateway=\"192.0.2.1\"\n",
        )
        .unwrap();
        let mut inv = Inventory::default();
        let mut a = JailRecord::dedicated("192.0.2.2".parse().unwrap(), None, None);
        a.phase = Phase::Running;
        inv.jails.insert(JailName::new("a").unwrap(), a);
        inv.jails.insert(
            JailName::new("b").unwrap(),
            JailRecord::dedicated("192.0.2.3".parse().unwrap(), None, None),
        );
        let host = vec![
            IfAddr {
                interface: "em0".into(),
                address: "192.0.2.1".parse().unwrap(),
                prefix: 28,
            },
            IfAddr {
                interface: "em0".into(),
                address: "192.0.2.9".parse().unwrap(),
                prefix: 32,
            },
        ];
        let p = &pools(&c, &inv, &ConfAddrs::EMPTY, &host)[0];
        assert_eq!(
            (p.size, p.used, p.reserved, p.free),
            (Count(13), Count(2), Count(1), Count(10))
        );
        assert_eq!(p.utilisation, 15.38);
        let d = drift(&c, &inv, &host);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(
            (d[0].kind.clone(), d[0].jail.as_deref()),
            (DriftKind::Missing, Some("a"))
        );
        assert_eq!(
            (d[1].kind.clone(), d[1].address.to_string()),
            (DriftKind::Stray, "192.0.2.9".into())
        );
    }

    /// IPv6: a running jail's missing address and a stray pool address are
    /// drift; the pool's gateway on the interface and a held address are
    /// not; the pool's row counts the IPv6 lease.
    #[test]
    fn ipv6_pool_usage_and_drift() {
        let c = parse_config(
            "t",
            "[host]\nexternal_interface=\"em0\"\n[pools.v6]\nnetwork=\"fd00:3::/120\"\ninterface=\"em0\"\ngateway=\"fd00:3::1\"\n",
        )
        .unwrap();
        let mut inv = Inventory::default();
        let mut a = JailRecord::dedicated6("fd00:3::2".parse().unwrap(), None, None);
        a.phase = Phase::Running;
        inv.jails.insert(JailName::new("a").unwrap(), a);
        inv.jails.insert(
            JailName::new("b").unwrap(),
            JailRecord::dedicated6("fd00:3::3".parse().unwrap(), None, None),
        );
        let on = |a: &str| IfAddr {
            interface: "em0".into(),
            address: a.parse().unwrap(),
            prefix: 120,
        };
        let host = vec![on("fd00:3::1"), on("fd00:3::3"), on("fd00:3::9")];
        let p = &pools(&c, &inv, &ConfAddrs::EMPTY, &host)[0];
        assert_eq!(
            (p.family, p.size, p.used, p.reserved),
            (AddressFamily::Inet6, Count(254), Count(2), Count(1))
        );
        let d = drift(&c, &inv, &host);
        let got: Vec<(DriftKind, String)> = d.iter().map(|x| (x.kind.clone(), x.address.to_string())).collect();
        assert_eq!(
            got,
            [
                (DriftKind::Missing, "fd00:3::2".to_string()),
                (DriftKind::Stray, "fd00:3::9".to_string())
            ]
        );
    }
}
