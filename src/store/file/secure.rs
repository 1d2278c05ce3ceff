//! Opening the state directory and its files so that no other local user
//! can steer root through them (hardening findings H1, H2, M1).
//!
//! What it enforces, for the state directory, `jails/` under it, the
//! inventory and the lock files:
//!
//! - Nothing is reached through a symbolic link: files are opened with
//!   `O_NOFOLLOW`, directories with `O_NOFOLLOW | O_DIRECTORY`, and the
//!   checks run on the opened descriptor (fstat), so a link swapped in
//!   between check and use is not followed either.
//! - A directory or file must be owned by jnet's effective user or by root,
//!   and must not be writable by group or others (a sticky 1777 directory
//!   is refused too: its other users can still create names in it).
//! - Directories jnet creates get mode 0700 and lock files 0600, set
//!   explicitly after creation, so the umask decides nothing; an old lock
//!   file that others can read (and so flock, H1) is tightened to 0600.
//!
//! A refusal is [`Error::UnsafeState`] (exit 73) naming the path and the
//! command that fixes it. Failing to open because of permissions is exit
//! 77, the same as a read failing that way (M1).
//!
//! It does not check the directories above the state directory (symlinks
//! there, e.g. `/var -> /private/var`, are the administrator's choice), and
//! it does not protect against root itself.
//!
//! Symlink errno: Linux open(2) gives ELOOP for `O_NOFOLLOW` on a link,
//! FreeBSD gives EMLINK (sys/kern/vfs_vnops.c, `vn_open_vnode`:
//! `if (vp->v_type == VLNK) return (EMLINK);`). Neither is relied on: after
//! any failed open the path is lstat'ed to tell a link from other errors.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// What a path is expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn unsafe_state(path: &Path, problem: String, fix: String) -> Error {
    Error::UnsafeState {
        path: path.to_path_buf(),
        problem,
        fix,
    }
}

/// The error for a failed open or create of `path`: a symbolic link is a
/// refusal, missing permission is exit 77 (like a failed read), anything
/// else exit 73.
fn open_error(path: &Path, e: std::io::Error) -> Error {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return unsafe_state(
            path,
            "is a symbolic link; jnet does not follow links in its state directory".into(),
            format!(
                "remove the symlink (rm {}) and let jnet create the real one, or set state_dir to the real path",
                path.display()
            ),
        );
    }
    if e.kind() == ErrorKind::PermissionDenied {
        return Error::io(path, e);
    }
    Error::CantCreate {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Checks the owner and mode of an opened `path` (its fstat).
fn check(path: &Path, m: &fs::Metadata, kind: Kind) -> Result<()> {
    let what = match kind {
        Kind::Dir => "state directory",
        Kind::File => "state file",
    };
    match kind {
        Kind::Dir if !m.is_dir() => {
            return Err(unsafe_state(
                path,
                format!("{what} is not a directory"),
                "point --state-dir at a directory or remove what is there".into(),
            ))
        }
        Kind::File if !m.is_file() => {
            return Err(unsafe_state(
                path,
                format!("{what} is not a regular file"),
                format!("remove it (rm {}); jnet recreates it", path.display()),
            ))
        }
        _ => {}
    }
    let me = euid();
    if m.uid() != me && m.uid() != 0 {
        return Err(unsafe_state(
            path,
            format!("{what} is owned by uid {}, not by uid {me} (jnet) or root", m.uid()),
            format!("chown {me} {}", path.display()),
        ));
    }
    if m.mode() & 0o022 != 0 {
        let want = if kind == Kind::Dir { "700" } else { "600" };
        return Err(unsafe_state(
            path,
            format!("{what} is writable by group or others (mode {:04o})", m.mode() & 0o7777),
            format!("chmod {want} {}", path.display()),
        ));
    }
    Ok(())
}

fn open_dir_raw(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)
}

/// Opens and checks an existing directory; `None` when it does not exist.
pub fn open_dir(dir: &Path) -> Result<Option<File>> {
    match open_dir_raw(dir) {
        Ok(d) => {
            let m = d.metadata().map_err(|e| Error::io(dir, e))?;
            check(dir, &m, Kind::Dir)?;
            Ok(Some(d))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(dir, e)),
    }
}

/// Creates `dir` (and missing parents) with mode 0700 if it is missing,
/// then checks it.
pub fn ensure_dir(dir: &Path) -> Result<File> {
    if let Some(d) = open_dir(dir)? {
        return Ok(d);
    }
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(open_error(dir, e)),
    }
    let d = open_dir_raw(dir).map_err(|e| open_error(dir, e))?;
    // why: mkdir(2) masks the mode with the umask; set it explicitly so a
    // umask of 0 cannot leave the directory open to others, nor a strict
    // one leave it unusable. fchmod on the opened (not followed) directory.
    let m = d.metadata().map_err(|e| Error::io(dir, e))?;
    if m.is_dir() && m.uid() == euid() && m.mode() & 0o777 != 0o700 {
        d.set_permissions(Permissions::from_mode(0o700))
            .map_err(|e| open_error(dir, e))?;
    }
    let m = d.metadata().map_err(|e| Error::io(dir, e))?;
    check(dir, &m, Kind::Dir)?;
    Ok(d)
}

/// Opens an existing state file for reading; `None` when it is missing.
pub fn open_read(path: &Path) -> Result<Option<File>> {
    match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => {
            let m = f.metadata().map_err(|e| Error::io(path, e))?;
            check(path, &m, Kind::File)?;
            Ok(Some(f))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(path, e)),
    }
}

/// Opens an existing state file for writing in place (the journal append).
pub fn open_write(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let m = f.metadata().map_err(|e| Error::io(path, e))?;
    check(path, &m, Kind::File)?;
    Ok(f)
}

/// Opens (creating with mode 0600) a lock file and makes sure only its
/// owner can open it: flock(2) needs no write access, so a lock file
/// others can read is a lock they can hold forever (H1).
pub fn open_lock(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let m = f.metadata().map_err(|e| Error::io(path, e))?;
    check(path, &m, Kind::File)?;
    if m.mode() & 0o077 != 0 && m.uid() == euid() {
        tracing::debug!(path = %path.display(), mode = format!("{:04o}", m.mode() & 0o7777), "tightening the lock file to 0600");
        f.set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| open_error(path, e))?;
    }
    Ok(f)
}

/// Whether an opened file is one jnet may trust (owner, mode), for derived
/// files such as the index that are rebuilt rather than refused.
pub fn trusted(m: &fs::Metadata) -> bool {
    m.is_file() && (m.uid() == euid() || m.uid() == 0) && m.mode() & 0o022 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    /// Runs in a child started with umask 000 (the umask is per process;
    /// changing it here would race the other tests' file creations).
    #[test]
    fn created_dir_is_0700_and_lock_0600_whatever_the_umask() {
        if let Some(dir) = std::env::var_os("JNET_STORE_UMASK_CHILD") {
            let dir = Path::new(&dir);
            ensure_dir(dir).unwrap();
            open_lock(&dir.join("x.lock")).unwrap();
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("um/deep");
        let me = std::env::current_exe().unwrap();
        let st = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(&me)
            .args([
                "--exact",
                "store::file::secure::tests::created_dir_is_0700_and_lock_0600_whatever_the_umask",
                "--test-threads=1",
            ])
            .env("JNET_STORE_UMASK_CHILD", &dir)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&d.path().join("um")) & 0o022, 0, "parents not open to others");
        assert_eq!(mode(&dir.join("x.lock")), 0o600);
        // Without the fix the child's umask 000 gives 0777 and 0666.
        let probe = d.path().join("probe");
        let st = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("umask 000 && mkdir \"$0\"")
            .arg(&probe)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(mode(&probe), 0o777, "the child really ran with umask 000");
    }

    #[test]
    fn symlinks_and_open_modes_are_refused_with_a_fix() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("created_by_root");
        let ws = d.path().join("ws");
        fs::create_dir(&ws).unwrap();
        symlink(&target, ws.join("inventory.lock")).unwrap();
        let e = open_lock(&ws.join("inventory.lock")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CantCreate);
        assert!(e.to_string().contains("remove the symlink"), "{e}");
        assert!(!target.exists(), "nothing created through the link");

        fs::set_permissions(&ws, Permissions::from_mode(0o1777)).unwrap();
        let e = ensure_dir(&ws).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CantCreate);
        assert!(e.to_string().contains(&format!("chmod 700 {}", ws.display())), "{e}");

        let link = d.path().join("linked");
        symlink(d.path(), &link).unwrap();
        let e = ensure_dir(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");

        let f = d.path().join("inv");
        fs::write(&f, "x").unwrap();
        fs::set_permissions(&f, Permissions::from_mode(0o666)).unwrap();
        let e = open_read(&f).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CantCreate);
        assert!(e.to_string().contains(&format!("chmod 600 {}", f.display())), "{e}");
        let e = open_write(&f).unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");
    }

    #[test]
    fn readable_lock_file_is_tightened() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("inventory.lock");
        fs::write(&p, "").unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        open_lock(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn foreign_owner_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("inventory");
        fs::write(&p, "").unwrap();
        if euid() != 0 {
            // Only root can give a file away; as another user the check is
            // covered by the root run (CI runs as root).
            assert!(std::env::var_os("CI").is_none(), "CI must run the store tests as root");
            return;
        }
        nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        // Root trusts only its own files: another user's file is refused.
        let e = open_read(&p).unwrap_err();
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        assert!(e.to_string().contains("chown 0 "), "{e}");
    }
}
