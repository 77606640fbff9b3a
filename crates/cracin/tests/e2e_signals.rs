//! Nothing is left behind when cracin is interrupted: SIGINT (Ctrl-C), SIGTERM and SIGKILL sent
//! to a real `cracin checkpoint` while it waits for readiness, while it warms up and while CRIU
//! dumps, and to a real `cracin restore` while CRIU restores: afterwards no application, no
//! criu, no staging directory and no guardian is left (for SIGKILL, cracin's guardian process
//! does the cleaning). Real CRIU on the small Counter application.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SIGNALS: [(i32, &str); 3] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGKILL, "SIGKILL"),
];

fn spawn(c: &mut Command) -> Child {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cracin starts")
}

fn checkpoint(dir: &Path, port: u16, extra: &[&str], app: &[&str]) -> Command {
    let mut c = cracin();
    c.current_dir(counter_classes()).args([
        "checkpoint",
        "--force",
        "--out",
        dir.to_str().unwrap(),
        "--ready",
        &format!("http://127.0.0.1:{port}/health"),
        "--ready-timeout",
        "120",
    ]);
    c.args(extra)
        .args(["--", "java", "-cp", ".", "Counter", &port.to_string()])
        .args(app);
    c
}

/// The guardian of a cracin process (its `cracin __guard` child), if it has one.
fn guardian_of(pid: u32) -> Option<u32> {
    let mut kids = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            kids.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
        }
    }
    kids.into_iter().find(|k| {
        std::fs::read(format!("/proc/{k}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("__guard"))
    })
}

/// The application's JVMs (`java ... Counter PORT`), not cracin (whose command line names
/// the application too) nor a child cracin forked that has not exec'd yet.
fn app_pids(port: u16) -> Vec<u32> {
    processes_with(&format!("Counter {port}"))
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"java\0"))
        })
        .collect()
}

/// Polls `cond` every millisecond for up to `secs`.
fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Sends `sig` to cracin, reaps it, and checks that nothing of this run is left.
fn interrupt_and_check(mut child: Child, sig: i32, what: &str, port: u16, work: &Path) {
    let guard = guardian_of(child.id());
    assert!(
        guard.is_some(),
        "{what}: cracin {} has a guardian",
        child.id()
    );
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
    let st = child.wait().unwrap();
    assert!(!st.success(), "{what}: cracin was interrupted ({st:?})");
    let w = work.to_string_lossy().into_owned();
    let clean = wait_for(20, || {
        let staging = std::fs::read_dir(work)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".tmp-"));
        processes_with(&format!("Counter {port}")).is_empty()
            && processes_with(&w).is_empty()
            && !staging
            && guard.is_some_and(|g| {
                !Path::new(&format!("/proc/{g}")).exists()
                    || std::fs::read_to_string(format!("/proc/{g}/stat"))
                        .is_ok_and(|s| s.contains(") Z"))
            })
    });
    let left: Vec<String> = std::fs::read_dir(work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        clean,
        "{what}: left behind: app {:?}, criu/other {:?}, files {left:?}, guardian {guard:?}",
        processes_with(&format!("Counter {port}")),
        processes_with(&w)
    );
    assert_nothing_left(port);
}

#[test]
fn signals_while_waiting_for_readiness_and_while_warming_up() {
    require!(can_checkpoint());
    let work = tempdir("sig-early");
    let ck = work.join("ckpt");
    for (sig, name) in SIGNALS {
        // Readiness: the application sleeps a minute before it listens.
        let port = free_port();
        let child = spawn(&mut checkpoint(&ck, port, &[], &["60000"]));
        assert!(
            wait_for(60, || !app_pids(port).is_empty()),
            "the application started"
        );
        interrupt_and_check(child, sig, &format!("{name} during readiness"), port, &work);

        // Warm-up: ten million requests, interrupted once it is under way.
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}/");
        let child = spawn(&mut checkpoint(
            &ck,
            port,
            &["--warmup", &url, "--warmup-requests", "10000000"],
            &[],
        ));
        assert!(
            wait_for(90, || get(&url)
                .is_some_and(|(_, b)| json_num(&b, "count") > 50)),
            "the warm-up started"
        );
        interrupt_and_check(child, sig, &format!("{name} during warm-up"), port, &work);
    }
    assert!(!ck.exists(), "no checkpoint was written");
    let _ = std::fs::remove_dir_all(&work);
}

/// Whether a `criu <verb>` whose command line names `path` runs (not cracin, whose command
/// line names the path too).
fn criu_running(verb: &str, path: &Path) -> bool {
    let p = path.to_string_lossy().into_owned();
    processes_with(&p).into_iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let c = String::from_utf8_lossy(&c).into_owned();
                let argv: Vec<&str> = c.split('\0').collect();
                argv[0].ends_with("/criu") && argv.get(1) == Some(&verb)
            })
            .unwrap_or(false)
    })
}

#[test]
fn signals_while_criu_dumps_and_while_restoring() {
    require!(can_checkpoint());
    let work = tempdir("sig-criu");
    let ck = work.join("ckpt");
    for (sig, name) in SIGNALS {
        // A class-heavy application (--boot) makes a dump long enough to be caught; a dump that
        // finishes first is tried again.
        let mut caught = false;
        for _attempt in 0..4 {
            let port = free_port();
            let child = spawn(&mut checkpoint(&ck, port, &["--no-gc"], &["--boot"]));
            let images = work.to_path_buf();
            if wait_for(180, || criu_running("dump", &images)) {
                interrupt_and_check(child, sig, &format!("{name} during the dump"), port, &work);
                caught = true;
                break;
            }
            let mut child = child;
            let _ = child.wait();
            assert_nothing_left(port);
        }
        assert!(caught, "{name}: a running criu dump was caught");
    }

    // A good checkpoint, then restores interrupted while CRIU runs (or right after, while
    // cracin waits for readiness).
    let port = free_port();
    let out = run(&mut checkpoint(&ck, port, &[], &["--boot"]));
    assert!(out.status.success(), "{}", stderr(&out));
    for (sig, name) in SIGNALS {
        let child =
            spawn(cracin().args(["restore", ck.to_str().unwrap(), "--ready-timeout", "120"]));
        let cpid = child.id();
        assert!(
            wait_for(60, || criu_running("restore", &ck)
                || (!app_pids(port).is_empty()
                    && Path::new(&format!("/proc/{cpid}")).exists())),
            "the restore started"
        );
        interrupt_and_check(
            child,
            sig,
            &format!("{name} during the restore"),
            port,
            &work,
        );
    }
    // Still restorable afterwards.
    let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    kill_and_wait(restored_pid(&out), libc::SIGTERM);
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}
