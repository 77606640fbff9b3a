//! The errors of cracin's core. Every variant carries its evidence (the command line, the exit
//! status, where the logs are, what the logs say, the diagnosis) so that the one renderer at the
//! top of the binary can explain a failure without knowing where it came from. Each variant also
//! maps to a documented exit code and, where there is one, a hint with the fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnose::finding::{Finding, SecretFound};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes of the `cracin` binary (documented in the README and `--help`).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// An unexpected internal or I/O error.
    pub const INTERNAL: i32 = 1;
    /// Bad command-line input (also clap's own usage errors).
    pub const USAGE: i32 = 2;
    /// This machine cannot checkpoint/restore as asked (criu missing or too old, not root, ...).
    pub const ENVIRONMENT: i32 = 3;
    /// The application failed: it exited, never became ready, or its port was taken.
    pub const APP: i32 = 4;
    /// CRIU (or the runtime) failed to checkpoint.
    pub const CHECKPOINT: i32 = 5;
    /// The restore failed, or the checkpoint cannot be restored here.
    pub const RESTORE: i32 = 6;
    /// A container engine step failed (build, run, commit, verification).
    pub const ENGINE: i32 = 7;
    /// The uniqueness check failed: two restored instances answered with the same
    /// random-looking values (`cracin verify`, `cracin build --verify-url`).
    pub const NOT_UNIQUE: i32 = 8;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}")]
    Usage { what: String, hint: String },

    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed with {status}")]
    Command {
        command: String,
        status: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("`{command}` did not finish within {}", humantime::format_duration(*timeout))]
    CommandTimeout {
        command: String,
        timeout: Duration,
        log_tail: String,
    },

    #[error("criu was not found (looked at {searched})")]
    CriuNotFound { searched: String },

    #[error("CRIU {found} cannot checkpoint on Linux {kernel}: {why}")]
    CriuTooOld {
        found: String,
        kernel: String,
        need: String,
        why: String,
    },

    #[error("cracin must run as root to {action} (CRIU needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE and ptrace rights)")]
    NotRoot { action: String },

    #[error("no JVM found: {why}")]
    JavaNotFound { why: String },

    #[error("the application exited with {status} before it was ready")]
    AppExited {
        status: String,
        log: PathBuf,
        log_tail: String,
        /// What its output says went wrong (a JVM that could not reserve its heap, a class
        /// built for a newer Java, ...).
        diagnosis: Vec<Finding>,
    },

    #[error("the application did not become ready within {} ({probe} never answered)", humantime::format_duration(*timeout))]
    NotReady {
        probe: String,
        timeout: Duration,
        log: PathBuf,
        log_tail: String,
    },

    #[error("port {port} is already in use{}", holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default())]
    PortInUse { port: u16, holder: Option<String> },

    #[error("{} already exists", path.display())]
    OutputExists { path: PathBuf },

    #[error("{} is not a usable checkpoint: {why}", path.display())]
    BadCheckpoint { path: PathBuf, why: String },

    #[error("this CPU lacks features the checkpoint needs: {}", missing.join(" "))]
    CpuMismatch { missing: Vec<String> },

    #[error("the checkpoint failed: `{command}` exited with {status}")]
    CheckpointFailed {
        command: String,
        status: String,
        log: PathBuf,
        log_tail: String,
        diagnosis: Vec<Finding>,
    },

    #[error("the restore failed: `{command}` exited with {status}")]
    RestoreFailed {
        command: String,
        status: String,
        log: PathBuf,
        log_tail: String,
        diagnosis: Vec<Finding>,
    },

    #[error("the restored application did not become ready within {} ({probe} never answered)", humantime::format_duration(*timeout))]
    RestoredNotReady {
        probe: String,
        timeout: Duration,
        log: PathBuf,
        log_tail: String,
    },

    #[error("{} changed since the checkpoint, and a restore would run on data the checkpointed JVM never saw: {}", if changed.len() == 1 { "a data file the application held open" } else { "data files the application held open" }, changed.iter().map(|(p, how)| format!("{}: {how}", p.display())).collect::<Vec<_>>().join("; "))]
    DataChanged {
        checkpoint: PathBuf,
        /// Each changed file and how it changed (size, time, content).
        changed: Vec<(PathBuf, String)>,
    },

    #[error("{} must be put back as the checkpoint saved it, but {holder} holds it open", path.display())]
    FileHeld { path: PathBuf, holder: String },

    #[error("the application's checkpoint was refused: {why}")]
    Coordination { why: String, log_tail: String },

    #[error("the checkpoint holds secrets: {}", found.iter().map(|f| format!("{} in {}", f.what, f.file)).collect::<Vec<_>>().join("; "))]
    SecretsFound { found: Vec<SecretFound> },

    #[error("refusing to restore {}: {why}", path.display())]
    Untrusted { path: PathBuf, why: String },

    #[error("another restore has held {} for {}", path.display(), humantime::format_duration(*waited))]
    LockTimeout { path: PathBuf, waited: Duration },
    /// cracin's JVMTI agent did not hold the JVM before the dump, or did not renew and resume
    /// it after a restore.
    #[error("{} {why}", if *at_restore { "the restored JVM was not renewed:" } else { "the JVM could not be held for the dump:" })]
    Renewal { at_restore: bool, why: String },

    #[error("container engine step `{step}` failed: `{command}` exited with {status}")]
    Engine {
        step: String,
        command: String,
        status: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("two restored instances answered with the same random-looking values: {what}")]
    NotUnique {
        /// The first place (field and URL) and how many more.
        what: String,
        /// The likely cause.
        cause: String,
        /// Every repeated place with its shared values.
        evidence: String,
        /// What to do about it.
        fix: String,
    },
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn usage(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// A failed command (`Error::Command`) as the failure of the engine step `step`; every other
    /// error unchanged.
    pub fn at_engine_step(self, step: &str) -> Error {
        match self {
            Error::Command {
                command,
                status,
                log,
                log_tail,
            } => Error::Engine {
                step: step.into(),
                command,
                status,
                log,
                log_tail,
            },
            other => other,
        }
    }

    /// The exit code of the binary for this error.
    pub fn exit_code(&self) -> i32 {
        use Error::*;
        match self {
            Usage { .. } | OutputExists { .. } => exit::USAGE,
            Io { .. } | Spawn { .. } | Command { .. } | CommandTimeout { .. } => exit::INTERNAL,
            CriuNotFound { .. } | CriuTooOld { .. } | NotRoot { .. } | JavaNotFound { .. } => {
                exit::ENVIRONMENT
            }
            AppExited { .. } | NotReady { .. } | PortInUse { .. } => exit::APP,
            CheckpointFailed { .. } | Coordination { .. } | SecretsFound { .. } => exit::CHECKPOINT,
            Renewal {
                at_restore: false, ..
            } => exit::CHECKPOINT,
            Renewal {
                at_restore: true, ..
            } => exit::RESTORE,
            BadCheckpoint { .. }
            | CpuMismatch { .. }
            | RestoreFailed { .. }
            | RestoredNotReady { .. }
            | DataChanged { .. }
            | FileHeld { .. }
            | Untrusted { .. }
            | LockTimeout { .. } => exit::RESTORE,
            Engine { .. } => exit::ENGINE,
            NotUnique { .. } => exit::NOT_UNIQUE,
        }
    }

    /// The diagnosis findings carried by this error, if any.
    pub fn diagnosis(&self) -> &[Finding] {
        match self {
            Error::CheckpointFailed { diagnosis, .. }
            | Error::RestoreFailed { diagnosis, .. }
            | Error::AppExited { diagnosis, .. } => diagnosis,
            _ => &[],
        }
    }

    /// Log excerpt worth showing under the message, with the file it came from.
    pub fn evidence(&self) -> Option<(Option<&Path>, &str)> {
        use Error::*;
        match self {
            Command { log, log_tail, .. }
            | AppExited { log, log_tail, .. }
            | NotReady { log, log_tail, .. }
            | RestoredNotReady { log, log_tail, .. }
            | CheckpointFailed { log, log_tail, .. }
            | RestoreFailed { log, log_tail, .. }
            | Engine { log, log_tail, .. } => Some((Some(log.as_path()), log_tail.as_str())),
            CommandTimeout { log_tail, .. } | Coordination { log_tail, .. } => {
                Some((None, log_tail.as_str()))
            }
            NotUnique { evidence, .. } => Some((None, evidence.as_str())),
            _ => None,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        use Error::*;
        Some(match self {
            Usage { hint, .. } => hint.clone(),
            CriuNotFound { .. } => "install CRIU 4.2.1 with `scripts/setup.sh`, or point cracin at a criu binary with --criu PATH or CRACIN_CRIU".into(),
            CriuTooOld { need, .. } => format!("install CRIU {need} or newer (`scripts/setup.sh` builds 4.2.1 from Debian's source) and pass it with --criu PATH"),
            NotRoot { .. } => "run cracin as root (sudo), or inside a container started with --cap-add=CHECKPOINT_RESTORE".into(),
            JavaNotFound { .. } => "give the full command that starts the JVM after `--`, e.g. `-- java -jar app.jar`, and check that `java` is on PATH or the path is right".into(),
            AppExited { diagnosis, .. } => match diagnosis.first() {
                Some(f) => f.fix.clone(),
                None => "the application's own output above says why; run the command by hand to check it starts".into(),
            },
            NotReady { .. } => "check the --ready probe (URL, port, regex) against what the application really offers, or raise --ready-timeout".into(),
            PortInUse { port, holder } => format!(
                "stop {} (a previous restore, or another application), then try again",
                holder.clone().unwrap_or_else(|| format!("whatever listens on port {port}"))
            ),
            OutputExists { .. } => "pass --force to replace it (the old checkpoint is kept until the new one succeeded), or choose another --out".into(),
            BadCheckpoint { .. } => "take the checkpoint again with `cracin checkpoint --force`".into(),
            CpuMismatch { .. } => "restore on a machine with these CPU features, take the checkpoint again with a lower --cpu-baseline (x86-64-v2 runs almost everywhere), or pass --force to try anyway (the JVM may crash on the first use of a missing instruction)".into(),
            CheckpointFailed { diagnosis, .. } | RestoreFailed { diagnosis, .. } => {
                if let Some(f) = diagnosis.first() {
                    f.fix.clone()
                } else {
                    "see the CRIU log named above; `cracin explain DIR` reads it again".into()
                }
            }
            DataChanged { checkpoint, changed } => format!(
                "cracin does not revert data by default. Either take the checkpoint again with `--snapshot {}` so that every restore starts from the checkpoint's copy (what the last instance wrote is then replaced), or keep the data where the checkpointed process does not hold it open (e.g. close the database before the checkpoint in an org.crac Resource). The file was left as it is; restoring {} needs it as it was at the checkpoint",
                changed.first().and_then(|(p, _)| p.parent()).unwrap_or(Path::new("DIR")).display(),
                checkpoint.display()
            ),
            FileHeld { holder, .. } => format!("stop {holder} (an instance restored from the same checkpoint?) before restoring again"),
            RestoredNotReady { .. } => "the restored process runs but does not answer; check its output log and `cracin explain` the checkpoint".into(),
            SecretsFound { .. } => "nothing was kept. Checkpoint with a placeholder value and give the real one at restore (`cracin restore --env NAME=VALUE`), or leave it out of the environment for the checkpoint; --allow-secrets keeps such a checkpoint anyway (it stays private to its owner, 0700/0600)".into(),
            Untrusted { .. } => "a checkpoint is restored only from a directory owned by the user running cracin and writable by no one else: `chown -R root: DIR && chmod -R go-rwx DIR` if you trust its content, or take it again".into(),
            LockTimeout { path, .. } => format!("wait for the other restore to finish and try again; `fuser -v {}` shows who holds it", path.display()),
            Renewal { at_restore: false, .. } => "look for a `cracin agent:` line in the application's output (DIR.failed/app.stderr); the agent needs a HotSpot JVM (OpenJDK 17 or newer) that offers JVMTI".into(),
            Renewal { at_restore: true, .. } => "the restored process was stopped; see its output log. A checkpoint taken by another cracin version needs that version's agent".into(),
            Engine { .. } => "the engine's output above says why; `cracin build --dry-run` prints every command so you can run them by hand".into(),
            NotUnique { cause, fix, .. } => format!("likely cause: {cause}. Fix: {fix}"),
            _ => return None,
        })
    }
}
