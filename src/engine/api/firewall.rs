//! The firewall verbs of [`Engine`]: `expose`, `unexpose` and `pf
//! render|reload|flush|status`. Exposure changes are one locked
//! read-decide-write (H5): the new exposure is checked against the locked
//! inventory's claims and a running jail's rules are reloaded before the
//! inventory is written, so a failed load changes nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::Engine;
use crate::core::check::Severity;
use crate::core::lifecycle::Phase;
use crate::core::model::Mode;
use crate::core::names::JailName;
use crate::core::ports::{Expose, PortRange, Proto};
use crate::core::rules::drift;
use crate::engine::firewall::{self, Reloaded, State, Syntax};
use crate::engine::jails::{self, JailView};
use crate::engine::portcheck;
use crate::engine::snapshot::Snapshot;
use crate::error::{Error, Result};
use crate::os::Host;

/// The result of `expose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposeReport {
    pub jail: JailName,
    pub expose: Expose,
    /// The jail's addresses the exposure redirects to: the one of the
    /// bound address's family, or every one (IPv4 first) when unbound.
    pub addresses: Vec<IpAddr>,
    /// It was exposed already: nothing changed.
    pub already: bool,
}

/// The result of `unexpose`: the exposure removed, or `None` when none
/// matched (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexposeReport {
    pub jail: JailName,
    pub removed: Option<Expose>,
    /// The host side that was asked for, for the message when none matched.
    pub proto: Proto,
    pub host_ports: PortRange,
}

/// One jail's rendering for `pf render`: `None` when it needs no rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub jail: JailName,
    pub text: Option<String>,
}

/// The result of `pf reload JAIL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    pub jail: JailName,
    /// `anchor_root/jail`.
    pub anchor: String,
    /// Rules loaded; 0 means the anchor was flushed.
    pub rules: usize,
}

/// The result of `pf reload --all`: each jail of the inventory with its
/// result, in name order.
pub struct ReloadAllReport {
    pub anchor_root: String,
    pub jails: Vec<(JailName, Result<Reloaded>)>,
}

/// One jail's anchor in `pf status`.
#[derive(Debug, Serialize)]
pub struct AnchorStatus {
    pub jail: String,
    pub anchor: String,
    pub phase: Phase,
    #[serde(flatten)]
    pub state: State,
}

/// `jnet pf status` (schemas/pf-status.schema.json).
#[derive(Debug, Serialize)]
pub struct FirewallStatus {
    pub hooks_missing: Vec<String>,
    pub anchors: Vec<AnchorStatus>,
}

impl Engine {
    /// Renders `v`'s rules in the native syntax and loads them, or flushes
    /// the jail's rules when it needs none.
    fn apply_rules(&self, host: &dyn Host, v: &JailView) -> Result<usize> {
        let tmpl = firewall::pf_template(&self.config_dir())?;
        firewall::load(host, &self.config, &tmpl, v)
    }

    fn dedicated_view(&self, jail: &JailName) -> Result<JailView> {
        let inv = self.store.read()?;
        let v = jails::view(&self.config, &inv, &self.profiles, jail)?;
        match v.mode() {
            Some(Mode::Dedicated) => Ok(v),
            Some(Mode::Inherit) => Err(Error::data(format!(
                "jail {jail} shares the host's addresses (inherit): its ports are reachable on the host's addresses \
                 already; exposures need a dedicated address"
            ))),
            None => Err(Error::data(format!(
                "jail {jail} has no address in the inventory; assign one first (jnet assign {jail} --pool P | ADDRESS)"
            ))),
        }
    }

    /// The jail addresses exposure `e` redirects to: a bound exposure only
    /// to the jail's address of the bound address's family (refused, naming
    /// jail and exposure, when it has none: no rule could carry it), an
    /// unbound one to each of the jail's addresses.
    fn family_target(jail: &JailName, e: &Expose, v: &JailView) -> Result<Vec<IpAddr>> {
        let all: Vec<IpAddr> = v.record.iter().flat_map(|r| r.addresses()).collect();
        let Some(bound) = e.address else { return Ok(all) };
        let same: Vec<IpAddr> = all.into_iter().filter(|a| a.is_ipv4() == bound.is_ipv4()).collect();
        if same.is_empty() {
            let family = if bound.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(Error::data(format!(
                "jail {jail} has no {family} address, so exposure {e} cannot be redirected; \
                 give it one first (jnet assign {jail} --pool POOL | ADDRESS, of that family)"
            )));
        }
        Ok(same)
    }

    /// `jnet expose JAIL SPEC [--address A]`: adds an exposure after the
    /// port check found its host port free; reloads a running jail's rules.
    pub fn expose(&self, jail: &JailName, e: Expose) -> Result<ExposeReport> {
        if let Some(why) = e.address.and_then(crate::core::ports::external_address_error) {
            return Err(Error::data(format!("--address: {why}")));
        }
        Self::family_target(jail, &e, &self.dedicated_view(jail)?)?;
        // why the jail lock: a running jail's rules are reloaded below, and
        // a start or stop of the same jail must not interleave with that.
        let _jail_lock = self.store.lock_jail(jail)?;
        let host = self.host()?;
        let scan = portcheck::scan(
            host.as_ref(),
            &self.config,
            &jails::views(&self.config, &self.store.read()?, &self.profiles)?,
        )?;
        // why everything below runs inside the update: the claims and
        // exposures the new one is checked against, and the record it is
        // added to, must be the locked inventory's, or two concurrent
        // exposes of one host port both pass, and a concurrent release
        // turns into a crash (H5).
        let address = self.store.update(|inv| {
            let mut views = jails::views(&self.config, inv, &self.profiles)?;
            let v = views
                .get_mut(jail)
                .filter(|v| v.mode() == Some(Mode::Dedicated))
                .ok_or_else(|| Error::data(format!("jail {jail} lost its dedicated address meanwhile")))?;
            if v.exposures.contains(&e) {
                return Ok(None);
            }
            if let Some(other) = v.exposures.iter().find(|x| x.host_overlaps(&e)) {
                return Err(Error::data(format!("{jail}: {e} overlaps its exposure {other}")));
            }
            let address = Self::family_target(jail, &e, v)?;
            // The port check with and without the new exposure: conflicts
            // that only appear with it mean its host port is taken.
            let before = portcheck::analyze(&scan, &self.config, &views, std::slice::from_ref(jail));
            if let Some(v) = views.get_mut(jail) {
                v.exposures.push(e);
            }
            let after = portcheck::analyze(&scan, &self.config, &views, std::slice::from_ref(jail));
            let new: Vec<&str> = after
                .report
                .conflicts
                .iter()
                .filter(|c| c.severity == Severity::Error && !before.report.conflicts.contains(c))
                .map(|c| c.message.as_str())
                .collect();
            if !new.is_empty() {
                return Err(Error::data(format!("{jail}: cannot expose {e}: {}", new.join("; "))));
            }
            let rec = inv
                .jails
                .get_mut(jail)
                .ok_or_else(|| Error::data(format!("jail {jail} lost its dedicated address meanwhile")))?;
            rec.exposes.push(e);
            // why: with the lock held, a running jail's rules are reloaded
            // before the inventory is written, so a failed load changes
            // nothing.
            if rec.phase == Phase::Running {
                let v = jails::view(&self.config, inv, &self.profiles, jail)?;
                self.apply_rules(host.as_ref(), &v)?;
            }
            Ok(Some(address))
        })?;
        Ok(ExposeReport {
            jail: jail.clone(),
            expose: e,
            already: address.is_none(),
            addresses: address.unwrap_or_default(),
        })
    }

    /// `jnet unexpose JAIL proto/port`: removes the exposure added with
    /// `expose` whose host side is `proto/host_ports`; one declared in
    /// jnet.toml is refused (it would come back). With `address`, only the
    /// exposure bound to it; without, the one exposure of that host side,
    /// refused when several bound to different addresses share it (which
    /// one is meant is not guessed).
    pub fn unexpose(
        &self,
        jail: &JailName,
        proto: Proto,
        host_ports: PortRange,
        address: Option<IpAddr>,
    ) -> Result<UnexposeReport> {
        let v = self.dedicated_view(jail)?;
        let matches =
            |x: &Expose| x.proto == proto && x.host == host_ports && address.is_none_or(|a| x.address == Some(a));
        let mut report = UnexposeReport {
            jail: jail.clone(),
            removed: None,
            proto,
            host_ports,
        };
        let found: Vec<Expose> = v.exposures.iter().copied().filter(|x| matches(x)).collect();
        let found = match found[..] {
            [] => return Ok(report),
            [one] => one,
            _ => {
                let all: Vec<String> = found.iter().map(ToString::to_string).collect();
                return Err(Error::data(format!(
                    "{jail}: {proto}/{host_ports} is exposed on several addresses ({}); name one, e.g. jnet unexpose {jail} {}",
                    all.join(", "),
                    all[0]
                )));
            }
        };
        if v.exposure_in_config(&found) {
            return Err(Error::data(format!(
                "{jail}: {found} is declared in {} (jails.{jail}.expose or its profile); remove it there",
                v.location.as_deref().unwrap_or(&self.config.file)
            )));
        }
        let _jail_lock = self.store.lock_jail(jail)?;
        let host = self.host()?;
        self.store.update(|inv| {
            let rec = inv
                .jails
                .get_mut(jail)
                .ok_or_else(|| Error::data(format!("jail {jail} vanished meanwhile")))?;
            rec.exposes
                .retain(|x| !(x.proto == found.proto && x.host == found.host && x.address == found.address));
            if rec.phase == Phase::Running {
                let v = jails::view(&self.config, inv, &self.profiles, jail)?;
                self.apply_rules(host.as_ref(), &v)?;
            }
            Ok(())
        })?;
        report.removed = Some(found);
        Ok(report)
    }

    /// `jnet pf render [JAIL]`: the rules each jail (or `jail`) needs, in
    /// `syntax`; nothing is loaded.
    pub fn pf_render(&self, jail: Option<&JailName>, syntax: Syntax) -> Result<Vec<Rendered>> {
        let inv = self.store.read()?;
        let views = match jail {
            Some(j) => {
                if !inv.jails.contains_key(j) && !self.config.jails.contains_key(j) {
                    return Err(Error::data(format!(
                        "jail {j} is neither in the inventory nor in {}",
                        self.config.file
                    )));
                }
                vec![jails::view(&self.config, &inv, &self.profiles, j)?]
            }
            None => jails::views(&self.config, &inv, &self.profiles)?
                .into_values()
                .collect(),
        };
        let tmpl = firewall::pf_template(&self.config_dir())?;
        let mut out = Vec::with_capacity(views.len());
        for v in &views {
            let text = match firewall::jail_rules(&self.config, v)? {
                Some(rules) => Some(firewall::render(syntax, &rules, &self.config.host.anchor, &tmpl)?),
                None => None,
            };
            out.push(Rendered {
                jail: v.name.clone(),
                text,
            });
        }
        Ok(out)
    }

    /// `jnet pf reload JAIL`: loads the jail's rules (or flushes its
    /// anchor when it needs none).
    pub fn pf_reload(&self, jail: &JailName) -> Result<ReloadReport> {
        self.require_root("jnet pf reload")?;
        let inv = self.store.read()?;
        let v = jails::view(&self.config, &inv, &self.profiles, jail)?;
        let host = self.host()?;
        let rules = self.apply_rules(host.as_ref(), &v)?;
        Ok(ReloadReport {
            jail: jail.clone(),
            anchor: format!("{}/{jail}", self.config.host.anchor),
            rules,
        })
    }

    /// `jnet pf reload --all` (see `engine::firewall::reload_all`): every
    /// jail's result; one jail's failure does not stop the others.
    pub fn pf_reload_all(&self) -> Result<ReloadAllReport> {
        self.require_root("jnet pf reload")?;
        let inv = self.store.read()?;
        let views = jails::views(&self.config, &inv, &self.profiles)?;
        let tmpl = firewall::pf_template(&self.config_dir())?;
        let host = self.host()?;
        let jails = firewall::reload_all(host.as_ref(), &self.config, &tmpl, &views)?;
        Ok(ReloadAllReport {
            anchor_root: self.config.host.anchor.clone(),
            jails,
        })
    }

    /// `jnet pf flush JAIL`: removes the jail's rules; returns the anchor.
    pub fn pf_flush(&self, jail: &JailName) -> Result<String> {
        self.require_root("jnet pf flush")?;
        self.host()?.flush_rules(&self.config.host.anchor, jail)?;
        Ok(format!("{}/{jail}", self.config.host.anchor))
    }

    /// `jnet pf status`: each jail's anchor compared with what it should
    /// hold, and the pf.conf hooks jnet's anchors need.
    pub fn pf_status(&self) -> Result<FirewallStatus> {
        let inv = self.store.read()?;
        let views = jails::views(&self.config, &inv, &self.profiles)?;
        let real = self.host()?;
        // why a snapshot: one listing of the ruleset for every jail, not
        // one per jail (issue 10).
        let host = Snapshot::new(real.as_ref());
        let anchor = &self.config.host.anchor;
        let syn = Syntax::native();
        let tmpl = firewall::pf_template(&self.config_dir())?;
        let mut out = FirewallStatus {
            hooks_missing: host.missing_firewall_hooks(anchor)?,
            anchors: vec![],
        };
        let views: &BTreeMap<JailName, JailView> = &views;
        for (name, v) in views {
            let Some(rec) = &v.record else { continue };
            // Rules belong in the firewall only while the jail runs.
            let want = match rec.phase {
                Phase::Running => firewall::jail_rules(&self.config, v)?,
                _ => None,
            };
            let rendered = want.map(|r| firewall::render(syn, &r, anchor, &tmpl)).transpose()?;
            let loaded = host.loaded_rules(anchor, name)?;
            let state = drift::compare(syn, rendered.as_deref(), loaded.as_deref());
            out.anchors.push(AnchorStatus {
                jail: name.to_string(),
                anchor: format!("{anchor}/{name}"),
                phase: rec.phase,
                state,
            });
        }
        Ok(out)
    }
}
