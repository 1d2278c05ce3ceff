//! The narrow view of the inventory that `assign` and `release` need
//! (the lease operations), and its implementation over a fully parsed
//! [`Inventory`] (the slow, always-correct path every backend may use).
//!
//! A backend may give a faster one (the file store's index view in
//! `file::view`); every implementation answers the same for the same
//! inventory, which the file store's property test and the backend
//! conformance suite check. No I/O here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::core::names::JailName;
use crate::core::range::{RangeSet, Unit};
use crate::error::Result;

use super::inventory::{Inventory, JailRecord};

/// What `assign`/`release` may ask of the inventory inside one locked
/// read-modify-write (`Backend::update_leases`, `Store::update_view`).
pub trait View {
    /// The record of `jail`, if the inventory has one.
    fn record(&mut self, jail: &JailName) -> Result<Option<JailRecord>>;
    /// A jail other than `except` that holds `a` (the first by name).
    fn holder_of(&mut self, a: IpAddr, except: &JailName) -> Result<Option<JailName>>;
    /// The lowest IPv4 address of `assignable` that no inventory record
    /// holds and that is not in `also_taken`.
    fn lowest_free(&mut self, assignable: &RangeSet, also_taken: &RangeSet) -> Result<Option<Ipv4Addr>>;
    /// [`View::lowest_free`] for IPv6.
    fn lowest_free6(&mut self, assignable: &RangeSet<u128>, also_taken: &RangeSet<u128>) -> Result<Option<Ipv6Addr>>;
    /// Sets (`Some`) or removes (`None`) the record of `jail`.
    fn set(&mut self, jail: &JailName, record: Option<JailRecord>) -> Result<()>;
}

/// The view over a parsed inventory.
pub(crate) struct FullView<'a> {
    pub inv: &'a mut Inventory,
    pub changed: bool,
}

/// The lowest address of `assignable` in neither `held` nor `also_taken`.
fn lowest_of<T: Unit>(
    assignable: &RangeSet<T>,
    also_taken: &RangeSet<T>,
    held: impl Iterator<Item = T::Addr>,
) -> Option<T::Addr> {
    let mut taken = also_taken.clone();
    for a in held {
        taken.insert_addr(a);
    }
    assignable
        .iter_ranges()
        .find_map(|r| taken.first_gap(r.start, r.end))
        .map(T::Addr::from)
}

impl View for FullView<'_> {
    fn record(&mut self, jail: &JailName) -> Result<Option<JailRecord>> {
        Ok(self.inv.jails.get(jail).cloned())
    }
    fn holder_of(&mut self, a: IpAddr, except: &JailName) -> Result<Option<JailName>> {
        Ok(self
            .inv
            .jails
            .iter()
            .find(|(n, r)| *n != except && r.holds(a))
            .map(|(n, _)| n.clone()))
    }
    fn lowest_free(&mut self, assignable: &RangeSet, also_taken: &RangeSet) -> Result<Option<Ipv4Addr>> {
        Ok(lowest_of(
            assignable,
            also_taken,
            self.inv.jails.values().filter_map(JailRecord::address),
        ))
    }
    fn lowest_free6(&mut self, assignable: &RangeSet<u128>, also_taken: &RangeSet<u128>) -> Result<Option<Ipv6Addr>> {
        Ok(lowest_of(
            assignable,
            also_taken,
            self.inv.jails.values().filter_map(JailRecord::address6),
        ))
    }
    fn set(&mut self, jail: &JailName, record: Option<JailRecord>) -> Result<()> {
        let old = match record {
            Some(r) => {
                let same = self.inv.jails.get(jail) == Some(&r);
                self.inv.jails.insert(jail.clone(), r);
                !same
            }
            None => self.inv.jails.remove(jail).is_some(),
        };
        self.changed |= old;
        Ok(())
    }
}
