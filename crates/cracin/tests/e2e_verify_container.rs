//! End-to-end test of the uniqueness check on real podman: the Tokens fixture in `seeded` mode
//! (fixed seeds, so every restore repeats the same tokens) is built into a restore image with
//! `cracin build` (real CRIU in the container, real JVM). `cracin verify IMAGE --engine podman`
//! must run two containers at once, find the repeated session cookie and tokens, exit with 8,
//! and stop and remove both containers (also when it is interrupted with Ctrl-C). A second `cracin build` of the same application with
//! `--verify-url` must refuse to tag: the tag keeps the first image, and no temporary container
//! or image is left. Prints `SKIPPED:` when podman or the base image is missing (panics instead
//! under CRACIN_REQUIRE_E2E).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use cracin_core::container::Engine;

/// Removes the test's images and directories, whatever happens.
struct Cleanup<'a> {
    engine: &'a Engine,
    images: Vec<String>,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for i in &self.images {
            let _ = eng(self.engine, &["rmi", "-f", i]);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A build context with the Tokens fixture as app.jar.
fn context() -> PathBuf {
    let dir = tempdir("verify-ctx");
    let classes = dir.join("classes");
    let src = repo_root().join("tests/fixtures/apps/tokens-http/Tokens.java");
    let st = Command::new("javac")
        .args(["-d".as_ref(), classes.as_os_str(), src.as_os_str()])
        .status()
        .expect("javac runs");
    assert!(st.success(), "javac failed");
    let st = Command::new("jar")
        .args(["cfe".as_ref(), dir.join("app.jar").as_os_str()])
        .arg("Tokens")
        .args(["-C".as_ref(), classes.as_os_str(), ".".as_ref()])
        .status()
        .expect("jar runs");
    assert!(st.success(), "jar failed");
    dir
}

fn build(ctx: &Path, tag: &str, verify_url: Option<&str>) -> std::process::Output {
    let mut c = cracin();
    c.current_dir(ctx).args([
        "build",
        "--engine",
        "podman",
        "--base",
        "cracin-jdk21",
        "--jar",
        "app.jar",
        "--tag",
        tag,
        "--verify",
        "1",
        "--ready",
        "http://127.0.0.1:8080/health",
        "--warmup",
        "http://127.0.0.1:8080/login",
    ]);
    if let Some(u) = verify_url {
        c.args(["--verify-url", u]);
    }
    c.args([
        "--",
        "java",
        "-Dtokens.bind=0.0.0.0",
        "-jar",
        "/app/app.jar",
        "8080",
        "seeded",
    ]);
    run(&mut c)
}

/// The build's temporary containers and images (named after the id in its log directory).
fn leftovers(e: &Engine, stderr: &str) -> Vec<String> {
    let id = stderr
        .split("cracin-build-")
        .nth(1)
        .and_then(|r| r.split("-logs").next())
        .unwrap_or_else(|| panic!("no log directory in {stderr}"))
        .to_string();
    if let Some(dir) = build_log_dir(stderr) {
        let _ = std::fs::remove_dir_all(dir);
    }
    let (_, ctrs, _) = eng(e, &["ps", "-a", "--format", "{{.Names}}"]);
    let (_, imgs, _) = eng(e, &["images", "--format", "{{.Repository}}"]);
    ctrs.lines()
        .chain(imgs.lines())
        .filter(|l| l.contains(&id))
        .map(String::from)
        .collect()
}

#[test]
fn podman_verify_image_and_build_refuse_repeating_tokens() {
    let e = require!(can_checkpoint(), engine_ready(Engine::podman()));
    let ctx = context();
    let tag = format!("localhost/cracin-e2e-verify-{}:instant", std::process::id());
    let _g = Cleanup {
        engine: &e,
        images: vec![tag.clone()],
        dirs: vec![ctx.clone()],
    };

    // Without --verify-url the build does not look at the tokens: it is tagged.
    let out = build(&ctx, &tag, None);
    assert!(out.status.success(), "cracin build failed");
    assert!(leftovers(&e, &stderr(&out)).is_empty());
    let (_, before, _) = eng(&e, &["image", "inspect", "-f", "{{.Id}}", &tag]);

    // `cracin verify IMAGE`: two containers at once, each asked /login twice.
    let out = run(cracin().args([
        "verify",
        &tag,
        "--engine",
        "podman",
        "--url",
        "/login",
        "--ready",
        "http://127.0.0.1:8080/health",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(8), "a repeat must exit with 8");
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    let checks = report["checks"].as_array().unwrap();
    let verdict = |f: &str| {
        checks
            .iter()
            .find(|c| c["field"] == f)
            .unwrap_or_else(|| panic!("no {f} in {report}"))["verdict"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(verdict("Set-Cookie SESSION"), "repeated");
    assert_eq!(verdict("$.csrf"), "repeated");
    assert_eq!(verdict("$.build"), "constant");
    let inst = report["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 2);
    for i in inst {
        // 143: SIGTERM reached the JVM (cracin, PID 1, exits with its status).
        assert_eq!(i["stopped"], "SIGTERM (exit status 143)", "{i}");
    }
    assert!(
        stderr(&out).contains("Set-Cookie SESSION"),
        "{}",
        stderr(&out)
    );
    for i in inst {
        // "container NAME (127.0.0.1:PORT)": stopped and removed.
        let label = i["label"].as_str().unwrap();
        let name = label.split_whitespace().nth(1).unwrap();
        assert!(name.starts_with("cracin-verify-"), "{label}");
        let (exists, _, _) = eng(&e, &["container", "exists", name]);
        assert!(!exists, "{name} was left behind");
    }

    // Ctrl-C while the two containers are being asked: both are removed before cracin exits.
    let mut child = cracin()
        .args([
            "verify", &tag, "--engine", "podman", "--url", "/login", "--rounds", "100000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut names = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        // "[ 1.23s] instance 2 done in 456 ms: cracin-verify-ID-2 answers on 127.0.0.1:PORT"
        if let Some(n) = l
            .split(": ")
            .nth(1)
            .and_then(|r| r.split(" answers on").next())
        {
            if l.contains(" answers on ") {
                names.push(n.to_string());
            }
        }
        if l.contains("instance 1") && l.contains("sending") {
            break;
        }
    }
    assert_eq!(names.len(), 2, "{names:?}");
    let pid = child.id();
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest:?}");
    for name in &names {
        let (exists, _, _) = eng(&e, &["container", "exists", name]);
        assert!(!exists, "{name} was left behind after Ctrl-C");
    }
    // Nor its private log directory.
    let prefix = format!("cracin-verify-{pid}-");
    let left: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left in /tmp: {left:?}");

    // `cracin build --verify-url`: the same application is refused, the tag keeps the first
    // image, nothing temporary is left.
    let out = build(&ctx, &tag, Some("/login"));
    assert_eq!(out.status.code(), Some(8), "the build must fail the check");
    let err = stderr(&out);
    assert!(err.contains("uniqueness"), "{err}");
    assert!(err.contains("Set-Cookie SESSION at"), "{err}");
    let (_, after, _) = eng(&e, &["image", "inspect", "-f", "{{.Id}}", &tag]);
    assert_eq!(after, before, "the tag must keep the previous image");
    assert!(
        leftovers(&e, &err).is_empty(),
        "temporary containers or images left"
    );
}
