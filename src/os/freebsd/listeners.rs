//! Listening sockets on FreeBSD: runs sockstat(1) (`-46lqnw`, and `-j
//! <jail>` per running jail for attribution) through the runner and hands
//! the text to the parser in `core::listeners`; merges per-jail rows into
//! the host list with `freebsd_plan::attribute_jail_listeners`.
//!
//! It parses nothing itself. The parsers are written in
//! `core::listeners` on another branch; until they are merged, the two
//! functions in [`pending`] stand in for them and fail loudly, so a
//! missing parser can never look like "no listeners" to the port check.

use crate::core::listeners::{ForeignRedirect, Listener, Stack};
use crate::core::names::JailName;
use crate::os::freebsd_plan as plan;
use crate::os::runner;
use crate::os::OsError;

/// Absolute path: jnet runs as root and must not pick sockstat from PATH.
pub const SOCKSTAT: &str = "/usr/bin/sockstat";
/// Prints the installed userland release.
pub const FREEBSD_VERSION: &str = "/bin/freebsd-version";

// TEMPORARY (lead: once branch `check` is merged, replace this line with
//   use crate::core::listeners::{parse_sockstat, SockstatContext, SockstatLayout};
// and `pending::parse_pf_nat` with the pf listing parser when it exists).
use self::pending::{parse_pf_nat, parse_sockstat, SockstatContext, SockstatLayout};

/// Stand-ins mirroring the signatures of the parsers in `core::listeners`
/// (branch `check`). The parsers return an error, never an empty list.
pub mod pending {
    use crate::core::listeners::{ForeignRedirect, Listener, Stack};

    /// Mirrors `core::listeners::SockstatLayout`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SockstatLayout {
        Printf,
        Libxo { wide: bool },
    }

    impl SockstatLayout {
        pub fn for_release(major: u32, wide: bool) -> Self {
            if major >= 15 {
                SockstatLayout::Libxo { wide }
            } else {
                SockstatLayout::Printf
            }
        }
    }

    /// Mirrors `core::listeners::SockstatContext`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SockstatContext {
        pub stack: Stack,
        pub jail: Option<String>,
    }

    /// Mirrors `core::listeners::parse_sockstat`.
    pub fn parse_sockstat(
        _text: &str,
        _layout: SockstatLayout,
        _ctx: &SockstatContext,
    ) -> Result<Vec<Listener>, String> {
        Err("sockstat parser not wired in yet (core::listeners::parse_sockstat)".into())
    }

    /// Expected: the rdr/nat rules of one `pfctl -s nat` listing, with
    /// `owner` (anchor path or "pf.conf") recorded on each.
    pub fn parse_pf_nat(_text: &str, _owner: &str) -> Result<Vec<ForeignRedirect>, String> {
        Err("pfctl -s nat parser not wired in yet".into())
    }
}

fn parse_err(what: &str, e: impl std::fmt::Display) -> OsError {
    OsError::Unsupported(format!("{what}: {e}"))
}

/// Raw `sockstat -46lqnw [-j jail]` output.
pub fn sockstat_text(jail: Option<&JailName>) -> Result<String, OsError> {
    let args = plan::sockstat_args(jail);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(runner::run(SOCKSTAT, &refs, None)?.stdout)
}

/// The major release of the userland (sockstat's layout changed in 15).
pub fn userland_major() -> Result<u32, OsError> {
    let out = runner::run(FREEBSD_VERSION, &["-u"], None)?.stdout;
    plan::release_major(&out).ok_or_else(|| {
        OsError::Unsupported(format!(
            "{FREEBSD_VERSION} -u: unexpected output {:?}",
            out.trim()
        ))
    })
}

/// Host-wide listeners, with those of the given running jails attributed.
/// `major` is the userland release from [`userland_major`].
pub fn listeners(jails: &[JailName], major: u32) -> Result<Vec<Listener>, OsError> {
    // `sockstat_args` always passes -w: no truncated addresses on 15.
    let layout = SockstatLayout::for_release(major, true);
    // why: jails first, host last — see attribute_jail_listeners.
    let mut per_jail = Vec::with_capacity(jails.len());
    for j in jails {
        let ctx = SockstatContext {
            stack: Stack::Host,
            jail: Some(j.to_string()),
        };
        let rows = parse_sockstat(&sockstat_text(Some(j))?, layout, &ctx)
            .map_err(|e| parse_err(&format!("sockstat -j {j}"), e))?;
        per_jail.push((j, rows));
    }
    let ctx = SockstatContext {
        stack: Stack::Host,
        jail: None,
    };
    let mut host = parse_sockstat(&sockstat_text(None)?, layout, &ctx)
        .map_err(|e| parse_err("sockstat", e))?;
    for (j, rows) in per_jail {
        plan::attribute_jail_listeners(&mut host, j, rows);
    }
    Ok(host)
}

/// Redirections in pf that are not under jnet's anchor root.
pub fn foreign_redirects(anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError> {
    let mut out = Vec::new();
    for (owner, text) in super::pf::foreign_nat_listings(anchor_root)? {
        out.extend(
            parse_pf_nat(&text, &owner)
                .map_err(|e| parse_err(&format!("pfctl -s nat ({owner})"), e))?,
        );
    }
    Ok(out)
}
