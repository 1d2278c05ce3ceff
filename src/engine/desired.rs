//! Builds a jail's desired state ([`Desired`]) from the config (jail entry
//! merged with its profile), the inventory record (mode, address, pool,
//! interface, exposures), the pool (prefix, interface, gateway, nat) and
//! the jail's jail.conf(5) block (path, host.hostname, exec.*, allow.*).
//!
//! It also owns the two seams the lifecycle needs from other parts of jnet:
//! [`render_rules`] (firewall text for this platform) and [`port_checker`]
//! (the pre-start port-conflict analysis). It reads nothing from disk
//! itself: the caller hands in what it loaded ([`Context`]).

use std::path::{Path, PathBuf};

use crate::core::check::Severity;
use crate::core::config::Config;
use crate::core::model::{FamilyLease, FamilyNetwork, Lease, OwnAddress};
use crate::core::names::{IfName, JailName, PoolName};
use crate::core::plan::Desired;
use crate::engine::firewall::{self, Syntax};
use crate::engine::jails::{self, JailView};
use crate::engine::jails_conf::ConfJail;
use crate::engine::lifecycle::{LifecycleError, PortChecker};
use crate::engine::portcheck;
use crate::engine::sources::{self, Profiles};
use crate::error::{Error, Result};
use crate::os::{Host, JailNetwork, JailSpec};
use crate::store::{Backend, Inventory, JailRecord};

/// Everything desired state is built from, already loaded.
pub struct Context<'a> {
    pub config: &'a Config,
    pub config_path: &'a Path,
    pub profiles: &'a Profiles,
    pub inventory: &'a Inventory,
    pub conf_jails: &'a [ConfJail],
}

impl Context<'_> {
    fn record(&self, jail: &JailName) -> Result<&JailRecord> {
        self.inventory
            .jails
            .get(jail)
            .ok_or_else(|| LifecycleError::NotInInventory(jail.clone()).into())
    }

    /// The jail as config, profile and inventory describe it together.
    pub fn view(&self, jail: &JailName) -> Result<JailView> {
        jails::view(self.config, self.inventory, self.profiles, jail)
    }

    pub fn conf_jail(&self, jail: &JailName) -> Option<&ConfJail> {
        self.conf_jails.iter().find(|c| c.name == jail.as_str())
    }
}

/// The network side of a jail from its inventory record and pools: per
/// family the host's addresses, none, or its own address with the pool's
/// prefix, interface and gateway.
pub fn network(config: &Config, jail: &JailName, rec: &JailRecord) -> Result<JailNetwork> {
    let inet = match &rec.inet {
        FamilyLease::Inherit => FamilyNetwork::Inherit,
        FamilyLease::Disable => FamilyNetwork::Disable,
        FamilyLease::Dedicated(l) => {
            let pool = lease_pool(
                config,
                jail,
                l.pool.as_ref(),
                || config.pool_of(l.address),
                |c| &c.pools,
            )?;
            FamilyNetwork::Own(own(
                jail,
                l,
                pool.map(|p| (p.network.prefix(), p.interface.clone(), p.gateway)),
                32,
            )?)
        }
    };
    let inet6 = match &rec.inet6 {
        FamilyLease::Inherit => FamilyNetwork::Inherit,
        FamilyLease::Disable => FamilyNetwork::Disable,
        FamilyLease::Dedicated(l) => {
            let pool = lease_pool(
                config,
                jail,
                l.pool.as_ref(),
                || config.pool6_of(l.address),
                |c| &c.pools6,
            )?;
            FamilyNetwork::Own(own(
                jail,
                l,
                pool.map(|p| (p.network.prefix(), p.interface.clone(), p.gateway)),
                128,
            )?)
        }
    };
    Ok(JailNetwork { inet, inet6 })
}

/// The pool a lease names (it must still be configured), or the pool whose
/// network holds the address.
fn lease_pool<'c, P>(
    config: &'c Config,
    jail: &JailName,
    named: Option<&PoolName>,
    by_address: impl FnOnce() -> Option<&'c P>,
    pools: impl FnOnce(&'c Config) -> &'c std::collections::BTreeMap<PoolName, P>,
) -> Result<Option<&'c P>> {
    match named {
        Some(p) => Ok(Some(pools(config).get(p).ok_or_else(|| {
            Error::config(format!(
                "{}: jail {jail} uses pool {p}, which is not configured",
                config.file
            ))
        })?)),
        None => Ok(by_address()),
    }
}

/// The own address of a lease: prefix, interface and gateway from its pool
/// (`pool`: prefix, interface, gateway), else a lone host route (`host`
/// bits) on the interface the lease names.
fn own<A: Copy + std::fmt::Display>(
    jail: &JailName,
    l: &Lease<A>,
    pool: Option<(u8, IfName, Option<A>)>,
    host: u8,
) -> Result<OwnAddress<A>> {
    let (prefix, pool_if, gateway) = match pool {
        Some((p, i, g)) => (p, Some(i), g),
        None => (host, None, None),
    };
    let interface = l.interface.clone().or(pool_if).ok_or_else(|| {
        Error::data(format!(
            "jail {jail}: {} is in no pool and has no interface (jnet assign {jail} {} --interface IF)",
            l.address, l.address
        ))
    })?;
    Ok(OwnAddress {
        address: l.address,
        prefix,
        interface,
        gateway,
    })
}

/// The desired state of `jail` (see the module doc).
pub fn build(ctx: &Context, jail: &JailName) -> Result<Desired> {
    let rec = ctx.record(jail)?;
    let view = ctx.view(jail)?;
    let conf = ctx.conf_jail(jail);
    let spec = JailSpec {
        name: jail.clone(),
        path: conf.and_then(|c| c.path.clone()).unwrap_or_else(|| PathBuf::from("/")),
        hostname: conf.and_then(|c| c.hostname.clone()),
        network: network(ctx.config, jail, rec)?,
        params: conf.map(|c| c.params.clone()).unwrap_or_default(),
    };
    Ok(Desired {
        spec,
        exec: conf.map(|c| c.exec.clone()).unwrap_or_default(),
        rules: render_rules(ctx, jail)?,
        // why: a jail that declares no port and exposes nothing cannot
        // collide; skipping the check spares the host scan.
        port_check: !view.settings.ports.is_empty() || !view.exposures.is_empty(),
        anchor_root: ctx.config.host.anchor.clone(),
        stop_timeout: conf
            .and_then(|c| c.stop_timeout)
            .unwrap_or(crate::core::plan::DEFAULT_STOP_TIMEOUT),
        unsupported: conf.map(|c| c.unsupported.clone()).unwrap_or_default(),
        persist: conf.is_some_and(|c| c.persist),
    })
}

/// The jail's firewall rules rendered for this platform (pf anchor text on
/// FreeBSD, an nft script for the jail's own chains on Linux), or None when
/// it has no exposures and no nat.
pub fn render_rules(ctx: &Context, jail: &JailName) -> Result<Option<String>> {
    let view = ctx.view(jail)?;
    let Some(rules) = firewall::jail_rules(ctx.config, &view)? else {
        return Ok(None);
    };
    let template = firewall::pf_template(&sources::config_dir(ctx.config_path))?;
    firewall::render(Syntax::native(), &rules, &ctx.config.host.anchor, &template).map(Some)
}

/// The port checker the lifecycle uses: the full analysis of
/// `engine::portcheck` against the live host. Errors refuse the start and
/// list every conflict; warnings are printed and do not.
///
/// why it reads the store itself: the claims and exposures it compares
/// must be those of the inventory as it is when the check runs (after the
/// verb's compare-and-set of its phase), not of the read the desired state
/// was built from before the locks were taken (H4).
pub fn port_checker<'a>(ctx: &Context<'a>, host: &'a dyn Host, store: &'a dyn Backend) -> Box<dyn PortChecker + 'a> {
    Box::new(LiveChecker {
        config: ctx.config,
        profiles: ctx.profiles,
        store,
        host,
    })
}

struct LiveChecker<'a> {
    config: &'a Config,
    profiles: &'a Profiles,
    store: &'a dyn Backend,
    host: &'a dyn Host,
}

impl PortChecker for LiveChecker<'_> {
    fn check(&self, jail: &JailName) -> Result<()> {
        let inventory = self.store.read()?;
        let views = jails::views(self.config, &inventory, self.profiles)?;
        let out = portcheck::run(self.host, self.config, &views, std::slice::from_ref(jail))?;
        for n in &out.notes {
            tracing::warn!("{n}");
        }
        let mut errors = vec![];
        for c in &out.report.conflicts {
            match c.severity {
                Severity::Error => errors.push(c.message.clone()),
                Severity::Warning => tracing::warn!(jail = %jail, "{}", c.message),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Conflicts(format!(
                "jail {jail}: port conflicts: {}",
                errors.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::parse_config;
    use crate::core::names::PoolName;
    use crate::core::plan::ExecHooks;

    const CONF: &str = "[host]\nexternal_interface=\"em0\"\nanchor=\"jn\"\n\
        [pools.lan]\nnetwork=\"10.9.0.0/24\"\ninterface=\"jnbr0\"\ngateway=\"10.9.0.1\"\n\
        [pools.out]\nnetwork=\"10.8.0.0/24\"\ninterface=\"jnbr1\"\nnat=true\n\
        [jails.web]\nports=[\"tcp/80\"]\n";

    fn inv() -> Inventory {
        let mut inv = Inventory::default();
        let lan = Some(PoolName::new("lan").unwrap());
        inv.jails.insert(
            JailName::new("db").unwrap(),
            JailRecord::dedicated("10.9.0.7".parse().unwrap(), lan, None),
        );
        inv.jails.insert(JailName::new("web").unwrap(), JailRecord::inherit());
        let out = Some(PoolName::new("out").unwrap());
        inv.jails.insert(
            JailName::new("nat").unwrap(),
            JailRecord::dedicated("10.8.0.7".parse().unwrap(), out, None),
        );
        inv
    }

    #[test]
    fn builds_from_record_pool_and_jail_conf() {
        let c = parse_config("jnet.toml", CONF).unwrap();
        let p = Profiles::new(Path::new("/nonexistent"));
        let inv = inv();
        let conf = [ConfJail {
            name: "db".into(),
            path: Some("/jails/db".into()),
            hostname: Some("db.example".into()),
            exec: ExecHooks {
                start: vec!["/bin/sh /etc/rc".into()],
                ..Default::default()
            },
            ..Default::default()
        }];
        let ctx = Context {
            config: &c,
            config_path: Path::new("jnet.toml"),
            profiles: &p,
            inventory: &inv,
            conf_jails: &conf,
        };
        let d = build(&ctx, &JailName::new("db").unwrap()).unwrap();
        assert_eq!(
            d.spec.network,
            JailNetwork::inet_only(crate::os::OwnAddress {
                address: "10.9.0.7".parse().unwrap(),
                prefix: 24,
                interface: crate::core::names::IfName::new("jnbr0").unwrap(),
                gateway: Some("10.9.0.1".parse().unwrap()),
            })
        );
        assert_eq!(d.spec.path, PathBuf::from("/jails/db"));
        assert_eq!(d.spec.hostname.as_deref(), Some("db.example"));
        assert_eq!(d.exec.start, ["/bin/sh /etc/rc"]);
        assert_eq!(
            (d.rules.as_deref(), d.port_check, d.anchor_root.as_str()),
            (None, false, "jn")
        );

        let web = build(&ctx, &JailName::new("web").unwrap()).unwrap();
        assert_eq!(web.spec.network, JailNetwork::INHERIT);
        assert!(web.port_check, "declares tcp/80");
        assert_eq!(web.spec.path, PathBuf::from("/"));

        // A nat pool gives the jail a masquerade rule in its own chain.
        let nat = build(&ctx, &JailName::new("nat").unwrap()).unwrap();
        let rules = nat.rules.expect("nat pool renders rules");
        assert!(
            rules.contains("add rule inet jn jail_nat_snat ip saddr 10.8.0.7 oifname \"em0\" masquerade"),
            "{rules}"
        );
        let e = build(&ctx, &JailName::new("nope").unwrap()).unwrap_err().to_string();
        assert!(e.contains("jail nope is not in the inventory"), "{e}");
    }
}
