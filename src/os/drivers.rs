//! The driver seams of a host (issue 9 A5). A jail's network is set up by
//! one [`NetworkDriver`] per kind of network (inherit, FreeBSD alias, Linux
//! netns+veth), which the host picks per jail from its [`JailNetwork`]; the
//! jail's rules are loaded by the platform's one [`FirewallDriver`] (pf,
//! nft). `LinuxHost` and `FreeBsdHost` implement [`super::Host`] by
//! delegating to them, so a new kind of network (FreeBSD VNET) is one more
//! driver and one more `JailNetwork` variant, and nothing in the engine
//! changes. Drivers act only on what jnet owns: the jail's alias or
//! namespace, and the jail's own anchor or chains.

use std::collections::BTreeMap;

use super::{JailNetwork, OsError};
use crate::core::listeners::ForeignRedirect;
use crate::core::names::JailName;

/// Sets up and tears down one kind of jail network.
pub trait NetworkDriver {
    /// The kind, for logs and messages: `inherit`, `alias`, `netns`.
    fn kind(&self) -> &'static str;
    /// Gives `jail` its network; `net` is of this driver's kind.
    fn attach(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError>;
    /// Undoes [`NetworkDriver::attach`]; absent pieces are not an error.
    fn detach(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError>;
}

/// Loads, lists and removes one jail's rules in the platform's firewall,
/// under jnet's own anchor root (pf anchor `root/jail`, nft chains of
/// table `inet root`).
pub trait FirewallDriver {
    /// `pf` or `nft`.
    fn name(&self) -> &'static str;
    /// Replaces the jail's rules with `rules` (rendered for this
    /// firewall) atomically, after validating them.
    fn load(&self, anchor_root: &str, jail: &JailName, rules: &str) -> Result<(), OsError>;
    /// Removes the jail's rules; none loaded is fine.
    fn flush(&self, anchor_root: &str, jail: &JailName) -> Result<(), OsError>;
    /// The jail's loaded rules as the firewall lists them.
    fn loaded(&self, anchor_root: &str, jail: &JailName) -> Result<Option<String>, OsError>;
    /// Every jail's loaded rules from one listing; `None` when this
    /// firewall cannot list them at once.
    fn all_loaded(&self, _anchor_root: &str) -> Result<Option<BTreeMap<String, String>>, OsError> {
        Ok(None)
    }
    /// Lines the main firewall configuration lacks for jnet's rules to be
    /// evaluated (pf.conf anchor hooks).
    fn missing_hooks(&self, _anchor_root: &str) -> Result<Vec<String>, OsError> {
        Ok(vec![])
    }
    /// Port redirections jnet does not own (other anchors or tables).
    fn foreign_redirects(&self, anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError>;
}

/// The network of a jail that shares the host's addresses (`ip4 =
/// inherit`): nothing to set up or tear down.
#[derive(Debug, Default, Clone, Copy)]
pub struct Inherit;

impl NetworkDriver for Inherit {
    fn kind(&self) -> &'static str {
        "inherit"
    }
    fn attach(&self, _jail: &JailName, _net: &JailNetwork) -> Result<(), OsError> {
        Ok(())
    }
    fn detach(&self, _jail: &JailName, _net: &JailNetwork) -> Result<(), OsError> {
        Ok(())
    }
}

/// A driver given a network of another kind: a host's choice and its
/// drivers disagree, which is a bug, reported instead of acted on.
pub fn wrong_kind(driver: &dyn NetworkDriver, jail: &JailName, net: &JailNetwork) -> OsError {
    OsError::Unsupported(format!(
        "jail {jail}: the {} network driver cannot set up ip4 = {}, ip6 = {}",
        driver.kind(),
        net.inet.mode(),
        net.inet6.mode()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherit_changes_nothing_and_names_itself() {
        let j = JailName::new("www").unwrap();
        assert_eq!(Inherit.kind(), "inherit");
        assert!(Inherit.attach(&j, &JailNetwork::INHERIT).is_ok());
        assert!(Inherit.detach(&j, &JailNetwork::INHERIT).is_ok());
        let dedicated = JailNetwork::inet_only(crate::os::OwnAddress {
            address: "10.0.0.5".parse().unwrap(),
            prefix: 24,
            interface: crate::core::names::IfName::new("em0").unwrap(),
            gateway: None,
        });
        assert_eq!(
            wrong_kind(&Inherit, &j, &dedicated).to_string(),
            "jail www: the inherit network driver cannot set up ip4 = new, ip6 = disable"
        );
    }
}
