//! End-to-end tests on real server applications this project did not write, fetched from Maven
//! Central at test time and started with their own normal start commands, as a new user would:
//! WireMock standalone (a big real HTTP stack, in-memory state created over its admin API) and
//! the H2 database server (an open embedded database: the JVM holds a POSIX lock on its file at
//! dump time; under /tmp it is scratch, which cracin saves and puts back). Each is checkpointed
//! once, restored several times, and must still hold the state it had before the checkpoint;
//! changes made after a restore must not leak into the next restore.
//! Tomcat 10 (its own `catalina.sh run`) must hand out different session IDs in every restore
//! of one checkpoint (cracin's agent renews its SHA1PRNG; docs/individual.md).
//! `scripts/try-real-apps.sh` runs the same round trips, and Tomcat and Jetty, by hand.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const WIREMOCK: (&str, &str) = (
    "org.wiremock:wiremock-standalone:3.13.2",
    "wiremock-standalone-3.13.2.jar",
);
const H2: (&str, &str) = ("com.h2database:h2:2.3.232", "h2-2.3.232.jar");
const TOMCAT: (&str, &str) = (
    "org.apache.tomcat:tomcat:10.1.59:tar.gz",
    "tomcat-10.1.59.tar.gz",
);

/// The jar of `coords`: from the cache `scripts/try-real-apps.sh` fills, else from the test's own
/// cache, else fetched with `mvn dependency:copy`. Missing (the test is skipped) when Maven is
/// not there or Maven Central cannot be reached (a failure under CRACIN_REQUIRE_E2E).
fn fetch((coords, file): (&str, &str)) -> Need<PathBuf> {
    let shared = Path::new("/var/cache/cracin/apps").join(file);
    if shared.is_file() {
        return Ok(shared);
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-apps");
    let jar = cache.join(file);
    if jar.is_file() {
        return Ok(jar);
    }
    if which("mvn").is_none() {
        return Err(format!("no mvn to fetch {coords}").into());
    }
    // Into a private folder first, renamed into place: a half-written jar is never cached.
    let tmp = tempdir("fetch");
    let ok = Command::new("mvn")
        .args(["-B", "-q", "dependency:copy"])
        .arg(format!("-Dartifact={coords}"))
        .arg(format!("-DoutputDirectory={}", tmp.display()))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok || !tmp.join(file).is_file() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!("could not fetch {coords} from Maven Central").into());
    }
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::rename(tmp.join(file), &jar).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(jar)
}

fn post(url: &str, body: &str) -> Option<(u16, String)> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    match agent.post(url).send_string(body) {
        Ok(r) => Some((r.status(), r.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(st, r)) => Some((st, r.into_string().unwrap_or_default())),
        Err(_) => None,
    }
}

#[test]
fn wiremock_keeps_its_stubs_and_request_journal() {
    require!(can_checkpoint());
    let jar = require!(fetch(WIREMOCK));
    let work = tempdir("e2e-wiremock");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let root = work.join("root");
    std::fs::create_dir_all(root.join("mappings")).unwrap();
    std::fs::write(
        root.join("mappings/file.json"),
        r#"{"request":{"method":"GET","url":"/file"},"response":{"status":200,"body":"from file"}}"#,
    )
    .unwrap();

    // A stub that exists only in WireMock's memory, created over the admin API once it answers;
    // readiness is that stub itself, so the checkpoint cannot happen before it exists.
    let admin = base.clone();
    let helper = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if matches!(get(&format!("{admin}/__admin/health")), Some((200, _))) {
                return post(
                    &format!("{admin}/__admin/mappings"),
                    r#"{"request":{"method":"GET","url":"/hello"},"response":{"status":200,"body":"hello from stub"}}"#,
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    });
    let ck = work.join("ckpt");
    let out = run(cracin()
        .args(["checkpoint", "--out", ck.to_str().unwrap()])
        .args([
            "--ready",
            &format!("{base}/hello"),
            "--ready-timeout",
            "180",
        ])
        .args([
            "--warmup",
            &format!("{base}/hello"),
            "--warmup",
            &format!("{base}/file"),
        ])
        .args(["--warmup-requests", "500", "--warmup-concurrency", "2"])
        .args(["--", "java", "-jar", jar.to_str().unwrap()])
        .args([
            "--port",
            &port.to_string(),
            "--root-dir",
            root.to_str().unwrap(),
        ]));
    let posted = helper.join().unwrap();
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    assert_eq!(
        posted.map(|p| p.0),
        Some(201),
        "stub created over the admin API"
    );
    let marker = format!("--port {port}");
    assert_none_with(&marker);
    let m = manifest(&ck);
    assert_eq!(m["warmup_stats"]["errors"], 0, "{}", m["warmup_stats"]);
    assert!(
        m["listen_ports"].as_array().unwrap().contains(&port.into()),
        "listening port recorded: {}",
        m["listen_ports"]
    );

    for round in 1..=2 {
        let app = restored(&ck, &[]);
        assert_eq!(
            get(&format!("{base}/hello")),
            Some((200, "hello from stub".into())),
            "round {round}: the in-memory stub survived"
        );
        assert_eq!(
            get(&format!("{base}/file")),
            Some((200, "from file".into())),
            "round {round}"
        );
        // The request journal still holds the warm-up's requests.
        let (st, body) = post(
            &format!("{base}/__admin/requests/count"),
            r#"{"method":"GET","urlPattern":"/(hello|file)"}"#,
        )
        .expect("admin API answers");
        assert_eq!(st, 200, "{body}");
        assert!(json_num(&body, "count") >= 500, "round {round}: {body}");
        // A stub added after the previous restore is not there: each restore starts from the
        // checkpoint.
        assert_eq!(
            get(&format!("{base}/added")).map(|r| r.0),
            Some(404),
            "round {round}"
        );
        let added = post(
            &format!("{base}/__admin/mappings"),
            r#"{"request":{"method":"GET","url":"/added"},"response":{"status":201}}"#,
        );
        assert_eq!(added.map(|r| r.0), Some(201));
        assert_eq!(get(&format!("{base}/added")).map(|r| r.0), Some(201));
        app.stop();
    }
    assert_none_with(&marker);
    let _ = std::fs::remove_dir_all(&work);
}

/// The POSIX locks `pid` holds (lines of /proc/locks).
fn posix_locks_of(pid: u32) -> usize {
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&"POSIX") && f.get(4) == Some(&pid.to_string().as_str())
        })
        .count()
}

#[test]
fn h2_server_keeps_its_open_database_and_file_lock() {
    require!(can_checkpoint());
    let jar = require!(fetch(H2));
    let work = tempdir("e2e-h2");
    let db = work.join("db");
    let (tcp, web) = (free_port(), free_port());

    // The table is created over JDBC while the server runs under `cracin checkpoint`; the database
    // stays open afterwards (DB_CLOSE_DELAY=-1), so its file is open and locked at dump time.
    let ck = work.join("ckpt");
    let warmup = format!("http://127.0.0.1:{web}/");
    h2::checkpoint_server(
        &jar,
        &db,
        &ck,
        tcp,
        &["--warmup", &warmup, "--warmup-requests", "300"],
        &["-web", "-webPort", &web.to_string()],
    );
    let marker = format!("-tcpPort {tcp}");
    // The database lives under /tmp here: scratch to cracin, which saved it with the
    // checkpoint and puts it back before each restore (docs/files.md).
    let m = manifest(&ck);
    assert!(
        m["files"]["entries"].as_array().unwrap().iter().any(|e| {
            e["path"].as_str().unwrap().ends_with("test.mv.db")
                && e["kind"] == "scratch"
                && e["action"] == "saved"
        }),
        "{}",
        m["files"]
    );

    // A `log:` probe cannot match a restored server's fresh (empty) output: restores name a
    // TCP probe.
    let ready = format!("tcp://127.0.0.1:{tcp}");
    for round in 1..=3 {
        let app = restored(&ck, &["--ready", &ready]);
        assert_eq!(
            posix_locks_of(app.0),
            1,
            "round {round}: the restored JVM holds the database file lock"
        );
        let url = h2::tcp_url(tcp);
        h2::assert_checkpoint_rows(&jar, &url, round);
        h2::grow(&jar, &url, round);
        let count = h2::sql(&jar, &url, "SELECT COUNT(*) FROM t");
        assert!(count.contains("5001"), "round {round}: {count}");
        assert_eq!(
            get(&format!("http://127.0.0.1:{web}/")).map(|r| r.0),
            Some(200),
            "web console"
        );
        app.stop();
    }

    assert_none_with(&marker);
    let _ = std::fs::remove_dir_all(&work);
}

/// The JSESSIONID a fresh client gets from `url` (a servlet that creates a session).
fn new_session_id(url: &str) -> String {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let r = agent.get(url).call().expect("Tomcat answers");
    let cookie = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie from {url}"))
        .to_string();
    cookie
        .split(';')
        .next()
        .and_then(|c| c.strip_prefix("JSESSIONID="))
        .unwrap_or_else(|| panic!("no JSESSIONID in {cookie}"))
        .to_string()
}

#[test]
fn tomcat_hands_out_different_session_ids_in_every_restore() {
    require!(can_checkpoint());
    let tgz = require!(fetch(TOMCAT));
    let work = tempdir("e2e-tomcat");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&work)
        .arg("-xzf")
        .arg(&tgz)
        .status()
        .unwrap();
    assert!(st.success(), "tar failed");
    let home = work.join("apache-tomcat-10.1.59");
    let base = work.join("base");
    for d in ["logs", "temp", "webapps", "work"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    let st = Command::new("cp")
        .arg("-r")
        .arg(home.join("conf"))
        .arg(&base)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("cp")
        .arg("-r")
        .arg(home.join("webapps/examples"))
        .arg(base.join("webapps"))
        .status()
        .unwrap();
    assert!(st.success());
    let port = free_port();
    let server_xml = base.join("conf/server.xml");
    let xml = std::fs::read_to_string(&server_xml)
        .unwrap()
        .replace("port=\"8005\"", "port=\"-1\"")
        .replace("port=\"8080\"", &format!("port=\"{port}\""));
    std::fs::write(&server_xml, xml).unwrap();
    let url = format!("http://127.0.0.1:{port}/examples/servlets/servlet/SessionExample");
    let checkpoint = |ck: &Path, extra: &[&str]| {
        let out = run(cracin()
            .env("CATALINA_HOME", &home)
            .env("CATALINA_BASE", &base)
            .args(["checkpoint", "--out", ck.to_str().unwrap()])
            .args(extra)
            .args(["--ready", &format!("http://127.0.0.1:{port}/examples/")])
            .args(["--ready-timeout", "120", "--warmup", &url])
            .args(["--warmup-requests", "50", "--"])
            .arg(home.join("bin/catalina.sh"))
            .arg("run"));
        assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    };
    // The test can fail: without renewal two restores hand out the same first session ID.
    let same = work.join("same");
    checkpoint(&same, &["--no-renew"]);
    let mut firsts = Vec::new();
    for _ in 0..2 {
        let r = restored(&same, &[]);
        firsts.push(new_session_id(&url));
        r.stop();
    }
    assert_eq!(firsts[0], firsts[1], "without renewal the IDs repeat");
    // The warm-up's sessions came from Tomcat's SecureRandom: it is seeded in the image.
    let ck = work.join("ck");
    checkpoint(&ck, &[]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = restored(&ck, &[]);
        ids.push(new_session_id(&url));
        ids.push(new_session_id(&url));
        r.stop();
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "session IDs repeat across restores: {ids:?}"
    );
    assert_none_with(&base.display().to_string());
    let _ = std::fs::remove_dir_all(&work);
}
