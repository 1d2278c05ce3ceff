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
                exec: ExecHooks {
                    prestart: j.exec("prestart"),
                    start: j.exec("start"),
                    poststart: j.exec("poststart"),
                    prestop: j.exec("prestop"),
                    stop: j.exec("stop"),
                    poststop: j.exec("poststop"),
                },
                params: passthrough_params(j),
            })
        })
        .collect()
}

/// jail(2) parameters jnet hands to the kernel as jail(8) would: `allow.*`
/// and a few scalar limits. Everything else in jail.conf (exec.*, mount.*,
/// ip4*, interface, path, host.hostname) jnet handles itself or leaves to
/// jail(8); the FreeBSD adapter validates names and values again.
fn passthrough_params(j: &crate::core::jailconf::JailDef) -> Vec<(String, String)> {
    use crate::core::jailconf::Value;
    const SCALARS: &[&str] = &["enforce_statfs", "securelevel", "children.max", "devfs_ruleset"];
    j.params
        .iter()
        .filter(|(k, _)| k.starts_with("allow.") || SCALARS.contains(&k.as_str()))
        .filter_map(|(k, v)| match v {
            Value::Bool(b) => Some((k.clone(), b.to_string())),
            Value::Str(s) => Some((k.clone(), s.clone())),
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
        std::fs::write(&p, "www { ip4.addr = ; }\n").unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.to_string().contains("jail.conf:1"), "{e}");
    }
}
