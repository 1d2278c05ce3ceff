//! A jail's init process: PID 1 of the jail's own PID namespace
//! (pid_namespaces(7)), the first process in the jail's cgroup.
//!
//! Design: a PID namespace cannot outlive its init (once PID 1 exits, the
//! kernel kills every process in it and no process can be forked into it
//! again), and the jail's commands run one at a time through `exec`, any
//! of which may be the last to exit. So each jail gets a long-lived holder
//! as its init, started by `create_jail` before any jail command runs:
//! - it is forked (see `sys::spawn_init`) into the jail's cgroup first and
//!   only then into the new PID namespace, so nothing of the jail ever runs
//!   outside the cgroup;
//! - it joins the jail's network (dedicated jails), UTS (with a hostname)
//!   and mount namespaces, and mounts a fresh proc on the jail's `/proc`
//!   (when that is a directory), which therefore shows the jail's PID
//!   namespace: the jail's processes see only each other;
//! - it does nothing else: it reaps the orphans it adopts (SIGCHLD
//!   ignored) and sleeps. It is a forked copy of jnet (named `jnet-init` in
//!   ps), holding no descriptor of jnet's; it never execs, so no program of
//!   the jail's (which may not exist: the jail's root need not hold one)
//!   runs as PID 1;
//! - its PID namespace is bound on `/run/jnet/pid/<jail>` like the other
//!   namespaces, so `exec` can join it (setns(2) on a PID namespace applies
//!   to the children forked afterwards, see `exec`) and
//!   `nsenter --pid=/run/jnet/pid/<jail>` works.
//!
//! Stopping kills the cgroup (see `cgroup::kill`); the init dies with it,
//! and with the init the kernel kills whatever of the PID namespace was
//! left (a process that left the cgroup included).
//!
//! This module does not create the cgroup or the other namespaces.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use super::netns;
use super::sys::{self, InitSetup};
use crate::os::OsError;

/// The namespaces and cgroup a jail's init joins.
#[derive(Debug, Clone, Copy)]
pub struct Joins<'a> {
    /// The jail cgroup's directory.
    pub cgroup: &'a Path,
    pub netns: Option<&'a Path>,
    pub utsns: Option<&'a Path>,
    pub mntns: &'a Path,
    /// Mount a fresh proc on the jail's /proc.
    pub mount_proc: bool,
}

/// Starts the init of a jail (see the module doc); returns its pid as seen
/// from jnet's PID namespace. `jail` names the jail in errors.
pub fn start(jail: &str, joins: Joins<'_>) -> Result<i32, OsError> {
    let procs_path = joins.cgroup.join("cgroup.procs");
    let procs = OpenOptions::new()
        .write(true)
        .open(&procs_path)
        .map_err(|source| OsError::Sys {
            op: format!("jail {jail}: open {}", procs_path.display()),
            source,
        })?;
    let devnull = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| OsError::Sys {
            op: "open /dev/null".to_string(),
            source,
        })?;
    let mut files: Vec<(File, libc::c_int)> = Vec::new();
    if let Some(p) = joins.netns {
        files.push((netns::open(p)?, libc::CLONE_NEWNET));
    }
    if let Some(p) = joins.utsns {
        files.push((netns::open(p)?, libc::CLONE_NEWUTS));
    }
    // why last: after it, the init's paths are the jail's (its /proc).
    files.push((netns::open(joins.mntns)?, libc::CLONE_NEWNS));
    let setup = InitSetup {
        cgroup_procs: procs.as_raw_fd(),
        namespaces: files.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect(),
        devnull: devnull.as_raw_fd(),
        mount_proc: joins.mount_proc,
    };
    let pid = sys::spawn_init(&setup).map_err(|f| OsError::Sys {
        op: format!("jail {jail}: start its init process: {}", f.step),
        source: std::io::Error::from_raw_os_error(f.errno),
    })?;
    drop(files);
    tracing::debug!(%jail, pid, "jail init started");
    Ok(pid)
}
