//! A recording, in-memory [`Host`] for engine tests and benchmarks: it keeps
//! which jails have a network, exist and have rules, records every call in
//! order, and fails the calls a test asks it to.
//!
//! It is test support, passed explicitly to `Lifecycle::new`; nothing in the
//! binary constructs it. It models no real OS behaviour beyond "what was
//! attached/created/loaded is there until detached/removed/flushed".

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use crate::core::listeners::{ForeignRedirect, Listener};
use crate::core::names::JailName;
use crate::os::{ExecOptions, Host, IfAddr, JailNetwork, JailSpec, MountEntry, OsError, RunningJail};

/// What the fake host currently holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeState {
    /// Jails with their network attached, and the address (None: inherit).
    pub networks: BTreeMap<JailName, Option<IpAddr>>,
    /// Created jails and their ids.
    pub jails: BTreeMap<JailName, u32>,
    /// Loaded rules per jail.
    pub rules: BTreeMap<JailName, String>,
    /// Addresses of the host's own interfaces, put there by a test (not by
    /// jnet): what `interface_addresses` reports.
    pub host_addresses: Vec<IfAddr>,
    /// Mounted jail.conf mounts: (jail, mount point).
    pub mounts: BTreeSet<(JailName, PathBuf)>,
}

impl FakeState {
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.jails.is_empty() && self.rules.is_empty() && self.mounts.is_empty()
    }
}

/// The recording fake (see the module doc).
#[derive(Debug, Default)]
pub struct FakeHost {
    pub state: RefCell<FakeState>,
    /// Every call, as `op jail` or `op: command`, in order.
    pub calls: RefCell<Vec<String>>,
    /// Calls (exact recorded text) that fail: exec calls return exit code
    /// 1, the others an error.
    pub fail: RefCell<BTreeSet<String>>,
    /// The exec.* settings each exec call was given, in call order.
    pub exec_options: RefCell<Vec<ExecOptions>>,
    next_id: RefCell<u32>,
}

impl FakeHost {
    pub fn new() -> Self {
        FakeHost::default()
    }

    /// Makes the call recorded as `call` fail from now on.
    pub fn fail_on(&self, call: impl Into<String>) {
        self.fail.borrow_mut().insert(call.into());
    }

    pub fn clear_failures(&self) {
        self.fail.borrow_mut().clear();
    }

    /// Takes the calls recorded so far.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    pub fn snapshot(&self) -> FakeState {
        self.state.borrow().clone()
    }

    /// Records `call`; true when it is set to fail.
    fn record(&self, call: String) -> bool {
        let fails = self.fail.borrow().contains(&call);
        self.calls.borrow_mut().push(call);
        fails
    }

    fn injected(call: &str) -> OsError {
        OsError::Unsupported(format!("{call}: injected failure"))
    }
}

impl Host for FakeHost {
    fn interface_addresses(&self) -> Result<Vec<IfAddr>, OsError> {
        Ok(self.state.borrow().host_addresses.clone())
    }

    fn listeners(&self, _jails: &[JailName]) -> Result<Vec<Listener>, OsError> {
        Ok(Vec::new())
    }

    fn foreign_redirects(&self, _anchor_root: &str) -> Result<Vec<ForeignRedirect>, OsError> {
        Ok(Vec::new())
    }

    fn attach_network(&self, jail: &JailName, net: &JailNetwork) -> Result<(), OsError> {
        let call = format!("attach_network {jail}");
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        let addr: Option<IpAddr> = net.own_addresses().first().map(|(a, _, _)| *a);
        self.state.borrow_mut().networks.insert(jail.clone(), addr);
        Ok(())
    }

    fn detach_network(&self, jail: &JailName, _net: &JailNetwork) -> Result<(), OsError> {
        let call = format!("detach_network {jail}");
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        self.state.borrow_mut().networks.remove(jail);
        Ok(())
    }

    fn load_rules(&self, _anchor_root: &str, jail: &JailName, rules: &str) -> Result<(), OsError> {
        let call = format!("load_rules {jail}");
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        self.state.borrow_mut().rules.insert(jail.clone(), rules.to_string());
        Ok(())
    }

    fn flush_rules(&self, _anchor_root: &str, jail: &JailName) -> Result<(), OsError> {
        let call = format!("flush_rules {jail}");
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        self.state.borrow_mut().rules.remove(jail);
        Ok(())
    }

    fn loaded_rules(&self, _anchor_root: &str, jail: &JailName) -> Result<Option<String>, OsError> {
        Ok(self.state.borrow().rules.get(jail).cloned())
    }

    fn create_jail(&self, spec: &JailSpec) -> Result<u32, OsError> {
        let call = format!("create_jail {}", spec.name);
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        if let Some(id) = self.state.borrow().jails.get(&spec.name) {
            return Ok(*id);
        }
        let mut next = self.next_id.borrow_mut();
        *next += 1;
        self.state.borrow_mut().jails.insert(spec.name.clone(), *next);
        Ok(*next)
    }

    fn terminate_jail(&self, jail: &JailName, timeout: std::time::Duration) -> Result<bool, OsError> {
        let call = format!("terminate_jail {jail} {}s", timeout.as_secs());
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        Ok(true)
    }

    fn release_persist(&self, jail: &JailName) -> Result<bool, OsError> {
        let call = format!("release_persist {jail}");
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        Ok(true)
    }

    fn remove_jail(&self, jail: &JailName) -> Result<(), OsError> {
        let call = format!("remove_jail {jail}");
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        self.state.borrow_mut().jails.remove(jail);
        Ok(())
    }

    fn mount(&self, jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
        let call = format!("mount {jail}: {}", m.file.display());
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        self.state.borrow_mut().mounts.insert((jail.clone(), m.file.clone()));
        Ok(())
    }

    fn unmount(&self, jail: &JailName, m: &MountEntry) -> Result<(), OsError> {
        let call = format!("unmount {jail}: {}", m.file.display());
        if self.record(call.clone()) {
            return Err(Self::injected(&call));
        }
        self.state.borrow_mut().mounts.remove(&(jail.clone(), m.file.clone()));
        Ok(())
    }

    fn exec_in_jail_with(&self, jail: &JailName, argv: &[String], opts: &ExecOptions) -> Result<i32, OsError> {
        self.exec_options.borrow_mut().push(opts.clone());
        // Hooks arrive as `/bin/sh -c <command>`: record the command itself.
        let cmd = match argv {
            [sh, c, command] if sh == "/bin/sh" && c == "-c" => command.clone(),
            _ => argv.join(" "),
        };
        if !self.state.borrow().jails.contains_key(jail) {
            self.record(format!("exec_in_jail {jail}: {cmd}"));
            return Err(OsError::Unsupported(format!("jail {jail} is not running")));
        }
        Ok(if self.record(format!("exec_in_jail {jail}: {cmd}")) {
            1
        } else {
            0
        })
    }

    fn exec_on_host_with(&self, _jail: &str, command: &str, opts: &ExecOptions) -> Result<i32, OsError> {
        self.exec_options.borrow_mut().push(opts.clone());
        Ok(if self.record(format!("exec_on_host: {command}")) {
            1
        } else {
            0
        })
    }

    fn running_jails(&self) -> Result<Vec<RunningJail>, OsError> {
        let st = self.state.borrow();
        let mut names: BTreeSet<&JailName> = st.jails.keys().collect();
        names.extend(st.networks.keys());
        Ok(names
            .into_iter()
            .map(|n| RunningJail {
                // why: like LinuxHost, a jail whose network exists without
                // the jail itself is listed with id 0.
                id: st.jails.get(n).copied().unwrap_or(0),
                name: n.to_string(),
                addresses: st.networks.get(n).copied().flatten().into_iter().collect(),
                path: PathBuf::from("/"),
            })
            .collect())
    }
}
