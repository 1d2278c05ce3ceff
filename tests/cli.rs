//! CLI tests on the built binary: commands, output shapes, exit codes, and
//! that a refused command changes nothing. Pools use TEST-NET ranges
//! (RFC 5737), which no real interface of the test machine carries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const CONFIG: &str = r#"
[host]
external_interface = "eth0"
state_dir = "state"

[pools.lan]
network = "192.0.2.0/24"
interface = "eth0"
ranges = ["192.0.2.10-192.0.2.200"]
exclude = ["192.0.2.50", "192.0.2.60-192.0.2.70"]
gateway = "192.0.2.1"

[pools.tiny]
network = "198.51.100.0/30"
interface = "lo1"

[jails.www]
profile = "web"
ports = ["udp/53"]
"#;

struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        Env::with_config(CONFIG)
    }
    fn with_config(text: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jnet.toml"), text).unwrap();
        Env { dir }
    }
    /// The standard config with `jail_conf = "jail.conf"` and that file.
    fn with_jail_conf(jail_conf: &str) -> Env {
        let e = Env::with_config(&CONFIG.replace(
            "state_dir = \"state\"",
            "state_dir = \"state\"\njail_conf = \"jail.conf\"",
        ));
        std::fs::write(e.path("jail.conf"), jail_conf).unwrap();
        e
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jnet"));
        c.arg("-c")
            .arg(self.path("jnet.toml"))
            .env_remove("JNET_CONFIG")
            .env_remove("JNET_STATE_DIR");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }
    /// Runs a command that must fail with `code`; returns stderr and checks
    /// the inventory did not change.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let before = std::fs::read(self.inventory()).ok();
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(
            std::fs::read(self.inventory()).ok(),
            before,
            "{args:?} changed the inventory"
        );
        err
    }
    fn inventory(&self) -> PathBuf {
        self.path("state/inventory")
    }
    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

#[test]
fn assign_release_and_reports() {
    let e = Env::new();
    assert_eq!(
        e.ok(&["assign", "www", "--pool", "lan"]),
        "www: 192.0.2.10 from pool lan on eth0\n"
    );
    assert!(e.ok(&["assign", "www", "--pool", "lan"]).contains("nothing changed"));
    e.ok(&["assign", "db", "192.0.2.11"]);
    assert!(e.ok(&["assign", "db", "192.0.2.11"]).contains("already 192.0.2.11"));
    e.ok(&["assign", "ghost", "--inherit"]);
    e.ok(&["assign", "ext", "203.0.113.9", "--interface", "lo2"]);
    assert_eq!(
        e.ok(&["assign", "next", "--pool", "lan"]),
        "next: 192.0.2.12 from pool lan on eth0\n"
    );

    let inv = e.json(&["inventory", "--format", "json"]);
    let lan = &inv["pools"][0];
    assert_eq!(lan["name"], "lan");
    assert_eq!(lan["network"], "192.0.2.0/24");
    assert_eq!(lan["size"], 191 - 12);
    assert_eq!(lan["used"], 3);
    assert_eq!(lan["free"], 191 - 12 - 3);
    let a: Vec<_> = inv["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {} {}",
                a["jail"], a["mode"], a["address"], a["pool"], a["interface"]
            )
        })
        .collect();
    assert_eq!(
        a,
        [
            r#""db" "dedicated" "192.0.2.11" "lan" "eth0""#,
            r#""ext" "dedicated" "203.0.113.9" null "lo2""#,
            r#""ghost" "inherit" null null null"#,
            r#""next" "dedicated" "192.0.2.12" "lan" "eth0""#,
            r#""www" "dedicated" "192.0.2.10" "lan" "eth0""#,
        ]
    );
    // Declared ports come from the profile plus the jail's own.
    let list = e.json(&["list", "--format", "json"]);
    let www = list["jails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["jail"] == "www")
        .unwrap();
    assert_eq!(www["ports"], serde_json::json!(["tcp/80", "tcp/443", "udp/53"]));
    // Exposures declared in the profile are listed, with their origin.
    assert_eq!(
        www["exposures"],
        serde_json::json!([
            {"expose": "tcp/80", "origin": "profile", "source": "web"},
            {"expose": "tcp/443", "origin": "profile", "source": "web"},
        ])
    );
    assert_eq!(www["expose"], serde_json::json!([]));
    let table = e.ok(&["list"]);
    assert!(table.lines().next().unwrap().starts_with("JAIL"), "{table}");
    assert!(table.contains("www    dedicated  192.0.2.10"), "{table}");
    assert!(table.contains("tcp/80 (profile web),tcp/443 (profile web)"), "{table}");

    assert_eq!(
        e.ok(&["release", "www"]),
        "www: released 192.0.2.10 from pool lan on eth0\n"
    );
    assert!(e.ok(&["release", "www"]).contains("nothing changed"));
    // The lowest free address comes back first.
    assert_eq!(
        e.ok(&["assign", "again", "--pool", "lan"]),
        "again: 192.0.2.10 from pool lan on eth0\n"
    );
    let pools = e.json(&["pools", "--format", "json"]);
    assert_eq!(pools["pools"][1]["name"], "tiny");
    assert_eq!(pools["pools"][1]["size"], 2);
}

#[test]
fn refusals_have_distinct_codes_and_change_nothing() {
    let e = Env::new();
    e.ok(&["assign", "db", "192.0.2.11"]);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["assign", "x", "192.0.2.11"], 65, "already held by jail db"),
        (&["assign", "x", "192.0.2.1"], 65, "gateway"),
        (&["assign", "x", "192.0.2.65"], 65, "excluded"),
        (&["assign", "x", "192.0.2.0"], 65, "network address"),
        (&["assign", "x", "192.0.2.201"], 65, "outside the ranges"),
        (&["assign", "x", "203.0.113.1"], 65, "not inside any pool"),
        (&["assign", "x", "192.0.2.300"], 65, "not an IP address"),
        (
            &["assign", "x", "fe80::1", "--interface", "em0"],
            65,
            "not a unicast host address",
        ),
        (&["release", "x", "--family", "inet5"], 65, "unknown address family"),
        (
            &["assign", "x", "--inherit", "--family", "ipx"],
            65,
            "unknown address family",
        ),
        (&["assign", "x;reboot", "--pool", "lan"], 65, "invalid jail name"),
        (&["assign", "x", "--pool", "nope"], 65, "no pool named nope"),
        (
            &["assign", "x", "203.0.113.1", "--interface", "eth0;x"],
            65,
            "invalid interface name",
        ),
        (&["assign", "x"], 64, "required"),
        (&["assign", "x", "--pool", "lan", "--inherit"], 64, "cannot be used"),
        (&["frobnicate"], 64, "unrecognized subcommand"),
    ];
    for (args, code, needle) in cases {
        let err = e.fails(args, *code);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    e.ok(&["assign", "t1", "--pool", "tiny"]);
    e.ok(&["assign", "t2", "--pool", "tiny"]);
    let err = e.fails(&["assign", "t3", "--pool", "tiny"], 69);
    assert!(err.contains("pool tiny is exhausted"), "{err}");
}

#[test]
fn config_and_input_errors() {
    let e = Env::with_config("[host]\nexternal_interface = \"eth0\"\n[pools.a]\nnetwork = \"10.0.0.0/24\"\ninterface = \"eth0\"\nrange = []\n");
    let err = e.fails(&["list"], 78);
    assert!(err.contains("jnet.toml:6:") && err.contains("range"), "{err}");
    let e = Env::new();
    let o = Command::new(env!("CARGO_BIN_EXE_jnet"))
        .args(["-c", "/nonexistent/jnet.toml", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/jnet.toml: config file not found"));
    // JNET_CONFIG is honoured when -c is absent.
    let o = Command::new(env!("CARGO_BIN_EXE_jnet"))
        .arg("pools")
        .env("JNET_CONFIG", e.path("jnet.toml"))
        .output()
        .unwrap();
    assert!(o.status.success());
    // A damaged inventory is refused with its line, never overwritten.
    std::fs::create_dir_all(e.path("state")).unwrap();
    std::fs::write(e.inventory(), "jnet-inventory 1\njail a mode=dedicated\n").unwrap();
    let err = e.fails(&["assign", "b", "--pool", "lan"], 65);
    assert!(err.contains("inventory:2:"), "{err}");
}

#[test]
fn state_dir_flag_overrides_config() {
    let e = Env::new();
    let other = e.path("elsewhere");
    e.ok(&["--state-dir", other.to_str().unwrap(), "assign", "a", "--pool", "lan"]);
    assert!(other.join("inventory").exists());
    assert!(!e.inventory().exists());
}

#[test]
fn lock_timeout_exits_75() {
    let e = Env::new();
    e.ok(&["assign", "a", "--pool", "lan"]);
    let lock = std::fs::File::open(e.path("state/inventory.lock")).unwrap();
    lock.lock().unwrap();
    let err = e.fails(&["--lock-timeout", "0.2", "assign", "b", "--pool", "lan"], 75);
    assert!(err.contains("locked by another jnet process"), "{err}");
    drop(lock);
    e.ok(&["assign", "b", "--pool", "lan"]);
}

/// Addresses recorded in the inventory file (base and journal), read the
/// way every jnet command reads it; panics if the file is not valid.
fn addresses_in(inv: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(inv).unwrap();
    assert!(text.starts_with("jnet-inventory 3 "), "{text}");
    let parsed = jnet::store::Inventory::from_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    parsed
        .jails
        .values()
        .filter_map(|r| r.address())
        .map(|a| a.to_string())
        .collect()
}

#[test]
fn concurrent_assigns_never_share_an_address() {
    let e = Env::new();
    let n = 24;
    let children: Vec<_> = (0..n)
        .map(|i| {
            e.cmd()
                .args(["assign", &format!("j{i}"), "--pool", "lan"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let mut addrs = addresses_in(&e.inventory());
    assert_eq!(addrs.len(), n);
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), n, "an address was handed out twice");
    // They are exactly the n lowest assignable addresses.
    let inv = e.json(&["pools", "--format", "json"]);
    assert_eq!(inv["pools"][0]["used"], n as u64);
}

/// H5: two jails expose one host port at the same moment. The write pause
/// widens the window between the check and the write; the check must run on
/// the locked inventory, so exactly one of them wins and the other is refused.
#[test]
fn concurrent_exposes_of_one_host_port_admit_exactly_one() {
    let e = Env::new();
    e.ok(&["assign", "a", "--pool", "lan"]);
    e.ok(&["assign", "b", "--pool", "lan"]);
    for port in [8080, 8081, 8082] {
        let spec = format!("tcp/{port}");
        let children: Vec<_> = ["a", "b"]
            .iter()
            .map(|j| {
                e.cmd()
                    .args(["expose", j, &spec])
                    .env("JNET_TEST_WRITE_PAUSE_MS", "150")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let codes: Vec<Option<i32>> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code())
            .collect();
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(sorted, [Some(0), Some(65)], "tcp/{port}: exit codes {codes:?}");
    }
    // The inventory holds each host port once, and check agrees.
    let o = e.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
}

/// `jnet list` names where each exposure comes from: the jail's own
/// jnet.toml entry, its profile, or `jnet expose`.
#[test]
fn list_shows_every_exposure_with_its_origin() {
    let e = Env::with_config(&format!(
        "{CONFIG}\n[jails.api]\nprofile = \"web\"\nexpose = [\"tcp/8080:80\", \"tcp/80\"]\n"
    ));
    e.ok(&["assign", "api", "--pool", "lan"]);
    e.ok(&["expose", "api", "tcp/9090:90"]);
    let list = e.json(&["list", "--format", "json"]);
    let api = &list["jails"][0];
    assert_eq!(api["jail"], "api");
    let rows: Vec<String> = api["exposures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| format!("{} {} {}", x["expose"], x["origin"], x["source"]))
        .collect();
    let toml = e.path("jnet.toml").display().to_string();
    assert_eq!(
        rows,
        [
            // Declared in both: the jail's own entry is named.
            format!(r#""tcp/80" "config" "{toml}:21""#),
            r#""tcp/443" "profile" "web""#.to_string(),
            format!(r#""tcp/8080:80" "config" "{toml}:21""#),
            r#""tcp/9090:90" "expose" "jnet expose""#.to_string(),
        ]
    );
    assert_eq!(api["expose"], serde_json::json!(["tcp/9090:90"]));
    let table = e.ok(&["list"]);
    assert!(
        table.contains("tcp/80 (config),tcp/443 (profile web),tcp/8080:80 (config),tcp/9090:90 (expose)"),
        "{table}"
    );
}

/// `pools --format prometheus` carries exactly the numbers of the JSON
/// report, in the exposition format's line shapes.
#[test]
fn prometheus_pools_agree_with_the_json_report() {
    let e = Env::new();
    e.ok(&["assign", "a", "--pool", "lan"]);
    e.ok(&["assign", "b", "--pool", "lan"]);
    e.ok(&["assign", "c", "--inherit"]);
    let json = e.json(&["pools", "--format", "json"]);
    let text = e.ok(&["pools", "--format", "prometheus"]);
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        samples.insert(series.to_string(), value.parse::<f64>().unwrap());
    }
    let pools = json["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 2);
    for p in pools {
        let name = p["name"].as_str().unwrap();
        for k in ["used", "reserved", "free"] {
            let got = samples[&format!("jnet_pool_{k}{{pool=\"{name}\"}}")];
            assert_eq!(got, p[k].as_f64().unwrap(), "{name} {k}");
        }
        let size = format!(
            "jnet_pool_size{{pool=\"{name}\",network=\"{}\",interface=\"{}\"}}",
            p["network"].as_str().unwrap(),
            p["interface"].as_str().unwrap()
        );
        assert_eq!(samples[&size], p["size"].as_f64().unwrap());
    }
    assert_eq!(samples["jnet_pool_used{pool=\"lan\"}"], 2.0);
    assert_eq!(samples["jnet_jails{phase=\"defined\"}"], 3.0);
    assert_eq!(samples["jnet_jails_running"], 0.0);
    assert!(text.contains("# TYPE jnet_pool_free gauge\n"));
}

#[test]
fn killed_writer_leaves_old_or_new_inventory() {
    let e = Env::new();
    e.ok(&["assign", "first", "--pool", "lan"]);
    let old = std::fs::read_to_string(e.inventory()).unwrap();
    for delay_ms in [0u64, 5, 20, 60] {
        let mut child = e
            .cmd()
            .args(["assign", &format!("k{delay_ms}"), "--pool", "lan"])
            .env("JNET_TEST_WRITE_PAUSE_MS", "100")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let now = std::fs::read_to_string(e.inventory()).unwrap();
        // Killed before the rename: the previous inventory, byte for byte.
        assert_eq!(now, old, "kill after {delay_ms} ms");
        // The next command parses it, cleans the temp file, and works.
        e.ok(&["list"]);
    }
    e.ok(&["assign", "after", "--pool", "lan"]);
    let temps: Vec<_> = std::fs::read_dir(e.path("state"))
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().starts_with(".inventory.tmp"))
        .collect();
    assert!(temps.is_empty(), "stale temp files left: {temps:?}");
    assert_eq!(addresses_in(&e.inventory()).len(), 2);
    // Without the pause, a kill at any moment still leaves a whole file with
    // either the records before or the records after.
    let mut prev = addresses_in(&e.inventory()).len();
    for i in 0..20 {
        let mut child = e
            .cmd()
            .args(["assign", &format!("r{i}"), "--pool", "lan"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(200 * i));
        let _ = child.kill();
        child.wait().unwrap();
        let n = addresses_in(&e.inventory()).len();
        assert!(n == prev || n == prev + 1, "kill {i}: {prev} records before, {n} after");
        e.ok(&["assign", &format!("r{i}"), "--pool", "lan"]);
        prev = addresses_in(&e.inventory()).len();
        assert_eq!(prev, 3 + i as usize);
    }
}

#[test]
fn jail_conf_statics_and_import() {
    let e = Env::with_jail_conf(
        "path = \"/jails/$name\";\nold { ip4.addr = \"eth0|192.0.2.10/24\"; }\nweb { ip4 = inherit; }\n",
    );
    // An address set in jail.conf is never handed out, even before import.
    assert_eq!(
        e.ok(&["assign", "a", "--pool", "lan"]),
        "a: 192.0.2.11 from pool lan on eth0\n"
    );
    let err = e.fails(&["assign", "b", "192.0.2.10"], 65);
    assert!(
        err.contains("set in jail.conf for jail old") && err.contains("jail.conf:2"),
        "{err}"
    );
    let out = e.ok(&["import"]);
    assert!(out.contains("old: added, 192.0.2.10 from pool lan on eth0"), "{out}");
    assert!(out.ends_with("2 added, 0 updated, 0 unchanged\n"), "{out}");
    assert!(e.ok(&["import"]).ends_with("0 added, 0 updated, 2 unchanged\n"));
    // A syntax error names file:line:column, exits 78, changes nothing.
    std::fs::write(e.path("jail.conf"), "web {\n  ip4 = inherit\n").unwrap();
    let err = e.fails(&["import"], 78);
    assert!(err.contains("jail.conf:"), "{err}");
    std::fs::remove_file(e.path("jail.conf")).unwrap();
    let err = e.fails(&["import"], 66);
    assert!(err.contains("jail.conf"), "{err}");
}

/// The README's first command: `jnet -c examples/jnet.toml plan` on the
/// shipped example. It previews addresses, finds the staging/www clash and
/// writes nothing.
#[test]
fn plan_on_the_shipped_example_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    for f in ["jnet.toml", "jail.conf"] {
        std::fs::copy(format!("{ex}/{f}"), dir.path().join(f)).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_jnet"))
        .arg("-c")
        .arg(dir.path().join("jnet.toml"))
        .arg("plan")
        .env_remove("JNET_CONFIG")
        .env_remove("JNET_STATE_DIR")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    for needle in [
        "== dns\n   address: 10.66.0.2 (preview: lowest free address of pool private)",
        "== legacy\n   address: 192.0.2.10 (preview: ip4.addr in jail.conf",
        "conflict: jail staging claims tcp/80 on * but jail www also claims tcp/80 on *",
        "run exec.prestart on the host: jnet hook prestart www",
        "firewall: 4 rule(s) in jnet/dns",
        "port check: 2 conflict(s)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(!dir.path().join("state").exists(), "plan wrote state");
}

/// Many assigns and releases at once while the journal bound is so low
/// (JNET_JOURNAL_MAX_BYTES, a knob for tests) that most changes compact the
/// file, with lock-free readers running alongside: every address is handed
/// out once, every read sees a whole inventory, the end state is exact.
#[test]
fn concurrent_assigns_with_compactions_and_readers() {
    let e = Env::new();
    let n = 40;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let path = e.inventory();
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        jnet::store::Inventory::from_text(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    let spawn = |args: Vec<String>| {
        e.cmd()
            .args(&args)
            .env("JNET_JOURNAL_MAX_BYTES", "400")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut children: Vec<_> = (0..n)
        .map(|i| spawn(vec!["assign".into(), format!("j{i}"), "--pool".into(), "lan".into()]))
        .collect();
    // Releases of half of them race with the assigns (a release of a jail
    // not yet assigned is a no-op, so the end state is checked per jail).
    children.extend(
        (0..n)
            .step_by(2)
            .map(|i| spawn(vec!["release".into(), format!("j{i}")])),
    );
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let mut addrs = addresses_in(&e.inventory());
    let held = addrs.len();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), held, "an address was handed out twice");
    assert!(held >= n / 2 && held <= n, "{held}");
    // Assigning the released ones again fills exactly the free addresses.
    for i in 0..n {
        e.ok(&["assign", &format!("j{i}"), "--pool", "lan"]);
    }
    let mut addrs = addresses_in(&e.inventory());
    assert_eq!(addrs.len(), n);
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), n);
    let inv = e.json(&["pools", "--format", "json"]);
    assert_eq!(inv["pools"][0]["used"], n as u64);
}

/// Kills at random moments while most changes are compactions or appends
/// cut short: the inventory always reads, with the records before or after.
#[test]
fn killed_writer_with_compactions_leaves_old_or_new_state() {
    let e = Env::new();
    e.ok(&["assign", "first", "--pool", "lan"]);
    let mut prev = addresses_in(&e.inventory()).len();
    for i in 0..24u64 {
        let mut child = e
            .cmd()
            .args(["assign", &format!("r{i}"), "--pool", "lan"])
            .env("JNET_JOURNAL_MAX_BYTES", if i % 2 == 0 { "300" } else { "100000" })
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(150 * (i % 12)));
        let _ = child.kill();
        child.wait().unwrap();
        let n = addresses_in(&e.inventory()).len();
        assert!(n == prev || n == prev + 1, "kill {i}: {prev} records before, {n} after");
        e.ok(&["assign", &format!("r{i}"), "--pool", "lan"]);
        prev = addresses_in(&e.inventory()).len();
        assert_eq!(prev, 2 + i as usize);
    }
}

#[test]
fn unwritable_state_exits_73_and_changes_nothing() {
    let e = Env::new();
    // A regular file where the state directory should be: no user, not even
    // root, can create the inventory under it.
    std::fs::write(e.path("state"), "not a directory").unwrap();
    let o = e.run(&["assign", "a", "--pool", "lan"]);
    assert_eq!(o.status.code(), Some(73), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("state"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(e.path("state")).unwrap(), "not a directory");
}

/// Commands that change the host refuse early, with 77, without root; the
/// refusal comes before any change. (Run as uid 65534 when the tests are
/// root, as they are in CI.)
#[test]
fn host_changes_without_root_exit_77() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let e = Env::new();
    e.ok(&["assign", "a", "--pool", "lan"]);
    // The unprivileged user must be able to read the config and state.
    for (p, mode) in [
        ("", 0o755),
        ("jnet.toml", 0o644),
        ("state", 0o755),
        ("state/inventory", 0o644),
    ] {
        std::fs::set_permissions(e.path(p), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let before = std::fs::read(e.inventory()).unwrap();
    for args in [
        &["start", "a"][..],
        &["stop", "a"],
        &["hook", "prestart", "a"],
        &["pf", "reload", "--all"],
    ] {
        let mut c = e.cmd();
        c.args(args);
        if nix::unistd::Uid::effective().is_root() {
            c.uid(65534).gid(65534);
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(77), "{args:?}: {err}");
        assert!(err.contains("permission denied (run as root)"), "{err}");
    }
    assert_eq!(std::fs::read(e.inventory()).unwrap(), before);
}

#[test]
fn lock_timeouts_a_duration_cannot_hold_are_refused_not_a_panic() {
    // H13: 1e30 and 2^64 passed the is_finite check and panicked (exit 101).
    let e = Env::new();
    for v in ["1e30", "18446744073709551616", "nan", "inf"] {
        let err = e.fails(&["--lock-timeout", v, "list"], 65);
        assert!(err.contains("--lock-timeout"), "{v}: {err}");
    }
    e.ok(&["--lock-timeout", "1e9", "list"]);
}

/// Several jails and `--all`: argument shapes, the depend walk of `plan`,
/// and a loop refused before anything runs.
#[test]
fn multi_jail_verbs_parse_plan_in_depend_order_and_refuse_loops() {
    let e = Env::with_jail_conf("www { depend = db; }\ndb { depend = base; }\nbase { }\nmail { }\n");
    for j in ["www", "db", "base", "mail"] {
        e.ok(&["assign", j, "--inherit"]);
    }
    // Usage: a verb needs jails or --all, not both.
    for args in [
        &["start"][..],
        &["stop", "www", "--all"],
        &["restart"],
        &["status", "www", "--all"],
    ] {
        let o = e.run(args);
        assert_eq!(o.status.code(), Some(64), "{args:?}");
    }
    assert!(e.fails(&["plan", "--stop"], 65).contains("needs jails or --all"));
    // plan walks like start: dependencies first, pulled-in jails marked.
    let p = e.json(&["plan", "www", "mail", "--format", "json"]);
    let walk: Vec<String> = p["jails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            format!(
                "{}{}",
                j["jail"].as_str().unwrap(),
                if j["target"] == true { "*" } else { "" }
            )
        })
        .collect();
    assert_eq!(walk, ["mail*", "base", "db", "www*"]);
    assert_eq!(p["verb"], "start");
    let p = e.json(&["plan", "--all", "--stop", "--format", "json"]);
    let walk: Vec<&str> = p["jails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jail"].as_str().unwrap())
        .collect();
    assert_eq!(walk, ["mail", "www", "db", "base"]);
    let text = e.ok(&["plan", "www", "mail"]);
    assert!(text.starts_with("# start mail\n"), "{text}");
    assert!(text.contains("# start base (depend)\n"), "{text}");
    // One jail: its own plan, with a note on what start would take along.
    let one = e.ok(&["plan", "www"]);
    assert!(
        one.contains("# jnet start www also starts, first (jail.conf depend): base, db; see: jnet plan base db www"),
        "{one}"
    );
    // check and status take --all too.
    let o = e.run(&["check", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));

    // A loop: refused, naming its jails, before anything runs.
    std::fs::write(
        e.path("jail.conf"),
        "www { depend = db; }\ndb { depend = www; }\nbase { }\nmail { }\n",
    )
    .unwrap();
    let err = e.fails(&["plan", "--all"], 65);
    assert!(err.contains("dependency loop: db -> www -> db"), "{err}");
    // An undefined name: refused with the jail.conf line.
    std::fs::write(e.path("jail.conf"), "www { depend = nosuch; }\n").unwrap();
    let err = e.fails(&["plan", "www", "mail"], 65);
    assert!(
        err.contains("jail.conf:1: jail www depends on undefined jail nosuch"),
        "{err}"
    );
    // Without root the lifecycle verbs refuse before reading anything.
    if !nix::unistd::Uid::effective().is_root() {
        let err = e.fails(&["start", "--all"], 77);
        assert!(err.contains("jnet start --all: permission denied"), "{err}");
    }
}

/// Issue 9 B5: `--address` takes an external IPv6 address. Bound to one,
/// the exposure needs the jail's IPv6 address: refused (exit 65, the
/// inventory unchanged, the message naming jail and exposure) while the
/// jail has only IPv4, accepted once it has one; stored in the bracketed
/// text form and rendered as the inet6 rdr only.
#[test]
fn expose_with_an_ipv6_external_address_needs_the_jails_ipv6_address() {
    let e = Env::new();
    e.ok(&["assign", "www", "--pool", "lan"]);
    let err = e.fails(&["expose", "www", "tcp/8080", "--address", "2001:db8::1"], 65);
    assert!(
        err.contains("jail www has no IPv6 address") && err.contains("exposure [2001:db8::1]:tcp/8080"),
        "{err}"
    );
    // Addresses that cannot be external are refused before anything else.
    for (bad, why) in [
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("ff02::1", "multicast"),
        ("fe80::1", "link-local"),
        ("::ffff:192.0.2.7", "IPv4-mapped"),
        ("2001:db8::1:tcp/8080", "not an IPv4 or IPv6 address"),
    ] {
        let err = e.fails(&["expose", "www", "tcp/8081", "--address", bad], 65);
        assert!(err.contains(why), "{bad}: {err}");
    }

    e.ok(&["assign", "www", "2001:db8::5", "--interface", "lo1"]);
    assert_eq!(
        e.ok(&["expose", "www", "tcp/8080", "--address", "2001:db8::1"]),
        "www: exposed [2001:db8::1]:tcp/8080 -> 2001:db8::5\n"
    );
    let inv = std::fs::read_to_string(e.inventory()).unwrap();
    assert!(inv.contains("[2001:db8::1]:tcp/8080"), "{inv}");
    // Bound to another address, the same port is no conflict; the IPv4
    // bound one goes to the IPv4 address only.
    assert_eq!(
        e.ok(&["expose", "www", "tcp/8080", "--address", "[2001:db8::2]"]),
        "www: exposed [2001:db8::2]:tcp/8080 -> 2001:db8::5\n"
    );
    assert_eq!(
        e.ok(&["expose", "www", "tcp/8080", "--address", "198.51.100.7"]),
        "www: exposed 198.51.100.7:tcp/8080 -> 192.0.2.10\n"
    );
    // An unbound one overlaps every bound one.
    let err = e.fails(&["expose", "www", "tcp/8080"], 65);
    assert!(err.contains("overlaps its exposure"), "{err}");
    // Rendered in the native syntax (nft here, pf on FreeBSD): every rule
    // matching the IPv6 external address redirects to the jail's IPv6
    // address, and there is at least one.
    let text = e.ok(&["pf", "render", "www"]);
    let bound: Vec<&str> = text.lines().filter(|l| l.contains("2001:db8::1 ")).collect();
    assert!(!bound.is_empty(), "{text}");
    assert!(
        bound
            .iter()
            .all(|l| l.contains("2001:db8::5") && !l.contains("192.0.2.10")),
        "{text}"
    );
    // unexpose takes the stored text form back and removes only the
    // exposure bound to that address; unbound, the host side is ambiguous.
    let err = e.fails(&["unexpose", "www", "tcp/8080"], 65);
    assert!(err.contains("exposed on several addresses"), "{err}");
    assert_eq!(
        e.ok(&["unexpose", "www", "[2001:db8::2]:tcp/8080"]),
        "www: no longer exposes [2001:db8::2]:tcp/8080\n"
    );
    let left: Vec<String> = e.json(&["list", "--format", "json"])["jails"][0]["expose"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["[2001:db8::1]:tcp/8080", "198.51.100.7:tcp/8080"]);
}
