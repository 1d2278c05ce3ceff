//! Jail lifecycle state machine: the phases a jail goes through and which
//! transitions are allowed. The planner lives in `plan`.
//!
//! defined -> starting -> running -> stopping -> stopped (-> starting ...),
//! and any phase -> failed when a step fails and cannot be undone.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Known to jnet, never started.
    #[default]
    Defined,
    Starting,
    Running,
    Stopping,
    Stopped,
    /// A step failed and rollback could not undo everything.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Defined => "defined",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
            Phase::Failed => "failed",
        }
    }
    /// A start may begin from here (a half-done start or stop is retried).
    pub fn can_start(self) -> bool {
        !matches!(self, Phase::Running)
    }
    pub fn can_stop(self) -> bool {
        !matches!(self, Phase::Defined | Phase::Stopped)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "defined" => Phase::Defined,
            "starting" => Phase::Starting,
            "running" => Phase::Running,
            "stopping" => Phase::Stopping,
            "stopped" => Phase::Stopped,
            "failed" => Phase::Failed,
            _ => return Err(format!("unknown phase {s:?}")),
        })
    }
}
