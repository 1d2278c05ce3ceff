//! The facts cache: what `jnet assign` needs of jnet.toml (the `[host]`
//! table and the pools, validated) and of jail.conf (each jail's static
//! addresses, [`ConfAddrs`]), kept in `<state dir>/facts-cache` so that an
//! assign on a host with 10,000 declared jails does not parse both files
//! again (issue 10: <= 3 ms).
//!
//! A cached fact is used only when every input it was derived from is
//! still the same: each file read (jnet.toml, jail.conf and every file it
//! includes) by device, inode, size, mtime, ctime and a 128-bit hash of its
//! content, read again in full each time; each `.include` glob by the list
//! of paths it expands to now; and the jnet executable itself by device,
//! inode, size, mtime and ctime (a rebuilt jnet may derive facts
//! differently). The cache is written only after both files were read and
//! validated without error, so a file with an error is read, and its error
//! reported, every time. jail.conf files naming a `mount.fstab` on a
//! platform that reads it (FreeBSD) are not cached: the fstab is an input
//! too.
//!
//! The file follows the state directory's rules (`store::file::secure`):
//! written by temporary file and rename in a state directory that passed
//! its checks, mode 0600; read only through `O_NOFOLLOW` from a file owned
//! by jnet's user or root that no one else can read or write. Anything
//! wrong with it (missing, unsafe, damaged, truncated, another format or
//! jnet build, any input changed) makes it a miss: the files are parsed as
//! without a cache and the cache is written again. Its contents are never
//! trusted beyond their checksum and bounds checks; they are not a security
//! boundary, as whoever can write the state directory controls jnet anyway.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ipnetwork::{Ipv4Network, Ipv6Network};

use crate::core::config::{Config, HostConfig, Pool, Pool6};
use crate::core::names::{IfName, PoolName};
use crate::core::range::{Ipv4Range, Ipv6Range, RangeSet};
use crate::engine::jails_conf::ConfAddrs;

// why 03: IPv6 pools, and each jail.conf jail's IPv6 statics.
const MAGIC: &[u8; 8] = b"jnetfc03";
/// The cache's file name in the state directory.
pub const FILE: &str = "facts-cache";
const TMP_PREFIX: &str = ".facts-cache.tmp";
/// Larger files are not read (a damaged or foreign file).
const MAX_LEN: u64 = 256 << 20;

/// A file's identity and change times (from fstat on the descriptor read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stamp {
    pub fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// One input file as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub path: String,
    pub stamp: Stamp,
    pub hash: (u64, u64),
}

/// One `.include` glob and what it expanded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobRecord {
    pub pattern: String,
    pub matches: Vec<String>,
}

/// 128-bit hash of `data`: four independent multiply-rotate lanes over
/// 32-byte blocks (so the multiplications overlap), then a fold of the
/// lanes, the tail and the length through two finalizers. Not
/// cryptographic; it tells a changed file from an unchanged one, which is
/// all the cache needs (whoever can change the files can change the cache).
/// It runs at ~17 GB/s here (3 MB in 0.17 ms), near memory speed: a
/// 128-bit-multiply variant measured no faster.
pub fn hash128(data: &[u8]) -> (u64, u64) {
    let mut h = Hasher128::new();
    h.update(data);
    h.finish()
}

/// [`hash128`] over data that comes in pieces (a file read through a small
/// buffer): the same result for the same bytes however they are cut.
#[derive(Debug, Clone)]
pub struct Hasher128 {
    lanes: [u64; 4],
    /// Bytes of an incomplete 32-byte block.
    pending: [u8; 32],
    npending: usize,
    len: u64,
}

const HASH_K: [u64; 4] = [
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0x85eb_ca77_c2b2_ae63,
];

impl Default for Hasher128 {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher128 {
    pub fn new() -> Hasher128 {
        Hasher128 {
            lanes: [
                0x243f_6a88_85a3_08d3u64,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
            ],
            pending: [0; 32],
            npending: 0,
            len: 0,
        }
    }

    #[inline]
    fn block(lanes: &mut [u64; 4], b: &[u8]) {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            *lane = (*lane ^ w).wrapping_mul(HASH_K[i]).rotate_left(29);
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.npending > 0 {
            let take = (32 - self.npending).min(data.len());
            self.pending[self.npending..self.npending + take].copy_from_slice(&data[..take]);
            self.npending += take;
            data = &data[take..];
            if self.npending < 32 {
                return;
            }
            let p = self.pending;
            Self::block(&mut self.lanes, &p);
            self.npending = 0;
        }
        let mut blocks = data.chunks_exact(32);
        let mut lanes = self.lanes;
        for b in &mut blocks {
            Self::block(&mut lanes, b);
        }
        self.lanes = lanes;
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }

    pub fn finish(mut self) -> (u64, u64) {
        let mut tail = [0u8; 32];
        tail[..self.npending].copy_from_slice(&self.pending[..self.npending]);
        Self::block(&mut self.lanes, &tail);
        let lanes = self.lanes;
        let fmix = |mut h: u64| {
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            h ^ (h >> 33)
        };
        let len = self.len;
        let a = fmix(lanes[0] ^ lanes[1].rotate_left(17) ^ len);
        let b = fmix(lanes[2] ^ lanes[3].rotate_left(17) ^ len.rotate_left(32));
        (fmix(a ^ b.rotate_left(23)), fmix(b ^ a.rotate_left(41)))
    }
}

/// The piece size [`hash_stamped`] reads with: small enough to stay in
/// the CPU's cache and below malloc's mmap threshold, so that reading a
/// file of megabytes costs neither a page fault per page of a buffer as
/// large as the file nor its unmapping (issue 10: at 10,000 jails, reading
/// the three inputs into whole-file buffers took ~1.1 ms, in pieces 0.2 ms).
const PIECE: usize = 64 << 10;

/// The stamp and hash of the file at `path`, read in pieces of [`PIECE`]
/// bytes, each also handed to `each` (with the offset it starts at). An
/// error when it cannot be read or changed while it was read (its stamp
/// before and after differ, or it was not as long as its size).
pub fn hash_stamped(path: &Path, mut each: impl FnMut(u64, &[u8])) -> io::Result<FileRecord> {
    let mut f = File::open(path)?;
    let before = Stamp::of(&f.metadata()?);
    let mut buf = vec![0u8; PIECE];
    let mut h = Hasher128::new();
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        each(total, &buf[..n]);
        total += n as u64;
    }
    let after = Stamp::of(&f.metadata()?);
    if before != after || total != after.size {
        return Err(io::Error::other("changed while read"));
    }
    Ok(FileRecord {
        path: path.display().to_string(),
        stamp: after,
        hash: h.finish(),
    })
}

/// Reads the UTF-8 text of `path` with its stamp and hash. An error when
/// it cannot be read, is not UTF-8, or changed while it was read (its
/// stamp before and after differ).
pub fn read_stamped(path: &Path) -> io::Result<(String, FileRecord)> {
    let (buf, rec) = read_stamped_bytes(path)?;
    let text = String::from_utf8(buf).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
    Ok((text, rec))
}

/// [`read_stamped`] without the UTF-8 check.
pub fn read_stamped_bytes(path: &Path) -> io::Result<(Vec<u8>, FileRecord)> {
    let mut f = File::open(path)?;
    let before = Stamp::of(&f.metadata()?);
    let mut buf = Vec::with_capacity(before.size as usize + 1);
    f.read_to_end(&mut buf)?;
    let after = Stamp::of(&f.metadata()?);
    if before != after || buf.len() as u64 != after.size {
        return Err(io::Error::other("changed while read"));
    }
    let hash = hash128(&buf);
    Ok((
        buf,
        FileRecord {
            path: path.display().to_string(),
            stamp: after,
            hash,
        },
    ))
}

impl FileRecord {
    /// Whether the file is still exactly as recorded.
    pub fn fresh(&self) -> bool {
        hash_stamped(Path::new(&self.path), |_, _| ()).is_ok_and(|now| now == *self)
    }
}

/// The jnet executable's stamp; None when it cannot be found.
pub fn exe_stamp() -> Option<Stamp> {
    let exe = std::env::current_exe().ok()?;
    std::fs::metadata(exe).ok().map(|m| Stamp::of(&m))
}

/// What the cache holds about jail.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFacts {
    pub files: Vec<FileRecord>,
    pub globs: Vec<GlobRecord>,
    pub addrs: ConfAddrs,
}

impl ConfFacts {
    /// Whether every input is unchanged (`glob` expands a pattern now).
    pub fn fresh(&self, glob: &dyn Fn(&str) -> Result<Vec<String>, String>) -> bool {
        self.files.iter().all(FileRecord::fresh)
            && self
                .globs
                .iter()
                .all(|g| glob(&g.pattern).is_ok_and(|now| now == g.matches))
    }
}

/// The whole cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub exe: Stamp,
    /// The config path as given (messages and relative paths use it).
    pub config_path: String,
    pub config_file: FileRecord,
    /// The config without its jails (`assign` reads none).
    pub config: Config,
    /// None when `host.jail_conf` is not set.
    pub conf: Option<ConfFacts>,
}

// ---- encoding ----------------------------------------------------------

struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn stamp(&mut self, s: &Stamp) {
        for v in [
            s.dev,
            s.ino,
            s.size,
            s.mtime.0 as u64,
            s.mtime.1 as u64,
            s.ctime.0 as u64,
            s.ctime.1 as u64,
        ] {
            self.u64(v);
        }
    }
    fn file(&mut self, f: &FileRecord) {
        self.str(&f.path);
        self.stamp(&f.stamp);
        self.u64(f.hash.0);
        self.u64(f.hash.1);
    }
    fn ranges(&mut self, r: impl ExactSizeIterator<Item = Ipv4Range>) {
        self.u64(r.len() as u64);
        for x in r {
            self.u32(x.start);
            self.u32(x.end);
        }
    }
    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn ranges6(&mut self, r: impl ExactSizeIterator<Item = Ipv6Range>) {
        self.u64(r.len() as u64);
        for x in r {
            self.u128(x.start);
            self.u128(x.end);
        }
    }
    fn pairs(&mut self, v: &[(u32, u32)]) {
        self.u64(v.len() as u64);
        for (a, b) in v {
            self.u32(*a);
            self.u32(*b);
        }
    }
    /// (IPv6 address, jail index) pairs: 16 + 4 bytes each.
    fn pairs6(&mut self, v: &[(u128, u32)]) {
        self.u64(v.len() as u64);
        for (a, b) in v {
            self.0.extend_from_slice(&a.to_le_bytes());
            self.u32(*b);
        }
    }
}

struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    /// A count of items of at least `size` bytes each, bounded by what is left.
    fn count(&mut self, size: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n.checked_mul(size)? <= self.0.len()).then_some(n)
    }
    fn str(&mut self) -> Option<String> {
        let n = self.count(1)?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn opt_str(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.str()?)),
            _ => None,
        }
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn stamp(&mut self) -> Option<Stamp> {
        let mut v = [0u64; 7];
        for x in &mut v {
            *x = self.u64()?;
        }
        Some(Stamp {
            dev: v[0],
            ino: v[1],
            size: v[2],
            mtime: (v[3] as i64, v[4] as i64),
            ctime: (v[5] as i64, v[6] as i64),
        })
    }
    fn file(&mut self) -> Option<FileRecord> {
        Some(FileRecord {
            path: self.str()?,
            stamp: self.stamp()?,
            hash: (self.u64()?, self.u64()?),
        })
    }
    fn ranges(&mut self) -> Option<Vec<Ipv4Range>> {
        let n = self.count(8)?;
        (0..n).map(|_| Ipv4Range::new(self.u32()?, self.u32()?)).collect()
    }
    fn u128(&mut self) -> Option<u128> {
        self.take(16)
            .map(|b| u128::from_le_bytes(b.try_into().expect("16 bytes")))
    }
    fn ranges6(&mut self) -> Option<Vec<Ipv6Range>> {
        let n = self.count(32)?;
        (0..n).map(|_| Ipv6Range::new(self.u128()?, self.u128()?)).collect()
    }
    fn pairs(&mut self) -> Option<Vec<(u32, u32)>> {
        let n = self.count(8)?;
        // why in one slice: item by item through Option was a tenth of an
        // assign at 10,000 jail.conf jails.
        let word = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
        let bytes = self.take(n.checked_mul(8)?)?;
        Some(bytes.chunks_exact(8).map(|c| (word(&c[..4]), word(&c[4..]))).collect())
    }
    fn pairs6(&mut self) -> Option<Vec<(u128, u32)>> {
        let n = self.count(20)?;
        let bytes = self.take(n.checked_mul(20)?)?;
        Some(
            bytes
                .chunks_exact(20)
                .map(|c| {
                    let a = u128::from_le_bytes(c[..16].try_into().expect("16 bytes"));
                    (a, u32::from_le_bytes(c[16..].try_into().expect("4 bytes")))
                })
                .collect(),
        )
    }
}

fn encode(f: &Facts) -> Vec<u8> {
    let mut o = Out(Vec::with_capacity(4096));
    o.0.extend_from_slice(MAGIC);
    o.stamp(&f.exe);
    o.str(&f.config_path);
    o.file(&f.config_file);
    let c = &f.config;
    o.str(&c.file);
    let h = &c.host;
    o.str(h.external_interface.as_str());
    o.opt_str(h.jail_conf.as_ref().and_then(|p| p.to_str()));
    o.opt_str(h.state_dir.as_ref().and_then(|p| p.to_str()));
    o.str(&h.anchor);
    o.u8(h.nat_first_address.into());
    o.u64(c.pools.len() as u64);
    for p in c.pools.values() {
        o.str(p.name.as_str());
        o.u32(u32::from(p.network.ip()));
        o.u8(p.network.prefix());
        o.str(p.interface.as_str());
        o.ranges(p.ranges.iter().copied());
        o.ranges(p.exclude.iter().copied());
        match p.gateway {
            Some(g) => {
                o.u8(1);
                o.u32(u32::from(g));
            }
            None => o.u8(0),
        }
        o.u8(p.nat.into());
        o.ranges(p.assignable.iter_ranges().collect::<Vec<_>>().into_iter());
        o.str(&p.location);
    }
    o.u64(c.pools6.len() as u64);
    for p in c.pools6.values() {
        o.str(p.name.as_str());
        o.u128(u128::from(p.network.ip()));
        o.u8(p.network.prefix());
        o.str(p.interface.as_str());
        o.ranges6(p.ranges.iter().copied());
        o.ranges6(p.exclude.iter().copied());
        match p.gateway {
            Some(g) => {
                o.u8(1);
                o.u128(u128::from(g));
            }
            None => o.u8(0),
        }
        o.u8(p.nat.into());
        o.ranges6(p.assignable.iter_ranges().collect::<Vec<_>>().into_iter());
        o.str(&p.location);
    }
    match &f.conf {
        None => o.u8(0),
        Some(cf) => {
            o.u8(1);
            o.u64(cf.files.len() as u64);
            for r in &cf.files {
                o.file(r);
            }
            o.u64(cf.globs.len() as u64);
            for g in &cf.globs {
                o.str(&g.pattern);
                o.u64(g.matches.len() as u64);
                for m in &g.matches {
                    o.str(m);
                }
            }
            let (text, jails, addrs, addrs6) = cf.addrs.parts();
            o.str(text);
            o.pairs(jails);
            o.pairs(addrs);
            o.pairs6(addrs6);
        }
    }
    let sum = hash128(&o.0);
    o.u64(sum.0);
    o.u64(sum.1);
    o.0
}

fn decode(bytes: &[u8]) -> Option<Facts> {
    let body_len = bytes.len().checked_sub(16)?;
    let (body, sum) = bytes.split_at(body_len);
    let mut s = In(sum);
    if hash128(body) != (s.u64()?, s.u64()?) {
        return None;
    }
    let mut i = In(body);
    if i.take(8)? != MAGIC {
        return None;
    }
    let exe = i.stamp()?;
    let config_path = i.str()?;
    let config_file = i.file()?;
    let file = i.str()?;
    let host = HostConfig {
        external_interface: IfName::new(&i.str()?).ok()?,
        jail_conf: i.opt_str()?.map(PathBuf::from),
        state_dir: i.opt_str()?.map(PathBuf::from),
        anchor: i.str()?,
        nat_first_address: i.bool()?,
    };
    let n = i.count(1)?;
    let mut pools = std::collections::BTreeMap::new();
    for _ in 0..n {
        let name = PoolName::new(&i.str()?).ok()?;
        let network = Ipv4Network::new(Ipv4Addr::from(i.u32()?), i.u8()?).ok()?;
        let interface = IfName::new(&i.str()?).ok()?;
        let ranges = i.ranges()?;
        let exclude = i.ranges()?;
        let gateway = match i.u8()? {
            0 => None,
            1 => Some(Ipv4Addr::from(i.u32()?)),
            _ => return None,
        };
        let nat = i.bool()?;
        let mut assignable = RangeSet::new();
        for r in i.ranges()? {
            assignable.insert(r);
        }
        let location = i.str()?;
        pools.insert(
            name.clone(),
            Pool {
                name,
                network,
                interface,
                ranges,
                exclude,
                gateway,
                nat,
                assignable,
                location,
            },
        );
    }
    let n = i.count(1)?;
    let mut pools6 = std::collections::BTreeMap::new();
    for _ in 0..n {
        let name = PoolName::new(&i.str()?).ok()?;
        let network = Ipv6Network::new(Ipv6Addr::from(i.u128()?), i.u8()?).ok()?;
        let interface = IfName::new(&i.str()?).ok()?;
        let ranges = i.ranges6()?;
        let exclude = i.ranges6()?;
        let gateway = match i.u8()? {
            0 => None,
            1 => Some(Ipv6Addr::from(i.u128()?)),
            _ => return None,
        };
        let nat = i.bool()?;
        let mut assignable = RangeSet::<u128>::empty();
        for r in i.ranges6()? {
            assignable.insert(r);
        }
        let location = i.str()?;
        pools6.insert(
            name.clone(),
            Pool6 {
                name,
                network,
                interface,
                ranges,
                exclude,
                gateway,
                nat,
                assignable,
                location,
            },
        );
    }
    let conf = match i.u8()? {
        0 => None,
        1 => {
            let n = i.count(8)?;
            let files = (0..n).map(|_| i.file()).collect::<Option<Vec<_>>>()?;
            let n = i.count(8)?;
            let mut globs = Vec::with_capacity(n);
            for _ in 0..n {
                let pattern = i.str()?;
                let m = i.count(8)?;
                let matches = (0..m).map(|_| i.str()).collect::<Option<Vec<_>>>()?;
                globs.push(GlobRecord { pattern, matches });
            }
            let text = i.str()?;
            let jails = i.pairs()?;
            let addrs = i.pairs()?;
            let addrs6 = i.pairs6()?;
            Some(ConfFacts {
                files,
                globs,
                addrs: ConfAddrs::from_parts(text, jails, addrs, addrs6)?,
            })
        }
        _ => return None,
    };
    if !i.0.is_empty() {
        return None;
    }
    Some(Facts {
        exe,
        config_path,
        config_file,
        config: Config {
            store: file_store(&file)?,
            file,
            host,
            pools,
            pools6,
            jails: Default::default(),
        },
        conf,
    })
}

/// The `[store]` of a config without one (the local file backend). Only
/// such configs are cached: a shared store is never decided from the
/// cache, and the cache need not record `[store]`.
fn file_store(file: &str) -> Option<crate::store::postgres::StoreConfig> {
    crate::store::postgres::StoreConfig::from_table(file, &toml::Table::new()).ok()
}

// ---- use by a command ---------------------------------------------------

/// What a command that uses the cache carries between reading the config
/// and reading jail.conf.
#[derive(Debug)]
pub struct Session {
    dir: PathBuf,
    exe: Stamp,
    config_path: String,
    config_file: FileRecord,
    /// The config without its jails, as cached.
    config: Config,
    config_hit: bool,
    /// jail.conf facts from the cache, not yet checked.
    conf: Option<ConfFacts>,
}

/// The config at `path` for a command that reads none of its jails
/// (`assign`): the cached one when it is fresh (then without its jails:
/// `Config::jails` is empty), else parsed and validated as
/// `sources::load_config` does, with the same errors. The [`Session`] is
/// None when the cache cannot be used at all (jnet's own executable cannot
/// be found, or the config cannot be read: its error then comes from
/// `load_config`).
pub fn open_config(path: &Path, cli_state_dir: Option<&Path>) -> crate::error::Result<(Config, Option<Session>)> {
    use crate::engine::sources;
    let Some(exe) = exe_stamp() else {
        return Ok((sources::load_config(path)?, None));
    };
    let config_path = path.display().to_string();
    // why in pieces: on a hit only the `[host]` table is looked at (and the
    // hash says the file is the one that was validated), so the file is
    // hashed through a small buffer keeping only its head; the whole text
    // is read only on a miss, or when `[host]` is not within the head.
    let mut head = Vec::new();
    let Ok(first) = hash_stamped(path, |at, piece| {
        if at < HEAD as u64 {
            head.extend_from_slice(&piece[..piece.len().min(HEAD - at as usize)]);
        }
    }) else {
        return Ok((sources::load_config(path)?, None));
    };
    let whole = head.len() as u64 == first.stamp.size;
    let mut bytes = None;
    let mut config_file = first;
    let guess = match host_table_within(&head, whole) {
        Some(h) => guess_state_dir(cli_state_dir, std::str::from_utf8(h).unwrap_or(""), path),
        None => {
            let Ok((b, rec)) = read_stamped_bytes(path) else {
                return Ok((sources::load_config(path)?, None));
            };
            config_file = rec;
            let h = host_table_bytes(&b)
                .and_then(|h| std::str::from_utf8(h).ok())
                .unwrap_or("");
            let g = guess_state_dir(cli_state_dir, h, path);
            bytes = Some(b);
            g
        }
    };
    if let Some(f) = read(&guess) {
        if f.exe == exe
            && f.config_path == config_path
            && f.config_file == config_file
            && sources::state_dir(cli_state_dir, &f.config, path) == guess
        {
            tracing::debug!(dir = %guess.display(), "config from the facts cache");
            let s = Session {
                dir: guess,
                exe,
                config_path,
                config_file,
                config: f.config.clone(),
                config_hit: true,
                conf: f.conf,
            };
            return Ok((f.config, Some(s)));
        }
    }
    let bytes = match bytes {
        Some(b) => b,
        None => match read_stamped_bytes(path) {
            Ok((b, rec)) => {
                config_file = rec;
                b
            }
            Err(_) => return Ok((sources::load_config(path)?, None)),
        },
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok((sources::load_config(path)?, None));
    };
    let config = crate::core::config::parse_config(&config_path, &text)
        .map_err(|e| crate::error::Error::Config(e.to_string()))?;
    // why: a config with a shared store (issue 11) is not cached; its
    // assign goes through the database anyway, and a cached file-store
    // config must never stand in for it.
    if file_store(&config.file).as_ref() != Some(&config.store) {
        return Ok((config, None));
    }
    let dir = sources::state_dir(cli_state_dir, &config, path);
    let s = Session {
        dir,
        exe,
        config_path,
        config_file,
        config: Config {
            store: config.store.clone(),
            file: config.file.clone(),
            host: config.host.clone(),
            pools: config.pools.clone(),
            pools6: config.pools6.clone(),
            jails: Default::default(),
        },
        config_hit: false,
        conf: None,
    };
    Ok((config, Some(s)))
}

impl Session {
    /// jail.conf's static addresses: from the cache when every input is
    /// unchanged, else read (with `jails_conf::read`'s errors) and cached;
    /// the full jails come along when they were read.
    pub fn conf_addrs(
        &self,
        jail_conf: Option<&Path>,
    ) -> crate::error::Result<(ConfAddrs, Option<Vec<crate::engine::jails_conf::ConfJail>>)> {
        let Some(p) = jail_conf else {
            if !self.config_hit || self.conf.is_some() {
                self.store(None);
            }
            return Ok((ConfAddrs::EMPTY, None));
        };
        let root = p.display().to_string();
        if let Some(cf) = &self.conf {
            let glob = |pat: &str| crate::core::jailconf::Loader::glob(&crate::engine::jailconf_fs::FsLoader, pat);
            if cf.files.first().is_some_and(|f| f.path == root) && cf.fresh(&glob) {
                tracing::debug!("jail.conf addresses from the facts cache");
                return Ok((cf.addrs.clone(), None));
            }
        }
        let (jails, inputs) = crate::engine::jails_conf::read_recorded(p)?;
        let addrs = ConfAddrs::from_jails(&jails);
        if let Some((files, globs)) = inputs {
            self.store(Some(ConfFacts {
                files,
                globs,
                addrs: addrs.clone(),
            }));
        }
        Ok((addrs, Some(jails)))
    }

    fn store(&self, conf: Option<ConfFacts>) {
        write(
            &self.dir,
            &Facts {
                exe: self.exe,
                config_path: self.config_path.clone(),
                config_file: self.config_file.clone(),
                config: self.config.clone(),
                conf,
            },
        );
    }
}

/// jail.conf's static addresses from the cache in `state_dir`, for a
/// command that loads the whole config but needs of jail.conf only these
/// (`inventory`): Some only when the cache was written by this very jnet
/// binary for the jail.conf at `jail_conf` and every input file and
/// include glob is unchanged ([`ConfFacts::fresh`]); None otherwise (the
/// caller parses jail.conf). It never writes the cache.
pub fn fresh_conf_addrs(state_dir: &Path, jail_conf: &Path) -> Option<ConfAddrs> {
    let exe = exe_stamp()?;
    let f = read(state_dir)?;
    let cf = f.conf.filter(|_| f.exe == exe)?;
    let root = jail_conf.display().to_string();
    let glob = |pat: &str| crate::core::jailconf::Loader::glob(&crate::engine::jailconf_fs::FsLoader, pat);
    (cf.files.first().is_some_and(|r| r.path == root) && cf.fresh(&glob)).then(|| {
        tracing::debug!("jail.conf addresses from the facts cache");
        cf.addrs
    })
}

// ---- the file ----------------------------------------------------------

/// The cache in `state_dir`, or None (missing, unsafe, damaged).
pub fn read(state_dir: &Path) -> Option<Facts> {
    if !matches!(crate::store::file::secure::open_dir(state_dir), Ok(Some(_))) {
        return None;
    }
    let path = state_dir.join(FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    let m = f.metadata().ok()?;
    if !crate::store::file::secure::trusted(&m) || m.mode() & 0o077 != 0 || m.len() > MAX_LEN {
        tracing::debug!(path = %path.display(), "facts cache is not a file only jnet can read and write; ignored");
        return None;
    }
    let mut buf = Vec::with_capacity(m.len() as usize);
    f.read_to_end(&mut buf).ok()?;
    let facts = decode(&buf);
    if facts.is_none() {
        tracing::debug!(path = %path.display(), "facts cache is damaged or of another format; ignored");
    }
    facts
}

/// Writes the cache into `state_dir` (temporary file, mode 0600, rename)
/// when the directory exists and passes the state directory's checks.
/// Failing is not an error: the next command parses the files again.
pub fn write(state_dir: &Path, facts: &Facts) {
    let done = (|| -> io::Result<bool> {
        if !matches!(crate::store::file::secure::open_dir(state_dir), Ok(Some(_))) {
            return Ok(false);
        }
        let bytes = encode(facts);
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(state_dir)?;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&bytes)?;
        tmp.persist(state_dir.join(FILE)).map_err(|e| e.error)?;
        Ok(true)
    })();
    match done {
        Ok(true) => tracing::debug!(dir = %state_dir.display(), "facts cache written"),
        Ok(false) => tracing::debug!(dir = %state_dir.display(), "no trusted state directory; facts cache not written"),
        Err(e) => tracing::debug!(dir = %state_dir.display(), "facts cache not written: {e}"),
    }
}

/// Where the cache for the config at `config_path` would be, before the
/// config is parsed: `--state-dir`, else `host.state_dir` as the `[host]`
/// table states it (read alone with the subset reader), else the default.
/// Only a guess: a hit is used only when the cached config resolves to the
/// same directory.
pub fn guess_state_dir(cli: Option<&Path>, text: &str, config_path: &Path) -> PathBuf {
    if let Some(p) = cli {
        return p.to_path_buf();
    }
    let dir = host_table(text)
        .and_then(|t| crate::core::toml_subset::parse(t))
        .and_then(|tables| {
            let host = tables.into_iter().nth(1)?;
            host.entries.into_iter().find_map(|e| match (e.key, e.value) {
                ("state_dir", crate::core::toml_subset::Val::Str(s, _)) => Some(PathBuf::from(s)),
                _ => None,
            })
        });
    match dir {
        Some(p) if p.is_relative() => crate::engine::sources::config_dir(config_path).join(p),
        Some(p) => p,
        None => crate::engine::sources::default_state_dir(),
    }
}

/// How much of the config's head [`open_config`] keeps while hashing it.
const HEAD: usize = 64 << 10;

/// [`host_table_bytes`] of a file from its first bytes `head` (`whole`:
/// all of it): None unless the table found is the one the whole file
/// would give, that is its header and end (the next `\n[`) both lie in
/// `head`, or `head` is the whole file.
fn host_table_within(head: &[u8], whole: bool) -> Option<&[u8]> {
    let t = host_table_bytes(head)?;
    let end = t.as_ptr() as usize - head.as_ptr() as usize + t.len();
    (whole || end < head.len()).then_some(t)
}

/// [`host_table`] over bytes (cut at ASCII, so a UTF-8 text stays UTF-8).
fn host_table_bytes(text: &[u8]) -> Option<&[u8]> {
    let start = if text.starts_with(b"[host]") {
        0
    } else {
        text.windows(7).position(|w| w == b"\n[host]")? + 1
    };
    let rest = &text[start..];
    let end = rest[1..]
        .windows(2)
        .position(|w| w == b"\n[")
        .map_or(rest.len(), |i| i + 2);
    Some(&rest[..end])
}

/// The text of the first `[host]` table: from its header line to the next
/// line starting with `[`.
fn host_table(text: &str) -> Option<&str> {
    let start = if text.starts_with("[host]") {
        0
    } else {
        text.find("\n[host]")? + 1
    };
    let rest = &text[start..];
    let end = rest[1..].find("\n[").map_or(rest.len(), |i| i + 2);
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::parse_config;

    fn facts(dir: &Path) -> Facts {
        let p = dir.join("jnet.toml");
        std::fs::write(
            &p,
            "[host]\nexternal_interface = \"em0\"\nstate_dir = \"st\"\n[pools.a]\nnetwork = \"10.0.0.0/24\"\ninterface = \"lo1\"\nexclude = [\"10.0.0.9\"]\ngateway = \"10.0.0.1\"\n[jails.w]\npool = \"a\"\n",
        )
        .unwrap();
        let (text, rec) = read_stamped(&p).unwrap();
        let mut config = parse_config(&p.display().to_string(), &text).unwrap();
        config.jails.clear();
        let mut addrs = ConfAddrs::default();
        addrs.push_jail("legacy", "/etc/jail.conf:3", ["10.0.0.5".parse().unwrap()]);
        addrs.push_jail_dual("dual", "/etc/jail.conf:4", [], ["2001:db8::5".parse().unwrap()]);
        Facts {
            exe: exe_stamp().unwrap(),
            config_path: p.display().to_string(),
            config_file: rec,
            config,
            conf: Some(ConfFacts {
                files: vec![],
                globs: vec![GlobRecord {
                    pattern: "/x/*.conf".into(),
                    matches: vec!["/x/a.conf".into()],
                }],
                addrs,
            }),
        }
    }

    #[test]
    fn round_trip_and_damage_is_a_miss() {
        let d = tempfile::tempdir().unwrap();
        let f = facts(d.path());
        let bytes = encode(&f);
        assert_eq!(decode(&bytes), Some(f.clone()));
        for cut in [0, 1, 8, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert_eq!(decode(&flipped), None);
        let st = d.path().join("st");
        std::fs::create_dir(&st).unwrap();
        std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o700)).unwrap();
        write(&st, &f);
        let m = std::fs::metadata(st.join(FILE)).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(read(&st), Some(f.clone()));
        // Readable by others: not used.
        std::fs::set_permissions(st.join(FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&st), None);
        // A link is not followed.
        std::fs::remove_file(st.join(FILE)).unwrap();
        write(&d.path().join("elsewhere-missing"), &f);
        std::os::unix::fs::symlink(d.path().join("jnet.toml"), st.join(FILE)).unwrap();
        assert_eq!(read(&st), None);
    }

    /// A change of content with size and mtime put back is still seen
    /// (the hash), and so is a replaced file (inode, ctime).
    #[test]
    fn a_changed_input_is_never_fresh() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("jail.conf");
        std::fs::write(&p, "a { ip4.addr = 10.0.0.5; }\n").unwrap();
        let (_, rec) = read_stamped(&p).unwrap();
        assert!(rec.fresh());
        let m = std::fs::metadata(&p).unwrap();
        std::fs::write(&p, "a { ip4.addr = 10.0.0.6; }\n").unwrap();
        let f = File::options().write(true).open(&p).unwrap();
        f.set_modified(m.modified().unwrap()).unwrap();
        let (_, now) = read_stamped(&p).unwrap();
        assert_eq!((now.stamp.size, now.stamp.mtime), (rec.stamp.size, rec.stamp.mtime));
        assert!(!rec.fresh());
        std::fs::remove_file(&p).unwrap();
        assert!(!rec.fresh());
        let glob = |_: &str| Ok(vec!["/x/a.conf".to_string(), "/x/b.conf".to_string()]);
        let cf = ConfFacts {
            files: vec![],
            globs: vec![GlobRecord {
                pattern: "/x/*.conf".into(),
                matches: vec!["/x/a.conf".into()],
            }],
            addrs: ConfAddrs::default(),
        };
        assert!(!cf.fresh(&glob));
    }

    /// A cache hit gives the same IPv6 statics as the parse that wrote it
    /// (and a damaged IPv6 jail index is a miss).
    #[test]
    fn a_cache_hit_keeps_the_ipv6_statics() {
        let d = tempfile::tempdir().unwrap();
        let st = d.path().join("st");
        std::fs::create_dir(&st).unwrap();
        std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o700)).unwrap();
        let jc = d.path().join("jail.conf");
        std::fs::write(
            &jc,
            "a { ip4.addr = 10.0.0.5; ip6.addr = \"lo1|2001:db8::5/64\"; }\nb { ip6.addr = fd00::7, fd00::8; }\n",
        )
        .unwrap();
        let cfg = d.path().join("jnet.toml");
        std::fs::write(
            &cfg,
            format!(
                "[host]\nexternal_interface = \"em0\"\nstate_dir = \"{}\"\njail_conf = \"{}\"\n[pools.a]\nnetwork = \"10.0.0.0/24\"\ninterface = \"lo1\"\n",
                st.display(),
                jc.display()
            ),
        )
        .unwrap();
        let (_, s) = open_config(&cfg, None).unwrap();
        let (parsed, jails) = s.unwrap().conf_addrs(Some(&jc)).unwrap();
        assert!(jails.is_some(), "the first read parses jail.conf");
        let six = |c: &ConfAddrs| c.iter6().map(|(n, _, a)| (n.to_string(), a)).collect::<Vec<_>>();
        let want: Vec<(String, std::net::Ipv6Addr)> = [("a", "2001:db8::5"), ("b", "fd00::7"), ("b", "fd00::8")]
            .iter()
            .map(|(n, a)| (n.to_string(), a.parse().unwrap()))
            .collect();
        assert_eq!(six(&parsed), want);
        let hit = fresh_conf_addrs(&st, &jc).expect("a cache hit");
        assert_eq!(six(&hit), want);
        assert_eq!(hit, parsed);
        let (_, s) = open_config(&cfg, None).unwrap();
        let (again, jails) = s.unwrap().conf_addrs(Some(&jc)).unwrap();
        assert!(jails.is_none(), "the second read is a hit");
        assert_eq!(six(&again), want);
        // An IPv6 address pointing past the jails is refused on decode.
        let (text, jails, addrs, _) = parsed.parts();
        assert!(ConfAddrs::from_parts(text.into(), jails.into(), addrs.into(), vec![(1, 2)]).is_none());
    }

    #[test]
    fn hash_sees_every_byte_and_the_length() {
        let base = vec![7u8; 200];
        let h = hash128(&base);
        for i in 0..200 {
            for bit in [0x01, 0x10, 0x80] {
                let mut v = base.clone();
                v[i] ^= bit;
                assert_ne!(hash128(&v), h, "byte {i} bit {bit:#x}");
            }
        }
        assert_ne!(hash128(&base[..199]), h);
        assert_ne!(hash128(&[0u8; 33]), hash128(&[0u8; 32]));
        // The order of stripes counts.
        let mut two: Vec<u8> = (0..128u8).collect();
        let h2 = hash128(&two);
        two.rotate_left(64);
        assert_ne!(hash128(&two), h2);
        // Flips right after a word equal to a lane key are seen.
        let mut k = HASH_K[0].to_le_bytes().to_vec();
        k.extend_from_slice(&[0u8; 56]);
        let hk = hash128(&k);
        for i in 8..16 {
            let mut v = k.clone();
            v[i] ^= 1;
            assert_ne!(hash128(&v), hk, "byte {i}");
        }
    }

    #[test]
    fn hash_in_pieces_is_the_hash_of_the_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for cut in [1, 5, 31, 32, 33, 63, 64, 65, 100, 999] {
            let mut h = Hasher128::new();
            for piece in data.chunks(cut) {
                h.update(piece);
            }
            assert_eq!(h.finish(), hash128(&data), "pieces of {cut}");
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let big: Vec<u8> = (0..3 * PIECE + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &big).unwrap();
        let mut seen = Vec::new();
        let rec = hash_stamped(&p, |at, piece| {
            assert_eq!(at as usize, seen.len());
            seen.extend_from_slice(piece);
        })
        .unwrap();
        assert_eq!(seen, big);
        assert_eq!(rec, read_stamped_bytes(&p).unwrap().1);
    }

    /// The `[host]` table from a file's head only when the whole file
    /// would give the same one.
    #[test]
    fn host_table_from_the_head() {
        let text = b"# c\n[host]\nstate_dir = \"s\"\n[pools.a]\nx = 1\n";
        let whole = host_table_bytes(text).unwrap();
        assert_eq!(host_table_within(text, true), Some(whole));
        for cut in 0..text.len() {
            let got = host_table_within(&text[..cut], false);
            assert!(got.is_none() || got == Some(whole), "cut at {cut}: {got:?}");
        }
        // Cut after the `\n[` that ends it: found.
        let end = text.windows(2).rposition(|w| w == b"\n[").unwrap() + 2;
        assert_eq!(host_table_within(&text[..end], false), Some(whole));
        // The table runs to the end of the head: unknown unless that is all.
        let last = b"[pools.a]\n[host]\nstate_dir = \"s\"\n";
        assert_eq!(host_table_within(last, false), None);
        assert!(host_table_within(last, true).is_some());
    }

    #[test]
    fn state_dir_guess() {
        let c = Path::new("/etc/jnet/jnet.toml");
        assert_eq!(
            guess_state_dir(None, "# x\n[host]\nstate_dir = \"st\"\n[pools.a]\n", c),
            PathBuf::from("/etc/jnet/st")
        );
        assert_eq!(
            guess_state_dir(Some(Path::new("/s")), "[host]\nstate_dir = \"st\"\n", c),
            PathBuf::from("/s")
        );
        assert_eq!(
            guess_state_dir(None, "[host]\n", c),
            crate::engine::sources::default_state_dir()
        );
    }
}
