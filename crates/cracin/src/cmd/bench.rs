//! `cracin bench`: cold start versus restore, measured in one run.
use std::path::PathBuf;

use cracin_core::measure::local::{self, BenchOptions, BenchResult};
use cracin_core::Result;

use super::app_args::AppArgs;
use crate::render::Steps;
use cracin_core::measure::stats::{median, percentile, Stats};
use cracin_core::os::text::human_bytes;

/// Measure what a checkpoint buys: launch → first HTTP 2xx cold versus restore → first 2xx.
///
/// Starts the application cold --runs times, checkpoints it once (after --warmup), restores it
/// --runs times with the `cracin restore` command (timed from its exec), and prints
/// min/median/max of both and the ratio of the medians, the checkpoint size, and the latency of
/// the first --latency-requests requests after a cold start and after a restore next to steady
/// state. --plain-criu adds a plain `criu restore` of the same images (in turn with each
/// restore); --aot-jdk adds cold starts on a JDK 25 without and with a Leyden AOT cache. Speed
/// claims come from this command, never from tests.
#[derive(clap::Args)]
pub struct Args {
    /// Cold starts and restores to measure (each).
    #[arg(long, default_value_t = 5, value_parser = super::ranges::count::<1, 1000>)]
    pub runs: usize,

    /// URL whose first requests are timed after each start (default: the --ready URL).
    #[arg(long, value_name = "URL")]
    pub latency_url: Option<String>,

    /// How many first requests to time.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = super::ranges::count::<1, 100_000>)]
    pub latency_requests: usize,

    /// Also checkpoint with --no-shrink --no-gc and report its size.
    #[arg(long)]
    pub compare_untuned: bool,

    /// Restore with lazy pages (`cracin restore --lazy-pages`).
    #[arg(long)]
    pub lazy_pages: bool,

    /// Also time a plain `criu restore` of the same images (the command line cracin runs, without
    /// cracin around it, plus the resume hand-shake with cracin's agent that the checkpointed JVM
    /// waits for), in turn with each restore.
    #[arg(long)]
    pub plain_criu: bool,

    /// Also time cold starts on this JDK 25 (its home directory) without and with a Leyden AOT
    /// cache made by a training run (-XX:AOTCacheOutput, warmed up like the checkpoint).
    #[arg(long, value_name = "JDK_HOME")]
    pub aot_jdk: Option<PathBuf>,

    /// Print the full result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub app: AppArgs,
}

/// The application's options as `bench` and `report` share them: its command run here, its
/// --ready URL (which `command` needs), the runs and the timed requests; restores timed as this
/// binary's `restore` command.
pub fn options(
    app: &AppArgs,
    command: &str,
    runs: usize,
    latency_url: Option<String>,
    latency_requests: usize,
) -> Result<BenchOptions> {
    let ready = app.ready.clone().ok_or_else(|| {
        cracin_core::Error::usage(
            format!("{command} needs --ready URL"),
            "pass --ready http://127.0.0.1:PORT/PATH",
        )
    })?;
    Ok(BenchOptions {
        command: app.command.clone(),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        ready,
        ready_timeout: app.ready_timeout(),
        runs,
        warmup: app.warmup_spec(),
        latency_url,
        latency_requests,
        compare_untuned: false,
        criu: app.criu.clone(),
        work_dir: None,
        lazy_pages: false,
        cracin_exe: std::env::current_exe().ok(),
        plain_criu: false,
        aot_jdk: None,
    })
}

pub fn run(a: Args) -> Result<i32> {
    let o = BenchOptions {
        compare_untuned: a.compare_untuned,
        lazy_pages: a.lazy_pages,
        plain_criu: a.plain_criu,
        aot_jdk: a.aot_jdk.clone(),
        ..options(
            &a.app,
            "bench",
            a.runs.max(1),
            a.latency_url.clone(),
            a.latency_requests,
        )?
    };
    let r = local::run(&o, &Steps::new(a.json))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        print!("{}", text(&r));
    }
    Ok(0)
}

/// The human-readable benchmark table.
pub fn text(r: &BenchResult) -> String {
    let mut s = String::new();
    s += &format!(
        "date: {}\nmachine: {}, Linux {}, CRIU {}, JVM {}\n",
        r.date, r.machine, r.kernel, r.criu, r.jvm
    );
    s += &format!("command: {}\n\n", r.command.join(" "));
    s += &format!(
        "{:<34} {:>8} {:>8} {:>8}\n",
        format!("to first HTTP 2xx ({} runs each)", r.runs),
        "min",
        "median",
        "max"
    );
    s += &format!(
        "{:<34} {:>6.0}ms {:>6.0}ms {:>6.0}ms\n",
        "cold start", r.cold_ms.min, r.cold_ms.median, r.cold_ms.max
    );
    let row = |name: &str, st: &Stats| {
        format!(
            "{:<34} {:>6.0}ms {:>6.0}ms {:>6.0}ms\n",
            name, st.min, st.median, st.max
        )
    };
    if let (Some(j), Some(a)) = (&r.jdk_cold_ms, &r.aot_cold_ms) {
        s += &row("cold start, JDK 25 (--aot-jdk)", j);
        s += &row("cold start, JDK 25 + AOT cache", a);
    }
    if let Some(e) = &r.aot_error {
        s += &format!(
            "{:<34} {}\n",
            "cold start, JDK 25 (--aot-jdk)",
            e.lines().next().unwrap_or("")
        );
    }
    s += &row("cracin restore", &r.restore_ms);
    if let Some(p) = &r.plain_criu_ms {
        s += &row("plain criu restore, same images", p);
    }
    s += &format!("restore is {:.1}x faster (ratio of medians)\n", r.speedup);
    if let Some(p) = &r.plain_criu_ms {
        s += &format!(
            "cracin restore / plain criu restore: {:.2} (ratio of medians)\n",
            r.restore_ms.median / p.median.max(f64::MIN_POSITIVE)
        );
    }
    s += &format!("restores timed as {}\n\n", r.restore_timed_as);
    s += &format!(
        "checkpoint: {} (dump {:.0} ms)",
        human_bytes(r.checkpoint_bytes),
        r.dump_ms
    );
    if let Some(u) = r.untuned_checkpoint_bytes {
        s += &format!(
            ", untuned {} ({:.0}% of untuned)",
            human_bytes(u),
            100.0 * r.checkpoint_bytes as f64 / u as f64
        );
    }
    if r.saved_files_bytes > 0 {
        s += &format!(
            "; files saved with it: {}",
            human_bytes(r.saved_files_bytes)
        );
    }
    s += "\n";
    if !r.cold_first_ms.is_empty() {
        s += &format!(
            "\nlatency of the first {} requests to {}:\n",
            r.cold_first_ms.len(),
            r.latency_url.as_deref().unwrap_or("")
        );
        s += &format!(
            "{:<22} {:>9} {:>9} {:>9} {:>9}\n",
            "", "first", "median", "p90", "sum"
        );
        for (name, v) in [
            ("after cold start", &r.cold_first_ms),
            ("after restore", &r.restored_first_ms),
            ("steady state", &r.steady_ms),
        ] {
            s += &format!(
                "{:<22} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.0}ms\n",
                name,
                v.first().copied().unwrap_or(0.0),
                median(v),
                percentile(v, 0.9),
                v.iter().sum::<f64>()
            );
        }
    }
    s
}
