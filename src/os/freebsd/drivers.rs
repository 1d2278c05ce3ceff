//! FreeBSD's drivers (see `os::drivers`): a dedicated jail's network is an
//! alias on the pool's interface ([`Alias`], the ioctls are `ifaddr`'s);
//! rules go to pf anchors through pfctl ([`Pf`], the work is `pf`'s). `Pf`
//! only runs commands and compiles everywhere; `Alias` calls FreeBSD's
//! ioctls and is compiled on FreeBSD only. A VNET jail would be a third
//! network driver (an epair into the jail's vnet), not handled yet.

use super::{listeners, pf};
use crate::core::listeners::ForeignRedirect;
use crate::core::names::JailName;
use crate::os::drivers::FirewallDriver;
use crate::os::OsError;

/// pf: each jail's rules in anchor `<anchor root>/<jail>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pf;

impl FirewallDriver for Pf {
    fn name(&self) -> &'static str {
        "pf"
    }

    fn load(&self, anchor_root: &str, jail: &JailName, rules: &str) -> Result<(), OsError> {
        pf::load(anchor_root, jail, rules)
    }

    fn flush(&self, anchor_root: &str, jail: &JailName) -> Result<(), OsError> {
        pf::flush(anchor_root, jail)
    }

    fn loaded(&self, anchor_root: &str, jail: &JailName) -> Result<Option<String>, OsError> {
        pf::loaded(anchor_root, jail)
    }

    fn missing_hooks(&self, anchor_root: &str) -> Result<Vec<String>, OsError> {
        pf::missing_hooks(anchor_root)
    }

    fn foreign_redirects(&self, anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError> {
        listeners::foreign_redirects(anchor_root)
    }
}

/// A dedicated jail's network on FreeBSD: the jail's address as an alias
/// (a host route, /32, inside the interface's existing prefix) on its
/// interface.
#[cfg(target_os = "freebsd")]
#[derive(Debug, Default, Clone, Copy)]
pub struct Alias;

#[cfg(target_os = "freebsd")]
impl crate::os::drivers::NetworkDriver for Alias {
    fn kind(&self) -> &'static str {
        "alias"
    }

    fn attach(&self, jail: &JailName, net: &crate::os::JailNetwork) -> Result<(), OsError> {
        let crate::os::JailNetwork::Dedicated {
            address,
            prefix,
            interface,
            ..
        } = net
        else {
            return Err(crate::os::drivers::wrong_kind(self, jail, net));
        };
        tracing::debug!(%jail, %address, %interface, "attach network");
        Ok(super::ifaddr::attach(*address, *prefix, interface)?)
    }

    fn detach(&self, jail: &JailName, net: &crate::os::JailNetwork) -> Result<(), OsError> {
        let crate::os::JailNetwork::Dedicated { address, interface, .. } = net else {
            return Err(crate::os::drivers::wrong_kind(self, jail, net));
        };
        tracing::debug!(%jail, %address, %interface, "detach network");
        Ok(super::ifaddr::detach(*address, interface)?)
    }
}
