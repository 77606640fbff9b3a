//! Diagnosis: reads the logs a failed checkpoint or restore left behind (CRIU's dump and restore
//! logs, CRaC's dump4.log, OpenJ9's criu.log, the application's output, an engine's error) and
//! says in plain words what went wrong, with the decisive log line as evidence and the fix.
//! The rules are data (see `rules.rs`); this module only matches them.

use std::path::{Path, PathBuf};

use serde::Serialize;

mod rules;
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

/// Matches every rule against every line of the given files; the first match of each rule wins.
/// Findings are ordered by rule priority (the order of `RULES`).
pub fn explain_files(paths: &[PathBuf]) -> Vec<Finding> {
    let compiled: Vec<(usize, regex::Regex)> = RULES
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.patterns.iter().map(move |p| (i, regex::Regex::new(p).expect("rule regex"))))
        .collect();
    let mut found: Vec<Option<Finding>> = vec![None; RULES.len()];
    for path in paths {
        let text = crate::process::read_lossy(path);
        for (n, line) in text.lines().enumerate() {
            for (i, re) in &compiled {
                if found[*i].is_none() && re.is_match(line) {
                    let r = &RULES[*i];
                    found[*i] = Some(Finding {
                        rule: r.id.to_string(),
                        title: r.title.to_string(),
                        cause: r.cause.to_string(),
                        fix: r.fix.to_string(),
                        reference: r.reference.map(str::to_string),
                        evidence: Evidence {
                            file: path.clone(),
                            line: n + 1,
                            text: line.trim().to_string(),
                        },
                    });
                }
            }
        }
    }
    found.into_iter().flatten().collect()
}

/// The log files of a checkpoint directory worth reading, in a fixed order.
pub fn logs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for name in ["dump.log", "restore.log", "dump4.log", "criu.log", "app.stderr", "app.stdout"] {
        let p = dir.join(name);
        if p.is_file() {
            v.push(p);
        }
    }
    for sub in ["logs", "restores"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            let mut more: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
            more.sort();
            v.extend(more);
        }
    }
    v
}
