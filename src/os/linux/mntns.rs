//! What a jail's mount namespace holds (mount_namespaces(7), pivot_root(2)).
//!
//! `setup_root` runs inside a freshly unshared mount namespace (see
//! `netns::create_bound`, which binds it on `/run/jnet/mnt/<jail>`):
//! - `/` is made recursively slave, so mounts made in the jail never
//!   propagate to the host, while the host's mounts and unmounts still reach
//!   the jail (as a FreeBSD jail sees what the host mounts under its path;
//!   and the removal of another jail's namespace binding in /run/netns
//!   propagates in, so a jail never keeps another's namespace alive);
//! - when the jail's path is not `/`, the namespace's root becomes that
//!   path: it is bound on itself and entered with `pivot_root(".", ".")`,
//!   then the old root is detached. why pivot rather than a chroot at exec
//!   time: the host's tree is then absent from the jail's namespace (a chroot
//!   can be left by a root process; a detached old root cannot), setns(2)
//!   into the namespace lands in the jail's root by itself, and so does
//!   `nsenter --mount=/run/jnet/mnt/<jail>`;
//! - /proc is not mounted here but by the jail's init once it is in the
//!   jail's PID namespace (see `init`: a proc mount shows the PID namespace
//!   of the process that mounts it), when `<path>/proc` is a directory
//!   (nosuid, nodev, noexec). It is optional: a jail without a `/proc`
//!   directory gets none, as on FreeBSD where procfs in a jail is the
//!   admin's choice. A jail rooted at `/` gets one too, over the host's, in
//!   its own mount namespace only.
//!
//! It does not populate the root (no /dev, no /etc): `path` must already
//! hold what the jail's commands need, as for jail(8).

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, pivot_root};

use super::netns::NetnsError;

fn nix_err(op: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> NetnsError {
    let path = path.to_path_buf();
    move |e| NetnsError::Io {
        op,
        path,
        source: std::io::Error::from(e),
    }
}

/// Arranges the calling thread's (new, unshared) mount namespace for a jail
/// rooted at `path` (see the module doc). Must run in a thread that has
/// just unshared CLONE_NEWNS, since it changes that thread's root and cwd.
pub fn setup_root(path: &Path) -> Result<(), NetnsError> {
    let root = Path::new("/");
    mount(
        None::<&str>,
        root,
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(nix_err("make rslave", root))?;
    if path == root {
        return Ok(());
    }
    // pivot_root needs the new root to be a mount point; MS_REC keeps what
    // is already mounted under the path (e.g. nullfs-like binds the admin
    // made before start).
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(nix_err("bind-mount jail root on itself", path))?;
    chdir(path).map_err(nix_err("chdir to jail root", path))?;
    // why "." twice: pivot_root(2) stacks the old root on top of the new
    // one, so no put_old directory has to be created inside the jail; the
    // lazy unmount of "." then removes exactly that old root.
    pivot_root(".", ".").map_err(nix_err("pivot_root into", path))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(nix_err("detach the old root of", path))?;
    chdir(root).map_err(nix_err("chdir to / of", path))?;
    Ok(())
}
