//! End-to-end tests of the files a checkpoint keeps (docs/files.md), on real servers installed
//! from Debian packages and stopped the way users stop them: Jetty 9 (`jetty9`), which unpacks
//! its web application into /tmp and deletes it on stop, restored again and again; the H2
//! database (`libh2-java`) written to after each restore: without `--snapshot` the next restore
//! refuses and the data stays in the file, with `--snapshot` every restore starts from the
//! checkpoint's data.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn entries<'a>(m: &'a serde_json::Value, action: &str) -> Vec<&'a serde_json::Value> {
    m["files"]["entries"]
        .as_array()
        .expect("cracin.json records the open files")
        .iter()
        .filter(|e| e["action"] == action)
        .collect()
}

/// A web application whose servlet lives in a jar under WEB-INF/lib, built with the JDK's tools.
fn hello_war(dir: &Path, servlet_api: &Path) -> PathBuf {
    let src = repo_root().join("tests/fixtures/apps/hello-war");
    let (classes, war) = (dir.join("classes"), dir.join("war"));
    std::fs::create_dir_all(war.join("WEB-INF/lib")).unwrap();
    let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Command::new("javac")
        .arg("-cp")
        .arg(servlet_api)
        .arg("-d")
        .arg(&classes)
        .arg(src.join("Hello.java")));
    ok(Command::new("jar")
        .arg("cf")
        .arg(war.join("WEB-INF/lib/hello.jar"))
        .arg("-C")
        .arg(&classes)
        .arg("."));
    std::fs::copy(src.join("WEB-INF/web.xml"), war.join("WEB-INF/web.xml")).unwrap();
    let out = dir.join("hello.war");
    ok(Command::new("jar")
        .arg("cf")
        .arg(&out)
        .arg("-C")
        .arg(&war)
        .arg("."));
    out
}

/// Jetty unpacks the war into /tmp/jetty-0_0_0_0-PORT-...; its class loader keeps
/// WEB-INF/lib/hello.jar open, and a graceful stop deletes the whole directory. Restored three
/// times (SIGTERM, SIGTERM, Ctrl-C on a foreground restore), it answers with the checkpoint's
/// state each time, and nothing is left in /tmp.
#[test]
fn jetty_unpacks_its_web_application_and_restores_after_every_stop() {
    require!(can_checkpoint());
    let start = require!(installed("/usr/share/jetty9/start.jar", "jetty9"));
    let api = require!(installed(
        "/usr/share/jetty9/lib/servlet-api-3.1.jar",
        "jetty9"
    ));
    let work = tempdir("e2e-jetty");
    let base = work.join("base");
    std::fs::create_dir_all(base.join("webapps")).unwrap();
    std::fs::copy(hello_war(&work, &api), base.join("webapps/hello.war")).unwrap();
    let port = free_port();
    std::fs::write(
        base.join("start.ini"),
        format!("--module=deploy,http\njetty.http.port={port}\n"),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/hello/hello");
    let unpacked = format!("jetty-0_0_0_0-{port}-");
    let ck = work.join("ck");
    let out = run(cracin()
        .args(["checkpoint", "--out", ck.to_str().unwrap()])
        .args(["--ready", &url, "--ready-timeout", "120"])
        .args(["--warmup", &url, "--warmup-requests", "100"])
        .args(["--", "java", "-jar", start.to_str().unwrap()])
        .arg("jetty.home=/usr/share/jetty9")
        .arg(format!("jetty.base={}", base.display())));
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    assert_none_with(&format!("jetty.base={}", base.display()));
    let m = manifest(&ck);
    let saved = entries(&m, "saved");
    assert!(
        saved.iter().any(|e| {
            let p = e["path"].as_str().unwrap();
            p.contains(&unpacked) && p.ends_with("WEB-INF/lib/hello.jar") && e["kind"] == "scratch"
        }),
        "the unpacked web application's jar is saved: {saved:?}"
    );
    assert!(m["files"]["saved_bytes"].as_u64().unwrap() > 0);
    assert!(
        stdout(&out).contains("hello.jar"),
        "the summary names it: {}",
        stdout(&out)
    );
    // The blobs are private and named by their content.
    for e in &saved {
        let blob = ck.join("files").join(e["sha256"].as_str().unwrap());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&blob).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", blob.display());
    }
    let mut first: Option<String> = None;
    for round in 1..=3 {
        let (app, foreground) = if round < 3 {
            (restored(&ck, &[]), None)
        } else {
            let (child, pid) = restore_foreground(&ck, &["--ready-timeout", "60"]);
            (Restored(pid), Some(child))
        };
        let (st, body) = get(&url).expect("the restored Jetty answers");
        assert_eq!(st, 200, "round {round}: {body}");
        assert!(body.starts_with("hello "), "round {round}: {body}");
        // The same count and start time each round: every restore starts from the checkpoint.
        match &first {
            None => first = Some(body),
            Some(f) => assert_eq!(&body, f, "round {round}"),
        }
        match foreground {
            None => app.stop(),
            Some(child) => {
                let code = interrupt_foreground(child, app.0);
                drop(app);
                assert_eq!(code, Some(130), "the JVM ends on SIGINT: 128 + 2");
            }
        }
        // Jetty's graceful stop deleted its unpacked web application.
        assert!(
            tmp_entries_with(&unpacked).is_empty(),
            "round {round}: Jetty's temp dir is still there"
        );
    }
    assert!(tmp_entries_with(".cracin-").is_empty());
    assert_none_with(&format!("jetty.base={}", base.display()));

    // What the saved files are for: with `--no-snapshot /tmp` nothing is saved, and once a
    // graceful stop deleted the unpacked web application the next restore fails (CRIU cannot
    // open the jar), as every restore did before cracin kept the files.
    let out = run(cracin()
        .args(["checkpoint", "--out", ck.to_str().unwrap(), "--force"])
        .args([
            "--ready",
            &url,
            "--ready-timeout",
            "120",
            "--no-snapshot",
            "/tmp",
        ])
        .args(["--", "java", "-jar", start.to_str().unwrap()])
        .arg("jetty.home=/usr/share/jetty9")
        .arg(format!("jetty.base={}", base.display())));
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    let m = manifest(&ck);
    assert_eq!(m["files"]["saved_files"], 0, "{}", m["files"]);
    assert!(
        entries(&m, "left").iter().any(|e| {
            e["path"].as_str().unwrap().contains(&unpacked)
                && e["why"].as_str().unwrap() == "--no-snapshot /tmp"
        }),
        "{}",
        m["files"]
    );
    restored(&ck, &[]).stop();
    assert!(tmp_entries_with(&unpacked).is_empty());
    let out = restore_json(&ck, &[]);
    if out.status.success() {
        drop(Restored(restored_pid(&out)));
        panic!("restored although the unpacked web application is gone");
    }
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("hello.jar"), "{}", stderr(&out));
    assert_none_with(&format!("jetty.base={}", base.display()));
    let _ = std::fs::remove_dir_all(&work);
}

const H2_JAR: &str = "/usr/share/java/h2.jar";

/// One round: the restored server has the checkpoint's row and none of an earlier round, then
/// gets 5000 more rows (the file grows) and is stopped with SIGTERM (H2 closes the file).
fn h2_round(jar: &Path, ck: &Path, tcp: u16, round: usize) {
    let app = restored(ck, &["--ready", &format!("tcp://127.0.0.1:{tcp}")]);
    h2::assert_checkpoint_rows(jar, &h2::tcp_url(tcp), round);
    h2::grow(jar, &h2::tcp_url(tcp), round);
    app.stop();
}

/// A directory for a database outside every temporary directory (so cracin sees data, not
/// scratch): under /var/lib, not under the build's target directory, which lies under /tmp when
/// the checkout does. Private (0700), removed when dropped, also when the test fails.
fn data_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("cracin-test-{name}-"))
        .tempdir_in("/var/lib")
        .unwrap()
}

#[test]
fn h2_data_written_after_a_restore_refuses_the_next_restore_and_stays() {
    require!(can_checkpoint());
    let jar = require!(installed(H2_JAR, "libh2-java"));
    let work = data_dir("h2-data");
    let (db, ck, tcp) = (work.path().join("db"), work.path().join("ck"), free_port());
    h2::checkpoint_server(&jar, &db, &ck, tcp, &[], &[]);
    let m = manifest(&ck);
    let checked = entries(&m, "checked");
    assert!(
        checked
            .iter()
            .any(|e| e["path"].as_str().unwrap().ends_with("test.mv.db") && e["kind"] == "data"),
        "the database file is the instance's data: {checked:?}"
    );
    h2_round(&jar, &ck, tcp, 1);

    let out = restore_json(&ck, &["--ready", &format!("tcp://127.0.0.1:{tcp}")]);
    if out.status.success() {
        drop(Restored(restored_pid(&out)));
        panic!("a restore over data written since the checkpoint succeeded");
    }
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{e}");
    assert!(
        e.contains("test.mv.db") && e.contains("size changed from"),
        "which file, how: {e}"
    );
    assert!(
        e.contains("--snapshot") && e.contains("does not hold it open"),
        "the two ways out: {e}"
    );
    assert_none_with(&format!("-tcpPort {tcp}"));
    // Nothing was reverted: the rows written after the first restore are in the file.
    let file_url = format!("jdbc:h2:{}/test", db.display());
    let count = h2::sql(&jar, &file_url, "SELECT COUNT(*) FROM t");
    assert!(count.contains("5001"), "{count}");
    drop(work);
}

#[test]
fn h2_with_snapshot_starts_every_restore_from_the_checkpoint_data() {
    require!(can_checkpoint());
    let jar = require!(installed(H2_JAR, "libh2-java"));
    let work = data_dir("h2-snapshot");
    let (db, ck, tcp) = (work.path().join("db"), work.path().join("ck"), free_port());
    std::fs::create_dir_all(&db).unwrap();
    h2::checkpoint_server(
        &jar,
        &db,
        &ck,
        tcp,
        &["--snapshot", db.to_str().unwrap()],
        &[],
    );
    let m = manifest(&ck);
    let saved = entries(&m, "saved");
    assert!(
        saved.iter().any(|e| {
            e["path"].as_str().unwrap().ends_with("test.mv.db")
                && e["why"].as_str().unwrap().starts_with("--snapshot")
        }),
        "--snapshot saves the database file: {saved:?}"
    );
    for round in 1..=3 {
        h2_round(&jar, &ck, tcp, round);
    }
    assert_none_with(&format!("-tcpPort {tcp}"));
    drop(work);
}
