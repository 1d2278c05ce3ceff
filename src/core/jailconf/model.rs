//! The evaluated result: jails with their effective parameters, and typed
//! accessors for the parameters jnet cares about (jail(8) "Jail
//! Parameters": `ip4`, `ip4.addr`, `interface`, `path`, `host.hostname`,
//! `exec.*`, `vnet`).
//!
//! Values are kept as jail(8) holds them (strings); typed helpers interpret
//! them on demand and report malformed values with the file:line where the
//! parameter was last set.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use super::intern::FxMap;
use super::JailConfError;

/// Where something was defined.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// An effective parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A parameter given without a value: `persist;` is `true`,
    /// `nopersist;` / `allow.nomount;` are `false` (stored under the
    /// positive name: `persist`, `allow.mount`).
    Bool(bool),
    /// Exactly one value.
    Str(String),
    /// Two or more values (`a, b, c` or `+=`).
    List(Vec<String>),
}

/// The `ip4` mode of a jail (jail(8) `ip4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip4Mode {
    /// Share all host addresses (`ip4 = inherit`).
    Inherit,
    /// Restricted to `ip4.addr` (`ip4 = new`, or implied by `ip4.addr`).
    New,
    /// No IPv4 (`ip4 = disable`).
    Disable,
}

/// The `ip6` mode of a jail: jail(8) `ip6` ("the counterparts to ip4.addr,
/// ip4.saddrsel and ip4", usr.sbin/jail/jail.8): the same three values as
/// [`Ip4Mode`], derived the same way from `ip6` and `ip6.addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip6Mode {
    /// Share all host addresses (`ip6 = inherit`).
    Inherit,
    /// Restricted to `ip6.addr` (`ip6 = new`, or implied by `ip6.addr`).
    New,
    /// No IPv6 (`ip6 = disable`).
    Disable,
}

/// One `ip6.addr` entry: `[interface|]address[/prefixlen][ ifconfig-options]`.
/// usr.sbin/jail/config.c `ip_params` splits an `ip6.addr` value exactly as
/// an `ip4.addr` one (interface before `|`, mask after `/`, options after a
/// space); for IPv6 the mask is a prefix length (command.c hands it to
/// ifconfig as `inet6 addr/prefixlen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip6AddrEntry {
    /// The entry's own `iface|`, else the jail's `interface` parameter.
    pub interface: Option<String>,
    pub address: Ipv6Addr,
    /// Prefix length (`/64`), 0 to 128.
    pub prefix: Option<u8>,
    /// Extra ifconfig(8) words after the address.
    pub options: Vec<String>,
}

/// One `ip4.addr` entry: `[interface|]address[/netmask-or-prefix][ ifconfig-options]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip4AddrEntry {
    /// The interface the alias goes on: the entry's own `iface|`, else the
    /// jail's `interface` parameter (jail(8) uses it for bare entries).
    pub interface: Option<String>,
    pub address: Ipv4Addr,
    /// Prefix length, from `/24` or from a dotted netmask `/255.255.255.0`.
    pub prefix: Option<u8>,
    /// Extra ifconfig(8) words after the address (`vhid 1 ...`), passed by
    /// jail(8) to ifconfig when it adds the alias.
    pub options: Vec<String>,
}

/// Everything the jails of one parse share: the expanded values back to
/// back, and each jail's parameters as small fixed-size records over them.
///
/// why: owning a `String` per value and a `BTreeMap` node per parameter was
/// most of a 10,000-jail parse (issue 10: 220k allocations, 30 ms); the
/// records are filled in one pass and read by range. The owned
/// [`Value`] map is made per jail only when [`JailDef::params`] or
/// [`JailDef::get`] is asked for (tests, rare callers).
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// Expanded values (and variables), back to back.
    pub text: String,
    /// Each value: a range of `text`.
    pub spans: Vec<(u32, u32)>,
    /// Each jail's parameters, contiguous and sorted by name.
    pub params: Vec<Param>,
    /// Parameter names, sorted (`Param::name` indexes it, so a jail's
    /// parameters sorted by name are sorted by `Param::name`).
    pub names: Vec<Box<str>>,
    /// Index of each name in `names`.
    pub index: FxMap<Box<str>, u32>,
    /// File names (`Param::file` indexes it).
    pub files: Vec<String>,
}

/// One effective parameter of one jail, and where it was last set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: u32,
    pub value: Val,
    pub file: u32,
    pub line: usize,
}

/// A parameter's value in [`Store`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val {
    Bool(bool),
    /// A range of [`Store::spans`] with one value (a string) or more (a list).
    Vals(u32, u32),
}

/// Several values of a parameter, borrowed from the parse.
#[derive(Clone, Copy)]
pub struct Strs<'a> {
    text: &'a str,
    spans: &'a [(u32, u32)],
}

impl<'a> Strs<'a> {
    const EMPTY: Strs<'static> = Strs { text: "", spans: &[] };

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        let &(a, b) = self.spans.get(i)?;
        self.text.get(a as usize..b as usize)
    }

    pub fn last(&self) -> Option<&'a str> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let text = self.text;
        self.spans
            .iter()
            .map(move |&(a, b)| text.get(a as usize..b as usize).unwrap_or(""))
    }
}

impl PartialEq for Strs<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Strs<'_> {}

impl fmt::Debug for Strs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An effective parameter value, borrowed from the parse (see [`Value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Bool(bool),
    Str(&'a str),
    /// Two or more values.
    List(Strs<'a>),
}

impl ValueRef<'_> {
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Str(s) => Value::Str(s.to_string()),
            ValueRef::List(l) => Value::List(l.iter().map(str::to_string).collect()),
        }
    }
}

/// One jail's effective parameters.
#[derive(Clone)]
pub struct JailDef {
    pub name: String,
    /// Where the jail's block starts.
    pub location: Location,
    store: Arc<Store>,
    /// Range of [`Store::params`].
    range: (usize, usize),
    /// Made on demand (messages): the location of each parameter.
    locations: OnceLock<Box<[Location]>>,
    /// Made on demand: [`JailDef::params`].
    map: OnceLock<BTreeMap<String, Value>>,
}

impl PartialEq for JailDef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.location == other.location
            && self.own().len() == other.own().len()
            && self.iter().eq(other.iter())
            && self.sources().eq(other.sources())
    }
}

impl Eq for JailDef {}

impl fmt::Debug for JailDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JailDef")
            .field("name", &self.name)
            .field("location", &self.location)
            .field("params", &DebugMap(self))
            .field(
                "sources",
                &self
                    .sources()
                    .map(|(file, line)| format!("{file}:{line}"))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

struct DebugMap<'a>(&'a JailDef);

impl fmt::Debug for DebugMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

/// A parsed and evaluated jail.conf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JailConf {
    jails: Vec<JailDef>,
}

impl JailConf {
    /// The jails of `store`: name, block location and range of
    /// [`Store::params`] each.
    pub(crate) fn new(store: Store, jails: Vec<(String, Location, (usize, usize))>) -> Self {
        let store = Arc::new(store);
        JailConf {
            jails: jails
                .into_iter()
                .map(|(name, location, range)| JailDef {
                    name,
                    location,
                    store: store.clone(),
                    range,
                    locations: OnceLock::new(),
                    map: OnceLock::new(),
                })
                .collect(),
        }
    }

    /// Every named jail in file order (wildcard blocks excluded).
    pub fn jails(&self) -> &[JailDef] {
        &self.jails
    }

    pub fn jail(&self, name: &str) -> Option<&JailDef> {
        self.jails.iter().find(|j| j.name == name)
    }
}

/// jail(8)'s boolean reading: "true"/"false" (any case) or an integer,
/// non-zero meaning true.
fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        s.trim().parse::<i64>().ok().map(|n| n != 0)
    }
}

impl JailDef {
    fn own(&self) -> &[Param] {
        self.store.params.get(self.range.0..self.range.1).unwrap_or(&[])
    }

    fn pname(&self, p: &Param) -> &str {
        self.store.names.get(p.name as usize).map_or("", |s| s)
    }

    fn file(&self, i: u32) -> &str {
        self.store.files.get(i as usize).map_or("", String::as_str)
    }

    fn sources(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.own().iter().map(|p| (self.file(p.file), p.line))
    }

    fn strs_of(&self, v: Val) -> Strs<'_> {
        match v {
            Val::Bool(_) => Strs::EMPTY,
            Val::Vals(a, b) => Strs {
                text: &self.store.text,
                spans: self.store.spans.get(a as usize..b as usize).unwrap_or(&[]),
            },
        }
    }

    fn value_of(&self, v: Val) -> ValueRef<'_> {
        match v {
            Val::Bool(b) => ValueRef::Bool(b),
            Val::Vals(..) => {
                let s = self.strs_of(v);
                match s.len() {
                    1 => ValueRef::Str(s.get(0).unwrap_or("")),
                    _ => ValueRef::List(s),
                }
            }
        }
    }

    /// Rank of parameter `name` among the jail's (sorted) parameters.
    fn rank(&self, name: &str) -> Option<usize> {
        // why by number: the engine asks each jail for some 40 names, most
        // of them absent; comparing strings was a quarter of reading a
        // 10,000-jail jail.conf into the engine's form.
        let &k = self.store.index.get(name)?;
        self.own().binary_search_by_key(&k, |p| p.name).ok()
    }

    /// Every effective parameter in name order (variables removed,
    /// substitutions done); includes the implicit `name` (or `jid` for a
    /// numeric jail name).
    pub fn iter(&self) -> impl Iterator<Item = (&str, ValueRef<'_>)> + '_ {
        self.own().iter().map(|p| (self.pname(p), self.value_of(p.value)))
    }

    /// The value of parameter `name`, borrowed.
    pub fn value(&self, name: &str) -> Option<ValueRef<'_>> {
        self.rank(name).map(|k| self.value_of(self.own()[k].value))
    }

    /// The values of parameter `name` (a scalar is one; absent or boolean:
    /// none), borrowed.
    pub fn strs(&self, name: &str) -> Strs<'_> {
        match self.rank(name) {
            Some(k) => self.strs_of(self.own()[k].value),
            None => Strs::EMPTY,
        }
    }

    /// Effective parameters as an owned map (made on first use).
    pub fn params(&self) -> &BTreeMap<String, Value> {
        self.map
            .get_or_init(|| self.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect())
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.params().get(name)
    }

    /// File and line where `name` was last set (for error messages).
    pub fn param_location(&self, name: &str) -> Option<&Location> {
        let rank = self.rank(name)?;
        self.locations
            .get_or_init(|| {
                self.sources()
                    .map(|(file, line)| Location {
                        file: file.to_string(),
                        line,
                    })
                    .collect()
            })
            .get(rank)
    }

    /// File name and line where `name` was last set, without making a
    /// [`Location`].
    pub fn param_source(&self, name: &str) -> Option<(&str, usize)> {
        let p = self.own()[self.rank(name)?];
        Some((self.file(p.file), p.line))
    }

    /// A scalar value. For a list, the last value (jail(8) gives scalar
    /// parameters the last value added); `None` for a valueless boolean.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.strs(name).last()
    }

    /// All values (a scalar is a one-element list; absent or boolean: empty).
    pub fn get_list(&self, name: &str) -> Vec<&str> {
        self.strs(name).iter().collect()
    }

    /// A boolean: `persist;`, `nopersist;`, `persist = 0`, `allow.mount =
    /// "false"`, `allow.nomount = 1` (negated). `None` when absent or not a
    /// boolean value.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        match self.value(name) {
            Some(ValueRef::Bool(b)) => return Some(b),
            Some(_) => return self.get_str(name).and_then(parse_bool),
            None => {}
        }
        // A value given under the negated name: `allow.nomount = 1`.
        let negated = match name.rfind('.') {
            Some(i) => format!("{}no{}", &name[..=i], &name[i + 1..]),
            None => format!("no{name}"),
        };
        self.get_str(&negated).and_then(parse_bool).map(|b| !b)
    }

    fn invalid(&self, param: &str, message: String) -> JailConfError {
        let loc = self.param_location(param).unwrap_or(&self.location);
        JailConfError::Invalid {
            file: loc.file.clone(),
            line: loc.line,
            jail: self.name.clone(),
            message,
        }
    }

    fn nonempty(&self, name: &str) -> Option<&str> {
        self.get_str(name).filter(|s| !s.is_empty())
    }

    /// `path` (the jail's root directory).
    pub fn path(&self) -> Option<&str> {
        self.nonempty("path")
    }

    /// `host.hostname`.
    pub fn hostname(&self) -> Option<&str> {
        self.nonempty("host.hostname")
    }

    /// `interface` (default interface for `ip4.addr` aliases); empty is none.
    pub fn interface(&self) -> Option<&str> {
        self.nonempty("interface")
    }

    /// The commands of `exec.<hook>` (`"prestart"` or `"exec.prestart"`), in
    /// order; empty strings (`exec.start = '';`) are dropped as jail(8)
    /// runs nothing for them.
    pub fn exec(&self, hook: &str) -> Vec<String> {
        // why the table: a `format!` per hook per jail was a fifth of
        // reading a 10,000-jail jail.conf (issue 10).
        const HOOKS: [&str; 9] = [
            "exec.prepare",
            "exec.prestart",
            "exec.created",
            "exec.start",
            "exec.poststart",
            "exec.prestop",
            "exec.stop",
            "exec.poststop",
            "exec.release",
        ];
        let key: std::borrow::Cow<str> = if hook.starts_with("exec.") {
            hook.into()
        } else {
            match HOOKS.iter().find(|k| &k[5..] == hook) {
                Some(k) => (*k).into(),
                None => format!("exec.{hook}").into(),
            }
        };
        self.strs(&key)
            .iter()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Whether the jail has its own network stack: `vnet`, `vnet = new`,
    /// `vnet = 1`; `vnet = inherit`, `novnet` or absent are false.
    pub fn vnet(&self) -> bool {
        match self.get_str("vnet") {
            Some(s) if s.eq_ignore_ascii_case("new") => true,
            Some(s) if s.eq_ignore_ascii_case("inherit") => false,
            _ => self.get_bool("vnet").unwrap_or(false),
        }
    }

    /// The `ip4` mode as jail(8)/the kernel derive it: an explicit `ip4`
    /// wins; a non-empty `ip4.addr` implies `new` (and conflicts with an
    /// explicit `inherit`/`disable`); `None` when neither is set (the
    /// kernel then gives a new jail no IPv4 addresses).
    pub fn ip4_mode(&self) -> Result<Option<Ip4Mode>, JailConfError> {
        Ok(self.ip_mode("ip4", "ip4.addr")?.map(|m| match m {
            IpModeWord::Inherit => Ip4Mode::Inherit,
            IpModeWord::New => Ip4Mode::New,
            IpModeWord::Disable => Ip4Mode::Disable,
        }))
    }

    /// The `ip6` mode, derived from `ip6` and `ip6.addr` as
    /// [`JailDef::ip4_mode`] is from their IPv4 counterparts (jail(8): the
    /// ip6 options are "the counterparts" of the ip4 ones).
    pub fn ip6_mode(&self) -> Result<Option<Ip6Mode>, JailConfError> {
        Ok(self.ip_mode("ip6", "ip6.addr")?.map(|m| match m {
            IpModeWord::Inherit => Ip6Mode::Inherit,
            IpModeWord::New => Ip6Mode::New,
            IpModeWord::Disable => Ip6Mode::Disable,
        }))
    }

    /// The mode of one family from its mode parameter `mode` (`ip4`) and
    /// address parameter `addr` (`ip4.addr`).
    fn ip_mode(&self, mode: &str, addr: &str) -> Result<Option<IpModeWord>, JailConfError> {
        let has_addrs = self.strs(addr).iter().any(|s| !s.is_empty());
        let explicit = match self.value(mode) {
            None => None,
            Some(ValueRef::Bool(true)) => Some(IpModeWord::New),
            Some(ValueRef::Bool(false)) => Some(IpModeWord::Disable),
            Some(_) => {
                let s = self.get_str(mode).unwrap_or("");
                Some(match s.to_ascii_lowercase().as_str() {
                    "inherit" => IpModeWord::Inherit,
                    "new" => IpModeWord::New,
                    "disable" => IpModeWord::Disable,
                    _ => return Err(self.invalid(mode, format!("{mode} = {s:?}: expected inherit, new or disable"))),
                })
            }
        };
        match (explicit, has_addrs) {
            (Some(m @ (IpModeWord::Inherit | IpModeWord::Disable)), true) => Err(self.invalid(
                addr,
                format!(
                    "{addr} is set but {mode} = {}",
                    if m == IpModeWord::Inherit { "inherit" } else { "disable" }
                ),
            )),
            (Some(m), _) => Ok(Some(m)),
            (None, true) => Ok(Some(IpModeWord::New)),
            (None, false) => Ok(None),
        }
    }

    /// The `ip4.addr` entries, parsed. Entries without `iface|` get the
    /// jail's `interface`. Malformed entries are errors naming the file and
    /// line where `ip4.addr` was set.
    pub fn ip4_addrs(&self) -> Result<Vec<Ip4AddrEntry>, JailConfError> {
        let default_if = self.interface();
        self.strs("ip4.addr")
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_ip4_entry(s, default_if)
                    .map_err(|m| self.invalid("ip4.addr", format!("ip4.addr entry {s:?}: {m}")))
            })
            .collect()
    }

    /// The `ip6.addr` entries, parsed as [`JailDef::ip4_addrs`] does its
    /// IPv4 counterparts; malformed entries are errors naming the file and
    /// line where `ip6.addr` was set.
    pub fn ip6_addrs(&self) -> Result<Vec<Ip6AddrEntry>, JailConfError> {
        let default_if = self.interface();
        self.strs("ip6.addr")
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_ip6_entry(s, default_if)
                    .map_err(|m| self.invalid("ip6.addr", format!("ip6.addr entry {s:?}: {m}")))
            })
            .collect()
    }
}

/// The three values of `ip4` and `ip6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpModeWord {
    Inherit,
    New,
    Disable,
}

/// `[iface|]rest`: the interface (the entry's own, else `default_if`) and
/// the rest, as usr.sbin/jail/config.c `ip_params` splits both families.
fn split_iface<'a>(s: &'a str, default_if: Option<&str>) -> Result<(Option<String>, &'a str), String> {
    match s.split_once('|') {
        Some((i, r)) => {
            if i.is_empty() || i.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(format!("invalid interface name {i:?}"));
            }
            Ok((Some(i.to_string()), r))
        }
        None => Ok((default_if.map(str::to_string), s)),
    }
}

/// Parse `[iface|]addr[/prefixlen][ options...]` (an `ip6.addr` entry).
pub(crate) fn parse_ip6_entry(s: &str, default_if: Option<&str>) -> Result<Ip6AddrEntry, String> {
    let (iface, rest) = split_iface(s, default_if)?;
    let mut words = rest.split_whitespace();
    let addr_part = words.next().ok_or("missing address")?;
    let options: Vec<String> = words.map(str::to_string).collect();
    let (addr, prefix) = match addr_part.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (addr_part, None),
    };
    let address: Ipv6Addr = addr.parse().map_err(|_| format!("invalid IPv6 address {addr:?}"))?;
    let prefix = match prefix {
        None => None,
        Some(m) => match m.parse::<u8>() {
            Ok(p) if p <= 128 && m.bytes().all(|b| b.is_ascii_digit()) => Some(p),
            _ => return Err(format!("prefix length {m:?} is not between 0 and 128")),
        },
    };
    Ok(Ip6AddrEntry {
        interface: iface,
        address,
        prefix,
        options,
    })
}

/// Parse `[iface|]addr[/mask][ options...]` the way jail(8) splits it.
pub(crate) fn parse_ip4_entry(s: &str, default_if: Option<&str>) -> Result<Ip4AddrEntry, String> {
    let (iface, rest) = split_iface(s, default_if)?;
    let mut words = rest.split_whitespace();
    let addr_part = words.next().ok_or("missing address")?;
    let options: Vec<String> = words.map(str::to_string).collect();
    let (addr, mask) = match addr_part.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (addr_part, None),
    };
    let address: Ipv4Addr = addr.parse().map_err(|_| format!("invalid IPv4 address {addr:?}"))?;
    let prefix = match mask {
        None => None,
        Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => match m.parse::<u8>() {
            Ok(p) if p <= 32 => Some(p),
            _ => return Err(format!("prefix length {m:?} is not between 0 and 32")),
        },
        Some(m) => {
            let nm: Ipv4Addr = m.parse().map_err(|_| format!("invalid netmask {m:?}"))?;
            let bits = u32::from(nm);
            // A netmask is contiguous ones: its complement plus one is a power of two.
            if (!bits).wrapping_add(1) & !bits != 0 {
                return Err(format!("netmask {m:?} is not contiguous"));
            }
            Some(bits.count_ones() as u8)
        }
    };
    Ok(Ip4AddrEntry {
        interface: iface,
        address,
        prefix,
        options,
    })
}
