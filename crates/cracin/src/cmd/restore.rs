//! `cracin restore`: bring a checkpoint back and wait until it is ready.
use std::path::PathBuf;
use std::time::Duration;

use cracin_core::jvm::individual;
use cracin_core::local::{self, cold, RestoreOptions};
use cracin_core::Result;

use crate::render::Steps;

/// Restore a checkpoint written by `cracin checkpoint` and wait until the application is ready.
///
/// By default the restored application runs detached and cracin prints its PID and the time from
/// the start of the cracin process to readiness (--timings: where that time went). With --foreground cracin stays attached, forwards
/// SIGTERM and SIGINT (Ctrl-C) to the application, and exits with its exit status. Before
/// restoring, cracin checks CRIU against the kernel, the CPU against the features the checkpoint
/// needs (every feature of the checkpoint host, or only those of its --cpu-baseline), and that
/// the ports the application listened on are free; it puts back the files saved with the
/// checkpoint that are missing or different (never under a process holding them), and refuses
/// (exit 6) when a data file the application held open changed since the checkpoint
/// (docs/files.md), when the checkpoint is owned or writable by another user, or when its small
/// image files changed since the dump (`cracin check DIR` verifies the memory pages too). The
/// restored application's output goes to DIR/restores/<time>-<pid>/app.stdout and app.stderr
/// (private, 0700/0600).
///
/// Before any Java thread runs again, cracin's agent renews the random state the JDK seeded
/// itself (unless the checkpoint was taken with --no-renew) and applies --env and --property;
/// see `cracin checkpoint --help` and docs/individual.md.
///
/// CRIU runs with its kernel-feature cache for this boot and with `CRIU_FAULT=130`, CRIU's
/// no-breakpoints restore (it stops the restored threads without writing their debug registers,
/// which costs ~0.5 ms per thread under a hypervisor). To measure these levers:
/// CRACIN_NO_KDAT_CACHE=1, CRACIN_CRIU_BREAKPOINTS=1, CRACIN_NO_READAHEAD=1
/// (docs/restore-floor.md).
#[derive(clap::Args)]
pub struct Args {
    /// The checkpoint directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Readiness probe (default: the one recorded at checkpoint time).
    #[arg(long, value_name = "PROBE")]
    pub ready: Option<String>,

    /// How long to wait for readiness, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = super::ranges::timeout)]
    pub ready_timeout: f64,

    /// How long to wait for another restore on this host to finish (one restore at a time
    /// checks ports and runs CRIU), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = super::ranges::timeout)]
    pub lock_timeout: f64,

    /// Do not wait for readiness.
    #[arg(long, conflicts_with = "ready")]
    pub no_wait: bool,

    /// Stay attached, forward SIGTERM/SIGINT, and exit with the application's status.
    #[arg(long)]
    pub foreground: bool,

    /// Restore even if this CPU lacks features the checkpoint needs (those of its
    /// --cpu-baseline, or every feature of the checkpoint host for `host`).
    #[arg(long)]
    pub force: bool,

    /// The criu binary (default: $CRACIN_CRIU, then PATH).
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,

    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Print where the time went: cracin's checks, the kdat cache, CRIU's phases (from the
    /// timestamps of its log) and the wait for the first answer (on stderr; in --json as
    /// "timings").
    #[arg(long)]
    pub timings: bool,

    /// Restore memory lazily: a `criu lazy-pages` daemon fills pages on first touch
    /// (userfaultfd) and copies the rest in the background; a faster first answer for large
    /// checkpoints.
    #[arg(long)]
    pub lazy_pages: bool,

    /// The restore entrypoint of an image made by `cracin build` (PID 1 of the container):
    /// stays attached, the application writes to the container's stdout/stderr, and signals
    /// are forwarded.
    #[arg(long)]
    pub in_container: bool,

    /// Write the application's output to cracin's own stdout/stderr (implied by --in-container).
    #[arg(long)]
    pub inherit_stdio: bool,

    /// If the restore fails, say why in one line and start the application cold instead (the
    /// command after `--`, else the one recorded in the checkpoint).
    #[arg(long)]
    pub fallback: bool,

    /// Set an environment variable in the restored JVM: System.getenv("KEY") returns VALUE
    /// before any thread runs again (before org.crac afterRestore). Values the application read
    /// and kept before the checkpoint do not change. Repeatable. With --in-container the
    /// container's own environment (`podman run -e`) is applied too.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Set a system property in the restored JVM: System.getProperty("KEY") returns VALUE
    /// before any thread runs again. Repeatable.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub property: Vec<String>,

    /// The command for --fallback.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let mut o = RestoreOptions::new(a.dir.clone());
    o.ready = a.ready.clone();
    o.ready_timeout = Duration::from_secs_f64(a.ready_timeout);
    o.no_wait = a.no_wait;
    o.foreground = a.foreground;
    o.force = a.force;
    o.criu = a.criu.clone();
    o.lazy_pages = a.lazy_pages;
    o.lock_timeout = Duration::from_secs_f64(a.lock_timeout);
    o.config = restore_config(&a)?;
    let foreground = a.foreground || a.in_container;
    o.foreground = foreground;
    o.inherit_stdio = a.in_container || a.inherit_stdio;
    if a.in_container {
        // No readiness wait unless asked: the container's own health check decides.
        o.no_wait = o.ready.is_none();
    }
    if foreground {
        cracin_core::os::signals::block_stop_signals()?;
    }
    let r = match local::restore(&o, &Steps::new(foreground || a.json)) {
        Ok(r) => r,
        Err(e) if a.fallback => return cold_start(&a.dir, &a.command, &e),
        Err(e) => return Err(e),
    };
    if a.timings {
        print_timings(&r.timings);
    }
    if a.in_container {
        eprintln!(
            "cracin: restored in {:.0} ms (pid {})",
            r.ready_ms.unwrap_or(r.criu_ms),
            r.pid
        );
        return cracin_core::os::signals::wait_foreground(r.pid);
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "pid": r.pid,
                "ready_ms": r.ready_ms,
                "criu_ms": r.criu_ms,
                "renew_ms": r.renew_ms,
                "log_dir": r.log_dir,
                "stdout": r.stdout,
                "stderr": r.stderr,
                "timings": r.timings,
            })
        );
    } else {
        match r.ready_ms {
            Some(t) => println!("restored, ready in {t:.0} ms (pid {})", r.pid),
            None => println!("restored in {:.0} ms (pid {})", r.criu_ms, r.pid),
        }
        println!("output: {}", r.log_dir.display());
    }
    if a.foreground {
        return cracin_core::os::signals::wait_foreground(r.pid);
    }
    Ok(0)
}

/// --env and --property; in a container also the container's environment (the flags win).
fn restore_config(a: &Args) -> Result<individual::Config> {
    let mut c = individual::Config::default();
    if a.in_container {
        c.env = std::env::vars().collect();
    }
    for e in &a.env {
        let (k, v) = individual::parse_assignment(e, true)?;
        c.env.retain(|(old, _)| *old != k);
        c.env.push((k, v));
    }
    for p in &a.property {
        c.properties.push(individual::parse_assignment(p, false)?);
    }
    Ok(c)
}

/// One line per phase, on stderr (stdout stays the result), with the total.
fn print_timings(phases: &[cracin_core::measure::Phase]) {
    eprintln!("where the time went (from the start of cracin):");
    for p in phases {
        if p.detail.is_empty() {
            eprintln!("  {:>8.1} ms  {}", p.ms, p.name);
        } else {
            eprintln!("  {:>8.1} ms  {} ({})", p.ms, p.name, p.detail);
        }
    }
    let total: f64 = phases.iter().map(|p| p.ms).sum();
    eprintln!("  {total:>8.1} ms  total");
}

/// The fallback when a restore fails (as Open Liberty does): one line saying why, then the
/// application's own command, started cold in place of cracin.
fn cold_start(dir: &std::path::Path, command: &[String], why: &cracin_core::Error) -> Result<i32> {
    eprintln!("cracin: restore failed: {why}; starting the application cold");
    for l in cold::reason_lines(why) {
        eprintln!("cracin:   {l}");
    }
    let start = cold::plan(dir, command);
    let Some(prog) = start.argv.first() else {
        eprintln!(
            "cracin: no command recorded in {}: cannot start cold",
            dir.display()
        );
        return Ok(cracin_core::error::exit::RESTORE);
    };
    let err = cold::exec(&start);
    eprintln!("cracin: cannot start {prog}: {err}");
    Ok(cracin_core::error::exit::RESTORE)
}
