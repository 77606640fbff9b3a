//! Application options shared by `checkpoint`, `bench` and `report`: the command after `--`,
//! readiness, warm-up and heap shrinking.

use std::path::PathBuf;
use std::time::Duration;

use cracin_core::stage::warmup::WarmupSpec;

#[derive(clap::Args, Debug, Clone)]
pub struct AppArgs {
    /// When the application is ready: an HTTP(S) URL that answers 2xx, tcp://HOST:PORT that
    /// accepts a connection, or log:REGEX matched against the application's output.
    #[arg(long, value_name = "PROBE")]
    pub ready: Option<String>,

    /// How long to wait for readiness, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = super::ranges::timeout)]
    pub ready_timeout: f64,

    /// URL to send warm-up requests to before the checkpoint (repeatable; requests go round-robin).
    #[arg(long, value_name = "URL")]
    pub warmup: Vec<String>,

    /// Number of warm-up requests (0 to 10000000).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = super::ranges::count::<0, 10_000_000>)]
    pub warmup_requests: usize,

    /// Warm-up requests in flight at once (1 to 256).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = super::ranges::count::<1, 256>)]
    pub warmup_concurrency: usize,

    /// Do not shrink the heap: no small initial heap, no lowered free ratios (images get
    /// larger).
    #[arg(long)]
    pub no_shrink: bool,

    /// Do not wait for the JIT, run a full GC and trim the native heap (attach API:
    /// Compiler.queue, GC.run, System.trim_native_heap) right before the dump.
    #[arg(long)]
    pub no_gc: bool,

    /// Extra JVM option, added through JAVA_TOOL_OPTIONS (repeatable).
    #[arg(long = "java-option", value_name = "OPT", allow_hyphen_values = true)]
    pub java_options: Vec<String>,

    /// The criu binary (default: $CRACIN_CRIU, then PATH, then /usr/local/sbin/criu).
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,

    /// The command that starts the application, after `--` (e.g. -- java -jar app.jar).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl AppArgs {
    pub fn ready_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.ready_timeout)
    }

    pub fn warmup_spec(&self) -> Option<WarmupSpec> {
        (!self.warmup.is_empty()).then(|| WarmupSpec {
            urls: self.warmup.clone(),
            requests: self.warmup_requests,
            concurrency: self.warmup_concurrency.max(1),
        })
    }
}
