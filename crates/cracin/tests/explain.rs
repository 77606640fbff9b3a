//! `cracin explain` as a user runs it: on real CRIU logs captured on this machine
//! (`tests/fixtures/logs/`), on a checkpoint directory, with `--json`, on a log no rule knows, and
//! on a path that does not exist.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{cracin, repo_root, stdout};

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/logs")
}

fn explain(args: &[&str]) -> Output {
    cracin()
        .arg("explain")
        .args(args)
        .output()
        .expect("run cracin")
}

#[test]
fn explains_a_log_file() {
    let f = fixtures().join("file-size-changed/restore.log");
    let o = explain(&[f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.starts_with("a file the JVM had open changed after the checkpoint\n"),
        "{out}"
    );
    assert!(
        out.contains("  cause: CRIU checks the size of every regular file"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  evidence: {}:121: ", f.display()))
            && out.contains("has bad size 54 (expect 24)"),
        "{out}"
    );
    assert!(
        out.contains("  fix: a changed jar or class file means the application changed"),
        "{out}"
    );
}

#[test]
fn explains_a_checkpoint_directory_as_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("criu-vdso-too-old/criu-3.17-check.log"),
        dir.path().join("check.log"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("tcp-established-needed/dump.log"),
        dir.path().join("dump.log"),
    )
    .unwrap();
    let o = explain(&[dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["criu-vdso-too-old", "tcp-established-needed"]);
    let first = &v["findings"][0];
    assert_eq!(
        first["evidence"]["file"],
        dir.path().join("check.log").to_str().unwrap()
    );
    assert_eq!(first["evidence"]["line"], 26);
    assert_eq!(
        first["reference"],
        "https://github.com/checkpoint-restore/criu/issues/2532"
    );
    assert_eq!(v["logs"].as_array().unwrap().len(), 2);
    assert_eq!(v["tail"].as_array().unwrap().len(), 0);
}

#[test]
fn an_unknown_failure_prints_the_error_lines_and_the_logs() {
    let f = fixtures().join("_unknown/restore-from-empty-dir.log");
    let o = explain(&[f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(out.starts_with("no known failure recognized"), "{out}");
    assert!(out.contains(&format!("{}:64: ", f.display())), "{out}");
    assert!(out.contains("Unexpected EOF on (empty-image)"), "{out}");
    assert!(
        out.contains(&format!("logs read:\n  {}", f.display())),
        "{out}"
    );

    let o = explain(&[f.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    assert_eq!(v["tail"].as_array().unwrap().last().unwrap()["line"], 64);
}

#[test]
fn a_bad_path_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-checkpoint");
    let o = explain(&[missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot read") && err.contains("no-such-checkpoint"),
        "{err}"
    );
}

/// A checkpoint directory is anyone's input: `explain` reads the newest `restores/*/` logs,
/// never follows a symlink out of the directory, reads a bounded amount of a huge log, and
/// prints no terminal escape sequence that a log carried.
#[test]
fn explain_is_bounded_does_not_follow_symlinks_and_strips_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A restore folder with a real CRIU failure in it.
    let r = d.join("restores/2026-12-02T04-00-00-000Z-42");
    std::fs::create_dir_all(&r).unwrap();
    std::fs::copy(
        fixtures().join("file-size-changed/restore.log"),
        r.join("restore.log"),
    )
    .unwrap();
    // A secret outside, linked from inside under log names.
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "Error: top-secret-line-from-outside\n").unwrap();
    std::os::unix::fs::symlink(&secret, d.join("dump.log")).unwrap();
    std::os::unix::fs::symlink(&secret, d.join("evil.log")).unwrap();
    std::os::unix::fs::symlink(outside.path(), d.join("logs")).unwrap();
    // A log with escape sequences (retitle the terminal, clear the screen, colour).
    std::fs::write(
        d.join("app.stderr"),
        "Exception in thread \"main\" \u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mboom\u{1b}[0m\n",
    )
    .unwrap();
    // A huge log: read up to a bound, not to the end.
    let big = std::fs::File::create(d.join("huge.log")).unwrap();
    big.set_len(200 << 20).unwrap();

    let o = explain(&[d.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let logs: Vec<&str> = v["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.ends_with("restores/2026-12-02T04-00-00-000Z-42/restore.log")),
        "{logs:?}"
    );
    assert!(!logs
        .iter()
        .any(|l| l.ends_with("dump.log") || l.ends_with("evil.log")));
    assert!(!out.contains("top-secret-line-from-outside"));
    assert_eq!(v["findings"][0]["rule"], "file-size-changed", "{out}");

    // Text output without any known rule: the escape sequences are gone.
    std::fs::remove_dir_all(d.join("restores")).unwrap();
    let o = explain(&[d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("boom"), "{out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
}
