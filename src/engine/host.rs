//! Picks the host adapter for the running system: `os::linux::LinuxHost`
//! on Linux; on FreeBSD the `os::freebsd` adapter (merged separately); an
//! `Unavailable` error elsewhere. The only place that chooses one, so tests
//! can pass their own `Host` to the engine instead.

use crate::error::Result;
use crate::os::Host;

/// The host adapter of this system.
#[cfg(target_os = "linux")]
pub fn system_host() -> Result<Box<dyn Host>> {
    Ok(Box::new(crate::os::linux::LinuxHost::default()))
}

/// The host adapter of this system.
#[cfg(target_os = "freebsd")]
pub fn system_host() -> Result<Box<dyn Host>> {
    // The FreeBSD adapter lives in os::freebsd, merged from its own branch;
    // this build has none yet.
    Err(crate::error::Error::Unavailable(
        "the FreeBSD host adapter is not part of this build".to_string(),
    ))
}

/// The host adapter of this system.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
pub fn system_host() -> Result<Box<dyn Host>> {
    Err(crate::error::Error::Unavailable(format!(
        "jnet cannot manage jails on {}",
        std::env::consts::OS
    )))
}
