//! [`Snapshot`]: a [`Host`] that observes the real one once per command.
//!
//! Commands that look at many jails (`jnet plan` of every jail) ask the
//! host the same questions for each jail: which jails run, which addresses
//! the interfaces hold, which firewall rules are loaded. The snapshot asks
//! each once, on first use, and answers every later call from its copy: one
//! listing of addresses, one of running jails, one of listeners per set of
//! jails, one listing of the firewall ruleset ([`Host::all_loaded_rules`])
//! instead of one per jail. It is for commands that only observe: calls
//! that change the host are passed through unchanged and do not refresh
//! the copy, so a command that changes the host must not use a snapshot
//! for what it reads afterwards. Failures are not kept: a failed
//! observation is asked again next time (and fails again, normally).

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::core::listeners::{ForeignRedirect, Listener};
use crate::core::names::JailName;
use crate::os::exec::ExecOptions;
use crate::os::mount::MountEntry;
use crate::os::{Host, IfAddr, JailNetwork, JailSpec, OsError, RunningJail};

/// Counts of the observations that reached the real host, for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub interface_addresses: usize,
    pub running_jails: usize,
    pub rule_listings: usize,
}

/// A once-per-command view of `inner`; see the module documentation.
pub struct Snapshot<'a> {
    inner: &'a dyn Host,
    addresses: RefCell<Option<Vec<IfAddr>>>,
    running: RefCell<Option<Vec<RunningJail>>>,
    listeners: RefCell<Vec<(Vec<JailName>, Vec<Listener>)>>,
    foreign: RefCell<BTreeMap<String, Vec<ForeignRedirect>>>,
    /// Per anchor root: every jail's loaded rules, or None when the host
    /// cannot list them at once (then asked per jail, each kept).
    rules: RefCell<BTreeMap<String, Option<BTreeMap<String, String>>>>,
    per_jail: RefCell<BTreeMap<(String, String), Option<String>>>,
    asked: RefCell<Asked>,
}

impl<'a> Snapshot<'a> {
    pub fn new(inner: &'a dyn Host) -> Self {
        Snapshot {
            inner,
            addresses: RefCell::default(),
            running: RefCell::default(),
            listeners: RefCell::default(),
            foreign: RefCell::default(),
            rules: RefCell::default(),
            per_jail: RefCell::default(),
            asked: RefCell::default(),
        }
    }

    /// How often each observation reached the real host.
    pub fn asked(&self) -> Asked {
        *self.asked.borrow()
    }
}

impl Host for Snapshot<'_> {
    fn interface_addresses(&self) -> Result<Vec<IfAddr>, OsError> {
        if let Some(a) = self.addresses.borrow().as_ref() {
            return Ok(a.clone());
        }
        self.asked.borrow_mut().interface_addresses += 1;
        let a = self.inner.interface_addresses()?;
        *self.addresses.borrow_mut() = Some(a.clone());
        Ok(a)
    }

    fn listeners(&self, jails: &[JailName]) -> Result<Vec<Listener>, OsError> {
        if let Some((_, l)) = self.listeners.borrow().iter().find(|(j, _)| j == jails) {
            return Ok(l.clone());
        }
        let l = self.inner.listeners(jails)?;
        self.listeners.borrow_mut().push((jails.to_vec(), l.clone()));
        Ok(l)
    }

    fn foreign_redirects(&self, anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError> {
        if let Some(f) = self.foreign.borrow().get(anchor_root) {
            return Ok(f.clone());
        }
        let f = self.inner.foreign_redirects(anchor_root)?;
        self.foreign.borrow_mut().insert(anchor_root.to_string(), f.clone());
        Ok(f)
    }

    fn attach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        self.inner.attach_network(jail, net)
    }

    fn detach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        self.inner.detach_network(jail, net)
    }

    fn load_rules(&self, anchor_root: &str, jail: &JailName, rules: &str) -> Result<(), OsError> {
        self.inner.load_rules(anchor_root, jail, rules)
    }

    fn flush_rules(&self, anchor_root: &str, jail: &JailName) -> Result<(), OsError> {
        self.inner.flush_rules(anchor_root, jail)
    }

    fn loaded_rules(&self, anchor_root: &str, jail: &JailName) -> Result<Option<String>, OsError> {
        let all = self.all_loaded_rules(anchor_root)?;
        if let Some(all) = all {
            return Ok(all.get(jail.as_str()).cloned());
        }
        let key = (anchor_root.to_string(), jail.to_string());
        if let Some(r) = self.per_jail.borrow().get(&key) {
            return Ok(r.clone());
        }
        let r = self.inner.loaded_rules(anchor_root, jail)?;
        self.per_jail.borrow_mut().insert(key, r.clone());
        Ok(r)
    }

    fn all_loaded_rules(&self, anchor_root: &str) -> Result<Option<BTreeMap<String, String>>, OsError> {
        if let Some(r) = self.rules.borrow().get(anchor_root) {
            return Ok(r.clone());
        }
        self.asked.borrow_mut().rule_listings += 1;
        let r = self.inner.all_loaded_rules(anchor_root)?;
        self.rules.borrow_mut().insert(anchor_root.to_string(), r.clone());
        Ok(r)
    }

    fn missing_firewall_hooks(&self, anchor_root: &str) -> Result<Vec<String>, OsError> {
        self.inner.missing_firewall_hooks(anchor_root)
    }

    fn create_jail(&self, spec: &JailSpec) -> Result<u32, OsError> {
        self.inner.create_jail(spec)
    }

    fn terminate_jail(&self, jail: &JailName, timeout: std::time::Duration) -> Result<bool, OsError> {
        self.inner.terminate_jail(jail, timeout)
    }

    fn remove_jail(&self, jail: &JailName) -> Result<(), OsError> {
        self.inner.remove_jail(jail)
    }

    fn release_persist(&self, jail: &JailName) -> Result<bool, OsError> {
        self.inner.release_persist(jail)
    }

    fn exec_in_jail_with(&self, jail: &JailName, argv: &[String], opts: &ExecOptions) -> Result<i32, OsError> {
        self.inner.exec_in_jail_with(jail, argv, opts)
    }

    fn exec_on_host_with(&self, jail: &str, command: &str, opts: &ExecOptions) -> Result<i32, OsError> {
        self.inner.exec_on_host_with(jail, command, opts)
    }

    fn mount(&self, jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
        self.inner.mount(jail, m)
    }

    fn unmount(&self, jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
        self.inner.unmount(jail, m)
    }

    fn running_jails(&self) -> Result<Vec<RunningJail>, OsError> {
        if let Some(r) = self.running.borrow().as_ref() {
            return Ok(r.clone());
        }
        self.asked.borrow_mut().running_jails += 1;
        let r = self.inner.running_jails()?;
        *self.running.borrow_mut() = Some(r.clone());
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake_host::FakeHost;

    /// Each observation reaches the host once however often it is asked;
    /// rules are asked per jail once when the host cannot list them all.
    #[test]
    fn observes_once_per_command() {
        let fake = FakeHost::new();
        let (a, b) = (JailName::new("a").unwrap(), JailName::new("b").unwrap());
        fake.state.borrow_mut().rules.insert(a.clone(), "rdr a".to_string());
        let snap = Snapshot::new(&fake);
        for _ in 0..3 {
            snap.interface_addresses().unwrap();
            snap.running_jails().unwrap();
            assert_eq!(snap.loaded_rules("jnet", &a).unwrap().as_deref(), Some("rdr a"));
            assert_eq!(snap.loaded_rules("jnet", &b).unwrap(), None);
        }
        assert_eq!(
            snap.asked(),
            Asked {
                interface_addresses: 1,
                running_jails: 1,
                rule_listings: 1
            }
        );
        // Changed after the first look: the snapshot keeps what it saw.
        fake.state.borrow_mut().rules.clear();
        assert_eq!(snap.loaded_rules("jnet", &a).unwrap().as_deref(), Some("rdr a"));
    }
}
