//! Address range arithmetic for either family: inclusive ranges
//! ([`Span`]) and a set of disjoint ranges kept in a `BTreeMap`
//! ([`RangeSet`]), so membership, insertion, removal and "first address not
//! in the set at or after x" cost O(log n) in the number of stored ranges
//! (consecutive addresses merge into one range), whatever the size of the
//! address space.
//!
//! Addresses are handled as unsigned integers in host order ([`Unit`]):
//! `u32` for IPv4, `u128` for IPv6; [`Ipv4Range`] and [`Ipv6Range`] name the
//! two spans. Sizes are `u128` ([`RangeSet::size`]; the IPv4 forms keep
//! `u64` counts). No I/O, no allocation policy.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address range {value:?}: {reason}")]
pub struct RangeError {
    pub value: String,
    pub reason: String,
}

/// An address family's addresses as an integer: ordered, with a largest
/// value, successor and predecessor, and the distance between two values.
pub trait Unit: Copy + Ord + Hash + fmt::Debug + Default + Send + Sync + 'static {
    /// The address type this integer stands for (`Ipv4Addr`, `Ipv6Addr`).
    type Addr: Copy + fmt::Display + FromStr + Into<Self> + From<Self>;
    /// The family's name in messages ("IPv4", "IPv6").
    const FAMILY: &'static str;
    const MIN: Self;
    const MAX: Self;
    /// `self + 1`; only called below `MAX`.
    fn succ(self) -> Self;
    /// `self - 1`; only called above `MIN`.
    fn pred(self) -> Self;
    /// `hi - lo` for `lo <= hi`, widened.
    fn diff(lo: Self, hi: Self) -> u128;
    /// `self + d`; only called when the sum is at most `MAX`.
    fn add(self, d: u128) -> Self;
}

// why a macro: the two families differ only in the integer, the address
// type and the name; the arithmetic is the same.
macro_rules! unit {
    ($int:ty, $addr:ty, $family:literal) => {
        impl Unit for $int {
            type Addr = $addr;
            const FAMILY: &'static str = $family;
            const MIN: Self = 0;
            const MAX: Self = <$int>::MAX;
            fn succ(self) -> Self {
                self + 1
            }
            fn pred(self) -> Self {
                self - 1
            }
            fn diff(lo: Self, hi: Self) -> u128 {
                u128::from(hi - lo)
            }
            fn add(self, d: u128) -> Self {
                self + d as $int
            }
        }
    };
}
unit!(u32, Ipv4Addr, "IPv4");
unit!(u128, Ipv6Addr, "IPv6");

/// An inclusive range of addresses, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span<T> {
    pub start: T,
    pub end: T,
}

/// An inclusive range of IPv4 addresses.
pub type Ipv4Range = Span<u32>;
/// An inclusive range of IPv6 addresses.
pub type Ipv6Range = Span<u128>;

impl<T: Unit> Span<T> {
    pub fn new(start: T, end: T) -> Option<Self> {
        (start <= end).then_some(Span { start, end })
    }
    pub fn single(a: T::Addr) -> Self {
        let a: T = a.into();
        Span { start: a, end: a }
    }
    /// Number of addresses, saturating at `u128::MAX` (only the whole IPv6
    /// space, 2^128 addresses, does not fit).
    pub fn size(&self) -> u128 {
        T::diff(self.start, self.end).saturating_add(1)
    }
    pub fn contains(&self, a: T) -> bool {
        self.start <= a && a <= self.end
    }
    pub fn is_within(&self, o: &Span<T>) -> bool {
        o.start <= self.start && self.end <= o.end
    }
    pub fn overlaps(&self, o: &Span<T>) -> bool {
        self.start <= o.end && o.start <= self.end
    }
}

// why: a range always holds at least one element, so `is_empty` would
// always be false.
#[allow(clippy::len_without_is_empty)]
impl Span<u32> {
    /// Number of addresses (u64: a /0 has 2^32).
    pub fn len(&self) -> u64 {
        u64::from(self.end - self.start) + 1
    }
}

impl<T: Unit> fmt::Display for Span<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", T::Addr::from(self.start))
        } else {
            write!(f, "{}-{}", T::Addr::from(self.start), T::Addr::from(self.end))
        }
    }
}

impl<T: Unit> FromStr for Span<T> {
    type Err = RangeError;
    /// `a` or `a-b`, in the family's address syntax (`10.0.0.5-10.0.0.9`,
    /// `2001:db8::10-2001:db8::ff`).
    fn from_str(s: &str) -> Result<Self, RangeError> {
        let err = |reason: String| RangeError {
            value: s.to_string(),
            reason,
        };
        let addr = |t: &str| {
            t.trim()
                .parse::<T::Addr>()
                .map(Into::into)
                .map_err(|_| err(format!("{:?} is not an {} address", t.trim(), T::FAMILY)))
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (addr(a)?, addr(b)?);
                Span::new(a, b).ok_or_else(|| err("start is above end".into()))
            }
            None => {
                let a = addr(s)?;
                Ok(Span { start: a, end: a })
            }
        }
    }
}

/// A set of addresses stored as disjoint, non-adjacent ranges
/// (`start -> end`). Adjacent inserts are merged. The IPv4 set is the
/// default (`RangeSet` is `RangeSet<u32>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet<T = u32> {
    map: BTreeMap<T, T>,
    /// Sum of `end - start` over the stored ranges; the size is this plus
    /// the number of ranges, so even a set of the whole IPv6 space keeps
    /// an exact count here.
    spread: u128,
}

impl<T> Default for RangeSet<T> {
    fn default() -> Self {
        RangeSet {
            map: BTreeMap::new(),
            spread: 0,
        }
    }
}

impl RangeSet<u32> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of addresses in the set (a whole IPv4 space fits in u64).
    pub fn count(&self) -> u64 {
        // why: at most 2^32 addresses, so the u128 size always fits.
        self.size() as u64
    }

    /// Number of addresses of the set inside `r`.
    pub fn count_in(&self, r: Ipv4Range) -> u64 {
        self.size_in(r) as u64
    }
}

impl<T: Unit> RangeSet<T> {
    /// An empty set of either family.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Number of addresses in the set, saturating at `u128::MAX` (the whole
    /// IPv6 space).
    pub fn size(&self) -> u128 {
        self.spread.saturating_add(self.map.len() as u128)
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Number of stored ranges.
    pub fn ranges(&self) -> usize {
        self.map.len()
    }
    pub fn iter_ranges(&self) -> impl Iterator<Item = Span<T>> + '_ {
        self.map.iter().map(|(&s, &e)| Span { start: s, end: e })
    }

    /// The stored range containing `a`, if any.
    pub fn range_of(&self, a: T) -> Option<Span<T>> {
        self.map
            .range(..=a)
            .next_back()
            .filter(|(_, &e)| e >= a)
            .map(|(&s, &e)| Span { start: s, end: e })
    }

    pub fn contains(&self, a: T) -> bool {
        self.range_of(a).is_some()
    }

    fn put(&mut self, s: T, e: T) {
        self.map.insert(s, e);
        self.spread += T::diff(s, e);
    }

    fn take(&mut self, s: T) {
        if let Some(e) = self.map.remove(&s) {
            self.spread -= T::diff(s, e);
        }
    }

    /// Adds every address of `r`.
    pub fn insert(&mut self, r: Span<T>) {
        let mut start = r.start;
        let mut end = r.end;
        // Merge with a range that starts before `start` and touches it.
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= start || (e != T::MAX && e.succ() == start) {
                start = s;
                end = end.max(e);
                self.take(s);
            }
        }
        // Absorb every range that starts inside or right after [start, end].
        loop {
            let lim = if end == T::MAX { end } else { end.succ() };
            let next = self.map.range(start..=lim).next().map(|(&s, &e)| (s, e));
            match next {
                Some((s, e)) => {
                    self.take(s);
                    end = end.max(e);
                }
                None => break,
            }
        }
        self.put(start, end);
    }

    pub fn insert_addr(&mut self, a: T::Addr) {
        self.insert(Span::single(a));
    }

    /// Removes every address of `r`.
    pub fn remove(&mut self, r: Span<T>) {
        // A range starting before r.start may overlap: split it.
        if let Some((&s, &e)) = self.map.range(..r.start).next_back() {
            if e >= r.start {
                self.take(s);
                self.put(s, r.start.pred());
                if e > r.end {
                    self.put(r.end.succ(), e);
                    return;
                }
            }
        }
        let inside: Vec<(T, T)> = self.map.range(r.start..=r.end).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in inside {
            self.take(s);
            if e > r.end {
                self.put(r.end.succ(), e);
            }
        }
    }

    pub fn remove_addr(&mut self, a: T::Addr) {
        self.remove(Span::single(a));
    }

    /// The lowest address `>= from` and `<= to` that is NOT in the set.
    /// O(log n): the set's ranges are merged, so one jump past the range
    /// containing `from` lands on a free address or past `to`.
    pub fn first_gap(&self, from: T, to: T) -> Option<T> {
        if from > to {
            return None;
        }
        match self.range_of(from) {
            None => Some(from),
            Some(r) if r.end >= to => None,
            Some(r) => Some(r.end.succ()),
        }
    }

    /// The lowest address of `self` (the assignable set) that is not in
    /// `taken`: O(k log n) for k ranges of `self` and n of `taken`.
    pub fn lowest_not_in(&self, taken: &RangeSet<T>) -> Option<T> {
        self.iter_ranges().find_map(|r| taken.first_gap(r.start, r.end))
    }

    /// Number of addresses of the set inside `r`, saturating like
    /// [`RangeSet::size`]. O(k log n) for the k stored ranges overlapping
    /// `r`.
    pub fn size_in(&self, r: Span<T>) -> u128 {
        let mut n: u128 = 0;
        if let Some((_, &e)) = self.map.range(..r.start).next_back() {
            if e >= r.start {
                n = n.saturating_add(T::diff(r.start, e.min(r.end)).saturating_add(1));
            }
        }
        for (&s, &e) in self.map.range(r.start..=r.end) {
            n = n.saturating_add(T::diff(s, e.min(r.end)).saturating_add(1));
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn r(a: u32, b: u32) -> Ipv4Range {
        Ipv4Range::new(a, b).unwrap()
    }

    #[test]
    fn parse_ranges() {
        let x: Ipv4Range = "10.0.0.10-10.0.0.200".parse().unwrap();
        assert_eq!(x.len(), 191);
        assert_eq!(x.to_string(), "10.0.0.10-10.0.0.200");
        assert!("10.0.0.9-10.0.0.1".parse::<Ipv4Range>().is_err());
        assert!("10.0.0".parse::<Ipv4Range>().is_err());
        assert_eq!("10.0.0.5".parse::<Ipv4Range>().unwrap().len(), 1);
    }

    #[test]
    fn merge_and_split() {
        let mut s = RangeSet::new();
        s.insert(r(10, 20));
        s.insert(r(21, 30));
        assert_eq!(s.ranges(), 1);
        assert_eq!(s.count(), 21);
        s.remove(r(15, 15));
        assert_eq!(s.ranges(), 2);
        assert_eq!(s.first_gap(10, 100), Some(15));
        assert_eq!(s.first_gap(16, 100), Some(31));
        assert_eq!(s.first_gap(16, 30), None);
        s.insert(r(0, u32::MAX));
        assert_eq!(s.count(), 1 << 32);
        assert_eq!(s.first_gap(0, u32::MAX), None);
        s.remove(r(u32::MAX, u32::MAX));
        assert_eq!(s.first_gap(5, u32::MAX), Some(u32::MAX));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Ins(u32, u32),
        Rem(u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        (any::<bool>(), 0u32..200, 0u32..12).prop_map(
            |(ins, a, l)| {
                if ins {
                    Op::Ins(a, a + l)
                } else {
                    Op::Rem(a, a + l)
                }
            },
        )
    }

    #[test]
    fn ipv6_ranges_parse_count_and_saturate() {
        let x: Ipv6Range = "2001:db8::10-2001:db8::ff".parse().unwrap();
        assert_eq!(x.size(), 0xf0);
        assert_eq!(x.to_string(), "2001:db8::10-2001:db8::ff");
        let e = "2001:db8::ff-2001:db8::10".parse::<Ipv6Range>().unwrap_err();
        assert!(e.reason.contains("start is above end"), "{e}");
        let e = "10.0.0.1".parse::<Ipv6Range>().unwrap_err();
        assert!(e.reason.contains("not an IPv6 address"), "{e}");
        let mut s = RangeSet::<u128>::empty();
        // A /64: 2^64 addresses, more than u64 can count.
        let net: u128 = u128::from("2001:db8:0:1::".parse::<Ipv6Addr>().unwrap());
        s.insert(Span::new(net, net + u128::from(u64::MAX)).unwrap());
        assert_eq!(s.size(), 1u128 << 64);
        s.remove_addr("2001:db8:0:1::5".parse().unwrap());
        assert_eq!(s.size(), (1u128 << 64) - 1);
        assert_eq!(s.first_gap(net, u128::MAX), Some(net + 5));
        // The whole space saturates instead of wrapping.
        s.insert(Span::new(0, u128::MAX).unwrap());
        assert_eq!((s.size(), s.ranges()), (u128::MAX, 1));
        assert_eq!(s.first_gap(0, u128::MAX), None);
        s.remove(Span::new(u128::MAX, u128::MAX).unwrap());
        assert_eq!(s.size(), u128::MAX);
        assert_eq!(s.first_gap(7, u128::MAX), Some(u128::MAX));
        assert_eq!(s.size_in(Span::new(u128::MAX - 9, u128::MAX).unwrap()), 9);
    }

    /// The model test on a u128 set, with the small test values placed at
    /// `base`: at the bottom of the space, in its middle, and against its
    /// top. `pool` is a second set (the assignable addresses) for
    /// `lowest_not_in`, built from `pool_ops` the same way.
    fn check_u128_model(base: u128, ops: &[Op], pool_ops: &[Op], from: u32, len: u32) -> Result<(), TestCaseError> {
        let at = |x: u32| base + u128::from(x);
        let mut s = RangeSet::<u128>::empty();
        let mut m = BTreeSet::new();
        for o in ops {
            match *o {
                Op::Ins(a, b) => {
                    s.insert(Span::new(at(a), at(b)).unwrap());
                    m.extend(a..=b);
                }
                Op::Rem(a, b) => {
                    s.remove(Span::new(at(a), at(b)).unwrap());
                    for x in a..=b {
                        m.remove(&x);
                    }
                }
            }
        }
        prop_assert_eq!(s.size(), m.len() as u128);
        for x in 0..220 {
            prop_assert_eq!(s.contains(at(x)), m.contains(&x));
        }
        let rs: Vec<_> = s.iter_ranges().collect();
        for w in rs.windows(2) {
            prop_assert!(w[0].end + 1 < w[1].start);
        }
        let to = (from + len).min(219);
        let want = (from..=to).find(|x| !m.contains(x)).map(at);
        prop_assert_eq!(s.first_gap(at(from), at(to)), want);
        let cnt = (from..=to).filter(|x| m.contains(x)).count() as u128;
        prop_assert_eq!(s.size_in(Span::new(at(from), at(to)).unwrap()), cnt);
        // lowest_not_in: the lowest address of the pool that the set does
        // not hold, as a model computes it.
        let mut pool = RangeSet::<u128>::empty();
        let mut pm = BTreeSet::new();
        for o in pool_ops {
            match *o {
                Op::Ins(a, b) => {
                    pool.insert(Span::new(at(a), at(b)).unwrap());
                    pm.extend(a..=b);
                }
                Op::Rem(a, b) => {
                    pool.remove(Span::new(at(a), at(b)).unwrap());
                    for x in a..=b {
                        pm.remove(&x);
                    }
                }
            }
        }
        prop_assert_eq!(pool.size(), pm.len() as u128);
        let want = pm.iter().copied().find(|x| !m.contains(x)).map(at);
        prop_assert_eq!(pool.lowest_not_in(&s), want);
        // Removing everything in the test window empties the set there.
        let mut e = s.clone();
        e.remove(Span::new(at(0), at(219)).unwrap());
        prop_assert!(e.is_empty());
        prop_assert_eq!(e.size(), 0);
        Ok(())
    }

    proptest! {
        #[test]
        fn u128_matches_model(
            ops in proptest::collection::vec(op(), 0..60),
            pool_ops in proptest::collection::vec(op(), 0..20),
            from in 0u32..220,
            len in 0u32..40,
        ) {
            // The bottom of the space (0 = `::`, where `pred` must never be
            // taken), its middle (a /64 in 2001:db8::/32) and its very top
            // (the largest test value, 219, lands on u128::MAX).
            check_u128_model(0, &ops, &pool_ops, from, len)?;
            check_u128_model(0x2001_0db8_0000_0001_0000_0000_0000_0000, &ops, &pool_ops, from, len)?;
            check_u128_model(u128::MAX - 219, &ops, &pool_ops, from, len)?;
        }

        // The interval set behaves exactly like a plain set of addresses.
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..60), from in 0u32..220, len in 0u32..40) {
            let mut s = RangeSet::new();
            let mut m = BTreeSet::new();
            for o in ops {
                match o {
                    Op::Ins(a, b) => { s.insert(r(a, b)); m.extend(a..=b); }
                    Op::Rem(a, b) => { s.remove(r(a, b)); for x in a..=b { m.remove(&x); } }
                }
            }
            prop_assert_eq!(s.count(), m.len() as u64);
            for x in 0..220 { prop_assert_eq!(s.contains(x), m.contains(&x)); }
            // Ranges are disjoint and non-adjacent.
            let rs: Vec<_> = s.iter_ranges().collect();
            for w in rs.windows(2) { prop_assert!(w[0].end + 1 < w[1].start); }
            let to = from + len;
            let want = (from..=to).find(|x| !m.contains(x));
            prop_assert_eq!(s.first_gap(from, to), want);
            let cnt = (from..=to).filter(|x| m.contains(x)).count() as u64;
            prop_assert_eq!(s.count_in(r(from, to)), cnt);
        }
    }
}
