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
//! the local file written. So:
//! - the allocation is one transaction: `lowest_free` sees every host's
//!   leases plus this host's records plus the caller's extra exclusions
//!   (jail.conf statics, interface addresses), and nobody allocates in
//!   between;
//! - a failure anywhere before the commit (server down, login refused,
//!   timeout, the engine refusing) changes nothing in either store;
//! - a commit whose answer was lost (connection cut after COMMIT) is
//!   retried once on a new connection ([`PgStore::run_jnet`]); the retry
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
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use ::postgres::types::Type;

use crate::core::config::Pool;
use crate::core::names::{JailName, PoolName};
use crate::core::range::{Ipv4Range, RangeSet};
use crate::error::{Error, Result};

use super::inventory::{Inventory, JailRecord, Mode};
use super::postgres::{self, Lease, Op, OpErr, PgStore, StoreConfig};
use super::view::{FullView, View};
use super::{Backend, JailLock, Store};

/// See the module docs.
pub struct FleetStore {
    local: Store,
    cfg: StoreConfig,
    pools: BTreeMap<PoolName, Pool>,
    /// Opened on first use, so a verb that never needs the database
    /// (none today) would not connect.
    pg: Mutex<Option<PgStore>>,
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
        Some(r) if r.mode == Mode::Dedicated && r.address == Some(l.address) && r.pool.as_ref() == Some(&pool) => None,
        Some(r) => {
            let mut r = r.clone();
            if r.pool.as_ref() != Some(&pool) {
                r.interface = pools.get(&pool).map(|p| p.interface.clone()).or(r.interface);
            }
            r.mode = Mode::Dedicated;
            r.address = Some(l.address);
            r.pool = Some(pool);
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
        .filter(|(_, r)| r.mode == Mode::Dedicated)
        .filter_map(|(n, r)| Some((n.as_str().to_string(), (r.pool.as_ref()?.to_string(), r.address?))))
        .collect()
}

fn refused(msg: String) -> OpErr {
    OpErr::Jnet(Error::data(msg))
}

/// Makes the database hold exactly `want` for `host`: deletes first (so
/// two jails may swap addresses), then inserts, each checked against
/// every host's leases so a conflict names its holder.
fn sync(
    tx: &mut ::postgres::Transaction<'_>,
    host: &str,
    have: &[Lease],
    want: &Mine,
    pools: &BTreeMap<PoolName, Pool>,
) -> Op<()> {
    let mut gone = vec![];
    for l in have {
        if want.get(&l.jail) != Some(&(l.pool.clone(), l.address)) {
            tx.query_typed(
                "DELETE FROM jnet_leases WHERE pool = $1 AND host = $2 AND jail = $3",
                &[(&l.pool, Type::TEXT), (&host, Type::TEXT), (&l.jail, Type::TEXT)],
            )?;
            gone.push(l.address);
        }
    }
    postgres::lower_hints(tx, &gone)?;
    for (jail, (pool, a)) in want {
        if have
            .iter()
            .any(|l| &l.jail == jail && &l.pool == pool && l.address == *a)
        {
            continue;
        }
        ensure_pool(tx, pool, pools)?;
        // One round trip: inserted unless some lease (any pool, any host)
        // holds the address; only a refusal asks who holds it.
        let added = tx.query_typed(
            "INSERT INTO jnet_leases (pool, address, host, jail) SELECT $1, $2, $3, $4 \
             WHERE NOT EXISTS (SELECT 1 FROM jnet_leases WHERE address = $2) RETURNING 1",
            &[
                (pool, Type::TEXT),
                (&IpAddr::V4(*a), Type::INET),
                (&host, Type::TEXT),
                (jail, Type::TEXT),
            ],
        )?;
        if added.is_empty() {
            let row = tx.query_typed_one(
                "SELECT pool, host, jail FROM jnet_leases WHERE address = $1 LIMIT 1",
                &[(&IpAddr::V4(*a), Type::INET)],
            )?;
            let (p, h, j): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            return Err(refused(format!(
                "jail {jail} would hold {a} of pool {pool}, but the store leases it (pool {p}) to jail {j} on host {h}; \
                 give jail {jail} another address (jnet assign) or release it (jnet release {jail})"
            )));
        }
        tracing::info!(%pool, address = %a, host, %jail, "leased");
    }
    Ok(())
}

/// The pool's row, created from this host's config when missing; a pool
/// the database records with another network is refused.
fn ensure_pool(tx: &mut ::postgres::Transaction<'_>, name: &str, pools: &BTreeMap<PoolName, Pool>) -> Op<()> {
    let conf = PoolName::new(name).ok().and_then(|n| pools.get(&n));
    let stored: Option<String> = tx
        .query_typed_opt(
            "SELECT network::text FROM jnet_pools WHERE name = $1",
            &[(&name, Type::TEXT)],
        )?
        .map(|r| r.get(0));
    match (stored, conf) {
        (Some(s), Some(p)) if s != p.network.to_string() => Err(refused(format!(
            "pool {name} is {s} in the store but {} in this host's config; every host must configure a shared pool alike",
            p.network
        ))),
        (Some(_), _) => Ok(()),
        (None, Some(p)) => {
            tx.query_typed(
                "INSERT INTO jnet_pools (name, network) VALUES ($1, $2::text::cidr) ON CONFLICT (name) DO NOTHING",
                &[(&name, Type::TEXT), (&p.network.to_string(), Type::TEXT)],
            )?;
            Ok(())
        }
        (None, None) => Err(refused(format!(
            "pool {name} is not configured on this host, so its lease cannot be recorded in the store"
        ))),
    }
}

/// The lease view inside one fleet transaction: this host's records from
/// the overlaid local inventory, other hosts' leases from the database.
struct FleetView<'a, 'b> {
    full: FullView<'a>,
    tx: &'a mut ::postgres::Transaction<'b>,
    host: &'a str,
    /// This host's leases in the table when the transaction began (a
    /// hint's leased prefix may hold some this update has released).
    mine: RangeSet,
    /// The driver error behind a failed call, so the transaction can be
    /// classified (and retried after a lost connection) as a store error.
    pg_err: Option<::postgres::Error>,
}

impl FleetView<'_, '_> {
    fn failed(&mut self, e: ::postgres::Error) -> Error {
        let msg = format!("the store failed: {e}");
        self.pg_err = Some(e);
        Error::Unavailable(msg)
    }

    /// Other hosts' leased addresses in `r`.
    fn others_in(&mut self, r: Ipv4Range) -> Result<RangeSet> {
        let rows = self.tx.query_typed(
            "SELECT address FROM jnet_leases WHERE host <> $1 AND address >= $2 AND address <= $3",
            &[
                (&self.host, Type::TEXT),
                (&IpAddr::V4(Ipv4Addr::from(r.start)), Type::INET),
                (&IpAddr::V4(Ipv4Addr::from(r.end)), Type::INET),
            ],
        );
        let rows = rows.map_err(|e| self.failed(e))?;
        let mut s = RangeSet::new();
        for row in rows {
            if let IpAddr::V4(a) = row.get::<_, IpAddr>(0) {
                s.insert_addr(a);
            }
        }
        Ok(s)
    }
}

impl FleetView<'_, '_> {
    /// The low water mark of the range starting at `start`, if any.
    fn hint(&mut self, start: u32) -> Result<Option<u64>> {
        let row = self.tx.query_typed_opt(
            "SELECT low FROM jnet_hints WHERE range_start = $1",
            &[(&i64::from(start), Type::INT8)],
        );
        let row = row.map_err(|e| self.failed(e))?;
        Ok(row.map(|r| r.get::<_, i64>(0).max(0) as u64))
    }

    fn set_hint(&mut self, start: u32, low: u64) -> Result<()> {
        let r = self.tx.query_typed(
            "INSERT INTO jnet_hints (range_start, low) VALUES ($1, $2) \
             ON CONFLICT (range_start) DO UPDATE SET low = excluded.low",
            &[(&i64::from(start), Type::INT8), (&(low as i64), Type::INT8)],
        );
        r.map_err(|e| self.failed(e))?;
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

impl View for FleetView<'_, '_> {
    fn record(&mut self, jail: &JailName) -> Result<Option<JailRecord>> {
        self.full.record(jail)
    }

    fn holder_of(&mut self, a: Ipv4Addr, except: &JailName) -> Result<Option<JailName>> {
        if let Some(j) = self.full.holder_of(a, except)? {
            return Ok(Some(j));
        }
        let row = self.tx.query_typed_opt(
            "SELECT host, jail FROM jnet_leases WHERE host <> $1 AND address = $2 LIMIT 1",
            &[(&self.host, Type::TEXT), (&IpAddr::V4(a), Type::INET)],
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

    fn taken_in(&mut self, r: Ipv4Range) -> Result<RangeSet> {
        let mut s = self.full.taken_in(r)?;
        for x in self.others_in(r)?.iter_ranges() {
            s.insert(x);
        }
        Ok(s)
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
        for a in self.full.inv.jails.values().filter_map(|j| j.address) {
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
    pub fn new(local: Store, cfg: StoreConfig, pools: BTreeMap<PoolName, Pool>) -> Self {
        FleetStore {
            local,
            cfg,
            pools,
            pg: Mutex::new(None),
        }
    }

    pub fn host_id(&self) -> &str {
        &self.cfg.host_id
    }

    pub fn describe(&self) -> String {
        self.cfg.describe()
    }

    /// Runs `f` on the (lazily opened) database connection.
    pub fn pg<T>(&self, f: impl FnOnce(&mut PgStore) -> Result<T>) -> Result<T> {
        let mut g = self.pg.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(PgStore::open(&self.cfg)?);
        }
        f(g.as_mut().expect("opened above"))
    }

    /// One fleet transaction around `f`, which gets the overlaid inventory
    /// (and the transaction, for the lease view); see the module docs.
    fn transact(
        &self,
        what: &str,
        f: &mut dyn FnMut(&mut Inventory, &mut ::postgres::Transaction<'_>, &str, &RangeSet) -> Op<()>,
    ) -> Result<()> {
        let pools = &self.pools;
        // why first: a store that is down or refuses the login fails here,
        // before the local lock is taken or anything local is created.
        self.pg(|_| Ok(()))?;
        self.local.update(|inv| {
            let base = inv.clone();
            let done = self.pg(|pg| {
                pg.run_jnet(what, |c, host| {
                    let mut tx = c.transaction()?;
                    postgres::lock_leases(&mut tx)?;
                    let have = mine_of(&mut tx, host)?;
                    let mut work = base.clone();
                    overlay(&mut work, &have, pools);
                    let mut mine = RangeSet::new();
                    for l in &have {
                        mine.insert_addr(l.address);
                    }
                    f(&mut work, &mut tx, host, &mine)?;
                    sync(&mut tx, host, &have, &wanted(&work), pools)?;
                    postgres::seen(&mut tx, host)?;
                    tx.commit()?;
                    Ok(work)
                })
            })?;
            *inv = done;
            Ok(())
        })
    }
}

impl Backend for FleetStore {
    fn read(&self) -> Result<Inventory> {
        let mut inv = self.local.read()?;
        let have = self.pg(|pg| pg.run_jnet("reading this host's leases", mine_of))?;
        overlay(&mut inv, &have, &self.pools);
        Ok(inv)
    }

    fn update_inventory(&self, f: &mut dyn FnMut(&mut Inventory) -> Result<()>) -> Result<()> {
        self.transact("updating this host's leases", &mut |inv, _, _, _| {
            f(inv).map_err(OpErr::Jnet)
        })
    }

    fn update_leases(&self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()> {
        self.transact("updating this host's leases", &mut |inv, tx, host, mine| {
            let mut v = FleetView {
                full: FullView { inv, changed: false },
                tx,
                host,
                mine: mine.clone(),
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
