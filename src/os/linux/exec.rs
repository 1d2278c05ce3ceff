//! Running a command inside a jail, like jexec(8): fork, join the jail's
//! cgroup (before anything else, so all the command forks is in it), its
//! namespaces (setns(2): network and UTS when the jail has them, then its
//! mount namespace, whose root is already the jail's path, see `mntns`),
//! exec, and wait for the exit code. The jail's PID namespace is joined
//! differently: setns(2) on a PID namespace only decides where the
//! caller's later children go, so a thread of jnet joins it and forks the
//! command from there (the command is then in the jail's PID namespace
//! from its first instruction; jnet's other threads never change). A `root` is only for jails without a
//! mount namespace (made by an older jnet): chroot there after the setns.
//!
//! All namespace files are opened before the fork, in the caller's mount
//! namespace: once the child has joined the jail's mount namespace, paths
//! such as /run/jnet/... are the jail's (and absent from a jail rooted
//! elsewhere). The mount namespace is joined last so that everything
//! path-based that follows (chroot, the PATH search of exec) resolves in the
//! jail's view; setns by fd into the network and UTS namespaces does not
//! depend on the view, so their order is free.
//!
//! jail.conf's exec.* settings come prepared (`os::exec::prepare`): the
//! environment and consolelog are set on the command, the account switch
//! (setgroups, setgid, setuid) and exec.clean's chdir to the account's home
//! happen in the child after it joined the jail, and exec.timeout is
//! enforced by `os::exec::run`. Standard input (and output, without a
//! consolelog) is inherited. It does not create namespaces.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use super::netns;
use super::sys;
use crate::os::exec::{self as opts, Prepared};
use crate::os::OsError;

/// Where a command runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// Bound network namespace file; None = the caller's.
    pub netns: Option<&'a Path>,
    /// Bound UTS namespace file; None = the caller's.
    pub utsns: Option<&'a Path>,
    /// Bound mount namespace file; None = the caller's.
    pub mntns: Option<&'a Path>,
    /// Bound PID namespace file; None = the caller's.
    pub pidns: Option<&'a Path>,
    /// The jail's cgroup directory; None = the caller's cgroup.
    pub cgroup: Option<&'a Path>,
    /// chroot after joining the namespaces; None (or `/`) = none.
    pub root: Option<&'a Path>,
}

/// Runs `argv` at `target` with the prepared exec.* settings `prep` and
/// returns its exit code (128 + signal number when it was killed, as
/// shells report it).
pub fn run(target: Target<'_>, argv: &[String], prep: &Prepared) -> Result<i32, OsError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(OsError::Unsupported("exec: empty command".to_string()));
    };
    // Open before fork: the child may only make plain syscalls.
    let procs = match target.cgroup {
        Some(dir) => {
            let p = dir.join("cgroup.procs");
            Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map_err(|source| OsError::Sys {
                        op: format!("exec: open {}", p.display()),
                        source,
                    })?,
            )
        }
        None => None,
    };
    let pidns = target.pidns.map(netns::open).transpose()?;
    let mut files = Vec::new();
    if let Some(p) = target.netns {
        files.push((netns::open(p)?, libc::CLONE_NEWNET));
    }
    if let Some(p) = target.utsns {
        files.push((netns::open(p)?, libc::CLONE_NEWUTS));
    }
    if let Some(p) = target.mntns {
        files.push((netns::open(p)?, libc::CLONE_NEWNS));
    }
    let root = match target.root {
        Some(r) if r != Path::new("/") => Some(
            CString::new(r.as_os_str().as_bytes())
                .map_err(|_| OsError::Unsupported(format!("exec: root path {} contains NUL", r.display())))?,
        ),
        _ => None,
    };
    let cwd = opts::cwd_cstring(prep)?;
    let creds = prep.account.as_ref().map(opts::Creds::from);
    let mut cmd = Command::new(program);
    cmd.args(args);
    opts::apply(&mut cmd, prep)?;
    sys::enter_before_exec(
        &mut cmd,
        procs.as_ref().map(|f| f.as_raw_fd()),
        files.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect(),
        root,
        creds,
        cwd,
    );
    tracing::debug!(?argv, ?target, user = ?prep.account.as_ref().map(|a| &a.name), "exec");
    let what = format!("exec {}", argv.join(" "));
    let code = match &pidns {
        None => opts::run(&mut cmd, prep.timeout, &what),
        Some(ns) => std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWPID).map_err(|e| OsError::Sys {
                    op: format!(
                        "exec: enter PID namespace {}",
                        target.pidns.unwrap_or(Path::new("?")).display()
                    ),
                    source: std::io::Error::from(e),
                })?;
                opts::run(&mut cmd, prep.timeout, &what)
            })
            .join()
            .unwrap_or_else(|_| Err(OsError::Unsupported(format!("{what}: the spawning thread panicked"))))
        }),
    };
    drop(files);
    drop(procs);
    code
}
