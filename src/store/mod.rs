//! The inventory on disk: one schema-versioned text file
//! (`<state dir>/inventory`), read and replaced under an exclusive flock on
//! `<state dir>/inventory.lock`.
//!
//! A change is written to a temporary file in the same directory, fsynced,
//! renamed over the inventory, and the directory is fsynced, so a process
//! killed at any point leaves either the previous or the new inventory. The
//! lock is held for the whole read-modify-write, so concurrent jnet
//! processes serialise and never hand out one address twice. Readers that do
//! not modify take no lock: rename makes every read see a whole file.

pub mod inventory;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use inventory::{Inventory, JailRecord, Mode};

use crate::error::{Error, Result};

const FILE: &str = "inventory";
const LOCK: &str = "inventory.lock";
const TMP_PREFIX: &str = ".inventory.tmp";

/// The state directory and its inventory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>, lock_timeout: Duration) -> Self {
        Store { dir: dir.into(), lock_timeout }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Reads the current inventory; a missing file is an empty inventory.
    pub fn read(&self) -> Result<Inventory> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Inventory::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        Inventory::from_text(&text).map_err(|e| {
            Error::data(format!(
                "{}:{}: inventory is damaged: {} (restore it from a backup or fix the line)",
                path.display(),
                e.line,
                e.message
            ))
        })
    }

    /// Runs `f` on the inventory under the exclusive lock and writes the
    /// result back atomically if `f` changed it. When `f` fails nothing is
    /// written.
    pub fn update<T>(&self, f: impl FnOnce(&mut Inventory) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let before = self.read()?;
        let mut inv = before.clone();
        let out = f(&mut inv)?;
        if inv != before {
            self.write(&inv)?;
        }
        Ok(out)
    }

    fn ensure_dir(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::CantCreate { path: self.dir.clone(), source: e })
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
            .map_err(|e| Error::CantCreate { path: path.clone(), source: e })?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
            }
            if start.elapsed() >= self.lock_timeout {
                return Err(Error::LockTimeout { path, waited_ms: start.elapsed().as_millis() as u64 });
            }
            std::thread::sleep(pause);
            // why: short first waits keep many concurrent assigns fast; the
            // cap keeps a long wait from spinning.
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Temp file, fsync, rename, fsync of the directory.
    fn write(&self, inv: &Inventory) -> Result<()> {
        let cant = |p: &Path, e| Error::CantCreate { path: p.to_path_buf(), source: e };
        self.remove_stale_temps();
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(&self.dir)
            .map_err(|e| cant(&self.dir, e))?;
        tmp.write_all(inv.to_text().as_bytes()).map_err(|e| cant(tmp.path(), e))?;
        tmp.as_file().sync_all().map_err(|e| cant(tmp.path(), e))?;
        if let Some(ms) = std::env::var("JNET_TEST_WRITE_PAUSE_MS").ok().and_then(|v| v.parse().ok()) {
            // Test hook: widens the window between fsync and rename so the
            // kill-during-write test can land a SIGKILL inside it.
            std::thread::sleep(Duration::from_millis(ms));
        }
        let path = self.path();
        tmp.persist(&path).map_err(|e| cant(&path, e.error))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| cant(&self.dir, e))?;
        Ok(())
    }

    /// Removes temp files left by a process killed mid-write (we hold the
    /// lock, so no live writer owns them).
    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                tracing::debug!(path = %e.path().display(), "removing stale temp file");
                let _ = fs::remove_file(e.path());
            }
        }
    }
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
