//! Runs the built `jnet` binary from tests: with an explicit config and
//! without the caller's JNET_CONFIG / JNET_STATE_DIR, so a test never picks
//! up a real configuration.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_jnet");

/// `jnet -c <cfg> <args>`, with PATH replaced when `path_env` is given.
pub fn jnet_env(cfg: &Path, args: &[&str], path_env: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("-c")
        .arg(cfg)
        .args(args)
        .env_remove("JNET_CONFIG")
        .env_remove("JNET_STATE_DIR");
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    c.output().unwrap()
}

pub fn jnet(cfg: &Path, args: &[&str]) -> Output {
    jnet_env(cfg, args, None)
}

/// Runs a command that must succeed; its stdout.
pub fn ok(cfg: &Path, args: &[&str]) -> String {
    let o = jnet(cfg, args);
    assert!(
        o.status.success(),
        "jnet {args:?}: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}
