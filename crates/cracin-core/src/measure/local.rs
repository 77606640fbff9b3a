//! The local engine's measurement (`cracin bench`, and the local column of `cracin report`):
//! measures, in one run, what a checkpoint buys for one application: launch → first
//! 2xx for cold starts versus restore → first 2xx for restores (several of each), the checkpoint's
//! size (and, optionally, the size of an untuned one for comparison), and how warm the JVM is:
//! the latency of each of the first requests after a cold start and after a restore, next to
//! steady state. Benchmarks measure; tests only check that the numbers are there and sane.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ckpt::dir::CheckpointDir;
use crate::error::{Error, Result};
use crate::jvm::launch::{self, LaunchSpec};
use crate::local::{self, CheckpointOptions, RestoreOptions};
use crate::measure::peers;
use crate::measure::runs::{self, first_answer, Label, Series, Starter, Warmth};
use crate::measure::stats::ms;
pub use crate::measure::stats::Stats;
use crate::stage::criu::Criu;
use crate::stage::probe::{NotReady, Probe};
use crate::stage::warmup::{self, WarmupSpec};
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
    /// The `cracin` binary: restores are then timed as that command, from its exec (what a
    /// user waits for); otherwise as library calls.
    pub cracin_exe: Option<PathBuf>,
    /// Also time a plain `criu restore` of the same images, in turn with each restore.
    pub plain_criu: bool,
    /// A JDK 25 (or later) home: also time cold starts on it, without and with a Leyden AOT
    /// cache made by a training run (`-XX:AOTCacheOutput`, warmed up like the checkpoint).
    pub aot_jdk: Option<PathBuf>,
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
    /// How restores were timed ("the cracin command" or "library call").
    pub restore_timed_as: String,
    /// Exec of a plain `criu restore` of the same images → first 2xx.
    pub plain_criu_ms: Option<Stats>,
    /// Cold starts on the `aot_jdk`, without and with its AOT cache.
    pub aot_jdk: Option<String>,
    pub jdk_cold_ms: Option<Stats>,
    pub aot_cold_ms: Option<Stats>,
    /// Why the JDK 25 columns are missing, when they are.
    pub aot_error: Option<String>,
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
        None => crate::os::cmd::private_tmp_dir("cracin-bench")?,
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
    criu: &Criu,
    work: &Path,
    progress: &dyn Progress,
) -> Result<BenchResult> {
    let lat_url = o.latency_url.clone().or_else(|| match probe {
        Probe::Http(u) => Some(u.clone()),
        _ => None,
    });
    // Cold starts: the user's command exactly as given.
    let mut cold = Cold::new(&o.command, "cold", o, probe, work, &lat_url);
    let cold = measure(
        o,
        &mut [Series {
            label: Label::plain("cold"),
            warmth: Warmth::First,
            starter: &mut cold,
        }],
        progress,
    )?
    .next()
    .unwrap_or_default();

    let (ck, untuned) = checkpoints(o, criu, work, progress)?;
    let exe = o.cracin_exe.as_ref().filter(|_| !o.lazy_pages);
    let (restored, plain) = restores(o, exe, &ck.dir, criu, probe, work, &lat_url, progress)?;

    // The peers' columns are not the point of the benchmark: an application that does not run
    // on that JDK is reported, not fatal.
    let (aot, aot_error) = match &o.aot_jdk {
        Some(jdk) => match aot_columns(o, probe, jdk, work, progress) {
            Ok(a) => (Some(a), None),
            Err(e) => {
                progress.warn(&format!("no JDK 25 columns: {e}"));
                (None, Some(e.to_string()))
            }
        },
        None => (None, None),
    };
    let cold_s = Stats::of(&cold.ms);
    let rest_s = Stats::of(&restored.ms);
    let (model, _) = crate::os::sysinfo::cpu();
    Ok(BenchResult {
        date: crate::ckpt::dir::now_rfc3339(),
        machine: format!(
            "{} ({} CPUs)",
            model,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
        kernel: crate::os::sysinfo::kernel_release(),
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
        restore_timed_as: if exe.is_some() {
            "the cracin restore command, from its exec".into()
        } else {
            "library call".into()
        },
        plain_criu_ms: plain.map(|p| Stats::of(&p.ms)),
        aot_jdk: o.aot_jdk.as_ref().map(|j| j.display().to_string()),
        jdk_cold_ms: aot.as_ref().map(|a| Stats::of(&a.0)),
        aot_cold_ms: aot.as_ref().map(|a| Stats::of(&a.1)),
        aot_error,
        checkpoint_bytes: ck.manifest.sizes.images_bytes,
        saved_files_bytes: ck.manifest.files.as_ref().map_or(0, |f| f.saved_bytes),
        untuned_checkpoint_bytes: untuned,
        dump_ms: ck.manifest.timings_ms.dump,
        latency_url: lat_url,
        cold_first_ms: cold.first_ms,
        restored_first_ms: restored.first_ms,
        steady_ms: restored.steady_ms,
    })
}

/// `o.runs` runs of the series, in turn, with `o.latency_requests` timed requests: what each
/// measured, in their order.
fn measure(
    o: &BenchOptions,
    series: &mut [Series<'_, Error>],
    progress: &dyn Progress,
) -> Result<std::vec::IntoIter<runs::Measured>> {
    Ok(runs::in_turn(o.runs, o.latency_requests, series, progress)?.into_iter())
}

/// The restores of the checkpoint (and, with --plain-criu, a plain `criu restore` before each):
/// what the restores measured, and what the plain ones did.
#[allow(clippy::too_many_arguments)]
fn restores(
    o: &BenchOptions,
    exe: Option<&PathBuf>,
    ck: &Path,
    criu: &Criu,
    probe: &Probe,
    work: &Path,
    lat_url: &Option<String>,
    progress: &dyn Progress,
) -> Result<(runs::Measured, Option<runs::Measured>)> {
    let ck_dir = CheckpointDir::open(ck)?;
    let mut restore = Restore {
        o,
        exe,
        ck,
        criu,
        probe,
        lat_url,
        pid: None,
    };
    let mut plain = PlainCriu {
        criu,
        ck: &ck_dir,
        probe,
        timeout: o.ready_timeout,
        work,
        pid: None,
    };
    let mut series = vec![Series {
        label: Label::plain("restore"),
        warmth: Warmth::FirstAndSteady,
        starter: &mut restore,
    }];
    if o.plain_criu {
        // In turn with each restore, before it.
        series.insert(
            0,
            Series {
                label: Label::plain("plain criu"),
                warmth: Warmth::Untimed,
                starter: &mut plain,
            },
        );
    }
    let mut m = measure(o, &mut series, progress)?;
    let plain = if o.plain_criu { m.next() } else { None };
    let restored = m.next().unwrap_or_default();

    Ok((restored, plain))
}

/// The checkpoint the restores are measured on (cracin's defaults), and the size of an untuned
/// one when asked for (made, measured, removed).
fn checkpoints(
    o: &BenchOptions,
    criu: &Criu,
    work: &Path,
    progress: &dyn Progress,
) -> Result<(local::Checkpointed, Option<u64>)> {
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
    Ok((ck, untuned))
}

/// Cold starts of a command line (the user's, or the same on another JDK), each in its own PID
/// namespace, named `<name>-<run>` in the work directory.
struct Cold<'a> {
    argv: Vec<String>,
    name: &'a str,
    o: &'a BenchOptions,
    probe: &'a Probe,
    work: &'a Path,
    lat_url: Option<String>,
    running: Option<launch::Launched>,
}

impl<'a> Cold<'a> {
    fn new(
        argv: &[String],
        name: &'a str,
        o: &'a BenchOptions,
        probe: &'a Probe,
        work: &'a Path,
        lat_url: &Option<String>,
    ) -> Cold<'a> {
        Cold {
            argv: argv.to_vec(),
            name,
            o,
            probe,
            work,
            lat_url: lat_url.clone(),
            running: None,
        }
    }
}

impl Starter for Cold<'_> {
    type Error = Error;
    fn start(&mut self, run: usize) -> Result<f64> {
        let (t, l) = cold_run(
            &self.argv,
            self.o,
            self.probe,
            self.work,
            &format!("{}-{run}", self.name),
        )?;
        self.running = Some(l);
        Ok(t)
    }
    fn latency_url(&self) -> Option<String> {
        self.lat_url.clone()
    }
    fn stop(&mut self) {
        if let Some(mut l) = self.running.take() {
            l.kill();
        }
    }
}

/// Restores of the checkpoint: with the `cracin restore` command from its exec when the binary
/// is known (and no lazy pages), else as a library call.
struct Restore<'a> {
    o: &'a BenchOptions,
    exe: Option<&'a PathBuf>,
    ck: &'a Path,
    criu: &'a Criu,
    probe: &'a Probe,
    lat_url: &'a Option<String>,
    pid: Option<u32>,
}

impl Starter for Restore<'_> {
    type Error = Error;
    fn start(&mut self, _run: usize) -> Result<f64> {
        let o = self.o;
        let (took, pid) = match self.exe {
            Some(exe) => peers::cracin_restore_command(
                exe,
                self.ck,
                &self.criu.path,
                self.probe,
                o.ready_timeout,
            )?,
            None => {
                let mut ro = RestoreOptions::new(self.ck.to_path_buf());
                ro.criu = Some(self.criu.path.clone());
                ro.ready = Some(o.ready.clone());
                ro.ready_timeout = o.ready_timeout;
                ro.lazy_pages = o.lazy_pages;
                let t = Instant::now();
                ro.counted_from = Some(t);
                let r = local::restore(&ro, &crate::Quiet)?;
                (r.ready_ms.unwrap_or_else(|| ms(t.elapsed())), r.pid)
            }
        };
        self.pid = Some(pid);
        Ok(took)
    }
    fn latency_url(&self) -> Option<String> {
        self.lat_url.clone()
    }
    fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            runs::stop_pid(pid);
        }
    }
}

/// Plain `criu restore`s of the same images (`peers::plain_criu_restore`).
struct PlainCriu<'a> {
    criu: &'a Criu,
    ck: &'a CheckpointDir,
    probe: &'a Probe,
    timeout: Duration,
    work: &'a Path,
    pid: Option<u32>,
}

impl Starter for PlainCriu<'_> {
    type Error = Error;
    fn start(&mut self, run: usize) -> Result<f64> {
        let (took, pid) = peers::plain_criu_restore(
            self.criu,
            self.ck,
            self.probe,
            self.timeout,
            &self.work.join(format!("plain-criu-{run}")),
        )?;
        self.pid = Some(pid);
        Ok(took)
    }
    fn latency_url(&self) -> Option<String> {
        None
    }
    fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            runs::stop_pid(pid);
        }
    }
}

/// Launches `argv` in its own PID namespace and times launch → first answer; the launched
/// application is returned still running.
fn cold_run(
    argv: &[String],
    o: &BenchOptions,
    probe: &Probe,
    work: &Path,
    name: &str,
) -> Result<(f64, launch::Launched)> {
    let spec = LaunchSpec {
        argv: argv.to_vec(),
        cwd: o.cwd.clone(),
        java_options: vec!["-XX:-UsePerfData".into()],
        env: vec![],
        stdout: work.join(format!("{name}.stdout")),
        stderr: work.join(format!("{name}.stderr")),
        in_container: false,
    };
    let mut l = launch::launch(&spec)?;
    let logs = vec![spec.stdout.clone(), spec.stderr.clone()];
    let started = l.started;
    match first_answer(probe, &logs, started, o.ready_timeout, || l.exited()) {
        Ok(t) => Ok((t, l)),
        Err(NotReady::Exited(status)) => Err(crate::jvm::output::app_exited(status, &logs)),
        Err(NotReady::Timeout) => Err(crate::jvm::output::not_ready(
            probe.to_string(),
            o.ready_timeout,
            &logs,
        )),
    }
}

/// Cold starts on another JDK without and with a Leyden AOT cache (JDK 25: a training run with
/// `-XX:AOTCacheOutput`, warmed up as the checkpoint is, writes the cache when it exits; later
/// runs use it with `-XX:AOTCache`).
fn aot_columns(
    o: &BenchOptions,
    probe: &Probe,
    jdk: &Path,
    work: &Path,
    progress: &dyn Progress,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let cache = work.join("app.aot");
    progress.step("aot", "training run with -XX:AOTCacheOutput");
    let train = peers::on_jdk(
        &o.command,
        jdk,
        &[format!("-XX:AOTCacheOutput={}", cache.display())],
    )?;
    let (_, mut l) = cold_run(&train, o, probe, work, "aot-training")?;
    if let Some(w) = o.warmup.as_ref().filter(|w| w.requests > 0) {
        warmup::run(w)?;
    }
    // The cache is written at a normal exit: stop the JVM with SIGTERM and wait.
    if let Some(pid) = l.java_pid() {
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
    }
    l.wait_exit(Duration::from_secs(300));
    drop(l);
    if !cache.is_file() {
        return Err(Error::usage(
            format!(
                "the training run on {} wrote no AOT cache ({})",
                jdk.display(),
                cache.display()
            ),
            "give a JDK 25 or later (JEP 514 -XX:AOTCacheOutput)",
        ));
    }
    let plain_argv = peers::on_jdk(&o.command, jdk, &[])?;
    let aot_argv = peers::on_jdk(
        &o.command,
        jdk,
        &[format!("-XX:AOTCache={}", cache.display())],
    )?;
    let mut plain = Cold::new(&plain_argv, "jdk", o, probe, work, &None);
    let mut aot = Cold::new(&aot_argv, "aot", o, probe, work, &None);
    let mut m = measure(
        o,
        &mut [
            Series {
                label: Label {
                    step: "jdk cold".into(),
                    detail: String::new(),
                    done: None,
                },
                warmth: Warmth::Untimed,
                starter: &mut plain,
            },
            Series {
                label: Label::plain("aot cold"),
                warmth: Warmth::Untimed,
                starter: &mut aot,
            },
        ],
        progress,
    )?;
    let plain = m.next().unwrap_or_default();
    let aot = m.next().unwrap_or_default();
    Ok((plain.ms, aot.ms))
}
