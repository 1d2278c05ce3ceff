//! Shared pools through the `jnet` binary (issue 11): two simulated hosts
//! (two configs with their own state directory and host_id) against one
//! real PostgreSQL server started by the test (tests/common/pg.rs). What
//! the operator sees: leases across hosts, reports with the host of each,
//! reclaim, schema versions, and the exit codes of a store that is down,
//! refuses the login or times out. Without PostgreSQL the tests skip
//! loudly; under CI=true they fail.

#[path = "common/binary.rs"]
mod binary;
#[path = "common/pg.rs"]
mod pg;

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

#[test]
fn schema_migrate_and_a_newer_schema_is_refused() {
    let Some(pg) = Pg::start("schema_migrate") else {
        return;
    };
    let a = host(&pg.url("jnet"), "hosta", "");
    assert!(ok(&a.cfg, &["store", "migrate"]).contains("migrated from version 0 to 1"));
    assert!(ok(&a.cfg, &["store", "migrate"]).contains("nothing to do"));
    ok(&a.cfg, &["assign", "www", "--pool", "lan"]);
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
            stderr(&o).contains("schema is version 99, newer than this jnet knows (1); upgrade jnet"),
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
