//! cracin-core: the library behind the `cracin` command. It launches a JVM application in its own
//! PID namespace, waits until it is really ready, warms it up, freezes it to disk with CRIU, and
//! brings it back; it checks the machine, explains failures and measures the gain. It never
//! prints: it returns data and errors, and the binary decides how to show them.

// Errors carry their evidence (command line, log tail, diagnosis) by design and travel only on
// the failure path, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod ckpt;
pub mod container;
pub mod diagnose;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod jvm;
pub mod local;
pub mod measure;
pub mod os;
pub mod report;
pub mod stage;
pub mod verify;

pub use error::{Error, Result};

/// Progress events the core reports while it works; the binary renders them.
pub trait Progress: Send + Sync {
    /// A step started (e.g. "launch", "ready", "warm-up", "dump").
    fn step(&self, name: &str, detail: &str);
    /// A step finished after `ms` milliseconds with a one-line summary.
    fn done(&self, name: &str, ms: f64, summary: &str);
    /// Something worth a warning that does not stop the work.
    fn warn(&self, msg: &str);
}

/// A `Progress` that discards everything (tests, library use).
pub struct Quiet;
impl Progress for Quiet {
    fn step(&self, _: &str, _: &str) {}
    fn done(&self, _: &str, _: f64, _: &str) {}
    fn warn(&self, _: &str) {}
}
