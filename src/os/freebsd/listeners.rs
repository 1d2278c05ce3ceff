//! Listening sockets on FreeBSD: runs sockstat(1) (`-46lqnw -P tcp,udp`,
//! and `-j <jid|name>` per running jail for attribution) through the runner and hands
//! the text to the parser in `core::listeners`; merges per-jail rows into
//! the host list with `sockstat::attribute_jail_listeners`.
//!
//! It parses nothing itself: sockstat text goes to
//! `core::listeners::parse_sockstat`, pfctl listings to
//! `core::rules::pflist`. A parse failure is an error, never an empty list,
//! so a listing jnet cannot read never looks like "no listeners".

use super::sockstat as plan;
use crate::core::listeners::{ForeignRedirect, Listener, Stack};
use crate::core::names::JailName;
use crate::os::runner;
use crate::os::{OsError, RunningJail};

/// Absolute path: jnet runs as root and must not pick sockstat from PATH.
pub const SOCKSTAT: &str = "/usr/bin/sockstat";
/// Prints the installed userland release.
pub const FREEBSD_VERSION: &str = "/bin/freebsd-version";

use crate::core::listeners::{parse_sockstat, SockstatContext, SockstatLayout};
use crate::core::rules::pflist;

/// The redirections of one `pfctl -P [-a anchor] -s nat|rules` listing
/// that are not under jnet's anchor root. `owner` is the anchor path, or
/// "pf.conf" for the main ruleset.
fn parse_pf_listing(text: &str, owner: &str, anchor_root: &str) -> Result<Vec<ForeignRedirect>, pflist::PfListError> {
    let anchor = if owner == "pf.conf" { "" } else { owner };
    let listing = pflist::parse_listing(text, anchor)?;
    // why: one rule jnet cannot read must not abort the port check (F3);
    // it is named, so the admin can judge it.
    for e in &listing.unparsed {
        tracing::warn!(owner, error = %e, "pf rule not understood; its redirections are not checked");
    }
    Ok(pflist::foreign_redirects(&listing, anchor_root))
}

fn parse_err(what: &str, e: impl std::fmt::Display) -> OsError {
    OsError::Unsupported(format!("{what}: {e}"))
}

/// Raw `sockstat -46lqnw -P tcp,udp [-j jail]` output; `jail` is a name or
/// a jid.
pub fn sockstat_text(jail: Option<&str>) -> Result<String, OsError> {
    let args = plan::sockstat_args(jail);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(runner::run(SOCKSTAT, &refs, None)?.stdout)
}

/// The major release of the userland (sockstat's layout changed in 15).
pub fn userland_major() -> Result<u32, OsError> {
    let out = runner::run(FREEBSD_VERSION, &["-u"], None)?.stdout;
    plan::release_major(&out)
        .ok_or_else(|| OsError::Unsupported(format!("{FREEBSD_VERSION} -u: unexpected output {:?}", out.trim())))
}

/// Host-wide listeners, with those of the given running jails attributed.
/// `major` is the userland release from [`userland_major`].
pub fn listeners(jails: &[JailName], major: u32) -> Result<Vec<Listener>, OsError> {
    let sel: Vec<(String, String)> = jails.iter().map(|j| (j.to_string(), j.to_string())).collect();
    attributed(&sel, major)
}

/// Host-wide listeners with every given running jail's sockets attributed
/// to it, selecting each jail by jid (`sockstat -j <jid>`): sockstat has no
/// jail column, so without this a running jail's own listeners look like
/// someone else's (F13).
pub fn listeners_of_running(running: &[RunningJail], major: u32) -> Result<Vec<Listener>, OsError> {
    let sel: Vec<(String, String)> = running.iter().map(|r| (r.id.to_string(), r.name.clone())).collect();
    attributed(&sel, major)
}

/// `(selector for -j, jail name)` pairs.
fn attributed(jails: &[(String, String)], major: u32) -> Result<Vec<Listener>, OsError> {
    // `sockstat_args` always passes -w: no truncated addresses on 15.
    let layout = SockstatLayout::for_release(major, true);
    // why: jails first, host last — see attribute_jail_listeners.
    let mut per_jail = Vec::with_capacity(jails.len());
    for (sel, name) in jails {
        let ctx = SockstatContext {
            stack: Stack::Host,
            jail: Some(name.clone()),
        };
        let rows = parse_sockstat(&sockstat_text(Some(sel))?, layout, &ctx)
            .map_err(|e| parse_err(&format!("sockstat -j {sel} ({name})"), e))?;
        per_jail.push((name, rows));
    }
    let ctx = SockstatContext {
        stack: Stack::Host,
        jail: None,
    };
    let mut host = parse_sockstat(&sockstat_text(None)?, layout, &ctx).map_err(|e| parse_err("sockstat", e))?;
    for (name, rows) in per_jail {
        plan::attribute_running_jail_listeners(&mut host, name, rows);
    }
    Ok(host)
}

/// Redirections in pf that are not under jnet's anchor root: `rdr` rules
/// of `pfctl -P -s nat`, and `rdr-to`/`binat-to` filter rules of `pfctl -P
/// -s rules` (FreeBSD 15, F12; older releases simply list none).
pub fn foreign_redirects(anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError> {
    let mut out = Vec::new();
    for (owner, nat, rules) in super::pf::foreign_listings(anchor_root)? {
        out.extend(
            parse_pf_listing(&nat, &owner, anchor_root)
                .map_err(|e| parse_err(&format!("pfctl -s nat ({owner})"), e))?,
        );
        out.extend(
            parse_pf_listing(&rules, &owner, anchor_root)
                .map_err(|e| parse_err(&format!("pfctl -s rules ({owner})"), e))?,
        );
    }
    Ok(out)
}
