//! jail.conf(5) reader: lexer, parser and evaluator yielding each jail's
//! effective parameters. File access goes through a caller-supplied loader.

use crate::error::ExitStatus;

/// A jail.conf read or syntax error, naming file:line:column.
#[derive(Debug, thiserror::Error)]
pub enum JailConfError {
    #[error("{file}:{line}:{column}: {message}")]
    Syntax { file: String, line: usize, column: usize, message: String },
    #[error("{file}: {message}")]
    Read { file: String, message: String },
}

impl JailConfError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            JailConfError::Syntax { .. } => ExitStatus::Config,
            JailConfError::Read { .. } => ExitStatus::NoInput,
        }
    }
}
