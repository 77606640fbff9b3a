//! `cracin doctor`: can this machine checkpoint and restore a JVM?
use std::path::PathBuf;

use cracin_core::doctor::{self, DoctorOptions, Status};
use cracin_core::Result;

/// Check whether this machine can checkpoint and restore a JVM, and say what to fix.
///
/// Checks CRIU's version against the kernel (CRIU below 4.1 fails on Linux 6.13 and later,
/// below 4.2 on 6.16 and later), root and capabilities, /proc/sys/kernel/ns_last_pid, soft-dirty tracking, Yama's
/// ptrace_scope, seccomp, the JDK and free disk space against the expected checkpoint size; with
/// --engine also the engine's version and settings, with --runtime whether the JVM supports it.
/// Exits 3 when a check fails, that is when a checkpoint or build would fail.
#[derive(clap::Args)]
pub struct Args {
    /// The criu binary to check.
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// The java binary to check (default: java on PATH).
    #[arg(long, value_name = "PATH")]
    pub java: Option<PathBuf>,
    /// Also check this container engine: local (default), podman or docker.
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
    /// Also check that the JVM supports this runtime: criu (default), crac or openj9.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Where the checkpoint will be written (free space is checked there).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The expected checkpoint size in MB.
    #[arg(long, value_name = "MB", default_value_t = 200, value_parser = super::ranges::count64::<1, 1_000_000_000>)]
    pub expected_mb: u64,
    /// Print the checks as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let checks = doctor::run(&DoctorOptions {
        criu: a.criu,
        java: a.java,
        engine: a.engine,
        runtime: a.runtime,
        out: a.out,
        expected_mb: a.expected_mb,
    });
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).unwrap_or_default()
        );
    } else {
        for c in &checks {
            let tag = match c.status {
                Status::Pass => "pass",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{tag}  {:<12} {}", c.name, c.detail);
            if let Some(f) = &c.fix {
                if c.status != Status::Pass {
                    println!("      {:<12} fix: {f}", "");
                }
            }
        }
        let failed = doctor::failed(&checks);
        println!(
            "\n{}",
            if failed {
                "this machine cannot checkpoint yet: fix the FAIL lines above"
            } else {
                "this machine can checkpoint and restore JVMs"
            }
        );
    }
    Ok(if doctor::failed(&checks) {
        cracin_core::error::exit::ENVIRONMENT
    } else {
        0
    })
}
