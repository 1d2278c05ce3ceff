//! Firewall end to end on Linux, as root, inside namespaces the test
//! creates (tests/common/netns.rs): real nft rules loaded by the `jnet`
//! binary, real TCP traffic from a client namespace through the host's
//! external veth into a jail's namespace, and back out through nat.
//!
//! Topology, all inside the test's own network namespace (the "host"):
//! netns `client` (192.0.2.2/24, default route via 192.0.2.1) joined by a
//! veth pair to `ext0` (192.0.2.1/24 and 192.0.2.3/24, the external
//! interface in jnet.toml); pool `lan` 10.9.0.0/24 on bridge `jnbr0` and
//! pool `outp` 10.9.1.0/24 on `jnbr1` with nat, both bridges made by
//! `jnet start`. A foreign nft table redirects tcp/9999 and must come
//! through unchanged.
#![cfg(target_os = "linux")]

use crate::common::binary;
use crate::common::client;
use crate::common::netns as test_netns;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use binary::{jnet, ok};
use client::{fetch, fetch_from, jnet_chains, topology, Server, CLIENT, TIMEOUT};
use jnet::os::linux::link;
use jnet::os::linux::netns::{self};
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

[pools.outp]
network = "10.9.1.0/24"
interface = "jnbr1"
gateway = "10.9.1.1"
nat = true

[jails.web]
ports = ["tcp/80"]
"#;

const FOREIGN: &str = "table ip foreign {\n\tchain pre {\n\t\ttype nat hook prerouting priority -100;\n\t\t\
                       tcp dport 9999 dnat to 10.1.1.1:80\n\t}\n}\n";

fn nft(args: &[&str]) -> String {
    jnet::os::runner::run("nft", args, None).unwrap().stdout
}

fn assert_unreachable(to: &str, why: &str) {
    match fetch(to) {
        Ok(t) => panic!("{to} still answers ({t:?}) {why}"),
        // Refused by the host (no redirect, nothing listening): the
        // expected failure; a timeout would also mean unreachable.
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
            ),
            "{to} {why}: {e}"
        ),
    }
}

fn pf_status(cfg: &Path) -> Value {
    serde_json::from_str(&ok(cfg, &["pf", "status", "--format", "json"])).unwrap()
}

/// The `state` of jail `jail` in `jnet pf status --format json`.
fn anchor_state(cfg: &Path, jail: &str) -> String {
    let v = pf_status(cfg);
    let a = v["anchors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["jail"] == jail)
        .unwrap_or_else(|| panic!("no anchor for {jail}: {v}"));
    assert_eq!(a["anchor"], format!("jnet/{jail}"), "{v}");
    a["state"].as_str().unwrap_or_else(|| panic!("{v}")).to_string()
}

/// The STATE column of `jnet pf status` for `jail`.
fn table_state(cfg: &Path, jail: &str) -> String {
    let out = ok(cfg, &["pf", "status"]);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(jail))
        .unwrap_or_else(|| panic!("{out}"));
    line.split_whitespace().nth(2).unwrap().to_string()
}

#[test]
fn expose_flush_reload_unexpose_nat_with_real_traffic() {
    if !prerequisites("expose_flush_reload_unexpose_nat_with_real_traffic", &["nft"]) {
        return;
    }
    isolated(|| {
        topology(&[Ipv4Addr::new(192, 0, 2, 3)]);
        jnet::os::runner::run("nft", &["-f", "-"], Some(FOREIGN)).unwrap();
        let foreign_before = nft(&["list", "table", "ip", "foreign"]);
        assert!(foreign_before.contains("dnat to 10.1.1.1:80"), "{foreign_before}");

        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("jnet.toml");
        std::fs::write(&cfg, CONFIG).unwrap();
        let inventory = dir.path().join("state").join("inventory");

        assert!(ok(&cfg, &["assign", "web", "--pool", "lan"]).contains("10.9.0.2"));
        assert!(ok(&cfg, &["start", "web"]).ends_with("web: started\n"));
        let web_ns = PathBuf::from("/run/netns/jnet-web");
        let server = Server::bind_in(&web_ns, "0.0.0.0:80", "hello from web\n");
        // Without an exposure the host port leads nowhere.
        assert_unreachable("192.0.2.1:8080", "before expose");

        let out = ok(&cfg, &["expose", "web", "tcp/8080:80"]);
        assert_eq!(out, "web: exposed tcp/8080:80 -> 10.9.0.2\n");
        assert_eq!(fetch("192.0.2.1:8080").unwrap(), "hello from web\n");
        assert_eq!(table_state(&cfg, "web"), "in-sync");
        assert_eq!(anchor_state(&cfg, "web"), "in-sync");
        assert_eq!(pf_status(&cfg)["hooks_missing"], serde_json::json!([]));

        // flush: unreachable, and pf status sees the rules missing.
        assert_eq!(ok(&cfg, &["pf", "flush", "web"]), "web: flushed jnet/web\n");
        assert_unreachable("192.0.2.1:8080", "after pf flush");
        assert_eq!(table_state(&cfg, "web"), "not-loaded");
        assert_eq!(anchor_state(&cfg, "web"), "not-loaded");
        assert!(
            jnet_chains().iter().all(|c| !c.starts_with("jail_web_")),
            "{:?}",
            jnet_chains()
        );

        // reload of one jail, then of all: reachable again, in sync.
        assert_eq!(
            ok(&cfg, &["pf", "reload", "web"]),
            "web: loaded 1 rule(s) into jnet/web\n"
        );
        assert_eq!(fetch("192.0.2.1:8080").unwrap(), "hello from web\n");
        assert_eq!(anchor_state(&cfg, "web"), "in-sync");
        ok(&cfg, &["pf", "flush", "web"]);
        assert_unreachable("192.0.2.1:8080", "after the second pf flush");
        // --all is quiet on success (boot from rc.d) unless -v.
        assert_eq!(ok(&cfg, &["pf", "reload", "--all"]), "");
        assert_eq!(
            ok(&cfg, &["-v", "pf", "reload", "--all"]),
            "web: loaded 1 rule(s) into jnet/web\n"
        );
        assert_eq!(fetch("192.0.2.1:8080").unwrap(), "hello from web\n");
        assert_eq!(anchor_state(&cfg, "web"), "in-sync");

        // A host port another table already redirects is refused, and
        // nothing changes: inventory bytes, jnet's rules, reachability.
        let inv_before = std::fs::read(&inventory).unwrap();
        let jnet_before = nft(&["list", "table", "inet", "jnet"]);
        let o = jnet(&cfg, &["expose", "web", "tcp/9999:80"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(65), "{err}");
        assert!(
            err.contains("cannot expose tcp/9999:80") && err.contains("ip foreign") && err.contains("9999"),
            "{err}"
        );
        assert_eq!(std::fs::read(&inventory).unwrap(), inv_before, "inventory changed");
        assert_eq!(nft(&["list", "table", "inet", "jnet"]), jnet_before);
        assert_eq!(fetch("192.0.2.1:8080").unwrap(), "hello from web\n");

        // Bound to one external address: redirected there, not on the
        // interface's other address (which still answers for 8080).
        let out = ok(&cfg, &["expose", "web", "tcp/8081:80", "--address", "192.0.2.1"]);
        assert!(out.starts_with("web: exposed"), "{out}");
        assert_eq!(fetch("192.0.2.1:8081").unwrap(), "hello from web\n");
        assert_unreachable("192.0.2.3:8081", "on an address the exposure is not bound to");
        assert_eq!(fetch("192.0.2.3:8080").unwrap(), "hello from web\n");
        assert_eq!(anchor_state(&cfg, "web"), "in-sync");

        // unexpose: unreachable on that port, gone from the inventory and
        // the listing; the other exposure keeps working.
        assert_eq!(
            ok(&cfg, &["unexpose", "web", "tcp/8080"]),
            "web: no longer exposes tcp/8080:80\n"
        );
        assert_unreachable("192.0.2.1:8080", "after unexpose");
        assert_eq!(fetch("192.0.2.1:8081").unwrap(), "hello from web\n");
        let inv = std::fs::read_to_string(&inventory).unwrap();
        let line = inv.lines().find(|l| l.starts_with("jail web ")).unwrap();
        assert!(!line.contains("tcp/8080"), "{line}");
        let list: Value = serde_json::from_str(&ok(&cfg, &["list", "--format", "json"])).unwrap();
        assert!(!list.to_string().contains("tcp/8080"), "{list}");
        assert!(list.to_string().contains("tcp/8081"), "{list}");
        assert_eq!(anchor_state(&cfg, "web"), "in-sync");

        // nat: a jail of the nat pool reaches the client with the host's
        // external address as source; web (no nat) keeps its own address,
        // which shows the check can tell them apart.
        ok(&cfg, &["assign", "out", "--pool", "outp"]);
        assert!(ok(&cfg, &["start", "out"]).ends_with("out: started\n"));
        assert_eq!(anchor_state(&cfg, "out"), "in-sync");
        let listener = Server::bind_in(Path::new(CLIENT), "192.0.2.2:9000", "hello from client\n");
        assert_eq!(
            fetch_from("/run/netns/jnet-out", "192.0.2.2:9000").unwrap(),
            "hello from client\n"
        );
        assert_eq!(
            fetch_from("/run/netns/jnet-web", "192.0.2.2:9000").unwrap(),
            "hello from client\n"
        );
        let peers: Vec<String> = listener.finish().iter().map(|p| p.ip().to_string()).collect();
        assert_eq!(peers, ["192.0.2.1", "10.9.0.2"], "nat source of out, own source of web");
        ok(&cfg, &["stop", "out"]);
        assert!(
            jnet_chains().iter().all(|c| !c.starts_with("jail_out_")),
            "{:?}",
            jnet_chains()
        );

        // stop removes the jail's chains; the foreign table is untouched.
        assert!(jnet_chains().iter().any(|c| c.starts_with("jail_web_")));
        drop(server);
        assert!(ok(&cfg, &["stop", "web"]).ends_with("web: stopped\n"));
        assert_eq!(jnet_chains(), Vec::<String>::new());
        assert_eq!(nft(&["list", "table", "ip", "foreign"]), foreign_before);
        // Nothing jnet made is left in the host namespace.
        let mut rt = link::route_socket().unwrap();
        let links: Vec<String> = link::list(&mut rt).unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(links, ["lo", "ext0"], "links left behind");
        let deadline = Instant::now() + TIMEOUT;
        while netns::list(Path::new("/run/netns"), "jnet-").unwrap() != Vec::<String>::new() {
            assert!(Instant::now() < deadline, "jail namespaces left");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}
