//! The uniqueness check of a container image made by `cracin build`. Two containers of the image
//! run at the same time, each with the runtime's production `run` flags and the application port
//! published on its own free loopback port; each must restore (a cold start by the fallback
//! fails the check: it would pass trivially), is asked every URL `rounds` times, and is stopped
//! with `stop` (the image's STOPSIGNAL, SIGTERM) and removed. A guard removes the containers on
//! every way out.

use std::time::{Duration, Instant};

use super::{local::check_inputs, sample, InstanceInfo, Report};
use crate::container::{Engine, Runtime, FALLBACK_MARKER};
use crate::error::{Error, Result};
use crate::os::net::url_port;
use crate::Progress;

/// Options of `cracin verify IMAGE --engine podman|docker`.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    pub engine: Engine,
    pub image: String,
    /// The runtime the image was built with (its restore containers' flags).
    pub runtime: Runtime,
    /// `/path` (relative to the application's port) or absolute URLs as seen inside the
    /// container (`http://127.0.0.1:8080/login`).
    pub urls: Vec<String>,
    pub rounds: u32,
    /// Readiness probe as seen inside the container (default: the first URL answers at all).
    pub ready: Option<String>,
    /// The application's port inside the container (default: from the URLs, `--ready`, or the
    /// image's single EXPOSE).
    pub port: Option<u16>,
    pub ready_timeout: Duration,
    pub stop_timeout: Duration,
    /// Unique suffix of the container names.
    pub id: String,
}

/// The application's port inside the container: `--port`, else the port of the absolute URLs
/// (they must agree), else `--ready`'s, else the image's only exposed port.
fn app_port(o: &ImageOptions) -> Result<u16> {
    if let Some(p) = o.port {
        return Ok(p);
    }
    let mut ports: Vec<u16> = o.urls.iter().filter_map(|u| url_port(u)).collect();
    ports.sort_unstable();
    ports.dedup();
    if ports.len() > 1 {
        return Err(Error::usage(
            format!("the --url values name several ports ({ports:?})"),
            "the check publishes one application port: give URLs of one port, or paths with --port",
        ));
    }
    if let Some(p) = ports
        .first()
        .copied()
        .or_else(|| o.ready.as_deref().and_then(url_port))
    {
        return Ok(p);
    }
    let out = o
        .engine
        .command(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.ExposedPorts}}",
            &o.image,
        ])
        .timeout(Duration::from_secs(60))
        .run()
        .map_err(|e| match e {
            Error::Command { log_tail, .. } => Error::usage(
                format!(
                    "cannot inspect image {} in {}: {}",
                    o.image,
                    o.engine.name(),
                    log_tail.lines().last().unwrap_or("").trim()
                ),
                "build it with `cracin build` in this engine first (or pass the right --engine)",
            ),
            other => other,
        })?;
    exposed_port(&out.stdout).ok_or_else(|| {
        Error::usage(
            format!("image {} does not expose exactly one port", o.image),
            "say which port the application listens on inside the container with --port",
        )
    })
}

/// The single port of `{"8080/tcp":{}}`.
fn exposed_port(json: &str) -> Option<u16> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    m.keys().next()?.split('/').next()?.parse().ok()
}

/// The URL as sent to a container published on `host_port`: a path goes to it; an absolute URL
/// of the application's port has its host and port replaced.
fn to_host(url: &str, app_port: u16, host_port: u16) -> Result<String> {
    if url.starts_with('/') {
        return Ok(format!("http://127.0.0.1:{host_port}{url}"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        Error::usage(
            format!("invalid --url `{url}`"),
            "give a path (/api/token) or an absolute http:// URL as seen inside the container",
        )
    })?;
    if url_port(url) != Some(app_port) {
        return Err(Error::usage(
            format!("--url {url} is not on the application's port {app_port}"),
            "give URLs of the application's port inside the container, or paths",
        ));
    }
    if scheme == "tcp" {
        return Ok(format!("tcp://127.0.0.1:{host_port}"));
    }
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    Ok(format!("{scheme}://127.0.0.1:{host_port}{path}"))
}

/// Two different loopback ports free right now (both held while choosing).
fn two_free_ports() -> Result<(u16, u16)> {
    let bind =
        || std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("127.0.0.1:0", e));
    let (a, b) = (bind()?, bind()?);
    let port = |l: &std::net::TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| Error::io("127.0.0.1:0", e))
    };
    Ok((port(&a)?, port(&b)?))
}

/// Removes the check's containers on every way out.
struct Containers<'a> {
    engine: &'a Engine,
    names: Vec<String>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            super::unregister_container(n);
            remove_container(self.engine, n);
        }
    }
}

/// `rm -f`: stops the container (SIGKILL) and removes it; errors ignored (it may be gone).
pub(super) fn remove_container(engine: &Engine, name: &str) {
    let _ = engine
        .command(&["rm", "-f", name])
        .timeout(Duration::from_secs(60))
        .run_unchecked();
}

pub fn verify(o: &ImageOptions, progress: &dyn Progress) -> Result<Report> {
    check_inputs(&o.urls, o.rounds)?;
    let port = app_port(o)?;
    let (p1, p2) = two_free_ports()?;
    let hosts = [p1, p2];
    let per_instance: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| o.urls.iter().map(|u| to_host(u, port, *h)).collect())
        .collect::<Result<_>>()?;
    let log_dir = crate::os::cmd::private_tmp_dir("cracin-verify")?;
    super::register_dir(&log_dir);
    let r = run_two(o, progress, port, hosts, &per_instance, &log_dir);
    // An error names files in it (the containers' logs): kept as evidence then (and still
    // registered, so an interrupted check removes it).
    if r.is_ok() {
        super::unregister_dir(&log_dir);
        let _ = std::fs::remove_dir_all(&log_dir);
    }
    r
}

/// Runs, asks and stops the two containers (see `verify`); logs go to `log_dir`.
fn run_two(
    o: &ImageOptions,
    progress: &dyn Progress,
    port: u16,
    hosts: [u16; 2],
    per_instance: &[Vec<String>],
    log_dir: &std::path::Path,
) -> Result<Report> {
    let log_dir = log_dir.to_path_buf();
    let mut guard = Containers {
        engine: &o.engine,
        names: Vec::new(),
    };
    // Both run at the same time (each has its own network namespace and host port); the second
    // starts once the first answers, so each one's time to ready is its own.
    let mut ready_ms = Vec::new();
    // The production flags of the image (docs/privileges.md): for the criu runtime
    // CHECKPOINT_RESTORE alone, no-new-privileges and cracin's seccomp profile.
    let profile = crate::container::seccomp::default_path();
    if crate::container::security::uses_generated_profile(o.runtime) {
        crate::container::seccomp::write(&profile)?;
    }
    let flags = crate::container::security::restore_flags(o.runtime, o.engine.kind, &profile);
    for (i, h) in hosts.iter().enumerate() {
        let name = format!("cracin-verify-{}-{}", o.id, i + 1);
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
        args.extend(flags.iter().cloned());
        args.push("-p".into());
        args.push(format!("127.0.0.1:{h}:{port}"));
        args.push(o.image.clone());
        progress.step(
            &format!("instance {}", i + 1),
            &format!("{} run {}", o.engine.name(), o.image),
        );
        guard.names.push(name.clone());
        super::register_container(&o.engine, &name);
        let t0 = Instant::now();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        o.engine
            .command(&a)
            .timeout(Duration::from_secs(120))
            .logs(&log_dir, format!("run-{}", i + 1))
            .run()
            .map_err(|e| e.at_engine_step("verify-run"))?;
        let probe = match &o.ready {
            Some(r) => Some(to_host(r, port, *h)?),
            None => None,
        };
        wait_ready(o, &name, probe.as_deref(), &per_instance[i][0], &log_dir)?;
        ready_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        let logs = logs_of(o, &name, &log_dir);
        if logs.contains(FALLBACK_MARKER) {
            return Err(Error::Engine {
                step: format!("verify instance {}", i + 1),
                command: format!("{} logs {name}", o.engine.binary),
                status:
                    "the container started the application cold: the checkpoint did not restore"
                        .into(),
                log: log_dir.join(format!("logs-{name}.out")),
                log_tail: crate::os::cmd::tail_of_text(&logs, 15),
            });
        }
        progress.done(
            &format!("instance {}", i + 1),
            ready_ms[i],
            &format!("{name} answers on 127.0.0.1:{h}"),
        );
    }
    let mut samples = Vec::new();
    for (i, name) in guard.names.iter().enumerate() {
        progress.step(
            &format!("instance {}", i + 1),
            &format!("sending {} URL(s) {} times each", o.urls.len(), o.rounds),
        );
        let got = sample::sample(
            &format!("container {name}"),
            &o.urls,
            &per_instance[i],
            o.rounds,
        )
        .map_err(|(url, why)| Error::RestoredNotReady {
            probe: format!("{url} ({why})"),
            timeout: sample::TIMEOUT,
            log: log_dir.clone(),
            log_tail: crate::os::cmd::tail_of_text(&logs_of(o, name, &log_dir), 15),
        })?;
        samples.push(got);
    }
    let mut instances = Vec::new();
    for (i, name) in guard.names.iter().enumerate() {
        let stopped = stop(o, name, &log_dir)?;
        instances.push(InstanceInfo {
            label: format!("container {name} (127.0.0.1:{})", hosts[i]),
            ready_ms: ready_ms.get(i).copied(),
            stopped,
        });
    }
    drop(guard);
    Ok(Report::new(
        format!("{} ({})", o.image, o.engine.name()),
        Some(o.engine.kind.into()),
        &o.urls,
        o.rounds,
        instances,
        &samples,
    ))
}

fn logs_of(o: &ImageOptions, name: &str, log_dir: &std::path::Path) -> String {
    o.engine
        .command(&["logs", name])
        .timeout(Duration::from_secs(30))
        .logs(log_dir, format!("logs-{name}"))
        .run_unchecked()
        .map(|out| format!("{}{}", out.stdout, out.stderr))
        .unwrap_or_default()
}

/// Polls the probe (or, without one, any HTTP answer of the first URL) until it passes; asks the
/// engine twice a second whether the container still runs, and fails with its logs if not.
fn wait_ready(
    o: &ImageOptions,
    name: &str,
    probe: Option<&str>,
    first_url: &str,
    log_dir: &std::path::Path,
) -> Result<()> {
    let agent = crate::stage::probe::probe_agent();
    let deadline = Instant::now() + o.ready_timeout;
    let mut last_check = Instant::now();
    loop {
        let ok = match probe {
            Some(p) => crate::stage::probe::Probe::parse(p)?.check(&[], &agent),
            None => sample::fetch(&agent, first_url).is_ok(),
        };
        if ok {
            return Ok(());
        }
        if last_check.elapsed() > Duration::from_millis(500) {
            last_check = Instant::now();
            let st = o
                .engine
                .command(&["inspect", "-f", "{{.State.Running}}", name])
                .timeout(Duration::from_secs(30))
                .run_unchecked()?;
            if st.status.success() && st.stdout.trim() == "false" {
                let logs = logs_of(o, name, log_dir);
                return Err(Error::Engine {
                    step: "verify-ready".into(),
                    command: format!("{} logs {name}", o.engine.binary),
                    status: format!(
                        "the container exited before {} answered",
                        probe.unwrap_or(first_url)
                    ),
                    log: log_dir.join(format!("logs-{name}.out")),
                    log_tail: crate::os::cmd::tail_of_text(&logs, 15),
                });
            }
        }
        if Instant::now() > deadline {
            return Err(Error::RestoredNotReady {
                probe: probe.unwrap_or(first_url).to_string(),
                timeout: o.ready_timeout,
                log: log_dir.to_path_buf(),
                log_tail: crate::os::cmd::tail_of_text(&logs_of(o, name, log_dir), 15),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ENGINE stop -t N` sends the image's STOPSIGNAL (SIGTERM) and SIGKILL after N seconds; the
/// exit code tells which ended it (143 = SIGTERM reached the JVM, 137 = killed).
fn stop(o: &ImageOptions, name: &str, log_dir: &std::path::Path) -> Result<String> {
    let secs = o.stop_timeout.as_secs().max(1).to_string();
    o.engine
        .command(&["stop", "-t", &secs, name])
        .timeout(o.stop_timeout + Duration::from_secs(60))
        .logs(log_dir, format!("stop-{name}"))
        .run()
        .map_err(|e| e.at_engine_step("verify-stop"))?;
    let code = o
        .engine
        .command(&["inspect", "-f", "{{.State.ExitCode}}", name])
        .timeout(Duration::from_secs(30))
        .run_unchecked()
        .map(|out| out.stdout.trim().to_string())
        .unwrap_or_default();
    o.engine
        .command(&["rm", name])
        .timeout(Duration::from_secs(60))
        .logs(log_dir, format!("rm-{name}"))
        .run()
        .map_err(|e| e.at_engine_step("verify-rm"))?;
    Ok(match code.as_str() {
        "137" => format!("SIGKILL (SIGTERM did not end it within {secs} s)"),
        _ => format!("SIGTERM (exit status {code})"),
    })
}

/// How many verification containers `cracin build` starts: the uniqueness check compares two.
pub fn build_verify_count(verify: u32, verify_urls: &[String]) -> u32 {
    if verify_urls.is_empty() {
        verify
    } else {
        verify.max(2)
    }
}

/// `cracin build --verify-url` values as sent to the verification container published on
/// `host_port` (bad values are refused before anything is built).
pub fn build_sample_urls(urls: &[String], app_port: u16, host_port: u16) -> Result<Vec<String>> {
    urls.iter()
        .map(|u| to_host(u, app_port, host_port))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| match e {
            Error::Usage { what, hint } => {
                Error::usage(what.replace("--url", "--verify-url"), hint)
            }
            other => other,
        })
}

/// A `Sample` step of `cracin build`: the answers of the running verification container.
pub fn sample_step(
    step: &str,
    names: &[String],
    urls: &[String],
    rounds: u32,
    log_dir: &std::path::Path,
) -> Result<super::Samples> {
    sample::sample(step, names, urls, rounds).map_err(|(url, why)| Error::RestoredNotReady {
        probe: format!("{url} ({why})"),
        timeout: sample::TIMEOUT,
        log: log_dir.to_path_buf(),
        log_tail: String::new(),
    })
}

/// The `Uniqueness` step of `cracin build`: an error (exit code 8) when a random-looking value
/// came back in two verification containers; else a one-line summary.
pub fn uniqueness_step(samples: &[super::Samples], progress: &dyn Progress) -> Result<String> {
    let urls: Vec<String> = samples
        .first()
        .map(|s| s.answers.keys().cloned().collect())
        .unwrap_or_default();
    let r = Report::new(
        "the verification containers".into(),
        None,
        &urls,
        super::DEFAULT_ROUNDS,
        Vec::new(),
        samples,
    );
    if let Some(e) = r.failure() {
        return Err(e);
    }
    if r.compared() == 0 {
        progress.warn("uniqueness check: nothing in the --verify-url answers changed from request to request or between restores, so nothing was compared");
    }
    Ok(format!(
        "{} place(s) compared across {} restores, none repeated",
        r.compared(),
        samples.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_go_to_the_published_port() {
        assert_eq!(
            to_host("/login?x=1", 8080, 40001).unwrap(),
            "http://127.0.0.1:40001/login?x=1"
        );
        assert_eq!(
            to_host("http://127.0.0.1:8080/api", 8080, 40001).unwrap(),
            "http://127.0.0.1:40001/api"
        );
        assert_eq!(
            to_host("http://localhost:8080", 8080, 40001).unwrap(),
            "http://127.0.0.1:40001/"
        );
        assert_eq!(
            to_host("tcp://127.0.0.1:8080", 8080, 40001).unwrap(),
            "tcp://127.0.0.1:40001"
        );
        assert!(to_host("http://127.0.0.1:9090/api", 8080, 40001).is_err());
        assert!(to_host("api", 8080, 40001).is_err());
    }

    #[test]
    fn build_verification_needs_two_restores_for_the_check() {
        assert_eq!(build_verify_count(1, &[]), 1);
        assert_eq!(build_verify_count(1, &["/x".into()]), 2);
        assert_eq!(build_verify_count(3, &["/x".into()]), 3);
        let e = build_sample_urls(&["http://127.0.0.1:9/x".into()], 8080, 1).unwrap_err();
        assert!(e.to_string().contains("--verify-url"), "{e}");
    }

    #[test]
    fn the_exposed_port_is_read_from_inspect() {
        assert_eq!(exposed_port("{\"8080/tcp\":{}}\n"), Some(8080));
        assert_eq!(exposed_port("{\"8080/tcp\":{},\"9090/tcp\":{}}"), None);
        assert_eq!(exposed_port("null"), None);
    }

    #[test]
    fn ports_come_from_urls_first_and_must_agree() {
        let mut o = ImageOptions {
            engine: Engine::podman(),
            image: "x".into(),
            runtime: Runtime::Criu,
            urls: vec!["http://127.0.0.1:8081/a".into(), "/b".into()],
            rounds: 2,
            ready: None,
            port: None,
            ready_timeout: Duration::from_secs(1),
            stop_timeout: Duration::from_secs(1),
            id: "t".into(),
        };
        assert_eq!(app_port(&o).unwrap(), 8081);
        o.urls.push("http://127.0.0.1:9/c".into());
        assert!(matches!(app_port(&o), Err(Error::Usage { .. })));
        o.port = Some(7000);
        assert_eq!(app_port(&o).unwrap(), 7000);
        let (a, b) = two_free_ports().unwrap();
        assert_ne!(a, b);
    }
}
