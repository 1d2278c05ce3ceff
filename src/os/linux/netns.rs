//! Named namespaces compatible with iproute2 (ip-netns(8)): a namespace is
//! kept alive by bind-mounting its nsfs file on `/run/netns/<name>`, so
//! `ip netns exec <name>` and jnet see the same namespaces. The same
//! mechanism keeps UTS and mount namespaces (unshare(1) `--uts=<file>`,
//! `--mount=<file>`); a mount namespace file may only be bound from an older
//! mount namespace and onto a mount with private propagation, see
//! `create_bound`.
//!
//! Everything that enters a namespace does so in a thread of its own
//! (setns(2) only changes the calling thread), so the caller's threads never
//! change namespace. A PID namespace is not made here (it only exists once
//! its init is forked, see `init`), but bound here with `bind_existing`.
//! Also: listing and killing the processes whose network, UTS, mount or PID
//! namespace is a given one (by nsfs device and inode, as in
//! namespaces(7)); the kill goes through pidfds, re-checking the namespace
//! after the pidfd is open, so a reused pid is never signalled. This module does not create links or addresses (see
//! `link` and `addr`) nor decide what a jail's mount namespace holds (see
//! `mntns`).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{sched_getaffinity, sched_setaffinity, setns, unshare, CloneFlags, CpuSet};
use nix::unistd::Pid;

/// A failed namespace operation, naming the namespace file.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("namespace thread for {0} panicked")]
    Panicked(PathBuf),
}

impl From<NetnsError> for crate::os::OsError {
    fn from(e: NetnsError) -> Self {
        match e {
            NetnsError::Io { op, path, source } => crate::os::OsError::Sys {
                op: format!("{op} {}", path.display()),
                source,
            },
            p @ NetnsError::Panicked(_) => crate::os::OsError::Sys {
                op: p.to_string(),
                source: io::Error::other("panic"),
            },
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn nix_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(nix::Error) -> NetnsError + 'a {
    move |e| NetnsError::Io {
        op,
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

/// The kind of namespace a bound file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    Net,
    Uts,
    /// A mount namespace (mount_namespaces(7)).
    Mnt,
    /// A PID namespace (pid_namespaces(7)); see `bind_existing`.
    Pid,
}

impl NsKind {
    fn flag(self) -> CloneFlags {
        match self {
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Mnt => CloneFlags::CLONE_NEWNS,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
        }
    }
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::Net => "net",
            NsKind::Uts => "uts",
            NsKind::Mnt => "mnt",
            NsKind::Pid => "pid",
        }
    }
}

/// True when `path` is a bound namespace file (its device differs from its
/// directory's, as for any mount point).
pub fn is_bound(path: &Path) -> bool {
    let (Ok(f), Some(parent)) = (fs::metadata(path), path.parent()) else {
        return false;
    };
    fs::metadata(parent).map(|p| p.dev() != f.dev()).unwrap_or(false)
}

/// Makes `dir` a mount point with the propagation `kind` needs.
///
/// Network and UTS namespace directories are shared, as ip-netns(8) makes
/// /run/netns, so their files are visible from mount namespaces created
/// later (and their removal propagates into them). A mount namespace
/// directory must be private instead: binding a mount namespace file on a
/// shared mount would propagate it into the peers, possibly into that very
/// namespace, and the kernel refuses such copies (EINVAL); unshare(1)
/// documents the same requirement for `--mount=<file>`. Idempotent: an
/// existing mount point only gets its propagation set again.
fn prepare_dir(dir: &Path, kind: NsKind) -> Result<(), NetnsError> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let (propagation, op) = match kind {
        NsKind::Mnt => (MsFlags::MS_PRIVATE, "make private"),
        NsKind::Net | NsKind::Uts | NsKind::Pid => (MsFlags::MS_SHARED | MsFlags::MS_REC, "make shared"),
    };
    match mount(None::<&str>, dir, None::<&str>, propagation, None::<&str>) {
        Ok(()) => Ok(()),
        // why: EINVAL means `dir` is not a mount point yet; bind it on
        // itself first (the same two steps iproute2 and unshare(1) take).
        Err(nix::Error::EINVAL) => {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(nix_err("bind-mount directory on itself", dir))?;
            mount(None::<&str>, dir, None::<&str>, propagation, None::<&str>).map_err(nix_err(op, dir))
        }
        Err(e) => Err(nix_err(op, dir)(e)),
    }
}

/// What the calling thread tells the namespace thread after a bind attempt.
enum Bind {
    Done,
    Retry,
    Abort,
}

/// The CPUs a mount namespace is retried on, in order (see `create_bound`):
/// first wherever the scheduler puts the thread, then pinned to each CPU
/// this process may run on.
fn attempts() -> Vec<Option<usize>> {
    let mut out = vec![None];
    if let Ok(set) = sched_getaffinity(Pid::from_raw(0)) {
        out.extend(
            (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .map(Some),
        );
    }
    out
}

/// Creates a new namespace of `kind` and binds it on `path`, then runs
/// `setup` inside it (e.g. to set a hostname, or to arrange a mount
/// namespace's root). Returns false when `path` already holds a namespace
/// (nothing is done then). When `setup` fails, the binding is removed.
///
/// The namespace is made in a thread of its own; the calling thread binds
/// it from `/proc/self/task/<tid>/ns/<kind>` and only then lets that thread
/// run `setup`. why this split: a mount namespace file may only be bound
/// from a mount namespace older than it (the kernel refuses the reference
/// loop with EINVAL), so the thread living in the new one cannot bind it
/// itself; and binding before `setup` means a refused bind (see below) is
/// retried with a fresh namespace before any work went into it. unshare(1)
/// keeps the same order: a helper left in the original namespace binds the
/// file before the program runs.
///
/// why the retries: "older" is judged by a sequence number that Linux 6.18
/// hands out in per-CPU batches, so when the caller itself runs in a mount
/// namespace made recently (a test's, a container's), a namespace made on
/// another CPU may count as older and the bind fails with EINVAL
/// (unshare(1) fails the same way). A namespace made on the CPU the
/// caller's was made on always counts as newer, so on EINVAL the thread
/// unshares again, pinned to each allowed CPU in turn. From the host's
/// initial mount namespace the first attempt succeeds.
pub fn create_bound(
    path: &Path,
    kind: NsKind,
    setup: impl FnOnce() -> Result<(), NetnsError> + Send,
) -> Result<bool, NetnsError> {
    if is_bound(path) {
        return Ok(false);
    }
    if kind == NsKind::Pid {
        // why: unshare(CLONE_NEWPID) only takes effect for children; the
        // thread's own /proc/.../ns/pid would still be the caller's.
        return Err(NetnsError::Io {
            op: "create (a PID namespace is made by forking its init, see `init`)",
            path: path.to_path_buf(),
            source: io::Error::from(io::ErrorKind::Unsupported),
        });
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    prepare_dir(dir, kind)?;
    // A leftover empty file (from a crash between create and mount) is
    // reused; anything else is created fresh. Its content is never read
    // (it is only a mount point), hence no truncation.
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o444)
        .open(path)
        .map_err(io_err("create", path))?;
    let panicked = || NetnsError::Panicked(path.to_path_buf());
    let cpus = match kind {
        NsKind::Mnt => attempts(),
        NsKind::Net | NsKind::Uts | NsKind::Pid => vec![None],
    };
    let result = std::thread::scope(|s| {
        let (tid_tx, tid_rx) = mpsc::channel::<Result<i32, NetnsError>>();
        let (go_tx, go_rx) = mpsc::channel::<Bind>();
        let n = cpus.len();
        let inside = s.spawn(move || -> Result<(), NetnsError> {
            for cpu in cpus {
                if let Some(c) = cpu {
                    let mut one = CpuSet::new();
                    // A CPU that cannot be set or pinned is skipped: the
                    // attempt then runs wherever the thread is.
                    if one.set(c).is_ok() {
                        let _ = sched_setaffinity(Pid::from_raw(0), &one);
                    }
                }
                // For CLONE_NEWNS the kernel also unshares the thread's
                // filesystem context (root, cwd), so `setup` may chdir and
                // pivot_root without touching the caller's threads.
                let made = unshare(kind.flag())
                    .map_err(nix_err("unshare namespace for", path))
                    .map(|()| nix::unistd::gettid().as_raw());
                let failed = made.is_err();
                let _ = tid_tx.send(made);
                if failed {
                    return Ok(());
                }
                match go_rx.recv() {
                    Ok(Bind::Done) => return setup(),
                    Ok(Bind::Retry) => continue,
                    Ok(Bind::Abort) | Err(_) => return Ok(()),
                }
            }
            Ok(())
        });
        let mut bound = Err(panicked());
        for attempt in 1..=n {
            let src = match tid_rx.recv() {
                Ok(Ok(tid)) => format!("/proc/self/task/{tid}/ns/{}", kind.proc_name()),
                Ok(Err(e)) => {
                    bound = Err(e);
                    break;
                }
                Err(_) => break,
            };
            bound = mount(Some(src.as_str()), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(nix_err("bind-mount namespace on", path));
            let retry = matches!(&bound, Err(NetnsError::Io { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL))
                && attempt < n;
            if retry {
                tracing::debug!(path = %path.display(), attempt, "namespace bind refused (EINVAL), retrying on another CPU");
                let _ = go_tx.send(Bind::Retry);
                continue;
            }
            let _ = go_tx.send(if bound.is_ok() { Bind::Done } else { Bind::Abort });
            break;
        }
        drop(go_tx);
        let set_up = inside.join().unwrap_or_else(|_| Err(panicked()));
        if bound.is_ok() && set_up.is_err() {
            let _ = umount2(path, MntFlags::MNT_DETACH);
        }
        bound.and(set_up)
    });
    if let Err(e) = result {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    tracing::info!(path = %path.display(), ?kind, "namespace created");
    Ok(true)
}

/// Unbinds and removes a namespace file. Returns false when there was none.
/// The namespace itself lives on while processes or links still use it.
pub fn delete_bound(path: &Path) -> Result<bool, NetnsError> {
    if !path.exists() {
        return Ok(false);
    }
    match umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a leftover file) — just remove it.
        Ok(()) | Err(nix::Error::EINVAL) => {}
        Err(e) => return Err(nix_err("unmount", path)(e)),
    }
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove", path)(e)),
    }
    tracing::info!(path = %path.display(), "namespace removed");
    Ok(true)
}

/// Binds the existing namespace `source` (a /proc/<pid>/ns/<kind> link) on
/// `path`, creating the file. Returns false when `path` already holds a
/// namespace. Not for mount namespaces (see `create_bound`).
pub fn bind_existing(source: &Path, path: &Path, kind: NsKind) -> Result<bool, NetnsError> {
    if is_bound(path) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    prepare_dir(dir, kind)?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o444)
        .open(path)
        .map_err(io_err("create", path))?;
    if let Err(e) = mount(Some(source), path, None::<&str>, MsFlags::MS_BIND, None::<&str>) {
        let _ = fs::remove_file(path);
        return Err(nix_err("bind-mount namespace on", path)(e));
    }
    tracing::info!(path = %path.display(), ?kind, "namespace bound");
    Ok(true)
}

/// Opens a bound namespace file (for setns or IFLA_NET_NS_FD).
pub fn open(path: &Path) -> Result<File, NetnsError> {
    File::open(path).map_err(io_err("open namespace", path))
}

/// Runs `f` in a new thread that first joins the network namespace bound on
/// `path`; the caller's own namespace never changes. Netlink sockets opened
/// inside `f` stay in that namespace after `f` returns.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    let ns = open(path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(nix_err("enter namespace", path))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(NetnsError::Panicked(path.to_path_buf())))
    })
}

/// The identity (device, inode) of a namespace file or /proc ns link.
pub fn ns_id(path: &Path) -> Result<(u64, u64), NetnsError> {
    let m = fs::metadata(path).map_err(io_err("stat namespace", path))?;
    Ok((m.dev(), m.ino()))
}

/// Pids of the processes whose `kind` namespace (`net`, `uts`, `mnt`,
/// `pid`) is the one bound on `path` (read from /proc/<pid>/ns/<kind>;
/// processes that exit meanwhile are skipped). Costs one stat per process on
/// the host.
pub fn pids_in(path: &Path, kind: NsKind) -> Result<Vec<i32>, NetnsError> {
    let target = ns_id(path)?;
    pids_in_any(&[(kind, target)])
}

/// Whether process `pid`'s `kind` namespace has identity `id`.
pub fn pid_in(pid: i32, kind: NsKind, id: (u64, u64)) -> bool {
    fs::metadata(format!("/proc/{pid}/ns/{}", kind.proc_name()))
        .map(|m| (m.dev(), m.ino()) == id)
        .unwrap_or(false)
}

/// Whether `pid` has exited and waits for its parent (state Z in
/// /proc/<pid>/stat; the state follows the last `)`, since the command name
/// may hold one). A zombie keeps its PID namespace link but runs nothing
/// and cannot be signalled away; a jail's init, once killed, is one until
/// the host's init reaps it.
pub fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|t| t.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Pids of the live (not zombie) processes in any of the namespaces
/// `targets` (kind and identity), in one walk of /proc. Sorted.
pub fn pids_in_any(targets: &[(NsKind, (u64, u64))]) -> Result<Vec<i32>, NetnsError> {
    let proc = Path::new("/proc");
    let mut out = Vec::new();
    if targets.is_empty() {
        return Ok(out);
    }
    for entry in fs::read_dir(proc).map_err(io_err("read", proc))?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if targets.iter().any(|(kind, id)| pid_in(pid, *kind, *id)) && !is_zombie(pid) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Sends SIGKILL to every process in any of the namespaces `targets`
/// (never to the calling process nor to the pids in `spare`) and waits up
/// to `wait` for them to be gone. Each is signalled through a pidfd and
/// only when, with the pidfd open, it is still in one of the namespaces.
/// Returns how many processes were signalled. The caller checks that the
/// namespaces are a jail's (see `LinuxHost::remove_jail`).
pub fn kill_all_in(targets: &[(NsKind, (u64, u64))], spare: &[i32], wait: Duration) -> Result<usize, NetnsError> {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + wait;
    let mut signalled = std::collections::BTreeSet::new();
    loop {
        let pids: Vec<i32> = pids_in_any(targets)?
            .into_iter()
            .filter(|p| *p != me && !spare.contains(p))
            .collect();
        if pids.is_empty() {
            return Ok(signalled.len());
        }
        for pid in &pids {
            let belongs = |p: i32| targets.iter().any(|(k, id)| pid_in(p, *k, *id));
            if super::cgroup::signal_checked(*pid, libc::SIGKILL, belongs) {
                signalled.insert(*pid);
            }
        }
        if Instant::now() >= deadline {
            tracing::warn!(?pids, "processes still in the jail's namespaces after SIGKILL");
            return Ok(signalled.len());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Names of the bound namespaces in `dir` starting with `prefix`, sorted.
pub fn list(dir: &Path, prefix: &str) -> Result<Vec<String>, NetnsError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", dir)(e)),
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && is_bound(&dir.join(n)))
        .collect();
    out.sort();
    Ok(out)
}
