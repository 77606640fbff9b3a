//! The local engine: checkpoint and restore on this host, no container engine. `checkpoint`
//! launches the application in its own PID namespace, waits for readiness, warms it up, shrinks
//! what the heap leaves behind, dumps it with CRIU and writes the checkpoint directory
//! atomically. `restore` checks that this host can take the checkpoint (CRIU, kernel, CPU
//! features, free ports), restores it with CRIU with fresh output files, and waits until the
//! restored application is ready again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ckpt::dir::{self, CheckpointDir, Manifest};
use crate::ckpt::files;
use crate::error::{Error, Result};
use crate::jvm::coordinate;
use crate::jvm::individual;
use crate::jvm::output;
/// Kept here for the callers that read a restored application's output tail.
pub use crate::jvm::output::output_tail;
use crate::measure::stats::ms;
use crate::os::cmd::Cmd;
use crate::os::procfs;
use crate::stage::criu::{self, Criu, CriuOptions};
use crate::stage::criu_failure::{self, Run};
use crate::stage::probe::{self, NotReady, Probe};
use crate::stage::warmup::WarmupSpec;
use crate::Progress;

mod checkpoint;

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
    /// Small initial heap and Serial GC, so the image holds little empty heap.
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

fn random_id() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

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
    // Readiness counts from the start of the cracin process: what the user waits for.
    let t0 = o.counted_from.unwrap_or_else(crate::measure::process_start);
    let mut sw = crate::measure::Stopwatch::from(t0);
    let ck_path = crate::ckpt::trust::resolve(&dir::absolute(&o.dir)?);
    crate::ckpt::trust::check_owner(&ck_path)?;
    let ck = CheckpointDir::open(&ck_path)?;
    let m = &ck.manifest;
    crate::ckpt::trust::check_manifest_paths(&ck.path, m, Path::new(CONTROL_ROOT))?;
    check_images(&ck, false)?;
    let criu = preflight(o.criu.as_deref(), "restore")?;
    let missing = crate::jvm::cpu::restore_check(m, &crate::jvm::cpu::host_flags());
    if !missing.is_empty() {
        if o.force {
            progress.warn(&format!(
                "this CPU lacks {}; restoring anyway (--force)",
                missing.join(" ")
            ));
        } else {
            return Err(Error::CpuMismatch { missing });
        }
    }
    // One restore at a time on this host from the port check until CRIU is done: two restores
    // started together would both find the port free (and CRIU restores the JVM's attach
    // socket, the same path for every JVM that was PID 1, as a ghost that two cannot bind).
    sw.mark("cracin: checkpoint, CRIU, CPU", "");
    let _lock =
        crate::os::lock::acquire(&crate::os::lock::lock_dir(), "restore.lock", o.lock_timeout)?;
    sw.mark("cracin: restore lock", "waits while another restore runs");
    for port in &m.listen_ports {
        if let Some(holder) = procfs::port_holder(*port) {
            return Err(Error::PortInUse {
                port: *port,
                holder,
            });
        }
    }
    let probe = match (o.ready.as_ref(), m.ready.as_ref()) {
        _ if o.no_wait => None,
        (Some(r), _) => Some(Probe::parse(r)?),
        // A restored application does not print its start-up lines again: a recorded log:
        // probe would never pass, so wait for its listening port instead.
        (None, Some(r)) if r.starts_with("log:") => match m.listen_ports.first() {
            Some(port) => {
                progress.warn(&format!(
                    "the recorded probe `{r}` reads start-up output, which a restored application does not print again: waiting for tcp://127.0.0.1:{port} instead"
                ));
                Some(Probe::parse(&format!("tcp://127.0.0.1:{port}"))?)
            }
            None => None,
        },
        (None, Some(r)) => Some(Probe::parse(r)?),
        (None, None) => None,
    };
    let log_dir = if o.inherit_stdio {
        crate::os::cmd::private_tmp_dir("cracin-restore")?
    } else {
        crate::ckpt::logs::restore_log_dir(&ck.path)?
    };
    let stdout = log_dir.join("app.stdout");
    let stderr = log_dir.join("app.stderr");
    let open = |p: &Path| crate::os::perms::append_private_file(p);
    let pidfile = log_dir.join("pid");
    let log = log_dir.join("restore.log");
    let inherit = vec![
        (3, m.app_output.stdout.display().to_string()),
        (4, m.app_output.stderr.display().to_string()),
    ];
    let mut copts = criu_options();
    copts.lazy_pages = o.lazy_pages;
    let args = criu::restore_args(&ck.images(), &log, &pidfile, &inherit, &copts);
    sw.mark("cracin: ports, log files", "");
    // Data changed since the checkpoint refuses; scratch files are put back (ckpt::files).
    if let Some(f) = &m.files {
        let t = Instant::now();
        let p = files::prepare_restore(&ck.path, f)?;
        if !p.put_back.is_empty() {
            progress.done("files", ms(t.elapsed()), &files::put_back_summary(&p));
        }
    }
    sw.mark(
        "cracin: saved files",
        "data checked, scratch files put back",
    );
    if let Some(c) = &m.coordination {
        // The waiting checkpointRestore() in the image learns it was restored from this file.
        let jar = coordinate::install_provider(Path::new(coordinate::DEFAULT_PROVIDER_DIR))?;
        if jar != c.provider_jar {
            return Err(Error::BadCheckpoint {
                path: ck.path.clone(),
                why: format!(
                    "it was taken with another cracin's org.crac provider ({}); this cracin has {}",
                    c.provider_jar.display(),
                    jar.display()
                ),
            });
        }
        coordinate::Control::open(&c.control_dir).mark_restored(&c.nonce)?;
    }
    if let Some(ind) = &m.individual {
        // CRIU maps the agent by path: it must be this cracin's agent, at the recorded path.
        let so = individual::install_agent(Path::new(coordinate::DEFAULT_PROVIDER_DIR))?;
        if so != ind.agent {
            return Err(Error::BadCheckpoint {
                path: ck.path.clone(),
                why: format!(
                    "it was taken with another cracin's agent ({}); this cracin has {}",
                    ind.agent.display(),
                    so.display()
                ),
            });
        }
    } else if !o.config.is_empty() {
        return Err(Error::usage(
            "--env and --property need cracin's agent in the checkpointed JVM, and this checkpoint has none",
            "take the checkpoint again with this cracin (every checkpoint of a JVM now loads the agent)",
        ));
    }
    if o.foreground {
        // The restored process is criu's child; when criu exits it is re-parented to the
        // nearest subreaper, which makes cracin able to wait for it and learn its exit status.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    }
    sw.mark("cracin: org.crac provider", "");
    let kdat = crate::stage::kdat::for_criu_run(&criu, copts.unprivileged, false);
    let kdat_state = kdat.state.clone();
    sw.mark("cracin: kdat cache", kdat.state.to_string());
    let asked = crate::stage::readahead::pages(&ck.images());
    sw.mark(
        "cracin: read-ahead of the pages",
        format!("{:.0} MB asked for", asked as f64 / 1e6),
    );
    if o.lazy_pages {
        // After the kdat cache is in place: the daemon is a CRIU run too.
        crate::stage::lazy::start(&criu, &ck.images(), &log_dir)?;
        sw.mark("cracin: lazy-pages daemon", "");
    }
    progress.step(
        "restore",
        &format!("criu {} restoring {}", criu.version, ck.path.display()),
    );
    // A stop request (SIGTERM, Ctrl-C) that arrives while criu restores is held back until the
    // guardian knows the restored pid: taking effect in between, it would orphan the
    // application. Put back below, it then ends cracin and the guardian stops the application.
    let held = crate::os::signals::HeldStopSignals::hold();
    crate::os::guard::watch_pidfile(&pidfile);
    let t = Instant::now();
    let (out_fd, err_fd) = if o.inherit_stdio {
        use std::os::fd::AsFd;
        let dup = |fd: std::os::fd::BorrowedFd| {
            fd.try_clone_to_owned()
                .map(std::fs::File::from)
                .map_err(|e| Error::io("stdout", e))
        };
        (
            dup(std::io::stdout().as_fd())?,
            dup(std::io::stderr().as_fd())?,
        )
    } else {
        (open(&stdout)?, open(&stderr)?)
    };
    let out = Cmd::new(&criu.path)
        .args(&args)
        .private()
        .fd(3, out_fd)
        .fd(4, err_fd)
        .timeout(Duration::from_secs(120))
        .logs(&log_dir, "criu-restore")
        .run_unchecked()?;
    let criu_ms = ms(t.elapsed());
    let _ = crate::os::perms::make_private(&log_dir);
    if !out.status.success() {
        return Err(criu_failure::failed(
            Run::Restore,
            &criu.path,
            &args,
            out.status,
            log,
            &out.stderr,
            std::slice::from_ref(&stderr),
        ));
    }
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::BadCheckpoint {
            path: ck.path.clone(),
            why: format!("criu restored it but wrote no pid to {}", pidfile.display()),
        })?;
    progress.done("restore", criu_ms, &format!("pid {pid}"));
    // Until it is ready (and for as long as a foreground cracin stays attached), a cracin that
    // dies takes the restored application with it.
    crate::os::guard::watch(pid);
    drop(held);
    // Only now that the guardian knows the restored pid (a signal in between would leave it
    // running): CRIU's phases from its log, and the kdat cache put away.
    sw.mark_parts(
        "criu restore",
        crate::measure::criu_run_phases(criu_ms, &log),
    );
    drop(kdat);
    let mut renew_ms = None;
    if let Some(ind) = &m.individual {
        progress.step(
            if ind.renew { "renew" } else { "resume" },
            "fresh random state and restore-time settings, then the threads go on",
        );
        match individual::after_restore(pid, ind, &o.config, Duration::from_secs(30)) {
            Ok(r) => {
                progress.done(
                    if ind.renew { "renew" } else { "resume" },
                    r.ms,
                    &r.reports.join("; "),
                );
                renew_ms = Some(r.ms);
            }
            Err(e) => {
                // A restored instance that repeats the checkpoint's secrets must not serve.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
                return Err(e);
            }
        }
    }
    if m.individual.is_some() {
        sw.mark(
            "cracin: agent hand-shake",
            "fresh random state, restore-time settings",
        );
    }
    // Nobody else may have taken one of its ports meanwhile (a process that is not cracin).
    let ours = procfs::tree_of(pid);
    for port in &m.listen_ports {
        // Cheap first: are all sockets listening on the port the restored tree's own?
        if procfs::only_ours_listen(*port, &ours) {
            continue;
        }
        let outsiders: Vec<u32> = procfs::port_holders(*port)
            .into_iter()
            .filter(|p| !ours.contains(p))
            .collect();
        if let Some(other) = outsiders.first() {
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            return Err(Error::PortInUse {
                port: *port,
                holder: Some(procfs::describe_pid(*other)),
            });
        }
    }
    drop(_lock);
    sw.mark(
        "cracin: after criu",
        "kdat cache put away, pid read, port check",
    );
    let mut ready_ms = None;
    if let Some(probe) = probe {
        let logs = vec![stdout.clone(), stderr.clone()];
        match probe::wait_ready(
            &probe,
            &logs,
            o.ready_timeout,
            Duration::from_millis(2),
            || procfs::gone(pid),
        ) {
            Ok(_) => {
                ready_ms = Some(ms(t0.elapsed()));
                sw.mark("first answer", probe.to_string());
            }
            Err(e) => {
                let how = match e {
                    NotReady::Exited(h) => h,
                    NotReady::Timeout => {
                        unsafe {
                            libc::kill(pid as i32, libc::SIGKILL);
                        }
                        "no answer".into()
                    }
                };
                let _ = how;
                return Err(Error::RestoredNotReady {
                    probe: probe.to_string(),
                    timeout: o.ready_timeout,
                    log: stderr.clone(),
                    log_tail: output::output_tail(&logs, output::TAIL_LINES),
                });
            }
        }
    }
    if !o.foreground {
        crate::os::guard::forget(pid);
    }
    // Once per boot, after the figure: the next restores skip CRIU's kernel probe.
    crate::stage::kdat::make_after_restore(&criu, copts.unprivileged, &kdat_state);
    Ok(Restored {
        pid,
        ready_ms,
        criu_ms,
        renew_ms,
        log_dir,
        stdout,
        stderr,
        timings: sw.phases,
    })
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
