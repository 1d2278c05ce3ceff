//! Interface-address ioctl layouts of netintro(4) and the alias plan:
//! `struct in_aliasreq` for SIOCAIFADDR, `struct ifreq` for SIOCDIFADDR,
//! `struct sockaddr_in` with its `sin_len`, the ioctl numbers, and the
//! choice of mask for a jail's IPv4 alias (/32 inside an existing subnet).
//!
//! For IPv6 (issue 9 B4): `struct in6_aliasreq` for SIOCAIFADDR_IN6 and
//! `struct in6_ifreq` for SIOCDIFADDR_IN6 (sys/netinet6/in6_var.h), with
//! `struct sockaddr_in6` (sys/netinet6/in6.h). A jail's IPv6 alias is
//! added with prefixlen 128 inside a prefix already on the interface,
//! without duplicate address detection (`IN6_IFF_NODAD`, which
//! sys/netinet6/in6.c `in6_update_ifa` honours) and with infinite
//! lifetimes, as ifconfig(8) sets them.
//!
//! Pure: the bytes are built here and checked against libc's declarations
//! in `sys` (compile-time asserts, FreeBSD only), which issues the ioctls.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// AF_INET6 on FreeBSD (sys/sys/socket.h; Linux's is 10).
pub const AF_INET6: u8 = 28;
/// `sizeof(struct sockaddr_in6)`: sin6_len, sin6_family, sin6_port,
/// sin6_flowinfo, sin6_addr (16), sin6_scope_id (sys/netinet6/in6.h).
pub const SOCKADDR_IN6_LEN: usize = 28;
/// `sizeof(struct in6_addrlifetime)` on amd64: two `time_t` (8 bytes) and
/// two `u_int32_t`; 8-byte aligned.
const IN6_ADDRLIFETIME_LEN: usize = 24;
/// Offset of `ifra_lifetime` in `struct in6_aliasreq`: name, three
/// sockaddr_in6 and `int ifra_flags` end at 104, already 8-aligned.
pub const IN6_ALIASREQ_LIFETIME_AT: usize = IFNAMSIZ + 3 * SOCKADDR_IN6_LEN + 4;
/// `sizeof(struct in6_aliasreq)` on amd64 (sys/netinet6/in6_var.h):
/// ..., `ifra_lifetime`, `int ifra_vhid`, padded to the 8-byte alignment.
pub const IN6_ALIASREQ_LEN: usize = (IN6_ALIASREQ_LIFETIME_AT + IN6_ADDRLIFETIME_LEN + 4).next_multiple_of(8);
/// `sizeof(struct in6_ifreq)` on amd64: the name and a union whose largest
/// member is `struct icmp6_ifstat`, 34 `uint64_t` counters.
pub const IN6_IFREQ_LEN: usize = IFNAMSIZ + 34 * 8;
/// Add an IPv6 interface address: `_IOW('i', 27, struct in6_aliasreq)`.
pub const SIOCAIFADDR_IN6: u64 = ioc_write(b'i', 27, IN6_ALIASREQ_LEN);
/// Delete one: `_IOW('i', 25, struct in6_ifreq)`.
pub const SIOCDIFADDR_IN6: u64 = ioc_write(b'i', 25, IN6_IFREQ_LEN);
/// `IN6_IFF_NODAD` (sys/netinet6/in6_var.h): no duplicate address detection.
pub const IN6_IFF_NODAD: u32 = 0x20;
/// `ND6_INFINITE_LIFETIME` (sys/netinet6/nd6.h).
pub const ND6_INFINITE_LIFETIME: u32 = 0xffff_ffff;

const _: () = assert!(IN6_ALIASREQ_LIFETIME_AT == 104);
const _: () = assert!(IN6_ALIASREQ_LEN == 136);
const _: () = assert!(IN6_IFREQ_LEN == 288);
const _: () = assert!(SIOCAIFADDR_IN6 == 0x8088_691b);
const _: () = assert!(SIOCDIFADDR_IN6 == 0x8120_6919);

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

/// `struct sockaddr_in6` as FreeBSD lays it out: sin6_len, sin6_family,
/// sin6_port 0, sin6_flowinfo 0, sin6_addr (network order),
/// sin6_scope_id 0 (jnet never aliases link-local addresses).
pub fn encode_sockaddr_in6(addr: Ipv6Addr) -> [u8; SOCKADDR_IN6_LEN] {
    let mut s = [0u8; SOCKADDR_IN6_LEN];
    s[0] = SOCKADDR_IN6_LEN as u8;
    s[1] = AF_INET6;
    s[8..24].copy_from_slice(&addr.octets());
    s
}

/// The netmask of an IPv6 prefix length.
pub fn prefix_mask6(prefix: u8) -> Ipv6Addr {
    match prefix {
        0 => Ipv6Addr::UNSPECIFIED,
        p if p >= 128 => Ipv6Addr::from(u128::MAX),
        p => Ipv6Addr::from(u128::MAX << (128 - p)),
    }
}

/// The SIOCAIFADDR_IN6 request: name, address, no destination, the prefix
/// mask, `IN6_IFF_NODAD`, infinite valid and preferred lifetimes
/// (`ia6t_vltime`, `ia6t_pltime`; the two `time_t` expiry fields stay 0 as
/// ifconfig(8) leaves them), vhid 0.
pub fn encode_in6_aliasreq(ifname: &IfName, addr: Ipv6Addr, prefix: u8) -> [u8; IN6_ALIASREQ_LEN] {
    let mut r = [0u8; IN6_ALIASREQ_LEN];
    put_name(&mut r[..IFNAMSIZ], ifname);
    let addr_at = IFNAMSIZ;
    let mask_at = IFNAMSIZ + 2 * SOCKADDR_IN6_LEN;
    let flags_at = IFNAMSIZ + 3 * SOCKADDR_IN6_LEN;
    r[addr_at..addr_at + SOCKADDR_IN6_LEN].copy_from_slice(&encode_sockaddr_in6(addr));
    r[mask_at..mask_at + SOCKADDR_IN6_LEN].copy_from_slice(&encode_sockaddr_in6(prefix_mask6(prefix)));
    r[flags_at..flags_at + 4].copy_from_slice(&IN6_IFF_NODAD.to_ne_bytes());
    let vltime_at = IN6_ALIASREQ_LIFETIME_AT + 16;
    r[vltime_at..vltime_at + 4].copy_from_slice(&ND6_INFINITE_LIFETIME.to_ne_bytes());
    r[vltime_at + 4..vltime_at + 8].copy_from_slice(&ND6_INFINITE_LIFETIME.to_ne_bytes());
    r
}

/// The SIOCDIFADDR_IN6 request: `struct in6_ifreq` with the address in
/// `ifr_addr`.
pub fn encode_in6_ifreq_addr(ifname: &IfName, addr: Ipv6Addr) -> [u8; IN6_IFREQ_LEN] {
    let mut r = [0u8; IN6_IFREQ_LEN];
    put_name(&mut r[..IFNAMSIZ], ifname);
    r[IFNAMSIZ..IFNAMSIZ + SOCKADDR_IN6_LEN].copy_from_slice(&encode_sockaddr_in6(addr));
    r
}

/// The prefix length for a jail's IPv6 alias: 128 when the address lies
/// inside a prefix already on the interface (as for IPv4's /32, so no
/// second prefix route appears), else `prefix`. Already on the interface:
/// nothing to do; on another interface: refused.
pub fn plan_alias6(
    address: Ipv6Addr,
    prefix: u8,
    interface: &IfName,
    existing: &[IfAddr],
) -> Result<AliasPlan, String> {
    if prefix == 0 || prefix > 128 {
        return Err(format!(
            "{address}/{prefix} on {interface}: prefix length must be 1 to 128"
        ));
    }
    if address.is_unspecified() || address.is_multicast() || address.is_loopback() {
        return Err(format!("{address} on {interface}: not a unicast address"));
    }
    if let Some(other) = existing.iter().find(|a| a.address == IpAddr::V6(address)) {
        return if other.interface == interface.as_str() {
            Ok(AliasPlan::Present)
        } else {
            Err(format!(
                "{address}: already configured on interface {}",
                other.interface
            ))
        };
    }
    let inside = existing.iter().any(|a| {
        a.interface == interface.as_str()
            && matches!(a.address, IpAddr::V6(net) if a.prefix < 128
                && u128::from(net) & u128::from(prefix_mask6(a.prefix))
                    == u128::from(address) & u128::from(prefix_mask6(a.prefix)))
    });
    Ok(AliasPlan::Add {
        prefix: if inside { 128 } else { prefix },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::freebsd::test_support::ifn;

    #[test]
    fn in6_aliasreq_layout() {
        let a: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let r = encode_in6_aliasreq(&ifn("vtnet0"), a, 128);
        assert_eq!(&r[..7], b"vtnet0\0");
        // ifra_addr at 16: len, family, port, flowinfo, address, scope.
        assert_eq!(&r[16..18], &[28, AF_INET6]);
        assert!(r[18..24].iter().all(|&b| b == 0));
        assert_eq!(&r[24..40], &a.octets());
        assert!(r[40..44].iter().all(|&b| b == 0));
        // ifra_dstaddr at 44 left empty.
        assert!(r[44..72].iter().all(|&b| b == 0));
        // ifra_prefixmask at 72: all ones for /128.
        assert_eq!(&r[72..74], &[28, AF_INET6]);
        assert_eq!(&r[80..96], &[0xff; 16]);
        // ifra_flags at 100: IN6_IFF_NODAD.
        assert_eq!(&r[100..104], &0x20u32.to_ne_bytes());
        // ifra_lifetime at 104: two time_t zero, then vltime and pltime infinite.
        assert!(r[104..120].iter().all(|&b| b == 0));
        assert_eq!(&r[120..128], &[0xff; 8]);
        // ifra_vhid at 128 and the padding: zero.
        assert!(r[128..].iter().all(|&b| b == 0));
        let r = encode_in6_aliasreq(&ifn("lo1"), a, 64);
        assert_eq!(
            &r[80..96],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let d = encode_in6_ifreq_addr(&ifn("lo1"), a);
        assert_eq!(&d[..4], b"lo1\0");
        assert_eq!(&d[16..18], &[28, AF_INET6]);
        assert_eq!(&d[24..40], &a.octets());
        assert!(d[40..].iter().all(|&b| b == 0));
    }

    #[test]
    fn alias6_prefix_choice() {
        let existing = [
            IfAddr {
                interface: "vtnet0".into(),
                address: "2001:db8::1".parse().unwrap(),
                prefix: 64,
            },
            IfAddr {
                interface: "vtnet0".into(),
                address: "fe80::1".parse().unwrap(),
                prefix: 64,
            },
        ];
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(
            plan_alias6(a("2001:db8::5"), 64, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Add { prefix: 128 })
        );
        assert_eq!(
            plan_alias6(a("2001:db8:1::5"), 64, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Add { prefix: 64 })
        );
        assert_eq!(
            plan_alias6(a("2001:db8::5"), 64, &ifn("lo1"), &existing),
            Ok(AliasPlan::Add { prefix: 64 })
        );
        assert_eq!(
            plan_alias6(a("2001:db8::1"), 64, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Present)
        );
        assert!(plan_alias6(a("2001:db8::1"), 64, &ifn("lo1"), &existing).is_err());
        assert!(plan_alias6(a("ff02::1"), 128, &ifn("lo1"), &existing).is_err());
        assert!(plan_alias6(a("2001:db8::9"), 129, &ifn("lo1"), &existing).is_err());
        assert_eq!(prefix_mask6(0), Ipv6Addr::UNSPECIFIED);
        assert_eq!(mask_prefix(IpAddr::V6(prefix_mask6(48))), Some(48));
    }

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
