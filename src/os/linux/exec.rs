//! Running a command inside a jail, like jexec(8): fork, join the jail's
//! namespaces (setns(2): network, then UTS when the jail has one), chroot
//! to the jail's path when it is not `/`, exec, and wait for the exit code.
//!
//! Standard input, output and error are inherited. It does not create a
//! mount namespace (jnet jails on Linux share the host's mounts; `path`
//! gives them their root) and does not change uid.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use super::netns;
use super::sys;
use crate::os::OsError;

/// Where a command runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// Bound network namespace file; None = the caller's.
    pub netns: Option<&'a Path>,
    /// Bound UTS namespace file; None = the caller's.
    pub utsns: Option<&'a Path>,
    /// New root; None (or `/`) = the caller's.
    pub root: Option<&'a Path>,
}

/// Runs `argv` at `target` and returns its exit code (128 + signal number
/// when it was killed, as shells report it).
pub fn run(target: Target<'_>, argv: &[String]) -> Result<i32, OsError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(OsError::Unsupported("exec: empty command".to_string()));
    };
    // Open before fork: the child may only make plain syscalls.
    let mut files = Vec::new();
    if let Some(p) = target.netns {
        files.push((netns::open(p)?, libc::CLONE_NEWNET));
    }
    if let Some(p) = target.utsns {
        files.push((netns::open(p)?, libc::CLONE_NEWUTS));
    }
    let root = match target.root {
        Some(r) if r != Path::new("/") => Some(
            CString::new(r.as_os_str().as_bytes())
                .map_err(|_| OsError::Unsupported(format!("exec: root path {} contains NUL", r.display())))?,
        ),
        _ => None,
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    sys::enter_before_exec(&mut cmd, files.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect(), root);
    tracing::debug!(?argv, ?target, "exec in jail");
    let status = cmd.status().map_err(|source| OsError::Sys {
        op: format!("exec {program} in jail"),
        source,
    })?;
    drop(files);
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
