//! Lifecycle end to end on Linux, as root, each test in its own network and
//! mount namespace (tests/common/netns.rs): the `jnet` binary is spawned
//! from the thread that entered them, so it and its children live there
//! too, with /run on the test's own tmpfs.
//!
//! jail.conf is not parsed in this build, so exec.* hooks cannot be given
//! to the binary; the failing-exec.start and failing-firewall cases drive
//! the same engine through the library with the real `LinuxHost`.
#![cfg(target_os = "linux")]

use crate::common::binary;
use crate::common::netns as test_netns;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use binary::{jnet, ok, BIN};
use jnet::core::lifecycle::Phase;
use jnet::core::names::{IfName, JailName};
use jnet::core::plan::{Desired, ExecHooks};
use jnet::engine::lifecycle::{Lifecycle, PortChecker};
use jnet::os::linux::{addr, jail, link, netns, LinuxHost};
use jnet::os::{Host, JailNetwork, JailSpec};
use jnet::store::{JailRecord, Store};
use test_netns::{isolated, prerequisites};

fn config(dir: &Path) -> PathBuf {
    let cfg = dir.join("jnet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[host]\nexternal_interface = \"lo\"\nstate_dir = \"{}\"\n\n\
             [pools.lan]\nnetwork = \"10.77.0.0/24\"\ninterface = \"jnbr0\"\ngateway = \"10.77.0.1\"\n\n\
             [jails.web]\npool = \"lan\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    cfg
}

fn link_exists(name: &str) -> bool {
    let mut rt = link::route_socket().unwrap();
    link::index(&mut rt, name).unwrap().is_some()
}

fn has_address(a: &str) -> bool {
    let mut rt = link::route_socket().unwrap();
    addr::list(&mut rt).unwrap().iter().any(|x| x.address.to_string() == a)
}

fn j(s: &str) -> JailName {
    JailName::new(s).unwrap()
}

/// Nothing of jail `name` (bridge `bridge`, address `a`) is left.
fn assert_nothing_left(name: &str, bridge: &str, gw: &str) {
    let jn = j(name);
    let (host_if, _) = jail::veth_names(&jn);
    assert!(!Path::new(&format!("/run/netns/jnet-{name}")).exists(), "netns left");
    assert!(!link_exists(&host_if), "veth {host_if} left");
    assert!(!link_exists(bridge), "bridge {bridge} (created by jnet) left");
    assert!(!has_address(gw), "gateway address {gw} left");
    assert!(
        !Path::new(&format!("/run/jnet/jails/{name}")).exists(),
        "jail record left"
    );
    assert!(LinuxHost::default().running_jails().unwrap().is_empty());
}

#[test]
fn dedicated_jail_start_exec_reach_stop() {
    if !prerequisites("dedicated_jail_start_exec_reach_stop", &["sh", "sleep"]) {
        return;
    }
    isolated(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        assert!(ok(&cfg, &["assign", "web", "--pool", "lan"]).contains("10.77.0.2"));
        let plan = ok(&cfg, &["plan", "web"]);
        assert_eq!(
            plan,
            "1. attach 10.77.0.2/24 for web on jnbr0  [undo: detach 10.77.0.2/24 of web from jnbr0]\n\
             2. create jail web (path /)  [undo: remove jail web and end its processes]\n"
        );

        let out = ok(&cfg, &["start", "web"]);
        assert!(out.ends_with("web: started\n"), "{out}");
        assert!(ok(&cfg, &["start", "web"]).contains("already running"));
        assert!(ok(&cfg, &["plan", "web"]).contains("already running"));
        let status = ok(&cfg, &["status"]);
        let line = status
            .lines()
            .find(|l| l.contains("web"))
            .unwrap_or_else(|| panic!("{status}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols, ["1", "web", "10.77.0.2", "running"], "{status}");

        // exec runs inside the jail's namespace: it sees the jail's address.
        let out = ok(
            &cfg,
            &[
                "exec",
                "web",
                "--",
                "sh",
                "-c",
                "cat /proc/net/fib_trie | grep -c 10.77.0.2",
            ],
        );
        assert_ne!(out.trim(), "0", "{out}");
        // A command's own exit status is passed through.
        assert_eq!(
            jnet(&cfg, &["exec", "web", "--", "sh", "-c", "exit 5"]).status.code(),
            Some(5)
        );

        // Reachable from the host namespace through bridge and veth.
        let ns = PathBuf::from("/run/netns/jnet-web");
        let l = netns::run_in(&ns, || TcpListener::bind("10.77.0.2:8080"))
            .unwrap()
            .unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut b = [0u8; 4];
            c.read_exact(&mut b).unwrap();
            c.write_all(&b).unwrap();
        });
        let to: SocketAddr = "10.77.0.2:8080".parse().unwrap();
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(3)).expect("jail reachable from host");
        c.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        server.join().unwrap();

        // A long-running process in the jail is ended by stop.
        let mut bg = Command::new(BIN)
            .arg("-c")
            .arg(&cfg)
            .args(["exec", "web", "--", "sleep", "600"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        // why the command name: `jnet exec` itself enters the namespace
        // first and joins the jail's others before it execs sleep; a stop
        // in between ends jnet exec, not sleep.
        let sleeping = || {
            netns::pids_in(&ns, netns::NsKind::Net)
                .unwrap()
                .iter()
                .any(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep"))
        };
        while !sleeping() {
            assert!(Instant::now() < deadline, "sleep never appeared in the jail");
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = ok(&cfg, &["stop", "web"]);
        assert!(out.ends_with("web: stopped\n"), "{out}");
        // jail(8)'s stop.timeout phase: SIGTERM first, so the daemon can shut
        // down (jail.c:116) before the removal SIGKILLs what is left.
        assert_eq!(
            bg.wait().unwrap().code(),
            Some(128 + 15),
            "sleep ended by stop's SIGTERM"
        );
        assert_nothing_left("web", "jnbr0", "10.77.0.1");
        assert!(ok(&cfg, &["stop", "web"]).contains("already stopped"));
        let status = ok(&cfg, &["status", "web", "--format", "json"]);
        assert!(status.contains("\"state\": \"stopped\""), "{status}");
        assert!(jnet(&cfg, &["exec", "web", "--", "true"]).status.code() == Some(65));

        // Wall time of a real start + stop cycle of a dedicated jail.
        let (mut starts, mut stops, mut cycles) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..7 {
            let t = Instant::now();
            ok(&cfg, &["start", "web"]);
            let mid = Instant::now();
            ok(&cfg, &["stop", "web"]);
            starts.push(mid - t);
            stops.push(mid.elapsed());
            cycles.push(t.elapsed());
        }
        for v in [&mut starts, &mut stops, &mut cycles] {
            v.sort();
        }
        assert_nothing_left("web", "jnbr0", "10.77.0.1");
        let mut err = std::io::stderr();
        let _ = writeln!(
            err,
            "\nFIGURE jnet start+stop (dedicated, binary, 7 cycles, jnet creates and removes the bridge): \
             median {:?} (start {:?}, stop {:?}), min {:?}, max {:?}",
            cycles[3], starts[3], stops[3], cycles[0], cycles[6]
        );
        // Same with the bridge already there (another jail on the pool):
        // jnet neither creates nor removes it.
        let mut rt = link::route_socket().unwrap();
        assert!(link::ensure_bridge(&mut rt, "jnbr0").unwrap());
        let mut cycles = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            ok(&cfg, &["start", "web"]);
            ok(&cfg, &["stop", "web"]);
            cycles.push(t.elapsed());
        }
        cycles.sort();
        assert!(link_exists("jnbr0"), "a bridge jnet did not create is kept");
        let _ = writeln!(
            err,
            "FIGURE jnet start+stop (dedicated, binary, 7 cycles, bridge kept): median {:?}, min {:?}, max {:?}\n",
            cycles[3], cycles[0], cycles[6]
        );
        assert!(link::delete(&mut rt, "jnbr0").unwrap());
    });
}

struct NoConflicts;
impl PortChecker for NoConflicts {
    fn check(&self, _jail: &JailName) -> jnet::Result<()> {
        Ok(())
    }
}

fn desired(name: &str, start: &[&str], rules: Option<&str>) -> Desired {
    Desired {
        spec: JailSpec {
            name: j(name),
            path: "/".into(),
            hostname: Some(format!("{name}.jail")),
            network: JailNetwork::inet_only(jnet::os::OwnAddress {
                address: "10.78.0.5".parse().unwrap(),
                prefix: 24,
                interface: IfName::new("jnbr1").unwrap(),
                gateway: Some("10.78.0.1".parse().unwrap()),
            }),
            params: vec![],
        },
        exec: ExecHooks {
            start: start.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        rules: rules.map(str::to_string),
        port_check: true,
        anchor_root: "jnettest".into(),
        stop_timeout: jnet::core::plan::DEFAULT_STOP_TIMEOUT,
        unsupported: vec![],
        persist: false,
    }
}

#[test]
fn failed_starts_leave_nothing_behind() {
    if !prerequisites("failed_starts_leave_nothing_behind", &["sh", "sleep", "nft"]) {
        return;
    }
    isolated(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), Duration::from_secs(2));
        store
            .update(|inv| {
                inv.jails.insert(
                    j("app"),
                    JailRecord::dedicated("10.78.0.5".parse().unwrap(), None, None),
                );
                Ok(())
            })
            .unwrap();
        let host = LinuxHost::default();
        let engine = Lifecycle::new(&host, &store, &NoConflicts);
        let phase = || store.read().unwrap().jails[&j("app")].phase;

        // exec.start fails after leaving a process behind in the jail.
        let d = desired("app", &["sleep 600 </dev/null >/dev/null 2>&1 &", "exit 3"], None);
        let e = engine.start(&j("app"), &d).unwrap_err().to_string();
        assert!(
            e.contains("exec.start") && e.contains("exit 3") && e.contains("status 3"),
            "{e}"
        );
        assert_eq!(phase(), Phase::Stopped);
        assert_nothing_left("app", "jnbr1", "10.78.0.1");
        assert!(!Path::new("/run/jnet/uts/app").exists(), "uts namespace left");

        // The firewall step fails (nft rejects the script).
        let d = desired("app", &["true"], Some("add rule inet jnettest nosuchchain bogus\n"));
        let e = engine.start(&j("app"), &d).unwrap_err().to_string();
        assert!(e.contains("firewall rules jnettest/app") && e.contains("nft"), "{e}");
        assert_eq!(phase(), Phase::Stopped);
        assert_nothing_left("app", "jnbr1", "10.78.0.1");
        assert_eq!(host.loaded_rules("jnettest", &j("app")).unwrap(), None);

        // And the same jail then starts and stops cleanly with real rules.
        let rules = jnet::core::rules::ir::JailRules::from_exposures(
            &j("app"),
            &["10.78.0.5".parse().unwrap()],
            &jnet::core::names::IfName::new("lo").unwrap(),
            &["tcp/8080:80".parse().unwrap()],
            jnet::core::rules::ir::NatSources::none(),
        )
        .unwrap();
        let rules = jnet::core::rules::nft::render_nft_jail(&rules, "jnettest");
        let d = desired("app", &["true"], Some(&rules));
        engine.start(&j("app"), &d).unwrap();
        assert_eq!(phase(), Phase::Running);
        assert!(host.loaded_rules("jnettest", &j("app")).unwrap().is_some());
        assert_eq!(
            engine.start(&j("app"), &d).unwrap(),
            jnet::engine::lifecycle::Outcome::AlreadyRunning,
            "loaded nft rules are recognised as the rendered ones"
        );
        engine.stop(&j("app"), &d).unwrap();
        assert_nothing_left("app", "jnbr1", "10.78.0.1");
        assert_eq!(host.loaded_rules("jnettest", &j("app")).unwrap(), None);
        assert_eq!(phase(), Phase::Stopped);
    });
}

#[test]
fn jail_conf_fragment_and_refusals() {
    // jail-conf needs no privileges: it only reads config and inventory.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).unwrap() + "\n[jails.ghost]\nports = [\"tcp/2368\"]\n",
    )
    .unwrap();
    ok(&cfg, &["assign", "ghost", "--inherit"]);
    // F6: hook lines name jnet by absolute path (rc(8)'s PATH lacks
    // /usr/local); here that is the binary under test.
    let exe = std::fs::canonicalize(BIN).unwrap();
    let exe = exe.display();
    assert_eq!(
        ok(&cfg, &["jail-conf", "ghost"]),
        format!(
            "ghost {{\n\tip4 = inherit;\n\tip6 = inherit;\n\texec.prestart += \"{exe} hook prestart $name\";\n\
             \texec.poststart += \"{exe} hook poststart $name\";\n\texec.prestop += \"{exe} hook prestop $name\";\n\
             \texec.poststop += \"{exe} hook poststop $name\";\n}}\n"
        )
    );
    let o = jnet(&cfg, &["jail-conf", "nosuch"]);
    assert_eq!(o.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&o.stderr).contains("jail nosuch is not in the inventory"));
    let o = jnet(&cfg, &["exec", "ghost"]);
    assert_eq!(o.status.code(), Some(64), "exec needs a command after --");

    if !prerequisites("jail_conf_fragment_and_refusals (start part)", &[]) {
        return;
    }
    isolated(|| {
        // ghost shares the host's port space and declares tcp/2368, which a
        // host process already listens on: refused by the port check
        // before anything is created (exit 1), and the inventory says
        // stopped.
        let squatter = std::net::TcpListener::bind("0.0.0.0:2368").unwrap();
        let o = jnet(&cfg, &["start", "ghost"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("port conflicts") && err.contains("tcp/2368") && err.contains("completed steps were undone"),
            "{err}"
        );
        drop(squatter);
        assert!(LinuxHost::default().running_jails().unwrap().is_empty());
        assert!(ok(&cfg, &["list"])
            .lines()
            .any(|l| l.starts_with("ghost") && l.contains("stopped")));
    });
}
