//! IPv4 range arithmetic: inclusive address ranges and a set of disjoint
//! ranges kept in a `BTreeMap`, so membership, insertion, removal and
//! "first address not in the set at or after x" cost O(log n) in the number
//! of stored ranges (consecutive addresses merge into one range).
//!
//! Addresses are handled as `u32` (host order). No I/O, no allocation policy.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address range {value:?}: {reason}")]
pub struct RangeError {
    pub value: String,
    pub reason: String,
}

/// An inclusive range of IPv4 addresses, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Range {
    pub start: u32,
    pub end: u32,
}

// why: a range always holds at least one element, so `is_empty` would
// always be false.
#[allow(clippy::len_without_is_empty)]
impl Ipv4Range {
    pub fn new(start: u32, end: u32) -> Option<Self> {
        (start <= end).then_some(Ipv4Range { start, end })
    }
    pub fn single(a: Ipv4Addr) -> Self {
        let a = u32::from(a);
        Ipv4Range { start: a, end: a }
    }
    /// Number of addresses (u64: a /0 has 2^32).
    pub fn len(&self) -> u64 {
        u64::from(self.end - self.start) + 1
    }
    pub fn contains(&self, a: u32) -> bool {
        self.start <= a && a <= self.end
    }
    pub fn is_within(&self, o: &Ipv4Range) -> bool {
        o.start <= self.start && self.end <= o.end
    }
    pub fn overlaps(&self, o: &Ipv4Range) -> bool {
        self.start <= o.end && o.start <= self.end
    }
}

impl fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", Ipv4Addr::from(self.start))
        } else {
            write!(f, "{}-{}", Ipv4Addr::from(self.start), Ipv4Addr::from(self.end))
        }
    }
}

impl FromStr for Ipv4Range {
    type Err = RangeError;
    /// `a.b.c.d` or `a.b.c.d-e.f.g.h`.
    fn from_str(s: &str) -> Result<Self, RangeError> {
        let err = |reason: String| RangeError {
            value: s.to_string(),
            reason,
        };
        let addr = |t: &str| {
            t.trim()
                .parse::<Ipv4Addr>()
                .map(u32::from)
                .map_err(|_| err(format!("{:?} is not an IPv4 address", t.trim())))
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (addr(a)?, addr(b)?);
                Ipv4Range::new(a, b).ok_or_else(|| err("start is above end".into()))
            }
            None => {
                let a = addr(s)?;
                Ok(Ipv4Range { start: a, end: a })
            }
        }
    }
}

/// A set of IPv4 addresses stored as disjoint, non-adjacent ranges
/// (`start -> end`). Adjacent inserts are merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    map: BTreeMap<u32, u32>,
    count: u64,
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of addresses in the set.
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Number of stored ranges.
    pub fn ranges(&self) -> usize {
        self.map.len()
    }
    pub fn iter_ranges(&self) -> impl Iterator<Item = Ipv4Range> + '_ {
        self.map.iter().map(|(&s, &e)| Ipv4Range { start: s, end: e })
    }

    /// The stored range containing `a`, if any.
    pub fn range_of(&self, a: u32) -> Option<Ipv4Range> {
        self.map
            .range(..=a)
            .next_back()
            .filter(|(_, &e)| e >= a)
            .map(|(&s, &e)| Ipv4Range { start: s, end: e })
    }

    pub fn contains(&self, a: u32) -> bool {
        self.range_of(a).is_some()
    }

    /// Adds every address of `r`.
    pub fn insert(&mut self, r: Ipv4Range) {
        let mut start = r.start;
        let mut end = r.end;
        // Merge with a range that starts before `start` and touches it.
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= start || (e != u32::MAX && e + 1 == start) {
                start = s;
                end = end.max(e);
                self.map.remove(&s);
                self.count -= u64::from(e - s) + 1;
            }
        }
        // Absorb every range that starts inside or right after [start, end].
        loop {
            let lim = end.saturating_add(1);
            let next = self.map.range(start..=lim).next().map(|(&s, &e)| (s, e));
            match next {
                Some((s, e)) if s <= lim => {
                    self.map.remove(&s);
                    self.count -= u64::from(e - s) + 1;
                    end = end.max(e);
                    if end == u32::MAX && s > end {
                        break;
                    }
                }
                _ => break,
            }
        }
        self.map.insert(start, end);
        self.count += u64::from(end - start) + 1;
    }

    pub fn insert_addr(&mut self, a: Ipv4Addr) {
        self.insert(Ipv4Range::single(a));
    }

    /// Removes every address of `r`.
    pub fn remove(&mut self, r: Ipv4Range) {
        // A range starting before r.start may overlap: split it.
        if let Some((&s, &e)) = self.map.range(..r.start).next_back() {
            if e >= r.start {
                self.map.insert(s, r.start - 1);
                self.count -= u64::from(e - r.start) + 1;
                if e > r.end {
                    self.map.insert(r.end + 1, e);
                    self.count += u64::from(e - r.end);
                    return;
                }
            }
        }
        let inside: Vec<(u32, u32)> = self.map.range(r.start..=r.end).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in inside {
            self.map.remove(&s);
            self.count -= u64::from(e - s) + 1;
            if e > r.end {
                self.map.insert(r.end + 1, e);
                self.count += u64::from(e - r.end);
            }
        }
    }

    pub fn remove_addr(&mut self, a: Ipv4Addr) {
        self.remove(Ipv4Range::single(a));
    }

    /// The lowest address `>= from` and `<= to` that is NOT in the set.
    /// O(log n): the set's ranges are merged, so one jump past the range
    /// containing `from` lands on a free address or past `to`.
    pub fn first_gap(&self, from: u32, to: u32) -> Option<u32> {
        if from > to {
            return None;
        }
        match self.range_of(from) {
            None => Some(from),
            Some(r) if r.end >= to => None,
            Some(r) => Some(r.end + 1),
        }
    }

    /// Number of addresses of the set inside `r`. O(k log n) for the k
    /// stored ranges overlapping `r`.
    pub fn count_in(&self, r: Ipv4Range) -> u64 {
        let mut n = 0;
        if let Some((_, &e)) = self.map.range(..r.start).next_back() {
            if e >= r.start {
                n += u64::from(e.min(r.end) - r.start) + 1;
            }
        }
        for (&s, &e) in self.map.range(r.start..=r.end) {
            n += u64::from(e.min(r.end) - s) + 1;
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

    proptest! {
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
