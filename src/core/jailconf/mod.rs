//! jail.conf(5) reader: lexer, parser and evaluator yielding each jail's
//! effective parameters, as jail(8) would compute them.
//!
//! Follows jail.conf(5) (FreeBSD, .Dd Jun 3 2023) and the behaviour of
//! jail(8)'s own reader: global parameters, `*` and `foo.*` wildcard blocks,
//! named jails `name { ... }`, `$var`/`${var}` substitution (variables and
//! parameters, including the implicit `$name`), `=`, `+=`, comma lists,
//! unquoted words, `"..."` and `'...'` strings with C escapes, boolean
//! parameters with their `no` forms, `#`, `//` and `/* */` comments and
//! `.include "path";` with globs. See [`lexer`], [`parser`] and [`eval`] for
//! the details of each stage.
//!
//! What it does not do: no file access (a [`Loader`] supplies file text and
//! glob results; the engine's `FsLoader` reads the real file system), no
//! validation of jail names against jnet's rules (the caller does that on
//! import), no knowledge of which parameters the kernel accepts, no `ip6`
//! helpers, no `ip_hostname` resolution and no `mount.fstab` reading.

mod eval;
mod intern;
mod lexer;
mod model;
mod parser;
#[cfg(test)]
mod reference;

pub use model::{Ip4AddrEntry, Ip4Mode, Ip6AddrEntry, Ip6Mode, JailConf, JailDef, Location, Strs, Value, ValueRef};

use crate::error::ErrorKind;

/// A jail.conf read, syntax or evaluation error; every variant names the
/// file and line involved.
#[derive(Debug, thiserror::Error)]
pub enum JailConfError {
    /// Lexical or grammatical error.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The root file could not be read.
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    /// An `.include` could not be followed (missing file, glob failure,
    /// include loop); `file:line` is the including statement.
    #[error("{file}:{line}: cannot include {path}: {message}")]
    Include {
        file: String,
        line: usize,
        path: String,
        message: String,
    },
    /// A jail's parameters cannot be evaluated or a value is malformed
    /// (undefined variable, variable loop, bad `ip4.addr` entry, ...).
    #[error("{file}:{line}: jail {jail}: {message}")]
    Invalid {
        file: String,
        line: usize,
        jail: String,
        message: String,
    },
}

impl JailConfError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            JailConfError::Syntax { .. } | JailConfError::Invalid { .. } => ErrorKind::Config,
            JailConfError::Read { .. } | JailConfError::Include { .. } => ErrorKind::NotFound,
        }
    }
}

/// Supplies file contents and glob expansions to the reader, so the core
/// does no I/O. Errors are short lower-case messages ("no such file").
pub trait Loader {
    /// The text of the file at `path`.
    fn read(&self, path: &str) -> Result<String, String>;
    /// Paths matching the glob `pattern` (any order; the reader sorts them
    /// like glob(3)). No match is an empty list, not an error.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String>;
}

/// An in-memory [`Loader`] for tests and for callers that already hold the
/// text. Globs use `glob::Pattern` with `/` matched only literally.
#[derive(Debug, Default, Clone)]
pub struct MemLoader {
    files: std::collections::BTreeMap<String, String>,
}

impl MemLoader {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, path: &str, text: &str) -> &mut Self {
        self.files.insert(path.to_string(), text.to_string());
        self
    }
}

/// Resolve `.` and `..` components lexically, as the kernel would for a
/// path whose directories all exist.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "." => {}
            ".." => {
                if out.len() > 1 || out.first().is_some_and(|f| !f.is_empty()) {
                    out.pop();
                }
            }
            _ => out.push(c),
        }
    }
    out.join("/")
}

impl Loader for MemLoader {
    fn read(&self, path: &str) -> Result<String, String> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| "no such file".to_string())
    }
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        let pat = glob::Pattern::new(&normalize(pattern)).map_err(|e| format!("bad glob pattern: {e}"))?;
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        Ok(self
            .files
            .keys()
            .filter(|k| pat.matches_with(k, opts))
            .cloned()
            .collect())
    }
}

/// Parse and evaluate jail.conf text named `file` (used in messages and to
/// resolve relative includes), following includes through `loader`.
pub fn parse(file: &str, text: &str, loader: &dyn Loader) -> Result<JailConf, JailConfError> {
    let raw = parser::parse_all(file, text, loader)?;
    let conf = eval::evaluate(raw)?;
    tracing::debug!(file, jails = conf.jails().len(), "jail.conf parsed");
    Ok(conf)
}

/// Read the root file at `path` through `loader`, then [`parse`] it.
/// A root file that cannot be read is [`JailConfError::Read`] (exit 66).
pub fn load(path: &str, loader: &dyn Loader) -> Result<JailConf, JailConfError> {
    let text = loader.read(path).map_err(|message| JailConfError::Read {
        file: path.to_string(),
        message,
    })?;
    parse(path, &text, loader)
}

#[cfg(test)]
mod equivalence;
#[cfg(test)]
mod tests;
