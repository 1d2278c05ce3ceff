//! Address allocation from pools: the lowest free address of a pool, and
//! the reasons a requested address cannot be handed out.
//!
//! The pool's assignable set and the set of taken addresses are both
//! [`RangeSet`]s, so finding the lowest free address costs O(k log n) for k
//! assignable ranges (a config-sized number) and n taken ranges; nothing
//! walks the pool or the inventory address by address. Gathering what is
//! taken (inventory, jail.conf, host interfaces) is the engine's job.

use crate::core::config::{PoolFamily, PoolOf};
use crate::core::model::AddressFamily;
use crate::core::range::RangeSet;

/// Why an address cannot be assigned from a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    OutsidePool,
    /// IPv4's network address, IPv6's subnet-router anycast address.
    NetworkAddress,
    /// IPv4 only (IPv6 has no broadcast).
    Broadcast,
    Gateway,
    Excluded,
    OutsideRanges,
    Taken,
}

impl Refusal {
    pub fn describe<T: PoolFamily>(&self, a: T::Addr, pool: &PoolOf<T>) -> String {
        let p = &pool.name;
        match self {
            Refusal::OutsidePool => format!("{a} is not inside pool {p} ({})", pool.network),
            Refusal::NetworkAddress if T::AF == AddressFamily::Inet6 => format!(
                "{a} is the subnet-router anycast address (the network address) of pool {p} ({})",
                pool.network
            ),
            Refusal::NetworkAddress => {
                format!("{a} is the network address of pool {p} ({})", pool.network)
            }
            Refusal::Broadcast => format!("{a} is the broadcast address of pool {p} ({})", pool.network),
            Refusal::Gateway => format!("{a} is the gateway of pool {p}"),
            Refusal::Excluded => format!("{a} is excluded from pool {p}"),
            Refusal::OutsideRanges => format!("{a} is outside the ranges of pool {p}"),
            Refusal::Taken => format!("{a} is already in use"),
        }
    }
}

/// Whether `a` may be handed out from `pool` given the `taken` set.
pub fn check<T: PoolFamily>(pool: &PoolOf<T>, taken: &RangeSet<T>, a: T::Addr) -> Result<(), Refusal> {
    if !pool.contains(a) {
        return Err(Refusal::OutsidePool);
    }
    let x: T = a.into();
    if !pool.assignable.contains(x) {
        let hosts = pool.host_range();
        return Err(if x < hosts.start {
            Refusal::NetworkAddress
        } else if x > hosts.end {
            Refusal::Broadcast
        } else if pool.gateway.map(Into::into) == Some(x) {
            Refusal::Gateway
        } else if pool.exclude.iter().any(|r| r.contains(x)) {
            Refusal::Excluded
        } else {
            Refusal::OutsideRanges
        });
    }
    if taken.contains(x) {
        return Err(Refusal::Taken);
    }
    Ok(())
}

/// The lowest assignable address of `pool` not in `taken`, deterministic.
pub fn lowest_free<T: PoolFamily>(pool: &PoolOf<T>, taken: &RangeSet<T>) -> Option<T::Addr> {
    pool.assignable.lowest_not_in(taken).map(T::Addr::from)
}

/// Usage figures of one pool: assignable size and how many of those are
/// taken (exact: an IPv6 /64 holds 2^64 - 1 host addresses). O(k log n).
pub fn usage<T: PoolFamily>(pool: &PoolOf<T>, taken: &RangeSet<T>) -> (u128, u128) {
    let size = pool.assignable.size();
    let used = pool.assignable.iter_ranges().map(|r| taken.size_in(r)).sum();
    (size, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::{parse_config, Pool};
    use crate::core::range::Ipv4Range;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn pool(extra: &str) -> Pool {
        let text = format!("[host]\nexternal_interface=\"em0\"\n[pools.p]\ninterface=\"em0\"\n{extra}");
        let c = parse_config("t", &text).unwrap();
        c.pools.into_values().next().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn refusals() {
        let p = pool("network=\"10.0.0.0/24\"\nranges=[\"10.0.0.0-10.0.0.200\"]\nexclude=[\"10.0.0.50\"]\ngateway=\"10.0.0.1\"\n");
        let mut taken = RangeSet::new();
        taken.insert_addr(ip("10.0.0.7"));
        let cases = [
            ("10.0.1.1", Err(Refusal::OutsidePool)),
            ("10.0.0.0", Err(Refusal::NetworkAddress)),
            ("10.0.0.255", Err(Refusal::Broadcast)),
            ("10.0.0.1", Err(Refusal::Gateway)),
            ("10.0.0.50", Err(Refusal::Excluded)),
            ("10.0.0.201", Err(Refusal::OutsideRanges)),
            ("10.0.0.7", Err(Refusal::Taken)),
            ("10.0.0.8", Ok(())),
        ];
        for (a, want) in cases {
            assert_eq!(check(&p, &taken, ip(a)), want, "{a}");
        }
        assert_eq!(lowest_free(&p, &taken), Some(ip("10.0.0.2")));
    }

    #[test]
    fn lowest_skips_everything_reserved() {
        let p = pool("network=\"10.0.0.0/29\"\nexclude=[\"10.0.0.2\"]\ngateway=\"10.0.0.1\"\n");
        let mut taken = RangeSet::new();
        let mut got = vec![];
        while let Some(a) = lowest_free(&p, &taken) {
            got.push(a.to_string());
            taken.insert_addr(a);
        }
        assert_eq!(got, ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
        assert_eq!(usage(&p, &taken), (4, 4));
    }

    #[test]
    fn slash8_pool_is_fast_and_exact() {
        let p = pool("network=\"10.0.0.0/8\"\n");
        let mut taken = RangeSet::new();
        // One million taken addresses in one merged range, plus a hole.
        taken.insert(Ipv4Range::new(u32::from(ip("10.0.0.1")), u32::from(ip("10.15.66.64"))).unwrap());
        taken.remove_addr(ip("10.0.0.9"));
        assert_eq!(lowest_free(&p, &taken), Some(ip("10.0.0.9")));
        taken.insert_addr(ip("10.0.0.9"));
        assert_eq!(lowest_free(&p, &taken), Some(ip("10.15.66.65")));
        assert_eq!(usage(&p, &taken).0, (1 << 24) - 2);
    }

    /// The same allocator over u128: an IPv6 /48 refuses the subnet-router
    /// anycast, the gateway and exclusions, has no broadcast (its top address
    /// is a host's), and hands out lowest first past a taken run.
    #[test]
    fn ipv6_slash48_refusals_and_lowest_free() {
        let text = "[host]\nexternal_interface=\"em0\"\n[pools.p]\ninterface=\"em0\"\n\
                    network=\"fd00:9::/48\"\ngateway=\"fd00:9::1\"\nexclude=[\"fd00:9::2-fd00:9::ff\"]\n";
        let p = parse_config("t", text).unwrap().pools6.into_values().next().unwrap();
        let x = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap();
        let mut taken = RangeSet::<u128>::empty();
        taken.insert_addr(x("fd00:9::100"));
        taken.insert_addr(x("fd00:9::101"));
        let cases = [
            ("fd00:a::1", Err(Refusal::OutsidePool)),
            ("fd00:9::", Err(Refusal::NetworkAddress)),
            ("fd00:9::1", Err(Refusal::Gateway)),
            ("fd00:9::80", Err(Refusal::Excluded)),
            ("fd00:9::100", Err(Refusal::Taken)),
            ("fd00:9:0:ffff:ffff:ffff:ffff:ffff", Ok(())),
        ];
        for (a, want) in cases {
            assert_eq!(check(&p, &taken, x(a)), want, "{a}");
        }
        assert!(Refusal::NetworkAddress
            .describe(x("fd00:9::"), &p)
            .contains("subnet-router anycast"));
        assert_eq!(lowest_free(&p, &taken), Some(x("fd00:9::102")));
        // 2^80 addresses less the anycast, the gateway and 254 exclusions.
        let size = (1u128 << 80) - 1 - 1 - 254;
        assert_eq!(usage(&p, &taken), (size, 2));
    }

    proptest! {
        // Allocation equals a linear scan of the pool, and never returns an
        // address that check() would refuse.
        #[test]
        fn matches_linear_scan(
            excl in proptest::collection::vec((0u32..64, 0u32..4), 0..5),
            taken_list in proptest::collection::vec(0u32..64, 0..64),
            gw in proptest::option::of(1u32..63),
        ) {
            let base = u32::from(ip("192.168.5.0"));
            let excl_s: Vec<String> = excl.iter().map(|(a, l)| {
                format!("\"{}-{}\"", Ipv4Addr::from(base + a), Ipv4Addr::from(base + (a + l).min(63)))
            }).collect();
            let gw_s = gw.map(|g| format!("gateway=\"{}\"\n", Ipv4Addr::from(base + g))).unwrap_or_default();
            let p = pool(&format!("network=\"192.168.5.0/26\"\nexclude=[{}]\n{gw_s}", excl_s.join(",")));
            let mut taken = RangeSet::new();
            for t in &taken_list { taken.insert_addr(Ipv4Addr::from(base + t)); }
            let want = (0..64).map(|i| Ipv4Addr::from(base + i)).find(|a| check(&p, &taken, *a).is_ok());
            let got = lowest_free(&p, &taken);
            prop_assert_eq!(got, want);
            if let Some(a) = got { prop_assert!(check(&p, &taken, a).is_ok()); }
        }
    }
}
