//! Finding and ending a jail's processes, and the checks made before
//! anything is signalled (hardening H8).
//!
//! A jail's processes are those of its cgroup (see `cgroup`, `init`), plus
//! any process in one of its bound namespaces (network, UTS, mount, PID)
//! without being in the cgroup (one that `ip netns exec` or nsenter(1) put
//! there from the host). `verify` decides which of these may be touched:
//! - a bound namespace file whose namespace is jnet's own
//!   (/proc/self/ns, /proc/thread-self/ns) or PID 1's is refused;
//! - so is one whose namespace differs from the identity (device, inode)
//!   recorded when jnet made it;
//! - a namespace file a confining record does not list (someone else bound
//!   it under jnet's name) is skipped: not signalled into, not unbound;
//! - the cgroup must be at the path and have the id recorded.
//!
//! A refusal names the jail and the namespace, and comes before any signal.
//! A jail without a record (a create interrupted before writing it) or with
//! one from an older jnet has only the first check.
//!
//! `terminate` is jail(8)'s stop.timeout phase: SIGTERM to every process
//! (the init ignores it: as PID 1 of its namespace it has no handler), then
//! a bounded wait. `kill` is the removal's: `cgroup.kill`, a wait for the
//! cgroup to empty, its removal, then SIGKILL to the stragglers found in the
//! namespaces. Every signal to a single pid goes through a pidfd, re-checked
//! after it is open (see `cgroup::signal_checked`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cgroup;
use super::jail::Paths;
use super::netns::{self, NsKind};
use super::JailRecord;
use crate::core::names::JailName;
use crate::os::OsError;

/// What of a jail may be signalled, as `verify` found it.
#[derive(Debug, Default)]
pub struct Procs {
    /// Namespaces whose processes are the jail's.
    pub targets: Vec<(NsKind, (u64, u64))>,
    /// The jail's cgroup (directory, name), when it has one and it exists.
    pub cgroup: Option<(PathBuf, String)>,
    /// The jail's init, which SIGTERM does not end.
    pub init: Option<i32>,
    /// Namespace files that are not the jail's and are left alone.
    pub skipped: Vec<PathBuf>,
}

fn ns_identity(path: &Path) -> Option<(u64, u64)> {
    netns::ns_id(path).ok()
}

/// Whether `path` names the namespace of jnet itself or of PID 1.
pub(super) fn is_host_namespace(path: &Path, kind: NsKind) -> bool {
    let Some(id) = ns_identity(path) else { return false };
    ["/proc/self/ns", "/proc/thread-self/ns", "/proc/1/ns"]
        .iter()
        .any(|dir| ns_identity(&Path::new(dir).join(kind.proc_name())) == Some(id))
}

fn file_of(paths: &Paths, jail: &JailName, kind: NsKind) -> PathBuf {
    match kind {
        NsKind::Net => paths.netns(jail),
        NsKind::Uts => paths.utsns(jail),
        NsKind::Mnt => paths.mntns(jail),
        NsKind::Pid => paths.pidns(jail),
    }
}

/// The checks of the module doc; Ok says what may be signalled.
pub fn verify(paths: &Paths, jail: &JailName, record: Option<&JailRecord>) -> Result<Procs, OsError> {
    let mut out = Procs::default();
    for kind in [NsKind::Net, NsKind::Uts, NsKind::Mnt, NsKind::Pid] {
        let path = file_of(paths, jail, kind);
        if !netns::is_bound(&path) {
            continue;
        }
        let name = kind.proc_name();
        if is_host_namespace(&path, kind) {
            return Err(OsError::Unsupported(format!(
                "jail {jail}: its {name} namespace file {} is bound to the host's own {name} namespace \
                 (jnet's or PID 1's), not one jnet made; refusing to signal its processes \
                 (unmount it to clean up by hand)",
                path.display()
            )));
        }
        let Some(now) = ns_identity(&path) else { continue };
        match record.map(|r| (r.ns(kind), r.confined())) {
            Some((Some(was), _)) if was.pair() != now => {
                return Err(OsError::Unsupported(format!(
                    "jail {jail}: its {name} namespace file {} now holds {name}:[{}], not {name}:[{}] that jnet \
                     created for the jail; refusing to signal its processes (unmount it to clean up by hand)",
                    path.display(),
                    now.1,
                    was.ino
                )));
            }
            Some((None, true)) => {
                tracing::warn!(%jail, path = %path.display(), "namespace file not made by jnet for this jail; left alone");
                out.skipped.push(path);
                continue;
            }
            Some((_, false)) | None => {
                tracing::debug!(%jail, path = %path.display(), "no recorded identity; host check only");
            }
            Some((Some(_), true)) => {}
        }
        out.targets.push((kind, now));
    }
    if let Some(cg) = record.and_then(|r| r.cgroup.as_ref()) {
        let want = cgroup::hierarchy()?.jail_dir(jail);
        if cg.dir != want {
            return Err(OsError::Unsupported(format!(
                "jail {jail}: its record names cgroup {}, not {} where jnet makes it; refusing to kill it",
                cg.dir.display(),
                want.display()
            )));
        }
        match cgroup::id(&cg.dir) {
            Ok(id) if id == cg.id => out.cgroup = Some((cg.dir.clone(), cg.name.clone())),
            Ok(id) => {
                return Err(OsError::Unsupported(format!(
                    "jail {jail}: cgroup {} has id {id}, not {} that jnet created; refusing to kill it",
                    cg.dir.display(),
                    cg.id
                )))
            }
            // Gone already: nothing to kill there.
            Err(_) if !cg.dir.exists() => {}
            Err(e) => return Err(e),
        }
    }
    out.init = record.and_then(|r| r.init);
    Ok(out)
}

/// The jail's processes other than its init and jnet.
fn pids(procs: &Procs) -> Result<BTreeSet<i32>, OsError> {
    let me = std::process::id() as i32;
    let mut out: BTreeSet<i32> = netns::pids_in_any(&procs.targets)?.into_iter().collect();
    if let Some((dir, _)) = &procs.cgroup {
        out.extend(cgroup::procs(dir)?);
    }
    out.retain(|p| *p != me && Some(*p) != procs.init);
    Ok(out)
}

fn belongs(procs: &Procs, pid: i32) -> bool {
    procs
        .cgroup
        .as_ref()
        .is_some_and(|(_, name)| cgroup::contains(pid, name))
        || procs.targets.iter().any(|(k, id)| netns::pid_in(pid, *k, *id))
}

/// SIGTERM to the jail's processes, then wait up to `timeout` for them to
/// exit. Ok(true) when none is left (but the init).
pub fn terminate(jail: &JailName, procs: &Procs, timeout: Duration) -> Result<bool, OsError> {
    let first = pids(procs)?;
    for pid in &first {
        cgroup::signal_checked(*pid, libc::SIGTERM, |p| belongs(procs, p));
    }
    tracing::debug!(%jail, signalled = first.len(), "SIGTERM sent");
    let deadline = Instant::now() + timeout;
    loop {
        let left = pids(procs)?;
        if left.is_empty() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            tracing::info!(%jail, left = left.len(), "processes left after stop.timeout; the removal kills them");
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills all of the jail's processes, init included, and removes its
/// cgroup; waits up to `wait` for each of the two steps.
pub fn kill(jail: &JailName, procs: &Procs, wait: Duration) -> Result<(), OsError> {
    if let Some((dir, name)) = &procs.cgroup {
        let n = cgroup::kill(dir, name, wait)?;
        cgroup::remove(dir)?;
        tracing::debug!(%jail, killed = n, "jail cgroup killed and removed");
    }
    let n = netns::kill_all_in(&procs.targets, &[], wait)?;
    if n > 0 {
        tracing::debug!(%jail, killed = n, "processes in the jail's namespaces outside its cgroup killed");
    }
    Ok(())
}
