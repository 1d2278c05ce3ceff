//! Linux adapters: netns jails, rtnetlink addresses, nftables.
