//! Listening sockets via sock_diag netlink (sock_diag(7), inet_diag):
//! TCP sockets in LISTEN and UDP sockets that are bound but not connected,
//! IPv4 and IPv6, of the calling thread's network namespace or of a named
//! one (entered in a separate thread, see `netns::run_in`).
//!
//! Owners (pid, command) come from a scan of /proc/<pid>/fd for
//! `socket:[inode]` links: one readdir per process and one readlink per
//! open descriptor on the host, stopped as soon as every wanted inode is
//! found. Sockets whose owner cannot be seen (another user's process
//! without CAP_SYS_PTRACE, a process that just exited) are still reported,
//! with an empty owner — never dropped. It does not parse /proc/net/*.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::IpAddr;
use std::path::Path;

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{nlas::Nla, ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;

use super::netlink::{NetlinkError, NlSocket};
use super::netns::{self, NetnsError};
use crate::core::listeners::{Listener, Owner, Stack};
use crate::core::ports::Proto;
use crate::os::OsError;

/// One socket as sock_diag reports it, before owner lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagSocket {
    pub proto: Proto,
    pub address: IpAddr,
    pub port: u16,
    pub dual_stack: bool,
    pub inode: u64,
}

/// Dumps TCP listeners and unconnected bound UDP sockets of the calling
/// thread's network namespace.
pub fn sockets_here() -> Result<Vec<DiagSocket>, NetlinkError> {
    let mut sock = NlSocket::open(netlink_sys::constants::NETLINK_SOCK_DIAG)?;
    let mut out = Vec::new();
    for (family, socket_id) in [(AF_INET, SocketId::new_v4()), (AF_INET6, SocketId::new_v6())] {
        for (proto, protocol, states) in [
            (Proto::Tcp, IPPROTO_TCP, StateFlags::LISTEN),
            // why: a bound, unconnected UDP socket is in TCP_CLOSE state for
            // inet_diag (ss shows it as UNCONN); connected ones are clients.
            (Proto::Udp, IPPROTO_UDP, StateFlags::CLOSE),
        ] {
            let req = InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::empty(),
                states,
                socket_id: socket_id.clone(),
            };
            let op = format!("sock_diag dump {proto} family {family}");
            let replies = sock.request(&op, SockDiagMessage::InetRequest(req), NLM_F_DUMP)?;
            for r in replies {
                let SockDiagMessage::InetResponse(resp) = r else {
                    continue;
                };
                let id = &resp.header.socket_id;
                if id.source_port == 0 {
                    continue; // created but never bound
                }
                let v6only = resp.nlas.iter().any(|n| matches!(n, Nla::SkV6Only(true)));
                let (address, dual_stack) = match id.source_address {
                    // A v4-mapped bind (::ffff:a.b.c.d) only ever sees IPv4.
                    IpAddr::V6(a) => match a.to_ipv4_mapped() {
                        Some(v4) => (IpAddr::V4(v4), false),
                        None => (IpAddr::V6(a), !v6only && a.is_unspecified()),
                    },
                    v4 => (v4, false),
                };
                out.push(DiagSocket {
                    proto,
                    address,
                    port: id.source_port,
                    dual_stack,
                    inode: u64::from(resp.header.inode),
                });
            }
        }
    }
    Ok(out)
}

/// Maps socket inodes to (pid, command) by scanning /proc/<pid>/fd, for
/// the inodes in `wanted` only; stops when all are found.
pub fn socket_owners(wanted: &HashSet<u64>) -> HashMap<u64, (u32, String)> {
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let Ok(procs) = fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let mut comm: Option<String> = None;
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if wanted.contains(&inode) && !found.contains_key(&inode) {
                let c = comm.get_or_insert_with(|| {
                    fs::read_to_string(p.path().join("comm"))
                        .map(|s| s.trim_end().to_string())
                        .unwrap_or_default()
                });
                found.insert(inode, (pid, c.clone()));
            }
        }
        if found.len() == wanted.len() {
            break;
        }
    }
    found
}

fn attach_owners(sockets: Vec<DiagSocket>, stack: &Stack, jail: Option<&str>) -> Vec<Listener> {
    let wanted: HashSet<u64> = sockets.iter().map(|s| s.inode).filter(|i| *i != 0).collect();
    let owners = socket_owners(&wanted);
    sockets
        .into_iter()
        .map(|s| {
            let (pid, command) = match owners.get(&s.inode) {
                Some((pid, c)) => (Some(*pid), Some(c.clone())),
                None => (None, None),
            };
            Listener {
                proto: s.proto,
                address: s.address,
                port: s.port,
                dual_stack: s.dual_stack,
                stack: stack.clone(),
                owner: Owner {
                    pid,
                    command,
                    jail: jail.map(str::to_string),
                    inode: Some(s.inode),
                },
            }
        })
        .collect()
}

/// Listeners of the calling thread's network namespace, attributed to `stack`.
pub fn listeners_here(stack: Stack) -> Result<Vec<Listener>, OsError> {
    let sockets = sockets_here()?;
    let jail = match &stack {
        Stack::Jail(j) => Some(j.to_string()),
        Stack::Host => None,
    };
    Ok(attach_owners(sockets, &stack, jail.as_deref()))
}

/// Listeners of the network namespace bound on `netns_path`. The dump runs
/// in a thread inside that namespace; the /proc scan runs here (pids and
/// fds are global).
pub fn listeners_in(netns_path: &Path, stack: Stack) -> Result<Vec<Listener>, OsError> {
    let sockets = netns::run_in(netns_path, sockets_here).map_err(|e: NetnsError| OsError::from(e))??;
    let jail = match &stack {
        Stack::Jail(j) => Some(j.to_string()),
        Stack::Host => None,
    };
    Ok(attach_owners(sockets, &stack, jail.as_deref()))
}
