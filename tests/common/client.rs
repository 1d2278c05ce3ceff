//! The "outside world" of the Linux end-to-end tests, built inside the
//! test's own network namespace (see netns.rs): a named netns `client`
//! (192.0.2.2/24, default route via 192.0.2.1) joined by a veth pair to the
//! host's `ext0` (192.0.2.1/24 plus any extra addresses; IPv6 with
//! [`topology6`]), a TCP [`Server`] in any namespace, and helpers to
//! connect from it and to list jnet's nft chains.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
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
    // why no DAD: a link-local address stays tentative for a second or two
    // after the link comes up, and IPv6 neighbour discovery over it (the
    // client's route to ext0) would outlast a test's connect timeout.
    jnet::os::linux::sysctl::disable_dad("ext0").unwrap();
    link::set_up(&mut rt, "ext0", true).unwrap();
    netns::run_in(client, || {
        let mut s = link::route_socket().unwrap();
        link::set_up(&mut s, "lo", true).unwrap();
        addr::add_v4(&mut s, "cl0", Ipv4Addr::new(192, 0, 2, 2), 24).unwrap();
        jnet::os::linux::sysctl::disable_dad("cl0").unwrap();
        link::set_up(&mut s, "cl0", true).unwrap();
        link::set_default_route(&mut s, Ipv4Addr::new(192, 0, 2, 1)).unwrap();
    })
    .unwrap();
}

/// Adds IPv6 to the topology: `ext0` 2001:db8:e::1/64 (plus `extra`,
/// /64), the client 2001:db8:e::2/64 with its IPv6 default route via
/// 2001:db8:e::1. Documentation prefix (RFC 3849), inside the test's own
/// namespaces only.
pub fn topology6(extra: &[Ipv6Addr]) {
    let mut rt = link::route_socket().unwrap();
    addr::add(&mut rt, "ext0", "2001:db8:e::1".parse().unwrap(), 64).unwrap();
    for a in extra {
        addr::add(&mut rt, "ext0", (*a).into(), 64).unwrap();
    }
    netns::run_in(Path::new(CLIENT), || {
        let mut s = link::route_socket().unwrap();
        addr::add(&mut s, "cl0", "2001:db8:e::2".parse().unwrap(), 64).unwrap();
        link::set_default_route_via(&mut s, "2001:db8:e::1".parse().unwrap()).unwrap();
    })
    .unwrap();
}

/// A TCP server on a listener bound inside some namespace: each connection
/// gets `greeting`; the peer address of every accepted connection is kept.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<SocketAddr>>>,
}

impl Server {
    pub fn bind_in(ns: &Path, addr: &str, greeting: &'static str) -> Server {
        let addr = addr.to_string();
        let l = netns::run_in(ns, move || TcpListener::bind(addr)).unwrap().unwrap();
        // why: non-blocking accept polled against a stop flag, so the test
        // can end the server (and so the listener's namespace) when done.
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peers = vec![];
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, peer)) => {
                        peers.push(peer);
                        c.set_nonblocking(false).unwrap();
                        let _ = c.write_all(greeting.as_bytes());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            peers
        });
        Server {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the server; the peers it accepted, in order.
    pub fn finish(mut self) -> Vec<SocketAddr> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
