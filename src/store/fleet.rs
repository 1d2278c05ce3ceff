//! The fleet backend (`[store] backend = "postgres"`, issue 11): a
//! [`Backend`] that keeps the pool leases of every host in PostgreSQL and
//! everything else about this host's jails in the local file [`Store`].
//!
//! What lives where:
//! - **Shared (PostgreSQL):** one lease per jail whose address is inside a
//!   configured pool: (pool, address, host, jail), unique by the schema.
//!   Those are what other hosts must not hand out again.
//! - **Local (the file store under the state directory):** the whole
//!   record of each of this host's jails (mode, address, pool, interface,
//!   exposures, phase, jid), addresses outside every pool (`assign
//!   --address A --interface IF`), bridges, and the per-jail lifecycle
//!   locks (flock): phase and jid are this host's business.
//!
//! How an update works: under the local inventory's lock, one PostgreSQL
//! transaction takes the fleet's lease lock, reads this host's leases,
//! lays them over the local records (a lease wins over the local copy of
//! the address, see below), runs the engine's closure, then writes the
//! differences of this host's leases (deletes first, then inserts, each
//! insert checked against every host's leases) and commits; only then is
//! the local file written. On the wire that is four round trips after the
//! session's start (which [`FleetStore::new`] begins in a thread of its
//! own): one simple query to begin (BEGIN, schema version, lease lock,
//! this host's leases, the low water marks, the pool rows), the
//! allocator's one indexed search, one simple query with every write,
//! COMMIT. So:
//! - the allocation is one transaction: `lowest_free` sees every host's
//!   leases plus this host's records plus the caller's extra exclusions
//!   (jail.conf statics, interface addresses), and nobody allocates in
//!   between;
//! - a failure anywhere before the commit (server down, login refused,
//!   timeout, the engine refusing) changes nothing in either store;
//! - a commit whose answer was lost (connection cut after COMMIT) is
//!   retried once on a new connection ([`PgStore::run_batched`]); the retry
//!   reads the lease the first attempt committed, so `assign` returns the
//!   same address;
//! - if the local write fails after the commit, the database is ahead: a
//!   lease without (or unlike) the local record. The next read or update
//!   lays the lease over the local record, so the lease the database holds
//!   is what this host uses.
//!
//! A local record of a pool address that the database does not hold for
//! this host (a host switching from the file backend, or one whose leases
//! an operator reclaimed) is *unpublished*: reads show it as it is, and
//! the next update publishes it when nobody else holds the address, or
//! fails naming the holder (fix with `jnet release` or `jnet assign` of
//! that jail on this host).
//!
//! Not done here: reports of other hosts' leases (the CLI asks
//! [`FleetStore::pg`] directly), schema management ([`super::postgres`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use ::postgres::types::Type;

use crate::core::config::Pool;
use crate::core::model::{FamilyLease, Lease as ModelLease};
use crate::core::names::{JailName, PoolName};
use crate::core::range::RangeSet;
use crate::error::{Error, Result};

use super::inventory::{Inventory, JailRecord};
use super::postgres::{self, Lease, Op, OpErr, PgStore, StoreConfig};
use super::view::{FullView, View};
use super::{Backend, JailLock, Store};

/// See the module docs.
pub struct FleetStore {
    local: Store,
    cfg: StoreConfig,
    pools: BTreeMap<PoolName, Pool>,
    /// The session, once [`FleetStore::pg`] has it.
    pg: Mutex<Option<PgStore>>,
    /// The session being opened by a thread started in
    /// [`FleetStore::new`]: the server forks and authenticates a backend
    /// (about 3 ms) while jnet reads the host's addresses and its local
    /// inventory, instead of before.
    opening: Mutex<Option<std::thread::JoinHandle<std::result::Result<PgStore, postgres::PgError>>>>,
}

impl std::fmt::Debug for FleetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetStore")
            .field("local", &self.local.dir())
            .field("store", &self.cfg.describe())
            .field("host", &self.cfg.host_id)
            .finish()
    }
}

/// Set by [`detach_sessions_at_exit`].
static DETACH_AT_EXIT: AtomicBool = AtomicBool::new(false);

/// For a process that ends right after its one command (the `jnet`
/// binary, once, before running it): a [`FleetStore`] dropped afterwards
/// does not close its database session but leaves it to the process
/// exit. Why: closing sends Terminate, which wakes the server's backend,
/// and on a busy machine that wake-up preempts jnet before it can exit:
/// 3 to 9 ms of a `jnet assign` measured under load, for nothing, since
/// the exit closes the socket anyway and the server ends a session whose
/// client went away outside a transaction silently (a DEBUG1 line at
/// most). Only sessions with no transaction open are left so (every
/// transaction here ends before its call returns). Never set it in a
/// process that goes on (the tests do not): each store would keep a
/// server connection until the exit.
pub fn detach_sessions_at_exit() {
    DETACH_AT_EXIT.store(true, Ordering::Relaxed);
}

impl Drop for FleetStore {
    fn drop(&mut self) {
        let detach = DETACH_AT_EXIT.load(Ordering::Relaxed);
        let opening = self.opening.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        let g = self.pg.get_mut().unwrap_or_else(|p| p.into_inner());
        let pg = match (g.take(), opening) {
            (Some(pg), _) => Some(pg),
            // The process exits anyway: do not wait for the thread.
            (None, Some(_)) if detach => None,
            (None, Some(h)) => h.join().ok().and_then(|r| r.ok()),
            (None, None) => None,
        };
        if let (Some(pg), true) = (pg, detach) {
            pg.detach();
        }
    }
}

/// This host's lease of each jail: (pool, address).
type Mine = BTreeMap<String, (String, Ipv4Addr)>;

fn mine_of(tx: &mut impl ::postgres::GenericClient, host: &str) -> Op<Vec<Lease>> {
    let rows = tx.query_typed(
        "SELECT pool, address, host, jail FROM jnet_leases WHERE host = $1 ORDER BY pool, address",
        &[(&host, Type::TEXT)],
    )?;
    rows.iter().map(postgres::lease_of).collect()
}

/// What the local record of a lease's jail must say; `None` when it says
/// it already.
fn overlaid(cur: Option<&JailRecord>, l: &Lease, pools: &BTreeMap<PoolName, Pool>) -> Option<JailRecord> {
    let pool = PoolName::new(&l.pool).ok()?;
    match cur {
        Some(r)
            if r.inet
                .lease()
                .is_some_and(|x| x.address == l.address && x.pool.as_ref() == Some(&pool)) =>
        {
            None
        }
        Some(r) => {
            let mut r = r.clone();
            let interface = if r.pool() != Some(&pool) {
                pools.get(&pool).map(|p| p.interface.clone()).or(r.interface().cloned())
            } else {
                r.interface().cloned()
            };
            r.inet = FamilyLease::Dedicated(ModelLease {
                address: l.address,
                pool: Some(pool),
                interface,
            });
            // why: as `assign` does; an own IPv4 address and the host's IPv6.
            if r.inet6 == FamilyLease::Inherit {
                r.inet6 = FamilyLease::Disable;
            }
            Some(r)
        }
        None => {
            let iface = pools.get(&pool).map(|p| p.interface.clone());
            Some(JailRecord::dedicated(l.address, Some(pool), iface))
        }
    }
}

/// Lays this host's leases over the local inventory (the database wins);
/// returns them by jail. A jail with leases in several pools (another
/// jnet wrote them) keeps the first; the next update removes the others.
fn overlay(inv: &mut Inventory, leases: &[Lease], pools: &BTreeMap<PoolName, Pool>) -> Mine {
    let mut mine = Mine::new();
    for l in leases {
        if mine.contains_key(&l.jail) {
            continue;
        }
        let Ok(jail) = JailName::new(&l.jail) else {
            tracing::warn!(jail = %l.jail, pool = %l.pool, "the store holds a lease of a jail name jnet cannot use; ignored");
            continue;
        };
        if let Some(r) = overlaid(inv.jails.get(&jail), l, pools) {
            inv.jails.insert(jail, r);
        }
        mine.insert(l.jail.clone(), (l.pool.clone(), l.address));
    }
    mine
}

/// The leases `inv` says this host holds: every dedicated record with a
/// pool.
fn wanted(inv: &Inventory) -> Mine {
    inv.jails
        .iter()
        .filter_map(|(n, r)| Some((n.as_str().to_string(), (r.pool()?.to_string(), r.address()?))))
        .collect()
}

fn refused(msg: String) -> OpErr {
    OpErr::Jnet(Error::data(msg))
}

/// `s` as an SQL string literal for a simple query (no parameters
/// there): an `E''` literal, so its meaning does not depend on
/// `standard_conforming_strings`. Every value put in one is a name jnet
/// validated (pool, host id, jail), but quoting does not rely on that.
fn lit(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The statements that make the database hold exactly `want` for `host`,
/// as one simple query (one round trip; the COMMIT follows when every
/// insert went in): the search's new low water marks, then deletes of the
/// leases no longer wanted (so two jails may swap addresses) and the marks
/// lowered for them, then one insert per new lease, each inserted only
/// when no lease (any pool, any host) holds the address — statements of
/// one simple query run one after the other, so each sees the ones before
/// it — then `last_seen`. The pool rows come from `known` (read under the
/// lease lock, so still true): a pool the store records with another
/// network, or one neither the store nor this host knows, is refused
/// here, before anything is sent.
///
/// Why not one server-side block that refuses and commits in the same
/// round trip: the first PL/pgSQL block of a session loads the language
/// (about 1.4 ms, measured), more than the COMMIT's own round trip costs.
struct Finish {
    sql: String,
    /// The new leases (jail, pool, address), in the order of their
    /// inserts, which are the statements from `first_insert` on.
    adds: Vec<(String, String, Ipv4Addr)>,
    first_insert: usize,
}

fn finish_sql(
    host: &str,
    have: &[Lease],
    want: &Mine,
    known: &BTreeMap<String, String>,
    pools: &BTreeMap<PoolName, Pool>,
    hints: &BTreeMap<u32, u64>,
) -> Op<Finish> {
    let h = lit(host);
    let mut sql = String::new();
    let mut statements = 0;
    if !hints.is_empty() {
        let rows: Vec<String> = hints.iter().map(|(s, l)| format!("({s}, {l})")).collect();
        sql += &format!(
            "INSERT INTO jnet_hints (range_start, low) VALUES {} \
             ON CONFLICT (range_start) DO UPDATE SET low = excluded.low;\n",
            rows.join(", ")
        );
        statements += 1;
    }
    let gone: Vec<&Lease> = have
        .iter()
        .filter(|l| want.get(&l.jail) != Some(&(l.pool.clone(), l.address)))
        .collect();
    if !gone.is_empty() {
        let keys: Vec<String> = gone
            .iter()
            .map(|l| format!("({}, {})", lit(&l.pool), lit(&l.jail)))
            .collect();
        sql += &format!(
            "DELETE FROM jnet_leases WHERE host = {h} AND (pool, jail) IN ({});\n",
            keys.join(", ")
        );
        let nums: Vec<String> = gone.iter().map(|l| u32::from(l.address).to_string()).collect();
        // The statement of postgres::lower_hints.
        sql += &format!(
            "UPDATE jnet_hints h SET low = sub.m FROM \
             (SELECT h2.range_start, min(x) AS m FROM jnet_hints h2, unnest(ARRAY[{}]::bigint[]) x \
              WHERE x >= h2.range_start AND x < h2.low GROUP BY h2.range_start) sub \
             WHERE h.range_start = sub.range_start;\n",
            nums.join(", ")
        );
        statements += 2;
    }
    let mut adds = vec![];
    let mut new_pools = BTreeMap::new();
    for (jail, (pool, a)) in want {
        if have
            .iter()
            .any(|l| &l.jail == jail && &l.pool == pool && l.address == *a)
        {
            continue;
        }
        let conf = PoolName::new(pool).ok().and_then(|n| pools.get(&n));
        match (known.get(pool), conf) {
            (Some(s), Some(p)) if *s != p.network.to_string() => {
                return Err(refused(format!(
                    "pool {pool} is {s} in the store but {} in this host's config; every host must configure a shared pool alike",
                    p.network
                )))
            }
            (Some(_), _) => {}
            (None, Some(p)) => {
                new_pools.insert(pool.clone(), p.network.to_string());
            }
            (None, None) => {
                return Err(refused(format!(
                    "pool {pool} is not configured on this host, so its lease cannot be recorded in the store"
                )))
            }
        }
        adds.push((jail.clone(), pool.clone(), *a));
    }
    for (name, net) in &new_pools {
        sql += &format!(
            "INSERT INTO jnet_pools (name, network) VALUES ({}, {}::cidr) ON CONFLICT (name) DO NOTHING;\n",
            lit(name),
            lit(net)
        );
        statements += 1;
    }
    let first_insert = statements;
    for (jail, pool, a) in &adds {
        sql += &format!(
            "INSERT INTO jnet_leases (pool, address, host, jail) SELECT {}, '{a}'::inet, {h}, {} \
             WHERE NOT EXISTS (SELECT 1 FROM jnet_leases WHERE address = '{a}'::inet);\n",
            lit(pool),
            lit(jail)
        );
    }
    sql += &format!(
        "INSERT INTO jnet_hosts (host, last_seen) VALUES ({h}, now()) \
         ON CONFLICT (host) DO UPDATE SET last_seen = excluded.last_seen"
    );
    Ok(Finish {
        sql,
        adds,
        first_insert,
    })
}

/// The refusal of a lease whose address `holder` (pool, host, jail) holds.
fn held_error(jail: &str, a: Ipv4Addr, pool: &str, holder: (String, String, String)) -> OpErr {
    let (p, h, j) = holder;
    refused(format!(
        "jail {jail} would hold {a} of pool {pool}, but the store leases it (pool {p}) to jail {j} on host {h}; \
         give jail {jail} another address (jnet assign) or release it (jnet release {jail})"
    ))
}

/// An open transaction on a plain client (begun by a simple query, so
/// that BEGIN costs no round trip of its own); rolled back on drop unless
/// [`OpenTx::committed`] was called.
struct OpenTx<'c> {
    c: &'c mut ::postgres::Client,
    open: bool,
}

impl OpenTx<'_> {
    fn committed(&mut self) {
        self.open = false;
    }
}

impl Drop for OpenTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.c.is_closed() {
            let _ = self.c.batch_execute("ROLLBACK");
        }
    }
}

/// The statement results of one simple query: the rows of each
/// statement, in order (a statement without rows gives an empty list).
fn results(msgs: Vec<::postgres::SimpleQueryMessage>) -> Vec<Vec<::postgres::SimpleQueryRow>> {
    let mut out = vec![];
    let mut cur = vec![];
    for m in msgs {
        match m {
            ::postgres::SimpleQueryMessage::Row(r) => cur.push(r),
            ::postgres::SimpleQueryMessage::CommandComplete(_) => out.push(std::mem::take(&mut cur)),
            _ => {}
        }
    }
    out
}

/// The row counts of the statements of one simple query, in order.
fn counts(msgs: &[::postgres::SimpleQueryMessage]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            ::postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

fn bad_answer(what: &str) -> OpErr {
    OpErr::Jnet(Error::Unavailable(format!(
        "the store gave an unexpected answer to {what}"
    )))
}

/// What the first round trip of a fleet transaction learns, under the
/// lease lock: this host's leases, the low water marks, the pools.
struct Start {
    have: Vec<Lease>,
    hints: BTreeMap<u32, u64>,
    pools: BTreeMap<String, String>,
}

/// BEGIN, the schema version (checked: [`postgres::schema_verdict`]), the
/// lease lock, this host's leases, every low water mark and every pool
/// row, in one simple query. A missing table (new or older schema) fails
/// with its driver error, which [`PgStore::run_batched`] handles.
fn start(c: &mut ::postgres::Client, host: &str) -> Op<Start> {
    let sql = format!(
        "BEGIN; SELECT version FROM jnet_schema; SELECT pg_advisory_xact_lock({}); \
         SELECT pool, host(address), host, jail FROM jnet_leases WHERE host = {} ORDER BY pool, address; \
         SELECT range_start, low FROM jnet_hints; SELECT name, network::text FROM jnet_pools",
        postgres::LEASE_LOCK,
        lit(host)
    );
    let r = results(c.simple_query(&sql)?);
    let [_, version, _, leases, hints, pools] = &r[..] else {
        return Err(bad_answer("the transaction's first statements"));
    };
    let v = version
        .first()
        .and_then(|r| r.get(0))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        .clamp(0, i64::from(u32::MAX)) as u32;
    postgres::schema_verdict(v)?;
    let mut have = vec![];
    for row in leases {
        let (Some(pool), Some(a), Some(h), Some(jail)) = (row.get(0), row.get(1), row.get(2), row.get(3)) else {
            return Err(bad_answer("this host's leases"));
        };
        let address = match a.parse::<IpAddr>() {
            Ok(a) => postgres::v4(a, pool)?,
            Err(_) => return Err(bad_answer("this host's leases")),
        };
        have.push(Lease {
            pool: pool.into(),
            address,
            host: h.into(),
            jail: jail.into(),
        });
    }
    let mut marks = BTreeMap::new();
    for row in hints {
        let s = row.get(0).and_then(|v| v.parse::<i64>().ok());
        let l = row.get(1).and_then(|v| v.parse::<i64>().ok());
        if let (Some(s), Some(l)) = (s, l) {
            if let Ok(s) = u32::try_from(s) {
                marks.insert(s, l.max(0) as u64);
            }
        }
    }
    let pools = pools
        .iter()
        .filter_map(|r| Some((r.get(0)?.to_string(), r.get(1)?.to_string())))
        .collect();
    Ok(Start {
        have,
        hints: marks,
        pools,
    })
}

/// The lease view inside one fleet transaction: this host's records from
/// the overlaid local inventory, other hosts' leases from the database.
struct FleetView<'a> {
    full: FullView<'a>,
    tx: &'a mut ::postgres::Client,
    host: &'a str,
    /// The low water marks read at the start ([`Start::hints`]), with the
    /// ones this search raised, and those alone (written at the end).
    hints: &'a mut BTreeMap<u32, u64>,
    raised: &'a mut BTreeMap<u32, u64>,
    /// This host's leases in the table when the transaction began (a
    /// hint's leased prefix may hold some this update has released).
    mine: RangeSet,
    /// The driver error behind a failed call, so the transaction can be
    /// classified (and retried after a lost connection) as a store error.
    pg_err: Option<::postgres::Error>,
}

impl FleetView<'_> {
    fn failed(&mut self, e: ::postgres::Error) -> Error {
        let msg = format!("the store failed: {e}");
        self.pg_err = Some(e);
        Error::Unavailable(msg)
    }
}

impl FleetView<'_> {
    /// The low water mark of the range starting at `start`, if any (read
    /// at the start of the transaction, under the lease lock).
    fn hint(&mut self, start: u32) -> Result<Option<u64>> {
        Ok(self.hints.get(&start).copied())
    }

    /// Raises the mark; written with the transaction's last round trip.
    fn set_hint(&mut self, start: u32, low: u64) -> Result<()> {
        self.hints.insert(start, low);
        self.raised.insert(start, low);
        Ok(())
    }

    /// The first address in `c..=end` that no other host leases, by the
    /// server: `c` itself when free, else one past the first lease from
    /// `c` on whose successor is not leased (an index scan in address
    /// order that stops at the first hole).
    fn first_unleased(&mut self, c: u32, end: u32) -> Result<Option<u32>> {
        let (ca, ea) = (IpAddr::V4(Ipv4Addr::from(c)), IpAddr::V4(Ipv4Addr::from(end)));
        let row = self.tx.query_typed_one(
            "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM jnet_leases WHERE address = $2 AND host <> $1) THEN $2 \
             ELSE (SELECT a + 1 FROM (SELECT address AS a, lead(address) OVER (ORDER BY address) AS nx \
                   FROM jnet_leases WHERE address >= $2 AND address <= $3 AND host <> $1) s \
                   WHERE nx IS NULL OR nx > a + 1 ORDER BY a LIMIT 1) END",
            &[(&self.host, Type::TEXT), (&ca, Type::INET), (&ea, Type::INET)],
        );
        let row = row.map_err(|e| self.failed(e))?;
        match row.get::<_, Option<IpAddr>>(0) {
            Some(IpAddr::V4(x)) if u32::from(x) <= end && u32::from(x) >= c => Ok(Some(u32::from(x))),
            _ => Ok(None),
        }
    }
}

impl View for FleetView<'_> {
    fn record(&mut self, jail: &JailName) -> Result<Option<JailRecord>> {
        self.full.record(jail)
    }

    fn holder_of(&mut self, a: IpAddr, except: &JailName) -> Result<Option<JailName>> {
        if let Some(j) = self.full.holder_of(a, except)? {
            return Ok(Some(j));
        }
        let row = self.tx.query_typed_opt(
            "SELECT host, jail FROM jnet_leases WHERE host <> $1 AND address = $2 LIMIT 1",
            &[(&self.host, Type::TEXT), (&a, Type::INET)],
        );
        let row = row.map_err(|e| self.failed(e))?;
        match row {
            None => Ok(None),
            Some(row) => {
                let (h, j): (String, String) = (row.get(0), row.get(1));
                // why: the engine says "held by jail X"; a jail of another
                // host is refused all the same, the message names the host.
                Err(Error::data(format!("{a} is already held by jail {j} on host {h}")))
            }
        }
    }

    /// IPv6 pools are not shared through the database yet: its lease
    /// bookkeeping (one lease per jail, low-water marks over u32) is
    /// IPv4's. The configuration refuses IPv6 pools with a `[store]
    /// postgres` backend, so this is only reached by a caller that did not
    /// check; it refuses rather than hand out an address another host may
    /// hold.
    fn lowest_free6(&mut self, _: &RangeSet<u128>, _: &RangeSet<u128>) -> Result<Option<Ipv6Addr>> {
        Err(Error::config(
            "IPv6 pools cannot be shared through PostgreSQL in this version of jnet; \
             use an IPv6 pool with the file store, or assign IPv6 addresses by hand"
                .to_string(),
        ))
    }

    /// The lowest address of `assignable` that neither this host's records
    /// nor `also_taken` nor another host's lease holds. Per range, the
    /// search starts at the range's low water mark (`jnet_hints`: below it
    /// every address is leased, so only this host's leases released in
    /// this update can be free there); a candidate is found locally (the
    /// pure allocator's gap search over this host's records and the extra
    /// exclusions), then the server answers "the first address from the
    /// candidate on that no other host leases" with one indexed query (no
    /// transfer of the pool's leases). Each round moves strictly up, so it
    /// ends; with the mark in place it takes one round.
    fn lowest_free(&mut self, assignable: &RangeSet, also_taken: &RangeSet) -> Result<Option<Ipv4Addr>> {
        let mut taken = also_taken.clone();
        for a in self.full.inv.jails.values().filter_map(JailRecord::address) {
            taken.insert_addr(a);
        }
        for r in assignable.iter_ranges() {
            let low = self.hint(r.start)?;
            // Released in this update below the mark: free, and lowest.
            if let Some(l) = low.filter(|l| *l > u64::from(r.start)) {
                let top = (l - 1).min(u64::from(r.end)) as u32;
                for m in self.mine.iter_ranges() {
                    let (s, e) = (m.start.max(r.start), m.end.min(top));
                    if s <= e {
                        if let Some(y) = taken.first_gap(s, e) {
                            return Ok(Some(Ipv4Addr::from(y)));
                        }
                    }
                }
            }
            // `frontier`: every address of r.start..frontier is leased.
            let mut frontier = match low {
                Some(l) if l > u64::from(r.end) => continue,
                Some(l) => (l as u32).max(r.start),
                None => r.start,
            };
            let mut from = frontier;
            while let Some(c) = taken.first_gap(from, r.end) {
                let x = self.first_unleased(c, r.end)?;
                if c == frontier {
                    // [frontier, x) is leased by other hosts: raise the mark.
                    let to = x.map_or(u64::from(r.end) + 1, u64::from);
                    if to > u64::from(c) {
                        self.set_hint(r.start, to)?;
                        frontier = to.min(u64::from(u32::MAX)) as u32;
                    }
                }
                match x {
                    Some(x) if x == c || !taken.contains(x) => return Ok(Some(Ipv4Addr::from(x))),
                    Some(x) => from = x,
                    None => break,
                }
            }
        }
        Ok(None)
    }

    fn set(&mut self, jail: &JailName, record: Option<JailRecord>) -> Result<()> {
        self.full.set(jail, record)
    }
}

impl FleetStore {
    /// `local` keeps this host's records; `pools` (this host's config)
    /// names the networks of pools the database does not know yet.
    /// Starts opening the database session at once, in a thread of its
    /// own (every verb of the fleet backend needs it); its failure, if
    /// any, is reported by the first use.
    pub fn new(local: Store, cfg: StoreConfig, pools: BTreeMap<PoolName, Pool>) -> Self {
        let c = cfg.clone();
        let opening = std::thread::Builder::new()
            .name("jnet-store-connect".into())
            .spawn(move || PgStore::open_lazy(&c))
            .ok();
        FleetStore {
            local,
            cfg,
            pools,
            pg: Mutex::new(None),
            opening: Mutex::new(opening),
        }
    }

    pub fn host_id(&self) -> &str {
        &self.cfg.host_id
    }

    pub fn describe(&self) -> String {
        self.cfg.describe()
    }

    /// Runs `f` on the (lazily opened) database connection. Opening it
    /// connects (a server that is down or refuses the login fails here)
    /// but leaves the schema check to the first use: the fleet
    /// transaction does it inside its first round trip.
    pub fn pg<T>(&self, f: impl FnOnce(&mut PgStore) -> Result<T>) -> Result<T> {
        let mut g = self.pg.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let early = self.opening.lock().unwrap_or_else(|p| p.into_inner()).take();
            // A thread that could not start, or panicked: open it here.
            let opened = match early.map(|h| h.join()) {
                Some(Ok(r)) => r,
                _ => PgStore::open_lazy(&self.cfg),
            };
            *g = Some(opened?);
        }
        f(g.as_mut().expect("opened above"))
    }

    /// One fleet transaction around `f`, which gets the overlaid inventory
    /// (and the transaction, for the lease view); see the module docs.
    /// Round trips: one to begin (schema version, lease lock, this host's
    /// leases, marks, pools: [`start`]), whatever `f` asks the server
    /// (the allocator's one indexed search), one to write
    /// ([`finish_sql`]), one to commit.
    fn transact(&self, what: &str, f: &mut dyn FnMut(&mut Inventory, &mut Ctx<'_>) -> Op<()>) -> Result<()> {
        let pools = &self.pools;
        // why first: a store that is down or refuses the login fails here,
        // before the local lock is taken or anything local is created.
        self.pg(|_| Ok(()))?;
        self.local.update(|inv| {
            let base = inv.clone();
            let done = self.pg(|pg| {
                pg.run_batched(what, |c, host| {
                    let mut tx = OpenTx { c, open: true };
                    let st = start(tx.c, host)?;
                    let mut work = base.clone();
                    overlay(&mut work, &st.have, pools);
                    let mut mine = RangeSet::new();
                    for l in &st.have {
                        mine.insert_addr(l.address);
                    }
                    let mut hints = st.hints;
                    let mut raised = BTreeMap::new();
                    f(
                        &mut work,
                        &mut Ctx {
                            c: tx.c,
                            host,
                            mine: &mine,
                            hints: &mut hints,
                            raised: &mut raised,
                        },
                    )?;
                    let fin = finish_sql(host, &st.have, &wanted(&work), &st.pools, pools, &raised)?;
                    let n = counts(&tx.c.simple_query(&fin.sql)?);
                    for (i, (jail, pool, a)) in fin.adds.iter().enumerate() {
                        if n.get(fin.first_insert + i) == Some(&0) {
                            // Someone holds it; name the holder (the
                            // transaction, still open, is rolled back).
                            let row = tx.c.query_typed_one(
                                "SELECT pool, host, jail FROM jnet_leases WHERE address = $1 LIMIT 1",
                                &[(&IpAddr::V4(*a), Type::INET)],
                            )?;
                            return Err(held_error(jail, *a, pool, (row.get(0), row.get(1), row.get(2))));
                        }
                    }
                    tx.c.simple_query("COMMIT")?;
                    tx.committed();
                    for (jail, pool, a) in fin.adds {
                        tracing::info!(%pool, address = %a, host, %jail, "leased");
                    }
                    Ok(work)
                })
            })?;
            *inv = done;
            Ok(())
        })
    }
}

/// What a fleet transaction's closure gets besides the inventory.
struct Ctx<'a> {
    c: &'a mut ::postgres::Client,
    host: &'a str,
    mine: &'a RangeSet,
    hints: &'a mut BTreeMap<u32, u64>,
    raised: &'a mut BTreeMap<u32, u64>,
}

impl Backend for FleetStore {
    fn read(&self) -> Result<Inventory> {
        let mut inv = self.local.read()?;
        let have = self.pg(|pg| pg.run_jnet("reading this host's leases", mine_of))?;
        overlay(&mut inv, &have, &self.pools);
        Ok(inv)
    }

    fn update_inventory(&self, f: &mut dyn FnMut(&mut Inventory) -> Result<()>) -> Result<()> {
        self.transact("updating this host's leases", &mut |inv, _| f(inv).map_err(OpErr::Jnet))
    }

    fn update_leases(&self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()> {
        self.transact("updating this host's leases", &mut |inv, cx| {
            let mut v = FleetView {
                full: FullView { inv, changed: false },
                tx: &mut *cx.c,
                host: cx.host,
                hints: &mut *cx.hints,
                raised: &mut *cx.raised,
                mine: cx.mine.clone(),
                pg_err: None,
            };
            let r = f(&mut v);
            match (r, v.pg_err.take()) {
                (_, Some(e)) => Err(OpErr::Pg(e)),
                (Err(e), None) => Err(OpErr::Jnet(e)),
                (Ok(()), None) => Ok(()),
            }
        })
    }

    fn lock_jail(&self, jail: &JailName) -> Result<JailLock> {
        self.local.lock_jail(jail)
    }

    fn fleet(&self) -> Option<&FleetStore> {
        Some(self)
    }
}

#[cfg(test)]
#[path = "../../tests/common/pg.rs"]
mod pg;

/// The backend conformance suite against the fleet backend over a real
/// PostgreSQL server: one server for all of them (started on first use,
/// stopped at exit), one schema per test directory, one local file store
/// per test directory.
#[cfg(test)]
mod conformance_pg {
    use std::path::Path;
    use std::sync::OnceLock;
    use std::time::Duration;

    use super::pg::Pg;
    use super::FleetStore;
    use crate::core::config::parse_config;
    use crate::store::postgres::StoreConfig;
    use crate::store::Store;

    static SERVER: OnceLock<Option<Pg>> = OnceLock::new();

    fn server() -> Option<&'static Pg> {
        SERVER
            .get_or_init(|| {
                let pg = Pg::start("store::fleet conformance")?;
                pg.stop_when_this_process_exits();
                Some(pg)
            })
            .as_ref()
    }

    /// A fleet backend for `dir`: the same schema (named after the
    /// directory) and local store for the same `dir`, as two jnet
    /// processes on one host would have.
    pub fn make(dir: &Path, lock_timeout: Duration) -> FleetStore {
        make_host(dir, lock_timeout, "h1")
    }

    /// Host `host` of the fleet of `dir`'s schema, with a local store of
    /// its own.
    fn make_host(dir: &Path, lock_timeout: Duration, host: &str) -> FleetStore {
        let pg = server().expect("checked by the test");
        let schema: String = dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let schema = format!("t_{schema}");
        pg.client("jnet", "jnet")
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .unwrap();
        let text = format!(
            "[store]\nbackend = \"postgres\"\nhost_id = \"{host}\"\nlock_timeout_ms = {}\n\
             url = \"host={} port=5432 dbname=jnet user=jnet options=-csearch_path={schema}\"\n",
            lock_timeout.as_millis().max(1),
            pg.sock()
        );
        let cfg = StoreConfig::parse("test.toml", &text).unwrap();
        let conf = parse_config(
            "t",
            "[host]\nexternal_interface=\"em0\"\n[pools.lan]\nnetwork=\"10.0.0.0/24\"\ninterface=\"em0\"\n",
        )
        .unwrap();
        FleetStore::new(
            Store::new(dir.join(format!("state-{host}")), lock_timeout),
            cfg,
            conf.pools,
        )
    }

    /// The allocator's rounds: this host's records, the caller's
    /// exclusions and another host's leases interleave, and the answer is
    /// the lowest address none of them holds.
    #[test]
    fn lowest_free_skips_local_records_extra_exclusions_and_other_hosts_leases() {
        use crate::core::range::RangeSet;
        use crate::store::{Backend, JailRecord};
        use std::net::Ipv4Addr;
        if server().is_none() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let t = Duration::from_secs(5);
        let (a, b) = (make_host(d.path(), t, "ha"), make_host(d.path(), t, "hb"));
        let ip = |x: u8| Ipv4Addr::new(10, 0, 0, x);
        let lan = || Some(crate::core::names::PoolName::new("lan").unwrap());
        let rec = |x: u8| JailRecord::dedicated(ip(x), lan(), None);
        let jn = |s: &str| crate::core::names::JailName::new(s).unwrap();
        // hb leases .1 .2 .5 .7; ha holds .3 and (outside every pool) .6.
        (&b as &dyn Backend)
            .update(|inv| {
                for (j, x) in [("b1", 1), ("b2", 2), ("b5", 5), ("b7", 7)] {
                    inv.jails.insert(jn(j), rec(x));
                }
                Ok(())
            })
            .unwrap();
        (&a as &dyn Backend)
            .update(|inv| {
                inv.jails.insert(jn("a3"), rec(3));
                inv.jails.insert(jn("a6"), JailRecord::dedicated(ip(6), None, None));
                Ok(())
            })
            .unwrap();
        let mut pool = RangeSet::new();
        pool.insert(crate::core::range::Ipv4Range {
            start: u32::from(ip(1)),
            end: u32::from(ip(254)),
        });
        let mut also = RangeSet::new();
        also.insert_addr(ip(4));
        also.insert_addr(ip(8));
        let got = (&a as &dyn Backend)
            .update_view(|v| v.lowest_free(&pool, &also))
            .unwrap();
        assert_eq!(got, Some(ip(9)));
        // hb sees ha's .3 as taken and its own .1 .2 as its own records.
        let got = (&b as &dyn Backend)
            .update_view(|v| v.lowest_free(&pool, &RangeSet::new()))
            .unwrap();
        assert_eq!(got, Some(ip(4)));
        // A full pool from the candidate on: none.
        let mut small = RangeSet::new();
        small.insert(crate::core::range::Ipv4Range {
            start: u32::from(ip(1)),
            end: u32::from(ip(3)),
        });
        let got = (&a as &dyn Backend)
            .update_view(|v| v.lowest_free(&small, &RangeSet::new()))
            .unwrap();
        assert_eq!(got, None);
    }

    /// The last round trip is all or nothing: an insert refused because
    /// another host holds the address (a local record this host never
    /// published) names the holder, and rolls back the deletes and marks
    /// sent before it in the same batch; a pool the store records with
    /// another network is refused before anything is sent.
    #[test]
    fn a_refused_insert_names_the_holder_and_rolls_back_the_whole_batch() {
        use crate::store::{Backend, JailRecord};
        use std::net::Ipv4Addr;
        if server().is_none() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let t = Duration::from_secs(5);
        let (a, b) = (make_host(d.path(), t, "ha"), make_host(d.path(), t, "hb"));
        let ip = |x: u8| Ipv4Addr::new(10, 0, 0, x);
        let lan = || Some(crate::core::names::PoolName::new("lan").unwrap());
        let jn = |s: &str| crate::core::names::JailName::new(s).unwrap();
        let rec = |x: u8| JailRecord::dedicated(ip(x), lan(), None);
        (&b as &dyn Backend)
            .update(|inv| {
                inv.jails.insert(jn("b1"), rec(1));
                Ok(())
            })
            .unwrap();
        (&a as &dyn Backend)
            .update(|inv| {
                inv.jails.insert(jn("a2"), rec(2));
                Ok(())
            })
            .unwrap();
        // ha's own file store gets a record of .1 behind the fleet's back.
        let local = Store::new(d.path().join("state-ha"), t);
        (&local as &dyn Backend)
            .update(|inv| {
                inv.jails.insert(jn("a1"), rec(1));
                Ok(())
            })
            .unwrap();
        let leases = |s: &FleetStore| {
            s.pg(|pg| Ok(pg.leases(&Default::default())?))
                .unwrap()
                .into_iter()
                .map(|l| (l.host, l.jail, l.address))
                .collect::<Vec<_>>()
        };
        let before = leases(&a);
        assert_eq!(
            before,
            vec![("hb".into(), "b1".into(), ip(1)), ("ha".into(), "a2".into(), ip(2))]
        );
        // Releasing a2 in the same update: the delete goes in the batch
        // before the refused insert, and is rolled back with it.
        let e = (&a as &dyn Backend)
            .update(|inv| {
                inv.jails.remove(&jn("a2"));
                Ok(())
            })
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(
                "jail a1 would hold 10.0.0.1 of pool lan, but the store leases it (pool lan) to jail b1 on host hb"
            ),
            "{msg}"
        );
        assert_eq!(e.kind(), crate::error::ErrorKind::Invalid, "{msg}");
        assert_eq!(leases(&a), before, "nothing changed remotely");
        let inv = (&local as &dyn Backend).read().unwrap();
        assert!(inv.jails.contains_key(&jn("a2")), "nothing changed locally");
        // The session is usable after the rollback: ha gives a1 up, and
        // its update goes through.
        (&a as &dyn Backend)
            .update(|inv| {
                inv.jails.remove(&jn("a1"));
                Ok(())
            })
            .unwrap();
        assert_eq!(leases(&a), before);
        // A pool the store records with another network: refused, nothing sent.
        let mut other = a.pools.clone();
        let lan_name = crate::core::names::PoolName::new("lan").unwrap();
        other.get_mut(&lan_name).unwrap().network = "10.0.0.0/16".parse().unwrap();
        let skew = FleetStore::new(Store::new(d.path().join("state-ha"), t), a.cfg.clone(), other);
        let e = (&skew as &dyn Backend)
            .update(|inv| {
                inv.jails.insert(jn("a3"), rec(3));
                Ok(())
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("pool lan is 10.0.0.0/24 in the store but 10.0.0.0/16 in this host's config"),
            "{e}"
        );
        assert_eq!(leases(&a), before);
    }

    /// Values put into the simple queries come back from the server as
    /// they were, whatever they hold (a name another jnet wrote into the
    /// store is not validated by this one), with either setting of
    /// standard_conforming_strings.
    #[test]
    fn literals_of_the_simple_queries_round_trip() {
        if server().is_none() {
            return;
        }
        let mut c = server().unwrap().client("jnet", "jnet");
        for scs in ["on", "off"] {
            c.batch_execute(&format!("SET standard_conforming_strings = {scs}"))
                .unwrap();
            for v in [
                "www",
                "a'b",
                "back\\slash\\",
                "'; DROP TABLE x; --",
                "$jnet$ $$",
                "tab\there",
                "ünï",
            ] {
                let msgs = c.simple_query(&format!("SELECT {}", super::lit(v))).unwrap();
                let got = super::results(msgs)[0][0].get(0).map(str::to_string);
                assert_eq!(got.as_deref(), Some(v), "standard_conforming_strings={scs}");
            }
        }
    }

    macro_rules! fleet_conformance {
        ($($name:ident),* $(,)?) => {$(
            #[test]
            fn $name() {
                if server().is_none() {
                    return;
                }
                crate::store::conformance::$name(make);
            }
        )*};
    }

    fleet_conformance!(
        a_new_backend_is_empty,
        updates_commit_whole_and_failed_ones_not_at_all,
        changes_survive_reopening,
        lease_view_answers_from_the_committed_state,
        concurrent_assigns_never_share_an_address,
        jail_lock_is_exclusive_per_jail_and_ends_on_drop,
        phase_change_is_compare_and_set,
    );
}
