//! End-to-end tests of the uniqueness check with real CRIU on a real JVM: the Tokens fixture
//! (tests/fixtures/apps/tokens-http, compiled at test time) is checkpointed after a warm-up of
//! its /login and `cracin verify` restores it twice. In `seeded` mode its generators have fixed
//! seeds (kept by design at restore), so both restores hand out the same session cookie, CSRF
//! token, request UUID and nonce: the check must fail with exit code 8 and name them; in
//! `frozen` mode (SHA1PRNG seeding itself, `new Random()`, `Math.random()`, checkpointed with
//! `--no-renew` when cracin has that flag) too. In `fresh` mode (NativePRNG,
//! UUID.randomUUID()) it must pass. In every mode, the constant build hash and the instance ID
//! made before the checkpoint must not be flagged, both instances must be stopped with SIGTERM,
//! and nothing may be left running.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// The Tokens fixture, compiled into the test's own directory (removed with it).
fn tokens_classes(work: &Path) -> PathBuf {
    let dir = work.join("classes");
    let src = repo_root().join("tests/fixtures/apps/tokens-http/Tokens.java");
    let st = Command::new("javac")
        .args(["-d".as_ref(), dir.as_os_str(), src.as_os_str()])
        .status()
        .expect("javac runs");
    assert!(st.success(), "javac failed");
    dir
}

/// `cracin checkpoint --no-renew` (the JDK's generators are then not renewed at restore), when
/// this cracin has that flag; a cracin without it renews nothing anyway.
fn no_renew_flag() -> Vec<&'static str> {
    let help = cracin()
        .args(["checkpoint", "--help"])
        .output()
        .expect("cracin runs");
    if String::from_utf8_lossy(&help.stdout).contains("--no-renew") {
        vec!["--no-renew"]
    } else {
        vec![]
    }
}

fn checkpoint_tokens(work: &Path, dir: &Path, port: u16, mode: &str) {
    let p = port.to_string();
    let mut c = cracin();
    if mode == "frozen" {
        c.args(["checkpoint"]).args(no_renew_flag());
    } else {
        c.arg("checkpoint");
    }
    let out = run(c.current_dir(tokens_classes(work)).args([
        "--out",
        dir.to_str().unwrap(),
        "--ready",
        &format!("http://127.0.0.1:{port}/health"),
        "--ready-timeout",
        "60",
        "--warmup",
        &format!("http://127.0.0.1:{port}/login"),
        "--warmup-requests",
        "50",
        "--",
        "java",
        "-cp",
        ".",
        "Tokens",
        &p,
        mode,
    ]));
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
}

/// Asserts that no JVM of the test (identified by its unique port) is left running.
fn assert_no_tokens_left(port: u16) {
    let left = processes_with(&format!("Tokens {port}"));
    for p in &left {
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "processes left running: {left:?}");
}

fn verdicts(report: &serde_json::Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verdict_of(v: &[(String, String)], field: &str) -> String {
    v.iter()
        .find(|(f, _)| f == field)
        .unwrap_or_else(|| panic!("no {field} in {v:?}"))
        .1
        .clone()
}

fn check_instances_stopped_with_sigterm(report: &serde_json::Value) {
    let inst = report["instances"].as_array().expect("instances");
    assert_eq!(inst.len(), 2, "{report}");
    for i in inst {
        assert_eq!(i["stopped"], "SIGTERM", "{i}");
        assert!(i["ready_ms"].as_f64().is_some(), "{i}");
    }
}

/// The Tokens fixture in `mode`, checkpointed on a free port in a private directory, with
/// nothing left running: (work directory, checkpoint, port).
fn checkpointed_tokens(name: &str, mode: &str) -> (PathBuf, PathBuf, u16) {
    let work = tempdir(name);
    let ck = work.join("ckpt");
    let port = free_port();
    checkpoint_tokens(&work, &ck, port, mode);
    assert_no_tokens_left(port);
    (work, ck, port)
}

/// `cracin verify CK --url URL... --json --rounds 3`.
fn verify_json(ck: &Path, urls: &[&str]) -> Output {
    let mut c = cracin();
    c.args(["verify", ck.to_str().unwrap()]);
    for u in urls {
        c.args(["--url", u]);
    }
    run(c.args(["--json", "--rounds", "3"]))
}

/// The JSON report `cracin verify --json` printed.
fn json_report(out: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).expect("JSON report")
}

#[test]
fn verify_catches_tokens_that_repeat_across_restores() {
    require!(can_checkpoint());
    let (work, ck, port) = checkpointed_tokens("e2e-verify-seeded", "seeded");

    // Three rounds: a token the heuristics happen to miss once (a nonce that looks plain) still
    // leaves two values per instance to judge.
    let out = verify_json(&ck, &["/login"]);
    assert_eq!(out.status.code(), Some(8), "a repeat must exit with 8");
    let report = json_report(&out);
    assert_eq!(report["passed"], false);
    let v = verdicts(&report);
    for f in ["Set-Cookie SESSION", "$.csrf", "$.request", "$.nonce"] {
        assert_eq!(verdict_of(&v, f), "repeated", "{f}: {v:?}");
    }
    // Constants and values made before the checkpoint are not flagged; the counter is not a
    // token at all.
    assert_eq!(verdict_of(&v, "$.build"), "constant");
    assert_eq!(verdict_of(&v, "$.instance"), "constant");
    assert!(v.iter().all(|(f, _)| f != "$.count"), "{v:?}");
    check_instances_stopped_with_sigterm(&report);
    // The error names the URL, the place, the likely cause and the fix.
    let err = stderr(&out);
    assert!(
        err.contains("two restored instances answered with the same random-looking values"),
        "{err}"
    );
    assert!(err.contains("/login"), "{err}");
    assert!(err.contains("Set-Cookie SESSION"), "{err}");
    assert!(err.contains("likely cause"), "{err}");
    assert!(err.contains("afterRestore"), "{err}");
    assert_no_tokens_left(port);

    // The human report says the same; an absolute URL means the same place as a path.
    let out = run(cracin().args([
        "verify",
        ck.to_str().unwrap(),
        "--url",
        &format!("http://127.0.0.1:{port}/login"),
        "--rounds",
        "3",
    ]));
    assert_eq!(out.status.code(), Some(8));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "REPEATED  http://127.0.0.1:{port}/login Set-Cookie SESSION"
        )),
        "{text}"
    );
    assert!(text.contains("result: FAILED"), "{text}");
    assert_no_tokens_left(port);

    // Ctrl-C while the first instance is being asked: cracin stops it before it exits.
    let mut child = cracin()
        .args([
            "verify",
            ck.to_str().unwrap(),
            "--url",
            "/login",
            "--rounds",
            "100000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen.push(l.clone());
        if l.contains("instance 1") && l.contains("sending") {
            break;
        }
    }
    assert!(
        !processes_with(&format!("Tokens {port}")).is_empty(),
        "the first instance must be running now: {seen:?}"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("stopping the instances")),
        "{rest:?}"
    );
    assert_no_tokens_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

/// The generators the issue measured repeating (SHA1PRNG seeding itself, `new Random()`,
/// `Math.random()`), created before the checkpoint and not renewed at restore.
#[test]
fn verify_catches_generators_the_jdk_seeded_before_the_checkpoint() {
    require!(can_checkpoint());
    let (work, ck, port) = checkpointed_tokens("e2e-verify-frozen", "frozen");
    let out = verify_json(&ck, &["/login"]);
    assert_eq!(out.status.code(), Some(8), "a repeat must exit with 8");
    let report = json_report(&out);
    let v = verdicts(&report);
    for f in [
        "Set-Cookie SESSION",
        "$.csrf",
        "$.request",
        "$.nonce",
        "$.r",
    ] {
        assert_eq!(verdict_of(&v, f), "repeated", "{f}: {v:?}");
    }
    check_instances_stopped_with_sigterm(&report);
    assert_no_tokens_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn verify_passes_an_application_with_fresh_tokens() {
    require!(can_checkpoint());
    let (work, ck, port) = checkpointed_tokens("e2e-verify-fresh", "fresh");
    let out = verify_json(&ck, &["/login", "/health"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_report(&out);
    assert_eq!(report["passed"], true);
    assert!(report["compared"].as_u64().unwrap() >= 4, "{report}");
    let v = verdicts(&report);
    for f in ["Set-Cookie SESSION", "$.csrf", "$.request", "$.nonce"] {
        assert_eq!(verdict_of(&v, f), "fresh", "{f}: {v:?}");
    }
    assert_eq!(verdict_of(&v, "$.instance"), "constant");
    check_instances_stopped_with_sigterm(&report);
    assert_no_tokens_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn verify_refuses_bad_input_before_restoring() {
    let work = tempdir("e2e-verify-bad");
    let out = run(cracin().args([
        "verify",
        work.join("nothing").to_str().unwrap(),
        "--url",
        "/login",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a checkpoint directory"));
    let out = run(cracin().args([
        "verify",
        work.to_str().unwrap(),
        "--url",
        "/x",
        "--rounds",
        "1",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--rounds 1 is too few"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&work);
}
