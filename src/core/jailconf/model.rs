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
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

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

/// One jail's effective parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailDef {
    pub name: String,
    /// Effective parameters (variables removed, substitutions done);
    /// includes the implicit `name` (or `jid` for a numeric jail name).
    pub params: BTreeMap<String, Value>,
    /// Where the jail's block starts.
    pub location: Location,
    pub(crate) sources: Sources,
}

/// Where each of a jail's parameters was last set, in the order of
/// [`JailDef::params`]' keys.
///
/// why: kept as (file index, line) pairs over the file names shared by all
/// jails; the [`Location`]s (each with its own copy of the file name) are
/// made only when one is asked for, which is for messages. Building them
/// for every parameter of every jail was a quarter of the allocations of a
/// 10,000-jail parse.
#[derive(Clone)]
pub(crate) struct Sources {
    files: Arc<[String]>,
    at: Vec<(usize, usize)>,
    made: OnceLock<Box<[Location]>>,
}

impl Sources {
    pub(crate) fn new(files: Arc<[String]>, at: Vec<(usize, usize)>) -> Self {
        Sources {
            files,
            at,
            made: OnceLock::new(),
        }
    }

    fn file(&self, i: usize) -> &str {
        self.files.get(i).map_or("", String::as_str)
    }

    /// The location of the `rank`-th parameter.
    fn get(&self, rank: usize) -> Option<&Location> {
        self.made
            .get_or_init(|| {
                self.at
                    .iter()
                    .map(|&(f, line)| Location {
                        file: self.file(f).to_string(),
                        line,
                    })
                    .collect()
            })
            .get(rank)
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.at.iter().map(|&(f, line)| (self.file(f), line))
    }
}

impl PartialEq for Sources {
    fn eq(&self, other: &Self) -> bool {
        self.at.len() == other.at.len() && self.pairs().eq(other.pairs())
    }
}

impl Eq for Sources {}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.pairs().map(|(file, line)| format!("{file}:{line}")))
            .finish()
    }
}

/// A parsed and evaluated jail.conf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JailConf {
    jails: Vec<JailDef>,
}

impl JailConf {
    pub(crate) fn new(jails: Vec<JailDef>) -> Self {
        JailConf { jails }
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
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.params.get(name)
    }

    /// File and line where `name` was last set (for error messages).
    pub fn param_location(&self, name: &str) -> Option<&Location> {
        let rank = self.params.keys().position(|k| k == name)?;
        self.sources.get(rank)
    }

    /// A scalar value. For a list, the last value (jail(8) gives scalar
    /// parameters the last value added); `None` for a valueless boolean.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.params.get(name)? {
            Value::Str(s) => Some(s),
            Value::List(l) => l.last().map(String::as_str),
            Value::Bool(_) => None,
        }
    }

    /// All values (a scalar is a one-element list; absent or boolean: empty).
    pub fn get_list(&self, name: &str) -> Vec<&str> {
        match self.params.get(name) {
            Some(Value::Str(s)) => vec![s.as_str()],
            Some(Value::List(l)) => l.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// A boolean: `persist;`, `nopersist;`, `persist = 0`, `allow.mount =
    /// "false"`, `allow.nomount = 1` (negated). `None` when absent or not a
    /// boolean value.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        match self.params.get(name) {
            Some(Value::Bool(b)) => return Some(*b),
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
        match self.params.get(key.as_ref()) {
            Some(Value::Str(s)) if !s.is_empty() => vec![s.clone()],
            Some(Value::List(l)) => l.iter().filter(|s| !s.is_empty()).cloned().collect(),
            _ => Vec::new(),
        }
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
        let has_addrs = self.get_list("ip4.addr").iter().any(|s| !s.is_empty());
        let explicit = match self.params.get("ip4") {
            None => None,
            Some(Value::Bool(true)) => Some(Ip4Mode::New),
            Some(Value::Bool(false)) => Some(Ip4Mode::Disable),
            Some(_) => {
                let s = self.get_str("ip4").unwrap_or("");
                Some(match s.to_ascii_lowercase().as_str() {
                    "inherit" => Ip4Mode::Inherit,
                    "new" => Ip4Mode::New,
                    "disable" => Ip4Mode::Disable,
                    _ => return Err(self.invalid("ip4", format!("ip4 = {s:?}: expected inherit, new or disable"))),
                })
            }
        };
        match (explicit, has_addrs) {
            (Some(m @ (Ip4Mode::Inherit | Ip4Mode::Disable)), true) => Err(self.invalid(
                "ip4.addr",
                format!(
                    "ip4.addr is set but ip4 = {}",
                    if m == Ip4Mode::Inherit { "inherit" } else { "disable" }
                ),
            )),
            (Some(m), _) => Ok(Some(m)),
            (None, true) => Ok(Some(Ip4Mode::New)),
            (None, false) => Ok(None),
        }
    }

    /// The `ip4.addr` entries, parsed. Entries without `iface|` get the
    /// jail's `interface`. Malformed entries are errors naming the file and
    /// line where `ip4.addr` was set.
    pub fn ip4_addrs(&self) -> Result<Vec<Ip4AddrEntry>, JailConfError> {
        let default_if = self.interface().map(str::to_string);
        self.get_list("ip4.addr")
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_ip4_entry(s, default_if.as_deref())
                    .map_err(|m| self.invalid("ip4.addr", format!("ip4.addr entry {s:?}: {m}")))
            })
            .collect()
    }
}

/// Parse `[iface|]addr[/mask][ options...]` the way jail(8) splits it.
pub(crate) fn parse_ip4_entry(s: &str, default_if: Option<&str>) -> Result<Ip4AddrEntry, String> {
    let (iface, rest) = match s.split_once('|') {
        Some((i, r)) => {
            if i.is_empty() || i.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(format!("invalid interface name {i:?}"));
            }
            (Some(i.to_string()), r)
        }
        None => (default_if.map(str::to_string), s),
    };
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
