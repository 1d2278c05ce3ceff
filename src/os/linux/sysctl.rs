//! The network sysctls a dedicated IPv6 jail depends on, read and set
//! through `/proc/sys/net` (proc(5)): IPv6 forwarding of a network
//! namespace.
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens
//! the file (the kernel resolves net sysctl tables from the opener's
//! `nsproxy`), so a caller inside a jail's or a test's namespace reads
//! and changes that namespace only. Deciding whether jnet may change the
//! host's value, and remembering that it did, is the caller's job.

use std::path::{Path, PathBuf};

use crate::os::OsError;

/// `net.ipv6.conf.all.forwarding`: 1 turns IPv6 forwarding on for every
/// interface of the namespace (and makes them ignore router
/// advertisements unless `accept_ra` is 2).
pub const IPV6_FORWARDING: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

fn read_flag(path: &Path) -> Result<bool, OsError> {
    let text = std::fs::read_to_string(path).map_err(|e| OsError::Sys {
        op: format!("read {}", path.display()),
        source: e,
    })?;
    match text.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(OsError::Sys {
            op: format!("read {}", path.display()),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("expected 0 or 1, found {other:?}"),
            ),
        }),
    }
}

/// Turns duplicate address detection off on `interface` of the calling
/// thread's namespace (`net.ipv6.conf.<if>.accept_dad = 0`), for an
/// interface jnet made itself (a jail veth end): its link-local address is
/// then usable at once, not tentative for a second, which delayed the first
/// IPv6 connection to a freshly started jail past a client's timeout. Its
/// global addresses are unique by the pool anyway (and added NODAD). An
/// interface without IPv6 (the file is absent) is left as it is.
pub fn disable_dad(interface: &str) -> Result<(), OsError> {
    // why the check: the name becomes a path component.
    if interface.is_empty() || interface.contains('/') || interface.starts_with('.') {
        return Err(OsError::Sys {
            op: format!("disable DAD on {interface:?}"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an interface name"),
        });
    }
    let path = PathBuf::from(format!("/proc/sys/net/ipv6/conf/{interface}/accept_dad"));
    match std::fs::write(&path, "0\n") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(OsError::Sys {
            op: format!("write {}", path.display()),
            source: e,
        }),
    }
}

/// Whether IPv6 forwarding is on in the calling thread's namespace.
pub fn ipv6_forwarding() -> Result<bool, OsError> {
    read_flag(Path::new(IPV6_FORWARDING))
}

/// Sets IPv6 forwarding in the calling thread's namespace; returns the
/// value it had, so that a caller can put back only what it changed.
pub fn set_ipv6_forwarding(on: bool) -> Result<bool, OsError> {
    let path = PathBuf::from(IPV6_FORWARDING);
    let was = read_flag(&path)?;
    if was != on {
        std::fs::write(&path, if on { "1\n" } else { "0\n" }).map_err(|e| OsError::Sys {
            op: format!("write {}", path.display()),
            source: e,
        })?;
        tracing::info!(on, "net.ipv6.conf.all.forwarding set");
    }
    Ok(was)
}
