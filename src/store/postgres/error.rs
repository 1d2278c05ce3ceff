//! Typed errors of the PostgreSQL store, so that the CLI can pick the exit
//! code (69 unavailable, 75 retry later, 65 data, 78 config) from the kind,
//! not from message text.
//!
//! Every message names the store by its redacted description (hosts,
//! port, database, user; never the password) and, as a second line of
//! defence, [`PgError::new`] removes the password's text from whatever the
//! driver or the server said.

use crate::error::{Error, ErrorKind};

/// What went wrong, as far as the caller's reaction is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgErrorKind {
    /// The server cannot be reached, refused the login, or the connection
    /// was lost and a reconnect failed: exit 69, nothing changed.
    Unavailable,
    /// A lock, statement or serialization timeout: exit 75, retry later.
    Timeout,
    /// A schema constraint refused the change (a lease that would not be
    /// unique): exit 75, a concurrent writer won; a retry decides again.
    Conflict,
    /// The schema is newer than this jnet, older and not migrated, or
    /// not jnet's: exit 78 (operator action).
    Schema,
    /// The request itself is refused (not the owner, pool exhausted,
    /// unknown lease): exit 65 or 69 for exhaustion.
    Refused,
    /// The pool has no free address: exit 69 like the file store.
    Exhausted,
    /// `[store]` is invalid: exit 78.
    Config,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PgError {
    pub kind: PgErrorKind,
    message: String,
}

impl PgError {
    /// An error whose text has every occurrence of `secret` (the password,
    /// when one is known) replaced.
    pub fn new(kind: PgErrorKind, message: impl Into<String>, secret: Option<&str>) -> Self {
        let mut message = message.into();
        if let Some(s) = secret.filter(|s| !s.is_empty()) {
            message = message.replace(s, "<password>");
        }
        PgError { kind, message }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The sysexits(3) code for this error.
    pub fn kind(&self) -> ErrorKind {
        match self.kind {
            PgErrorKind::Unavailable | PgErrorKind::Exhausted => ErrorKind::Unavailable,
            PgErrorKind::Timeout | PgErrorKind::Conflict => ErrorKind::Busy,
            PgErrorKind::Schema | PgErrorKind::Config => ErrorKind::Config,
            PgErrorKind::Refused => ErrorKind::Invalid,
        }
    }
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        match e.kind {
            PgErrorKind::Unavailable => Error::Unavailable(e.message),
            PgErrorKind::Config | PgErrorKind::Schema => Error::Config(e.message),
            PgErrorKind::Refused => Error::Data(e.message),
            PgErrorKind::Timeout | PgErrorKind::Conflict | PgErrorKind::Exhausted => Error::Step {
                kind: e.kind(),
                message: e.message,
            },
        }
    }
}
