//! The Linux adapter's only unsafe code: a `pre_exec` hook that moves a
//! freshly forked child into namespaces (setns(2)) and an optional root
//! (chroot(2), chdir(2)) before it execs.
//!
//! Everything else (unshare, setns in threads, mounts, signals) goes through
//! nix's safe wrappers elsewhere.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Arranges for `cmd`'s child to join each namespace `(fd, CLONE_NEW*)`
/// in order, then chroot to `root` and chdir to `/` when given.
///
/// The fds must stay open until `cmd` is spawned; the caller owns them.
pub fn enter_before_exec(cmd: &mut Command, namespaces: Vec<(RawFd, libc::c_int)>, root: Option<CString>) {
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
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec and only
    // makes async-signal-safe syscalls on data allocated before the fork;
    // it does not allocate, lock or touch other threads' state.
    unsafe {
        cmd.pre_exec(hook);
    }
}
