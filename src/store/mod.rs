//! The inventory — which jail holds which address, its mode, phase, jid and
//! exposures — behind one small trait, [`Backend`], so that a second
//! backend (PostgreSQL, for pools shared by a fleet) can replace the
//! embedded one without the engine changing.
//!
//! Backends:
//! - [`file`]: the journaled text file under `<state dir>` with an flock,
//!   the default for one host ([`Store`]).
//! - [`fleet`]: pool leases shared by several hosts in PostgreSQL
//!   ([`postgres`]), the rest in the local file store ([`FleetStore`]).
//!
//! What every backend guarantees (and [`conformance`] tests):
//!
//! - **Atomicity.** [`Backend::update_inventory`] and
//!   [`Backend::update_leases`] are each one read-decide-write: the closure
//!   sees the current committed state, no other update of this inventory
//!   commits in between, and its changes become visible all at once or,
//!   when it returns an error (or the process dies), not at all. A
//!   closure may be run more than once (the file store reruns
//!   `update_leases` on its slow path; a database may retry a serialization
//!   failure): it must decide from what it is given and have no other
//!   effects. This is also the compare-and-set for phase transitions:
//!   read the phase in the closure, refuse (return an error, or nothing
//!   changes) or set it ([`Backend::set_phase_if`] does exactly that).
//! - **Durability.** When an update returns `Ok`, its change survives a
//!   crash of jnet or the machine and is seen by every later `read` or
//!   update, from this process or another.
//! - **Uniqueness.** The store does not itself forbid two jails holding one
//!   address; the callers decide that inside one update (assign looks for
//!   the holder or the lowest free address and sets the lease in the same
//!   closure), and atomicity makes that decision race-free across
//!   processes: two concurrent assigns never get the same address.
//! - **Consistent reads.** [`Backend::read`] returns one committed state,
//!   never a half-applied update; it may take no lock and be slightly old.
//! - **Per-jail exclusion.** [`Backend::lock_jail`] gives one holder at a
//!   time per jail name across processes, waits at most the store's lock
//!   timeout, then fails with exit 75; the lock ends when the
//!   [`JailLock`] is dropped or the process exits. It is independent of
//!   the update atomicity (a holder still updates like anyone else).
//!
//! What it does not do: validate what the engine decides (pools, ports,
//! names are checked by the engine), keep history, or talk to the host.

#[cfg(test)]
#[macro_use]
pub mod conformance;
pub mod file;
pub mod fleet;
pub mod inventory;
pub mod postgres;
pub mod view;

use crate::core::lifecycle::Phase;
use crate::core::names::JailName;
use crate::error::{Error, Result};

pub use file::Store;
pub use fleet::FleetStore;
pub use inventory::{Inventory, JailRecord, Mode};
pub use view::View;

/// A held per-jail lifecycle lock; released on drop. Backend-neutral: the
/// file store holds an flock'ed file, another backend whatever its lock
/// is (a database session's advisory lock).
pub struct JailLock {
    jail: JailName,
    _held: Box<dyn Send>,
}

impl JailLock {
    /// Wraps what a backend holds for `jail`; dropping `held` must release
    /// the lock.
    pub fn new(jail: JailName, held: impl Send + 'static) -> Self {
        JailLock {
            jail,
            _held: Box::new(held),
        }
    }

    pub fn jail(&self) -> &JailName {
        &self.jail
    }
}

impl std::fmt::Debug for JailLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JailLock").field("jail", &self.jail).finish()
    }
}

/// The result of [`Backend::set_phase_if`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseChange {
    /// The phase was one of the expected ones and is now the new one.
    Set { was: Phase },
    /// The phase was not one of the expected ones; nothing changed.
    Refused { current: Phase },
    /// The jail has no record; nothing changed.
    Missing,
}

/// The inventory as a service: what the engine needs and nothing more.
/// Object safe, so the engine can hold a `&dyn Backend` chosen at run
/// time; the generic conveniences are on `dyn Backend` below. See the
/// module docs for what an implementation must guarantee.
pub trait Backend: std::fmt::Debug + Send + Sync {
    /// One committed state of the whole inventory (empty when none was
    /// ever written).
    fn read(&self) -> Result<Inventory>;

    /// Runs `f` on the whole inventory as one atomic read-decide-write;
    /// commits its changes if it returns `Ok` and changed anything.
    fn update_inventory(&self, f: &mut dyn FnMut(&mut Inventory) -> Result<()>) -> Result<()>;

    /// Like [`Backend::update_inventory`], over the narrow lease [`View`]
    /// (record of a jail, holder of an address, lowest free address), which
    /// a backend can answer without loading every jail.
    fn update_leases(&self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()>;

    /// Takes the lifecycle lock of `jail` (see the module docs).
    fn lock_jail(&self, jail: &JailName) -> Result<JailLock>;

    /// The fleet backend behind this one, for the reports and verbs that
    /// only exist with shared pools (other hosts' leases, reclaim).
    fn fleet(&self) -> Option<&FleetStore> {
        None
    }

    /// Compare-and-set of a jail's phase (H3): sets `to` (and `jid`) only
    /// if the current phase is one of `from`, in one atomic update.
    fn set_phase_if(&self, jail: &JailName, from: &[Phase], to: Phase, jid: Option<u32>) -> Result<PhaseChange> {
        let mut out = PhaseChange::Missing;
        self.update_inventory(&mut |inv| {
            out = match inv.jails.get_mut(jail) {
                None => PhaseChange::Missing,
                Some(r) if !from.contains(&r.phase) => PhaseChange::Refused { current: r.phase },
                Some(r) => {
                    let was = r.phase;
                    r.phase = to;
                    r.jid = jid;
                    PhaseChange::Set { was }
                }
            };
            Ok(())
        })?;
        Ok(out)
    }
}

/// So that a `Box<dyn Backend>` chosen at run time is used as the engine's
/// `&dyn Backend` unchanged.
impl<B: Backend + ?Sized> Backend for Box<B> {
    fn read(&self) -> Result<Inventory> {
        (**self).read()
    }
    fn update_inventory(&self, f: &mut dyn FnMut(&mut Inventory) -> Result<()>) -> Result<()> {
        (**self).update_inventory(f)
    }
    fn update_leases(&self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()> {
        (**self).update_leases(f)
    }
    fn lock_jail(&self, jail: &JailName) -> Result<JailLock> {
        (**self).lock_jail(jail)
    }
    fn fleet(&self) -> Option<&FleetStore> {
        (**self).fleet()
    }
    fn set_phase_if(&self, jail: &JailName, from: &[Phase], to: Phase, jid: Option<u32>) -> Result<PhaseChange> {
        (**self).set_phase_if(jail, from, to, jid)
    }
}

fn not_run() -> Error {
    Error::Lifecycle("store backend returned from an update without running it".into())
}

impl dyn Backend + '_ {
    /// [`Backend::update_inventory`] returning the closure's value.
    pub fn update<T>(&self, mut f: impl FnMut(&mut Inventory) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.update_inventory(&mut |inv| {
            out = Some(f(inv)?);
            Ok(())
        })?;
        out.ok_or_else(not_run)
    }

    /// [`Backend::update_leases`] returning the closure's value.
    pub fn update_view<T>(&self, mut f: impl FnMut(&mut dyn View) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.update_leases(&mut |v| {
            out = Some(f(v)?);
            Ok(())
        })?;
        out.ok_or_else(not_run)
    }
}

impl Backend for Store {
    fn read(&self) -> Result<Inventory> {
        Store::read(self)
    }
    fn update_inventory(&self, f: &mut dyn FnMut(&mut Inventory) -> Result<()>) -> Result<()> {
        Store::update(self, f)
    }
    fn update_leases(&self, f: &mut dyn FnMut(&mut dyn View) -> Result<()>) -> Result<()> {
        Store::update_view(self, f)
    }
    fn lock_jail(&self, jail: &JailName) -> Result<JailLock> {
        Store::lock_jail(self, jail)
    }
}

#[cfg(test)]
mod file_conformance {
    use std::time::Duration;

    backend_conformance!(
        |dir: &std::path::Path, lock_timeout: Duration| crate::store::Store::new(dir.join("state"), lock_timeout)
    );
}
