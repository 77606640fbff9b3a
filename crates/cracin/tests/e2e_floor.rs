//! End-to-end tests of the restore path's own work, with real CRIU on a real JVM: the cache of
//! CRIU's kernel-feature probe is made once for this boot (at the checkpoint) and then loaded by
//! every restore, without leaving a /run/criu.kdat behind; `restore --timings` says where the
//! time went; the figure cracin prints counts from the start of cracin; CRIU stops the restored
//! threads without hardware breakpoints unless `CRACIN_CRIU_BREAKPOINTS=1`. No timing is
//! asserted: only that the phases are there and add up.

mod common;

use std::path::Path;

use common::*;

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_string()
}

fn run_is_tmpfs() -> bool {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%T", "/run"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "tmpfs"
}

/// Kills a restored application when a test ends early (a failed assertion).
struct StopOnDrop(u32);
impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if Path::new(&format!("/proc/{}", self.0)).exists() {
            unsafe {
                libc::kill(self.0 as i32, libc::SIGKILL);
            }
        }
    }
}

/// /run/criu.kdat is one path for the whole host: while the other test here has a cracin place
/// it there, the first test's cracin rightly leaves it alone and makes no copy of its own. The
/// two tests of this binary take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn kdat_cache_made_once_per_boot_and_timings_add_up() {
    require!(can_checkpoint());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempdir("e2e-floor");
    let cache = work.join("cache");
    let ck = work.join("ckpt");
    let port = free_port();
    let kdat_there_before = Path::new("/run/criu.kdat").exists();
    let p = port.to_string();
    let out = run(
        checkpoint_cmd(&ck, port, &[], &["java", "-cp", ".", "Counter", &p])
            .env("CRACIN_CACHE_DIR", &cache),
    );
    assert!(out.status.success(), "checkpoint failed: {}", stderr(&out));
    // The collector the JVM would choose, said with its reason.
    assert!(
        stdout(&out).contains("gc ") || stderr(&out).contains("gc "),
        "the GC choice is printed"
    );

    // The CRIU version is remembered for this binary.
    let versions: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("criu-version-"))
        .collect();
    assert_eq!(versions.len(), 1, "one cached criu version");

    let tmpfs = run_is_tmpfs();
    let kdat_json = cache.join("kdat/criu.kdat.json");
    if !tmpfs && !kdat_there_before {
        // Made at the checkpoint for this boot.
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&kdat_json).unwrap()).unwrap();
        assert_eq!(meta["boot_id"], boot_id());
        assert!(
            std::fs::metadata(cache.join("kdat/criu.kdat"))
                .unwrap()
                .len()
                > 0
        );
    }

    for round in 0..2 {
        let mut cmd = cracin();
        cmd.env("CRACIN_CACHE_DIR", &cache).env_remove("CRIU_FAULT");
        // The second round keeps CRIU's default breakpoints (the lever turned off).
        if round == 1 {
            cmd.env("CRACIN_CRIU_BREAKPOINTS", "1");
        } else {
            cmd.env_remove("CRACIN_CRIU_BREAKPOINTS");
        }
        let out = run(cmd.args(["restore", ck.to_str().unwrap(), "--timings", "--json"]));
        assert!(out.status.success(), "restore failed: {}", stderr(&out));
        let pid = restored_pid(&out);
        // Stopped even when an assertion below fails.
        let _guard = StopOnDrop(pid);
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let err = stderr(&out);
        for phase in [
            "cracin: checkpoint, CRIU, CPU",
            "cracin: restore lock",
            "cracin: kdat cache",
            "criu: kernel probe and set-up",
            "criu: memory and resume",
            "first answer",
            "total",
        ] {
            assert!(err.contains(phase), "round {round}: no `{phase}` in\n{err}");
        }
        let phases = v["timings"].as_array().expect("timings in --json");
        let sum: f64 = phases.iter().map(|p| p["ms"].as_f64().unwrap()).sum();
        let ready = v["ready_ms"].as_f64().expect("ready_ms");
        let criu = v["criu_ms"].as_f64().unwrap();
        // From the start of cracin: more than CRIU alone, and the phases cover it.
        assert!(ready > criu, "ready {ready} <= criu {criu}");
        assert!(
            sum >= ready && sum - ready < 5.0,
            "phases {sum} vs ready {ready}"
        );
        let log_dir = v["log_dir"].as_str().unwrap();
        let log = std::fs::read_to_string(Path::new(log_dir).join("restore.log")).unwrap();
        if !tmpfs && !kdat_there_before {
            assert!(err.contains("cached for this boot"), "round {round}: {err}");
            assert!(log.contains("Loaded kdat cache"), "CRIU loaded the cache");
            // Removed after the run: no CRIU on a later boot can read it.
            assert!(!Path::new("/run/criu.kdat").exists());
        }
        // CRIU stopped the restored threads without hardware breakpoints (its log says so per
        // thread), unless told to keep them.
        assert_eq!(
            log.contains("Force no-breakpoints restore"),
            round == 0,
            "round {round}: no-breakpoints restore in {log_dir}/restore.log"
        );
        // Stopped as users stop it.
        kill_and_wait(pid, libc::SIGTERM);
    }
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

/// A JDK 25 home, when this machine has one (`CRACIN_JDK25` or Temurin's usual place).
fn jdk25() -> Option<std::path::PathBuf> {
    std::env::var_os("CRACIN_JDK25")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain([std::path::PathBuf::from(
            "/usr/lib/jvm/temurin-25-jdk-amd64",
        )])
        .find(|p| p.join("bin/java").is_file())
}

#[test]
fn bench_shows_the_plain_criu_and_jdk25_aot_columns() {
    require!(can_checkpoint());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let jdk = jdk25();
    if jdk.is_none() {
        skipped_in_part(
            test_name!(),
            "no JDK 25 (set CRACIN_JDK25): the AOT-cache columns are not tested",
        );
    }
    let mut c = cracin();
    c.current_dir(counter_classes()).args([
        "bench",
        "--runs",
        "1",
        "--plain-criu",
        "--latency-requests",
        "5",
        "--json",
        "--ready",
        &format!("http://127.0.0.1:{port}/health"),
        "--warmup",
        &format!("http://127.0.0.1:{port}/"),
        "--warmup-requests",
        "50",
    ]);
    if let Some(j) = &jdk {
        c.arg("--aot-jdk").arg(j);
    }
    // From a jar: a JDK 25 AOT cache refuses a class path with a non-empty directory.
    c.args(["--", "java", "-jar", "counter.jar", &port.to_string()]);
    let out = run(&mut c);
    assert!(out.status.success(), "bench failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let samples = |k: &str| v[k]["samples"].as_array().map(|a| a.len()).unwrap_or(0);
    assert_eq!(samples("cold_ms"), 1, "{v}");
    assert_eq!(samples("restore_ms"), 1, "{v}");
    assert_eq!(samples("plain_criu_ms"), 1, "plain criu column: {v}");
    assert!(v["plain_criu_ms"]["median"].as_f64().unwrap() > 0.0);
    assert!(
        v["restore_timed_as"]
            .as_str()
            .unwrap()
            .contains("cracin restore command"),
        "{v}"
    );
    if jdk.is_some() {
        assert!(v["aot_error"].is_null(), "{}", v["aot_error"]);
        assert_eq!(samples("jdk_cold_ms"), 1, "{v}");
        assert_eq!(samples("aot_cold_ms"), 1, "{v}");
    }
    assert_nothing_left(port);
}
