//! The engine's view of each jail: what jnet.toml (with its profile) and the
//! inventory say together. Every command that needs "what does this jail
//! bind, expose, and with which address" builds it here, once.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::core::config::{self, Config, NetSettings};
use crate::core::names::JailName;
use crate::core::ports::Expose;
use crate::engine::sources::Profiles;
use crate::error::{Error, Result};
use crate::store::{Inventory, JailRecord, Mode};

/// One jail as config + profile + inventory describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailView {
    pub name: JailName,
    /// The inventory record, when the jail has one.
    pub record: Option<JailRecord>,
    /// Effective settings: profile extended by the jail's own entry.
    pub settings: NetSettings,
    /// Exposures from config/profile and from `jnet expose`, without
    /// duplicates (config first).
    pub exposures: Vec<Expose>,
    /// Whether the jail's IPv4 pool (or its own setting) asks for outbound
    /// nat of its IPv4 address.
    pub nat: bool,
    /// Whether its IPv6 address is nat'ed: only when its IPv6 pool says
    /// `nat = true` (never implied, never from the jail's `nat` setting,
    /// which predates IPv6 and meant IPv4).
    pub nat6: bool,
    /// `file:line` of the jail's config entry, when it has one.
    pub location: Option<String>,
}

impl JailView {
    pub fn mode(&self) -> Option<Mode> {
        self.record.as_ref().map(JailRecord::mode)
    }
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.record.as_ref().and_then(JailRecord::address)
    }
    /// Whether an exposure comes from the config (and so cannot be removed
    /// with `jnet unexpose`).
    pub fn exposure_in_config(&self, e: &Expose) -> bool {
        self.settings
            .expose
            .iter()
            .any(|x| x.proto == e.proto && x.host == e.host && x.address == e.address)
    }
}

/// Builds the view of every jail named in the config or the inventory.
pub fn views(config: &Config, inv: &Inventory, profiles: &Profiles) -> Result<BTreeMap<JailName, JailView>> {
    let mut names: Vec<&JailName> = config.jails.keys().chain(inv.jails.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| Ok((n.clone(), view(config, inv, profiles, n)?)))
        .collect()
}

/// The view of one jail (known or not: an unknown jail has no record and
/// empty settings).
pub fn view(config: &Config, inv: &Inventory, profiles: &Profiles, name: &JailName) -> Result<JailView> {
    let entry = config.jails.get(name);
    let settings = match entry {
        Some(j) => {
            let prof = match &j.profile {
                Some(p) => Some(
                    profiles
                        .get(p)?
                        .ok_or_else(|| Error::config(format!("{}: jail {name}: no profile named {p}", j.location)))?,
                ),
                None => None,
            };
            config::effective(j, prof.as_ref())
        }
        None => NetSettings::default(),
    };
    let record = inv.jails.get(name).cloned();
    let mut exposures = settings.expose.clone();
    if let Some(r) = &record {
        for e in &r.exposes {
            if !exposures.contains(e) {
                exposures.push(*e);
            }
        }
    }
    let pool_nat = record
        .as_ref()
        .and_then(JailRecord::pool)
        .and_then(|p| config.pools.get(p))
        .is_some_and(|p| p.nat);
    // why: nat translates a jail's own address; an inherit jail already
    // uses the host's.
    let nat = record.as_ref().is_some_and(|r| r.address().is_some()) && settings.nat.unwrap_or(pool_nat);
    // why only the pool: IPv6 nat is never implied, and the jail's `nat`
    // setting predates IPv6 (issue 9 B5).
    let nat6 = record
        .as_ref()
        .and_then(|r| r.inet6.lease())
        .and_then(|l| l.pool.as_ref())
        .and_then(|p| config.pools6.get(p))
        .is_some_and(|p| p.nat);
    Ok(JailView {
        name: name.clone(),
        record,
        settings,
        exposures,
        nat,
        nat6,
        location: entry.map(|j| j.location.clone()),
    })
}
