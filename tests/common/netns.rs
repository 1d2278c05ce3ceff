//! Runs a test body in a throwaway network and mount namespace, so nothing
//! it does reaches the machine's real interfaces, routes, firewall or /run.
//!
//! The body runs in a dedicated thread that unshares CLONE_NEWNET and
//! CLONE_NEWNS (namespaces are per thread; threads and children it starts
//! inherit them), makes `/` a slave mount so nothing propagates back, and
//! mounts a tmpfs on /run, where /run/netns and /run/jnet then live.
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
            let mut rt = jnet::os::linux::link::route_socket().expect("rtnetlink");
            jnet::os::linux::link::set_up(&mut rt, "lo", true).expect("lo up");
            body();
        });
        if let Err(p) = h.join() {
            std::panic::resume_unwind(p);
        }
    });
}
