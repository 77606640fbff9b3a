//! End-to-end tests of issue 12 ("a checkpoint is a memory dump: treat it like a private key")
//! with real CRIU on a real JVM (the small Counter application), run as root with a second,
//! unprivileged user (nobody, through `setpriv`) where permissions matter: private
//! permissions whatever the umask, the secrets scan, checksums and `cracin check`, restore's
//! refusals, the private and bounded restore lock, `--force` only on checkpoints, range-checked
//! numbers.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// A `cracin` command run with umask 000: nothing it writes may depend on the umask.
fn cracin_umask0() -> Command {
    let mut c = cracin();
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    c
}

/// A command run as nobody (uid/gid 65534, no groups).
fn as_nobody(args: &[&str]) -> std::process::Output {
    run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args))
}

fn umask0_checkpoint(dir: &Path, port: u16, extra: &[&str], java: &[&str]) -> Command {
    let mut c = cracin_umask0();
    c.current_dir(counter_classes()).args([
        "checkpoint",
        "--out",
        dir.to_str().unwrap(),
        "--ready",
        &format!("http://127.0.0.1:{port}/health"),
        "--ready-timeout",
        "60",
        "--warmup",
        &format!("http://127.0.0.1:{port}/"),
        "--warmup-requests",
        "20",
    ]);
    c.args(extra).arg("--").arg("java").args(java);
    c.args(["-cp", ".", "Counter", &port.to_string()]);
    c
}

fn assert_private(dir: &Path) {
    let bad = cracin_core::os::perms::not_private(dir);
    assert!(bad.is_empty(), "not private (path, mode): {bad:?}");
}

#[test]
fn private_checkpoint_checksums_and_restore_refusals() {
    require!(can_checkpoint());
    let work = tempdir("sec-private");
    let ck = work.join("ckpt");
    let port = free_port();
    let out = run(&mut umask0_checkpoint(&ck, port, &[], &[]));
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    assert_nothing_left(port);

    // 1. Private whatever the umask: the directory 0700, every file 0600.
    assert_private(&ck);
    let m = manifest(&ck);
    assert!(m["checksums"]["pages-1.img"].as_str().unwrap().len() == 64);
    assert!(m["secrets_scan"]["bytes"].as_u64().unwrap() > 1_000_000);
    // The other user can neither list it nor read the memory.
    let pages = ck.join("images/pages-1.img");
    let o = as_nobody(&["cat", pages.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("Permission denied"));
    let o = as_nobody(&["ls", ck.to_str().unwrap()]);
    assert!(!o.status.success());

    // Restore (umask 000): its folder and logs are private too.
    let out = run(cracin_umask0().args(["restore", ck.to_str().unwrap(), "--json"]));
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    let pid = restored_pid(&out);
    assert!(get(&format!("http://127.0.0.1:{port}/")).is_some());
    kill_and_wait(pid, libc::SIGTERM);
    assert_private(&ck);
    assert_eq!(std::fs::read_dir(ck.join("restores")).unwrap().count(), 1);

    // 3. The restore lock lives in a 0700 directory: nobody cannot open it, so cannot hold it.
    let lock_dir = std::fs::metadata("/run/cracin").unwrap();
    assert_eq!(lock_dir.permissions().mode() & 0o777, 0o700);
    let o = as_nobody(&["sh", "-c", "exec 9>>/run/cracin/restore.lock"]);
    assert!(!o.status.success(), "nobody opened the restore lock");
    // A restore waiting for a held lock gives up after --lock-timeout, saying why.
    let mut holder = Command::new("flock")
        .args(["/run/cracin/restore.lock", "sleep", "60"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // wait until flock holds it (its sleep child exists)
    while processes_with("sleep 60").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--lock-timeout", "1"]));
    let _ = holder.kill();
    let _ = holder.wait();
    for p in processes_with("sleep 60") {
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("another restore has held /run/cracin/restore.lock"));
    assert_nothing_left(port);

    // 4. `cracin check` verifies every checksum: all good, then a flipped byte in the pages.
    let out = run(cracin().args(["check", ck.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok ("));
    let mut b = std::fs::read(&pages).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&pages, &b).unwrap();
    let out = run(cracin().args(["check", ck.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("images/pages-1.img changed"),
        "{}",
        stderr(&out)
    );
    b[mid] ^= 0x01;
    std::fs::write(&pages, &b).unwrap();
    // Restore verifies the small image files every time.
    let core = std::fs::read_dir(ck.join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("core-")
        })
        .unwrap();
    let orig = std::fs::read(&core).unwrap();
    let mut c = orig.clone();
    let last = c.len() - 1;
    c[last] ^= 0xff;
    std::fs::write(&core, &c).unwrap();
    let out = run(cracin().args(["restore", ck.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(6));
    assert!(stderr(&out).contains("changed since the checkpoint was written"));
    std::fs::write(&core, &orig).unwrap();
    // A path in cracin.json that points elsewhere is refused.
    let good = std::fs::read_to_string(ck.join("cracin.json")).unwrap();
    let mut evil = manifest(&ck);
    evil["app_output"]["stdout"] = "/tmp/../etc/x".into();
    std::fs::write(ck.join("cracin.json"), evil.to_string()).unwrap();
    let out = run(cracin().args(["restore", ck.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("app_output.stdout"),
        "{}",
        stderr(&out)
    );
    std::fs::write(ck.join("cracin.json"), good).unwrap();
    // A checkpoint directory writable by others, or owned by nobody, is refused.
    std::fs::set_permissions(&ck, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = run(cracin().args(["restore", ck.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("writable by everyone"),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(&ck, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&ck, Some(65534), Some(65534)).unwrap();
    let out = run(cracin().args(["restore", ck.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("owned by uid 65534"),
        "{}",
        stderr(&out)
    );
    std::os::unix::fs::chown(&ck, Some(0), Some(0)).unwrap();
    // Put back, it restores again.
    let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    kill_and_wait(restored_pid(&out), libc::SIGINT);
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn secrets_in_memory_fail_the_checkpoint_and_keep_nothing() {
    require!(can_checkpoint());
    let work = tempdir("sec-secrets");
    let ck = work.join("ckpt");
    let port = free_port();
    // A good checkpoint first.
    let out = run(&mut umask0_checkpoint(&ck, port, &[], &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read_to_string(ck.join("cracin.json")).unwrap();

    // A password in the environment ends up in the JVM's memory: exit 5, named, not shown,
    // nothing kept, the previous checkpoint untouched.
    let value = "pw-7f3a9c21e8b4d6";
    let out = run(umask0_checkpoint(&ck, port, &["--force"], &[]).env("DB_PASSWORD", value));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("environment variable DB_PASSWORD in images/pages-"),
        "{err}"
    );
    assert!(!err.contains(value) && !stdout(&out).contains(value));
    assert!(
        err.contains("--env NAME=VALUE"),
        "the hint shows the way: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(ck.join("cracin.json")).unwrap(),
        before
    );
    let failed = work.join("ckpt.failed");
    assert!(failed.is_dir() && !failed.join("images").exists());
    assert_private(&failed);
    let left: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left.iter().any(|n| n.contains(".tmp-")),
        "staging left: {left:?}"
    );
    assert_nothing_left(port);

    // --secret-file and a secret -D property; --allow-secrets keeps it, the launch line that
    // is printed and recorded has the property masked.
    let secret_file = work.join("secret.txt");
    std::fs::write(&secret_file, "file-secret-0c1d2e3f\n").unwrap();
    let out = run(umask0_checkpoint(
        &ck,
        port,
        &[
            "--force",
            "--allow-secrets",
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
        &["-Ddb.password=prop-secret-99aa"],
    )
    .env("APP_SETTING", "file-secret-0c1d2e3f"));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("kept with --allow-secrets"), "{err}");
    assert!(!err.contains("prop-secret-99aa") && err.contains("-Ddb.password=*****"));
    let m = manifest(&ck);
    let text = m.to_string();
    assert!(!text.contains("prop-secret-99aa") && !text.contains("file-secret-0c1d2e3f"));
    assert_eq!(m["command"][1], "-Ddb.password=*****");
    let allowed: Vec<String> = m["secrets_scan"]["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["what"].as_str().unwrap().to_string())
        .collect();
    assert!(
        allowed.iter().any(|w| w == "-D property db.password"),
        "{allowed:?}"
    );
    assert!(
        allowed.iter().any(|w| w.contains("secret.txt")),
        "{allowed:?}"
    );
    assert_private(&ck);
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn force_replaces_only_a_cracin_checkpoint() {
    require!(can_checkpoint());
    let work = tempdir("sec-force");
    let target = work.join("important");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("thesis.tex"), "years of work").unwrap();
    let port = free_port();
    let out = run(&mut umask0_checkpoint(&target, port, &["--force"], &[]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a cracin checkpoint"));
    assert_eq!(
        std::fs::read_to_string(target.join("thesis.tex")).unwrap(),
        "years of work"
    );
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn numeric_options_are_range_checked() {
    // No CRIU needed: these must fail before anything starts, with exit 2 and the range.
    let cases: &[&[&str]] = &[
        &[
            "checkpoint",
            "--out",
            "/nonexistent/x",
            "--ready-timeout",
            "inf",
            "--",
            "java",
        ],
        &[
            "checkpoint",
            "--out",
            "/nonexistent/x",
            "--warmup-requests",
            "18446744073709551615",
            "--",
            "java",
        ],
        &[
            "checkpoint",
            "--out",
            "/nonexistent/x",
            "--warmup-concurrency",
            "0",
            "--",
            "java",
        ],
        &[
            "checkpoint",
            "--out",
            "/nonexistent/x",
            "--trigger-timeout",
            "NaN",
            "--",
            "java",
        ],
        &["restore", "/nonexistent", "--ready-timeout=-1"],
        &["restore", "/nonexistent", "--lock-timeout", "1e300"],
        &["bench", "--runs", "0", "--", "java"],
        &[
            "report",
            "--out",
            "/nonexistent",
            "--latency-requests",
            "0",
            "--",
            "java",
        ],
        &["doctor", "--expected-mb", "0"],
        &["build", "--tag", "x", "--verify", "1000"],
        &["base", "--jdk", "99999999999"],
    ];
    for args in cases {
        let out = run(cracin().args(*args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("allowed:"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
