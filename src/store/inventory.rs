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
use std::net::Ipv4Addr;

use crate::core::lifecycle::Phase;
use crate::core::names::{IfName, JailName, PoolName};
use crate::core::ports::{parse_expose_with_address, Expose};
use crate::core::range::RangeSet;

// why in core: reports and the CLI name the mode without the store.
pub use crate::core::model::Mode;

/// What jnet records about one jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailRecord {
    pub mode: Mode,
    /// Set iff mode is dedicated.
    pub address: Option<Ipv4Addr>,
    pub pool: Option<PoolName>,
    pub interface: Option<IfName>,
    pub exposes: Vec<Expose>,
    pub phase: Phase,
    /// Runtime id while running (jid on FreeBSD).
    pub jid: Option<u32>,
}

impl JailRecord {
    pub fn inherit() -> Self {
        JailRecord {
            mode: Mode::Inherit,
            address: None,
            pool: None,
            interface: None,
            exposes: vec![],
            phase: Phase::Defined,
            jid: None,
        }
    }
    pub fn dedicated(address: Ipv4Addr, pool: Option<PoolName>, interface: Option<IfName>) -> Self {
        JailRecord {
            mode: Mode::Dedicated,
            address: Some(address),
            pool,
            interface,
            ..JailRecord::inherit()
        }
    }

    /// What a lifecycle verb plans from (mode, address, pool, interface,
    /// exposures), without the phase and jid the verb itself changes. Two
    /// reads with the same basis give the same desired state.
    pub fn basis(&self) -> RecordBasis {
        RecordBasis(format!(
            "{:?} {:?} {:?} {:?} {:?}",
            self.mode, self.address, self.pool, self.interface, self.exposes
        ))
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
    pub fn holder_of(&self, a: Ipv4Addr) -> Option<&JailName> {
        self.jails.iter().find(|(_, r)| r.address == Some(a)).map(|(n, _)| n)
    }

    /// Every dedicated address in the inventory, as a set.
    pub fn taken(&self) -> RangeSet {
        let mut s = RangeSet::new();
        for r in self.jails.values() {
            if let Some(a) = r.address {
                s.insert_addr(a);
            }
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

/// Appends the canonical line of one jail record (with its newline).
pub fn write_jail_line(out: &mut String, name: &str, r: &JailRecord) {
    out.push_str("jail ");
    out.push_str(name);
    out.push_str(" mode=");
    out.push_str(r.mode.as_str());
    if let Some(a) = r.address {
        let _ = write!(out, " address={a}");
    }
    if let Some(p) = &r.pool {
        out.push_str(" pool=");
        out.push_str(p.as_str());
    }
    if let Some(i) = &r.interface {
        out.push_str(" interface=");
        out.push_str(i.as_str());
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

/// Parses the words after `jail`: the name and the fields.
pub fn parse_jail_words<'a>(mut words: impl Iterator<Item = &'a str>) -> Result<(JailName, JailRecord), String> {
    let name = words.next().ok_or("jail record without a name")?;
    let name = JailName::new(name).map_err(|e| e.to_string())?;
    let rec = parse_jail(words)?;
    Ok((name, rec))
}

/// Just the address field of a canonical jail line, without validating the
/// rest (the index builder reads lines whose checksum it has verified).
pub fn quick_address(line: &str) -> Option<Ipv4Addr> {
    let i = line.find(" address=")?;
    let v = &line[i + 9..];
    v[..v.find(' ').unwrap_or(v.len())].trim_end().parse().ok()
}

/// The name of a `jail NAME ...` line.
pub fn quick_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("jail ")?;
    Some(&rest[..rest.find(' ').unwrap_or(rest.len())])
}

fn parse_jail<'a>(fields: impl Iterator<Item = &'a str>) -> Result<JailRecord, String> {
    let mut mode = None;
    let mut rec = JailRecord::inherit();
    for f in fields {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("field {f:?} is not key=value"))?;
        match k {
            "mode" => {
                mode = Some(match v {
                    "inherit" => Mode::Inherit,
                    "dedicated" => Mode::Dedicated,
                    _ => return Err(format!("unknown mode {v:?}")),
                })
            }
            "address" => rec.address = Some(v.parse().map_err(|_| format!("address {v:?} is not IPv4"))?),
            "pool" => rec.pool = Some(PoolName::new(v).map_err(|e| e.to_string())?),
            "interface" => rec.interface = Some(IfName::new(v).map_err(|e| e.to_string())?),
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
    rec.mode = mode.ok_or("jail record without mode=")?;
    match (rec.mode, rec.address) {
        (Mode::Dedicated, None) => return Err("dedicated jail without address=".into()),
        (Mode::Inherit, Some(_)) => return Err("inherit jail with an address=".into()),
        _ => {}
    }
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
        inv.bridges.insert(IfName::new("jnetbr0").unwrap());
        inv
    }

    #[test]
    fn round_trip() {
        let inv = sample();
        let text = inv.to_text();
        assert!(text.contains(
            "jail www mode=dedicated address=10.0.0.5 pool=lan interface=vtnet0 phase=running jid=3 expose=tcp/80,192.0.2.1:tcp/8443:443\n"
        ), "{text}");
        assert_eq!(Inventory::from_text(&text).unwrap(), inv);
    }

    #[test]
    fn rejects_bad_records_with_line() {
        let cases = [
            ("", 1, "not a jnet inventory"),
            ("jnet-inventory 3\n", 1, "schema version 3"),
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
