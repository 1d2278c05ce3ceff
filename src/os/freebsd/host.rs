//! [`FreeBsdHost`]: the [`Host`] implementation on FreeBSD, wiring the
//! engine's requests to `jail`, `ifaddr`, `pf` and `listeners`. Compiled on
//! FreeBSD only (it calls the jail(2) and ioctl wrappers of `sys`); it
//! decides nothing the pure modules can decide.

use std::net::IpAddr;

use super::{drivers, ifaddr, jail, listeners, mounts};
use crate::core::listeners::{ForeignRedirect, Listener};
use crate::core::names::JailName;
use crate::os::drivers::{FirewallDriver, Inherit, NetworkDriver};
use crate::os::{ExecOptions, Host, IfAddr, JailNetwork, JailSpec, MountEntry, OsError, RunningJail};

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
    /// `params::conf_requests_persist(params)` is false. Returns
    /// `false` when the jail is not running (F14).
    pub fn clear_persist(&self, name: &JailName) -> Result<bool, OsError> {
        Ok(jail::clear_persist(name)?)
    }
}

impl FreeBsdHost {
    /// The network driver of a jail with network `net` (see `os::drivers`).
    pub fn network_driver(&self, net: &JailNetwork) -> &'static dyn NetworkDriver {
        if net.has_own() {
            &drivers::Alias
        } else {
            &Inherit
        }
    }

    /// The firewall driver: pf.
    pub fn firewall(&self) -> &'static dyn FirewallDriver {
        &drivers::Pf
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
        self.firewall().foreign_redirects(anchor_root)
    }

    fn attach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        self.network_driver(net).attach(jail, net)
    }

    fn detach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        self.network_driver(net).detach(jail, net)
    }

    fn load_rules(&self, anchor_root: &str, jail: &JailName, rules: &str) -> Result<(), OsError> {
        self.firewall().load(anchor_root, jail, rules)
    }

    fn flush_rules(&self, anchor_root: &str, jail: &JailName) -> Result<(), OsError> {
        self.firewall().flush(anchor_root, jail)
    }

    fn loaded_rules(&self, anchor_root: &str, jail: &JailName) -> Result<Option<String>, OsError> {
        self.firewall().loaded(anchor_root, jail)
    }

    fn all_loaded_rules(
        &self,
        anchor_root: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, OsError> {
        self.firewall().all_loaded(anchor_root)
    }

    fn missing_firewall_hooks(&self, anchor_root: &str) -> Result<Vec<String>, OsError> {
        self.firewall().missing_hooks(anchor_root)
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

    fn exec_in_jail_with(&self, name: &JailName, argv: &[String], opts: &ExecOptions) -> Result<i32, OsError> {
        jail::exec_in(name, argv, opts)
    }

    fn exec_on_host_with(&self, jail: &str, command: &str, opts: &ExecOptions) -> Result<i32, OsError> {
        jail::exec_on_host(jail, command, opts)
    }

    fn mount(&self, jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
        mounts::mount(jail, m)
    }

    fn unmount(&self, jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
        mounts::unmount(jail, m)
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
