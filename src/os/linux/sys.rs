//! The Linux adapter's only unsafe code:
//! - a `pre_exec` hook that moves a freshly forked child into the jail's
//!   cgroup (a write of "0" to its `cgroup.procs`, cgroups(7)) and
//!   namespaces (setns(2)) and an optional root (chroot(2), chdir(2)),
//!   then to jail.conf's account (setgroups(2), setgid(2), setuid(2)) and
//!   directory, before it execs;
//! - `spawn_init`, which forks a jail's init process: PID 1 of a new PID
//!   namespace (pid_namespaces(7)), in the jail's cgroup and namespaces,
//!   with a fresh proc mounted (see `init`);
//! - pidfd_open(2) and pidfd_send_signal(2), which nix 0.32 lacks.
//!
//! Everything else (unshare, setns in threads, mounts, signals) goes through
//! nix's safe wrappers elsewhere.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
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
    cgroup_procs: Option<RawFd>,
    namespaces: Vec<(RawFd, libc::c_int)>,
    root: Option<CString>,
    creds: Option<Creds>,
    cwd: Option<CString>,
) {
    let hook = move || -> io::Result<()> {
        if let Some(fd) = cgroup_procs {
            // SAFETY: write is async-signal-safe; fd is an open
            // `cgroup.procs` file kept alive by the parent across fork and
            // the buffer is a static. "0" moves the writing process.
            if unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
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

/// pidfd_open(2): a file descriptor that refers to process `pid` for as
/// long as it is open, so a signal sent through it can never reach a later
/// process that reused the pid.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd_open returned an fd out of range"))?;
    // SAFETY: the kernel just returned this fd, open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// pidfd_send_signal(2) of `sig` to the process `pidfd` refers to. ESRCH
/// means it has exited (even if its pid was reused meanwhile).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: pidfd is an open pidfd borrowed for the call; a null siginfo
    // and zero flags are the documented defaults.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What a jail's init process needs, all opened or allocated before the
/// fork (the forked children of a multi-threaded process may only make
/// async-signal-safe calls).
pub struct InitSetup {
    /// The jail cgroup's `cgroup.procs`, opened for writing.
    pub cgroup_procs: RawFd,
    /// Namespaces to join, in order (`(fd, CLONE_NEW*)`); the mount
    /// namespace last.
    pub namespaces: Vec<(RawFd, libc::c_int)>,
    /// /dev/null opened read-write, for the init's standard streams.
    pub devnull: RawFd,
    /// Mount a fresh proc on /proc (after joining the mount namespace).
    pub mount_proc: bool,
}

/// The step of `spawn_init` that failed, with its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitFailure {
    pub step: &'static str,
    pub errno: i32,
}

const STEPS: [&str; 9] = [
    "",
    "fork",
    "join the jail cgroup",
    "unshare the PID namespace",
    "fork the init process",
    "join a jail namespace",
    "mount proc on /proc",
    "report from the init process",
    "create a pipe",
];

fn step_name(code: i32) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|i| STEPS.get(i))
        .copied()
        .unwrap_or("unknown step")
}

/// Reads up to `buf.len()` bytes, retrying on EINTR; returns how many were
/// read before EOF. Async-signal-safe.
fn read_full(fd: RawFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of
        // `buf`, which is live and writable.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    got
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Writes `words` as one record (atomic: well under PIPE_BUF).
/// Async-signal-safe.
fn report(fd: RawFd, words: &[i32; 3]) {
    let mut buf = [0u8; 12];
    for (i, w) in words.iter().enumerate() {
        buf[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    // SAFETY: buf is a live 12-byte array.
    let _ = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
}

fn words(buf: &[u8; 12]) -> [i32; 3] {
    let w = |i: usize| i32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    [w(0), w(4), w(8)]
}

/// Starts a jail's init process and returns its pid (as seen from the
/// caller's PID namespace) once it is set up.
///
/// Two forks: an intermediate child joins the jail's cgroup (so every
/// process after it is in the cgroup from its first instruction),
/// unshares CLONE_NEWPID and forks the init, which is PID 1 of the new
/// namespace; the intermediate then exits, so the init is not a child of
/// the caller (nobody in jnet has to reap it; it is reparented to the
/// caller's subreaper or to the host's init). The init joins the jail's
/// namespaces, mounts proc when asked, points its standard streams at
/// /dev/null, closes every other inherited descriptor (jnet's lock files
/// among them), ignores SIGCHLD (so the orphans it adopts are reaped by the
/// kernel) and sleeps in pause(2) until it is killed. As PID 1 of its
/// namespace it receives no signal it has no handler for, except SIGKILL
/// from an ancestor namespace. The caller returns only after the init
/// closed the descriptors it inherited.
pub fn spawn_init(setup: &InitSetup) -> Result<i32, InitFailure> {
    let proc_src = c"proc";
    let proc_dir = c"/proc";
    let mut outer = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    if unsafe { libc::pipe2(outer.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(InitFailure {
            step: step_name(8),
            errno: errno(),
        });
    }
    // SAFETY: fork in a multi-threaded process: the child only makes
    // async-signal-safe calls (write, unshare, fork, setns, mount, dup2,
    // close, sigaction, prctl, pause, _exit) on data allocated before the
    // fork, never allocates, and leaves only through _exit.
    let mid = unsafe { libc::fork() };
    if mid < 0 {
        let e = errno();
        // SAFETY: closing the two pipe fds this function opened.
        unsafe {
            libc::close(outer[0]);
            libc::close(outer[1]);
        }
        return Err(InitFailure {
            step: step_name(1),
            errno: e,
        });
    }
    if mid == 0 {
        // SAFETY: see the fork above; this is the intermediate child.
        unsafe { intermediate(setup, outer[1], proc_src.as_ptr(), proc_dir.as_ptr()) }
    }
    // SAFETY: the parent's copy of the write end is not needed: EOF on the
    // read end then means the intermediate is gone.
    unsafe { libc::close(outer[1]) };
    let mut buf = [0u8; 12];
    let got = read_full(outer[0], &mut buf);
    // SAFETY: closing the read end this function opened; waitpid on the
    // intermediate child this function forked.
    unsafe {
        libc::close(outer[0]);
        let mut status = 0;
        while libc::waitpid(mid, &mut status, 0) < 0 && errno() == libc::EINTR {}
    }
    if got != buf.len() {
        return Err(InitFailure {
            step: step_name(7),
            errno: libc::EPIPE,
        });
    }
    let [step, err, pid] = words(&buf);
    if step != 0 {
        return Err(InitFailure {
            step: step_name(step),
            errno: err,
        });
    }
    Ok(pid)
}

/// The intermediate child of `spawn_init`. Never returns.
///
/// # Safety
/// Only to be called in a freshly forked child; see `spawn_init`.
unsafe fn intermediate(
    setup: &InitSetup,
    out: RawFd,
    proc_src: *const libc::c_char,
    proc_dir: *const libc::c_char,
) -> ! {
    let fail = |step: i32| -> ! {
        report(out, &[step, errno(), 0]);
        libc::_exit(1)
    };
    if libc::write(setup.cgroup_procs, c"0".as_ptr().cast(), 1) != 1 {
        fail(2);
    }
    if libc::unshare(libc::CLONE_NEWPID) != 0 {
        fail(3);
    }
    let mut inner = [0 as libc::c_int; 2];
    if libc::pipe2(inner.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
        fail(8);
    }
    let init = libc::fork();
    if init < 0 {
        fail(4);
    }
    if init == 0 {
        libc::close(inner[0]);
        libc::close(out);
        init_main(setup, inner[1], proc_src, proc_dir);
    }
    libc::close(inner[1]);
    // The init's status, then EOF once it closed what it inherited.
    let mut buf = [0u8; 12];
    let got = read_full(inner[0], &mut buf);
    let mut rest = [0u8; 1];
    let _ = read_full(inner[0], &mut rest);
    if got != buf.len() {
        report(out, &[7, libc::EPIPE, 0]);
        libc::_exit(1);
    }
    let [step, err, _] = words(&buf);
    report(out, &[step, err, init]);
    libc::_exit(0)
}

/// The jail's init process (PID 1 of the jail's PID namespace). Never
/// returns.
///
/// # Safety
/// Only to be called in a freshly forked child; see `spawn_init`.
unsafe fn init_main(setup: &InitSetup, out: RawFd, proc_src: *const libc::c_char, proc_dir: *const libc::c_char) -> ! {
    let fail = |step: i32| -> ! {
        report(out, &[step, errno(), 0]);
        libc::_exit(1)
    };
    for (fd, nstype) in &setup.namespaces {
        if libc::setns(*fd, *nstype) != 0 {
            fail(5);
        }
    }
    if setup.mount_proc
        && libc::mount(
            proc_src,
            proc_dir,
            proc_src,
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) != 0
    {
        fail(6);
    }
    libc::setsid();
    let mut ign: libc::sigaction = std::mem::zeroed();
    ign.sa_sigaction = libc::SIG_IGN;
    libc::sigaction(libc::SIGCHLD, &ign, std::ptr::null_mut());
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    libc::prctl(libc::PR_SET_NAME, c"jnet-init".as_ptr(), 0, 0, 0);
    report(out, &[0, 0, 0]);
    // why after the report: `out` may sit on 0..2 when jnet was started
    // with a closed standard stream; dup2 then closes it too.
    for target in 0..3 {
        libc::dup2(setup.devnull, target);
    }
    if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
        // Kernels before 5.9: close one by one.
        let mut lim: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(1 << 20) as libc::c_int
        } else {
            4096
        };
        for fd in 3..max {
            libc::close(fd);
        }
    }
    loop {
        libc::pause();
    }
}
