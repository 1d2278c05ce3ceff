//! Shared pools through the `jnet` binary (issue 11): two simulated hosts
//! (two configs with their own state directory and host_id) against one
//! real PostgreSQL server started by the test (tests/common/pg.rs). What
//! the operator sees: leases across hosts, reports with the host of each,
//! reclaim, schema versions, and the exit codes of a store that is down,
//! refuses the login or times out. Without PostgreSQL the tests skip
//! loudly; under CI=true they fail.

use crate::common::binary;
use crate::common::pg;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use binary::{jnet, ok};
use pg::{Pg, PASSWORD};
use serde_json::Value;

/// The fleet's lease lock key (src/store/postgres/mod.rs, LEASE_LOCK).
const LEASE_LOCK: i64 = 0x6a6e_6574_6c73;

struct Host {
    _dir: tempfile::TempDir,
    cfg: PathBuf,
    state: PathBuf,
}

/// A host `id` of the fleet: jnet.toml with pool lan 10.77.0.0/24 and
/// `[store]` pointing at `url` (plus `extra` keys).
fn host(url: &str, id: &str, extra: &str) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cfg = dir.path().join("jnet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[host]\nexternal_interface = \"lo\"\nstate_dir = \"{}\"\n\n\
             [pools.lan]\nnetwork = \"10.77.0.0/24\"\ninterface = \"lo\"\n\n\
             [store]\nbackend = \"postgres\"\nurl = \"{url}\"\nhost_id = \"{id}\"\n{extra}",
            state.display()
        ),
    )
    .unwrap();
    Host { _dir: dir, cfg, state }
}

fn json(cfg: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(cfg, args)).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The state directory's files and their contents, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = match std::fs::read_dir(dir) {
        Err(_) => return vec![],
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect(),
    };
    v.sort();
    v
}

fn leases(pg: &Pg) -> Vec<(String, String, String)> {
    pg.client("jnet", "jnet")
        .query(
            "SELECT host, jail, host(address) FROM jnet_leases ORDER BY address",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn two_hosts_share_a_pool_and_the_reports_show_the_host_of_each() {
    let Some(pg) = Pg::start("two_hosts_share_a_pool") else {
        return;
    };
    let url = pg.url("jnet");
    let a = host(&url, "hosta", "");
    let b = host(&url, "hostb", "stale_after_secs = 1\n");
    assert_eq!(
        ok(&a.cfg, &["assign", "www", "--pool", "lan"]).trim(),
        "www: 10.77.0.1 from pool lan on lo"
    );
    assert_eq!(
        ok(&b.cfg, &["assign", "db", "--pool", "lan"]).trim(),
        "db: 10.77.0.2 from pool lan on lo"
    );
    assert!(ok(&a.cfg, &["assign", "mail", "--pool", "lan"]).contains("10.77.0.3"));
    // The same name on another host is another jail.
    assert!(ok(&b.cfg, &["assign", "www", "--pool", "lan"]).contains("10.77.0.4"));
    // An address another host leases is refused, naming the host.
    let o = jnet(&a.cfg, &["assign", "x", "10.77.0.2"]);
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    assert!(stderr(&o).contains("held by jail db on host hostb"), "{}", stderr(&o));

    // Inventory: every lease with its host; this host's with a phase,
    // the others' without; the hosts with lease counts.
    let inv = json(&a.cfg, &["inventory", "--format", "json"]);
    let rows: Vec<(String, String, String, Value)> = inv["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().into(),
                r["jail"].as_str().unwrap().into(),
                r["address"].as_str().unwrap().into(),
                r["phase"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "hosta".into(),
                "mail".into(),
                "10.77.0.3".into(),
                Value::from("defined")
            ),
            ("hosta".into(), "www".into(), "10.77.0.1".into(), Value::from("defined")),
            ("hostb".into(), "db".into(), "10.77.0.2".into(), Value::Null),
            ("hostb".into(), "www".into(), "10.77.0.4".into(), Value::Null),
        ]
    );
    assert_eq!(inv["pools"][0]["used"], 4);
    let hosts: Vec<(&str, u64)> = inv["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["leases"].as_u64().unwrap()))
        .collect();
    assert_eq!(hosts, [("hosta", 2), ("hostb", 2)]);
    // --host filters.
    let only_b = json(&a.cfg, &["inventory", "--format", "json", "--host", "hostb"]);
    assert!(only_b["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["host"] == "hostb"));
    assert_eq!(only_b["assignments"].as_array().unwrap().len(), 2);
    let pools = json(&b.cfg, &["pools", "--format", "json"]);
    assert_eq!(pools["pools"][0]["used"], 4);
    assert_eq!(
        pools["pools"][0]["hosts"],
        serde_json::json!([{"host": "hosta", "leases": 2}, {"host": "hostb", "leases": 2}])
    );
    let table = ok(&a.cfg, &["inventory"]);
    assert!(table.contains("HOST") && table.contains("hostb"), "{table}");

    // Stale: hostb flags a host not seen for more than a second.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pools = json(&b.cfg, &["pools", "--format", "json", "--host", "hosta"]);
    assert_eq!(pools["hosts"][0]["host"], "hosta");
    assert_eq!(pools["hosts"][0]["stale"], true, "{pools}");
    assert_eq!(
        pools["pools"][0]["hosts"],
        serde_json::json!([{"host": "hosta", "leases": 2}])
    );

    // Only the owner releases; the operator reclaims a dead host's leases.
    let o = jnet(&b.cfg, &["release", "--host", "hostb", "db"]);
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    assert!(ok(&b.cfg, &["release", "--host", "hosta", "mail"]).contains("released 10.77.0.3"));
    assert_eq!(leases(&pg).len(), 3);
    let out = ok(&b.cfg, &["release", "--host", "hosta"]);
    assert!(out.contains("1 lease(s) reclaimed"), "{out}");
    assert_eq!(
        leases(&pg),
        [
            ("hostb".into(), "db".into(), "10.77.0.2".into()),
            ("hostb".into(), "www".into(), "10.77.0.4".into())
        ]
    );
    // The freed addresses go to the next allocation, lowest first.
    assert!(ok(&b.cfg, &["assign", "new", "--pool", "lan"]).contains("10.77.0.1"));
    // The returning host's local record of www is unpublished; its next
    // update refuses to take an address someone else now holds, naming
    // the way out; releasing the jail on that host clears it.
    let o = jnet(&a.cfg, &["assign", "other", "--pool", "lan"]);
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    assert!(stderr(&o).contains("jail www would hold 10.77.0.1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("jnet release www"), "{}", stderr(&o));
    ok(&a.cfg, &["release", "www"]);
    // mail's unpublished 10.77.0.3 was free again, so hosta took it back
    // in the same update; other gets the next one.
    assert!(ok(&a.cfg, &["assign", "other", "--pool", "lan"]).contains("10.77.0.5"));
    assert!(leases(&pg).contains(&("hosta".into(), "mail".into(), "10.77.0.3".into())));
    // Ordinary release removes this host's lease.
    ok(&b.cfg, &["release", "db"]);
    assert!(!leases(&pg).iter().any(|l| l.1 == "db"));
}

/// `assign`'s facts cache (engine::facts_cache) never holds a config with
/// a shared store: every assign of a fleet host reaches the database, none
/// is answered by the local file store from a cached config.
#[test]
fn fleet_assigns_are_never_served_from_the_facts_cache() {
    let Some(pg) = Pg::start("fleet_assigns_are_never_served_from_the_facts_cache") else {
        return;
    };
    let a = host(&pg.url("jnet"), "hosta", "");
    for (i, j) in ["c1", "c2", "c3"].iter().enumerate() {
        let out = ok(&a.cfg, &["assign", j, "--pool", "lan"]);
        assert!(out.contains(&format!("10.77.0.{}", i + 1)), "{out}");
    }
    let want: Vec<(String, String, String)> = (1..=3)
        .map(|i| ("hosta".to_string(), format!("c{i}"), format!("10.77.0.{i}")))
        .collect();
    assert_eq!(leases(&pg), want);
    assert!(!a.state.join("facts-cache").exists());
}

#[test]
fn schema_migrate_and_a_newer_schema_is_refused() {
    let Some(pg) = Pg::start("schema_migrate") else {
        return;
    };
    let a = host(&pg.url("jnet"), "hosta", "");
    assert!(ok(&a.cfg, &["store", "migrate"]).contains("migrated from version 0 to 2"));
    assert!(ok(&a.cfg, &["store", "migrate"]).contains("nothing to do"));
    ok(&a.cfg, &["assign", "www", "--pool", "lan"]);
    // A database of the previous version (1, without the address index)
    // is refused until migrated, then upgraded in place.
    pg.client("jnet", "jnet")
        .batch_execute("DROP INDEX jnet_leases_address; DROP TABLE jnet_hints; UPDATE jnet_schema SET version = 1")
        .unwrap();
    let o = jnet(&a.cfg, &["assign", "db", "--pool", "lan"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("older than this jnet's (2); run `jnet store migrate`"),
        "{}",
        stderr(&o)
    );
    assert!(ok(&a.cfg, &["store", "migrate"]).contains("migrated from version 1 to 2"));
    assert!(
        ok(&a.cfg, &["list"]).contains("10.77.0.1"),
        "the lease survived the migration"
    );
    let before = snapshot(&a.state);
    pg.client("jnet", "jnet")
        .batch_execute("UPDATE jnet_schema SET version = 99")
        .unwrap();
    for args in [
        &["assign", "db", "--pool", "lan"][..],
        &["inventory"],
        &["store", "migrate"],
    ] {
        let o = jnet(&a.cfg, args);
        assert_eq!(code(&o), 78, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("schema is version 99, newer than this jnet knows (2); upgrade jnet"),
            "{}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("postgres store host="), "{}", stderr(&o));
    }
    assert_eq!(snapshot(&a.state), before, "nothing changed locally");
    assert_eq!(leases(&pg).len(), 1, "nothing changed remotely");
    // The file backend is untouched by all this: the default, no [store].
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("jnet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[host]\nexternal_interface = \"lo\"\nstate_dir = \"{}\"\n[pools.lan]\nnetwork = \"10.77.0.0/24\"\ninterface = \"lo\"\n",
            d.path().join("s").display()
        ),
    )
    .unwrap();
    assert!(ok(&cfg, &["assign", "www", "--pool", "lan"]).contains("10.77.0.1"));
    let o = jnet(&cfg, &["store", "migrate"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    let o = jnet(&cfg, &["release", "--host", "other"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert!(stderr(&o).contains("needs shared pools"), "{}", stderr(&o));
    let o = jnet(&cfg, &["inventory", "--host", "other"]);
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    let o = jnet(&cfg, &["release"]);
    assert_eq!(code(&o), 64, "a jail or --host is required: {}", stderr(&o));
    // The file backend's JSON names this host on every assignment.
    let inv = json(&cfg, &["inventory", "--format", "json"]);
    assert!(
        inv["assignments"][0]["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{inv}"
    );
    assert!(inv.get("hosts").is_none(), "no fleet, no hosts: {inv}");
}

#[test]
fn down_server_refused_login_and_timeouts_have_their_exit_codes() {
    let Some(pg) = Pg::start("failures") else {
        return;
    };
    let a = host(&pg.url("jnet"), "hosta", "lock_timeout_ms = 300\n");
    ok(&a.cfg, &["assign", "www", "--pool", "lan"]);
    let before = snapshot(&a.state);

    // A lock held elsewhere longer than lock_timeout: 75, nothing changed.
    let mut holder = pg.client("jnet", "jnet");
    let mut tx = holder.transaction().unwrap();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEASE_LOCK]).unwrap();
    let o = jnet(&a.cfg, &["assign", "db", "--pool", "lan"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert!(stderr(&o).contains("postgres store host="), "{}", stderr(&o));
    assert!(stderr(&o).contains("retry later"), "{}", stderr(&o));
    tx.rollback().unwrap();
    drop(holder);
    assert_eq!(snapshot(&a.state), before);

    // Refused login: 69, names the store, never the password.
    let d = tempfile::tempdir().unwrap();
    let pw = d.path().join("db.pass");
    std::fs::write(&pw, "wrong-Zq81x\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bad = host(
        &pg.url("jpw"),
        "hostc",
        &format!("password_file = \"{}\"\n", pw.display()),
    );
    let o = jnet(&bad.cfg, &["assign", "www", "--pool", "lan"]);
    assert_eq!(code(&o), 69, "{}", stderr(&o));
    assert!(stderr(&o).contains("login refused"), "{}", stderr(&o));
    assert!(stderr(&o).contains("user=jpw"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("wrong-Zq81x") && !stderr(&o).contains(PASSWORD));
    assert_eq!(snapshot(&bad.state), vec![], "nothing written locally");
    // The right password works (database jpw has leases of its own).
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    assert!(ok(&bad.cfg, &["assign", "www", "--pool", "lan"]).contains("10.77.0.1"));

    // Server down: 69, names the store, nothing changed locally.
    pg.stop();
    for args in [
        &["assign", "db", "--pool", "lan"][..],
        &["release", "www"],
        &["inventory"],
    ] {
        let o = jnet(&a.cfg, args);
        assert_eq!(code(&o), 69, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("postgres store host="), "{}", stderr(&o));
        assert!(stderr(&o).contains("cannot connect"), "{}", stderr(&o));
    }
    assert_eq!(snapshot(&a.state), before);
    // Back up: the same lease as before, nothing lost.
    pg.start_server();
    assert!(ok(&a.cfg, &["assign", "www", "--pool", "lan"]).contains("already 10.77.0.1"));
}

/// Spawns `jnet -c cfg args` (stdout/stderr captured).
fn spawn(cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut c = std::process::Command::new(binary::BIN);
    c.arg("-c")
        .arg(cfg)
        .args(args)
        .env_remove("JNET_CONFIG")
        .env_remove("JNET_STATE_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// The leased addresses' last octets, sorted; panics on a duplicate.
fn octets(pg: &Pg) -> Vec<u8> {
    let mut v: Vec<u8> = leases(pg)
        .iter()
        .map(|(_, _, a)| a.parse::<std::net::Ipv4Addr>().unwrap().octets()[3])
        .collect();
    let n = v.len();
    v.sort();
    v.dedup();
    assert_eq!(v.len(), n, "an address is leased twice");
    v
}

/// Each host's view (`jnet inventory`) agrees with the database: the
/// host's pool records are exactly its leases.
fn views_agree(pg: &Pg, hosts: &[(&Host, &str)]) {
    let db = leases(pg);
    for (h, id) in hosts {
        let inv = json(&h.cfg, &["inventory", "--format", "json", "--host", id]);
        let mut mine: Vec<(String, String, String)> = inv["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["host"].as_str().unwrap().to_string(),
                    r["jail"].as_str().unwrap().to_string(),
                    r["address"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        mine.sort();
        let mut want: Vec<_> = db.iter().filter(|l| l.0 == *id).cloned().collect();
        want.sort();
        assert_eq!(mine, want, "host {id}");
    }
}

#[test]
fn two_hosts_with_24_concurrent_assigns_each_get_distinct_contiguous_addresses() {
    let Some(pg) = Pg::start("concurrent_assigns") else {
        return;
    };
    let url = pg.url("jnet");
    let (a, b) = (
        host(&url, "hosta", "lock_timeout_ms = 60000\n"),
        host(&url, "hostb", "lock_timeout_ms = 60000\n"),
    );
    // A static lease first, so "lowest free" starts above a hole: .1 is
    // free, .2 is taken.
    ok(&b.cfg, &["assign", "fixed", "10.77.0.2"]);
    let mut kids = vec![];
    for i in 0..24 {
        for (h, id) in [(&a, "a"), (&b, "b")] {
            let jail = format!("{id}{i}");
            kids.push((
                jail.clone(),
                spawn(&h.cfg, &["--lock-timeout", "60", "assign", &jail, "--pool", "lan"], &[]),
            ));
        }
    }
    for (jail, k) in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{jail}: {}", stderr(&o));
    }
    let got = octets(&pg);
    assert_eq!(
        got,
        (1..=49).collect::<Vec<u8>>(),
        "distinct and contiguous from the lowest free"
    );
    views_agree(&pg, &[(&a, "hosta"), (&b, "hostb")]);
}

#[test]
fn sigkilled_clients_leave_no_partial_lease_and_a_retry_gets_the_same_address() {
    let Some(pg) = Pg::start("sigkill") else {
        return;
    };
    let url = pg.url("jnet");
    let (a, b) = (host(&url, "hosta", ""), host(&url, "hostb", ""));
    ok(&a.cfg, &["store", "migrate"]);
    // Seeded delays; the write pause (test hook) holds each process
    // between its database commit and its local write, so kills land
    // before, inside and after that window.
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut jails = vec![];
    for round in 0..6 {
        let mut kids = vec![];
        for (h, id) in [(&a, "a"), (&b, "b")] {
            for i in 0..4 {
                let jail = format!("{id}{round}x{i}");
                let child = spawn(
                    &h.cfg,
                    &["assign", &jail, "--pool", "lan"],
                    &[("JNET_TEST_WRITE_PAUSE_MS", "150")],
                );
                kids.push((h, jail, child, rnd() % 400));
            }
        }
        let t0 = std::time::Instant::now();
        kids.sort_by_key(|k| k.3);
        for (h, jail, mut child, at) in kids {
            let wait = std::time::Duration::from_millis(at).saturating_sub(t0.elapsed());
            std::thread::sleep(wait);
            let _ = child.kill();
            let _ = child.wait();
            jails.push((h, jail));
        }
    }
    // No lease is half there: each jail has at most one, no address twice,
    // and each host's view agrees with the database.
    let before = leases(&pg);
    let mut names: Vec<_> = before.iter().map(|l| (l.0.clone(), l.1.clone())).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "a jail with two leases");
    octets(&pg);
    views_agree(&pg, &[(&a, "hosta"), (&b, "hostb")]);
    // Rerunning every killed assign returns the lease a killed run
    // committed, and gives the others the lowest free addresses.
    for (h, jail) in &jails {
        ok(&h.cfg, &["assign", jail, "--pool", "lan"]);
    }
    for l in &before {
        assert!(leases(&pg).contains(l), "{l:?} changed on retry");
    }
    assert_eq!(octets(&pg), (1..=jails.len() as u8).collect::<Vec<u8>>());
    views_agree(&pg, &[(&a, "hosta"), (&b, "hostb")]);
    eprintln!("{} of {} killed assigns had committed", before.len(), jails.len());
}

#[test]
fn a_server_restart_during_a_run_is_survived() {
    let Some(pg) = Pg::start("restart") else {
        return;
    };
    let url = pg.url("jnet");
    let (a, b) = (host(&url, "hosta", ""), host(&url, "hostb", ""));
    ok(&a.cfg, &["store", "migrate"]);
    let run = |h: &Host, id: &str| {
        let cfg = h.cfg.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            let mut failed = vec![];
            for i in 0..20 {
                let jail = format!("{id}{i}");
                let o = jnet(&cfg, &["assign", &jail, "--pool", "lan"]);
                match code(&o) {
                    0 => {}
                    // Down at that moment: refused cleanly, retried below.
                    69 => failed.push(jail),
                    c => panic!("{jail}: exit {c}: {}", stderr(&o)),
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            failed
        })
    };
    let (ta, tb) = (run(&a, "a"), run(&b, "b"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    pg.restart();
    let failed: Vec<(&Host, String)> = ta
        .join()
        .unwrap()
        .into_iter()
        .map(|j| (&a, j))
        .chain(tb.join().unwrap().into_iter().map(|j| (&b, j)))
        .collect();
    for (h, jail) in &failed {
        ok(&h.cfg, &["assign", jail, "--pool", "lan"]);
    }
    assert_eq!(octets(&pg), (1..=40).collect::<Vec<u8>>());
    views_agree(&pg, &[(&a, "hosta"), (&b, "hostb")]);
    eprintln!("{} assigns met the server down and were rerun", failed.len());
}

/// A TCP proxy on 127.0.0.1 to the server's Unix socket that, once armed,
/// forwards the client's COMMIT, drops the server's answer and cuts the
/// connection: the commit happened, the client cannot know it.
struct CutAfterCommit {
    port: u16,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CutAfterCommit {
    fn start(sock: PathBuf) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        use std::sync::Arc;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cuts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (arm, cut) = (armed.clone(), cuts.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(client) = c else { return };
                let Ok(server) = std::os::unix::net::UnixStream::connect(&sock) else {
                    continue;
                };
                let dropping = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_in, mut c_out) = (server, client);
                let (d1, d2) = (dropping.clone(), dropping);
                let (arm, cut) = (arm.clone(), cut.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 || d2.load(Ordering::SeqCst) || c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let commit = buf[..n].windows(6).any(|w| w == b"COMMIT");
                        if commit && arm.swap(false, Ordering::SeqCst) {
                            d1.store(true, Ordering::SeqCst);
                            cut.fetch_add(1, Ordering::SeqCst);
                            let _ = s_out.write_all(&buf[..n]);
                            // The answer is dropped (above); the server
                            // has the COMMIT and commits; cut the client.
                            std::thread::sleep(std::time::Duration::from_millis(300));
                            let _ = c_in.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CutAfterCommit { port, armed, cuts }
    }
}

#[test]
fn an_ambiguous_commit_is_retried_to_the_same_lease() {
    use std::sync::atomic::Ordering;
    let Some(pg) = Pg::start("ambiguous_commit") else {
        return;
    };
    let proxy = CutAfterCommit::start(pg.dir.path().join(".s.PGSQL.5432"));
    let url = format!(
        "host=127.0.0.1 port={} dbname=jnet user=jnet sslmode=disable",
        proxy.port
    );
    let a = host(&url, "hosta", "");
    ok(&a.cfg, &["assign", "first", "--pool", "lan"]);
    proxy.armed.store(true, Ordering::SeqCst);
    let o = jnet(&a.cfg, &["-v", "assign", "www", "--pool", "lan"]);
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        1,
        "the proxy cut a commit: {}",
        stderr(&o)
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("connection lost, reconnecting"), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("10.77.0.2"), "{out}");
    assert_eq!(
        leases(&pg),
        [
            ("hosta".into(), "first".into(), "10.77.0.1".into()),
            ("hosta".into(), "www".into(), "10.77.0.2".into())
        ],
        "one lease, not two"
    );
    // The local record was written by the retry.
    assert!(ok(&a.cfg, &["list"]).contains("10.77.0.2"));
}

#[test]
fn tls_when_the_url_asks_verified_against_ca_file() {
    let Some(mut pg) = Pg::start("tls") else {
        return;
    };
    let ca = pg.listen_tls();
    let tcp = |mode: &str| format!("host=127.0.0.1 port={} dbname=jnet user=jnet sslmode={mode}", pg.port);
    // Verified against the test's CA: works, and the session is TLS.
    let a = host(&tcp("require"), "hosta", &format!("ca_file = \"{}\"\n", ca.display()));
    assert!(ok(&a.cfg, &["assign", "www", "--pool", "lan"]).contains("10.77.0.1"));
    // The server takes TCP only over TLS (hostssl; plain host lines
    // reject, see the sslmode=disable case below): that was TLS.
    // Not trusted (the system roots do not know the test CA): 69, naming
    // the store and the certificate problem; nothing written locally.
    let b = host(&tcp("require"), "hostb", "");
    let o = jnet(&b.cfg, &["assign", "www", "--pool", "lan"]);
    assert_eq!(code(&o), 69, "{}", stderr(&o));
    assert!(stderr(&o).contains("postgres store host=127.0.0.1"), "{}", stderr(&o));
    assert!(stderr(&o).to_lowercase().contains("certificate"), "{}", stderr(&o));
    assert_eq!(snapshot(&b.state), vec![]);
    // In clear, the server (hostssl only) refuses: jnet never falls back
    // silently, and without sslmode=require it does not try TLS.
    let c = host(&tcp("disable"), "hostc", "");
    let o = jnet(&c.cfg, &["assign", "www", "--pool", "lan"]);
    assert_eq!(code(&o), 69, "{}", stderr(&o));
    let d = host(
        &format!("host=127.0.0.1 port={} dbname=jnet user=jnet", pg.port),
        "hostd",
        "",
    );
    let o = jnet(&d.cfg, &["assign", "www", "--pool", "lan"]);
    assert_eq!(code(&o), 69, "{}", stderr(&o));
}
