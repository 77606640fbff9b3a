//! A CRIU run that failed, as the error the user reads: the exact command line, its exit status,
//! CRIU's own `Error (...)` lines (or the log's tail when it has none), where the log is, and
//! what the diagnosis reads in it and in the application's output. Built in this one place for
//! the dump (a failed checkpoint), the restore and the lazy-pages daemon that serves a restore
//! (a failed restore).

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use crate::error::Error;
use crate::os::cmd::{describe_status, read_lossy, tail_of_file, tail_of_text};

/// Which CRIU run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// `criu dump`: the checkpoint failed.
    Dump,
    /// `criu restore` or `criu lazy-pages`: the restore failed.
    Restore,
}

/// The error of a failed CRIU run: `criu` with `args` ended with `status`, its log is `log` and
/// what it printed on stderr `stderr`; `more_logs` (the application's output) are read by the
/// diagnosis after the log.
pub fn failed(
    run: Run,
    criu: &Path,
    args: &[String],
    status: ExitStatus,
    log: PathBuf,
    stderr: &str,
    more_logs: &[PathBuf],
) -> Error {
    let command = format!("{} {}", criu.display(), args.join(" "));
    let status = describe_status(status);
    let log_tail = error_tail(&log, stderr);
    let mut read = vec![log.clone()];
    read.extend(more_logs.iter().cloned());
    let diagnosis = crate::diagnose::explain_files(&read);
    match run {
        Run::Dump => Error::CheckpointFailed {
            command,
            status,
            log,
            log_tail,
            diagnosis,
        },
        Run::Restore => Error::RestoreFailed {
            command,
            status,
            log,
            log_tail,
            diagnosis,
        },
    }
}

/// CRIU's own `Error (...)` lines are the evidence worth showing; else the log's tail, else
/// what it printed on stderr.
pub fn error_tail(log: &Path, stderr: &str) -> String {
    let text = read_lossy(log);
    // Every criu run here prints a harmless rlimit error (root lacks CAP_SYS_RESOURCE).
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error (") && !l.contains("Can't setup RLIMIT_NOFILE"))
        .collect();
    if !errors.is_empty() {
        let start = errors.len().saturating_sub(8);
        return errors[start..].join("\n");
    }
    let t = tail_of_file(log, 12);
    if t.trim().is_empty() {
        tail_of_text(stderr, 12)
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn criu_error_lines_are_the_evidence() {
        let d = crate::os::tempdir::TempDir::new("cracin-criu-failure-test").unwrap();
        let log = d.path().join("dump.log");
        std::fs::write(
            &log,
            "(00.001) Error (criu/rlimit.c:1): Can't setup RLIMIT_NOFILE\n(00.002) dumping\n(00.003) Error (criu/sk-inet.c:2): Connected TCP socket\n(00.004) end\n",
        )
        .unwrap();
        let e = failed(
            Run::Dump,
            Path::new("/usr/sbin/criu"),
            &["dump".into(), "-t".into(), "7".into()],
            ExitStatus::from_raw(1 << 8),
            log.clone(),
            "",
            &[],
        );
        match e {
            Error::CheckpointFailed {
                command,
                log_tail,
                log: l,
                ..
            } => {
                assert_eq!(command, "/usr/sbin/criu dump -t 7");
                assert_eq!(
                    log_tail,
                    "(00.003) Error (criu/sk-inet.c:2): Connected TCP socket"
                );
                assert_eq!(l, log);
            }
            e => panic!("{e}"),
        }
        // No log at all: CRIU's stderr says it.
        let none = d.path().join("missing.log");
        assert_eq!(error_tail(&none, "criu: bad option\n"), "criu: bad option");
        assert!(matches!(
            failed(
                Run::Restore,
                Path::new("criu"),
                &[],
                ExitStatus::from_raw(1 << 8),
                none,
                "",
                &[]
            ),
            Error::RestoreFailed { .. }
        ));
    }
}
