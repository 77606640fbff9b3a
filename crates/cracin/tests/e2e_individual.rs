//! End-to-end tests of "every restored instance is its own individual", with real CRIU on real
//! JVMs: an application holding one generator of each kind (seeded by the JDK and explicitly) is
//! checkpointed once and restored three times. The JDK-seeded generators must give different
//! values in every restore, the explicitly seeded ones the same; with `--no-renew` the
//! JDK-seeded ones repeat (which shows the test can fail). `--env` and `--property` must be what
//! the restored JVM sees. The same on Temurin 25 when it is installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// Generators the JDK seeded: fresh in every restore.
const RENEWED: &[&str] = &[
    "sha1_default",
    "drbg",
    "random_default",
    "math_random",
    "thread_local",
    "splittable",
];
/// Generators the application seeded: the same sequence in every restore.
const KEPT: &[&str] = &["sha1_explicit", "random_explicit"];

/// The random-kinds app, compiled once per run (class file version 17: runs on 17 and 25) under
/// cargo's target directory, so that nothing stays behind in /tmp.
fn randoms_classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("randoms-classes");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let src = repo_root().join("tests/fixtures/apps/random-kinds/Randoms.java");
        let st = Command::new("javac")
            .args(["--release", "17", "-d"])
            .arg(&dir)
            .arg(&src)
            .status()
            .expect("javac runs");
        assert!(st.success(), "javac failed");
        dir
    })
}

/// Checkpoints Randoms on `port` with `java`; the warm-up requests use every generator on the
/// handler thread (so its ThreadLocalRandom seed is in the image).
fn checkpoint(ck: &Path, port: u16, java: &str, extra: &[&str]) {
    let url = format!("http://127.0.0.1:{port}");
    let mut c = cracin();
    c.current_dir(randoms_classes())
        .args(["checkpoint", "--out", ck.to_str().unwrap()])
        .args(["--ready", &format!("{url}/health"), "--ready-timeout", "60"])
        .args(["--warmup", &format!("{url}/"), "--warmup-requests", "5"])
        .args(extra)
        .args(["--", java, "-cp", ".", "Randoms", &port.to_string()]);
    let out = run(&mut c);
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    assert!(stderr(&out).contains("hold") || stdout(&out).contains("hold"));
}

/// Restores, reads the first answer of the restored instance, stops it with SIGTERM.
fn restore_once(ck: &Path, port: u16, extra: &[&str]) -> serde_json::Value {
    let mut c = cracin();
    c.args(["restore", ck.to_str().unwrap(), "--json"])
        .args(extra);
    let out = run(&mut c);
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    let pid = restored_pid(&out);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let renew_ms = v["renew_ms"].as_f64();
    let answer = get(&format!("http://127.0.0.1:{port}/"));
    kill_and_wait(pid, libc::SIGTERM);
    let (st, body) = answer.expect("the restored app answers");
    assert_eq!(st, 200, "{body}");
    assert!(renew_ms.is_some(), "restore --json reports renew_ms: {v}");
    serde_json::from_str(&body).unwrap()
}

fn distinct(values: &[serde_json::Value], key: &str) -> usize {
    let mut v: Vec<String> = values.iter().map(|a| a[key].to_string()).collect();
    v.sort();
    v.dedup();
    v.len()
}

/// Checkpoint once, restore three times with different --env/--property: JDK-seeded
/// generators differ in each, explicit ones repeat, the settings are seen.
fn three_restores(java: &str, name: &str) {
    let work = tempdir(name);
    let ck = work.join("ck");
    let port = free_port();
    checkpoint(&ck, port, java, &[]);
    let m = manifest(&ck);
    assert_eq!(m["individual"]["renew"], true, "{}", m["individual"]);
    let mut answers = Vec::new();
    for i in 1..=3 {
        let env = format!("CRACIN_TEST_ENV=value {i}");
        let prop = format!("cracin.test.prop=p=={i}");
        let a = restore_once(&ck, port, &["--env", &env, "--property", &prop]);
        assert_eq!(a["env"], format!("value {i}"), "{a}");
        assert_eq!(a["property"], format!("p=={i}"), "{a}");
        answers.push(a);
    }
    for k in RENEWED {
        assert_eq!(distinct(&answers, k), 3, "{k} must differ: {answers:?}");
    }
    for k in KEPT {
        assert_eq!(distinct(&answers, k), 1, "{k} must repeat: {answers:?}");
    }
    assert_nothing_left_matching(port);
    let _ = std::fs::remove_dir_all(&work);
}

fn assert_nothing_left_matching(port: u16) {
    let left = processes_with(&format!("Randoms {port}"));
    for p in &left {
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "processes left running: {left:?}");
}

#[test]
fn jdk_seeded_generators_are_fresh_in_every_restore_explicit_ones_repeat() {
    require!(can_checkpoint());
    three_restores("java", "individual-17");
}

#[test]
fn with_no_renew_the_restores_repeat_the_checkpoints_numbers() {
    require!(can_checkpoint());
    let work = tempdir("individual-norenew");
    let ck = work.join("ck");
    let port = free_port();
    checkpoint(&ck, port, "java", &["--no-renew"]);
    assert_eq!(manifest(&ck)["individual"]["renew"], false);
    let answers: Vec<_> = (0..2)
        .map(|_| restore_once(&ck, port, &["--env", "CRACIN_TEST_ENV=still applied"]))
        .collect();
    for k in RENEWED.iter().chain(KEPT) {
        assert_eq!(
            distinct(&answers, k),
            1,
            "{k} repeats without renewal: {answers:?}"
        );
    }
    // Restore-time settings do not depend on renewal.
    assert_eq!(answers[0]["env"], "still applied");
    assert_nothing_left_matching(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn restore_time_settings_are_refused_when_malformed() {
    require!(can_checkpoint());
    let work = tempdir("individual-bad");
    let out = run(cracin().args(["restore", work.to_str().unwrap(), "--env", "NO_EQUALS_SIGN"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--env `NO_EQUALS_SIGN` has no `=`"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// Temurin 25 if it is installed (/usr/lib/jvm or /opt).
fn jdk25() -> Option<PathBuf> {
    let mut dirs = Vec::new();
    for root in ["/usr/lib/jvm", "/opt"] {
        if let Ok(rd) = std::fs::read_dir(root) {
            dirs.extend(rd.flatten().map(|e| e.path()));
        }
    }
    dirs.into_iter()
        .filter(|d| {
            let n = d
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            n.contains("25") && (n.contains("temurin") || n.contains("jdk"))
        })
        .map(|d| d.join("bin/java"))
        .find(|j| j.is_file())
}

#[test]
fn on_jdk_25_too() {
    require!(can_checkpoint());
    let java = require!(jdk25().ok_or("no JDK 25 under /usr/lib/jvm or /opt"));
    three_restores(java.to_str().unwrap(), "individual-25");
}
