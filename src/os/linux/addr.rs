//! Interface addresses over rtnetlink (rtnetlink(7), RTM_GETADDR /
//! RTM_NEWADDR / RTM_DELADDR), the way `ip addr` does it.
//!
//! Adding an address that is already there and deleting one that is not
//! are "already so", not errors. This module does not touch routes or
//! links (see `link`), and only ever acts on the namespace its socket lives
//! in.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::link;
use super::netlink::{NetlinkError, NlSocket};
use crate::os::IfAddr;

/// Every address on every interface of the socket's namespace, IPv4 and
/// IPv6, in the kernel's order.
pub fn list(sock: &mut NlSocket) -> Result<Vec<IfAddr>, NetlinkError> {
    let names: std::collections::HashMap<u32, String> =
        link::list(sock)?.into_iter().map(|l| (l.index, l.name)).collect();
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::Unspec;
    let replies = sock.request("list addresses", RouteNetlinkMessage::GetAddress(req), NLM_F_DUMP)?;
    let mut out = Vec::new();
    for reply in replies {
        let RouteNetlinkMessage::NewAddress(m) = reply else {
            continue;
        };
        // why: IFA_LOCAL is the interface's own address; IFA_ADDRESS is the
        // peer on point-to-point links and equal to IFA_LOCAL elsewhere.
        let mut local = None;
        let mut address = None;
        for attr in &m.attributes {
            match attr {
                AddressAttribute::Local(a) => local = Some(*a),
                AddressAttribute::Address(a) => address = Some(*a),
                _ => {}
            }
        }
        let Some(ip) = local.or(address) else {
            continue;
        };
        let interface = names
            .get(&m.header.index)
            .cloned()
            .unwrap_or_else(|| format!("if{}", m.header.index));
        out.push(IfAddr {
            interface,
            address: ip,
            prefix: m.header.prefix_len,
        });
    }
    Ok(out)
}

fn message(index: u32, address: IpAddr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(address));
    m.attributes.push(AddressAttribute::Address(address));
    if address.is_ipv6() {
        // why: without IFA_F_NODAD a new IPv6 address stays "tentative"
        // for the duplicate address detection (about a second, RFC 4862
        // 5.4) and cannot be bound or used as a source meanwhile, so a jail
        // whose exec.start binds it would fail. jnet's allocator already
        // guarantees the address is unique in its pool.
        m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    m
}

/// Adds `address/prefix` (either family) to `interface`; an IPv6 address
/// is usable at once (no duplicate address detection). Returns false when
/// it was already there (EEXIST), true when added.
pub fn add(sock: &mut NlSocket, interface: &str, address: IpAddr, prefix: u8) -> Result<bool, NetlinkError> {
    let index = link::require_index(sock, interface)?;
    let op = format!("add {address}/{prefix} to {interface}");
    match sock.request(
        &op,
        RouteNetlinkMessage::NewAddress(message(index, address, prefix)),
        NLM_F_CREATE | NLM_F_EXCL,
    ) {
        Ok(_) => {
            tracing::debug!(%address, prefix, interface, "address added");
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes `address/prefix` (either family) from `interface`. Returns false
/// when it was not there (EADDRNOTAVAIL, or the interface is gone), true
/// when removed.
pub fn del(sock: &mut NlSocket, interface: &str, address: IpAddr, prefix: u8) -> Result<bool, NetlinkError> {
    let Some(index) = link::index(sock, interface)? else {
        return Ok(false);
    };
    let op = format!("delete {address}/{prefix} from {interface}");
    match sock.request(&op, RouteNetlinkMessage::DelAddress(message(index, address, prefix)), 0) {
        Ok(_) => {
            tracing::debug!(%address, prefix, interface, "address deleted");
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// [`add`] of an IPv4 address.
pub fn add_v4(sock: &mut NlSocket, interface: &str, address: Ipv4Addr, prefix: u8) -> Result<bool, NetlinkError> {
    add(sock, interface, IpAddr::V4(address), prefix)
}

/// [`del`] of an IPv4 address.
pub fn del_v4(sock: &mut NlSocket, interface: &str, address: Ipv4Addr, prefix: u8) -> Result<bool, NetlinkError> {
    del(sock, interface, IpAddr::V4(address), prefix)
}
