//! `cracin restore`: bring a checkpoint back and wait until it is ready.
use std::path::PathBuf;
use std::time::Duration;

use cracin_core::local::{self, RestoreOptions};
use cracin_core::Result;

use crate::render::Steps;

/// Restore a checkpoint written by `cracin checkpoint` and wait until the application is ready.
///
/// By default the restored application runs detached and cracin prints its PID and the time from
/// the start of the restore to readiness. With --foreground cracin stays attached, forwards
/// SIGTERM and SIGINT (Ctrl-C) to the application, and exits with its exit status. Before
/// restoring, cracin checks CRIU against the kernel, the CPU features against the checkpoint
/// host's, and that the ports the application listened on are free. The restored application's
/// output goes to DIR/restores/<time>-<pid>/app.stdout and app.stderr.
#[derive(clap::Args)]
pub struct Args {
    /// The checkpoint directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Readiness probe (default: the one recorded at checkpoint time).
    #[arg(long, value_name = "PROBE")]
    pub ready: Option<String>,

    /// How long to wait for readiness, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub ready_timeout: f64,

    /// Do not wait for readiness.
    #[arg(long, conflicts_with = "ready")]
    pub no_wait: bool,

    /// Stay attached, forward SIGTERM/SIGINT, and exit with the application's status.
    #[arg(long)]
    pub foreground: bool,

    /// Restore even if this CPU lacks features the checkpoint host had.
    #[arg(long)]
    pub force: bool,

    /// The criu binary (default: $CRACIN_CRIU, then PATH).
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,

    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let mut o = RestoreOptions::new(a.dir.clone());
    o.ready = a.ready.clone();
    o.ready_timeout = Duration::from_secs_f64(a.ready_timeout.max(0.1));
    o.no_wait = a.no_wait;
    o.foreground = a.foreground;
    o.force = a.force;
    o.criu = a.criu.clone();
    if a.foreground {
        local::block_stop_signals()?;
    }
    let r = local::restore(&o, &Steps::new(!a.foreground || a.json))?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "pid": r.pid,
                "ready_ms": r.ready_ms,
                "criu_ms": r.criu_ms,
                "log_dir": r.log_dir,
                "stdout": r.stdout,
                "stderr": r.stderr,
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
        return local::wait_foreground(r.pid);
    }
    Ok(0)
}
