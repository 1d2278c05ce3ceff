//! A jail's firewall rules: built from its view (exposures, nat), rendered
//! for pf (anchor text through the admin-overridable template) or nft
//! (one script for the jail's chains), and compared with what the firewall
//! has loaded (drift).
//!
//! Loading and flushing go through the `Host`; the comparison functions are
//! pure and work on the listing text the host returns.

use std::collections::BTreeMap;
use std::path::Path;

use ipnetwork::Ipv4Network;

use crate::core::config::Config;
use crate::core::rules::ir::JailRules;
use crate::core::rules::{nft, pf, pflist};
use crate::engine::jails::JailView;
use crate::error::{Error, Result};
use crate::store::Mode;

/// Which firewall language to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Pf,
    Nft,
}

impl Syntax {
    /// pf on FreeBSD, nft elsewhere (Linux).
    pub fn native() -> Syntax {
        if cfg!(target_os = "freebsd") {
            Syntax::Pf
        } else {
            Syntax::Nft
        }
    }
}

/// The rules jail `v` needs: a redirect per exposure and, when its pool or
/// its settings ask for it, outbound nat of its address. `None` when it
/// needs none. Inherit jails cannot have exposures (nothing to redirect to).
pub fn jail_rules(config: &Config, v: &JailView) -> Result<Option<JailRules>> {
    let Some(rec) = &v.record else { return Ok(None) };
    if rec.mode == Mode::Inherit {
        if let Some(e) = v.exposures.first() {
            return Err(Error::data(format!(
                "jail {} shares the host's addresses (inherit), so exposure {e} has nothing to redirect to; \
                 give it a dedicated address or bind the service on the host port directly",
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
    JailRules::from_exposures(&v.name, addr, &config.host.external_interface, &v.exposures, nat)
        .map(Some)
        .map_err(|e| Error::data(e.to_string()))
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

/// How the loaded rules of a jail compare with what jnet would render.
/// why internally tagged: flattened into `jnet pf status --format json`
/// rows, it gives `"state": "in-sync"` (plus the variant's fields), where
/// an externally tagged unit variant would give `"in-sync": null`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum State {
    /// Loaded and equal to the rendering.
    InSync,
    /// Should be loaded but nothing is.
    NotLoaded,
    /// Loaded, but differs: missing and unexpected rules.
    Drift { missing: Vec<String>, unexpected: Vec<String> },
    /// Rules are loaded for a jail that should have none.
    Stale { rules: Vec<String> },
    /// Nothing loaded, nothing wanted.
    Empty,
}

fn multiset_diff(want: Vec<String>, have: Vec<String>) -> State {
    let mut count: BTreeMap<&str, i64> = BTreeMap::new();
    for w in &want {
        *count.entry(w).or_default() += 1;
    }
    for h in &have {
        *count.entry(h).or_default() -= 1;
    }
    let missing: Vec<String> = count.iter().filter(|(_, &n)| n > 0).map(|(s, _)| s.to_string()).collect();
    let unexpected: Vec<String> = count.iter().filter(|(_, &n)| n < 0).map(|(s, _)| s.to_string()).collect();
    if missing.is_empty() && unexpected.is_empty() {
        State::InSync
    } else {
        State::Drift { missing, unexpected }
    }
}

/// Rule lines `<chain> <rule>` an nft script adds.
fn nft_script_rules(script: &str) -> Vec<String> {
    script
        .lines()
        .filter_map(|l| l.strip_prefix("add rule "))
        .filter_map(|rest| {
            // `<family> <table> <chain> <rule...>`
            let mut parts = rest.splitn(4, ' ');
            let (_, _, chain, rule) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            Some(format!("{chain} {}", rule.trim()))
        })
        .collect()
}

/// Rule lines `<chain> <rule>` of an `nft list` listing.
fn nft_listing_rules(listing: &str) -> Vec<String> {
    let mut out = vec![];
    let mut chain: Option<String> = None;
    for l in listing.lines().map(str::trim) {
        if let Some(rest) = l.strip_prefix("chain ") {
            chain = rest.strip_suffix('{').map(|c| c.trim().to_string());
        } else if l == "}" {
            chain = None;
        } else if let Some(c) = &chain {
            if !l.is_empty() && !l.starts_with("type ") {
                out.push(format!("{c} {l}"));
            }
        }
    }
    out
}

/// pf rule lines in numeric canonical form, from a pfctl listing; lines the
/// IR cannot express are kept as printed.
fn pf_listing_rules(listing: &str) -> Result<Vec<String>> {
    let parsed = pflist::parse_listing(listing, "").map_err(|e| Error::data(format!("pfctl listing: {e}")))?;
    Ok(parsed
        .rules
        .iter()
        .map(|lr| {
            let r = &lr.rule;
            if let Ok(rdr) = pflist::redirect_from_rule(r) {
                pf::render_redirect(&rdr, pf::PortNames::Numeric)
            } else if let Ok(nat) = pflist::nat_from_rule(r) {
                pf::render_nat(&nat)
            } else {
                lr.text.trim().to_string()
            }
        })
        .collect())
}

/// Compares what is loaded with what jnet would render.
pub fn compare(syntax: Syntax, want: Option<(&JailRules, &str)>, loaded: Option<&str>) -> Result<State> {
    let want_lines: Vec<String> = match want {
        None => vec![],
        Some((rules, anchor_root)) => match syntax {
            Syntax::Pf => pf::render_rule_lines(rules, pf::PortNames::Numeric),
            Syntax::Nft => nft_script_rules(&nft::render_nft_jail(rules, anchor_root)),
        },
    };
    let have: Vec<String> = match loaded {
        None => vec![],
        Some(text) => match syntax {
            Syntax::Pf => pf_listing_rules(text)?,
            Syntax::Nft => nft_listing_rules(text),
        },
    };
    Ok(match (want_lines.is_empty(), have.is_empty()) {
        (true, true) => State::Empty,
        (false, true) => State::NotLoaded,
        (true, false) => State::Stale { rules: have },
        (false, false) => multiset_diff(want_lines, have),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::{IfName, JailName};

    fn rules() -> JailRules {
        JailRules::from_exposures(
            &JailName::new("www").unwrap(),
            "10.0.0.5".parse().unwrap(),
            &IfName::new("em0").unwrap(),
            &["tcp/80".parse().unwrap(), "tcp/8443:443".parse().unwrap()],
            Some("10.0.0.5/32".parse().unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn nft_listing_matches_its_script() {
        let r = rules();
        let script = nft::render_nft_jail(&r, "jnet");
        // What `nft list` prints back for the chains of that script.
        let mut listing = String::from("table inet jnet {\n");
        for chain in nft::jail_chains(&r.jail) {
            listing.push_str(&format!("\tchain {chain} {{\n\t\ttype nat hook x priority 0; policy accept;\n"));
            for l in nft_script_rules(&script).iter().filter_map(|l| l.strip_prefix(&format!("{chain} "))) {
                listing.push_str(&format!("\t\t{l}\n"));
            }
            listing.push_str("\t}\n");
        }
        listing.push_str("}\n");
        assert_eq!(compare(Syntax::Nft, Some((&r, "jnet")), Some(&listing)).unwrap(), State::InSync);
        let tampered = listing.replacen("dport 80 ", "dport 81 ", 1);
        match compare(Syntax::Nft, Some((&r, "jnet")), Some(&tampered)).unwrap() {
            State::Drift { missing, unexpected } => {
                assert_eq!((missing.len(), unexpected.len()), (1, 1));
                assert!(unexpected[0].contains("dport 81"));
            }
            s => panic!("{s:?}"),
        }
        assert_eq!(compare(Syntax::Nft, Some((&r, "jnet")), None).unwrap(), State::NotLoaded);
        assert!(matches!(compare(Syntax::Nft, None, Some(&listing)).unwrap(), State::Stale { .. }));
        assert_eq!(compare(Syntax::Nft, None, None).unwrap(), State::Empty);
    }

    #[test]
    fn state_serialises_with_a_state_key() {
        assert_eq!(serde_json::to_value(State::InSync).unwrap(), serde_json::json!({"state": "in-sync"}));
        assert_eq!(serde_json::to_value(State::NotLoaded).unwrap(), serde_json::json!({"state": "not-loaded"}));
        let d = State::Drift { missing: vec!["a".into()], unexpected: vec![] };
        assert_eq!(
            serde_json::to_value(d).unwrap(),
            serde_json::json!({"state": "drift", "missing": ["a"], "unexpected": []})
        );
    }

    #[test]
    fn pf_listing_in_service_names_is_in_sync() {
        let r = rules();
        let lines = pf::render_rule_lines(&r, pf::PortNames::Services);
        let listing = lines.join("\n") + "\n";
        assert_eq!(compare(Syntax::Pf, Some((&r, "jnet")), Some(&listing)).unwrap(), State::InSync);
        let short = lines[..lines.len() - 1].join("\n") + "\n";
        assert!(matches!(compare(Syntax::Pf, Some((&r, "jnet")), Some(&short)).unwrap(), State::Drift { .. }));
    }
}
