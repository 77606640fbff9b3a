//! End-to-end tests on the reference workload: the seed's OSGi application (Equinox, Declarative
//! Services, the Jakarta REST whiteboard on Jetty), built by `scripts/build-examples.sh`.
//! `app.jar` is checkpointed after a warm-up and restored five times with its state, stopped
//! gracefully each time (SIGTERM, and Ctrl-C on a foreground restore); `app-crac.jar`
//! runs on the plain JDK (org.crac falls back to its no-op), and under cracin's provider its
//! Jetty connector Resource closes the listening socket before the dump and reopens it after the
//! restore, with the checkpoint triggered by the application's own component.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn jar(name: &str) -> Need<PathBuf> {
    let target = repo_root().join("examples/osgi-jakartars/target");
    built(target.join(name), "scripts/build-examples.sh")
}

fn activated_at(log: &str) -> i64 {
    log.lines()
        .find_map(|l| l.split("ModifierResource activated at ").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no activation line in {log}"))
}

fn check_fubar(port: u16) {
    let (st, body) = get(&format!("http://127.0.0.1:{port}/modify/fubar")).expect("answers");
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let modified: Vec<&str> = v["modified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        modified.contains(&"FUBAR") && modified.contains(&"rabuf"),
        "{body}"
    );
}

/// The saved scratch files of a checkpoint (cracin.json's `files`).
fn saved_paths(ck: &std::path::Path) -> Vec<PathBuf> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("cracin.json")).unwrap()).unwrap();
    m["files"]["entries"]
        .as_array()
        .expect("cracin.json records the open files")
        .iter()
        .filter(|e| e["action"] == "saved")
        .map(|e| PathBuf::from(e["path"].as_str().unwrap()))
        .collect()
}

/// Checkpoints the reference application (`jar` on `java`) after `warmup` requests to
/// /modify/fubar.
fn checkpoint_app(
    ck: &std::path::Path,
    port: u16,
    java: &str,
    jar: &std::path::Path,
    warmup: usize,
) -> Output {
    run(cracin().args([
        "checkpoint",
        "--out",
        ck.to_str().unwrap(),
        "--ready",
        &format!("http://127.0.0.1:{port}/health"),
        "--ready-timeout",
        "120",
        "--warmup",
        &format!("http://127.0.0.1:{port}/modify/fubar"),
        "--warmup-requests",
        &warmup.to_string(),
        "--",
        java,
        &format!("-Dorg.osgi.service.http.port={port}"),
        "-jar",
        jar.to_str().unwrap(),
    ]))
}

/// A restored instance answers with the checkpoint's state: the warm-up's requests plus the
/// one `check_fubar` makes (nothing of an earlier instance), and the original start time.
fn check_checkpointed_state(port: u16, warmup: usize, started: i64, what: &str) {
    check_fubar(port);
    let (st, stats) = get(&format!("http://127.0.0.1:{port}/modify/stats")).unwrap();
    assert_eq!(st, 200, "{what}: {stats}");
    assert_eq!(
        json_num(&stats, "requestCount"),
        warmup as i64 + 1,
        "{what}: {stats}"
    );
    assert_eq!(
        json_num(&stats, "startupTimestamp"),
        started,
        "{what}: {stats}"
    );
}

/// Stopped the way services are stopped, the application's launcher deletes the framework jar and
/// bundle cache it unpacked to /tmp (`/tmp/osgi-jakartars-<N>/`); cracin saved them with the
/// checkpoint and puts them back, so the same checkpoint restores again and again. Four restores
/// stopped with SIGTERM, a fifth with `--foreground` stopped with Ctrl-C (SIGINT), each with the
/// checkpoint's state.
#[test]
fn app_jar_restored_five_times_with_a_graceful_stop_each_time() {
    require!(can_checkpoint());
    let jar = require!(jar("app.jar"));
    let work = tempdir("osgi");
    let ck = work.join("ck");
    let port = free_port();
    let out = checkpoint_app(&ck, port, "java", &jar, 200);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("saved with the checkpoint"),
        "the summary says what was saved: {}",
        stdout(&out)
    );
    let saved = saved_paths(&ck);
    assert!(
        saved.iter().any(|p| p.starts_with("/tmp")
            && p.to_string_lossy().contains("/osgi-jakartars-")
            && p.ends_with("framework.jar")),
        "the launcher's unpacked framework and bundles are saved: {saved:?}"
    );
    let started = activated_at(&std::fs::read_to_string(ck.join("app.stdout")).unwrap());
    let check_state =
        |round: usize| check_checkpointed_state(port, 200, started, &format!("round {round}"));
    for round in 1..=5 {
        if round < 5 {
            let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json"]));
            assert!(out.status.success(), "restore {round}: {}", stderr(&out));
            let pid = restored_pid(&out);
            let guard = Running(pid);
            check_state(round);
            kill_and_wait(pid, libc::SIGTERM);
            drop(guard);
        } else {
            let (child, pid) = restore_foreground(&ck, &[]);
            let guard = Running(pid);
            check_state(round);
            let code = interrupt_foreground(child, pid);
            drop(guard);
            // The JVM ends on SIGINT after its shutdown hooks: 128 + 2.
            assert_eq!(code, Some(130), "round {round}");
        }
        // The launcher's shutdown hook deleted its bundles: the next restore needs cracin.
        let left: Vec<&PathBuf> = saved.iter().filter(|p| p.exists()).collect();
        assert!(left.is_empty(), "round {round}: still there: {left:?}");
        assert!(
            tmp_entries_with(".cracin-").is_empty(),
            "cracin left temporary files in /tmp"
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// A restored application, killed if a failed assertion ends the test early.
struct Running(u32);
impl Drop for Running {
    fn drop(&mut self) {
        if std::path::Path::new(&format!("/proc/{}", self.0)).exists() {
            kill_and_wait(self.0, libc::SIGKILL);
        }
    }
}

#[test]
fn app_crac_jar_serves_on_the_plain_jdk() {
    let jar = require!(jar("app-crac.jar"));
    require!(on_path("java"));
    let work = tempdir("osgi-plain");
    let port = free_port();
    let out = std::fs::File::create(work.join("out")).unwrap();
    // Killed on every way out of the test, a failed assertion included.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Command::new("java")
        .args([
            &format!("-Dorg.osgi.service.http.port={port}"),
            "-Dapp.checkpoint.delay.ms=100",
            // Killed, the launcher cannot delete what it unpacked: in `work`.
            &format!("-Djava.io.tmpdir={}", work.display()),
            "-XX:-UsePerfData",
            "-jar",
            jar.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut log = String::new();
    while Instant::now() < deadline {
        log = std::fs::read_to_string(work.join("out")).unwrap_or_default();
        if log.contains("checkpointRestore failed")
            && get(&format!("http://127.0.0.1:{port}/modify/fubar"))
                .is_some_and(|(st, _)| st == 200)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // org.crac found no implementation: its no-op throws, the component logs it, the app serves.
    assert!(
        log.contains("checkpointRestore failed: java.lang.UnsupportedOperationException"),
        "{log}"
    );
    check_fubar(port);
    drop(child);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn app_crac_jar_under_cracin_closes_and_reopens_its_connector() {
    require!(can_checkpoint());
    let jar = require!(jar("app-crac.jar"));
    let work = tempdir("osgi-crac");
    let ck = work.join("ck");
    let port = free_port();
    // The seed's CheckpointCreationComponent triggers the checkpoint itself.
    let out = run(cracin().args([
        "checkpoint",
        "--out",
        ck.to_str().unwrap(),
        "--trigger",
        "app",
        "--trigger-timeout",
        "120",
        "--",
        "java",
        &format!("-Dorg.osgi.service.http.port={port}"),
        // Counted from the trigger component's activation, not Jetty's: long enough for the
        // Jetty component (and its connector Resource) to start first on a loaded machine.
        "-Dapp.checkpoint.delay.ms=8000",
        "-jar",
        jar.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(ck.join("app.stdout")).unwrap();
    assert!(
        log.contains("beforeCheckpoint: connectors stopped"),
        "{log}"
    );
    // The JVM listened on no TCP port at dump time: the Resource closed Jetty's socket.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("cracin.json")).unwrap()).unwrap();
    assert_eq!(
        m["listen_ports"],
        serde_json::json!([]),
        "{}",
        m["listen_ports"]
    );
    assert_eq!(m["coordination"]["trigger"], "app");

    let ready = format!("http://127.0.0.1:{port}/health");
    let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json", "--ready", &ready]));
    assert!(out.status.success(), "{}", stderr(&out));
    check_fubar(port);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let restored_log = std::fs::read_to_string(v["stdout"].as_str().unwrap()).unwrap();
    assert!(
        restored_log.contains("afterRestore: connectors started"),
        "{restored_log}"
    );
    assert!(
        restored_log.contains("checkpointRestore returned"),
        "{restored_log}"
    );
    // Stopped as a service is: the launcher removes what it unpacked to /tmp.
    kill_and_wait(restored_pid(&out), libc::SIGTERM);
    let _ = std::fs::remove_dir_all(&work);
}

/// The `java` of an installed JDK `major`: `$CRACIN_JDK<major>` if set, else the JDK whose
/// `release` file says so among /usr/lib/jvm/* and /opt/cracin/jdk-* (scripts/setup.sh puts 21
/// in /opt/cracin/jdk-21; Temurin 25 comes with these machines in /usr/lib/jvm).
fn installed_jdk(major: u32) -> Need<PathBuf> {
    let missing = || {
        format!(
            "no JDK {major} (scripts/setup.sh installs 21 in /opt/cracin/jdk-21; or set CRACIN_JDK{major})"
        )
        .into()
    };
    if let Some(home) = std::env::var_os(format!("CRACIN_JDK{major}")) {
        return Some(PathBuf::from(home).join("bin/java"))
            .filter(|j| j.is_file())
            .ok_or_else(missing);
    }
    let mut homes: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    homes.extend(
        std::fs::read_dir("/opt/cracin")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("jdk-"))
            }),
    );
    homes.sort();
    homes
        .into_iter()
        .find_map(|home| {
            let release = std::fs::read_to_string(home.join("release")).ok()?;
            let version = release
                .lines()
                .find_map(|l| l.strip_prefix("JAVA_VERSION="))?
                .trim_matches('"')
                .to_string();
            let java = home.join("bin/java");
            (version.split('.').next() == Some(&major.to_string()) && java.is_file())
                .then_some(java)
        })
        .ok_or_else(missing)
}

/// Issue 14: the reference application runs, checkpoints and restores on JDK `major` (besides
/// Debian's 17, which the tests above use). One checkpoint after a warm-up, two restores, each
/// answering with the checkpoint's state from a process of that JDK and stopped with SIGTERM.
fn reference_app_on_jdk(major: u32, jar: &std::path::Path, java: &std::path::Path) {
    let java = java.canonicalize().unwrap();
    let work = tempdir(&format!("osgi-jdk{major}"));
    let ck = work.join("ck");
    let port = free_port();
    let out = checkpoint_app(&ck, port, java.to_str().unwrap(), jar, 100);
    assert!(out.status.success(), "JDK {major}: {}", stderr(&out));
    let started = activated_at(&std::fs::read_to_string(ck.join("app.stdout")).unwrap());
    let saved = saved_paths(&ck);
    assert!(
        saved
            .iter()
            .any(|p| p.to_string_lossy().contains("/osgi-jakartars-")),
        "JDK {major}: the launcher's unpacked files are saved: {saved:?}"
    );
    for round in 1..=2 {
        let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json"]));
        assert!(
            out.status.success(),
            "JDK {major}, restore {round}: {}",
            stderr(&out)
        );
        let pid = restored_pid(&out);
        let guard = Running(pid);
        // The restored process is that JDK's java, not the default one.
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
            java,
            "JDK {major}, restore {round}"
        );
        check_checkpointed_state(port, 100, started, &format!("JDK {major}, restore {round}"));
        kill_and_wait(pid, libc::SIGTERM);
        drop(guard);
        // A graceful stop through the launcher's shutdown hook: it removed what it unpacked.
        let left: Vec<&PathBuf> = saved.iter().filter(|p| p.exists()).collect();
        assert!(
            left.is_empty(),
            "JDK {major}, restore {round}: still there: {left:?}"
        );
    }
    assert!(
        tmp_entries_with(".cracin-").is_empty(),
        "cracin left temporary files in /tmp"
    );
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn reference_app_checkpointed_and_restored_on_jdk_21() {
    require!(can_checkpoint());
    let jar = require!(jar("app.jar"));
    let java = require!(installed_jdk(21));
    reference_app_on_jdk(21, &jar, &java);
}

#[test]
fn reference_app_checkpointed_and_restored_on_jdk_25() {
    require!(can_checkpoint());
    let jar = require!(jar("app.jar"));
    let java = require!(installed_jdk(25));
    reference_app_on_jdk(25, &jar, &java);
}
