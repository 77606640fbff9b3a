//! End-to-end tests of what makes checkpoints smaller, with real CRIU on a real JVM: `--cds`
//! (a CDS archive made in a training run, mapped by the checkpointed JVM and by every restore of
//! it) and the heap squeezed for the full GC before the dump, with the JVM's own heap sizing put
//! back. Only behaviour is asserted (the restore answers, maps the archive, has its ratios
//! back); how much smaller the images get is measured by scripts/bench-size.sh, never here.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Removes the archive this test's checkpoint made (kept in /var/lib/cracin/cds for restores).
struct RemoveOnDrop(Option<PathBuf>);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_file(format!("{}.users", p.display()));
        }
    }
}

/// The archive path cracin printed ("archive /var/lib/cracin/cds/HASH.jsa (...)").
fn archive_in(text: &str) -> Option<PathBuf> {
    let start = text.find("/var/lib/cracin/cds/")?;
    let end = start + text[start..].find(".jsa")? + 4;
    Some(PathBuf::from(&text[start..end]))
}

#[test]
fn cds_archive_is_mapped_by_every_restore_and_heap_sizing_is_put_back() {
    require!(can_checkpoint());
    let work = tempdir("e2e-size");
    let ck = work.join("ckpt");
    let port = free_port();
    // From a jar: a CDS archive refuses a class path with a non-empty directory.
    let (warm, p) = (format!("http://127.0.0.1:{port}/work"), port.to_string());
    let out = run(&mut checkpoint_cmd(
        &ck,
        port,
        &["--cds", "--warmup", &warm, "--warmup-requests", "50"],
        &["java", "-jar", "counter.jar", &p],
    ));
    let text = stdout(&out) + &stderr(&out);
    let archive = archive_in(&text);
    let _remove = RemoveOnDrop(archive.clone());
    assert!(out.status.success(), "checkpoint failed: {text}");
    // What was chosen is said: the training run and the archive it made.
    assert!(text.contains("training run"), "{text}");
    let archive = archive.expect("the archive's path is printed");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o444, "the archive is read-only");
    }
    // The archive knows its checkpoint, so that it is removed once no checkpoint uses it.
    let users = std::fs::read_to_string(format!("{}.users", archive.display())).unwrap();
    let canonical = std::fs::canonicalize(&ck).unwrap();
    assert!(
        users.lines().any(|l| Path::new(l) == canonical),
        "{} not in the archive's users: {users}",
        canonical.display()
    );
    // The heap was squeezed for the full GC before the dump.
    let manifest = std::fs::read_to_string(ck.join("cracin.json")).unwrap();
    assert!(
        manifest.contains("heap squeezed to live data"),
        "{manifest}"
    );

    let jcmd = which("jcmd");
    let mut counts = Vec::new();
    for (round, sig) in [(0, libc::SIGTERM), (1, libc::SIGINT)] {
        let out = run(cracin().args(["restore", ck.to_str().unwrap(), "--json"]));
        assert!(
            out.status.success(),
            "restore {round} failed: {}",
            stderr(&out)
        );
        let pid = restored_pid(&out);
        let _guard = Restored(pid);
        let (st, body) = get(&format!("http://127.0.0.1:{port}/")).expect("an answer");
        assert_eq!(st, 200);
        counts.push(json_num(&body, "count"));
        // Class metadata comes from the archive's file in every restored JVM.
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        assert!(
            maps.contains(archive.to_str().unwrap()),
            "round {round}: the restored JVM does not map {}",
            archive.display()
        );
        // The free ratios the JVM ran with before the dump are back (cracin's -XX:Min/Max).
        if let (0, Some(jcmd)) = (round, &jcmd) {
            let o = std::process::Command::new(jcmd)
                .args([pid.to_string().as_str(), "VM.flags"])
                .output()
                .unwrap();
            let flags = String::from_utf8_lossy(&o.stdout);
            assert!(flags.contains("-XX:MinHeapFreeRatio=10"), "{flags}");
            assert!(flags.contains("-XX:MaxHeapFreeRatio=30"), "{flags}");
        }
        // Stopped as users stop it.
        kill_and_wait(pid, sig);
    }
    // Both restores start from the checkpoint's state.
    assert_eq!(counts[0], counts[1], "{counts:?}");
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn cds_with_a_command_that_manages_its_own_archive_is_bad_input() {
    require!(can_checkpoint());
    let work = tempdir("e2e-size-bad");
    let ck = work.join("ckpt");
    let port = free_port();
    let p = port.to_string();
    let out = run(&mut checkpoint_cmd(
        &ck,
        port,
        &["--cds"],
        &["java", "-Xshare:off", "-jar", "counter.jar", &p],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("-Xshare:off"), "{}", stderr(&out));
    // Refused before anything started: no checkpoint, no logs of a failed one, no process.
    assert!(!ck.exists());
    assert!(!work.join("ckpt.failed").exists());
    assert_nothing_left(port);
    let _ = std::fs::remove_dir_all(&work);
}
