//! The file store's fast [`View`]: over the index, a pread-searched base
//! and the journal, without parsing the whole file. It gives the same
//! answers as [`FullView`](crate::store::view::FullView) over the parsed
//! inventory; the property test in `journal_tests` checks that.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::FileExt;

use crate::core::names::JailName;
use crate::core::range::{Ipv4Range, RangeSet};
use crate::error::{Error, Result};
use crate::store::inventory::{parse_jail_words, quick_name, JailRecord};
use crate::store::view::View;

use super::format::Record;
use super::index::Index;

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
    /// Net change of the number of holders per address, by the overlay.
    pub delta: BTreeMap<u32, i64>,
    pub pending: Vec<Record>,
    /// Set when the index disagrees with the base: the store then falls
    /// back to the full path and rebuilds it.
    pub damaged: Option<String>,
}

impl IndexedView<'_> {
    /// Applies one record to the overlay (journal replay or a new change).
    pub fn absorb(&mut self, r: &Record) {
        if let Some(a) = r.was {
            *self.delta.entry(u32::from(a)).or_default() -= 1;
        }
        if let Some(a) = r.record.as_ref().and_then(|x| x.address) {
            *self.delta.entry(u32::from(a)).or_default() += 1;
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
    fn base_holders(&mut self, a: u32) -> Result<Vec<JailName>> {
        let lines = self.index.lines_of(a).map_err(|e| self.io(e))?;
        let Some(lines) = lines else {
            return Err(self.damage("address section checksum".into()));
        };
        if lines.is_empty() != self.index.range_containing(a).is_none() {
            return Err(self.damage(format!("ranges and addresses disagree about {}", Ipv4Addr::from(a))));
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
            if rec.address.map(u32::from) != Some(a) {
                return Err(self.damage(format!("byte {off} does not hold {}", Ipv4Addr::from(a))));
            }
            if !self.overlay.contains_key(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Whether the inventory (base + overlay) holds `a`.
    fn held(&mut self, a: u32) -> Result<bool> {
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

    fn holder_of(&mut self, a: Ipv4Addr, except: &JailName) -> Result<Option<JailName>> {
        let mut all: Vec<JailName> = self
            .overlay
            .iter()
            .filter(|(n, r)| *n != except && r.as_ref().and_then(|r| r.address) == Some(a))
            .map(|(n, _)| n.clone())
            .collect();
        if self.index.range_containing(u32::from(a)).is_some() {
            all.extend(self.base_holders(u32::from(a))?.into_iter().filter(|n| n != except));
        }
        Ok(all.into_iter().min())
    }

    fn taken_in(&mut self, r: Ipv4Range) -> Result<RangeSet> {
        let mut s = RangeSet::new();
        for (a, b) in self.index.ranges_in(r.start, r.end) {
            s.insert(Ipv4Range { start: a, end: b });
        }
        let touched: Vec<u32> = self.delta.range(r.start..=r.end).map(|(a, _)| *a).collect();
        for a in touched {
            if self.held(a)? {
                s.insert(Ipv4Range::single(a.into()));
            } else {
                s.remove(Ipv4Range::single(a.into()));
            }
        }
        Ok(s)
    }

    fn lowest_free(&mut self, assignable: &RangeSet, also_taken: &RangeSet) -> Result<Option<Ipv4Addr>> {
        // why: each step either returns or jumps past one range of
        // `also_taken`, one base range, or one overlay address, so the cost
        // is O((|also_taken| + |overlay|) log n), not O(pool) or O(jails).
        for r in assignable.iter_ranges() {
            let mut x = r.start;
            loop {
                if let Some(t) = also_taken.range_of(x) {
                    if t.end >= r.end {
                        break;
                    }
                    x = t.end + 1;
                    continue;
                }
                if let Some((_, end)) = self.index.range_containing(x) {
                    if !self.held(x)? {
                        return Ok(Some(x.into()));
                    }
                    let lim = end.min(r.end);
                    let after = if x < lim { x + 1 } else { lim };
                    let freed: Vec<u32> = self
                        .delta
                        .range(after..=lim)
                        .filter(|(a, _)| **a > x)
                        .filter(|(_, d)| **d < 0)
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
                        Some(y) => x = y,
                        None if lim >= r.end => break,
                        None => x = lim + 1,
                    }
                    continue;
                }
                if self.held(x)? {
                    if x >= r.end {
                        break;
                    }
                    x += 1;
                    continue;
                }
                return Ok(Some(x.into()));
            }
        }
        Ok(None)
    }

    fn set(&mut self, jail: &JailName, record: Option<JailRecord>) -> Result<()> {
        let cur = self.record(jail)?;
        if cur == record {
            return Ok(());
        }
        let rec = Record {
            jail: jail.clone(),
            record,
            was: cur.and_then(|c| c.address),
        };
        self.absorb(&rec);
        self.pending.push(rec);
        Ok(())
    }
}
