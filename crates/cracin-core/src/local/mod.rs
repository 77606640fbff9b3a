//! The local engine: checkpoint and restore on this host, no container engine. `checkpoint`
//! launches the application in its own PID namespace, waits for readiness, warms it up, shrinks
//! what the heap leaves behind, dumps it with CRIU and writes the checkpoint directory
//! atomically. `restore` checks that this host can take the checkpoint (CRIU, kernel, CPU
//! features, free ports), restores it with CRIU with fresh output files, and waits until the
//! restored application is ready again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ckpt::dir::{
    self, AppOutput, CheckpointDir, CriuInfo, HostInfo, Manifest, Shrink, Staging, Timings,
};
use crate::ckpt::files;
use crate::diagnose;
use crate::error::{Error, Result};
use crate::jvm::coordinate;
use crate::jvm::individual;
use crate::jvm::launch::{self, Jvm, LaunchSpec};
use crate::jvm::output;
/// Kept here for the callers that read a restored application's output tail.
pub use crate::jvm::output::output_tail;
use crate::measure::stats::ms;
use crate::os::cmd::Cmd;
use crate::os::procfs;
use crate::stage::criu::{self, Criu, CriuOptions};
use crate::stage::criu_failure::{self, Run};
use crate::stage::probe::{self, NotReady, Probe};
use crate::stage::warmup::{self, WarmupSpec};
use crate::Progress;

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
    checkpoint_inner(o, progress).map_err(|e| point_logs_at(e, &failed))
}

/// Errors name the application's logs in the staging directory, which a failure moves to
/// `<out>.failed`: name them where they are now.
fn point_logs_at(mut e: Error, failed: &Path) -> Error {
    let fix = |log: &mut PathBuf| {
        let in_staging = log
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n.to_string_lossy().contains(".tmp-"));
        if in_staging && failed.is_dir() {
            if let Some(name) = log.file_name() {
                *log = failed.join(name);
            }
        }
    };
    match &mut e {
        Error::AppExited { log, .. } | Error::NotReady { log, .. } => fix(log),
        _ => {}
    }
    e
}

fn checkpoint_inner(o: &CheckpointOptions, progress: &dyn Progress) -> Result<Checkpointed> {
    let t_all = Instant::now();
    let probe = match &o.ready {
        Some(r) => Some(Probe::parse(r)?),
        None if o.trigger == Trigger::App => None,
        None => {
            return Err(Error::usage(
                "no readiness probe given",
                "tell cracin when the application is ready with --ready http://127.0.0.1:PORT/health (2xx), --ready tcp://127.0.0.1:PORT, or --ready 'log:REGEX'",
            ))
        }
    };
    launch::validate_command(&o.command, &o.cwd)?;
    let cpu = crate::jvm::cpu::CpuRecord::new(o.cpu_baseline, &crate::os::sysinfo::cpu().1)?;
    crate::jvm::cpu::check_user_options(o.cpu_baseline, &o.command, &o.java_options)?;
    let snapshot = files::resolve_flag_paths("--snapshot", &o.snapshot)?;
    let no_snapshot = files::resolve_flag_paths("--no-snapshot", &o.no_snapshot)?;
    let criu = preflight(o.criu.as_deref(), "checkpoint")?;
    let mut staging = Staging::new(&o.out, o.force)?;
    // Killed before the end, cracin leaves no staging directory behind (its guardian removes it).
    crate::os::guard::remove_on_death(&staging.dir);
    if let Some(port) = probe.as_ref().and_then(Probe::local_port) {
        if let Some(holder) = procfs::port_holder(port) {
            return Err(Error::PortInUse { port, holder });
        }
    }

    let (mut java_options, shrink_opts) =
        crate::jvm::options::java_options_for(&o.command, o.shrink);
    if o.shrink {
        let gc = crate::jvm::gc::choose(&o.command, crate::jvm::gc::Machine::here());
        progress.step("gc", &format!("{}: {}", gc.collector, gc.why));
    }
    let coordination = if o.coordinate {
        match coordinate::Provider::install(Path::new(coordinate::DEFAULT_PROVIDER_DIR)) {
            Ok(provider) => {
                let ctl = Path::new(CONTROL_ROOT).join(random_id());
                let control = coordinate::Control::new(&ctl)?;
                java_options.extend(provider.jvm_options(&ctl));
                Some((provider, control))
            }
            Err(e) if o.trigger == Trigger::App => return Err(e),
            Err(e) => {
                progress.warn(&format!("org.crac Resources will not run: {e}"));
                None
            }
        }
    } else if o.trigger == Trigger::App {
        return Err(Error::usage(
            "--trigger app needs cracin's org.crac provider, but --no-coordinate was given",
            "drop --no-coordinate",
        ));
    } else {
        None
    };
    java_options.extend(cpu.java_options.iter().cloned());
    let (agent, agent_ctl) = individual_setup(&coordination)?;
    java_options.push(individual::jvm_option(&agent, &agent_ctl));
    java_options.extend(o.java_options.iter().cloned());
    let spec = LaunchSpec {
        argv: o.command.clone(),
        cwd: o.cwd.clone(),
        java_options,
        env: crate::jvm::cpu::launch_env(&o.env, &cpu),
        stdout: staging.dir.join("app.stdout"),
        stderr: staging.dir.join("app.stderr"),
        in_container: o.in_container,
    };
    // Secret values are masked wherever the launch line is shown or recorded.
    let (needles, warnings) = crate::ckpt::secrets::needles(
        &o.secrets,
        &crate::jvm::options::app_environment(&o.env),
        &o.command,
        &spec.java_tool_options(),
    )?;
    for w in warnings {
        progress.warn(&w);
    }
    let masked_command = crate::ckpt::secrets::mask_argv(&o.command, &o.secrets.words, &needles);
    progress.step("launch", &masked_command.join(" "));
    staging.keep_logs_on_failure();
    let mut launched = launch::launch(&spec)?;
    crate::os::guard::watch(launched.init_pid);
    let logs = vec![spec.stdout.clone(), spec.stderr.clone()];
    // With --trigger app the application may ask for its checkpoint before the probe passes
    // (its Resources may even have closed the port the probe polls): that ends the wait too.
    let requested_early = |c: &Option<(coordinate::Provider, coordinate::Control)>| {
        o.trigger == Trigger::App
            && c.as_ref()
                .is_some_and(|(_, ctl)| ctl.dir().join("request").exists())
    };
    let mut early = false;
    let ready = match &probe {
        Some(probe) => {
            progress.step("ready", &format!("waiting for {probe}"));
            probe::wait_ready(
                probe,
                &logs,
                o.ready_timeout,
                Duration::from_millis(10),
                || {
                    if requested_early(&coordination) {
                        early = true;
                        return Some("requested".into());
                    }
                    launched.exited()
                },
            )
        }
        None => Ok(Duration::ZERO),
    };
    let ready = match ready {
        Err(NotReady::Exited(_)) if early => {
            progress
                .warn("the application asked for its checkpoint before it was ready: no warm-up");
            Ok(Duration::ZERO)
        }
        r => r,
    };
    let probe_name = probe.as_ref().map(|p| p.to_string()).unwrap_or_default();
    let launch_to_ready = match ready {
        Ok(_) => launched.started.elapsed(),
        Err(NotReady::Exited(status)) => return Err(output::app_exited(status, &logs)),
        Err(NotReady::Timeout) => {
            launched.kill();
            return Err(Error::NotReady {
                probe: probe_name,
                timeout: o.ready_timeout,
                log: output::best_log(&logs),
                log_tail: output::output_tail(&logs, output::TAIL_LINES),
            });
        }
    };
    progress.done(
        "ready",
        ms(launch_to_ready),
        &format!("ready {:.0} ms after launch", ms(launch_to_ready)),
    );
    if let Some(port) = probe
        .as_ref()
        .and_then(Probe::local_port)
        .filter(|_| !early)
    {
        let ours = procfs::tree_of(launched.init_pid);
        let holders = procfs::port_holders(port);
        if !holders.is_empty() && !holders.iter().any(|p| ours.contains(p)) {
            launched.kill();
            return Err(Error::PortInUse {
                port,
                holder: Some(format!(
                    "{}, which answered the readiness probe instead of the application",
                    procfs::describe_pid(holders[0])
                )),
            });
        }
    }
    let java_pid = launched.java_pid();
    let jvm = java_pid
        .and_then(procfs::exe_of)
        .map(|p| Jvm::from_binary(&p));
    if jvm.is_none() {
        progress.warn(
            "no java process found in the application's process tree; checkpointing it anyway",
        );
    }

    let mut warmup_stats = None;
    let t = Instant::now();
    if let Some(w) = o
        .warmup
        .as_ref()
        .filter(|w| !early && !w.urls.is_empty() && w.requests > 0)
    {
        progress.step(
            "warm-up",
            &format!("{} requests, {} at a time", w.requests, w.concurrency),
        );
        let st = warmup::run(w).inspect_err(|_| launched.kill())?;
        progress.done(
            "warm-up",
            st.duration_ms,
            &format!(
                "{} requests, {:.0} req/s at the start, {:.0} req/s at the end",
                st.requests, st.start_rps, st.end_rps
            ),
        );
        warmup_stats = Some(st);
    }
    let warmup_ms = ms(t.elapsed());
    if let Some(status) = launched.exited() {
        return Err(output::app_exited(status, &logs));
    }

    // Coordinated checkpoint: the application's Resources run before the dump.
    let mut claimed: Option<(String, &coordinate::Control)> = None;
    if let Some((_, control)) = &coordination {
        if o.trigger == Trigger::App || control.is_active() {
            let t = Instant::now();
            if o.trigger == Trigger::Ready {
                progress.step(
                    "resources",
                    "asking the application's org.crac Resources to prepare",
                );
                control.request_checkpoint()?;
            } else {
                progress.step(
                    "trigger",
                    "waiting for the application to call org.crac.Core.checkpointRestore()",
                );
            }
            let alive = || procfs::alive(launched.init_pid);
            match control.wait_for_request(Instant::now() + o.trigger_timeout, &alive) {
                Ok(req) => {
                    progress.done("resources", ms(t.elapsed()), "beforeCheckpoint ran");
                    claimed = Some((req.nonce, control));
                }
                Err(coordinate::Waited::Aborted(text)) => {
                    // The provider ran afterRestore; the application carries on. Say so, then stop it.
                    let still_serving = match &probe {
                        Some(p) => p.check(&logs, &probe::probe_agent()),
                        None => launched.exited().is_none(),
                    };
                    launched.kill();
                    return Err(Error::Coordination {
                        why: format!(
                            "a Resource refused the checkpoint in beforeCheckpoint (the application {}; cracin stopped it)",
                            if still_serving { "carried on and still answered its readiness probe" } else { "did not carry on" }
                        ),
                        log_tail: text,
                    });
                }
                Err(coordinate::Waited::Exited) => {
                    let status = launched
                        .exited()
                        .unwrap_or_else(|| "an unknown status".into());
                    return Err(output::app_exited(status, &logs));
                }
                Err(coordinate::Waited::TimedOut) => {
                    launched.kill();
                    return Err(Error::Coordination {
                        why: if o.trigger == Trigger::App {
                            format!(
                                "the application did not call org.crac.Core.checkpointRestore() within {}",
                                humantime::format_duration(o.trigger_timeout)
                            )
                        } else {
                            "the application's org.crac provider did not answer the checkpoint request".into()
                        },
                        log_tail: output::output_tail(&logs, output::TAIL_LINES),
                    });
                }
                Err(coordinate::Waited::Io(e)) => {
                    launched.kill();
                    return Err(*e);
                }
            }
        }
    }

    let t = Instant::now();
    let mut gc_done = false;
    let mut before_dump = Vec::new();
    if o.gc {
        match java_pid {
            Some(pid) => match crate::jvm::options::shrink_before_dump(pid) {
                Ok(steps) => {
                    gc_done = true;
                    before_dump = steps;
                }
                Err(e) => progress.warn(&format!("full GC before the dump skipped: {e}")),
            },
            None => progress.warn("full GC before the dump skipped: no JVM found"),
        }
    }
    let gc_ms = ms(t.elapsed());

    // Hold the Java threads: no application code runs from here until a restore renewed it.
    progress.step("hold", "suspending the Java threads for the dump");
    let t = Instant::now();
    let held = individual::hold_for_dump(
        launched.init_pid,
        &agent_ctl,
        o.trigger_timeout,
        java_pid.filter(|_| jvm.is_some()),
    )
    .inspect_err(|_| launched.kill())?;
    if held.is_empty() {
        progress.warn("no JVM with cracin's agent found: restores will repeat its random numbers");
    }
    progress.done("hold", ms(t.elapsed()), &held.join("; "));

    // Every process of the application (a launcher JVM may run the server JVM as its child).
    let mut listen_ports: Vec<u16> = procfs::tree_of(launched.init_pid)
        .into_iter()
        .flat_map(procfs::listening_ports_of)
        .collect();
    listen_ports.sort();
    listen_ports.dedup();
    // The files the tree holds open, listed while it exists (saved after the dump).
    let tree = procfs::tree_of(launched.init_pid);
    let files_ctx = files::context(
        &tree,
        &o.command,
        &o.cwd,
        jvm.as_ref().map(|j| j.home.as_path()),
        &snapshot,
        &no_snapshot,
        &staging.dir,
    );
    let mut open_files = files::record(&tree, &files_ctx);
    for w in files::unused_flag_paths(&open_files) {
        progress.warn(&w);
    }
    // One dump at a time on this host: two CRIU parasites working at the same moment collide
    // on the directory where they mount a private /proc ("Can't create a directory (-17)",
    // seen with two checkpoints started from one working directory), and the kernel-feature
    // cache below is one file for the host. A dump takes well under a second; the wait is
    // bounded by the dump's own timeout.
    let dump_lock =
        match crate::os::lock::acquire(&crate::os::lock::lock_dir(), "dump.lock", o.dump_timeout) {
            Ok(l) => l,
            Err(e) => {
                launched.kill();
                return Err(e);
            }
        };
    // CRIU's kernel probe, cached for this boot: the dump skips it, and so do the restores.
    let _kdat = crate::stage::kdat::for_criu_run(&criu, criu_options().unprivileged, true);
    progress.step(
        "dump",
        &format!("criu {} dumping pid {}", criu.version, launched.init_pid),
    );
    let t = Instant::now();
    let images = staging.dir.join("images");
    let dump_log = staging.dir.join("dump.log");
    let args = criu::dump_args(launched.init_pid, &images, &dump_log, &criu_options());
    let out = Cmd::new(&criu.path)
        .args(&args)
        .private()
        .timeout(o.dump_timeout)
        .logs(&staging.dir, "criu-dump")
        .run_unchecked();
    drop(dump_lock);
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            launched.kill();
            return Err(e);
        }
    };
    if !out.status.success() {
        individual::release(launched.init_pid, &agent_ctl);
        if let Some((nonce, control)) = &claimed {
            // The JVM is still running (CRIU resumes it): let checkpointRestore() throw.
            let _ = control.report_failure(
                nonce,
                &format!(
                    "criu dump failed: {}",
                    criu_failure::error_tail(&dump_log, &out.stderr)
                ),
            );
        }
        launched.kill();
        // Measured before the partial images go: CRIU's log may have been cut by a full disk.
        let room = diagnose::space::Room::of(&images);
        let failed = keep_failed(staging)?;
        let log = failed.join("dump.log");
        diagnose::space::note_if_full(room.as_ref(), &log);
        let app_logs = [failed.join("app.stderr"), failed.join("app.stdout")];
        return Err(criu_failure::failed(
            Run::Dump,
            &criu.path,
            &args,
            out.status,
            log,
            &out.stderr,
            &app_logs,
        ));
    }
    let dump_ms = ms(t.elapsed());
    // CRIU killed the dumped tree; reap the launcher.
    launched.wait_exit(Duration::from_secs(10));
    drop(launched);
    progress.done("dump", dump_ms, "");
    let t = Instant::now();
    files::save(&mut open_files, &staging.dir)?;
    progress.done("files", ms(t.elapsed()), &files::summary(&open_files));
    // Nothing is sealed before it is private and searched for secrets.
    progress.step("seal", "private permissions, secrets scan, checksums");
    let sealed = crate::ckpt::seal(&staging.dir, &needles, &o.secrets)?;
    progress.done(
        "seal",
        sealed.scan.ms,
        &format!(
            "{} values searched in {} MB of memory",
            sealed.scan.values,
            sealed.scan.bytes >> 20
        ),
    );
    for f in &sealed.scan.allowed {
        progress.warn(&format!(
            "kept with --allow-secrets: {} is in {}",
            f.what, f.file
        ));
    }
    if let Some((_, control)) = &coordination {
        // Restore creates it again; until then it would only hold stale files.
        let _ = std::fs::remove_dir_all(control.dir());
    }
    // The agent's (the same directory when coordinated): restore creates it again too.
    let _ = std::fs::remove_dir_all(&agent_ctl);

    let manifest = Manifest {
        format: dir::FORMAT,
        cracin_version: env!("CARGO_PKG_VERSION").to_string(),
        created: dir::now_rfc3339(),
        engine: "local".into(),
        runtime: "criu".into(),
        command: masked_command,
        cwd: o.cwd.clone(),
        java_tool_options: crate::ckpt::secrets::mask_options(
            &spec.java_tool_options(),
            &o.secrets.words,
            &needles,
        ),
        jvm,
        criu: CriuInfo {
            path: criu.path.clone(),
            version: criu.version.to_string(),
        },
        host: HostInfo::here(),
        ready: o.ready.clone(),
        ready_timeout_s: o.ready_timeout.as_secs_f64(),
        warmup: o.warmup.clone(),
        warmup_stats,
        shrink: Shrink {
            enabled: o.shrink,
            options: shrink_opts,
            gc_before_dump: gc_done,
            before_dump,
        },
        timings_ms: Timings {
            launch_to_ready: ms(launch_to_ready),
            warmup: warmup_ms,
            gc: gc_ms,
            dump: dump_ms,
            total: ms(t_all.elapsed()),
        },
        sizes: dir::sizes_of(&images),
        app_output: AppOutput {
            stdout: spec.stdout.clone(),
            stderr: spec.stderr.clone(),
        },
        listen_ports,
        coordination: match (&coordination, &claimed) {
            (Some((provider, control)), Some((nonce, _))) => Some(dir::Coordination {
                control_dir: control.dir().to_path_buf(),
                nonce: nonce.clone(),
                provider_jar: provider.jar.clone(),
                trigger: if o.trigger == Trigger::App {
                    "app"
                } else {
                    "ready"
                }
                .into(),
            }),
            _ => None,
        },
        cpu: Some(cpu),
        files: Some(open_files),
        checksums: sealed.checksums,
        secrets_scan: Some(sealed.scan),
        individual: (!held.is_empty()).then(|| individual::Individual {
            agent: agent.clone(),
            control_dir: agent_ctl.clone(),
            renew: o.renew,
            held,
        }),
    };
    dir::write_manifest(&staging.dir, &manifest)?;
    let dir = staging.commit()?;
    Ok(Checkpointed { dir, manifest })
}

/// The agent library and its control directory: the provider's when the application is
/// coordinated, else a new one.
fn individual_setup(
    coordination: &Option<(coordinate::Provider, coordinate::Control)>,
) -> Result<(PathBuf, PathBuf)> {
    let agent = individual::install_agent(Path::new(coordinate::DEFAULT_PROVIDER_DIR))?;
    let ctl = match coordination {
        Some((_, control)) => control.dir().to_path_buf(),
        None => coordinate::Control::new(&Path::new(CONTROL_ROOT).join(random_id()))?
            .dir()
            .to_path_buf(),
    };
    Ok((agent, ctl))
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

/// Keeps a failed checkpoint's logs (not its images) beside the target as `<out>.failed`, so the
/// failure can be read again with `cracin explain`; the previous checkpoint stays untouched.
fn keep_failed(mut staging: Staging) -> Result<PathBuf> {
    staging.keep_logs_on_failure();
    let failed = staging.failed_dir();
    drop(staging);
    Ok(failed)
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
