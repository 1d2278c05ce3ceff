//! The Linux adapter's only unsafe code: a `pre_exec` hook that moves a
//! freshly forked child into namespaces (setns(2)) and an optional root
//! (chroot(2), chdir(2)), then to jail.conf's account (setgroups(2),
//! setgid(2), setuid(2)) and directory, before it execs.
//!
//! Everything else (unshare, setns in threads, mounts, signals) goes through
//! nix's safe wrappers elsewhere.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::os::exec::Creds;

/// Arranges for `cmd`'s child to join each namespace `(fd, CLONE_NEW*)`
/// in order, then chroot to `root` and chdir to `/` when given, then take
/// `creds` (groups, gid, then uid: the order that keeps the privilege to
/// set the others) and chdir to `cwd`.
///
/// why: std's own `uid`/`gid`/`current_dir` run before pre_exec hooks, i.e.
/// before the namespace switch (setns needs root; the directory must be the
/// jail's), so they are done here instead.
///
/// The fds must stay open until `cmd` is spawned; the caller owns them.
pub fn enter_before_exec(
    cmd: &mut Command,
    namespaces: Vec<(RawFd, libc::c_int)>,
    root: Option<CString>,
    creds: Option<Creds>,
    cwd: Option<CString>,
) {
    let hook = move || -> io::Result<()> {
        for (fd, nstype) in &namespaces {
            // SAFETY: setns is async-signal-safe; fd is an open namespace
            // file kept alive by the parent across fork, and nstype is a
            // CLONE_NEW* constant. The child is single-threaded with a
            // filesystem context of its own (fork without CLONE_FS), as
            // setns into a mount namespace requires.
            if unsafe { libc::setns(*fd, *nstype) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(root) = &root {
            // SAFETY: chroot and chdir are async-signal-safe syscalls; both
            // pointers are valid NUL-terminated strings owned by this
            // closure (allocated before fork), and nothing else runs in the
            // child meanwhile.
            if unsafe { libc::chroot(root.as_ptr()) } != 0 || unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(c) = &creds {
            // SAFETY: setgroups, setgid and setuid are async-signal-safe
            // syscalls; `c.groups` was allocated before the fork and is
            // only read here.
            unsafe {
                if libc::setgroups(c.groups.len(), c.groups.as_ptr()) != 0
                    || libc::setgid(c.gid) != 0
                    || libc::setuid(c.uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        if let Some(d) = &cwd {
            // SAFETY: chdir is an async-signal-safe syscall on a
            // NUL-terminated string allocated before the fork.
            if unsafe { libc::chdir(d.as_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec and only
    // makes async-signal-safe syscalls on data allocated before the fork;
    // it does not allocate, lock or touch other threads' state.
    unsafe {
        cmd.pre_exec(hook);
    }
}
