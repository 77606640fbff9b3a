//! What a diagnosis is made of, as plain data: the log line a finding rests on (`Evidence`), one
//! diagnosed cause with its fix (`Finding`), everything `explain` found (`Explanation`), and where
//! a secret was found in a checkpoint (`SecretFound`). Errors carry these, so this module imports
//! nothing of cracin's: the errors stay at the bottom of the crate, and the diagnosis that fills
//! them runs at the edge, where the logs are.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The log line a finding rests on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub text: String,
}

/// One diagnosed cause of a failure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub rule: String,
    pub title: String,
    pub cause: String,
    pub fix: String,
    pub reference: Option<String>,
    pub evidence: Evidence,
}

/// Everything `explain` found in a set of logs: the findings, or, when no rule matched, the
/// lines most likely to say what happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Explanation {
    /// The log files that were read, in the order they were read.
    pub logs: Vec<PathBuf>,
    pub findings: Vec<Finding>,
    /// Error lines (or the last lines) of each log; filled only when there is no finding.
    pub tail: Vec<Evidence>,
}

/// Where a secret was found in a checkpoint's memory: what (a name, never the value) and in
/// which image file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretFound {
    pub what: String,
    pub file: String,
}
