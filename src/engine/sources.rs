//! Finding and reading the files a user touches: jnet.toml, profiles
//! (shipped ones embedded in the binary, overridable from
//! `<config dir>/profiles/`), and the state directory to use.
//!
//! Parsing and validation are in `core::config`; this module only does the
//! file access and maps failures to exit codes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::core::config::{parse_config, parse_profile, Config, Profile};
use crate::error::{Error, Result};

/// Profiles shipped with jnet (the files in `profiles/`).
const SHIPPED_PROFILES: &[(&str, &str)] = &[
    ("db", include_str!("../../profiles/db.toml")),
    ("dns", include_str!("../../profiles/dns.toml")),
    ("ghost", include_str!("../../profiles/ghost.toml")),
    ("mail", include_str!("../../profiles/mail.toml")),
    ("proxy", include_str!("../../profiles/proxy.toml")),
    ("web", include_str!("../../profiles/web.toml")),
];

/// The config path used when neither `-c` nor `JNET_CONFIG` is given.
pub fn default_config_path() -> PathBuf {
    if cfg!(target_os = "freebsd") {
        PathBuf::from("/usr/local/etc/jnet/jnet.toml")
    } else {
        PathBuf::from("/etc/jnet/jnet.toml")
    }
}

/// The state directory used when neither `--state-dir` nor `host.state_dir`
/// is given.
pub fn default_state_dir() -> PathBuf {
    if cfg!(target_os = "freebsd") {
        PathBuf::from("/var/db/jnet")
    } else {
        PathBuf::from("/var/lib/jnet")
    }
}

/// Reads and validates the config at `path`.
pub fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoInput {
            path: path.to_path_buf(),
            what: "config file",
        },
        _ => Error::io(path, e),
    })?;
    parse_config(&path.display().to_string(), &text).map_err(|e| Error::Config(e.to_string()))
}

/// The directory holding the config file (profiles, templates live there).
pub fn config_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `--state-dir`, else `host.state_dir` (relative to the config directory),
/// else the OS default.
pub fn state_dir(cli: Option<&Path>, config: &Config, config_path: &Path) -> PathBuf {
    if let Some(p) = cli {
        return p.to_path_buf();
    }
    match &config.host.state_dir {
        Some(p) if p.is_relative() => config_dir(config_path).join(p),
        Some(p) => p.clone(),
        None => default_state_dir(),
    }
}

/// `host.jail_conf` resolved against the config directory.
pub fn jail_conf_path(config: &Config, config_path: &Path) -> Option<PathBuf> {
    config.host.jail_conf.as_ref().map(|p| {
        if p.is_relative() {
            config_dir(config_path).join(p)
        } else {
            p.clone()
        }
    })
}

/// Profiles available to a config: files in `<config dir>/profiles/` win
/// over the shipped ones of the same name. Loaded on first use.
#[derive(Debug)]
pub struct Profiles {
    dir: PathBuf,
    cache: std::cell::RefCell<BTreeMap<String, Option<Profile>>>,
}

impl Profiles {
    pub fn new(config_dir: &Path) -> Self {
        Profiles {
            dir: config_dir.join("profiles"),
            cache: Default::default(),
        }
    }

    /// The profile called `name`; `Ok(None)` when it exists nowhere.
    pub fn get(&self, name: &str) -> Result<Option<Profile>> {
        if let Some(p) = self.cache.borrow().get(name) {
            return Ok(p.clone());
        }
        let path = self.dir.join(format!("{name}.toml"));
        let found = match std::fs::read_to_string(&path) {
            Ok(text) => Some((path.display().to_string(), text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SHIPPED_PROFILES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(n, t)| (format!("<shipped profiles/{n}.toml>"), t.to_string())),
            Err(e) => return Err(Error::io(path, e)),
        };
        let profile = match found {
            Some((file, text)) => Some(parse_profile(name, &file, &text).map_err(|e| Error::Config(e.to_string()))?),
            None => None,
        };
        self.cache.borrow_mut().insert(name.to_string(), profile.clone());
        Ok(profile)
    }

    /// Names of every profile available (shipped and local).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = SHIPPED_PROFILES.iter().map(|(n, _)| n.to_string()).collect();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    if let Some(s) = p.file_stem().and_then(|s| s.to_str()) {
                        names.push(s.to_string());
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_parse() {
        let p = Profiles::new(Path::new("/nonexistent"));
        for n in p.names() {
            let prof = p.get(&n).unwrap().unwrap();
            assert!(!prof.settings.ports.is_empty(), "{n}");
        }
        assert!(p.get("nope").unwrap().is_none());
    }

    #[test]
    fn local_profile_overrides_and_errors_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("profiles")).unwrap();
        std::fs::write(d.path().join("profiles/web.toml"), "ports = [\"tcp/8080\"]\n").unwrap();
        std::fs::write(d.path().join("profiles/bad.toml"), "ports = [\"tcp/x\"]\n").unwrap();
        let p = Profiles::new(d.path());
        assert_eq!(p.get("web").unwrap().unwrap().settings.ports[0].to_string(), "tcp/8080");
        let e = p.get("bad").unwrap_err().to_string();
        assert!(e.contains("profiles/bad.toml:1:") && e.contains("tcp/x"), "{e}");
    }
}
