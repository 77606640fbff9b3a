//! Shared helpers of the end-to-end tests: prerequisites (`require!`, need.rs), the test
//! application compiled at test time, free ports, running the real `cracin` binary, and checks
//! that nothing is left running.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod h2;
mod need;
#[allow(unused_imports)] // not every test binary checks a need
pub use need::*;

pub fn cracin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cracin"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The counter test application, compiled once per test binary into a private directory.
pub fn counter_classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempdir("counter-classes");
        let src = repo_root().join("tests/fixtures/apps/counter-http/Counter.java");
        let st = Command::new("javac")
            .args(["-d".as_ref(), dir.as_os_str(), src.as_os_str()])
            .status()
            .expect("javac runs");
        assert!(st.success(), "javac failed");
        let st = Command::new("jar")
            .current_dir(&dir)
            .args(["cfe", "counter.jar", "Counter", "Counter.class"])
            .status()
            .expect("jar runs");
        assert!(st.success(), "jar failed");
        dir
    })
}

/// `cracin checkpoint --out CK --ready http://127.0.0.1:PORT/health --ready-timeout 60
/// OPTIONS -- COMMAND`, run in the counter app's directory (a test may add to it, e.g. env).
pub fn checkpoint_cmd(ck: &Path, port: u16, options: &[&str], command: &[&str]) -> Command {
    let mut c = cracin();
    c.current_dir(counter_classes())
        .args(["checkpoint", "--out", ck.to_str().unwrap(), "--ready"])
        .arg(format!("http://127.0.0.1:{port}/health"))
        .args(["--ready-timeout", "60"])
        .args(options)
        .arg("--")
        .args(command);
    c
}

/// The counter app (`java -cp . Counter PORT`) checkpointed with `checkpoint_cmd`: the output.
pub fn checkpoint_counter(ck: &Path, port: u16, options: &[&str]) -> Output {
    let p = port.to_string();
    run(&mut checkpoint_cmd(
        ck,
        port,
        options,
        &["java", "-cp", ".", "Counter", &p],
    ))
}

/// A checkpoint's cracin.json.
pub fn manifest(ck: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(ck.join("cracin.json")).unwrap()).unwrap()
}

/// A fresh directory of its own for a test. Tests remove theirs; what a failed test left is
/// removed when the test binary exits.
pub fn tempdir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "cracin-test-{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    remove_at_exit(&d);
    d
}

/// A TCP port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    cracin_core::os::net::free_port().unwrap()
}

/// GET a URL, returning (status, body); None when nothing answered.
pub fn get(url: &str) -> Option<(u16, String)> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    match agent.get(url).call() {
        Ok(r) => {
            let st = r.status();
            Some((st, r.into_string().unwrap_or_default()))
        }
        Err(ureq::Error::Status(st, r)) => Some((st, r.into_string().unwrap_or_default())),
        Err(_) => None,
    }
}

/// A number field of a flat JSON object.
pub fn json_num(body: &str, key: &str) -> i64 {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("bad JSON {body}: {e}"));
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("cracin runs");
    eprintln!(
        "$ {:?}\n--- status {:?}\n--- stdout\n{}--- stderr\n{}",
        cmd,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The PID printed by `cracin restore --json`.
pub fn restored_pid(o: &Output) -> u32 {
    let v: serde_json::Value =
        serde_json::from_str(stdout(o).trim()).expect("restore --json output");
    v["pid"].as_u64().expect("pid") as u32
}

/// Kills a process and waits until it is gone.
pub fn kill_and_wait(pid: u32, sig: i32) {
    unsafe {
        libc::kill(pid as i32, sig);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    // Only a reaped process counts: a zombie leader may still have threads closing sockets.
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("pid {pid} did not exit");
}

/// PIDs of processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(marker) && !c.contains("cracin-test-harness") {
                // zombies have an empty cmdline, so only live processes match
                v.push(pid);
            }
        }
    }
    v
}

/// Asserts that no process of the test (identified by its unique port) is left running.
pub fn assert_nothing_left(port: u16) {
    assert_none_with(&format!("Counter {port}"));
}

/// Fails the test if a process whose command line contains `marker` still runs after a grace
/// period (killing what is left).
pub fn assert_none_with(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for p in &left {
                unsafe { libc::kill(*p as i32, libc::SIGKILL) };
            }
            panic!("processes left running ({marker}): {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A restored application, killed when the test ends however it ends (also on a failed assert).
pub struct Restored(pub u32);

impl Drop for Restored {
    fn drop(&mut self) {
        // No panic here: a drop during a failed test's unwinding must not abort the harness.
        let proc = format!("/proc/{}", self.0);
        if Path::new(&proc).exists() {
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&proc).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Restored {
    /// A user's or service manager's stop: SIGTERM, then wait until the process is gone.
    pub fn stop(self) {
        kill_and_wait(self.0, libc::SIGTERM);
    }
}

/// `cracin restore CK --json --ready-timeout 60 EXTRA...`.
pub fn restore_json(ck: &Path, extra: &[&str]) -> Output {
    run(cracin()
        .args([
            "restore",
            ck.to_str().unwrap(),
            "--json",
            "--ready-timeout",
            "60",
        ])
        .args(extra))
}

/// A restore that must succeed, with its logs in the checkpoint (not in /tmp): the restored
/// application.
pub fn restored(ck: &Path, extra: &[&str]) -> Restored {
    let out = restore_json(ck, extra);
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(
        v["log_dir"]
            .as_str()
            .unwrap()
            .starts_with(ck.to_str().unwrap()),
        "the restore's logs are in the checkpoint, not in /tmp: {v}"
    );
    Restored(restored_pid(&out))
}

/// `cracin restore DIR --foreground --json` as a child, as a user runs it in a terminal or a
/// service manager; returns the child and the restored application's PID (from the JSON line).
pub fn restore_foreground(ck: &Path, extra: &[&str]) -> (std::process::Child, u32) {
    use std::io::BufRead;
    let mut child = cracin()
        .args(["restore", ck.to_str().unwrap(), "--foreground", "--json"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cracin runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("restore --foreground --json printed {line:?}: {e}"));
    let pid = v["pid"].as_u64().expect("pid") as u32;
    (child, pid)
}

/// Ctrl-C for a foreground restore: SIGINT to cracin, which forwards it; returns cracin's exit
/// code once it and the application are gone.
pub fn interrupt_foreground(mut child: std::process::Child, app_pid: u32) -> Option<i32> {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            // cracin returns once the application was reaped.
            assert!(
                !Path::new(&format!("/proc/{app_pid}")).exists(),
                "pid {app_pid} still runs after cracin returned"
            );
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            unsafe { libc::kill(app_pid as i32, libc::SIGKILL) };
            panic!("a foreground restore did not end on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Entries of /tmp whose name contains `needle`.
pub fn tmp_entries_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/tmp")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(needle))
                .collect()
        })
        .unwrap_or_default()
}

/// The step-log directory `cracin build` printed (`cracin build: logs in DIR`), if any.
pub fn build_log_dir(stderr: &str) -> Option<PathBuf> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("cracin build: logs in "))
        .map(|d| PathBuf::from(d.trim()))
}

/// Directories shared by a whole test binary, removed when it exits.
static AT_EXIT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes `dir` when the test binary exits (the harness returns from main normally).
pub fn remove_at_exit(dir: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_all() {
        if let Ok(dirs) = AT_EXIT.lock() {
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    ONCE.call_once(|| unsafe {
        libc::atexit(remove_all);
    });
    if let Ok(mut dirs) = AT_EXIT.lock() {
        dirs.push(dir.to_path_buf());
    }
}
