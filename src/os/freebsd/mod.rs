//! FreeBSD host adapter: jail(2) jails, IPv4 interface aliases (netintro(4)
//! ioctls), pf anchors through pfctl(8), listeners through sockstat(1).
//!
//! [`FreeBsdHost`] implements [`Host`]. The pure parts (parameter encoding,
//! iovec building, ioctl layouts, mask choice, pfctl arguments) live in
//! `os::freebsd_plan` and are tested on every platform; this module and its
//! children only run on FreeBSD and are type-checked in CI. All `unsafe` is
//! in `sys`. Not handled here: VNET jails, IPv6 aliases, jail(8)'s mount.*
//! and exec.* pseudo-parameters (the engine runs exec.* hooks through
//! `exec_on_host` / `exec_in_jail`).

pub mod ifaddr;
pub mod jail;
pub mod listeners;
pub mod pf;
pub mod sys;

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use nix::errno::Errno;

use crate::core::listeners::{ForeignRedirect, Listener};
use crate::core::names::JailName;
use crate::os::freebsd_plan::PlanError;
use crate::os::{Host, IfAddr, JailNetwork, JailSpec, OsError, RunningJail};

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
        address: Ipv4Addr,
        errno: Errno,
    },
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
            FreeBsdError::Plan(_) | FreeBsdError::Exec { .. } => io::ErrorKind::InvalidInput,
        };
        let op = match &e {
            FreeBsdError::Jail { .. } | FreeBsdError::Exec { .. } => "jail",
            FreeBsdError::Alias { .. } | FreeBsdError::IfAddrs(_) => "interface address",
            FreeBsdError::Plan(_) => "invalid request",
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

/// The FreeBSD implementation of [`Host`].
#[derive(Debug, Default, Clone)]
pub struct FreeBsdHost {
    /// Userland major release, read once (it selects sockstat's layout).
    userland_major: std::sync::OnceLock<u32>,
}

impl FreeBsdHost {
    pub fn new() -> Self {
        FreeBsdHost::default()
    }

    fn userland_major(&self) -> Result<u32, OsError> {
        if let Some(m) = self.userland_major.get() {
            return Ok(*m);
        }
        let m = listeners::userland_major()?;
        Ok(*self.userland_major.get_or_init(|| m))
    }
}

/// FreeBSD-only operations the engine calls on a `FreeBsdHost` directly.
impl FreeBsdHost {
    /// Host-wide listeners with each running jail's own sockets attributed
    /// to it (`sockstat -j <jid>` per jail). Pass every running jail
    /// (`running_jails()`), not only VNET ones: non-VNET jails share the host
    /// stack, and sockstat's host listing has no jail column (F13).
    pub fn listeners_of_running(&self, running: &[RunningJail]) -> Result<Vec<Listener>, OsError> {
        listeners::listeners_of_running(running, self.userland_major()?)
    }

    /// Clears `persist` on the running jail `name` (JAIL_UPDATE `jid` +
    /// `nopersist`), as jail(8) does after exec.poststart unless jail.conf
    /// set `persist` (usr.sbin/jail/jail.c, FreeBSD main e7646b05
    /// l.726-747). Call it after exec.poststart when
    /// `freebsd_plan::conf_requests_persist(params)` is false. Returns
    /// `false` when the jail is not running (F14).
    pub fn clear_persist(&self, name: &JailName) -> Result<bool, OsError> {
        Ok(jail::clear_persist(name)?)
    }
}

impl Host for FreeBsdHost {
    fn interface_addresses(&self) -> Result<Vec<IfAddr>, OsError> {
        Ok(ifaddr::interface_addresses()?)
    }

    fn listeners(&self, jails: &[JailName]) -> Result<Vec<Listener>, OsError> {
        listeners::listeners(jails, self.userland_major()?)
    }

    fn foreign_redirects(&self, anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError> {
        listeners::foreign_redirects(anchor_root)
    }

    fn attach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        match net {
            JailNetwork::Inherit => Ok(()),
            JailNetwork::Dedicated {
                address,
                prefix,
                interface,
                ..
            } => {
                tracing::debug!(%jail, %address, %interface, "attach network");
                Ok(ifaddr::attach(*address, *prefix, interface)?)
            }
        }
    }

    fn detach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        match net {
            JailNetwork::Inherit => Ok(()),
            JailNetwork::Dedicated { address, interface, .. } => {
                tracing::debug!(%jail, %address, %interface, "detach network");
                Ok(ifaddr::detach(*address, interface)?)
            }
        }
    }

    fn load_rules(&self, anchor_root: &str, jail: &JailName, rules: &str) -> Result<(), OsError> {
        pf::load(anchor_root, jail, rules)
    }

    fn flush_rules(&self, anchor_root: &str, jail: &JailName) -> Result<(), OsError> {
        pf::flush(anchor_root, jail)
    }

    fn loaded_rules(&self, anchor_root: &str, jail: &JailName) -> Result<Option<String>, OsError> {
        pf::loaded(anchor_root, jail)
    }

    fn missing_firewall_hooks(&self, anchor_root: &str) -> Result<Vec<String>, OsError> {
        pf::missing_hooks(anchor_root)
    }

    fn create_jail(&self, spec: &JailSpec) -> Result<u32, OsError> {
        let jid = jail::create(spec)?;
        Ok(u32::try_from(jid).unwrap_or_default())
    }

    fn remove_jail(&self, name: &JailName) -> Result<(), OsError> {
        jail::remove(name)?;
        Ok(())
    }

    fn release_persist(&self, name: &JailName) -> Result<bool, OsError> {
        self.clear_persist(name)
    }

    fn terminate_jail(&self, name: &JailName, timeout: std::time::Duration) -> Result<bool, OsError> {
        Ok(jail::terminate(name, timeout)?)
    }

    fn exec_in_jail(&self, name: &JailName, argv: &[String]) -> Result<i32, OsError> {
        Ok(jail::exec_in(name, argv)?)
    }

    fn exec_on_host(&self, command: &str) -> Result<i32, OsError> {
        use std::os::unix::process::ExitStatusExt;
        // why: the command is a jail.conf exec.* line from a root-owned
        // file and is sh(1) syntax by definition, as jail(8) runs it.
        tracing::debug!(command, "exec on host");
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .status()
            .map_err(|e| OsError::Sys {
                op: format!("/bin/sh -c {command:?}"),
                source: e,
            })?;
        Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }

    fn running_jails(&self) -> Result<Vec<RunningJail>, OsError> {
        Ok(jail::list()?
            .into_iter()
            .map(|j| RunningJail {
                id: u32::try_from(j.jid).unwrap_or_default(),
                name: j.name,
                addresses: j.ip4.into_iter().map(IpAddr::V4).collect(),
                path: j.path,
            })
            .collect())
    }
}
