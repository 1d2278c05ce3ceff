//! Runs a test body in a throwaway network and mount namespace, so nothing
//! it does reaches the machine's real interfaces, routes, firewall or /run.
//!
//! The body runs in a dedicated thread that unshares CLONE_NEWNET and
//! CLONE_NEWNS (namespaces are per thread; threads and children it starts
//! inherit them), makes `/` a slave mount so nothing propagates back, and
//! mounts a tmpfs on /run, where /run/netns and /run/jnet then live.
//!
//! Jails get cgroups (cgroup v2): so that tests running at once (and other
//! checkouts' tests) never share `jnet/<jail>`, each body gets a cgroup of
//! its own, `<cgroup2 mount>/jnet-test-<pid>-<n>`, bound over the cgroup2
//! mount point inside the test's mount namespace; jnet, which finds the
//! hierarchy from mountinfo, then makes `jnet/<jail>` under it. Afterwards
//! everything left in that cgroup is killed (cgroup.kill) and it is
//! removed, whether the body passed or not.
#![allow(dead_code)]

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Whether the privileged tests can run; prints a loud SKIP (or panics
/// under CI=true) when not, naming what is missing.
pub fn prerequisites(test: &str, programs: &[&str]) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut missing = Vec::new();
    if !nix::unistd::Uid::effective().is_root() {
        missing.push("root".to_string());
    }
    if jnet::os::linux::cgroup::hierarchy().is_err() {
        missing.push("a mounted cgroup2 hierarchy".to_string());
    }
    for p in programs {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
            .unwrap_or(false);
        if !found {
            missing.push(format!("program {p}"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("SKIP {test}: needs {}", missing.join(", "));
    if ci {
        panic!("{msg} (CI=true: a missing prerequisite is a failure)");
    }
    // why: eprintln! output is captured by the test harness for passing
    // tests; writing to the stderr handle directly is always shown.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

/// Runs `body` inside a fresh network + mount namespace (see module doc).
/// Panics in the body propagate.
pub fn isolated<F: FnOnce() + Send>(body: F) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cg = jnet::os::linux::cgroup::hierarchy().ok().map(|h| {
        let dir = h.mount_point.join(format!("jnet-test-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).expect("create the test's cgroup");
        (h.mount_point, dir)
    });
    let _cleanup = CgroupCleanup(cg.as_ref().map(|c| c.1.clone()));
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).expect("unshare net+mnt");
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .expect("make / rslave");
            mount(Some("tmpfs"), "/run", Some("tmpfs"), MsFlags::empty(), Some("mode=755")).expect("tmpfs on /run");
            if let Some((at, dir)) = &cg {
                mount(Some(dir), at, None::<&str>, MsFlags::MS_BIND, None::<&str>).expect("bind the test's cgroup");
            }
            let mut rt = jnet::os::linux::link::route_socket().expect("rtnetlink");
            jnet::os::linux::link::set_up(&mut rt, "lo", true).expect("lo up");
            body();
        });
        if let Err(p) = h.join() {
            std::panic::resume_unwind(p);
        }
    });
}

/// Kills what is left in a test's cgroup and removes it (see the module
/// doc), deepest directories first.
struct CgroupCleanup(Option<std::path::PathBuf>);

impl Drop for CgroupCleanup {
    fn drop(&mut self) {
        let Some(dir) = &self.0 else { return };
        let _ = std::fs::write(dir.join("cgroup.kill"), b"1");
        let mut dirs = Vec::new();
        let mut todo = vec![dir.clone()];
        while let Some(d) = todo.pop() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                todo.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
            }
            dirs.push(d);
        }
        for d in dirs.iter().rev() {
            for _ in 0..200 {
                match std::fs::remove_dir(d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    _ => break,
                }
            }
        }
    }
}
