//! Interface addresses: listing (getifaddrs(3)) and alias add/remove, IPv4
//! with SIOCAIFADDR / SIOCDIFADDR on an AF_INET datagram socket (netintro(4),
//! what `ifconfig <if> inet <a>/<p> alias` and `-alias` do), IPv6 with
//! SIOCAIFADDR_IN6 / SIOCDIFADDR_IN6 on an AF_INET6 one (what `ifconfig <if>
//! inet6 <a>/<p> alias no_dad` does; sys/netinet6/in6.c in6_control).
//!
//! The mask choice (a host prefix inside an existing subnet) and the
//! request bytes come from `ifreq`. This module neither creates interfaces
//! nor touches routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use super::ifreq::{self as plan, AliasPlan};
use super::{sys, FreeBsdError};
use crate::core::names::IfName;
use crate::os::IfAddr;

/// Every IPv4 and IPv6 address on every interface.
pub fn interface_addresses() -> Result<Vec<IfAddr>, FreeBsdError> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(FreeBsdError::IfAddrs)? {
        let Some(addr) = ifa.address else { continue };
        let (address, mask): (IpAddr, Option<IpAddr>) = if let Some(a) = addr.as_sockaddr_in() {
            (
                IpAddr::V4(a.ip()),
                ifa.netmask.and_then(|m| m.as_sockaddr_in().map(|m| IpAddr::V4(m.ip()))),
            )
        } else if let Some(a) = addr.as_sockaddr_in6() {
            (
                IpAddr::V6(a.ip()),
                ifa.netmask
                    .and_then(|m| m.as_sockaddr_in6().map(|m| IpAddr::V6(m.ip()))),
            )
        } else {
            continue;
        };
        let host_len = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match mask.and_then(plan::mask_prefix) {
            Some(p) => p,
            None => {
                // why: a mask we cannot read must not make the address look
                // like a subnet; a host prefix is the cautious reading.
                tracing::warn!(interface = %ifa.interface_name, %address, "netmask unreadable; assuming a host prefix");
                host_len
            }
        };
        out.push(IfAddr {
            interface: ifa.interface_name,
            address,
            prefix,
        });
    }
    Ok(out)
}

fn inet_socket(interface: &IfName, address: IpAddr, op: &'static str) -> Result<std::os::fd::OwnedFd, FreeBsdError> {
    let family = if address.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).map_err(|errno| FreeBsdError::Alias {
        op,
        interface: interface.to_string(),
        address,
        errno,
    })
}

/// Adds `address` to `interface` (/32 when inside a subnet already there,
/// else `/prefix`); a no-op when it is already on that interface.
pub fn attach(address: Ipv4Addr, prefix: u8, interface: &IfName) -> Result<(), FreeBsdError> {
    let existing = interface_addresses()?;
    match plan::plan_alias(address, prefix, interface, &existing)? {
        AliasPlan::Present => {
            tracing::info!(%interface, %address, "address already on the interface; nothing to add");
            Ok(())
        }
        AliasPlan::Add { prefix } => {
            let sock = inet_socket(interface, IpAddr::V4(address), "add")?;
            let req = plan::encode_in_aliasreq(interface, address, prefix);
            sys::add_inet_address(sock.as_fd(), &req).map_err(|errno| FreeBsdError::Alias {
                op: "add",
                interface: interface.to_string(),
                address: IpAddr::V4(address),
                errno,
            })?;
            tracing::info!(%interface, %address, prefix, "alias added");
            Ok(())
        }
    }
}

/// Removes `address` from `interface`; absent is not an error.
pub fn detach(address: Ipv4Addr, interface: &IfName) -> Result<(), FreeBsdError> {
    if !plan::alias_present(address, interface, &interface_addresses()?) {
        tracing::info!(%interface, %address, "address not on the interface; nothing to remove");
        return Ok(());
    }
    let sock = inet_socket(interface, IpAddr::V4(address), "remove")?;
    match sys::delete_inet_address(sock.as_fd(), &plan::encode_ifreq_addr(interface, address)) {
        Ok(()) => {
            tracing::info!(%interface, %address, "alias removed");
            Ok(())
        }
        // Removed by someone else since we looked.
        Err(Errno::EADDRNOTAVAIL) => Ok(()),
        Err(errno) => Err(FreeBsdError::Alias {
            op: "remove",
            interface: interface.to_string(),
            address: IpAddr::V4(address),
            errno,
        }),
    }
}

/// Adds the IPv6 `address` to `interface` (/128 inside a prefix already
/// there, else `/prefix`), without duplicate address detection (the pool
/// guarantees it is unique, and a tentative address could not be bound at
/// once); a no-op when it is already on that interface.
pub fn attach6(address: Ipv6Addr, prefix: u8, interface: &IfName) -> Result<(), FreeBsdError> {
    let existing = interface_addresses()?;
    match plan::plan_alias6(address, prefix, interface, &existing).map_err(FreeBsdError::Alias6Plan)? {
        AliasPlan::Present => {
            tracing::info!(%interface, %address, "address already on the interface; nothing to add");
            Ok(())
        }
        AliasPlan::Add { prefix } => {
            let sock = inet_socket(interface, IpAddr::V6(address), "add")?;
            let req = plan::encode_in6_aliasreq(interface, address, prefix);
            sys::add_inet6_address(sock.as_fd(), &req).map_err(|errno| FreeBsdError::Alias {
                op: "add",
                interface: interface.to_string(),
                address: IpAddr::V6(address),
                errno,
            })?;
            tracing::info!(%interface, %address, prefix, "IPv6 alias added");
            Ok(())
        }
    }
}

/// Removes the IPv6 `address` from `interface`; absent is not an error.
pub fn detach6(address: Ipv6Addr, interface: &IfName) -> Result<(), FreeBsdError> {
    let present = interface_addresses()?
        .iter()
        .any(|a| a.interface == interface.as_str() && a.address == IpAddr::V6(address));
    if !present {
        tracing::info!(%interface, %address, "address not on the interface; nothing to remove");
        return Ok(());
    }
    let sock = inet_socket(interface, IpAddr::V6(address), "remove")?;
    match sys::delete_inet6_address(sock.as_fd(), &plan::encode_in6_ifreq_addr(interface, address)) {
        Ok(()) => {
            tracing::info!(%interface, %address, "IPv6 alias removed");
            Ok(())
        }
        // Removed by someone else since we looked.
        Err(Errno::EADDRNOTAVAIL) => Ok(()),
        Err(errno) => Err(FreeBsdError::Alias {
            op: "remove",
            interface: interface.to_string(),
            address: IpAddr::V6(address),
            errno,
        }),
    }
}
