//! pf through pfctl(8), per-jail anchors `<root>/<jail>` only: validate
//! (`-n -f -`) then load (`-f -`) a whole anchor from stdin, flush it
//! (`-F all`, which pfctl limits to the anchor), list what it holds
//! (`-s nat`, `-s rules`), and fetch the nat/rdr listings of the main
//! ruleset and of every anchor jnet does not own (`-v -s Anchors`), and
//! check that pf.conf hooks jnet's anchors in.
//!
//! It never loads or flushes the main ruleset. Argument lists come from
//! `pfctl`; commands go through the one runner.

use super::pfctl as plan;
use crate::core::names::JailName;
use crate::os::runner;
use crate::os::OsError;

/// Absolute path: jnet runs as root and must not pick a pfctl from PATH.
pub const PFCTL: &str = "/sbin/pfctl";

/// What [`OsError::Missing`] names when pf.ko is not loaded.
pub const PF_ABSENT: &str = "pf (/dev/pf is missing: pf.ko is not loaded)";

/// Runs pfctl. A failure to open `/dev/pf` (pf not loaded, see
/// `plan::is_pf_absent`) comes back as `OsError::Missing(PF_ABSENT)`, the
/// same typed outcome as a missing pfctl binary: "no firewall on this
/// host", which the engine treats as such for jails that need no rules and
/// as "not checked" in the port check (F2).
fn pfctl(args: &[String], stdin: Option<&str>) -> Result<runner::Output, OsError> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    runner::run(PFCTL, &refs, stdin).map_err(pf_absent_as_missing)
}

fn pf_absent_as_missing(e: OsError) -> OsError {
    match e {
        OsError::Command { ref stderr, .. } if plan::is_pf_absent(stderr) => OsError::Missing(PF_ABSENT.to_string()),
        e => e,
    }
}

/// Validates `rules` for the jail's anchor, then swaps them in.
pub fn load(root: &str, jail: &JailName, rules: &str) -> Result<(), OsError> {
    let anchor = plan::anchor_path(root, jail).map_err(super::plan_err)?;
    pfctl(&plan::pfctl_validate(&anchor), Some(rules))?;
    pfctl(&plan::pfctl_load(&anchor), Some(rules))?;
    tracing::info!(%anchor, "pf anchor loaded");
    Ok(())
}

/// Empties the jail's anchor.
pub fn flush(root: &str, jail: &JailName) -> Result<(), OsError> {
    let anchor = plan::anchor_path(root, jail).map_err(super::plan_err)?;
    pfctl(&plan::pfctl_flush(&anchor), None)?;
    tracing::info!(%anchor, "pf anchor flushed");
    Ok(())
}

/// A listing of one anchor (or the main ruleset); a missing anchor lists
/// as empty.
fn show(anchor: Option<&str>, what: &str) -> Result<String, OsError> {
    match pfctl(&plan::pfctl_show(anchor, what), None) {
        Ok(out) => Ok(out.stdout),
        Err(OsError::Command { stderr, .. }) if plan::is_missing_anchor(&stderr) => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// The jail anchor's nat/rdr and filter rules as pfctl prints them; `None`
/// when the anchor is empty or absent.
pub fn loaded(root: &str, jail: &JailName) -> Result<Option<String>, OsError> {
    let anchor = plan::anchor_path(root, jail).map_err(super::plan_err)?;
    Ok(plan::combine_listings(
        &show(Some(&anchor), "nat")?,
        &show(Some(&anchor), "rules")?,
    ))
}

/// `(owner, pfctl -P -s nat text, pfctl -P -s rules text)` for the main
/// ruleset ("pf.conf") and for every anchor outside `root`, for the
/// foreign-redirect parser. The filter listing is read too because FreeBSD
/// 15 accepts OpenBSD-style `rdr-to`/`binat-to` on filter rules, which `-s
/// nat` does not list (it walks only the PF_NAT/PF_RDR/PF_BINAT rulesets:
/// sbin/pfctl/pfctl.c pfctl_show_nat(), FreeBSD main e7646b05 l.1313;
/// freebsd-src a6c9cdc4 sbin/pfctl/tests/files/pf1079.ok) (F12).
pub fn foreign_listings(root: &str) -> Result<Vec<(String, String, String)>, OsError> {
    plan::check_anchor_root(root).map_err(super::plan_err)?;
    let mut out = vec![("pf.conf".to_string(), show(None, "nat")?, show(None, "rules")?)];
    let anchors = plan::parse_anchor_list(&pfctl(&plan::pfctl_list_anchors(), None)?.stdout);
    for anchor in plan::foreign_anchors(&anchors, root) {
        let nat = show(Some(&anchor), "nat")?;
        let rules = show(Some(&anchor), "rules")?;
        out.push((anchor, nat, rules));
    }
    Ok(out)
}

/// The pf.conf hook lines for `root` that the main ruleset lacks (empty
/// when both nat-anchor and rdr-anchor are there; the filter hook is not
/// needed, see `missing_anchor_hooks`); jnet prints them, it never edits
/// pf.conf.
pub fn missing_hooks(root: &str) -> Result<Vec<String>, OsError> {
    plan::check_anchor_root(root).map_err(super::plan_err)?;
    Ok(plan::missing_anchor_hooks(root, &show(None, "nat")?))
}
