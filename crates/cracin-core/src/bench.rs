//! Benchmark: measures, in one run, what a checkpoint buys for one application: launch → first
//! 2xx for cold starts versus restore → first 2xx for restores (several of each), the checkpoint's
//! size (and, optionally, the size of an untuned one for comparison), and how warm the JVM is:
//! the latency of each of the first requests after a cold start and after a restore, next to
//! steady state. Benchmarks measure; tests only check that the numbers are there and sane.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::{self, LaunchSpec};
use crate::error::{Error, Result};
use crate::local::{self, CheckpointOptions, RestoreOptions};
use crate::probe::{self, NotReady, Probe};
use crate::warmup::{self, median, WarmupSpec};
use crate::Progress;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub command: Vec<String>,
    pub cwd: PathBuf,
    pub ready: String,
    pub ready_timeout: Duration,
    pub runs: usize,
    pub warmup: Option<WarmupSpec>,
    /// URL whose first requests are timed after each start (default: the readiness URL).
    pub latency_url: Option<String>,
    pub latency_requests: usize,
    pub compare_untuned: bool,
    pub criu: Option<PathBuf>,
    /// Restore with lazy pages.
    pub lazy_pages: bool,
    /// Where checkpoints are written (a private temp dir when None; removed afterwards).
    pub work_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

impl Stats {
    pub fn of(v: &[f64]) -> Stats {
        Stats {
            min: v.iter().cloned().fold(f64::INFINITY, f64::min),
            median: median(v),
            max: v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            samples: v.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub date: String,
    pub machine: String,
    pub kernel: String,
    pub criu: String,
    pub jvm: String,
    pub command: Vec<String>,
    pub runs: usize,
    /// Launch → first 2xx of the readiness URL, cold.
    pub cold_ms: Stats,
    /// Start of `cracin restore` → first 2xx.
    pub restore_ms: Stats,
    /// Cold median / restore median.
    pub speedup: f64,
    pub checkpoint_bytes: u64,
    /// Files saved with the checkpoint beside the images (docs/files.md).
    pub saved_files_bytes: u64,
    pub untuned_checkpoint_bytes: Option<u64>,
    pub dump_ms: f64,
    pub latency_url: Option<String>,
    /// Latencies of the first requests after the first cold start / the first restore.
    pub cold_first_ms: Vec<f64>,
    pub restored_first_ms: Vec<f64>,
    /// The same number of requests once the restored JVM served the first batch.
    pub steady_ms: Vec<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(o: &BenchOptions, progress: &dyn Progress) -> Result<BenchResult> {
    let probe = Probe::parse(&o.ready)?;
    if !matches!(probe, Probe::Http(_)) {
        return Err(Error::usage(
            "the benchmark needs an HTTP --ready URL (it times the first HTTP 2xx)",
            "pass --ready http://127.0.0.1:PORT/PATH",
        ));
    }
    let criu = local::preflight(o.criu.as_deref(), "benchmark")?;
    let work = match &o.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            d.clone()
        }
        None => crate::process::private_tmp_dir("cracin-bench")?,
    };
    let cleanup = o.work_dir.is_none();
    let r = run_in(o, &probe, &criu, &work, progress);
    if cleanup {
        let _ = std::fs::remove_dir_all(&work);
    }
    r
}

fn run_in(
    o: &BenchOptions,
    probe: &Probe,
    criu: &crate::criu::Criu,
    work: &std::path::Path,
    progress: &dyn Progress,
) -> Result<BenchResult> {
    let lat_url = o.latency_url.clone().or_else(|| match probe {
        Probe::Http(u) => Some(u.clone()),
        _ => None,
    });
    // Cold starts: the user's command exactly as given.
    let mut cold = Vec::new();
    let mut cold_first = Vec::new();
    for i in 0..o.runs {
        progress.step("cold", &format!("run {}/{}", i + 1, o.runs));
        let spec = LaunchSpec {
            argv: o.command.clone(),
            cwd: o.cwd.clone(),
            java_options: vec!["-XX:-UsePerfData".into()],
            env: vec![],
            stdout: work.join(format!("cold-{i}.stdout")),
            stderr: work.join(format!("cold-{i}.stderr")),
            in_container: false,
        };
        let mut l = app::launch(&spec)?;
        let logs = vec![spec.stdout.clone(), spec.stderr.clone()];
        match probe::wait_ready(
            probe,
            &logs,
            o.ready_timeout,
            Duration::from_millis(2),
            || l.exited(),
        ) {
            Ok(_) => cold.push(ms(l.started.elapsed())),
            Err(NotReady::Exited(status)) => {
                return Err(Error::AppExited {
                    status,
                    log: spec.stderr.clone(),
                    log_tail: local::output_tail(&logs, 20),
                    diagnosis: crate::diagnose::explain_files(&[
                        spec.stderr.clone(),
                        spec.stdout.clone(),
                    ]),
                })
            }
            Err(NotReady::Timeout) => {
                return Err(Error::NotReady {
                    probe: probe.to_string(),
                    timeout: o.ready_timeout,
                    log: spec.stderr.clone(),
                    log_tail: local::output_tail(&logs, 20),
                })
            }
        }
        if i == 0 && o.latency_requests > 0 {
            if let Some(u) = &lat_url {
                cold_first = warmup::latency_series(u, o.latency_requests)?;
            }
        }
        l.kill();
        progress.done("cold", *cold.last().unwrap(), "");
    }

    progress.step("checkpoint", "tuned (cracin's defaults)");
    let mut co = CheckpointOptions::new(o.command.clone(), work.join("ckpt"));
    co.cwd = o.cwd.clone();
    co.ready = Some(o.ready.clone());
    co.ready_timeout = o.ready_timeout;
    co.warmup = o.warmup.clone();
    co.criu = Some(criu.path.clone());
    let ck = local::checkpoint(&co, progress)?;
    let untuned = if o.compare_untuned {
        progress.step("checkpoint", "untuned (--no-shrink --no-gc)");
        let mut cu = co.clone();
        cu.out = work.join("ckpt-untuned");
        cu.shrink = false;
        cu.gc = false;
        let u = local::checkpoint(&cu, progress)?;
        let b = u.manifest.sizes.images_bytes;
        let _ = std::fs::remove_dir_all(&u.dir);
        Some(b)
    } else {
        None
    };

    let mut restored = Vec::new();
    let mut restored_first = Vec::new();
    let mut steady = Vec::new();
    for i in 0..o.runs {
        progress.step("restore", &format!("run {}/{}", i + 1, o.runs));
        let mut ro = RestoreOptions::new(ck.dir.clone());
        ro.criu = Some(criu.path.clone());
        ro.ready = Some(o.ready.clone());
        ro.ready_timeout = o.ready_timeout;
        ro.lazy_pages = o.lazy_pages;
        let t = Instant::now();
        let r = local::restore(&ro, &crate::Quiet)?;
        let took = r.ready_ms.unwrap_or_else(|| ms(t.elapsed()));
        restored.push(took);
        let measured = (|| -> Result<()> {
            if i == 0 && o.latency_requests > 0 {
                if let Some(u) = &lat_url {
                    restored_first = warmup::latency_series(u, o.latency_requests)?;
                    steady = warmup::latency_series(u, o.latency_requests)?;
                }
            }
            Ok(())
        })();
        stop(r.pid);
        measured?;
        progress.done("restore", took, "");
    }
    let cold_s = Stats::of(&cold);
    let rest_s = Stats::of(&restored);
    let (model, _) = crate::sysinfo::cpu();
    Ok(BenchResult {
        date: crate::checkpoint::now_rfc3339(),
        machine: format!(
            "{} ({} CPUs)",
            model,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
        kernel: crate::sysinfo::kernel_release(),
        criu: criu.version.to_string(),
        jvm: ck
            .manifest
            .jvm
            .as_ref()
            .map(|j| j.version.clone())
            .unwrap_or_default(),
        command: o.command.clone(),
        runs: o.runs,
        speedup: if rest_s.median > 0.0 {
            cold_s.median / rest_s.median
        } else {
            0.0
        },
        cold_ms: cold_s,
        restore_ms: rest_s,
        checkpoint_bytes: ck.manifest.sizes.images_bytes,
        saved_files_bytes: ck.manifest.files.as_ref().map_or(0, |f| f.saved_bytes),
        untuned_checkpoint_bytes: untuned,
        dump_ms: ck.manifest.timings_ms.dump,
        latency_url: lat_url,
        cold_first_ms: cold_first,
        restored_first_ms: restored_first,
        steady_ms: steady,
    })
}

/// Stops a restored process and waits until it is gone (its port free again). A zombie leader
/// may still have threads closing its sockets, so only a reaped process counts as gone.
pub fn stop(pid: u32) {
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        // Reap it if it is ours (a foreground restore made cracin its subreaper).
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid as i32),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
