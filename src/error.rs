//! The library-wide error type and the kinds of failure.
//!
//! Every module has its own error enum; they convert into [`Error`] here,
//! and each error says its [`ErrorKind`], from which the CLI (and only the
//! CLI, `cli::exit`) picks the exit code. Messages are lower case,
//! without a trailing period, and name the file/line, jail, pool, interface,
//! anchor or command involved.

use std::path::PathBuf;

/// What kind of failure an error is, as far as the caller's reaction goes:
/// fix the input or the configuration, retry later, run as root, report a
/// bug. Typed here, in the library; only the CLI turns kinds into exit
/// codes (`cli::exit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The port check found conflicts (a finding, not a failure to check).
    Conflicts,
    /// Invalid user data, or a request the inventory refuses.
    Invalid,
    /// A required input file does not exist.
    NotFound,
    /// A tool, facility, server or address is not available (pool
    /// exhausted, store down).
    Unavailable,
    /// A failure of jnet itself or of a step it ran.
    Internal,
    /// The state directory or a file jnet writes cannot be created or is
    /// not to be trusted.
    CantCreate,
    /// Any other I/O failure.
    Io,
    /// Another process holds what this one needs (a lock, a busy jail, a
    /// timeout): retry later.
    Busy,
    /// jnet lacks the privileges for it.
    Permission,
    /// The configuration (jnet.toml, jail.conf, `[store]`) is invalid.
    Config,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid user data: a name, address, port, or a request that conflicts
    /// with the inventory (address taken, not in any pool).
    #[error("{0}")]
    Data(String),
    /// The configuration (jnet.toml, profiles, templates) is invalid.
    #[error("{0}")]
    Config(String),
    /// jail.conf could not be read or parsed.
    #[error(transparent)]
    JailConf(#[from] crate::core::jailconf::JailConfError),
    /// A required input file does not exist.
    #[error("{}: {what} not found", path.display())]
    NoInput { path: PathBuf, what: &'static str },
    /// A pool has no free address left.
    #[error("pool {pool} is exhausted ({size} addresses, all taken or reserved)")]
    PoolExhausted { pool: String, size: u64 },
    /// A required external tool or kernel facility is missing.
    #[error("{0}")]
    Unavailable(String),
    /// The state directory or inventory cannot be written.
    #[error("{}: {source}", path.display())]
    CantCreate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A state directory or file jnet will not trust: a symbolic link,
    /// writable by group or others, or owned by another user; `fix` says
    /// what to run.
    #[error("{}: {problem}; fix: {fix}", path.display())]
    UnsafeState {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    /// The jail's inventory record changed between the read a verb was
    /// planned from and the moment it took the lock (H4).
    #[error("jail {jail} changed while this command waited ({what}); nothing was done, run it again")]
    Changed { jail: String, what: String },
    /// Another jnet process holds the jail's lifecycle lock.
    #[error(
        "jail {jail} is busy: another jnet process is starting or stopping it (waited {waited_ms} ms); retry later"
    )]
    JailBusy { jail: String, waited_ms: u64 },
    /// Another jnet process held the inventory lock too long.
    #[error("{}: inventory is locked by another jnet process (waited {waited_ms} ms); retry later", path.display())]
    LockTimeout { path: PathBuf, waited_ms: u64 },
    /// The operation needs root.
    #[error("{0}: permission denied (run as root)")]
    NoPerm(String),
    /// An OS operation failed (syscall, netlink, external command).
    #[error(transparent)]
    Os(#[from] crate::os::OsError),
    /// Any other I/O failure, with the path involved.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A lifecycle step failed; completed steps were undone.
    #[error("{0}")]
    Lifecycle(String),
    /// A lifecycle step failed (completed steps undone), or one of several
    /// jails' verbs did; `kind` is the one of the (first) cause.
    #[error("{message}")]
    Step { kind: ErrorKind, message: String },
    /// The port check found conflicts (a finding: exit 1, so a jail(8)
    /// prestart hook refuses the start).
    #[error("{0}")]
    Conflicts(String),
}

impl Error {
    pub fn data(msg: impl Into<String>) -> Self {
        Error::Data(msg.into())
    }
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the host refused for lack of privileges (an observation
    /// jnet may go without when not root).
    pub fn is_permission(&self) -> bool {
        self.kind() == ErrorKind::Permission
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Data(_) => ErrorKind::Invalid,
            Error::Config(_) => ErrorKind::Config,
            Error::JailConf(e) => e.kind(),
            Error::NoInput { .. } => ErrorKind::NotFound,
            Error::PoolExhausted { .. } | Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::CantCreate { .. } | Error::UnsafeState { .. } => ErrorKind::CantCreate,
            Error::JailBusy { .. } | Error::Changed { .. } => ErrorKind::Busy,
            Error::LockTimeout { .. } => ErrorKind::Busy,
            Error::NoPerm(_) => ErrorKind::Permission,
            Error::Os(e) => e.kind(),
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::PermissionDenied => ErrorKind::Permission,
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                _ => ErrorKind::Io,
            },
            Error::Lifecycle(_) => ErrorKind::Internal,
            Error::Conflicts(_) => ErrorKind::Conflicts,
            Error::Step { kind, .. } => *kind,
        }
    }
}
