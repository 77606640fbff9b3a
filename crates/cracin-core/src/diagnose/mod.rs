//! Diagnosis: reads the logs a failed checkpoint or restore left behind (CRIU's dump and restore
//! logs, CRaC's dump4.log, OpenJ9's criu.log, the application's output, an engine's error) and
//! says in plain words what went wrong, with the decisive log line as evidence and the fix.
//! The parts: `finding` (the data a diagnosis is made of, which errors carry), `evidence` (which
//! logs to read and which lines matter), `rules` (the catalog of known failures, as data),
//! `safe` (bounded, sanitized reading of logs that may be someone else's), `space` (a full disk
//! told apart from other failures); this module matches the rules against the evidence, and when
//! no rule knows the failure it still points at the lines that matter (`unknown_tail`).

use std::path::{Path, PathBuf};

use crate::error::Result;

pub mod evidence;
pub mod finding;
mod rules;
pub mod safe;
pub mod space;

use evidence::{is_error_line, is_noise};
pub use evidence::{logs_for, logs_in, unknown_tail};
pub use finding::{Evidence, Explanation, Finding};
pub use rules::{Rule, RULES};

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
