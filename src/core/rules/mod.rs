//! Firewall rules: the typed IR (`ir`), the pf renderer and anchor template
//! (`pf`), the nft renderer (`nft`) and the parser of pfctl(8) listings
//! (`pflist`), and drift between a rendering and a listing (`drift`). Pure: text in, values and text out; loading into pf or nft is
//! the `os` layer's job.

pub mod drift;
pub mod ir;
pub mod nft;
pub mod pf;
pub mod pflist;

pub use ir::{owner_label, Exposure, Family, JailRules, Nat, NatSources, NatTarget, RdrDest, Redirect, RuleError};
