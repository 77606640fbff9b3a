//! `cracin verify`: the uniqueness check of a checkpoint directory or an image (the logic is in
//! `cracin_core::verify`).
use std::path::PathBuf;
use std::time::Duration;

use cracin_core::container::Runtime;
use cracin_core::verify::{self, image::ImageOptions, local::LocalOptions, Report, Verdict};
use cracin_core::{Error, Result};

use crate::render::Steps;

/// Check that every restored instance is its own individual: no two hand out the same session
/// IDs, tokens or nonces.
///
/// cracin restores the checkpoint twice, sends each --url to each instance (--rounds times, 2 by
/// default), and compares what looks random in the answers: Set-Cookie values, UUIDs, long hex
/// and base64/base64url tokens in headers and bodies, JSON string values and long numbers. A
/// value that is new on every request inside one instance but comes back in the other instance
/// was made by a generator frozen in the checkpoint (SHA1PRNG, new Random(), Math.random() used
/// before it, or one seeded with a fixed value): the check fails with exit code 8 and names the
/// URL, the header or JSON field, the likely cause and the fix. Values that are the same on
/// every request and in both instances are constants and are not flagged (a value computed once
/// before the checkpoint looks the same and is not caught either).
///
/// DIR: a checkpoint of `cracin checkpoint`; the two instances run one after the other (both
/// would listen on the checkpoint's port on this host). IMAGE with --engine: an image of
/// `cracin build`; two containers run at the same time with the production run flags, each on
/// its own free loopback port, and must really restore (a cold-start fallback fails). Every
/// instance is stopped with SIGTERM afterwards (SIGKILL only if it does not end in time).
///
/// URLs: a path (/login) goes to the application's port (the checkpoint's recorded probe port,
/// or the container's application port); an absolute URL is used as it is for DIR and is mapped
/// to the published port for IMAGE (give it as seen inside the container). Requests are GETs
/// without cookies; redirects are not followed.
///
/// Example: cracin verify ./ckpt --url /login --url /api/token
///          cracin verify myapp:instant --engine podman --url http://127.0.0.1:8080/login
#[derive(clap::Args)]
pub struct Args {
    /// The checkpoint directory, or the image with --engine.
    #[arg(value_name = "DIR|IMAGE")]
    pub target: String,

    /// A URL whose answer carries session IDs or tokens (repeatable).
    #[arg(long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,

    /// TARGET is an image of this engine: podman or docker.
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,

    /// The engine's configuration instead of its own (as for `cracin build`): a containers.conf
    /// for podman, a client configuration directory (DOCKER_CONFIG) for docker.
    #[arg(long, value_name = "PATH", requires = "engine")]
    pub engine_config: Option<PathBuf>,

    /// The image's runtime (its restore containers' flags): criu, crac or openj9.
    #[arg(
        long,
        default_value = "criu",
        value_name = "RUNTIME",
        requires = "engine"
    )]
    pub runtime: String,

    /// The application's port inside the container (default: from the URLs, --ready, or the
    /// image's EXPOSE).
    #[arg(long, value_name = "PORT", requires = "engine")]
    pub port: Option<u16>,

    /// Readiness probe (DIR: default the recorded one; IMAGE: as seen inside the container,
    /// default the first URL answering at all).
    #[arg(long, value_name = "PROBE")]
    pub ready: Option<String>,

    /// How long each instance may take to become ready, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub ready_timeout: f64,

    /// How many times each URL goes to each instance (2 or more).
    #[arg(long, value_name = "N", default_value_t = verify::DEFAULT_ROUNDS)]
    pub rounds: u32,

    /// How long an instance may take to end after SIGTERM before it is killed, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub stop_timeout: f64,

    /// The criu binary (DIR; default: $CRACIN_CRIU, then PATH).
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Set when a stop signal arrived: the signal thread owns the exit from then on.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set when the check returned (its instances gone, it writes no more logs).
static CHECK_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn run(a: Args) -> Result<i32> {
    stop_instances_on_signal()?;
    let result = check(&a);
    CHECK_DONE.store(true, std::sync::atomic::Ordering::SeqCst);
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        // The check failed because its instances are being stopped: let the signal thread
        // finish that and exit, instead of exiting under it with the check's error.
        loop {
            std::thread::park();
        }
    }
    result
}

fn check(a: &Args) -> Result<i32> {
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.1, 86_400.0));
    let progress = Steps::new(a.json);
    let report = match &a.engine {
        Some(engine) => {
            let o = ImageOptions {
                engine: cracin_core::container::engine::choose_here(
                    engine,
                    a.engine_config.as_deref(),
                )?
                .engine,
                image: a.target.clone(),
                runtime: Runtime::parse(&a.runtime)?,
                urls: a.urls.clone(),
                rounds: a.rounds,
                ready: a.ready.clone(),
                port: a.port,
                ready_timeout: secs(a.ready_timeout),
                stop_timeout: secs(a.stop_timeout),
                id: cracin_core::os::id::unique_id(),
            };
            verify::image::verify(&o, &progress)?
        }
        None => {
            let dir = PathBuf::from(&a.target);
            if !dir.is_dir() {
                return Err(Error::usage(
                    format!("{} is not a checkpoint directory", a.target),
                    "give a directory written by `cracin checkpoint`, or an image of `cracin build` with --engine podman|docker",
                ));
            }
            let mut o = LocalOptions::new(dir, a.urls.clone());
            o.rounds = a.rounds;
            o.ready = a.ready.clone();
            o.ready_timeout = secs(a.ready_timeout);
            o.stop_timeout = secs(a.stop_timeout);
            o.criu = a.criu.clone();
            verify::local::verify(&o, &progress)?
        }
    };
    if a.json {
        let mut v = serde_json::to_value(&report).map_err(|e| Error::io("json", e.into()))?;
        v["passed"] = report.passed().into();
        v["compared"] = report.compared().into();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| Error::io("json", e.into()))?
        );
    } else {
        print!("{}", render(&report));
    }
    if report.compared() == 0 {
        eprintln!("warning: nothing in the answers changed from request to request or between instances: nothing was really compared; give URLs whose answers carry session IDs or tokens");
    }
    match report.failure() {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

/// The report for a human: the instances, one line per place, and the verdict.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "uniqueness check of {}: 2 instances, {} URL(s), each sent {} times to each\n",
        r.target,
        r.urls.len(),
        r.rounds
    );
    for i in &r.instances {
        let ready = i
            .ready_ms
            .map(|m| format!("ready after {m:.0} ms, "))
            .unwrap_or_default();
        let _ = writeln!(s, "  {}: {ready}stopped with {}", i.label, i.stopped);
    }
    for e in &r.error_answers {
        let _ = writeln!(s, "  note: error answer {e}");
    }
    for c in &r.checks {
        let short = |v: &str| {
            if v.len() > 24 {
                format!("{}…", &v[..24])
            } else {
                v.to_string()
            }
        };
        let (tag, text) = match &c.verdict {
            Verdict::Repeated { shared } => (
                "REPEATED",
                format!(
                    "{} came back in two instances",
                    shared
                        .iter()
                        .map(|v| short(v))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Verdict::Fresh => (
                "fresh",
                "new on every request, never the same in two instances".into(),
            ),
            Verdict::PerInstance => ("fresh", "one value per instance, different in each".into()),
            Verdict::Constant => (
                "constant",
                "the same everywhere (a constant, or made before the checkpoint): not judged"
                    .into(),
            ),
            Verdict::Unclear { why } => ("unclear", format!("{why}: not judged")),
        };
        let _ = writeln!(s, "{tag:<9} {} {}: {text}", c.url, c.field);
    }
    let repeated = r.repeated().count();
    if repeated > 0 {
        let _ = writeln!(
            s,
            "result: FAILED: {repeated} place(s) repeated in two instances ({} compared)",
            r.compared()
        );
    } else {
        let _ = writeln!(
            s,
            "result: passed: {} place(s) compared, none repeated",
            r.compared()
        );
    }
    s
}

/// Ctrl-C or SIGTERM to `cracin verify` stops the instances it has running before it exits
/// (128 + the signal), so an interrupted check leaves nothing behind. The signals are held back in every
/// thread and taken by one waiting thread; programs cracin starts get them unblocked.
fn stop_instances_on_signal() -> Result<()> {
    cracin_core::os::signals::block_stop_signals()?;
    std::thread::spawn(|| {
        let sig = verify::wait_for_stop_signal();
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("cracin verify: interrupted; stopping the instances it started");
        verify::stop_all_live();
        // The check fails once its instances are gone and may still write their logs as
        // evidence: give it a moment to return before its log directories go.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !CHECK_DONE.load(std::sync::atomic::Ordering::SeqCst)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        verify::remove_live_dirs();
        std::process::exit(128 + sig);
    });
    Ok(())
}
