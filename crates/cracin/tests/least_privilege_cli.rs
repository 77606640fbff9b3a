//! The command-line side of non-root images and `cracin kube`, without building anything:
//! `cracin seccomp` prints and writes the profile restore containers use, bad `--user` values
//! are refused with exit 2 before any engine runs, `--dry-run` plans show the least-privilege
//! flags and the non-root Containerfile, and `cracin kube` refuses an image it cannot read (exit
//! 2, naming it). The real builds, restores and `podman kube play` are in e2e_container.rs.

mod common;

use common::*;

#[test]
fn seccomp_prints_and_writes_the_profile() {
    let out = run(cracin().arg("seccomp"));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(stdout(&out).contains("\"clone3\""));
    let dir = tempdir("seccomp-cli");
    let path = dir.join("p.json");
    let out = run(cracin().args(["seccomp", "--out"]).arg(&path));
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), {
        let o = run(cracin().arg("seccomp"));
        stdout(&o)
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_users_are_refused_and_plans_show_the_least_privilege() {
    let dir = tempdir("lp-cli");
    std::fs::write(dir.join("app.jar"), b"not a jar, never read by --dry-run").unwrap();
    let build = |extra: &[&str]| {
        let mut c = cracin();
        c.current_dir(&dir).args([
            "build",
            "--engine",
            "docker",
            "--base",
            "cracin-jdk21",
            "--jar",
            "app.jar",
            "--tag",
            "x:y",
            "--dry-run",
            "--seccomp-profile",
            "/p/restore.json",
        ]);
        c.args(extra);
        run(&mut c)
    };
    for bad in ["0", "root", "1001:staff", ""] {
        let out = build(&["--user", bad]);
        assert_eq!(out.status.code(), Some(2), "--user {bad:?}");
        assert!(stderr(&out).contains("--user"), "{}", stderr(&out));
    }
    let out = build(&["--user", "4242:4343"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(plan.contains("--cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=unconfined"), "{plan}");
    assert!(plan.contains("--cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=/p/restore.json"), "{plan}");
    assert!(
        plan.contains("chown 4242:4343 /app") && plan.contains("USER 4242:4343"),
        "{plan}"
    );
    assert!(plan.contains("# writes /p/restore.json"), "{plan}");
    assert!(
        !std::path::Path::new("/p/restore.json").exists(),
        "--dry-run writes nothing"
    );
    let out = run(cracin()
        .args(["init", "--user", "0", "--dir"])
        .arg(dir.join("init")));
    assert_eq!(out.status.code(), Some(2));
    let out = run(cracin()
        .args(["init", "--user", "4242", "--dir"])
        .arg(dir.join("init")));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("the image runs as 4242"),
        "{}",
        stdout(&out)
    );
    let cf = std::fs::read_to_string(dir.join("init/Containerfile")).unwrap();
    assert!(
        cf.contains("chown 4242 /app") && cf.contains("\nUSER 4242\n"),
        "{cf}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kube_refuses_an_image_it_cannot_read() {
    require!(on_path("podman"));
    let dir = tempdir("kube-cli");
    let out = run(cracin()
        .env("CONTAINERS_CONF", "/opt/cracin/containers.conf")
        .args(["kube", "localhost/cracin-no-such-image:nope", "--out"])
        .arg(dir.join("k")));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("localhost/cracin-no-such-image:nope"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("k").exists(), "nothing written");
    let out = run(cracin().args(["kube", "x", "--out", "/tmp", "--user", "0"]));
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
