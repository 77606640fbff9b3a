//! The local engine: checkpoint and restore on this host, no container engine. This module
//! holds the options and results of both and their entry points; the work is in named steps:
//! `checkpoint` (a `CheckpointRun`: launch the application in its own PID namespace, wait until
//! it is ready, warm it up, shrink what the heap leaves behind, dump it with CRIU, seal it and
//! put the checkpoint directory in place atomically), `restore` (a `RestoreRun`: check that this
//! host can take the checkpoint - CRIU, kernel, CPU features, free ports - restore it with CRIU
//! with fresh output files, renew the JVM, wait until it is ready again), and `cold` (the cold
//! start a failed restore falls back to).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ckpt::dir::{self, CheckpointDir, Manifest};
use crate::error::{Error, Result};
use crate::jvm::individual;
use crate::stage::criu::{Criu, CriuOptions};
use crate::stage::warmup::WarmupSpec;
use crate::Progress;

mod checkpoint;
pub mod cold;
mod restore;

/// Options of `cracin checkpoint`.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    pub command: Vec<String>,
    pub cwd: PathBuf,
    pub out: PathBuf,
    pub force: bool,
    pub ready: Option<String>,
    pub ready_timeout: Duration,
    pub warmup: Option<WarmupSpec>,
    /// A small initial heap that gives memory back (see jvm::options), so the image holds
    /// little empty heap.
    pub shrink: bool,
    /// A full GC (jcmd GC.run) right before the dump.
    pub gc: bool,
    pub criu: Option<PathBuf>,
    /// More JVM options (appended to JAVA_TOOL_OPTIONS).
    pub java_options: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dump_timeout: Duration,
    /// Start the JVM with cracin's org.crac provider, so the application's Resources run.
    pub coordinate: bool,
    /// Who decides when to checkpoint.
    pub trigger: Trigger,
    /// How long to wait for the application's checkpoint request.
    pub trigger_timeout: Duration,
    /// Running as PID 1 of a checkpoint container (`cracin build`): no PID namespace of our own,
    /// `criu --unprivileged` when only CAP_CHECKPOINT_RESTORE is there.
    pub in_container: bool,
    /// The CPU features the JVM and glibc may use (see `cpu`).
    pub cpu_baseline: crate::jvm::cpu::CpuBaseline,
    /// Paths whose open files are saved with the checkpoint and put back before every restore
    /// (`--snapshot`), and scratch paths left alone (`--no-snapshot`); see ckpt::files.
    pub snapshot: Vec<PathBuf>,
    pub no_snapshot: Vec<PathBuf>,
    /// What the secrets scan looks for before the checkpoint is sealed.
    pub secrets: crate::ckpt::secrets::SecretPolicy,
    /// Renew the JVM's random state on every restore (cracin's JVMTI agent; see jvm/individual.rs).
    /// The agent is loaded either way: it also applies restore-time --env/--property.
    pub renew: bool,
    /// Make a CDS archive in a training run first and checkpoint a JVM that maps it (see jvm::cds).
    pub cds: bool,
}

/// Who decides when the checkpoint is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// cracin: after readiness and warm-up (through the provider when the application uses
    /// org.crac, so its Resources run; from outside otherwise).
    Ready,
    /// The application: it calls `org.crac.Core.checkpointRestore()` itself.
    App,
}

impl CheckpointOptions {
    pub fn new(command: Vec<String>, out: PathBuf) -> Self {
        CheckpointOptions {
            command,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            out,
            force: false,
            ready: None,
            ready_timeout: Duration::from_secs(60),
            warmup: None,
            shrink: true,
            gc: true,
            criu: None,
            java_options: Vec::new(),
            env: Vec::new(),
            dump_timeout: Duration::from_secs(300),
            coordinate: true,
            trigger: Trigger::Ready,
            trigger_timeout: Duration::from_secs(120),
            in_container: false,
            cpu_baseline: crate::jvm::cpu::CpuBaseline::Host,
            snapshot: Vec::new(),
            no_snapshot: Vec::new(),
            secrets: crate::ckpt::secrets::SecretPolicy::new(),
            renew: true,
            cds: false,
        }
    }
}

/// `--unprivileged` when CRIU has CAP_CHECKPOINT_RESTORE but not CAP_SYS_ADMIN (a container
/// started with --cap-add=CHECKPOINT_RESTORE).
fn criu_options() -> CriuOptions {
    use crate::os::sysinfo::{has_cap, CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN};
    CriuOptions {
        unprivileged: !has_cap(CAP_SYS_ADMIN) && has_cap(CAP_CHECKPOINT_RESTORE),
        lazy_pages: false,
    }
}

/// Fails early when this host cannot checkpoint or restore at all.
pub fn preflight(criu_path: Option<&Path>, action: &str) -> Result<Criu> {
    // A non-root cracin in a cracin image holds CHECKPOINT_RESTORE only as permitted.
    crate::os::caps::raise_checkpoint_restore();
    if !crate::os::sysinfo::is_root()
        && !crate::os::sysinfo::has_cap(crate::os::sysinfo::CAP_CHECKPOINT_RESTORE)
    {
        return Err(Error::NotRoot {
            action: action.into(),
        });
    }
    let c = Criu::find(criu_path)?;
    if let Some(k) = crate::os::sysinfo::kernel_version() {
        c.check_kernel(k)?;
    }
    Ok(c)
}

/// What a checkpoint produced.
#[derive(Debug, Clone)]
pub struct Checkpointed {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

pub fn checkpoint(o: &CheckpointOptions, progress: &dyn Progress) -> Result<Checkpointed> {
    let failed = dir::failed_dir_of(&dir::absolute(&o.out)?);
    checkpoint::take(o, progress).map_err(|e| checkpoint::point_logs_at(e, &failed))
}

/// Where control directories of coordinated checkpoints live; the path is baked into the JVM
/// (a system property), so it must be stable and exist again at restore.
pub const CONTROL_ROOT: &str = "/var/lib/cracin/control";

/// Options of `cracin restore`.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub dir: PathBuf,
    /// Overrides the probe recorded in the manifest.
    pub ready: Option<String>,
    pub ready_timeout: Duration,
    /// Stay attached: make cracin the restored process's parent (subreaper).
    pub foreground: bool,
    /// Restore even if the CPU lacks features the checkpoint needs.
    pub force: bool,
    pub criu: Option<PathBuf>,
    /// Skip waiting for readiness.
    pub no_wait: bool,
    /// The restored application writes to cracin's own stdout/stderr (a container's logs)
    /// instead of files.
    pub inherit_stdio: bool,
    /// Restore memory lazily (`criu lazy-pages`): a faster first answer for large images.
    pub lazy_pages: bool,
    /// How long to wait for another restore's lock before giving up.
    pub lock_timeout: Duration,
    /// Environment variables and system properties the restored JVM sees (cracin's agent).
    pub config: individual::Config,
    /// What `ready_ms` counts from: the start of this process unless given (library callers
    /// that restore many times, e.g. `bench`).
    pub counted_from: Option<Instant>,
}

impl RestoreOptions {
    pub fn new(dir: PathBuf) -> Self {
        RestoreOptions {
            dir,
            ready: None,
            ready_timeout: Duration::from_secs(30),
            foreground: false,
            force: false,
            criu: None,
            no_wait: false,
            inherit_stdio: false,
            lazy_pages: false,
            lock_timeout: Duration::from_secs(60),
            config: individual::Config::default(),
            counted_from: None,
        }
    }
}

/// A restored application.
#[derive(Debug, Clone)]
pub struct Restored {
    pub pid: u32,
    /// Start of the cracin process (or `counted_from`) to readiness (None when not waited for).
    pub ready_ms: Option<f64>,
    pub criu_ms: f64,
    /// Time the agent took to renew and resume the JVM, seen from cracin (None: no agent).
    pub renew_ms: Option<f64>,
    pub log_dir: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Where the time went, from the start of the cracin process (`restore --timings`).
    pub timings: Vec<crate::measure::Phase>,
}

pub fn restore(o: &RestoreOptions, progress: &dyn Progress) -> Result<Restored> {
    restore::restore(o, progress)
}

/// Verifies the image checksums recorded at dump: the small files always (cheap), the memory
/// pages too with `include_pages` (`cracin check`). A checkpoint without checksums (taken by an
/// older cracin) passes unless `include_pages` is asked for.
pub fn check_images(ck: &CheckpointDir, include_pages: bool) -> Result<()> {
    let sums = &ck.manifest.checksums;
    if sums.is_empty() {
        if include_pages {
            return Err(Error::BadCheckpoint {
                path: ck.path.clone(),
                why: "it has no image checksums (taken by an older cracin): nothing to verify"
                    .into(),
            });
        }
        return Ok(());
    }
    let problems = crate::ckpt::integrity::verify(&ck.images(), sums, include_pages)?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::BadCheckpoint {
        path: ck.path.clone(),
        why: problems.join("; "),
    })
}

/// `cracin check DIR`: the checkpoint's owner and permissions, its manifest's paths, and the
/// checksum of every image file. Returns how many files were verified.
pub fn check(dir: &Path) -> Result<usize> {
    let path = crate::ckpt::trust::resolve(&dir::absolute(dir)?);
    crate::ckpt::trust::check_owner(&path)?;
    let ck = CheckpointDir::open(&path)?;
    crate::ckpt::trust::check_manifest_paths(&ck.path, &ck.manifest, Path::new(CONTROL_ROOT))?;
    check_images(&ck, true)?;
    Ok(ck.manifest.checksums.len())
}
