//! Decisions about how the JVM is started for a checkpoint.

pub mod gc;
