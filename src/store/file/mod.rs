//! The inventory on disk: one schema-versioned text file
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
//!   kill mid-append leaves a torn tail, which every reader ignores (the
//!   state before) and the next writer cuts off under the lock. So again:
//!   the previous or the new state, never a broken one.
//!
//! The journal is bounded (`JNET_JOURNAL_MAX_BYTES`, default 32 KiB, about
//! 300 records; tests set it low to force compactions), so the fast path
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

pub mod format;
pub mod index;
pub mod view;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(test)]
use crate::store::inventory::JailRecord;
use crate::store::inventory::{self, Inventory};
use crate::store::view::{FullView, View};

use crate::core::names::JailName;
use crate::error::{Error, Result};
use format::{Header, Parsed, Rendered, JOURNAL_LINE};
use index::{Identity, Index, Stamp};
use inventory::FormatError;
use view::IndexedView;

const FILE: &str = "inventory";
const LOCK: &str = "inventory.lock";
pub(crate) const TMP_PREFIX: &str = ".inventory.tmp";
const DEFAULT_JOURNAL_MAX: u64 = 32 * 1024;
/// Bound of the journal in bytes. Meant for tests (to force compactions)
/// and tuning; not part of the CLI.
pub const JOURNAL_MAX_ENV: &str = "JNET_JOURNAL_MAX_BYTES";

/// The state directory and its inventory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    lock_timeout: Duration,
    journal_max: u64,
}

fn journal_max_from_env() -> u64 {
    std::env::var(JOURNAL_MAX_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_JOURNAL_MAX)
}

fn test_pause() {
    if let Some(ms) = std::env::var("JNET_TEST_WRITE_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // Test hook: widens the window just before the commit point (rename
        // or append) so the kill-during-write test can land a SIGKILL in it.
        std::thread::sleep(Duration::from_millis(ms));
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

    fn read_bytes(&self) -> Result<Option<Vec<u8>>> {
        let path = self.path();
        match fs::read(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn parse(&self, bytes: &[u8]) -> Result<Parsed> {
        format::parse(bytes).map_err(|e| self.damaged(e))
    }

    /// Reads the current inventory; a missing file is an empty inventory.
    pub fn read(&self) -> Result<Inventory> {
        match self.read_bytes()? {
            Some(b) => Ok(self.parse(&b)?.inventory),
            None => Ok(Inventory::default()),
        }
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
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
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
        let base_end = header_len + h.body;
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
        let w = OpenOptions::new().write(true).open(&path).map_err(cant)?;
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

    fn ensure_dir(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::CantCreate {
            path: self.dir.clone(),
            source: e,
        })
    }

    /// Takes the exclusive lock, polling until `lock_timeout`.
    fn lock(&self) -> Result<File> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::CantCreate {
                path: path.clone(),
                source: e,
            })?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
            }
            if start.elapsed() >= self.lock_timeout {
                return Err(Error::LockTimeout {
                    path,
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(pause);
            // why: short first waits keep many concurrent assigns fast; the
            // cap keeps a long wait from spinning.
            pause = (pause * 2).min(Duration::from_millis(20));
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
        tmp.persist(&path).map_err(|e| cant(&path, e.error))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
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

/// `(address, offset of the line)` of every jail line of a base body
/// (offsets relative to the file: `body_at` is where the body starts).
fn base_addresses(body: &[u8], body_at: u32) -> Vec<(u32, u32)> {
    let mut out = vec![];
    let mut pos = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"jail ") {
            if let Some(a) = std::str::from_utf8(line).ok().and_then(inventory::quick_address) {
                out.push((u32::from(a), body_at + pos as u32));
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
        assert_eq!(e.exit_status(), crate::error::ExitStatus::TempFail);
        assert!(e.to_string().contains("locked by another jnet process"), "{e}");
        drop(held);
        st.update(|_| Ok(())).unwrap();
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
