//! A jail's firewall rules: built from its view (exposures, nat) and
//! rendered for pf (anchor text through the admin-overridable template) or
//! nft (one script for the jail's chains). Loading and flushing go through
//! the `Host`; comparing with what is loaded is `core::rules::drift`.

use std::path::Path;

use ipnetwork::Ipv4Network;

use crate::core::config::Config;
use crate::core::rules::ir::{JailRules, NatTarget};
use crate::core::rules::{nft, pf};
use crate::engine::jails::JailView;
use crate::error::{Error, Result};
use crate::store::Mode;

pub use crate::core::rules::drift::{State, Syntax};

/// The rules jail `v` needs: a redirect per exposure and, when its pool or
/// its settings ask for it, outbound nat of its address. `None` when it
/// needs none. Inherit jails cannot have exposures (nothing to redirect to).
pub fn jail_rules(config: &Config, v: &JailView) -> Result<Option<JailRules>> {
    let Some(rec) = &v.record else { return Ok(None) };
    if rec.mode == Mode::Inherit {
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
    let addr = rec.address.expect("dedicated record has an address");
    if v.exposures.is_empty() && !v.nat {
        return Ok(None);
    }
    let nat = v.nat.then(|| Ipv4Network::new(addr, 32).expect("/32 is valid"));
    let mut rules = JailRules::from_exposures(&v.name, addr, &config.host.external_interface, &v.exposures, nat)
        .map_err(|e| Error::data(e.to_string()))?;
    for n in &mut rules.nats {
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
}
