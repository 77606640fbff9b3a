//! The H2 database server as the tests of kept files run it (e2e_files with Debian's
//! libh2-java, e2e_real_apps with the jar from Maven Central): checkpointed with one row written
//! over TCP before the dump and the database left open, then read and grown after each restore.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

/// The JDBC URL of the server's `test` database on `tcp`, kept open (DB_CLOSE_DELAY=-1).
pub fn tcp_url(tcp: u16) -> String {
    format!("jdbc:h2:tcp://127.0.0.1:{tcp}/test;DB_CLOSE_DELAY=-1")
}

/// Runs SQL with H2's own command-line client, over TCP or on the file itself.
pub fn sql(jar: &Path, url: &str, sql: &str) -> String {
    let out = Command::new("java")
        .args(["-cp", jar.to_str().unwrap(), "org.h2.tools.Shell"])
        .args(["-url", url, "-user", "sa", "-password", "sa", "-sql", sql])
        .output()
        .expect("java runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "H2 Shell failed on `{sql}`: {text}");
    text
}

/// `cracin checkpoint OPTIONS` of an H2 server on `tcp` (`SERVER_ARGS` added) whose database in
/// `db` holds one row from before the checkpoint and stays open; a client writes the row as
/// soon as the server listens. `-trace` prints `Connected` and `Disconnect` for that client:
/// ready once the table exists and the client is gone. Nothing is left running afterwards.
pub fn checkpoint_server(
    jar: &Path,
    db: &Path,
    ck: &Path,
    tcp: u16,
    options: &[&str],
    server_args: &[&str],
) {
    std::fs::create_dir_all(db).unwrap();
    let client_jar = jar.to_path_buf();
    let helper = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(180);
        while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() {
            assert!(Instant::now() < deadline, "H2 never listened on {tcp}");
            std::thread::sleep(Duration::from_millis(100));
        }
        sql(
            &client_jar,
            &tcp_url(tcp),
            "CREATE TABLE t(id INT PRIMARY KEY, v VARCHAR); INSERT INTO t VALUES(1, 'before-checkpoint')",
        )
    });
    let out = run(cracin()
        .args(["checkpoint", "--out", ck.to_str().unwrap()])
        .args([
            "--ready",
            "log:(?s)Connected.*Disconnect",
            "--ready-timeout",
            "180",
        ])
        .args(options)
        .args([
            "--",
            "java",
            "-cp",
            jar.to_str().unwrap(),
            "org.h2.tools.Server",
        ])
        .args(["-tcp", "-tcpPort", &tcp.to_string()])
        .args(server_args)
        .args(["-ifNotExists", "-baseDir"])
        .arg(db)
        .arg("-trace"));
    let created = helper.join();
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    assert!(created.is_ok(), "CREATE TABLE failed");
    assert_none_with(&format!("-tcpPort {tcp}"));
}

/// A restored server holds the checkpoint's row and none written after an earlier restore.
pub fn assert_checkpoint_rows(jar: &Path, url: &str, round: usize) {
    let rows = sql(jar, url, "SELECT v FROM t ORDER BY id");
    assert!(rows.contains("before-checkpoint"), "round {round}: {rows}");
    assert!(
        !rows.contains("after-restore"),
        "round {round}: an earlier restore's rows are there: {rows}"
    );
}

/// 5000 more rows, enough that the database file surely grows.
pub fn grow(jar: &Path, url: &str, round: usize) {
    sql(
        jar,
        url,
        &format!(
            "INSERT INTO t SELECT X + {}, 'after-restore-{round} ' || SPACE(200) FROM SYSTEM_RANGE(1, 5000)",
            round * 100_000
        ),
    );
}
