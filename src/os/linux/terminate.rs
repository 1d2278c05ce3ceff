//! jail(8)'s stop.timeout phase on Linux: SIGTERM to every process of a
//! jail, then a bounded wait for them to exit. It never kills: the removal
//! that follows does (see `remove_jail`). A jail's processes are those in
//! its bound network, UTS or mount namespace, as `remove_jail` finds them.
//!
//! why the guard: a namespace file bound to the host's own namespace (or
//! jnet's) would otherwise make "every process of the jail" mean every
//! process of the host (hardening finding H8).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::jail::Paths;
use super::netns::{self, NsKind};
use crate::core::names::JailName;
use crate::os::OsError;

fn ns_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `path` names the namespace of jnet itself or of PID 1.
pub(super) fn is_host_namespace(path: &Path, kind: NsKind) -> bool {
    let Some(id) = ns_identity(path) else { return false };
    ["/proc/self/ns", "/proc/thread-self/ns", "/proc/1/ns"]
        .iter()
        .any(|dir| ns_identity(&Path::new(dir).join(kind.proc_name())) == Some(id))
}

/// The pids in the jail's bound namespaces, jnet's own excluded.
fn jail_pids(paths: &Paths, jail: &JailName) -> Result<BTreeSet<i32>, OsError> {
    let me = std::process::id() as i32;
    let mut out = BTreeSet::new();
    for (path, kind) in [
        (paths.netns(jail), NsKind::Net),
        (paths.utsns(jail), NsKind::Uts),
        (paths.mntns(jail), NsKind::Mnt),
    ] {
        if !netns::is_bound(&path) {
            continue;
        }
        if is_host_namespace(&path, kind) {
            return Err(OsError::Unsupported(format!(
                "{}: bound to the host's own {kind:?} namespace, not a jail's; refusing to signal its processes",
                path.display()
            )));
        }
        let pids = netns::pids_in(&path, kind).map_err(|e| OsError::Unsupported(e.to_string()))?;
        out.extend(pids.into_iter().filter(|p| *p != me));
    }
    Ok(out)
}

/// SIGTERM to the jail's processes, then wait up to `timeout` for them to
/// exit. Ok(true) when none is left.
pub fn terminate(paths: &Paths, jail: &JailName, timeout: Duration) -> Result<bool, OsError> {
    let pids = jail_pids(paths, jail)?;
    for pid in &pids {
        // ESRCH: it exited meanwhile, which is what we want.
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    tracing::debug!(%jail, signalled = pids.len(), "SIGTERM sent");
    let deadline = Instant::now() + timeout;
    loop {
        let left = jail_pids(paths, jail)?;
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
