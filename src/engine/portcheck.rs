//! The port check: gathers claims (declared ports on each jail's addresses),
//! exposures, host listeners and foreign redirections, and runs the pure
//! analysis in `core::check`.
//!
//! What a jail binds: its declared ports on every host address (inherit) or
//! on its own address (dedicated), in the stack the platform puts it in.
//! Listeners come from the host stack and from the stacks of running jails.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::core::check::{self, CheckInput, Claim, ClaimAddr, Exposure, JailNet, Platform, Report};
use crate::core::config::Config;
use crate::core::lifecycle::Phase;
use crate::core::listeners::ForeignRedirect;
use crate::core::names::{IfName, JailName};
use crate::engine::jails::JailView;
use crate::error::Result;
use crate::os::{Host, OsError};
use crate::store::Mode;

/// The check's result plus what could not be looked at.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub report: Report,
    /// Sources that could not be read (e.g. the nft ruleset without root).
    pub notes: Vec<String>,
}

/// Claims and exposures of every jail that has an inventory record.
pub fn claims(
    platform: Platform,
    config: &Config,
    views: &BTreeMap<JailName, JailView>,
) -> (Vec<Claim>, Vec<Exposure>) {
    let mut claims = vec![];
    let mut exposures = vec![];
    for (name, v) in views {
        let Some(rec) = &v.record else { continue };
        let (net, addrs) = match rec.mode() {
            Mode::Inherit => (JailNet::Inherit, ClaimAddr::Wildcard),
            Mode::Dedicated => (JailNet::Dedicated, ClaimAddr::Specific(rec.addresses().collect())),
        };
        let stack = platform.stack_of(name, net);
        for p in &v.settings.ports {
            claims.push(Claim {
                jail: name.clone(),
                stack: stack.clone(),
                proto: p.proto,
                ports: p.ports,
                addresses: addrs.clone(),
            });
        }
        if rec.mode() == Mode::Dedicated {
            for e in &v.exposures {
                exposures.push(Exposure {
                    jail: name.clone(),
                    proto: e.proto,
                    host_ports: e.host,
                    address: e.address,
                    interface: config.host.external_interface.clone(),
                });
            }
        }
    }
    (claims, exposures)
}

/// What the check reads from the host: listeners (host stack and the
/// stacks of running jails), foreign redirections and interface addresses,
/// plus notes on what could not be read. Taken once per command, and
/// outside the inventory lock: only the claims and exposures it is compared
/// against must come from the locked inventory (H5).
#[derive(Debug, Clone, Default)]
pub struct HostScan {
    listeners: Vec<crate::core::listeners::Listener>,
    redirects: Vec<ForeignRedirect>,
    interface_addrs: BTreeMap<IfName, Vec<IpAddr>>,
    notes: Vec<String>,
}

/// Runs the check for `checked` (every jail with a record when empty).
pub fn run(
    host: &dyn Host,
    config: &Config,
    views: &BTreeMap<JailName, JailView>,
    checked: &[JailName],
) -> Result<Outcome> {
    let scan = scan(host, config, views)?;
    Ok(analyze(&scan, config, views, checked))
}

/// The pure half of [`run`]: `views`' claims and exposures against `scan`.
pub fn analyze(
    scan: &HostScan,
    config: &Config,
    views: &BTreeMap<JailName, JailView>,
    checked: &[JailName],
) -> Outcome {
    let platform = Platform::current();
    let (claims, exposures) = claims(platform, config, views);
    let checked: Vec<JailName> = if checked.is_empty() {
        views
            .iter()
            .filter(|(_, v)| v.record.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        checked.to_vec()
    };
    let input = CheckInput {
        platform,
        checked,
        claims,
        listeners: scan.listeners.clone(),
        exposures,
        redirects: scan.redirects.clone(),
        interface_addrs: scan.interface_addrs.clone(),
    };
    Outcome {
        report: check::analyze(&input),
        notes: scan.notes.clone(),
    }
}

/// The host half of [`run`] (see [`HostScan`]).
pub fn scan(host: &dyn Host, config: &Config, views: &BTreeMap<JailName, JailView>) -> Result<HostScan> {
    let platform = Platform::current();
    // Jails whose own stack exists now: their listeners count too. On
    // FreeBSD every running jail is passed, to attribute its sockets: the
    // host-wide sockstat listing includes jailed processes with no jail
    // column, and only `sockstat -j` tells them apart (usr.bin/sockstat/
    // sockstat.c:1302-1347, FreeBSD main 2022-07 e7646b05); without that a
    // running jail's own listeners would be its conflicts (F13).
    let attribute_all = cfg!(target_os = "freebsd");
    let running: Vec<JailName> = views
        .iter()
        .filter(|(n, v)| {
            v.record.as_ref().is_some_and(|r| r.phase == Phase::Running)
                && (attribute_all
                    || platform.stack_of(
                        n,
                        if v.mode() == Some(Mode::Inherit) {
                            JailNet::Inherit
                        } else {
                            JailNet::Dedicated
                        },
                    ) != crate::core::listeners::Stack::Host)
        })
        .map(|(n, _)| n.clone())
        .collect();
    let listeners = host.listeners(&running)?;
    let mut notes = vec![];
    let redirects: Vec<ForeignRedirect> = match host.foreign_redirects(&config.host.anchor) {
        Ok(r) => r,
        // why: reading another firewall's rules needs root; an unprivileged
        // check still compares everything else, and says what it skipped.
        Err(e) if is_permission(&e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            notes.push(format!(
                "foreign redirections not checked: {first} (run as root to include them)"
            ));
            vec![]
        }
        // why: without pf.ko there is no /dev/pf and pfctl exits 1
        // (sbin/pfctl/pfctl.c:2881-2884); no firewall means no foreign
        // redirection either, which the report says rather than failing (F2).
        Err(OsError::Missing(what)) => {
            notes.push(format!(
                "foreign redirections not checked: {what}: not available on this host"
            ));
            vec![]
        }
        Err(e) => return Err(e.into()),
    };
    let mut interface_addrs: BTreeMap<IfName, Vec<IpAddr>> = BTreeMap::new();
    for a in host.interface_addresses()? {
        if let Ok(i) = IfName::new(&a.interface) {
            interface_addrs.entry(i).or_default().push(a.address);
        }
    }
    Ok(HostScan {
        listeners,
        redirects,
        interface_addrs,
        notes,
    })
}

fn is_permission(e: &OsError) -> bool {
    e.kind() == crate::error::ErrorKind::Permission
}
