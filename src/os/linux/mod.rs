//! Linux adapters: netns "jails", rtnetlink addresses and links, sock_diag
//! listeners, nftables, and `LinuxHost`, which wires them into the `Host`
//! trait.
//!
//! A Linux jail (see DESIGN.md §3):
//! - dedicated address: network namespace `jnet-<jail>` (iproute2-compatible,
//!   under /run/netns) with a veth pair to the pool's bridge (`jail`);
//! - inherit: no namespace, processes stay in the host's stack;
//! - hostname: when given, a UTS namespace bound on `/run/jnet/uts/<jail>`
//!   with that hostname, joined by `exec_in_jail`;
//! - mounts: every jail (inherit ones too) has a mount namespace bound on
//!   `/run/jnet/mnt/<jail>` (a private mount, as unshare(1) requires for
//!   `--mount=<file>`); `/` is rslave in it, so the jail's mounts stay in
//!   the jail, and when `path` is not `/` the namespace is pivoted into
//!   `path`, with a fresh proc on `<path>/proc` when that directory exists
//!   (see `mntns`). Besides isolation, it gives inherit jails a namespace of
//!   their own, so their processes can be found and killed on removal;
//! - processes: a cgroup v2 `<cgroup2 mount>/jnet/<jail>` (see `cgroup`)
//!   and a PID namespace whose init is a jnet-made holder process (see
//!   `init`): every process of the jail, and every one it forks, is in
//!   both, also after it leaves the jail's mount or network namespace;
//!   `exec_in_jail` joins them too. The jail's /proc shows only its own
//!   processes. Stop kills the cgroup (`cgroup.kill`);
//! - a record `/run/jnet/jails/<jail>` (JSON: id, path, hostname, and the
//!   identity, device and inode, of every namespace jnet made for the jail,
//!   the cgroup's path and id, and the init's pid), 0600 in a 0700
//!   directory, never followed through a symlink. It makes
//!   `running_jails` and ids stable, and it is what `terminate_jail` and
//!   `remove_jail` check before they signal anything: a namespace file that
//!   no longer holds the namespace recorded at creation, or that holds
//!   jnet's own or PID 1's namespace, is refused with an error naming the
//!   jail and the namespace (hardening H8). /run is a tmpfs, so the record
//!   goes on reboot together with the namespaces.
//!
//! What this does not give: a user namespace (root in the jail is root on
//! the host), a seccomp filter, a capability drop, `no_new_privs`; see the
//! README, "What a Linux jail isolates".
//!
//! Firewall: one nft table `inet <anchor_root>`; a jail's chains are those
//! `nft::owns_chain` accepts (exactly `core::rules::nft::jail_chains`).
//!
//! This module never changes host sysctls except `net.ipv4.ip_forward`
//! (set to 1 by `attach_network` in the namespace jnet runs in, when
//! `LinuxHost::enable_forwarding` is true, the default: exposures and nat
//! need it).

pub mod addr;
pub mod cgroup;
pub mod drivers;
pub mod exec;
pub mod init;
pub mod jail;
pub mod link;
pub mod listeners;
pub mod mntns;
pub mod netlink;
pub mod netns;
pub mod nft;
mod record;
mod sys;
pub mod sysctl;
mod terminate;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::drivers::{FirewallDriver, Inherit, NetworkDriver};
use super::{Host, IfAddr, JailNetwork, JailSpec, OsError, RunningJail};
use crate::core::listeners::{ForeignRedirect, Listener, Stack};
use crate::core::names::JailName;
pub use jail::Paths;
use netns::NsKind;

/// nft family of jnet's table.
pub const NFT_FAMILY: &str = "inet";

/// The Linux host, as the engine sees it.
#[derive(Debug, Clone)]
pub struct LinuxHost {
    pub paths: Paths,
    /// Set net.ipv4.ip_forward=1 when attaching a dedicated jail.
    pub enable_forwarding: bool,
}

impl Default for LinuxHost {
    fn default() -> Self {
        LinuxHost {
            paths: Paths::default(),
            enable_forwarding: true,
        }
    }
}

/// The identity of a namespace (its nsfs device and inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

impl NsId {
    fn of(path: &Path) -> Result<NsId, OsError> {
        let (dev, ino) = netns::ns_id(path)?;
        Ok(NsId { dev, ino })
    }
    pub fn pair(self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

/// The cgroup jnet made for a jail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupRecord {
    /// Its directory.
    pub dir: PathBuf,
    /// Its name as /proc/<pid>/cgroup shows it.
    pub name: String,
    /// Its cgroup id (the directory's inode).
    pub id: u64,
}

/// What `create_jail` records about a jail. The fields after `netns` are
/// absent from records written by jnet before 0.x's confinement (read as
/// None: such a jail is stopped with the host-namespace guard only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailRecord {
    pub id: u32,
    pub path: PathBuf,
    pub hostname: Option<String>,
    /// Whether the jail has its own network namespace.
    pub netns: bool,
    #[serde(default)]
    pub net: Option<NsId>,
    #[serde(default)]
    pub uts: Option<NsId>,
    #[serde(default)]
    pub mnt: Option<NsId>,
    #[serde(default)]
    pub pid: Option<NsId>,
    #[serde(default)]
    pub cgroup: Option<CgroupRecord>,
    /// The pid of the jail's init (see `init`), in jnet's PID namespace.
    #[serde(default)]
    pub init: Option<i32>,
}

impl JailRecord {
    /// The identity recorded for the jail's namespace of `kind`.
    pub fn ns(&self, kind: NsKind) -> Option<NsId> {
        match kind {
            NsKind::Net => self.net,
            NsKind::Uts => self.uts,
            NsKind::Mnt => self.mnt,
            NsKind::Pid => self.pid,
        }
    }
    /// Whether this record carries identities (written by a jnet that
    /// confines jails), so a namespace it does not list is not jnet's.
    pub fn confined(&self) -> bool {
        self.cgroup.is_some()
    }
}

fn sys_err(op: String) -> impl FnOnce(std::io::Error) -> OsError {
    move |source| OsError::Sys { op, source }
}

impl LinuxHost {
    pub fn new(paths: Paths) -> Self {
        LinuxHost {
            paths,
            enable_forwarding: true,
        }
    }

    fn read_record(&self, jail: &str) -> Option<JailRecord> {
        record::read(&self.paths.state_dir.join("jails").join(jail))
    }

    /// The pid (in jnet's PID namespace) of the init of running jail
    /// `jail`, when it has one (see `init`).
    pub fn init_pid(&self, jail: &JailName) -> Option<i32> {
        self.read_record(jail.as_str()).and_then(|r| r.init)
    }

    fn records(&self) -> Vec<(String, JailRecord)> {
        let dir = self.paths.state_dir.join("jails");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, JailRecord)> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| self.read_record(&n).map(|r| (n, r)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Whether jnet created bridge `bridge` (and will delete it when its
    /// last jail detaches).
    pub fn bridge_owned(&self, bridge: &str) -> bool {
        jail::bridge_owned(&self.paths, bridge)
    }

    /// Creates the namespaces of a new jail (network when dedicated, UTS
    /// when it has a hostname, mount always), pushing each path this call
    /// bound on `made`. Returns whether the jail has its own network
    /// namespace.
    fn create_namespaces(&self, spec: &JailSpec, made: &mut Vec<PathBuf>) -> Result<bool, OsError> {
        let own_netns = !spec.network.is_inherit();
        if own_netns {
            let p = self.paths.netns(&spec.name);
            if netns::create_bound(&p, NsKind::Net, || Ok(()))? {
                made.push(p);
            }
        }
        if let Some(h) = &spec.hostname {
            let h = h.clone();
            let p = self.paths.utsns(&spec.name);
            let created = netns::create_bound(&p, NsKind::Uts, move || {
                nix::unistd::sethostname(&h).map_err(|e| netns::NetnsError::Io {
                    op: "sethostname for",
                    path: PathBuf::from(&h),
                    source: e.into(),
                })
            })?;
            if created {
                made.push(p);
            }
        }
        let p = self.paths.mntns(&spec.name);
        let root = spec.path.clone();
        if netns::create_bound(&p, NsKind::Mnt, move || mntns::setup_root(&root))? {
            made.push(p);
        }
        Ok(own_netns)
    }

    fn netns_if_bound(&self, jail: &JailName) -> Option<PathBuf> {
        let p = self.paths.netns(jail);
        netns::is_bound(&p).then_some(p)
    }
}

fn enable_ipv4_forwarding() -> Result<(), OsError> {
    let path = Path::new("/proc/sys/net/ipv4/ip_forward");
    let cur = fs::read_to_string(path).map_err(sys_err(format!("read {}", path.display())))?;
    if cur.trim() != "1" {
        fs::write(path, b"1\n").map_err(sys_err(format!("write {}", path.display())))?;
        tracing::info!("net.ipv4.ip_forward set to 1");
    }
    Ok(())
}

impl LinuxHost {
    /// The network driver of a jail with network `net` (see `os::drivers`).
    pub fn network_driver(&self, net: &JailNetwork) -> Box<dyn NetworkDriver + '_> {
        if net.is_inherit() {
            return Box::new(Inherit);
        }
        Box::new(drivers::NetnsVeth {
            paths: &self.paths,
            enable_forwarding: self.enable_forwarding,
        })
    }

    /// The firewall driver: nftables.
    pub fn firewall(&self) -> &'static dyn FirewallDriver {
        &drivers::Nft
    }
}

impl Host for LinuxHost {
    fn interface_addresses(&self) -> Result<Vec<IfAddr>, OsError> {
        let mut s = link::route_socket()?;
        Ok(addr::list(&mut s)?)
    }

    fn listeners(&self, jails: &[JailName]) -> Result<Vec<Listener>, OsError> {
        let mut out = listeners::listeners_here(Stack::Host)?;
        for j in jails {
            // Inherit jails (no namespace) are already in the host's list.
            if let Some(p) = self.netns_if_bound(j) {
                out.extend(listeners::listeners_in(&p, Stack::Jail(j.clone()))?);
            }
        }
        Ok(out)
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

    fn create_jail(&self, spec: &JailSpec) -> Result<u32, OsError> {
        if let Some(r) = self.read_record(spec.name.as_str()) {
            return Ok(r.id);
        }
        // why: a relative path would resolve against jnet's working
        // directory, a different root from each shell (hardening H20);
        // jail(8) and FreeBSD's `create_params` require an absolute one.
        if !spec.path.is_absolute() {
            return Err(OsError::Sys {
                op: format!("jail {}: path {:?}", spec.name, spec.path.display().to_string()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "must be an absolute path"),
            });
        }
        if spec.path != Path::new("/") && !spec.path.is_dir() {
            return Err(OsError::Sys {
                op: format!("jail {}: path {}", spec.name, spec.path.display()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        // Namespace files this call bound, removed again when a later step
        // fails, so a failed create leaves nothing behind; likewise the
        // cgroup (killed, which ends the init, then removed).
        let mut made: Vec<PathBuf> = Vec::new();
        let mut made_cgroup: Option<(PathBuf, String)> = None;
        let result = self.create_namespaces(spec, &mut made).and_then(|own_netns| {
            let (dir, name, cg_id) = {
                let h = cgroup::hierarchy()?;
                let dir = h.jail_dir(&spec.name);
                let id = cgroup::create(&dir)?;
                (dir, h.jail_name(&spec.name), id)
            };
            made_cgroup = Some((dir.clone(), name.clone()));
            let ns = self.netns_if_bound(&spec.name);
            let uts = self.paths.utsns(&spec.name);
            let uts = netns::is_bound(&uts).then_some(uts);
            let mnt = self.paths.mntns(&spec.name);
            let init_pid = init::start(
                spec.name.as_str(),
                init::Joins {
                    cgroup: &dir,
                    netns: ns.as_deref(),
                    utsns: uts.as_deref(),
                    mntns: &mnt,
                    mount_proc: spec.path.join("proc").is_dir(),
                },
            )?;
            let pid_file = self.paths.pidns(&spec.name);
            if netns::bind_existing(Path::new(&format!("/proc/{init_pid}/ns/pid")), &pid_file, NsKind::Pid)? {
                made.push(pid_file.clone());
            }
            // why: the pid was read from the init itself, but confirm the
            // namespace bound is that of a process in the jail's cgroup.
            if !cgroup::contains(init_pid, &name) || !netns::pid_in(init_pid, NsKind::Pid, netns::ns_id(&pid_file)?) {
                return Err(OsError::Sys {
                    op: format!("jail {}: init process {init_pid}", spec.name),
                    source: std::io::Error::other("is not in the jail's cgroup and PID namespace"),
                });
            }
            let used: std::collections::BTreeSet<u32> = self.records().into_iter().map(|(_, r)| r.id).collect();
            let id = (1..).find(|i| !used.contains(i)).unwrap_or(u32::MAX);
            let id_of = |p: Option<&Path>| p.map(NsId::of).transpose();
            let record = JailRecord {
                id,
                path: spec.path.clone(),
                hostname: spec.hostname.clone(),
                netns: own_netns,
                net: id_of(ns.as_deref())?,
                uts: id_of(uts.as_deref())?,
                mnt: Some(NsId::of(&mnt)?),
                pid: Some(NsId::of(&pid_file)?),
                cgroup: Some(CgroupRecord { dir, name, id: cg_id }),
                init: Some(init_pid),
            };
            record::write(&self.paths.record(&spec.name), &record)?;
            Ok(id)
        });
        match result {
            Ok(id) => {
                tracing::info!(jail = %spec.name, id, "jail created");
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(jail = %spec.name, error = %e, "create failed, undoing");
                if let Some((dir, name)) = &made_cgroup {
                    let undo = cgroup::kill(dir, name, Duration::from_secs(2)).and_then(|_| cgroup::remove(dir));
                    if let Err(e2) = undo {
                        tracing::warn!(jail = %spec.name, error = %e2, "undo of a failed create failed");
                    }
                }
                for p in made.iter().rev() {
                    if let Err(e2) = netns::delete_bound(p) {
                        tracing::warn!(jail = %spec.name, error = %e2, "undo of a failed create failed");
                    }
                }
                Err(e)
            }
        }
    }

    fn terminate_jail(&self, jail: &JailName, timeout: Duration) -> Result<bool, OsError> {
        let record = self.read_record(jail.as_str());
        let procs = terminate::verify(&self.paths, jail, record.as_ref())?;
        terminate::terminate(jail, &procs, timeout)
    }

    fn remove_jail(&self, jail: &JailName) -> Result<(), OsError> {
        let record = self.read_record(jail.as_str());
        // why first, before anything is signalled or unbound: a namespace
        // file re-bound to another namespace (`ip netns attach`, a mistake)
        // would otherwise make "the jail's processes" someone else's (H8).
        let procs = terminate::verify(&self.paths, jail, record.as_ref())?;
        terminate::kill(jail, &procs, Duration::from_secs(2))?;
        for p in [
            self.paths.pidns(jail),
            self.paths.mntns(jail),
            self.paths.utsns(jail),
            self.paths.netns(jail),
        ] {
            // A namespace file that is not the jail's (see `verify`) is
            // left alone.
            if !procs.skipped.contains(&p) {
                netns::delete_bound(&p)?;
            }
        }
        let rec = self.paths.record(jail);
        match fs::remove_file(&rec) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(sys_err(format!("remove {}", rec.display()))(e)),
        }
        tracing::info!(%jail, "jail removed");
        Ok(())
    }

    fn exec_in_jail_with(
        &self,
        jail: &JailName,
        argv: &[String],
        opts: &crate::os::ExecOptions,
    ) -> Result<i32, OsError> {
        refuse_fib(jail.as_str(), opts, true)?;
        let record = self.read_record(jail.as_str());
        let ns = self.netns_if_bound(jail);
        let mnt = self.paths.mntns(jail);
        let mnt = netns::is_bound(&mnt).then_some(mnt);
        if record.is_none() && ns.is_none() && mnt.is_none() {
            return Err(OsError::Unsupported(format!("jail {jail} is not running")));
        }
        let uts = self.paths.utsns(jail);
        let uts = netns::is_bound(&uts).then_some(uts);
        let pid_file = self.paths.pidns(jail);
        let confined = match &record {
            Some(JailRecord {
                cgroup: Some(cg),
                pid: Some(pid),
                init: Some(init),
                ..
            }) => {
                // why: once a PID namespace's init is gone nothing can be
                // forked into it (ENOMEM from fork); say what happened.
                if !netns::pid_in(*init, NsKind::Pid, pid.pair()) {
                    return Err(OsError::Unsupported(format!(
                        "jail {jail}: its init process (pid {init}) is gone, so nothing can run in its PID \
                         namespace; stop and start the jail again"
                    )));
                }
                Some(cg.dir.clone())
            }
            _ => None,
        };
        let target = exec::Target {
            netns: ns.as_deref(),
            utsns: uts.as_deref(),
            mntns: mnt.as_deref(),
            pidns: confined.as_ref().map(|_| pid_file.as_path()),
            cgroup: confined.as_deref(),
            // The mount namespace is already rooted at the jail's path; a
            // jail without one (made by an older jnet) gets the chroot.
            root: match mnt {
                Some(_) => None,
                None => record.as_ref().map(|r| r.path.as_path()),
            },
        };
        let needs_jail_files = (opts.clean || opts.jail_user.is_some()) && opts.lookup_in_jail(true);
        let root = match (&record, needs_jail_files) {
            (Some(r), _) => r.path.clone(),
            (None, false) => PathBuf::from("/"),
            (None, true) => {
                return Err(OsError::Unsupported(format!(
                    "jail {jail}: exec.jail_user/exec.clean: the jail's root is unknown (no jail record)"
                )))
            }
        };
        let prep = crate::os::exec::prepare(opts, true, &root, jail.as_str())?;
        exec::run(target, argv, &prep)
    }

    fn exec_on_host_with(&self, jail: &str, command: &str, opts: &crate::os::ExecOptions) -> Result<i32, OsError> {
        refuse_fib(jail, opts, false)?;
        let prep = crate::os::exec::prepare(opts, false, Path::new("/"), jail)?;
        exec::run(
            exec::Target::default(),
            &["/bin/sh".to_string(), "-c".to_string(), command.to_string()],
            &prep,
        )
    }

    fn running_jails(&self) -> Result<Vec<RunningJail>, OsError> {
        let mut names: std::collections::BTreeMap<String, Option<JailRecord>> =
            self.records().into_iter().map(|(n, r)| (n, Some(r))).collect();
        for ns in netns::list(&self.paths.netns_dir, jail::NETNS_PREFIX)? {
            let name = ns[jail::NETNS_PREFIX.len()..].to_string();
            names.entry(name).or_insert(None);
        }
        // A bound mount namespace without a record (a create interrupted
        // between the two) is still something `remove_jail` has to take down.
        for name in netns::list(&self.paths.mntns_dir(), "")? {
            names.entry(name).or_insert(None);
        }
        let mut out = Vec::new();
        for (name, record) in names {
            let Ok(j) = JailName::new(&name) else {
                continue;
            };
            let addresses = match self.netns_if_bound(&j) {
                Some(p) => netns::run_in(&p, || -> Result<Vec<IfAddr>, OsError> {
                    let mut s = link::route_socket()?;
                    Ok(addr::list(&mut s)?)
                })??
                .into_iter()
                .map(|a| a.address)
                .filter(|a| !a.is_loopback() && !matches!(a, std::net::IpAddr::V6(v) if v.is_unicast_link_local()))
                .collect(),
                None => Vec::new(),
            };
            out.push(RunningJail {
                id: record.as_ref().map_or(0, |r| r.id),
                name,
                addresses,
                path: record.map_or_else(|| PathBuf::from("/"), |r| r.path),
            });
        }
        Ok(out)
    }
}

/// exec.fib has no Linux counterpart (FreeBSD's setfib(2) selects a routing
/// table per process): refused, naming the parameter and the jail. The
/// engine refuses the start before anything is created; this is the
/// adapter's own guard.
fn refuse_fib(jail: &str, opts: &crate::os::ExecOptions, in_jail: bool) -> Result<(), OsError> {
    match opts.fib_for(in_jail) {
        Some(fib) => Err(OsError::Unsupported(format!(
            "jail {jail}: exec.fib = {fib}: FIBs (setfib(2)) are FreeBSD-only; not supported on Linux"
        ))),
        None => Ok(()),
    }
}
