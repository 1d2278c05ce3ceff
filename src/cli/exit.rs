//! Exit codes: sysexits(3), plus 1 for "check found conflicts". The one
//! place where errors become numbers; the library says only what kind of
//! failure an error is ([`ErrorKind`]).

use crate::error::{Error, ErrorKind};

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

    /// The exit status of a failure of kind `k`.
    pub fn of_kind(k: ErrorKind) -> ExitStatus {
        match k {
            ErrorKind::Conflicts => ExitStatus::Findings,
            ErrorKind::Invalid => ExitStatus::DataErr,
            ErrorKind::NotFound => ExitStatus::NoInput,
            ErrorKind::Unavailable => ExitStatus::Unavailable,
            ErrorKind::Internal => ExitStatus::Software,
            ErrorKind::CantCreate => ExitStatus::CantCreate,
            ErrorKind::Io => ExitStatus::IoErr,
            ErrorKind::Busy => ExitStatus::TempFail,
            ErrorKind::Permission => ExitStatus::NoPerm,
            ErrorKind::Config => ExitStatus::Config,
        }
    }

    /// The exit status `main` ends with after `e`.
    pub fn of(e: &Error) -> ExitStatus {
        ExitStatus::of_kind(e.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes the README and jnet(8) document (sysexits(3)).
    #[test]
    fn kinds_map_to_the_documented_codes() {
        let table = [
            (ErrorKind::Conflicts, 1),
            (ErrorKind::Invalid, 65),
            (ErrorKind::NotFound, 66),
            (ErrorKind::Unavailable, 69),
            (ErrorKind::Internal, 70),
            (ErrorKind::CantCreate, 73),
            (ErrorKind::Io, 74),
            (ErrorKind::Busy, 75),
            (ErrorKind::Permission, 77),
            (ErrorKind::Config, 78),
        ];
        for (k, code) in table {
            assert_eq!(ExitStatus::of_kind(k).code(), code, "{k:?}");
        }
        assert_eq!(ExitStatus::of(&Error::data("x")).code(), 65);
    }
}
