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

/// A dedicated jail's network on FreeBSD: each own address as an alias on
/// its interface (a host route, /32 or /128, inside the interface's
/// existing prefix). A family that inherits or is disabled needs nothing
/// here: jail_set gets `ip4` / `ip6` (see `params::create_params`).
#[cfg(target_os = "freebsd")]
#[derive(Debug, Default, Clone, Copy)]
pub struct Alias;

#[cfg(target_os = "freebsd")]
impl crate::os::drivers::NetworkDriver for Alias {
    fn kind(&self) -> &'static str {
        "alias"
    }

    fn attach(&self, jail: &JailName, net: &crate::os::JailNetwork) -> Result<(), OsError> {
        if let Some(o) = net.inet.own() {
            tracing::debug!(%jail, address = %o.address, interface = %o.interface, "attach network");
            super::ifaddr::attach(o.address, o.prefix, &o.interface)?;
        }
        if let Some(o) = net.inet6.own() {
            tracing::debug!(%jail, address = %o.address, interface = %o.interface, "attach network");
            if let Err(e) = super::ifaddr::attach6(o.address, o.prefix, &o.interface) {
                // why: all or nothing, as the lifecycle's undo expects of
                // one step.
                if let Some(o4) = net.inet.own() {
                    let _ = super::ifaddr::detach(o4.address, &o4.interface);
                }
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn detach(&self, jail: &JailName, net: &crate::os::JailNetwork) -> Result<(), OsError> {
        if let Some(o) = net.inet6.own() {
            tracing::debug!(%jail, address = %o.address, interface = %o.interface, "detach network");
            super::ifaddr::detach6(o.address, &o.interface)?;
        }
        if let Some(o) = net.inet.own() {
            tracing::debug!(%jail, address = %o.address, interface = %o.interface, "detach network");
            super::ifaddr::detach(o.address, &o.interface)?;
        }
        Ok(())
    }
}
