//! Gathering the evidence of a failure: which log files of a checkpoint (or of a path the user
//! names) are worth reading, which of their lines are errors and which are known noise, and for a
//! failure no rule knows, the lines most likely to say what happened. Reading is bounded and
//! sanitized (`safe`): the logs may come from someone else's checkpoint.

use std::path::{Path, PathBuf};

use super::finding::Evidence;
use super::safe;
use crate::error::{Error, Result};

/// Lines every CRIU run on some hosts prints although nothing is wrong: never evidence.
const NOISE: &[&str] = &[
    "rlimit: Can't setup RLIMIT_NOFILE",
    "Can't keep kdat cache on non-tempfs",
    "Lazy pages are not available",
];

pub(super) fn is_noise(line: &str) -> bool {
    NOISE.iter().any(|n| line.contains(n))
}

/// A line CRIU (or the JVM, or a tool) marks as an error.
pub(super) fn is_error_line(line: &str) -> bool {
    line.contains("Error (")
        || line.contains("Error:")
        || line.contains("error:")
        || line.contains("Exception")
        || line.contains("FAILED")
        || line.contains("BUG at")
        || line.contains("[error]")
}

/// For a failure no rule knows: per log, its error lines (CRIU's `Error (...)`, Java
/// exceptions, `FAILED`), at most `MAX_PER_LOG` of the last ones, or its last lines when it has
/// none. Known-harmless lines are left out.
pub fn unknown_tail(paths: &[PathBuf]) -> Vec<Evidence> {
    const MAX_PER_LOG: usize = 6;
    const LAST_LINES: usize = 5;
    let mut out = Vec::new();
    for path in paths {
        let text = safe::read_bounded(path);
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !is_noise(l))
            .collect();
        let errors: Vec<&(usize, &str)> = lines.iter().filter(|(_, l)| is_error_line(l)).collect();
        let picked: Vec<&(usize, &str)> = if errors.is_empty() {
            lines
                .iter()
                .skip(lines.len().saturating_sub(LAST_LINES))
                .collect()
        } else {
            errors[errors.len().saturating_sub(MAX_PER_LOG)..].to_vec()
        };
        out.extend(picked.into_iter().map(|(n, l)| Evidence {
            file: path.clone(),
            line: n + 1,
            text: safe::sanitize(l.trim()),
        }));
    }
    out
}

/// The log files of a checkpoint directory worth reading, in a fixed order.
pub fn logs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for name in [
        "dump.log",
        "restore.log",
        "dump4.log",
        "criu.log",
        "app.stderr",
        "app.stdout",
    ] {
        let p = dir.join(name);
        if safe::is_plain_file(&p) {
            v.push(p);
        }
    }
    let logs = dir.join("logs");
    if safe::is_plain_dir(&logs) {
        v.extend(safe::plain_files_in(&logs));
    }
    // One folder per restore (`restores/<time>-<pid>/`): the newest few, oldest first.
    let restores = dir.join("restores");
    if safe::is_plain_dir(&restores) {
        let subs = safe::plain_dirs_in(&restores);
        for sub in &subs[subs.len().saturating_sub(safe::MAX_RESTORES)..] {
            v.extend(
                safe::plain_files_in(sub)
                    .into_iter()
                    .filter(|p| !p.ends_with("pid") && !p.to_string_lossy().ends_with(".socket")),
            );
        }
    }
    v.truncate(safe::MAX_FILES);
    v
}

/// The logs to read for a path given by the user: the file itself, or for a directory the
/// checkpoint's known logs (`logs_in`) plus any other `*.log`, `*.stderr`, `*.err` or `*.out`
/// file directly inside it.
pub fn logs_for(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut v = logs_in(path);
    std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    let more: Vec<PathBuf> = safe::plain_files_in(path)
        .into_iter()
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            [".log", ".stderr", ".err", ".out", ".txt"]
                .iter()
                .any(|s| name.ends_with(s))
        })
        .filter(|p| !v.contains(p))
        .collect();
    v.extend(more);
    v.truncate(safe::MAX_FILES);
    Ok(v)
}
