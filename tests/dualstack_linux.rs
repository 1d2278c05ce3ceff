//! Dual stack end to end on Linux (issue 9 B8), as root, inside namespaces
//! the test creates: the `jnet` binary gives a jail an IPv4 and an IPv6
//! address from pools, starts it, exposes a port, and a client namespace
//! reaches the jail through the host over both families; an IPv6-only jail
//! is reached over IPv6 only, and reaches the client through IPv6 nat.
//!
//! Topology (tests/common/client.rs): netns `client` 192.0.2.2/24 and
//! 2001:db8:e::2/64 behind the host's `ext0` (192.0.2.1, 2001:db8:e::1);
//! pools `lan` 10.9.0.0/24 and `lan6` fd00:9::/64 (nat) on bridge `jnbr0`.
#![cfg(target_os = "linux")]

use crate::common::binary;
use crate::common::client;
use crate::common::netns as test_netns;

use std::path::{Path, PathBuf};

use binary::{jnet, ok};
use client::{fetch, fetch_from, jnet_chains, topology, topology6, Server, CLIENT};
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

[pools.lan6]
network = "fd00:9::/64"
interface = "jnbr0"
gateway = "fd00:9::1"
nat = true
"#;

fn refused(to: &str) -> bool {
    match fetch(to) {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn dual_stack_and_ipv6_only_jails_through_exposures() {
    if !prerequisites("dual_stack_and_ipv6_only_jails_through_exposures", &["nft"]) {
        return;
    }
    isolated(|| {
        topology(&[]);
        topology6(&["2001:db8:e::3".parse().unwrap()]);
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("jnet.toml");
        std::fs::write(&cfg, CONFIG).unwrap();

        // One address per family; the second assign adds, it does not replace.
        assert!(ok(&cfg, &["assign", "web", "--pool", "lan"]).contains("10.9.0.2"));
        let out = ok(&cfg, &["assign", "web", "--pool", "lan6"]);
        assert!(out.contains("10.9.0.2") && out.contains("fd00:9::2"), "{out}");
        // The subnet-router anycast (fd00:9::) and the gateway (::1) are
        // never handed out: the IPv6-only jail gets ::3.
        let out = ok(&cfg, &["assign", "six", "--pool", "lan6"]);
        assert!(out.contains("fd00:9::3") && !out.contains("10.9."), "{out}");

        let list: Value = serde_json::from_str(&ok(&cfg, &["list", "--format", "json"])).unwrap();
        let web = list["jails"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["jail"] == "web")
            .unwrap();
        assert_eq!(web["address"], "10.9.0.2", "{web}");
        let fams: Vec<(&str, &str)> = web["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["address"].as_str().unwrap(), a["family"].as_str().unwrap()))
            .collect();
        assert_eq!(fams, [("10.9.0.2", "inet"), ("fd00:9::2", "inet6")], "{web}");
        let six = list["jails"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["jail"] == "six")
            .unwrap();
        assert_eq!(six["address"], Value::Null, "{six}");

        assert!(ok(&cfg, &["start", "web"]).ends_with("web: started\n"));
        assert!(ok(&cfg, &["start", "six"]).ends_with("six: started\n"));
        // One socket for both families (bindv6only=0 in the jail's namespace).
        let web_srv = Server::bind_in(Path::new("/run/netns/jnet-web"), "[::]:80", "hello from web\n");
        let six_srv = Server::bind_in(Path::new("/run/netns/jnet-six"), "[::]:80", "hello from six\n");

        // Exposed on both families of the external interface.
        let out = ok(&cfg, &["expose", "web", "tcp/8080:80"]);
        assert!(out.starts_with("web: exposed tcp/8080:80"), "{out}");
        assert_eq!(fetch("192.0.2.1:8080").unwrap(), "hello from web\n");
        assert_eq!(fetch("[2001:db8:e::1]:8080").unwrap(), "hello from web\n");

        // Bound to one external IPv6 address: redirected there only, and
        // only in IPv6 (no inet rule for it).
        let out = ok(&cfg, &["expose", "web", "tcp/8081:80", "--address", "2001:db8:e::1"]);
        assert!(out.starts_with("web: exposed"), "{out}");
        assert_eq!(fetch("[2001:db8:e::1]:8081").unwrap(), "hello from web\n");
        assert!(
            refused("[2001:db8:e::3]:8081"),
            "on an address the exposure is not bound to"
        );
        assert!(refused("192.0.2.1:8081"), "an IPv6-bound exposure redirected IPv4");
        assert_eq!(fetch("[2001:db8:e::3]:8080").unwrap(), "hello from web\n");

        // The IPv6-only jail: reached over IPv6, not over IPv4 (no inet rule
        // can lead to a jail without an IPv4 address).
        ok(&cfg, &["expose", "six", "tcp/8082:80"]);
        assert_eq!(fetch("[2001:db8:e::1]:8082").unwrap(), "hello from six\n");
        assert!(refused("192.0.2.1:8082"), "IPv4 reached an IPv6-only jail");
        let rules = std::process::Command::new("nft")
            .args(["list", "table", "inet", "jnet"])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout).to_string();
        assert!(rules.contains("fd00:9::3"), "{rules}");

        // IPv6 nat (pool lan6 says nat = true): the client sees the host's
        // external address as the source of the IPv6-only jail.
        let listener = Server::bind_in(Path::new(CLIENT), "[2001:db8:e::2]:9000", "hello from client\n");
        assert_eq!(
            fetch_from("/run/netns/jnet-six", "[2001:db8:e::2]:9000").unwrap(),
            "hello from client\n"
        );
        let peers: Vec<String> = listener.finish().iter().map(|p| p.ip().to_string()).collect();
        // why either: masquerade takes the kernel's source address choice
        // among ext0's IPv6 addresses; what matters is that it is the
        // host's, not the jail's fd00:9::3.
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert!(
            ["2001:db8:e::1", "2001:db8:e::3"].contains(&peers[0].as_str()),
            "IPv6 nat source {peers:?}"
        );

        // Releasing a family of a running jail is refused, and changes nothing.
        let inventory = dir.path().join("state").join("inventory");
        let before = std::fs::read(&inventory).unwrap();
        let o = jnet(&cfg, &["release", "web", "--family", "inet6"]);
        assert_eq!(o.status.code(), Some(65), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::read(&inventory).unwrap(), before);

        drop(web_srv);
        drop(six_srv);
        assert!(ok(&cfg, &["stop", "web"]).ends_with("web: stopped\n"));
        assert!(ok(&cfg, &["stop", "six"]).ends_with("six: stopped\n"));
        assert_eq!(jnet_chains(), Vec::<String>::new());
        // A stopped jail drops one family: IPv4 stays, IPv6 is disabled.
        let out = ok(&cfg, &["release", "web", "--family", "inet6"]);
        assert!(out.contains("fd00:9::2"), "{out}");
        let inv = std::fs::read_to_string(&inventory).unwrap();
        let line = inv.lines().rev().find(|l| l.contains("jail web ")).unwrap();
        assert!(
            line.contains("ip4=new address=10.9.0.2") && line.contains("ip6=disable"),
            "{line}"
        );
        let gone: PathBuf = "/run/netns/jnet-web".into();
        assert!(!gone.exists(), "jail namespace left");
    });
}
