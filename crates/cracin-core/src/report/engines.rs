//! The container engines' part of the report: for podman and docker it builds the application
//! image and the restore image with `cracin build`'s own plan (`container::build_plan`, run by
//! `container::execute`), then starts each image `runs` times and times `run -d` → first HTTP 2xx
//! through the published port, and measures the images and the checkpoint files. Everything it
//! creates (containers, images, build context) is removed again. When a prerequisite is missing
//! (engine, daemon, base image, a `-jar` command) the engine is reported as not measured, why.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{EngineReport, Latency, ReportOptions, Sizes};
use crate::container::{self, Base, BuildOptions, Engine, EngineKind, Runtime, Source};
use crate::measure::stats::Stats;
use crate::os::cmd::Cmd;
use crate::stage::probe::{self, Probe};
use crate::Progress;

/// The base image the report builds on (the criu runtime's default).
const JDK: u32 = 21;

pub fn measure_container(
    name: crate::engine::EngineKind,
    o: &ReportOptions,
    progress: &dyn Progress,
) -> EngineReport {
    match Engine::parse(name.name()) {
        Ok(engine) => match measure(&engine, o, progress) {
            Ok(r) => r,
            Err(why) => EngineReport::not_measured(name, why),
        },
        Err(e) => EngineReport::not_measured(name, e.to_string()),
    }
}

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

fn measure(
    engine: &Engine,
    o: &ReportOptions,
    progress: &dyn Progress,
) -> Result<EngineReport, String> {
    if let Some(why) = prerequisite(engine) {
        return Err(why);
    }
    let b = &o.bench;
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
    let path = b
        .ready
        .split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_string()))
        .unwrap_or("/".into());
    let lat_path = b
        .latency_url
        .as_deref()
        .unwrap_or(&b.ready)
        .split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_string()))
        .unwrap_or("/".into());

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
    let opts = BuildOptions {
        engine: engine.clone(),
        runtime: Runtime::Criu,
        source: Source::Jar {
            jar: jar.clone(),
            base: Base::CracinDebian { jdk: JDK },
        },
        tag: tag.clone(),
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
        command: inside.clone(),
        context_dir: work.join("context"),
        cracin_binary: o.cracin_binary.clone(),
        id: id.clone(),
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
    };
    let mut plan = container::build_plan(&opts).map_err(|e| e.to_string())?;
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
    container::execute(&plan, &log_dir, &timings).map_err(|e| {
        format!(
            "`cracin build`'s plan failed: {e} (logs in {})",
            log_dir.display()
        )
    })?;
    let checkpoint_ms = timings
        .done
        .lock()
        .ok()
        .and_then(|d| d.iter().find(|(n, _)| n == "checkpoint").map(|x| x.1));

    let sizes = Sizes {
        base_image_bytes: image_size(engine, &base_image, &log_dir),
        app_image_bytes: image_size(engine, &app_image, &log_dir),
        restore_image_bytes: image_size(engine, &tag, &log_dir),
        checkpoint_bytes: engine_cmd(
            engine,
            &[
                "run",
                "--rm",
                "--network=none",
                "--entrypoint",
                "du",
                &tag,
                "-sb",
                container::runtime::CHECKPOINT_DIR,
            ],
            &log_dir,
            "du",
        )
        .run()
        .ok()
        .and_then(|out| {
            out.stdout
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
        }),
    };

    // The images run the base's JVM, not the host's: say which.
    let image_jvm = engine_cmd(
        engine,
        &[
            "run",
            "--rm",
            "--network=none",
            "--entrypoint",
            "java",
            &app_image,
            "-version",
        ],
        &log_dir,
        "java-version",
    )
    .run()
    .ok()
    .and_then(|o| o.stderr.lines().next().map(|l| l.trim().to_string()))
    .unwrap_or_default();

    let inside_refs: Vec<&str> = inside.iter().map(String::as_str).collect();
    let restore_flags = opts.restore_flags();
    let restore_refs: Vec<&str> = restore_flags.iter().map(String::as_str).collect();
    let mut cold = Vec::new();
    let mut restored = Vec::new();
    let mut latency = Latency::default();
    let mut criu_restore_ms = Vec::new();
    for (kind, image, flags, cmd) in [
        ("cold", &app_image, &[][..], &inside_refs[..]),
        ("restore", &tag, &restore_refs[..], &[][..]),
    ] {
        for i in 0..b.runs {
            progress.step(engine.name(), &format!("{kind} run {}/{}", i + 1, b.runs));
            let name = format!("cracin-{id}-{kind}-{i}");
            cleanup.containers.push(name.clone());
            let port = crate::os::net::free_port().map_err(|e| format!("no free port: {e}"))?;
            let publish = format!("127.0.0.1:{port}:{app_port}");
            let mut args = vec!["run", "-d", "--name", &name];
            args.extend_from_slice(flags);
            args.extend_from_slice(&["-p", &publish, image]);
            args.extend_from_slice(cmd);
            let url = format!("http://127.0.0.1:{port}{path}");
            let t = Instant::now();
            engine_cmd(engine, &args, &log_dir, &format!("{kind}-{i}-run"))
                .run()
                .map_err(|e| e.to_string())?;
            let probe = Probe::parse(&url).map_err(|e| e.to_string())?;
            let ready = probe::wait_ready(
                &probe,
                &[],
                b.ready_timeout,
                Duration::from_millis(2),
                || None,
            );
            let took = t.elapsed().as_secs_f64() * 1000.0;
            let logs = engine_cmd(
                engine,
                &["logs", &name],
                &log_dir,
                &format!("{kind}-{i}-logs"),
            )
            .run_unchecked();
            if ready.is_err() {
                let tail = logs
                    .map(|o| crate::os::cmd::tail_of_text(&format!("{}{}", o.stdout, o.stderr), 5))
                    .unwrap_or_default();
                let _ = engine_cmd(engine, &["rm", "-f", &name], &log_dir, "rm").run_unchecked();
                return Err(format!(
                    "the {kind} container never answered {url}: {}",
                    tail.trim().replace('\n', " | ")
                ));
            }
            if kind == "restore" {
                if let Ok(out) = &logs {
                    if let Some(ms) = restore_ms_in(&format!("{}{}", out.stdout, out.stderr)) {
                        criu_restore_ms.push(ms);
                    }
                }
            }
            if i == 0 && b.latency_requests > 0 {
                let lurl = format!("http://127.0.0.1:{port}{lat_path}");
                let first = crate::stage::warmup::latency_series(&lurl, b.latency_requests)
                    .map_err(|e| e.to_string())?;
                if kind == "cold" {
                    latency.cold_first_ms = first;
                } else {
                    latency.restored_first_ms = first;
                    latency.steady_ms =
                        crate::stage::warmup::latency_series(&lurl, b.latency_requests)
                            .map_err(|e| e.to_string())?;
                }
                latency.url = format!("http://127.0.0.1:{app_port}{lat_path} (published port)");
            }
            let _ = engine_cmd(engine, &["rm", "-f", &name], &log_dir, "rm").run_unchecked();
            progress.done(engine.name(), took, kind);
            if kind == "cold" {
                cold.push(took);
            } else {
                restored.push(took);
            }
        }
    }
    drop(cleanup);
    let _ = std::fs::remove_dir_all(&work);
    let cold_s = Stats::of(&cold);
    let rest_s = Stats::of(&restored);
    let mut notes = vec![format!(
        "images built by `cracin build`'s plan on {base_image} (runtime criu); cold: `{} run -d` of the application image → first 2xx; restored: `{} run -d {}` of the restore image → first 2xx",
        engine.name(),
        engine.name(),
        restore_flags.join(" ")
    )];
    if !image_jvm.is_empty() {
        notes.push(format!("JVM inside the images: {image_jvm}"));
    }
    if b.warmup.is_some() {
        notes.push("the in-container checkpoint warms up with `cracin checkpoint`'s default request count (the warm-up URLs are passed on, the count is not)".into());
    }
    if !criu_restore_ms.is_empty() {
        notes.push(format!(
            "criu restore inside the container took {:.0} ms (median; from the restore containers' logs)",
            crate::measure::stats::median(&criu_restore_ms)
        ));
    }
    Ok(EngineReport {
        engine: engine.kind.into(),
        not_measured: None,
        speedup: (rest_s.median > 0.0).then(|| cold_s.median / rest_s.median),
        cold_ms: Some(cold_s),
        restore_ms: Some(rest_s),
        checkpoint_ms,
        checkpoint_what: "the checkpoint container: start, ready, warm-up, criu dump".into(),
        sizes,
        latency: (!latency.cold_first_ms.is_empty()).then_some(latency),
        notes,
    })
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
