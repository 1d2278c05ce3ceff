//! The narrow view of the inventory that `assign` and `release` need
//! (the lease operations), and its implementation over a fully parsed
//! [`Inventory`] (the slow, always-correct path every backend may use).
//!
//! A backend may give a faster one (the file store's index view in
//! `file::view`); every implementation answers the same for the same
//! inventory, which the file store's property test and the backend
//! conformance suite check. No I/O here.

use std::net::Ipv4Addr;

use crate::core::names::JailName;
use crate::core::range::{Ipv4Range, RangeSet};
use crate::error::Result;

use super::inventory::{Inventory, JailRecord};

/// What `assign`/`release` may ask of the inventory inside one locked
/// read-modify-write (`Backend::update_leases`, `Store::update_view`).
pub trait View {
    /// The record of `jail`, if the inventory has one.
    fn record(&mut self, jail: &JailName) -> Result<Option<JailRecord>>;
    /// A jail other than `except` that holds `a` (the first by name).
    fn holder_of(&mut self, a: Ipv4Addr, except: &JailName) -> Result<Option<JailName>>;
    /// Every inventory address inside `r`.
    fn taken_in(&mut self, r: Ipv4Range) -> Result<RangeSet>;
    /// The lowest address of `assignable` that no inventory record holds
    /// and that is not in `also_taken`.
    fn lowest_free(&mut self, assignable: &RangeSet, also_taken: &RangeSet) -> Result<Option<Ipv4Addr>>;
    /// Sets (`Some`) or removes (`None`) the record of `jail`.
    fn set(&mut self, jail: &JailName, record: Option<JailRecord>) -> Result<()>;
}

/// The view over a parsed inventory.
pub(crate) struct FullView<'a> {
    pub inv: &'a mut Inventory,
    pub changed: bool,
}

impl View for FullView<'_> {
    fn record(&mut self, jail: &JailName) -> Result<Option<JailRecord>> {
        Ok(self.inv.jails.get(jail).cloned())
    }
    fn holder_of(&mut self, a: Ipv4Addr, except: &JailName) -> Result<Option<JailName>> {
        Ok(self
            .inv
            .jails
            .iter()
            .find(|(n, r)| *n != except && r.address == Some(a))
            .map(|(n, _)| n.clone()))
    }
    fn taken_in(&mut self, r: Ipv4Range) -> Result<RangeSet> {
        let mut s = RangeSet::new();
        for a in self.inv.jails.values().filter_map(|j| j.address) {
            if r.contains(u32::from(a)) {
                s.insert_addr(a);
            }
        }
        Ok(s)
    }
    fn lowest_free(&mut self, assignable: &RangeSet, also_taken: &RangeSet) -> Result<Option<Ipv4Addr>> {
        let mut taken = also_taken.clone();
        for a in self.inv.jails.values().filter_map(|j| j.address) {
            taken.insert_addr(a);
        }
        Ok(assignable
            .iter_ranges()
            .find_map(|r| taken.first_gap(r.start, r.end))
            .map(Ipv4Addr::from))
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
