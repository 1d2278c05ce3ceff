//! The library-wide error type and its mapping to sysexits(3) exit codes.
//!
//! Every module has its own error enum; they convert into [`Error`] here so
//! that `main` can pick the exit code from one place. Messages are lower case,
//! without a trailing period, and name the file/line, jail, pool, interface,
//! anchor or command involved.

use std::path::PathBuf;

/// Exit codes from sysexits(3), plus 1 for "check found conflicts".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    Ok = 0,
    /// `jnet check` found conflicts (a finding, not a failure to check).
    Findings = 1,
    Usage = 64,
    DataErr = 65,
    NoInput = 66,
    Unavailable = 69,
    Software = 70,
    CantCreate = 73,
    IoErr = 74,
    TempFail = 75,
    NoPerm = 77,
    Config = 78,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
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
    /// A lifecycle step failed (completed steps undone); the exit status is
    /// the one of the step's cause.
    #[error("{message}")]
    Step { status: ExitStatus, message: String },
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
        self.exit_status() == ExitStatus::NoPerm
    }

    /// The sysexits(3) code for this error.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Data(_) => ExitStatus::DataErr,
            Error::Config(_) => ExitStatus::Config,
            Error::JailConf(e) => e.exit_status(),
            Error::NoInput { .. } => ExitStatus::NoInput,
            Error::PoolExhausted { .. } | Error::Unavailable(_) => ExitStatus::Unavailable,
            Error::CantCreate { .. } | Error::UnsafeState { .. } => ExitStatus::CantCreate,
            Error::JailBusy { .. } | Error::Changed { .. } => ExitStatus::TempFail,
            Error::LockTimeout { .. } => ExitStatus::TempFail,
            Error::NoPerm(_) => ExitStatus::NoPerm,
            Error::Os(e) => e.exit_status(),
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::PermissionDenied => ExitStatus::NoPerm,
                std::io::ErrorKind::NotFound => ExitStatus::NoInput,
                _ => ExitStatus::IoErr,
            },
            Error::Lifecycle(_) => ExitStatus::Software,
            Error::Conflicts(_) => ExitStatus::Findings,
            Error::Step { status, .. } => *status,
        }
    }
}
