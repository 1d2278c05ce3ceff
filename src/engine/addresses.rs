//! Address bookkeeping: assign, release and import, each one locked
//! read-modify-write of the inventory.
//!
//! What counts as taken when handing out an address: another jail's
//! inventory address, an address set statically in jail.conf for another
//! jail, and any address already on a host interface. The caller observes
//! the host and reads jail.conf before calling; nothing here touches the
//! network.

use std::net::{IpAddr, Ipv4Addr};

use crate::core::alloc;
use crate::core::config::{Config, Pool};
use crate::core::lifecycle::Phase;
use crate::core::names::{IfName, JailName, PoolName};
use crate::core::range::{Ipv4Range, RangeSet};
use crate::engine::jails_conf::{ConfAddrs, ConfJail};
use crate::error::{Error, Result};
use crate::os::IfAddr;
use crate::store::{Backend, JailRecord, Mode, View};

/// What `jnet assign` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignRequest {
    /// A given address; `interface` allows an address outside every pool.
    Address {
        address: Ipv4Addr,
        interface: Option<IfName>,
    },
    /// The lowest free address of a pool.
    Pool(PoolName),
    /// Share the host's addresses.
    Inherit,
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
    fn holder(&self, jail: &JailName, a: Ipv4Addr) -> Option<String> {
        if let Some((name, location, _)) = self
            .jail_conf
            .iter()
            .find(|&(name, _, x)| name != jail.as_str() && x == a)
        {
            return Some(format!("set in jail.conf for jail {name} ({location})"));
        }
        self.host
            .iter()
            .find(|i| i.address == IpAddr::V4(a))
            .map(|i| format!("configured on host interface {}", i.interface))
    }

    /// Adds addresses of `net`'s range held outside the inventory to `set`.
    ///
    /// why sorted runs: one insertion per run of consecutive addresses, not
    /// per address; 10,000 jail.conf addresses one by one were half of an
    /// `assign` (issue 10).
    fn add_to(&self, jail: &JailName, pool: &Pool, set: &mut RangeSet) {
        let mut addrs: Vec<u32> = self
            .jail_conf
            .iter()
            .filter(|&(name, _, a)| name != jail.as_str() && pool.contains(a))
            .map(|(_, _, a)| u32::from(a))
            .collect();
        for i in self.host {
            if let IpAddr::V4(a) = i.address {
                if pool.contains(a) {
                    addrs.push(u32::from(a));
                }
            }
        }
        addrs.sort_unstable();
        addrs.dedup();
        let mut run: Option<(u32, u32)> = None;
        for a in addrs {
            run = match run {
                Some((lo, hi)) if hi.checked_add(1) == Some(a) => Some((lo, a)),
                Some((lo, hi)) => {
                    set.insert(Ipv4Range { start: lo, end: hi });
                    Some((a, a))
                }
                None => Some((a, a)),
            };
        }
        if let Some((lo, hi)) = run {
            set.insert(Ipv4Range { start: lo, end: hi });
        }
    }
}

/// Why `a` cannot be `jail`'s address, or None: the checks `assign` and
/// `import` share (H6). Not a unicast host address; held outside the
/// inventory (another jail's jail.conf static, a host interface); inside a
/// pool, one the pool never hands out (network, broadcast, gateway,
/// excluded, outside its ranges). Other jails' inventory addresses are the
/// caller's check (it holds the locked inventory).
pub fn address_refusal(config: &Config, jail: &JailName, a: Ipv4Addr, observed: &Observed) -> Option<String> {
    if a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback() || a.octets()[0] == 0 {
        return Some(format!("{a} is not a unicast host address"));
    }
    if let Some(h) = observed.holder(jail, a) {
        return Some(format!("{a} is {h}"));
    }
    let pool = config.pool_of(a)?;
    alloc::check(pool, &RangeSet::new(), a)
        .err()
        .map(|r| r.describe(a, pool))
}

fn refuse_running(jail: &JailName, cur: &JailRecord) -> Result<()> {
    if matches!(cur.phase, Phase::Running | Phase::Starting | Phase::Stopping) {
        let what = cur.address.map_or_else(|| "inherit".to_string(), |a| a.to_string());
        return Err(Error::data(format!(
            "jail {jail} is {} with {what}; stop it before changing its address",
            cur.phase
        )));
    }
    Ok(())
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
        let keep = |mut r: JailRecord| {
            if let Some(c) = &current {
                r.exposes = c.exposes.clone();
                r.phase = c.phase;
                r.jid = c.jid;
            }
            r
        };
        let record = match req {
            AssignRequest::Inherit => {
                if let Some(c) = current.as_ref().filter(|c| c.mode == Mode::Inherit) {
                    return Ok(Outcome::Unchanged(c.clone()));
                }
                keep(JailRecord::inherit())
            }
            AssignRequest::Pool(pname) => {
                let pool = config
                    .pools
                    .get(pname)
                    .ok_or_else(|| Error::data(format!("no pool named {pname} in {}", config.file)))?;
                if let Some(c) = current.as_ref().filter(|c| c.address.is_some_and(|a| pool.contains(a))) {
                    return Ok(Outcome::Unchanged(c.clone()));
                }
                // why: `jail`'s own address is not inside this pool (else it
                // returned above), so "held by other jails" and "held by
                // anyone" are the same set here.
                let mut also = RangeSet::new();
                observed.add_to(jail, pool, &mut also);
                let a = inv.lowest_free(&pool.assignable, &also)?.ok_or_else(|| Error::PoolExhausted {
                    pool: pname.to_string(),
                    size: pool.assignable.count(),
                })?;
                keep(JailRecord::dedicated(a, Some(pname.clone()), Some(pool.interface.clone())))
            }
            AssignRequest::Address { address: a, interface } => {
                let a = *a;
                let pool = config.pool_of(a);
                let iface = interface.clone().or_else(|| pool.map(|p| p.interface.clone()));
                if let Some(c) = current.as_ref().filter(|c| c.address == Some(a) && c.interface == iface) {
                    return Ok(Outcome::Unchanged(c.clone()));
                }
                if let Some(other) = inv.holder_of(a, jail)? {
                    return Err(Error::data(format!("{a} is already held by jail {other}")));
                }
                if let Some(why) = address_refusal(config, jail, a, observed) {
                    return Err(Error::data(why));
                }
                match pool {
                    Some(_) => {}
                    None if interface.is_none() => {
                        let pools: Vec<String> =
                            config.pools.values().map(|p| format!("{} {}", p.name, p.network)).collect();
                        return Err(Error::data(format!(
                            "{a} is not inside any pool ({}); give --interface IF to assign an address outside the pools",
                            if pools.is_empty() { "none configured".to_string() } else { pools.join(", ") }
                        )));
                    }
                    None => {}
                }
                keep(JailRecord::dedicated(a, pool.map(|p| p.name.clone()), iface))
            }
        };
        if let Some(c) = &current {
            refuse_running(jail, c)?;
        }
        inv.set(jail, Some(record.clone()))?;
        Ok(Outcome::Changed { record, previous: current })
    })
}

/// Forgets `jail`'s networking; releasing a jail jnet does not know is a
/// no-op (`Ok(None)`).
pub fn release(store: &dyn Backend, jail: &JailName) -> Result<Option<JailRecord>> {
    store.update_view(|inv: &mut dyn View| {
        let Some(cur) = inv.record(jail)? else {
            return Ok(None);
        };
        if matches!(cur.phase, Phase::Running | Phase::Starting | Phase::Stopping) {
            return Err(Error::data(format!(
                "jail {jail} is {}; stop it before releasing its address",
                cur.phase
            )));
        }
        inv.set(jail, None)?;
        Ok(Some(cur))
    })
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
        for c in jails {
            let name = JailName::new(&c.name).map_err(|e| Error::data(format!("{}: {e}", c.location)))?;
            let record = if c.inherit {
                JailRecord::inherit()
            } else if let Some((iface, a)) = c.addrs.first() {
                let iface = iface.as_deref().or(c.interface.as_deref());
                let iface = match iface {
                    Some(i) => Some(IfName::new(i).map_err(|e| Error::data(format!("{}: {e}", c.location)))?),
                    None => config.pool_of(*a).map(|p| p.interface.clone()),
                };
                if c.addrs.len() > 1 {
                    tracing::warn!(jail = %name, "jail.conf lists {} addresses; jnet records the first, {a}", c.addrs.len());
                }
                JailRecord::dedicated(*a, config.pool_of(*a).map(|p| p.name.clone()), iface)
            } else {
                out.push(Imported::Skipped(c.name.clone(), format!("{}: no ip4 address and not ip4=inherit", c.location)));
                continue;
            };
            if let Some(a) = record.address {
                if let Some(why) = address_refusal(config, &name, a, observed) {
                    out.push(Imported::Skipped(c.name.clone(), format!("{}: {why}", c.location)));
                    continue;
                }
                if let Some((other, _)) = inv.jails.iter().find(|(n, r)| **n != name && r.address == Some(a)) {
                    return Err(Error::data(format!(
                        "{}: jail {name} has {a} in jail.conf, but the inventory gives it to jail {other}",
                        c.location
                    )));
                }
            }
            match inv.jails.get(&name) {
                Some(cur) if cur.mode == record.mode && cur.address == record.address && cur.interface == record.interface => {
                    out.push(Imported::Unchanged(name));
                }
                Some(cur) if refuse_running(&name, cur).is_err() => {
                    out.push(Imported::Skipped(
                        c.name.clone(),
                        format!("{}: jail {name} is {}; stop it before importing a change", c.location, cur.phase),
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
            Outcome::Changed { record, .. } => record.address.unwrap().to_string(),
            Outcome::Unchanged(r) => format!("same {}", r.address.unwrap()),
        };
        assert_eq!(got(assign(&c, &st, &j("a"), &pool(), &obs).unwrap()), "192.0.2.5");
        assert_eq!(got(assign(&c, &st, &j("a"), &pool(), &obs).unwrap()), "same 192.0.2.5");
        assert_eq!(got(assign(&c, &st, &j("b"), &pool(), &obs).unwrap()), "192.0.2.6");
        let e = assign(&c, &st, &j("c"), &pool(), &obs).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Unavailable, "{e}");
        // Released addresses are handed out again, lowest first.
        release(&st, &j("a")).unwrap();
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

    #[test]
    fn running_jails_keep_their_address() {
        let (c, st, _d) = setup();
        assign(&c, &st, &j("a"), &pool(), &NONE).unwrap();
        st.update(|inv| {
            inv.jails.get_mut(&j("a")).unwrap().phase = Phase::Running;
            Ok(())
        })
        .unwrap();
        let e = assign(&c, &st, &j("a"), &AssignRequest::Inherit, &NONE).unwrap_err();
        assert!(e.to_string().contains("stop it before"), "{e}");
        assert!(release(&st, &j("a")).is_err());
        assert_eq!(release(&st, &j("zz")).unwrap(), None);
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
