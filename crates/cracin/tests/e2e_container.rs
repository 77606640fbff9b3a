//! End-to-end tests of `cracin build` on real podman and real docker (cracin's Docker 26): the
//! Counter application is built into a restore image (real CRIU inside the container, real JVM),
//! and containers of that image must come back with the state of the checkpoint (the warm-up's
//! count, the checkpointed JVM's start time), log through the engine, stop on SIGTERM, restore
//! again and again, and fall back to a cold start when the container lacks CHECKPOINT_RESTORE.
//! A checkpoint that cannot be restored must fail the build's verification and leave the
//! previous image under the tag. `--image` mode checkpoints an existing image running its own
//! CMD in its own working directory.
//!
//! Each engine is a separate test; a test prints `SKIPPED:` when its engine, its daemon or the
//! base image `localhost/cracin-base:jdk21` is missing (and panics instead when
//! CRACIN_REQUIRE_E2E is set). Every container and image a test creates is removed by a guard,
//! also when it fails.

mod common;

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use cracin_core::container::Engine;

const APP_CMD: [&str; 5] = [
    "java",
    "-Dcounter.bind=0.0.0.0",
    "-jar",
    "/app/app.jar",
    "8080",
];

/// Removes every container and image the test registered, whatever happens.
struct Cleanup<'a> {
    engine: &'a Engine,
    containers: RefCell<Vec<String>>,
    images: RefCell<Vec<String>>,
    dirs: RefCell<Vec<std::path::PathBuf>>,
}

impl<'a> Cleanup<'a> {
    fn new(engine: &'a Engine) -> Self {
        Cleanup {
            engine,
            containers: RefCell::default(),
            images: RefCell::default(),
            dirs: RefCell::default(),
        }
    }
    fn container(&self, name: &str) -> String {
        self.containers.borrow_mut().push(name.to_string());
        name.to_string()
    }
    fn image(&self, name: &str) -> String {
        self.images.borrow_mut().push(name.to_string());
        name.to_string()
    }
    /// The step logs `cracin build` keeps in a fresh /tmp/cracin-build-ID-logs-XXXXXX.
    fn build_logs(&self, out: &std::process::Output) {
        let err = String::from_utf8_lossy(&out.stderr);
        if let Some(dir) = err
            .lines()
            .find_map(|l| l.strip_prefix("cracin build: logs in "))
        {
            self.dirs.borrow_mut().push(dir.trim().into());
        }
    }
    fn dir(&self, prefix: &str) -> std::path::PathBuf {
        let d = tempdir(prefix);
        self.dirs.borrow_mut().push(d.clone());
        d
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for c in self.containers.borrow().iter() {
            let _ = eng(self.engine, &["rm", "-f", c]);
        }
        for i in self.images.borrow().iter() {
            let _ = eng(self.engine, &["rmi", "-f", i]);
        }
        for d in self.dirs.borrow().iter() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A name nobody else uses.
fn unique(what: &str, e: &Engine) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "cracin-e2e-{what}-{}-{}-{nanos:x}",
        e.name(),
        std::process::id()
    )
}

/// The flags a restore container needs (docs/containers.md): CHECKPOINT_RESTORE alone, no
/// privilege escalation, cracin's generated seccomp profile (the build writes it to `profile`).
fn restore_flags(profile: &Path) -> Vec<String> {
    vec![
        "--cap-drop=ALL".into(),
        "--cap-add=CHECKPOINT_RESTORE".into(),
        "--security-opt".into(),
        "no-new-privileges".into(),
        "--security-opt".into(),
        format!("seccomp={}", profile.display()),
    ]
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `Uid:` and the capability sets of a process in a running container, read by `exec`.
fn proc_status(e: &Engine, name: &str, pid: i64) -> std::collections::HashMap<String, String> {
    let path = format!("/proc/{pid}/status");
    let (ok, out, err) = eng(e, &["exec", name, "cat", &path]);
    assert!(ok, "cannot read {path} in {name}: {err}");
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// The restored JVM runs as `uid` with no capability at all, under a seccomp filter.
fn check_unprivileged(e: &Engine, name: &str, pid: i64, uid: &str) {
    let st = proc_status(e, name, pid);
    eprintln!(
        "{}: JVM {pid} in {name}: Uid {} CapEff {} CapPrm {} CapInh {} CapAmb {} CapBnd {} Seccomp {} NoNewPrivs {}",
        e.name(), st["Uid"], st["CapEff"], st["CapPrm"], st["CapInh"], st["CapAmb"], st["CapBnd"],
        st["Seccomp"], st["NoNewPrivs"]
    );
    assert_eq!(st["Uid"].split_whitespace().next(), Some(uid), "{st:?}");
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(
            st[set], "0000000000000000",
            "{set} of the restored JVM: {st:?}"
        );
    }
    assert_eq!(
        st["Seccomp"], "2",
        "the JVM runs under a seccomp filter: {st:?}"
    );
}

/// A build context holding the Counter jar as app.jar.
fn context(g: &Cleanup) -> std::path::PathBuf {
    let dir = g.dir("container-ctx");
    std::fs::copy(counter_classes().join("counter.jar"), dir.join("app.jar")).unwrap();
    dir
}

/// `cracin` asked explicitly for the engine set-up these tests measured: cracin's own
/// containers.conf for podman (CONTAINERS_CONF), its private Docker 26 for docker
/// (CRACIN_DOCKER_HOST). The test of the system's podman without any of it is
/// `podman_build_with_the_systems_podman_and_no_cracin_configuration`.
fn cracin_for(e: &Engine) -> Command {
    let mut c = cracin();
    for (k, v) in &e.env {
        c.env(k, v);
    }
    if e.name() == "docker" {
        c.env("CRACIN_DOCKER_HOST", cracin_core::container::DOCKER_SOCKET);
    }
    c
}

/// `cracin build` of the Counter jar; the output of the run.
fn build_jar(
    e: &Engine,
    ctx: &Path,
    tag: &str,
    profile: &Path,
    app_cmd: &[&str],
) -> std::process::Output {
    let profile = profile.display().to_string();
    build_jar_with(
        cracin_for(e),
        e,
        ctx,
        tag,
        app_cmd,
        &["--seccomp-profile", &profile],
    )
}

fn build_jar_with(
    mut c: Command,
    e: &Engine,
    ctx: &Path,
    tag: &str,
    app_cmd: &[&str],
    extra: &[&str],
) -> std::process::Output {
    c.current_dir(ctx)
        .args([
            "build",
            "--engine",
            e.name(),
            "--base",
            "cracin-jdk21",
            "--jar",
            "app.jar",
        ])
        .args(["--tag", tag, "--verify", "1"])
        .args(extra)
        .args([
            "--ready",
            "http://127.0.0.1:8080/health",
            "--warmup",
            "http://127.0.0.1:8080/",
        ])
        .arg("--")
        .args(app_cmd);
    run(&mut c)
}

/// Starts a container of `image` publishing 8080 on a free loopback port.
fn start(g: &Cleanup, image: &str, flags: &[&str]) -> (String, u16) {
    let name = g.container(&unique("run", g.engine));
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let mut args = vec!["run", "-d", "--name", &name, "-p", &publish];
    args.extend_from_slice(flags);
    args.push(image);
    let (ok, out, err) = eng(g.engine, &args);
    assert!(ok, "run failed: {out}{err}");
    (name, port)
}

/// The first answer of GET / (polled until it comes) and the time it took.
fn first_answer(port: u16) -> (String, Duration) {
    let t0 = Instant::now();
    let url = format!("http://127.0.0.1:{port}/");
    while t0.elapsed() < Duration::from_secs(60) {
        if let Some((200, body)) = get(&url) {
            return (body, t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing answered on {url} within 60 s");
}

fn logs(e: &Engine, name: &str) -> String {
    let (_, out, err) = eng(e, &["logs", name]);
    format!("{out}{err}")
}

/// `stop` must end the container within 5 s (SIGTERM reaches the JVM); then it is removed.
fn stop_within_5s(e: &Engine, name: &str) {
    let t0 = Instant::now();
    let (ok, out, err) = eng(e, &["stop", "-t", "10", name]);
    let took = t0.elapsed();
    assert!(ok, "stop failed: {out}{err}");
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    // The JVM's own status on SIGTERM is 128+15; cracin, PID 1, exits with it.
    let (_, code, _) = eng(e, &["inspect", "-f", "{{.State.ExitCode}}", name]);
    assert_eq!(code.trim(), "143", "exit code after SIGTERM");
    let _ = eng(e, &["rm", name]);
}

fn image_id(e: &Engine, image: &str) -> String {
    let (ok, out, err) = eng(e, &["image", "inspect", "-f", "{{.Id}}", image]);
    assert!(ok, "no image {image}: {err}");
    out.trim().to_string()
}

/// A file of the image, read with `cat` in a throw-away container.
fn image_file(e: &Engine, image: &str, path: &str) -> String {
    let (ok, out, err) = eng(e, &["run", "--rm", "--entrypoint", "cat", image, path]);
    assert!(ok, "cannot read {path} in {image}: {err}");
    out
}

/// `started=T` from the checkpointed JVM's output, kept in the image.
fn started_at_checkpoint(e: &Engine, image: &str) -> i64 {
    let out = image_file(e, image, "/app/checkpoint/app.stdout");
    out.lines()
        .find_map(|l| l.split("started=").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no started= in the checkpointed output: {out}"))
}

/// The count GET / must answer first after a restore: the warm-up's requests to / plus one.
fn expected_first_count(e: &Engine, image: &str) -> Option<i64> {
    let m: serde_json::Value =
        serde_json::from_str(&image_file(e, image, "/app/checkpoint/cracin.json")).unwrap();
    let requests = m["warmup_stats"]["requests"]
        .as_i64()
        .expect("warm-up requests");
    let errors = m["warmup_stats"]["errors"].as_i64().unwrap_or(0);
    assert!(requests > 0, "no warm-up: {m}");
    // A failed warm-up request may or may not have reached the counter.
    (errors == 0).then_some(requests + 1)
}

/// Containers that must not exist after a build: the temporary ones of build `id`.
fn leftovers(e: &Engine, id: &str) -> Vec<String> {
    let (_, ctrs, _) = eng(e, &["ps", "-a", "--format", "{{.Names}}"]);
    let (_, imgs, _) = eng(e, &["images", "--format", "{{.Repository}}"]);
    ctrs.lines()
        .chain(imgs.lines())
        .filter(|l| l.contains(id))
        .map(String::from)
        .collect()
}

/// The build's id, from the log directory it prints (`cracin-build-ID-logs`).
fn build_id(stderr: &str) -> String {
    stderr
        .split("cracin-build-")
        .nth(1)
        .and_then(|r| r.split("-logs").next())
        .unwrap_or_else(|| panic!("no log directory in {stderr}"))
        .to_string()
}

/// Checks a restored container; returns the JVM's PID in the container.
fn check_restored(e: &Engine, name: &str, port: u16, started: i64, first: Option<i64>) -> i64 {
    let (body, took) = first_answer(port);
    eprintln!("{}: {name} answered after {took:?}: {body}", e.name());
    assert_eq!(
        json_num(&body, "started"),
        started,
        "not the checkpointed JVM: {body}"
    );
    let count = json_num(&body, "count");
    match first {
        Some(n) => assert_eq!(count, n, "the count must continue from the warm-up: {body}"),
        None => assert!(
            count > 1,
            "the count must continue from the warm-up: {body}"
        ),
    }
    assert!(
        json_num(&body, "pid") >= 1000,
        "the JVM's PID at checkpoint time was >= 1000: {body}"
    );
    let (_, again) = get(&format!("http://127.0.0.1:{port}/")).expect("answers again");
    assert_eq!(json_num(&again, "count"), count + 1, "{again}");
    // The engine copies the container's output to its log asynchronously: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = logs(e, name);
    while !log.contains("cracin: restored in") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        log = logs(e, name);
    }
    assert!(
        log.contains("cracin: restored in"),
        "no restore line in the logs: {log}"
    );
    assert!(!log.contains("cracin: restore failed"), "{log}");
    json_num(&body, "pid")
}

fn counter_flow(e: Engine) {
    let g = Cleanup::new(&e);
    let ctx = context(&g);
    let tag = g.image(&format!("localhost/{}:instant", unique("counter", &e)));
    let profile = g.dir("seccomp").join("restore.json");
    let flags = restore_flags(&profile);

    // The restore image, and the run flags cracin tells the user.
    let out = build_jar(&e, &ctx, &tag, &profile, &APP_CMD);
    g.build_logs(&out);
    assert!(out.status.success(), "cracin build failed");
    let text = stdout(&out);
    assert!(text.contains(&format!("built {tag}")), "{text}");
    let hint = text
        .lines()
        .find(|l| l.starts_with("run it with:"))
        .expect("run hint");
    assert!(hint.contains(&flags.join(" ")), "{hint}");
    let (_, user, _) = eng(&e, &["image", "inspect", "-f", "{{.Config.User}}", &tag]);
    assert_eq!(
        user.trim(),
        "1001:1001",
        "the image runs as the default non-root user"
    );
    assert!(leftovers(&e, &build_id(&stderr(&out))).is_empty());

    let started = started_at_checkpoint(&e, &tag);
    let first = expected_first_count(&e, &tag);
    // The checkpoint in the image belongs to the image's user alone (it is a memory dump, made
    // and restored by that non-root user): 0700/0600, and another user in the container cannot
    // read its memory pages.
    let (ok, modes, err) = eng(
        &e,
        &[
            "run",
            "--rm",
            "--entrypoint",
            "stat",
            &tag,
            "-c",
            "%a %u %n",
            "/app/checkpoint",
            "/app/checkpoint/cracin.json",
            "/app/checkpoint/images/pages-1.img",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        modes
            .lines()
            .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        vec!["700 1001", "600 1001", "600 1001"],
        "{modes}"
    );
    let (ok, _, err) = eng(
        &e,
        &[
            "run",
            "--rm",
            "--user",
            "65534:65534",
            "--entrypoint",
            "cat",
            &tag,
            "/app/checkpoint/images/pages-1.img",
        ],
    );
    assert!(
        !ok && err.contains("Permission denied"),
        "nobody read the checkpoint: {err}"
    );

    // One container, then two more at the same time: each restores the same checkpoint.
    let (c1, p1) = start(&g, &tag, &refs(&flags));
    let pid = check_restored(&e, &c1, p1, started, first);
    check_unprivileged(&e, &c1, pid, "1001");
    stop_within_5s(&e, &c1);
    let (c2, p2) = start(&g, &tag, &refs(&flags));
    let (c3, p3) = start(&g, &tag, &refs(&flags));
    check_restored(&e, &c2, p2, started, first);
    check_restored(&e, &c3, p3, started, first);
    stop_within_5s(&e, &c2);
    stop_within_5s(&e, &c3);
    if e.name() == "podman" {
        kube_play(&g, &e, &tag, started);
    }

    // Without CHECKPOINT_RESTORE the restore fails: it says why and starts the app cold.
    let mut without = refs(&flags);
    without.retain(|f| *f != "--cap-add=CHECKPOINT_RESTORE");
    let (c4, p4) = start(&g, &tag, &without);
    let (body, _) = first_answer(p4);
    assert_eq!(
        json_num(&body, "count"),
        1,
        "a cold start counts from 1: {body}"
    );
    assert_ne!(json_num(&body, "started"), started, "{body}");
    let log = logs(&e, &c4);
    let why = log
        .lines()
        .find(|l| l.starts_with("cracin: restore failed: "))
        .unwrap_or_else(|| panic!("the fallback must say so: {log}"));
    eprintln!("{}: without CHECKPOINT_RESTORE: {why}", e.name());
    assert!(why.contains("starting the application cold"), "{why}");
    assert!(
        log.contains("counter: listening"),
        "the cold JVM's output: {log}"
    );
    let _ = eng(&e, &["rm", "-f", &c4]);

    // A checkpoint that cannot be restored fails the verification; the tag keeps the old image.
    // The JVM writes its GC log to /dev/shm, a tmpfs of the checkpoint container: CRIU dumps
    // the open file by path, and a restore container's fresh /dev/shm does not have it.
    let before = image_id(&e, &tag);
    let mut bad: Vec<&str> = vec!["java", "-Xlog:gc:file=/dev/shm/gc.log"];
    bad.extend_from_slice(&APP_CMD[1..]);
    let out = build_jar(&e, &ctx, &tag, &profile, &bad);
    g.build_logs(&out);
    assert!(
        !out.status.success(),
        "a build whose restore falls back must fail"
    );
    let err = stderr(&out);
    assert!(err.contains("cracin: restore failed"), "{err}");
    assert!(
        err.contains("dev/shm/gc.log"),
        "CRIU's reason must be shown: {err}"
    );
    assert_eq!(
        image_id(&e, &tag),
        before,
        "the tag must keep the previous image"
    );
    assert!(
        leftovers(&e, &build_id(&err)).is_empty(),
        "temporary containers or images left"
    );
}

/// `podman kube down` of a manifest, whatever happens.
struct KubeDown<'a>(&'a Engine, std::path::PathBuf);
impl Drop for KubeDown<'_> {
    fn drop(&mut self) {
        let _ = eng(self.0, &["kube", "down", &self.1.display().to_string()]);
    }
}

/// `cracin kube` writes manifests for the image; `podman kube play` runs them as a real pod
/// (hostPort: podman 4.3.1 has no --publish; the seccomp profile from --seccomp-profile-root):
/// the pod restores the checkpoint (not a cold start), as 1001 without capabilities, and
/// `podman kube down` leaves no pod and no container.
fn kube_play(g: &Cleanup, e: &Engine, tag: &str, started: i64) {
    let dir = g.dir("kube");
    let port = free_port();
    let name = unique("kube", e).replace('_', "-");
    let name: String = name.chars().take(50).collect();
    let out = run(cracin().args(["kube", tag, "--out"]).arg(&dir).args([
        "--name",
        &name,
        "--host-port",
        &port.to_string(),
    ]));
    assert!(out.status.success(), "cracin kube failed");
    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap();
    for want in [
        "runAsNonRoot: true",
        "runAsUser: 1001",
        "allowPrivilegeEscalation: false",
        "drop: [ALL]",
        "add: [CHECKPOINT_RESTORE]",
        "type: Localhost",
        "startupProbe:",
        "path: \"/health\"",
        "memory: ",
    ] {
        assert!(deployment.contains(want), "{want} missing:\n{deployment}");
    }
    assert!(std::fs::read_to_string(dir.join("service.yaml"))
        .unwrap()
        .contains("kind: Service"));
    let profiles: Vec<_> = std::fs::read_dir(dir.join("seccomp")).unwrap().collect();
    assert_eq!(profiles.len(), 1, "one localhost profile");
    let manifest = dir.join("deployment.yaml");
    let _down = KubeDown(e, manifest.clone());
    let seccomp_root = dir.join("seccomp").display().to_string();
    let (ok, out, err) = eng(
        e,
        &[
            "kube",
            "play",
            "--seccomp-profile-root",
            &seccomp_root,
            &manifest.display().to_string(),
        ],
    );
    assert!(ok, "podman kube play failed: {out}{err}");
    let ctr = format!("{name}-pod-0-{name}");
    let (body, took) = first_answer(port);
    eprintln!("kube: {ctr} answered after {took:?}: {body}");
    assert_eq!(
        json_num(&body, "started"),
        started,
        "the pod must restore the checkpoint, not start cold: {body}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = logs(e, &ctr);
    while !log.contains("cracin: restored in") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        log = logs(e, &ctr);
    }
    assert!(log.contains("cracin: restored in"), "{log}");
    check_unprivileged(e, &ctr, json_num(&body, "pid"), "1001");
    let st = proc_status(e, &ctr, json_num(&body, "pid"));
    assert_eq!(st["NoNewPrivs"], "1", "allowPrivilegeEscalation: false");
    let (ok, out, err) = eng(e, &["kube", "down", &manifest.display().to_string()]);
    assert!(ok, "podman kube down failed: {out}{err}");
    let (_, pods, _) = eng(e, &["pod", "ps", "--format", "{{.Name}}"]);
    let (_, ctrs, _) = eng(e, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !pods.contains(&name) && !ctrs.contains(&name),
        "left behind: {pods}{ctrs}"
    );
}

/// `--image`: an existing image (FROM the base, jar in /srv, CMD `java -jar app.jar` relative to
/// its WORKDIR) is checkpointed running its own command.
fn image_flow(e: Engine) {
    let g = Cleanup::new(&e);
    let ctx = context(&g);
    std::fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM {BASE_IMAGE}\nWORKDIR /srv\nCOPY app.jar /srv/app.jar\nUSER 2000:2000\n\
             CMD [\"java\", \"-Dcounter.bind=0.0.0.0\", \"-jar\", \"app.jar\", \"8080\"]\n"
        ),
    )
    .unwrap();
    let user = g.image(&format!("localhost/{}:latest", unique("user", &e)));
    let ctx_s = ctx.display().to_string();
    let (ok, out, err) = eng(
        &e,
        &[
            "build",
            "-q",
            "-f",
            &format!("{ctx_s}/Containerfile"),
            "-t",
            &user,
            &ctx_s,
        ],
    );
    assert!(ok, "build of the user image: {out}{err}");
    let tag = g.image(&format!("localhost/{}:instant", unique("user", &e)));
    let profile = g.dir("seccomp").join("restore.json");
    let out = run(cracin_for(&e)
        .current_dir(&ctx)
        .args([
            "build",
            "--engine",
            e.name(),
            "--image",
            &user,
            "--tag",
            &tag,
            "--verify",
            "1",
        ])
        .arg("--seccomp-profile")
        .arg(&profile)
        .args([
            "--ready",
            "http://127.0.0.1:8080/health",
            "--warmup",
            "http://127.0.0.1:8080/",
        ]));
    g.build_logs(&out);
    assert!(out.status.success(), "cracin build --image failed");
    let (_, wd, _) = eng(
        &e,
        &["image", "inspect", "-f", "{{.Config.WorkingDir}}", &tag],
    );
    assert_eq!(wd.trim(), "/srv", "the image keeps its working directory");
    let started = started_at_checkpoint(&e, &tag);
    let first = expected_first_count(&e, &tag);
    let (_, user, _) = eng(&e, &["image", "inspect", "-f", "{{.Config.User}}", &tag]);
    assert_eq!(user.trim(), "2000:2000", "the image keeps its own USER");
    let (c, p) = start(&g, &tag, &refs(&restore_flags(&profile)));
    let pid = check_restored(&e, &c, p, started, first);
    check_unprivileged(&e, &c, pid, "2000");
    stop_within_5s(&e, &c);
}

#[test]
fn podman_build_restores_counter() {
    counter_flow(require!(engine_ready(Engine::podman())));
}

#[test]
fn docker_build_restores_counter() {
    counter_flow(require!(engine_ready(Engine::docker())));
}

#[test]
fn podman_build_from_image() {
    image_flow(require!(engine_ready(Engine::podman())));
}

#[test]
fn docker_build_from_image() {
    image_flow(require!(engine_ready(Engine::docker())));
}

/// The engine as a user's machine has it: the system's podman with its own configuration, no
/// CONTAINERS_CONF and nothing of cracin's set-up; cracin adds per command what this host needs
/// (here `--ulimit`, root lacks CAP_SYS_RESOURCE), visibly in --dry-run. Real podman, real CRIU,
/// real JVM: build, restore, stop.
#[test]
fn podman_build_with_the_systems_podman_and_no_cracin_configuration() {
    use cracin_core::container::engine::{choose, HostFacts};
    use cracin_core::container::EngineKind;
    let e = choose(
        "podman",
        None,
        &|_| None,
        &HostFacts::probe(EngineKind::Podman),
    )
    .unwrap()
    .engine;
    assert!(e.env.is_empty());
    let e = require!(engine_ready(e));
    let g = Cleanup::new(&e);
    let ctx = context(&g);
    let tag = g.image(&format!("localhost/{}:instant", unique("system", &e)));
    let profile = g.dir("seccomp").join("restore.json");
    let profile_arg = profile.display().to_string();
    let bare = || {
        let mut c = cracin();
        c.env_remove("CONTAINERS_CONF")
            .env_remove("CRACIN_DOCKER_HOST");
        c
    };
    // --dry-run: no cracin configuration, and the per-command additions are visible.
    let out = build_jar_with(
        bare(),
        &e,
        &ctx,
        &tag,
        &APP_CMD,
        &["--dry-run", "--seccomp-profile", &profile_arg],
    );
    let plan = stdout(&out);
    assert!(out.status.success(), "{plan}{}", stderr(&out));
    assert!(!plan.contains("CONTAINERS_CONF"), "{plan}");
    assert!(
        plan.contains("# note: engine: the system's podman"),
        "{plan}"
    );
    let run_line = e.cmd(&["run", "--name"]).join(" ");
    assert!(plan.contains(&run_line), "expected `{run_line}` in {plan}");
    // The real build.
    let out = build_jar_with(
        bare(),
        &e,
        &ctx,
        &tag,
        &APP_CMD,
        &["--seccomp-profile", &profile_arg],
    );
    g.build_logs(&out);
    assert!(
        out.status.success(),
        "cracin build with the system's podman failed"
    );
    assert!(leftovers(&e, &build_id(&stderr(&out))).is_empty());
    let started = started_at_checkpoint(&e, &tag);
    let first = expected_first_count(&e, &tag);
    let (c, p) = start(&g, &tag, &refs(&restore_flags(&profile)));
    let pid = check_restored(&e, &c, p, started, first);
    check_unprivileged(&e, &c, pid, "1001");
    stop_within_5s(&e, &c);
}

/// Build contexts made by mkdtemp (`cracin-build-XXXXXX`) in the temp directory.
fn build_contexts() -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.len() == "cracin-build-".len() + 6 && n.starts_with("cracin-build-")
        })
        .collect()
}

/// SIGINT, SIGTERM or SIGKILL to `cracin build` while the checkpoint container runs: no
/// container, no temporary image, no build context is left (cracin's guardian removes them).
#[test]
fn podman_build_interrupted_leaves_nothing() {
    let e = require!(engine_ready(Engine::podman()));
    let g = Cleanup::new(&e);
    let ctx = context(&g);
    for (sig, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGKILL, "SIGKILL"),
    ] {
        let tag = g.image(&format!("localhost/{}:instant", unique("interrupted", &e)));
        let before = build_contexts();
        let err_path = ctx.join("build.stderr");
        let mut child = cracin()
            .current_dir(&ctx)
            .args([
                "build",
                "--engine",
                e.name(),
                "--base",
                "cracin-jdk21",
                "--jar",
                "app.jar",
            ])
            .args(["--tag", &tag, "--verify", "1"])
            .args(["--ready", "http://127.0.0.1:8080/health"])
            .arg("--")
            .args(APP_CMD)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        // The build id is in the log directory it prints first.
        let deadline = Instant::now() + Duration::from_secs(60);
        let id = loop {
            let text = std::fs::read_to_string(&err_path).unwrap_or_default();
            if text.contains("-logs") {
                break build_id(&text);
            }
            assert!(
                Instant::now() < deadline,
                "no log directory printed: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let logs_dir = std::fs::read_to_string(&err_path)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("cracin build: logs in ").map(String::from))
            .unwrap();
        g.dirs.borrow_mut().push(logs_dir.trim().into());
        let ckpt_ctr = format!("cracin-ckpt-{id}");
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let (_, ctrs, _) = eng(&e, &["ps", "--format", "{{.Names}}"]);
            if ctrs.lines().any(|l| l == ckpt_ctr) {
                break;
            }
            assert!(
                Instant::now() < deadline && child.try_wait().unwrap().is_none(),
                "{name}: the checkpoint container never ran"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The private build context cracin made (mkdtemp: `cracin-build-XXXXXX`; it holds
        // copies of the jar and of cracin), which no other build had before this one.
        let contexts: Vec<_> = build_contexts()
            .into_iter()
            .filter(|c| !before.contains(c))
            .collect();
        assert!(
            !contexts.is_empty(),
            "{name}: the build context exists while it runs"
        );
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(180);
        while !leftovers(&e, &id).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            leftovers(&e, &id).is_empty(),
            "{name}: left {:?}",
            leftovers(&e, &id)
        );
        let (_, imgs, _) = eng(&e, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(!imgs.lines().any(|l| l == tag), "{name}: {tag} was tagged");
        for c in contexts {
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(!c.exists(), "{name}: build context {c:?} left");
        }
    }
}

/// Every restore container is its own individual: the random-kinds app (docs/individual.md)
/// built into a restore image; two containers started with `-e` see their own environment and
/// JDK-seeded generators that differ, while the explicitly seeded ones repeat.
fn individual_flow(e: Engine) {
    let g = Cleanup::new(&e);
    let ctx = g.dir("individual-ctx");
    let classes = g.dir("individual-classes");
    let src = repo_root().join("tests/fixtures/apps/random-kinds/Randoms.java");
    let st = Command::new("javac")
        .args(["--release", "17", "-d"])
        .arg(&classes)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success(), "javac failed");
    let st = Command::new("jar")
        .current_dir(&classes)
        .arg("cfe")
        .arg(ctx.join("app.jar"))
        .args(["Randoms", "."])
        .status()
        .unwrap();
    assert!(st.success(), "jar failed");
    let tag = g.image(&format!("localhost/{}:instant", unique("randoms", &e)));
    let app_cmd = [
        "java",
        "-Drandoms.bind=0.0.0.0",
        "-jar",
        "/app/app.jar",
        "8080",
    ];
    let profile = g.dir("seccomp").join("restore.json");
    let out = build_jar(&e, &ctx, &tag, &profile, &app_cmd);
    g.build_logs(&out);
    assert!(out.status.success(), "cracin build failed");
    let mut answers = Vec::new();
    for value in ["first container", "second container"] {
        let env = format!("CRACIN_TEST_ENV={value}");
        // The production flags (non-root, least privilege, cracin's seccomp profile) plus -e.
        let mut flags = restore_flags(&profile);
        flags.extend(["-e".to_string(), env.clone()]);
        let (c, p) = start(&g, &tag, &refs(&flags));
        let (body, _) = first_answer(p);
        let a: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(a["env"], value, "the container's -e reaches the JVM: {a}");
        // cracin prints its line once the restore returned: the app may answer first.
        let t0 = Instant::now();
        while !logs(&e, &c).contains("cracin: restored") {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "a real restore, not a cold start: {}",
                logs(&e, &c)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stop_within_5s(&e, &c);
        answers.push(a);
    }
    for k in [
        "sha1_default",
        "drbg",
        "random_default",
        "math_random",
        "thread_local",
    ] {
        assert_ne!(answers[0][k], answers[1][k], "{k} must differ: {answers:?}");
    }
    for k in ["sha1_explicit", "random_explicit"] {
        assert_eq!(answers[0][k], answers[1][k], "{k} must repeat: {answers:?}");
    }
}

#[test]
fn podman_restores_are_individuals() {
    individual_flow(require!(engine_ready(Engine::podman())));
}
