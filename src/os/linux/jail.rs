//! The network side of a Linux jail: a named network namespace, a veth pair
//! whose host end sits on the pool's bridge, the jail's address on the
//! jail end (renamed `eth0`), `lo` up and a default route via the gateway.
//!
//! Naming (all deterministic, so any jnet process finds what another made):
//! - netns: `jnet-<jail>` in the netns directory (`/run/netns`), so
//!   `ip netns exec jnet-<jail> ...` works;
//! - veth: `jv<8 hex>h` (host end) and `jv<8 hex>j` (jail end, renamed
//!   `eth0` inside), the hex being FNV-1a-32 of the jail name: 11 bytes,
//!   under IFNAMSIZ whatever the jail name's length;
//! - bridge ownership: when jnet creates a bridge it writes the marker file
//!   `<state>/bridges/<bridge>` (`/run/jnet/bridges/...`, gone on reboot
//!   like the bridge itself); a bridge is deleted on detach only when that
//!   marker exists and no port is left on it;
//! - gateway ownership: when jnet adds the pool's gateway address to a
//!   bridge it did not create (an administrator's bridge), it records the
//!   address in `<state>/gateways/<bridge>` (one `addr/prefix` a line) and
//!   removes exactly the recorded addresses when the bridge's last jail
//!   detaches. A gateway address that was already there is never recorded,
//!   so never removed (hardening H19). On a bridge jnet created, the
//!   address goes with the bridge.
//!
//! Of the sysctls it sets only `accept_dad` of the veth ends it makes;
//! `LinuxHost` decides about forwarding.

use std::fs;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::addr;
use super::link;
use super::netns::{self, NsKind};
use crate::core::names::{IfName, JailName};
use crate::os::OsError;

/// Name of a jail's network namespace.
pub fn netns_name(jail: &JailName) -> String {
    format!("jnet-{jail}")
}

/// Prefix of every jnet network namespace name.
pub const NETNS_PREFIX: &str = "jnet-";

/// Name of the jail end of the veth once inside the namespace.
pub const JAIL_IF: &str = "eth0";

fn fnv1a32(s: &str) -> u32 {
    s.bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The (host end, jail end) veth names of a jail.
pub fn veth_names(jail: &JailName) -> (String, String) {
    let h = fnv1a32(jail.as_str());
    (format!("jv{h:08x}h"), format!("jv{h:08x}j"))
}

/// Where jnet keeps namespace files and its run-time markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// iproute2's directory of named network namespaces (`/run/netns`).
    pub netns_dir: PathBuf,
    /// jnet's run-time state (`/run/jnet`): `bridges/`, `gateways/`,
    /// `uts/`, `mnt/`, `pid/`, `jails/`.
    pub state_dir: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            netns_dir: PathBuf::from("/run/netns"),
            state_dir: PathBuf::from("/run/jnet"),
        }
    }
}

impl Paths {
    pub fn netns(&self, jail: &JailName) -> PathBuf {
        self.netns_dir.join(netns_name(jail))
    }
    pub fn bridge_marker(&self, bridge: &str) -> PathBuf {
        self.state_dir.join("bridges").join(bridge)
    }
    pub fn utsns(&self, jail: &JailName) -> PathBuf {
        self.state_dir.join("uts").join(jail.as_str())
    }
    /// Where a jail's mount namespace is bound (`/run/jnet/mnt/<jail>`).
    pub fn mntns(&self, jail: &JailName) -> PathBuf {
        self.state_dir.join("mnt").join(jail.as_str())
    }
    /// Where a jail's PID namespace is bound (`/run/jnet/pid/<jail>`).
    pub fn pidns(&self, jail: &JailName) -> PathBuf {
        self.state_dir.join("pid").join(jail.as_str())
    }
    pub fn mntns_dir(&self) -> PathBuf {
        self.state_dir.join("mnt")
    }
    /// Gateway addresses jnet added to bridge `bridge` it does not own.
    pub fn gateway_marker(&self, bridge: &str) -> PathBuf {
        self.state_dir.join("gateways").join(bridge)
    }
    pub fn record(&self, jail: &JailName) -> PathBuf {
        self.state_dir.join("jails").join(jail.as_str())
    }
}

/// Whether jnet created (and so may delete) bridge `bridge`.
pub fn bridge_owned(paths: &Paths, bridge: &str) -> bool {
    paths.bridge_marker(bridge).exists()
}

fn sys_at(op: &str, path: &Path) -> impl FnOnce(std::io::Error) -> OsError {
    let op = format!("{op} {}", path.display());
    move |source| OsError::Sys { op, source }
}

fn write_marker(path: &Path) -> Result<(), OsError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(sys_at("create directory for", path))?;
    }
    fs::write(path, b"created by jnet\n").map_err(sys_at("write", path))
}

fn remove_if_present(path: &Path) -> Result<(), OsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(sys_at("remove", path)(e)),
    }
}

/// The gateway addresses recorded as added by jnet to `bridge`.
pub fn gateways_added(paths: &Paths, bridge: &str) -> Vec<(IpAddr, u8)> {
    let text = fs::read_to_string(paths.gateway_marker(bridge)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (a, p) = l.trim().split_once('/')?;
            Some((a.parse().ok()?, p.parse().ok()?))
        })
        .collect()
}

/// Records that jnet added `gw/prefix` to `bridge` (idempotent).
fn record_gateway(paths: &Paths, bridge: &str, gw: IpAddr, prefix: u8) -> Result<(), OsError> {
    let mut have = gateways_added(paths, bridge);
    if have.contains(&(gw, prefix)) {
        return Ok(());
    }
    have.push((gw, prefix));
    let path = paths.gateway_marker(bridge);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(sys_at("create directory for", &path))?;
    }
    let text: String = have.iter().map(|(a, p)| format!("{a}/{p}\n")).collect();
    fs::write(&path, text).map_err(sys_at("write", &path))
}

/// One address a jail gets inside its namespace, with the pool's gateway
/// of that family (added to the bridge, the jail's default route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JailAddress {
    pub address: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// Sets up a dedicated jail network (see the module doc) with at most one
/// address per family, all on one bridge (one veth pair per jail).
/// Idempotent: a jail already attached is left as is (addresses and
/// routes re-asserted). On failure, what this call created is removed
/// again.
pub fn attach(paths: &Paths, jail: &JailName, addresses: &[JailAddress], bridge: &IfName) -> Result<(), OsError> {
    let ns_path = paths.netns(jail);
    let created_ns = netns::create_bound(&ns_path, NsKind::Net, || Ok(()))?;
    let result = attach_links(paths, jail, &ns_path, addresses, bridge);
    if let Err(e) = &result {
        tracing::warn!(%jail, error = %e, "attach failed, undoing");
        if created_ns {
            if let Err(e2) = detach(paths, jail, bridge) {
                tracing::warn!(%jail, error = %e2, "undo of a failed attach failed");
            }
        }
    }
    result
}

fn attach_links(
    paths: &Paths,
    jail: &JailName,
    ns_path: &Path,
    addresses: &[JailAddress],
    bridge: &IfName,
) -> Result<(), OsError> {
    let (host_if, jail_if) = veth_names(jail);
    let mut rt = link::route_socket()?;
    if link::ensure_bridge(&mut rt, bridge.as_str())? {
        write_marker(&paths.bridge_marker(bridge.as_str()))?;
        // why: jnet's own bridge; see sysctl::disable_dad.
        super::sysctl::disable_dad(bridge.as_str())?;
    }
    for a in addresses {
        let Some(gw) = a.gateway else { continue };
        let added = addr::add(&mut rt, bridge.as_str(), gw, a.prefix)?;
        if added && !bridge_owned(paths, bridge.as_str()) {
            if let Err(e) = record_gateway(paths, bridge.as_str(), gw, a.prefix) {
                // why: an address jnet cannot remember adding would stay
                // forever; take it back off before failing.
                let _ = addr::del(&mut rt, bridge.as_str(), gw, a.prefix);
                return Err(e);
            }
            tracing::info!(%bridge, %gw, prefix = a.prefix, "gateway address added to a bridge jnet does not own");
        }
    }
    link::set_up(&mut rt, bridge.as_str(), true)?;

    let inside_has_eth0 = netns::run_in(ns_path, || -> Result<bool, OsError> {
        let mut s = link::route_socket()?;
        Ok(link::index(&mut s, JAIL_IF)?.is_some())
    })??;
    let host_present = link::index(&mut rt, &host_if)?.is_some();
    if !(host_present && inside_has_eth0) {
        // A half-made pair from an interrupted attach is replaced.
        link::delete(&mut rt, &host_if)?;
        link::create_veth(&mut rt, &host_if, &jail_if)?;
        link::set_master(&mut rt, &host_if, bridge.as_str())?;
        super::sysctl::disable_dad(&host_if)?;
        link::set_up(&mut rt, &host_if, true)?;
        let ns = netns::open(ns_path)?;
        link::move_to_netns(&mut rt, &jail_if, ns.as_fd())?;
    }
    netns::run_in(ns_path, || -> Result<(), OsError> {
        let mut s = link::route_socket()?;
        if link::index(&mut s, &jail_if)?.is_some() {
            link::rename(&mut s, &jail_if, JAIL_IF)?;
        }
        link::set_up(&mut s, "lo", true)?;
        // why before the link goes up: an IPv6 address is added without
        // duplicate address detection (addr::add sets IFA_F_NODAD), so
        // it is usable at once; the pool guarantees it is unique.
        for a in addresses {
            addr::add(&mut s, JAIL_IF, a.address, a.prefix)?;
        }
        super::sysctl::disable_dad(JAIL_IF)?;
        link::set_up(&mut s, JAIL_IF, true)?;
        for gw in addresses.iter().filter_map(|a| a.gateway) {
            link::set_default_route_via(&mut s, gw)?;
        }
        Ok(())
    })??;
    let list: Vec<String> = addresses
        .iter()
        .map(|a| format!("{}/{}", a.address, a.prefix))
        .collect();
    tracing::info!(%jail, addresses = %list.join(","), %bridge, host_if, "jail network attached");
    Ok(())
}

/// Undoes `attach`: deletes the veth pair and the namespace, then the
/// bridge if jnet created it and no port is left on it. Absent pieces are
/// fine.
pub fn detach(paths: &Paths, jail: &JailName, bridge: &IfName) -> Result<(), OsError> {
    let (host_if, _) = veth_names(jail);
    let mut rt = link::route_socket()?;
    link::delete(&mut rt, &host_if)?;
    netns::delete_bound(&paths.netns(jail))?;
    // why: when the namespace went away first, the kernel tears the veth
    // down asynchronously; wait so the bridge's port count is right.
    let deadline = Instant::now() + Duration::from_secs(2);
    while link::index(&mut rt, &host_if)?.is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(br) = link::get(&mut rt, bridge.as_str())? else {
        remove_if_present(&paths.bridge_marker(bridge.as_str()))?;
        remove_if_present(&paths.gateway_marker(bridge.as_str()))?;
        tracing::info!(%jail, "jail network detached");
        return Ok(());
    };
    let ports = link::list(&mut rt)?
        .into_iter()
        .filter(|l| l.master == Some(br.index))
        .count();
    if ports > 0 {
        tracing::debug!(%bridge, ports, "bridge still in use, kept");
    } else if bridge_owned(paths, bridge.as_str()) {
        link::delete(&mut rt, bridge.as_str())?;
        tracing::info!(%bridge, "bridge created by jnet removed");
        remove_if_present(&paths.bridge_marker(bridge.as_str()))?;
        remove_if_present(&paths.gateway_marker(bridge.as_str()))?;
    } else {
        // The last jail left a bridge jnet does not own: take back only the
        // gateway addresses jnet recorded adding (see the module doc).
        for (gw, prefix) in gateways_added(paths, bridge.as_str()) {
            addr::del(&mut rt, bridge.as_str(), gw, prefix)?;
            tracing::info!(%bridge, %gw, prefix, "gateway address added by jnet removed");
        }
        remove_if_present(&paths.gateway_marker(bridge.as_str()))?;
    }
    tracing::info!(%jail, "jail network detached");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_ifnamsiz_and_are_stable() {
        let long = JailName::new(&"x".repeat(63)).unwrap();
        let (h, j) = veth_names(&long);
        assert!(h.len() <= 15 && j.len() <= 15);
        assert!(IfName::new(&h).is_ok() && IfName::new(&j).is_ok());
        // Pinned: a change would orphan the links of running jails.
        assert_eq!(
            veth_names(&JailName::new("www").unwrap()),
            ("jv12aca1ach".into(), "jv12aca1acj".into())
        );
        assert_ne!(
            veth_names(&JailName::new("www").unwrap()),
            veth_names(&JailName::new("www2").unwrap())
        );
    }
}
