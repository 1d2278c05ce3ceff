//! FreeBSD host adapter: jail(2) jails, IPv4 interface aliases (netintro(4)
//! ioctls), pf anchors through pfctl(8), listeners through sockstat(1).
//!
//! The pure parts are compiled on every platform so their unit tests run
//! on Linux: `params` (jail parameter types and encoding), `iov` (the
//! jail_set/jail_get iovec), `ifreq` (ioctl layouts and the alias plan),
//! `pfctl` (pfctl arguments and listing decoders), `sockstat` (sockstat
//! arguments and listener attribution). `pf`, `listeners` and `mounts` only
//! run commands through the runner and compile everywhere too. What calls
//! FreeBSD-only libc — `sys` (every `unsafe`), `jail`, `ifaddr` and
//! [`FreeBsdHost`] in `host` — is compiled on FreeBSD only and
//! type-checked in CI. jail(8)'s exec.* settings are applied in `jail`
//! (with `os::exec`), its mount.* parameters in `mounts`; the engine
//! decides when. Not handled here: VNET jails, IPv6 aliases.

pub mod drivers;
pub mod ifreq;
pub mod iov;
pub mod listeners;
pub mod mounts;
pub mod params;
pub mod pf;
pub mod pfctl;
pub mod sockstat;

#[cfg(target_os = "freebsd")]
mod host;
#[cfg(target_os = "freebsd")]
pub mod ifaddr;
#[cfg(target_os = "freebsd")]
pub mod jail;
#[cfg(target_os = "freebsd")]
pub mod sys;

#[cfg(target_os = "freebsd")]
pub use host::FreeBsdHost;

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::os::OsError;

/// Why a request could not be turned into kernel or pfctl input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("jail {jail}: parameter {name:?}: {reason}")]
    Param { jail: String, name: String, reason: String },
    #[error("jail {jail}: parameter {name} = {value:?}: {reason}")]
    Value {
        jail: String,
        name: String,
        value: String,
        reason: String,
    },
    #[error("jail {jail}: path {path:?}: {reason}")]
    Path {
        jail: String,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("interface {interface}: address {address}/{prefix}: {reason}")]
    Alias {
        interface: String,
        address: Ipv4Addr,
        prefix: u8,
        reason: String,
    },
    #[error("pf anchor root {root:?}: {reason}")]
    Anchor { root: String, reason: &'static str },
}

/// A failure of a FreeBSD syscall or ioctl, naming what it acted on.
#[derive(Debug, thiserror::Error)]
pub enum FreeBsdError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A jail syscall failed; `message` is the kernel's errmsg when given.
    #[error("{op} jail {jail}: {}", detail(message, *errno))]
    Jail {
        op: &'static str,
        jail: String,
        message: Option<String>,
        errno: Errno,
    },
    #[error("exec in jail {jail}: {reason}")]
    Exec { jail: String, reason: String },
    #[error("{op} address {address} on interface {interface}: {}", errno.desc())]
    Alias {
        op: &'static str,
        interface: String,
        address: std::net::IpAddr,
        errno: Errno,
    },
    /// An IPv6 alias request jnet refuses before any ioctl (see
    /// `ifreq::plan_alias6`).
    #[error("{0}")]
    Alias6Plan(String),
    #[error("getifaddrs: {}", .0.desc())]
    IfAddrs(Errno),
}

fn detail(message: &Option<String>, errno: Errno) -> String {
    match message {
        Some(m) => format!("{m} ({})", errno.desc()),
        None => errno.desc().to_string(),
    }
}

impl From<FreeBsdError> for OsError {
    fn from(e: FreeBsdError) -> OsError {
        // why: OsError::Sys keeps the errno's io::ErrorKind so EPERM maps
        // to the "run as root" exit code; the message carries the context.
        let kind = match &e {
            FreeBsdError::Jail { errno, .. } | FreeBsdError::Alias { errno, .. } | FreeBsdError::IfAddrs(errno) => {
                io::Error::from_raw_os_error(*errno as i32).kind()
            }
            FreeBsdError::Plan(_) | FreeBsdError::Exec { .. } | FreeBsdError::Alias6Plan(_) => {
                io::ErrorKind::InvalidInput
            }
        };
        let op = match &e {
            FreeBsdError::Jail { .. } | FreeBsdError::Exec { .. } => "jail",
            FreeBsdError::Alias { .. } | FreeBsdError::IfAddrs(_) => "interface address",
            FreeBsdError::Plan(_) | FreeBsdError::Alias6Plan(_) => "invalid request",
        };
        OsError::Sys {
            op: op.to_string(),
            source: io::Error::new(kind, e.to_string()),
        }
    }
}

pub(crate) fn plan_err(e: PlanError) -> OsError {
    FreeBsdError::Plan(e).into()
}

/// An argument vector from string literals.
fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Shared fixtures of the pure modules' tests.
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    use super::params::Param;
    use crate::core::names::{IfName, JailName};
    use crate::os::{JailNetwork, JailSpec};

    pub fn jn(s: &str) -> JailName {
        JailName::new(s).unwrap()
    }
    pub fn ifn(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }
    pub fn spec(network: JailNetwork, params: &[(&str, &str)]) -> JailSpec {
        JailSpec {
            name: jn("www"),
            path: PathBuf::from("/usr/jails/www"),
            hostname: Some("www.example.org".into()),
            network,
            params: params.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }
    pub fn dedicated() -> JailNetwork {
        JailNetwork::inet_only(crate::os::OwnAddress {
            address: Ipv4Addr::new(10, 0, 0, 5),
            prefix: 24,
            interface: ifn("vtnet0"),
            gateway: None,
        })
    }
    pub fn names(ps: &[Param]) -> Vec<&str> {
        ps.iter().map(Param::name).collect()
    }
}
