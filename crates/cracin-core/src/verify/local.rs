//! The uniqueness check of a local checkpoint directory. The two instances run one after the
//! other, not together: a restored JVM listens on the port it had at checkpoint time on this
//! host's network, so a second instance could not bind it (the restore refuses with the port's
//! holder named). Each instance is restored with `local::restore` (the same path as `cracin
//! restore`), asked every URL `rounds` times, then stopped with SIGTERM (SIGKILL only if it is
//! still there after the stop timeout) before the next one is restored.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{sample, InstanceInfo, Report};
use crate::ckpt::dir::{self, CheckpointDir};
use crate::error::{Error, Result};
use crate::local::{self, RestoreOptions};
use crate::stage::probe::Probe;
use crate::Progress;

/// Options of `cracin verify DIR`.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub dir: PathBuf,
    /// As the user gave them: `/path` (relative to the application's port) or absolute URLs.
    pub urls: Vec<String>,
    pub rounds: u32,
    /// Readiness probe (default: the one recorded in the checkpoint).
    pub ready: Option<String>,
    pub ready_timeout: Duration,
    /// How long SIGTERM may take before SIGKILL.
    pub stop_timeout: Duration,
    pub criu: Option<PathBuf>,
}

impl LocalOptions {
    pub fn new(dir: PathBuf, urls: Vec<String>) -> Self {
        LocalOptions {
            dir,
            urls,
            rounds: super::DEFAULT_ROUNDS,
            ready: None,
            ready_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(30),
            criu: None,
        }
    }
}

/// The application's base URL from the checkpoint: the port of its HTTP or TCP readiness probe,
/// else the first port it listened on.
fn base_url(m: &dir::Manifest) -> Option<String> {
    let port = m
        .ready
        .as_deref()
        .and_then(|r| Probe::parse(r).ok())
        .and_then(|p| p.local_port())
        .or_else(|| m.listen_ports.first().copied())?;
    Some(format!("http://127.0.0.1:{port}"))
}

pub fn verify(o: &LocalOptions, progress: &dyn Progress) -> Result<Report> {
    check_inputs(&o.urls, o.rounds)?;
    let ck = CheckpointDir::open(&dir::absolute(&o.dir)?)?;
    let base = base_url(&ck.manifest);
    if base.is_none() && o.urls.iter().any(|u| u.starts_with('/')) {
        return Err(Error::usage(
            format!(
                "{} records no port to send relative URLs to",
                ck.path.display()
            ),
            "give absolute URLs, e.g. --url http://127.0.0.1:8080/login",
        ));
    }
    let urls = super::absolute_urls(&o.urls, base.as_deref().unwrap_or(""))?;
    let mut instances = Vec::new();
    let mut samples = Vec::new();
    for i in 1..=2 {
        let mut ro = RestoreOptions::new(ck.path.clone());
        ro.ready = o.ready.clone();
        ro.ready_timeout = o.ready_timeout;
        ro.criu = o.criu.clone();
        let t0 = Instant::now();
        progress.step(&format!("instance {i}"), "restoring");
        let r = local::restore(&ro, progress)?;
        let label = format!("restore {i} (pid {})", r.pid);
        let guard = Running::new(r.pid);
        progress.step(
            &format!("instance {i}"),
            &format!("sending {} URL(s) {} times each", urls.len(), o.rounds),
        );
        let got = sample::sample(&label, &o.urls, &urls, o.rounds);
        let stopped = stop(guard, o.stop_timeout);
        wait_ports_free(&ck.manifest.listen_ports, o.stop_timeout);
        progress.done(
            &format!("instance {i}"),
            t0.elapsed().as_secs_f64() * 1000.0,
            &format!("{label} stopped with {stopped}"),
        );
        let got = got.map_err(|(url, why)| Error::RestoredNotReady {
            probe: format!("{url} ({why})"),
            timeout: sample::TIMEOUT,
            log: r.stderr.clone(),
            log_tail: crate::jvm::output::output_tail(&[r.stdout.clone(), r.stderr.clone()], 20),
        })?;
        instances.push(InstanceInfo {
            label,
            ready_ms: r.ready_ms,
            stopped,
        });
        samples.push(got);
    }
    Ok(Report::new(
        ck.path.display().to_string(),
        Some(crate::engine::EngineKind::Local),
        &o.urls,
        o.rounds,
        instances,
        &samples,
    ))
}

/// The inputs every kind of check needs.
pub fn check_inputs(urls: &[String], rounds: u32) -> Result<()> {
    if urls.is_empty() {
        return Err(Error::usage(
            "no --url given",
            "name the requests whose answers carry session IDs or tokens, e.g. --url /login --url /api/token",
        ));
    }
    if rounds < 2 {
        return Err(Error::usage(
            format!("--rounds {rounds} is too few"),
            "use --rounds 2 or more: with one request per instance a constant cannot be told from a random value",
        ));
    }
    Ok(())
}

/// A restored process that is SIGKILLed if it is dropped while still running (an error or a
/// panic between restore and stop leaves nothing behind); registered for `stop_all_live`.
struct Running(Option<u32>);

impl Running {
    fn new(pid: u32) -> Running {
        super::register_pid(pid);
        Running(Some(pid))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            super::unregister_pid(pid);
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// SIGTERM, then wait; SIGKILL when it is still running after `timeout`. Says which ended it.
fn stop(mut r: Running, timeout: Duration) -> String {
    let Some(pid) = r.0.take() else {
        return "nothing".into();
    };
    super::unregister_pid(pid);
    stop_pid(pid, timeout)
}

/// SIGTERM to `pid`, SIGKILL if it is still running after `timeout`; says which ended it.
pub(super) fn stop_pid(pid: u32, timeout: Duration) -> String {
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    if wait_gone(pid, timeout) {
        return "SIGTERM".into();
    }
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    wait_gone(pid, Duration::from_secs(10));
    format!(
        "SIGKILL (SIGTERM did not end it within {})",
        humantime::format_duration(timeout)
    )
}

/// Whether the process ended (gone, or a zombie waiting for its reaper) within `timeout`.
fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if crate::os::procfs::gone(pid).is_some() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A zombie leader's threads may still hold its sockets for a moment: the next restore checks
/// the ports and would refuse.
fn wait_ports_free(ports: &[u16], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while ports
        .iter()
        .any(|p| crate::os::procfs::port_holder(*p).is_some())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_before_anything_runs() {
        assert!(matches!(check_inputs(&[], 2), Err(Error::Usage { .. })));
        assert!(matches!(
            check_inputs(&["/a".into()], 1),
            Err(Error::Usage { .. })
        ));
        check_inputs(&["/a".into()], 2).unwrap();
    }

    #[test]
    fn a_process_is_stopped_with_sigterm() {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        // Reap it in the background, as init would reap a restored process.
        let reaper = std::thread::spawn(move || {
            let mut c = child;
            c.wait().unwrap()
        });
        assert_eq!(stop(Running::new(pid), Duration::from_secs(10)), "SIGTERM");
        let st = reaper.join().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGTERM));
    }
}
