//! Links over rtnetlink (rtnetlink(7) RTM_*LINK, RTM_NEWROUTE): look up,
//! create bridges and veth pairs, bring up/down, enslave, move into a
//! namespace, rename, delete, and the default route of a jail.
//!
//! Names given here come from validated `IfName`s or from `jail::veth_names`
//! (both at most 15 bytes); this module does not validate them again, the
//! kernel refuses anything longer. It never touches a link it was not named.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::{NetlinkError, NlSocket};

/// One link as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFLA_INFO_KIND (`bridge`, `veth`, `dummy`, ...) when the link has one.
    pub kind: Option<String>,
    /// Index of the bridge (or bond) this link is enslaved to.
    pub master: Option<u32>,
    pub up: bool,
}

fn to_link(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        master: None,
        up: m.header.flags.contains(LinkFlags::Up),
    };
    for attr in &m.attributes {
        match attr {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Controller(c) => l.master = Some(*c),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    l
}

/// Every link of the socket's namespace.
pub fn list(sock: &mut NlSocket) -> Result<Vec<Link>, NetlinkError> {
    let replies = sock.request(
        "list links",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(replies
        .iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(to_link(m)),
            _ => None,
        })
        .collect())
}

/// The link called `name`, or None when there is none.
pub fn get(sock: &mut NlSocket, name: &str) -> Result<Option<Link>, NetlinkError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    match sock.request(&format!("get link {name}"), RouteNetlinkMessage::GetLink(m), 0) {
        Ok(replies) => Ok(replies.iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(to_link(m)),
            _ => None,
        })),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The index of link `name`, or None when there is none.
pub fn index(sock: &mut NlSocket, name: &str) -> Result<Option<u32>, NetlinkError> {
    Ok(get(sock, name)?.map(|l| l.index))
}

/// The index of link `name`; a missing link is an error (ENODEV).
pub fn require_index(sock: &mut NlSocket, name: &str) -> Result<u32, NetlinkError> {
    index(sock, name)?.ok_or_else(|| NetlinkError::Io {
        op: format!("find interface {name}"),
        source: std::io::Error::from_raw_os_error(libc::ENODEV),
    })
}

fn new_link(sock: &mut NlSocket, op: &str, name: &str, info: Vec<LinkInfo>) -> Result<(), NetlinkError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes.push(LinkAttribute::LinkInfo(info));
    sock.request(op, RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)?;
    Ok(())
}

/// Creates bridge `name` unless a link of that name exists. Returns true
/// when it created it. An existing link that is not a bridge is an error.
pub fn ensure_bridge(sock: &mut NlSocket, name: &str) -> Result<bool, NetlinkError> {
    if let Some(l) = get(sock, name)? {
        if l.kind.as_deref() != Some("bridge") {
            return Err(NetlinkError::Io {
                op: format!(
                    "use {name} as a bridge: it is a {} link",
                    l.kind.as_deref().unwrap_or("plain")
                ),
                source: std::io::Error::from_raw_os_error(libc::EEXIST),
            });
        }
        return Ok(false);
    }
    match new_link(
        sock,
        &format!("create bridge {name}"),
        name,
        vec![LinkInfo::Kind(InfoKind::Bridge)],
    ) {
        Ok(()) => {
            tracing::info!(bridge = name, "bridge created");
            Ok(true)
        }
        // why: another jnet process may have created it between the lookup
        // and the request; then it is not ours.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the veth pair `host` <-> `peer` in the socket's namespace.
pub fn create_veth(sock: &mut NlSocket, host: &str, peer: &str) -> Result<(), NetlinkError> {
    let mut p = LinkMessage::default();
    p.attributes.push(LinkAttribute::IfName(peer.to_string()));
    new_link(
        sock,
        &format!("create veth {host} <-> {peer}"),
        host,
        vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ],
    )
}

fn set_link(sock: &mut NlSocket, op: &str, index: u32, f: impl FnOnce(&mut LinkMessage)) -> Result<(), NetlinkError> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    f(&mut m);
    sock.request(op, RouteNetlinkMessage::SetLink(m), 0)?;
    Ok(())
}

/// Brings link `name` up or down.
pub fn set_up(sock: &mut NlSocket, name: &str, up: bool) -> Result<(), NetlinkError> {
    let index = require_index(sock, name)?;
    set_link(
        sock,
        &format!("set {name} {}", if up { "up" } else { "down" }),
        index,
        |m| {
            if up {
                m.header.flags = LinkFlags::Up;
            }
            m.header.change_mask = LinkFlags::Up;
        },
    )
}

/// Enslaves `name` to bridge `bridge`.
pub fn set_master(sock: &mut NlSocket, name: &str, bridge: &str) -> Result<(), NetlinkError> {
    let index = require_index(sock, name)?;
    let master = require_index(sock, bridge)?;
    set_link(sock, &format!("enslave {name} to {bridge}"), index, |m| {
        m.attributes.push(LinkAttribute::Controller(master))
    })
}

/// Moves `name` into the network namespace open at `netns`.
pub fn move_to_netns(sock: &mut NlSocket, name: &str, netns: BorrowedFd<'_>) -> Result<(), NetlinkError> {
    let index = require_index(sock, name)?;
    set_link(sock, &format!("move {name} to another namespace"), index, |m| {
        m.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()))
    })
}

/// Renames link `from` to `to` (the link must be down).
pub fn rename(sock: &mut NlSocket, from: &str, to: &str) -> Result<(), NetlinkError> {
    let index = require_index(sock, from)?;
    set_link(sock, &format!("rename {from} to {to}"), index, |m| {
        m.attributes.push(LinkAttribute::IfName(to.to_string()))
    })
}

/// Deletes link `name` (for a veth, both ends). Returns false when it did
/// not exist.
pub fn delete(sock: &mut NlSocket, name: &str) -> Result<bool, NetlinkError> {
    let Some(index) = index(sock, name)? else {
        return Ok(false);
    };
    let mut m = LinkMessage::default();
    m.header.index = index;
    match sock.request(&format!("delete link {name}"), RouteNetlinkMessage::DelLink(m), 0) {
        Ok(_) => {
            tracing::debug!(link = name, "link deleted");
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets (or replaces) the default route of `gateway`'s family via
/// `gateway` (IPv4 `0.0.0.0/0`, IPv6 `::/0`).
pub fn set_default_route_via(sock: &mut NlSocket, gateway: IpAddr) -> Result<(), NetlinkError> {
    let mut m = RouteMessage::default();
    let (family, via) = match gateway {
        IpAddr::V4(g) => (AddressFamily::Inet, RouteAddress::Inet(g)),
        IpAddr::V6(g) => (AddressFamily::Inet6, RouteAddress::Inet6(g)),
    };
    m.header.address_family = family;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::Gateway(via));
    sock.request(
        &format!("default route via {gateway}"),
        RouteNetlinkMessage::NewRoute(m),
        NLM_F_CREATE | NLM_F_REPLACE,
    )?;
    Ok(())
}

/// Sets (or replaces) the IPv4 default route via `gateway`.
pub fn set_default_route(sock: &mut NlSocket, gateway: Ipv4Addr) -> Result<(), NetlinkError> {
    set_default_route_via(sock, IpAddr::V4(gateway))
}

/// Opens an rtnetlink socket in the calling thread's network namespace.
pub fn route_socket() -> Result<NlSocket, NetlinkError> {
    NlSocket::open(netlink_sys::constants::NETLINK_ROUTE)
}
