//! The hand-shake between cracin and its JVMTI agent: the signal cracin sends, the commands it
//! writes, the thread it looks for. One file for both sides: the agent compiles it as a module,
//! cracin-core includes the same file (`jvm/individual.rs`), so the two cannot drift apart.

/// The real-time signal cracin sends to the agent thread (the kernel's number; glibc's
/// SIGRTMIN+27). HotSpot uses none of the real-time signals.
pub const SIGNAL: i32 = 61;
/// Suspend the Java threads and find the generators; answer `held`.
pub const CMD_HOLD: u64 = 1;
/// Renew the random state, apply the configuration, resume; answer `done`.
pub const CMD_RENEW: u64 = 2;
/// Apply the configuration and resume without renewing (a checkpoint taken with --no-renew).
pub const CMD_CONFIG: u64 = 3;
/// Resume without changing anything (the dump failed and the JVM carries on).
pub const CMD_RELEASE: u64 = 4;
/// The name of the agent's thread (`/proc/PID/task/TID/comm`), how cracin finds it.
pub const THREAD_NAME: &str = "cracin-agent";
