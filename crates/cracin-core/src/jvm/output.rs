//! The launched application's own output (its stdout and stderr files) as the evidence of a
//! failure: which file says most, its last lines without what the JVM prints for cracin's
//! options, and the one place where "the application exited" becomes an error carrying that
//! evidence and its diagnosis.

use std::path::PathBuf;

use crate::error::Error;

/// The JVM's echo of cracin's options: present in every run, never evidence.
const TOOL_OPTIONS_ECHO: &str = "Picked up JAVA_TOOL_OPTIONS";

/// How many lines of the application's output an error shows.
pub const TAIL_LINES: usize = 20;

/// Of `[stdout, stderr]`: stderr when it has anything beyond the JVM's echo of cracin's
/// options, else stdout.
pub fn best_log(logs: &[PathBuf]) -> PathBuf {
    let err = &logs[1];
    let text = crate::os::cmd::read_lossy(err);
    if text.lines().any(|l| !l.starts_with(TOOL_OPTIONS_ECHO)) {
        err.clone()
    } else {
        logs[0].clone()
    }
}

/// The last lines of the application's output (stderr, then stdout), without cracin's own noise.
pub fn output_tail(logs: &[PathBuf], n: usize) -> String {
    let mut parts = Vec::new();
    for p in logs.iter().rev() {
        let text = crate::os::cmd::read_lossy(p);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(TOOL_OPTIONS_ECHO))
            .collect();
        if !lines.is_empty() {
            let start = lines.len().saturating_sub(n);
            parts.push(lines[start..].join("\n"));
        }
    }
    parts.join("\n")
}

/// The application (of output files `[stdout, stderr]`) ended before it was ready, with
/// `status`: the error, with the file that says most, its tail, and what the diagnosis reads in
/// them (a heap that could not be reserved, a class built for a newer Java, ...).
pub fn app_exited(status: String, logs: &[PathBuf]) -> Error {
    Error::AppExited {
        status,
        log: best_log(logs),
        log_tail: output_tail(logs, TAIL_LINES),
        diagnosis: crate::diagnose::explain_files(logs),
    }
}

/// The application (of output files `[stdout, stderr]`) runs but did not pass `probe` within
/// `timeout`: the error, with the file that says most and its tail.
pub fn not_ready(probe: String, timeout: std::time::Duration, logs: &[PathBuf]) -> Error {
    Error::NotReady {
        probe,
        timeout,
        log: best_log(logs),
        log_tail: output_tail(logs, TAIL_LINES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_skips_the_options_echo() {
        let d = crate::os::tempdir::TempDir::new("cracin-output-test").unwrap();
        let out = d.path().join("app.stdout");
        let err = d.path().join("app.stderr");
        std::fs::write(&out, "starting\nlistening on 8080\n").unwrap();
        std::fs::write(&err, "Picked up JAVA_TOOL_OPTIONS: -XX:-UsePerfData\n").unwrap();
        let logs = vec![out.clone(), err.clone()];
        assert_eq!(best_log(&logs), out, "stderr holds only the echo");
        assert_eq!(output_tail(&logs, 1), "listening on 8080");
        std::fs::write(&err, "Picked up JAVA_TOOL_OPTIONS: x\nError: boom\n").unwrap();
        assert_eq!(best_log(&logs), err);
        assert_eq!(
            output_tail(&logs, 5),
            "Error: boom\nstarting\nlistening on 8080"
        );
        match app_exited("exit status 1".into(), &logs) {
            Error::AppExited { log, log_tail, .. } => {
                assert_eq!(log, err);
                assert!(log_tail.starts_with("Error: boom"), "{log_tail}");
            }
            e => panic!("{e}"),
        }
    }
}
