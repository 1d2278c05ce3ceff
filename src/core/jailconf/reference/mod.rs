//! The jail.conf reader as it was before the single-pass rewrite (lexer,
//! parser and evaluator of commit 795e6b9, unchanged but for imports), kept
//! only for tests: the equivalence tests run both on generated inputs and
//! require the same jails, values, locations and errors.
//!
//! Not compiled outside `cfg(test)`; nothing in jnet calls it.
#![allow(dead_code)]

mod eval;
mod lexer;
mod parser;

pub(crate) use eval::JailDef;

use super::{JailConfError, Loader};

/// Parse and evaluate as the old reader did.
pub(crate) fn parse(file: &str, text: &str, loader: &dyn Loader) -> Result<Vec<JailDef>, JailConfError> {
    let raw = parser::parse_root(file, text, loader)?;
    eval::evaluate(&raw)
}
