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
//! Names are interned (intern.rs) and the names equivalent to each one
//! under the "no" rule are found once per file, so collecting a jail's
//! parameters compares integers; values are ranges of the parsed words
//! until they are expanded into the jail's strings.
//!
//! Errors, each naming file:line and the jail: undefined or valueless
//! variables, reference loops, lists inside strings, a variable named like a
//! parameter, redefinition of `name` to another value, a jail defined twice,
//! and a value expanding past [`MAX_VALUE_BYTES`] (or the whole file past
//! [`MAX_TOTAL_BYTES`]). Resolution is iterative, so chains of any length
//! are fine. Unlike jail(8), which fails only the affected jail, any error
//! fails the whole file: jnet imports all or nothing.

use super::intern::{FxMap, Interner, Sym};
use super::lexer::Part;
use super::model::{Param, Store, Val};
use super::parser::{Block, Loc, Raw, Stmt};
use super::{JailConf, JailConfError, Location};

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

/// What evaluation needs about each interned name, found once per file.
struct Names {
    /// The other interned names that denote the same parameter
    /// ([`equal_opts`]).
    near: Vec<Vec<Sym>>,
    /// Whether a variable of this name would clash with a parameter jail(8)
    /// knows: 0 not yet known, 1 no, 2 yes.
    known: Vec<u8>,
}

impl Names {
    fn new(raw: &Raw) -> Self {
        let syms = &raw.words.syms;
        let mut near = Vec::with_capacity(syms.len());
        let mut buf = String::new();
        for k in 0..syms.len() {
            let name = syms.name(k);
            let mut found: Vec<Sym> = Vec::new();
            // why: equal_opts(a, b) holds exactly when a == b or one is the
            // other with "no" put before one of its components (after a
            // shared dotted prefix); the candidates are those spellings.
            let starts = std::iter::once(0).chain(name.match_indices('.').map(|(i, _)| i + 1));
            for i in starts {
                buf.clear();
                buf.push_str(&name[..i]);
                buf.push_str("no");
                buf.push_str(&name[i..]);
                found.extend(syms.get(&buf));
                if name[i..].starts_with("no") {
                    buf.clear();
                    buf.push_str(&name[..i]);
                    buf.push_str(&name[i + 2..]);
                    found.extend(syms.get(&buf));
                }
            }
            found.retain(|&s| s != k);
            near.push(found);
        }
        Names {
            known: vec![0; near.len()],
            near,
        }
    }

    fn is_known_param(&mut self, raw: &Raw, k: Sym) -> bool {
        match self.known.get(k) {
            Some(1) => false,
            Some(2) => true,
            _ => {
                let name = raw.words.syms.name(k);
                let yes = KNOWN_PARAMS.iter().any(|p| equal_opts(p, name));
                if let Some(slot) = self.known.get_mut(k) {
                    *slot = if yes { 2 } else { 1 };
                }
                yes
            }
        }
    }
}

/// Values given by one statement: a range of [`Raw::values`] and where.
#[derive(Debug, Clone, Copy)]
struct Seg {
    values: (usize, usize),
    loc: Loc,
}

/// A parameter being collected for one jail. Its values are the values of
/// its segments in order (`+=` adds a segment, `=` starts again), each
/// keeping the location of the statement that gave it.
#[derive(Clone)]
struct Entry {
    name: Sym,
    is_var: bool,
    immutable: bool,
    head: Option<Seg>,
    tail: Vec<Seg>,
    /// The statement that last set it.
    loc: Loc,
}

impl Entry {
    fn seg(&self, i: usize) -> Option<Seg> {
        if i == 0 {
            self.head
        } else {
            self.tail.get(i - 1).copied()
        }
    }
    fn clear(&mut self) {
        self.head = None;
        self.tail.clear();
    }
    fn push(&mut self, s: Seg) {
        if s.values.0 == s.values.1 {
            return;
        }
        if self.head.is_none() {
            self.head = Some(s);
        } else {
            self.tail.push(s);
        }
    }
    fn count(&self) -> usize {
        self.head.map_or(0, |h| h.values.1 - h.values.0)
            + self.tail.iter().map(|s| s.values.1 - s.values.0).sum::<usize>()
    }
}

/// Everything one evaluation keeps between jails (buffers reused).
struct Ctx<'r> {
    raw: &'r Raw,
    names: Names,
    /// Bytes still allowed for the whole file ([`MAX_TOTAL_BYTES`]).
    budget: usize,
    /// Resolver: first entry by current name (usize::MAX: none).
    first: Vec<usize>,
    state: Vec<State>,
    /// What the jails get: every expanded value lands in `store.text`.
    store: Store,
    /// The current jail's expanded values: ranges of `store.text`.
    done: Vec<(usize, usize)>,
    /// Finished values of the frames being walked: ranges of `stext`.
    scratch: Vec<(usize, usize)>,
    stext: String,
    stack: Vec<Frame>,
    /// Buffers for [`Frame::cur`], reused.
    spare: Vec<String>,
    /// Output parameter names, and each input name's output name
    /// (u32::MAX: not yet): as written, and positive with its negation.
    keys: Interner,
    key_of: Vec<u32>,
    pos_of: Vec<(u32, bool)>,
    out: Vec<(u32, Val, Loc)>,
    /// The previous jail's output names in collection order, and that
    /// order sorted by name (stable): indices into it.
    last_keys: Vec<u32>,
    order: Vec<usize>,
    /// By a statement's first value ([`Seg::values`]`.0`): the range of
    /// `store.spans` holding its values once expanded, when they have no
    /// `$` reference (u32::MAX: not yet, or not literal).
    /// why: the global `*` parameters (`exec.start = "/bin/sh /etc/rc"`)
    /// reach every jail with the same text; copying it per jail was about
    /// a tenth of a 10,000-jail parse (issue 10). Jails share the spans.
    shared: Vec<(u32, u32)>,
    /// The current jail's entries whose values are shared spans.
    lit: Vec<(u32, u32)>,
    /// The wildcard blocks before the current jail that it falls under.
    pre: Vec<usize>,
    /// What the last jail had collected after those blocks, for reuse
    /// by the next jail under the same blocks (see [`Ctx::jail`]).
    prefix: Option<Prefix>,
    /// An [`add_param`](Ctx::add_param) met the jail's implicit `name`
    /// (its outcome then depends on the jail).
    touched_implicit: bool,
}

/// The entries collected from the wildcard blocks `blocks` (after the
/// implicit `name`/`jid` entry `implicit`), none of which met it.
struct Prefix {
    implicit: Sym,
    blocks: Vec<usize>,
    ps: Vec<Entry>,
}

fn invalid(file: &str, line: usize, jail: &str, message: String) -> JailConfError {
    JailConfError::Invalid {
        file: file.to_string(),
        line,
        jail: jail.to_string(),
        message,
    }
}

/// Evaluate every real jail in file order.
pub(crate) fn evaluate(mut owned: Raw) -> Result<JailConf, JailConfError> {
    let name_sym = owned.words.syms.intern("name");
    let jid_sym = owned.words.syms.intern("jid");
    let raw = &owned;
    let wild: Vec<usize> = (0..raw.jails.len())
        .filter(|&i| is_wild_name(&raw.jails[i].name))
        .collect();
    let mut cx = Ctx {
        raw,
        names: Names::new(raw),
        budget: MAX_TOTAL_BYTES,
        first: vec![usize::MAX; raw.words.syms.len()],
        state: Vec::new(),
        store: Store {
            files: raw.files.clone(),
            ..Store::default()
        },
        done: Vec::new(),
        scratch: Vec::new(),
        stext: String::new(),
        stack: Vec::new(),
        spare: Vec::new(),
        keys: Interner::default(),
        key_of: vec![u32::MAX; raw.words.syms.len()],
        pos_of: vec![(u32::MAX, false); raw.words.syms.len()],
        out: Vec::new(),
        last_keys: Vec::new(),
        order: Vec::new(),
        shared: vec![(u32::MAX, 0); raw.values.len()],
        lit: Vec::new(),
        pre: Vec::new(),
        prefix: None,
        touched_implicit: false,
    };
    let real = raw.jails.len() - wild.len();
    let mut seen: FxMap<&str, Loc> = FxMap::default();
    seen.reserve(raw.jails.len());
    let mut out = Vec::with_capacity(raw.jails.len() - wild.len());
    let mut ps = Collected::default();
    for (ji, jail) in raw.jails.iter().enumerate() {
        if is_wild_name(&jail.name) {
            continue;
        }
        if let Some(first) = seen.insert(&jail.name, jail.loc) {
            return Err(invalid(
                raw.file(jail.loc),
                jail.loc.line,
                &jail.name,
                format!("jail is defined twice (first at {}:{})", raw.file(first), first.line),
            ));
        }
        // jail(8) takes a name that is a (non-zero) number as the jid.
        let implicit = if jail.name.parse::<i64>().map(|n| n != 0).unwrap_or(false) {
            jid_sym
        } else {
            name_sym
        };
        let range = cx.jail(&mut ps, &wild, ji, implicit)?;
        out.push((
            // Moved out of `owned` at the end (why: a copy per jail).
            String::new(),
            Location {
                file: raw.file(jail.loc).to_string(),
                line: jail.loc.line,
            },
            range,
        ));
        if out.len() == 1 {
            // why: the other jails are most likely alike; growing the
            // buffers by doubling copied each of them several times.
            let rest = real - 1;
            let st = &mut cx.store;
            // Capped: a first jail unlike the others must not reserve much.
            st.text.reserve(st.text.len().saturating_mul(rest).min(16 << 20));
            st.spans.reserve(st.spans.len().saturating_mul(rest).min(1 << 20));
            st.params.reserve(st.params.len().saturating_mul(rest).min(1 << 20));
        }
    }
    let mut store = cx.store;
    // Names sorted, and each parameter renumbered to match: a jail's
    // parameters (sorted by name) are then sorted by number too.
    let mut names: Vec<(Box<str>, u32)> = cx.keys.into_names().into_iter().zip(0u32..).collect();
    names.sort_unstable();
    let mut rank = vec![0u32; names.len()];
    for (new, (_, old)) in names.iter().enumerate() {
        rank[*old as usize] = new as u32;
    }
    for p in &mut store.params {
        p.name = rank[p.name as usize];
    }
    store.index = names.iter().map(|(n, _)| n.clone()).zip(0u32..).collect();
    store.names = names.into_iter().map(|(n, _)| n).collect();
    drop(seen);
    let real_jails = owned.jails.iter_mut().filter(|j| !is_wild_name(&j.name));
    for (slot, j) in out.iter_mut().zip(real_jails) {
        slot.0 = std::mem::take(&mut j.name);
    }
    Ok(JailConf::new(store, out))
}

impl Ctx<'_> {
    /// Evaluate jail `ji` into [`Ctx::store`]; the range of its parameters.
    fn jail(
        &mut self,
        ps: &mut Collected,
        wild: &[usize],
        ji: usize,
        implicit: Sym,
    ) -> Result<(usize, usize), JailConfError> {
        let raw = self.raw;
        let jail = &raw.jails[ji];
        ps.clear();
        ps.insert(Entry {
            name: implicit,
            is_var: false,
            immutable: true,
            head: Some(Seg {
                values: (jail.name_value, jail.name_value + 1),
                loc: jail.loc,
            }),
            tail: Vec::new(),
            loc: jail.loc,
        });
        let own = |b: &Block| &raw.params[b.params.0..b.params.1];
        // In file order: the wildcard blocks before the jail's own block,
        // the block, the wildcard blocks after it.
        self.pre.clear();
        self.pre.extend(
            wild.iter()
                .copied()
                .take_while(|&wi| wi < ji)
                .filter(|&wi| wild_match(&jail.name, &raw.jails[wi].name)),
        );
        // why the reuse: every jail under the same wildcard blocks (usually
        // the global `*` alone) collects the same entries from them, and
        // collecting them again per jail was a tenth of a 10,000-jail parse
        // (issue 10). Only the implicit entry differs, and a run that met
        // it (`* { name = x; }`) is not reused: its outcome is the jail's.
        match &self.prefix {
            Some(c) if c.implicit == implicit && c.blocks == self.pre => {
                let head = ps.ps[0].head;
                ps.ps.clone_from(&c.ps);
                let first = &mut ps.ps[0];
                first.head = head;
                first.loc = jail.loc;
            }
            _ => {
                self.touched_implicit = false;
                for i in 0..self.pre.len() {
                    for p in own(&raw.jails[self.pre[i]]) {
                        self.add_param(ps, p, jail)?;
                    }
                }
                self.prefix = (!self.touched_implicit && ps.index.is_none()).then(|| Prefix {
                    implicit,
                    blocks: self.pre.clone(),
                    ps: ps.ps.clone(),
                });
            }
        }
        for p in own(jail) {
            self.add_param(ps, p, jail)?;
        }
        for &wi in wild.iter().skip_while(|&&wi| wi < ji) {
            if wild_match(&jail.name, &raw.jails[wi].name) {
                for p in own(&raw.jails[wi]) {
                    self.add_param(ps, p, jail)?;
                }
            }
        }

        // Resolve every entry, then hand out the values.
        let n = ps.ps.len();
        self.state.clear();
        self.state.resize_with(n, || State::Todo);
        self.lit.clear();
        self.lit.resize(n, (u32::MAX, 0));
        self.done.clear();
        for (k, p) in ps.ps.iter().enumerate() {
            if let Some(f) = self.first.get_mut(p.name) {
                if *f == usize::MAX {
                    *f = k;
                }
            }
        }
        let mut result = Ok(());
        for k in 0..n {
            result = self.resolve(&ps.ps, k, &jail.name);
            if result.is_err() {
                break;
            }
        }
        for p in &ps.ps {
            if let Some(f) = self.first.get_mut(p.name) {
                *f = usize::MAX;
            }
        }
        result?;

        let mut tmp = std::mem::take(&mut self.out);
        tmp.clear();
        for (k, p) in ps.ps.iter().enumerate() {
            if p.is_var {
                continue;
            }
            let State::Done(a, b) = self.state[k] else {
                continue;
            };
            let (key, value) = if a == b {
                let (key, negated) = self.positive_key(p.name);
                (key, Val::Bool(!negated))
            } else if self.lit[k].0 != u32::MAX {
                let (start, end) = self.lit[k];
                (self.key(p.name), Val::Vals(start, end))
            } else {
                let spans = &mut self.store.spans;
                let start = spans.len() as u32;
                spans.extend(self.done[a..b].iter().map(|&(x, y)| (x as u32, y as u32)));
                let end = spans.len() as u32;
                (self.key(p.name), Val::Vals(start, end))
            };
            tmp.push((key, value, p.loc));
        }
        // Stable: of entries with the same key, the last one wins (as
        // inserting them one by one into a map would give).
        // why the cached order: jails under the same wildcards collect the
        // same names in the same order, and sorting by name string was a
        // tenth of evaluating 10,000 jails.
        if !tmp.iter().map(|t| t.0).eq(self.last_keys.iter().copied()) {
            self.last_keys.clear();
            self.last_keys.extend(tmp.iter().map(|t| t.0));
            self.order.clear();
            self.order.extend(0..tmp.len());
            let (keys, lk) = (&self.keys, &self.last_keys);
            self.order
                .sort_by(|&x, &y| keys.name(lk[x] as usize).cmp(keys.name(lk[y] as usize)));
        }
        let start = self.store.params.len();
        for (i, &x) in self.order.iter().enumerate() {
            let (key, value, loc) = tmp[x];
            if self.order.get(i + 1).is_some_and(|&nx| tmp[nx].0 == key) {
                continue;
            }
            self.store.params.push(Param {
                name: key,
                value,
                file: loc.file as u32,
                line: loc.line,
            });
        }
        self.out = tmp;
        Ok((start, self.store.params.len()))
    }

    /// The output name of input name `k`.
    fn key(&mut self, k: Sym) -> u32 {
        match self.key_of.get(k) {
            Some(&o) if o != u32::MAX => o,
            _ => {
                let o = self.keys.intern(self.raw.words.syms.name(k)) as u32;
                if let Some(slot) = self.key_of.get_mut(k) {
                    *slot = o;
                }
                o
            }
        }
    }

    /// The positive output name of input name `k` and whether `k` is negated.
    fn positive_key(&mut self, k: Sym) -> (u32, bool) {
        match self.pos_of.get(k) {
            Some(&(o, neg)) if o != u32::MAX => (o, neg),
            _ => {
                let (pos, neg) = positive_name(self.raw.words.syms.name(k));
                let o = self.keys.intern(&pos) as u32;
                if let Some(slot) = self.pos_of.get_mut(k) {
                    *slot = (o, neg);
                }
                (o, neg)
            }
        }
    }

    fn add_param(&mut self, ps: &mut Collected, p: &Stmt, jail: &Block) -> Result<(), JailConfError> {
        let raw = self.raw;
        let clash = || {
            invalid(
                raw.file(p.loc),
                p.loc.line,
                &jail.name,
                format!(
                    "variable \"${}\" cannot have the same name as a parameter",
                    raw.words.syms.name(p.name)
                ),
            )
        };
        let seg = Seg {
            values: p.values,
            loc: p.loc,
        };
        match ps.find(&self.names, p.name) {
            Some(k) => {
                let d = &ps.ps[k];
                if d.is_var != p.is_var {
                    return Err(clash());
                }
                if d.immutable {
                    self.touched_implicit = true;
                    // why: jail(8) refuses any redefinition of `name`; accepting
                    // the identical value keeps files like `t1 { name = "t1"; }`
                    // (seen in the wild) readable without changing meaning.
                    // The immutable entry is the implicit one: one value, the
                    // jail's name as one literal.
                    let same = d.count() == p.values.1 - p.values.0
                        && raw.values[p.values.0..p.values.1]
                            .iter()
                            .zip(d.head.iter())
                            .all(|(&(a, b), h)| {
                                let (c, e) = raw.values[h.values.0];
                                raw.words.word(a, b).len() == raw.words.word(c, e).len()
                                    && raw
                                        .words
                                        .word(a, b)
                                        .iter()
                                        .zip(raw.words.word(c, e))
                                        .all(|(x, y)| same_part(raw, x, y))
                            });
                    if !p.append && same && d.name == p.name {
                        return Ok(());
                    }
                    return Err(invalid(
                        raw.file(p.loc),
                        p.loc.line,
                        &jail.name,
                        format!("cannot redefine parameter \"{}\"", raw.words.syms.name(d.name)),
                    ));
                }
                ps.rename(k, p.name);
                let d = &mut ps.ps[k];
                if !p.append || p.values.0 == p.values.1 {
                    d.clear();
                }
                d.push(seg);
                d.loc = p.loc;
            }
            None => {
                if p.is_var && self.names.is_known_param(raw, p.name) {
                    return Err(clash());
                }
                let mut e = Entry {
                    name: p.name,
                    is_var: p.is_var,
                    immutable: false,
                    head: None,
                    tail: Vec::new(),
                    loc: p.loc,
                };
                e.push(seg);
                ps.insert(e);
            }
        }
        Ok(())
    }
}

/// Two word parts are the same text or the same reference.
fn same_part(raw: &Raw, x: &Part, y: &Part) -> bool {
    match (x, y) {
        (Part::Lit(a, b), Part::Lit(c, d)) => raw.words.lit(*a, *b) == raw.words.lit(*c, *d),
        (Part::Var(s, m), Part::Var(t, n)) => s == t && m == n,
        _ => false,
    }
}

/// Entries a jail gathers before [`Collected`] indexes them by name; below
/// it a scan is cheaper than building the index.
const LINEAR_MAX: usize = 32;

/// The parameters one jail collects, in order of first definition.
#[derive(Default)]
struct Collected {
    ps: Vec<Entry>,
    /// Entry by its current name, once there are more than [`LINEAR_MAX`].
    /// why: a scan per statement made a block of 20,000 variables
    /// quadratic (over a minute in a debug build).
    index: Option<FxMap<Sym, usize>>,
}

impl Collected {
    fn clear(&mut self) {
        self.ps.clear();
        self.index = None;
    }

    /// The first entry naming the same parameter as `name` (as
    /// [`equal_opts`] decides).
    fn find(&self, names: &Names, name: Sym) -> Option<usize> {
        let near = names.near.get(name).map_or(&[][..], Vec::as_slice);
        let Some(ix) = &self.index else {
            return self.ps.iter().position(|d| d.name == name || near.contains(&d.name));
        };
        let mut best = ix.get(&name).copied();
        for c in near {
            if let Some(&k) = ix.get(c) {
                best = Some(best.map_or(k, |b| b.min(k)));
            }
        }
        best
    }

    fn insert(&mut self, p: Entry) {
        let k = self.ps.len();
        if let Some(ix) = &mut self.index {
            ix.entry(p.name).or_insert(k);
        }
        self.ps.push(p);
        if self.index.is_none() && self.ps.len() > LINEAR_MAX {
            let mut ix = FxMap::default();
            ix.reserve(self.ps.len() * 2);
            for (k, d) in self.ps.iter().enumerate() {
                ix.entry(d.name).or_insert(k);
            }
            self.index = Some(ix);
        }
    }

    /// Entry `k` is now spelled `name` (`persist` after `nopersist`).
    fn rename(&mut self, k: usize, name: Sym) {
        let old = std::mem::replace(&mut self.ps[k].name, name);
        if let Some(ix) = &mut self.index {
            if old != name && ix.get(&old) == Some(&k) {
                ix.remove(&old);
                ix.entry(name).or_insert(k);
            }
        }
    }
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

#[derive(Clone, Copy)]
enum State {
    Todo,
    Busy,
    /// Expanded: the range of [`Ctx::done`] holding the values.
    Done(usize, usize),
}

/// One parameter being expanded: where in its values the walk stands.
struct Frame {
    k: usize,
    seg: usize,
    word: usize,
    part: usize,
    /// Index in [`Ctx::scratch`] where this frame's finished values start,
    /// and length of [`Ctx::stext`] then.
    out: usize,
    out_text: usize,
    cur: String,
    /// Bytes of the finished values (plus one per value) and `cur`: checked
    /// against [`MAX_VALUE_BYTES`] before anything is appended.
    bytes: usize,
}

impl Frame {
    fn new(k: usize, out: usize, out_text: usize, cur: String) -> Self {
        Frame {
            k,
            seg: 0,
            word: 0,
            part: 0,
            out,
            out_text,
            cur,
            bytes: 0,
        }
    }
}

/// A whole-value reference (`$x`, `"${x}"`): one variable and no literal
/// text. Only then may a list expand into several values.
fn whole_reference(word: &[Part]) -> bool {
    let mut vars = word.iter().filter(|x| matches!(x, Part::Var(..)));
    let lits_empty = word.iter().all(|x| !matches!(x, Part::Lit(a, b) if a != b));
    vars.next().is_some() && vars.next().is_none() && lits_empty
}

fn display_name(raw: &Raw, p: &Entry) -> String {
    let n = raw.words.syms.name(p.name);
    if p.is_var {
        format!("${n}")
    } else {
        n.to_string()
    }
}

impl Ctx<'_> {
    /// Expand entry `root` and everything it references.
    ///
    /// why: iterative, with an explicit stack of [`Frame`]s on the heap:
    /// resolving by recursion overflowed the thread stack on a chain of
    /// 20,000 variables (`$v0 = "$v1"; $v1 = "$v2"; ...`). The stack holds
    /// each parameter at most once (a second visit is a loop), so its depth
    /// is bounded by the number of parameters.
    fn resolve(&mut self, ps: &[Entry], root: usize, jail: &str) -> Result<(), JailConfError> {
        if !matches!(self.state[root], State::Todo) {
            return Ok(());
        }
        let start = self.done.len();
        let p = &ps[root];
        // A single statement's values, shareable between jails when literal.
        let single = p.head.filter(|_| p.tail.is_empty()).map(|h| h.values.0);
        if let Some(v) = single {
            if let Some(&(s, e)) = self.shared.get(v).filter(|x| x.0 != u32::MAX) {
                let spans = &self.store.spans[s as usize..e as usize];
                self.done.extend(spans.iter().map(|&(x, y)| (x as usize, y as usize)));
                self.state[root] = State::Done(start, self.done.len());
                self.lit[root] = (s, e);
                return Ok(());
            }
        }
        if self.literal_only(p, jail)? {
            self.state[root] = State::Done(start, self.done.len());
            if let Some(v) = single.filter(|&v| v < self.shared.len()) {
                let spans = &mut self.store.spans;
                let s = spans.len() as u32;
                spans.extend(self.done[start..].iter().map(|&(x, y)| (x as u32, y as u32)));
                let se = (s, spans.len() as u32);
                self.shared[v] = se;
                self.lit[root] = se;
            }
            return Ok(());
        }
        self.state[root] = State::Busy;
        self.scratch.clear();
        self.stext.clear();
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        stack.push(Frame::new(root, 0, 0, self.spare.pop().unwrap_or_default()));
        let r = self.walk(ps, &mut stack, jail);
        self.stack = stack;
        r
    }

    /// Expand an entry none of whose values refers to a variable, if it is
    /// one (true); the checks and messages are those of [`Ctx::walk`].
    fn literal_only(&mut self, p: &Entry, jail: &str) -> Result<bool, JailConfError> {
        let raw = self.raw;
        let mut i = 0;
        while let Some(s) = p.seg(i) {
            for &(a, b) in &raw.values[s.values.0..s.values.1] {
                if raw.words.word(a, b).iter().any(|x| matches!(x, Part::Var(..))) {
                    return Ok(false);
                }
            }
            i += 1;
        }
        let start = self.done.len();
        let mut bytes = 0usize;
        let mut i = 0;
        while let Some(s) = p.seg(i) {
            for &(a, b) in &raw.values[s.values.0..s.values.1] {
                let word = raw.words.word(a, b);
                let len: usize = word
                    .iter()
                    .map(|x| match *x {
                        Part::Lit(a, b) => b - a,
                        Part::Var(..) => 0,
                    })
                    .sum();
                // why: one sum for what walk() adds piece by piece; a
                // literal-only value fails the cap the same way either way.
                match bytes.checked_add(len).and_then(|n| n.checked_add(1)) {
                    Some(n) if n <= MAX_VALUE_BYTES => bytes = n,
                    _ => {
                        self.done.truncate(start);
                        return Err(invalid(
                            raw.file(s.loc),
                            s.loc.line,
                            jail,
                            format!(
                                "{}: value expands to more than {} bytes",
                                display_name(raw, p),
                                MAX_VALUE_BYTES
                            ),
                        ));
                    }
                }
                let text = &mut self.store.text;
                let v = text.len();
                for x in word {
                    if let Part::Lit(a, b) = *x {
                        text.push_str(raw.words.lit(a, b));
                    }
                }
                self.done.push((v, text.len()));
            }
            i += 1;
        }
        if bytes > self.budget {
            self.done.truncate(start);
            return Err(invalid(
                raw.file(p.loc),
                p.loc.line,
                jail,
                format!(
                    "{}: jail.conf expands to more than {} MiB of values",
                    display_name(raw, p),
                    MAX_TOTAL_BYTES >> 20
                ),
            ));
        }
        self.budget -= bytes;
        Ok(true)
    }

    fn walk(&mut self, ps: &[Entry], stack: &mut Vec<Frame>, jail: &str) -> Result<(), JailConfError> {
        let raw = self.raw;
        while let Some(f) = stack.last_mut() {
            let p = &ps[f.k];
            // The current word and the statement it came from.
            let mut cur = None;
            while let Some(s) = p.seg(f.seg) {
                let w = s.values.0 + f.word;
                if w < s.values.1 {
                    cur = Some((raw.values[w], s.loc));
                    break;
                }
                f.seg += 1;
                f.word = 0;
            }
            let Some(((wa, wb), vloc)) = cur else {
                let Some(f) = stack.pop() else { break };
                let cost = f.bytes;
                if cost > self.budget {
                    return Err(invalid(
                        raw.file(p.loc),
                        p.loc.line,
                        jail,
                        format!(
                            "{}: jail.conf expands to more than {} MiB of values",
                            display_name(raw, p),
                            MAX_TOTAL_BYTES >> 20
                        ),
                    ));
                }
                self.budget -= cost;
                let a = self.done.len();
                for &(x, y) in &self.scratch[f.out..] {
                    let v = self.store.text.len();
                    self.store.text.push_str(&self.stext[x..y]);
                    self.done.push((v, self.store.text.len()));
                }
                self.scratch.truncate(f.out);
                self.stext.truncate(f.out_text);
                self.state[f.k] = State::Done(a, self.done.len());
                let mut cur = f.cur;
                cur.clear();
                self.spare.push(cur);
                continue;
            };
            let word = raw.words.word(wa, wb);
            let whole = whole_reference(word);
            let Some(part) = word.get(f.part) else {
                if !whole {
                    grow(f, raw, p, vloc, vloc.line, 1, jail)?;
                    let v = self.stext.len();
                    self.stext.push_str(&f.cur);
                    f.cur.clear();
                    self.scratch.push((v, self.stext.len()));
                }
                f.word += 1;
                f.part = 0;
                continue;
            };
            match *part {
                Part::Lit(a, b) => {
                    if !whole {
                        let l = raw.words.lit(a, b);
                        grow(f, raw, p, vloc, vloc.line, l.len(), jail)?;
                        f.cur.push_str(l);
                    }
                    f.part += 1;
                }
                Part::Var(sym, m) => {
                    let name = raw.words.syms.name(sym);
                    let j = self.first.get(sym).copied().unwrap_or(usize::MAX);
                    if j == usize::MAX {
                        return Err(invalid(
                            raw.file(vloc),
                            m.line,
                            jail,
                            format!("{}: variable \"{name}\" not found", display_name(raw, p)),
                        ));
                    }
                    let (a, b) = match self.state[j] {
                        State::Todo => {
                            // Expand the referenced one first, then come back
                            // to this same part.
                            self.state[j] = State::Busy;
                            let (out, out_text) = (self.scratch.len(), self.stext.len());
                            let cur = self.spare.pop().unwrap_or_default();
                            stack.push(Frame::new(j, out, out_text, cur));
                            continue;
                        }
                        State::Busy => {
                            return Err(invalid(
                                raw.file(vloc),
                                m.line,
                                jail,
                                format!("{}: variable loop through \"{name}\"", display_name(raw, p)),
                            ))
                        }
                        State::Done(a, b) => (a, b),
                    };
                    if a == b {
                        return Err(invalid(
                            raw.file(vloc),
                            m.line,
                            jail,
                            format!(
                                "{}: variable \"{name}\" not found (it has no value)",
                                display_name(raw, p)
                            ),
                        ));
                    }
                    let text = &self.store.text;
                    let vals = &self.done[a..b];
                    if whole {
                        let add = vals.iter().map(|&(x, y)| y - x + 1).sum();
                        grow(f, raw, p, vloc, m.line, add, jail)?;
                        for &(x, y) in vals {
                            let v = self.stext.len();
                            self.stext.push_str(&text[x..y]);
                            self.scratch.push((v, self.stext.len()));
                        }
                    } else {
                        if vals.len() != 1 {
                            return Err(invalid(
                                raw.file(vloc),
                                m.line,
                                jail,
                                format!(
                                    "{}: variable \"{name}\" is a list and cannot be substituted inside a string",
                                    display_name(raw, p)
                                ),
                            ));
                        }
                        let (x, y) = vals[0];
                        grow(f, raw, p, vloc, m.line, y - x, jail)?;
                        f.cur.push_str(&text[x..y]);
                    }
                    f.part += 1;
                }
            }
        }
        Ok(())
    }
}

/// Account for `add` more bytes in frame `f`, refusing to pass
/// [`MAX_VALUE_BYTES`] before anything is allocated.
fn grow(
    f: &mut Frame,
    raw: &Raw,
    p: &Entry,
    loc: Loc,
    line: usize,
    add: usize,
    jail: &str,
) -> Result<(), JailConfError> {
    match f.bytes.checked_add(add) {
        Some(n) if n <= MAX_VALUE_BYTES => {
            f.bytes = n;
            Ok(())
        }
        _ => Err(invalid(
            raw.file(loc),
            line,
            jail,
            format!(
                "{}: value expands to more than {} bytes",
                display_name(raw, p),
                MAX_VALUE_BYTES
            ),
        )),
    }
}
