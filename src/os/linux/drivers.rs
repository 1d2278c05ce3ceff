//! Linux's drivers (see `os::drivers`): a dedicated jail's network is a
//! named netns with a veth pair on the pool's bridge ([`NetnsVeth`], the
//! work is `jail`'s); rules go to nftables ([`Nft`], table `inet <anchor
//! root>`, the work is `nft`'s).

use std::collections::BTreeMap;

use super::jail::{self, Paths};
use super::{enable_ipv4_forwarding, nft, NFT_FAMILY};
use crate::core::listeners::ForeignRedirect;
use crate::core::names::JailName;
use crate::os::drivers::{wrong_kind, FirewallDriver, NetworkDriver};
use crate::os::{JailNetwork, OsError};

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
        let JailNetwork::Dedicated {
            address,
            prefix,
            interface,
            gateway,
        } = net
        else {
            return Err(wrong_kind(self, name, net));
        };
        jail::attach(self.paths, name, *address, *prefix, interface, *gateway)?;
        if self.enable_forwarding {
            enable_ipv4_forwarding()?;
        }
        Ok(())
    }

    fn detach(&self, name: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        let JailNetwork::Dedicated { interface, .. } = net else {
            return Err(wrong_kind(self, name, net));
        };
        jail::detach(self.paths, name, interface)
    }
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
