//! The file store's fast [`View`]: over the index, a pread-searched base
//! and the journal, without parsing the whole file. It gives the same
//! answers as [`FullView`](crate::store::view::FullView) over the parsed
//! inventory; the property test in `journal_tests` checks that.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::FileExt;

use crate::core::names::JailName;
use crate::core::range::{RangeSet, Unit};
use crate::error::{Error, Result};
use crate::store::inventory::{parse_jail_words, quick_name, JailRecord};
use crate::store::view::View;

use super::format::Record;
use super::index::{address_of, key, Index};

/// The fast view: base lines found by binary search with pread (the base
/// is sorted by name), taken addresses from the index, and an overlay of
/// the journal and of this operation's changes.
pub(super) struct IndexedView<'a> {
    pub file: &'a File,
    pub path: &'a std::path::Path,
    /// Where the jail lines may be: after the header line, before the
    /// `journal` line.
    pub lo: u64,
    pub hi: u64,
    pub index: &'a mut Index,
    /// Final state of every jail the journal (or this operation) touched.
    pub overlay: BTreeMap<JailName, Option<JailRecord>>,
    /// Net change of the number of holders per address (index key), by
    /// the overlay.
    pub delta: BTreeMap<u128, i64>,
    pub pending: Vec<Record>,
    /// Set when the index disagrees with the base: the store then falls
    /// back to the full path and rebuilds it.
    pub damaged: Option<String>,
}

impl IndexedView<'_> {
    /// Applies one record to the overlay (journal replay or a new change).
    pub fn absorb(&mut self, r: &Record) {
        for &a in &r.was {
            *self.delta.entry(key(a)).or_default() -= 1;
        }
        for a in r.record.iter().flat_map(JailRecord::addresses) {
            *self.delta.entry(key(a)).or_default() += 1;
        }
        self.overlay.insert(r.jail.clone(), r.record.clone());
    }

    fn io(&self, e: io::Error) -> Error {
        Error::io(self.path, e)
    }

    fn damage(&mut self, why: String) -> Error {
        let e = Error::data(format!(
            "{}: inventory index is inconsistent: {why}",
            self.path.display()
        ));
        self.damaged = Some(why);
        e
    }

    /// The line starting at `start` (without newline) and the offset after it.
    fn line_at(&self, start: u64) -> io::Result<(String, u64)> {
        if start >= self.hi {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "offset past the jail lines"));
        }
        let mut want = 256usize;
        loop {
            let n = want.min((self.hi - start) as usize);
            let mut b = vec![0u8; n];
            self.file.read_exact_at(&mut b, start)?;
            if let Some(i) = b.iter().position(|&c| c == b'\n') {
                b.truncate(i);
                let s = String::from_utf8(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
                return Ok((s, start + i as u64 + 1));
            }
            if n < want {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "base line without newline"));
            }
            want *= 4;
        }
    }

    /// The first line start at or after `pos` (below `hi`).
    fn line_start_from(&self, pos: u64) -> io::Result<Option<u64>> {
        if pos <= self.lo {
            return Ok(Some(self.lo));
        }
        let mut at = pos - 1;
        while at < self.hi {
            let n = 256.min((self.hi - at) as usize);
            let mut b = vec![0u8; n];
            self.file.read_exact_at(&mut b, at)?;
            if let Some(i) = b.iter().position(|&c| c == b'\n') {
                let s = at + i as u64 + 1;
                return Ok((s < self.hi).then_some(s));
            }
            at += n as u64;
        }
        Ok(None)
    }

    /// The base line of `jail`, by binary search over byte offsets.
    fn base_line(&self, jail: &str) -> io::Result<Option<(String, u64)>> {
        use std::cmp::Ordering;
        // why: comments sort before every jail line, bridges after.
        let key = |line: &str| match quick_name(line) {
            Some(n) => n.cmp(jail),
            None if line.starts_with('#') => Ordering::Less,
            None => Ordering::Greater,
        };
        // Invariant: the jail's line, if any, starts in [lo, hi); lo is a
        // line start.
        let (mut lo, mut hi) = (self.lo, self.hi);
        while hi - lo > 1024 {
            let mid = lo + (hi - lo) / 2;
            let Some(s) = self.line_start_from(mid)?.filter(|&s| s < hi) else {
                hi = mid;
                continue;
            };
            let (line, next) = self.line_at(s)?;
            match key(&line) {
                Ordering::Less => lo = next,
                Ordering::Equal => return Ok(Some((line, s))),
                Ordering::Greater => hi = s,
            }
        }
        let mut s = lo;
        while s < hi {
            let (line, next) = self.line_at(s)?;
            match key(&line) {
                Ordering::Less => s = next,
                Ordering::Equal => return Ok(Some((line, s))),
                Ordering::Greater => break,
            }
        }
        Ok(None)
    }

    fn parse_base(&mut self, line: &str, at: u64) -> Result<(JailName, JailRecord)> {
        let mut w = line.split_ascii_whitespace();
        w.next();
        parse_jail_words(w).map_err(|e| self.damage(format!("base line at byte {at}: {e}")))
    }

    /// Jails of the base (not overridden by the overlay) holding `a`.
    fn base_holders(&mut self, a: u128) -> Result<Vec<JailName>> {
        let lines = self.index.lines_of(a).map_err(|e| self.io(e))?;
        let Some(lines) = lines else {
            return Err(self.damage("address section checksum".into()));
        };
        if lines.is_empty() != self.index.range_containing(a).is_none() {
            return Err(self.damage(format!("ranges and addresses disagree about {}", address_of(a))));
        }
        let mut out = vec![];
        for off in lines {
            let (line, _) = match self.line_at(u64::from(off)) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    return Err(self.damage(format!("address entry points at byte {off}: {e}")))
                }
                Err(e) => return Err(self.io(e)),
            };
            let (name, rec) = self.parse_base(&line, u64::from(off))?;
            if !rec.holds(address_of(a)) {
                return Err(self.damage(format!("byte {off} does not hold {}", address_of(a))));
            }
            if !self.overlay.contains_key(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Whether the inventory (base + overlay) holds `a`.
    fn held(&mut self, a: u128) -> Result<bool> {
        let d = self.delta.get(&a).copied().unwrap_or(0);
        if d == 0 {
            return Ok(self.index.range_containing(a).is_some());
        }
        if d > 0 {
            return Ok(true);
        }
        let base = match self.index.range_containing(a) {
            None => 0,
            Some(_) => {
                let v = self.index.lines_of(a).map_err(|e| self.io(e))?;
                match v {
                    Some(v) => v.len() as i64,
                    None => return Err(self.damage("address section checksum".into())),
                }
            }
        };
        Ok(base + d > 0)
    }

    /// The lowest address of `assignable` (in the family's integers) in
    /// neither the inventory nor `also_taken`; `to_key` maps the family's
    /// integers into the index's keys, preserving order.
    fn lowest_in<T: Unit>(
        &mut self,
        assignable: &RangeSet<T>,
        also_taken: &RangeSet<T>,
        to_key: impl Fn(T) -> u128,
    ) -> Result<Option<T>> {
        // why: each step either returns or jumps past one range of
        // `also_taken`, one base range, or one overlay address, so the cost
        // is O((|also_taken| + |overlay|) log n), not O(pool) or O(jails).
        // A key range of the index maps back into the family by its
        // distance from `x`, as keys of one family are consecutive.
        for r in assignable.iter_ranges() {
            let mut x = r.start;
            loop {
                if let Some(t) = also_taken.range_of(x) {
                    if t.end >= r.end {
                        break;
                    }
                    x = t.end.succ();
                    continue;
                }
                let kx = to_key(x);
                if let Some((_, end)) = self.index.range_containing(kx) {
                    if !self.held(kx)? {
                        return Ok(Some(x));
                    }
                    let kr_end = to_key(r.end);
                    let klim = end.min(kr_end);
                    let freed: Vec<u128> = self
                        .delta
                        .range(kx..=klim)
                        .filter(|(a, d)| **a > kx && **d < 0)
                        .map(|(a, _)| *a)
                        .collect();
                    let mut next = None;
                    for y in freed {
                        if !self.held(y)? {
                            next = Some(y);
                            break;
                        }
                    }
                    match next {
                        Some(y) => x = from_key_near(x, kx, y),
                        None if klim >= kr_end => break,
                        None => x = from_key_near(x, kx, klim).succ(),
                    }
                    continue;
                }
                if self.held(kx)? {
                    if x >= r.end {
                        break;
                    }
                    x = x.succ();
                    continue;
                }
                return Ok(Some(x));
            }
        }
        Ok(None)
    }
}

/// The family integer of key `k`, given that `x` has key `kx <= k` and
/// both lie in one family's consecutive keys.
fn from_key_near<T: Unit>(x: T, kx: u128, k: u128) -> T {
    x.add(k - kx)
}

impl View for IndexedView<'_> {
    fn record(&mut self, jail: &JailName) -> Result<Option<JailRecord>> {
        if let Some(r) = self.overlay.get(jail) {
            return Ok(r.clone());
        }
        let found = self.base_line(jail.as_str()).map_err(|e| self.io(e))?;
        match found {
            None => Ok(None),
            Some((line, at)) => {
                let (name, rec) = self.parse_base(&line, at)?;
                if &name != jail {
                    return Err(self.damage(format!("looked up {jail}, found {name}")));
                }
                Ok(Some(rec))
            }
        }
    }

    fn holder_of(&mut self, a: IpAddr, except: &JailName) -> Result<Option<JailName>> {
        let mut all: Vec<JailName> = self
            .overlay
            .iter()
            .filter(|(n, r)| *n != except && r.as_ref().is_some_and(|r| r.holds(a)))
            .map(|(n, _)| n.clone())
            .collect();
        if self.index.range_containing(key(a)).is_some() {
            all.extend(self.base_holders(key(a))?.into_iter().filter(|n| n != except));
        }
        Ok(all.into_iter().min())
    }

    fn lowest_free(&mut self, assignable: &RangeSet, also_taken: &RangeSet) -> Result<Option<Ipv4Addr>> {
        self.lowest_in(assignable, also_taken, |x| key(IpAddr::V4(x.into())))
            .map(|a| a.map(Ipv4Addr::from))
    }

    fn lowest_free6(&mut self, assignable: &RangeSet<u128>, also_taken: &RangeSet<u128>) -> Result<Option<Ipv6Addr>> {
        self.lowest_in(assignable, also_taken, |x| x)
            .map(|a| a.map(Ipv6Addr::from))
    }

    fn set(&mut self, jail: &JailName, record: Option<JailRecord>) -> Result<()> {
        let cur = self.record(jail)?;
        if cur == record {
            return Ok(());
        }
        let rec = Record {
            jail: jail.clone(),
            record,
            was: cur.map(|c| c.addresses().collect()).unwrap_or_default(),
        };
        self.absorb(&rec);
        self.pending.push(rec);
        Ok(())
    }
}
