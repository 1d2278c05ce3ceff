//! Interface-address ioctl layouts of netintro(4) and the alias plan:
//! `struct in_aliasreq` for SIOCAIFADDR, `struct ifreq` for SIOCDIFADDR,
//! `struct sockaddr_in` with its `sin_len`, the ioctl numbers, and the
//! choice of mask for a jail's IPv4 alias (/32 inside an existing subnet).
//!
//! Pure: the bytes are built here and checked against libc's declarations
//! in `sys` (compile-time asserts, FreeBSD only), which issues the ioctls.
//! IPv6 aliases are not handled.

use std::net::{IpAddr, Ipv4Addr};

use super::PlanError;
use crate::core::names::IfName;
use crate::os::IfAddr;

/// IFNAMSIZ on FreeBSD (name plus NUL).
pub const IFNAMSIZ: usize = 16;
/// AF_INET on FreeBSD.
pub const AF_INET: u8 = 2;
/// `sizeof(struct sockaddr_in)` on FreeBSD (it starts with `sin_len`).
pub const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct in_aliasreq)` on amd64 (<netinet/in_var.h>).
pub const IN_ALIASREQ_LEN: usize = IFNAMSIZ + 3 * SOCKADDR_IN_LEN + 4;
/// `sizeof(struct ifreq)` on amd64 (<net/if.h>).
pub const IFREQ_LEN: usize = 32;

/// `_IOW(group, num, len)` from <sys/ioccom.h>: IOC_IN | len << 16 | group << 8 | num.
pub const fn ioc_write(group: u8, num: u8, len: usize) -> u64 {
    const IOC_IN: u64 = 0x8000_0000;
    const IOCPARM_MASK: u64 = 0x1fff;
    IOC_IN | (((len as u64) & IOCPARM_MASK) << 16) | ((group as u64) << 8) | num as u64
}

/// Add (or change) an interface address: `_IOW('i', 43, struct in_aliasreq)`.
pub const SIOCAIFADDR: u64 = ioc_write(b'i', 43, IN_ALIASREQ_LEN);
/// Delete an interface address: `_IOW('i', 25, struct ifreq)`.
pub const SIOCDIFADDR: u64 = ioc_write(b'i', 25, IFREQ_LEN);

// The values DESIGN.md section 7 recorded from <sys/sockio.h> on amd64.
const _: () = assert!(IN_ALIASREQ_LEN == 68);
const _: () = assert!(SIOCAIFADDR == 0x8044_692b);
const _: () = assert!(SIOCDIFADDR == 0x8020_6919);

/// What attaching an address needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasPlan {
    /// Add the alias with this prefix length.
    Add { prefix: u8 },
    /// The address is already on the interface: nothing to do.
    Present,
}

fn contains(net: Ipv4Addr, prefix: u8, addr: Ipv4Addr) -> bool {
    let mask = prefix_mask(prefix);
    u32::from(net) & mask == u32::from(addr) & mask
}

/// The netmask of a prefix length, host order.
pub fn prefix_mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - p),
    }
}

/// The prefix length of a contiguous netmask; `None` when it has holes.
pub fn mask_prefix(mask: IpAddr) -> Option<u8> {
    let (bits, ones) = match mask {
        IpAddr::V4(m) => (u128::from(u32::from(m)) << 96, u32::from(m).count_ones()),
        IpAddr::V6(m) => (u128::from(m), u128::from(m).count_ones()),
    };
    (bits.leading_ones() == ones).then_some(ones as u8)
}

/// Decides how to attach `address` to `interface` given the addresses the
/// host already has: /32 when it lies inside a subnet already configured on
/// that interface (a second address with the subnet's mask would be
/// refused or would duplicate the subnet route), else `prefix`. An address
/// that is already on the interface is left alone; one that is on another
/// interface is an error.
pub fn plan_alias(
    address: Ipv4Addr,
    prefix: u8,
    interface: &IfName,
    existing: &[IfAddr],
) -> Result<AliasPlan, PlanError> {
    let err = |reason: String| PlanError::Alias {
        interface: interface.to_string(),
        address,
        prefix,
        reason,
    };
    if prefix == 0 || prefix > 32 {
        return Err(err("prefix length must be 1 to 32".into()));
    }
    if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
        return Err(err("not a unicast address".into()));
    }
    if let Some(other) = existing.iter().find(|a| a.address == IpAddr::V4(address)) {
        return if other.interface == interface.as_str() {
            Ok(AliasPlan::Present)
        } else {
            Err(err(format!("already configured on interface {}", other.interface)))
        };
    }
    let inside = existing.iter().any(|a| {
        a.interface == interface.as_str()
            && matches!(a.address, IpAddr::V4(net) if a.prefix < 32 && contains(net, a.prefix, address))
    });
    Ok(AliasPlan::Add {
        prefix: if inside { 32 } else { prefix },
    })
}

/// Whether `address` is on `interface` (detach is a no-op otherwise).
pub fn alias_present(address: Ipv4Addr, interface: &IfName, existing: &[IfAddr]) -> bool {
    existing
        .iter()
        .any(|a| a.interface == interface.as_str() && a.address == IpAddr::V4(address))
}

fn put_name(buf: &mut [u8], ifname: &IfName) {
    // IfName is at most 15 bytes, so the NUL at [15] always remains.
    let n = ifname.as_str().as_bytes();
    buf[..n.len()].copy_from_slice(n);
}

/// `struct sockaddr_in` as FreeBSD lays it out: sin_len, sin_family,
/// sin_port (network order), sin_addr (network order), 8 zero bytes.
pub fn encode_sockaddr_in(addr: Ipv4Addr) -> [u8; SOCKADDR_IN_LEN] {
    let mut s = [0u8; SOCKADDR_IN_LEN];
    s[0] = SOCKADDR_IN_LEN as u8;
    s[1] = AF_INET;
    s[4..8].copy_from_slice(&addr.octets());
    s
}

/// The SIOCAIFADDR request: name, address, no broadcast (left empty so the
/// kernel derives it, as ifconfig(8) does), mask, vhid 0.
pub fn encode_in_aliasreq(ifname: &IfName, addr: Ipv4Addr, prefix: u8) -> [u8; IN_ALIASREQ_LEN] {
    let mut r = [0u8; IN_ALIASREQ_LEN];
    put_name(&mut r[..IFNAMSIZ], ifname);
    r[IFNAMSIZ..IFNAMSIZ + 16].copy_from_slice(&encode_sockaddr_in(addr));
    let mask = Ipv4Addr::from(prefix_mask(prefix));
    r[IFNAMSIZ + 32..IFNAMSIZ + 48].copy_from_slice(&encode_sockaddr_in(mask));
    r
}

/// The SIOCDIFADDR request: `struct ifreq` with the address in `ifr_addr`.
pub fn encode_ifreq_addr(ifname: &IfName, addr: Ipv4Addr) -> [u8; IFREQ_LEN] {
    let mut r = [0u8; IFREQ_LEN];
    put_name(&mut r[..IFNAMSIZ], ifname);
    r[IFNAMSIZ..IFNAMSIZ + 16].copy_from_slice(&encode_sockaddr_in(addr));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::freebsd::test_support::ifn;

    #[test]
    fn ioctl_numbers_match_sockio_h() {
        // Other values recorded in DESIGN.md, to check the encoder itself.
        assert_eq!(ioc_write(b'i', 16, 32), 0x8020_6910); // SIOCSIFFLAGS
        assert_eq!(ioc_write(b'i', 121, 32), 0x8020_6979); // SIOCIFDESTROY
        assert_eq!(ioc_write(b'i', 27, 136), 0x8088_691b); // SIOCAIFADDR_IN6
    }

    fn ifa(i: &str, a: &str, p: u8) -> IfAddr {
        IfAddr {
            interface: i.into(),
            address: a.parse().unwrap(),
            prefix: p,
        }
    }

    #[test]
    fn alias_mask_choice() {
        let existing = [
            ifa("vtnet0", "192.168.1.10", 24),
            ifa("vtnet0", "fe80::1", 64),
            ifa("lo1", "10.66.0.1", 32),
            ifa("lo0", "127.0.0.1", 8),
        ];
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        // Inside the subnet of vtnet0: /32.
        assert_eq!(
            plan_alias(a("192.168.1.50"), 24, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Add { prefix: 32 })
        );
        // Outside any subnet on vtnet0: the requested prefix.
        assert_eq!(
            plan_alias(a("10.0.0.5"), 24, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Add { prefix: 24 })
        );
        // A /32 on lo1 is no subnet: the pool's prefix stays.
        assert_eq!(
            plan_alias(a("10.66.0.2"), 24, &ifn("lo1"), &existing),
            Ok(AliasPlan::Add { prefix: 24 })
        );
        // The same subnet on another interface does not count.
        assert_eq!(
            plan_alias(a("192.168.1.50"), 24, &ifn("lo1"), &existing),
            Ok(AliasPlan::Add { prefix: 24 })
        );
        // Already there: nothing to do; elsewhere: refused.
        assert_eq!(
            plan_alias(a("192.168.1.10"), 24, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Present)
        );
        assert!(matches!(
            plan_alias(a("127.0.0.1"), 32, &ifn("lo1"), &existing),
            Err(PlanError::Alias { .. })
        ));
        assert!(plan_alias(a("10.0.0.5"), 0, &ifn("lo1"), &existing).is_err());
        assert!(plan_alias(a("10.0.0.5"), 33, &ifn("lo1"), &existing).is_err());
        assert!(plan_alias(a("224.0.0.1"), 32, &ifn("lo1"), &existing).is_err());
        assert!(alias_present(a("10.66.0.1"), &ifn("lo1"), &existing));
        assert!(!alias_present(a("10.66.0.1"), &ifn("vtnet0"), &existing));
    }

    #[test]
    fn masks() {
        assert_eq!(prefix_mask(24), 0xffff_ff00);
        assert_eq!(prefix_mask(32), u32::MAX);
        assert_eq!(prefix_mask(1), 0x8000_0000);
        assert_eq!(mask_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(mask_prefix("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(mask_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(mask_prefix("255.0.255.0".parse().unwrap()), None);
        assert_eq!(mask_prefix("ffff:ffff:ffff:ffff::".parse().unwrap()), Some(64));
    }

    #[test]
    fn aliasreq_layout() {
        let r = encode_in_aliasreq(&ifn("vtnet0"), Ipv4Addr::new(10, 0, 0, 5), 32);
        assert_eq!(&r[..7], b"vtnet0\0");
        assert!(r[6..16].iter().all(|&b| b == 0));
        // ifra_addr at 16
        assert_eq!(&r[16..24], &[16, AF_INET, 0, 0, 10, 0, 0, 5]);
        // ifra_broadaddr at 32 left empty
        assert!(r[32..48].iter().all(|&b| b == 0));
        // ifra_mask at 48
        assert_eq!(&r[48..56], &[16, AF_INET, 0, 0, 255, 255, 255, 255]);
        // ifra_vhid at 64
        assert_eq!(&r[64..], &[0, 0, 0, 0]);
        let r = encode_in_aliasreq(&ifn("lo1"), Ipv4Addr::new(10, 66, 0, 2), 24);
        assert_eq!(&r[52..56], &[255, 255, 255, 0]);
        let d = encode_ifreq_addr(&ifn("lo1"), Ipv4Addr::new(10, 66, 0, 2));
        assert_eq!(&d[..4], b"lo1\0");
        assert_eq!(&d[16..24], &[16, AF_INET, 0, 0, 10, 66, 0, 2]);
        assert!(d[24..].iter().all(|&b| b == 0));
    }
}
