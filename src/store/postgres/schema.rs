//! The database schema, its version, and the migrations between versions.
//!
//! `jnet_schema` holds one row with the version. A database without it is
//! new: jnet creates the current schema on first use. A database with an
//! older version is upgraded only by the explicit migration (`jnet store
//! migrate`), so an upgrade of one host never changes the schema under the
//! others silently; a newer version is refused, since an older jnet cannot
//! know what a newer schema promises.
//!
//! Creation and migration take a transaction-scoped advisory lock, so two
//! hosts starting at once do not race to create the tables.

use postgres::Client;

use super::error::{PgError, PgErrorKind};
use super::{Op, OpErr};

/// The schema version this jnet reads and writes.
pub const SCHEMA_VERSION: u32 = 2;

/// pg_advisory_xact_lock key for schema changes ("jnet" in ASCII).
const SCHEMA_LOCK: i64 = 0x6a6e_6574;

/// `MIGRATIONS[i]` takes the schema from version i to i + 1 (version 0 is
/// the empty database).
const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE jnet_schema (
         one boolean PRIMARY KEY DEFAULT true CHECK (one),
         version integer NOT NULL
     );
     CREATE TABLE jnet_pools (
         name text PRIMARY KEY,
         network cidr NOT NULL
     );
     CREATE TABLE jnet_hosts (
         host text PRIMARY KEY,
         last_seen timestamptz NOT NULL
     );
     CREATE TABLE jnet_leases (
         pool text NOT NULL REFERENCES jnet_pools (name),
         address inet NOT NULL CHECK (family(address) = 4 AND masklen(address) = 32),
         host text NOT NULL,
         jail text NOT NULL,
         created timestamptz NOT NULL DEFAULT now(),
         CONSTRAINT jnet_leases_pool_address UNIQUE (pool, address),
         CONSTRAINT jnet_leases_pool_host_jail UNIQUE (pool, host, jail)
     );
     CREATE INDEX jnet_leases_host ON jnet_leases (host, jail);
     INSERT INTO jnet_schema (version) VALUES (0);",
    // 1 -> 2: the allocator's lookups by address across pools and hosts
    // (first unleased address from a candidate on, holder of an address)
    // scan this index instead of the table; jnet_hints keeps, per range
    // of assignable addresses (by its first address, as a number), a low
    // water mark: every address from range_start up to low (excluded) is
    // leased, so a search need not walk the dense prefix again. Lowered by
    // every delete, raised by searches, both under the lease lock.
    "CREATE INDEX jnet_leases_address ON jnet_leases (address);
     CREATE TABLE jnet_hints (
         range_start bigint PRIMARY KEY,
         low bigint NOT NULL
     );",
];

fn version(c: &mut impl postgres::GenericClient) -> Result<Option<u32>, postgres::Error> {
    // why: a plain query of pg_class reads with the statement's snapshot,
    // so after the advisory lock it sees a table another host has just
    // committed; to_regclass() may answer from an older catalog snapshot.
    let exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class \
             WHERE relname = 'jnet_schema' AND relnamespace = current_schema()::regnamespace)",
            &[],
        )?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let v: Option<i32> = c.query_opt("SELECT version FROM jnet_schema", &[])?.map(|r| r.get(0));
    Ok(Some(v.unwrap_or(0).max(0) as u32))
}

fn too_new(v: u32) -> OpErr {
    OpErr::App(PgError::new(
        PgErrorKind::Schema,
        format!(
            "the database's schema is version {v}, newer than this jnet knows ({SCHEMA_VERSION}); \
             upgrade jnet on this host (nothing was changed)"
        ),
        None,
    ))
}

/// The version in one round trip when the schema exists (every connect
/// but the first); `None` when it does not.
fn version_fast(c: &mut Client) -> Result<Option<u32>, postgres::Error> {
    match c.simple_query("SELECT version FROM jnet_schema") {
        Ok(msgs) => {
            let v = msgs.iter().find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<i64>().ok()),
                _ => None,
            });
            Ok(Some(v.unwrap_or(0).clamp(0, u32::MAX as i64) as u32))
        }
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether this jnet works with a schema of version `v`: the current one
/// is accepted, a newer one refused (upgrade jnet), an older one refused
/// until migrated.
pub(crate) fn verdict(v: u32) -> Op<()> {
    match v {
        v if v == SCHEMA_VERSION => Ok(()),
        v if v > SCHEMA_VERSION => Err(too_new(v)),
        v => Err(OpErr::App(PgError::new(
            PgErrorKind::Schema,
            format!(
                "the database's schema is version {v}, older than this jnet's ({SCHEMA_VERSION}); \
                 run `jnet store migrate` once (after upgrading every host's jnet)"
            ),
            None,
        ))),
    }
}

/// On connect: create the schema when there is none, accept the current
/// version, refuse any other.
pub(super) fn check(c: &mut Client) -> Op<()> {
    match version_fast(c)? {
        Some(v) => verdict(v),
        None => {
            let (from, to) = migrate(c)?;
            tracing::info!(from, to, "created the jnet schema");
            Ok(())
        }
    }
}

/// Applies the migrations from the database's version to
/// [`SCHEMA_VERSION`] in one transaction; returns (from, to).
pub(super) fn migrate(c: &mut Client) -> Op<(u32, u32)> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    // Read under the lock: another host may have just created it.
    let from = version(&mut tx)?.unwrap_or(0);
    if from > SCHEMA_VERSION {
        return Err(too_new(from));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.batch_execute(sql)?;
        tx.execute("UPDATE jnet_schema SET version = $1", &[&(i as i32 + 1)])?;
    }
    tx.commit()?;
    Ok((from, SCHEMA_VERSION))
}
