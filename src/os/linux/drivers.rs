//! Linux's drivers (see `os::drivers`): a dedicated jail's network is a
//! named netns with a veth pair on the pool's bridge ([`NetnsVeth`], the
//! work is `jail`'s); rules go to nftables ([`Nft`], table `inet <anchor
//! root>`, the work is `nft`'s).

use std::collections::BTreeMap;

use std::net::IpAddr;

use super::jail::{self, JailAddress, Paths};
use super::{enable_ipv4_forwarding, nft, sysctl, NFT_FAMILY};
use crate::core::listeners::ForeignRedirect;
use crate::core::names::{IfName, JailName};
use crate::os::drivers::{wrong_kind, FirewallDriver, Inherit, NetworkDriver};
use crate::os::{FamilyNetwork, JailNetwork, OsError};

/// A dedicated jail's network on Linux: namespace `jnet-<jail>`, veth
/// pair, bridge (made when missing), address and default route.
#[derive(Debug, Clone, Copy)]
pub struct NetnsVeth<'a> {
    pub paths: &'a Paths,
    /// Set net.ipv4.ip_forward=1 in jnet's namespace on attach.
    pub enable_forwarding: bool,
}

impl NetworkDriver for NetnsVeth<'_> {
    fn kind(&self) -> &'static str {
        "netns"
    }

    fn attach(&self, name: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        let (bridge, addresses) = plan(name, net)?;
        jail::attach(self.paths, name, &addresses, bridge)?;
        if self.enable_forwarding {
            if net.inet.own().is_some() {
                enable_ipv4_forwarding()?;
            }
            if net.inet6.own().is_some() {
                // why: a dedicated IPv6 jail is reached through the host's
                // namespace, which routes between the bridge and the
                // external interface only with forwarding on.
                sysctl::set_ipv6_forwarding(true)?;
            }
        }
        Ok(())
    }

    fn detach(&self, name: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        let (bridge, _) = plan(name, net)?;
        jail::detach(self.paths, name, bridge)
    }
}

/// The bridge and the addresses of a netns jail. A namespace holds all of
/// a jail's stack, so a family cannot share the host's while the other
/// has its own address, and the jail's one veth pair means both families'
/// pools must use one bridge.
fn plan<'n>(name: &JailName, net: &'n JailNetwork) -> Result<(&'n IfName, Vec<JailAddress>), OsError> {
    let inherits = matches!(net.inet, FamilyNetwork::Inherit) || matches!(net.inet6, FamilyNetwork::Inherit);
    if inherits || !net.has_own() {
        return Err(OsError::Unsupported(format!(
            "jail {name}: a Linux jail shares the host's network in both families or has its own              (ip4 = {}, ip6 = {} cannot be combined)",
            net.inet.mode(),
            net.inet6.mode()
        )));
    }
    let mut bridge: Option<&IfName> = None;
    let mut addresses = Vec::with_capacity(2);
    let own4 = net
        .inet
        .own()
        .map(|o| (IpAddr::V4(o.address), o.prefix, &o.interface, o.gateway.map(IpAddr::V4)));
    let own6 = net
        .inet6
        .own()
        .map(|o| (IpAddr::V6(o.address), o.prefix, &o.interface, o.gateway.map(IpAddr::V6)));
    for (address, prefix, interface, gateway) in own4.into_iter().chain(own6) {
        match bridge {
            Some(b) if b != interface => {
                return Err(OsError::Unsupported(format!(
                    "jail {name}: its IPv4 and IPv6 addresses are on bridges {b} and {interface};                      a Linux jail has one veth pair, so both pools need the same bridge"
                )))
            }
            _ => bridge = Some(interface),
        }
        addresses.push(JailAddress {
            address,
            prefix,
            gateway,
        });
    }
    let bridge = bridge.ok_or_else(|| wrong_kind(&Inherit, name, net))?;
    Ok((bridge, addresses))
}

/// nftables: every jail's chains in one table `inet <anchor root>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Nft;

impl FirewallDriver for Nft {
    fn name(&self) -> &'static str {
        "nft"
    }

    fn load(&self, anchor_root: &str, jail: &JailName, rules: &str) -> Result<(), OsError> {
        // why: prepending the removal of the jail's current chains makes the
        // load a replacement in one transaction (delete and re-add of a
        // chain in one `nft -f` is accepted); the rendered script must add
        // only, never delete.
        let mut script = String::new();
        if let Some(listing) = nft::table_json(NFT_FAMILY, anchor_root)? {
            script.push_str(&nft::flush_script(NFT_FAMILY, anchor_root, jail.as_str(), &listing));
        }
        script.push_str(rules);
        nft::load(&script)
    }

    fn flush(&self, anchor_root: &str, jail: &JailName) -> Result<(), OsError> {
        nft::flush_jail(NFT_FAMILY, anchor_root, jail.as_str()).map(|_| ())
    }

    fn loaded(&self, anchor_root: &str, jail: &JailName) -> Result<Option<String>, OsError> {
        nft::jail_rules(NFT_FAMILY, anchor_root, jail.as_str())
    }

    fn all_loaded(&self, anchor_root: &str) -> Result<Option<BTreeMap<String, String>>, OsError> {
        nft::all_jail_rules(NFT_FAMILY, anchor_root).map(Some)
    }

    fn foreign_redirects(&self, anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError> {
        match nft::foreign_redirects(anchor_root) {
            // No nft binary: there is no nftables ruleset jnet could read.
            Err(OsError::Missing(p)) => {
                tracing::debug!(program = p, "nft not installed: no foreign redirects");
                Ok(Vec::new())
            }
            r => r,
        }
    }
}
