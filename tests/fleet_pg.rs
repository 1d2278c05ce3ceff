//! The PostgreSQL store (issue 11) against a real PostgreSQL server that
//! each test starts in its own temporary directory (initdb + pg_ctl, Unix
//! socket only, run as the `postgres` user when the tests run as root) and
//! removes at the end. No mocks. Without PostgreSQL the tests skip loudly;
//! under CI=true they fail.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use jnet::core::config::{parse_config, Pool};
use jnet::core::range::RangeSet;
use jnet::error::ErrorKind;
use jnet::store::postgres::{LeaseFilter, PgErrorKind, PgStore, StoreConfig, SCHEMA_VERSION};

use crate::common::pg;
use pg::{Pg, PASSWORD};

trait PgExt {
    fn cfg(&self, host: &str, extra: &str) -> StoreConfig;
    fn store(&self, host: &str) -> PgStore;
}

impl PgExt for Pg {
    fn cfg(&self, host: &str, extra: &str) -> StoreConfig {
        store_cfg(&self.url("jnet"), host, extra)
    }

    fn store(&self, host: &str) -> PgStore {
        PgStore::open(&self.cfg(host, "")).unwrap()
    }
}

fn store_cfg(url: &str, host: &str, extra: &str) -> StoreConfig {
    let text = format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\nhost_id = \"{host}\"\n{extra}");
    StoreConfig::parse("test.toml", &text).unwrap()
}

fn pool(name: &str, body: &str) -> Pool {
    let text = format!("[host]\nexternal_interface=\"em0\"\n[pools.{name}]\ninterface=\"em0\"\n{body}");
    parse_config("t", &text).unwrap().pools.into_values().next().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn none() -> RangeSet {
    RangeSet::new()
}

#[test]
fn lowest_free_allocation_idempotent_retry_and_release() {
    let Some(pg) = Pg::start("lowest_free_allocation") else {
        return;
    };
    let p = pool("p", "network=\"10.1.0.0/29\"\ngateway=\"10.1.0.1\"\n");
    let (mut a, mut b) = (pg.store("hosta"), pg.store("hostb"));
    // This host's jail.conf static 10.1.0.3 is an extra exclusion.
    let mut statics = RangeSet::new();
    statics.insert_addr(ip("10.1.0.3"));
    assert_eq!(a.assign(&p, "web", &statics).unwrap().address, ip("10.1.0.2"));
    assert_eq!(a.assign(&p, "db", &statics).unwrap().address, ip("10.1.0.4"));
    // Another host, a jail of the same name: its own lease, the next free.
    let bw = b.assign(&p, "web", &none()).unwrap();
    assert_eq!((bw.address, bw.host.as_str()), (ip("10.1.0.3"), "hostb"));
    // A retry returns the existing lease, not a new one.
    for _ in 0..3 {
        assert_eq!(a.assign(&p, "web", &statics).unwrap().address, ip("10.1.0.2"));
    }
    assert_eq!(b.assign(&p, "x", &none()).unwrap().address, ip("10.1.0.5"));
    assert_eq!(b.assign(&p, "y", &none()).unwrap().address, ip("10.1.0.6"));
    let e = b.assign(&p, "z", &none()).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Exhausted, "{e}");
    assert!(e.message().contains("pool p is exhausted"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    // Release frees the address for the lowest-free rule.
    let gone = a.release(None, "db").unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].address, ip("10.1.0.4"));
    assert_eq!(b.assign(&p, "z", &none()).unwrap().address, ip("10.1.0.4"));
    let mine: Vec<_> = a
        .leases(&LeaseFilter {
            pool: Some("p"),
            host: Some("hosta"),
        })
        .unwrap();
    assert_eq!(
        mine.iter().map(|l| (l.address, l.jail.as_str())).collect::<Vec<_>>(),
        [(ip("10.1.0.2"), "web")]
    );
    assert_eq!(a.leases(&LeaseFilter::default()).unwrap().len(), 5);
    let hosts = a.hosts().unwrap();
    assert_eq!(
        hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>(),
        ["hosta", "hostb"]
    );
    assert!(
        hosts.iter().all(|h| h.age_secs < 60.0 && h.last_seen > 1.0e9),
        "{hosts:?}"
    );
    // A host configured with another network for the pool is refused.
    let other = pool("p", "network=\"10.9.0.0/24\"\n");
    let e = a.assign(&other, "q", &none()).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Refused, "{e}");
    assert!(e.message().contains("10.1.0.0/29 in the store but 10.9.0.0/24"), "{e}");
}

#[test]
fn uniqueness_is_enforced_by_the_schema() {
    let Some(pg) = Pg::start("uniqueness_is_enforced_by_the_schema") else {
        return;
    };
    let p = pool("p", "network=\"10.2.0.0/24\"\n");
    pg.store("hosta").assign(&p, "web", &none()).unwrap();
    let mut c = pg.client("jnet", "jnet");
    // A writer bypassing jnet still cannot duplicate an address or a jail.
    let dup_addr = c.execute(
        "INSERT INTO jnet_leases (pool, address, host, jail) VALUES ('p', '10.2.0.1', 'hostb', 'x')",
        &[],
    );
    assert_eq!(
        dup_addr.unwrap_err().as_db_error().unwrap().constraint(),
        Some("jnet_leases_pool_address")
    );
    let dup_jail = c.execute(
        "INSERT INTO jnet_leases (pool, address, host, jail) VALUES ('p', '10.2.0.9', 'hosta', 'web')",
        &[],
    );
    assert_eq!(
        dup_jail.unwrap_err().as_db_error().unwrap().constraint(),
        Some("jnet_leases_pool_host_jail")
    );
    let v: i32 = c.query_one("SELECT version FROM jnet_schema", &[]).unwrap().get(0);
    assert_eq!(v as u32, SCHEMA_VERSION);
}

#[test]
fn two_hosts_allocating_concurrently_never_share_an_address() {
    let Some(pg) = Pg::start("two_hosts_allocating_concurrently") else {
        return;
    };
    let p = Arc::new(pool("fleet", "network=\"10.3.0.0/24\"\ngateway=\"10.3.0.1\"\n"));
    let cfgs: Vec<StoreConfig> = ["hosta", "hostb"].iter().map(|h| pg.cfg(h, "")).collect();
    const THREADS_PER_HOST: usize = 3;
    const PER_THREAD: usize = 9; // 27 allocations per host and round
    let mut held: BTreeSet<(String, String)> = BTreeSet::new();
    for round in 0..4 {
        let barrier = Arc::new(Barrier::new(2 * THREADS_PER_HOST));
        let mut handles = vec![];
        for cfg in &cfgs {
            for t in 0..THREADS_PER_HOST {
                let (cfg, p, barrier) = (cfg.clone(), p.clone(), barrier.clone());
                handles.push(std::thread::spawn(move || {
                    let mut s = PgStore::open(&cfg).unwrap();
                    barrier.wait();
                    (0..PER_THREAD)
                        .map(|i| s.assign(&p, &format!("r{round}t{t}j{i}"), &RangeSet::new()).unwrap())
                        .collect::<Vec<_>>()
                }));
            }
        }
        let got: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let addrs: BTreeSet<Ipv4Addr> = got.iter().map(|l| l.address).collect();
        assert_eq!(
            addrs.len(),
            got.len(),
            "round {round}: two leases share an address: {got:?}"
        );
        held.extend(got.iter().map(|l| (l.host.clone(), l.jail.clone())));
        // Everything the store holds is distinct and, since every release
        // below leaves holes that the next round fills first, contiguous
        // from the lowest assignable address.
        let mut s = PgStore::open(&cfgs[0]).unwrap();
        let all = s
            .leases(&LeaseFilter {
                pool: Some("fleet"),
                host: None,
            })
            .unwrap();
        assert_eq!(all.len(), held.len());
        let want: Vec<Ipv4Addr> = (0..all.len() as u32)
            .map(|i| Ipv4Addr::from(u32::from(ip("10.3.0.2")) + i))
            .collect();
        assert_eq!(all.iter().map(|l| l.address).collect::<Vec<_>>(), want, "round {round}");
        // Each host releases a third of its jails of this round.
        for (h, cfg) in cfgs.iter().enumerate() {
            let mut s = PgStore::open(cfg).unwrap();
            for t in 0..THREADS_PER_HOST {
                for i in (0..PER_THREAD).step_by(3) {
                    let jail = format!("r{round}t{t}j{i}");
                    assert_eq!(s.release(Some("fleet"), &jail).unwrap().len(), 1);
                    held.remove(&(["hosta", "hostb"][h].to_string(), jail));
                }
            }
        }
    }
}

#[test]
fn release_by_a_non_owner_is_refused_and_the_operator_reclaims() {
    let Some(pg) = Pg::start("release_by_a_non_owner") else {
        return;
    };
    let p = pool("p", "network=\"10.4.0.0/24\"\n");
    let q = pool("q", "network=\"10.5.0.0/24\"\n");
    let (mut a, mut b) = (pg.store("hosta"), pg.store("hostb"));
    let web = a.assign(&p, "web", &none()).unwrap();
    a.assign(&q, "web", &none()).unwrap();
    a.assign(&p, "db", &none()).unwrap();
    b.assign(&p, "mail", &none()).unwrap();
    // hostb cannot release hosta's address, and its release of a jail
    // named like hosta's touches only its own (none).
    let e = b.release_address("p", web.address).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Refused, "{e}");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(
        e.message()
            .contains("leased by host hosta (jail web), not this host (hostb)"),
        "{e}"
    );
    assert!(b.release(None, "web").unwrap().is_empty());
    assert_eq!(
        a.leases(&LeaseFilter {
            pool: None,
            host: Some("hosta")
        })
        .unwrap()
        .len(),
        3
    );
    // The owner may release by address.
    assert_eq!(a.release_address("p", web.address).unwrap().unwrap().jail, "web");
    assert_eq!(a.release_address("p", web.address).unwrap(), None);
    // The operator reclaims one jail of a dead host, then all of them.
    let one = b.release_for_host("hosta", Some("web")).unwrap();
    assert_eq!(one.iter().map(|l| l.pool.as_str()).collect::<Vec<_>>(), ["q"]);
    let rest = b.release_for_host("hosta", None).unwrap();
    assert_eq!(rest.iter().map(|l| l.jail.as_str()).collect::<Vec<_>>(), ["db"]);
    let left = b.leases(&LeaseFilter::default()).unwrap();
    assert_eq!(
        left.iter()
            .map(|l| (l.host.as_str(), l.jail.as_str()))
            .collect::<Vec<_>>(),
        [("hostb", "mail")]
    );
}

#[test]
fn schema_is_created_once_and_a_newer_one_is_refused() {
    let Some(pg) = Pg::start("schema_newer_refused") else {
        return;
    };
    let cfg = pg.cfg("hosta", "");
    // Created on first use, then a no-op migration.
    PgStore::open(&cfg).unwrap();
    assert_eq!(PgStore::migrate(&cfg).unwrap(), (SCHEMA_VERSION, SCHEMA_VERSION));
    let mut c = pg.client("jnet", "jnet");
    c.execute("UPDATE jnet_schema SET version = 99", &[]).unwrap();
    let e = PgStore::open(&cfg).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Schema, "{e}");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains(&format!(
            "schema is version 99, newer than this jnet knows ({SCHEMA_VERSION})"
        )),
        "{e}"
    );
    assert!(e.message().starts_with("postgres store host="), "{e}");
    let e = PgStore::migrate(&cfg).unwrap_err();
    assert!(e.message().contains("version 99"), "{e}");
    let v: i32 = c.query_one("SELECT version FROM jnet_schema", &[]).unwrap().get(0);
    assert_eq!(v, 99, "nothing changed");
}

#[test]
fn concurrent_first_use_creates_the_schema_once() {
    let Some(pg) = Pg::start("concurrent_first_use") else {
        return;
    };
    let cfg = pg.cfg("hosta", "");
    let barrier = Arc::new(Barrier::new(4));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let (cfg, barrier) = (cfg.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PgStore::open(&cfg).map(|_| ())
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap().unwrap();
    }
}

fn password_file(dir: &Path, pw: &str, mode: u32) -> PathBuf {
    let f = dir.join(format!("pw{mode:o}"));
    std::fs::write(&f, format!("{pw}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    f
}

#[test]
fn refused_login_and_down_server_never_show_the_password() {
    let Some(pg) = Pg::start("refused_login") else { return };
    let tmp = tempfile::tempdir().unwrap();
    // The right password from a password_file logs in.
    let good = password_file(tmp.path(), PASSWORD, 0o600);
    let cfg = store_cfg(
        &pg.url("jpw"),
        "hosta",
        &format!("password_file = \"{}\"\n", good.display()),
    );
    PgStore::open(&cfg).unwrap();
    // A group-readable password file is refused before connecting.
    let loose = password_file(tmp.path(), PASSWORD, 0o644);
    let cfg = store_cfg(
        &pg.url("jpw"),
        "hosta",
        &format!("password_file = \"{}\"\n", loose.display()),
    );
    let e = PgStore::open(&cfg).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Config, "{e}");
    assert!(
        e.message().contains("chmod 600") && !e.message().contains(PASSWORD),
        "{e}"
    );
    // Wrong passwords, from a file and in the URL: login refused, exit 69,
    // the store named, the password absent.
    let wrong = "Wr0ng-pw-c41d";
    let bad = password_file(tmp.path(), wrong, 0o400);
    let cases = [
        store_cfg(
            &pg.url("jpw"),
            "hosta",
            &format!("password_file = \"{}\"\n", bad.display()),
        ),
        store_cfg(&format!("{} password={wrong}", pg.url("jpw")), "hosta", ""),
    ];
    for cfg in &cases {
        let e = PgStore::open(cfg).unwrap_err();
        assert_eq!(e.kind, PgErrorKind::Unavailable, "{e}");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let msg = e.message();
        assert!(
            msg.contains(&format!(
                "postgres store host={} port=5432 dbname=jpw user=jpw",
                pg.sock()
            )),
            "{msg}"
        );
        assert!(
            msg.contains("login refused") && msg.contains("password authentication failed"),
            "{msg}"
        );
        assert!(!msg.contains(wrong) && !msg.contains(PASSWORD), "{msg}");
        assert!(!format!("{e:?}").contains(wrong) && !format!("{cfg:?}").contains(wrong));
        let as_jnet = jnet::error::Error::from(e);
        assert_eq!(as_jnet.kind(), ErrorKind::Unavailable);
    }
    // The server down: unavailable, naming the store, without the password.
    let mut open = PgStore::open(&store_cfg(
        &format!("{} password={PASSWORD}", pg.url("jpw")),
        "hosta",
        "",
    ))
    .unwrap();
    pg.stop();
    let cfg = store_cfg(&format!("{} password={PASSWORD}", pg.url("jpw")), "hosta", "");
    let e = PgStore::open(&cfg).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Unavailable, "{e}");
    assert!(
        e.message().starts_with("postgres store host=") && e.message().contains("cannot connect"),
        "{e}"
    );
    assert!(!e.message().contains(PASSWORD), "{e}");
    // A store opened before the server went away fails the same way.
    let p = pool("p", "network=\"10.6.0.0/24\"\n");
    let e = open.assign(&p, "web", &none()).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Unavailable, "{e}");
    assert!(!e.message().contains(PASSWORD), "{e}");
}

#[test]
fn a_client_killed_mid_transaction_leaves_no_partial_lease() {
    let Some(pg) = Pg::start("client_killed_mid_transaction") else {
        return;
    };
    let p = pool("p", "network=\"10.7.0.0/24\"\n");
    let mut a = pg.store("hosta");
    a.assign(&p, "first", &none()).unwrap();
    // A client inside its allocation transaction: pool row locked, lease
    // inserted, not committed; then its backend is killed.
    let mut dying = pg.client("jnet", "jnet");
    dying
        .batch_execute(
            "BEGIN; SELECT 1 FROM jnet_pools WHERE name = 'p' FOR UPDATE; \
             INSERT INTO jnet_leases (pool, address, host, jail) VALUES ('p', '10.7.0.2', 'hostb', 'half');",
        )
        .unwrap();
    let pid: i32 = dying.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut admin = pg.client("postgres", "postgres");
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .unwrap()
        .get(0);
    assert!(killed);
    assert!(
        dying.execute("COMMIT", &[]).is_err(),
        "the killed session cannot commit"
    );
    let leases = a.leases(&LeaseFilter::default()).unwrap();
    assert_eq!(leases.iter().map(|l| l.jail.as_str()).collect::<Vec<_>>(), ["first"]);
    // The pool row lock died with it: the next allocation proceeds at once
    // and gets the address the dead client had picked.
    assert_eq!(a.assign(&p, "second", &none()).unwrap().address, ip("10.7.0.2"));
}

#[test]
fn a_hung_client_is_ended_by_the_idle_in_transaction_timeout() {
    let Some(pg) = Pg::start("hung_client") else { return };
    let p = pool("p", "network=\"10.8.0.0/24\"\n");
    let cfg = pg.cfg(
        "hosta",
        "lock_timeout_ms = 250\nstatement_timeout_ms = 4000\nidle_in_transaction_timeout_ms = 300\n",
    );
    let mut a = PgStore::open(&cfg).unwrap();
    a.assign(&p, "first", &none()).unwrap();
    // The session settings are the configured ones.
    let shown: Vec<String> = a
        .with_client(|c| {
            [
                "lock_timeout",
                "statement_timeout",
                "idle_in_transaction_session_timeout",
            ]
            .iter()
            .map(|s| c.query_one(&format!("SHOW {s}"), &[]).unwrap().get(0))
            .collect()
        })
        .unwrap();
    assert_eq!(shown, ["250ms", "4s", "300ms"]);
    // This store's session stops mid-transaction (a hung jnet).
    a.with_client(|c| {
        c.batch_execute(
            "BEGIN; SELECT 1 FROM jnet_pools WHERE name = 'p' FOR UPDATE; \
             INSERT INTO jnet_leases (pool, address, host, jail) VALUES ('p', '10.8.0.2', 'hosta', 'half');",
        )
        .unwrap()
    })
    .unwrap();
    // Meanwhile another host waits at most lock_timeout: exit 75.
    let mut b = PgStore::open(&pg.cfg("hostb", "lock_timeout_ms = 100\n")).unwrap();
    let e = b.assign(&p, "web", &none()).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Timeout, "{e}");
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert_eq!(jnet::error::Error::from(e.clone()).kind(), ErrorKind::Busy);
    assert!(
        e.message().contains("lock timeout") && e.message().contains("retry later"),
        "{e}"
    );
    // The server ends the idle transaction, rolling the lease back.
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(b.assign(&p, "web", &none()).unwrap().address, ip("10.8.0.2"));
    // The hung store reconnects on its next call.
    assert_eq!(a.assign(&p, "second", &none()).unwrap().address, ip("10.8.0.3"));
    let jails: Vec<_> = b
        .leases(&LeaseFilter::default())
        .unwrap()
        .into_iter()
        .map(|l| l.jail)
        .collect();
    assert_eq!(jails, ["first", "web", "second"]);
}

#[test]
fn a_server_restart_between_calls_is_survived() {
    let Some(pg) = Pg::start("server_restart") else { return };
    let p = pool("p", "network=\"10.9.0.0/24\"\n");
    let mut a = pg.store("hosta");
    assert_eq!(a.assign(&p, "web", &none()).unwrap().address, ip("10.9.0.1"));
    let pid1: i32 = a
        .with_client(|c| c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0))
        .unwrap();
    pg.restart();
    // Same store object: it reconnects and the committed lease survived.
    assert_eq!(a.assign(&p, "web", &none()).unwrap().address, ip("10.9.0.1"));
    assert_eq!(a.assign(&p, "db", &none()).unwrap().address, ip("10.9.0.2"));
    let pid2: i32 = a
        .with_client(|c| c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0))
        .unwrap();
    assert_ne!(pid1, pid2, "a new session");
    pg.restart();
    assert_eq!(a.leases(&LeaseFilter::default()).unwrap().len(), 2);
    assert_eq!(a.release(None, "web").unwrap().len(), 1);
}

#[test]
fn the_jail_lock_has_one_holder_and_ends_with_its_guard() {
    let Some(pg) = Pg::start("jail_lock") else { return };
    let a1 = PgStore::open(&pg.cfg("hosta", "lock_timeout_ms = 150\n")).unwrap();
    let a2 = PgStore::open(&pg.cfg("hosta", "lock_timeout_ms = 150\n")).unwrap();
    let b = PgStore::open(&pg.cfg("hostb", "lock_timeout_ms = 150\n")).unwrap();
    let web = jnet::core::names::JailName::new("web").unwrap();
    let db = jnet::core::names::JailName::new("db").unwrap();
    let held = a1.lock_jail(&web).unwrap();
    assert_eq!(held.jail(), &web);
    // The same jail on the same host: busy, exit 75, within lock_timeout.
    let t = std::time::Instant::now();
    let e = a2.lock_jail(&web).unwrap_err();
    assert_eq!(e.kind, PgErrorKind::Timeout, "{e}");
    assert!(e.message().contains("locking jail web"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3));
    // Another jail, or the same name on another host: free.
    let _d = a2.lock_jail(&db).unwrap();
    let _bw = b.lock_jail(&web).unwrap();
    drop(held);
    let _again = a2.lock_jail(&web).unwrap();
}
