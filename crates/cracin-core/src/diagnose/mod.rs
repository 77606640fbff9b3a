//! Diagnosis: reads the logs a failed checkpoint or restore left behind (CRIU's dump and restore
//! logs, CRaC's dump4.log, OpenJ9's criu.log, the application's output, an engine's error) and
//! says in plain words what went wrong, with the decisive log line as evidence and the fix.
//! The rules are data (see `rules.rs`); this module only matches them, and when no rule knows
//! the failure it still points at the lines that matter (`unknown_tail`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

mod rules;
pub mod safe;
pub mod space;
pub use rules::{Rule, RULES};

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

/// Lines every CRIU run on some hosts prints although nothing is wrong: never evidence.
const NOISE: &[&str] = &[
    "rlimit: Can't setup RLIMIT_NOFILE",
    "Can't keep kdat cache on non-tempfs",
    "Lazy pages are not available",
];

fn is_noise(line: &str) -> bool {
    NOISE.iter().any(|n| line.contains(n))
}

/// A line CRIU (or the JVM, or a tool) marks as an error.
fn is_error_line(line: &str) -> bool {
    line.contains("Error (")
        || line.contains("Error:")
        || line.contains("error:")
        || line.contains("Exception")
        || line.contains("FAILED")
        || line.contains("BUG at")
        || line.contains("[error]")
}

fn compiled_rules() -> &'static [(usize, regex::Regex)] {
    static COMPILED: std::sync::OnceLock<Vec<(usize, regex::Regex)>> = std::sync::OnceLock::new();
    COMPILED.get_or_init(|| {
        RULES
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.patterns
                    .iter()
                    .map(move |p| (i, regex::Regex::new(p).expect("rule regex")))
            })
            .collect()
    })
}

/// Matches every rule against every line of the given files (missing files are skipped).
/// Each rule yields at most one finding: its first match, except that a match on a line CRIU
/// marks as an error (`Error (...)`) beats an earlier match on an informational line. Findings
/// are ordered by rule priority (the order of `RULES`: root causes before consequences).
pub fn explain_files(paths: &[PathBuf]) -> Vec<Finding> {
    let compiled = compiled_rules();
    // For each rule: (is an error line, evidence).
    let mut found: Vec<Option<(bool, Evidence)>> = vec![None; RULES.len()];
    for path in paths {
        let text = safe::read_bounded(path);
        for (n, line) in text.lines().enumerate() {
            if is_noise(line) {
                continue;
            }
            let err = is_error_line(line);
            for (i, re) in compiled {
                let better = match &found[*i] {
                    None => true,
                    Some((was_err, _)) => err && !was_err,
                };
                if better && re.is_match(line) {
                    found[*i] = Some((
                        err,
                        Evidence {
                            file: path.clone(),
                            line: n + 1,
                            text: safe::sanitize(line.trim()),
                        },
                    ));
                }
            }
        }
    }
    found
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| f.map(|(_, ev)| finding(&RULES[i], ev)))
        .collect()
}

fn finding(r: &Rule, evidence: Evidence) -> Finding {
    Finding {
        rule: r.id.to_string(),
        title: r.title.to_string(),
        cause: r.cause.to_string(),
        fix: r.fix.to_string(),
        reference: r.reference.map(str::to_string),
        evidence,
    }
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

/// Explains the logs of `path` (a log file or a checkpoint directory).
pub fn explain_path(path: &Path) -> Result<Explanation> {
    let logs = logs_for(path)?;
    let findings = explain_files(&logs);
    let tail = if findings.is_empty() {
        unknown_tail(&logs)
    } else {
        Vec::new()
    };
    Ok(Explanation {
        logs,
        findings,
        tail,
    })
}

/// A finding as the text cracin prints (title, cause, evidence, fix, reference), one item per
/// line, no trailing newline.
pub fn render_finding(f: &Finding) -> String {
    let mut s = format!(
        "{}\n  cause: {}\n  evidence: {}:{}: {}\n  fix: {}",
        f.title,
        f.cause,
        safe::show(&f.evidence.file),
        f.evidence.line,
        f.evidence.text,
        f.fix
    );
    if let Some(r) = &f.reference {
        s.push_str("\n  see: ");
        s.push_str(r);
    }
    s
}

/// An explanation as text: every finding, or the lines that matter and where the logs are.
pub fn render(e: &Explanation) -> String {
    if e.logs.is_empty() {
        return "no logs found".into();
    }
    if !e.findings.is_empty() {
        return e
            .findings
            .iter()
            .map(render_finding)
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    let mut s = String::from("no known failure recognized; the lines that matter:\n");
    for ev in &e.tail {
        s.push_str(&format!(
            "  {}:{}: {}\n",
            safe::show(&ev.file),
            ev.line,
            ev.text
        ));
    }
    s.push_str("logs read:");
    for l in &e.logs {
        s.push_str(&format!("\n  {}", safe::show(l)));
    }
    s
}
