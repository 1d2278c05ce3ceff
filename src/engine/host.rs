//! Picks the host adapter for the platform jnet runs on.

use crate::error::Result;
use crate::os::Host;

/// The real host: `LinuxHost` on Linux, `FreeBsdHost` on FreeBSD.
#[cfg(target_os = "linux")]
pub fn system_host() -> Result<Box<dyn Host>> {
    Ok(Box::new(crate::os::linux::LinuxHost::default()))
}

/// The real host: `LinuxHost` on Linux, `FreeBsdHost` on FreeBSD.
#[cfg(target_os = "freebsd")]
pub fn system_host() -> Result<Box<dyn Host>> {
    Ok(Box::new(crate::os::freebsd::FreeBsdHost::new()))
}

/// No host adapter exists for this platform.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
pub fn system_host() -> Result<Box<dyn Host>> {
    Err(crate::error::Error::Unavailable(
        "jnet manages jails on FreeBSD and Linux only".to_string(),
    ))
}
