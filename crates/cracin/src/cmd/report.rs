//! `cracin report`: what a checkpoint costs and buys for the user's application, measured on
//! the engines asked for, written as report.md, report.json and report.svg.
use std::path::PathBuf;

use cracin_core::os::text::human_bytes;
use cracin_core::report::{self, ReportOptions};
use cracin_core::Result;

use super::app_args::AppArgs;
use crate::render::Steps;

/// Measure what a checkpoint costs and buys, and write it up: report.md, report.json, report.svg.
///
/// For each engine (local, and podman/docker when listed and set up) it measures time to the
/// first HTTP 2xx cold versus restored (median of --runs runs each), checkpoint and restore
/// durations, sizes (base, application and restore images, checkpoint files) and the latency of
/// each of the first --latency-requests requests after a cold start and after a restore, next
/// to steady state. An engine that cannot be measured here is listed as "not measured" with the
/// reason.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for report.md, report.json and report.svg (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Engines to measure, comma-separated: local, podman, docker.
    #[arg(long, value_name = "LIST", default_value = "local")]
    pub engine: String,

    /// Cold starts and restores per engine; every figure is their median (at least 5 for a
    /// report worth publishing; fewer is allowed for tests and says so).
    #[arg(long, default_value_t = 5, value_parser = super::ranges::count::<1, 1000>)]
    pub runs: usize,

    /// URL whose first requests are timed after each start (default: the --ready URL).
    #[arg(long, value_name = "URL")]
    pub latency_url: Option<String>,

    /// How many first requests to time.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = super::ranges::count::<1, 100_000>)]
    pub latency_requests: usize,

    #[command(flatten)]
    pub app: AppArgs,
}

pub fn run(a: Args) -> Result<i32> {
    let bench = super::bench::options(
        &a.app,
        "report",
        a.runs,
        a.latency_url.clone(),
        a.latency_requests,
    )?;
    let o = ReportOptions {
        bench,
        engines: report::parse_engines(&a.engine)?,
        cracin_binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cracin")),
    };
    let r = report::measure(&o, &Steps::new(false))?;
    let w = report::write(&r, &a.out)?;
    println!(
        "report written:\n  {}\n  {}\n  {}",
        w.markdown.display(),
        w.json.display(),
        w.svg.display()
    );
    println!("\nmedians of {} runs:", r.runs);
    for e in &r.engines {
        match (&e.not_measured, &e.cold_ms, &e.restore_ms) {
            (Some(why), _, _) => println!("  {:<7} not measured: {why}", e.engine),
            (None, Some(c), Some(rs)) => {
                let mut line = format!(
                    "  {:<7} cold {:.0} ms, restored {:.0} ms ({:.1}x)",
                    e.engine,
                    c.median,
                    rs.median,
                    e.speedup.unwrap_or(0.0)
                );
                if let Some(b) = e.sizes.checkpoint_bytes {
                    line += &format!(", checkpoint {}", human_bytes(b));
                }
                if let Some(b) = e.sizes.restore_image_bytes {
                    line += &format!(", restore image {}", human_bytes(b));
                }
                if let Some(l) = &e.latency {
                    if let (Some(c1), Some(r1)) =
                        (l.cold_first_ms.first(), l.restored_first_ms.first())
                    {
                        line += &format!(", 1st request {c1:.1} ms cold vs {r1:.1} ms restored");
                    }
                }
                println!("{line}");
            }
            _ => println!("  {:<7} incomplete", e.engine),
        }
    }
    Ok(0)
}
