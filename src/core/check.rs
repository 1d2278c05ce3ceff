//! Port-conflict analysis (pure): claims vs listeners, claims, exposures and
//! foreign redirections within one network stack.
//!
//! What it does: given what the jails being checked will bind ([`Claim`]s)
//! and which host ports they take through pf/nft redirections
//! ([`Exposure`]s), compare them with the sockets already listening, other
//! jails' claims and exposures, and redirections jnet does not own, and
//! return every [`Conflict`] with both sides named. The rules follow issue 3
//! and the bind semantics of the platform ([`Platform`]):
//!
//! - conflicts exist only within one [`Stack`]; tcp never meets udp;
//! - error: the same address, or wildcard against wildcard in a common
//!   family, or an inherit jail's wildcard claim against anything on that
//!   port in its stack; a dual-stack `[::]` socket covers IPv4 too, a
//!   v6-only `[::]` does not;
//! - a specific address against a wildcard *listener*: error on Linux (the
//!   later bind fails with EADDRINUSE), warning on FreeBSD (the bind works,
//!   but the wildcard socket answers for the jail's address while the jail
//!   is not listening — jail(8), DESIGN.md §2);
//! - an exposure's host port that is listened on or claimed on the external
//!   address (or wildcard), or redirected by another jail or a foreign rule,
//!   is an error;
//! - a jail's own listeners, claims and exposures never conflict with it.
//!
//! What it does not do: find listeners, read config, or decide which jails
//! to check; the engine gathers [`CheckInput`] and the CLI prints
//! [`Report`]. Work is indexed by (stack, proto, port): each claim or
//! exposure looks up only what shares its ports (binary search on single
//! ports; port ranges are kept in a short side list), never a full scan.

use std::cell::LazyCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::core::listeners::{ForeignRedirect, Listener, Stack};
use crate::core::names::{IfName, JailName};
use crate::core::ports::{PortRange, Proto};

/// Bind semantics of the platform whose host is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// jail(2): inherit and non-VNET jails share the host stack; binding a
    /// specific address under a wildcard listener succeeds.
    FreeBsd,
    /// Network namespaces: every dedicated jail has its own stack; a
    /// specific bind under a wildcard listener fails (EADDRINUSE).
    Linux,
}

/// How a jail is networked, as far as the stack model cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JailNet {
    /// `ip4=inherit` / host network namespace.
    Inherit,
    /// Dedicated addresses (FreeBSD `ip4.addr` without VNET; Linux netns).
    Dedicated,
    /// FreeBSD VNET jail (its own stack).
    Vnet,
}

impl Platform {
    /// The platform this binary was built for (Linux semantics elsewhere).
    pub fn current() -> Platform {
        if cfg!(target_os = "freebsd") {
            Platform::FreeBsd
        } else {
            Platform::Linux
        }
    }

    /// Severity of a specific-address claim under a wildcard listener.
    pub fn specific_under_wildcard(self) -> Severity {
        match self {
            Platform::FreeBsd => Severity::Warning,
            Platform::Linux => Severity::Error,
        }
    }

    /// The stack a jail's sockets live in: inherit jails always share the
    /// host's; FreeBSD non-VNET jails with dedicated addresses share it too
    /// (restricted to their addresses); Linux dedicated jails and FreeBSD
    /// VNET jails have their own.
    pub fn stack_of(self, jail: &JailName, net: JailNet) -> Stack {
        match (self, net) {
            (_, JailNet::Inherit) | (Platform::FreeBsd, JailNet::Dedicated) => Stack::Host,
            (Platform::Linux, JailNet::Dedicated) | (_, JailNet::Vnet) => Stack::Jail(jail.clone()),
        }
    }
}

/// The addresses a claim binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAddr {
    /// Every address of its stack, IPv4 and IPv6 (inherit jails).
    Wildcard,
    /// Exactly these (dedicated jails).
    Specific(Vec<IpAddr>),
}

/// What a jail will bind: a port (range) on its addresses in its stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub jail: JailName,
    pub stack: Stack,
    pub proto: Proto,
    pub ports: PortRange,
    pub addresses: ClaimAddr,
}

/// A host port (range) a jail takes through a redirection on the external
/// interface, or on one external address of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub jail: JailName,
    pub proto: Proto,
    pub host_ports: PortRange,
    /// The external address the redirection is bound to; `None` = every
    /// address of `interface`.
    pub address: Option<IpAddr>,
    pub interface: IfName,
}

/// Everything the analysis looks at.
#[derive(Debug, Clone)]
pub struct CheckInput {
    pub platform: Platform,
    /// The jails whose claims and exposures are checked.
    pub checked: Vec<JailName>,
    /// Claims of all jails (checked and others, running or not).
    pub claims: Vec<Claim>,
    /// Sockets currently listening, in every stack that matters.
    pub listeners: Vec<Listener>,
    /// Exposures of all jails.
    pub exposures: Vec<Exposure>,
    /// Redirections jnet does not own.
    pub redirects: Vec<ForeignRedirect>,
    /// Host interface addresses, to know which listeners an exposure on an
    /// interface hits. When an interface is missing, only wildcard sockets
    /// and claims are taken to be on it.
    pub interface_addrs: BTreeMap<IfName, Vec<IpAddr>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// The other side of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Other {
    /// A socket already listening.
    Listener {
        pid: Option<u32>,
        command: Option<String>,
        jail: Option<String>,
        /// Local address as text (`0.0.0.0`, `::`, `10.0.0.5`).
        address: String,
        dual_stack: bool,
    },
    /// Another jail's claim.
    Jail { name: JailName, address: String },
    /// Another jail's exposure.
    Exposure { jail: JailName, host_port: u16 },
    /// A foreign redirection rule.
    Redirect { owner: String, rule: String },
}

/// One conflict of a checked jail, as in `jnet check --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub severity: Severity,
    pub proto: Proto,
    /// The (first) port both sides want.
    pub port: u16,
    /// Where they meet: an address, `*` for wildcard against wildcard, or
    /// `(ifname)` for an exposure on a whole interface.
    pub address: String,
    /// The checked jail.
    pub jail: JailName,
    pub other: Other,
    pub message: String,
}

/// The analysis result, serializable as `{"conflicts": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub conflicts: Vec<Conflict>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.conflicts.iter().filter(|c| c.severity == Severity::Error).count()
    }
    pub fn warnings(&self) -> usize {
        self.conflicts
            .iter()
            .filter(|c| c.severity == Severity::Warning)
            .count()
    }
    /// Whether the check failed: any error, or with `strict` any warning
    /// too (the CLI exits 1 then).
    pub fn failed(&self, strict: bool) -> bool {
        self.errors() > 0 || (strict && self.warnings() > 0)
    }
}

// ---------------------------------------------------------------------------
// Address sets

/// What one side binds: wildcard per family and/or specific addresses.
#[derive(Debug, Clone, Copy)]
struct Bind<'a> {
    wc4: bool,
    wc6: bool,
    specific: &'a [IpAddr],
}

impl Bind<'_> {
    fn covers(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(_) if self.wc4 => true,
            IpAddr::V6(_) if self.wc6 => true,
            _ => self.specific.contains(&a),
        }
    }
    fn any_wild(&self) -> bool {
        self.wc4 || self.wc6
    }
}

fn listener_bind(l: &Listener) -> Bind<'_> {
    if l.address.is_unspecified() {
        match l.address {
            IpAddr::V4(_) => Bind {
                wc4: true,
                wc6: false,
                specific: &[],
            },
            IpAddr::V6(_) => Bind {
                wc4: l.dual_stack,
                wc6: true,
                specific: &[],
            },
        }
    } else {
        Bind {
            wc4: false,
            wc6: false,
            specific: std::slice::from_ref(&l.address),
        }
    }
}

/// A claim's addresses in normalized form (unspecified entries become the
/// wildcard of their family; IPv4-mapped IPv6 becomes IPv4).
struct ClaimBind {
    wc4: bool,
    wc6: bool,
    specific: Vec<IpAddr>,
}

impl ClaimBind {
    fn new(c: &ClaimAddr) -> Self {
        match c {
            ClaimAddr::Wildcard => ClaimBind {
                wc4: true,
                wc6: true,
                specific: Vec::new(),
            },
            ClaimAddr::Specific(v) => {
                let mut b = ClaimBind {
                    wc4: false,
                    wc6: false,
                    specific: Vec::with_capacity(v.len()),
                };
                for &a in v {
                    let a = crate::core::listeners::normalize(a);
                    match a {
                        IpAddr::V4(x) if x.is_unspecified() => b.wc4 = true,
                        IpAddr::V6(x) if x.is_unspecified() => b.wc6 = true,
                        _ => b.specific.push(a),
                    }
                }
                b
            }
        }
    }
    fn bind(&self) -> Bind<'_> {
        Bind {
            wc4: self.wc4,
            wc6: self.wc6,
            specific: &self.specific,
        }
    }
}

/// How two binds meet.
#[derive(Debug, Clone, Copy)]
enum Meet {
    /// Wildcard against wildcard in a common family.
    BothWild,
    /// The same specific address.
    Same(IpAddr),
    /// The subject's wildcard covers the other's specific address.
    SubjectWild(IpAddr),
    /// The other's wildcard covers the subject's specific address.
    OtherWild(IpAddr),
}

impl Meet {
    fn address(self) -> String {
        match self {
            Meet::BothWild => "*".to_string(),
            Meet::Same(a) | Meet::SubjectWild(a) | Meet::OtherWild(a) => a.to_string(),
        }
    }
}

fn meet(s: Bind<'_>, o: Bind<'_>) -> Option<Meet> {
    if (s.wc4 && o.wc4) || (s.wc6 && o.wc6) {
        return Some(Meet::BothWild);
    }
    if let Some(&a) = s.specific.iter().find(|a| o.specific.contains(a)) {
        return Some(Meet::Same(a));
    }
    if let Some(&a) = o.specific.iter().find(|&&a| s.covers(a)) {
        return Some(Meet::SubjectWild(a));
    }
    if let Some(&a) = s.specific.iter().find(|&&a| o.covers(a)) {
        return Some(Meet::OtherWild(a));
    }
    None
}

// ---------------------------------------------------------------------------
// Port index

/// Items keyed by (stack, port): single ports sorted for binary search,
/// ranges in a side list sorted by stack (few in practice: profiles use
/// ranges for passive-FTP-like cases only). Stacks are the small numbers
/// [`StackIndex`] gives them; an index without stacks uses 0 throughout.
/// why one sorted list for all stacks rather than one per stack: on Linux
/// every dedicated jail has its own stack, and per-stack lists were an
/// allocation or three per jail (issue 10: check at 10,000 jails).
#[derive(Default)]
struct PortIndex {
    /// (stack << 16 | port, item): one integer key sorts and searches
    /// faster than a tuple.
    singles: Vec<(u64, u32)>,
    ranges: Vec<(u32, u32, PortRange)>,
}

fn stack_port(stack: u32, port: u16) -> u64 {
    u64::from(stack) << 16 | u64::from(port)
}

impl PortIndex {
    fn push(&mut self, stack: u32, r: PortRange, i: usize) {
        let i = u32::try_from(i).expect("fewer than 2^32 items");
        if r.is_single() {
            self.singles.push((stack_port(stack, r.lo()), i));
        } else {
            self.ranges.push((stack, i, r));
        }
    }
    fn finish(&mut self) {
        self.singles.sort_unstable();
        self.ranges.sort_unstable_by_key(|&(s, i, _)| (s, i));
    }
    /// Calls `f(index, first common port)` for every item of `stack`
    /// overlapping `r`.
    fn query(&self, stack: u32, r: PortRange, mut f: impl FnMut(usize, u16)) {
        let (lo, hi) = (stack_port(stack, r.lo()), stack_port(stack, r.hi()));
        let start = self.singles.partition_point(|&(k, _)| k < lo);
        for &(k, i) in &self.singles[start..] {
            if k > hi {
                break;
            }
            f(i as usize, k as u16);
        }
        let start = self.ranges.partition_point(|&(s, _, _)| s < stack);
        for &(s, i, pr) in &self.ranges[start..] {
            if s != stack {
                break;
            }
            if pr.overlaps(r) {
                f(i as usize, pr.lo().max(r.lo()));
            }
        }
    }
}

fn pidx(p: Proto) -> usize {
    match p {
        Proto::Tcp => 0,
        Proto::Udp => 1,
    }
}

/// Everything of one proto by (stack, port). `all` answers any query;
/// a subject on one port with specific addresses only needs the wildcard
/// and ranged items (`narrow`) plus the items on exactly its addresses
/// (`by_addr`, sorted by stack, port, address) — so hundreds of dedicated
/// jails sharing port 80 on distinct addresses do not scan each other.
#[derive(Default)]
struct Group {
    all: PortIndex,
    narrow: PortIndex,
    /// ([`addr_key`], address bits, item).
    by_addr: Vec<(u64, u128, u32)>,
}

/// Stack, port and address family in one integer (with [`addr_bits`], a
/// sort key that compares as fast as integers do).
fn addr_key(stack: u32, port: u16, a: IpAddr) -> (u64, u128) {
    let k = stack_port(stack, port) << 1;
    match a {
        IpAddr::V4(x) => (k, u128::from(u32::from(x))),
        IpAddr::V6(x) => (k | 1, u128::from(x)),
    }
}

impl Group {
    fn push(&mut self, stack: u32, r: PortRange, b: Bind<'_>, i: usize) {
        self.all.push(stack, r, i);
        if b.any_wild() || !r.is_single() {
            self.narrow.push(stack, r, i);
        } else {
            let i32 = u32::try_from(i).expect("fewer than 2^32 items");
            for &a in b.specific {
                let (k, bits) = addr_key(stack, r.lo(), a);
                self.by_addr.push((k, bits, i32));
            }
        }
    }
    fn finish(&mut self) {
        self.all.finish();
        self.narrow.finish();
        self.by_addr.sort_unstable();
    }
    /// Calls `f(index, first common port)` for every item of `stack` that
    /// may meet a subject binding `s` on ports `r` (a superset; `meet`
    /// decides). An item may be reported once per shared address.
    fn query(&self, stack: u32, r: PortRange, s: Bind<'_>, mut f: impl FnMut(usize, u16)) {
        if s.any_wild() || !r.is_single() || force_full_scan() {
            return self.all.query(stack, r, f);
        }
        self.narrow.query(stack, r, &mut f);
        for &a in s.specific {
            let key = addr_key(stack, r.lo(), a);
            let start = self.by_addr.partition_point(|&(k, x, _)| (k, x) < key);
            for &(k, x, i) in &self.by_addr[start..] {
                if (k, x) != key {
                    break;
                }
                f(i as usize, r.lo());
            }
        }
    }
}

/// An FxHash-style multiply-rotate hash for the few maps keyed by what the
/// administrator configured (stacks, jail names): SipHash was a twentieth
/// of `check` at 10,000 jails. Not for keys others choose (listener
/// addresses go into sorted lists instead).
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 56));
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v.into());
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v.into());
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        // why the fold: hashbrown takes its control bits from the top.
        self.0 ^ (self.0 >> 29)
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;
type FastSet<K> = HashSet<K, std::hash::BuildHasherDefault<FastHasher>>;

/// Listeners or claims by proto, stack and port; stacks numbered as met.
#[derive(Default)]
struct StackIndex<'a> {
    ids: FastMap<&'a Stack, u32>,
    groups: [Group; 2],
}

/// One stack of a [`StackIndex`].
struct Stacked<'x> {
    id: u32,
    groups: &'x [Group; 2],
}

impl<'a> StackIndex<'a> {
    fn push(&mut self, stack: &'a Stack, proto: Proto, r: PortRange, b: Bind<'_>, i: usize) {
        let next = u32::try_from(self.ids.len()).expect("fewer than 2^32 stacks");
        let id = *self.ids.entry(stack).or_insert(next);
        self.groups[pidx(proto)].push(id, r, b, i);
    }
    fn finish(&mut self) {
        self.groups.iter_mut().for_each(Group::finish);
    }
    fn get(&self, stack: &Stack) -> Option<Stacked<'_>> {
        self.ids.get(stack).map(|&id| Stacked {
            id,
            groups: &self.groups,
        })
    }
}

impl Stacked<'_> {
    fn query(&self, proto: Proto, r: PortRange, s: Bind<'_>, f: impl FnMut(usize, u16)) {
        self.groups[pidx(proto)].query(self.id, r, s, f);
    }
    fn query_all(&self, proto: Proto, r: PortRange, f: impl FnMut(usize, u16)) {
        self.groups[pidx(proto)].all.query(self.id, r, f);
    }
}

#[cfg(test)]
thread_local! {
    /// Lets the tests compare the per-address fast path with the plain scan.
    static FULL_SCAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn force_full_scan() -> bool {
    #[cfg(test)]
    return FULL_SCAN.with(std::cell::Cell::get);
    #[cfg(not(test))]
    false
}

fn index_by_proto<T>(items: &[T], key: impl Fn(&T) -> (Proto, PortRange)) -> [PortIndex; 2] {
    let mut m: [PortIndex; 2] = Default::default();
    for (i, it) in items.iter().enumerate() {
        let (p, r) = key(it);
        m[pidx(p)].push(0, r, i);
    }
    m.iter_mut().for_each(PortIndex::finish);
    m
}

// ---------------------------------------------------------------------------
// Text

fn claim_addr_text(b: &ClaimBind) -> String {
    let mut parts: Vec<String> = Vec::new();
    if b.wc4 && b.wc6 {
        parts.push("*".into());
    } else if b.wc4 {
        parts.push("0.0.0.0".into());
    } else if b.wc6 {
        parts.push("[::]".into());
    }
    parts.extend(b.specific.iter().map(IpAddr::to_string));
    parts.join(", ")
}

fn sock_text(a: IpAddr, port: u16, dual: bool) -> String {
    match a {
        IpAddr::V4(x) if x.is_unspecified() => format!("*:{port}"),
        IpAddr::V4(x) => format!("{x}:{port}"),
        IpAddr::V6(x) if x.is_unspecified() && dual => format!("[::]:{port} (IPv4 and IPv6)"),
        IpAddr::V6(x) => format!("[{x}]:{port}"),
    }
}

/// A process name as any user may set it (prctl PR_SET_NAME, argv[0]),
/// with control characters escaped so a message built from it cannot forge
/// lines or terminal escapes (hardening finding H21).
fn shown_command(c: &str) -> String {
    c.chars()
        .flat_map(|ch| {
            let esc: Vec<char> = if ch.is_control() {
                ch.escape_default().collect()
            } else {
                vec![ch]
            };
            esc
        })
        .collect()
}

fn who(l: &Listener) -> String {
    let o = &l.owner;
    let command = o.command.as_deref().map(shown_command);
    let mut s = match (&command, o.pid) {
        (Some(c), Some(p)) => format!("{c} (pid {p}"),
        (Some(c), None) => format!("{c} ("),
        (None, Some(p)) => format!("pid {p} ("),
        (None, None) => "a socket of unknown owner (".to_string(),
    };
    if let Some(j) = &o.jail {
        if !s.ends_with('(') {
            s.push_str(", ");
        }
        let _ = write!(s, "jail {j}");
    }
    if s.ends_with(" (") {
        s.truncate(s.len() - 2);
    } else {
        s.push(')');
    }
    s
}

fn exposure_target(e: &Exposure) -> String {
    match e.address {
        Some(a) => a.to_string(),
        None => format!("({})", e.interface),
    }
}

// ---------------------------------------------------------------------------
// Analysis

struct Ctx<'a> {
    input: &'a CheckInput,
    checked: FastSet<&'a str>,
    /// Per claim, its entry in `binds` (claims of one jail share one).
    bind_of: Vec<u32>,
    binds: Vec<ClaimBind>,
    out: Vec<Conflict>,
}

impl Ctx<'_> {
    fn bind(&self, claim: usize) -> &ClaimBind {
        &self.binds[self.bind_of[claim] as usize]
    }

    fn is_checked(&self, j: &JailName) -> bool {
        self.checked.contains(j.as_str())
    }

    /// The addresses an exposure's redirection matches, if known.
    fn exposure_addrs<'b>(&'b self, e: &'b Exposure) -> Option<&'b [IpAddr]> {
        match &e.address {
            Some(a) => Some(std::slice::from_ref(a)),
            None => self.input.interface_addrs.get(&e.interface).map(Vec::as_slice),
        }
    }

    /// Does a socket or claim with bind `b` receive what exposure `e`
    /// redirects? Returns the address where they meet.
    fn exposure_hits(&self, e: &Exposure, b: Bind<'_>) -> Option<String> {
        match self.exposure_addrs(e) {
            Some(addrs) => addrs.iter().find(|&&a| b.covers(a)).map(IpAddr::to_string),
            // why: interface addresses unknown — only a wildcard bind is
            // surely on it; specific ones are not guessed at.
            None => b.any_wild().then(|| exposure_target(e)),
        }
    }

    fn exposures_meet(&self, a: &Exposure, b: &Exposure) -> bool {
        match (self.exposure_addrs(a), self.exposure_addrs(b)) {
            (Some(x), Some(y)) => x.iter().any(|v| y.contains(v)),
            _ => a.interface == b.interface,
        }
    }
}

/// Runs the analysis. Conflicts come sorted by jail, proto, port, severity;
/// a conflict between two checked jails is reported once.
pub fn analyze(input: &CheckInput) -> Report {
    let mut cx = Ctx {
        input,
        checked: input.checked.iter().map(JailName::as_str).collect(),
        bind_of: Vec::with_capacity(input.claims.len()),
        binds: Vec::new(),
        out: Vec::new(),
    };
    // why shared: a jail's claims (one per declared port) come one after
    // another with the same addresses; one ClaimBind each was an
    // allocation per port.
    for (i, c) in input.claims.iter().enumerate() {
        if i == 0 || input.claims[i - 1].addresses != c.addresses {
            cx.binds.push(ClaimBind::new(&c.addresses));
        }
        cx.bind_of
            .push(u32::try_from(cx.binds.len() - 1).expect("fewer than 2^32 claims"));
    }
    let mut listeners = StackIndex::default();
    for (i, l) in input.listeners.iter().enumerate() {
        // Port 0 means "not bound to a port yet": nothing to collide with.
        if let Ok(r) = PortRange::single(l.port) {
            listeners.push(&l.stack, l.proto, r, listener_bind(l), i);
        }
    }
    listeners.finish();
    let mut claims = StackIndex::default();
    for (i, c) in input.claims.iter().enumerate() {
        claims.push(&c.stack, c.proto, c.ports, cx.bind(i).bind(), i);
    }
    claims.finish();
    let exposures = index_by_proto(&input.exposures, |e| (e.proto, e.host_ports));
    let redirects = index_by_proto(&input.redirects, |r| (r.proto, r.ports));

    for (ci, c) in input.claims.iter().enumerate() {
        if !cx.is_checked(&c.jail) {
            continue;
        }
        check_claim(&mut cx, ci, c, &listeners, &claims, &exposures);
    }
    for (ei, e) in input.exposures.iter().enumerate() {
        if !cx.is_checked(&e.jail) {
            continue;
        }
        check_exposure(&mut cx, ei, e, &listeners, &claims, &exposures, &redirects);
    }

    let mut conflicts = cx.out;
    conflicts.sort_by(|a, b| {
        (&a.jail, a.proto, a.port, a.severity, &a.message, &a.other)
            .cmp(&(&b.jail, b.proto, b.port, b.severity, &b.message, &b.other))
    });
    conflicts.dedup();
    Report { conflicts }
}

fn own_listener(l: &Listener, jail: &JailName) -> bool {
    l.owner.jail.as_deref() == Some(jail.as_str()) || matches!(&l.stack, Stack::Jail(j) if j == jail)
}

fn listener_other(l: &Listener) -> Other {
    Other::Listener {
        pid: l.owner.pid,
        command: l.owner.command.clone(),
        jail: l.owner.jail.clone(),
        address: l.address.to_string(),
        dual_stack: l.dual_stack,
    }
}

fn check_claim(
    cx: &mut Ctx<'_>,
    ci: usize,
    c: &Claim,
    listeners: &StackIndex<'_>,
    claims: &StackIndex<'_>,
    exposures: &[PortIndex; 2],
) {
    let input = cx.input;
    let platform = input.platform;
    let sb = cx.bind(ci).bind();
    let subject_wild_claim = sb.any_wild();
    // why lazy: the texts are needed only for a conflict, and building them
    // for every claim was a fifth of `check` at 1,000 jails (issue 10).
    let caddr = LazyCell::new(|| claim_addr_text(cx.bind(ci)));
    let spec = LazyCell::new(|| format!("{}/{}", c.proto, c.ports));
    let mut found = Vec::new();

    if let Some(ix) = listeners.get(&c.stack) {
        ix.query(c.proto, c.ports, sb, |li, port| {
            let l = &input.listeners[li];
            if own_listener(l, &c.jail) {
                return;
            }
            let Some(m) = meet(sb, listener_bind(l)) else {
                return;
            };
            // why: only a specific claim under someone else's wildcard
            // socket depends on the platform; an inherit jail's wildcard
            // claim collides with anything on the port.
            let (severity, note) = match m {
                Meet::OtherWild(a) if !subject_wild_claim => match platform.specific_under_wildcard() {
                    Severity::Warning => (
                        Severity::Warning,
                        format!("; the wildcard socket answers for {a} while the jail is not listening"),
                    ),
                    Severity::Error => (Severity::Error, format!("; binding {a} under it fails")),
                },
                _ => (Severity::Error, String::new()),
            };
            found.push(Conflict {
                severity,
                proto: c.proto,
                port,
                address: m.address(),
                jail: c.jail.clone(),
                other: listener_other(l),
                message: format!(
                    "jail {} claims {} on {} but {} listens on {}{note}",
                    c.jail,
                    *spec,
                    *caddr,
                    who(l),
                    sock_text(l.address, l.port, l.dual_stack)
                ),
            });
        });
    }

    if let Some(ix) = claims.get(&c.stack) {
        ix.query(c.proto, c.ports, sb, |oi, port| {
            let o = &input.claims[oi];
            // why: a pair of checked jails is reported once, from the claim
            // that comes first.
            if o.jail == c.jail || (oi < ci && cx.is_checked(&o.jail)) {
                return;
            }
            let ob = &cx.bind(oi);
            let Some(m) = meet(sb, ob.bind()) else { return };
            let oaddr = claim_addr_text(ob);
            found.push(Conflict {
                severity: Severity::Error,
                proto: c.proto,
                port,
                address: m.address(),
                jail: c.jail.clone(),
                other: Other::Jail {
                    name: o.jail.clone(),
                    address: oaddr.clone(),
                },
                message: format!(
                    "jail {} claims {} on {} but jail {} also claims {}/{} on {oaddr}",
                    c.jail, *spec, *caddr, o.jail, o.proto, o.ports
                ),
            });
        });
    }

    // Another (unchecked) jail's redirection takes the port on the host
    // before any socket sees it. Checked jails' exposures report this from
    // their side.
    if c.stack == Stack::Host {
        exposures[pidx(c.proto)].query(0, c.ports, |ei, port| {
            let e = &input.exposures[ei];
            if e.jail == c.jail || cx.is_checked(&e.jail) {
                return;
            }
            let Some(at) = cx.exposure_hits(e, sb) else {
                return;
            };
            found.push(Conflict {
                severity: Severity::Error,
                proto: c.proto,
                port,
                address: at,
                jail: c.jail.clone(),
                other: Other::Exposure {
                    jail: e.jail.clone(),
                    host_port: port,
                },
                message: format!(
                    "jail {} claims {} on {} but jail {} exposes host port {}/{} on {}",
                    c.jail,
                    *spec,
                    *caddr,
                    e.jail,
                    e.proto,
                    e.host_ports,
                    exposure_target(e)
                ),
            });
        });
    }
    cx.out.append(&mut found);
}

fn check_exposure(
    cx: &mut Ctx<'_>,
    ei: usize,
    e: &Exposure,
    listeners: &StackIndex<'_>,
    claims: &StackIndex<'_>,
    exposures: &[PortIndex; 2],
    redirects: &[PortIndex; 2],
) {
    let input = cx.input;
    let host = Stack::Host;
    let target = LazyCell::new(|| exposure_target(e));
    let head = LazyCell::new(|| {
        format!(
            "jail {} exposes host port {}/{} on {}",
            e.jail, e.proto, e.host_ports, *target
        )
    });
    let mut found = Vec::new();
    let conflict = |port: u16, address: String, other: Other, message: String| Conflict {
        severity: Severity::Error,
        proto: e.proto,
        port,
        address,
        jail: e.jail.clone(),
        other,
        message,
    };

    if let Some(ix) = listeners.get(&host) {
        ix.query_all(e.proto, e.host_ports, |li, port| {
            let l = &input.listeners[li];
            if own_listener(l, &e.jail) {
                return;
            }
            let Some(at) = cx.exposure_hits(e, listener_bind(l)) else {
                return;
            };
            found.push(conflict(
                port,
                at,
                listener_other(l),
                format!(
                    "{} but {} listens on {}",
                    *head,
                    who(l),
                    sock_text(l.address, l.port, l.dual_stack)
                ),
            ));
        });
    }

    if let Some(ix) = claims.get(&host) {
        ix.query_all(e.proto, e.host_ports, |ci, port| {
            let c = &input.claims[ci];
            if c.jail == e.jail {
                return;
            }
            let cb = &cx.bind(ci);
            let Some(at) = cx.exposure_hits(e, cb.bind()) else {
                return;
            };
            let caddr = claim_addr_text(cb);
            found.push(conflict(
                port,
                at,
                Other::Jail {
                    name: c.jail.clone(),
                    address: caddr.clone(),
                },
                format!(
                    "{} but jail {} claims {}/{} on {caddr}",
                    *head, c.jail, c.proto, c.ports
                ),
            ));
        });
    }

    exposures[pidx(e.proto)].query(0, e.host_ports, |oi, port| {
        let o = &input.exposures[oi];
        if o.jail == e.jail || (oi < ei && cx.is_checked(&o.jail)) || !cx.exposures_meet(e, o) {
            return;
        }
        found.push(conflict(
            port,
            (*target).clone(),
            Other::Exposure {
                jail: o.jail.clone(),
                host_port: port,
            },
            format!(
                "{} but jail {} exposes host port {}/{} on {} too",
                *head,
                o.jail,
                o.proto,
                o.host_ports,
                exposure_target(o)
            ),
        ));
    });

    redirects[pidx(e.proto)].query(0, e.host_ports, |ri, port| {
        let r = &input.redirects[ri];
        let hit = match (r.address, cx.exposure_addrs(e)) {
            (Some(a), Some(addrs)) => addrs.contains(&a),
            // An any-address rule, or addresses unknown: assume it matches.
            _ => true,
        };
        if !hit {
            return;
        }
        found.push(conflict(
            port,
            (*target).clone(),
            Other::Redirect {
                owner: r.owner.clone(),
                rule: r.rule.clone(),
            },
            format!(
                "{} but {} already redirects {}/{}: {}",
                *head, r.owner, r.proto, r.ports, r.rule
            ),
        ));
    });
    cx.out.append(&mut found);
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_names_cannot_forge_lines() {
        assert_eq!(super::shown_command("x\n0 error(s)\x1b[2K"), "x\\n0 error(s)\\u{1b}[2K");
        assert_eq!(super::shown_command("nginx"), "nginx");
    }

    use super::*;
    use proptest::prelude::*;

    fn jail(i: u8) -> JailName {
        format!("j{i}").parse().unwrap()
    }

    const ADDRS: [&str; 5] = ["10.0.0.5", "10.0.0.6", "2001:db8::5", "0.0.0.0", "::"];

    fn claim() -> impl Strategy<Value = Claim> {
        (
            0u8..5,
            any::<bool>(),
            any::<bool>(),
            80u16..84,
            0u16..3,
            proptest::option::of(proptest::sample::subsequence(ADDRS.to_vec(), 1..3)),
        )
            .prop_map(|(j, own_stack, udp, lo, len, addrs)| Claim {
                jail: jail(j),
                stack: if own_stack { Stack::Jail(jail(0)) } else { Stack::Host },
                proto: if udp { Proto::Udp } else { Proto::Tcp },
                ports: PortRange::new(lo, lo + len).unwrap(),
                addresses: match addrs {
                    None => ClaimAddr::Wildcard,
                    Some(v) => ClaimAddr::Specific(v.iter().map(|a| a.parse().unwrap()).collect()),
                },
            })
    }

    fn listener() -> impl Strategy<Value = Listener> {
        (
            0usize..5,
            any::<bool>(),
            79u16..85,
            any::<bool>(),
            proptest::option::of(0u8..5),
        )
            .prop_map(|(a, udp, port, dual, owner)| Listener {
                proto: if udp { Proto::Udp } else { Proto::Tcp },
                address: ADDRS[a].parse().unwrap(),
                port,
                dual_stack: dual,
                stack: Stack::Host,
                owner: crate::core::listeners::Owner {
                    jail: owner.map(|o| jail(o).to_string()),
                    ..Default::default()
                },
            })
    }

    proptest! {
        /// The per-address shortcut finds exactly what a scan of every item
        /// on the port finds.
        #[test]
        fn fast_path_matches_full_scan(
            claims in proptest::collection::vec(claim(), 0..12),
            listeners in proptest::collection::vec(listener(), 0..12),
            checked in proptest::sample::subsequence(vec![0u8, 1, 2, 3, 4], 0..5),
            linux in any::<bool>(),
        ) {
            let input = CheckInput {
                platform: if linux { Platform::Linux } else { Platform::FreeBsd },
                checked: checked.into_iter().map(jail).collect(),
                claims,
                listeners,
                exposures: vec![],
                redirects: vec![],
                interface_addrs: BTreeMap::new(),
            };
            let fast = analyze(&input);
            FULL_SCAN.with(|c| c.set(true));
            let full = analyze(&input);
            FULL_SCAN.with(|c| c.set(false));
            prop_assert_eq!(fast, full);
        }
    }
}
