//! End-to-end tests of coordination with real CRIU on Debian's plain OpenJDK: an application
//! that registers org.crac Resources (org.crac 1.5.0 from Maven Central) runs under cracin's own
//! provider. Its Resources must run around the real dump and after every real restore: a
//! Random is reseeded (every restore answers differently), beforeCheckpoint ran once, afterRestore
//! once per restored process; a Resource that refuses aborts the checkpoint while the
//! application carries on; and the application can trigger the checkpoint itself. afterRestore
//! already sees the restore-time --env and --property.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// The crac-resources app compiled against org.crac 1.5.0: (classpath, work dir).
fn app_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| {
        let deps = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("org-crac");
        let st = Command::new("sh")
            .arg(repo_root().join("tests/fixtures/apps/fetch-org-crac.sh"))
            .arg(&deps)
            .status()
            .unwrap();
        assert!(st.success(), "fetching org.crac 1.5.0 failed");
        let jar = deps.join("crac-1.5.0.jar");
        let classes = tempdir("crac-app");
        let st = Command::new("javac")
            .args([
                "-cp",
                jar.to_str().unwrap(),
                "-d",
                classes.to_str().unwrap(),
            ])
            .arg(repo_root().join("tests/fixtures/apps/crac-resources/App.java"))
            .status()
            .unwrap();
        assert!(st.success(), "javac App.java failed");
        format!("{}:{}", classes.display(), jar.display())
    })
}

fn checkpoint(dir: &Path, port: u16, extra: &[&str], app_args: &[&str]) -> std::process::Output {
    let mut c = cracin();
    c.args([
        "checkpoint",
        "--out",
        dir.to_str().unwrap(),
        "--ready-timeout",
        "30",
    ]);
    c.args(extra);
    c.args([
        "--",
        "java",
        "-cp",
        app_classpath(),
        "App",
        &port.to_string(),
    ]);
    c.args(app_args);
    run(&mut c)
}

fn state(port: u16) -> serde_json::Value {
    let (st, body) = get(&format!("http://127.0.0.1:{port}/")).expect("app answers");
    assert_eq!(st, 200);
    serde_json::from_str(&body).unwrap()
}

#[test]
fn resources_run_around_real_dumps_and_restores() {
    require!(can_checkpoint());
    let work = tempdir("coord");
    let ck = work.join("ck");
    let port = free_port();
    let ready = format!("http://127.0.0.1:{port}/");
    let out = checkpoint(
        &ck,
        port,
        &[
            "--ready",
            &ready,
            "--warmup",
            &ready,
            "--warmup-requests",
            "50",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&ck);
    assert_eq!(
        m["coordination"]["trigger"], "ready",
        "{}",
        m["coordination"]
    );
    let log = std::fs::read_to_string(ck.join("app.stdout")).unwrap();
    assert!(
        log.contains("beforeCheckpoint"),
        "Resources ran before the dump: {log}"
    );

    let mut randoms = Vec::new();
    let mut counts = Vec::new();
    for round in 1..=3 {
        // Restore-time settings are in place before afterRestore runs.
        let env = format!("CRACIN_AFTER_ENV=round{round}");
        let out = run(cracin().args([
            "restore",
            ck.to_str().unwrap(),
            "--json",
            "--env",
            &env,
            "--property",
            "cracin.after.prop=set",
        ]));
        assert!(out.status.success(), "restore {round}: {}", stderr(&out));
        let pid = restored_pid(&out);
        let s = state(port);
        assert_eq!(s["after_env"], format!("round{round}/set"), "{s}");
        // Two Resources: each beforeCheckpoint ran once (in reverse order of registration)
        // before the dump, each afterRestore once (in order) in this restored process.
        assert_eq!(s["before"], 2, "{s}");
        assert_eq!(s["after"], 2, "{s}");
        assert_eq!(
            s["order"],
            "refuser.beforeCheckpoint,random.beforeCheckpoint,random.afterRestore,refuser.afterRestore",
            "{s}"
        );
        // The request counter continues from the warm-up's (and the probes') requests, and
        // every restore starts from the same frozen value: a real restore.
        assert!(s["requests"].as_i64().unwrap() > 50, "{s}");
        counts.push(s["requests"].as_i64().unwrap());
        randoms.push(s["random"].as_i64().unwrap());
        let restored_log = std::fs::read_to_string(PathBuf::from(
            serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["stdout"]
                .as_str()
                .unwrap(),
        ))
        .unwrap();
        assert!(restored_log.contains("afterRestore"), "{restored_log}");
        kill_and_wait(pid, libc::SIGKILL);
    }
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    randoms.sort();
    randoms.dedup();
    assert_eq!(
        randoms.len(),
        3,
        "each restore reseeded its Random: {randoms:?}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn a_refusing_resource_aborts_the_checkpoint_and_the_app_carries_on() {
    require!(can_checkpoint());
    let work = tempdir("coord-refuse");
    let ck = work.join("ck");
    let port = free_port();
    let ready = format!("http://127.0.0.1:{port}/");
    let out = checkpoint(&ck, port, &["--ready", &ready], &["--fail-before"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("a Resource refused the checkpoint"), "{e}");
    assert!(e.contains("carried on and still answered"), "{e}");
    assert!(
        e.contains("CheckpointException") || e.contains("refuser"),
        "the exception is shown: {e}"
    );
    assert!(!ck.exists(), "no checkpoint was written");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn the_application_triggers_its_own_checkpoint() {
    require!(can_checkpoint());
    let work = tempdir("coord-app");
    let ck = work.join("ck");
    let port = free_port();
    let out = checkpoint(
        &ck,
        port,
        &["--trigger", "app", "--trigger-timeout", "30"],
        &["--checkpoint-after", "1500"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(cracin().args([
        "restore",
        ck.to_str().unwrap(),
        "--json",
        "--ready",
        &format!("http://127.0.0.1:{port}/"),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let s = state(port);
    assert_eq!(
        s["checkpoint"], "restored",
        "checkpointRestore() returned in the restored JVM: {s}"
    );
    kill_and_wait(restored_pid(&out), libc::SIGKILL);

    // An application that never asks: a clear timeout, nothing left running.
    let port = free_port();
    let out = checkpoint(
        &work.join("ck2"),
        port,
        &["--trigger", "app", "--trigger-timeout", "3"],
        &[],
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("did not call org.crac.Core.checkpointRestore() within 3s"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&work);
}
