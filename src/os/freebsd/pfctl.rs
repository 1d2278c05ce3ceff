//! pfctl(8) argument lists and the small decoders of its output: anchor
//! names jnet may use (pfctl refuses `_`-prefixed components), validate /
//! load / flush / list argument vectors, `-v -s Anchors` listings, the
//! "pf not loaded" and "no such anchor" messages, and the pf.conf hooks
//! jnet's anchors need.
//!
//! Pure: `pf` runs pfctl with these arguments through the one runner. Rule
//! text is rendered in `core::rules::pf` and parsed in `core::rules::pflist`,
//! not here.

use super::{args, PlanError};
use crate::core::names::JailName;

/// Checks jnet's anchor root (`jnet`, or a nested `jnet/sub`): components
/// of letters, digits, '_' and '-', not starting with '_' (pf reserves
/// those), no wildcard.
pub fn check_anchor_root(root: &str) -> Result<(), PlanError> {
    let err = |reason| PlanError::Anchor {
        root: root.to_string(),
        reason,
    };
    if root.is_empty() || root.len() > 200 {
        return Err(err("must be 1 to 200 bytes"));
    }
    for part in root.split('/') {
        if part.is_empty() {
            return Err(err("empty path component"));
        }
        if part.starts_with('_') {
            return Err(err("components starting with '_' are reserved by pf"));
        }
        if !part
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            return Err(err("only letters, digits, '_', '-' and '/' are allowed"));
        }
    }
    Ok(())
}

/// The jail's anchor path `<root>/<jail>`. Checked as a whole (root and
/// jail component) against pfctl's refusal of `_`-prefixed components
/// (sbin/pfctl/pfctl.c main(), FreeBSD main e7646b05 l.2988-2990), so a
/// refused name fails here, before any pfctl call.
pub fn anchor_path(root: &str, jail: &JailName) -> Result<String, PlanError> {
    let path = format!("{root}/{jail}");
    check_anchor_root(root)?;
    check_anchor_root(&path)?;
    Ok(path)
}

/// `pfctl -a <anchor> -n -f -`: parse the rules on stdin without loading.
pub fn pfctl_validate(anchor: &str) -> Vec<String> {
    args(&["-a", anchor, "-n", "-f", "-"])
}
/// `pfctl -a <anchor> -f -`: replace the anchor's rules with stdin.
pub fn pfctl_load(anchor: &str) -> Vec<String> {
    args(&["-a", anchor, "-f", "-"])
}
/// `pfctl -a <anchor> -F all`: empty the anchor (with an anchor given,
/// pfctl limits the flush to it and leaves global state alone).
pub fn pfctl_flush(anchor: &str) -> Vec<String> {
    args(&["-a", anchor, "-F", "all"])
}
/// `pfctl -P [-a <anchor>] -s nat|rules`. `-P` sets PF_OPT_NUMERIC so
/// ports print as numbers, not getservbyport() names (sbin/pfctl/pfctl.c
/// main() case 'P', FreeBSD main e7646b05 l.2799-2801; print_port() in
/// sbin/pfctl/pfctl_parser.c l.330-348). `-N` is "load only NAT rules"
/// (pfctl.c l.2766-2768), not numeric output.
pub fn pfctl_show(anchor: Option<&str>, what: &str) -> Vec<String> {
    match anchor {
        Some(a) => args(&["-P", "-a", a, "-s", what]),
        None => args(&["-P", "-s", what]),
    }
}
/// `pfctl -v -s Anchors`: every anchor, recursively.
pub fn pfctl_list_anchors() -> Vec<String> {
    args(&["-v", "-s", "Anchors"])
}

/// Anchor paths from `pfctl -vsA` (one per line, indented).
pub fn parse_anchor_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Anchors that do not belong to jnet's `root`.
pub fn foreign_anchors(all: &[String], root: &str) -> Vec<String> {
    let prefix = format!("{root}/");
    all.iter()
        .filter(|a| a.as_str() != root && !a.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Whether pfctl failed because `/dev/pf` does not exist, i.e. pf.ko is not
/// loaded: pfctl does `err(1, "/dev/pf")` when it cannot open the device
/// (sbin/pfctl/pfctl.c main(), FreeBSD main e7646b05 l.2881-2884), which
/// prints `pfctl: /dev/pf: No such file or directory`; the device is made
/// only by pf's module load (sys/netpfil/pf/pf_ioctl.c pf_load(),
/// `make_dev(&pf_cdevsw, 0, 0, 0, 0600, PF_NAME)`, l.6688) (F2).
pub fn is_pf_absent(stderr: &str) -> bool {
    stderr
        .lines()
        .any(|l| l.trim_end().ends_with("/dev/pf: No such file or directory"))
}

/// pfctl's complaint when listing an anchor that does not exist (FreeBSD:
/// DIOCGETRULES fails with EINVAL; newer pfctl names the anchor).
pub fn is_missing_anchor(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("anchor does not exist")
        || s.contains("no such file or directory") && s.contains("diocgetrule")
        || s.contains("invalid argument") && s.contains("diocgetrule")
}

/// The pf.conf hook lines that make pf evaluate jnet's per-jail anchors
/// and that the main ruleset's `pfctl -s nat` listing lacks: `nat-anchor`
/// and `rdr-anchor`. pfctl prints a hook back as `rdr-anchor "jnet/*" all`;
/// a hook with extra conditions still counts as present. The filter hook
/// `anchor "<root>/*"` is not required: jnet's anchors hold only nat and
/// `rdr pass` rules, which pf evaluates through the nat/rdr anchor calls
/// (sys/netpfil/pf/pf.c pf_get_translation() walks the PF_RULESET_NAT/RDR
/// rulesets, FreeBSD main e7646b05 l.3327-3360), and `rdr pass` skips the
/// filter ruleset altogether (F17).
pub fn missing_anchor_hooks(root: &str, main_nat: &str) -> Vec<String> {
    let wanted = format!("\"{root}/*\"");
    let has = |kind: &str| {
        main_nat.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(kind) && words.next() == Some(wanted.as_str())
        })
    };
    ["nat-anchor", "rdr-anchor"]
        .into_iter()
        .filter(|kind| !has(kind))
        .map(|kind| format!("{kind} {wanted}"))
        .collect()
}

/// The loaded rules of one anchor as one text (nat section, then filter
/// rules); `None` when both listings are empty.
pub fn combine_listings(nat: &str, rules: &str) -> Option<String> {
    let parts: Vec<&str> = [nat.trim_end(), rules.trim_end()]
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::freebsd::test_support::jn;

    /// F2: pfctl's message when pf.ko is not loaded (pfctl.c err(1, "/dev/pf")).
    #[test]
    fn pf_absent_is_recognised() {
        assert!(is_pf_absent("pfctl: /dev/pf: No such file or directory\n"));
        assert!(!is_pf_absent("pfctl: /dev/pf: Permission denied\n"));
        assert!(!is_pf_absent("pfctl: DIOCGETRULES: No such file or directory\n"));
    }

    #[test]
    fn anchor_hooks() {
        let nat = "nat-anchor \"jnet/*\" all\nrdr-anchor \"relayd/*\" all\n";
        let rules = "anchor \"jnet/*\" on em0 all\nanchor \"relayd/*\" all\n";
        assert!(rules.contains("anchor \"jnet/*\""));
        assert_eq!(missing_anchor_hooks("jnet", nat), ["rdr-anchor \"jnet/*\""]);
        assert_eq!(
            missing_anchor_hooks("jnet", "nat-anchor \"jnetx/*\" all\n"),
            ["nat-anchor \"jnet/*\"", "rdr-anchor \"jnet/*\""]
        );
        // F17: without a filter `anchor "jnet/*"` nothing is reported missing.
        let all = "nat-anchor \"jnet/*\" all\nrdr-anchor \"jnet/*\" all\n";
        assert!(missing_anchor_hooks("jnet", all).is_empty());
        // A hook for one jail only is not the wildcard hook.
        assert_eq!(
            missing_anchor_hooks("jnet", "nat-anchor \"jnet/www\" all\nrdr-anchor \"jnet/*\" all").len(),
            1
        );
    }

    /// Real `pfctl -s rules` / `-s nat` output from the shared corpus.
    fn corpus_file(rel: &str) -> Option<String> {
        let dir = std::env::var("JNET_CORPUS")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus").to_string());
        let path = std::path::Path::new(&dir).join(rel);
        match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "corpus missing under CI: {}",
                    path.display()
                );
                eprintln!(
                    "SKIP: corpus file {} not readable ({e}); set JNET_CORPUS",
                    path.display()
                );
                None
            }
        }
    }

    #[test]
    fn anchor_hooks_in_real_listings() {
        let Some(nat) = corpus_file("cmdout/pfctl-sn__pfsense-nat-anchors__miniupnp-issue451.txt") else {
            return;
        };
        // The capture hooks relayd/* as a filter anchor only (in -s rules,
        // which is no longer consulted: F17).
        assert_eq!(
            missing_anchor_hooks("relayd", &nat),
            ["nat-anchor \"relayd/*\"", "rdr-anchor \"relayd/*\""]
        );
        assert_eq!(missing_anchor_hooks("jnet", &nat).len(), 2);
        // `nat-anchor "natrules/"` (no wildcard) does not hook natrules/*.
        assert!(missing_anchor_hooks("natrules", &nat).contains(&"nat-anchor \"natrules/*\"".to_string()));
    }

    #[test]
    fn pfctl_arguments() {
        let a = anchor_path("jnet", &jn("www")).unwrap();
        assert_eq!(a, "jnet/www");
        assert_eq!(pfctl_validate(&a), ["-a", "jnet/www", "-n", "-f", "-"]);
        assert_eq!(pfctl_load(&a), ["-a", "jnet/www", "-f", "-"]);
        assert_eq!(pfctl_flush(&a), ["-a", "jnet/www", "-F", "all"]);
        assert_eq!(pfctl_show(Some(&a), "nat"), ["-P", "-a", "jnet/www", "-s", "nat"]);
        assert_eq!(pfctl_show(None, "rules"), ["-P", "-s", "rules"]);
        assert_eq!(pfctl_list_anchors(), ["-v", "-s", "Anchors"]);
        assert_eq!(anchor_path("site/jnet", &jn("db")).unwrap(), "site/jnet/db");
        for bad in ["", "*", "jnet/*", "_jnet", "a//b", "/a", "a b", "jnet;x", "jnet\n"] {
            assert!(check_anchor_root(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn anchor_listing() {
        let all = parse_anchor_list("  jnet\n  jnet/db\n  jnet/www\n  jnetx\n  miniupnpd\n\n  bastille/web\n");
        assert_eq!(
            all,
            ["jnet", "jnet/db", "jnet/www", "jnetx", "miniupnpd", "bastille/web"]
        );
        assert_eq!(foreign_anchors(&all, "jnet"), ["jnetx", "miniupnpd", "bastille/web"]);
        assert!(is_missing_anchor("pfctl: DIOCGETRULES: Invalid argument\n"));
        assert!(is_missing_anchor("pfctl: Anchor does not exist.\n"));
        assert!(!is_missing_anchor("pfctl: /dev/pf: Permission denied"));
        assert_eq!(combine_listings("", "\n"), None);
        assert_eq!(
            combine_listings(
                "rdr pass on em0 inet proto tcp from any to any port = 80 -> 10.0.0.5\n",
                ""
            )
            .as_deref(),
            Some("rdr pass on em0 inet proto tcp from any to any port = 80 -> 10.0.0.5\n")
        );
        assert_eq!(combine_listings("a\n", "b\n").as_deref(), Some("a\nb\n"));
    }
}
