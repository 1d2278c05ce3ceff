//! Address bookkeeping: assign, release and import, each one locked
//! read-modify-write of the inventory.
//!
//! What counts as taken when handing out an address: another jail's
//! inventory address, an address set statically in jail.conf for another
//! jail, and any address already on a host interface. The caller observes
//! the host and reads jail.conf before calling; nothing here touches the
//! network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::core::alloc;
use crate::core::config::{Config, PoolFamily, PoolOf};
use crate::core::lifecycle::Phase;
use crate::core::model::{AddressFamily, FamilyLease, Lease};
use crate::core::names::{IfName, JailName, PoolName};
use crate::core::range::{RangeSet, Span};
use crate::engine::jails_conf::{ConfAddrs, ConfJail, Ip6Mode};
use crate::error::{Error, Result};
use crate::os::IfAddr;
use crate::store::{Backend, JailRecord, View};

/// What `jnet assign` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignRequest {
    /// A given address of either family; `interface` allows an address
    /// outside every pool.
    Address { address: IpAddr, interface: Option<IfName> },
    /// The lowest free address of a pool (of the pool's family).
    Pool(PoolName),
    /// Share the host's addresses: in both families, or in one.
    Inherit { family: Option<AddressFamily> },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already so; nothing written.
    Unchanged(JailRecord),
    /// Recorded; `previous` is the record it replaced.
    Changed {
        record: JailRecord,
        previous: Option<JailRecord>,
    },
}

/// Everything outside the inventory that can hold an address.
pub struct Observed<'a> {
    /// jail.conf's static addresses ([`ConfAddrs::from_jails`], or the
    /// facts cache's copy).
    pub jail_conf: &'a ConfAddrs,
    pub host: &'a [IfAddr],
}

impl Observed<'_> {
    /// Who else holds `a`, for messages: jail.conf or a host interface.
    fn holder(&self, jail: &JailName, a: IpAddr) -> Option<String> {
        let conf = match a {
            IpAddr::V4(a) => self
                .jail_conf
                .iter()
                .find(|&(name, _, x)| name != jail.as_str() && x == a)
                .map(|(name, location, _)| (name, location)),
            IpAddr::V6(a) => self
                .jail_conf
                .iter6()
                .find(|&(name, _, x)| name != jail.as_str() && x == a)
                .map(|(name, location, _)| (name, location)),
        };
        if let Some((name, location)) = conf {
            return Some(format!("set in jail.conf for jail {name} ({location})"));
        }
        self.host
            .iter()
            .find(|i| i.address == a)
            .map(|i| format!("configured on host interface {}", i.interface))
    }

    /// Adds addresses of `pool`'s network held outside the inventory to
    /// `set`: jail.conf statics of other jails (`conf`, of the pool's
    /// family) and host interface addresses.
    ///
    /// why sorted runs: one insertion per run of consecutive addresses, not
    /// per address; 10,000 jail.conf addresses one by one were half of an
    /// `assign` (issue 10).
    fn add_to<'c, T: PoolFamily>(
        &self,
        jail: &JailName,
        pool: &PoolOf<T>,
        set: &mut RangeSet<T>,
        conf: impl Iterator<Item = (&'c str, &'c str, T::Addr)>,
    ) {
        let mut addrs: Vec<T> = conf
            .filter(|&(name, _, a)| name != jail.as_str() && pool.contains(a))
            .map(|(_, _, a)| a.into())
            .collect();
        for i in self.host {
            if let Some(a) = T::of_ip(i.address).filter(|a| pool.contains(*a)) {
                addrs.push(a.into());
            }
        }
        addrs.sort_unstable();
        addrs.dedup();
        let mut run: Option<(T, T)> = None;
        for a in addrs {
            run = match run {
                Some((lo, hi)) if hi < T::MAX && hi.succ() == a => Some((lo, a)),
                Some((lo, hi)) => {
                    set.insert(Span { start: lo, end: hi });
                    Some((a, a))
                }
                None => Some((a, a)),
            };
        }
        if let Some((lo, hi)) = run {
            set.insert(Span { start: lo, end: hi });
        }
    }
}

/// The record `jail` gets from pool `pname` (of either family): `Ok` the
/// new record, `Err` the unchanged outcome when its address of the pool's
/// family is already inside the pool.
fn from_pool(
    config: &Config,
    inv: &mut dyn View,
    jail: &JailName,
    pname: &PoolName,
    current: Option<&JailRecord>,
    observed: &Observed,
) -> Result<std::result::Result<JailRecord, Outcome>> {
    let exhausted = |size: u128| Error::PoolExhausted {
        pool: pname.to_string(),
        size: u64::try_from(size).unwrap_or(u64::MAX),
    };
    // why "held by other jails" is enough below: `jail`'s own address of
    // the family is not inside this pool (else it returned unchanged), so
    // it is the same set as "held by anyone".
    if let Some(pool) = config.pools.get(pname) {
        if let Some(c) = current.filter(|c| c.address().is_some_and(|a| pool.contains(a))) {
            return Ok(Err(Outcome::Unchanged(c.clone())));
        }
        let mut also = RangeSet::new();
        observed.add_to(jail, pool, &mut also, observed.jail_conf.iter());
        let a = inv
            .lowest_free(&pool.assignable, &also)?
            .ok_or_else(|| exhausted(pool.assignable.size()))?;
        return Ok(Ok(with_lease(current, FamilyOf::Inet(pool_lease(a, pool)))));
    }
    if let Some(pool) = config.pools6.get(pname) {
        if let Some(c) = current.filter(|c| c.address6().is_some_and(|a| pool.contains(a))) {
            return Ok(Err(Outcome::Unchanged(c.clone())));
        }
        let mut also = RangeSet::<u128>::empty();
        observed.add_to(jail, pool, &mut also, observed.jail_conf.iter6());
        let a = inv
            .lowest_free6(&pool.assignable, &also)?
            .ok_or_else(|| exhausted(pool.assignable.size()))?;
        return Ok(Ok(with_lease(current, FamilyOf::Inet6(pool_lease(a, pool)))));
    }
    Err(Error::data(format!("no pool named {pname} in {}", config.file)))
}

/// The lease of `a` from `pool`.
fn pool_lease<T: PoolFamily>(a: T::Addr, pool: &PoolOf<T>) -> Lease<T::Addr> {
    Lease {
        address: a,
        pool: Some(pool.name.clone()),
        interface: Some(pool.interface.clone()),
    }
}

/// Why `a` cannot be `jail`'s address, or None: the checks `assign` and
/// `import` share (H6). Not a unicast host address; held outside the
/// inventory (another jail's jail.conf static, a host interface); inside a
/// pool, one the pool never hands out (network, broadcast, gateway,
/// excluded, outside its ranges). Other jails' inventory addresses are the
/// caller's check (it holds the locked inventory).
pub fn address_refusal(config: &Config, jail: &JailName, a: IpAddr, observed: &Observed) -> Option<String> {
    if !unicast_host(a) {
        return Some(format!("{a} is not a unicast host address"));
    }
    if let Some(h) = observed.holder(jail, a) {
        return Some(format!("{a} is {h}"));
    }
    match a {
        IpAddr::V4(a) => {
            let pool = config.pool_of(a)?;
            alloc::check(pool, &RangeSet::new(), a)
                .err()
                .map(|r| r.describe(a, pool))
        }
        IpAddr::V6(a) => {
            let pool = config.pool6_of(a)?;
            alloc::check(pool, &RangeSet::empty(), a)
                .err()
                .map(|r| r.describe(a, pool))
        }
    }
}

/// An address a jail can own: IPv4 other than 0/8, loopback, multicast and
/// broadcast; IPv6 other than unspecified, loopback, multicast, link-local
/// (fe80::/10, scoped to one link, which an alias or a veth cannot carry
/// across) and IPv4-mapped (::ffff:0:0/96, an IPv4 address in disguise,
/// and the key space the file store's index gives IPv4).
pub fn unicast_host(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback() || a.octets()[0] == 0)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some())
        }
    }
}

fn refuse_running(jail: &JailName, cur: &JailRecord) -> Result<()> {
    if matches!(cur.phase, Phase::Running | Phase::Starting | Phase::Stopping) {
        let held: Vec<String> = cur.addresses().map(|a| a.to_string()).collect();
        let what = if held.is_empty() {
            "inherit".to_string()
        } else {
            held.join(" and ")
        };
        return Err(Error::data(format!(
            "jail {jail} is {} with {what}; stop it before changing its address",
            cur.phase
        )));
    }
    Ok(())
}

/// `current` with family `f` set to `lease`. A jail jnet did not know has
/// the other family disabled; one whose other family inherited the host's
/// loses that too, as an own address in one family and the host's in the
/// other is what Linux cannot give (a namespace holds both or neither) and
/// was never what `assign` meant; an own address of the other family is
/// kept (`assign --pool lan6` adds IPv6 to an IPv4 jail).
fn with_lease(current: Option<&JailRecord>, lease: FamilyOf) -> JailRecord {
    let mut r = current.cloned().unwrap_or_else(|| JailRecord {
        inet: FamilyLease::Disable,
        inet6: FamilyLease::Disable,
        ..JailRecord::inherit()
    });
    match lease {
        FamilyOf::Inet(l) => {
            r.inet = FamilyLease::Dedicated(l);
            if r.inet6 == FamilyLease::Inherit {
                r.inet6 = FamilyLease::Disable;
            }
        }
        FamilyOf::Inet6(l) => {
            r.inet6 = FamilyLease::Dedicated(l);
            if r.inet == FamilyLease::Inherit {
                r.inet = FamilyLease::Disable;
            }
        }
    }
    r
}

/// A lease of either family.
enum FamilyOf {
    Inet(Lease<Ipv4Addr>),
    Inet6(Lease<Ipv6Addr>),
}

/// `current` inheriting the host's addresses in `family` (both when None).
fn with_inherit(current: Option<&JailRecord>, family: Option<AddressFamily>) -> JailRecord {
    let mut r = current.cloned().unwrap_or_else(|| JailRecord {
        inet: FamilyLease::Disable,
        inet6: FamilyLease::Disable,
        ..JailRecord::inherit()
    });
    if family != Some(AddressFamily::Inet6) {
        r.inet = FamilyLease::Inherit;
    }
    if family != Some(AddressFamily::Inet) {
        r.inet6 = FamilyLease::Inherit;
    }
    r
}

/// Records a new networking mode/address for `jail`.
///
/// Runs on the store's narrow [`View`] (journal append, no full parse); the
/// closure may run a second time on the fully parsed inventory when the
/// store's index turns out inconsistent, so it only reads its inputs.
pub fn assign(
    config: &Config,
    store: &dyn Backend,
    jail: &JailName,
    req: &AssignRequest,
    observed: &Observed,
) -> Result<Outcome> {
    store.update_view(|inv: &mut dyn View| {
        let current = inv.record(jail)?;
        let record =
            match req {
                AssignRequest::Inherit { family } => with_inherit(current.as_ref(), *family),
                AssignRequest::Pool(pname) => match from_pool(config, inv, jail, pname, current.as_ref(), observed)? {
                    Ok(r) => r,
                    Err(same) => return Ok(same),
                },
                AssignRequest::Address { address: a, interface } => {
                    let a = *a;
                    let (pool_name, pool_iface) = match a {
                        IpAddr::V4(a4) => config
                            .pool_of(a4)
                            .map(|p| (p.name.clone(), p.interface.clone()))
                            .unzip(),
                        IpAddr::V6(a6) => config
                            .pool6_of(a6)
                            .map(|p| (p.name.clone(), p.interface.clone()))
                            .unzip(),
                    };
                    let iface = interface.clone().or(pool_iface);
                    let lease = match a {
                        IpAddr::V4(address) => FamilyOf::Inet(Lease {
                            address,
                            pool: pool_name.clone(),
                            interface: iface.clone(),
                        }),
                        IpAddr::V6(address) => FamilyOf::Inet6(Lease {
                            address,
                            pool: pool_name.clone(),
                            interface: iface.clone(),
                        }),
                    };
                    let wanted = with_lease(current.as_ref(), lease);
                    if current.as_ref() == Some(&wanted) {
                        return Ok(Outcome::Unchanged(wanted));
                    }
                    if let Some(other) = inv.holder_of(a, jail)? {
                        return Err(Error::data(format!("{a} is already held by jail {other}")));
                    }
                    if let Some(why) = address_refusal(config, jail, a, observed) {
                        return Err(Error::data(why));
                    }
                    if pool_name.is_none() && interface.is_none() {
                        let pools: Vec<String> = match a {
                            IpAddr::V4(_) => config
                                .pools
                                .values()
                                .map(|p| format!("{} {}", p.name, p.network))
                                .collect(),
                            IpAddr::V6(_) => config
                                .pools6
                                .values()
                                .map(|p| format!("{} {}", p.name, p.network))
                                .collect(),
                        };
                        return Err(Error::data(format!(
                        "{a} is not inside any pool ({}); give --interface IF to assign an address outside the pools",
                        if pools.is_empty() { "none configured".to_string() } else { pools.join(", ") }
                    )));
                    }
                    wanted
                }
            };
        if current.as_ref() == Some(&record) {
            return Ok(Outcome::Unchanged(record));
        }
        if let Some(c) = &current {
            refuse_running(jail, c)?;
        }
        inv.set(jail, Some(record.clone()))?;
        Ok(Outcome::Changed {
            record,
            previous: current,
        })
    })
}

/// Forgets `jail`'s networking (every family, or the lease of one);
/// releasing a jail jnet does not know is a no-op (`Ok(None)`). Releasing
/// one family disables it; a record left with neither a lease nor an
/// inherited family goes, as after a whole release. Returns the record as
/// it was.
pub fn release(store: &dyn Backend, jail: &JailName, family: Option<AddressFamily>) -> Result<Option<JailRecord>> {
    store.update_view(|inv: &mut dyn View| {
        let Some(cur) = inv.record(jail)? else {
            return Ok(None);
        };
        let next = family.map(|f| {
            let mut r = cur.clone();
            r.release_family(f);
            r
        });
        let next = next.filter(|r| r.has_lease() || r.inet == FamilyLease::Inherit || r.inet6 == FamilyLease::Inherit);
        if next.as_ref() == Some(&cur) {
            return Ok(Some(cur));
        }
        if matches!(cur.phase, Phase::Running | Phase::Starting | Phase::Stopping) {
            return Err(Error::data(format!(
                "jail {jail} is {}; stop it before releasing its address",
                cur.phase
            )));
        }
        inv.set(jail, next)?;
        Ok(Some(cur))
    })
}

/// The record jail.conf gives `c`, per family as jail(8) reads `ip4`/`ip6`
/// (usr.sbin/jail/jail.8): inherit, the first address of `ip4.addr` /
/// `ip6.addr` (jnet gives a jail one address per family; more are logged),
/// or disabled. Without an `ip6` setting IPv6 follows IPv4's inherit, as
/// jnet starts an inherit jail with `ip6 = inherit`. None when neither
/// family inherits or has an address: nothing to record.
pub(crate) fn conf_record(config: &Config, name: &JailName, c: &ConfJail) -> Result<Option<JailRecord>> {
    let iface = |given: &Option<String>| -> Result<Option<IfName>> {
        match given.as_deref().or(c.interface.as_deref()) {
            Some(i) => Ok(Some(
                IfName::new(i).map_err(|e| Error::data(format!("{}: {e}", c.location)))?,
            )),
            None => Ok(None),
        }
    };
    if c.addrs.len() > 1 || c.addrs6.len() > 1 {
        tracing::warn!(jail = %name, "jail.conf lists several addresses of a family; jnet records the first of each");
    }
    let inet = if c.inherit {
        FamilyLease::Inherit
    } else if let Some((given, a)) = c.addrs.first() {
        let pool = config.pool_of(*a);
        FamilyLease::Dedicated(Lease {
            address: *a,
            pool: pool.map(|p| p.name.clone()),
            interface: iface(given)?.or_else(|| pool.map(|p| p.interface.clone())),
        })
    } else {
        FamilyLease::Disable
    };
    let inet6 = match (c.ip6, c.addrs6.first()) {
        (Some(Ip6Mode::Inherit), _) => FamilyLease::Inherit,
        (Some(Ip6Mode::Disable), _) => FamilyLease::Disable,
        (_, Some((given, a))) => {
            let pool = config.pool6_of(*a);
            FamilyLease::Dedicated(Lease {
                address: *a,
                pool: pool.map(|p| p.name.clone()),
                interface: iface(given)?.or_else(|| pool.map(|p| p.interface.clone())),
            })
        }
        (Some(Ip6Mode::New), None) => FamilyLease::Disable,
        (None, None) if c.inherit => FamilyLease::Inherit,
        (None, None) => FamilyLease::Disable,
    };
    if inet == FamilyLease::Disable && inet6 == FamilyLease::Disable {
        return Ok(None);
    }
    Ok(Some(JailRecord {
        inet,
        inet6,
        ..JailRecord::inherit()
    }))
}

/// One jail's result of `jnet import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Added(JailName, JailRecord),
    Updated(JailName, JailRecord),
    Unchanged(JailName),
    /// jail.conf gives no IPv4 setting jnet can record (ip4=disable, VNET
    /// without addresses, IPv6 only).
    Skipped(String, String),
}

/// Takes the jails of jail.conf and their ip4 settings into the inventory,
/// under the rules of `assign` (H6): a jail that is running, starting or
/// stopping is never changed, and an address `assign` would refuse
/// ([`address_refusal`]) is skipped with the reason. All or nothing
/// otherwise: a bad name or an address another jail holds in the inventory
/// fails the whole import.
pub fn import(config: &Config, store: &dyn Backend, jails: &[ConfJail], observed: &Observed) -> Result<Vec<Imported>> {
    store.update(|inv| {
        let mut out = vec![];
        'jails: for c in jails {
            let name = JailName::new(&c.name).map_err(|e| Error::data(format!("{}: {e}", c.location)))?;
            let record = match conf_record(config, &name, c)? {
                Some(r) => r,
                None => {
                    out.push(Imported::Skipped(
                        c.name.clone(),
                        format!(
                            "{}: no ip4.addr or ip6.addr and neither ip4 nor ip6 inherit",
                            c.location
                        ),
                    ));
                    continue;
                }
            };
            for a in record.addresses().collect::<Vec<_>>() {
                if let Some(why) = address_refusal(config, &name, a, observed) {
                    out.push(Imported::Skipped(c.name.clone(), format!("{}: {why}", c.location)));
                    continue 'jails;
                }
                if let Some((other, _)) = inv.jails.iter().find(|(n, r)| **n != name && r.holds(a)) {
                    return Err(Error::data(format!(
                        "{}: jail {name} has {a} in jail.conf, but the inventory gives it to jail {other}",
                        c.location
                    )));
                }
            }
            match inv.jails.get(&name) {
                Some(cur) if cur.inet == record.inet && cur.inet6 == record.inet6 => {
                    out.push(Imported::Unchanged(name));
                }
                Some(cur) if refuse_running(&name, cur).is_err() => {
                    out.push(Imported::Skipped(
                        c.name.clone(),
                        format!(
                            "{}: jail {name} is {}; stop it before importing a change",
                            c.location, cur.phase
                        ),
                    ));
                }
                Some(cur) => {
                    let mut r = record;
                    r.exposes = cur.exposes.clone();
                    r.phase = cur.phase;
                    r.jid = cur.jid;
                    inv.jails.insert(name.clone(), r.clone());
                    out.push(Imported::Updated(name, r));
                }
                None => {
                    inv.jails.insert(name.clone(), record.clone());
                    out.push(Imported::Added(name, record));
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::parse_config;
    use crate::store::Store;
    use std::time::Duration;

    fn setup() -> (Config, Store, tempfile::TempDir) {
        let c = parse_config(
            "t.toml",
            "[host]\nexternal_interface=\"em0\"\n[pools.lan]\nnetwork=\"192.0.2.0/29\"\ninterface=\"em0\"\ngateway=\"192.0.2.1\"\nexclude=[\"192.0.2.3\"]\n",
        )
        .unwrap();
        let d = tempfile::tempdir().unwrap();
        (c, Store::new(d.path(), Duration::from_secs(1)), d)
    }
    fn j(s: &str) -> JailName {
        JailName::new(s).unwrap()
    }
    fn pool() -> AssignRequest {
        AssignRequest::Pool(PoolName::new("lan").unwrap())
    }
    const NONE: Observed = Observed {
        jail_conf: &ConfAddrs::EMPTY,
        host: &[],
    };

    #[test]
    fn pool_allocation_skips_reserved_and_is_idempotent() {
        let (c, st, _d) = setup();
        let host = [IfAddr {
            interface: "em0".into(),
            address: "192.0.2.2".parse().unwrap(),
            prefix: 29,
        }];
        let conf = [ConfJail {
            name: "legacy".into(),
            location: "jail.conf:3".into(),
            inherit: false,
            addrs: vec![(None, "192.0.2.4".parse().unwrap())],
            interface: None,
            ..Default::default()
        }];
        let conf = ConfAddrs::from_jails(&conf);
        let obs = Observed {
            jail_conf: &conf,
            host: &host,
        };
        let got = |o: Outcome| match o {
            Outcome::Changed { record, .. } => record.address().unwrap().to_string(),
            Outcome::Unchanged(r) => format!("same {}", r.address().unwrap()),
        };
        assert_eq!(got(assign(&c, &st, &j("a"), &pool(), &obs).unwrap()), "192.0.2.5");
        assert_eq!(got(assign(&c, &st, &j("a"), &pool(), &obs).unwrap()), "same 192.0.2.5");
        assert_eq!(got(assign(&c, &st, &j("b"), &pool(), &obs).unwrap()), "192.0.2.6");
        let e = assign(&c, &st, &j("c"), &pool(), &obs).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Unavailable, "{e}");
        // Released addresses are handed out again, lowest first.
        release(&st, &j("a"), None).unwrap();
        assert_eq!(got(assign(&c, &st, &j("c"), &pool(), &obs).unwrap()), "192.0.2.5");
    }

    #[test]
    fn explicit_addresses_are_checked() {
        let (c, st, _d) = setup();
        let ip = |s: &str| AssignRequest::Address {
            address: s.parse().unwrap(),
            interface: None,
        };
        assign(&c, &st, &j("a"), &ip("192.0.2.4"), &NONE).unwrap();
        let cases = [
            ("192.0.2.4", "already held by jail a"),
            ("192.0.2.1", "gateway"),
            ("192.0.2.3", "excluded"),
            ("192.0.2.0", "network address"),
            ("192.0.2.7", "broadcast"),
            ("198.51.100.1", "not inside any pool"),
        ];
        for (a, needle) in cases {
            let e = assign(&c, &st, &j("b"), &ip(a), &NONE).unwrap_err();
            assert!(e.to_string().contains(needle), "{a}: {e}");
            assert_eq!(e.kind(), crate::error::ErrorKind::Invalid);
        }
        let out = assign(
            &c,
            &st,
            &j("b"),
            &AssignRequest::Address {
                address: "198.51.100.1".parse().unwrap(),
                interface: Some(IfName::new("lo1").unwrap()),
            },
            &NONE,
        )
        .unwrap();
        assert!(matches!(out, Outcome::Changed { .. }));
        assert_eq!(st.read().unwrap().jails.len(), 2);
    }

    /// Issue 9 B2: a jail holds one address per family; an address of the
    /// other family is added, one of the same family replaces; `release
    /// --family` drops one; `--inherit --family` changes one family.
    #[test]
    fn one_address_per_family() {
        let (c, st, _d) = setup();
        let ip = |s: &str, i: Option<&str>| AssignRequest::Address {
            address: s.parse().unwrap(),
            interface: i.map(|i| IfName::new(i).unwrap()),
        };
        let rec = |st: &Store| st.read().unwrap().jails[&j("a")].clone();
        assign(&c, &st, &j("a"), &pool(), &NONE).unwrap();
        assign(&c, &st, &j("a"), &ip("2001:db8::5", Some("em0")), &NONE).unwrap();
        let r = rec(&st);
        assert_eq!(
            r.address(),
            Some("192.0.2.2".parse().unwrap()),
            "the IPv4 address is kept"
        );
        assert_eq!(r.address6(), Some("2001:db8::5".parse().unwrap()));
        // The same family replaces.
        assign(&c, &st, &j("a"), &ip("2001:db8::6", Some("em0")), &NONE).unwrap();
        assert_eq!(rec(&st).address6(), Some("2001:db8::6".parse().unwrap()));
        assert_eq!(rec(&st).address(), Some("192.0.2.2".parse().unwrap()));
        // Idempotent.
        assert!(matches!(
            assign(&c, &st, &j("a"), &ip("2001:db8::6", Some("em0")), &NONE).unwrap(),
            Outcome::Unchanged(_)
        ));
        // Another jail cannot take it; an IPv6 address outside every pool
        // needs an interface, and must be a unicast host address.
        let e = assign(&c, &st, &j("b"), &ip("2001:db8::6", Some("em0")), &NONE).unwrap_err();
        assert!(e.to_string().contains("already held by jail a"), "{e}");
        let e = assign(&c, &st, &j("b"), &ip("2001:db8::9", None), &NONE).unwrap_err();
        assert!(e.to_string().contains("not inside any pool"), "{e}");
        for bad in ["fe80::1", "::1", "ff02::1", "::ffff:192.0.2.9", "::"] {
            let e = assign(&c, &st, &j("b"), &ip(bad, Some("em0")), &NONE).unwrap_err();
            assert!(e.to_string().contains("not a unicast host address"), "{bad}: {e}");
        }
        // An address on a host interface is refused in IPv6 too.
        let host = [IfAddr {
            interface: "em0".into(),
            address: "2001:db8::9".parse().unwrap(),
            prefix: 64,
        }];
        let obs = Observed {
            jail_conf: &ConfAddrs::EMPTY,
            host: &host,
        };
        let e = assign(&c, &st, &j("b"), &ip("2001:db8::9", Some("em0")), &obs).unwrap_err();
        assert!(e.to_string().contains("configured on host interface em0"), "{e}");
        // --inherit for one family keeps the other.
        assign(
            &c,
            &st,
            &j("a"),
            &AssignRequest::Inherit {
                family: Some(AddressFamily::Inet6),
            },
            &NONE,
        )
        .unwrap();
        let r = rec(&st);
        assert_eq!((r.inet.as_str(), r.inet6.as_str()), ("new", "inherit"));
        assign(&c, &st, &j("a"), &ip("2001:db8::6", Some("em0")), &NONE).unwrap();
        // release --family drops one lease and disables the family.
        let was = release(&st, &j("a"), Some(AddressFamily::Inet)).unwrap().unwrap();
        assert_eq!(was.address(), Some("192.0.2.2".parse().unwrap()));
        let r = rec(&st);
        assert_eq!(
            (r.inet.as_str(), r.address6()),
            ("disable", Some("2001:db8::6".parse().unwrap()))
        );
        // Its IPv4 address is free again.
        assign(&c, &st, &j("b"), &pool(), &NONE).unwrap();
        assert_eq!(
            st.read().unwrap().jails[&j("b")].address(),
            Some("192.0.2.2".parse().unwrap())
        );
        // Releasing the last lease forgets the jail, as a whole release.
        release(&st, &j("a"), Some(AddressFamily::Inet6)).unwrap();
        assert!(!st.read().unwrap().jails.contains_key(&j("a")));
        // --inherit without --family: both families.
        assign(&c, &st, &j("b"), &ip("2001:db8::7", Some("em0")), &NONE).unwrap();
        assign(&c, &st, &j("b"), &AssignRequest::Inherit { family: None }, &NONE).unwrap();
        assert_eq!(st.read().unwrap().jails[&j("b")], JailRecord::inherit());
    }

    #[test]
    fn running_jails_keep_their_address() {
        let (c, st, _d) = setup();
        assign(&c, &st, &j("a"), &pool(), &NONE).unwrap();
        st.update(|inv| {
            inv.jails.get_mut(&j("a")).unwrap().phase = Phase::Running;
            Ok(())
        })
        .unwrap();
        let e = assign(&c, &st, &j("a"), &AssignRequest::Inherit { family: None }, &NONE).unwrap_err();
        assert!(e.to_string().contains("stop it before"), "{e}");
        assert!(release(&st, &j("a"), None).is_err());
        assert_eq!(release(&st, &j("zz"), None).unwrap(), None);
    }

    /// Issue 9 B4: jail.conf's `ip6` and `ip6.addr` are imported per family.
    #[test]
    fn import_reads_both_families() {
        let (c, st, _d) = setup();
        let jail = |name: &str, addrs: &[&str], ip6: Option<Ip6Mode>, addrs6: &[&str]| ConfJail {
            name: name.into(),
            location: format!("jail.conf:{name}"),
            addrs: addrs
                .iter()
                .map(|a| (Some("em0".to_string()), a.parse().unwrap()))
                .collect(),
            ip6,
            addrs6: addrs6
                .iter()
                .map(|a| (Some("em0".to_string()), a.parse().unwrap()))
                .collect(),
            ..Default::default()
        };
        let conf = vec![
            jail(
                "dual",
                &["192.0.2.2"],
                Some(Ip6Mode::New),
                &["2001:db8::2", "2001:db8::22"],
            ),
            jail("mixed", &["192.0.2.4"], Some(Ip6Mode::Inherit), &[]),
            jail("six", &[], Some(Ip6Mode::New), &["2001:db8::6"]),
            jail("none", &[], Some(Ip6Mode::Disable), &[]),
            jail("bad6", &[], Some(Ip6Mode::New), &["fe80::1"]),
        ];
        let r = import(&c, &st, &conf, &NONE).unwrap();
        let skipped: Vec<&str> = r
            .iter()
            .filter_map(|x| match x {
                Imported::Skipped(n, _) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(skipped, ["none", "bad6"], "{r:?}");
        let inv = st.read().unwrap();
        let modes = |n: &str| {
            let r = &inv.jails[&j(n)];
            (r.inet.as_str(), r.inet6.as_str(), r.address6().map(|a| a.to_string()))
        };
        assert_eq!(
            modes("dual"),
            ("new", "new", Some("2001:db8::2".into())),
            "the first of each family"
        );
        assert_eq!(modes("mixed"), ("new", "inherit", None));
        assert_eq!(modes("six"), ("disable", "new", Some("2001:db8::6".into())));
        assert!(matches!(
            import(&c, &st, &conf, &NONE).unwrap()[0],
            Imported::Unchanged(_)
        ));
    }

    #[test]
    fn import_is_idempotent_and_all_or_nothing() {
        let (c, st, _d) = setup();
        let conf = vec![
            ConfJail {
                name: "www".into(),
                location: "jail.conf:1".into(),
                inherit: false,
                addrs: vec![(Some("em0".into()), "192.0.2.2".parse().unwrap())],
                interface: None,
                ..Default::default()
            },
            ConfJail {
                name: "ghost".into(),
                location: "jail.conf:5".into(),
                inherit: true,
                addrs: vec![],
                interface: None,
                ..Default::default()
            },
        ];
        let r = import(&c, &st, &conf, &NONE).unwrap();
        assert!(matches!(r[0], Imported::Added(..)) && matches!(r[1], Imported::Added(..)));
        let r = import(&c, &st, &conf, &NONE).unwrap();
        assert!(r.iter().all(|x| matches!(x, Imported::Unchanged(_))));
        let before = std::fs::read_to_string(st.path()).unwrap();
        let bad = vec![
            ConfJail {
                name: "new".into(),
                location: "jail.conf:9".into(),
                inherit: true,
                addrs: vec![],
                interface: None,
                ..Default::default()
            },
            ConfJail {
                name: "x.y".into(),
                location: "jail.conf:12".into(),
                inherit: true,
                addrs: vec![],
                interface: None,
                ..Default::default()
            },
        ];
        let e = import(&c, &st, &bad, &NONE).unwrap_err();
        assert!(e.to_string().starts_with("jail.conf:12: invalid jail name"), "{e}");
        assert_eq!(std::fs::read_to_string(st.path()).unwrap(), before);
    }

    fn conf(name: &str, addr: &str) -> ConfJail {
        ConfJail {
            name: name.into(),
            location: format!("jail.conf:{}", name.len()),
            addrs: vec![(None, addr.parse().unwrap())],
            ..Default::default()
        }
    }

    /// H6 input B: every address `assign` refuses is skipped by `import`
    /// with its reason, and nothing is recorded for it.
    #[test]
    fn import_skips_what_assign_refuses() {
        let (c, st, _d) = setup();
        let host = vec![IfAddr {
            interface: "lo".into(),
            address: "192.0.2.4".parse().unwrap(),
            prefix: 8,
        }];
        let observed = Observed {
            jail_conf: &ConfAddrs::EMPTY,
            host: &host,
        };
        let cases = [
            ("gw", "192.0.2.1", "gateway"),
            ("bcast", "192.0.2.7", "broadcast"),
            ("excl", "192.0.2.3", "excluded"),
            ("onhost", "192.0.2.4", "host interface lo"),
            ("mcast", "224.0.0.5", "not a unicast"),
            ("zero", "0.0.0.0", "not a unicast"),
            ("lo", "127.0.0.1", "not a unicast"),
        ];
        let confs: Vec<ConfJail> = cases.iter().map(|(n, a, _)| conf(n, a)).collect();
        let r = import(&c, &st, &confs, &observed).unwrap();
        for ((n, a, why), got) in cases.iter().zip(&r) {
            match got {
                Imported::Skipped(name, reason) => {
                    assert_eq!(name, n);
                    assert!(reason.contains(why), "{n} {a}: {reason}");
                }
                other => panic!("{n} {a}: {other:?}"),
            }
        }
        assert!(st.read().unwrap().jails.is_empty());
        // And assign refuses the same addresses.
        for (n, a, _) in &cases[..4] {
            let req = AssignRequest::Address {
                address: a.parse().unwrap(),
                interface: None,
            };
            assert!(assign(&c, &st, &j(n), &req, &observed).is_err(), "{a}");
        }
    }

    /// H6 input A: a running jail is not changed by import.
    #[test]
    fn import_never_changes_a_running_jail() {
        let (c, st, _d) = setup();
        let req = AssignRequest::Address {
            address: "192.0.2.6".parse().unwrap(),
            interface: None,
        };
        assign(&c, &st, &j("legacy"), &req, &NONE).unwrap();
        st.update(|inv| {
            inv.jails.get_mut(&j("legacy")).unwrap().phase = Phase::Running;
            Ok(())
        })
        .unwrap();
        let before = st.read().unwrap();
        let r = import(&c, &st, &[conf("legacy", "192.0.2.2")], &NONE).unwrap();
        assert!(
            matches!(&r[0], Imported::Skipped(_, why) if why.contains("is running")),
            "{r:?}"
        );
        assert_eq!(st.read().unwrap(), before);
    }
}
