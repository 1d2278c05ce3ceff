//! Reading and writing a jail's run-time record (`/run/jnet/jails/<jail>`,
//! see `LinuxHost`): the directory is 0700 and the files 0600 whatever the
//! umask, both owned by jnet's user; a symlink is never followed (O_NOFOLLOW
//! on the file, lstat on the directory). It does not decide what a record
//! holds.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::JailRecord;
use crate::os::OsError;

fn sys_at(op: &str, path: &Path) -> impl FnOnce(std::io::Error) -> OsError {
    let op = format!("{op} {}", path.display());
    move |source| OsError::Sys { op, source }
}

fn refuse(dir: &Path, why: &str) -> OsError {
    OsError::Sys {
        op: format!("record directory {}", dir.display()),
        source: std::io::Error::other(format!("{why}; remove it and retry (jnet recreates it 0700)")),
    }
}

/// Creates `dir` 0700 (its parents as needed), or checks an existing one:
/// a real directory owned by jnet's user; group or other access is taken
/// away (an older jnet made it 0755).
fn private_dir(dir: &Path) -> Result<(), OsError> {
    if let Some(parent) = dir.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(sys_at("create directory", parent))?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(sys_at("create directory", dir)(e)),
    }
    let m = fs::symlink_metadata(dir).map_err(sys_at("stat", dir))?;
    if m.file_type().is_symlink() {
        return Err(refuse(dir, "it is a symlink"));
    }
    if !m.is_dir() {
        return Err(refuse(dir, "it is not a directory"));
    }
    if m.uid() != nix::unistd::geteuid().as_raw() {
        return Err(refuse(dir, &format!("it is owned by uid {}, not jnet's", m.uid())));
    }
    if m.mode() & 0o7777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(sys_at("chmod 0700", dir))?;
    }
    Ok(())
}

/// Writes `record` to `path` (see the module doc).
pub fn write(path: &Path, record: &JailRecord) -> Result<(), OsError> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let text = serde_json::to_string(record).map_err(|e| OsError::Sys {
        op: format!("encode {}", path.display()),
        source: std::io::Error::other(e),
    })?;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(sys_at("write", path))?;
    // An existing file keeps its mode through open(2): set it.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(sys_at("chmod 0600", path))?;
    f.write_all(text.as_bytes()).map_err(sys_at("write", path))
}

/// The record at `path`, or None when there is none, it is a symlink, or
/// it does not parse.
pub fn read(path: &Path) -> Option<JailRecord> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let mut text = String::new();
    // A record is a few hundred bytes; cap what is read.
    (&mut f).take(1 << 20).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}
