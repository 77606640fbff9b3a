//! `cracin report`: what a checkpoint costs and buys, measured on one application in one
//! session. For each engine asked for (the local engine, podman, docker) it gives the time to the
//! first HTTP 2xx of a cold start and of a restore (medians of several runs), the durations of checkpoint and
//! restore, the sizes (base image, application image, restore image, checkpoint files) and the
//! warmth of the JVM (the latency of each of the first requests after a cold start and after a
//! restore, next to steady state). An engine that cannot be measured here is reported as "not
//! measured" with the reason, never with invented numbers.
//!
//! The `Report` is plain data; `markdown` and `svg` render it, so rendering is tested with fixed
//! figures. The figures come from `crate::measure` (`measure::local` for the local engine,
//! `measure::container` for podman and docker); `measure` here only assembles them.

pub mod markdown;
pub mod svg;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::container::Engine;
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use crate::measure::container::{self, ContainerResult};
use crate::measure::local::{self, BenchOptions, BenchResult};
use crate::measure::stats::{median, Stats};
use crate::Progress;

/// The whole report: where, what and with which tools it was measured, and one entry per engine.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub criu: String,
    pub jvm: String,
    pub command: Vec<String>,
    pub ready: String,
    pub warmup: Vec<String>,
    pub warmup_requests: usize,
    /// Cold starts and restores measured per engine; every figure is a median over these.
    pub runs: usize,
    pub latency_url: Option<String>,
    pub latency_requests: usize,
    pub engines: Vec<EngineReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    /// 1-minute load average when the measurement started and when it ended: the machine may
    /// be shared, and a busy machine slows every figure.
    pub load_at_start: Option<f64>,
    pub load_at_end: Option<f64>,
}

/// The 1-minute load average (/proc/loadavg).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Machine {
    pub fn here() -> Machine {
        Machine {
            cpu_model: crate::os::sysinfo::cpu().0,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel: crate::os::sysinfo::kernel_release(),
            load_at_start: load_average(),
            load_at_end: None,
        }
    }
}

/// The figures of one engine. `not_measured` says why an engine has no figures.
#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    pub engine: EngineKind,
    pub not_measured: Option<String>,
    /// Cold start → first 2xx (containers: `run -d` → first 2xx through the published port).
    pub cold_ms: Option<Stats>,
    /// Restore → first 2xx (containers: `run -d` of the restore image → first 2xx).
    pub restore_ms: Option<Stats>,
    /// Cold median / restore median.
    pub speedup: Option<f64>,
    /// How long taking the checkpoint took, and what that figure covers.
    pub checkpoint_ms: Option<f64>,
    pub checkpoint_what: String,
    pub sizes: Sizes,
    pub latency: Option<Latency>,
    pub notes: Vec<String>,
}

impl EngineReport {
    pub fn not_measured(engine: EngineKind, why: impl Into<String>) -> EngineReport {
        EngineReport {
            engine,
            not_measured: Some(why.into()),
            cold_ms: None,
            restore_ms: None,
            speedup: None,
            checkpoint_ms: None,
            checkpoint_what: String::new(),
            sizes: Sizes::default(),
            latency: None,
            notes: Vec::new(),
        }
    }
}

/// Sizes in bytes; None where the engine has no such thing (the local engine has no images).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Sizes {
    pub base_image_bytes: Option<u64>,
    pub app_image_bytes: Option<u64>,
    pub restore_image_bytes: Option<u64>,
    pub checkpoint_bytes: Option<u64>,
}

/// Latency of each of the first requests after the first cold start and after the first
/// restore, and of as many requests once the restored JVM had served those (steady state).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Latency {
    pub url: String,
    pub cold_first_ms: Vec<f64>,
    pub restored_first_ms: Vec<f64>,
    pub steady_ms: Vec<f64>,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The application and the local measurement (command, readiness, warm-up, runs, latency).
    pub bench: BenchOptions,
    /// The engines, in the order wanted.
    pub engines: Vec<EngineKind>,
    /// The cracin binary copied into container images (the running one).
    pub cracin_binary: PathBuf,
}

/// Parses `--engine local,podman,docker`.
pub fn parse_engines(s: &str) -> Result<Vec<EngineKind>> {
    let mut v: Vec<EngineKind> = Vec::new();
    for word in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let e: EngineKind = word.parse().map_err(|e| {
            Error::usage(
                format!("{e}"),
                "use --engine with a comma-separated list of local, podman, docker",
            )
        })?;
        if !v.contains(&e) {
            v.push(e);
        }
    }
    if v.is_empty() {
        return Err(Error::usage(
            "--engine names no engine",
            "e.g. --engine local,podman",
        ));
    }
    Ok(v)
}

/// Measures every engine asked for. The local engine's failure is the report's failure (it is
/// the reference); a container engine that fails is reported as not measured, with the error.
pub fn measure(o: &ReportOptions, progress: &dyn Progress) -> Result<Report> {
    if o.bench.runs == 0 {
        return Err(Error::usage(
            "--runs must be at least 1",
            "the default is 5",
        ));
    }
    if o.bench.runs < 5 {
        progress.warn(&format!(
            "--runs {} is below 5: fine for a test, too few for a report to publish",
            o.bench.runs
        ));
    }
    let machine = Machine::here();
    let mut engines = Vec::new();
    let mut jvm = String::new();
    for &name in &o.engines {
        let e = match name {
            EngineKind::Local => {
                progress.step(name.name(), "cold starts, checkpoint, restores (bench)");
                let b = local::run(&o.bench, progress)?;
                jvm = b.jvm.clone();
                from_bench(b)
            }
            EngineKind::Podman | EngineKind::Docker => container_engine(name, o, progress),
        };
        if let Some(why) = &e.not_measured {
            progress.warn(&format!("{name}: not measured: {why}"));
        }
        engines.push(e);
    }
    if jvm.is_empty() {
        jvm = java_version(&o.bench.command);
    }
    Ok(Report {
        date: crate::ckpt::dir::now_rfc3339(),
        machine: Machine {
            load_at_end: load_average(),
            ..machine
        },
        criu: crate::stage::criu::Criu::find(o.bench.criu.as_deref())
            .map(|c| c.version.to_string())
            .unwrap_or_else(|e| format!("none ({e})")),
        jvm,
        command: o.bench.command.clone(),
        ready: o.bench.ready.clone(),
        warmup: o
            .bench
            .warmup
            .as_ref()
            .map(|w| w.urls.clone())
            .unwrap_or_default(),
        warmup_requests: o.bench.warmup.as_ref().map(|w| w.requests).unwrap_or(0),
        runs: o.bench.runs,
        latency_url: o
            .bench
            .latency_url
            .clone()
            .or_else(|| Some(o.bench.ready.clone())),
        latency_requests: o.bench.latency_requests,
        engines,
    })
}

fn from_bench(b: BenchResult) -> EngineReport {
    EngineReport {
        engine: EngineKind::Local,
        not_measured: None,
        speedup: Some(b.speedup),
        cold_ms: Some(b.cold_ms),
        restore_ms: Some(b.restore_ms),
        checkpoint_ms: Some(b.dump_ms),
        checkpoint_what: "criu dump of the warm JVM".into(),
        sizes: Sizes {
            checkpoint_bytes: Some(b.checkpoint_bytes + b.saved_files_bytes),
            ..Default::default()
        },
        latency: Some(Latency {
            url: b.latency_url.unwrap_or_default(),
            cold_first_ms: b.cold_first_ms,
            restored_first_ms: b.restored_first_ms,
            steady_ms: b.steady_ms,
        }),
        notes: vec![
            "cold: launch of the command → first 2xx; restored: start of the restore → first 2xx"
                .into(),
            format!(
                "checkpoint files: {} bytes of CRIU images and {} bytes of files saved with the checkpoint (scratch files put back before each restore)",
                b.checkpoint_bytes, b.saved_files_bytes
            ),
        ],
    }
}

/// A container engine's entry: its measurement, or why it was not measured.
fn container_engine(kind: EngineKind, o: &ReportOptions, progress: &dyn Progress) -> EngineReport {
    let measured = Engine::parse(kind.name())
        .map_err(|e| e.to_string())
        .and_then(|engine| container::run(&engine, &o.bench, &o.cracin_binary, progress));
    match measured {
        Ok(r) => from_container(kind, &o.bench, r),
        Err(why) => EngineReport::not_measured(kind, why),
    }
}

fn from_container(kind: EngineKind, b: &BenchOptions, r: ContainerResult) -> EngineReport {
    let mut notes = vec![format!(
        "images built by `cracin build`'s plan on {} (runtime criu); cold: `{kind} run -d` of the application image → first 2xx; restored: `{kind} run -d {}` of the restore image → first 2xx",
        r.base_image,
        r.restore_flags.join(" ")
    )];
    if !r.image_jvm.is_empty() {
        notes.push(format!("JVM inside the images: {}", r.image_jvm));
    }
    if b.warmup.is_some() {
        notes.push("the in-container checkpoint warms up with `cracin checkpoint`'s default request count (the warm-up URLs are passed on, the count is not)".into());
    }
    if !r.criu_restore_ms.is_empty() {
        notes.push(format!(
            "criu restore inside the container took {:.0} ms (median; from the restore containers' logs)",
            median(&r.criu_restore_ms)
        ));
    }
    EngineReport {
        engine: kind,
        not_measured: None,
        speedup: (r.restore_ms.median > 0.0).then(|| r.cold_ms.median / r.restore_ms.median),
        cold_ms: Some(r.cold_ms),
        restore_ms: Some(r.restore_ms),
        checkpoint_ms: r.checkpoint_ms,
        checkpoint_what: "the checkpoint container: start, ready, warm-up, criu dump".into(),
        sizes: Sizes {
            base_image_bytes: r.base_image_bytes,
            app_image_bytes: r.app_image_bytes,
            restore_image_bytes: r.restore_image_bytes,
            checkpoint_bytes: r.checkpoint_bytes,
        },
        latency: (!r.cold_first_ms.is_empty()).then_some(Latency {
            url: r.latency_url,
            cold_first_ms: r.cold_first_ms,
            restored_first_ms: r.restored_first_ms,
            steady_ms: r.steady_ms,
        }),
        notes,
    }
}

/// `java -version` of the command's java (when no local run told us the JVM).
fn java_version(command: &[String]) -> String {
    let java = command.first().cloned().unwrap_or_else(|| "java".into());
    match crate::os::cmd::Cmd::new(&java)
        .arg("-version")
        .timeout(std::time::Duration::from_secs(20))
        .run_unchecked()
    {
        Ok(out) => out.stderr.lines().next().unwrap_or("").trim().to_string(),
        Err(_) => String::new(),
    }
}

/// The three files of a report.
pub struct Written {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub svg: PathBuf,
}

/// Writes `report.md`, `report.json` and `report.svg` into `dir` (created if needed).
pub fn write(r: &Report, dir: &Path) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let w = Written {
        markdown: dir.join("report.md"),
        json: dir.join("report.json"),
        svg: dir.join("report.svg"),
    };
    let json = serde_json::to_string_pretty(r)
        .map_err(|e| Error::io(&w.json, std::io::Error::other(e)))?;
    for (p, text) in [
        (&w.markdown, markdown::render(r)),
        (&w.json, json + "\n"),
        (&w.svg, svg::render(r)),
    ] {
        std::fs::write(p, text).map_err(|e| Error::io(p, e))?;
    }
    Ok(w)
}

/// A fixed report for rendering tests and examples: figures of the kind the OSGi application
/// gives on a 2-core host, with 100-request latency series shaped like real ones.
pub fn sample() -> Report {
    let series = |first: f64, tail: f64, decay: f64| -> Vec<f64> {
        (0..100)
            .map(|i| {
                tail + (first - tail) * (-(i as f64) / decay).exp()
                    + 0.05 * ((i * 7 % 11) as f64) / 11.0
            })
            .collect()
    };
    let local = EngineReport {
        engine: EngineKind::Local,
        not_measured: None,
        cold_ms: Some(Stats::of(&[2410.0, 2388.5, 2502.0, 2377.0, 2450.0])),
        restore_ms: Some(Stats::of(&[121.0, 118.0, 130.5, 117.0, 125.0])),
        speedup: Some(2410.0 / 121.0),
        checkpoint_ms: Some(212.0),
        checkpoint_what: "criu dump of the warm JVM".into(),
        sizes: Sizes {
            checkpoint_bytes: Some(61_000_000),
            ..Default::default()
        },
        latency: Some(Latency {
            url: "http://127.0.0.1:8080/modify/fubar".into(),
            cold_first_ms: series(180.0, 0.9, 8.0),
            restored_first_ms: series(3.0, 0.5, 3.0),
            steady_ms: series(0.45, 0.4, 1.0),
        }),
        notes: vec![],
    };
    let podman = EngineReport {
        engine: EngineKind::Podman,
        not_measured: None,
        cold_ms: Some(Stats::of(&[3100.0, 3050.0, 3200.0, 2990.0, 3150.0])),
        restore_ms: Some(Stats::of(&[480.0, 470.0, 500.0, 465.0, 490.0])),
        speedup: Some(3100.0 / 480.0),
        checkpoint_ms: Some(5200.0),
        checkpoint_what: "checkpoint container: start, ready, warm-up, dump".into(),
        sizes: Sizes {
            base_image_bytes: Some(346_000_000),
            app_image_bytes: Some(372_000_000),
            restore_image_bytes: Some(435_000_000),
            checkpoint_bytes: Some(62_000_000),
        },
        latency: None,
        notes: vec![],
    };
    Report {
        date: "2026-11-27T06:00:00Z".into(),
        machine: Machine {
            cpu_model: "AMD EPYC 7B13".into(),
            cores: 2,
            kernel: "6.18.0".into(),
            load_at_start: Some(1.5),
            load_at_end: Some(2.25),
        },
        criu: "4.2.1".into(),
        jvm: "17.0.13".into(),
        command: vec!["java".into(), "-jar".into(), "app.jar".into()],
        ready: "http://127.0.0.1:8080/health".into(),
        warmup: vec!["http://127.0.0.1:8080/modify/fubar".into()],
        warmup_requests: 1000,
        runs: 5,
        latency_url: Some("http://127.0.0.1:8080/modify/fubar".into()),
        latency_requests: 100,
        engines: vec![
            local,
            podman,
            EngineReport::not_measured(
                EngineKind::Docker,
                "cracin's dockerd is not running (scripts/dockerd.sh start)",
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse() {
        assert_eq!(
            parse_engines("local, podman,local").unwrap(),
            vec![EngineKind::Local, EngineKind::Podman]
        );
        assert!(parse_engines("lxc").is_err());
        assert!(parse_engines(",").is_err());
    }

    #[test]
    fn a_container_measurement_becomes_its_entry_with_notes() {
        let r = ContainerResult {
            cold_ms: Stats::of(&[3000.0, 3200.0]),
            restore_ms: Stats::of(&[400.0, 400.0]),
            checkpoint_ms: Some(5000.0),
            base_image: "localhost/cracin-base:jdk21".into(),
            base_image_bytes: Some(1),
            app_image_bytes: Some(2),
            restore_image_bytes: Some(3),
            checkpoint_bytes: None,
            image_jvm: String::new(),
            restore_flags: vec!["--cap-add=CHECKPOINT_RESTORE".into()],
            criu_restore_ms: vec![90.0, 100.0, 200.0],
            latency_url: "http://127.0.0.1:8080/ (published port)".into(),
            cold_first_ms: vec![],
            restored_first_ms: vec![],
            steady_ms: vec![],
        };
        let b = BenchOptions {
            command: vec!["java".into()],
            cwd: "/".into(),
            ready: "http://127.0.0.1:8080/".into(),
            ready_timeout: std::time::Duration::from_secs(1),
            runs: 2,
            warmup: None,
            latency_url: None,
            latency_requests: 0,
            compare_untuned: false,
            criu: None,
            lazy_pages: false,
            work_dir: None,
            cracin_exe: None,
            plain_criu: false,
            aot_jdk: None,
        };
        let e = from_container(EngineKind::Podman, &b, r);
        assert_eq!(e.engine, EngineKind::Podman);
        assert_eq!(e.speedup, Some(3100.0 / 400.0));
        assert_eq!(e.sizes.restore_image_bytes, Some(3));
        assert!(e.latency.is_none(), "no requests timed, no latency entry");
        assert_eq!(e.notes.len(), 2, "{:?}", e.notes);
        assert!(e.notes[0].contains(
            "restored: `podman run -d --cap-add=CHECKPOINT_RESTORE` of the restore image"
        ));
        assert!(e.notes[1].contains("took 100 ms (median"), "{}", e.notes[1]);
    }

    #[test]
    fn a_report_serializes_with_its_figures() {
        let j = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            j["engines"][0]["latency"]["cold_first_ms"]
                .as_array()
                .unwrap()
                .len(),
            100
        );
        assert_eq!(
            j["engines"][2]["not_measured"],
            "cracin's dockerd is not running (scripts/dockerd.sh start)"
        );
        assert_eq!(j["runs"], 5);
    }
}
