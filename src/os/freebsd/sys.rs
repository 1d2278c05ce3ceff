//! Every `unsafe` call of the FreeBSD adapter: jail_set(2), jail_get(2),
//! jail_remove(2), jail_attach(2) and setfib(2) in a forked child, and the SIOCAIFADDR /
//! SIOCDIFADDR ioctls of netintro(4) and their IPv6 forms. Each wrapper takes memory built and
//! owned by safe code (`params`, `iov`, `ifreq`) and returns `Errno`; it decides
//! nothing else. Layouts the kernel reads are checked against libc's
//! declarations at compile time.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::ifreq as plan;
use super::iov::JailIov;
use super::params::{JAIL_SYS_DISABLE, JAIL_SYS_INHERIT, JAIL_SYS_NEW};

// The byte layouts built in `ifreq` and `params` must be the ones libc declares for
// FreeBSD (DESIGN.md section 7): struct in_aliasreq has the same layout as
// libc's ifaliasreq, with sockaddr_in in place of sockaddr (both 16 bytes).
const _: () = assert!(size_of::<libc::ifaliasreq>() == plan::IN_ALIASREQ_LEN);
const _: () = assert!(offset_of!(libc::ifaliasreq, ifra_addr) == 16);
const _: () = assert!(offset_of!(libc::ifaliasreq, ifra_broadaddr) == 32);
const _: () = assert!(offset_of!(libc::ifaliasreq, ifra_mask) == 48);
const _: () = assert!(offset_of!(libc::ifaliasreq, ifra_vhid) == 64);
const _: () = assert!(size_of::<libc::ifreq>() == plan::IFREQ_LEN);
const _: () = assert!(offset_of!(libc::ifreq, ifr_ifru) == plan::IFNAMSIZ);
const _: () = assert!(size_of::<libc::sockaddr_in>() == plan::SOCKADDR_IN_LEN);
const _: () = assert!(size_of::<libc::sockaddr>() == plan::SOCKADDR_IN_LEN);
const _: () = assert!(offset_of!(libc::sockaddr_in, sin_addr) == 4);
const _: () = assert!(libc::AF_INET == plan::AF_INET as libc::c_int);
const _: () = assert!(libc::AF_INET6 == plan::AF_INET6 as libc::c_int);
const _: () = assert!(size_of::<libc::sockaddr_in6>() == plan::SOCKADDR_IN6_LEN);
const _: () = assert!(offset_of!(libc::sockaddr_in6, sin6_addr) == 8);
const _: () = assert!(offset_of!(libc::sockaddr_in6, sin6_scope_id) == 24);
const _: () = assert!(size_of::<libc::time_t>() == 8);
const _: () = assert!(libc::IFNAMSIZ as usize == plan::IFNAMSIZ);
const _: () = assert!(libc::JAIL_SYS_NEW == JAIL_SYS_NEW);
const _: () = assert!(libc::JAIL_SYS_INHERIT == JAIL_SYS_INHERIT);
const _: () = assert!(libc::JAIL_SYS_DISABLE == JAIL_SYS_DISABLE);
const _: () = assert!(size_of::<libc::c_ulong>() == 8);

/// An ioctl argument with the alignment of the C structs (their widest
/// member is an `int`; 8 covers the pointer in `ifreq`'s union).
#[repr(C, align(8))]
pub struct IoctlBuf<const N: usize>(pub [u8; N]);

/// jail_set(2). Returns the jid.
pub fn jail_set(iov: &mut JailIov, flags: libc::c_int) -> Result<i32, Errno> {
    let (ptr, n) = iov.as_mut_parts();
    // SAFETY: `ptr`/`n` describe the iovec array owned by `iov`; every
    // iov_base points into a buffer owned by `iov` (or is NULL with length
    // 0), and `iov` is borrowed mutably for the whole call, so the kernel
    // reads names/values and writes `errmsg` only into live memory of the
    // recorded lengths.
    let r = unsafe { libc::jail_set(ptr, n, flags) };
    Errno::result(r)
}

/// jail_get(2). Returns the jid; the kernel writes values and their
/// lengths back into `iov`.
pub fn jail_get(iov: &mut JailIov, flags: libc::c_int) -> Result<i32, Errno> {
    let (ptr, n) = iov.as_mut_parts();
    // SAFETY: as for jail_set: all buffers are owned by `iov`, which is
    // exclusively borrowed for the call; the kernel writes at most iov_len
    // bytes into each value buffer and updates iov_len in our array.
    let r = unsafe { libc::jail_get(ptr, n, flags) };
    Errno::result(r)
}

extern "C" {
    // kldload(2), in FreeBSD's libc (sys/sys/linker.h); the libc crate does
    // not bind it.
    fn kldload(file: *const libc::c_char) -> libc::c_int;
}

/// kldload(2) of the module `name`. Returns the file id; EEXIST when it is
/// already loaded.
pub fn kld_load(name: &std::ffi::CStr) -> Result<i32, Errno> {
    // SAFETY: `name` is a valid NUL-terminated string for the whole call;
    // the kernel only reads it.
    let r = unsafe { kldload(name.as_ptr()) };
    Errno::result(r)
}

/// jail_remove(2): kills the jail's processes and removes it.
pub fn jail_remove(jid: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall with an integer argument; no memory is shared.
    let r = unsafe { libc::jail_remove(jid) };
    Errno::result(r).map(drop)
}

fn ioctl_in<const N: usize>(fd: BorrowedFd<'_>, request: u64, buf: &IoctlBuf<N>) -> Result<(), Errno> {
    // why: the request number encodes the argument size; a mismatch would
    // let the kernel read past `buf`.
    assert_eq!(((request >> 16) & 0x1fff) as usize, N, "ioctl {request:#x} size");
    // SAFETY: `fd` is a live socket for the duration of the borrow; `buf`
    // is N bytes, exactly the size the request number tells the kernel to
    // copy in (checked above); _IOW requests only read the argument.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::c_ulong, buf as *const IoctlBuf<N>) };
    Errno::result(r).map(drop)
}

/// SIOCAIFADDR on an AF_INET datagram socket.
pub fn add_inet_address(fd: BorrowedFd<'_>, req: &[u8; plan::IN_ALIASREQ_LEN]) -> Result<(), Errno> {
    ioctl_in(fd, plan::SIOCAIFADDR, &IoctlBuf(*req))
}

/// SIOCDIFADDR on an AF_INET datagram socket.
pub fn delete_inet_address(fd: BorrowedFd<'_>, req: &[u8; plan::IFREQ_LEN]) -> Result<(), Errno> {
    ioctl_in(fd, plan::SIOCDIFADDR, &IoctlBuf(*req))
}

/// SIOCAIFADDR_IN6 on an AF_INET6 datagram socket.
pub fn add_inet6_address(fd: BorrowedFd<'_>, req: &[u8; plan::IN6_ALIASREQ_LEN]) -> Result<(), Errno> {
    ioctl_in(fd, plan::SIOCAIFADDR_IN6, &IoctlBuf(*req))
}

/// SIOCDIFADDR_IN6 on an AF_INET6 datagram socket.
pub fn delete_inet6_address(fd: BorrowedFd<'_>, req: &[u8; plan::IN6_IFREQ_LEN]) -> Result<(), Errno> {
    ioctl_in(fd, plan::SIOCDIFADDR_IN6, &IoctlBuf(*req))
}

extern "C" {
    /// setfib(2): FreeBSD libc's syscall wrapper (<sys/socket.h>); the libc
    /// crate does not declare it.
    fn setfib(fib: libc::c_int) -> libc::c_int;
}

/// Arranges for `cmd`'s child to take jail.conf's exec.* settings and,
/// with `jid`, enter the jail before it execs: setfib(2) `fib`, then
/// jail_attach(2) (which also chroots to the jail's path) and chdir `/`,
/// then the account (setgroups, setgid, setuid) and chdir to `cwd`. This is
/// usr.sbin/jail/command.c run_command()'s order (freebsd-src 2a178238:
/// `setfib(fib)` before `jail_attach(j->jid)`, the account after it;
/// FreeBSD main e7646b05 l.711-775). Failures come back from spawn as the
/// step's errno.
///
/// why: std's own `uid`/`gid`/`current_dir` run before pre_exec hooks, i.e.
/// before jail_attach (which needs root, and the directory must be the
/// jail's), so they are done here.
pub fn attach_before_exec(
    cmd: &mut std::process::Command,
    jid: Option<i32>,
    fib: Option<u32>,
    creds: Option<crate::os::exec::Creds>,
    cwd: Option<CString>,
) {
    use std::os::unix::process::CommandExt;
    let groups: Vec<libc::gid_t> = creds.as_ref().map(|c| c.groups.clone()).unwrap_or_default();
    let hook = move || -> std::io::Result<()> {
        let fail = || Err(std::io::Error::last_os_error());
        // SAFETY: every call below is an async-signal-safe syscall on
        // integers or on memory allocated before the fork (`groups`, `cwd`,
        // the static "/"), owned by this closure; nothing else runs in the
        // child meanwhile.
        unsafe {
            if let Some(f) = fib {
                if setfib(f as libc::c_int) != 0 {
                    return fail();
                }
            }
            if let Some(j) = jid {
                if libc::jail_attach(j) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    return fail();
                }
            }
            if let Some(c) = &creds {
                if libc::setgroups(groups.len() as libc::c_int, groups.as_ptr()) != 0
                    || libc::setgid(c.gid) != 0
                    || libc::setuid(c.uid) != 0
                {
                    return fail();
                }
            }
            if let Some(d) = &cwd {
                if libc::chdir(d.as_ptr()) != 0 {
                    return fail();
                }
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec and only
    // makes async-signal-safe syscalls on data allocated before the fork.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Sends SIGTERM to every process of jail `jid`, then waits up to `timeout`
/// for them to exit; Ok(true) when none is left, Ok(false) on timeout.
///
/// jail(8) does the same before removing a jail (usr.sbin/jail/command.c
/// `term_procs`, FreeBSD main 2022-07 e7646b05 command.c:877-918: SIGTERM to
/// each process whose `ki_jid` is the jail's, then wait `stop.timeout`).
/// jnet gets the same set without kvm(3): a child attached to the jail
/// signals pid -1, which reaches exactly the processes it may signal, and
/// inside a jail those are the jail's own (sys/kern/kern_sig.c `killpg1`,
/// the `pid == -1` case skips the sender, system processes and pid <= 1,
/// and `p_cansignal` -> `prison_check` in sys/kern/kern_prot.c limits it to
/// the jail). `kill(-1, 0)` failing with ESRCH then means "no process left".
pub fn terminate_jail(jid: i32, timeout: std::time::Duration) -> Result<bool, Errno> {
    let ticks = timeout.as_millis().div_ceil(50).min(u128::from(u32::MAX)) as u32;
    // SAFETY: jnet is single-threaded here; the child calls only
    // jail_attach, kill, usleep and _exit on values computed before the
    // fork, and never returns into Rust code.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: syscalls with integer arguments; _exit never returns.
            unsafe {
                if libc::jail_attach(jid) != 0 {
                    libc::_exit(2);
                }
                libc::kill(-1, libc::SIGTERM);
                for _ in 0..=ticks {
                    if libc::kill(-1, 0) != 0 && *libc::__error() == libc::ESRCH {
                        libc::_exit(0);
                    }
                    libc::usleep(50_000);
                }
                libc::_exit(1)
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Err(Errno::EINTR) => continue,
                    other => break other?,
                }
            };
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(true),
                nix::sys::wait::WaitStatus::Exited(_, 1) => Ok(false),
                _ => Err(Errno::ESRCH),
            }
        }
    }
}
