//! jail.conf's mounts on FreeBSD: runs mount(8) and umount(8) by absolute
//! path with the argument vectors of `os::mount` (no shell), after the
//! checks jail(8) makes (usr.sbin/jail/command.c `check_path()`: no
//! symbolic link below the jail's root on the way to the mount point).
//!
//! Both verbs are idempotent: `mount -p` (mounted filesystems in fstab(5)
//! form, mount(8) `-p`) tells whether the mount point already holds a
//! filesystem of that type, so a repeated start does not stack a second
//! devfs and a stop of something not mounted is a no-op. It mounts nothing
//! jail.conf did not name; the order is the planner's.

use crate::core::names::JailName;
use crate::os::mount::{self, MountEntry, MOUNT, UMOUNT};
use crate::os::{runner, OsError};

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// What is mounted now, as `mount -p` prints it.
fn mounted() -> Result<String, OsError> {
    Ok(runner::run(MOUNT, &["-p"], None)?.stdout)
}

/// Mounts `m` for jail `jail` unless it is already mounted.
pub fn mount(jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
    if let Some(link) = mount::symlink_below(&m.root, &m.file) {
        return Err(OsError::Unsupported(format!(
            "jail {jail}: {}: {} is a symbolic link",
            m.source,
            link.display()
        )));
    }
    if mount::is_mounted(&mounted()?, m) {
        tracing::info!(%jail, file = %m.file.display(), source = %m.source, "already mounted");
        return Ok(());
    }
    runner::run(MOUNT, &refs(&m.mount_args()), None)?;
    tracing::info!(%jail, file = %m.file.display(), source = %m.source, "mounted");
    Ok(())
}

/// Unmounts `m`; not mounted is not an error.
pub fn unmount(jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
    if !mount::is_mounted(&mounted()?, m) {
        tracing::debug!(%jail, file = %m.file.display(), "not mounted");
        return Ok(());
    }
    runner::run(UMOUNT, &refs(&m.umount_args()), None)?;
    tracing::info!(%jail, file = %m.file.display(), source = %m.source, "unmounted");
    Ok(())
}
