//! A test oracle: a validator for the subset of pf.conf(5) that jnet emits,
//! written from pf.conf(5)'s GRAMMAR section and pfctl's parse.y, so the
//! suite can tell on Linux whether pfctl would accept an anchor jnet
//! renders (issue 8 item 3; F1 is the mistake it must catch).
//!
//! Sources (FreeBSD):
//! - pf.conf(5) GRAMMAR: FreeBSD main e7646b05 `share/man/man5/pf.conf.5`
//!   l.3100-3130 (`nat-rule`, `rdr-rule`, `binat-rule`, `pf-rule`,
//!   `filteropt`), and freebsd-src 0077daf9 (same productions).
//! - sbin/pfctl/parse.y, FreeBSD main e7646b05: `natrule` (l.4559-4560:
//!   `nataction interface af proto fromto tag tagged rtable redirpool
//!   pool_opts`), `nataction` (`no`? `nat|rdr` `pass`? `log`?), `binatrule`,
//!   `pfrule` / `filter_opts` / `filter_opt` (the only place `label` is
//!   reachable for these rule kinds, l.2806), `fromto`, `ipportspec`,
//!   `host`, `dynaddr` (the `:network|:broadcast|:peer|:0` modifiers),
//!   `port_item` / `portrange` with parseport() ("invalid port range"),
//!   `redirpool` / `redirspec` / `rport` (`port N[:M|:*]`), `pool_opts`
//!   (`round-robin`), `varset` (macros) and the lexer's `$macro` expansion
//!   and `#` comments.
//!
//! Productions covered: the rule kinds `nat`, `rdr`, `binat` (with `no`,
//! `pass`, `log`), `pass` filter rules with `in|out`, `log`, `quick`, `on`,
//! `inet|inet6`, `proto`, `from/to` hosts, `flags a/b`, `keep state` and
//! `label "s"`; addresses: `any`, `all`, IPv4/IPv6 with `/bits`, `!`,
//! interface names, `(if)` and `(if:modifier)`, `{ }` lists; ports: unary
//! ops `= != < <= > >=`, binary `a:b`, `a<>b`, `a><b`; redirection targets
//! with `port N`, `port N:M`, `port N:*`; pool option `round-robin`;
//! macros and comments. Not covered (outside the subset, so never judged):
//! tables, `tag`/`tagged`, `rtable`, other pool types, `static-port`,
//! `map-e-portset`, route-to, queues, states options, anchors, `include`,
//! `set`, `scrub`, `block`, `match`, OpenBSD-style `rdr-to`/`nat-to`.
//! Service names are accepted where parse.y takes a `STRING` port.

use std::collections::HashMap;

/// Why a line was rejected.
pub type Reject = String;

/// Expands a pf.conf text into logical rule lines: comments dropped,
/// `\` continuations and lines inside `{ }` joined, macros (`name = value`,
/// parse.y `varset`) recorded and `$name` expanded. Returns
/// `(line number, text)` for each non-macro line, or the first error.
pub fn logical_lines(text: &str) -> Result<Vec<(usize, String)>, Reject> {
    let mut macros: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    let mut acc = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        if acc.is_empty() {
            start = i + 1;
        }
        let (body, cont) = match line.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        acc.push(' ');
        acc.push_str(body);
        let depth = acc.matches('{').count() as i64 - acc.matches('}').count() as i64;
        if cont || depth > 0 {
            continue;
        }
        let t = std::mem::take(&mut acc).trim().to_string();
        if t.is_empty() {
            continue;
        }
        if let Some((name, value)) = as_macro(&t) {
            let v = expand(&value, &macros)?;
            macros.insert(name, v);
            continue;
        }
        out.push((start, expand(&t, &macros)?));
    }
    if !acc.trim().is_empty() {
        return Err("unterminated line or '{' at end of input".into());
    }
    Ok(out)
}

fn strip_comment(l: &str) -> &str {
    // why: '#' inside a quoted string is text (label "a#b"); parse.y's lexer
    // only starts a comment outside quotes.
    let mut in_q = false;
    for (i, c) in l.char_indices() {
        match c {
            '"' => in_q = !in_q,
            '#' if !in_q => return &l[..i],
            _ => {}
        }
    }
    l
}

/// parse.y `varset : STRING '=' varstring`: a macro name is letters,
/// digits and '_' not starting with a digit.
fn as_macro(t: &str) -> Option<(String, String)> {
    let (name, value) = t.split_once('=')?;
    let name = name.trim();
    if name.is_empty()
        || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        || name.as_bytes()[0].is_ascii_digit()
        || matches!(name, "port" | "nat" | "rdr" | "pass")
    {
        return None;
    }
    let v = value.trim();
    let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
    Some((name.to_string(), v.to_string()))
}

fn expand(t: &str, macros: &HashMap<String, String>) -> Result<String, Reject> {
    // why: the lexer expands `$name` only outside quotes; inside a quoted
    // label `$nr`, `$if`... are label macros pfctl fills in later.
    let mut out = String::with_capacity(t.len());
    for (k, part) in t.split('"').enumerate() {
        if k > 0 {
            out.push('"');
        }
        if k % 2 == 1 {
            out.push_str(part);
        } else {
            out.push_str(&expand_unquoted(part, macros)?);
        }
    }
    Ok(out)
}

fn expand_unquoted(t: &str, macros: &HashMap<String, String>) -> Result<String, Reject> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let n = after
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .count();
        let name = &after[..n];
        let v = macros.get(name).ok_or_else(|| format!("macro '{name}' not defined"))?;
        out.push_str(v);
        rest = &after[n..];
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(&'static str),
}

fn tokenize(line: &str) -> Result<Vec<Tok>, Reject> {
    const PUNCT: &[&str] = &[
        "->", "!=", "<=", ">=", "<>", "><", "{", "}", "(", ")", ",", "!", "=", "<", ">",
    ];
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'"' {
            let end = line[i + 1..].find('"').ok_or("unterminated quoted string")?;
            out.push(Tok::Quoted(line[i + 1..i + 1 + end].to_string()));
            i += end + 2;
            continue;
        }
        if let Some(p) = PUNCT.iter().find(|p| line[i..].starts_with(**p)) {
            // why: `<` `>` open a table name only when a word follows
            // directly; the word is then judged (tables are outside the
            // subset).
            out.push(Tok::Punct(p));
            i += p.len();
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !b"{}(),!=<>\"".contains(&b[i]) {
            // `->` inside a word ends it too
            if b[i] == b'-' && b.get(i + 1) == Some(&b'>') {
                break;
            }
            i += 1;
        }
        out.push(Tok::Word(line[start..i].to_string()));
    }
    Ok(out)
}

/// Words that keep a line inside the subset this validator judges.
const VOCAB: &[&str] = &[
    "no",
    "nat",
    "rdr",
    "binat",
    "pass",
    "log",
    "on",
    "inet",
    "inet6",
    "proto",
    "tcp",
    "udp",
    "from",
    "to",
    "any",
    "all",
    "port",
    "round-robin",
    "in",
    "out",
    "quick",
    "flags",
    "keep",
    "state",
    "label",
    "self",
];

/// Whether `line` (already macro-expanded) is inside the subset: its rule
/// kind is nat, rdr, binat or pass, and every keyword-like word is one the
/// validator models. Decided lexically, independent of the grammar, so the
/// corpus test is not circular.
pub fn in_subset(line: &str) -> bool {
    let Ok(toks) = tokenize(line) else { return false };
    let first: Vec<&str> = toks
        .iter()
        .take(2)
        .map(|t| match t {
            Tok::Word(w) => w.as_str(),
            _ => "",
        })
        .collect();
    let kind_ok = match first.as_slice() {
        ["no", k, ..] => matches!(*k, "nat" | "rdr" | "binat"),
        [k, ..] => matches!(*k, "nat" | "rdr" | "binat" | "pass"),
        _ => false,
    };
    if !kind_ok {
        return false;
    }
    let mut prev_lt = false;
    for t in &toks {
        match t {
            Tok::Punct(p) => prev_lt = *p == "<",
            Tok::Quoted(_) => prev_lt = false,
            Tok::Word(w) => {
                if prev_lt && w.bytes().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                    return false; // <table>
                }
                prev_lt = false;
                let lw = w.to_ascii_lowercase();
                let addrish = w.bytes().next().is_some_and(|c| c.is_ascii_digit())
                    || w.contains(':') && !w.bytes().any(|c| c.is_ascii_uppercase())
                    || w.contains('/')
                    || w == "*";
                // Interface names (letters then a digit) are addresses.
                let ifname = w.bytes().next().is_some_and(|c| c.is_ascii_lowercase())
                    && w.bytes().any(|c| c.is_ascii_digit())
                    && w.bytes().all(|c| c.is_ascii_alphanumeric() || b"._:".contains(&c));
                if !(VOCAB.contains(&lw.as_str()) || addrish || ifname) {
                    return false;
                }
            }
        }
    }
    true
}

struct P {
    toks: Vec<Tok>,
    i: usize,
    /// The rule's `inet` (32) / `inet6` (128), once read.
    af_bits: Option<u32>,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn word(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }
    fn is_word(&self, w: &str) -> bool {
        self.word() == Some(w)
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }
    fn eat_word(&mut self, w: &str) -> bool {
        let y = self.is_word(w);
        if y {
            self.i += 1;
        }
        y
    }
    fn eat_punct(&mut self, p: &str) -> bool {
        let y = self.is_punct(p);
        if y {
            self.i += 1;
        }
        y
    }
    fn next_word(&mut self, what: &str) -> Result<String, Reject> {
        match self.toks.get(self.i) {
            Some(Tok::Word(w)) => {
                self.i += 1;
                Ok(w.clone())
            }
            other => Err(format!("expected {what}, found {other:?}")),
        }
    }
    fn expect_punct(&mut self, p: &str) -> Result<(), Reject> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(format!("expected '{p}', found {:?}", self.peek()))
        }
    }
    fn done(&self) -> bool {
        self.i >= self.toks.len()
    }
}

/// Validates one macro-expanded rule line of the subset. `Ok` means pfctl's
/// grammar (as covered above) accepts it.
pub fn validate_line(line: &str) -> Result<(), Reject> {
    let mut p = P {
        toks: tokenize(line)?,
        i: 0,
        af_bits: None,
    };
    let no = p.eat_word("no");
    let kind = p.next_word("a rule keyword")?;
    match kind.as_str() {
        "nat" | "rdr" | "binat" => translation_rule(&mut p, &kind, no)?,
        "pass" if !no => filter_rule(&mut p)?,
        k => return Err(format!("rule keyword '{k}' is outside the subset")),
    }
    if !p.done() {
        return Err(format!("syntax error at {:?}", p.peek()));
    }
    Ok(())
}

/// parse.y `natrule` / `binatrule`: `nataction interface af proto fromto
/// ... redirpool pool_opts`. No `label`: the production has no slot for
/// it (l.4559-4560), so a label here is a syntax error (F1).
fn translation_rule(p: &mut P, kind: &str, no: bool) -> Result<(), Reject> {
    // parse.y `natpasslog : /* empty */ | PASS | PASS log | log`; with
    // `no`, "\"pass\" not valid with \"no\"" (`nataction`). pf.conf(5)'s
    // GRAMMAR shows `log` only after `pass`; parse.y is what pfctl runs.
    if p.eat_word("pass") {
        if no {
            return Err("'no' rules take no 'pass'".into());
        }
        log(p)?;
    } else {
        log(p)?;
    }
    // interface: "on" ifspec
    if p.eat_word("on") {
        interface(p)?;
    } else if kind == "binat" {
        return Err("binat needs 'on <interface>'".into());
    }
    af(p);
    proto(p)?;
    if kind == "binat" {
        // binatrule: "from" ipspec "to" ipspec (no ports)
        if !p.eat_word("from") {
            return Err("binat needs 'from'".into());
        }
        host_or_list(p)?;
        if !p.eat_word("to") {
            return Err("binat needs 'to'".into());
        }
        host_or_list(p)?;
    } else {
        fromto(p)?;
    }
    if p.is_word("label") {
        return Err("'label' is not allowed on nat/rdr/binat rules (parse.y natrule has no label)".into());
    }
    if no {
        if p.is_punct("->") {
            return Err("translation given for a 'no' rule".into());
        }
        return Ok(());
    }
    // redirpool: "->" ( redirhost | "{" redirhost-list "}" ) [ rport ]
    p.expect_punct("->")?;
    host_or_list(p)?;
    if p.eat_word("port") {
        // why: nat takes a port range here too (`nat ... -> a port
        // 1004:2004`, pf1031.in); binat does not (parse.y `binatrule` has
        // no rport).
        if kind == "binat" {
            return Err("binat takes no translation port".into());
        }
        rport(p)?;
    }
    // pool_opts: only round-robin is in the subset.
    if p.eat_word("round-robin") && kind == "binat" {
        return Err("binat takes no pool options".into());
    }
    if p.is_word("label") {
        return Err("'label' is not allowed on nat/rdr/binat rules (parse.y natrule has no label)".into());
    }
    Ok(())
}

/// parse.y `pfrule` for `pass`: `action dir logquick interface route af
/// proto fromto filter_opts`.
fn filter_rule(p: &mut P) -> Result<(), Reject> {
    if !p.eat_word("in") {
        p.eat_word("out");
    }
    log(p)?;
    p.eat_word("quick");
    if p.eat_word("on") {
        interface(p)?;
    }
    af(p);
    proto(p)?;
    if !p.done() && !["flags", "keep", "no", "label"].iter().any(|w| p.is_word(w)) {
        fromto(p)?;
    }
    // filter_opts (subset): flags a/b, keep state, label "string"
    loop {
        if p.eat_word("flags") {
            // parse.y `flags : FLAGS flag '/' flag | FLAGS '/' flag | FLAGS ANY`
            let f = p.next_word("flags")?;
            if f == "any" {
                continue;
            }
            let ok = |s: &str| s.bytes().all(|c| b"FSRPAUEWC".contains(&c));
            match f.split_once('/') {
                Some((a, b)) if ok(a) && ok(b) && !b.is_empty() => {}
                None if ok(&f) && !f.is_empty() => {}
                _ => return Err(format!("bad flags {f:?}")),
            }
        } else if p.eat_word("keep") || p.eat_word("no") {
            // parse.y `keep : NO STATE | KEEP STATE ...`
            if !p.eat_word("state") {
                return Err("expected 'state' after 'keep'/'no'".into());
            }
        } else if p.eat_word("label") {
            match p.toks.get(p.i) {
                Some(Tok::Quoted(s)) | Some(Tok::Word(s)) if s.len() < 64 => p.i += 1,
                _ => return Err("label needs a string of at most 63 bytes".into()),
            }
        } else {
            break;
        }
    }
    Ok(())
}

/// parse.y `log : LOG | LOG '(' logopts ')'`, `logopt : ALL | USER | TO
/// STRING` (pf.conf(5) `logopts`).
fn log(p: &mut P) -> Result<(), Reject> {
    if !p.eat_word("log") {
        return Ok(());
    }
    if p.eat_punct("(") {
        loop {
            match p.next_word("log option")?.as_str() {
                "all" | "user" => {}
                "to" => check_ifname(&p.next_word("log interface")?)?,
                o => return Err(format!("bad log option {o:?}")),
            }
            p.eat_punct(",");
            if p.eat_punct(")") {
                break;
            }
        }
    }
    Ok(())
}

fn af(p: &mut P) {
    if p.eat_word("inet") {
        p.af_bits = Some(32);
    } else if p.eat_word("inet6") {
        p.af_bits = Some(128);
    }
}

/// `proto ( name | number | "{" list "}" )`.
fn proto(p: &mut P) -> Result<(), Reject> {
    if !p.eat_word("proto") {
        return Ok(());
    }
    // parse.y `proto_item : protoval`, a number or a getprotobyname() name.
    let one = |w: &str| -> Result<(), Reject> {
        match w {
            n if n.parse::<u8>().is_ok() => Ok(()),
            n if n.bytes().next().is_some_and(|c| c.is_ascii_lowercase())
                && n.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') =>
            {
                Ok(())
            }
            n => Err(format!("bad protocol {n:?}")),
        }
    };
    if p.eat_punct("{") {
        loop {
            one(&p.next_word("protocol")?)?;
            p.eat_punct(",");
            if p.eat_punct("}") {
                return Ok(());
            }
        }
    }
    one(&p.next_word("protocol")?)
}

/// `interface`: `[!] ifname` or a `{ }` list.
fn interface(p: &mut P) -> Result<(), Reject> {
    let one = |p: &mut P| -> Result<(), Reject> {
        p.eat_punct("!");
        let w = p.next_word("interface name")?;
        check_ifname(&w)
    };
    if p.eat_punct("{") {
        loop {
            one(p)?;
            p.eat_punct(",");
            if p.eat_punct("}") {
                return Ok(());
            }
        }
    }
    one(p)
}

fn check_ifname(w: &str) -> Result<(), Reject> {
    // IFNAMSIZ is 16 with the NUL.
    if w.is_empty()
        || w.len() > 15
        || !w.as_bytes()[0].is_ascii_alphabetic()
        || !w.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
    {
        return Err(format!("bad interface name {w:?}"));
    }
    Ok(())
}

/// parse.y `fromto`: `all` | `from` ipportspec `to` ipportspec, either side
/// optional (pf.conf(5) `hosts`).
fn fromto(p: &mut P) -> Result<(), Reject> {
    if p.eat_word("all") {
        return Ok(());
    }
    let mut seen = false;
    if p.eat_word("from") {
        host_or_list(p)?;
        port(p)?;
        seen = true;
    }
    if p.eat_word("to") {
        host_or_list(p)?;
        port(p)?;
        seen = true;
    }
    if seen {
        Ok(())
    } else {
        Err("expected 'all' or 'from'/'to'".into())
    }
}

fn host_or_list(p: &mut P) -> Result<(), Reject> {
    if p.eat_punct("{") {
        let mut n = 0;
        loop {
            if p.eat_punct("}") {
                return if n == 0 { Err("empty list".into()) } else { Ok(()) };
            }
            host(p)?;
            n += 1;
            p.eat_punct(",");
        }
    }
    host(p)
}

/// parse.y `host` / `dynaddr` / `xhost`: `[!] (any | self | address[/bits]
/// | ifname[:mod] | "(" ifname[:mod] ")")`.
fn host(p: &mut P) -> Result<(), Reject> {
    p.eat_punct("!");
    if p.eat_punct("(") {
        // parse.y `dynaddr : '(' STRING ')'`, optionally followed by
        // '/' NUMBER (`host`); `self` is a dynamic name too.
        let w = p.next_word("interface name")?;
        if w != "self" {
            if_with_modifier(&w)?;
        }
        p.expect_punct(")")?;
        if let Some(bits) = p.word().and_then(|w| w.strip_prefix('/')).map(str::to_string) {
            p.i += 1;
            let n: u32 = bits.parse().map_err(|_| format!("bad mask {bits:?}"))?;
            if n > 128 {
                return Err(format!("mask /{n} too long"));
            }
        }
        return Ok(());
    }
    let w = p.next_word("address")?;
    if w == "any" || w == "self" {
        return Ok(());
    }
    let (addr, bits) = match w.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (w.as_str(), None),
    };
    // why: pfctl reads IPv4 with inet_net_pton(), which takes abbreviated
    // forms (`10/8`, `10.1/8`), and IPv6 with getaddrinfo(), which takes a
    // `%scope` (sbin/pfctl/pfctl_parser.c host_v4() / host_v6()).
    let v6 = addr.split_once('%').map_or(addr, |(a, _)| a);
    let max = if addr.parse::<std::net::Ipv4Addr>().is_ok() || (bits.is_some() && abbreviated_v4(addr)) {
        32
    } else if v6.parse::<std::net::Ipv6Addr>().is_ok() {
        128
    } else {
        // interface-name [ "/" mask-bits ] (pf.conf(5) `address`)
        if_with_modifier(addr)?;
        128
    };
    if let Some(b) = bits {
        let n: u32 = b.parse().map_err(|_| format!("bad mask {b:?}"))?;
        if n > max {
            return Err(format!("mask /{n} longer than {max} bits"));
        }
    }
    // why: an address literal of the other family is dropped from a rule
    // with an `af` and, when none is left, refused (parse.y
    // remove_invalid_hosts(): "no translation address with matching
    // address family found."; expand_rule() skips from/to hosts of the
    // wrong family, leaving no rule). An interface name has either.
    let literal = addr.parse::<std::net::Ipv4Addr>().is_ok() || v6.parse::<std::net::Ipv6Addr>().is_ok();
    if let Some(af) = p.af_bits.filter(|_| literal) {
        if af != max {
            return Err(format!("address {w} is not of the rule's address family"));
        }
    }
    Ok(())
}

fn abbreviated_v4(a: &str) -> bool {
    let parts: Vec<&str> = a.split('.').collect();
    parts.len() <= 4 && parts.iter().all(|p| p.parse::<u8>().is_ok())
}

/// parse.y `dynaddr`: `ifname[:network|:broadcast|:peer|:0]` (several
/// modifiers may be combined, e.g. `:network:0`).
fn if_with_modifier(w: &str) -> Result<(), Reject> {
    let mut parts = w.split(':');
    check_ifname(parts.next().unwrap_or(""))?;
    for m in parts {
        if !matches!(m, "network" | "broadcast" | "peer" | "0") {
            return Err(format!("bad interface modifier ':{m}' in {w:?}"));
        }
    }
    Ok(())
}

fn port_number(w: &str) -> Result<u32, Reject> {
    if let Ok(n) = w.parse::<u32>() {
        if n > 65535 {
            return Err(format!("illegal port value {n}"));
        }
        return Ok(n);
    }
    // A service name (parse.y port_item STRING, resolved by getservbyname).
    if !w.is_empty()
        && w.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        return Ok(0);
    }
    Err(format!("bad port {w:?}"))
}

/// parse.y `port` / `port_item`: `port` then a unary op and a port, `a:b`,
/// `a<>b`, `a><b`, or a `{ }` list. `a:b` with a > b is "invalid port
/// range" (pf1072.fail).
fn port(p: &mut P) -> Result<(), Reject> {
    if !p.eat_word("port") {
        return Ok(());
    }
    let item = |p: &mut P| -> Result<(), Reject> {
        for op in ["=", "!=", "<=", ">=", "<", ">"] {
            if p.eat_punct(op) {
                port_number(&p.next_word("port")?)?;
                return Ok(());
            }
        }
        let w = p.next_word("port")?;
        if let Some((a, b)) = w.split_once(':') {
            let (a, b) = (port_number(a)?, port_number(b)?);
            if a > b {
                return Err("invalid port range".into());
            }
            return Ok(());
        }
        port_number(&w)?;
        if p.eat_punct("<>") || p.eat_punct("><") {
            port_number(&p.next_word("port")?)?;
        }
        Ok(())
    };
    if p.eat_punct("{") {
        loop {
            item(p)?;
            p.eat_punct(",");
            if p.eat_punct("}") {
                return Ok(());
            }
        }
    }
    item(p)
}

/// parse.y `rport`: `port` `N`, `N:M` or `N:*` after `->`.
fn rport(p: &mut P) -> Result<(), Reject> {
    let w = p.next_word("port")?;
    match w.split_once(':') {
        Some((a, "*")) => port_number(a).map(drop),
        Some((a, b)) => {
            if port_number(a)? > port_number(b)? {
                return Err("invalid port range".into());
            }
            Ok(())
        }
        None => port_number(&w).map(drop),
    }
}

/// Validates a whole anchor text (macros, comments, rules).
pub fn validate_text(text: &str) -> Result<usize, Reject> {
    let lines = logical_lines(text)?;
    for (n, l) in &lines {
        validate_line(l).map_err(|e| format!("line {n}: {e}: {l:?}"))?;
    }
    Ok(lines.len())
}
