//! Verbs over several jails, end to end on Linux as root, inside the test's
//! own network and mount namespace (tests/common/netns.rs): `jnet start
//! --all` brings up jails in jail.conf `depend` order and `stop --all`
//! takes them down in reverse, as jail(8) orders them (usr.sbin/jail/state.c
//! `dep_setup`/`dep_done`, freebsd-src 20a9e238). The order is observed
//! through exec.poststart / exec.prestop hooks (run on the host by
//! /bin/sh) appending to a file in the test's temp dir. Also: the boot
//! forms (`start --all`, `pf reload --all`) are quiet and idempotent, and a
//! failing jail skips its dependents while independent ones still start.
#![cfg(target_os = "linux")]

use crate::common::binary;
use crate::common::netns as test_netns;

use std::path::{Path, PathBuf};

use binary::{jnet, ok};
use test_netns::{isolated, prerequisites};

/// jnet.toml and jail.conf: web (dedicated, pool lan) depends on db
/// (inherit); dep depends on bad, whose exec.prestart fails when the file
/// `fail` exists in `dir`.
fn setup(dir: &Path) -> PathBuf {
    let order = dir.join("order");
    let log = |what: &str| format!("echo {what} >> {}", order.display());
    let fail = dir.join("fail");
    std::fs::write(
        dir.join("jail.conf"),
        format!(
            "web {{\n\tdepend = db;\n\texec.poststart = \"{}\";\n\texec.prestop = \"{}\";\n}}\n\
             db {{\n\texec.poststart = \"{}\";\n\texec.prestop = \"{}\";\n}}\n\
             bad {{\n\texec.prestart = \"test ! -e {}\";\n}}\n\
             dep {{\n\tdepend = bad;\n\texec.poststart = \"{}\";\n}}\n",
            log("start-web"),
            log("stop-web"),
            log("start-db"),
            log("stop-db"),
            fail.display(),
            log("start-dep"),
        ),
    )
    .unwrap();
    let cfg = dir.join("jnet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[host]\nexternal_interface = \"lo\"\nstate_dir = \"{}\"\njail_conf = \"{}\"\n\n\
             [pools.lan]\nnetwork = \"10.78.0.0/24\"\ninterface = \"jnbr1\"\ngateway = \"10.78.0.1\"\n\n\
             [jails.web]\nexpose = [\"tcp/8080:80\"]\n",
            dir.join("state").display(),
            dir.join("jail.conf").display()
        ),
    )
    .unwrap();
    cfg
}

/// The chains of nft table `inet <table>`, empty when it does not exist.
fn chains(table: &str) -> Vec<String> {
    let o = std::process::Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("chain "))
        .map(|c| c.trim_end_matches(" {").to_string())
        .collect()
}

fn order(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("order")).unwrap_or_default()
}

#[test]
fn start_all_in_depend_order_stop_all_in_reverse_quiet_and_idempotent() {
    if !prerequisites(
        "start_all_in_depend_order_stop_all_in_reverse_quiet_and_idempotent",
        &["sh", "nft"],
    ) {
        return;
    }
    isolated(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cfg = setup(d);
        ok(&cfg, &["assign", "web", "--pool", "lan"]);
        ok(&cfg, &["assign", "db", "--inherit"]);

        // Boot: quiet on success, dependencies first.
        assert_eq!(ok(&cfg, &["start", "--all"]), "");
        assert_eq!(order(d), "start-db\nstart-web\n");
        // Again (a second boot script, a retry): nothing to do, still quiet,
        // on stderr too.
        for args in [&["start", "--all"][..], &["pf", "reload", "--all"]] {
            let o = jnet(&cfg, args);
            assert_eq!(o.status.code(), Some(0), "{args:?}");
            assert_eq!(
                (o.stdout.as_slice(), o.stderr.as_slice()),
                (&b""[..], &b""[..]),
                "{args:?}"
            );
        }
        assert_eq!(order(d), "start-db\nstart-web\n", "nothing started twice");
        let v = ok(&cfg, &["-v", "start", "--all"]);
        assert!(
            v.contains("db: already running") && v.contains("web: already running"),
            "{v}"
        );
        // JSON (schemas/lifecycle.schema.json): every jail, in walk order.
        let j: serde_json::Value = serde_json::from_str(&ok(&cfg, &["start", "--all", "--format", "json"])).unwrap();
        let got: Vec<String> = j["jails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| format!("{} {}", x["jail"].as_str().unwrap(), x["outcome"].as_str().unwrap()))
            .collect();
        assert_eq!(got, ["db already-running", "web already-running"], "{j}");
        // pf reload --all at boot: quiet, idempotent.
        assert_eq!(ok(&cfg, &["pf", "reload", "--all"]), "");
        assert_eq!(ok(&cfg, &["pf", "reload", "--all"]), "");
        let status = ok(&cfg, &["status", "--all"]);
        assert!(
            status.lines().filter(|l| l.contains("running")).count() == 2,
            "{status}"
        );

        // Restart of db: web (which needs it) down first, up again after.
        let out = ok(&cfg, &["restart", "db"]);
        assert!(out.ends_with("restart: 2 jail(s): 2 restarted\n"), "{out}");
        assert_eq!(
            order(d),
            "start-db\nstart-web\nstop-web\nstop-db\nstart-db\nstart-web\n"
        );
        std::fs::write(d.join("order"), "start-db\nstart-web\n").unwrap();

        // Reverse order: web (which needs db) goes first.
        assert_eq!(ok(&cfg, &["stop", "--all"]), "");
        assert_eq!(order(d), "start-db\nstart-web\nstop-web\nstop-db\n");
        assert_eq!(ok(&cfg, &["stop", "--all"]), "", "stopping stopped jails is fine");

        // Stale rules of a stopped jail (loaded by hand) are flushed by
        // pf reload --all; a table jnet does not own is left alone.
        assert!(chains("jnet").iter().all(|c| !c.starts_with("jail_web_")));
        ok(&cfg, &["pf", "reload", "web"]);
        assert!(
            chains("jnet").iter().any(|c| c.starts_with("jail_web_")),
            "{:?}",
            chains("jnet")
        );
        let foreign = "table inet other {\n chain keep {\n  type nat hook prerouting priority -100;\n }\n}\n";
        let mut c = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), foreign.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success());
        let v = ok(&cfg, &["-v", "pf", "reload", "--all"]);
        assert_eq!(
            v,
            "web: not running; stale rules in jnet/web flushed\nno running jails; no rules loaded\n"
        );
        assert!(
            chains("jnet").iter().all(|c| !c.starts_with("jail_web_")),
            "{:?}",
            chains("jnet")
        );
        assert_eq!(chains("other"), ["keep"]);
        assert_eq!(
            ok(&cfg, &["-v", "pf", "reload", "--all"]),
            "no running jails; no rules loaded\n",
            "nothing stale left"
        );

        // Naming one jail pulls in what it needs (start) or what needs it
        // (stop), and says so.
        std::fs::remove_file(d.join("order")).unwrap();
        let out = ok(&cfg, &["start", "web"]);
        assert!(out.ends_with("start: 2 jail(s): 2 started\n"), "{out}");
        let out = ok(&cfg, &["stop", "db"]);
        let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("  ")).collect();
        assert_eq!(
            lines,
            ["web: stopped", "db: stopped", "stop: 2 jail(s): 2 stopped"],
            "{out}"
        );
        assert_eq!(order(d), "start-db\nstart-web\nstop-web\nstop-db\n");

        // A failing jail: what depends on it is skipped, the rest starts,
        // the exit status is non-zero and the summary names each outcome.
        ok(&cfg, &["assign", "bad", "--inherit"]);
        ok(&cfg, &["assign", "dep", "--inherit"]);
        std::fs::write(d.join("fail"), "").unwrap();
        std::fs::remove_file(d.join("order")).unwrap();
        let o = jnet(&cfg, &["start", "--all"]);
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_ne!(o.status.code(), Some(0), "{out}{err}");
        assert!(out.contains("bad: start failed: "), "{out}");
        assert!(out.contains("dep: skipped: bad did not start"), "{out}");
        assert!(
            out.contains("start: 4 jail(s): 2 started, 1 failed (bad), 1 skipped (dep)"),
            "{out}"
        );
        assert!(err.contains("start: 1 of 4 jail(s) failed: bad: start bad: "), "{err}");
        assert!(err.contains("; skipped because of them: dep"), "{err}");
        assert_eq!(order(d), "start-db\nstart-web\n");
        // Fixed: the retry starts only what is missing.
        std::fs::remove_file(d.join("fail")).unwrap();
        assert_eq!(ok(&cfg, &["start", "--all"]), "");
        assert_eq!(order(d), "start-db\nstart-web\nstart-dep\n");
        assert_eq!(ok(&cfg, &["stop", "--all"]), "");
        let status = ok(&cfg, &["status"]);
        assert!(!status.contains("running"), "{status}");
    });
}

#[test]
fn a_depend_loop_is_refused_before_anything_runs() {
    if !prerequisites("a_depend_loop_is_refused_before_anything_runs", &["sh"]) {
        return;
    }
    isolated(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cfg = setup(d);
        // db now depends on web too: a loop.
        let conf = std::fs::read_to_string(d.join("jail.conf"))
            .unwrap()
            .replace("db {\n", "db {\n\tdepend = web;\n");
        std::fs::write(d.join("jail.conf"), conf).unwrap();
        ok(&cfg, &["assign", "web", "--pool", "lan"]);
        ok(&cfg, &["assign", "db", "--inherit"]);
        let o = jnet(&cfg, &["start", "--all"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(65), "{err}");
        assert!(err.contains("dependency loop: db -> web -> db"), "{err}");
        assert_eq!(order(d), "", "nothing ran");
        let status = ok(&cfg, &["status"]);
        assert!(!status.contains("running"), "{status}");
    });
}
