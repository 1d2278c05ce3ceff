//! Drift: whether the rules a firewall lists for a jail are the rules jnet
//! renders for it. Both sides are reduced to normalised rule lines and
//! compared as multisets, so order, whitespace, comments, macros and pf's
//! service names (`port = http`) do not count as differences.
//!
//! * nft: an `add rule <family> <table> <chain> <rule>` line of a script
//!   and a rule line inside `chain <chain> { ... }` of an `nft list`
//!   listing both become `<chain> <rule>` (nft prints rules back in the
//!   form jnet renders them).
//! * pf: `nat`/`rdr`/`binat` lines (of an anchor text or a `pfctl -sn`
//!   listing) are parsed and, when the IR can express them, re-rendered in
//!   numeric canonical form; others are kept as printed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{pf, pflist};

/// Which firewall language a text is in.
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

/// How the loaded rules of a jail compare with what jnet would load.
/// why internally tagged: flattened into `jnet pf status --format json`
/// rows it gives `"state": "in-sync"` (plus the variant's fields), where an
/// externally tagged unit variant would give `"in-sync": null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum State {
    /// Loaded and equal to the rendering.
    InSync,
    /// Should be loaded but nothing is.
    NotLoaded,
    /// Loaded, but different.
    Drift {
        missing: Vec<String>,
        unexpected: Vec<String>,
    },
    /// Rules are loaded for a jail that should have none.
    Stale { rules: Vec<String> },
    /// Nothing loaded, nothing wanted.
    Empty,
}

/// The normalised rule lines of `text` (a rendering or a listing).
pub fn rule_lines(syntax: Syntax, text: &str) -> Vec<String> {
    match syntax {
        Syntax::Nft => nft_lines(text),
        Syntax::Pf => pf_lines(text),
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn nft_lines(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut chain: Option<String> = None;
    for raw in text.lines() {
        let l = squash(raw);
        if let Some(rest) = l.strip_prefix("add rule ") {
            // `<family> <table> <chain> <rule...>`
            let mut parts = rest.splitn(4, ' ');
            if let (Some(_), Some(_), Some(ch), Some(rule)) = (parts.next(), parts.next(), parts.next(), parts.next()) {
                out.push(format!("{ch} {rule}"));
            }
        } else if let Some(rest) = l.strip_prefix("chain ") {
            chain = rest
                .strip_suffix(" {")
                .or(rest.strip_suffix('{'))
                .map(|c| c.trim().to_string());
        } else if l == "}" {
            chain = None;
        } else if let Some(ch) = &chain {
            if !l.is_empty() && !l.starts_with("type ") && !l.starts_with('#') {
                out.push(format!("{ch} {l}"));
            }
        }
    }
    out
}

fn pf_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            ["nat ", "rdr ", "binat ", "no nat", "no rdr"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| match pflist::parse_rule(l) {
            Ok(r) => {
                if let Ok(rdr) = pflist::redirect_from_rule(&r) {
                    pf::render_redirect(&rdr, pf::PortNames::Numeric)
                } else if let Ok(nat) = pflist::nat_from_rule(&r) {
                    pf::render_nat(&nat)
                } else {
                    squash(l)
                }
            }
            Err(_) => squash(l),
        })
        .collect()
}

/// Compares the rendering jnet would load (`None`: it wants no rules) with
/// what the firewall lists (`None`: nothing loaded).
pub fn compare(syntax: Syntax, rendered: Option<&str>, loaded: Option<&str>) -> State {
    let want = rendered.map(|t| rule_lines(syntax, t)).unwrap_or_default();
    let have = loaded.map(|t| rule_lines(syntax, t)).unwrap_or_default();
    match (want.is_empty(), have.is_empty()) {
        (true, true) => State::Empty,
        (false, true) => State::NotLoaded,
        (true, false) => State::Stale { rules: have },
        (false, false) => {
            let mut count: BTreeMap<&str, i64> = BTreeMap::new();
            for w in &want {
                *count.entry(w).or_default() += 1;
            }
            for h in &have {
                *count.entry(h).or_default() -= 1;
            }
            let missing: Vec<String> = count
                .iter()
                .filter(|(_, &n)| n > 0)
                .map(|(s, _)| s.to_string())
                .collect();
            let unexpected: Vec<String> = count
                .iter()
                .filter(|(_, &n)| n < 0)
                .map(|(s, _)| s.to_string())
                .collect();
            if missing.is_empty() && unexpected.is_empty() {
                State::InSync
            } else {
                State::Drift { missing, unexpected }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::{IfName, JailName};
    use crate::core::rules::{nft, JailRules};

    fn rules() -> JailRules {
        JailRules::from_exposures(
            &JailName::new("www").unwrap(),
            &["10.0.0.5".parse().unwrap()],
            &IfName::new("em0").unwrap(),
            &[
                "tcp/80".parse::<crate::core::ports::Expose>().unwrap(),
                "tcp/8443:443".parse().unwrap(),
            ],
            crate::core::rules::ir::NatSources::inet("10.0.0.5/32".parse().unwrap()),
        )
        .unwrap()
    }

    /// What `nft list table` prints back for a script's chains.
    fn listing_of(script: &str, r: &JailRules) -> String {
        let mut listing = String::from("table inet jnet {\n");
        for chain in nft::jail_chains(&r.jail) {
            listing.push_str(&format!(
                "\tchain {chain} {{\n\t\ttype nat hook x priority 0; policy accept;\n"
            ));
            for l in nft_lines(script)
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("{chain} ")))
            {
                listing.push_str(&format!("\t\t{l}\n"));
            }
            listing.push_str("\t}\n");
        }
        listing + "}\n"
    }

    #[test]
    fn nft_script_against_listing() {
        let r = rules();
        let script = nft::render_nft_jail(&r, "jnet");
        let listing = listing_of(&script, &r);
        assert_eq!(compare(Syntax::Nft, Some(&script), Some(&listing)), State::InSync);
        let tampered = listing.replacen("dport 80 ", "dport 81 ", 1);
        match compare(Syntax::Nft, Some(&script), Some(&tampered)) {
            State::Drift { missing, unexpected } => {
                assert_eq!((missing.len(), unexpected.len()), (1, 1));
                assert!(unexpected[0].contains("dport 81"));
            }
            s => panic!("{s:?}"),
        }
        assert_eq!(compare(Syntax::Nft, Some(&script), None), State::NotLoaded);
        assert!(matches!(
            compare(Syntax::Nft, None, Some(&listing)),
            State::Stale { .. }
        ));
        assert_eq!(compare(Syntax::Nft, None, None), State::Empty);
    }

    #[test]
    fn pf_dual_stack_anchor_against_listing() {
        let r = JailRules::from_exposures(
            &JailName::new("www").unwrap(),
            &["10.0.0.5".parse().unwrap(), "2001:db8::5".parse().unwrap()],
            &IfName::new("em0").unwrap(),
            &["tcp/80".parse::<crate::core::ports::Expose>().unwrap()],
            crate::core::rules::ir::NatSources {
                inet: None,
                inet6: Some("fd00::/64".parse().unwrap()),
            },
        )
        .unwrap();
        let anchor = pf::PfTemplate::embedded()
            .render(&r, "jnet", pf::PortNames::Numeric)
            .unwrap();
        // pfctl without -P prints `port = http`; the inet6 lines normalise
        // like the inet ones.
        let listing = pf::render_rule_lines(&r, pf::PortNames::Services).join("\n");
        assert!(listing.contains("inet6 proto tcp from any to (em0:0) port = http -> 2001:db8::5"));
        assert_eq!(compare(Syntax::Pf, Some(&anchor), Some(&listing)), State::InSync);
        let other = listing.replace("-> 2001:db8::5 port 80", "-> 2001:db8::6 port 80");
        match compare(Syntax::Pf, Some(&anchor), Some(&other)) {
            State::Drift { missing, unexpected } => {
                assert_eq!(
                    missing,
                    vec!["rdr pass on em0 inet6 proto tcp from any to (em0:0) port = 80 -> 2001:db8::5 port 80"]
                );
                assert_eq!(unexpected.len(), 1);
            }
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn state_json_is_tagged() {
        assert_eq!(
            serde_json::to_value(State::InSync).unwrap(),
            serde_json::json!({"state": "in-sync"})
        );
        let d = State::Drift {
            missing: vec!["a".into()],
            unexpected: vec![],
        };
        assert_eq!(
            serde_json::to_value(d).unwrap(),
            serde_json::json!({"state": "drift", "missing": ["a"], "unexpected": []})
        );
    }

    #[test]
    fn pf_anchor_against_listing_with_service_names() {
        let r = rules();
        let anchor = pf::PfTemplate::embedded()
            .render(&r, "jnet", pf::PortNames::Numeric)
            .unwrap();
        let lines = pf::render_rule_lines(&r, pf::PortNames::Services);
        let listing = lines.join("\n") + "\n";
        // The anchor's header comments and macros are not rules.
        assert_eq!(compare(Syntax::Pf, Some(&anchor), Some(&listing)), State::InSync);
        let short = lines[..lines.len() - 1].join("\n") + "\n";
        assert!(matches!(
            compare(Syntax::Pf, Some(&anchor), Some(&short)),
            State::Drift { .. }
        ));
    }
}
