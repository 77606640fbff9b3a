//! The rule catalog: each rule is data (patterns, cause, fix, reference). Add a rule by adding an
//! entry here and a real log fixture under `tests/fixtures/logs/` that it must match.

/// One known failure mode.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    /// Regular expressions matched against single log lines.
    pub patterns: &'static [&'static str],
    pub cause: &'static str,
    pub fix: &'static str,
    pub reference: Option<&'static str>,
}

pub static RULES: &[Rule] = &[
    Rule {
        id: "port-in-use",
        title: "the application's port is taken",
        patterns: &[r"Can't bind inet socket.*Address already in use", r"Address already in use"],
        cause: "a socket the checkpointed application listened on is bound by another process on this host",
        fix: "stop the process that holds the port (or the previous restore), then restore again",
        reference: None,
    },
    Rule {
        id: "pid-taken",
        title: "a PID the checkpoint needs is taken",
        patterns: &[r"Can't fork for \d+: File exists", r"Pid \d+ do not match expected \d+"],
        cause: "CRIU restores every task with its original PID, and one of them is in use in the target PID namespace",
        fix: "restore into a fresh PID namespace (cracin's local engine does), or start the JVM with higher PIDs before the checkpoint",
        reference: Some("https://github.com/checkpoint-restore/criu/issues/2383"),
    },
];
