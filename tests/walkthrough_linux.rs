//! The lifecycle walk-through end to end on Linux, as root, inside
//! namespaces the test creates (tests/common/netns.rs), driving only the
//! `jnet` binary: three inherit jails (web tcp/80, app tcp/2368, db
//! tcp/3306) start; a fourth inherit jail on tcp/80 is refused before
//! anything is created; a dedicated jail from a pool, exposed on a host
//! port, serves real traffic to a client namespace and leaves nothing
//! behind when stopped (also when its start fails at the firewall step);
//! and the wall time of start + stop of a dedicated jail with 4 exposures.
//!
//! Topology inside the test's own network namespace (the "host"): netns
//! `client` (192.0.2.2/24, default route via 192.0.2.1) joined by a veth
//! pair to `ext0` (192.0.2.1/24, the external interface); pool `lan`
//! 10.9.0.0/24 on bridge `jnbr0` (made by `jnet start`), gateway 10.9.0.1.
#![cfg(target_os = "linux")]

use crate::common::binary;
use crate::common::client;
use crate::common::netns as test_netns;

use std::io::Write;
use std::net::{IpAddr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use binary::{jnet, jnet_env, ok, BIN};
use client::{fetch, jnet_chains, topology, TIMEOUT};
use jnet::core::names::JailName;
use jnet::os::linux::netns::{self};
use jnet::os::linux::{addr, jail, link, LinuxHost};
use jnet::os::Host;
use serde_json::Value;
use test_netns::{isolated, prerequisites};

const CONFIG: &str = r#"
[host]
external_interface = "ext0"
state_dir = "state"

[pools.lan]
network = "10.9.0.0/24"
interface = "jnbr0"
gateway = "10.9.0.1"

[jails.web]
ports = ["tcp/80"]
[jails.app]
ports = ["tcp/2368"]
[jails.db]
ports = ["tcp/3306"]
[jails.web2]
ports = ["tcp/80"]
[jails.www]
ports = ["tcp/80"]
expose = ["tcp/8080:80"]
[jails.bench]
ports = ["tcp/80", "tcp/443", "udp/53"]
expose = ["tcp/8001:80", "tcp/8443:443", "udp/8053:53", "tcp/9000-9003"]
"#;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("jnet.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    cfg
}

fn link_names() -> Vec<String> {
    let mut rt = link::route_socket().unwrap();
    link::list(&mut rt).unwrap().into_iter().map(|l| l.name).collect()
}

fn host_v4() -> Vec<IpAddr> {
    let mut rt = link::route_socket().unwrap();
    addr::list(&mut rt)
        .unwrap()
        .into_iter()
        .map(|a| a.address)
        .filter(IpAddr::is_ipv4)
        .collect()
}

/// The `phase=` of `jail` in the inventory file.
fn phase(dir: &Path, jail: &str) -> String {
    let inv = std::fs::read_to_string(dir.join("state/inventory")).unwrap();
    let line = inv
        .lines()
        .find(|l| l.starts_with(&format!("jail {jail} ")))
        .unwrap_or_else(|| panic!("{jail} not in the inventory:\n{inv}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("phase="))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string()
}

/// Pids of every process whose network namespace has identity `id`.
fn pids_in_ns(id: (u64, u64)) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(m) = std::fs::metadata(e.path().join("ns/net")) {
            if (m.dev(), m.ino()) == id {
                out.push(pid);
            }
        }
    }
    out
}

/// Nothing of dedicated jail `name` (with address `address`) is left in
/// the host namespace, and no process is left in its old namespace
/// `ns_id`; with `bridge_gone`, the pool's bridge (which jnet made) and its
/// gateway address are gone too.
fn assert_nothing_left(name: &str, address: &str, ns_id: Option<(u64, u64)>, bridge_gone: bool) {
    assert!(
        !Path::new(&format!("/run/netns/jnet-{name}")).exists(),
        "namespace of {name} left"
    );
    assert!(
        !Path::new(&format!("/run/jnet/jails/{name}")).exists(),
        "jail record of {name} left"
    );
    assert!(
        !Path::new(&format!("/run/jnet/uts/{name}")).exists(),
        "uts namespace of {name} left"
    );
    let links = link_names();
    let (veth, _) = jail::veth_names(&JailName::new(name).unwrap());
    assert!(!links.contains(&veth), "veth {veth} left: {links:?}");
    let addrs = host_v4();
    let a: IpAddr = address.parse().unwrap();
    assert!(!addrs.contains(&a), "{address} left: {addrs:?}");
    if bridge_gone {
        // No jail is left on the pool: no veth (jv*) and no bridge at all.
        assert!(!links.iter().any(|l| l.starts_with("jv")), "veth left: {links:?}");
        assert!(!links.iter().any(|l| l == "jnbr0"), "bridge left: {links:?}");
        assert!(!addrs.contains(&"10.9.0.1".parse().unwrap()), "gateway left: {addrs:?}");
    }
    let chains = jnet_chains();
    assert!(
        !chains.iter().any(|c| c.starts_with(&format!("jail_{name}_"))),
        "chains left: {chains:?}"
    );
    assert!(
        !LinuxHost::default()
            .running_jails()
            .unwrap()
            .iter()
            .any(|j| j.name == name),
        "{name} still listed as running"
    );
    if let Some(id) = ns_id {
        // why: the kernel frees a namespace once its last user is gone;
        // process exit after SIGKILL is asynchronous, so poll, bounded.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = pids_in_ns(id);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "processes left in the namespace of {name}: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A directory holding an `nft` that fails every script adding rules (the
/// firewall step of a start) and passes everything else to the real nft.
/// Makes nft refuse rule loads for as long as the returned guard lives.
///
/// why a bind mount: jnet runs nft by absolute path, never through PATH
/// (H12), so the fake goes over the real binary, in this test's own mount
/// namespace only (see `isolated`: / is a slave there, nothing propagates
/// back to the host). The real binary is copied aside for the fake to call.
fn failing_nft(dir: &Path) -> impl Drop {
    struct Unbind(std::path::PathBuf);
    impl Drop for Unbind {
        fn drop(&mut self) {
            let _ = nix::mount::umount(&self.0);
        }
    }
    let real = std::path::PathBuf::from(jnet::os::linux::nft::program().unwrap());
    let copy = dir.join("nft.real");
    std::fs::copy(&real, &copy).unwrap();
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = -f ] && [ \"$2\" = - ]; then\n\
         \tin=$(cat)\n\
         \tcase \"$in\" in *'add rule'*) echo 'injected: nft refuses the rules' >&2; exit 1;; esac\n\
         \tprintf '%s\\n' \"$in\" | exec {copy} \"$@\"\n\
         fi\n\
         exec {copy} \"$@\"\n",
        copy = copy.display()
    );
    let fake = dir.join("nft.fake");
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    nix::mount::mount(
        Some(&fake),
        &real,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    Unbind(real)
}

#[test]
fn walkthrough_inherit_jails_refusal_and_dedicated_jail_with_traffic() {
    if !prerequisites(
        "walkthrough_inherit_jails_refusal_and_dedicated_jail_with_traffic",
        &["nft", "sh", "sleep"],
    ) {
        return;
    }
    isolated(|| {
        topology(&[]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cfg = write_config(d);

        // Three inherit jails on distinct ports all start.
        for j in ["web", "app", "db"] {
            assert!(ok(&cfg, &["assign", j, "--inherit"]).contains(j));
            let out = ok(&cfg, &["start", j]);
            assert!(out.ends_with(&format!("{j}: started\n")), "{out}");
            assert_eq!(phase(d, j), "running");
        }
        let status: Value = serde_json::from_str(&ok(&cfg, &["status", "--format", "json"])).unwrap();
        let rows: Vec<(String, String, bool)> = status["jails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().into(),
                    r["state"].as_str().unwrap().into(),
                    r["id"].is_u64(),
                )
            })
            .collect();
        let want: Vec<(String, String, bool)> = ["app", "db", "web"]
            .iter()
            .map(|n| (n.to_string(), "running".to_string(), true))
            .collect();
        assert_eq!(rows, want, "{status}");
        let table = ok(&cfg, &["status"]);
        let web_row = table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("web"))
            .unwrap();
        assert!(
            web_row.contains("inherit") && web_row.contains("running") && web_row.contains("tcp/80"),
            "{table}"
        );
        let list = ok(&cfg, &["list"]);
        for j in ["web", "app", "db"] {
            let row = list.lines().find(|l| l.split_whitespace().next() == Some(j)).unwrap();
            assert!(row.contains("inherit") && row.contains("running"), "{list}");
        }

        // A fourth inherit jail on tcp/80 is refused before anything is
        // created, naming both jails and the port.
        ok(&cfg, &["assign", "web2", "--inherit"]);
        let o = jnet(&cfg, &["start", "web2"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("web2") && err.contains("jail web ") && err.contains("tcp/80"),
            "{err}"
        );
        assert!(!Path::new("/run/jnet/jails/web2").exists(), "web2 was created");
        assert_eq!(phase(d, "web2"), "stopped");
        let names: Vec<String> = LinuxHost::default()
            .running_jails()
            .unwrap()
            .into_iter()
            .map(|j| j.name)
            .collect();
        assert_eq!(names, ["app", "db", "web"]);

        // A dedicated jail from the pool, exposed on host port 8080,
        // serves real traffic to the client namespace.
        assert!(ok(&cfg, &["assign", "www", "--pool", "lan"]).contains("10.9.0.2"));
        assert!(ok(&cfg, &["start", "www"]).ends_with("www: started\n"));
        let ns_path = Path::new("/run/netns/jnet-www");
        let ns_id = netns::ns_id(ns_path).unwrap();
        let listener = netns::run_in(ns_path, || TcpListener::bind("0.0.0.0:80"))
            .unwrap()
            .unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, peer) = listener.accept().unwrap();
            c.write_all(b"hello from www\n").unwrap();
            peer
            // listener dropped here: nothing of the test keeps the
            // jail's namespace alive past `jnet stop`.
        });
        assert_eq!(fetch("192.0.2.1:8080").unwrap(), "hello from www\n");
        assert_eq!(
            server.join().unwrap().ip().to_string(),
            "192.0.2.2",
            "the client's own address arrives"
        );
        let pf: Value = serde_json::from_str(&ok(&cfg, &["pf", "status", "--format", "json"])).unwrap();
        let www = pf["anchors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["jail"] == "www")
            .unwrap();
        assert_eq!(www["state"], "in-sync", "{pf}");
        // The inventory agrees with the host while a dedicated jail runs.
        let inv = ok(&cfg, &["inventory"]);
        assert!(inv.contains("no drift"), "{inv}");
        let status = ok(&cfg, &["status", "www"]);
        let cols: Vec<&str> = status.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(cols[1..], ["www", "10.9.0.2", "running", "tcp/80"], "{status}");

        // A process in the jail is ended by stop, with everything else.
        let mut bg = Command::new(BIN)
            .arg("-c")
            .arg(&cfg)
            .args(["exec", "www", "--", "sleep", "600"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while pids_in_ns(ns_id).is_empty() {
            assert!(Instant::now() < deadline, "sleep never appeared in the jail");
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = ok(&cfg, &["stop", "www"]);
        assert!(out.ends_with("www: stopped\n"), "{out}");
        // SIGTERM first (jail(8) stop.timeout phase), then the removal.
        assert_eq!(
            bg.wait().unwrap().code(),
            Some(128 + 15),
            "sleep ended by stop's SIGTERM"
        );
        assert_nothing_left("www", "10.9.0.2", Some(ns_id), true);
        assert_eq!(phase(d, "www"), "stopped");
        assert!(fetch("192.0.2.1:8080").is_err(), "8080 still answers after stop");

        // A start that fails at the firewall step leaves nothing behind.
        let fake = failing_nft(d);
        let o = jnet_env(&cfg, &["start", "www"], None);
        drop(fake);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(
            err.contains("injected: nft refuses the rules") && err.contains("firewall"),
            "{err}"
        );
        assert_nothing_left("www", "10.9.0.2", None, true);
        assert_eq!(phase(d, "www"), "stopped");
        // ... and the same jail then starts for real.
        ok(&cfg, &["start", "www"]);
        assert!(
            jnet_chains().iter().any(|c| c == "jail_www_dnat"),
            "{:?}",
            jnet_chains()
        );
        ok(&cfg, &["stop", "www"]);
        assert_nothing_left("www", "10.9.0.2", None, true);

        // The inherit jails stop cleanly too.
        for j in ["web", "app", "db"] {
            assert!(ok(&cfg, &["stop", j]).ends_with(&format!("{j}: stopped\n")));
            assert_eq!(phase(d, j), "stopped");
        }
        assert!(LinuxHost::default().running_jails().unwrap().is_empty());
        let records = std::fs::read_dir("/run/jnet/jails").map_or(0, |r| r.flatten().count());
        assert_eq!(records, 0, "jail records left");
        assert_eq!(
            ok(&cfg, &["status"]).lines().count(),
            1,
            "only the header: nothing runs"
        );
        assert_eq!(link_names(), ["lo", "ext0"]);
        assert_eq!(jnet_chains(), Vec::<String>::new());
    });
}

#[test]
fn start_stop_cycle_time_of_a_dedicated_jail_with_four_exposures() {
    if !prerequisites(
        "start_stop_cycle_time_of_a_dedicated_jail_with_four_exposures",
        &["nft"],
    ) {
        return;
    }
    isolated(|| {
        topology(&[]);
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(dir.path());
        // `www` holds the bridge, so the timed cycles neither create nor
        // delete it (the common case: other jails on the pool).
        ok(&cfg, &["assign", "www", "--pool", "lan"]);
        ok(&cfg, &["start", "www"]);
        assert!(ok(&cfg, &["assign", "bench", "--pool", "lan"]).contains("10.9.0.3"));
        let (mut starts, mut stops, mut cycles) = (vec![], vec![], vec![]);
        for i in 0..5 {
            let t0 = Instant::now();
            let out = ok(&cfg, &["start", "bench"]);
            let start = t0.elapsed();
            assert!(out.ends_with("bench: started\n"), "{out}");
            if i == 0 {
                // Untimed: the four exposures are really loaded.
                let rules = jnet::os::runner::run("nft", &["list", "chain", "inet", "jnet", "jail_bench_dnat"], None)
                    .unwrap()
                    .stdout;
                assert_eq!(rules.matches("dnat ip to 10.9.0.3").count(), 4, "{rules}");
            }
            let t1 = Instant::now();
            let out = ok(&cfg, &["stop", "bench"]);
            let stop = t1.elapsed();
            assert!(out.ends_with("bench: stopped\n"), "{out}");
            starts.push(start);
            stops.push(stop);
            cycles.push(start + stop);
        }
        assert_nothing_left("bench", "10.9.0.3", None, false);
        assert!(link_names().iter().any(|l| l == "jnbr0"), "bridge held by www kept");
        for v in [&mut starts, &mut stops, &mut cycles] {
            v.sort();
        }
        let mut err = std::io::stderr();
        let _ = writeln!(
            err,
            "\nFIGURE jnet start+stop (binary, dedicated jail, 4 exposures, bridge held by another jail, 5 cycles): \
             median {:?} (start {:?}, stop {:?}), min {:?}, max {:?}\n",
            cycles[2], starts[2], stops[2], cycles[0], cycles[4]
        );
        ok(&cfg, &["stop", "www"]);
        assert_nothing_left("www", "10.9.0.2", None, true);
    });
}
