//! `inventory.idx`: a derived, non-authoritative index of one inventory
//! base, so `assign` need not parse every line.
//!
//! It holds, for the base of one generation of the inventory (not its
//! journal, which the fast path reads itself): every taken address of
//! either family as a 128-bit key ([`key`]: IPv6 as is, IPv4 as its
//! IPv4-mapped IPv6 address, which no lease can be) in merged ranges (for "lowest free address", O(log n) per probe) and the
//! sorted `(address, offset of the jail line)` pairs (for "who holds this
//! address"; the line is read back and checked), in blocks of 512 entries
//! with a fence table (first address and hash of each block), so a lookup
//! reads and verifies one 4 KiB block, not the whole section. Binary,
//! little endian:
//!
//! ```text
//! 0   magic "JNETIDX2"
//! 8   identity of the base: device, inode, generation, body length, body hash
//! 48  stamp: inventory size, mtime s/ns, ctime s/ns after jnet's last write
//! 88  number of ranges, number of address entries, hash of the ranges, hash of the fences
//! 120 hash of bytes 0..120
//! 128 ranges: (start u128, end u128)*, addresses: (key u128, line offset u32, 0 u32)*,
//!     fences: (first key u128, block hash u64)* one per block
//! ```
//!
//! Trust rules (see `Store::update_view`): the identity must equal the
//! inventory's header and inode, or the index is rebuilt from the base. The
//! stamp tells whether anyone but jnet touched the file since jnet's last
//! write; when it differs the base is re-hashed before the index is used.
//! The index is written by rename without fsync: after a crash it may be
//! missing, old or garbage, and every one of those is detected by the
//! identity or the section hashes. Only the lock holder reads or writes it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::format::hash64;

pub const FILE: &str = "inventory.idx";
const MAGIC: &[u8; 8] = b"JNETIDX2";
const HEADER_LEN: usize = 128;
const HASHED_HEADER: usize = 120;
const BLOCK: usize = 512;
const RANGE: usize = 32;
const ENTRY: usize = 24;
const FENCE: usize = 24;

/// The index key of an address: an IPv6 address as its integer, an IPv4
/// address as its IPv4-mapped IPv6 address (RFC 4291 2.5.5.2), a range no
/// lease can hold (the configuration refuses such pools and addresses), so
/// the two families share one ordered key space without colliding.
pub fn key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => key4(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// [`key`] of an IPv4 address given as its integer.
pub const fn key4(a: u32) -> u128 {
    0xffff_0000_0000 | a as u128
}

/// The address a key stands for.
pub fn address_of(k: u128) -> IpAddr {
    match u32::try_from(k ^ 0xffff_0000_0000) {
        Ok(a) if k >> 32 == 0xffff => IpAddr::V4(a.into()),
        _ => IpAddr::V6(k.into()),
    }
}

/// Which base an index describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub generation: u64,
    pub body: u64,
    pub hash: u64,
}

/// What the inventory file looked like after jnet's last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stamp {
    pub fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// An open, verified index.
#[derive(Debug)]
pub struct Index {
    file: File,
    pub identity: Identity,
    pub stamp: Stamp,
    ranges: Vec<(u128, u128)>,
    n_addrs: u64,
    fences_hash: u64,
    /// `(first key, hash)` of every block of the address section.
    fences: Vec<(u128, u64)>,
}

fn blocks(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u128_at(b: &[u8], at: usize) -> u128 {
    u128::from_le_bytes(b[at..at + 16].try_into().expect("16 bytes"))
}

fn range_pairs(b: &[u8]) -> Vec<(u128, u128)> {
    b.chunks_exact(RANGE).map(|c| (u128_at(c, 0), u128_at(c, 16))).collect()
}

fn entries(b: &[u8]) -> impl Iterator<Item = (u128, u32)> + '_ {
    b.chunks_exact(ENTRY)
        .map(|c| (u128_at(c, 0), u32::from_le_bytes([c[16], c[17], c[18], c[19]])))
}

fn encode_ranges(v: &[(u128, u128)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(v.len() * RANGE);
    for (x, y) in v {
        b.extend_from_slice(&x.to_le_bytes());
        b.extend_from_slice(&y.to_le_bytes());
    }
    b
}

fn header_bytes(id: &Identity, st: &Stamp, n_ranges: u64, n_addrs: u64, rh: u64, ah: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    let fields = [
        id.dev,
        id.ino,
        id.generation,
        id.body,
        id.hash,
        st.size,
        st.mtime.0 as u64,
        st.mtime.1 as u64,
        st.ctime.0 as u64,
        st.ctime.1 as u64,
        n_ranges,
        n_addrs,
        rh,
        ah,
    ];
    for (i, f) in fields.iter().enumerate() {
        h[8 + i * 8..16 + i * 8].copy_from_slice(&f.to_le_bytes());
    }
    let sum = hash64(&h[..HASHED_HEADER]);
    h[HASHED_HEADER..].copy_from_slice(&sum.to_le_bytes());
    h
}

impl Index {
    /// Opens and verifies the index in `dir`; `None` when it is missing or
    /// fails any check (it is then rebuilt by the caller).
    pub fn open(dir: &Path) -> Option<Index> {
        let path = dir.join(FILE);
        // why: never through a link, and only a file no one else can write
        // (H2); anything else is rebuilt, and the rebuild's rename replaces
        // a link without following it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok()?;
        let len = match file.metadata() {
            Ok(m) if super::secure::trusted(&m) => m.len(),
            _ => {
                tracing::debug!(path = %path.display(), "inventory index is not a file only jnet can write");
                return None;
            }
        };
        let mut h = [0u8; HEADER_LEN];
        file.read_exact(&mut h).ok()?;
        if &h[..8] != MAGIC || hash64(&h[..HASHED_HEADER]) != u64_at(&h, HASHED_HEADER) {
            tracing::debug!(path = %path.display(), "inventory index header is damaged");
            return None;
        }
        let f = |i: usize| u64_at(&h, 8 + i * 8);
        let identity = Identity {
            dev: f(0),
            ino: f(1),
            generation: f(2),
            body: f(3),
            hash: f(4),
        };
        let stamp = Stamp {
            size: f(5),
            mtime: (f(6) as i64, f(7) as i64),
            ctime: (f(8) as i64, f(9) as i64),
        };
        let (n_ranges, n_addrs, rh, ah) = (f(10), f(11), f(12), f(13));
        // why: the counts come from the file, and its header hash is no
        // proof (anyone can compute it); every size is checked arithmetic,
        // and bounded by the file's length before anything is allocated
        // (H15).
        let sections = || -> Option<(u64, u64, u64)> {
            let entries = n_ranges
                .checked_mul(RANGE as u64)?
                .checked_add(n_addrs.checked_mul(ENTRY as u64)?)?;
            let fences = blocks(n_addrs).checked_mul(FENCE as u64)?;
            let total = (HEADER_LEN as u64).checked_add(entries)?.checked_add(fences)?;
            Some((entries, fences, total))
        };
        let Some((_, fence_len, total)) = sections().filter(|s| s.2 == len) else {
            tracing::debug!(path = %path.display(), len, total = ?sections().map(|s| s.2), "inventory index has the wrong length");
            return None;
        };
        debug_assert_eq!(total, len);
        // Both fit in the file, so in usize on any 64-bit or 32-bit host
        // that could read the file at all.
        let range_len = usize::try_from(n_ranges.checked_mul(RANGE as u64)?).ok()?;
        let fence_len = usize::try_from(fence_len).ok()?;
        let mut rb = vec![0u8; range_len];
        file.read_exact(&mut rb).ok()?;
        if hash64(&rb) != rh {
            tracing::debug!(path = %path.display(), "inventory index ranges are damaged");
            return None;
        }
        let ranges = range_pairs(&rb);
        if ranges.windows(2).any(|w| w[0].1 >= w[1].0) || ranges.iter().any(|r| r.0 > r.1) {
            return None;
        }
        let mut fb = vec![0u8; fence_len];
        file.read_exact_at(&mut fb, len - fence_len as u64).ok()?;
        if hash64(&fb) != ah {
            tracing::debug!(path = %path.display(), "inventory index fences are damaged");
            return None;
        }
        let fences = fb.chunks_exact(FENCE).map(|c| (u128_at(c, 0), u64_at(c, 16))).collect();
        Some(Index {
            file,
            identity,
            stamp,
            ranges,
            n_addrs,
            fences_hash: ah,
            fences,
        })
    }

    /// Writes a new index for `addrs` (`(key, line offset)`, any order)
    /// by temp file and rename, without fsync (see module docs).
    pub fn write(dir: &Path, identity: Identity, stamp: Stamp, mut addrs: Vec<(u128, u32)>) -> io::Result<()> {
        addrs.sort_unstable();
        let mut ranges: Vec<(u128, u128)> = Vec::new();
        for &(a, _) in &addrs {
            match ranges.last_mut() {
                Some(r) if r.1 >= a => {}
                Some(r) if r.1 + 1 == a => r.1 = a,
                _ => ranges.push((a, a)),
            }
        }
        let rb = encode_ranges(&ranges);
        let mut ab = Vec::with_capacity(addrs.len() * ENTRY);
        for (x, y) in &addrs {
            ab.extend_from_slice(&x.to_le_bytes());
            ab.extend_from_slice(&y.to_le_bytes());
            ab.extend_from_slice(&0u32.to_le_bytes());
        }
        let mut fb = Vec::with_capacity(addrs.len() / BLOCK * FENCE + FENCE);
        for (i, chunk) in ab.chunks(BLOCK * ENTRY).enumerate() {
            fb.extend_from_slice(&addrs[i * BLOCK].0.to_le_bytes());
            fb.extend_from_slice(&hash64(chunk).to_le_bytes());
        }
        let head = header_bytes(
            &identity,
            &stamp,
            ranges.len() as u64,
            addrs.len() as u64,
            hash64(&rb),
            hash64(&fb),
        );
        let mut tmp = tempfile::Builder::new().prefix(super::TMP_PREFIX).tempfile_in(dir)?;
        let mut out = io::BufWriter::new(tmp.as_file_mut());
        out.write_all(&head)?;
        out.write_all(&rb)?;
        out.write_all(&ab)?;
        out.write_all(&fb)?;
        out.flush()?;
        drop(out);
        tmp.persist(dir.join(FILE)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Records the inventory's stamp after an append (in place; the header
    /// hash catches a torn header write).
    pub fn set_stamp(&mut self, stamp: Stamp) -> io::Result<()> {
        let h = header_bytes(
            &self.identity,
            &stamp,
            self.ranges.len() as u64,
            self.n_addrs,
            hash64(&encode_ranges(&self.ranges)),
            self.fences_hash,
        );
        self.file.write_all_at(&h, 0)?;
        self.stamp = stamp;
        Ok(())
    }

    /// The taken range of the base containing key `x`. O(log n).
    pub fn range_containing(&self, x: u128) -> Option<(u128, u128)> {
        let i = self.ranges.partition_point(|r| r.0 <= x);
        self.ranges[..i].last().copied().filter(|r| r.1 >= x)
    }

    /// Taken ranges of the base overlapping keys `[lo, hi]`, clipped.
    pub fn ranges_in(&self, lo: u128, hi: u128) -> impl Iterator<Item = (u128, u128)> + '_ {
        let i = self.ranges.partition_point(|r| r.1 < lo);
        self.ranges[i..]
            .iter()
            .take_while(move |r| r.0 <= hi)
            .map(move |r| (r.0.max(lo), r.1.min(hi)))
    }

    /// Offsets of the base lines of jails holding key `a`, in name order;
    /// `None` when a block it read fails its hash. Reads only the blocks
    /// whose fences can hold `a` (normally one).
    pub fn lines_of(&mut self, a: u128) -> io::Result<Option<Vec<u32>>> {
        let first = self.fences.partition_point(|f| f.0 < a).saturating_sub(1);
        let end = self.fences.partition_point(|f| f.0 <= a);
        let mut out = vec![];
        let base = (HEADER_LEN + self.ranges.len() * RANGE) as u64;
        for b in first..end {
            let n = (self.n_addrs as usize - b * BLOCK).min(BLOCK);
            let mut buf = vec![0u8; n * ENTRY];
            self.file.read_exact_at(&mut buf, base + (b * BLOCK * ENTRY) as u64)?;
            if hash64(&buf) != self.fences[b].1 {
                return Ok(None);
            }
            out.extend(entries(&buf).filter(|e| e.0 == a).map(|e| e.1));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_open_and_detect_damage() {
        let d = tempfile::tempdir().unwrap();
        let id = Identity {
            dev: 1,
            ino: 2,
            generation: 3,
            body: 4,
            hash: 5,
        };
        let st = Stamp {
            size: 9,
            mtime: (1, 2),
            ctime: (3, 4),
        };
        Index::write(
            d.path(),
            id,
            st,
            vec![(12, 300), (10, 100), (11, 200), (20, 400), (20, 50)],
        )
        .unwrap();
        let mut ix = Index::open(d.path()).unwrap();
        assert_eq!((ix.identity, ix.stamp), (id, st));
        assert_eq!(ix.range_containing(11), Some((10, 12)));
        assert_eq!(ix.range_containing(13), None);
        assert_eq!(ix.ranges_in(11, 25).collect::<Vec<_>>(), [(11, 12), (20, 20)]);
        assert_eq!(ix.lines_of(20).unwrap().unwrap(), [50, 400]);
        assert_eq!(ix.lines_of(21).unwrap().unwrap(), Vec::<u32>::new());
        let st2 = Stamp { size: 10, ..st };
        ix.set_stamp(st2).unwrap();
        assert_eq!(Index::open(d.path()).unwrap().stamp, st2);
        // Any flipped byte is caught (header, ranges) or makes the address
        // section unusable.
        let path = d.path().join(FILE);
        let good = fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x10;
            fs::write(&path, &b).unwrap();
            match Index::open(d.path()) {
                None => {}
                Some(mut ix) => {
                    assert!(i >= HEADER_LEN + 2 * RANGE, "byte {i} not caught");
                    assert!(ix.lines_of(20).unwrap().is_none(), "byte {i} not caught");
                }
            }
        }
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(Index::open(d.path()).is_none());
    }

    /// H15: a crafted index with a correct header hash and counts whose
    /// sum or size overflows is rejected (rebuilt), not a panic.
    #[test]
    fn crafted_counts_are_rejected_without_allocating() {
        let d = tempfile::tempdir().unwrap();
        let craft = |n_ranges: u64, n_addrs: u64, len: usize| {
            let empty = hash64(&[]);
            let h = header_bytes(&Identity::default(), &Stamp::default(), n_ranges, n_addrs, empty, empty);
            let mut b = h.to_vec();
            b.resize(len, 0);
            fs::write(d.path().join(FILE), b).unwrap();
            Index::open(d.path())
        };
        // The finding's input: n_ranges = u64::MAX, n_addrs = 1, length 144.
        assert!(craft(u64::MAX, 1, 144).is_none());
        assert!(craft(u64::MAX / 8, 0, 144).is_none());
        assert!(craft(1, u64::MAX, 144).is_none());
        assert!(craft(u64::MAX / 16, u64::MAX / 16, 4096).is_none());
        // Counts that wrap to exactly the file's length.
        let wrap = (u64::MAX / RANGE as u64) + 1 + 2; // n * RANGE wraps to a small number
        assert!(craft(wrap, 0, 144).is_none());
        // A sound empty index still opens.
        assert!(craft(0, 0, HEADER_LEN).is_some());
    }

    #[test]
    fn index_behind_a_symlink_or_open_to_others_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        Index::write(d.path(), Identity::default(), Stamp::default(), vec![(1, 2)]).unwrap();
        assert!(Index::open(d.path()).is_some());
        let p = d.path().join(FILE);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(Index::open(d.path()).is_none(), "group/other-writable index trusted");
        fs::rename(&p, d.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), &p).unwrap();
        fs::set_permissions(d.path().join("elsewhere"), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Index::open(d.path()).is_none(), "index read through a symlink");
        // The rebuild replaces the link itself, never the file it points to.
        Index::write(d.path(), Identity::default(), Stamp::default(), vec![]).unwrap();
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert!(Index::open(d.path()).is_some());
    }

    #[test]
    fn keys_of_both_families_are_ordered_and_distinct() {
        let v4: IpAddr = "10.0.0.5".parse().unwrap();
        let v6: IpAddr = "fd00::5".parse().unwrap();
        assert_eq!(key(v4), 0xffff_0a00_0005);
        assert_eq!(address_of(key(v4)), v4);
        assert_eq!(address_of(key(v6)), v6);
        assert_eq!(
            address_of(key("::5".parse().unwrap())),
            "::5".parse::<IpAddr>().unwrap()
        );
        assert!(key("255.255.255.255".parse().unwrap()) < key("::1:0:0:0".parse().unwrap()));
    }

    #[test]
    fn lookups_across_blocks() {
        let d = tempfile::tempdir().unwrap();
        // 3 blocks; address 600 held by entries that straddle a block edge.
        let mut v: Vec<(u128, u32)> = (0..1500u32).map(|i| (u128::from(i), i * 10)).collect();
        for k in 0..20 {
            v.push((511, 100_000 + k));
        }
        Index::write(d.path(), Identity::default(), Stamp::default(), v).unwrap();
        let mut ix = Index::open(d.path()).unwrap();
        assert_eq!(ix.lines_of(511).unwrap().unwrap().len(), 21);
        assert_eq!(ix.lines_of(1499).unwrap().unwrap(), [14990]);
        assert_eq!(ix.lines_of(0).unwrap().unwrap(), [0]);
        assert!(ix.lines_of(1500).unwrap().unwrap().is_empty());
        assert_eq!(ix.range_containing(700), Some((0, 1499)));
    }
}
