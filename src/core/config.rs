//! jnet.toml and profile schema, parsing and validation.
//!
//! Text in, validated [`Config`] out: unknown keys, bad CIDRs, overlapping
//! pools, ranges outside their network and bad port specs are rejected with
//! the file, line and key. Finding and reading the files is the caller's job
//! (`engine::sources`); merging a jail's profile into its settings is here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::PathBuf;

use ipnetwork::{Ipv4Network, Ipv6Network};
use serde::Deserialize;
use toml::Spanned;

use crate::core::model::AddressFamily;
use crate::core::names::{IfName, JailName, PoolName};
use crate::core::ports::{Expose, PortSpec};
use crate::core::range::{Ipv4Range, Ipv6Range, RangeSet, Span, Unit};

/// A config or profile error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Converts byte offsets into 1-based line/column for error messages and
/// jail locations.
///
/// why: the offsets of line starts are found once, on first use, and each
/// lookup is a binary search. Scanning the text from its start for every
/// value was quadratic: 61% of a 1,000-jail `assign` (issue 10).
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
    line_starts: std::cell::OnceCell<Vec<usize>>,
}

/// Offsets below which [`Locator::at`] counts lines directly.
const NEAR: usize = 16 << 10;

impl<'a> Locator<'a> {
    fn new(file: &'a str, text: &'a str) -> Self {
        Locator {
            file,
            text,
            line_starts: std::cell::OnceCell::new(),
        }
    }

    fn at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let off = span.start.min(self.text.len());
        // why: locations near the top (the `[host]` and pool tables of a
        // config whose jails come after them) need no index of all lines.
        if self.line_starts.get().is_none() && off < NEAR {
            let before = &self.text.as_bytes()[..off];
            let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            return ConfigError {
                file: self.file.to_string(),
                line: before.iter().filter(|&&b| b == b'\n').count() + 1,
                column: off - line_start + 1,
                message: message.into(),
            };
        }
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        // Index of the last line start at or before `off`.
        let idx = starts.partition_point(|&st| st <= off) - 1;
        let line = idx + 1;
        let column = off - starts[idx] + 1;
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
    fn toml(&self, e: toml::de::Error) -> ConfigError {
        let msg = e.message().trim_end_matches('\n').replace('\n', "; ");
        self.at(e.span().unwrap_or(0..0), msg)
    }
}

// ---- raw (serde) shape -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    host: Spanned<RawHost>,
    #[serde(default)]
    pools: BTreeMap<Spanned<String>, Spanned<RawPool>>,
    #[serde(default)]
    jails: BTreeMap<Spanned<String>, Spanned<RawJail>>,
    /// Validated by `store::postgres::StoreConfig` (issue 11).
    store: Option<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    external_interface: Spanned<String>,
    jail_conf: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    anchor: Option<Spanned<String>>,
    nat_first_address: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    network: Spanned<String>,
    interface: Spanned<String>,
    #[serde(default)]
    ranges: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    gateway: Option<Spanned<String>>,
    #[serde(default)]
    nat: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJail {
    profile: Option<Spanned<String>>,
    pool: Option<Spanned<String>>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    #[serde(default)]
    expose: Vec<Spanned<String>>,
    nat: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: Option<String>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    #[serde(default)]
    expose: Vec<Spanned<String>>,
    nat: Option<bool>,
}

// ---- validated shape ---------------------------------------------------

/// The `[host]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    pub external_interface: IfName,
    pub jail_conf: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// Anchor root (pf) / table name (nft); a validated name.
    pub anchor: String,
    /// Outbound nat translates to the external interface's first address
    /// (pf `($if:0)`) rather than to all of them in turn. Default true:
    /// jails' aliases often sit on that interface, and without `:0` pf
    /// would hand their addresses out as nat sources round-robin.
    pub nat_first_address: bool,
}

/// What a pool needs of its address family beyond the integer arithmetic
/// of [`Unit`]: the network type and which of its addresses are never a
/// host's. Implemented for `u32` (IPv4) and `u128` (IPv6).
pub trait PoolFamily: Unit {
    type Network: Copy + fmt::Display + fmt::Debug + PartialEq + Eq + std::str::FromStr;
    /// The family as jnet names it.
    const AF: AddressFamily;
    fn prefix(n: &Self::Network) -> u8;
    /// First and last address of the network.
    fn span(n: &Self::Network) -> Span<Self>;
    /// The network's base address as given (host bits possibly set).
    fn given(n: &Self::Network) -> Self;
    /// The addresses of the network a host may hold: IPv4 without network
    /// and broadcast (but all of a /31, RFC 3021, and /32); IPv6 without the
    /// subnet-router anycast address, the network address (RFC 4291 2.6.1),
    /// but all of a /127 (RFC 6164) and /128. IPv6 has no broadcast.
    fn hosts(n: &Self::Network) -> Span<Self>;
    /// The first block of non-unicast addresses `n` overlaps, described.
    fn non_unicast(n: &Self::Network) -> Option<(String, &'static str)>;
    /// The CIDR syntax of the family, for messages.
    const CIDR: &'static str;
    /// `a` if it is of this family.
    fn of_ip(a: std::net::IpAddr) -> Option<Self::Addr>;
}

impl PoolFamily for u32 {
    type Network = Ipv4Network;
    const AF: AddressFamily = AddressFamily::Inet;
    const CIDR: &'static str = "a.b.c.d/len";
    fn prefix(n: &Ipv4Network) -> u8 {
        n.prefix()
    }
    fn span(n: &Ipv4Network) -> Ipv4Range {
        Ipv4Range {
            start: u32::from(n.network()),
            end: u32::from(n.broadcast()),
        }
    }
    fn given(n: &Ipv4Network) -> u32 {
        u32::from(n.ip())
    }
    fn hosts(n: &Ipv4Network) -> Ipv4Range {
        host_range(*n)
    }
    fn non_unicast(n: &Ipv4Network) -> Option<(String, &'static str)> {
        non_unicast_block(*n).map(|(b, w)| (b.to_string(), w))
    }
    fn of_ip(a: std::net::IpAddr) -> Option<Ipv4Addr> {
        match a {
            std::net::IpAddr::V4(a) => Some(a),
            std::net::IpAddr::V6(_) => None,
        }
    }
}

impl PoolFamily for u128 {
    type Network = Ipv6Network;
    const AF: AddressFamily = AddressFamily::Inet6;
    const CIDR: &'static str = "such as fd00:1::/64";
    fn prefix(n: &Ipv6Network) -> u8 {
        n.prefix()
    }
    fn span(n: &Ipv6Network) -> Ipv6Range {
        let base = u128::from(n.network());
        let hostmask = u128::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
        Ipv6Range {
            start: base,
            end: base | hostmask,
        }
    }
    fn given(n: &Ipv6Network) -> u128 {
        u128::from(n.ip())
    }
    fn hosts(n: &Ipv6Network) -> Ipv6Range {
        let all = <u128 as PoolFamily>::span(n);
        if n.prefix() >= 127 {
            all
        } else {
            Ipv6Range {
                start: all.start + 1,
                end: all.end,
            }
        }
    }
    fn non_unicast(n: &Ipv6Network) -> Option<(String, &'static str)> {
        NON_UNICAST_V6.iter().find_map(|&(a, len, what)| {
            let block = Ipv6Network::new(a, len).expect("constant prefix is valid");
            (block.contains(n.network()) || n.contains(block.network())).then(|| (block.to_string(), what))
        })
    }
    fn of_ip(a: std::net::IpAddr) -> Option<Ipv6Addr> {
        match a {
            std::net::IpAddr::V6(a) => Some(a),
            std::net::IpAddr::V4(_) => None,
        }
    }
}

/// One `[pools.<name>]` table with its derived set of assignable addresses,
/// of one family: [`Pool`] (IPv4) or [`Pool6`] (IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOf<T: PoolFamily> {
    pub name: PoolName,
    pub network: T::Network,
    pub interface: IfName,
    pub ranges: Vec<Span<T>>,
    pub exclude: Vec<Span<T>>,
    pub gateway: Option<T::Addr>,
    pub nat: bool,
    /// Addresses the allocator may hand out: ranges (default: every host
    /// address) minus the network's non-host addresses, exclusions and the
    /// gateway.
    pub assignable: RangeSet<T>,
    /// Where the pool was defined, for messages.
    pub location: String,
}

/// An IPv4 pool.
pub type Pool = PoolOf<u32>;
/// An IPv6 pool.
pub type Pool6 = PoolOf<u128>;

impl<T: PoolFamily> PoolOf<T> {
    /// Host addresses of the network (see [`PoolFamily::hosts`]).
    pub fn host_range(&self) -> Span<T> {
        T::hosts(&self.network)
    }
    pub fn contains(&self, a: T::Addr) -> bool {
        T::span(&self.network).contains(a.into())
    }
}

fn host_range(n: Ipv4Network) -> Ipv4Range {
    let net = u32::from(n.network());
    let bcast = u32::from(n.broadcast());
    if n.prefix() >= 31 {
        Ipv4Range { start: net, end: bcast }
    } else {
        Ipv4Range {
            start: net + 1,
            end: bcast - 1,
        }
    }
}

/// Settings shared by a jail entry and a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSettings {
    pub ports: Vec<PortSpec>,
    pub expose: Vec<Expose>,
    pub nat: Option<bool>,
}

/// One `[jails.<name>]` table (before merging its profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailConfig {
    pub name: JailName,
    pub profile: Option<String>,
    pub pool: Option<PoolName>,
    pub settings: NetSettings,
    pub location: String,
}

/// A profile from `profiles/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub description: Option<String>,
    pub settings: NetSettings,
}

/// A validated jnet.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub file: String,
    pub host: HostConfig,
    /// The IPv4 pools.
    pub pools: BTreeMap<PoolName, Pool>,
    /// The IPv6 pools; a pool name is unique across both maps.
    pub pools6: BTreeMap<PoolName, Pool6>,
    pub jails: BTreeMap<JailName, JailConfig>,
    /// `[store]`: which backend keeps the leases (default the file).
    pub store: crate::store::postgres::StoreConfig,
}

impl Config {
    /// The pool whose network contains `a`.
    pub fn pool_of(&self, a: Ipv4Addr) -> Option<&Pool> {
        // why: pools never overlap (validated), so at most one matches.
        self.pools.values().find(|p| p.contains(a))
    }

    /// The IPv6 pool whose network contains `a`.
    pub fn pool6_of(&self, a: Ipv6Addr) -> Option<&Pool6> {
        self.pools6.values().find(|p| p.contains(a))
    }

    /// The family of pool `name`, if there is one by that name.
    pub fn pool_family(&self, name: &PoolName) -> Option<AddressFamily> {
        if self.pools.contains_key(name) {
            Some(AddressFamily::Inet)
        } else if self.pools6.contains_key(name) {
            Some(AddressFamily::Inet6)
        } else {
            None
        }
    }
}

/// Validates a name used as pf anchor root / nft table.
pub fn valid_anchor(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

fn name<T, E: fmt::Display>(
    loc: &Locator,
    s: &Spanned<String>,
    f: impl Fn(&str) -> Result<T, E>,
) -> Result<T, ConfigError> {
    f(s.get_ref()).map_err(|e| loc.at(s.span(), e.to_string()))
}

fn settings(
    loc: &Locator,
    ports: &[Spanned<String>],
    expose: &[Spanned<String>],
    nat: Option<bool>,
) -> Result<NetSettings, ConfigError> {
    let ports = ports
        .iter()
        .map(|p| name(loc, p, |s| s.parse::<PortSpec>().map_err(|e| format!("ports: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let expose = expose
        .iter()
        .map(|p| name(loc, p, |s| s.parse::<Expose>().map_err(|e| format!("expose: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NetSettings { ports, expose, nat })
}

/// Parses and validates the text of a jnet.toml named `file`.
///
/// why two readers: the `toml` crate took 30 ms (and its serde mapping as
/// long again) for 10,000 jails (issue 10). Text in the plain subset of
/// TOML that jnet.toml files are written in is read by
/// [`toml_subset`](crate::core::toml_subset) and mapped onto the same raw
/// shape; anything else, and any text whose validation fails, is read
/// again by `toml` and validated from scratch, so every error (and every
/// file:line:column) comes from the one full path. Debug builds (tests,
/// fuzzing) check that both readers agree on every text the fast one takes.
pub fn parse_config(file: &str, text: &str) -> Result<Config, ConfigError> {
    if let Some((raw, jail_tables)) = fast::raw_config(text) {
        if let Ok(mut c) = validate_config(file, text, raw) {
            if let Some(jails) = fast::jails(file, &c.pools, &c.pools6, &jail_tables) {
                c.jails = jails;
                #[cfg(debug_assertions)]
                assert_eq!(
                    parse_config_full(file, text).as_ref(),
                    Ok(&c),
                    "fast jnet.toml reader disagrees"
                );
                return Ok(c);
            }
        }
    }
    parse_config_full(file, text)
}

/// [`parse_config`] through the `toml` crate only.
fn parse_config_full(file: &str, text: &str) -> Result<Config, ConfigError> {
    let loc = Locator::new(file, text);
    let raw: RawConfig = toml::from_str(text).map_err(|e| loc.toml(e))?;
    validate_config(file, text, raw)
}

/// The raw shape (from either reader) validated into a [`Config`].
fn validate_config(file: &str, text: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let loc = Locator::new(file, text);
    let h = raw.host.get_ref();
    let anchor = match &h.anchor {
        Some(a) if !valid_anchor(a.get_ref()) => {
            return Err(loc.at(
                a.span(),
                format!(
                    "host.anchor {:?}: must be 1-32 letters, digits, '_' or '-', starting with a letter",
                    a.get_ref()
                ),
            ))
        }
        Some(a) => a.get_ref().clone(),
        None => "jnet".to_string(),
    };
    let host = HostConfig {
        external_interface: name(&loc, &h.external_interface, |s| {
            IfName::new(s).map_err(|e| format!("host.external_interface: {e}"))
        })?,
        jail_conf: h.jail_conf.as_ref().map(|p| PathBuf::from(p.get_ref())),
        state_dir: h.state_dir.as_ref().map(|p| PathBuf::from(p.get_ref())),
        anchor,
        nat_first_address: h.nat_first_address.unwrap_or(true),
    };

    let mut pools: BTreeMap<PoolName, Pool> = BTreeMap::new();
    let mut pools6: BTreeMap<PoolName, Pool6> = BTreeMap::new();
    let mut spans: BTreeMap<PoolName, Range<usize>> = BTreeMap::new();
    for (key, raw) in &raw.pools {
        let pname = name(&loc, key, PoolName::new)?;
        // why by the text: an IPv6 network has a colon, an IPv4 one never.
        if raw.get_ref().network.get_ref().contains(':') {
            let pool = validate_pool::<u128>(&loc, pname.clone(), key.span(), raw.get_ref())?;
            no_overlap(&loc, &pools6, &spans, &pool, raw.get_ref())?;
            spans.insert(pname.clone(), raw.get_ref().network.span());
            pools6.insert(pname, pool);
        } else {
            let pool = validate_pool::<u32>(&loc, pname.clone(), key.span(), raw.get_ref())?;
            no_overlap(&loc, &pools, &spans, &pool, raw.get_ref())?;
            spans.insert(pname.clone(), raw.get_ref().network.span());
            pools.insert(pname, pool);
        }
    }

    let mut jails = BTreeMap::new();
    for (key, raw) in &raw.jails {
        let jname = name(&loc, key, JailName::new)?;
        let r = raw.get_ref();
        let pool = match &r.pool {
            Some(p) => {
                let pn = name(&loc, p, PoolName::new)?;
                if !pools.contains_key(&pn) && !pools6.contains_key(&pn) {
                    return Err(loc.at(p.span(), format!("jails.{jname}.pool: no pool named {pn}")));
                }
                Some(pn)
            }
            None => None,
        };
        let profile = match &r.profile {
            Some(p) if !valid_anchor(p.get_ref()) => {
                return Err(loc.at(
                    p.span(),
                    format!("jails.{jname}.profile: invalid profile name {:?}", p.get_ref()),
                ))
            }
            p => p.as_ref().map(|p| p.get_ref().clone()),
        };
        let location = format!("{file}:{}", loc.at(key.span(), "").line);
        jails.insert(
            jname.clone(),
            JailConfig {
                name: jname,
                profile,
                pool,
                settings: settings(&loc, &r.ports, &r.expose, r.nat)?,
                location,
            },
        );
    }
    let store = match &raw.store {
        None => crate::store::postgres::StoreConfig::from_table(file, &toml::Table::new()),
        Some(t) => crate::store::postgres::StoreConfig::from_table(file, t.get_ref()),
    }
    .map_err(|e| {
        let span = raw.store.as_ref().map_or(0..0, |t| t.span());
        let msg = e.message();
        let msg = msg.strip_prefix(&format!("{file}: ")).unwrap_or(msg);
        loc.at(span, msg.to_string())
    })?;
    // why: the shared lease bookkeeping (one lease per jail, low-water
    // marks) is IPv4's; an IPv6 pool would not be shared, and two hosts
    // could hand out one address.
    if store.backend == crate::store::postgres::BackendKind::Postgres {
        if let Some((name, _)) = pools6.iter().next() {
            return Err(loc.at(
                spans[name].clone(),
                format!(
                    "pools.{name}: IPv6 pools cannot be shared through PostgreSQL ([store] backend = \"postgres\") \
                     in this version of jnet; use the file store for IPv6 pools, or assign IPv6 addresses by hand"
                ),
            ));
        }
    }
    Ok(Config {
        file: file.to_string(),
        host,
        pools,
        pools6,
        jails,
        store,
    })
}

/// Refuses `pool` when its network overlaps one of `others` (same family).
fn no_overlap<T: PoolFamily>(
    loc: &Locator,
    others: &BTreeMap<PoolName, PoolOf<T>>,
    spans: &BTreeMap<PoolName, Range<usize>>,
    pool: &PoolOf<T>,
    raw: &RawPool,
) -> Result<(), ConfigError> {
    let mine = T::span(&pool.network);
    for (other, o) in others {
        if T::span(&o.network).overlaps(&mine) {
            let oline = loc.at(spans[other].clone(), "").line;
            return Err(loc.at(
                raw.network.span(),
                format!(
                    "pools.{}.network {} overlaps pool {other} ({}, line {oline})",
                    pool.name, pool.network, o.network
                ),
            ));
        }
    }
    Ok(())
}

/// jnet.toml through [`toml_subset`](crate::core::toml_subset) onto
/// [`RawConfig`]: `None` (read it with `toml` instead) for any table, key or
/// value type the schema does not have, duplicates, missing required keys,
/// or text outside the subset. To read a new table fast, add an arm for its
/// header below; until then such files simply take the full path.
mod fast {
    use std::collections::BTreeMap;
    use std::ops::Range;

    use toml::Spanned;

    use super::{valid_anchor, JailConfig, NetSettings, Pool, Pool6, RawConfig, RawHost, RawPool};
    use crate::core::names::{JailName, PoolName};
    use crate::core::ports::{Expose, PortSpec};
    use crate::core::toml_subset::{self, Entry, Table, Val};

    fn str_of(v: &Val) -> Option<Spanned<String>> {
        match v {
            Val::Str(s, span) => Some(Spanned::new(span.clone(), s.to_string())),
            _ => None,
        }
    }

    fn bool_of(v: &Val) -> Option<bool> {
        match v {
            Val::Bool(b, _) => Some(*b),
            _ => None,
        }
    }

    fn list_of(v: &Val) -> Option<Vec<Spanned<String>>> {
        match v {
            Val::Array(items, _) => Some(
                items
                    .iter()
                    .map(|(s, span)| Spanned::new(span, s.to_string()))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Sets `slot` once: a second value for the same key gives up.
    fn once<T>(slot: &mut Option<T>, v: Option<T>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(v?);
        Some(())
    }

    fn host(entries: &[Entry]) -> Option<RawHost> {
        let (mut ext, mut jail_conf, mut state_dir, mut anchor, mut nat_first) = (None, None, None, None, None);
        for e in entries {
            match e.key {
                "external_interface" => once(&mut ext, str_of(&e.value))?,
                "jail_conf" => once(&mut jail_conf, str_of(&e.value))?,
                "state_dir" => once(&mut state_dir, str_of(&e.value))?,
                "anchor" => once(&mut anchor, str_of(&e.value))?,
                "nat_first_address" => once(&mut nat_first, bool_of(&e.value))?,
                _ => return None,
            }
        }
        Some(RawHost {
            external_interface: ext?,
            jail_conf,
            state_dir,
            anchor,
            nat_first_address: nat_first,
        })
    }

    fn pool(entries: &[Entry]) -> Option<RawPool> {
        let (mut network, mut interface, mut ranges, mut exclude, mut gateway, mut nat) =
            (None, None, None, None, None, None);
        for e in entries {
            match e.key {
                "network" => once(&mut network, str_of(&e.value))?,
                "interface" => once(&mut interface, str_of(&e.value))?,
                "ranges" => once(&mut ranges, list_of(&e.value))?,
                "exclude" => once(&mut exclude, list_of(&e.value))?,
                "gateway" => once(&mut gateway, str_of(&e.value))?,
                "nat" => once(&mut nat, bool_of(&e.value))?,
                _ => return None,
            }
        }
        Some(RawPool {
            network: network?,
            interface: interface?,
            ranges: ranges.unwrap_or_default(),
            exclude: exclude.unwrap_or_default(),
            gateway,
            nat: nat.unwrap_or(false),
        })
    }

    fn insert<T>(map: &mut BTreeMap<Spanned<String>, Spanned<T>>, key: (&str, Range<usize>), v: T) -> Option<()> {
        let span = key.1.clone();
        match map.insert(Spanned::new(key.1, key.0.to_string()), Spanned::new(span, v)) {
            None => Some(()),
            Some(_) => None, // the same table twice
        }
    }

    /// The host and pool tables as [`RawConfig`] (with no jails), and the
    /// `[jails.*]` tables for [`jails`].
    pub(super) fn raw_config(text: &str) -> Option<(RawConfig, Vec<Table<'_>>)> {
        let tables = toml_subset::parse(text)?;
        let mut host_table = None;
        let mut pools = BTreeMap::new();
        let mut jails = Vec::new();
        for (i, t) in tables.into_iter().enumerate() {
            match t.header.as_slice() {
                [] if i == 0 && t.entries.is_empty() => {}
                [("host", span)] => once(&mut host_table, Some(Spanned::new(span.clone(), host(&t.entries)?)))?,
                [("pools", _), (name, span)] => insert(&mut pools, (name, span.clone()), pool(&t.entries)?)?,
                [("jails", _), _] => jails.push(t),
                _ => return None,
            }
        }
        // why no store: a `[store]` table is outside the subset (the match
        // above returns None), so such a file takes the full path.
        let raw = RawConfig {
            host: host_table?,
            pools,
            jails: BTreeMap::new(),
            store: None,
        };
        Some((raw, jails))
    }

    /// The `[jails.*]` tables validated as `validate_config` does, or None
    /// at the first thing it would refuse (a bad name, port or exposure, an
    /// unknown pool, a bad profile name, a duplicate): the full path then
    /// reports it. why not through [`RawJail`]: its strings and the serde
    /// shape cost more than the rest of the work for 10,000 jails.
    pub(super) fn jails(
        file: &str,
        pools: &BTreeMap<PoolName, Pool>,
        pools6: &BTreeMap<PoolName, Pool6>,
        tables: &[Table],
    ) -> Option<BTreeMap<JailName, JailConfig>> {
        let mut out = BTreeMap::new();
        for t in tables {
            let [_, (name, _)] = t.header.as_slice() else {
                return None;
            };
            let jname = JailName::new(name).ok()?;
            let (mut profile, mut pool, mut ports, mut expose, mut nat) = (None, None, None, None, None);
            for e in &t.entries {
                match (e.key, &e.value) {
                    ("profile", Val::Str(p, _)) if valid_anchor(p) => once(&mut profile, Some(p.to_string()))?,
                    ("pool", Val::Str(p, _)) => {
                        let pn = PoolName::new(p).ok()?;
                        if !pools.contains_key(&pn) && !pools6.contains_key(&pn) {
                            return None;
                        }
                        once(&mut pool, Some(pn))?
                    }
                    ("ports", Val::Array(items, _)) => once(
                        &mut ports,
                        items
                            .iter()
                            .map(|(s, _)| s.parse::<PortSpec>().ok())
                            .collect::<Option<Vec<_>>>(),
                    )?,
                    ("expose", Val::Array(items, _)) => once(
                        &mut expose,
                        items
                            .iter()
                            .map(|(s, _)| s.parse::<Expose>().ok())
                            .collect::<Option<Vec<_>>>(),
                    )?,
                    ("nat", Val::Bool(b, _)) => once(&mut nat, Some(*b))?,
                    _ => return None,
                }
            }
            let jail = JailConfig {
                name: jname.clone(),
                profile,
                pool,
                settings: NetSettings {
                    ports: ports.unwrap_or_default(),
                    expose: expose.unwrap_or_default(),
                    nat,
                },
                location: format!("{file}:{}", t.line),
            };
            if out.insert(jname, jail).is_some() {
                return None; // the same table twice
            }
        }
        Some(out)
    }
}

/// IPv4 blocks no pool may touch (H18): addresses there cannot be a jail's
/// unicast address. "This network" 0/8 and loopback 127/8 (RFC 1122
/// 3.2.1.3), multicast 224/4 (RFC 5771), reserved class E 240/4 with the
/// limited broadcast 255.255.255.255 inside it (RFC 1112 4, RFC 919 7).
const NON_UNICAST_V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\", 0.0.0.0/8"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved class E and the limited broadcast 255.255.255.255",
    ),
];

/// IPv6 blocks a pool may not overlap: what is not a unicast address a jail
/// can own and be reached at through an alias or a veth (RFC 4291 2.4;
/// IPv4-mapped addresses are also the key space the file store's index
/// gives IPv4, `store::file::index::key`).
const NON_UNICAST_V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "the unspecified address"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, "IPv4-mapped addresses"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// The first non-unicast block that `network` overlaps, with what it is.
fn non_unicast_block(network: Ipv4Network) -> Option<(Ipv4Network, &'static str)> {
    NON_UNICAST_V4.iter().find_map(|&(a, len, what)| {
        let block = Ipv4Network::new(a, len).expect("constant prefix is valid");
        // Two CIDR blocks overlap exactly when one contains the other's base.
        (block.contains(network.network()) || network.contains(block.network())).then_some((block, what))
    })
}

fn validate_pool<T: PoolFamily>(
    loc: &Locator,
    pname: PoolName,
    key_span: Range<usize>,
    r: &RawPool,
) -> Result<PoolOf<T>, ConfigError> {
    let at = |s: &Spanned<String>, m: String| loc.at(s.span(), format!("pools.{pname}.{m}"));
    let fam = T::FAMILY;
    let network: T::Network = r.network.get_ref().parse().map_err(|_| {
        at(
            &r.network,
            format!("network: {:?} is not an {fam} CIDR ({})", r.network.get_ref(), T::CIDR),
        )
    })?;
    if !r.network.get_ref().contains('/') {
        return Err(at(
            &r.network,
            format!("network: {:?} has no prefix length", r.network.get_ref()),
        ));
    }
    let net_range = T::span(&network);
    if T::given(&network) != net_range.start {
        return Err(at(
            &r.network,
            format!(
                "network: {network} has host bits set (did you mean {}/{}?)",
                T::Addr::from(net_range.start),
                T::prefix(&network)
            ),
        ));
    }
    if let Some((block, what)) = T::non_unicast(&network) {
        return Err(at(
            &r.network,
            format!("network: {network} overlaps {block} ({what}); a pool must hold unicast addresses only"),
        ));
    }
    let interface = IfName::new(r.interface.get_ref()).map_err(|e| at(&r.interface, format!("interface: {e}")))?;
    let hosts = T::hosts(&network);
    let parse_ranges = |what: &str, list: &[Spanned<String>]| -> Result<Vec<Span<T>>, ConfigError> {
        list.iter()
            .map(|s| {
                let r: Span<T> = s.get_ref().parse().map_err(|e| at(s, format!("{what}: {e}")))?;
                if !r.is_within(&net_range) {
                    return Err(at(s, format!("{what}: {r} is outside the pool network {network}")));
                }
                Ok(r)
            })
            .collect()
    };
    let ranges = parse_ranges("ranges", &r.ranges)?;
    let exclude = parse_ranges("exclude", &r.exclude)?;
    let gateway = match &r.gateway {
        Some(g) => {
            let a: T::Addr = g
                .get_ref()
                .parse()
                .map_err(|_| at(g, format!("gateway: {:?} is not an {fam} address", g.get_ref())))?;
            if !net_range.contains(a.into()) {
                return Err(at(g, format!("gateway: {a} is outside the pool network {network}")));
            }
            Some(a)
        }
        None => None,
    };
    let mut assignable = RangeSet::<T>::empty();
    if ranges.is_empty() {
        assignable.insert(hosts);
    } else {
        for r in &ranges {
            // Clip the non-host addresses out of explicit ranges.
            if let Some(c) = Span::new(r.start.max(hosts.start), r.end.min(hosts.end)) {
                assignable.insert(c);
            }
        }
    }
    for x in &exclude {
        assignable.remove(*x);
    }
    if let Some(g) = gateway {
        assignable.remove_addr(g);
    }
    let location = format!("{}:{}", loc.file, loc.at(key_span, "").line);
    Ok(PoolOf {
        name: pname,
        network,
        interface,
        ranges,
        exclude,
        gateway,
        nat: r.nat,
        assignable,
        location,
    })
}

/// Parses a profile file named `file` (profile name = file stem).
pub fn parse_profile(name: &str, file: &str, text: &str) -> Result<Profile, ConfigError> {
    let loc = Locator::new(file, text);
    let raw: RawProfile = toml::from_str(text).map_err(|e| loc.toml(e))?;
    Ok(Profile {
        name: name.to_string(),
        description: raw.description,
        settings: settings(&loc, &raw.ports, &raw.expose, raw.nat)?,
    })
}

/// A jail's effective network settings: its profile's, extended by its own
/// (duplicates dropped, order kept); its own `nat` wins over the profile's.
pub fn effective(jail: &JailConfig, profile: Option<&Profile>) -> NetSettings {
    let mut out = profile.map(|p| p.settings.clone()).unwrap_or_default();
    for p in &jail.settings.ports {
        if !out.ports.contains(p) {
            out.ports.push(*p);
        }
    }
    for e in &jail.settings.expose {
        if !out.expose.contains(e) {
            out.expose.push(*e);
        }
    }
    if jail.settings.nat.is_some() {
        out.nat = jail.settings.nat;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[host]
external_interface = "vtnet0"
anchor = "jnet"

[pools.lan]
network = "10.0.0.0/24"
interface = "vtnet0"
ranges = ["10.0.0.10-10.0.0.200"]
exclude = ["10.0.0.50", "10.0.0.60-10.0.0.70"]
gateway = "10.0.0.1"

[pools.priv]
network = "10.66.0.0/16"
interface = "lo1"
nat = true

[jails.www]
profile = "web"
ports = ["tcp/80", "tcp/443", "udp/53"]
expose = ["tcp/80", "tcp/8443:443"]
"#;

    #[test]
    fn parses_the_documented_shape() {
        let c = parse_config("jnet.toml", GOOD).unwrap();
        let lan = &c.pools[&PoolName::new("lan").unwrap()];
        // 191 in range, minus 1 + 11 excluded; gateway is outside the range.
        assert_eq!(lan.assignable.count(), 191 - 12);
        assert!(!lan.assignable.contains(u32::from(Ipv4Addr::new(10, 0, 0, 65))));
        let p = &c.pools[&PoolName::new("priv").unwrap()];
        assert_eq!(p.assignable.count(), 65534);
        assert!(p.nat);
        let www = &c.jails[&JailName::new("www").unwrap()];
        assert_eq!(www.settings.ports.len(), 3);
        assert_eq!(www.settings.expose[1].to_string(), "tcp/8443:443");
        assert_eq!(www.location, "jnet.toml:18");
    }

    fn err(text: &str) -> ConfigError {
        parse_config("j.toml", text).unwrap_err()
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let base = "[host]\nexternal_interface = \"em0\"\n";
        let cases: &[(&str, usize, &str)] = &[
            ("bogus = 1\n", 3, "bogus"),
            ("[pools.a]\nnetwork = \"10.0.0.0/33\"\ninterface = \"em0\"\n", 4, "pools.a.network"),
            ("[pools.a]\nnetwork = \"10.0.0.5/24\"\ninterface = \"em0\"\n", 4, "host bits"),
            ("[pools.a]\nnetwork = \"10.0.0.0/24\"\ninterface = \"em0\"\nranges = [\"10.0.1.1-10.0.1.9\"]\n", 6, "outside the pool network"),
            ("[pools.a]\nnetwork = \"10.0.0.0/24\"\ninterface = \"em0\"\n[pools.b]\nnetwork = \"10.0.0.128/25\"\ninterface = \"em0\"\n", 7, "overlaps pool a"),
            ("[pools.a]\nnetwork = \"10.0.0.0/24\"\ninterface = \"em0\"\ngateway = \"10.1.0.1\"\n", 6, "gateway"),
            ("[jails.w]\nports = [\"tcp/0\"]\n", 4, "ports"),
            ("[jails.w]\nexpose = [\"tcp/80-81:90\"]\n", 4, "different lengths"),
            ("[jails.\"a;b\"]\n", 3, "invalid jail name"),
            ("[jails.w]\npool = \"nope\"\n", 4, "no pool named nope"),
            ("[pools.a]\nnetwork = \"10.0.0.0/24\"\ninterface = \"em0;x\"\n", 5, "interface"),
        ];
        for (extra, line, needle) in cases {
            let e = err(&format!("{base}{extra}"));
            assert_eq!(e.file, "j.toml");
            assert_eq!(e.line, *line, "{extra}: {e}");
            assert!(e.to_string().contains(needle), "{extra}: {e}");
        }
        assert!(err("").message.contains("host"));
    }

    /// H18: the reported pools (127.0.0.0/8, 224.0.0.0/24, 240.0.0.0/4) and
    /// the other non-unicast blocks are refused at load with file:line:column,
    /// the key, and exit 78; neighbours just outside them still load.
    #[test]
    fn pool_networks_must_be_unicast() {
        let pool = |net: &str| {
            format!("[host]\nexternal_interface = \"em0\"\n[pools.p]\nnetwork = \"{net}\"\ninterface = \"lo1\"\n")
        };
        for (net, what) in [
            ("127.0.0.0/8", "loopback"),
            ("127.0.0.0/24", "loopback"),
            ("224.0.0.0/24", "multicast"),
            ("239.255.255.0/24", "multicast"),
            ("240.0.0.0/4", "class E"),
            ("255.255.255.255/32", "limited broadcast"),
            ("255.255.255.254/31", "class E"),
            ("0.0.0.0/8", "this network"),
            ("0.0.0.0/0", "this network"),
            ("96.0.0.0/3", "loopback"),
        ] {
            let e = err(&pool(net));
            assert_eq!((e.file.as_str(), e.line, e.column), ("j.toml", 4, 11), "{net}: {e}");
            assert!(
                e.message.starts_with(&format!("pools.p.network: {net} overlaps")),
                "{net}: {e}"
            );
            assert!(e.message.contains(what), "{net}: {e}");
        }
        for net in ["1.0.0.0/24", "126.255.255.0/24", "128.0.0.0/24", "223.255.255.0/24"] {
            assert!(parse_config("j.toml", &pool(net)).is_ok(), "{net}");
        }
    }

    /// The line index gives the same line:column as a scan from the start,
    /// at line starts, line ends, the last line and past the end.
    #[test]
    fn locator_line_index_matches_a_scan() {
        let text = "a\n\nbc\r\ndef\nlast";
        let loc = Locator::new("f", text);
        for off in 0..=text.len() + 2 {
            let o = off.min(text.len());
            let before = &text[..o];
            let line = before.matches('\n').count() + 1;
            let column = o - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let e = loc.at(off..off, "m");
            assert_eq!((e.line, e.column), (line, column), "offset {off}");
        }
        // Past NEAR the index is built; nearer offsets then use it too.
        let big = "ab\n".repeat(NEAR / 2);
        let loc = Locator::new("f", &big);
        for off in [0, 1, 3, 4, NEAR - 1, NEAR, NEAR + 5, big.len() - 1, 7, 2] {
            let before = &big[..off];
            let line = before.matches('\n').count() + 1;
            let column = off - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let e = loc.at(off..off, "m");
            assert_eq!((e.line, e.column), (line, column), "offset {off}");
        }
    }

    #[test]
    fn small_prefixes() {
        let c = parse_config(
            "j",
            "[host]\nexternal_interface=\"em0\"\n[pools.p]\nnetwork=\"192.0.2.0/31\"\ninterface=\"em0\"\n[pools.q]\nnetwork=\"192.0.2.8/32\"\ninterface=\"em0\"\n",
        )
        .unwrap();
        assert_eq!(c.pools[&PoolName::new("p").unwrap()].assignable.count(), 2);
        assert_eq!(c.pools[&PoolName::new("q").unwrap()].assignable.count(), 1);
    }

    #[test]
    fn profile_merge() {
        let p = parse_profile(
            "web",
            "web.toml",
            "ports = [\"tcp/80\", \"tcp/443\"]\nexpose = [\"tcp/80\"]\nnat = true\n",
        )
        .unwrap();
        let c = parse_config(
            "j",
            "[host]\nexternal_interface=\"em0\"\n[jails.w]\nports=[\"tcp/443\",\"tcp/8080\"]\nnat=false\n",
        )
        .unwrap();
        let e = effective(&c.jails[&JailName::new("w").unwrap()], Some(&p));
        let ports: Vec<String> = e.ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(ports, ["tcp/80", "tcp/443", "tcp/8080"]);
        assert_eq!(e.nat, Some(false));
        assert!(parse_profile("x", "x.toml", "port = []")
            .unwrap_err()
            .to_string()
            .starts_with("x.toml:1:1"));
    }

    /// Issue 9 B3: an IPv6 pool hands out neither its subnet-router anycast
    /// address nor its gateway nor exclusions; its top address is a host's;
    /// ranges and exclusions in IPv6 syntax; sizes are exact.
    #[test]
    fn ipv6_pools() {
        let base = "[host]\nexternal_interface = \"em0\"\n";
        let c = parse_config(
            "j.toml",
            &format!(
                "{base}[pools.lan]\nnetwork = \"10.0.0.0/24\"\ninterface = \"em0\"\n\
                 [pools.lan6]\nnetwork = \"fd00:1::/64\"\ninterface = \"em0\"\ngateway = \"fd00:1::1\"\n\
                 exclude = [\"fd00:1::10-fd00:1::1f\"]\nnat = true\n\
                 [pools.small6]\nnetwork = \"2001:db8:5::/120\"\ninterface = \"em1\"\nranges = [\"2001:db8:5::80-2001:db8:5::ff\"]\n\
                 [jails.w]\npool = \"lan6\"\n"
            ),
        )
        .unwrap();
        assert_eq!(c.pools.len(), 1);
        let p = &c.pools6[&PoolName::new("lan6").unwrap()];
        assert!(p.nat);
        let x = |s: &str| u128::from(s.parse::<Ipv6Addr>().unwrap());
        assert!(
            !p.assignable.contains(x("fd00:1::")),
            "subnet-router anycast handed out"
        );
        assert!(!p.assignable.contains(x("fd00:1::1")), "gateway handed out");
        assert!(!p.assignable.contains(x("fd00:1::10")) && !p.assignable.contains(x("fd00:1::1f")));
        assert!(p.assignable.contains(x("fd00:1::2")) && p.assignable.contains(x("fd00:1::20")));
        assert!(
            p.assignable.contains(x("fd00:1::ffff:ffff:ffff:ffff")),
            "IPv6 has no broadcast"
        );
        assert_eq!(p.assignable.size(), (1u128 << 64) - 1 - 1 - 16);
        assert_eq!(
            crate::core::alloc::lowest_free(p, &RangeSet::empty()),
            Some("fd00:1::2".parse().unwrap())
        );
        let small = &c.pools6[&PoolName::new("small6").unwrap()];
        assert_eq!(small.assignable.size(), 128);
        assert_eq!(
            c.pool_family(&PoolName::new("lan6").unwrap()),
            Some(AddressFamily::Inet6)
        );
        assert_eq!(c.pool_family(&PoolName::new("lan").unwrap()), Some(AddressFamily::Inet));
        assert!(c.pool6_of("fd00:1::5".parse().unwrap()).is_some());
        let refusal = crate::core::alloc::check(p, &RangeSet::empty(), "fd00:1::".parse().unwrap()).unwrap_err();
        assert!(refusal
            .describe("fd00:1::".parse().unwrap(), p)
            .contains("subnet-router anycast"));
        // A /127 and a /128 are all hosts (RFC 6164).
        let c = parse_config(
            "j.toml",
            &format!("{base}[pools.p2p]\nnetwork = \"2001:db8::/127\"\ninterface = \"em0\"\n"),
        )
        .unwrap();
        assert_eq!(c.pools6[&PoolName::new("p2p").unwrap()].assignable.size(), 2);
    }

    #[test]
    fn ipv6_pool_errors() {
        let base = "[host]\nexternal_interface = \"em0\"\n";
        let pool = |body: &str| format!("{base}[pools.v6]\ninterface = \"em0\"\n{body}");
        let cases = [
            ("network = \"ff02::/16\"\n", "multicast"),
            ("network = \"fe80::/64\"\n", "link-local"),
            ("network = \"::1/128\"\n", "loopback"),
            ("network = \"::ffff:0:0/104\"\n", "IPv4-mapped"),
            ("network = \"::/0\"\n", "unspecified"),
            ("network = \"fd00::5/64\"\n", "host bits set (did you mean fd00::/64?)"),
            (
                "network = \"fd00::/64\"\ngateway = \"fd01::1\"\n",
                "outside the pool network",
            ),
            (
                "network = \"fd00::/64\"\ngateway = \"10.0.0.1\"\n",
                "is not an IPv6 address",
            ),
            ("network = \"fd00::/64\"\nranges = [\"10.0.0.1-10.0.0.9\"]\n", "ranges"),
            ("network = \"fd00::/200\"\n", "is not an IPv6 CIDR"),
        ];
        for (body, needle) in cases {
            let e = err(&pool(body));
            assert!(e.to_string().contains(needle), "{body}: {e}");
            assert!(e.to_string().contains("pools.v6"), "{body}: {e}");
        }
        let e = err(&format!(
            "{base}[pools.a]\nnetwork = \"fd00::/48\"\ninterface = \"em0\"\n[pools.b]\nnetwork = \"fd00:0:0:1::/64\"\ninterface = \"em0\"\n"
        ));
        assert!(e.to_string().contains("overlaps pool a"), "{e}");
        let e = err(&format!(
            "{base}[pools.a]\nnetwork = \"fd00::/64\"\ninterface = \"em0\"\n[store]\nbackend = \"postgres\"\nurl = \"postgresql://h/db\"\n"
        ));
        assert!(
            e.to_string().contains("IPv6 pools cannot be shared through PostgreSQL"),
            "{e}"
        );
    }
}
