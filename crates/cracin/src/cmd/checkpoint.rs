//! `cracin checkpoint`: run the application, wait until it is ready, warm it up, and freeze it.
use std::path::PathBuf;

use cracin_core::local::{self, CheckpointOptions};
use cracin_core::Result;

use super::app_args::AppArgs;
use crate::render::Steps;
use cracin_core::os::text::human_bytes;

/// Run an application, wait until it is ready, warm it up, and write a checkpoint of the warm JVM.
///
/// The command runs as PID 1 of its own PID namespace with stdin from /dev/null and its output in
/// OUT/app.stdout and OUT/app.stderr. cracin adds -XX:-UsePerfData and, unless --no-shrink,
/// -Xms16m (unless the command sets it) -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30 through
/// JAVA_TOOL_OPTIONS, keeping the collector the JVM would choose (G1 on a server-class machine,
/// Serial below 2 CPUs or 1792 MB; it says which and why), waits until the JIT is quiet (at most
/// 10 s, then 5 s for its arenas to be freed), runs a full GC with the heap squeezed to its live
/// data (the free ratios are put back afterwards), trims the native heap before the dump, and
/// dumps with CRIU. OUT is written
/// atomically: an existing checkpoint is replaced only with --force (and only a directory that is
/// a cracin checkpoint), and only once the new one succeeded; a failed attempt leaves its logs in
/// OUT.failed.
///
/// A checkpoint is a memory dump: OUT is private to its owner (0700/0600, whatever the umask),
/// and before it is sealed cracin searches the memory for secret values (see --secret-env,
/// --allow-secrets; exit 5 when found, nothing kept). Checksums of every image are recorded.
///
/// The files the application holds open are recorded and sorted: scratch files (under /tmp,
/// $TMPDIR, java.io.tmpdir) are saved in OUT/files and put back before every restore; a data
/// file written elsewhere is checked, and a restore refuses when it changed, unless --snapshot
/// made it part of the checkpoint (see docs/files.md).
///
/// With cracin's org.crac provider (on by default), an application that uses the org.crac API
/// gets its Resources called: beforeCheckpoint before the dump, afterRestore after each restore,
/// on a plain OpenJDK (see docs/coordinate.md).
///
/// Every restored instance is its own individual: cracin's JVMTI agent (loaded with -agentpath)
/// holds the Java threads across the dump and, after each restore and before any of them runs
/// again, renews the random state the JDK seeded itself: SecureRandom SHA1PRNG, DRBG and
/// NativePRNG's mixing state, every `new java.util.Random()` (Math.random()'s too),
/// ThreadLocalRandom and SplittableRandom's default generator. Generators seeded explicitly
/// (`new Random(42)`, SHA1PRNG given setSeed before first use) keep their sequence. Not
/// renewed: copies of such generators inside third-party libraries and values computed from
/// them before the checkpoint (a UUID, a key, a token); renew those in an org.crac Resource's
/// afterRestore. See docs/individual.md.
///
/// Example: cracin checkpoint --out ./ckpt --ready http://127.0.0.1:8080/health
///          --warmup http://127.0.0.1:8080/api -- java -jar app.jar
#[derive(clap::Args)]
pub struct Args {
    /// The checkpoint directory to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Replace an existing checkpoint (only after the new one succeeded).
    #[arg(long)]
    pub force: bool,

    /// Print the result as JSON (the manifest) on stdout.
    #[arg(long)]
    pub json: bool,

    /// Who decides when to checkpoint: `ready` (cracin, after readiness and warm-up) or `app`
    /// (the application calls org.crac.Core.checkpointRestore() itself; --ready is optional).
    #[arg(long, value_enum, default_value = "ready")]
    pub trigger: TriggerArg,

    /// How long to wait for the application's checkpoint request, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0, value_parser = super::ranges::timeout)]
    pub trigger_timeout: f64,

    /// Do not start the JVM with cracin's org.crac provider (the application's org.crac
    /// Resources then do not run; see docs/coordinate.md).
    #[arg(long)]
    pub no_coordinate: bool,

    /// Run as PID 1 of a checkpoint container (what `cracin build` runs inside the image): no
    /// PID namespace of cracin's own, the JVM started above PID 1000 without the capabilities the
    /// restore container will lack, and `criu --unprivileged` with CAP_CHECKPOINT_RESTORE alone.
    #[arg(long)]
    pub in_container: bool,

    /// The CPU features the checkpoint may need: host (all of this CPU's), x86-64-v2, x86-64-v3
    /// or x86-64-v4. A level caps the JVM (-XX:UseAVX=N, -XX:-UseSHA, ...) and glibc
    /// (GLIBC_TUNABLES) so the checkpoint restores on any CPU of that level; cracin.json records
    /// the features a restore host needs (see docs/cpu.md).
    #[arg(long, value_name = "LEVEL", default_value = "host")]
    pub cpu_baseline: String,

    /// Make the files the application holds open under PATH part of the checkpoint: every
    /// restore starts from the checkpoint's copy (what the last instance wrote there is
    /// replaced). Without it, a data file changed since the checkpoint makes the restore refuse
    /// (exit 6). Repeatable. See docs/files.md.
    #[arg(long, value_name = "PATH")]
    pub snapshot: Vec<PathBuf>,

    /// Leave the files under PATH alone: not saved with the checkpoint, not checked at restore
    /// (scratch files under temporary directories are saved by default). Repeatable.
    #[arg(long, value_name = "PATH")]
    pub no_snapshot: Vec<PathBuf>,
    /// Do not renew random state on restore: every restored instance continues the
    /// checkpoint's random sequences (for tests that must show repeats; never in production).
    /// Restore-time --env/--property still work.
    #[arg(long)]
    pub no_renew: bool,
    /// Make a class-data-sharing archive first, in a training run of the command (ready,
    /// warm-up, SIGTERM; with -XX:ArchiveClassesAtExit), and checkpoint a JVM that maps it at
    /// its own address: class metadata the JVM maps from the archive stays out of the images
    /// (reference OSGi app: see docs/bench-size.md). Classes of custom class loaders (OSGi
    /// bundles) are archived when loaded from jar files; signed jars are not. Doubles the
    /// checkpoint's time; the archive is kept in /var/lib/cracin/cds for every restore, and the
    /// next `checkpoint --cds` removes archives no checkpoint uses any more (their checkpoints
    /// removed or replaced, older than an hour, mapped by no process). HotSpot JDK 17+;
    /// measured on JDK 17, tested on the default JDK; never run on JDK 21 or 25, nor inside
    /// `cracin build` (which does not offer it).
    #[arg(long)]
    pub cds: bool,

    #[command(flatten)]
    pub secrets: SecretArgs,

    #[command(flatten)]
    pub app: AppArgs,
}

/// The secrets scan run before a checkpoint is sealed (see docs/security.md).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SecretArgs {
    /// An environment variable whose value must not end up in the checkpoint, whatever its
    /// name (repeatable). Variables and -D properties whose names contain PASSWORD, PASSWD,
    /// PASSPHRASE, SECRET, TOKEN, KEY, CREDENTIAL or PRIVATE are searched for anyway.
    #[arg(long = "secret-env", value_name = "NAME")]
    pub secret_env: Vec<String>,

    /// A file whose content (and each line of it) must not end up in the checkpoint
    /// (repeatable).
    #[arg(long = "secret-file", value_name = "PATH")]
    pub secret_file: Vec<PathBuf>,

    /// A name word that makes a variable or -D property secret, in addition to the built-in
    /// ones (repeatable; e.g. --secret-word PIN).
    #[arg(long = "secret-word", value_name = "WORD")]
    pub secret_word: Vec<String>,

    /// Keep the checkpoint even when the scan finds a secret in its memory (it stays private
    /// to its owner: 0700/0600). Without it, a finding fails the checkpoint with exit 5 and
    /// nothing is kept.
    #[arg(long)]
    pub allow_secrets: bool,
}

impl SecretArgs {
    pub fn policy(&self) -> cracin_core::ckpt::secrets::SecretPolicy {
        let mut p = cracin_core::ckpt::secrets::SecretPolicy::new();
        p.words
            .extend(self.secret_word.iter().map(|w| w.to_ascii_uppercase()));
        p.env_names = self.secret_env.clone();
        p.files = self.secret_file.clone();
        p.allow = self.allow_secrets;
        p
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum TriggerArg {
    Ready,
    App,
}

pub fn run(a: Args) -> Result<i32> {
    let mut o = CheckpointOptions::new(a.app.command.clone(), a.out.clone());
    o.force = a.force;
    o.ready = a.app.ready.clone();
    o.ready_timeout = a.app.ready_timeout();
    o.warmup = a.app.warmup_spec();
    o.shrink = !a.app.no_shrink;
    o.gc = !a.app.no_gc;
    o.criu = a.app.criu.clone();
    o.java_options = a.app.java_options.clone();
    o.coordinate = !a.no_coordinate;
    o.renew = !a.no_renew;
    o.cds = a.cds;
    o.in_container = a.in_container;
    o.cpu_baseline = cracin_core::jvm::cpu::CpuBaseline::parse(&a.cpu_baseline)?;
    o.snapshot = a.snapshot.clone();
    o.no_snapshot = a.no_snapshot.clone();
    o.secrets = a.secrets.policy();
    o.trigger = match a.trigger {
        TriggerArg::Ready => local::Trigger::Ready,
        TriggerArg::App => local::Trigger::App,
    };
    o.trigger_timeout = std::time::Duration::from_secs_f64(a.trigger_timeout);
    let steps = Steps::new(false);
    let c = local::checkpoint(&o, &steps)?;
    let m = &c.manifest;
    if a.json {
        println!("{}", serde_json::to_string_pretty(m).unwrap_or_default());
    } else {
        println!(
            "checkpoint written to {}: {} of images, ready {:.0} ms after launch, dump {:.0} ms{}",
            c.dir.display(),
            human_bytes(m.sizes.images_bytes),
            m.timings_ms.launch_to_ready,
            m.timings_ms.dump,
            if m.shrink.enabled {
                format!(
                    " (heap shrunk: {}{})",
                    m.shrink.options.join(" "),
                    if m.shrink.before_dump.is_empty() {
                        String::new()
                    } else {
                        format!("; before the dump: {}", m.shrink.before_dump.join(", "))
                    }
                )
            } else {
                String::new()
            }
        );
        if let Some(w) = &m.warmup_stats {
            println!(
                "warm-up: {} requests in {:.1} s, {:.0} req/s at the start, {:.0} req/s at the end",
                w.requests,
                w.duration_ms / 1000.0,
                w.start_rps,
                w.end_rps
            );
        }
        if let Some(f) = &m.files {
            for line in files_summary(f) {
                println!("{line}");
            }
        }
        println!("restore it with: cracin restore {}", c.dir.display());
    }
    Ok(0)
}

/// What the checkpoint keeps of the files the application held open.
fn files_summary(f: &cracin_core::ckpt::files::Recorded) -> Vec<String> {
    use cracin_core::ckpt::files::{Action, Kind};
    let mut v = vec![format!(
        "files held open: {} ({} unchanging, {} scratch, {} data, {} deleted, kept by CRIU)",
        f.entries.len(),
        f.count(Kind::Unchanging),
        f.count(Kind::Scratch),
        f.count(Kind::Data),
        f.count(Kind::Deleted)
    )];
    if f.saved_files > 0 {
        v.push(format!(
            "saved with the checkpoint (put back before every restore): {} files, {}",
            f.saved_files,
            human_bytes(f.saved_bytes)
        ));
        for e in f.with_action(Action::Saved).take(5) {
            v.push(format!("  {} ({})", e.path.display(), human_bytes(e.size)));
        }
        if f.saved_files > 5 {
            v.push(format!(
                "  ... and {} more (cracin.json lists them)",
                f.saved_files - 5
            ));
        }
    }
    let checked: Vec<_> = f.with_action(Action::Checked).collect();
    if !checked.is_empty() {
        v.push(format!(
            "data checked at every restore (a change refuses it; --snapshot PATH saves it instead): {}",
            checked
                .iter()
                .map(|e| e.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    v
}
