//! `jnet check` and `jnet hook prestart` end to end on Linux, as root, inside
//! a network namespace the test creates: real listening sockets (tcp/udp,
//! wildcard and specific, v4, dual-stack and v6-only), a foreign nft table,
//! and the `jnet` binary run from inside that namespace.
#![cfg(target_os = "linux")]

use crate::common::binary;
use crate::common::netns;

use std::net::{TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::process::Output;

use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn6,
};
use serde_json::Value;

/// `jnet -c <dir>/jnet.toml <args>`.
fn jnet(dir: &std::path::Path, args: &[&str]) -> Output {
    binary::jnet(&dir.join("jnet.toml"), args)
}

fn v6only_listener(port: u16) -> OwnedFd {
    let fd = socket(AddressFamily::Inet6, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    setsockopt(&fd, sockopt::Ipv6V6Only, &true).unwrap();
    let addr = SockaddrIn6::from(std::net::SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, port, 0, 0));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).unwrap();
    listen(&fd, Backlog::new(8).unwrap()).unwrap();
    fd
}

const CONFIG: &str = r#"
[host]
external_interface = "lo"
state_dir = "state"
anchor = "jnet"

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
[jails.wild]
ports = ["tcp/8080", "udp/8080"]
[jails.dual]
ports = ["tcp/9090"]
[jails.v6only]
ports = ["tcp/9191"]
[jails.dns]
ports = ["udp/5353"]
[jails.ded]
ports = ["tcp/8080"]
expose = ["tcp/8080"]
[jails.redir]
ports = ["tcp/80"]
expose = ["tcp/7000:80"]
"#;

fn conflicts(o: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    v["conflicts"].as_array().unwrap().clone()
}

#[test]
fn check_against_real_listeners_in_a_namespace() {
    if !netns::prerequisites("check_against_real_listeners_in_a_namespace", &["nft"]) {
        return;
    }
    netns::isolated(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("jnet.toml"), CONFIG).unwrap();
        let ok = |args: &[&str]| {
            let o = jnet(d, args);
            assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        // The walk-through: three inherit jails on distinct ports pass.
        for j in ["web", "app", "db"] {
            ok(&["assign", j, "--inherit"]);
        }
        let o = jnet(d, &["check"]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
        // A fourth inherit jail on 80 fails, naming both.
        ok(&["assign", "web2", "--inherit"]);
        let o = jnet(d, &["check", "web2"]);
        assert_eq!(o.status.code(), Some(1));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("web2") && text.contains("jail web ") && text.contains("tcp/80"),
            "{text}"
        );
        let o = jnet(d, &["check", "web2", "--format", "json"]);
        let c = conflicts(&o);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0]["severity"].as_str(), c[0]["proto"].as_str(), c[0]["port"].as_u64()),
            (Some("error"), Some("tcp"), Some(80))
        );
        assert_eq!(
            (
                c[0]["jail"].as_str(),
                c[0]["other"]["kind"].as_str(),
                c[0]["other"]["name"].as_str()
            ),
            (Some("web2"), Some("jail"), Some("web"))
        );
        // The prestart hook vetoes the start the same way: exit 1, both
        // sides named, nothing created.
        let o = jnet(d, &["hook", "prestart", "web2"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("web2") && err.contains("jail web "), "{err}");
        ok(&["release", "web2"]);

        // Real sockets owned by this test process.
        let pid = std::process::id() as u64;
        let _t = TcpListener::bind("0.0.0.0:8080").unwrap();
        let _d = TcpListener::bind("[::]:9090").unwrap(); // dual-stack (bindv6only=0)
        let _v = v6only_listener(9191);
        let _u = UdpSocket::bind("127.0.0.1:5353").unwrap();
        for j in ["wild", "dual", "v6only", "dns"] {
            ok(&["assign", j, "--inherit"]);
        }
        ok(&["assign", "ded", "--pool", "lan"]);
        let one = |jail: &str| {
            let o = jnet(d, &["check", jail, "--format", "json"]);
            (o.status.code(), conflicts(&o))
        };
        // tcp wildcard listener vs inherit tcp/8080: error naming our pid;
        // jail ded's exposure of host port 8080 collides with it too; the
        // same jail's udp/8080 meets no udp socket.
        let (code, c) = one("wild");
        assert_eq!(code, Some(1));
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c.iter().all(|c| c["proto"] == "tcp"), "{c:?}");
        // why by kind, not position: conflicts are ordered by their message,
        // which names the listener's command (this test binary's name).
        let kind = |k: &str| {
            c.iter()
                .find(|x| x["other"]["kind"] == k)
                .unwrap_or_else(|| panic!("{k}: {c:?}"))
        };
        assert_eq!(kind("exposure")["other"]["jail"].as_str(), Some("ded"));
        let l = kind("listener");
        assert_eq!(l["other"]["pid"].as_u64(), Some(pid));
        assert_eq!(l["other"]["address"], "0.0.0.0");
        // Dual-stack and v6-only [::] both collide with an inherit jail.
        let (code, c) = one("dual");
        assert_eq!((code, c.len()), (Some(1), 1), "{c:?}");
        assert_eq!(c[0]["other"]["dual_stack"], true);
        let (code, c) = one("v6only");
        assert_eq!((code, c.len()), (Some(1), 1), "{c:?}");
        assert_eq!(c[0]["other"]["dual_stack"], false);
        // A specific udp socket vs an inherit jail's wildcard claim.
        let (code, c) = one("dns");
        assert_eq!((code, c.len()), (Some(1), 1), "{c:?}");
        assert_eq!(
            (c[0]["proto"].as_str(), c[0]["other"]["address"].as_str()),
            (Some("udp"), Some("127.0.0.1"))
        );
        // A dedicated Linux jail has its own stack: its tcp/8080 claim is
        // free, but its exposure of host port 8080 hits the host listener.
        let (code, c) = one("ded");
        assert_eq!(code, Some(1));
        let kinds: Vec<_> = c
            .iter()
            .map(|c| {
                (
                    c["port"].as_u64().unwrap(),
                    c["other"]["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(kinds.contains(&(8080, "listener".to_string())), "{c:?}");
        assert!(c.iter().all(|c| c["port"] == 8080), "{c:?}");

        // A redirection in another nft table makes its host port taken.
        jnet::os::runner::run(
            "nft",
            &["-f", "-"],
            Some("table ip other {\n chain pre {\n  type nat hook prerouting priority -100;\n  tcp dport 7000 dnat to 10.1.1.1:80\n }\n}\n"),
        )
        .unwrap();
        let before = jnet::os::runner::run("nft", &["list", "ruleset"], None).unwrap().stdout;
        ok(&["assign", "redir", "10.9.0.50"]);
        let (code, c) = one("redir");
        assert_eq!(code, Some(1));
        let r: Vec<_> = c.iter().filter(|c| c["other"]["kind"] == "redirect").collect();
        assert_eq!(r.len(), 1, "{c:?}");
        assert_eq!(r[0]["port"].as_u64(), Some(7000));
        assert!(r[0]["other"]["owner"].as_str().unwrap().contains("other"), "{r:?}");
        // Checking never changes the firewall.
        assert_eq!(
            jnet::os::runner::run("nft", &["list", "ruleset"], None).unwrap().stdout,
            before
        );

        // Bad input: an unknown jail is refused with 65.
        let o = jnet(d, &["check", "nosuch"]);
        assert_eq!(o.status.code(), Some(65));
    });
}

/// Allocation asks the OS which addresses are already on an interface (here
/// the interfaces of the test's own namespace), skips them, refuses them by
/// hand, and reports one no jail holds as drift.
#[test]
fn pool_allocation_skips_addresses_on_interfaces() {
    if !netns::prerequisites("pool_allocation_skips_addresses_on_interfaces", &[]) {
        return;
    }
    netns::isolated(|| {
        use jnet::os::linux::{addr, link};
        let mut rt = link::route_socket().unwrap();
        link::create_veth(&mut rt, "tst0", "tst1").unwrap();
        link::set_up(&mut rt, "tst0", true).unwrap();
        addr::add_v4(&mut rt, "tst0", "198.51.100.10".parse().unwrap(), 24).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("jnet.toml"),
            "[host]\nexternal_interface = \"tst0\"\nstate_dir = \"state\"\n\
             [pools.lan]\nnetwork = \"198.51.100.0/24\"\ninterface = \"tst0\"\nranges = [\"198.51.100.10-198.51.100.20\"]\n",
        )
        .unwrap();
        let o = jnet(d, &["assign", "a", "--pool", "lan"]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "a: 198.51.100.11 from pool lan on tst0\n"
        );
        let o = jnet(d, &["assign", "b", "198.51.100.10"]);
        assert_eq!(o.status.code(), Some(65));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("198.51.100.10 is configured on host interface tst0"),
            "{err}"
        );

        let o = jnet(d, &["inventory", "--format", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let drift = v["drift"].as_array().unwrap();
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(
            (drift[0]["kind"].as_str(), drift[0]["address"].as_str()),
            (Some("stray"), Some("198.51.100.10"))
        );
        assert_eq!(v["pools"][0]["reserved"], 1);
    });
}
