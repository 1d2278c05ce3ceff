//! The backend conformance suite: the guarantees of [`Backend`] (module
//! docs of [`crate::store`]) as tests that run against any backend.
//!
//! `backend_conformance!(make)` expands to one `#[test]` per check, where
//! `make(dir, lock_timeout)` opens a backend whose state lives under the
//! scratch directory `dir` (a database backend may use it only to name its
//! schema); calling `make` twice with the same `dir` must open the same
//! inventory, as a second jnet process would. The checks are generic
//! functions here, so a backend can also call them one by one.
//!
//! It does not test a backend's own format or crash recovery (the file
//! store's journal tests do that) nor performance.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use super::{Backend, Inventory, JailRecord, PhaseChange, View};
use crate::core::lifecycle::Phase;
use crate::core::names::{IfName, JailName, PoolName};
use crate::core::range::{Ipv4Range, RangeSet};
use crate::error::{Error, ErrorKind, Result};

fn jn(s: &str) -> JailName {
    JailName::new(s).unwrap()
}

fn lease(a: Ipv4Addr) -> JailRecord {
    JailRecord::dedicated(
        a,
        Some(PoolName::new("lan").unwrap()),
        Some(IfName::new("em0").unwrap()),
    )
}

fn pool() -> RangeSet {
    let mut s = RangeSet::new();
    s.insert(Ipv4Range {
        start: u32::from(Ipv4Addr::new(10, 0, 0, 1)),
        end: u32::from(Ipv4Addr::new(10, 0, 0, 254)),
    });
    s
}

/// An assign as the engine does it: the jail's lease if it has one, else
/// the lowest free address, decided and set in one update.
fn assign(b: &dyn Backend, jail: &JailName) -> Result<Ipv4Addr> {
    b.update_view(|v: &mut dyn View| {
        if let Some(a) = v.record(jail)?.and_then(|r| r.address()) {
            return Ok(a);
        }
        let a = v
            .lowest_free(&pool(), &RangeSet::new())?
            .ok_or_else(|| Error::data("pool exhausted"))?;
        v.set(jail, Some(lease(a)))?;
        Ok(a)
    })
}

pub fn a_new_backend_is_empty<B: Backend>(make: impl Fn(&Path, Duration) -> B) {
    let d = tempfile::tempdir().unwrap();
    let b = make(d.path(), Duration::from_secs(5));
    assert_eq!(b.read().unwrap(), Inventory::default());
    let n = (&b as &dyn Backend).update(|inv| Ok(inv.jails.len())).unwrap();
    assert_eq!(n, 0);
}

pub fn updates_commit_whole_and_failed_ones_not_at_all<B: Backend>(make: impl Fn(&Path, Duration) -> B) {
    let d = tempfile::tempdir().unwrap();
    let b = make(d.path(), Duration::from_secs(5));
    let b: &dyn Backend = &b;
    b.update(|inv| {
        inv.jails.insert(jn("www"), lease(Ipv4Addr::new(10, 0, 0, 5)));
        inv.jails.insert(jn("db"), JailRecord::inherit());
        Ok(())
    })
    .unwrap();
    let before = b.read().unwrap();
    assert_eq!(before.jails.len(), 2);
    let r: Result<()> = b.update(|inv| {
        inv.jails.clear();
        inv.jails.insert(jn("x"), JailRecord::inherit());
        Err(Error::data("refused"))
    });
    assert_eq!(r.unwrap_err().to_string(), "refused");
    assert_eq!(b.read().unwrap(), before, "a failed update changes nothing");
    // The lease view sees the same state and its failures change nothing.
    let r: Result<()> = b.update_view(|v| {
        v.set(&jn("www"), None)?;
        Err(Error::data("refused"))
    });
    assert!(r.is_err());
    assert_eq!(b.read().unwrap(), before);
    let www = b.update_view(|v| v.record(&jn("www"))).unwrap();
    assert_eq!(www, before.jails.get(&jn("www")).cloned());
}

pub fn changes_survive_reopening<B: Backend>(make: impl Fn(&Path, Duration) -> B) {
    let d = tempfile::tempdir().unwrap();
    {
        let b = make(d.path(), Duration::from_secs(5));
        assign(&b, &jn("www")).unwrap();
        (&b as &dyn Backend)
            .update_view(|v| v.set(&jn("db"), Some(JailRecord::inherit())))
            .unwrap();
    }
    let b = make(d.path(), Duration::from_secs(5));
    let inv = b.read().unwrap();
    assert_eq!(inv.jails[&jn("www")].address(), Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(inv.jails[&jn("db")], JailRecord::inherit());
}

pub fn lease_view_answers_from_the_committed_state<B: Backend>(make: impl Fn(&Path, Duration) -> B) {
    let d = tempfile::tempdir().unwrap();
    let b = make(d.path(), Duration::from_secs(5));
    let b: &dyn Backend = &b;
    let (a1, a2, a3) = (
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 3),
    );
    b.update(|inv| {
        inv.jails.insert(jn("a"), lease(a1));
        inv.jails.insert(jn("c"), lease(a3));
        Ok(())
    })
    .unwrap();
    b.update_view(|v| {
        assert_eq!(v.holder_of(IpAddr::V4(a1), &jn("z"))?, Some(jn("a")));
        assert_eq!(
            v.holder_of(IpAddr::V4(a1), &jn("a"))?,
            None,
            "the asking jail is excepted"
        );
        assert_eq!(v.lowest_free(&pool(), &RangeSet::new())?, Some(a2));
        let mut also = RangeSet::new();
        also.insert_addr(a2);
        assert_eq!(
            v.lowest_free(&pool(), &also)?,
            Some(Ipv4Addr::new(10, 0, 0, 4)),
            "also_taken is skipped"
        );
        // A change is visible inside the same update.
        v.set(&jn("b"), Some(lease(a2)))?;
        assert_eq!(v.holder_of(IpAddr::V4(a2), &jn("z"))?, Some(jn("b")));
        v.set(&jn("a"), None)?;
        assert_eq!(v.lowest_free(&pool(), &RangeSet::new())?, Some(a1));
        Ok(())
    })
    .unwrap();
    let inv = b.read().unwrap();
    assert_eq!(inv.jails.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["b", "c"]);
}

pub fn concurrent_assigns_never_share_an_address<B: Backend + 'static>(
    make: impl Fn(&Path, Duration) -> B + Send + Sync + Copy + 'static,
) {
    let d = tempfile::tempdir().unwrap();
    // Created once so the threads race on updates, not on creation.
    make(d.path(), Duration::from_secs(30))
        .update_inventory(&mut |_| Ok(()))
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dir = d.path().to_path_buf();
            std::thread::spawn(move || {
                // One backend per thread, as separate jnet processes would
                // have.
                let b = make(&dir, Duration::from_secs(30));
                (0..15)
                    .map(|i| assign(&b, &jn(&format!("t{t}j{i}"))).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let got: Vec<Ipv4Addr> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let unique: BTreeSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "an address was handed out twice: {got:?}");
    let inv = make(d.path(), Duration::from_secs(5)).read().unwrap();
    assert_eq!(inv.jails.len(), 60);
    let held: BTreeSet<_> = inv.jails.values().filter_map(|r| r.address()).collect();
    assert_eq!(held.len(), 60);
    // Lowest free first: exactly the first 60 addresses.
    assert_eq!(held.iter().next_back(), Some(&Ipv4Addr::new(10, 0, 0, 60)));
}

pub fn jail_lock_is_exclusive_per_jail_and_ends_on_drop<B: Backend>(make: impl Fn(&Path, Duration) -> B) {
    let d = tempfile::tempdir().unwrap();
    let first = make(d.path(), Duration::from_secs(5));
    let other = make(d.path(), Duration::from_millis(100));
    let held = first.lock_jail(&jn("www")).unwrap();
    assert_eq!(held.jail(), &jn("www"));
    let e = other.lock_jail(&jn("www")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("jail www is busy: another jnet process is starting or stopping it"),
        "{msg}"
    );
    // Other jails and inventory updates are not blocked by it.
    let db = other.lock_jail(&jn("db")).unwrap();
    other.update_inventory(&mut |_| Ok(())).unwrap();
    drop(held);
    let again = other.lock_jail(&jn("www")).unwrap();
    drop((again, db));
}

pub fn phase_change_is_compare_and_set<B: Backend>(make: impl Fn(&Path, Duration) -> B) {
    let d = tempfile::tempdir().unwrap();
    let b = make(d.path(), Duration::from_secs(5));
    b.update_inventory(&mut |inv| {
        inv.jails.insert(jn("www"), JailRecord::inherit());
        Ok(())
    })
    .unwrap();
    let from = [Phase::Defined, Phase::Stopped];
    assert_eq!(
        b.set_phase_if(&jn("www"), &from, Phase::Starting, Some(7)).unwrap(),
        PhaseChange::Set { was: Phase::Defined }
    );
    assert_eq!(
        b.set_phase_if(&jn("www"), &from, Phase::Starting, None).unwrap(),
        PhaseChange::Refused {
            current: Phase::Starting
        },
        "a second start sees the first one's phase"
    );
    let r = &b.read().unwrap().jails[&jn("www")];
    assert_eq!(
        (r.phase, r.jid),
        (Phase::Starting, Some(7)),
        "the refusal changed nothing"
    );
    assert_eq!(
        b.set_phase_if(&jn("nope"), &from, Phase::Starting, None).unwrap(),
        PhaseChange::Missing
    );
    assert!(!b.read().unwrap().jails.contains_key(&jn("nope")));
}

/// A dual-stack record (both leases, per-family modes) and an IPv6-only one
/// survive a write and a reopening unchanged, and the lease view finds the
/// holder of an IPv6 address as of an IPv4 one.
pub fn dual_stack_records_persist<B: Backend>(make: impl Fn(&Path, Duration) -> B) {
    use crate::core::model::{FamilyLease, Lease};
    let d = tempfile::tempdir().unwrap();
    let v6: std::net::Ipv6Addr = "fd00::5".parse().unwrap();
    let mut both = lease(Ipv4Addr::new(10, 0, 0, 5));
    both.inet6 = FamilyLease::Dedicated(Lease {
        address: v6,
        pool: None,
        interface: Some(IfName::new("em0").unwrap()),
    });
    let mut only6 = JailRecord::dedicated6("fd00::6".parse().unwrap(), None, Some(IfName::new("em0").unwrap()));
    only6.inet = FamilyLease::Inherit;
    {
        let b = make(d.path(), Duration::from_secs(5));
        let b: &dyn Backend = &b;
        b.update_view(|v: &mut dyn View| {
            v.set(&jn("both"), Some(both.clone()))?;
            v.set(&jn("six"), Some(only6.clone()))
        })
        .unwrap();
        b.update_view(|v: &mut dyn View| {
            assert_eq!(v.holder_of(IpAddr::V6(v6), &jn("z"))?, Some(jn("both")));
            assert_eq!(v.holder_of(IpAddr::V6(v6), &jn("both"))?, None);
            assert_eq!(v.holder_of("fd00::7".parse().unwrap(), &jn("z"))?, None);
            assert_eq!(v.record(&jn("six"))?, Some(only6.clone()));
            Ok(())
        })
        .unwrap();
    }
    let b = make(d.path(), Duration::from_secs(5));
    let inv = b.read().unwrap();
    assert_eq!(inv.jails[&jn("both")], both);
    assert_eq!(inv.jails[&jn("six")], only6);
}

/// One `#[test]` per conformance check for the backend `make` opens.
macro_rules! backend_conformance {
    ($make:expr) => {
        #[test]
        fn a_new_backend_is_empty() {
            $crate::store::conformance::a_new_backend_is_empty($make);
        }
        #[test]
        fn updates_commit_whole_and_failed_ones_not_at_all() {
            $crate::store::conformance::updates_commit_whole_and_failed_ones_not_at_all($make);
        }
        #[test]
        fn changes_survive_reopening() {
            $crate::store::conformance::changes_survive_reopening($make);
        }
        #[test]
        fn lease_view_answers_from_the_committed_state() {
            $crate::store::conformance::lease_view_answers_from_the_committed_state($make);
        }
        #[test]
        fn concurrent_assigns_never_share_an_address() {
            $crate::store::conformance::concurrent_assigns_never_share_an_address($make);
        }
        #[test]
        fn jail_lock_is_exclusive_per_jail_and_ends_on_drop() {
            $crate::store::conformance::jail_lock_is_exclusive_per_jail_and_ends_on_drop($make);
        }
        #[test]
        fn dual_stack_records_persist() {
            $crate::store::conformance::dual_stack_records_persist($make);
        }
        #[test]
        fn phase_change_is_compare_and_set() {
            $crate::store::conformance::phase_change_is_compare_and_set($make);
        }
    };
}
