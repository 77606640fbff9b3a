//! The diagnosis rules against real logs: every rule has a fixture under
//! `tests/fixtures/logs/<rule-id>/` (captured on a real machine by `scripts/capture-fixtures.sh`,
//! or for CRaC/OpenJ9-only messages built from the documented text, named `documented-*`), and
//! each fixture must yield its rule first, with evidence pointing at the right file and line.

use std::path::{Path, PathBuf};

use cracin_core::diagnose::{self, RULES};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/logs")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_rule_has_a_fixture_that_yields_it_first() {
    let mut problems = Vec::new();
    for rule in RULES {
        let dir = fixtures().join(rule.id);
        if !dir.is_dir() {
            problems.push(format!(
                "{}: no fixture directory {}",
                rule.id,
                dir.display()
            ));
            continue;
        }
        let files = files_in(&dir);
        if files.is_empty() {
            problems.push(format!("{}: fixture directory is empty", rule.id));
        }
        // Only what a CRaC JDK alone prints may rest on documented text; everything else needs
        // a log captured on a real machine.
        let real = files.iter().any(|f| {
            !f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("documented-")
        });
        if !real && !rule.id.starts_with("crac-") {
            problems.push(format!(
                "{}: only documented fixtures, no captured log",
                rule.id
            ));
        }
        for f in files {
            let found = diagnose::explain_files(std::slice::from_ref(&f));
            match found.first() {
                None => problems.push(format!("{}: {} yields no finding", rule.id, f.display())),
                Some(first) if first.rule != rule.id => problems.push(format!(
                    "{}: {} yields {} first ({}:{})",
                    rule.id,
                    f.display(),
                    first.rule,
                    first.evidence.line,
                    first.evidence.text
                )),
                Some(first) => {
                    assert_eq!(first.evidence.file, f);
                    // The evidence is the real line of the file, at the line number it gives.
                    let text = std::fs::read_to_string(&f).unwrap();
                    let line = text.lines().nth(first.evidence.line - 1).unwrap();
                    assert_eq!(line.trim(), first.evidence.text, "{}", f.display());
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "rule fixtures:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_fixture_directory_belongs_to_a_rule() {
    for e in std::fs::read_dir(fixtures()).unwrap().flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('_') {
            continue;
        }
        assert!(
            RULES.iter().any(|r| r.id == name),
            "fixture directory {name} has no rule"
        );
    }
}

#[test]
fn rule_ids_are_unique_and_rules_are_complete() {
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(n, ids.len(), "duplicate rule ids");
    for r in RULES {
        assert!(
            !r.patterns.is_empty() && !r.cause.is_empty() && !r.fix.is_empty(),
            "{}",
            r.id
        );
        for p in r.patterns {
            regex::Regex::new(p).unwrap_or_else(|e| panic!("{}: {p}: {e}", r.id));
        }
    }
}

/// Exact evidence for a few real logs: the decisive line, not the first error-looking one.
#[test]
fn evidence_points_at_the_decisive_line() {
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "criu-vdso-too-old",
            "criu-3.17-check.log",
            26,
            "vdso: Unexpected rt vDSO area bounds",
        ),
        (
            "criu-so-passcred-too-old",
            "criu-4.1.1-dump.log",
            121,
            "sockets: Can't get 1:16 opt: Operation not supported",
        ),
        (
            "file-size-changed",
            "restore.log",
            121,
            "has bad size 54 (expect 24)",
        ),
        (
            "port-in-use",
            "restore.log",
            121,
            "inet: Can't bind inet socket (id 37): Address already in use",
        ),
        (
            "file-locks",
            "dump.log",
            121,
            "Some file locks are hold by dumping tasks! You can try --file-locks to dump them.",
        ),
        (
            "inherited-fd",
            "dump.log",
            121,
            "Can't lookup mount=43 for fd=9 path=/f",
        ),
    ];
    for (rule, file, line, text) in cases {
        let f = fixtures().join(rule).join(file);
        let found = diagnose::explain_files(std::slice::from_ref(&f));
        let first = found
            .first()
            .unwrap_or_else(|| panic!("{rule}: no finding"));
        assert_eq!(first.rule, *rule);
        assert_eq!(first.evidence.file, f);
        assert_eq!(first.evidence.line, *line, "{rule}");
        assert!(
            first.evidence.text.ends_with(text),
            "{rule}: {}",
            first.evidence.text
        );
    }
}

/// The harmless rlimit line every criu run prints here is never evidence, even though CRIU
/// prints it as an `Error (...)` line.
#[test]
fn harmless_lines_are_not_evidence() {
    let f = fixtures().join("_unknown/restore-from-empty-dir.log");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("rlimit: Can't setup RLIMIT_NOFILE"));
    assert!(diagnose::explain_files(std::slice::from_ref(&f)).is_empty());
    let tail = diagnose::unknown_tail(std::slice::from_ref(&f));
    assert!(
        tail.iter().all(|e| !e.text.contains("RLIMIT_NOFILE")),
        "{tail:?}"
    );
}

#[test]
fn unknown_failure_returns_the_error_lines_of_each_log() {
    let unknown = fixtures().join("_unknown/restore-from-empty-dir.log");
    let soft = fixtures().join("soft-dirty-missing/dump-track-mem.log");
    let tail = diagnose::unknown_tail(&[unknown.clone(), soft.clone()]);
    let last_unknown = tail.iter().rfind(|e| e.file == unknown).unwrap();
    assert_eq!(last_unknown.line, 64);
    assert!(last_unknown
        .text
        .ends_with("Unexpected EOF on (empty-image)"));
    assert!(tail
        .iter()
        .any(|e| e.file == soft && e.text.contains("Tracking memory is not available")));

    // A log without any error line: its last lines.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("app.stdout");
    std::fs::write(&plain, "one\ntwo\n\nthree\nfour\nfive\nsix\nseven\n").unwrap();
    let tail = diagnose::unknown_tail(std::slice::from_ref(&plain));
    let texts: Vec<&str> = tail.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["three", "four", "five", "six", "seven"]);
    assert_eq!(tail[0].line, 4);
}

#[test]
fn several_findings_come_in_rule_order() {
    let dir = tempfile::tempdir().unwrap();
    // A checkpoint directory whose dump failed on a PID clash and whose restore log has the
    // port clash: both are found, in catalog order.
    std::fs::copy(
        fixtures().join("port-in-use/restore.log"),
        dir.path().join("restore.log"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("pid-taken/restore.log"),
        dir.path().join("dump.log"),
    )
    .unwrap();
    let e = diagnose::explain_path(dir.path()).unwrap();
    let rules: Vec<&str> = e.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["pid-taken", "port-in-use"]);
    assert_eq!(e.findings[0].evidence.file, dir.path().join("dump.log"));
    assert!(e.tail.is_empty());
}

#[test]
fn rendered_text_names_cause_evidence_fix_and_reference() {
    let f = fixtures().join("criu-so-passcred-too-old/criu-4.1.1-dump.log");
    let e = diagnose::explain_path(&f).unwrap();
    let text = diagnose::render(&e);
    let expected = format!(
        "CRIU is too old for this kernel (SO_PASSCRED on TCP sockets)\n\
         \x20 cause: since Linux 6.16 SO_PASSCRED can not be read on TCP sockets; CRIU before 4.2 asks for it and fails on every JVM that has a socket open\n\
         \x20 evidence: {}:121: (00.075409) Error (criu/sockets.c:628): sockets: Can't get 1:16 opt: Operation not supported\n\
         \x20 fix: install CRIU 4.2.1 or newer (`scripts/setup.sh` builds it from Debian's source) and pass it with --criu PATH\n\
         \x20 see: https://github.com/checkpoint-restore/criu/issues/2705",
        f.display()
    );
    assert_eq!(text, expected);

    let u = fixtures().join("_unknown/restore-from-empty-dir.log");
    let text = diagnose::render(&diagnose::explain_path(&u).unwrap());
    assert!(text.starts_with("no known failure recognized"), "{text}");
    assert!(text.contains(&format!("{}:64: ", u.display())), "{text}");
    assert!(
        text.ends_with(&format!("logs read:\n  {}", u.display())),
        "{text}"
    );
}

#[test]
fn a_directory_reads_its_logs_and_a_bad_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("no-space/dump.log"),
        dir.path().join("dump.log"),
    )
    .unwrap();
    std::fs::write(dir.path().join("other.log"), "nothing here\n").unwrap();
    std::fs::write(dir.path().join("pages-1.img"), "Address already in use\n").unwrap();
    let logs = diagnose::logs_for(dir.path()).unwrap();
    assert_eq!(
        logs,
        [dir.path().join("dump.log"), dir.path().join("other.log")]
    );
    let e = diagnose::explain_path(dir.path()).unwrap();
    assert_eq!(e.findings.len(), 1);
    assert_eq!(e.findings[0].rule, "no-space");
    assert!(diagnose::explain_path(&dir.path().join("missing")).is_err());
}
