//! A jail's cgroup (cgroup v2, cgroups(7) and the kernel's
//! Documentation/admin-guide/cgroup-v2.rst): where the cgroup2 hierarchy is
//! mounted, creating `<cgroup2 mount>/jnet/<jail>`, listing its processes,
//! killing all of them and removing it.
//!
//! The hierarchy is found from `/proc/thread-self/mountinfo` (fstype
//! `cgroup2`; the last such mount wins, as it covers earlier ones at the
//! same place): `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified`
//! on a hybrid one beside the v1 controllers. jnet creates only `jnet/` and
//! `jnet/<jail>` below it, enables no controller (so the "no internal
//! processes" rule never applies), and kills and removes only a cgroup whose
//! path and cgroup id (its directory's inode) match the jail's record (see
//! `LinuxHost::remove_jail`).
//!
//! Killing: `cgroup.kill` (Linux 5.14) SIGKILLs every process of the cgroup
//! and its descendants in one step, forks in flight included. Without it,
//! the processes listed in `cgroup.procs` are killed one by one through
//! pidfds, each checked to be in the cgroup after its pidfd was opened,
//! until the list stays empty. This module does not put processes into the
//! cgroup (see `sys::spawn_init` and `exec`).

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sys;
use crate::core::names::JailName;
use crate::os::OsError;

/// The directory under the cgroup2 mount that holds jnet's jail cgroups.
pub const PARENT: &str = "jnet";

/// A mounted cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup at the mount point, as /proc/<pid>/cgroup names cgroups
    /// (mountinfo's root field: `/` unless a subtree is bound there).
    pub root: String,
}

fn sys_at(op: &str, path: &Path) -> impl FnOnce(io::Error) -> OsError {
    let op = format!("{op} {}", path.display());
    move |source| OsError::Sys { op, source }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, proc(5)).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The last cgroup2 mount in a mountinfo text (see the module doc).
pub fn find_in_mountinfo(text: &str) -> Option<Hierarchy> {
    text.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let mut f = left.split(' ');
        let root = f.nth(3)?;
        let mount_point = f.next()?;
        Some(Hierarchy {
            mount_point: PathBuf::from(unescape(mount_point)),
            root: unescape(root),
        })
    })
}

/// The cgroup2 hierarchy jnet uses, or an error saying none is mounted.
pub fn hierarchy() -> Result<Hierarchy, OsError> {
    let p = Path::new("/proc/thread-self/mountinfo");
    let text = fs::read_to_string(p).map_err(sys_at("read", p))?;
    find_in_mountinfo(&text).ok_or_else(|| {
        OsError::Unsupported(
            "no cgroup2 hierarchy is mounted (none in /proc/thread-self/mountinfo); a Linux jail needs \
             one to confine its processes: mount -t cgroup2 none /sys/fs/cgroup (or /sys/fs/cgroup/unified)"
                .to_string(),
        )
    })
}

impl Hierarchy {
    /// Where a jail's cgroup lives: `<mount>/jnet/<jail>`.
    pub fn jail_dir(&self, jail: &JailName) -> PathBuf {
        self.mount_point.join(PARENT).join(jail.as_str())
    }

    /// The jail cgroup's name as /proc/<pid>/cgroup shows it (`0::<name>`).
    pub fn jail_name(&self, jail: &JailName) -> String {
        let base = self.root.trim_end_matches('/');
        format!("{base}/{PARENT}/{jail}")
    }
}

/// The cgroup id (the directory's inode) of the cgroup at `dir`.
pub fn id(dir: &Path) -> Result<u64, OsError> {
    let m = fs::symlink_metadata(dir).map_err(sys_at("stat cgroup", dir))?;
    if !m.is_dir() {
        return Err(OsError::Sys {
            op: format!("cgroup {}", dir.display()),
            source: io::Error::other("not a directory"),
        });
    }
    Ok(m.ino())
}

/// Creates the jail cgroup `dir` (and jnet's parent). A leftover empty one
/// (a create interrupted before its record) is reused; one that still
/// holds processes is refused, naming it.
pub fn create(dir: &Path) -> Result<u64, OsError> {
    if let Some(parent) = dir.parent() {
        match fs::create_dir(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(sys_at("create cgroup", parent)(e)),
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let left = procs(dir)?;
            if !left.is_empty() {
                return Err(OsError::Sys {
                    op: format!("create cgroup {}", dir.display()),
                    source: io::Error::other(format!(
                        "it exists and holds processes {left:?} from an earlier jail of this name; stop them first"
                    )),
                });
            }
        }
        Err(e) => return Err(sys_at("create cgroup", dir)(e)),
    }
    id(dir)
}

/// Pids in the cgroup (its `cgroup.procs`). A cgroup that is gone has none.
pub fn procs(dir: &Path) -> Result<Vec<i32>, OsError> {
    let p = dir.join("cgroup.procs");
    match fs::read_to_string(&p) {
        Ok(t) => Ok(t.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(sys_at("read", &p)(e)),
    }
}

/// Whether process `pid` is in the cgroup named `name` (its
/// /proc/<pid>/cgroup line `0::<name>`).
pub fn contains(pid: i32, name: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|t| t.lines().any(|l| l.strip_prefix("0::") == Some(name)))
        .unwrap_or(false)
}

/// Sends `sig` to `pid` through a pidfd, and only if `belongs(pid)` holds
/// once the pidfd is open (so a pid reused in between is never signalled).
/// Returns whether a signal was delivered.
pub fn signal_checked(pid: i32, sig: libc::c_int, belongs: impl Fn(i32) -> bool) -> bool {
    let Ok(fd) = sys::pidfd_open(pid) else {
        return false;
    };
    if !belongs(pid) {
        return false;
    }
    sys::pidfd_send_signal(fd.as_fd(), sig).is_ok()
}

/// Kills every process of the cgroup at `dir` (named `name`, see
/// `Hierarchy::jail_name`) and waits up to `wait` for it to be empty.
/// Returns how many processes it held before. Refuses when jnet itself is
/// in it.
pub fn kill(dir: &Path, name: &str, wait: Duration) -> Result<usize, OsError> {
    kill_with(dir, name, wait, true)
}

/// `kill` as on a kernel without `cgroup.kill` (before 5.14): every
/// process listed is killed through a pidfd, until the list stays empty.
pub fn kill_one_by_one(dir: &Path, name: &str, wait: Duration) -> Result<usize, OsError> {
    kill_with(dir, name, wait, false)
}

fn kill_with(dir: &Path, name: &str, wait: Duration, use_kill_file: bool) -> Result<usize, OsError> {
    let before = procs(dir)?;
    let me = std::process::id() as i32;
    if before.contains(&me) {
        return Err(OsError::Unsupported(format!(
            "cgroup {}: jnet itself (pid {me}) is in it; refusing to kill it (run jnet from outside the jail)",
            dir.display()
        )));
    }
    if before.is_empty() {
        return Ok(0);
    }
    let kill_file = dir.join("cgroup.kill");
    let opened = if use_kill_file {
        fs::OpenOptions::new().write(true).open(&kill_file)
    } else {
        Err(io::Error::from(io::ErrorKind::NotFound))
    };
    let have_kill = match opened {
        Ok(mut f) => {
            f.write_all(b"1").map_err(sys_at("write", &kill_file))?;
            true
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(sys_at("open", &kill_file)(e)),
    };
    let deadline = Instant::now() + wait;
    loop {
        let left = procs(dir)?;
        if left.is_empty() {
            return Ok(before.len());
        }
        if !have_kill {
            for pid in &left {
                signal_checked(*pid, libc::SIGKILL, |p| contains(p, name));
            }
        }
        if Instant::now() >= deadline {
            return Err(OsError::Sys {
                op: format!("kill cgroup {}", dir.display()),
                source: io::Error::other(format!("processes {left:?} still in it after {wait:?}")),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes the (empty) cgroup directory; absent is fine. Retries briefly:
/// the kernel may still be releasing the last exited process.
pub fn remove(dir: &Path) -> Result<(), OsError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(sys_at("remove cgroup", dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_cgroup2_mount() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
            90 41 0:38 /t\\040x /sys/fs/cgroup/un\\040ified rw shared:5 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            find_in_mountinfo(text),
            Some(Hierarchy {
                mount_point: "/sys/fs/cgroup/un ified".into(),
                root: "/t x".into()
            })
        );
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(find_in_mountinfo(v1), None);
        assert_eq!(find_in_mountinfo("garbage\n - \n"), None);
        assert_eq!(unescape("a\\"), "a\\");
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("\\011x"), "\tx");
    }

    #[test]
    fn jail_names_and_dirs() {
        let h = Hierarchy {
            mount_point: "/sys/fs/cgroup".into(),
            root: "/".into(),
        };
        let j = JailName::new("web").unwrap();
        assert_eq!(h.jail_dir(&j), PathBuf::from("/sys/fs/cgroup/jnet/web"));
        assert_eq!(h.jail_name(&j), "/jnet/web");
        let t = Hierarchy {
            mount_point: "/x".into(),
            root: "/test-1".into(),
        };
        assert_eq!(t.jail_name(&j), "/test-1/jnet/web");
    }
}
