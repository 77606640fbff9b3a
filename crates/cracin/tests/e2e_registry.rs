//! End-to-end test of `cracin build --push` against a real OCI registry: Debian's
//! `docker-registry` is started on a free loopback port with a private storage directory, the
//! Counter application is built into a restore image with podman (real CRIU inside, and
//! `--cpu-baseline x86-64-v2`, so the in-container checkpoint is capped too), pushed, then
//! pulled into an EMPTY podman image store (private --root/--runroot) and restored there: it
//! must answer with the checkpoint's state (a cold start would count from 1) without the
//! fallback message. The registry, containers, images and directories are removed whatever
//! happens. Prints SKIPPED when podman, the base image or docker-registry is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use cracin_core::container::{Engine, FALLBACK_MARKER};

const REGISTRY: &str = "/usr/bin/docker-registry";

/// podman with cracin's containers.conf, on the system store or on a private one.
fn podman(store: Option<&Path>) -> Command {
    let mut c = engine_cmd(&Engine::podman());
    if let Some(s) = store {
        // podman refuses a runroot longer than 50 characters: short names.
        c.arg("--root")
            .arg(s.join("r"))
            .arg("--runroot")
            .arg(s.join("rr"));
    }
    c
}

fn pm(store: Option<&Path>, args: &[&str]) -> (bool, String) {
    let out = podman(store).args(args).output().expect("podman runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Everything the test made, removed on drop: the registry process, containers and images in
/// both stores, the private store (after unmounting what podman left mounted in it), temp dirs.
struct Guard {
    registry: Option<Child>,
    store: PathBuf,
    system_images: Vec<String>,
    private_containers: Vec<String>,
    dirs: Vec<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &self.private_containers {
            let _ = pm(Some(&self.store), &["rm", "-f", c]);
        }
        let _ = pm(Some(&self.store), &["rmi", "-a", "-f"]);
        // containers/storage keeps its overlay home mounted (a private bind mount).
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.store.display().to_string();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg(p).status();
        }
        for i in &self.system_images {
            let _ = pm(None, &["rmi", "-f", i]);
        }
        if let Some(mut r) = self.registry.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Debian's docker-registry on 127.0.0.1:`port`, its config and storage in `work`; returns when
/// it answers /v2/.
fn start_registry(work: &Path, port: u16) -> Child {
    let config = work.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            work.join("registry-data").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(work.join("registry.log")).unwrap();
    let mut child = Command::new(REGISTRY)
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("docker-registry starts");
    let url = format!("http://127.0.0.1:{port}/v2/");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if let Some((200, _)) = get(&url) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the registry did not answer {url} within 60 s: {}",
        std::fs::read_to_string(work.join("registry.log")).unwrap_or_default()
    );
}

fn wait_for(url: &str, what: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if let Some((200, _)) = get(url) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: nothing answered on {url} within 60 s");
}

#[test]
fn build_push_pull_into_an_empty_store_and_restore_there() {
    require!(
        can_checkpoint(),
        installed(REGISTRY, "docker-registry"),
        engine_ready(Engine::podman())
    );
    let work = tempdir("e2e-registry");
    let reg_port = free_port();
    // The empty image store, under a short private path (see `podman`).
    let store = std::env::temp_dir().join(format!("cr-{}-{reg_port}", std::process::id()));
    std::fs::create_dir(&store).unwrap();
    let mut g = Guard {
        registry: None,
        store: store.clone(),
        system_images: vec![],
        private_containers: vec![],
        dirs: vec![work.clone(), store.clone()],
    };

    // 1. A registry of our own on loopback, storing into the test's directory.
    g.registry = Some(start_registry(&work, reg_port));

    // 2. Build, verify and push (the tag in the system store is removed by the guard).
    let id = format!("{}-{}", std::process::id(), reg_port);
    let tag = format!("localhost/cracin-e2e-registry-{id}:latest");
    let remote = format!("127.0.0.1:{reg_port}/cracin-e2e/counter-{id}:1");
    g.system_images.push(tag.clone());
    let ctx = work.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(counter_classes().join("counter.jar"), ctx.join("app.jar")).unwrap();
    let out = run(cracin().current_dir(&ctx).args([
        "build",
        "--engine",
        "podman",
        "--base",
        "cracin-jdk21",
        "--jar",
        "app.jar",
        "--tag",
        &tag,
        "--verify",
        "1",
        "--ready",
        "http://127.0.0.1:8080/health",
        "--warmup",
        "http://127.0.0.1:8080/",
        "--cpu-baseline",
        "x86-64-v2",
        "--push",
        &remote,
        "--",
        "java",
        "-Dcounter.bind=0.0.0.0",
        "-jar",
        "/app/app.jar",
        "8080",
    ]));
    let err = stderr(&out);
    if let Some(dir) = build_log_dir(&err) {
        g.dirs.push(dir);
    }
    assert!(out.status.success(), "build --push failed: {err}");
    assert!(
        stdout(&out).contains(&format!("pushed to {remote}")),
        "{}",
        stdout(&out)
    );

    // 3. An empty image store pulls it from the registry.
    let (ok, images) = pm(Some(&store), &["images", "-q"]);
    assert!(ok && images.trim().is_empty(), "store not empty: {images}");
    let (ok, text) = pm(Some(&store), &["pull", "--tls-verify=false", &remote]);
    assert!(ok, "pull failed: {text}");
    let (ok, cat) = pm(
        Some(&store),
        &[
            "run",
            "--rm",
            "--entrypoint",
            "cat",
            &remote,
            "/app/checkpoint/cracin.json",
        ],
    );
    assert!(ok, "{cat}");
    let m: serde_json::Value = serde_json::from_str(&cat).expect("cracin.json in the image");
    assert_eq!(m["cpu"]["baseline"], "x86-64-v2", "{m}");
    let warmed = m["warmup_stats"]["requests"].as_i64().unwrap();
    assert!(warmed > 0, "{m}");

    // 4. Restored there: it answers with the checkpoint's count (a cold start counts from 1).
    let name = format!("cracin-e2e-registry-run-{id}");
    g.private_containers.push(name.clone());
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let (ok, text) = pm(
        Some(&store),
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--cap-add=CHECKPOINT_RESTORE",
            "-p",
            &publish,
            &remote,
        ],
    );
    assert!(ok, "run failed: {text}");
    let url = format!("http://127.0.0.1:{port}/");
    wait_for(&url, "the restored container");
    let (_, body) = get(&url).unwrap();
    let (_, logs) = pm(Some(&store), &["logs", &name]);
    assert!(!logs.contains(FALLBACK_MARKER), "fell back: {logs}");
    assert!(
        json_num(&body, "count") > 1,
        "a cold start, not a restore: {body}\n{logs}"
    );
    let (ok, text) = pm(Some(&store), &["stop", "-t", "10", &name]);
    assert!(ok, "stop failed: {text}");
    let (_, code) = pm(
        Some(&store),
        &["inspect", "-f", "{{.State.ExitCode}}", &name],
    );
    assert_eq!(code.trim(), "143", "SIGTERM reached the JVM");
    let (ok, text) = pm(Some(&store), &["rm", &name]);
    assert!(ok, "{text}");
    g.private_containers.clear();
    let (ok, text) = pm(Some(&store), &["rmi", &remote]);
    assert!(ok, "{text}");
    drop(g);
    let (_, imgs) = pm(None, &["images", "--format", "{{.Repository}}"]);
    assert!(!imgs.contains(&id), "images left behind: {imgs}");
    assert!(!work.exists(), "{} left behind", work.display());
    assert!(!store.exists(), "{} left behind", store.display());
}

/// `cracin push --dry-run` prints the commands with their TLS setting; a reference without a
/// registry is bad input (exit code 2) with a hint. Runs no engine.
#[test]
fn push_dry_run_shows_tls_and_bad_references_are_refused() {
    let out = run(cracin().args([
        "push",
        "myapp:instant",
        "--to",
        "127.0.0.1:5000/team/myapp:1",
        "--dry-run",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    // The engine's own options come first where the host needs them (e.g. `--runtime runc`
    // when podman's default crun cannot run on cgroups v1).
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("podman ")
            && l.ends_with(
                " push --tls-verify=false myapp:instant docker://127.0.0.1:5000/team/myapp:1"
            )),
        "{}",
        stdout(&out)
    );
    let out = run(cracin().args([
        "push",
        "myapp:instant",
        "--to",
        "registry.example.com/team/myapp:1",
        "--engine",
        "docker",
        "--tls-verify",
        "false",
        "--dry-run",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("insecure-registries"),
        "{}",
        stdout(&out)
    );
    let out = run(cracin().args(["push", "myapp:instant", "--to", "team/myapp:1"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a registry host"),
        "{}",
        stderr(&out)
    );
}

/// docker for real: `cracin push --engine docker` to the loopback registry (plain HTTP, which the
/// daemon allows for 127.0.0.0/8 without settings) lands the image in the registry and leaves no
/// registry name in the engine; a push that fails (nothing listens) exits 7 and also leaves no
/// registry name, and the source image stays. The image is the base image under a test-owned
/// name; nothing is restored (the podman test does that).
#[test]
fn docker_push_to_a_loopback_registry_and_a_failed_push_cleans_up() {
    let e = require!(
        can_checkpoint(),
        installed(REGISTRY, "docker-registry"),
        engine_ready(Engine::docker())
    );
    let docker = |args: &[&str]| -> (bool, String) {
        match engine_cmd(&e).args(args).output() {
            Ok(o) => (
                o.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
            ),
            Err(err) => (false, err.to_string()),
        }
    };
    let work = tempdir("e2e-registry-docker");
    let reg_port = free_port();
    let id = format!("{}-{reg_port}", std::process::id());
    let source = format!("localhost/cracin-e2e-push-{id}:1");
    let remote = format!("127.0.0.1:{reg_port}/cracin-e2e/base-{id}:1");
    let closed = format!("127.0.0.1:{}/cracin-e2e/base-{id}:1", free_port());
    /// Removes the registry, the test's names in docker and the directory, whatever happens.
    struct DockerGuard<'a> {
        registry: Option<Child>,
        names: Vec<String>,
        work: PathBuf,
        docker: &'a dyn Fn(&[&str]) -> (bool, String),
    }
    impl Drop for DockerGuard<'_> {
        fn drop(&mut self) {
            for n in &self.names {
                let _ = (self.docker)(&["rmi", n]);
            }
            if let Some(mut r) = self.registry.take() {
                let _ = r.kill();
                let _ = r.wait();
            }
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
    let mut g = DockerGuard {
        registry: None,
        names: vec![source.clone(), remote.clone(), closed.clone()],
        work: work.clone(),
        docker: &docker,
    };
    g.registry = Some(start_registry(&work, reg_port));
    let (ok, text) = docker(&["tag", BASE_IMAGE, &source]);
    assert!(ok, "{text}");

    let out = run(cracin().args(["push", &source, "--to", &remote, "--engine", "docker"]));
    assert!(out.status.success(), "docker push failed: {}", stderr(&out));
    let (st, tags) = get(&format!(
        "http://127.0.0.1:{reg_port}/v2/cracin-e2e/base-{id}/tags/list"
    ))
    .expect("the registry answers");
    assert_eq!(st, 200, "{tags}");
    assert!(tags.contains("\"1\""), "not in the registry: {tags}");
    let names = |what: &str| {
        docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .1
            .lines()
            .any(|l| l == what)
    };
    assert!(!names(&remote), "the registry name stayed in docker");

    let out = run(cracin().args(["push", &source, "--to", &closed, "--engine", "docker"]));
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("connection refused"), "{err}");
    // The failed push keeps its logs for the user (named in the error); the test removes them.
    let logs = err
        .split_whitespace()
        .find(|w| w.contains("/cracin-push-"))
        .map(|w| PathBuf::from(w.trim_end_matches(':')))
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| panic!("no log directory named: {err}"));
    assert!(logs.is_dir(), "{}", logs.display());
    std::fs::remove_dir_all(&logs).unwrap();
    assert!(!names(&closed), "a failed push left its registry name");
    assert!(names(&source), "the source image must stay");
    drop(g);
    assert!(!names(&source));
    assert!(!work.exists());
}
