//! `cracin checkpoint` on this host, as a `CheckpointRun` of named steps: preflight (the
//! command, the probe, CRIU), stage (a private staging directory beside the target), configure
//! (the JVM options, org.crac coordination, cracin's agent, the masked launch line), launch,
//! wait until ready, find the JVM, warm up, coordinate (the application's Resources run before
//! the dump), shrink, hold the Java threads, record the open files, dump, save the files, seal
//! (private, secrets scan, checksums), write the manifest and put the checkpoint in place. Each
//! step reads what the earlier ones found in the run; a failure drops the application (killing
//! it) and the staging directory (keeping its logs as `<out>.failed`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{criu_options, preflight, CheckpointOptions, Checkpointed, Trigger, CONTROL_ROOT};
use crate::ckpt::dir::{self, AppOutput, CriuInfo, HostInfo, Manifest, Shrink, Staging, Timings};
use crate::ckpt::files::{self, Recorded};
use crate::ckpt::secrets::Needle;
use crate::diagnose;
use crate::error::{Error, Result};
use crate::jvm::coordinate::{self, Control, Provider, Waited};
use crate::jvm::cpu::CpuRecord;
use crate::jvm::individual;
use crate::jvm::launch::{self, Jvm, LaunchSpec, Launched};
use crate::jvm::output;
use crate::measure::stats::ms;
use crate::os::cmd::Cmd;
use crate::os::procfs;
use crate::stage::criu::{self, Criu};
use crate::stage::criu_failure::{self, Run};
use crate::stage::probe::{self, NotReady, Probe};
use crate::stage::warmup::{self, WarmupStats};
use crate::Progress;

/// Takes one checkpoint: the steps in their order.
pub(super) fn take(o: &CheckpointOptions, progress: &dyn Progress) -> Result<Checkpointed> {
    let mut run = CheckpointRun::preflight(o, progress)?;
    let _control_dirs = ControlDirsGo(run.control_dirs());
    let mut app = run.launch()?;
    let launch_to_ready = run.wait_ready(&mut app)?;
    run.find_jvm(&mut app);
    let (warmup_stats, warmup_ms) = run.warm_up(&mut app)?;
    let nonce = run.coordinate(&mut app)?;
    let (shrink, gc_ms) = run.shrink(&app);
    let held = run.hold(&mut app)?;
    let (listen_ports, mut open_files) = run.record_files(&app);
    let jvm = app.jvm.clone();
    let dump_ms = match run.dump(app, nonce.as_deref())? {
        Ok(ms) => ms,
        Err(failed) => return Err(run.dump_failed(failed)),
    };
    run.save_files(&mut open_files)?;
    let sealed = run.seal()?;
    let manifest = run.manifest(Taken {
        launch_to_ready,
        jvm,
        warmup_stats,
        warmup_ms,
        nonce,
        shrink,
        gc_ms,
        held,
        listen_ports,
        open_files,
        dump_ms,
        sealed,
    });
    run.put_in_place(manifest)
}

/// However the checkpoint ends, its control directories go when this drops (a failed
/// checkpoint's too): until a restore makes them again they would only hold stale files, and
/// they would otherwise pile up in /var/lib/cracin/control.
struct ControlDirsGo(Vec<PathBuf>);

impl Drop for ControlDirsGo {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// One checkpoint being taken: what the preflight and the set-up decided, for the steps after.
struct CheckpointRun<'a> {
    o: &'a CheckpointOptions,
    progress: &'a dyn Progress,
    started: Instant,
    probe: Option<Probe>,
    cpu: CpuRecord,
    snapshot: Vec<PathBuf>,
    no_snapshot: Vec<PathBuf>,
    criu: Criu,
    staging: Staging,
    setup: Setup,
    /// The archive `--cds` made, once the training run made it.
    cds_archive: Option<PathBuf>,
}

/// How the application is started: what `configure` decided.
struct Setup {
    spec: LaunchSpec,
    /// The options that shrink the heap (recorded in the manifest).
    shrink_opts: Vec<String>,
    /// cracin's org.crac provider and the control directory it talks through.
    coordination: Option<(Provider, Control)>,
    /// cracin's JVMTI agent and its control directory.
    agent: PathBuf,
    agent_ctl: PathBuf,
    /// Secret values, masked wherever the launch line is shown or recorded.
    needles: Vec<Needle>,
    masked_command: Vec<String>,
}

/// The application while it runs. Dropping it kills it.
struct App {
    launched: Launched,
    /// Its output files, `[stdout, stderr]`.
    logs: Vec<PathBuf>,
    /// It asked for its checkpoint before its probe passed (`--trigger app`): no warm-up.
    early: bool,
    java_pid: Option<u32>,
    jvm: Option<Jvm>,
}

/// What the steps measured and found, for the manifest.
struct Taken {
    launch_to_ready: Duration,
    jvm: Option<Jvm>,
    warmup_stats: Option<WarmupStats>,
    warmup_ms: f64,
    nonce: Option<String>,
    shrink: Shrink,
    gc_ms: f64,
    held: Vec<String>,
    listen_ports: Vec<u16>,
    open_files: Recorded,
    dump_ms: f64,
    sealed: crate::ckpt::Sealed,
}

/// A `criu dump` that ran and failed (the application was stopped already).
struct DumpFailed {
    args: Vec<String>,
    status: std::process::ExitStatus,
    stderr: String,
}

impl<'a> CheckpointRun<'a> {
    /// Everything that can be refused before anything is started: the probe, the command, the
    /// CPU baseline, the --snapshot paths and CRIU; then the staging directory and the port.
    fn preflight(o: &'a CheckpointOptions, progress: &'a dyn Progress) -> Result<Self> {
        let started = Instant::now();
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
        crate::jvm::cds::validate(o)?;
        let cpu = CpuRecord::new(o.cpu_baseline, &crate::os::sysinfo::cpu().1)?;
        crate::jvm::cpu::check_user_options(o.cpu_baseline, &o.command, &o.java_options)?;
        let snapshot = files::resolve_flag_paths("--snapshot", &o.snapshot)?;
        let no_snapshot = files::resolve_flag_paths("--no-snapshot", &o.no_snapshot)?;
        let criu = preflight(o.criu.as_deref(), "checkpoint")?;
        let staging = stage(o, probe.as_ref())?;
        let setup = configure(o, progress, &cpu, &staging)?;
        Ok(CheckpointRun {
            o,
            progress,
            started,
            probe,
            cpu,
            snapshot,
            no_snapshot,
            criu,
            staging,
            setup,
            cds_archive: None,
        })
    }

    /// Starts the application; from here a failure keeps its logs in `<out>.failed`.
    fn launch(&mut self) -> Result<App> {
        self.progress
            .step("launch", &self.setup.masked_command.join(" "));
        self.staging.keep_logs_on_failure();
        if self.o.cds {
            let (archive, extra) = crate::jvm::cds::prepare(
                self.o,
                &self.setup.spec,
                self.probe.as_ref(),
                &self.staging.dir,
                self.progress,
            )?;
            self.setup.spec.java_options.extend(extra);
            self.cds_archive = Some(archive);
        }
        let spec = &self.setup.spec;
        let launched = launch::launch(spec)?;
        crate::os::guard::watch(launched.init_pid);
        Ok(App {
            launched,
            logs: vec![spec.stdout.clone(), spec.stderr.clone()],
            early: false,
            java_pid: None,
            jvm: None,
        })
    }

    /// Waits until the probe passes (or the application asks for its checkpoint) and checks
    /// that the application itself answered. Returns the time from launch.
    fn wait_ready(&self, app: &mut App) -> Result<Duration> {
        let o = self.o;
        let ready = match &self.probe {
            Some(probe) => {
                self.progress.step("ready", &format!("waiting for {probe}"));
                let (launched, early) = (&mut app.launched, &mut app.early);
                probe::wait_ready(
                    probe,
                    &app.logs,
                    o.ready_timeout,
                    Duration::from_millis(10),
                    || {
                        if self.requested_early() {
                            *early = true;
                            return Some("requested".into());
                        }
                        launched.exited()
                    },
                )
            }
            None => Ok(Duration::ZERO),
        };
        let ready = match ready {
            Err(NotReady::Exited(_)) if app.early => {
                self.progress.warn(
                    "the application asked for its checkpoint before it was ready: no warm-up",
                );
                Ok(Duration::ZERO)
            }
            r => r,
        };
        let launch_to_ready = match ready {
            Ok(_) => app.launched.started.elapsed(),
            Err(NotReady::Exited(status)) => return Err(output::app_exited(status, &app.logs)),
            Err(NotReady::Timeout) => {
                app.launched.kill();
                let probe = self.probe.as_ref().map(|p| p.to_string());
                return Err(output::not_ready(
                    probe.unwrap_or_default(),
                    o.ready_timeout,
                    &app.logs,
                ));
            }
        };
        self.progress.done(
            "ready",
            ms(launch_to_ready),
            &format!("ready {:.0} ms after launch", ms(launch_to_ready)),
        );
        self.check_answered_by_app(app)?;
        Ok(launch_to_ready)
    }

    /// The JVM in the application's process tree (the command may be a script that starts it).
    fn find_jvm(&self, app: &mut App) {
        app.java_pid = app.launched.java_pid();
        app.jvm = app
            .java_pid
            .and_then(procfs::exe_of)
            .map(|p| Jvm::from_binary(&p));
        if app.jvm.is_none() {
            self.progress.warn(
                "no java process found in the application's process tree; checkpointing it anyway",
            );
        }
    }

    /// With --trigger app the application may ask for its checkpoint before the probe passes
    /// (its Resources may even have closed the port the probe polls): that ends the wait too.
    fn requested_early(&self) -> bool {
        self.o.trigger == Trigger::App
            && self
                .setup
                .coordination
                .as_ref()
                .is_some_and(|(_, ctl)| ctl.dir().join("request").exists())
    }

    /// Another process on the probe's port answered instead of the application: refused.
    fn check_answered_by_app(&self, app: &mut App) -> Result<()> {
        let Some(port) = self
            .probe
            .as_ref()
            .and_then(Probe::local_port)
            .filter(|_| !app.early)
        else {
            return Ok(());
        };
        let ours = procfs::tree_of(app.launched.init_pid);
        let holders = procfs::port_holders(port);
        if !holders.is_empty() && !holders.iter().any(|p| ours.contains(p)) {
            app.launched.kill();
            return Err(Error::PortInUse {
                port,
                holder: Some(format!(
                    "{}, which answered the readiness probe instead of the application",
                    procfs::describe_pid(holders[0])
                )),
            });
        }
        Ok(())
    }

    /// Sends the warm-up requests (unless the application asked for its checkpoint early), then
    /// checks that the application survived them.
    fn warm_up(&self, app: &mut App) -> Result<(Option<WarmupStats>, f64)> {
        let mut stats = None;
        let t = Instant::now();
        if let Some(w) = self
            .o
            .warmup
            .as_ref()
            .filter(|w| !app.early && !w.urls.is_empty() && w.requests > 0)
        {
            self.progress.step(
                "warm-up",
                &format!("{} requests, {} at a time", w.requests, w.concurrency),
            );
            let st = warmup::run(w).inspect_err(|_| app.launched.kill())?;
            self.progress.done(
                "warm-up",
                st.duration_ms,
                &format!(
                    "{} requests, {:.0} req/s at the start, {:.0} req/s at the end",
                    st.requests, st.start_rps, st.end_rps
                ),
            );
            stats = Some(st);
        }
        let warmup_ms = ms(t.elapsed());
        if let Some(status) = app.launched.exited() {
            return Err(output::app_exited(status, &app.logs));
        }
        Ok((stats, warmup_ms))
    }

    /// Coordinated checkpoint: the application's org.crac Resources run before the dump (asked
    /// by cracin, or the application asks itself with --trigger app). Returns the nonce of the
    /// request the restore answers, when there was one.
    fn coordinate(&self, app: &mut App) -> Result<Option<String>> {
        let o = self.o;
        let Some((_, control)) = &self.setup.coordination else {
            return Ok(None);
        };
        if !(o.trigger == Trigger::App || control.is_active()) {
            return Ok(None);
        }
        let t = Instant::now();
        if o.trigger == Trigger::Ready {
            self.progress.step(
                "resources",
                "asking the application's org.crac Resources to prepare",
            );
            control.request_checkpoint()?;
        } else {
            self.progress.step(
                "trigger",
                "waiting for the application to call org.crac.Core.checkpointRestore()",
            );
        }
        let init_pid = app.launched.init_pid;
        let alive = || procfs::alive(init_pid);
        match control.wait_for_request(Instant::now() + o.trigger_timeout, &alive) {
            Ok(req) => {
                self.progress
                    .done("resources", ms(t.elapsed()), "beforeCheckpoint ran");
                Ok(Some(req.nonce))
            }
            Err(waited) => Err(self.not_claimed(app, waited)),
        }
    }

    /// Why the application's checkpoint request did not come, as the error (the application is
    /// stopped unless it exited by itself).
    fn not_claimed(&self, app: &mut App, waited: Waited) -> Error {
        let o = self.o;
        match waited {
            Waited::Aborted(text) => {
                // The provider ran afterRestore; the application carries on. Say so, then stop it.
                let still_serving = match &self.probe {
                    Some(p) => p.check(&app.logs, &probe::probe_agent()),
                    None => app.launched.exited().is_none(),
                };
                app.launched.kill();
                Error::Coordination {
                    why: format!(
                        "a Resource refused the checkpoint in beforeCheckpoint (the application {}; cracin stopped it)",
                        if still_serving { "carried on and still answered its readiness probe" } else { "did not carry on" }
                    ),
                    log_tail: text,
                }
            }
            Waited::Exited => {
                let status = app
                    .launched
                    .exited()
                    .unwrap_or_else(|| "an unknown status".into());
                output::app_exited(status, &app.logs)
            }
            Waited::TimedOut => {
                app.launched.kill();
                Error::Coordination {
                    why: if o.trigger == Trigger::App {
                        format!(
                            "the application did not call org.crac.Core.checkpointRestore() within {}",
                            humantime::format_duration(o.trigger_timeout)
                        )
                    } else {
                        "the application's org.crac provider did not answer the checkpoint request"
                            .into()
                    },
                    log_tail: output::output_tail(&app.logs, output::TAIL_LINES),
                }
            }
            Waited::Io(e) => {
                app.launched.kill();
                *e
            }
        }
    }

    /// The full GC and native-heap trim right before the dump (unless --no-gc); a JVM that does
    /// not answer is dumped as it is.
    fn shrink(&self, app: &App) -> (Shrink, f64) {
        let t = Instant::now();
        let mut gc_done = false;
        let mut before_dump = Vec::new();
        if self.o.gc {
            match app.java_pid {
                Some(pid) => match crate::jvm::options::shrink_before_dump(pid, self.o.shrink) {
                    Ok(steps) => {
                        gc_done = true;
                        before_dump = steps;
                    }
                    Err(e) => self
                        .progress
                        .warn(&format!("full GC before the dump skipped: {e}")),
                },
                None => self
                    .progress
                    .warn("full GC before the dump skipped: no JVM found"),
            }
        }
        let shrink = Shrink {
            enabled: self.o.shrink,
            options: self.setup.shrink_opts.clone(),
            gc_before_dump: gc_done,
            before_dump,
        };
        (shrink, ms(t.elapsed()))
    }

    /// Holds the Java threads: no application code runs from here until a restore renewed it.
    fn hold(&self, app: &mut App) -> Result<Vec<String>> {
        self.progress
            .step("hold", "suspending the Java threads for the dump");
        let t = Instant::now();
        let held = individual::hold_for_dump(
            app.launched.init_pid,
            &self.setup.agent_ctl,
            self.o.trigger_timeout,
            app.java_pid.filter(|_| app.jvm.is_some()),
        )
        .inspect_err(|_| app.launched.kill())?;
        if held.is_empty() {
            self.progress
                .warn("no JVM with cracin's agent found: restores will repeat its random numbers");
        }
        self.progress
            .done("hold", ms(t.elapsed()), &held.join("; "));
        Ok(held)
    }

    /// The ports every process of the application listens on (a launcher JVM may run the
    /// server JVM as its child), and the files the tree holds open, listed while it exists
    /// (saved after the dump).
    fn record_files(&self, app: &App) -> (Vec<u16>, Recorded) {
        let mut listen_ports: Vec<u16> = procfs::tree_of(app.launched.init_pid)
            .into_iter()
            .flat_map(procfs::listening_ports_of)
            .collect();
        listen_ports.sort();
        listen_ports.dedup();
        let tree = procfs::tree_of(app.launched.init_pid);
        let files_ctx = files::context(
            &tree,
            &self.o.command,
            &self.o.cwd,
            app.jvm.as_ref().map(|j| j.home.as_path()),
            &self.snapshot,
            &self.no_snapshot,
            &self.staging.dir,
        );
        let open_files = files::record(&tree, &files_ctx);
        for w in files::unused_flag_paths(&open_files) {
            self.progress.warn(&w);
        }
        (listen_ports, open_files)
    }

    /// `criu dump` of the application's tree into the staging directory, one dump at a time on
    /// this host. Returns the dump's time, or, when CRIU failed, what `dump_failed` reports
    /// (the application is stopped either way).
    fn dump(&mut self, mut app: App, nonce: Option<&str>) -> Result<Result<f64, DumpFailed>> {
        let o = self.o;
        let pid = app.launched.init_pid;
        // One dump at a time on this host: two CRIU parasites working at the same moment
        // collide on the directory where they mount a private /proc ("Can't create a directory
        // (-17)", seen with two checkpoints started from one working directory), and the
        // kernel-feature cache below is one file for the host. A dump takes well under a
        // second; the wait is bounded by the dump's own timeout.
        let dump_lock =
            crate::os::lock::acquire(&crate::os::lock::lock_dir(), "dump.lock", o.dump_timeout)
                .inspect_err(|_| app.launched.kill())?;
        // CRIU's kernel probe, cached for this boot: the dump skips it, and so do the restores.
        let _kdat = crate::stage::kdat::for_criu_run(&self.criu, criu_options().unprivileged, true);
        self.progress.step(
            "dump",
            &format!("criu {} dumping pid {pid}", self.criu.version),
        );
        let t = Instant::now();
        let images = self.staging.dir.join("images");
        let dump_log = self.staging.dir.join("dump.log");
        let args = criu::dump_args(pid, &images, &dump_log, &criu_options());
        let out = Cmd::new(&self.criu.path)
            .args(&args)
            .private()
            .timeout(o.dump_timeout)
            .logs(&self.staging.dir, "criu-dump")
            .run_unchecked();
        drop(dump_lock);
        let out = out.inspect_err(|_| app.launched.kill())?;
        if !out.status.success() {
            individual::release(pid, &self.setup.agent_ctl);
            if let (Some(nonce), Some((_, control))) = (nonce, &self.setup.coordination) {
                // The JVM is still running (CRIU resumes it): let checkpointRestore() throw.
                let _ = control.report_failure(
                    nonce,
                    &format!(
                        "criu dump failed: {}",
                        criu_failure::error_tail(&dump_log, &out.stderr)
                    ),
                );
            }
            app.launched.kill();
            return Ok(Err(DumpFailed {
                args,
                status: out.status,
                stderr: out.stderr,
            }));
        }
        let dump_ms = ms(t.elapsed());
        // CRIU killed the dumped tree; reap the launcher.
        app.launched.wait_exit(Duration::from_secs(10));
        drop(app);
        self.progress.done("dump", dump_ms, "");
        Ok(Ok(dump_ms))
    }

    /// A failed dump: its logs (not its images) are kept beside the target as `<out>.failed`,
    /// so the failure can be read again with `cracin explain`; the previous checkpoint stays.
    fn dump_failed(self, f: DumpFailed) -> Error {
        // Measured before the partial images go: CRIU's log may have been cut by a full disk.
        let room = diagnose::space::Room::of(&self.staging.dir.join("images"));
        let mut staging = self.staging;
        staging.keep_logs_on_failure();
        let failed = staging.failed_dir();
        drop(staging);
        let log = failed.join("dump.log");
        diagnose::space::note_if_full(room.as_ref(), &log);
        let app_logs = [failed.join("app.stderr"), failed.join("app.stdout")];
        criu_failure::failed(
            Run::Dump,
            &self.criu.path,
            &f.args,
            f.status,
            log,
            &f.stderr,
            &app_logs,
        )
    }

    /// Saves the scratch and --snapshot files the application held open.
    fn save_files(&self, open_files: &mut Recorded) -> Result<()> {
        let t = Instant::now();
        files::save(open_files, &self.staging.dir)?;
        self.progress
            .done("files", ms(t.elapsed()), &files::summary(open_files));
        Ok(())
    }

    /// Nothing is sealed before it is private and searched for secrets.
    fn seal(&self) -> Result<crate::ckpt::Sealed> {
        self.progress
            .step("seal", "private permissions, secrets scan, checksums");
        let sealed = crate::ckpt::seal(&self.staging.dir, &self.setup.needles, &self.o.secrets)?;
        self.progress.done(
            "seal",
            sealed.scan.ms,
            &format!(
                "{} values searched in {} MB of memory",
                sealed.scan.values,
                sealed.scan.bytes >> 20
            ),
        );
        for f in &sealed.scan.allowed {
            self.progress.warn(&format!(
                "kept with --allow-secrets: {} is in {}",
                f.what, f.file
            ));
        }
        Ok(sealed)
    }

    /// The provider's and the agent's control directories (the same one when coordinated).
    fn control_dirs(&self) -> Vec<PathBuf> {
        let mut v = vec![self.setup.agent_ctl.clone()];
        if let Some((_, control)) = &self.setup.coordination {
            v.push(control.dir().to_path_buf());
        }
        v
    }

    /// What the checkpoint is, how it was taken and what a restore needs (cracin.json).
    fn manifest(&self, t: Taken) -> Manifest {
        let o = self.o;
        let s = &self.setup;
        Manifest {
            format: dir::FORMAT,
            cracin_version: env!("CARGO_PKG_VERSION").to_string(),
            created: dir::now_rfc3339(),
            engine: crate::engine::EngineKind::Local,
            runtime: "criu".into(),
            command: s.masked_command.clone(),
            cwd: o.cwd.clone(),
            java_tool_options: crate::ckpt::secrets::mask_options(
                &s.spec.java_tool_options(),
                &o.secrets.words,
                &s.needles,
            ),
            jvm: t.jvm,
            criu: CriuInfo {
                path: self.criu.path.clone(),
                version: self.criu.version.to_string(),
            },
            host: HostInfo::here(),
            ready: o.ready.clone(),
            ready_timeout_s: o.ready_timeout.as_secs_f64(),
            warmup: o.warmup.clone(),
            warmup_stats: t.warmup_stats,
            shrink: t.shrink,
            timings_ms: Timings {
                launch_to_ready: ms(t.launch_to_ready),
                warmup: t.warmup_ms,
                gc: t.gc_ms,
                dump: t.dump_ms,
                total: ms(self.started.elapsed()),
            },
            sizes: dir::sizes_of(&self.staging.dir.join("images")),
            app_output: AppOutput {
                stdout: s.spec.stdout.clone(),
                stderr: s.spec.stderr.clone(),
            },
            listen_ports: t.listen_ports,
            coordination: match (&s.coordination, t.nonce) {
                (Some((provider, control)), Some(nonce)) => Some(dir::Coordination {
                    control_dir: control.dir().to_path_buf(),
                    nonce,
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
            cpu: Some(self.cpu.clone()),
            files: Some(t.open_files),
            checksums: t.sealed.checksums,
            secrets_scan: Some(t.sealed.scan),
            individual: (!t.held.is_empty()).then(|| individual::Individual {
                agent: s.agent.clone(),
                control_dir: s.agent_ctl.clone(),
                renew: o.renew,
                held: t.held,
            }),
        }
    }

    /// Writes the manifest and moves the staging directory to the target (replacing an old
    /// checkpoint only now, with --force).
    fn put_in_place(self, manifest: Manifest) -> Result<Checkpointed> {
        dir::write_manifest(&self.staging.dir, &manifest)?;
        let (archive, progress) = (self.cds_archive, self.progress);
        let dir = self.staging.commit()?;
        if let Some(archive) = archive {
            forget_old_archives(progress, &archive, &dir);
        }
        Ok(Checkpointed { dir, manifest })
    }
}

/// After a `--cds` checkpoint: its archive is noted as used by it, and archives that no
/// checkpoint uses any more (removed, or replaced with --force) are removed.
fn forget_old_archives(progress: &dyn Progress, archive: &Path, dir: &Path) {
    if let Err(e) = crate::jvm::cds::add_user(archive, dir) {
        progress.done("cds", 0.0, &format!("not noted as used ({e})"));
    }
    let cds_dir = archive
        .parent()
        .unwrap_or(Path::new(crate::jvm::cds::DEFAULT_CDS_DIR));
    let removed = crate::jvm::cds::prune(cds_dir, crate::jvm::cds::KEEP_UNUSED_FOR);
    if !removed.is_empty() {
        let bytes: u64 = removed.iter().map(|(_, b)| b).sum();
        progress.done(
            "cds",
            0.0,
            &format!(
                "removed {} archive(s) no checkpoint uses any more ({:.1} MB) from {}",
                removed.len(),
                bytes as f64 / 1e6,
                cds_dir.display()
            ),
        );
    }
}

/// A private staging directory beside the target, which cracin's guardian removes if cracin is
/// killed; refused when the probe's port is taken before anything started.
fn stage(o: &CheckpointOptions, probe: Option<&Probe>) -> Result<Staging> {
    let staging = Staging::new(&o.out, o.force)?;
    // Killed before the end, cracin leaves no staging directory behind (its guardian removes it).
    crate::os::guard::remove_on_death(&staging.dir);
    if let Some(port) = probe.and_then(Probe::local_port) {
        if let Some(holder) = procfs::port_holder(port) {
            return Err(Error::PortInUse { port, holder });
        }
    }
    Ok(staging)
}

/// The JVM options (cracin's, the collector's, the provider's, the CPU baseline's, the agent's,
/// then the user's), the launch line and the secret values to mask in it.
fn configure(
    o: &CheckpointOptions,
    progress: &dyn Progress,
    cpu: &CpuRecord,
    staging: &Staging,
) -> Result<Setup> {
    let (mut java_options, shrink_opts) =
        crate::jvm::options::java_options_for(&o.command, o.shrink);
    if o.shrink {
        let gc = crate::jvm::gc::choose(&o.command, crate::jvm::gc::Machine::here());
        progress.step("gc", &format!("{}: {}", gc.collector, gc.why));
    }
    let coordination = coordination(o, progress, &mut java_options)?;
    java_options.extend(cpu.java_options.iter().cloned());
    let (agent, agent_ctl) = individual_setup(&coordination)?;
    java_options.push(individual::jvm_option(&agent, &agent_ctl));
    java_options.extend(o.java_options.iter().cloned());
    let spec = LaunchSpec {
        argv: o.command.clone(),
        cwd: o.cwd.clone(),
        java_options,
        env: crate::jvm::cpu::launch_env(&o.env, cpu),
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
    Ok(Setup {
        spec,
        shrink_opts,
        coordination,
        agent,
        agent_ctl,
        needles,
        masked_command,
    })
}

/// cracin's org.crac provider and a fresh control directory, its options added; without it
/// the application's Resources do not run (a warning, or an error with --trigger app).
fn coordination(
    o: &CheckpointOptions,
    progress: &dyn Progress,
    java_options: &mut Vec<String>,
) -> Result<Option<(Provider, Control)>> {
    if !o.coordinate {
        if o.trigger == Trigger::App {
            return Err(Error::usage(
                "--trigger app needs cracin's org.crac provider, but --no-coordinate was given",
                "drop --no-coordinate",
            ));
        }
        return Ok(None);
    }
    match Provider::install(Path::new(coordinate::DEFAULT_PROVIDER_DIR)) {
        Ok(provider) => {
            let ctl = Path::new(CONTROL_ROOT).join(crate::os::id::random_hex());
            let control = Control::new(&ctl)?;
            java_options.extend(provider.jvm_options(&ctl));
            Ok(Some((provider, control)))
        }
        Err(e) if o.trigger == Trigger::App => Err(e),
        Err(e) => {
            progress.warn(&format!("org.crac Resources will not run: {e}"));
            Ok(None)
        }
    }
}

/// The agent library and its control directory: the provider's when the application is
/// coordinated, else a new one.
fn individual_setup(coordination: &Option<(Provider, Control)>) -> Result<(PathBuf, PathBuf)> {
    let agent = individual::install_agent(Path::new(coordinate::DEFAULT_PROVIDER_DIR))?;
    let ctl = match coordination {
        Some((_, control)) => control.dir().to_path_buf(),
        None => Control::new(&Path::new(CONTROL_ROOT).join(crate::os::id::random_hex()))?
            .dir()
            .to_path_buf(),
    };
    Ok((agent, ctl))
}

/// Errors name the application's logs in the staging directory, which a failure moves to
/// `<out>.failed`: name them where they are now.
pub(super) fn point_logs_at(mut e: Error, failed: &Path) -> Error {
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
