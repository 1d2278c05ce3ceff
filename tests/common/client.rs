//! The "outside world" of the Linux end-to-end tests, built inside the
//! test's own network namespace (see netns.rs): a named netns `client`
//! (192.0.2.2/24, default route via 192.0.2.1) joined by a veth pair to the
//! host's `ext0` (192.0.2.1/24 plus any extra addresses), and helpers to
//! connect from it and to list jnet's nft chains.
#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use jnet::os::linux::netns::{self, NsKind};
use jnet::os::linux::{addr, link};

pub const CLIENT: &str = "/run/netns/client";
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Builds the client namespace and `ext0`; `extra` are further addresses
/// (/24) on `ext0`.
pub fn topology(extra: &[Ipv4Addr]) {
    let client = Path::new(CLIENT);
    assert!(netns::create_bound(client, NsKind::Net, || Ok(())).unwrap());
    let mut rt = link::route_socket().unwrap();
    link::create_veth(&mut rt, "ext0", "cl0").unwrap();
    let ns = netns::open(client).unwrap();
    link::move_to_netns(&mut rt, "cl0", ns.as_fd()).unwrap();
    addr::add_v4(&mut rt, "ext0", Ipv4Addr::new(192, 0, 2, 1), 24).unwrap();
    for a in extra {
        addr::add_v4(&mut rt, "ext0", *a, 24).unwrap();
    }
    link::set_up(&mut rt, "ext0", true).unwrap();
    netns::run_in(client, || {
        let mut s = link::route_socket().unwrap();
        link::set_up(&mut s, "lo", true).unwrap();
        addr::add_v4(&mut s, "cl0", Ipv4Addr::new(192, 0, 2, 2), 24).unwrap();
        link::set_up(&mut s, "cl0", true).unwrap();
        link::set_default_route(&mut s, Ipv4Addr::new(192, 0, 2, 1)).unwrap();
    })
    .unwrap();
}

/// Connects from namespace `ns` to `to` and reads until the peer closes.
pub fn fetch_from(ns: &str, to: &str) -> std::io::Result<String> {
    let to: SocketAddr = to.parse().unwrap();
    netns::run_in(Path::new(ns), move || {
        let mut s = TcpStream::connect_timeout(&to, TIMEOUT)?;
        s.set_read_timeout(Some(TIMEOUT))?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    })
    .unwrap()
}

/// Connects from the client namespace.
pub fn fetch(to: &str) -> std::io::Result<String> {
    fetch_from(CLIENT, to)
}

/// Chains of nft table `inet jnet` (empty when the table is gone).
pub fn jnet_chains() -> Vec<String> {
    match jnet::os::runner::run("nft", &["list", "table", "inet", "jnet"], None) {
        Ok(o) => o
            .stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("chain "))
            .map(|c| c.trim_end_matches(" {").to_string())
            .collect(),
        Err(_) => vec![],
    }
}
