//! End-to-end diagnosis: five different failures provoked for real through `cracin` (real JVMs,
//! real CRIU) must each print the right diagnosis, with its evidence and fix, and the right exit
//! code; `cracin explain` reads the same failure again from the logs left behind.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// `diagnosis: TITLE` of the rule `id` must be in the output (titles come from the catalog).
fn assert_diagnosis(out: &std::process::Output, id: &str) {
    let rule = cracin_core::diagnose::RULES
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no rule {id}"));
    let e = stderr(out);
    assert!(
        e.contains(&format!("diagnosis: {}", rule.title)),
        "expected diagnosis {id} in:\n{e}"
    );
    assert!(e.contains("evidence: "), "{e}");
    assert!(e.contains(&format!("fix:      {}", rule.fix)), "{e}");
}

fn counter_jar_copy(dir: &Path) -> std::path::PathBuf {
    let jar = dir.join("counter.jar");
    std::fs::copy(counter_classes().join("counter.jar"), &jar).unwrap();
    jar
}

#[test]
fn a_jar_changed_after_the_checkpoint() {
    require!(can_checkpoint());
    let work = tempdir("diag-size");
    let jar = counter_jar_copy(&work);
    let port = free_port();
    let ck = work.join("ck");
    let p = port.to_string();
    let out = run(&mut checkpoint_cmd(
        &ck,
        port,
        &[],
        &["java", "-jar", jar.to_str().unwrap(), &p],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    // A redeploy while the checkpoint is kept: the jar the JVM had open grows.
    std::fs::OpenOptions::new().append(true).open(&jar).unwrap();
    let mut bytes = std::fs::read(&jar).unwrap();
    bytes.extend_from_slice(b"\0redeployed");
    std::fs::write(&jar, bytes).unwrap();
    let out = run(cracin().args(["restore", ck.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(6));
    assert_diagnosis(&out, "file-size-changed");
    // explain reads the same failure from the checkpoint's restore logs.
    let out = run(cracin().args([
        "explain",
        ck.join("restores")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .to_str()
            .unwrap(),
    ]));
    assert!(
        stdout(&out).contains("a file the JVM had open changed after the checkpoint"),
        "{}",
        stdout(&out)
    );
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn a_full_disk_during_the_dump() {
    require!(can_checkpoint());
    let work = tempdir("diag-space");
    let small = work.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    // Unmounted however the test ends.
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let mounted = Unmount(small.clone());
    let port = free_port();
    let out = checkpoint_counter(&small.join("ck"), port, &[]);
    // CRIU's own log is on the full file system and may be cut before its error line: cracin
    // asks the file system (statvfs) right after the failure and says what it saw in the log.
    let log = std::fs::read_to_string(small.join("ck.failed/dump.log")).unwrap_or_default();
    drop(mounted);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_diagnosis(&out, "no-space");
    assert!(
        log.contains("cracin: No space left on device: when criu failed, the file system of"),
        "the file system's state is in the log whatever CRIU managed to write:\n{log}"
    );
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn a_heap_larger_than_the_machine() {
    require!(can_checkpoint());
    let port = free_port();
    let work = tempdir("diag-heap");
    let out = checkpoint_counter(&work.join("ck"), port, &["--java-option", "-Xmx100000g"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("exited with exit status 1 before it was ready"));
    assert_diagnosis(&out, "jvm-heap-reservation");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn classes_built_for_a_newer_java() {
    require!(can_checkpoint());
    let javac25 = require!(installed(
        "/usr/lib/jvm/temurin-25-jdk-amd64/bin/javac",
        "temurin-25-jdk"
    ));
    let java17 = require!(installed(
        "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
        "openjdk-17-jdk-headless"
    ));
    let work = tempdir("diag-classver");
    let st = Command::new(javac25)
        .args(["-d", work.to_str().unwrap()])
        .arg(repo_root().join("tests/fixtures/apps/counter-http/Counter.java"))
        .status()
        .unwrap();
    assert!(st.success());
    let port = free_port();
    let p = port.to_string();
    let java17 = java17.to_str().unwrap();
    // Run from the directory of the classes javac 25 built.
    let out = run(checkpoint_cmd(
        &work.join("ck"),
        port,
        &[],
        &[java17, "-cp", ".", "Counter", &p],
    )
    .current_dir(&work));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_diagnosis(&out, "class-version-too-new");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn images_emptied_by_an_auto_dedup_restore() {
    require!(can_checkpoint());
    let work = tempdir("diag-dedup");
    let port = free_port();
    let ck = work.join("ck");
    let out = checkpoint_counter(&ck, port, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Someone restores the images by hand with --auto-dedup, which punches the restored pages
    // out of pages-*.img (the file keeps its size).
    let m = manifest(&ck);
    let stdout_path = m["app_output"]["stdout"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let stderr_path = m["app_output"]["stderr"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let criu = m["criu"]["path"].as_str().unwrap().to_string();
    let pidfile = work.join("pid");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec \"$0\" restore -D {} -d --auto-dedup --tcp-close --file-locks --pidfile {} -o {} \
             --inherit-fd 'fd[3]:{stdout_path}' --inherit-fd 'fd[4]:{stderr_path}' 3>/dev/null 4>/dev/null",
            ck.join("images").display(),
            pidfile.display(),
            work.join("dedup.log").display()
        ))
        .arg(&criu)
        .status()
        .unwrap();
    assert!(st.success(), "the by-hand restore works once");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill_and_wait(pid, libc::SIGKILL);
    let out = run(cracin().args(["restore", ck.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_diagnosis(&out, "images-deduplicated");
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}
