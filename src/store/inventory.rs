//! The inventory model and the text of one record (no I/O).
//!
//! One line per record, `key=value` fields, so an administrator can read it
//! and diff it:
//!
//! ```text
//! jail www mode=dedicated address=10.0.0.5 pool=lan interface=vtnet0 phase=stopped expose=tcp/80,tcp/8443:443
//! jail ghost mode=inherit phase=running ports=tcp/2368
//! bridge jnetbr0
//! ```
//!
//! Every value is validated on the way in (names, addresses, port specs), so
//! a record that parses can be used in a pf rule or a path as is. The whole
//! file (header, journal, checksums) is `store::format`; this module only
//! knows the model and one record line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::core::lifecycle::Phase;
use crate::core::model::{AddressFamily, FamilyLease, Lease};
use crate::core::names::{IfName, JailName, PoolName};
use crate::core::ports::{parse_expose_with_address, Expose};
use crate::core::range::RangeSet;

// why in core: reports and the CLI name the mode without the store.
pub use crate::core::model::Mode;

/// What jnet records about one jail: per address family its mode and
/// lease (jail(8)'s `ip4`/`ip6`), its exposures, phase and jid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailRecord {
    pub inet: FamilyLease<Ipv4Addr>,
    pub inet6: FamilyLease<Ipv6Addr>,
    pub exposes: Vec<Expose>,
    pub phase: Phase,
    /// Runtime id while running (jid on FreeBSD).
    pub jid: Option<u32>,
}

impl JailRecord {
    /// Inherits the host's addresses in both families.
    pub fn inherit() -> Self {
        JailRecord {
            inet: FamilyLease::Inherit,
            inet6: FamilyLease::Inherit,
            exposes: vec![],
            phase: Phase::Defined,
            jid: None,
        }
    }

    /// An own IPv4 address and no IPv6 (what a jail with one dedicated
    /// address always was before dual stack).
    pub fn dedicated(address: Ipv4Addr, pool: Option<PoolName>, interface: Option<IfName>) -> Self {
        JailRecord {
            inet: FamilyLease::Dedicated(Lease {
                address,
                pool,
                interface,
            }),
            inet6: FamilyLease::Disable,
            ..JailRecord::inherit()
        }
    }

    /// An own IPv6 address and no IPv4.
    pub fn dedicated6(address: Ipv6Addr, pool: Option<PoolName>, interface: Option<IfName>) -> Self {
        JailRecord {
            inet: FamilyLease::Disable,
            inet6: FamilyLease::Dedicated(Lease {
                address,
                pool,
                interface,
            }),
            ..JailRecord::inherit()
        }
    }

    /// Dedicated when the jail holds an address of either family, else
    /// inherit (reports' one-word summary; the families say the rest).
    pub fn mode(&self) -> Mode {
        if self.has_lease() {
            Mode::Dedicated
        } else {
            Mode::Inherit
        }
    }

    pub fn has_lease(&self) -> bool {
        self.inet.lease().is_some() || self.inet6.lease().is_some()
    }

    /// The IPv4 address, if dedicated in IPv4.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.inet.address()
    }

    /// The IPv6 address, if dedicated in IPv6.
    pub fn address6(&self) -> Option<Ipv6Addr> {
        self.inet6.address()
    }

    /// The IPv4 lease's pool (the compatibility `pool` of reports).
    pub fn pool(&self) -> Option<&PoolName> {
        self.inet.lease().and_then(|l| l.pool.as_ref())
    }

    /// The IPv4 lease's interface (the compatibility `interface` of reports).
    pub fn interface(&self) -> Option<&IfName> {
        self.inet.lease().and_then(|l| l.interface.as_ref())
    }

    /// Every leased address with its pool and interface, IPv4 first.
    pub fn leases(&self) -> impl Iterator<Item = (IpAddr, Option<&PoolName>, Option<&IfName>)> + '_ {
        let v4 = self
            .inet
            .lease()
            .map(|l| (IpAddr::V4(l.address), l.pool.as_ref(), l.interface.as_ref()));
        let v6 = self
            .inet6
            .lease()
            .map(|l| (IpAddr::V6(l.address), l.pool.as_ref(), l.interface.as_ref()));
        v4.into_iter().chain(v6)
    }

    /// Every leased address, IPv4 first.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.leases().map(|(a, _, _)| a)
    }

    /// Whether the jail holds `a`.
    pub fn holds(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.address() == Some(a),
            IpAddr::V6(a) => self.address6() == Some(a),
        }
    }

    /// The mode word (`inherit`, `new`, `disable`) of one family.
    pub fn family_mode(&self, f: AddressFamily) -> &'static str {
        match f {
            AddressFamily::Inet => self.inet.as_str(),
            AddressFamily::Inet6 => self.inet6.as_str(),
        }
    }

    /// Drops the lease of family `f`: the family becomes disabled.
    pub fn release_family(&mut self, f: AddressFamily) {
        match f {
            AddressFamily::Inet => self.inet = FamilyLease::Disable,
            AddressFamily::Inet6 => self.inet6 = FamilyLease::Disable,
        }
    }

    /// What a lifecycle verb plans from (modes, leases, exposures), without
    /// the phase and jid the verb itself changes. Two reads with the same
    /// basis give the same desired state.
    pub fn basis(&self) -> RecordBasis {
        RecordBasis(format!("{:?} {:?} {:?}", self.inet, self.inet6, self.exposes))
    }
}

/// See [`JailRecord::basis`]; compared, never parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBasis(String);

/// The whole inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub jails: BTreeMap<JailName, JailRecord>,
    /// Bridges jnet created (and so may remove).
    pub bridges: BTreeSet<IfName>,
}

/// A malformed inventory line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FormatError {
    pub line: usize,
    pub message: String,
}

impl Inventory {
    /// The jail holding `a`, if any.
    pub fn holder_of(&self, a: IpAddr) -> Option<&JailName> {
        self.jails.iter().find(|(_, r)| r.holds(a)).map(|(n, _)| n)
    }

    /// Every dedicated IPv4 address in the inventory, as a set.
    pub fn taken(&self) -> RangeSet {
        let mut s = RangeSet::new();
        for a in self.jails.values().filter_map(JailRecord::address) {
            s.insert_addr(a);
        }
        s
    }

    /// Every dedicated IPv6 address in the inventory, as a set.
    pub fn taken6(&self) -> RangeSet<u128> {
        let mut s = RangeSet::empty();
        for a in self.jails.values().filter_map(JailRecord::address6) {
            s.insert_addr(a);
        }
        s
    }

    /// The whole file for this inventory (current schema, generation 1,
    /// empty journal). The store writes the same text with its own
    /// generation.
    pub fn to_text(&self) -> String {
        super::file::format::render(self, 1).text
    }

    /// Parses a whole inventory file of any supported schema version,
    /// journal included.
    pub fn from_text(text: &str) -> Result<Inventory, FormatError> {
        super::file::format::parse(text.as_bytes()).map(|p| p.inventory)
    }
}

/// Appends the canonical line of one jail record (with its newline):
/// schema 3 writes each family's mode (`ip4=`, `ip6=`, jail(8)'s words)
/// and, for a dedicated family, its lease (`address`, `pool`, `interface`
/// for IPv4; `address6`, `pool6`, `interface6` for IPv6).
pub fn write_jail_line(out: &mut String, name: &str, r: &JailRecord) {
    out.push_str("jail ");
    out.push_str(name);
    out.push_str(" ip4=");
    out.push_str(r.inet.as_str());
    if let Some(l) = r.inet.lease() {
        let _ = write!(out, " address={}", l.address);
        write_lease_names(out, l.pool.as_ref(), l.interface.as_ref(), "");
    }
    out.push_str(" ip6=");
    out.push_str(r.inet6.as_str());
    if let Some(l) = r.inet6.lease() {
        let _ = write!(out, " address6={}", l.address);
        write_lease_names(out, l.pool.as_ref(), l.interface.as_ref(), "6");
    }
    out.push_str(" phase=");
    out.push_str(r.phase.as_str());
    if let Some(j) = r.jid {
        let _ = write!(out, " jid={j}");
    }
    if !r.exposes.is_empty() {
        out.push_str(" expose=");
        for (i, e) in r.exposes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{e}");
        }
    }
    out.push('\n');
}

fn write_lease_names(out: &mut String, pool: Option<&PoolName>, interface: Option<&IfName>, suffix: &str) {
    if let Some(p) = pool {
        out.push_str(" pool");
        out.push_str(suffix);
        out.push('=');
        out.push_str(p.as_str());
    }
    if let Some(i) = interface {
        out.push_str(" interface");
        out.push_str(suffix);
        out.push('=');
        out.push_str(i.as_str());
    }
}

/// Parses the words after `jail`: the name and the fields.
pub fn parse_jail_words<'a>(mut words: impl Iterator<Item = &'a str>) -> Result<(JailName, JailRecord), String> {
    let name = words.next().ok_or("jail record without a name")?;
    let name = JailName::new(name).map_err(|e| e.to_string())?;
    let rec = parse_jail(words)?;
    Ok((name, rec))
}

/// The address fields of a canonical jail line (IPv4, IPv6), without
/// validating the rest (the index builder reads lines whose checksum it
/// has verified).
pub fn quick_addresses(line: &str) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    fn field<T: std::str::FromStr>(line: &str, key: &str) -> Option<T> {
        let i = line.find(key)?;
        let v = &line[i + key.len()..];
        v[..v.find(' ').unwrap_or(v.len())].trim_end().parse().ok()
    }
    (field(line, " address="), field(line, " address6="))
}

/// The name of a `jail NAME ...` line.
pub fn quick_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("jail ")?;
    Some(&rest[..rest.find(' ').unwrap_or(rest.len())])
}

/// One family's fields as read from a line, before they are checked.
struct FamilyFields<A> {
    mode: Option<&'static str>,
    address: Option<A>,
    pool: Option<PoolName>,
    interface: Option<IfName>,
}

impl<A> Default for FamilyFields<A> {
    fn default() -> Self {
        FamilyFields {
            mode: None,
            address: None,
            pool: None,
            interface: None,
        }
    }
}

impl<A> FamilyFields<A> {
    fn into_lease(self, key: &str) -> Result<FamilyLease<A>, String> {
        let lease_fields = self.address.is_some() || self.pool.is_some() || self.interface.is_some();
        match self.mode {
            None => Err(format!("jail record without {key}=")),
            Some("new") => match self.address {
                Some(address) => Ok(FamilyLease::Dedicated(Lease {
                    address,
                    pool: self.pool,
                    interface: self.interface,
                })),
                None => Err(format!("{key}=new without its address")),
            },
            Some(m) if lease_fields => Err(format!("{key}={m} with an address, pool or interface")),
            Some("inherit") => Ok(FamilyLease::Inherit),
            Some(_) => Ok(FamilyLease::Disable),
        }
    }
}

fn family_mode(v: &str) -> Result<&'static str, String> {
    match v {
        "inherit" => Ok("inherit"),
        "new" => Ok("new"),
        "disable" => Ok("disable"),
        _ => Err(format!("unknown mode {v:?} (inherit, new or disable)")),
    }
}

/// The fields of a jail line. Schema 3 lines carry `ip4=`/`ip6=` with a
/// lease per dedicated family; lines of schemas 1 and 2 carry `mode=` and
/// at most an IPv4 lease, read as IPv4 dedicated with IPv6 disabled (what
/// jnet started such a jail with) or both families inherited.
fn parse_jail<'a>(fields: impl Iterator<Item = &'a str>) -> Result<JailRecord, String> {
    let mut old_mode = None;
    let mut v4 = FamilyFields::<Ipv4Addr>::default();
    let mut v6 = FamilyFields::<Ipv6Addr>::default();
    let mut rec = JailRecord::inherit();
    let pool = |v: &str| PoolName::new(v).map_err(|e| e.to_string());
    let iface = |v: &str| IfName::new(v).map_err(|e| e.to_string());
    for f in fields {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("field {f:?} is not key=value"))?;
        match k {
            "mode" => {
                old_mode = Some(match v {
                    "inherit" => Mode::Inherit,
                    "dedicated" => Mode::Dedicated,
                    _ => return Err(format!("unknown mode {v:?}")),
                })
            }
            "ip4" => v4.mode = Some(family_mode(v)?),
            "ip6" => v6.mode = Some(family_mode(v)?),
            "address" => v4.address = Some(v.parse().map_err(|_| format!("address {v:?} is not IPv4"))?),
            "address6" => v6.address = Some(v.parse().map_err(|_| format!("address6 {v:?} is not IPv6"))?),
            "pool" => v4.pool = Some(pool(v)?),
            "pool6" => v6.pool = Some(pool(v)?),
            "interface" => v4.interface = Some(iface(v)?),
            "interface6" => v6.interface = Some(iface(v)?),
            "phase" => rec.phase = v.parse()?,
            "jid" => rec.jid = Some(v.parse().map_err(|_| format!("jid {v:?} is not a number"))?),
            "expose" => {
                rec.exposes = v
                    .split(',')
                    .map(|e| parse_expose_with_address(e).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown field {k:?}")),
        }
    }
    match old_mode {
        Some(_) if v4.mode.is_some() || v6.mode.is_some() || v6.address.is_some() => {
            return Err("jail record mixes mode= with ip4=/ip6= fields".into())
        }
        Some(Mode::Dedicated) => {
            v4.mode = Some("new");
            v6.mode = Some("disable");
            if v4.address.is_none() {
                return Err("dedicated jail without address=".into());
            }
        }
        Some(Mode::Inherit) => {
            if v4.address.is_some() {
                return Err("inherit jail with an address=".into());
            }
            // why: schema 2 let an inherit line carry a pool or interface,
            // which meant nothing without an address.
            (v4.pool, v4.interface) = (None, None);
            v4.mode = Some("inherit");
            v6.mode = Some("inherit");
        }
        None if v4.mode.is_none() && v6.mode.is_none() => return Err("jail record without mode=".into()),
        None => {}
    }
    rec.inet = v4.into_lease("ip4")?;
    rec.inet6 = v6.into_lease("ip6")?;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Inventory {
        let mut inv = Inventory::default();
        let mut www = JailRecord::dedicated(
            "10.0.0.5".parse().unwrap(),
            Some(PoolName::new("lan").unwrap()),
            Some(IfName::new("vtnet0").unwrap()),
        );
        www.exposes = vec![
            "tcp/80".parse().unwrap(),
            parse_expose_with_address("192.0.2.1:tcp/8443:443").unwrap(),
        ];
        www.phase = Phase::Running;
        www.jid = Some(3);
        inv.jails.insert(JailName::new("www").unwrap(), www);
        inv.jails.insert(JailName::new("ghost").unwrap(), JailRecord::inherit());
        inv.jails.insert(
            JailName::new("six").unwrap(),
            JailRecord::dedicated6(
                "fd00::6".parse().unwrap(),
                Some(PoolName::new("lan6").unwrap()),
                Some(IfName::new("jnbr0").unwrap()),
            ),
        );
        let mut dual = JailRecord::dedicated("10.0.0.7".parse().unwrap(), None, None);
        dual.inet6 = FamilyLease::Dedicated(Lease {
            address: "2001:db8::7".parse().unwrap(),
            pool: None,
            interface: Some(IfName::new("em0").unwrap()),
        });
        inv.jails.insert(JailName::new("dual").unwrap(), dual);
        inv.bridges.insert(IfName::new("jnetbr0").unwrap());
        inv
    }

    #[test]
    fn round_trip() {
        let inv = sample();
        let text = inv.to_text();
        assert!(text.contains(
            "jail www ip4=new address=10.0.0.5 pool=lan interface=vtnet0 ip6=disable phase=running jid=3 expose=tcp/80,192.0.2.1:tcp/8443:443\n"
        ), "{text}");
        assert!(
            text.contains("jail ghost ip4=inherit ip6=inherit phase=defined\n"),
            "{text}"
        );
        assert!(
            text.contains("jail six ip4=disable ip6=new address6=fd00::6 pool6=lan6 interface6=jnbr0 phase=defined\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "jail dual ip4=new address=10.0.0.7 ip6=new address6=2001:db8::7 interface6=em0 phase=defined\n"
            ),
            "{text}"
        );
        assert_eq!(Inventory::from_text(&text).unwrap(), inv);
    }

    #[test]
    fn rejects_bad_records_with_line() {
        let cases = [
            ("", 1, "not a jnet inventory"),
            ("jnet-inventory 4\n", 1, "schema version 4"),
            (
                "jnet-inventory 3\njail a ip4=new ip6=disable\n",
                2,
                "ip4=new without its address",
            ),
            ("jnet-inventory 3\njail a ip4=inherit\n", 2, "without ip6="),
            (
                "jnet-inventory 3\njail a ip4=disable ip6=inherit address6=fd00::1\n",
                2,
                "ip6=inherit with an address",
            ),
            (
                "jnet-inventory 3\njail a ip4=disable ip6=new address6=10.0.0.1\n",
                2,
                "not IPv6",
            ),
            ("jnet-inventory 3\njail a ip4=shared ip6=disable\n", 2, "unknown mode"),
            (
                "jnet-inventory 3\njail a mode=inherit ip4=inherit ip6=inherit\n",
                2,
                "mixes mode=",
            ),
            ("jnet-inventory 1\njail a;b mode=inherit\n", 2, "invalid jail name"),
            ("jnet-inventory 1\n\njail a mode=dedicated\n", 3, "without address"),
            (
                "jnet-inventory 1\njail a mode=inherit address=10.0.0.1\n",
                2,
                "inherit jail with",
            ),
            (
                "jnet-inventory 1\njail a mode=dedicated address=10.0.0.300\n",
                2,
                "not IPv4",
            ),
            ("jnet-inventory 1\njail a mode=inherit colour=red\n", 2, "unknown field"),
            ("jnet-inventory 1\njail a mode=inherit expose=tcp/0\n", 2, "port 0"),
            (
                "jnet-inventory 1\njail a mode=inherit\njail a mode=inherit\n",
                3,
                "twice",
            ),
            ("jnet-inventory 1\nrule x\n", 2, "unknown record"),
        ];
        for (text, line, needle) in cases {
            let e = Inventory::from_text(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }
}
