//! Host adapters: the only place with syscalls, ioctls, netlink and external
//! commands. Traits are at the level of intent; `linux` and `freebsd`
//! implement them, each [`Host`] delegating a jail's network to the network
//! driver of its kind and its rules to the platform's firewall driver
//! (`drivers`).

use crate::error::ErrorKind;

pub mod drivers;
pub mod exec;
pub mod freebsd;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod mount;

/// An OS-level failure, naming the operation and what it acted on.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} {args}: exited with {status}: {stderr}")]
    Command {
        program: String,
        args: String,
        status: String,
        stderr: String,
    },
    #[error("{0}: not available on this host")]
    Missing(String),
    #[error("{0}")]
    Unsupported(String),
    /// A command ran longer than jail.conf's `exec.timeout` and was killed.
    #[error("{command}: still running after {secs} s (exec.timeout); killed")]
    TimedOut { command: String, secs: u64 },
}

impl OsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            OsError::Sys { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                ErrorKind::Permission
            }
            OsError::Command { stderr, .. } if mentions_permission(stderr) => ErrorKind::Permission,
            OsError::Sys { .. } | OsError::Command { .. } | OsError::TimedOut { .. } => ErrorKind::Internal,
            OsError::Missing(_) | OsError::Unsupported(_) => ErrorKind::Unavailable,
        }
    }
}

pub mod runner;

/// Whether a tool's stderr says it lacked privileges (nft, pfctl, ip).
pub fn mentions_permission(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("operation not permitted") || s.contains("permission denied") || s.contains("must be root")
}

use crate::core::listeners::{ForeignRedirect, Listener};
use crate::core::names::JailName;

// why re-exported: the model types live in core (the planner must not
// depend on an adapter); adapters and the engine name them through `os`.
pub use crate::core::model::{
    ExecOptions, FamilyNetwork, IfAddr, JailNetwork, JailSpec, MountEntry, OwnAddress, RunningJail,
};

/// Everything the engine needs from the host, at the level of intent.
/// Implemented by `linux::LinuxHost` and `freebsd::FreeBsdHost`, and by a
/// recording fake in engine tests.
pub trait Host {
    /// Every address on every interface of the host's stack.
    fn interface_addresses(&self) -> Result<Vec<IfAddr>, OsError>;
    /// Listeners of the host stack and of the given running jails' stacks.
    fn listeners(&self, jails: &[JailName]) -> Result<Vec<Listener>, OsError>;
    /// Port redirections on the host that jnet does not own (other anchors,
    /// other nft tables). `anchor_root` is jnet's own anchor/table name.
    fn foreign_redirects(&self, anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError>;

    /// Sets up the network side of a jail (alias, or netns + veth + bridge).
    fn attach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError>;
    /// Undoes `attach_network`; absent pieces are not an error.
    fn detach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError>;

    /// Replaces the jail's firewall rules with `rules` (already rendered for
    /// this platform) atomically, after validating them.
    fn load_rules(&self, anchor_root: &str, jail: &JailName, rules: &str) -> Result<(), OsError>;
    /// Removes the jail's firewall rules; an empty/missing anchor is fine.
    fn flush_rules(&self, anchor_root: &str, jail: &JailName) -> Result<(), OsError>;
    /// The jail's currently loaded rules as the firewall lists them.
    fn loaded_rules(&self, anchor_root: &str, jail: &JailName) -> Result<Option<String>, OsError>;
    /// Every jail's loaded rules under `anchor_root`, keyed by jail name,
    /// each as [`Host::loaded_rules`] would give it, from one listing of the
    /// firewall; jails with none are absent. `Ok(None)` when this host
    /// cannot list them at once (the caller asks per jail).
    fn all_loaded_rules(
        &self,
        _anchor_root: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, OsError> {
        Ok(None)
    }
    /// Lines the main firewall configuration lacks for jnet's rules to be
    /// evaluated (pf.conf anchor hooks); empty when none are needed.
    fn missing_firewall_hooks(&self, _anchor_root: &str) -> Result<Vec<String>, OsError> {
        Ok(vec![])
    }

    fn create_jail(&self, spec: &JailSpec) -> Result<u32, OsError>;
    /// SIGTERM to every process of the jail, then wait up to `timeout` for
    /// them to exit (jail(8)'s stop.timeout); Ok(false) when some are left
    /// (the removal that follows kills them).
    fn terminate_jail(&self, jail: &JailName, timeout: std::time::Duration) -> Result<bool, OsError>;
    fn remove_jail(&self, jail: &JailName) -> Result<(), OsError>;
    /// Lets the jail end with its last process, as jail(8) does after
    /// exec.poststart unless jail.conf asks for `persist`. Ok(false) where
    /// the platform has no such notion (Linux: a namespace jail has no
    /// persist flag; `stop` ends it).
    fn release_persist(&self, _jail: &JailName) -> Result<bool, OsError> {
        Ok(false)
    }
    /// Runs `argv` inside the jail and returns its exit code.
    fn exec_in_jail(&self, jail: &JailName, argv: &[String]) -> Result<i32, OsError> {
        self.exec_in_jail_with(jail, argv, &ExecOptions::default())
    }
    /// Runs a jail.conf `exec.*` host command (`/bin/sh -c`); returns its code.
    fn exec_on_host(&self, command: &str) -> Result<i32, OsError> {
        self.exec_on_host_with("-", command, &ExecOptions::default())
    }
    /// [`Host::exec_in_jail`] with jail.conf's exec.* settings (see
    /// `os::exec`: account, clean environment, consolelog, fib, timeout).
    /// A setting the platform cannot honour is an error naming it and the
    /// jail, before anything runs.
    fn exec_in_jail_with(&self, jail: &JailName, argv: &[String], opts: &ExecOptions) -> Result<i32, OsError>;
    /// [`Host::exec_on_host`] for a hook of `jail` (named in messages), with
    /// its exec.* settings (exec.system_user, exec.clean and exec.timeout
    /// apply to host commands).
    fn exec_on_host_with(&self, jail: &str, command: &str, opts: &ExecOptions) -> Result<i32, OsError>;
    /// Mounts one jail.conf mount (`mount`, `mount.fstab` line,
    /// `mount.devfs`/`fdescfs`/`procfs`) before the jail is created.
    fn mount(&self, jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
        Err(OsError::Unsupported(format!(
            "jail {jail}: {}: mounts are not supported on this platform",
            m.source
        )))
    }
    /// Unmounts what [`Host::mount`] mounted; not mounted is not an error.
    fn unmount(&self, jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
        Err(OsError::Unsupported(format!(
            "jail {jail}: {}: mounts are not supported on this platform",
            m.source
        )))
    }
    fn running_jails(&self) -> Result<Vec<RunningJail>, OsError>;
}

/// Addresses on the interfaces of the stack this process runs in, through
/// getifaddrs(3) (pnet_datalink); the same code serves Linux and FreeBSD.
/// Needs no privileges.
pub fn stack_interface_addresses() -> Vec<IfAddr> {
    pnet_datalink::interfaces()
        .into_iter()
        .flat_map(|i| {
            let name = i.name;
            i.ips.into_iter().map(move |n| IfAddr {
                interface: name.clone(),
                address: n.ip(),
                prefix: n.prefix(),
            })
        })
        .collect()
}
