//! What the engine takes from jail.conf: each jail's IPv4 mode, static
//! addresses and interface (for assignment), and the parameters the
//! lifecycle needs (path, hostname, exec.* lists, allow.*), reduced from the
//! full parse in `core::jailconf`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::core::plan::ExecHooks;

/// One jail of jail.conf as far as jnet is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfJail {
    pub name: String,
    /// `file:line` of the jail's block.
    pub location: String,
    /// `ip4 = inherit`.
    pub inherit: bool,
    /// Addresses from `ip4.addr` (with their `iface|` prefix when given).
    pub addrs: Vec<(Option<String>, Ipv4Addr)>,
    /// The `interface` parameter.
    pub interface: Option<String>,
    /// `path` (None: `/`).
    pub path: Option<PathBuf>,
    /// `host.hostname`.
    pub hostname: Option<String>,
    /// `exec.prestart`, `exec.start`, ... in jail.conf order (`+=` appends).
    pub exec: ExecHooks,
    /// `stop.timeout` in seconds (None: jail(8)'s default).
    pub stop_timeout: Option<std::time::Duration>,
    /// Parameters jail(8) would act on that jnet cannot honour, each with
    /// its `file:line`; a start of this jail is refused while any is set.
    pub unsupported: Vec<(String, String)>,
    /// `persist` (jail(8): keep the jail when its last process exits).
    pub persist: bool,
    /// Other jail(2) parameters jnet passes through (`allow.*`, ...), as
    /// `name=value` pairs; boolean parameters set without a value are
    /// `("allow.raw_sockets", "true")`.
    pub params: Vec<(String, String)>,
}

/// Reads jail.conf at `path` (with its includes) and reduces each jail.
/// Errors name file:line (syntax: file:line:column).
pub fn read(path: &std::path::Path) -> crate::error::Result<Vec<ConfJail>> {
    use crate::core::jailconf::{self, Ip4Mode};
    let conf = jailconf::load(&path.display().to_string(), &crate::engine::jailconf_fs::FsLoader)?;
    conf.jails()
        .iter()
        .map(|j| {
            let mode = j.ip4_mode()?;
            let addrs = j.ip4_addrs()?.into_iter().map(|e| (e.interface, e.address)).collect();
            Ok(ConfJail {
                name: j.name.clone(),
                location: j.location.to_string(),
                inherit: mode == Some(Ip4Mode::Inherit),
                addrs,
                interface: j.interface().map(str::to_string),
                path: j.path().map(PathBuf::from),
                hostname: j.hostname().map(str::to_string),
                stop_timeout: stop_timeout(j)?,
                unsupported: unsupported(j),
                persist: j.get_bool("persist").unwrap_or(false),
                exec: ExecHooks {
                    prepare: j.exec("prepare"),
                    prestart: j.exec("prestart"),
                    created: j.exec("created"),
                    start: j.exec("start"),
                    poststart: j.exec("poststart"),
                    prestop: j.exec("prestop"),
                    stop: j.exec("stop"),
                    poststop: j.exec("poststop"),
                    release: j.exec("release"),
                },
                params: passthrough_params(j),
            })
        })
        .collect()
}

/// jail.conf parameters jail(8) acts on that jnet's lifecycle does not do
/// (usr.sbin/jail/command.c `run_command`, FreeBSD main 2022-07 e7646b05:
/// exec.clean/exec.jail_user/exec.system_user 655-657 and 741-775,
/// exec.fib 711-739, exec.consolelog and exec.timeout; mounts 467-595;
/// `command` is jail(8)'s own `exec.start` override, and `depend` starts
/// other jails first, which a one-jail `jnet start` does not). Starting
/// without them would give the jail a different life than `service jail
/// start` does, so a start is refused instead of ignoring them (F9).
const UNSUPPORTED: &[&str] = &[
    "exec.clean",
    "exec.jail_user",
    "exec.system_jail_user",
    "exec.system_user",
    "exec.fib",
    "exec.consolelog",
    "exec.timeout",
    "mount",
    "mount.fstab",
    "mount.devfs",
    "mount.fdescfs",
    "mount.procfs",
    "command",
];

fn unsupported(j: &crate::core::jailconf::JailDef) -> Vec<(String, String)> {
    use crate::core::jailconf::Value;
    let mut out: Vec<(String, String)> = j
        .params
        .iter()
        .filter(|(k, v)| {
            UNSUPPORTED.contains(&k.as_str()) && !matches!(v, Value::Bool(false)) && j.get_bool(k) != Some(false)
        })
        .map(|(k, _)| {
            let at = j
                .param_location(k)
                .map(|l| l.to_string())
                .unwrap_or_else(|| j.location.to_string());
            (k.clone(), at)
        })
        .collect();
    out.sort();
    out
}

/// `stop.timeout`: whole seconds, as jail(8) reads it with strtol
/// (command.c `term_procs`); 0 means "do not wait".
fn stop_timeout(j: &crate::core::jailconf::JailDef) -> crate::error::Result<Option<std::time::Duration>> {
    let Some(v) = j.get_str("stop.timeout") else {
        return Ok(None);
    };
    match v.trim().parse::<u32>() {
        Ok(n) => Ok(Some(std::time::Duration::from_secs(u64::from(n)))),
        Err(_) => {
            let at = j
                .param_location("stop.timeout")
                .map(|l| l.to_string())
                .unwrap_or_else(|| j.location.to_string());
            Err(crate::error::Error::data(format!(
                "{at}: jail {}: stop.timeout {v:?} is not a whole number of seconds",
                j.name
            )))
        }
    }
}

/// jail(2) parameters jnet hands to the kernel as jail(8) would: `allow.*`
/// and a few scalar limits. Everything else in jail.conf (exec.*, mount.*,
/// ip4*, interface, path, host.hostname) jnet handles itself or leaves to
/// jail(8); the FreeBSD adapter validates names and values again.
fn passthrough_params(j: &crate::core::jailconf::JailDef) -> Vec<(String, String)> {
    use crate::core::jailconf::Value;
    // why ip6*: jail.conf's IPv6 settings reach jail_set as jail(8) passes
    // them; without them a jail loses IPv6 (finding F10).
    const SCALARS: &[&str] = &[
        "enforce_statfs",
        "securelevel",
        "children.max",
        "devfs_ruleset",
        "ip6",
        "ip6.addr",
        "ip6.saddrsel",
    ];
    j.params
        .iter()
        .filter(|(k, _)| k.starts_with("allow.") || SCALARS.contains(&k.as_str()))
        .filter_map(|(k, v)| match v {
            Value::Bool(b) => Some((k.clone(), b.to_string())),
            Value::Str(s) => Some((k.clone(), s.clone())),
            // A list parameter (ip6.addr) as libjail's comma-separated form.
            Value::List(l) if k == "ip6.addr" => Some((k.clone(), l.join(", "))),
            Value::List(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_jails() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("jail.conf");
        std::fs::write(
            &p,
            "interface = em0;\nwww { ip4 = inherit; }\ndb { ip4.addr = \"lo1|10.66.0.5/24\", 10.66.0.6; }\nv { vnet; }\n",
        )
        .unwrap();
        let j = read(&p).unwrap();
        assert_eq!(j.len(), 3);
        assert!(j[0].inherit && j[0].addrs.is_empty());
        assert_eq!(
            j[1].addrs,
            vec![
                (Some("lo1".into()), "10.66.0.5".parse().unwrap()),
                (Some("em0".into()), "10.66.0.6".parse().unwrap())
            ]
        );
        assert_eq!(j[1].location, format!("{}:3", p.display()));
        assert!(!j[2].inherit && j[2].addrs.is_empty());
        assert!(j[0].unsupported.is_empty() && j[0].stop_timeout.is_none());
        std::fs::write(&p, "w { ip6 = new; ip6.addr = 2001:db8::5, 2001:db8::6; }\n").unwrap();
        let w = &read(&p).unwrap()[0];
        assert_eq!(
            w.params,
            [
                ("ip6".to_string(), "new".to_string()),
                ("ip6.addr".to_string(), "2001:db8::5, 2001:db8::6".to_string())
            ]
        );
        std::fs::write(&p, "www { ip4.addr = ; }\n").unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.to_string().contains("jail.conf:1"), "{e}");
    }

    #[test]
    fn hooks_stop_timeout_and_unsupported_parameters() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("jail.conf");
        std::fs::write(
            &p,
            "w {\n exec.prepare = \"zfs mount z/w\";\n exec.created = \"logger c\";\n exec.release = \"zfs umount z/w\";\n stop.timeout = 3;\n mount.devfs;\n exec.jail_user = www;\n exec.clean = false;\n}\n",
        )
        .unwrap();
        let j = &read(&p).unwrap()[0];
        assert_eq!(j.exec.prepare, ["zfs mount z/w"]);
        assert_eq!(j.exec.created, ["logger c"]);
        assert_eq!(j.exec.release, ["zfs umount z/w"]);
        assert_eq!(j.stop_timeout, Some(std::time::Duration::from_secs(3)));
        let names: Vec<&str> = j.unsupported.iter().map(|(k, _)| k.as_str()).collect();
        // exec.clean = false asks for nothing jnet does not already do.
        assert_eq!(names, ["exec.jail_user", "mount.devfs"]);
        assert!(j.unsupported[1].1.ends_with("jail.conf:6"), "{:?}", j.unsupported);
        std::fs::write(&p, "w { stop.timeout = soon; }\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("stop.timeout") && e.contains("jail w"), "{e}");
    }
}
