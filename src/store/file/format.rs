//! The inventory file as text: header, base records, journal (no I/O).
//!
//! ```text
//! jnet-inventory 3 generation=7 body=1234 lines=12 hash=5f0c0a3be2a1d9c4
//! # written by jnet; ...
//! jail www ip4=new address=10.0.0.5 pool=lan interface=vtnet0 ip6=new address6=fd00::5 pool6=lan6 phase=stopped
//! bridge jnetbr0
//! journal
//! set jail db ip4=new address=10.0.0.6 pool=lan interface=vtnet0 ip6=disable phase=defined | was=- | 8c1e0f2a
//! del jail www | was=10.0.0.5,fd00::5 | 0b7d33e1
//! ```
//!
//! The *base* is everything up to and including the `journal` line: jail
//! lines sorted by name, then bridges. It is only ever written whole (by a
//! compaction: temp file, fsync, rename). The header names the base's
//! generation, the byte length of the body after the header line (`body=`),
//! its number of lines (for file:line in errors about journal records) and a
//! hash of the body. The header fields let the fast path trust a derived
//! index without reading the base; the full reader here does not need them
//! (it finds the journal by its `journal` line), so a base edited by hand
//! still reads.
//!
//! The *journal* holds records appended one line at a time (write +
//! fdatasync): `set <jail line>` or `del jail <name>`, the address the jail
//! held before (`was=`, which lets the index adjust its taken set without
//! looking the jail up, and is checked here against the state before the
//! record), and a 32-bit checksum of everything before it. A torn tail — a
//! final line without its newline, no longer than two records can be — is
//! what a process killed during an append leaves: it is ignored here and
//! cut off by the next writer (which holds the lock). A complete line with
//! a bad checksum, last or not, was committed and then damaged: an error
//! with its line, never silently dropped.
//!
//! Schema versions 1 (a header without fields and no journal) and 2 (jail
//! lines with `mode=` and at most an IPv4 lease) are still read; the first
//! write to such a file rewrites it whole as version 3 (the fast path only
//! appends to a version 3 file), so a journal never mixes versions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::core::names::JailName;

use crate::store::inventory::{
    parse_jail_words, quick_addresses, quick_name, write_jail_line, FormatError, Inventory, JailRecord,
};

pub const SCHEMA_VERSION: u32 = 3;
pub const MAGIC: &str = "jnet-inventory";
pub const JOURNAL_LINE: &str = "journal";
const COMMENT: &str =
    "# written by jnet; edit by hand only while no jnet runs (records after `journal` carry checksums)\n";
/// The longest journal record jnet appends; a longer damaged tail is not a
/// torn append but damage, and is refused. Bigger records go through a
/// compaction instead.
pub const MAX_RECORD: usize = 16 * 1024;

/// 64-bit checksum used for the base body and (truncated to 32 bits) for
/// journal records: a multiply-rotate over 8-byte words with a final
/// avalanche. Not cryptographic; it detects torn writes and stray edits at
/// several GB/s, which is what lets the fast path verify a base cheaply.
pub fn hash64(data: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (data.len() as u64).wrapping_mul(K);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(31);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(31);
    }
    // why: fold high bits down so every input bit reaches the low 32 bits
    // the journal checksum keeps.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn hash32(data: &[u8]) -> u32 {
    hash64(data) as u32
}

/// The first line of the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub generation: u64,
    /// Bytes of the base after the header line, through the `journal` line.
    pub body: u64,
    /// Lines of the base, header included.
    pub lines: u64,
    pub hash: u64,
}

impl Header {
    /// Whether the fields the fast path relies on are present.
    pub fn is_complete(&self) -> bool {
        self.version == SCHEMA_VERSION && self.generation > 0 && self.body > 0 && self.lines > 0
    }

    fn render(&self) -> String {
        format!(
            "{MAGIC} {} generation={} body={} lines={} hash={:016x}\n",
            SCHEMA_VERSION, self.generation, self.body, self.lines, self.hash
        )
    }
}

/// Parses the header line (without its newline).
pub fn parse_header(line: &str) -> Result<Header, String> {
    let not = || format!("not a jnet inventory (expected \"{MAGIC} {SCHEMA_VERSION} ...\")");
    let mut words = line.split_ascii_whitespace();
    if words.next() != Some(MAGIC) {
        return Err(not());
    }
    let version: u32 = words.next().and_then(|v| v.parse().ok()).ok_or_else(not)?;
    if !(1..=SCHEMA_VERSION).contains(&version) {
        return Err(format!(
            "schema version {version} is not supported (this jnet reads 1 to {SCHEMA_VERSION})"
        ));
    }
    let mut h = Header {
        version,
        ..Header::default()
    };
    for w in words {
        if version == 1 {
            return Err(format!("unexpected {w:?} in a version 1 header"));
        }
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("header field {w:?} is not key=value"))?;
        let num = |radix| u64::from_str_radix(v, radix).map_err(|_| format!("header field {k}={v:?} is not a number"));
        match k {
            "generation" => h.generation = num(10)?,
            "body" => h.body = num(10)?,
            "lines" => h.lines = num(10)?,
            "hash" => h.hash = num(16)?,
            _ => return Err(format!("unknown header field {k:?}")),
        }
    }
    Ok(h)
}

/// A file rendered from an inventory.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub header: Header,
    pub header_len: usize,
    /// `(index key, offset of its jail line)` of every leased address
    /// (`index::key`), in name order.
    pub addrs: Vec<(u128, u32)>,
}

/// Renders `inv` as a whole file with an empty journal.
pub fn render(inv: &Inventory, generation: u64) -> Rendered {
    let mut body = String::with_capacity(COMMENT.len() + 16 + inv.jails.len() * 96);
    body.push_str(COMMENT);
    let mut addrs = Vec::new();
    for (name, r) in &inv.jails {
        for a in r.addresses() {
            addrs.push((super::index::key(a), body.len() as u32));
        }
        write_jail_line(&mut body, name.as_str(), r);
    }
    for b in &inv.bridges {
        let _ = writeln!(body, "bridge {b}");
    }
    finish(body, generation, addrs)
}

fn finish(mut body: String, generation: u64, mut addrs: Vec<(u128, u32)>) -> Rendered {
    body.push_str(JOURNAL_LINE);
    body.push('\n');
    let lines = 1 + body.bytes().filter(|&b| b == b'\n').count() as u64;
    let header = Header {
        version: SCHEMA_VERSION,
        generation,
        body: body.len() as u64,
        lines,
        hash: hash64(body.as_bytes()),
    };
    let head = header.render();
    for a in &mut addrs {
        a.1 += head.len() as u32;
    }
    let mut text = head;
    let header_len = text.len();
    text.push_str(&body);
    Rendered {
        text,
        header,
        header_len,
        addrs,
    }
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub jail: JailName,
    /// `None`: the jail was removed.
    pub record: Option<JailRecord>,
    /// The addresses the jail held before this record, IPv4 first.
    pub was: Vec<IpAddr>,
}

/// Appends the line of one journal record.
pub fn write_record(out: &mut String, r: &Record) {
    let start = out.len();
    match &r.record {
        Some(rec) => {
            out.push_str("set ");
            write_jail_line(out, r.jail.as_str(), rec);
            out.pop();
        }
        None => {
            let _ = write!(out, "del jail {}", r.jail);
        }
    }
    if r.was.is_empty() {
        out.push_str(" | was=-");
    } else {
        out.push_str(" | was=");
        for (i, a) in r.was.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{a}");
        }
    }
    let sum = hash32(&out.as_bytes()[start..]);
    let _ = writeln!(out, " | {sum:08x}");
}

/// Whether `line` (without newline) carries a correct checksum.
fn checksum_ok(line: &str) -> bool {
    let Some((pre, sum)) = line.rsplit_once(" | ") else {
        return false;
    };
    // why: only the exact lowercase form jnet writes; "A" for "a" is a
    // changed byte too.
    sum.len() == 8
        && sum.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && u32::from_str_radix(sum, 16).is_ok_and(|s| s == hash32(pre.as_bytes()))
}

/// Parses a journal line whose checksum is correct.
pub fn parse_record(line: &str) -> Result<Record, String> {
    let (pre, _) = line.rsplit_once(" | ").ok_or("journal record without checksum")?;
    let (op, was) = pre.rsplit_once(" | ").ok_or("journal record without was=")?;
    let was = match was.strip_prefix("was=") {
        Some("-") => vec![],
        Some(v) => v
            .split(',')
            .map(|a| a.parse().map_err(|_| format!("was={a:?} is not an IP address")))
            .collect::<Result<_, _>>()?,
        None => return Err(format!("expected was=, found {was:?}")),
    };
    let mut words = op.split_ascii_whitespace();
    let kind = words.next();
    if words.next() != Some("jail") {
        return Err("journal record is not about a jail".into());
    }
    match kind {
        Some("set") => {
            let (jail, rec) = parse_jail_words(words)?;
            Ok(Record {
                jail,
                record: Some(rec),
                was,
            })
        }
        Some("del") => {
            let name = words.next().ok_or("del record without a name")?;
            let jail = JailName::new(name).map_err(|e| e.to_string())?;
            if words.next().is_some() {
                return Err("del record with extra fields".into());
            }
            Ok(Record {
                jail,
                record: None,
                was,
            })
        }
        _ => Err(format!("unknown journal record {kind:?}")),
    }
}

/// The journal after the base: which records are valid, and where the
/// valid content ends.
#[derive(Debug)]
pub struct Journal<'a> {
    /// `(line number, line)` of every valid record, in order.
    pub lines: Vec<(usize, &'a str)>,
    /// Bytes of the journal that are valid; the rest is a torn tail.
    pub valid_len: usize,
}

/// Splits journal bytes (starting right after the `journal` line, whose
/// line number is `marker_line`) into valid records and a torn tail.
/// Works on bytes: a torn or corrupted tail need not be UTF-8.
///
/// Only a final line without its newline is a torn append: jnet writes a
/// record and its newline in one write, so a killed writer leaves a prefix
/// of one record, never a complete line. A complete line whose checksum
/// does not match was committed and then damaged; it is refused with its
/// line (H17), wherever it is.
pub fn scan_journal(text: &[u8], marker_line: usize) -> Result<Journal<'_>, FormatError> {
    let mut lines = vec![];
    let mut pos = 0;
    let mut lineno = marker_line;
    while pos < text.len() {
        lineno += 1;
        let Some(i) = text[pos..].iter().position(|&b| b == b'\n') else {
            // why: twice a record: a lock-free reader can see an old torn
            // tail followed by the start of the record that replaced it.
            if text.len() - pos > 2 * MAX_RECORD {
                return Err(FormatError {
                    line: lineno,
                    message: format!(
                        "journal ends in {} bytes without a newline, more than a torn append leaves",
                        text.len() - pos
                    ),
                });
            }
            return Ok(Journal { lines, valid_len: pos });
        };
        let line = &text[pos..pos + i];
        match std::str::from_utf8(line).ok().filter(|l| checksum_ok(l)) {
            Some(l) => lines.push((lineno, l)),
            None => {
                return Err(FormatError {
                    line: lineno,
                    message: "journal record is damaged (checksum mismatch); restore the inventory from a backup or \
                              remove the line if the change it records is not wanted"
                        .into(),
                })
            }
        }
        pos += i + 1;
    }
    Ok(Journal {
        lines,
        valid_len: text.len(),
    })
}

/// Applies one parsed record to `inv`, checking it follows the state.
pub fn apply(inv: &mut Inventory, r: Record) -> Result<(), String> {
    let cur = inv.jails.get(&r.jail);
    let had: Vec<IpAddr> = cur.map(|c| c.addresses().collect()).unwrap_or_default();
    if cur.is_none() && r.record.is_none() {
        return Err(format!(
            "journal removes jail {}, which is not in the inventory",
            r.jail
        ));
    }
    if had != r.was {
        let show = |a: &[IpAddr]| {
            if a.is_empty() {
                "no address".to_string()
            } else {
                a.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" and ")
            }
        };
        return Err(format!(
            "journal record says jail {} held {} before it, the inventory says {}",
            r.jail,
            show(&r.was),
            show(&had)
        ));
    }
    match r.record {
        Some(rec) => {
            inv.jails.insert(r.jail, rec);
        }
        None => {
            inv.jails.remove(&r.jail);
        }
    }
    Ok(())
}

/// A whole file, parsed.
#[derive(Debug)]
pub struct Parsed {
    pub inventory: Inventory,
    pub header: Header,
    pub header_len: usize,
    /// Offset just past the `journal` line (None: no journal section).
    pub base_end: Option<usize>,
    /// Bytes of the file that are valid; after them is a torn tail.
    pub valid_len: usize,
    pub records: usize,
}

/// Parses a whole inventory file, any supported version.
pub fn parse(text: &[u8]) -> Result<Parsed, FormatError> {
    fn utf8(b: &[u8], line: usize) -> Result<&str, FormatError> {
        std::str::from_utf8(b).map_err(|_| FormatError {
            line,
            message: "line is not UTF-8 text".into(),
        })
    }
    let (first, mut pos) = match text.iter().position(|&b| b == b'\n') {
        Some(i) => (&text[..i], i + 1),
        None => (text, text.len()),
    };
    let header = parse_header(utf8(first, 1)?).map_err(|message| FormatError { line: 1, message })?;
    let header_len = pos;
    let mut jails: Vec<(JailName, JailRecord, usize)> = Vec::new();
    let mut inv = Inventory::default();
    let mut lineno = 1;
    let mut base_end = None;
    let mut sorted = true;
    while pos < text.len() {
        lineno += 1;
        let (raw, next) = match text[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => (&text[pos..pos + i], pos + i + 1),
            None => (&text[pos..], text.len()),
        };
        pos = next;
        let err = |message: String| FormatError { line: lineno, message };
        let line = utf8(raw, lineno)?.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("jail") => {
                let (name, rec) = parse_jail_words(words).map_err(err)?;
                if let Some((last, _, _)) = jails.last() {
                    if *last == name {
                        return Err(err(format!("jail {name} is listed twice")));
                    }
                    sorted &= *last < name;
                }
                jails.push((name, rec, lineno));
            }
            Some("bridge") => {
                let b = words.next().ok_or_else(|| err("bridge record without a name".into()))?;
                inv.bridges
                    .insert(crate::core::names::IfName::new(b).map_err(|e| err(e.to_string()))?);
            }
            Some(JOURNAL_LINE) if header.version >= 2 && words.next().is_none() => {
                base_end = Some(pos);
                break;
            }
            Some(other) => return Err(err(format!("unknown record type {other:?}"))),
            None => {}
        }
    }
    // why: jnet writes the base sorted, so this is one bulk build; a base
    // sorted by hand differently still reads, duplicates still refused.
    if sorted {
        inv.jails = jails.into_iter().map(|(n, r, _)| (n, r)).collect();
    } else {
        for (name, rec, line) in jails {
            if inv.jails.contains_key(&name) {
                return Err(FormatError {
                    line,
                    message: format!("jail {name} is listed twice"),
                });
            }
            inv.jails.insert(name, rec);
        }
    }
    let mut valid_len = text.len();
    let mut records = 0;
    if let Some(end) = base_end {
        let j = scan_journal(&text[end..], lineno)?;
        valid_len = end + j.valid_len;
        records = j.lines.len();
        for (l, line) in j.lines {
            let err = |message: String| FormatError { line: l, message };
            let r = parse_record(line).map_err(err)?;
            apply(&mut inv, r).map_err(err)?;
        }
    }
    Ok(Parsed {
        inventory: inv,
        header,
        header_len,
        base_end,
        valid_len,
        records,
    })
}

/// The canonical body (everything a render of the current state would put
/// after the header) of a parsed file, without rendering the model: the
/// base body itself when the journal is empty. Used to tell whether an
/// update changed anything by comparing text.
pub fn canonical_body<'a>(text: &'a [u8], p: &Parsed) -> Option<&'a [u8]> {
    let end = p.base_end?;
    if p.records == 0 && p.header.is_complete() && p.header.hash == hash64(&text[p.header_len..end]) {
        return Some(&text[p.header_len..end]);
    }
    None
}

/// Compaction without parsing the base: merges the sorted base jail lines
/// with the final state of the jails the journal touched (`overlay`:
/// name -> canonical line or None for removed) into a new file.
/// `base_body` is the base after the header line, through the `journal`
/// line, as jnet wrote it (canonical, sorted).
pub fn merge(base_body: &str, overlay: &BTreeMap<JailName, Option<String>>, generation: u64) -> Rendered {
    let mut body = String::with_capacity(base_body.len() + overlay.len() * 100);
    let mut addrs = Vec::new();
    let mut ov = overlay.iter().peekable();
    let mut push_jail = |body: &mut String, line: &str| {
        let (a4, a6) = quick_addresses(line);
        for a in a4.map(IpAddr::V4).into_iter().chain(a6.map(IpAddr::V6)) {
            addrs.push((super::index::key(a), body.len() as u32));
        }
        body.push_str(line);
        if !line.ends_with('\n') {
            body.push('\n');
        }
    };
    let mut in_jails = true;
    for line in base_body.split_inclusive('\n') {
        if line.trim_end() == JOURNAL_LINE {
            break;
        }
        match quick_name(line) {
            Some(name) => {
                while let Some((n, l)) = ov.next_if(|(n, _)| n.as_str() < name) {
                    let _ = n;
                    if let Some(l) = l {
                        push_jail(&mut body, l);
                    }
                }
                match ov.next_if(|(n, _)| n.as_str() == name) {
                    Some((_, Some(l))) => push_jail(&mut body, l),
                    Some((_, None)) => {}
                    None => push_jail(&mut body, line),
                }
            }
            None if line.starts_with('#') && in_jails => body.push_str(line),
            None => {
                if in_jails {
                    in_jails = false;
                    for (_, l) in ov.by_ref() {
                        if let Some(l) = l {
                            push_jail(&mut body, l);
                        }
                    }
                }
                body.push_str(line);
            }
        }
    }
    for (_, l) in ov {
        if let Some(l) = l {
            push_jail(&mut body, l);
        }
    }
    finish(body, generation, addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::{IfName, PoolName};

    fn j(s: &str) -> JailName {
        JailName::new(s).unwrap()
    }
    fn ded(a: &str) -> JailRecord {
        JailRecord::dedicated(
            a.parse().unwrap(),
            Some(PoolName::new("lan").unwrap()),
            Some(IfName::new("em0").unwrap()),
        )
    }

    #[test]
    fn reads_version_1() {
        let inv =
            Inventory::from_text("jnet-inventory 1\n# c\njail a mode=inherit phase=defined\nbridge br0\n").unwrap();
        assert_eq!(inv.jails.len(), 1);
        assert_eq!(inv.bridges.len(), 1);
        // `journal` is not a record in version 1.
        let e = Inventory::from_text("jnet-inventory 1\njournal\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn journal_applies_and_checks_was() {
        let mut inv = Inventory::default();
        inv.jails.insert(j("a"), ded("10.0.0.5"));
        let mut text = render(&inv, 3).text;
        write_record(
            &mut text,
            &Record {
                jail: j("b"),
                record: Some(ded("10.0.0.6")),
                was: vec![],
            },
        );
        write_record(
            &mut text,
            &Record {
                jail: j("a"),
                record: None,
                was: vec!["10.0.0.5".parse().unwrap()],
            },
        );
        let p = parse(text.as_bytes()).unwrap();
        assert_eq!(p.records, 2);
        assert_eq!(p.valid_len, text.len());
        assert_eq!(p.inventory.jails.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["b"]);
        // A record whose was= disagrees is damage, named by line.
        let mut bad = render(&inv, 3).text;
        write_record(
            &mut bad,
            &Record {
                jail: j("a"),
                record: None,
                was: vec![],
            },
        );
        let e = parse(bad.as_bytes()).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("held no address before it"), "{e}");
    }

    #[test]
    fn damaged_middle_record_is_an_error_torn_tail_is_not() {
        let inv = Inventory::default();
        let mut text = render(&inv, 1).text;
        write_record(
            &mut text,
            &Record {
                jail: j("a"),
                record: Some(ded("10.0.0.5")),
                was: vec![],
            },
        );
        let second = text.len();
        write_record(
            &mut text,
            &Record {
                jail: j("b"),
                record: Some(ded("10.0.0.6")),
                was: vec![],
            },
        );
        let mut mid = text.clone().into_bytes();
        mid[second - 5] ^= 1;
        let e = parse(&mid).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("checksum mismatch"), "{e}");
        let torn = &text[..text.len() - 3];
        let p = parse(torn.as_bytes()).unwrap();
        assert_eq!(p.valid_len, second);
        assert_eq!(p.inventory.jails.len(), 1);
    }

    /// H17: the finding's input, `address=169.254.1.1` changed to
    /// `769.254.1.1` in the last record with its newline kept, is damage
    /// with its line, not a torn append; only a final line without a
    /// newline is one.
    #[test]
    fn complete_last_record_with_bad_checksum_is_damage() {
        let mut inv = Inventory::default();
        inv.jails.insert(j("a4"), ded("10.0.0.4"));
        let mut text = render(&inv, 1).text;
        write_record(
            &mut text,
            &Record {
                jail: j("a4"),
                record: Some(ded("169.254.1.1")),
                was: vec!["10.0.0.4".parse().unwrap()],
            },
        );
        let lines = text.lines().count();
        let bad = text.replace("address=169.254.1.1", "address=769.254.1.1");
        assert!(bad.ends_with('\n'));
        let e = parse(bad.as_bytes()).unwrap_err();
        assert_eq!(e.line, lines, "{e}");
        assert!(e.message.contains("checksum mismatch"), "{e}");
        // The same line without its newline is a torn append: ignored.
        let torn = &bad[..bad.len() - 1];
        let p = parse(torn.as_bytes()).unwrap();
        assert_eq!(p.inventory.jails[&j("a4")].address(), Some("10.0.0.4".parse().unwrap()));
        assert_eq!(p.valid_len, torn.rfind('\n').unwrap() + 1);
    }

    #[test]
    fn merge_equals_render_of_the_merged_state() {
        let mut inv = Inventory::default();
        for (n, a) in [("b", "10.0.0.2"), ("d", "10.0.0.4"), ("f", "10.0.0.6")] {
            inv.jails.insert(j(n), ded(a));
        }
        inv.bridges.insert(IfName::new("br0").unwrap());
        let r = render(&inv, 1);
        let mut ov = BTreeMap::new();
        let line = |n: &str, rec: &JailRecord| {
            let mut s = String::new();
            write_jail_line(&mut s, n, rec);
            s
        };
        ov.insert(j("a"), Some(line("a", &ded("10.0.0.1"))));
        ov.insert(j("d"), None);
        ov.insert(j("f"), Some(line("f", &JailRecord::inherit())));
        ov.insert(j("z"), Some(line("z", &ded("10.0.0.9"))));
        let m = merge(&r.text[r.header_len..], &ov, 2);
        inv.jails.insert(j("a"), ded("10.0.0.1"));
        inv.jails.remove(&j("d"));
        inv.jails.insert(j("f"), JailRecord::inherit());
        inv.jails.insert(j("z"), ded("10.0.0.9"));
        let want = render(&inv, 2);
        assert_eq!(m.text, want.text);
        assert_eq!(m.addrs, want.addrs);
        for (a, off) in &m.addrs {
            let l = &m.text[*off as usize..];
            let (a4, a6) = quick_addresses(&l[..l.find('\n').unwrap()]);
            let keys: Vec<u128> = a4
                .map(IpAddr::V4)
                .into_iter()
                .chain(a6.map(IpAddr::V6))
                .map(crate::store::file::index::key)
                .collect();
            assert!(keys.contains(a), "{a:x} not on the line at {off}");
        }
    }

    #[test]
    fn header_fields() {
        let h = parse_header("jnet-inventory 2 generation=4 body=10 lines=3 hash=00ff").unwrap();
        assert_eq!((h.generation, h.body, h.lines, h.hash), (4, 10, 3, 255));
        assert!(parse_header("jnet-inventory 2 colour=red")
            .unwrap_err()
            .contains("unknown header field"));
        assert!(parse_header("jnet-inventory 3 generation=4 body=10 lines=3 hash=00ff").is_ok());
        assert!(parse_header("jnet-inventory 4")
            .unwrap_err()
            .contains("schema version 4"));
        assert!(parse_header("jnet-inventory 1 generation=1").is_err());
    }
}
