//! Per-jail evaluation of jail.conf(5), in the order jail(8) uses.
//!
//! For each real (non-wildcard) jail, parameters are collected in file
//! order: the implicit `name` (or `jid` for a numeric name), then every
//! wildcard block (`*`, `foo.*`, and the global pseudo-jail) that appears
//! *before* the jail's own block, then the jail's block, then matching
//! wildcard blocks that appear *after* it. A later `=` replaces, `+=`
//! appends, and `persist`/`nopersist`/`persist = 0` all name one parameter
//! (jail(8)'s "no" prefix equivalence, also on the last dotted component:
//! `allow.mount` / `allow.nomount`). Then every `$var`/`${var}` is replaced
//! by the final value of the variable or parameter of that name in this
//! jail (so a wildcard's `path = "/j/$name"` differs per jail); a
//! list-valued reference is allowed only as a whole value, where it expands
//! into several list entries.
//!
//! Errors, each naming file:line and the jail: undefined or valueless
//! variables, reference loops, lists inside strings, a variable named like a
//! parameter, redefinition of `name` to another value, and a jail defined
//! twice. Unlike jail(8), which fails only the affected jail, any error
//! fails the whole file: jnet imports all or nothing.

use std::collections::{BTreeMap, HashMap};

use super::lexer::Piece;
use super::parser::{RawJail, RawParam};
use super::{JailConfError, JailDef, Location, Value};

/// Parameters jail(8) knows itself; a `$variable` may not share their names.
const KNOWN_PARAMS: &[&str] = &[
    "allow.dying",
    "command",
    "depend",
    "exec.clean",
    "exec.consolelog",
    "exec.created",
    "exec.fib",
    "exec.jail_user",
    "exec.poststart",
    "exec.poststop",
    "exec.prepare",
    "exec.prestart",
    "exec.prestop",
    "exec.release",
    "exec.start",
    "exec.stop",
    "exec.system_jail_user",
    "exec.system_user",
    "exec.timeout",
    "interface",
    "ip_hostname",
    "mount",
    "mount.devfs",
    "mount.fdescfs",
    "mount.fstab",
    "mount.procfs",
    "stop.timeout",
    "vnet.interface",
    "allow.chflags",
    "allow.mount",
    "allow.raw_sockets",
    "allow.set_hostname",
    "allow.socket_af",
    "allow.sysvipc",
    "devfs_ruleset",
    "host.hostname",
    "ip4.addr",
    "ip6.addr",
    "jid",
    "name",
    "path",
    "persist",
    "securelevel",
    "vnet",
];

/// True when two parameter names denote the same parameter, with or without
/// a "no" prefix on any dotted component they share a prefix up to.
pub(crate) fn equal_opts(a: &str, b: &str) -> bool {
    fn no_pair(x: &str, y: &str) -> bool {
        x == y || x.strip_prefix("no") == Some(y) || y.strip_prefix("no") == Some(x)
    }
    if no_pair(a, b) {
        return true;
    }
    // Walk common dotted prefixes: "allow.nomount" vs "allow.mount".
    let (mut a, mut b) = (a, b);
    while let Some(dot) = a.find('.') {
        let head = &a[..=dot];
        if !b.starts_with(head) {
            return false;
        }
        a = &a[dot + 1..];
        b = &b[dot + 1..];
        if no_pair(a, b) {
            return true;
        }
    }
    false
}

/// A wildcard block name: some component is exactly `*`.
pub(crate) fn is_wild_name(name: &str) -> bool {
    name.split('.').any(|c| c == "*")
}

/// Does jail `jname` fall under wildcard `wname`? A non-final `*` component
/// matches one component; a final `*` matches one or more.
pub(crate) fn wild_match(jname: &str, wname: &str) -> bool {
    let (mut j, mut w) = (jname, wname);
    loop {
        match (j.find('.'), w.find('.')) {
            (Some(jd), Some(wd)) => {
                if j[..jd] != w[..wd] && &w[..wd] != "*" {
                    return false;
                }
                j = &j[jd + 1..];
                w = &w[wd + 1..];
            }
            _ => return j == w || w == "*",
        }
    }
}

/// Positive name and whether the written name was negated:
/// `allow.nomount` -> (`allow.mount`, true).
pub(crate) fn positive_name(name: &str) -> (String, bool) {
    let (head, last) = match name.rfind('.') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    match last.strip_prefix("no") {
        Some(rest) if !rest.is_empty() => (format!("{head}{rest}"), true),
        _ => (name.to_string(), false),
    }
}

/// A parameter being collected for one jail; borrows the parsed text so
/// evaluating many jails allocates little.
struct EParam<'a> {
    name: &'a str,
    is_var: bool,
    immutable: bool,
    values: Vec<&'a [Piece]>,
    loc: &'a Location,
}

fn invalid(loc: &Location, line: usize, jail: &str, message: String) -> JailConfError {
    JailConfError::Invalid {
        file: loc.file.clone(),
        line,
        jail: jail.to_string(),
        message,
    }
}

fn display_name(p: &EParam) -> String {
    if p.is_var {
        format!("${}", p.name)
    } else {
        p.name.to_string()
    }
}

/// Evaluate every real jail in file order.
pub(crate) fn evaluate(raw: &[RawJail]) -> Result<Vec<JailDef>, JailConfError> {
    let wild: Vec<usize> = (0..raw.len()).filter(|&i| is_wild_name(&raw[i].name)).collect();
    let mut seen: HashMap<&str, &Location> = HashMap::new();
    let mut out = Vec::new();
    for (ji, jail) in raw.iter().enumerate() {
        if is_wild_name(&jail.name) {
            continue;
        }
        if let Some(first) = seen.insert(&jail.name, &jail.loc) {
            return Err(invalid(
                &jail.loc,
                jail.loc.line,
                &jail.name,
                format!("jail is defined twice (first at {}:{})", first.file, first.line),
            ));
        }
        out.push(evaluate_jail(raw, &wild, ji)?);
    }
    Ok(out)
}

fn evaluate_jail(raw: &[RawJail], wild: &[usize], ji: usize) -> Result<JailDef, JailConfError> {
    let jail = &raw[ji];
    let implicit_value = [Piece::Lit(jail.name.clone())];
    let mut ps: Vec<EParam> = Vec::new();
    // jail(8) takes a name that is a (non-zero) number as the jid.
    let implicit = if jail.name.parse::<i64>().map(|n| n != 0).unwrap_or(false) {
        "jid"
    } else {
        "name"
    };
    ps.push(EParam {
        name: implicit,
        is_var: false,
        immutable: true,
        values: vec![&implicit_value[..]],
        loc: &jail.loc,
    });
    let mut did_self = false;
    for &wi in wild {
        if ji < wi && !did_self {
            for p in &jail.params {
                add_param(&mut ps, p, &jail.name)?;
            }
            did_self = true;
        }
        if wild_match(&jail.name, &raw[wi].name) {
            for p in &raw[wi].params {
                add_param(&mut ps, p, &jail.name)?;
            }
        }
    }
    if !did_self {
        for p in &jail.params {
            add_param(&mut ps, p, &jail.name)?;
        }
    }

    let mut r = Resolver {
        ps: &ps,
        state: (0..ps.len()).map(|_| State::Todo).collect(),
        jail: &jail.name,
    };
    for k in 0..ps.len() {
        r.resolve(k)?;
    }
    let mut params = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for (k, p) in ps.iter().enumerate() {
        if p.is_var {
            continue;
        }
        let State::Done(vals) = &r.state[k] else {
            unreachable!("every parameter was resolved above")
        };
        let (key, value) = match vals.len() {
            0 => {
                let (pos, negated) = positive_name(p.name);
                (pos, Value::Bool(!negated))
            }
            1 => (p.name.to_string(), Value::Str(vals[0].clone())),
            _ => (p.name.to_string(), Value::List(vals.clone())),
        };
        sources.insert(key.clone(), p.loc.clone());
        params.insert(key, value);
    }
    Ok(JailDef {
        name: jail.name.clone(),
        params,
        location: jail.loc.clone(),
        sources,
    })
}

fn add_param<'a>(ps: &mut Vec<EParam<'a>>, p: &'a RawParam, jail: &str) -> Result<(), JailConfError> {
    let clash = || {
        invalid(
            &p.loc,
            p.loc.line,
            jail,
            format!("variable \"${}\" cannot have the same name as a parameter", p.name),
        )
    };
    match ps.iter_mut().find(|d| equal_opts(d.name, &p.name)) {
        Some(d) => {
            if d.is_var != p.is_var {
                return Err(clash());
            }
            if d.immutable {
                // why: jail(8) refuses any redefinition of `name`; accepting
                // the identical value keeps files like `t1 { name = "t1"; }`
                // (seen in the wild) readable without changing meaning.
                let same =
                    p.values.len() == d.values.len() && p.values.iter().zip(&d.values).all(|(a, b)| a.as_slice() == *b);
                if !p.append && same && d.name == p.name {
                    return Ok(());
                }
                return Err(invalid(
                    &p.loc,
                    p.loc.line,
                    jail,
                    format!("cannot redefine parameter \"{}\"", d.name),
                ));
            }
            d.name = &p.name;
            if !p.append || p.values.is_empty() {
                d.values.clear();
            }
            d.values.extend(p.values.iter().map(Vec::as_slice));
            d.loc = &p.loc;
        }
        None => {
            if p.is_var && KNOWN_PARAMS.iter().any(|k| equal_opts(k, &p.name)) {
                return Err(clash());
            }
            ps.push(EParam {
                name: &p.name,
                is_var: p.is_var,
                immutable: false,
                values: p.values.iter().map(Vec::as_slice).collect(),
                loc: &p.loc,
            });
        }
    }
    Ok(())
}

enum State {
    Todo,
    Busy,
    Done(Vec<String>),
}

struct Resolver<'a> {
    ps: &'a [EParam<'a>],
    state: Vec<State>,
    jail: &'a str,
}

impl Resolver<'_> {
    fn resolve(&mut self, k: usize) -> Result<Vec<String>, JailConfError> {
        match &self.state[k] {
            State::Done(v) => return Ok(v.clone()),
            State::Busy => unreachable!("loops are caught at the reference"),
            State::Todo => {}
        }
        self.state[k] = State::Busy;
        let p = &self.ps[k];
        let mut out = Vec::new();
        for word in &p.values {
            let mut vars = word.iter().filter_map(|x| match x {
                Piece::Var(name, pos) => Some((name, pos)),
                Piece::Lit(_) => None,
            });
            let lits_empty = word.iter().all(|x| !matches!(x, Piece::Lit(s) if !s.is_empty()));
            if let (Some((name, pos)), None, true) = (vars.next(), vars.next(), lits_empty) {
                // A whole-value reference; a list expands into several values.
                let vals = self.lookup(p, name, pos.line)?;
                out.extend(vals);
                continue;
            }
            let mut s = String::new();
            for piece in word.iter() {
                match piece {
                    Piece::Lit(l) => s.push_str(l),
                    Piece::Var(name, pos) => {
                        let vals = self.lookup(p, name, pos.line)?;
                        if vals.len() != 1 {
                            return Err(invalid(
                                p.loc,
                                pos.line,
                                self.jail,
                                format!(
                                    "{}: variable \"{name}\" is a list and cannot be substituted inside a string",
                                    display_name(p)
                                ),
                            ));
                        }
                        s.push_str(&vals[0]);
                    }
                }
            }
            out.push(s);
        }
        self.state[k] = State::Done(out.clone());
        Ok(out)
    }

    fn lookup(&mut self, from: &EParam, name: &str, line: usize) -> Result<Vec<String>, JailConfError> {
        let Some(k) = self.ps.iter().position(|q| q.name == name) else {
            return Err(invalid(
                from.loc,
                line,
                self.jail,
                format!("{}: variable \"{name}\" not found", display_name(from)),
            ));
        };
        if matches!(self.state[k], State::Busy) {
            return Err(invalid(
                from.loc,
                line,
                self.jail,
                format!("{}: variable loop through \"{name}\"", display_name(from)),
            ));
        }
        let vals = self.resolve(k)?;
        if vals.is_empty() {
            return Err(invalid(
                from.loc,
                line,
                self.jail,
                format!(
                    "{}: variable \"{name}\" not found (it has no value)",
                    display_name(from)
                ),
            ));
        }
        Ok(vals)
    }
}
