//! The inventory: which jail holds which address, its mode, phase and
//! exposures.
//!
//! Backends: [`file`] (the journaled text file, the default).

pub mod file;
pub mod inventory;
pub mod view;

pub use file::Store;
pub use inventory::{Inventory, JailRecord, Mode};
pub use view::View;
