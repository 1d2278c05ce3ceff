//! FreeBSD adapters: jail(2), interface alias ioctls, pf via pfctl(8).
