//! The FreeBSD port skeleton in packaging/freebsd: the rc.d script parses
//! with `sh -n` once the ports framework's %%PREFIX%% is substituted, and
//! its start/stop/reload run the jnet commands they promise (against a
//! minimal stand-in for /etc/rc.subr, since rc.subr is FreeBSD's); the
//! sample configuration is a valid jnet.toml; the port's version, crate
//! list and plist agree with Cargo.toml, Cargo.lock and the files shipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn port() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/freebsd")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// files/jnet.in as USE_RC_SUBR installs it (SUB_LIST's PREFIX).
fn rc_script(prefix: &str) -> String {
    let text = read(&port().join("files/jnet.in")).replace("%%PREFIX%%", prefix);
    assert!(!text.contains("%%"), "unsubstituted %%...%% left in files/jnet.in");
    text
}

#[test]
fn rc_script_passes_sh_n() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("jnet");
    std::fs::write(&script, rc_script("/usr/local")).unwrap();
    let o = Command::new("sh").arg("-n").arg(&script).output().unwrap();
    assert!(o.status.success(), "sh -n: {}", String::from_utf8_lossy(&o.stderr));
    // A broken copy must fail, or the check above proves nothing.
    std::fs::write(&script, rc_script("/usr/local").replace("\tesac\n", "\n")).unwrap();
    assert!(!Command::new("sh")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn rc_script_has_the_rcorder_and_rc_subr_lines() {
    let s = rc_script("/usr/local");
    let header = |key: &str| -> BTreeSet<String> {
        s.lines()
            .filter_map(|l| l.strip_prefix(&format!("# {key}:")))
            .flat_map(|v| v.split_whitespace().map(String::from))
            .collect()
    };
    assert_eq!(header("PROVIDE"), BTreeSet::from(["jnet".to_string()]));
    // rc.d/pf provides "pf", rc.d/NETWORKING "NETWORKING", rc.d/jail "jail".
    for r in ["pf", "NETWORKING"] {
        assert!(header("REQUIRE").contains(r), "REQUIRE lacks {r}");
    }
    assert!(header("BEFORE").contains("jail"));
    assert!(header("KEYWORD").contains("shutdown"));
    for line in [
        ". /etc/rc.subr",
        "rcvar=\"jnet_enable\"",
        "load_rc_config $name",
        "run_rc_command \"$1\"",
    ] {
        assert!(s.lines().any(|l| l == line), "files/jnet.in lacks the line {line:?}");
    }
}

/// Just enough of rc.subr for the script's own functions to run: rc.conf
/// loading from $RC_CONF, checkyesno, startmsg, reverse_list and a
/// run_rc_command that dispatches to ${cmd}_cmd (with the quiet prefix).
const RC_SUBR_STUB: &str = r#"
load_rc_config() { [ -n "$RC_CONF" ] && . "$RC_CONF"; }
checkyesno() { eval _v=\$$1; case $_v in [Yy][Ee][Ss]) return 0;; *) return 1;; esac; }
startmsg() { echo "$@"; }
reverse_list() { _r=; for _f; do _r="$_f $_r"; done; echo $_r; }
run_rc_command() {
	_arg=${1#quiet}
	checkyesno $rcvar || { echo "disabled"; return 0; }
	eval _cmd=\$${_arg}_cmd
	[ -n "$_cmd" ] || { echo "unknown $_arg"; return 1; }
	$_cmd
}
"#;

struct RcRun {
    status: i32,
    calls: Vec<String>,
}

fn run_rc(cmd: &str, rc_conf: &str, fake_jnet_exit: i32) -> RcRun {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("calls");
    let fake = d.join("jnet");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexit {fake_jnet_exit}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(d.join("rc.subr"), RC_SUBR_STUB).unwrap();
    std::fs::write(
        d.join("rc.conf"),
        format!("jnet_program='{}'\n{rc_conf}", fake.display()),
    )
    .unwrap();
    let script = rc_script("/usr/local").replace(". /etc/rc.subr", &format!(". '{}'", d.join("rc.subr").display()));
    std::fs::write(d.join("rc.jnet"), script).unwrap();
    let o = Command::new("sh")
        .arg(d.join("rc.jnet"))
        .arg(cmd)
        .env("RC_CONF", d.join("rc.conf"))
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    RcRun {
        status: o.status.code().unwrap_or(-1),
        calls: calls.lines().map(String::from).collect(),
    }
}

#[test]
fn rc_start_restores_anchors_then_starts_listed_jails_and_stop_reverses() {
    let conf = "jnet_enable=YES\njnet_config=/etc/j.toml\njnet_jails='www db'\n";
    let cfg = "-c /etc/j.toml";
    let r = run_rc("start", conf, 0);
    assert_eq!(r.status, 0);
    assert_eq!(
        r.calls,
        [format!("{cfg} pf reload --all"), format!("{cfg} start www db")]
    );
    let r = run_rc("stop", conf, 0);
    assert_eq!(r.calls, [format!("{cfg} stop db www")]);
    // ALL: every jail of the inventory, jnet orders them.
    let all = "jnet_enable=YES\njnet_config=/etc/j.toml\njnet_jails=ALL\n";
    let r = run_rc("start", all, 0);
    assert_eq!(
        (r.status, r.calls),
        (0, vec![format!("{cfg} pf reload --all"), format!("{cfg} start --all")])
    );
    let r = run_rc("stop", all, 0);
    assert_eq!((r.status, r.calls), (0, vec![format!("{cfg} stop --all")]));
    // A failing start fails the rc command.
    assert_ne!(run_rc("start", all, 70).status, 0);
    // The hook for rc.d/pf's *_postcmd.
    let r = run_rc("quietreload", conf, 0);
    assert_eq!((r.status, r.calls), (0, vec![format!("{cfg} pf reload --all")]));
}

#[test]
fn rc_defaults_and_failures() {
    // Default config path, no jails: start only restores anchors.
    let r = run_rc("start", "jnet_enable=YES\n", 0);
    assert_eq!(r.calls, ["-c /usr/local/etc/jnet/jnet.toml pf reload --all"]);
    // Disabled: nothing runs.
    assert!(run_rc("start", "", 0).calls.is_empty());
    // A failing reload fails the start and starts no jail.
    let r = run_rc("start", "jnet_enable=YES\njnet_jails=www\n", 69);
    assert_ne!(r.status, 0);
    assert_eq!(r.calls.len(), 1, "{:?}", r.calls);
}

#[test]
fn sample_config_is_a_valid_jnet_toml() {
    let p = port().join("files/jnet.toml.sample");
    let c = jnet::core::config::parse_config(&p.display().to_string(), &read(&p)).unwrap_or_else(|e| panic!("{e}"));
    // An installed sample names absolute FreeBSD paths, not the example's
    // checkout-relative ones.
    assert_eq!(c.host.state_dir.as_deref(), Some(Path::new("/var/db/jnet")));
    assert_eq!(c.host.jail_conf.as_deref(), Some(Path::new("/etc/jail.conf")));
    for j in ["www", "ghost", "db"] {
        assert!(c.jails.keys().any(|k| k.as_str() == j), "walk-through jail {j} missing");
    }
}

fn make_var(text: &str, var: &str) -> Option<String> {
    // A make(1) assignment `VAR=<tab>value`, with `\` continuations.
    let mut lines = text.lines();
    let first = lines.find_map(|l| l.strip_prefix(&format!("{var}=")))?;
    let mut value = first.trim().to_string();
    while value.ends_with('\\') {
        value.pop();
        value.push(' ');
        value.push_str(lines.next().unwrap_or("").trim());
    }
    Some(value.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[test]
fn port_makefile_matches_the_crate() {
    let mk = read(&port().join("Makefile"));
    assert_eq!(make_var(&mk, "PORTNAME").as_deref(), Some("jnet"));
    assert_eq!(make_var(&mk, "DISTVERSION").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(make_var(&mk, "LICENSE").as_deref(), Some("BSD2CLAUSE"));
    assert_eq!(env!("CARGO_PKG_LICENSE"), "BSD-2-Clause");
    assert!(make_var(&mk, "USES").is_some_and(|u| u.split(' ').any(|w| w == "cargo")));
    assert_eq!(make_var(&mk, "USE_RC_SUBR").as_deref(), Some("jnet"));
    assert!(make_var(&mk, "CATEGORIES").is_some() && make_var(&mk, "COMMENT").is_some());
    assert!(
        mk.contains("cargo-crates"),
        "Makefile must say how to regenerate CARGO_CRATES"
    );
}

#[test]
fn cargo_crates_match_cargo_lock() {
    let lock = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"));
    let mut want = BTreeSet::new();
    for pkg in lock.split("[[package]]").skip(1) {
        let field = |k: &str| {
            pkg.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if field("source").is_some_and(|s| s.starts_with("registry+")) {
            want.insert(format!("{}-{}", field("name").unwrap(), field("version").unwrap()));
        }
    }
    let have: BTreeSet<String> = make_var(&read(&port().join("Makefile.crates")), "CARGO_CRATES")
        .expect("Makefile.crates sets CARGO_CRATES")
        .split(' ')
        .map(String::from)
        .collect();
    let missing: Vec<_> = want.difference(&have).collect();
    let extra: Vec<_> = have.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "packaging/freebsd/Makefile.crates is stale (run `make cargo-crates`): missing {missing:?}, extra {extra:?}"
    );
}

#[test]
fn plist_names_what_the_port_installs() {
    let plist = read(&port().join("pkg-plist"));
    let entries: Vec<&str> = plist.lines().filter(|l| !l.trim().is_empty()).collect();
    for want in [
        "sbin/jnet",
        "@sample %%ETCDIR%%/jnet.toml.sample",
        "share/man/man8/jnet.8.gz",
        "share/man/man5/jnet.toml.5.gz",
        "share/bash-completion/completions/jnet",
        "share/zsh/site-functions/_jnet",
        "share/fish/vendor_completions.d/jnet.fish",
    ] {
        assert!(entries.contains(&want), "pkg-plist lacks {want}");
    }
    // USE_RC_SUBR adds etc/rc.d/jnet itself; listing it too is an error.
    assert!(!entries.iter().any(|e| e.contains("rc.d")));
    // What the plist names from the source tree exists there.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["man/jnet.8", "man/jnet.toml.5"] {
        assert!(root.join(f).is_file(), "{f} missing");
    }
    assert!(port().join("files/jnet.toml.sample").is_file());
}
