//! The facts cache `jnet assign` keeps in the state directory
//! (`engine::facts_cache`): a changed jail.conf, include or jnet.toml is
//! never answered from it, errors come back as without it, and a damaged
//! cache is ignored and rebuilt. Pools use TEST-NET-3 (RFC 5737).

use crate::common::binary;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use binary::{jnet, ok};

const CONFIG: &str = "[host]\nexternal_interface = \"eth0\"\nstate_dir = \"state\"\njail_conf = \"jail.conf\"\n\n\
[pools.p]\nnetwork = \"203.0.113.0/24\"\ninterface = \"lo1\"\n\n[jails.a]\npool = \"p\"\nports = [\"tcp/80\"]\n";

fn assign(cfg: &Path, jail: &str) -> String {
    let out = ok(cfg, &["assign", jail, "--pool", "p"]);
    ok(cfg, &["release", jail]);
    out
}

fn cache(dir: &Path) -> std::path::PathBuf {
    dir.join("state/facts-cache")
}

#[test]
fn a_changed_input_is_read_again() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("jnet.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    std::fs::create_dir(d.path().join("jail.conf.d")).unwrap();
    std::fs::write(
        d.path().join("jail.conf"),
        "x { ip4.addr = 203.0.113.1; }\n.include \"jail.conf.d/*.conf\";\n",
    )
    .unwrap();
    // The first run makes the state directory, the second writes the cache.
    assert!(assign(&cfg, "n").contains("203.0.113.2"));
    assert!(assign(&cfg, "n").contains("203.0.113.2"));
    assert!(cache(d.path()).exists());
    assert_eq!(
        std::fs::metadata(cache(d.path())).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(assign(&cfg, "n").contains("203.0.113.2"));

    // A new file matching an include glob.
    std::fs::write(d.path().join("jail.conf.d/y.conf"), "y { ip4.addr = 203.0.113.2; }\n").unwrap();
    assert!(assign(&cfg, "n").contains("203.0.113.3"));
    // An included file changed in place, same size, mtime put back.
    let y = d.path().join("jail.conf.d/y.conf");
    let mtime = std::fs::metadata(&y).unwrap().modified().unwrap();
    std::fs::write(&y, "y { ip4.addr = 203.0.113.3; }\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&y)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert!(assign(&cfg, "n").contains("203.0.113.2"));

    // jnet.toml changed: a pool that starts higher.
    std::fs::write(
        &cfg,
        CONFIG.replace(
            "interface = \"lo1\"",
            "interface = \"lo1\"\nranges = [\"203.0.113.100-203.0.113.200\"]",
        ),
    )
    .unwrap();
    assert!(assign(&cfg, "n").contains("203.0.113.100"));

    // An error in jnet.toml or jail.conf is reported as without a cache.
    std::fs::write(&cfg, CONFIG.replace("ports = [\"tcp/80\"]", "ports = [\"tcp/0\"]")).unwrap();
    let o = jnet(&cfg, &["assign", "n", "--pool", "p"]);
    assert_eq!(o.status.code(), Some(78), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("jnet.toml:12:"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(&cfg, CONFIG).unwrap();
    assert!(assign(&cfg, "n").contains("203.0.113.2"));
    std::fs::write(d.path().join("jail.conf"), "x { ip4.addr = ; }\n").unwrap();
    let o = jnet(&cfg, &["assign", "n", "--pool", "p"]);
    assert_eq!(o.status.code(), Some(78), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("jail.conf:1"));
}

#[test]
fn a_damaged_or_unsafe_cache_is_ignored_and_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("jnet.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    std::fs::write(d.path().join("jail.conf"), "x { ip4.addr = 203.0.113.1; }\n").unwrap();
    assign(&cfg, "n");
    assign(&cfg, "n");
    let c = cache(d.path());
    let good = std::fs::read(&c).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(&c, &bad).unwrap();
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(assign(&cfg, "n").contains("203.0.113.2"));
    assert_eq!(std::fs::read(&c).unwrap(), good, "rebuilt");
    std::fs::write(&c, b"garbage").unwrap();
    assert!(assign(&cfg, "n").contains("203.0.113.2"));
    assert_eq!(std::fs::read(&c).unwrap(), good, "rebuilt");
    // A link in its place is not followed, and replaced.
    std::fs::remove_file(&c).unwrap();
    std::os::unix::fs::symlink(d.path().join("jail.conf"), &c).unwrap();
    assert!(assign(&cfg, "n").contains("203.0.113.2"));
    assert!(!std::fs::symlink_metadata(&c).unwrap().file_type().is_symlink());
    assert_eq!(
        std::fs::read_to_string(d.path().join("jail.conf")).unwrap(),
        "x { ip4.addr = 203.0.113.1; }\n"
    );
}

/// A config with a shared store is never cached: its assign must reach the
/// database every time, and a cached file-store config must never stand in
/// for it (a down server is exit 69 on every run, never a local lease).
#[test]
fn a_shared_store_config_is_never_cached() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("jnet.toml");
    std::fs::write(d.path().join("jail.conf"), "x { ip4.addr = 203.0.113.1; }\n").unwrap();
    let down = d.path().join("no-server");
    std::fs::create_dir(&down).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{CONFIG}\n[store]\nbackend = \"postgres\"\nurl = \"host={} dbname=jnet user=jnet\"\nhost_id = \"h1\"\n",
            down.display()
        ),
    )
    .unwrap();
    for run in 0..3 {
        let o = jnet(&cfg, &["assign", "n", "--pool", "p"]);
        assert_eq!(
            o.status.code(),
            Some(69),
            "run {run}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!cache(d.path()).exists(), "run {run}: a facts cache was written");
    }
    // The same file without [store] is cached as usual.
    std::fs::write(&cfg, CONFIG).unwrap();
    assign(&cfg, "n");
    assign(&cfg, "n");
    assert!(cache(d.path()).exists());
}

/// `jnet pools` also takes its facts from the cache, and `jnet inventory`
/// its jail.conf addresses (issue 10); a jail.conf address added since is
/// counted: never a stale report.
#[test]
fn pools_counts_what_jail_conf_holds_now() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("jnet.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let conf = d.path().join("jail.conf");
    std::fs::write(&conf, "x { ip4.addr = 203.0.113.1; }\n").unwrap();
    let reserved = || -> u64 {
        let out = ok(&cfg, &["pools", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["pools"][0]["reserved"].as_u64().unwrap()
    };
    // The state directory (where the cache lives) is made by a write.
    assign(&cfg, "n");
    let _ = std::fs::remove_file(cache(d.path()));
    assert_eq!(reserved(), 1);
    assert_eq!(reserved(), 1);
    assert!(cache(d.path()).exists(), "pools writes the cache too");
    let inventory_reserved = || -> u64 {
        let out = ok(&cfg, &["inventory", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["pools"][0]["reserved"].as_u64().unwrap()
    };
    assert_eq!(
        inventory_reserved(),
        1,
        "inventory reads the cached jail.conf addresses"
    );
    std::fs::write(&conf, "x { ip4.addr = 203.0.113.1; }\ny { ip4.addr = 203.0.113.9; }\n").unwrap();
    assert_eq!(
        inventory_reserved(),
        2,
        "a changed jail.conf is read again, never the stale cache"
    );
    assert_eq!(reserved(), 2);
    assert_eq!(inventory_reserved(), 2);
    // The config's jails are not needed by pools, but a broken jnet.toml
    // is still reported.
    std::fs::write(&cfg, CONFIG.replace("ports = [\"tcp/80\"]", "ports = [\"tcp/0\"]")).unwrap();
    let o = jnet(&cfg, &["pools"]);
    assert_eq!(o.status.code(), Some(78), "{}", String::from_utf8_lossy(&o.stderr));
}

/// An IPv6 pool comes back from the cache whole: the cached run hands out
/// what the parsing run did (the subnet-router anycast, gateway and
/// exclusions skipped), and a changed exclusion is seen at once.
#[test]
fn ipv6_pools_are_cached_whole() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("jnet.toml");
    let text = |exclude: &str| {
        format!(
            "[host]\nexternal_interface = \"eth0\"\nstate_dir = \"state\"\n\n\
             [pools.v6]\nnetwork = \"2001:db8:77::/64\"\ninterface = \"lo1\"\ngateway = \"2001:db8:77::1\"\n\
             exclude = [\"{exclude}\"]\nnat = true\n"
        )
    };
    std::fs::write(&cfg, text("2001:db8:77::2-2001:db8:77::4")).unwrap();
    let take = || {
        let out = ok(&cfg, &["assign", "n", "--pool", "v6"]);
        ok(&cfg, &["release", "n"]);
        out
    };
    for _ in 0..3 {
        assert!(take().contains("2001:db8:77::5"), "first free after the exclusion");
    }
    assert!(cache(d.path()).exists());
    std::fs::write(&cfg, text("2001:db8:77::2-2001:db8:77::6")).unwrap();
    assert!(take().contains("2001:db8:77::7"));
    assert!(take().contains("2001:db8:77::7"));
    let pools: serde_json::Value = serde_json::from_str(&ok(&cfg, &["pools", "--format", "json"])).unwrap();
    let p = &pools["pools"][0];
    assert_eq!(
        (p["family"].as_str(), p["nat"].as_bool()),
        (Some("inet6"), Some(true)),
        "{p}"
    );
    assert_eq!(
        p["size"], "18446744073709551609",
        "2^64 - 1 - gateway - 5 excluded: {p}"
    );
}
