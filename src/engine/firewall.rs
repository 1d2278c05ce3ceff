//! A jail's firewall rules: built from its view (exposures, nat) and
//! rendered for pf (anchor text through the admin-overridable template) or
//! nft (one script for the jail's chains). Loading and flushing go through
//! the `Host`; comparing with what is loaded is `core::rules::drift`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use ipnetwork::{Ipv4Network, Ipv6Network};

use crate::core::config::Config;
use crate::core::names::JailName;
use crate::core::rules::ir::{JailRules, NatSources, NatTarget};
use crate::core::rules::{nft, pf};
use crate::engine::jails::JailView;
use crate::error::{Error, Result};
use crate::os::{Host, OsError};

pub use crate::core::rules::drift::{State, Syntax};

/// The rules jail `v` needs: a redirect per exposure and, when its pool or
/// its settings ask for it, outbound nat of its address. `None` when it
/// needs none. Inherit jails cannot have exposures (nothing to redirect to).
pub fn jail_rules(config: &Config, v: &JailView) -> Result<Option<JailRules>> {
    let Some(rec) = &v.record else { return Ok(None) };
    if !rec.has_lease() {
        // An inherit jail binds the host's addresses itself: an exposure of
        // the same port needs no rule. One that maps to another port (or
        // pins an address) cannot be honoured without a jail address.
        if let Some(e) = v.exposures.iter().find(|e| e.host != e.jail || e.address.is_some()) {
            return Err(Error::data(format!(
                "jail {} shares the host's addresses (inherit), so exposure {e} cannot be redirected; \
                 give it a dedicated address or expose the port unchanged",
                v.name
            )));
        }
        return Ok(None);
    }
    if v.exposures.is_empty() && !v.nat && !v.nat6 {
        return Ok(None);
    }
    // why per family: nat of a jail's IPv4 address follows its pool or
    // settings; of its IPv6 address only a pool with `nat = true` (usual
    // for ULA, never implied for global addresses; issue 9 B5).
    let nat = NatSources {
        inet: rec
            .address()
            .filter(|_| v.nat)
            .map(|a| Ipv4Network::new(a, 32).expect("/32 is valid")),
        inet6: rec
            .address6()
            .filter(|_| v.nat6)
            .map(|a| Ipv6Network::new(a, 128).expect("/128 is valid")),
    };
    let addrs: Vec<IpAddr> = rec.addresses().collect();
    let mut rules = JailRules::from_exposures(&v.name, &addrs, &config.host.external_interface, &v.exposures, nat)
        .map_err(|e| Error::data(e.to_string()))?;
    // why inet only: an inet6 nat keeps `(if:0)` (see core::rules::ir).
    for n in rules.nats.iter_mut().filter(|n| n.source.is_ipv4()) {
        if let NatTarget::Interface { first_only, .. } = &mut n.translation {
            *first_only = config.host.nat_first_address;
        }
    }
    Ok(Some(rules))
}

/// The anchor template: `<config dir>/pf-templates/anchor.pf.j2` when the
/// administrator provides one, else the one built into jnet.
pub fn pf_template(config_dir: &Path) -> Result<pf::PfTemplate> {
    let path = config_dir.join("pf-templates").join(pf::ANCHOR_TEMPLATE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => pf::PfTemplate::new(&path.display().to_string(), &text).map_err(|e| Error::config(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(pf::PfTemplate::embedded()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The text to load for one jail.
pub fn render(syntax: Syntax, rules: &JailRules, anchor_root: &str, template: &pf::PfTemplate) -> Result<String> {
    match syntax {
        Syntax::Pf => template
            .render(rules, anchor_root, pf::PortNames::Numeric)
            .map_err(|e| Error::config(e.to_string())),
        Syntax::Nft => Ok(nft::render_nft_jail(rules, anchor_root)),
    }
}

/// Loads `v`'s rules in the native syntax, or flushes the jail's own
/// anchor (chains on nft) when it needs none. Returns the number of rules.
pub fn load(host: &dyn Host, config: &Config, template: &pf::PfTemplate, v: &JailView) -> Result<usize> {
    let anchor = &config.host.anchor;
    match jail_rules(config, v)? {
        Some(rules) => {
            let text = render(Syntax::native(), &rules, anchor, template)?;
            host.load_rules(anchor, &v.name, &text)?;
            Ok(rules.redirects.len() + rules.nats.len())
        }
        None => {
            host.flush_rules(anchor, &v.name)?;
            Ok(0)
        }
    }
}

/// What `jnet pf reload --all` did with one jail's anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// Running: its rules were loaded (how many).
    Loaded(usize),
    /// Running and needs no rules; its anchor was flushed.
    NoRules,
    /// Not running, yet rules were loaded for it: flushed (stale).
    FlushedStale,
    /// Not running and nothing loaded: left alone.
    Idle,
}

/// `jnet pf reload --all`, safe at boot and after `service pf reload`:
/// every jail of the inventory that the host reports running gets its
/// rules loaded, and a jail that is not running has whatever is still
/// loaded under its anchor flushed. Only the anchors `anchor_root/<jail>`
/// of jails in `views` with an inventory record are looked at: anchors
/// jnet does not own (other roots, jails it does not manage) are never
/// touched. Idempotent: a second run loads the same rules again. One
/// jail's failure does not stop the others; each has its own result.
pub fn reload_all(
    host: &dyn Host,
    config: &Config,
    template: &pf::PfTemplate,
    views: &BTreeMap<JailName, JailView>,
) -> Result<Vec<(JailName, Result<Reloaded>)>> {
    // why the host, not the inventory phase: at boot the inventory may
    // still say "running" for jails the reboot took down, and rules for
    // them would redirect traffic to addresses nobody holds.
    let running: BTreeSet<String> = host
        .running_jails()?
        .into_iter()
        .filter(|r| r.id != 0)
        .map(|r| r.name)
        .collect();
    let anchor = &config.host.anchor;
    let mut out = Vec::new();
    for (name, v) in views {
        if v.record.is_none() {
            continue;
        }
        let r = if running.contains(name.as_str()) {
            load(host, config, template, v).map(|n| if n == 0 { Reloaded::NoRules } else { Reloaded::Loaded(n) })
        } else {
            match host.loaded_rules(anchor, name) {
                Ok(Some(text)) if !text.trim().is_empty() => host
                    .flush_rules(anchor, name)
                    .map(|()| Reloaded::FlushedStale)
                    .map_err(Error::from),
                Ok(_) => Ok(Reloaded::Idle),
                // No firewall tool: nothing can be loaded for it.
                Err(OsError::Missing(_)) => Ok(Reloaded::Idle),
                Err(e) => Err(e.into()),
            }
        };
        out.push((name.clone(), r));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::parse_config;
    use crate::core::names::{JailName, PoolName};
    use crate::store::{Inventory, JailRecord};

    fn view(config: &Config, inv: &Inventory) -> JailView {
        let profiles = crate::engine::sources::Profiles::new(Path::new("/nonexistent"));
        crate::engine::jails::view(config, inv, &profiles, &JailName::new("w").unwrap()).unwrap()
    }

    #[test]
    fn nat_goes_to_the_first_interface_address_unless_told_otherwise() {
        let base = "external_interface=\"em0\"\n[pools.p]\nnetwork=\"10.66.0.0/24\"\ninterface=\"lo1\"\nnat=true\n";
        let mut inv = Inventory::default();
        let rec = JailRecord::dedicated("10.66.0.5".parse().unwrap(), Some(PoolName::new("p").unwrap()), None);
        inv.jails.insert(JailName::new("w").unwrap(), rec);
        for (host, first) in [("", true), ("nat_first_address = false\n", false)] {
            let c = parse_config("t", &format!("[host]\n{host}{base}")).unwrap();
            let rules = jail_rules(&c, &view(&c, &inv)).unwrap().expect("nat pool needs rules");
            let lines = pf::render_rule_lines(&rules, pf::PortNames::Numeric);
            let want = if first { "-> (em0:0)" } else { "-> (em0) round-robin" };
            assert!(lines[0].ends_with(want), "{lines:?}");
        }
    }

    #[test]
    fn inherit_jails_need_no_rules_but_cannot_remap_ports() {
        let c = parse_config(
            "t",
            "[host]\nexternal_interface=\"em0\"\n[jails.w]\nexpose=[\"tcp/80\"]\n",
        )
        .unwrap();
        let mut inv = Inventory::default();
        inv.jails.insert(JailName::new("w").unwrap(), JailRecord::inherit());
        assert_eq!(jail_rules(&c, &view(&c, &inv)).unwrap(), None);
        let c = parse_config(
            "t",
            "[host]\nexternal_interface=\"em0\"\n[jails.w]\nexpose=[\"tcp/8080:80\"]\n",
        )
        .unwrap();
        let e = jail_rules(&c, &view(&c, &inv)).unwrap_err().to_string();
        assert!(e.contains("inherit") && e.contains("tcp/8080:80"), "{e}");
    }

    /// Boot and `service pf reload`: running jails get their rules, stale
    /// anchors of stopped jails are flushed, anchors jnet does not own are
    /// never touched, and a second run changes nothing.
    #[test]
    fn reload_all_loads_running_jails_flushes_stale_ones_and_nothing_else() {
        use crate::engine::fake_host::FakeHost;
        use crate::os::JailSpec;
        let c = parse_config(
            "t",
            "[host]\nexternal_interface=\"em0\"\n[jails.up]\nexpose=[\"tcp/80\"]\n\
             [jails.down]\nexpose=[\"tcp/81\"]\n[jails.bare]\n",
        )
        .unwrap();
        let jn = |s: &str| JailName::new(s).unwrap();
        let mut inv = Inventory::default();
        inv.jails
            .insert(jn("up"), JailRecord::dedicated("10.0.0.5".parse().unwrap(), None, None));
        inv.jails.insert(
            jn("down"),
            JailRecord::dedicated("10.0.0.6".parse().unwrap(), None, None),
        );
        inv.jails.insert(jn("bare"), JailRecord::inherit());
        // jnet.toml names it, but it has no address: not jnet's anchor yet.
        let c = {
            let mut c = c;
            let mut extra = c.jails[&jn("bare")].clone();
            extra.name = jn("noaddr");
            c.jails.insert(jn("noaddr"), extra);
            c
        };
        let profiles = crate::engine::sources::Profiles::new(Path::new("/nonexistent"));
        let views = crate::engine::jails::views(&c, &inv, &profiles).unwrap();
        let host = FakeHost::new();
        let spec = |n: &str| JailSpec {
            name: jn(n),
            path: "/".into(),
            hostname: None,
            network: crate::os::JailNetwork::INHERIT,
            params: vec![],
        };
        host.create_jail(&spec("up")).unwrap();
        host.create_jail(&spec("bare")).unwrap();
        // Left over from before a reboot, and another tool's anchor.
        host.load_rules("jnet", &jn("down"), "rdr stale\n").unwrap();
        host.load_rules("jnet", &jn("noaddr"), "someone else's\n").unwrap();
        host.take_calls();
        let tmpl = pf::PfTemplate::embedded();
        let res = reload_all(&host, &c, &tmpl, &views).unwrap();
        let res: Vec<(String, Reloaded)> = res.into_iter().map(|(j, r)| (j.to_string(), r.unwrap())).collect();
        assert_eq!(
            res,
            [
                ("bare".to_string(), Reloaded::NoRules),
                ("down".to_string(), Reloaded::FlushedStale),
                ("up".to_string(), Reloaded::Loaded(1)),
            ]
        );
        assert_eq!(
            host.take_calls(),
            ["flush_rules bare", "flush_rules down", "load_rules up"]
        );
        let st = host.snapshot();
        assert!(st.rules.contains_key(&jn("noaddr")), "not jnet's: untouched");
        assert!(!st.rules.contains_key(&jn("down")));
        // Again: the same rules, nothing stale left.
        let again = reload_all(&host, &c, &tmpl, &views).unwrap();
        assert!(again
            .iter()
            .any(|(j, r)| j.as_str() == "down" && r.as_ref().ok() == Some(&Reloaded::Idle)));
        assert_eq!(host.snapshot(), st);
        // A failing jail does not stop the others.
        host.fail_on("load_rules up");
        let res = reload_all(&host, &c, &tmpl, &views).unwrap();
        assert!(res.iter().any(|(j, r)| j.as_str() == "up" && r.is_err()));
        assert!(res.iter().any(|(j, r)| j.as_str() == "bare" && r.is_ok()));
    }
}
