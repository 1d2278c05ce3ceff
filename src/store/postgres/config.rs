//! The `[store]` table of jnet.toml: which backend keeps the leases, and
//! for PostgreSQL where the server is, where the password is, and which
//! host this is. Parsing and validation only; reading the password file
//! happens at connect time ([`StoreConfig::pg_config`]), so a config
//! check never needs the secret.
//!
//! TLS: a URL with `sslmode=require` connects through rustls and always
//! verifies the server's certificate chain and name (what libpq calls
//! verify-full), against `ca_file` or the system's trust store; without
//! it the connection is in clear (`prefer` is taken as `disable`: jnet
//! never tries TLS it was not asked for, and never falls back from TLS it
//! was asked for).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::error::{PgError, PgErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The journaled file under the state directory (one host).
    #[default]
    File,
    /// Leases shared by a fleet in a PostgreSQL database.
    Postgres,
}

/// The connection string as written; its Debug and Display never show it
/// (it may hold a password), only [`StoreConfig::describe`] is printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretUrl(<redacted>)")
    }
}

/// Session limits set on every connection (milliseconds). Why each:
/// `lock_timeout` bounds the wait for the pool row another host holds
/// (exit 75 instead of hanging), `statement_timeout` bounds any one
/// statement, and `idle_in_transaction_session_timeout` makes the server
/// end a session whose client stopped mid-transaction (hung, stopped with
/// SIGSTOP), rolling back its partial lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect_ms: u64,
    pub lock_ms: u64,
    pub statement_ms: u64,
    pub idle_in_transaction_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 5_000,
            lock_ms: 5_000,
            statement_ms: 30_000,
            idle_in_transaction_ms: 30_000,
        }
    }
}

/// `[store]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub backend: BackendKind,
    /// libpq key=value string or `postgresql://` URL; required for postgres.
    pub url: Option<SecretUrl>,
    pub password_file: Option<PathBuf>,
    /// PEM certificates of the CAs to trust for TLS instead of the
    /// system's.
    pub ca_file: Option<PathBuf>,
    /// This host's name in the shared leases; default the host name.
    pub host_id: String,
    pub timeouts: Timeouts,
    /// Reports flag a host not seen for longer than this (seconds).
    pub stale_after_secs: u64,
}

const KEYS: &[&str] = &[
    "backend",
    "url",
    "password_file",
    "ca_file",
    "host_id",
    "connect_timeout_ms",
    "lock_timeout_ms",
    "statement_timeout_ms",
    "idle_in_transaction_timeout_ms",
    "stale_after_secs",
];

fn cfg_err(file: &str, msg: impl fmt::Display) -> PgError {
    PgError::new(PgErrorKind::Config, format!("{file}: [store]: {msg}"), None)
}

/// A host id: what `hostname` gives on a sane system, 1 to 253 characters
/// of letters, digits, `.`, `-` and `_`; it is stored and compared as is.
pub fn valid_host_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn default_host_id() -> Option<String> {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    {
        nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok())
    }
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    {
        None
    }
}

impl StoreConfig {
    /// The `[store]` table of a whole jnet.toml (`file` names it in
    /// messages); no table means the file backend.
    pub fn parse(file: &str, text: &str) -> Result<Self, PgError> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| cfg_err(file, e.message()))?;
        match doc.get("store") {
            None => Self::from_table(file, &toml::Table::new()),
            Some(toml::Value::Table(t)) => Self::from_table(file, t),
            Some(_) => Err(cfg_err(file, "must be a table")),
        }
    }

    pub fn from_table(file: &str, t: &toml::Table) -> Result<Self, PgError> {
        if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
            let known: Vec<String> = KEYS.iter().map(|k| format!("`{k}`")).collect();
            return Err(cfg_err(
                file,
                format!("unknown key {k:?}, expected one of {}", known.join(", ")),
            ));
        }
        let string = |k: &str| -> Result<Option<String>, PgError> {
            match t.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(cfg_err(file, format!("{k} must be a string"))),
            }
        };
        let ms = |k: &str, default: u64| -> Result<u64, PgError> {
            match t.get(k) {
                None => Ok(default),
                Some(toml::Value::Integer(n)) if (1..=3_600_000).contains(n) => Ok(*n as u64),
                Some(_) => Err(cfg_err(
                    file,
                    format!("{k} must be an integer from 1 to 3600000 (milliseconds)"),
                )),
            }
        };
        let backend = match string("backend")?.as_deref() {
            None | Some("file") => BackendKind::File,
            Some("postgres") => BackendKind::Postgres,
            Some(other) => {
                return Err(cfg_err(
                    file,
                    format!("backend {other:?} is not \"file\" or \"postgres\""),
                ))
            }
        };
        let url = string("url")?.map(SecretUrl);
        let password_file = string("password_file")?.map(PathBuf::from);
        let ca_file = string("ca_file")?.map(PathBuf::from);
        for (k, p) in [("password_file", &password_file), ("ca_file", &ca_file)] {
            if let Some(p) = p {
                if !p.is_absolute() {
                    return Err(cfg_err(file, format!("{k} {} must be an absolute path", p.display())));
                }
            }
        }
        let explicit = string("host_id")?;
        let host_id = match (&explicit, backend) {
            (Some(h), _) => h.clone(),
            (None, BackendKind::Postgres) => {
                default_host_id().ok_or_else(|| cfg_err(file, "host_id is not set and the host name is unknown"))?
            }
            // why: the file backend never uses it; an odd host name must
            // not make a config without [store] fail.
            (None, BackendKind::File) => String::new(),
        };
        if (explicit.is_some() || backend == BackendKind::Postgres) && !valid_host_id(&host_id) {
            return Err(cfg_err(
                file,
                format!("host_id {host_id:?} must be 1-253 letters, digits, '.', '-' or '_'"),
            ));
        }
        let d = Timeouts::default();
        let timeouts = Timeouts {
            connect_ms: ms("connect_timeout_ms", d.connect_ms)?,
            lock_ms: ms("lock_timeout_ms", d.lock_ms)?,
            statement_ms: ms("statement_timeout_ms", d.statement_ms)?,
            idle_in_transaction_ms: ms("idle_in_transaction_timeout_ms", d.idle_in_transaction_ms)?,
        };
        let stale_after_secs = match t.get("stale_after_secs") {
            None => 86_400,
            Some(toml::Value::Integer(n)) if (1..=315_360_000).contains(n) => *n as u64,
            Some(_) => {
                return Err(cfg_err(
                    file,
                    "stale_after_secs must be an integer from 1 to 315360000 (seconds)",
                ))
            }
        };
        let c = StoreConfig {
            backend,
            url,
            password_file,
            ca_file,
            host_id,
            timeouts,
            stale_after_secs,
        };
        if backend == BackendKind::Postgres {
            let Some(url) = &c.url else {
                return Err(cfg_err(file, "backend \"postgres\" needs url"));
            };
            // why: the driver's parse error may quote the string; say only
            // that it is invalid.
            let pc = postgres::Config::from_str(url.expose()).map_err(|_| {
                cfg_err(
                    file,
                    "url is not a valid key=value connection string or postgresql:// URL",
                )
            })?;
            let tcp = pc
                .get_hosts()
                .iter()
                .any(|h| matches!(h, postgres::config::Host::Tcp(_)));
            if matches!(pc.get_ssl_mode(), postgres::config::SslMode::Require) && !tcp {
                return Err(cfg_err(
                    file,
                    "url asks for TLS (sslmode=require) but names only Unix sockets, which carry no TLS; \
                     give host=NAME of the database server",
                ));
            }
            if pc.get_hosts().is_empty() {
                return Err(cfg_err(
                    file,
                    "url names no host (host=/var/run/postgresql or host=db.example)",
                ));
            }
        } else if c.url.is_some() || c.password_file.is_some() || c.ca_file.is_some() {
            return Err(cfg_err(
                file,
                "url, password_file and ca_file need backend = \"postgres\"",
            ));
        }
        Ok(c)
    }

    /// "postgres store host=... port=... dbname=... user=...": what messages
    /// name the store by. Built from the parsed fields, never the raw text.
    pub fn describe(&self) -> String {
        let Some(url) = &self.url else {
            return "file store".into();
        };
        match postgres::Config::from_str(url.expose()) {
            Ok(pc) => describe_pg(&pc),
            Err(_) => "postgres store (invalid url)".into(),
        }
    }

    /// The driver's config with the password from `password_file` (first
    /// line, without its newline) and the connect timeout; the password
    /// is also returned so errors can be scrubbed of it.
    pub fn pg_config(&self) -> Result<(postgres::Config, Option<String>), PgError> {
        let url = self
            .url
            .as_ref()
            .ok_or_else(|| cfg_err("jnet.toml", "backend \"postgres\" needs url"))?;
        let mut pc = postgres::Config::from_str(url.expose())
            .map_err(|_| cfg_err("jnet.toml", "url is not a valid connection string"))?;
        if let Some(p) = &self.password_file {
            pc.password(read_password(p)?);
        }
        pc.connect_timeout(Duration::from_millis(self.timeouts.connect_ms));
        if pc.get_application_name().is_none() {
            pc.application_name(&format!("jnet {}", self.host_id));
        }
        let secret = pc.get_password().map(|p| String::from_utf8_lossy(p).into_owned());
        Ok((pc, secret))
    }
}

pub(super) fn describe_pg(pc: &postgres::Config) -> String {
    let hosts: Vec<String> = pc
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    let mut s = format!("postgres store host={}", hosts.join(","));
    if let Some(p) = pc.get_ports().first() {
        s += &format!(" port={p}");
    }
    if let Some(d) = pc.get_dbname() {
        s += &format!(" dbname={d}");
    }
    if let Some(u) = pc.get_user() {
        s += &format!(" user={u}");
    }
    s
}

/// The first line of the password file. Refused when group or others may
/// read it (like libpq's .pgpass) or it is not a regular file.
fn read_password(p: &Path) -> Result<String, PgError> {
    let err = |m: String| PgError::new(PgErrorKind::Config, format!("{}: {m}", p.display()), None);
    let md = std::fs::metadata(p).map_err(|e| err(format!("password_file: {e}")))?;
    if !md.is_file() {
        return Err(err("password_file is not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = md.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "password_file is readable by group or others (mode {:o}); fix: chmod 600 {}",
                mode & 0o777,
                p.display()
            )));
        }
    }
    let text = std::fs::read_to_string(p).map_err(|e| err(format!("password_file: {e}")))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(err("password_file is empty".into()));
    }
    Ok(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StoreConfig, PgError> {
        StoreConfig::parse("jnet.toml", s)
    }

    #[test]
    fn default_is_file() {
        let c = parse("[host]\nexternal_interface=\"em0\"\n").unwrap();
        assert_eq!(c.backend, BackendKind::File);
        assert!(c.url.is_none());
    }

    #[test]
    fn postgres_full() {
        let c = parse(
            "[store]\nbackend=\"postgres\"\nurl=\"host=/var/run/postgresql dbname=jnet user=jnet\"\n\
             password_file=\"/usr/local/etc/jnet/db.pass\"\nhost_id=\"jailhost07\"\nlock_timeout_ms=200\n",
        )
        .unwrap();
        assert_eq!(c.backend, BackendKind::Postgres);
        assert_eq!(c.host_id, "jailhost07");
        assert_eq!(c.timeouts.lock_ms, 200);
        assert_eq!(
            c.describe(),
            "postgres store host=/var/run/postgresql dbname=jnet user=jnet"
        );
    }

    #[test]
    fn refusals_name_the_problem_and_never_the_password() {
        let cases = [
            ("[store]\nbackend=\"etcd\"\n", "backend \"etcd\""),
            ("[store]\nbackend=\"postgres\"\n", "needs url"),
            (
                "[store]\nbackend=\"postgres\"\nurl=\"host=/x\"\nhost_id=\"a b\"\n",
                "host_id \"a b\"",
            ),
            (
                "[store]\nbackend=\"postgres\"\nurl=\"host=/x\"\nfoo=1\n",
                "unknown key \"foo\"",
            ),
            (
                "[store]\nbackend=\"postgres\"\nurl=\"host=/x\"\npassword_file=\"rel\"\n",
                "absolute",
            ),
            ("[store]\nurl=\"host=/x\"\n", "need backend"),
            ("[store]\nca_file=\"/x.pem\"\n", "need backend"),
            (
                "[store]\nbackend=\"postgres\"\nurl=\"host=/x\"\nlock_timeout_ms=0\n",
                "lock_timeout_ms",
            ),
            (
                "[store]\nbackend=\"postgres\"\nurl=\"host=/var/run/postgresql sslmode=require password=Hunter2pw\"\n",
                "only Unix sockets",
            ),
            (
                "[store]\nbackend=\"postgres\"\nurl=\"host=db\"\nca_file=\"ca.pem\"\n",
                "ca_file ca.pem must be an absolute path",
            ),
            (
                "[store]\nbackend=\"postgres\"\nurl=\"host='unterminated password=Hunter2pw\"\n",
                "not a valid",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.message().contains(want), "{text}: {e}");
            assert!(e.message().starts_with("jnet.toml: [store]:"), "{e}");
            assert!(!e.message().contains("Hunter2pw"), "{e}");
            assert_eq!(e.kind(), crate::error::ErrorKind::Config);
        }
    }

    #[test]
    fn tls_is_accepted_for_a_tcp_host() {
        let c = parse(
            "[store]\nbackend=\"postgres\"\nurl=\"host=db.example sslmode=require\"\nca_file=\"/etc/jnet/ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.ca_file.as_deref(), Some(std::path::Path::new("/etc/jnet/ca.pem")));
    }

    #[test]
    fn debug_and_describe_hide_the_password() {
        let c =
            parse("[store]\nbackend=\"postgres\"\nurl=\"postgresql://jnet:Hunter2pw@db.example:5433/jnet\"\n").unwrap();
        assert!(!format!("{c:?}").contains("Hunter2pw"));
        assert_eq!(
            c.describe(),
            "postgres store host=db.example port=5433 dbname=jnet user=jnet"
        );
    }
}
