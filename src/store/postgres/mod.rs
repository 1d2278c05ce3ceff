//! PostgreSQL store for address pools shared by a fleet of hosts (issue 11):
//! leases of (pool, address) to (host, jail), kept in one database so that
//! two hosts never hand out the same address.
//!
//! What it guarantees:
//! - **Uniqueness by the schema.** `jnet_leases` has UNIQUE (pool, address)
//!   and UNIQUE (pool, host, jail); even a buggy client cannot commit a
//!   duplicate.
//! - **One transaction per allocation.** [`PgStore::assign`] locks the
//!   pool's row (`SELECT ... FOR UPDATE`), so allocators of one pool run
//!   one after the other across hosts, reads the pool's leases inside that
//!   transaction and picks the lowest free address with the same pure
//!   allocator as the file store ([`crate::core::alloc::lowest_free`]),
//!   with the caller's extra exclusions (this host's jail.conf statics and
//!   interface addresses). A client that dies mid-transaction leaves
//!   nothing: the server rolls the transaction back when the session ends,
//!   and `idle_in_transaction_session_timeout` ends a hung one.
//! - **Idempotent assign.** A retried assign for the same (pool, host,
//!   jail) returns the existing lease, so a retry after an ambiguous commit
//!   (connection lost after COMMIT) cannot allocate twice.
//! - **Owner-only release.** A host releases only its own leases;
//!   [`PgStore::release_for_host`] is the operator's explicit reclaim of
//!   another (dead) host's leases. Leases never expire by time; each write
//!   records the host's `last_seen` so reports can flag stale hosts.
//! - **Reconnect.** A lost connection (server restart) is reopened once
//!   per call and the call retried; every call is safe to retry.
//!
//! - **TLS when asked.** `sslmode=require` connects through rustls (ring)
//!   and verifies the server's certificate chain and name against
//!   `ca_file` or the system's roots; otherwise the session is in clear.
//!
//! What it does not do: keep jail runtime state (phase, jid stay local to
//! each host; [`crate::store::FleetStore`] composes this with the local
//! file store into a `store::Backend`), or decide pool membership of
//! requested addresses (the engine does).

pub mod config;
pub mod error;
mod schema;

use std::net::{IpAddr, Ipv4Addr};

use postgres::error::SqlState;
use postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::core::alloc;
use crate::core::config::Pool;
use crate::core::names::JailName;
use crate::core::range::RangeSet;
use crate::store::JailLock;

pub use config::{BackendKind, StoreConfig, Timeouts};
pub use error::{PgError, PgErrorKind};
pub(crate) use schema::verdict as schema_verdict;
pub use schema::SCHEMA_VERSION;

/// One lease: `address` of `pool` is held by `jail` on `host`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lease {
    pub pool: String,
    pub address: Ipv4Addr,
    pub host: String,
    pub jail: String,
}

/// A host as the store last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSeen {
    pub host: String,
    /// Seconds since the epoch of the host's last write or [`PgStore::touch`].
    pub last_seen: f64,
    /// Seconds between that and the server's clock now.
    pub age_secs: f64,
}

/// Which leases [`PgStore::leases`] returns.
#[derive(Debug, Clone, Default)]
pub struct LeaseFilter<'a> {
    pub pool: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// Inside an operation: a driver error (classified, maybe retried after a
/// reconnect) or a decision of ours (returned as is).
pub(crate) enum OpErr {
    Pg(postgres::Error),
    App(PgError),
    /// A decision of the engine's, inside a fleet transaction
    /// ([`PgStore::run_jnet`]); returned as is.
    Jnet(crate::error::Error),
}

impl From<postgres::Error> for OpErr {
    fn from(e: postgres::Error) -> Self {
        OpErr::Pg(e)
    }
}

pub(crate) type Op<T> = std::result::Result<T, OpErr>;

/// What [`PgStore::run_any`] failed with.
enum Fail {
    Pg(PgError),
    Jnet(crate::error::Error),
}

/// pg_advisory_xact_lock key of the fleet's leases ("jnetls" in ASCII):
/// every transaction that changes leases takes it first, so allocations
/// across the fleet run one after the other (each holds it for about a
/// millisecond).
pub(crate) const LEASE_LOCK: i64 = 0x6a6e_6574_6c73;

/// Keeps the low water marks of `jnet_hints` true after `gone` were
/// deleted: a mark above a deleted address comes down to it. Needs the
/// lease lock (a search raises marks under it).
pub(crate) fn lower_hints(tx: &mut postgres::Transaction<'_>, gone: &[Ipv4Addr]) -> Op<()> {
    if gone.is_empty() {
        return Ok(());
    }
    let nums: Vec<i64> = gone.iter().map(|a| i64::from(u32::from(*a))).collect();
    tx.query_typed(
        "UPDATE jnet_hints h SET low = sub.m FROM \
         (SELECT h2.range_start, min(x) AS m FROM jnet_hints h2, unnest($1::bigint[]) x \
          WHERE x >= h2.range_start AND x < h2.low GROUP BY h2.range_start) sub \
         WHERE h.range_start = sub.range_start",
        &[(&nums, postgres::types::Type::INT8_ARRAY)],
    )?;
    Ok(())
}

/// Takes [`LEASE_LOCK`] for the rest of `tx`; waits at most `lock_timeout`.
pub(crate) fn lock_leases(tx: &mut postgres::Transaction<'_>) -> Op<()> {
    tx.query_typed(
        "SELECT pg_advisory_xact_lock($1)",
        &[(&LEASE_LOCK, postgres::types::Type::INT8)],
    )?;
    Ok(())
}

pub struct PgStore {
    cfg: StoreConfig,
    pc: postgres::Config,
    tls: Option<MakeRustlsConnect>,
    secret: Option<String>,
    desc: String,
    client: Option<Client>,
    /// The live session's schema version was verified (or the schema
    /// created). A lazily opened store ([`PgStore::open_lazy`]) checks it
    /// on first use; the fleet transaction verifies it inside its first
    /// round trip instead ([`PgStore::run_batched`]).
    checked: bool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("store", &self.desc)
            .field("host", &self.cfg.host_id)
            .finish()
    }
}

/// A lease from a row of `pool, address, host, jail`, the column order of
/// every lease query here.
pub(crate) fn lease_of(r: &postgres::Row) -> Op<Lease> {
    let pool: String = r.get(0);
    Ok(Lease {
        address: v4(r.get(1), &pool)?,
        pool,
        host: r.get(2),
        jail: r.get(3),
    })
}

pub(crate) fn v4(a: IpAddr, pool: &str) -> Op<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => Err(OpErr::App(PgError::new(
            PgErrorKind::Schema,
            format!("pool {pool}: the store holds IPv6 address {a}, which this jnet does not know"),
            None,
        ))),
    }
}

impl PgStore {
    /// Connects, creates the schema when the database has none, and
    /// refuses a schema of another version (newer: upgrade jnet; older:
    /// run the migration).
    pub fn open(cfg: &StoreConfig) -> Result<Self, PgError> {
        let (pc, secret) = cfg.pg_config()?;
        let desc = config::describe_pg(&pc);
        let mut s = PgStore {
            cfg: cfg.clone(),
            tls: tls_connector(cfg, &pc, &desc)?,
            desc,
            pc,
            secret,
            client: None,
            checked: false,
        };
        s.connect()?;
        Ok(s)
    }

    /// Like [`PgStore::open`] (a server that is down or refuses the login
    /// fails here), but the schema is checked on first use, not now: the
    /// fleet transaction reads the version in its first round trip, which
    /// saves one per process.
    pub fn open_lazy(cfg: &StoreConfig) -> Result<Self, PgError> {
        let (pc, secret) = cfg.pg_config()?;
        let desc = config::describe_pg(&pc);
        let mut s = PgStore {
            cfg: cfg.clone(),
            tls: tls_connector(cfg, &pc, &desc)?,
            desc,
            pc,
            secret,
            client: None,
            checked: false,
        };
        s.client = Some(s.open_session()?);
        Ok(s)
    }

    /// Brings the schema up to [`SCHEMA_VERSION`]; returns (from, to).
    /// Refuses a newer schema. Safe to run from several hosts at once.
    pub fn migrate(cfg: &StoreConfig) -> Result<(u32, u32), PgError> {
        let (pc, secret) = cfg.pg_config()?;
        let desc = config::describe_pg(&pc);
        let tls = tls_connector(cfg, &pc, &desc)?;
        let mut c = connect_raw(&pc, &cfg.timeouts, &desc, secret.as_deref(), tls.as_ref())?;
        match schema::migrate(&mut c) {
            Ok(v) => Ok(v),
            Err(OpErr::App(e)) => Err(PgError::new(
                e.kind,
                format!("{desc}: {}", e.message()),
                secret.as_deref(),
            )),
            Err(OpErr::Pg(e)) => Err(op_error(&desc, "migrating the schema", e, secret.as_deref())),
            Err(OpErr::Jnet(e)) => Err(PgError::new(PgErrorKind::Schema, e.to_string(), secret.as_deref())),
        }
    }

    /// "postgres store host=... dbname=... user=...", without the password.
    pub fn describe(&self) -> &str {
        &self.desc
    }

    pub fn host_id(&self) -> &str {
        &self.cfg.host_id
    }

    /// A new session with this store's settings (timeouts, TLS, secret).
    fn open_session(&self) -> Result<Client, PgError> {
        connect_raw(
            &self.pc,
            &self.cfg.timeouts,
            &self.desc,
            self.secret.as_deref(),
            self.tls.as_ref(),
        )
    }

    fn connect(&mut self) -> Result<&mut Client, PgError> {
        self.checked = false;
        let c = self.open_session()?;
        let c = self.client.insert(c);
        check_on(c, &self.desc, self.secret.as_deref())?;
        self.checked = true;
        Ok(c)
    }

    fn named(&self, e: PgError) -> PgError {
        PgError::new(
            e.kind,
            format!("{}: {}", self.desc, e.message()),
            self.secret.as_deref(),
        )
    }

    /// Runs `f` on the connection, reconnecting first when it was lost and
    /// once more when `f` fails because it was lost meanwhile (a server
    /// restart). `f` must be safe to run twice: every operation here is
    /// one transaction that is idempotent or rolled back.
    fn run<T>(&mut self, what: &str, f: impl FnMut(&mut Client, &str) -> Op<T>) -> Result<T, PgError> {
        match self.run_any(what, f) {
            Ok(v) => Ok(v),
            Err(Fail::Pg(e)) => Err(e),
            Err(Fail::Jnet(e)) => Err(PgError::new(
                PgErrorKind::Refused,
                e.to_string(),
                self.secret.as_deref(),
            )),
        }
    }

    /// [`PgStore::run`] for a closure that may fail with the engine's
    /// own error ([`OpErr::Jnet`]), which is returned unchanged; store
    /// errors become [`crate::error::Error`] with their exit codes.
    pub(crate) fn run_jnet<T>(
        &mut self,
        what: &str,
        f: impl FnMut(&mut Client, &str) -> Op<T>,
    ) -> crate::error::Result<T> {
        match self.run_any(what, f) {
            Ok(v) => Ok(v),
            Err(Fail::Pg(e)) => Err(e.into()),
            Err(Fail::Jnet(e)) => Err(e),
        }
    }

    /// [`PgStore::run_jnet`] for a closure that verifies the schema
    /// version itself, inside its first round trip (with
    /// [`schema::verdict`]), so no separate check precedes it. When that
    /// round trip fails because a table is missing (a new database, or an
    /// older schema), the ordinary check runs (creating the schema, or
    /// refusing the old one with its message) and `f` is run again.
    pub(crate) fn run_batched<T>(
        &mut self,
        what: &str,
        f: impl FnMut(&mut Client, &str) -> Op<T>,
    ) -> crate::error::Result<T> {
        match self.run_inner(what, false, f) {
            Ok(v) => Ok(v),
            Err(Fail::Pg(e)) => Err(e.into()),
            Err(Fail::Jnet(e)) => Err(e),
        }
    }

    fn run_any<T>(&mut self, what: &str, f: impl FnMut(&mut Client, &str) -> Op<T>) -> Result<T, Fail> {
        self.run_inner(what, true, f)
    }

    fn run_inner<T>(
        &mut self,
        what: &str,
        eager_check: bool,
        mut f: impl FnMut(&mut Client, &str) -> Op<T>,
    ) -> Result<T, Fail> {
        let host = self.cfg.host_id.clone();
        let mut created = false;
        let mut attempt = 0;
        while attempt < 2 {
            if self.client.as_ref().is_none_or(|c| c.is_closed()) {
                self.client = None;
                self.checked = false;
                let c = self.open_session().map_err(Fail::Pg)?;
                self.client = Some(c);
            }
            let c = self.client.as_mut().expect("connected above");
            if eager_check && !self.checked {
                check_on(c, &self.desc, self.secret.as_deref()).map_err(Fail::Pg)?;
                self.checked = true;
            }
            match f(c, &host) {
                Ok(v) => return Ok(v),
                Err(OpErr::App(e)) => return Err(Fail::Pg(self.named(e))),
                Err(OpErr::Jnet(e)) => return Err(Fail::Jnet(e)),
                Err(OpErr::Pg(e)) => {
                    if !eager_check && !created && is_missing_table(&e) && !c.is_closed() {
                        // The schema is missing or older: the ordinary
                        // check creates it or refuses with its message.
                        check_on(c, &self.desc, self.secret.as_deref()).map_err(Fail::Pg)?;
                        self.checked = true;
                        created = true;
                        continue;
                    }
                    let lost = c.is_closed() || e.is_closed() || is_connection_loss(&e);
                    if lost && attempt == 0 {
                        tracing::warn!(store = %self.desc, "{what}: connection lost, reconnecting");
                        self.client = None;
                        attempt += 1;
                        continue;
                    }
                    if lost {
                        self.client = None;
                    }
                    return Err(Fail::Pg(op_error(&self.desc, what, e, self.secret.as_deref())));
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// The lease of `jail` on this host in `pool`, or the lowest free
    /// address of `pool` not leased by any host and not in `extra` (this
    /// host's jail.conf statics and interface addresses), in one
    /// transaction. Pool exhausted: [`PgErrorKind::Exhausted`]; pool row
    /// locked longer than `lock_timeout`: [`PgErrorKind::Timeout`].
    pub fn assign(&mut self, pool: &Pool, jail: &str, extra: &RangeSet) -> Result<Lease, PgError> {
        let name = pool.name.as_str().to_string();
        let network = pool.network.to_string();
        self.run(
            &format!("assigning an address of pool {name} to jail {jail}"),
            |c, host| {
                let mut tx = c.transaction()?;
                lock_pool(&mut tx, &name, &network)?;
                if let Some(row) = tx.query_opt(
                    "SELECT address FROM jnet_leases WHERE pool = $1 AND host = $2 AND jail = $3",
                    &[&name, &host, &jail],
                )? {
                    let address = v4(row.get(0), &name)?;
                    seen(&mut tx, host)?;
                    tx.commit()?;
                    return Ok(Lease {
                        pool: name.clone(),
                        address,
                        host: host.to_string(),
                        jail: jail.to_string(),
                    });
                }
                let mut taken = extra.clone();
                for row in tx.query("SELECT address FROM jnet_leases WHERE pool = $1", &[&name])? {
                    taken.insert_addr(v4(row.get(0), &name)?);
                }
                let Some(address) = alloc::lowest_free(pool, &taken) else {
                    return Err(OpErr::App(PgError::new(
                        PgErrorKind::Exhausted,
                        format!(
                            "pool {name} is exhausted ({} addresses, all leased or reserved)",
                            pool.assignable.count()
                        ),
                        None,
                    )));
                };
                tx.execute(
                    "INSERT INTO jnet_leases (pool, address, host, jail) VALUES ($1, $2, $3, $4)",
                    &[&name, &IpAddr::V4(address), &host, &jail],
                )?;
                seen(&mut tx, host)?;
                tx.commit()?;
                tracing::info!(pool = %name, %address, host, jail, "leased");
                Ok(Lease {
                    pool: name.clone(),
                    address,
                    host: host.to_string(),
                    jail: jail.to_string(),
                })
            },
        )
    }

    /// The leases matching `filter`, ordered by pool and address; one
    /// committed state.
    pub fn leases(&mut self, filter: &LeaseFilter<'_>) -> Result<Vec<Lease>, PgError> {
        let (pool, host) = (filter.pool, filter.host);
        self.run("reading leases", |c, _| {
            let rows = c.query(
                "SELECT pool, address, host, jail FROM jnet_leases \
                 WHERE ($1::text IS NULL OR pool = $1) AND ($2::text IS NULL OR host = $2) ORDER BY pool, address",
                &[&pool, &host],
            )?;
            rows.iter().map(lease_of).collect()
        })
    }

    /// Releases this host's leases of `jail` (in `pool`, or in every pool);
    /// returns what was released, empty when it held none. Another host's
    /// lease of a jail with the same name is never touched.
    pub fn release(&mut self, pool: Option<&str>, jail: &str) -> Result<Vec<Lease>, PgError> {
        self.run(&format!("releasing jail {jail}"), |c, host| {
            let mut tx = c.transaction()?;
            let gone = delete(&mut tx, pool, Some(host), Some(jail))?;
            seen(&mut tx, host)?;
            tx.commit()?;
            Ok(gone)
        })
    }

    /// Releases the lease of `address` in `pool` when this host holds it;
    /// refused ([`PgErrorKind::Refused`]) naming the owner when another
    /// host does. `Ok(None)` when nobody holds it.
    pub fn release_address(&mut self, pool: &str, address: Ipv4Addr) -> Result<Option<Lease>, PgError> {
        self.run(&format!("releasing {address} of pool {pool}"), |c, host| {
            let mut tx = c.transaction()?;
            lock_leases(&mut tx)?;
            let row = tx.query_opt(
                "SELECT host, jail FROM jnet_leases WHERE pool = $1 AND address = $2 FOR UPDATE",
                &[&pool, &IpAddr::V4(address)],
            )?;
            let Some(row) = row else {
                return Ok(None);
            };
            let (owner, jail): (String, String) = (row.get(0), row.get(1));
            if owner != host {
                return Err(OpErr::App(PgError::new(
                    PgErrorKind::Refused,
                    format!(
                        "{address} of pool {pool} is leased by host {owner} (jail {jail}), not this host ({host}); \
                         only {owner}, or an operator reclaiming {owner}'s leases, may release it"
                    ),
                    None,
                )));
            }
            tx.execute(
                "DELETE FROM jnet_leases WHERE pool = $1 AND address = $2",
                &[&pool, &IpAddr::V4(address)],
            )?;
            lower_hints(&mut tx, &[address])?;
            seen(&mut tx, host)?;
            tx.commit()?;
            Ok(Some(Lease {
                pool: pool.to_string(),
                address,
                host: owner,
                jail,
            }))
        })
    }

    /// The operator's reclaim of a (dead) host's leases: of `jail`, or of
    /// all its jails when `jail` is `None`. Returns what was released.
    pub fn release_for_host(&mut self, host: &str, jail: Option<&str>) -> Result<Vec<Lease>, PgError> {
        let what = match jail {
            Some(j) => format!("reclaiming jail {j} of host {host}"),
            None => format!("reclaiming every lease of host {host}"),
        };
        self.run(&what, |c, me| {
            let mut tx = c.transaction()?;
            let gone = delete(&mut tx, None, Some(host), jail)?;
            tx.commit()?;
            if !gone.is_empty() {
                tracing::warn!(host, by = me, count = gone.len(), "reclaimed another host's leases");
            }
            Ok(gone)
        })
    }

    /// Records that this host is alive (`last_seen = now()`).
    pub fn touch(&mut self) -> Result<(), PgError> {
        self.run("recording this host as seen", |c, host| {
            let mut tx = c.transaction()?;
            seen(&mut tx, host)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Every host that ever wrote, with when it was last seen, by name.
    pub fn hosts(&mut self) -> Result<Vec<HostSeen>, PgError> {
        self.run("reading hosts", |c, _| {
            let rows = c.query(
                "SELECT host, extract(epoch FROM last_seen)::float8, extract(epoch FROM now() - last_seen)::float8 \
                 FROM jnet_hosts ORDER BY host",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| HostSeen {
                    host: r.get(0),
                    last_seen: r.get(1),
                    age_secs: r.get(2),
                })
                .collect())
        })
    }

    /// The lifecycle lock of `jail` on this host: a session-level advisory
    /// lock held by a session of its own, so it lasts exactly as long as
    /// the returned [`JailLock`] (dropping it closes the session, and a
    /// dead process's session ends with it). Waits at most `lock_timeout`,
    /// then [`PgErrorKind::Timeout`]. The key is per (host, jail): jail
    /// runtime is local to each host, so hosts never contend for it.
    pub fn lock_jail(&self, jail: &JailName) -> Result<JailLock, PgError> {
        let mut c = self.open_session()?;
        let key = format!("jnet jail {} {}", self.cfg.host_id, jail.as_str());
        c.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&key])
            .map_err(|e| {
                op_error(
                    &self.desc,
                    &format!("locking jail {}", jail.as_str()),
                    e,
                    self.secret.as_deref(),
                )
            })?;
        Ok(JailLock::new(jail.clone(), c))
    }

    /// Drops this store without closing its session: the client (its
    /// socket, its runtime) is forgotten, so the process exit closes the
    /// socket; see [`crate::store::fleet::detach_sessions_at_exit`] for
    /// why and when. A transaction left open would be rolled back by the
    /// server all the same.
    pub fn detach(mut self) {
        if let Some(c) = self.client.take() {
            std::mem::forget(c);
        }
    }

    /// The live connection, for diagnostics and tests (session settings,
    /// backend pid). Reconnects when it was lost.
    pub fn with_client<T>(&mut self, f: impl FnOnce(&mut Client) -> T) -> Result<T, PgError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) || !self.checked {
            self.client = None;
            self.connect()?;
        }
        Ok(f(self.client.as_mut().expect("connected above")))
    }
}

/// Creates the pool's row when missing and locks it for this transaction:
/// every allocator of the pool, on every host, queues here. A pool already
/// recorded with another network is refused (hosts disagree on the plan).
pub(crate) fn lock_pool(tx: &mut postgres::Transaction<'_>, name: &str, network: &str) -> Op<()> {
    lock_leases(tx)?;
    tx.execute(
        "INSERT INTO jnet_pools (name, network) VALUES ($1, $2::text::cidr) ON CONFLICT (name) DO NOTHING",
        &[&name, &network],
    )?;
    let row = tx.query_one(
        "SELECT network::text FROM jnet_pools WHERE name = $1 FOR UPDATE",
        &[&name],
    )?;
    let stored: String = row.get(0);
    if stored != network {
        return Err(OpErr::App(PgError::new(
            PgErrorKind::Refused,
            format!(
                "pool {name} is {stored} in the store but {network} in this host's config; \
                 every host must configure a shared pool alike"
            ),
            None,
        )));
    }
    Ok(())
}

pub(crate) fn seen(tx: &mut postgres::Transaction<'_>, host: &str) -> Op<()> {
    tx.query_typed(
        "INSERT INTO jnet_hosts (host, last_seen) VALUES ($1, now()) \
         ON CONFLICT (host) DO UPDATE SET last_seen = excluded.last_seen",
        &[(&host, postgres::types::Type::TEXT)],
    )?;
    Ok(())
}

fn delete(
    tx: &mut postgres::Transaction<'_>,
    pool: Option<&str>,
    host: Option<&str>,
    jail: Option<&str>,
) -> Op<Vec<Lease>> {
    lock_leases(tx)?;
    let rows = tx.query(
        "DELETE FROM jnet_leases WHERE ($1::text IS NULL OR pool = $1) AND host = $2 \
         AND ($3::text IS NULL OR jail = $3) RETURNING pool, address, host, jail",
        &[&pool, &host, &jail],
    )?;
    let mut out = rows.iter().map(lease_of).collect::<Op<Vec<_>>>()?;
    out.sort();
    lower_hints(tx, &out.iter().map(|l| l.address).collect::<Vec<_>>())?;
    Ok(out)
}

/// The TLS connector when the URL asks for TLS (`sslmode=require`): rustls
/// with ring, TLS 1.2 and 1.3, verifying the chain and the server's name
/// (or IP address) against `ca_file`'s certificates or the system's roots.
fn tls_connector(cfg: &StoreConfig, pc: &postgres::Config, desc: &str) -> Result<Option<MakeRustlsConnect>, PgError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    if !matches!(pc.get_ssl_mode(), postgres::config::SslMode::Require) {
        return Ok(None);
    }
    let err = |m: String| PgError::new(PgErrorKind::Config, format!("{desc}: TLS: {m}"), None);
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(p) => {
            let certs = CertificateDer::pem_file_iter(p)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| err(format!("ca_file {}: {e}", p.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(err(format!("ca_file {}: no usable CA certificate", p.display())));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(err(
                    "no trusted CA certificates in the system store; set [store] ca_file".into(),
                ));
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(tls)))
}

/// Opens a session with its limits (`lock_timeout`, `statement_timeout`,
/// `idle_in_transaction_session_timeout`, passed in the startup packet so
/// they cost no round trip), over TLS when `tls` is given. Any failure
/// here, refused connection, failed TLS handshake or refused login alike,
/// is [`PgErrorKind::Unavailable`].
fn connect_raw(
    pc: &postgres::Config,
    t: &Timeouts,
    desc: &str,
    secret: Option<&str>,
    tls: Option<&MakeRustlsConnect>,
) -> Result<Client, PgError> {
    let mut pc = pc.clone();
    let limits = format!(
        "-c lock_timeout={} -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        t.lock_ms, t.statement_ms, t.idle_in_transaction_ms
    );
    let options = match pc.get_options() {
        Some(o) if !o.is_empty() => format!("{o} {limits}"),
        _ => limits,
    };
    pc.options(&options);
    tracing::debug!(store = %desc, "opening a session");
    let c = match tls {
        Some(tls) => pc.connect(tls.clone()),
        None => pc.connect(NoTls),
    };
    if c.is_ok() {
        tracing::debug!(store = %desc, "session open");
    }
    c.map_err(|e| {
        let kind = match e.code() {
            Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                "login refused"
            }
            _ => "cannot connect",
        };
        PgError::new(
            PgErrorKind::Unavailable,
            format!("{desc}: {kind}: {}", detail(&e)),
            secret,
        )
    })
}

fn detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            // The driver's Display is "error connecting to server: <io>"
            // and similar; add the source, which carries the OS reason.
            let mut s = e.to_string();
            if let Some(src) = std::error::Error::source(e) {
                let src = src.to_string();
                if !s.contains(&src) {
                    s = format!("{s}: {src}");
                }
            }
            s
        }
    }
}

/// The schema check on a fresh session, its failures named after the
/// store.
fn check_on(c: &mut Client, desc: &str, secret: Option<&str>) -> Result<(), PgError> {
    let named = |e: PgError| PgError::new(e.kind, format!("{desc}: {}", e.message()), secret);
    match schema::check(c) {
        Ok(()) => Ok(()),
        Err(OpErr::App(e)) => Err(named(e)),
        Err(OpErr::Pg(e)) => Err(op_error(desc, "checking the schema", e, secret)),
        Err(OpErr::Jnet(e)) => Err(named(PgError::new(PgErrorKind::Schema, e.to_string(), None))),
    }
}

/// A statement met a table or column jnet's schema has: the schema is
/// missing or older than this jnet's.
fn is_missing_table(e: &postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| *c == SqlState::UNDEFINED_TABLE || *c == SqlState::UNDEFINED_COLUMN)
}

fn is_connection_loss(e: &postgres::Error) -> bool {
    match e.code() {
        Some(c) => {
            c.code().starts_with("08")
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        }
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

fn op_error(desc: &str, what: &str, e: postgres::Error, secret: Option<&str>) -> PgError {
    let kind = match e.code() {
        Some(c)
            if *c == SqlState::LOCK_NOT_AVAILABLE
                || *c == SqlState::QUERY_CANCELED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT =>
        {
            PgErrorKind::Timeout
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => PgErrorKind::Conflict,
        Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::UNDEFINED_COLUMN => PgErrorKind::Schema,
        _ => PgErrorKind::Unavailable,
    };
    let hint = match kind {
        PgErrorKind::Timeout => "; retry later",
        _ => "",
    };
    PgError::new(kind, format!("{desc}: {what}: {}{hint}", detail(&e)), secret)
}
