//! The cold start that `cracin restore --fallback` falls back to when a restore fails: the
//! application's own command (the one given after `--`, else the one recorded in the
//! checkpoint's manifest, in its recorded working directory), started in place of cracin, and
//! the few lines of the failed restore's evidence worth showing first (in a container CRIU's
//! restore.log goes away with the container).

use std::path::{Path, PathBuf};

use crate::ckpt::dir::{Manifest, MANIFEST};
use crate::error::Error;

/// What to start cold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdStart {
    /// The command; empty when none was given and the checkpoint records none.
    pub argv: Vec<String>,
    /// The working directory recorded in the checkpoint (else cracin's own).
    pub cwd: Option<PathBuf>,
}

/// The command to start cold: `command` when given, else the one recorded in the checkpoint
/// at `dir`; the recorded working directory either way. A checkpoint whose manifest cannot be
/// read gives no command and no directory.
pub fn plan(dir: &Path, command: &[String]) -> ColdStart {
    let manifest: Option<Manifest> = std::fs::read_to_string(dir.join(MANIFEST))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let argv = if command.is_empty() {
        manifest
            .as_ref()
            .map(|m| m.command.clone())
            .unwrap_or_default()
    } else {
        command.to_vec()
    };
    ColdStart {
        argv,
        cwd: manifest.map(|m| m.cwd),
    }
}

/// CRIU's own reason, from the failure's evidence: up to four `Error` lines, or the last three
/// lines when there is none (e.g. "Effective capability 21 missing").
pub fn reason_lines(why: &Error) -> Vec<String> {
    let Some((_, tail)) = why.evidence() else {
        return Vec::new();
    };
    let lines: Vec<&str> = tail
        .lines()
        .map(|l| l.trim_start_matches([' ', '|']))
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("Error"))
        .take(4)
        .collect();
    let shown = if errors.is_empty() {
        lines[lines.len().saturating_sub(3)..].to_vec()
    } else {
        errors
    };
    shown.into_iter().map(str::to_string).collect()
}

/// Replaces cracin with the application (`exec`); returns only when that failed. cracin's
/// guardian is disarmed (nothing of cracin's is left to clean up), the stop signals held back
/// for forwarding are let through again (the cold JVM must receive them itself), and the
/// capability cracin raised for CRIU does not reach the application.
pub fn exec(start: &ColdStart) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let Some((prog, args)) = start.argv.split_first() else {
        return std::io::Error::other("no command to start");
    };
    crate::os::guard::disarm();
    crate::os::signals::unblock_all_signals();
    crate::os::caps::clear_inherited();
    let mut c = std::process::Command::new(prog);
    c.args(args);
    if let Some(cwd) = &start.cwd {
        c.current_dir(cwd);
    }
    c.exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore_failed(tail: &str) -> Error {
        Error::RestoreFailed {
            command: "criu restore".into(),
            status: "exit status 1".into(),
            log: PathBuf::from("restore.log"),
            log_tail: tail.into(),
            diagnosis: Vec::new(),
        }
    }

    #[test]
    fn the_error_lines_or_else_the_last_lines() {
        let e = restore_failed(
            "(00.1) start\n  | (00.2) Error (criu/cr-restore.c:1): boom\n(00.3) Error (x): two\n",
        );
        assert_eq!(
            reason_lines(&e),
            vec![
                "(00.2) Error (criu/cr-restore.c:1): boom",
                "(00.3) Error (x): two"
            ]
        );
        let e = restore_failed("a\nb\n\nc\nEffective capability 21 missing\n");
        assert_eq!(
            reason_lines(&e),
            vec!["b", "c", "Effective capability 21 missing"]
        );
        assert!(reason_lines(&Error::usage("x", "y")).is_empty());
    }

    #[test]
    fn the_given_command_else_the_recorded_one() {
        let d = crate::os::tempdir::TempDir::new("cracin-cold-test").unwrap();
        let none = plan(d.path(), &[]);
        assert_eq!(
            none,
            ColdStart {
                argv: Vec::new(),
                cwd: None
            }
        );
        let given = plan(d.path(), &["java".into(), "-version".into()]);
        assert_eq!(given.argv, vec!["java", "-version"]);
    }
}
