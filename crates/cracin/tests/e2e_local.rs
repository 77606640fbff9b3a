//! End-to-end tests of the local engine with real CRIU on a real JVM: a small HTTP application
//! (compiled with javac at test time) is checkpointed once after a warm-up and restored several
//! times; its answers prove real restores (the counter continues from its checkpointed value,
//! the start timestamp is the original one). Then every error case of `checkpoint` and `restore`
//! must print a clear message, exit with its documented code, and leave nothing running.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Checkpoints `command` (the counter app) on `port`, warmed up with `warmup` requests to `/`.
fn checkpoint_warm(dir: &Path, port: u16, warmup: usize, command: &[&str]) -> std::process::Output {
    let (url, n) = (format!("http://127.0.0.1:{port}/"), warmup.to_string());
    let warm = [
        "--warmup",
        &url,
        "--warmup-requests",
        &n,
        "--warmup-concurrency",
        "2",
    ];
    let options: &[&str] = if warmup > 0 { &warm } else { &[] };
    run(&mut checkpoint_cmd(dir, port, options, command))
}

fn started_from_output(dir: &Path) -> i64 {
    let out = std::fs::read_to_string(dir.join("app.stdout")).unwrap();
    out.split("started=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no started= in {out}"))
}

#[test]
fn checkpoint_once_restore_three_times_with_state() {
    require!(can_checkpoint());
    let work = tempdir("e2e-main");
    let ck = work.join("ckpt");
    let port = free_port();
    let p = port.to_string();
    let out = checkpoint_warm(&ck, port, 300, &["java", "-cp", ".", "Counter", &p]);
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    assert!(
        stdout(&out).contains("checkpoint written to"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("req/s at the end"),
        "warm-up throughput reported"
    );
    assert_nothing_left(port);

    let m = manifest(&ck);
    assert_eq!(m["command"][0], "java");
    assert_eq!(m["warmup_stats"]["requests"], 300);
    assert_eq!(m["listen_ports"][0], port);
    assert!(
        m["jvm"]["version"].as_str().unwrap().contains('.'),
        "{}",
        m["jvm"]
    );
    assert!(m["criu"]["version"].as_str().unwrap().starts_with('4'));
    assert!(m["sizes"]["images_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(m["timings_ms"]["dump"].as_f64().unwrap() > 0.0);
    assert!(!m["host"]["cpu_flags"].as_array().unwrap().is_empty());
    assert!(ck.join("dump.log").is_file() && ck.join("images/pages-1.img").is_file());
    let started = started_from_output(&ck);

    for round in 1..=3 {
        let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json"]));
        assert!(
            out.status.success(),
            "restore {round} failed: {}",
            stderr(&out)
        );
        let pid = restored_pid(&out);
        let (st, body) = get(&format!("http://127.0.0.1:{port}/")).expect("restored app answers");
        assert_eq!(st, 200);
        // 300 warm-up requests hit `/` before the checkpoint: every restore continues at 301.
        assert_eq!(json_num(&body, "count"), 301, "round {round}: {body}");
        assert_eq!(
            json_num(&body, "started"),
            started,
            "round {round}: start time is the original"
        );
        // Stopped moments ago, restored again right away.
        kill_and_wait(pid, libc::SIGKILL);
    }
    // Each restore's output went to its own folder.
    let restores: Vec<_> = std::fs::read_dir(ck.join("restores"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(restores.len(), 3);
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn jar_and_start_script_commands() {
    require!(can_checkpoint());
    let work = tempdir("e2e-forms");
    // java -jar
    let port = free_port();
    let ck = work.join("jar");
    let jar = counter_classes().join("counter.jar");
    let out = checkpoint_warm(
        &ck,
        port,
        0,
        &["java", "-jar", jar.to_str().unwrap(), &port.to_string()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json"]));
    assert!(out.status.success());
    let (st, body) = get(&format!("http://127.0.0.1:{port}/")).unwrap();
    assert_eq!((st, json_num(&body, "count")), (200, 1));
    kill_and_wait(restored_pid(&out), libc::SIGKILL);

    // A vendor-style start script that ends in `exec java`.
    let port = free_port();
    let script = work.join("start.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# a start script as vendors write them\nJAVA_OPTS=\"-Dapp.name=counter\"\nexec java $JAVA_OPTS -cp {} Counter \"$@\"\n",
            counter_classes().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ck = work.join("script");
    let out = checkpoint_warm(&ck, port, 5, &[script.to_str().unwrap(), &port.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&ck);
    assert!(
        m["jvm"]["java"].as_str().unwrap().ends_with("/java"),
        "the JVM behind the script was found: {}",
        m["jvm"]
    );
    let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json"]));
    assert!(out.status.success());
    let (_, body) = get(&format!("http://127.0.0.1:{port}/")).unwrap();
    assert_eq!(json_num(&body, "count"), 6);
    kill_and_wait(restored_pid(&out), libc::SIGKILL);
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn foreground_restore_forwards_sigterm_and_returns_the_exit_status() {
    require!(can_checkpoint());
    let work = tempdir("e2e-fg");
    let port = free_port();
    let ck = work.join("ckpt");
    assert!(checkpoint_counter(&ck, port, &[]).status.success());
    let mut child = cracin()
        .args(["restore", ck.to_str().unwrap(), "--foreground"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&format!("http://127.0.0.1:{port}/health")).is_none() {
        assert!(
            Instant::now() < deadline,
            "foreground restore never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t = Instant::now();
    let st = child.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    // The JVM exits with 143 (128 + SIGTERM) after running its shutdown hooks.
    assert_eq!(st.code(), Some(143), "{st:?}");
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn checkpoint_errors_are_clear_and_leave_nothing_running() {
    require!(can_checkpoint());
    let work = tempdir("e2e-errors");
    let classes = counter_classes();
    let port = free_port();
    let p = port.to_string();
    let ready = format!("http://127.0.0.1:{port}/health");
    let ck = work.join("ck");
    let ck_s = ck.to_str().unwrap();
    let base = |extra: &[&str]| {
        let mut c = cracin();
        c.current_dir(classes).args([
            "checkpoint",
            "--out",
            ck_s,
            "--ready",
            &ready,
            "--ready-timeout",
            "3",
        ]);
        c.args(extra);
        c
    };

    // java missing
    let out = run(base(&[]).args(["--", "no-such-java-binary", "-jar", "x.jar"]));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("`no-such-java-binary` is not on PATH"),
        "{}",
        stderr(&out)
    );

    // jar missing
    let out = run(base(&[]).args(["--", "java", "-jar", "missing-404.jar"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the jar `missing-404.jar` does not exist"));

    // the app exits before it is ready: status and its own output
    let out = run(base(&[]).args(["--", "java", "-cp", ".", "Counter", "not-a-port"]));
    assert_eq!(out.status.code(), Some(4));
    let e = stderr(&out);
    assert!(
        e.contains("exited with exit status 1 before it was ready"),
        "{e}"
    );
    assert!(
        e.contains("NumberFormatException"),
        "the app's own output is shown: {e}"
    );

    // it never becomes ready: timeout, the app is stopped, the log tail printed
    let out = run(base(&[]).args(["--", "java", "-cp", ".", "Counter", &p, "600000"]));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("did not become ready within 3s"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(port);

    // the port is already taken
    let holder = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let out = run(base(&[]).args(["--", "java", "-cp", ".", "Counter", &p]));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains(&format!(
            "port {port} is already in use by pid {}",
            std::process::id()
        )),
        "{}",
        stderr(&out)
    );
    drop(holder);

    // criu missing, criu too old for this kernel (a stand-in binary that reports an old version)
    let out =
        run(base(&["--criu", "/nonexistent/criu"]).args(["--", "java", "-cp", ".", "Counter", &p]));
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("criu was not found"));
    let old = work.join("old-criu");
    std::fs::write(&old, "#!/bin/sh\necho 'Version: 3.17.1'\n").unwrap();
    std::fs::set_permissions(&old, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out =
        run(base(&["--criu", old.to_str().unwrap()])
            .args(["--", "java", "-cp", ".", "Counter", &p]));
    assert_eq!(out.status.code(), Some(3));
    let e = stderr(&out);
    assert!(e.contains("CRIU 3.17.1 cannot checkpoint on Linux"), "{e}");
    assert!(e.contains("install CRIU 4."), "{e}");

    // not root
    if which("setpriv").is_some() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_cracin"))
        .current_dir("/")
        .args([
            "checkpoint",
            "--out",
            "/tmp/cracin-never",
            "--ready",
            &ready,
            "--",
            "java",
            "-version",
        ]);
        let out = run(&mut c);
        assert_eq!(out.status.code(), Some(3));
        assert!(
            stderr(&out).contains("must run as root"),
            "{}",
            stderr(&out)
        );
    }

    // the output directory exists
    std::fs::create_dir_all(&ck).unwrap();
    std::fs::write(ck.join("keep"), "a good checkpoint").unwrap();
    // (recognisably a cracin checkpoint: --force replaces nothing else)
    std::fs::write(
        ck.join("cracin.json"),
        r#"{"format":1,"cracin_version":"0.1.0"}"#,
    )
    .unwrap();
    let out = run(base(&[]).args(["--", "java", "-cp", ".", "Counter", &p]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists") && stderr(&out).contains("--force"));
    // and a failed --force attempt leaves it untouched
    let out = run(base(&["--force"]).args(["--", "java", "-cp", ".", "Counter", "not-a-port"]));
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        std::fs::read_to_string(ck.join("keep")).unwrap(),
        "a good checkpoint"
    );
    // no staging directories are left beside it
    let leftovers: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());

    // no readiness probe at all / a bad one
    let out = run(cracin().args(["checkpoint", "--out", "/tmp/x", "--", "java", "-version"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no readiness probe given"));
    let out = run(cracin().args([
        "checkpoint",
        "--out",
        "/tmp/x",
        "--ready",
        "8080",
        "--",
        "java",
        "-version",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid --ready value"));
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn restore_errors_are_clear() {
    require!(can_checkpoint());
    let work = tempdir("e2e-restore-errors");
    let port = free_port();
    let ck = work.join("ckpt");
    assert!(checkpoint_counter(&ck, port, &[]).status.success());
    let ck_s = ck.to_str().unwrap();

    // a restore while the checkpointed app's port is in use by another process
    let first = run(cracin().args(["restore", ck_s, "--json"]));
    assert!(first.status.success());
    let pid = restored_pid(&first);
    let out = run(cracin().args(["restore", ck_s]));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains(&format!(
            "port {port} is already in use by pid {pid} (java)"
        )),
        "{}",
        stderr(&out)
    );
    kill_and_wait(pid, libc::SIGKILL);

    // a CPU that lacks a feature the checkpoint host had
    let mp = ck.join("cracin.json");
    let good = std::fs::read_to_string(&mp).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&good).unwrap();
    m["cpu"]["required"]
        .as_array_mut()
        .unwrap()
        .push("avx512_imaginary".into());
    std::fs::write(&mp, serde_json::to_string(&m).unwrap()).unwrap();
    let out = run(cracin().args(["restore", ck_s]));
    assert_eq!(out.status.code(), Some(6));
    assert!(stderr(&out).contains("lacks features the checkpoint needs: avx512_imaginary"));
    assert!(stderr(&out).contains("--force"));
    // --force tries anyway (and here it works, the flag being imaginary)
    let out = run(cracin().args(["restore", ck_s, "--force", "--json"]));
    assert!(out.status.success());
    kill_and_wait(restored_pid(&out), libc::SIGKILL);
    std::fs::write(&mp, &good).unwrap();

    // a corrupted manifest, a missing one, truncated images, a directory that does not exist
    std::fs::write(&mp, "{\"format\": 1, ").unwrap();
    let out = run(cracin().args(["restore", ck_s]));
    assert_eq!(out.status.code(), Some(6));
    assert!(stderr(&out).contains("cracin.json is corrupted"));
    std::fs::write(&mp, &good).unwrap();
    let pages = ck.join("images/pages-1.img");
    let len = std::fs::metadata(&pages).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pages)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let out = run(cracin().args(["restore", ck_s]));
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("changed or truncated"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(ck.join("images/pstree.img")).unwrap();
    let out = run(cracin().args(["restore", ck_s]));
    assert_eq!(out.status.code(), Some(6));
    assert!(stderr(&out).contains("images/pstree.img is missing"));
    let out = run(cracin().args(["restore", work.join("nope").to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("there is no checkpoint at"));
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn doctor_passes_on_this_machine() {
    require!(can_checkpoint());
    let out = run(cracin().args(["doctor"]));
    assert!(out.status.success(), "{}", stdout(&out));
    let s = stdout(&out);
    assert!(s.contains("pass  criu") && s.contains("CRIU 4."), "{s}");
    assert!(s.contains("can checkpoint and restore"));
    let out = run(cracin().args(["doctor", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "soft-dirty"));
    // A criu that is too old for this kernel makes doctor fail with the fix.
    let work = tempdir("doctor");
    let old = work.join("criu");
    std::fs::write(&old, "#!/bin/sh\necho 'Version: 4.1.1'\n").unwrap();
    std::fs::set_permissions(&old, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run(cracin().args(["doctor", "--criu", old.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("FAIL  criu"), "{}", stdout(&out));
    // Debian's OpenJDK is no CRaC JDK: doctor asks the JVM itself and says what to use instead.
    let out = run(cracin().args(["doctor", "--runtime", "crac"]));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out).contains("it is no CRaC JDK") && stdout(&out).contains("--runtime criu"),
        "{}",
        stdout(&out)
    );
    // Not enough room for the expected checkpoint.
    let out = run(cracin().args(["doctor", "--out", "/dev/shm", "--expected-mb", "100000000"]));
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("FAIL  disk"), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn concurrent_restores_and_a_log_probe() {
    require!(can_checkpoint());
    let work = tempdir("e2e-concurrent");
    let port = free_port();
    let ck = work.join("ckpt");
    // Ready when the application says so in its output.
    let out = run(cracin()
        .current_dir(counter_classes())
        .args([
            "checkpoint",
            "--out",
            ck.to_str().unwrap(),
            "--ready",
            "log:counter: listening on",
            "--",
        ])
        .args(["java", "-cp", ".", "Counter", &port.to_string()]));
    assert!(out.status.success(), "{}", stderr(&out));
    // Two restores started at the same moment: exactly one gets the port.
    let spawn = || {
        cracin()
            .args(["restore", ck.to_str().unwrap(), "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let ok: Vec<_> = outs.iter().filter(|o| o.status.success()).collect();
    let refused: Vec<_> = outs.iter().filter(|o| o.status.code() == Some(4)).collect();
    assert_eq!(
        (ok.len(), refused.len()),
        (1, 1),
        "{:?}",
        outs.iter().map(stderr).collect::<Vec<_>>()
    );
    assert!(stderr(refused[0]).contains(&format!("port {port} is already in use")));
    // The restored application does not print its start-up line again: the log probe was
    // replaced by the recorded port, and the restore still waited for readiness.
    assert!(stderr(ok[0]).is_empty() || !stderr(ok[0]).contains("did not become ready"));
    let v: serde_json::Value = serde_json::from_str(stdout(ok[0]).trim()).unwrap();
    assert!(v["ready_ms"].as_f64().is_some(), "{v}");
    assert_eq!(get(&format!("http://127.0.0.1:{port}/")).unwrap().0, 200);
    kill_and_wait(v["pid"].as_u64().unwrap() as u32, libc::SIGKILL);
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

/// `--lazy-pages`: a `criu lazy-pages` daemon serves the memory on first touch; the restored
/// application answers with its checkpointed state, stops on SIGTERM, and neither it nor the
/// daemon is left. Then `--fallback`: with the checkpoint's pages gone the restore fails, and
/// cracin says so and becomes the application, started cold from the recorded command (its
/// counter starts again at 1); SIGTERM stops it.
#[test]
fn lazy_pages_restore_and_a_cold_fallback() {
    require!(can_checkpoint());
    let work = tempdir("e2e-lazy");
    let ck = work.join("ckpt");
    let port = free_port();
    let p = port.to_string();
    let out = checkpoint_warm(&ck, port, 50, &["java", "-cp", ".", "Counter", &p]);
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    let started = started_from_output(&ck);
    let url = format!("http://127.0.0.1:{port}/");

    let out = restore_json(&ck, &["--lazy-pages"]);
    assert!(out.status.success(), "lazy restore: {}", stderr(&out));
    let app = Restored(restored_pid(&out));
    let (st, body) = get(&url).expect("lazily restored app answers");
    assert_eq!(st, 200);
    assert_eq!(json_num(&body, "count"), 51, "{body}");
    assert_eq!(json_num(&body, "started"), started);
    kill_and_wait(app.0, libc::SIGTERM);
    drop(app);
    assert_nothing_left(port);
    // The lazy-pages daemon reads the images from the checkpoint: none may outlive the restore.
    assert_none_with(ck.to_str().unwrap());

    std::fs::remove_file(ck.join("images/pages-1.img")).unwrap();
    let log = work.join("fallback.err");
    let mut child = cracin()
        .args(["restore", ck.to_str().unwrap(), "--fallback"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Some((200, body)) = get(&url) {
            break body;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "cold start exited ({st:?}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the cold start never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(json_num(&body, "count"), 1, "a cold start: {body}");
    assert_ne!(json_num(&body, "started"), started, "a new JVM: {body}");
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains("restore failed") && err.contains("starting the application cold"),
        "{err}"
    );
    // cracin became the JVM (exec): the child's pid is the application's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(143), "{st:?}");
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}
