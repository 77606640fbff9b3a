//! The container engines' measurement (their columns of `cracin report`): for podman and docker
//! it builds the application image and the restore image with `cracin build`'s own plan
//! (`container::build_plan`, run by `container::execute`), then starts each image `runs` times
//! and times `run -d` → first HTTP 2xx through the published port (the loop of `measure::runs`),
//! and measures the images and the checkpoint files. Everything it creates (containers, images,
//! build context) is removed again. When a prerequisite is missing (engine, daemon, base image, a
//! `-jar` command) the result is why the engine cannot be measured.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::container::{self, Base, BuildOptions, Engine, EngineKind, Runtime, Source};
use crate::measure::local::BenchOptions;
use crate::measure::runs::{self, Label, Series, Starter, Warmth};
use crate::measure::stats::Stats;
use crate::os::cmd::Cmd;
use crate::stage::probe::Probe;
use crate::Progress;

/// The base image the report builds on (the criu runtime's default).
const JDK: u32 = 21;

/// Why this engine cannot be measured here, if it cannot.
fn prerequisite(engine: &Engine) -> Option<String> {
    if !crate::os::sysinfo::is_root() {
        return Some("not root (the checkpoint container needs CAP_CHECKPOINT_RESTORE)".into());
    }
    let present = if engine.binary.contains('/') {
        Path::new(&engine.binary).exists()
    } else {
        crate::os::cmd::which(&engine.binary).is_some()
    };
    if !present {
        return Some(format!(
            "{} is not installed (scripts/setup-containers.sh)",
            engine.binary
        ));
    }
    if engine.kind == EngineKind::Docker {
        let sock = engine
            .env
            .iter()
            .find(|(k, _)| k == "DOCKER_HOST")
            .and_then(|(_, v)| v.strip_prefix("unix://"))
            .map(PathBuf::from);
        if let Some(sock) = sock {
            if !sock.exists() {
                return Some(format!(
                    "cracin's dockerd is not running (no {}; start it with scripts/dockerd.sh start)",
                    sock.display()
                ));
            }
        }
    }
    None
}

/// The jar of `java ... -jar JAR ...` and the same command as it runs inside the image.
pub fn container_command(command: &[String], cwd: &Path) -> Option<(PathBuf, Vec<String>)> {
    let i = command.iter().position(|a| a == "-jar")?;
    let jar = command.get(i + 1)?;
    let jar = if Path::new(jar).is_absolute() {
        PathBuf::from(jar)
    } else {
        cwd.join(jar)
    };
    let mut inside = command.to_vec();
    inside[0] = "java".into();
    inside[i + 1] = container::runtime::APP_JAR.into();
    Some((jar, inside))
}

/// Records how long each plan step took, and passes everything on.
struct Timings<'a> {
    inner: &'a dyn Progress,
    done: Mutex<Vec<(String, f64)>>,
}

impl Progress for Timings<'_> {
    fn step(&self, name: &str, detail: &str) {
        self.inner.step(name, detail)
    }
    fn done(&self, name: &str, ms: f64, summary: &str) {
        if let Ok(mut d) = self.done.lock() {
            d.push((name.to_string(), ms));
        }
        self.inner.done(name, ms, summary)
    }
    fn warn(&self, msg: &str) {
        self.inner.warn(msg)
    }
}

/// Removes what the measurement created, whatever happened.
struct Cleanup<'a> {
    engine: &'a Engine,
    log_dir: PathBuf,
    containers: Vec<String>,
    images: Vec<String>,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = engine_cmd(self.engine, &["rm", "-f", c], &self.log_dir, "cleanup-rm")
                .run_unchecked();
        }
        for i in &self.images {
            let _ =
                engine_cmd(self.engine, &["rmi", i], &self.log_dir, "cleanup-rmi").run_unchecked();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn engine_cmd(e: &Engine, args: &[&str], log_dir: &Path, stem: &str) -> Cmd {
    e.command(args)
        .timeout(Duration::from_secs(300))
        .logs(log_dir, stem)
}

fn image_size(e: &Engine, image: &str, log_dir: &Path) -> Option<u64> {
    let out = engine_cmd(
        e,
        &["image", "inspect", "--format", "{{.Size}}", image],
        log_dir,
        "size",
    )
    .run()
    .ok()?;
    out.stdout.trim().parse().ok()
}

/// What the measurement of one container engine gave.
#[derive(Debug, Clone)]
pub struct ContainerResult {
    /// `run -d` of the application image → first 2xx through the published port.
    pub cold_ms: Stats,
    /// `run -d` of the restore image → first 2xx.
    pub restore_ms: Stats,
    /// The plan's checkpoint step (the checkpoint container: start, ready, warm-up, dump).
    pub checkpoint_ms: Option<f64>,
    /// The base image the images were built on, and the sizes (None where not known).
    pub base_image: String,
    pub base_image_bytes: Option<u64>,
    pub app_image_bytes: Option<u64>,
    pub restore_image_bytes: Option<u64>,
    pub checkpoint_bytes: Option<u64>,
    /// The first line of `java -version` inside the images (empty when unknown).
    pub image_jvm: String,
    /// What `run -d` of the restore image adds.
    pub restore_flags: Vec<String>,
    /// The restore inside each restore container, as cracin's progress there reported it.
    pub criu_restore_ms: Vec<f64>,
    /// The timed URL as the application inside sees it, and the latency of each of the first
    /// requests after the first cold start and the first restore, then at steady state (empty
    /// when no requests were timed).
    pub latency_url: String,
    pub cold_first_ms: Vec<f64>,
    pub restored_first_ms: Vec<f64>,
    pub steady_ms: Vec<f64>,
}

/// Why an engine was not measured (every failure of a container measurement ends there).
struct Why(String);

impl From<crate::Error> for Why {
    fn from(e: crate::Error) -> Why {
        Why(e.to_string())
    }
}

/// Builds the images of the application `app` with `engine` and measures them (see the module
/// comment); Err is why the engine could not be measured.
pub fn run(
    engine: &Engine,
    app: &BenchOptions,
    cracin_binary: &Path,
    progress: &dyn Progress,
) -> Result<ContainerResult, String> {
    if let Some(why) = prerequisite(engine) {
        return Err(why);
    }
    let b = app;
    let Some((jar, inside)) = container_command(&b.command, &b.cwd) else {
        return Err("the command has no `-jar JAR`: container images are built from a jar".into());
    };
    if !jar.is_file() {
        return Err(format!("{} is not a file", jar.display()));
    }
    if !(b.ready.starts_with("http://") || b.ready.starts_with("https://")) {
        return Err("containers are timed through an HTTP --ready URL".into());
    }
    let app_port = crate::os::net::url_port(&b.ready).ok_or("the --ready URL has no port")?;
    let path = url_path(&b.ready);
    let lat_path = url_path(b.latency_url.as_deref().unwrap_or(&b.ready));

    let work = crate::os::cmd::private_tmp_dir(&format!("cracin-report-{}", engine.name()))
        .map_err(|e| e.to_string())?;
    let log_dir = work.join("logs");
    std::fs::create_dir_all(&log_dir).map_err(|e| e.to_string())?;
    let base_image = format!("localhost/cracin-base:jdk{JDK}");
    if engine_cmd(engine, &["image", "inspect", &base_image], &log_dir, "base")
        .run()
        .is_err()
    {
        let _ = std::fs::remove_dir_all(&work);
        return Err(format!(
            "no base image {base_image} (make it with `cracin base --jdk {JDK} --engine {}`)",
            engine.name()
        ));
    }
    let id = format!("report-{}-{}", std::process::id(), engine.name());
    let tag = format!("localhost/cracin-report-{id}:latest");
    let app_image = format!("localhost/cracin-ckpt-{id}:latest");
    let mut cleanup = Cleanup {
        engine,
        log_dir: log_dir.clone(),
        containers: vec![],
        images: vec![tag.clone(), app_image.clone()],
        dirs: vec![],
    };
    let opts = build_options(engine, b, cracin_binary, &jar, &inside, &tag, &id, &work)?;
    let checkpoint_ms = build(&opts, engine, &log_dir, progress)?;
    let sizes = sizes(engine, &base_image, &app_image, &tag, &log_dir);
    let image_jvm = image_jvm(engine, &app_image, &log_dir);

    let site = Site {
        engine,
        log_dir: &log_dir,
        id: &id,
        app_port,
        path,
        lat_path,
        timeout: b.ready_timeout,
    };
    let restore_flags = opts.restore_flags();
    let (cold, _) = Starts::new(
        &site,
        "cold",
        &app_image,
        &[],
        &inside,
        &mut cleanup.containers,
    )
    .time(b.runs, b.latency_requests, Warmth::First, progress)?;
    let (restored, criu_restore_ms) = Starts::new(
        &site,
        "restore",
        &tag,
        &restore_flags,
        &[],
        &mut cleanup.containers,
    )
    .time(b.runs, b.latency_requests, Warmth::FirstAndSteady, progress)?;
    let latency_url = format!(
        "http://127.0.0.1:{app_port}{} (published port)",
        site.lat_path
    );
    drop(cleanup);
    let _ = std::fs::remove_dir_all(&work);
    Ok(ContainerResult {
        cold_ms: Stats::of(&cold.ms),
        restore_ms: Stats::of(&restored.ms),
        checkpoint_ms,
        base_image,
        base_image_bytes: sizes[0],
        app_image_bytes: sizes[1],
        restore_image_bytes: sizes[2],
        checkpoint_bytes: sizes[3],
        image_jvm,
        restore_flags,
        criu_restore_ms,
        latency_url,
        cold_first_ms: cold.first_ms,
        restored_first_ms: restored.first_ms,
        steady_ms: restored.steady_ms,
    })
}

/// The path (and query) of a URL, `/` when it has none.
fn url_path(url: &str) -> String {
    url.split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_string()))
        .unwrap_or("/".into())
}

/// `cracin build`'s options for the application's images: runtime criu on cracin's Debian base,
/// no cold fallback (a restore that silently started cold would make the figures lie).
#[allow(clippy::too_many_arguments)]
fn build_options(
    engine: &Engine,
    b: &BenchOptions,
    cracin_binary: &Path,
    jar: &Path,
    inside: &[String],
    tag: &str,
    id: &str,
    work: &Path,
) -> Result<BuildOptions, String> {
    Ok(BuildOptions {
        engine: engine.clone(),
        runtime: Runtime::Criu,
        source: Source::Jar {
            jar: jar.to_path_buf(),
            base: Base::CracinDebian { jdk: JDK },
        },
        tag: tag.to_string(),
        ready: Some(b.ready.clone()),
        warmup: b
            .warmup
            .as_ref()
            .map(|w| w.urls.clone())
            .unwrap_or_default(),
        verify: 1,
        verify_urls: vec![],
        // a restore that silently started cold would make the figures lie
        fallback: false,
        output: None,
        command: inside.to_vec(),
        context_dir: work.join("context"),
        cracin_binary: cracin_binary.to_path_buf(),
        id: id.to_string(),
        verify_port: crate::os::net::free_port().map_err(|e| format!("no free port: {e}"))?,
        yama_ptrace_scope: std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
        ready_timeout: b.ready_timeout,
        entrypoints: None,
        cpu_baseline: Default::default(),
        push: None,
        recipe: Default::default(),
        user: None,
        seccomp_profile: work.join(container::seccomp::file_name()),
    })
}

/// Runs `cracin build`'s plan, keeping the checkpoint image; how long its checkpoint step took.
fn build(
    opts: &BuildOptions,
    engine: &Engine,
    log_dir: &Path,
    progress: &dyn Progress,
) -> Result<Option<f64>, String> {
    let mut plan = container::build_plan(opts).map_err(|e| e.to_string())?;
    // Keep the checkpoint image: it is the application image (base + jar + cracin) that the
    // cold starts run, and whose size the table shows. Cleanup removes it at the end.
    plan.steps.retain(|s| s.name != "remove-checkpoint-image");
    progress.step(
        engine.name(),
        &format!(
            "building the application and restore images ({})",
            log_dir.display()
        ),
    );
    let timings = Timings {
        inner: progress,
        done: Mutex::new(Vec::new()),
    };
    container::execute(&plan, log_dir, &timings).map_err(|e| {
        format!(
            "`cracin build`'s plan failed: {e} (logs in {})",
            log_dir.display()
        )
    })?;
    Ok(timings
        .done
        .lock()
        .ok()
        .and_then(|d| d.iter().find(|(n, _)| n == "checkpoint").map(|x| x.1)))
}

/// The sizes of the base, application and restore images and of the checkpoint files in the
/// restore image, in that order.
fn sizes(
    engine: &Engine,
    base_image: &str,
    app_image: &str,
    tag: &str,
    log_dir: &Path,
) -> [Option<u64>; 4] {
    let checkpoint = engine_cmd(
        engine,
        &[
            "run",
            "--rm",
            "--network=none",
            "--entrypoint",
            "du",
            tag,
            "-sb",
            container::runtime::CHECKPOINT_DIR,
        ],
        log_dir,
        "du",
    )
    .run()
    .ok()
    .and_then(|out| {
        out.stdout
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
    });
    [
        image_size(engine, base_image, log_dir),
        image_size(engine, app_image, log_dir),
        image_size(engine, tag, log_dir),
        checkpoint,
    ]
}

/// The images run the base's JVM, not the host's: the first line of its `java -version`.
fn image_jvm(engine: &Engine, app_image: &str, log_dir: &Path) -> String {
    engine_cmd(
        engine,
        &[
            "run",
            "--rm",
            "--network=none",
            "--entrypoint",
            "java",
            app_image,
            "-version",
        ],
        log_dir,
        "java-version",
    )
    .run()
    .ok()
    .and_then(|o| o.stderr.lines().next().map(|l| l.trim().to_string()))
    .unwrap_or_default()
}

/// What every container of one engine's measurement shares.
struct Site<'a> {
    engine: &'a Engine,
    log_dir: &'a Path,
    id: &'a str,
    /// The application's port inside, and the paths of the --ready and the timed URL.
    app_port: u16,
    path: String,
    lat_path: String,
    timeout: Duration,
}

/// Containers of one image, `run -d` with a fresh published port each time, timed to the first
/// 2xx through that port; a container is removed when stopped (and at the end by `Cleanup`).
struct Starts<'a> {
    site: &'a Site<'a>,
    /// "cold" or "restore".
    kind: &'static str,
    image: &'a str,
    /// Options of `run -d`, and the command after the image.
    flags: &'a [String],
    cmd: &'a [String],
    containers: &'a mut Vec<String>,
    /// The running container and its published port.
    running: Option<(String, u16)>,
    criu_restore_ms: Vec<f64>,
}

impl<'a> Starts<'a> {
    fn new(
        site: &'a Site<'a>,
        kind: &'static str,
        image: &'a str,
        flags: &'a [String],
        cmd: &'a [String],
        containers: &'a mut Vec<String>,
    ) -> Starts<'a> {
        Starts {
            site,
            kind,
            image,
            flags,
            cmd,
            containers,
            running: None,
            criu_restore_ms: Vec::new(),
        }
    }

    /// `runs` containers timed (`runs::in_turn`), shown as `<engine> <kind> run i/n`: what they
    /// measured, and the restore times their logs reported.
    fn time(
        mut self,
        runs: usize,
        requests: usize,
        warmth: Warmth,
        progress: &dyn Progress,
    ) -> Result<(runs::Measured, Vec<f64>), String> {
        let label = Label {
            step: self.site.engine.name().into(),
            detail: format!("{} ", self.kind),
            done: Some(self.kind.into()),
        };
        let m = runs::in_turn(
            runs,
            requests,
            &mut [Series {
                label,
                warmth,
                starter: &mut self,
            }],
            progress,
        )
        .map_err(|Why(why)| why)?;
        Ok((
            m.into_iter().next().unwrap_or_default(),
            self.criu_restore_ms,
        ))
    }
}

impl Starter for Starts<'_> {
    type Error = Why;
    fn start(&mut self, i: usize) -> Result<f64, Why> {
        let (engine, log_dir, kind) = (self.site.engine, self.site.log_dir, self.kind);
        let name = format!("cracin-{}-{kind}-{i}", self.site.id);
        self.containers.push(name.clone());
        let port = crate::os::net::free_port().map_err(|e| Why(format!("no free port: {e}")))?;
        let publish = format!("127.0.0.1:{port}:{}", self.site.app_port);
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend(self.flags.iter().map(String::as_str));
        args.extend_from_slice(&["-p", &publish, self.image]);
        args.extend(self.cmd.iter().map(String::as_str));
        let url = format!("http://127.0.0.1:{port}{}", self.site.path);
        let t = Instant::now();
        engine_cmd(engine, &args, log_dir, &format!("{kind}-{i}-run")).run()?;
        let probe = Probe::parse(&url)?;
        let ready = runs::first_answer(&probe, &[], t, self.site.timeout, || None);
        let logs = engine_cmd(
            engine,
            &["logs", &name],
            log_dir,
            &format!("{kind}-{i}-logs"),
        )
        .run_unchecked();
        let Ok(took) = ready else {
            let tail = logs
                .map(|o| crate::os::cmd::tail_of_text(&format!("{}{}", o.stdout, o.stderr), 5))
                .unwrap_or_default();
            let _ = engine_cmd(engine, &["rm", "-f", &name], log_dir, "rm").run_unchecked();
            return Err(Why(format!(
                "the {kind} container never answered {url}: {}",
                tail.trim().replace('\n', " | ")
            )));
        };
        if kind == "restore" {
            if let Ok(out) = &logs {
                if let Some(ms) = restore_ms_in(&format!("{}{}", out.stdout, out.stderr)) {
                    self.criu_restore_ms.push(ms);
                }
            }
        }
        self.running = Some((name, port));
        Ok(took)
    }
    fn latency_url(&self) -> Option<String> {
        self.running
            .as_ref()
            .map(|(_, port)| format!("http://127.0.0.1:{port}{}", self.site.lat_path))
    }
    fn stop(&mut self) {
        if let Some((name, _)) = self.running.take() {
            let _ = engine_cmd(
                self.site.engine,
                &["rm", "-f", &name],
                self.site.log_dir,
                "rm",
            )
            .run_unchecked();
        }
    }
}

/// `restore … done in N ms` as cracin's progress prints it.
fn restore_ms_in(text: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.contains("restore") && l.contains("done in"))
        .filter_map(|l| {
            l.split("done in ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_move_into_the_image() {
        let cmd: Vec<String> = [
            "/usr/bin/java",
            "-Dport=8080",
            "-jar",
            "target/app.jar",
            "--x",
        ]
        .map(String::from)
        .to_vec();
        let (jar, inside) = container_command(&cmd, Path::new("/src")).unwrap();
        assert_eq!(jar, PathBuf::from("/src/target/app.jar"));
        assert_eq!(
            inside,
            [
                "java",
                "-Dport=8080",
                "-jar",
                container::runtime::APP_JAR,
                "--x"
            ]
        );
        assert!(
            container_command(&["java".into(), "-cp".into(), ".".into()], Path::new("/")).is_none()
        );
    }

    #[test]
    fn restore_time_from_progress_lines() {
        assert_eq!(restore_ms_in("[   0.01s] restore    criu 4.2.1 restoring /app/checkpoint\n[   0.12s] restore    done in 95 ms: pid 1001\n"), Some(95.0));
        assert_eq!(restore_ms_in("nothing"), None);
    }
}
