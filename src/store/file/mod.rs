//! The file backend: the inventory on disk as one schema-versioned text file
//! (`<state dir>/inventory`, format in [`format`]), read and changed under
//! an exclusive flock on `<state dir>/inventory.lock`, plus a derived index
//! (`inventory.idx`, [`index`]) that lets `assign` and `release` work
//! without parsing every line.
//!
//! It follows flock(2), fsync(2)/fdatasync(2) and rename(2) semantics as
//! documented for Linux and FreeBSD; nothing here needs more than POSIX
//! file calls. Two ways to change the file, both under the lock for the whole
//! read-modify-write (so concurrent jnet processes serialise and never hand
//! out one address twice):
//!
//! - *Compaction* (every [`Store::update`], and a fast-path change that
//!   would grow the journal past its bound): the whole new file is written
//!   to a temporary file in the same directory, fsynced, renamed over the
//!   inventory, and the directory is fsynced. A kill at any point leaves
//!   the previous or the new file.
//! - *Append* ([`Store::update_view`]): the change is one journal line per
//!   jail with a checksum, written at the end of the valid content and
//!   made durable with fdatasync before the command reports success. A
//!   kill mid-append leaves a torn tail (a last line without its newline),
//!   which every reader ignores (the state before) and the next writer
//!   cuts off under the lock. So again: the previous or the new state,
//!   never a broken one.
//!
//! The journal is bounded (default 32 KiB, about 300 records; test builds
//! read `JNET_JOURNAL_MAX_BYTES` to force compactions), so the fast path
//! reads a bounded tail, and a compaction's O(n) cost (a text merge of the
//! sorted base with the changed lines, no parse; then one fsynced write) is
//! shared by the ~300 changes before it: O(n / bound) per change, about
//! 0.2 ms at 100,000 jails, against O(n) for rewriting on every change.
//!
//! The fast path trusts the index only for the base it was built from:
//! same device, inode, generation, body length and body hash as the file's
//! header. It also records the file's size and times after each jnet write
//! (the stamp); if they differ (another tool wrote the file, or a writer
//! died before updating the stamp), the base is re-hashed before use, and
//! a base that no longer matches its header (edited by hand) sends the
//! operation down the full-parse path, and its first change rewrites the
//! file in canonical form. Limit: an edit by hand that keeps the file's
//! size, inode and (coarse, clock-tick) times identical to jnet's last write
//! is not noticed by the stamp: a person editing after jnet finished cannot
//! be that quick, a program rewriting the file in place right after jnet
//! could (the file's comment asks to edit only while no jnet runs). A
//! missing or damaged index is
//! rebuilt from the base. A damaged inventory is refused with file:line,
//! never overwritten.
//!
//! Readers that do not modify ([`Store::read`]) take no lock: rename and
//! the ignored torn tail make every read see a whole state.
//!
//! Every path under the state directory is opened through [`secure`]: no
//! symlinks followed, directories 0700 and files 0600 whatever the umask,
//! and a directory or file that others could write is refused (exit 73).
//! [`Store::lock_jail`] gives the per-jail lifecycle locks under `jails/`.
//! The test hooks (`JNET_TEST_WRITE_PAUSE_MS`, `JNET_JOURNAL_MAX_BYTES`)
//! exist only in builds with the `test-hooks` feature, which `cargo test`
//! turns on and a release build never has.

pub mod format;
pub mod index;
pub mod secure;
pub mod view;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(test)]
use crate::store::inventory::JailRecord;
use crate::store::inventory::{self, Inventory};
use crate::store::view::{FullView, View};

use crate::core::names::JailName;
use crate::error::{Error, Result};
use crate::store::JailLock;
use format::{Header, Parsed, Rendered, JOURNAL_LINE};
use index::{Identity, Index, Stamp};
use inventory::FormatError;
use view::IndexedView;

const FILE: &str = "inventory";
const LOCK: &str = "inventory.lock";
/// Directory of the per-jail lifecycle locks, `<name>.lock` each.
const JAIL_LOCKS: &str = "jails";
pub(crate) const TMP_PREFIX: &str = ".inventory.tmp";
const DEFAULT_JOURNAL_MAX: u64 = 32 * 1024;
/// Bound of the journal in bytes, read only by builds with the
/// `test-hooks` feature (the test build): tests set it low to force
/// compactions. A release build has no such variable.
#[cfg(any(test, feature = "test-hooks"))]
pub const JOURNAL_MAX_ENV: &str = "JNET_JOURNAL_MAX_BYTES";
/// How often a lock-free reader re-reads a file whose end it found damaged
/// before it reports the damage (see [`Store::read`]).
const READ_RETRIES: u32 = 3;

/// The state directory and its inventory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    lock_timeout: Duration,
    journal_max: u64,
}

#[cfg(any(test, feature = "test-hooks"))]
fn journal_max_from_env() -> u64 {
    std::env::var(JOURNAL_MAX_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_JOURNAL_MAX)
}

#[cfg(not(any(test, feature = "test-hooks")))]
fn journal_max_from_env() -> u64 {
    DEFAULT_JOURNAL_MAX
}

/// Test hook (feature `test-hooks` only, H24): `JNET_TEST_WRITE_PAUSE_MS`
/// widens the window just before the commit point (rename or append) so
/// the kill-during-write tests can land a SIGKILL in it.
#[cfg(any(test, feature = "test-hooks"))]
fn test_pause() {
    if let Some(ms) = std::env::var("JNET_TEST_WRITE_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

#[cfg(not(any(test, feature = "test-hooks")))]
fn test_pause() {}

/// An exclusive flock held until drop. The unlock is explicit (not left
/// to close) so that a descriptor inherited by a forked child cannot keep
/// the lock alive after jnet is done with it.
#[derive(Debug)]
pub(crate) struct Flock {
    file: File,
}

impl Drop for Flock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes an exclusive flock on `file`, polling until `timeout`; `Err` with
/// the time waited when another holder keeps it.
fn flock_within(file: File, path: &Path, timeout: Duration) -> Result<std::result::Result<Flock, u64>> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Ok(Flock { file })),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
        if start.elapsed() >= timeout {
            return Ok(Err(start.elapsed().as_millis() as u64));
        }
        std::thread::sleep(pause);
        // why: short first waits keep many concurrent assigns fast; the
        // cap keeps a long wait from spinning.
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>, lock_timeout: Duration) -> Self {
        Store {
            dir: dir.into(),
            lock_timeout,
            journal_max: journal_max_from_env(),
        }
    }

    /// Sets the journal bound in bytes (default 32 KiB, or
    /// `JNET_JOURNAL_MAX_BYTES`); a change that would grow the journal past
    /// it compacts the file instead.
    pub fn with_journal_max(mut self, bytes: u64) -> Self {
        self.journal_max = bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn damaged(&self, e: FormatError) -> Error {
        Error::data(format!(
            "{}:{}: inventory is damaged: {} (restore it from a backup or fix the line)",
            self.path().display(),
            e.line,
            e.message
        ))
    }

    /// The inventory's bytes, through the checks of [`secure`]: the state
    /// directory and the file must be safe; `None` when either is missing.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>> {
        if secure::open_dir(&self.dir)?.is_none() {
            return Ok(None);
        }
        let path = self.path();
        let Some(mut f) = secure::open_read(&path)? else {
            return Ok(None);
        };
        let mut b = Vec::new();
        f.read_to_end(&mut b).map_err(|e| Error::io(&path, e))?;
        Ok(Some(b))
    }

    fn parse(&self, bytes: &[u8]) -> Result<Parsed> {
        format::parse(bytes).map_err(|e| self.damaged(e))
    }

    /// Reads the current inventory; a missing file is an empty inventory.
    ///
    /// Takes no lock. A writer may be cutting off a torn tail and appending
    /// while this reads, so the bytes read can end in a line made of the
    /// old tail and the new record: complete, with a bad checksum, which is
    /// damage to a writer (H17). So a reader that finds damage re-reads,
    /// and reports it only when the file did not change in between.
    pub fn read(&self) -> Result<Inventory> {
        let mut last: Option<Vec<u8>> = None;
        for attempt in 0..READ_RETRIES {
            let Some(b) = self.read_bytes()? else {
                return Ok(Inventory::default());
            };
            match self.parse(&b) {
                Ok(p) => return Ok(p.inventory),
                Err(e) if attempt + 1 == READ_RETRIES || last.as_ref() == Some(&b) => return Err(e),
                Err(_) => {
                    last = Some(b);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Runs `f` on the whole inventory under the exclusive lock and writes
    /// the result back (compaction) if `f` changed it. When `f` fails
    /// nothing is written.
    pub fn update<T>(&self, f: impl FnOnce(&mut Inventory) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let bytes = self.read_bytes()?;
        let parsed = bytes.as_deref().map(|b| self.parse(b)).transpose()?;
        let generation = parsed.as_ref().map_or(0, |p| p.header.generation);
        let canonical = match (&bytes, &parsed) {
            (Some(b), Some(p)) => format::canonical_body(b, p),
            _ => None,
        };
        let mut inv = parsed.map(|p| p.inventory).unwrap_or_default();
        // why: change is detected by comparing canonical text, not by
        // cloning and comparing the model; for a compacted file the "before"
        // text is the file itself, no rendering needed.
        let before: Cow<[u8]> = match canonical {
            Some(b) => Cow::Borrowed(b),
            None => {
                let r = format::render(&inv, 0);
                Cow::Owned(r.text.into_bytes().split_off(r.header_len))
            }
        };
        let out = f(&mut inv)?;
        let r = format::render(&inv, generation + 1);
        if r.text.as_bytes()[r.header_len..] != *before {
            self.commit_full(&r)?;
        }
        Ok(out)
    }

    /// Runs `f` on a [`View`] of the inventory under the exclusive lock and
    /// records its changes, normally as journal appends without parsing the
    /// whole file (see the module docs). `f` may run twice: when the index
    /// turns out inconsistent, the view is discarded and `f` runs again on
    /// the fully parsed inventory.
    pub fn update_view<T>(&self, mut f: impl FnMut(&mut dyn View) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        if let Some(out) = self.fast(&mut f)? {
            return Ok(out);
        }
        let bytes = self.read_bytes()?;
        let parsed = bytes.as_deref().map(|b| self.parse(b)).transpose()?;
        let generation = parsed.as_ref().map_or(0, |p| p.header.generation);
        let mut inv = parsed.map(|p| p.inventory).unwrap_or_default();
        let mut v = FullView {
            inv: &mut inv,
            changed: false,
        };
        let out = f(&mut v)?;
        if v.changed {
            self.commit_full(&format::render(&inv, generation + 1))?;
        }
        Ok(out)
    }

    /// The fast path; `Ok(None)` when it does not apply (no file, old
    /// schema, base edited by hand, index inconsistent) and the caller
    /// must take the full path.
    fn fast<T>(&self, f: &mut dyn FnMut(&mut dyn View) -> Result<T>) -> Result<Option<T>> {
        let path = self.path();
        let io = |e| Error::io(self.path(), e);
        let Some(file) = secure::open_read(&path)? else {
            return Ok(None);
        };
        let meta = file.metadata().map_err(io)?;
        let mut head = vec![0u8; 512.min(meta.len() as usize)];
        file.read_exact_at(&mut head, 0).map_err(io)?;
        let Some(nl) = head.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let Some(h) = std::str::from_utf8(&head[..nl])
            .ok()
            .and_then(|l| format::parse_header(l).ok())
        else {
            return Ok(None);
        };
        let header_len = nl as u64 + 1;
        // why: body= comes from the file; a huge value must not wrap past
        // the length check (H14). Untrusted header: the full path, which
        // reads the file without it and reports real damage by line.
        let Some(base_end) = header_len.checked_add(h.body) else {
            return Ok(None);
        };
        if !h.is_complete() || base_end > meta.len() || base_end > u64::from(u32::MAX) {
            return Ok(None);
        }
        let identity = Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            generation: h.generation,
            body: h.body,
            hash: h.hash,
        };
        let stamp = Stamp::of(&meta);
        let mut stamp_dirty = false;
        let mut index = match Index::open(&self.dir).filter(|i| i.identity == identity) {
            Some(i) if i.stamp == stamp => i,
            Some(i) => {
                if self.verified_body(&file, header_len, &h)?.is_none() {
                    return Ok(None);
                }
                stamp_dirty = true;
                i
            }
            None => {
                let Some(body) = self.verified_body(&file, header_len, &h)? else {
                    return Ok(None);
                };
                tracing::debug!(path = %path.display(), "rebuilding the inventory index");
                let addrs = base_addresses(&body, header_len as u32);
                self.remove_stale_temps();
                if let Err(e) = Index::write(&self.dir, identity, stamp, addrs) {
                    tracing::warn!(dir = %self.dir.display(), "cannot write the inventory index: {e}");
                    return Ok(None);
                }
                match Index::open(&self.dir) {
                    Some(i) => i,
                    None => return Ok(None),
                }
            }
        };
        let mut jbytes = vec![0u8; (meta.len() - base_end) as usize];
        file.read_exact_at(&mut jbytes, base_end).map_err(io)?;
        let journal = format::scan_journal(&jbytes, h.lines as usize).map_err(|e| self.damaged(e))?;
        let mut view = IndexedView {
            file: &file,
            path: &path,
            lo: header_len,
            hi: base_end - JOURNAL_LINE.len() as u64 - 1,
            index: &mut index,
            overlay: BTreeMap::new(),
            delta: BTreeMap::new(),
            pending: vec![],
            damaged: None,
        };
        for (l, line) in &journal.lines {
            let r = format::parse_record(line).map_err(|message| self.damaged(FormatError { line: *l, message }))?;
            view.absorb(&r);
        }
        let out = f(&mut view);
        if let Some(why) = view.damaged.take() {
            #[cfg(test)]
            INDEX_FALLBACKS.with(|c| c.set(c.get() + 1));
            tracing::warn!(dir = %self.dir.display(), "inventory index is inconsistent ({why}); rebuilding it");
            let _ = fs::remove_file(self.dir.join(index::FILE));
            return Ok(None);
        }
        let out = out?;
        let (pending, overlay) = (std::mem::take(&mut view.pending), std::mem::take(&mut view.overlay));
        if pending.is_empty() {
            if stamp_dirty {
                if let Err(e) = index.set_stamp(stamp) {
                    tracing::warn!(dir = %self.dir.display(), "cannot update the inventory index: {e}");
                }
            }
            return Ok(Some(out));
        }
        let mut text = String::new();
        let mut longest = 0;
        for r in &pending {
            let start = text.len();
            format::write_record(&mut text, r);
            longest = longest.max(text.len() - start);
        }
        let valid_end = base_end + journal.valid_len as u64;
        // why: several records are one change; appended as several lines
        // a torn write could keep some of them, so they go through the
        // all-or-nothing rename instead (assign and release set one jail).
        if journal.valid_len as u64 + text.len() as u64 > self.journal_max
            || longest > format::MAX_RECORD
            || pending.len() > 1
        {
            // why: the base is trusted by its stamp; it is read here anyway,
            // so check its hash before it becomes part of the new file.
            let Some(body) = self.verified_body(&file, header_len, &h)? else {
                return Ok(None);
            };
            let Ok(body) = String::from_utf8(body) else {
                return Ok(None);
            };
            let lines: BTreeMap<JailName, Option<String>> = overlay
                .into_iter()
                .map(|(n, r)| {
                    let l = r.map(|r| {
                        let mut s = String::new();
                        inventory::write_jail_line(&mut s, n.as_str(), &r);
                        s
                    });
                    (n, l)
                })
                .collect();
            self.commit_full(&format::merge(&body, &lines, h.generation + 1))?;
            return Ok(Some(out));
        }
        let cant = |e| Error::CantCreate {
            path: self.path(),
            source: e,
        };
        let w = secure::open_write(&path)?;
        let wm = w.metadata().map_err(io)?;
        if (wm.dev(), wm.ino()) != (meta.dev(), meta.ino()) {
            // Replaced since it was read (not by jnet: we hold the lock).
            return Ok(None);
        }
        // why: a compaction killed before its rename leaves a temp file;
        // appends are the common change, so clean up here too (H23).
        self.remove_stale_temps();
        if meta.len() > valid_end {
            tracing::debug!(path = %path.display(), bytes = meta.len() - valid_end, "cutting off a torn journal tail");
            w.set_len(valid_end).map_err(cant)?;
        }
        test_pause();
        w.write_all_at(text.as_bytes(), valid_end).map_err(cant)?;
        w.sync_data().map_err(cant)?;
        match w.metadata() {
            Ok(m) => {
                if let Err(e) = index.set_stamp(Stamp::of(&m)) {
                    tracing::warn!(dir = %self.dir.display(), "cannot update the inventory index: {e}");
                }
            }
            Err(e) => tracing::warn!(path = %path.display(), "cannot stat the inventory: {e}"),
        }
        Ok(Some(out))
    }

    /// The base body if its hash matches the header and it ends in the
    /// `journal` line; `None` otherwise (edited by hand).
    fn verified_body(&self, file: &File, header_len: u64, h: &Header) -> Result<Option<Vec<u8>>> {
        let mut body = vec![0u8; h.body as usize];
        file.read_exact_at(&mut body, header_len)
            .map_err(|e| Error::io(self.path(), e))?;
        let tail = format!("\n{JOURNAL_LINE}\n");
        if format::hash64(&body) != h.hash || !body.ends_with(tail.as_bytes()) {
            tracing::debug!(path = %self.path().display(), "inventory base does not match its header");
            return Ok(None);
        }
        Ok(Some(body))
    }

    /// Writes a whole new file (compaction), then its index.
    fn commit_full(&self, r: &Rendered) -> Result<()> {
        self.write(r.text.as_bytes())?;
        let path = self.path();
        match fs::metadata(&path) {
            Ok(m) => {
                let h = &r.header;
                let id = Identity {
                    dev: m.dev(),
                    ino: m.ino(),
                    generation: h.generation,
                    body: h.body,
                    hash: h.hash,
                };
                if let Err(e) = Index::write(&self.dir, id, Stamp::of(&m), r.addrs.clone()) {
                    tracing::warn!(dir = %self.dir.display(), "cannot write the inventory index: {e}");
                }
            }
            Err(e) => tracing::warn!(path = %path.display(), "cannot stat the inventory: {e}"),
        }
        Ok(())
    }

    /// Compare-and-set of a jail's phase in one locked update; see
    /// [`Backend::set_phase_if`](crate::store::Backend::set_phase_if).
    pub fn set_phase_if(
        &self,
        jail: &JailName,
        from: &[crate::core::lifecycle::Phase],
        to: crate::core::lifecycle::Phase,
        jid: Option<u32>,
    ) -> Result<crate::store::PhaseChange> {
        crate::store::Backend::set_phase_if(self, jail, from, to, jid)
    }

    /// Takes the exclusive inventory lock, polling until `lock_timeout`.
    /// Creates the state directory (0700) and the lock file (0600) first.
    fn lock(&self) -> Result<Flock> {
        secure::ensure_dir(&self.dir)?;
        let path = self.dir.join(LOCK);
        let file = secure::open_lock(&path)?;
        flock_within(file, &path, self.lock_timeout)?.map_err(|waited_ms| Error::LockTimeout { path, waited_ms })
    }

    /// Takes the lifecycle lock of one jail: an exclusive flock on
    /// `<state>/jails/<name>.lock` (directory 0700, file 0600, no links
    /// followed), waiting up to the store's lock timeout. Start, stop,
    /// restart and the hooks hold it for their whole run, so two of them
    /// never work on one jail at once (H3); it is independent of the
    /// inventory lock, which they still take for each read-decide-write.
    /// Released when the [`JailLock`] is dropped.
    ///
    /// Fails with exit 75 (`jail www is busy: ...`) after the timeout.
    pub fn lock_jail(&self, jail: &JailName) -> Result<JailLock> {
        secure::ensure_dir(&self.dir)?;
        let dir = self.dir.join(JAIL_LOCKS);
        secure::ensure_dir(&dir)?;
        // why: a JailName has no '/' and is not "." or ".." (core::names),
        // so this stays inside `jails/`.
        let path = dir.join(format!("{}.lock", jail.as_str()));
        let file = secure::open_lock(&path)?;
        match flock_within(file, &path, self.lock_timeout)? {
            Ok(held) => Ok(JailLock::new(jail.clone(), held)),
            Err(waited_ms) => Err(Error::JailBusy {
                jail: jail.to_string(),
                waited_ms,
            }),
        }
    }

    /// Temp file, fsync, rename, fsync of the directory.
    fn write(&self, text: &[u8]) -> Result<()> {
        let cant = |p: &Path, e| Error::CantCreate {
            path: p.to_path_buf(),
            source: e,
        };
        self.remove_stale_temps();
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(&self.dir)
            .map_err(|e| cant(&self.dir, e))?;
        tmp.write_all(text).map_err(|e| cant(tmp.path(), e))?;
        tmp.as_file().sync_all().map_err(|e| cant(tmp.path(), e))?;
        test_pause();
        let path = self.path();
        // why: rename(2) replaces a symlink at `path` itself and never
        // writes through it; read_bytes has refused a linked inventory
        // before any update gets here.
        tmp.persist(&path).map_err(|e| cant(&path, e.error))?;
        secure::ensure_dir(&self.dir)?
            .sync_all()
            .map_err(|e| cant(&self.dir, e))?;
        Ok(())
    }

    /// Removes temp files left by a process killed mid-write (we hold the
    /// lock, so no live writer owns them).
    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                tracing::debug!(path = %e.path().display(), "removing stale temp file");
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// `(index key, offset of the line)` of every address of every jail line
/// of a base body (offsets relative to the file: `body_at` is where the
/// body starts).
fn base_addresses(body: &[u8], body_at: u32) -> Vec<(u128, u32)> {
    let mut out = vec![];
    let mut pos = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"jail ") {
            if let Ok(l) = std::str::from_utf8(line) {
                let (a4, a6) = inventory::quick_addresses(l);
                for a in a4.map(IpAddr::V4).into_iter().chain(a6.map(IpAddr::V6)) {
                    out.push((index::key(a), body_at + pos as u32));
                }
            }
        }
        pos += line.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::JailName;

    #[test]
    fn update_writes_only_on_change_and_not_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::new(dir.path().join("state"), Duration::from_secs(1));
        assert_eq!(st.read().unwrap(), Inventory::default());
        st.update(|inv| {
            inv.jails.insert(JailName::new("a").unwrap(), JailRecord::inherit());
            Ok(())
        })
        .unwrap();
        let first = fs::read_to_string(st.path()).unwrap();
        let r: Result<()> = st.update(|inv| {
            inv.jails.clear();
            Err(Error::data("refused"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read_to_string(st.path()).unwrap(), first);
        assert_eq!(st.read().unwrap().jails.len(), 1);
    }

    #[test]
    fn lock_timeout_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::new(dir.path(), Duration::from_millis(50));
        let held = st.lock().unwrap();
        let e = st.update(|_| Ok(())).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Busy);
        assert!(e.to_string().contains("locked by another jnet process"), "{e}");
        drop(held);
        st.update(|_| Ok(())).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn set_mode(p: &Path, m: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    }

    fn one(st: &Store, jail: &str, a: [u8; 4]) -> Result<()> {
        st.update_view(|v| {
            v.set(
                &JailName::new(jail).unwrap(),
                Some(JailRecord::dedicated(a.into(), None, None)),
            )
        })
    }

    /// H1: with the usual umask 022 the state directory used to be 0755
    /// and the lock 0644, so anyone could flock it.
    #[test]
    fn state_files_are_root_only() {
        let d = tempfile::tempdir().unwrap();
        let st = Store::new(d.path().join("state"), Duration::from_secs(1));
        one(&st, "a", [10, 0, 0, 1]).unwrap();
        let _j = st.lock_jail(&JailName::new("www").unwrap()).unwrap();
        for (p, want) in [
            ("", 0o700),
            ("inventory", 0o600),
            ("inventory.lock", 0o600),
            ("inventory.idx", 0o600),
            ("jails", 0o700),
            ("jails/www.lock", 0o600),
        ] {
            assert_eq!(mode(&st.dir().join(p)), want, "{p}");
        }
        // An old install's readable lock is tightened by the next change.
        set_mode(&st.dir().join(LOCK), 0o644);
        one(&st, "b", [10, 0, 0, 2]).unwrap();
        assert_eq!(mode(&st.dir().join(LOCK)), 0o600);
    }

    /// H2, inputs A and C of the finding.
    #[test]
    fn symlinked_or_shared_state_is_refused_and_nothing_is_written() {
        let d = tempfile::tempdir().unwrap();
        // A: a sticky 1777 directory with a planted lock link.
        let ws = d.path().join("ws");
        fs::create_dir(&ws).unwrap();
        set_mode(&ws, 0o1777);
        let target = d.path().join("created_by_root");
        std::os::unix::fs::symlink(&target, ws.join(LOCK)).unwrap();
        let st = Store::new(&ws, Duration::from_secs(1));
        let e = one(&st, "zz", [10, 0, 0, 1]).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::CantCreate, "{e}");
        assert!(e.to_string().contains(&format!("chmod 700 {}", ws.display())), "{e}");
        assert!(st.read().is_err(), "a shared directory is not read either");
        set_mode(&ws, 0o700);
        let e = one(&st, "zz", [10, 0, 0, 1]).unwrap_err();
        assert!(e.to_string().contains("remove the symlink"), "{e}");
        assert!(!target.exists(), "root created a file through the link");

        // C: the inventory is a link to another file.
        let s2 = d.path().join("s2");
        let real = d.path().join("real_inv");
        let st = Store::new(&s2, Duration::from_secs(1));
        one(&st, "a", [10, 0, 0, 1]).unwrap();
        fs::rename(st.path(), &real).unwrap();
        std::os::unix::fs::symlink(&real, st.path()).unwrap();
        let before = fs::read(&real).unwrap();
        for e in [
            one(&st, "q1", [10, 0, 0, 2]).unwrap_err(),
            st.update(|inv| {
                inv.jails.clear();
                Ok(())
            })
            .unwrap_err(),
            st.read().unwrap_err(),
        ] {
            assert_eq!(e.kind(), crate::error::ErrorKind::CantCreate, "{e}");
            assert!(e.to_string().contains("remove the symlink"), "{e}");
        }
        assert_eq!(fs::read(&real).unwrap(), before, "written through the link");
        assert!(
            fs::symlink_metadata(st.path()).unwrap().file_type().is_symlink(),
            "link replaced"
        );

        // A group-writable inventory is refused too.
        let s3 = d.path().join("s3");
        let st = Store::new(&s3, Duration::from_secs(1));
        one(&st, "a", [10, 0, 0, 1]).unwrap();
        set_mode(&st.path(), 0o664);
        let e = one(&st, "b", [10, 0, 0, 2]).unwrap_err();
        assert!(
            e.to_string().contains(&format!("chmod 600 {}", st.path().display())),
            "{e}"
        );
    }

    /// H14: a header whose body= wraps the offset or exceeds the file is
    /// not trusted; the full path handles the file instead of panicking.
    #[test]
    fn header_with_huge_body_is_not_trusted() {
        for body in ["18446744073709551615", "18446744073709551584", "99999999"] {
            let d = tempfile::tempdir().unwrap();
            let st = Store::new(d.path(), Duration::from_secs(1));
            one(&st, "a1", [10, 0, 0, 1]).unwrap();
            let text = fs::read_to_string(st.path()).unwrap();
            let (head, rest) = text.split_once('\n').unwrap();
            let h = format::parse_header(head).unwrap();
            let forged = head.replace(&format!("body={}", h.body), &format!("body={body}"));
            assert_ne!(forged, head);
            fs::write(st.path(), format!("{forged}\n{rest}")).unwrap();
            assert_eq!(st.read().unwrap().jails.len(), 1, "{body}");
            one(&st, "zz", [10, 0, 0, 2]).unwrap();
            st.update_view(|v| v.set(&JailName::new("a1").unwrap(), None)).unwrap();
            let inv = st.read().unwrap();
            assert_eq!(
                inv.jails.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
                ["zz"],
                "{body}"
            );
            // The first change rewrote the file with a true header.
            let text = fs::read(st.path()).unwrap();
            let p = format::parse(&text).unwrap();
            assert_eq!(
                p.header_len as u64 + p.header.body,
                p.base_end.unwrap() as u64,
                "{body}"
            );
        }
    }

    /// H23: a temp file left by a killed compaction goes with the next
    /// append, not only with the next compaction.
    #[test]
    fn append_removes_stale_temps() {
        let d = tempfile::tempdir().unwrap();
        let st = Store::new(d.path(), Duration::from_secs(1)).with_journal_max(1 << 20);
        one(&st, "a", [10, 0, 0, 1]).unwrap();
        let stale = d.path().join(format!("{TMP_PREFIX}BTjXcS"));
        fs::write(&stale, "a full copy").unwrap();
        let ino = fs::metadata(st.path()).unwrap().ino();
        one(&st, "k9", [10, 0, 0, 2]).unwrap();
        assert_eq!(fs::metadata(st.path()).unwrap().ino(), ino, "the change was an append");
        assert!(!stale.exists(), "stale temp file left after an append");
    }

    /// M1: a user who cannot open the lock gets 77, like a read failing
    /// with EACCES, not 73. Runs as uid 65534 in a child when root.
    #[test]
    fn no_permission_for_the_lock_is_77_like_a_read() {
        let check = |dir: &Path| {
            let st = Store::new(dir, Duration::from_secs(1));
            let e = one(&st, "a", [10, 0, 0, 9]).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Permission, "{e}");
            assert!(e.to_string().contains("inventory.lock"), "{e}");
            let e = st.read().unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Permission, "{e}");
        };
        if let Some(dir) = std::env::var_os("JNET_STORE_M1_CHILD") {
            check(Path::new(&dir));
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        let st = Store::new(&dir, Duration::from_secs(1));
        one(&st, "a", [10, 0, 0, 1]).unwrap();
        // Others may enter the directory but not open its files.
        set_mode(d.path(), 0o755);
        set_mode(&dir, 0o755);
        if !nix::unistd::geteuid().is_root() {
            check(&dir);
            return;
        }
        use std::os::unix::process::CommandExt;
        let st = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::file::tests::no_permission_for_the_lock_is_77_like_a_read",
                "--test-threads=1",
            ])
            .env("JNET_STORE_M1_CHILD", &dir)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(
            st.status.success() && String::from_utf8_lossy(&st.stdout).contains("1 passed"),
            "{}{}",
            String::from_utf8_lossy(&st.stdout),
            String::from_utf8_lossy(&st.stderr)
        );
    }

    /// H24: every environment variable the store reads is a test hook,
    /// compiled only with the `test-hooks` feature (which only the test
    /// build enables), so a release binary has none. Checks the sources:
    /// each `std::env::var(` outside test modules sits in a function that
    /// carries that cfg.
    #[test]
    fn environment_reads_are_test_hooks_only() {
        const GATE: &str = "#[cfg(any(test, feature = \"test-hooks\"))]";
        let sources = [
            ("file/mod.rs", include_str!("mod.rs")),
            ("file/format.rs", include_str!("format.rs")),
            ("file/index.rs", include_str!("index.rs")),
            ("file/view.rs", include_str!("view.rs")),
            ("file/secure.rs", include_str!("secure.rs")),
            ("mod.rs", include_str!("../mod.rs")),
            ("inventory.rs", include_str!("../inventory.rs")),
            ("view.rs", include_str!("../view.rs")),
        ];
        let mut reads = 0;
        for (name, text) in sources {
            let lines: Vec<&str> = text.lines().collect();
            let end = lines
                .windows(2)
                .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].starts_with("mod tests"))
                .unwrap_or(lines.len());
            for (i, l) in lines[..end].iter().enumerate() {
                if !l.contains(concat!("std::env::", "var(")) {
                    continue;
                }
                reads += 1;
                let f = (0..i)
                    .rev()
                    .find(|&k| lines[k].starts_with("fn ") || lines[k].starts_with("pub fn "))
                    .unwrap_or_else(|| panic!("{name}:{}: environment read outside a function", i + 1));
                let attr = (0..f).rev().find(|&k| !lines[k].starts_with("///"));
                assert_eq!(
                    attr.map(|k| lines[k]),
                    Some(GATE),
                    "{name}:{}: environment read in `{}` is not behind the test-hooks feature",
                    i + 1,
                    lines[f]
                );
            }
        }
        assert_eq!(reads, 2, "JNET_JOURNAL_MAX_BYTES and JNET_TEST_WRITE_PAUSE_MS");
    }

    #[test]
    fn damaged_inventory_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::new(dir.path(), Duration::from_secs(1));
        fs::write(st.path(), "jnet-inventory 1\njail x mode=bogus\n").unwrap();
        let e = st.update(|inv| {
            inv.jails.clear();
            Ok(())
        });
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("inventory:2:") && msg.contains("unknown mode"), "{msg}");
        assert!(fs::read_to_string(st.path()).unwrap().contains("mode=bogus"));
    }
}

#[cfg(test)]
thread_local! {
    /// How often the fast path found its index inconsistent (tests check
    /// that only damaged indexes do that).
    static INDEX_FALLBACKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod journal_tests;
