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
//! parameter, redefinition of `name` to another value, a jail defined twice,
//! and a value expanding past [`MAX_VALUE_BYTES`] (or the whole file past
//! [`MAX_TOTAL_BYTES`]). Resolution is iterative, so chains of any length
//! are fine. Unlike jail(8), which fails only the affected jail, any error
//! fails the whole file: jnet imports all or nothing.

use std::collections::{BTreeMap, HashMap};

use super::super::{JailConfError, Location, Value};
use super::lexer::Piece;
use super::parser::{RawJail, RawParam};

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
fn equal_opts(a: &str, b: &str) -> bool {
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
fn is_wild_name(name: &str) -> bool {
    name.split('.').any(|c| c == "*")
}

/// Does jail `jname` fall under wildcard `wname`? A non-final `*` component
/// matches one component; a final `*` matches one or more.
fn wild_match(jname: &str, wname: &str) -> bool {
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
fn positive_name(name: &str) -> (String, bool) {
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
/// evaluating many jails allocates little. Each value keeps the location of
/// the statement that gave it (`+=` may come from another file).
struct EParam<'a> {
    name: &'a str,
    is_var: bool,
    immutable: bool,
    values: Vec<(&'a [Piece], &'a Location)>,
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
/// One evaluated jail as the reference implementation gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JailDef {
    pub name: String,
    pub params: BTreeMap<String, Value>,
    pub location: Location,
    pub sources: BTreeMap<String, Location>,
}

pub(crate) fn evaluate(raw: &[RawJail]) -> Result<Vec<JailDef>, JailConfError> {
    let wild: Vec<usize> = (0..raw.len()).filter(|&i| is_wild_name(&raw[i].name)).collect();
    let mut seen: HashMap<&str, &Location> = HashMap::new();
    let mut out = Vec::new();
    let mut budget = MAX_TOTAL_BYTES;
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
        out.push(evaluate_jail(raw, &wild, ji, &mut budget)?);
    }
    Ok(out)
}

fn evaluate_jail(raw: &[RawJail], wild: &[usize], ji: usize, budget: &mut usize) -> Result<JailDef, JailConfError> {
    let jail = &raw[ji];
    let implicit_value = [Piece::Lit(jail.name.clone())];
    let mut ps = Collected::default();
    // jail(8) takes a name that is a (non-zero) number as the jid.
    let implicit = if jail.name.parse::<i64>().map(|n| n != 0).unwrap_or(false) {
        "jid"
    } else {
        "name"
    };
    ps.insert(EParam {
        name: implicit,
        is_var: false,
        immutable: true,
        values: vec![(&implicit_value[..], &jail.loc)],
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

    let ps = ps.ps;
    let mut r = Resolver::new(&ps, &jail.name, budget);
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

/// Entries a jail gathers before [`Collected`] indexes them by name; below
/// it a scan with [`equal_opts`] is cheaper than building the candidates.
const LINEAR_MAX: usize = 32;

/// The parameters one jail collects, in order of first definition.
#[derive(Default)]
struct Collected<'a> {
    ps: Vec<EParam<'a>>,
    /// Entry by its current name, once there are more than [`LINEAR_MAX`].
    /// why: a scan per statement made a block of 20,000 variables
    /// quadratic (over a minute in a debug build).
    index: Option<HashMap<&'a str, usize>>,
}

impl<'a> Collected<'a> {
    /// The first entry naming the same parameter as `name` (as
    /// [`equal_opts`] decides).
    fn find(&self, name: &str) -> Option<usize> {
        let Some(ix) = &self.index else {
            return self.ps.iter().position(|d| equal_opts(d.name, name));
        };
        // why: equal_opts(a, b) holds exactly when a == b or one is the
        // other with "no" put before one of its components (after a shared
        // dotted prefix); the candidates are those spellings of `name`.
        let mut best = ix.get(name).copied();
        let mut consider = |c: &str| {
            if let Some(&k) = ix.get(c) {
                best = Some(best.map_or(k, |b| b.min(k)));
            }
        };
        let starts = std::iter::once(0).chain(name.match_indices('.').map(|(i, _)| i + 1));
        for i in starts {
            consider(&format!("{}no{}", &name[..i], &name[i..]));
            if name[i..].starts_with("no") {
                consider(&format!("{}{}", &name[..i], &name[i + 2..]));
            }
        }
        best
    }

    fn insert(&mut self, p: EParam<'a>) {
        let k = self.ps.len();
        if let Some(ix) = &mut self.index {
            ix.entry(p.name).or_insert(k);
        }
        self.ps.push(p);
        if self.index.is_none() && self.ps.len() > LINEAR_MAX {
            let mut ix = HashMap::with_capacity(self.ps.len() * 2);
            for (k, d) in self.ps.iter().enumerate() {
                ix.entry(d.name).or_insert(k);
            }
            self.index = Some(ix);
        }
    }

    /// Entry `k` is now spelled `name` (`persist` after `nopersist`).
    fn rename(&mut self, k: usize, name: &'a str) {
        let old = std::mem::replace(&mut self.ps[k].name, name);
        if let Some(ix) = &mut self.index {
            if old != name && ix.get(old) == Some(&k) {
                ix.remove(old);
                ix.entry(name).or_insert(k);
            }
        }
    }
}

fn add_param<'a>(ps: &mut Collected<'a>, p: &'a RawParam, jail: &str) -> Result<(), JailConfError> {
    let clash = || {
        invalid(
            &p.loc,
            p.loc.line,
            jail,
            format!("variable \"${}\" cannot have the same name as a parameter", p.name),
        )
    };
    match ps.find(&p.name) {
        Some(k) => {
            let d = &ps.ps[k];
            if d.is_var != p.is_var {
                return Err(clash());
            }
            if d.immutable {
                // why: jail(8) refuses any redefinition of `name`; accepting
                // the identical value keeps files like `t1 { name = "t1"; }`
                // (seen in the wild) readable without changing meaning.
                let same = p.values.len() == d.values.len()
                    && p.values.iter().zip(&d.values).all(|(a, b)| a.as_slice() == b.0);
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
            ps.rename(k, &p.name);
            let d = &mut ps.ps[k];
            if !p.append || p.values.is_empty() {
                d.values.clear();
            }
            d.values.extend(p.values.iter().map(|v| (v.as_slice(), &p.loc)));
            d.loc = &p.loc;
        }
        None => {
            if p.is_var && KNOWN_PARAMS.iter().any(|k| equal_opts(k, &p.name)) {
                return Err(clash());
            }
            ps.insert(EParam {
                name: &p.name,
                is_var: p.is_var,
                immutable: false,
                values: p.values.iter().map(|v| (v.as_slice(), &p.loc)).collect(),
                loc: &p.loc,
            });
        }
    }
    Ok(())
}

/// Largest expansion of one parameter or variable: its values' bytes summed,
/// each with the terminating NUL jail_set(2) receives (so a list of empty
/// strings is not free). why: a few lines of doubling
/// variables (`$a1 = "${a0}${a0}"; ...`) otherwise expand to gigabytes. The
/// cap sits well above ARG_MAX (262144 bytes in FreeBSD's
/// sys/sys/syslimits.h), so no value that jail(8) could pass to exec(2) or
/// jail_set(2) is refused.
pub(crate) const MAX_VALUE_BYTES: usize = 1 << 20;

/// Largest total expansion of one jail.conf (all jails, variables
/// included). why: the per-value cap alone still lets a small file repeat a
/// 1 MiB variable in thousands of parameters.
pub(crate) const MAX_TOTAL_BYTES: usize = 64 << 20;

enum State {
    Todo,
    Busy,
    Done(Vec<String>),
}

/// One parameter being expanded: where in its values the walk stands.
struct Frame {
    k: usize,
    word: usize,
    piece: usize,
    out: Vec<String>,
    cur: String,
    /// Bytes of `out` (plus one per entry) and `cur`: checked against
    /// [`MAX_VALUE_BYTES`] before anything is appended.
    bytes: usize,
}

impl Frame {
    fn new(k: usize) -> Self {
        Frame {
            k,
            word: 0,
            piece: 0,
            out: Vec::new(),
            cur: String::new(),
            bytes: 0,
        }
    }
}

/// A whole-value reference (`$x`, `"${x}"`): one variable and no literal
/// text. Only then may a list expand into several values.
fn whole_reference(word: &[Piece]) -> bool {
    let mut vars = word.iter().filter(|x| matches!(x, Piece::Var(..)));
    let lits_empty = word.iter().all(|x| !matches!(x, Piece::Lit(s) if !s.is_empty()));
    vars.next().is_some() && vars.next().is_none() && lits_empty
}

struct Resolver<'a> {
    ps: &'a [EParam<'a>],
    /// Parameter index by its (last written) name.
    index: HashMap<&'a str, usize>,
    state: Vec<State>,
    jail: &'a str,
    /// Bytes still allowed for the whole file ([`MAX_TOTAL_BYTES`]).
    budget: &'a mut usize,
}

impl<'a> Resolver<'a> {
    fn new(ps: &'a [EParam<'a>], jail: &'a str, budget: &'a mut usize) -> Self {
        let mut index = HashMap::with_capacity(ps.len());
        for (k, p) in ps.iter().enumerate() {
            index.entry(p.name).or_insert(k);
        }
        Resolver {
            ps,
            index,
            state: (0..ps.len()).map(|_| State::Todo).collect(),
            jail,
            budget,
        }
    }

    /// Expand parameter `root` and everything it references.
    ///
    /// why: iterative, with an explicit stack of [`Frame`]s on the heap:
    /// resolving by recursion overflowed the thread stack on a chain of
    /// 20,000 variables (`$v0 = "$v1"; $v1 = "$v2"; ...`). The stack holds
    /// each parameter at most once (a second visit is a loop), so its depth
    /// is bounded by the number of parameters.
    fn resolve(&mut self, root: usize) -> Result<(), JailConfError> {
        if !matches!(self.state[root], State::Todo) {
            return Ok(());
        }
        self.state[root] = State::Busy;
        let mut stack = vec![Frame::new(root)];
        while let Some(f) = stack.last_mut() {
            let p = &self.ps[f.k];
            let Some(&(word, vloc)) = p.values.get(f.word) else {
                let f = stack.pop().expect("the loop holds a frame");
                let cost = f.bytes;
                if cost > *self.budget {
                    return Err(invalid(
                        p.loc,
                        p.loc.line,
                        self.jail,
                        format!(
                            "{}: jail.conf expands to more than {} MiB of values",
                            display_name(p),
                            MAX_TOTAL_BYTES >> 20
                        ),
                    ));
                }
                *self.budget -= cost;
                self.state[f.k] = State::Done(f.out);
                continue;
            };
            let whole = whole_reference(word);
            let Some(piece) = word.get(f.piece) else {
                if !whole {
                    grow(f, p, vloc, vloc.line, 1, self.jail)?;
                    f.out.push(std::mem::take(&mut f.cur));
                }
                f.word += 1;
                f.piece = 0;
                continue;
            };
            match piece {
                Piece::Lit(l) => {
                    if !whole {
                        grow(f, p, vloc, vloc.line, l.len(), self.jail)?;
                        f.cur.push_str(l);
                    }
                    f.piece += 1;
                }
                Piece::Var(name, pos) => {
                    let Some(&j) = self.index.get(name.as_str()) else {
                        return Err(invalid(
                            vloc,
                            pos.line,
                            self.jail,
                            format!("{}: variable \"{name}\" not found", display_name(p)),
                        ));
                    };
                    let vals = match &self.state[j] {
                        State::Todo => {
                            // Expand the referenced one first, then come back
                            // to this same piece.
                            self.state[j] = State::Busy;
                            stack.push(Frame::new(j));
                            continue;
                        }
                        State::Busy => {
                            return Err(invalid(
                                vloc,
                                pos.line,
                                self.jail,
                                format!("{}: variable loop through \"{name}\"", display_name(p)),
                            ))
                        }
                        State::Done(v) => v,
                    };
                    if vals.is_empty() {
                        return Err(invalid(
                            vloc,
                            pos.line,
                            self.jail,
                            format!("{}: variable \"{name}\" not found (it has no value)", display_name(p)),
                        ));
                    }
                    if whole {
                        let add = vals.iter().map(|v| v.len() + 1).sum();
                        grow(f, p, vloc, pos.line, add, self.jail)?;
                        f.out.extend(vals.iter().cloned());
                    } else {
                        if vals.len() != 1 {
                            return Err(invalid(
                                vloc,
                                pos.line,
                                self.jail,
                                format!(
                                    "{}: variable \"{name}\" is a list and cannot be substituted inside a string",
                                    display_name(p)
                                ),
                            ));
                        }
                        grow(f, p, vloc, pos.line, vals[0].len(), self.jail)?;
                        f.cur.push_str(&vals[0]);
                    }
                    f.piece += 1;
                }
            }
        }
        Ok(())
    }
}

/// Account for `add` more bytes in frame `f`, refusing to pass
/// [`MAX_VALUE_BYTES`] before anything is allocated.
fn grow(f: &mut Frame, p: &EParam, loc: &Location, line: usize, add: usize, jail: &str) -> Result<(), JailConfError> {
    match f.bytes.checked_add(add) {
        Some(n) if n <= MAX_VALUE_BYTES => {
            f.bytes = n;
            Ok(())
        }
        _ => Err(invalid(
            loc,
            line,
            jail,
            format!(
                "{}: value expands to more than {} bytes",
                display_name(p),
                MAX_VALUE_BYTES
            ),
        )),
    }
}
