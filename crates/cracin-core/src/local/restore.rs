//! `cracin restore` on this host, as a `RestoreRun` of named steps: open (the checkpoint's
//! owner, paths and checksums, CRIU, the CPU), lock (one restore at a time, its ports free),
//! choose the probe, prepare the output files, put back the saved files, check the org.crac
//! provider and the agent, prepare CRIU (the kdat cache, read-ahead, lazy pages), run CRIU,
//! renew the JVM, check that the ports are the application's, and wait until it is ready. Each
//! step marks where the time went (`restore --timings`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{check_images, criu_options, preflight, RestoreOptions, Restored, CONTROL_ROOT};
use crate::ckpt::dir::{self, CheckpointDir};
use crate::ckpt::files;
use crate::error::{Error, Result};
use crate::jvm::coordinate;
use crate::jvm::individual;
use crate::jvm::output;
use crate::measure::stats::ms;
use crate::measure::Stopwatch;
use crate::os::cmd::Cmd;
use crate::os::lock::Lock;
use crate::os::procfs;
use crate::stage::criu::{self, Criu, CriuOptions};
use crate::stage::criu_failure::{self, Run};
use crate::stage::kdat::Placement;
use crate::stage::probe::{self, NotReady, Probe};
use crate::Progress;

/// Restores one checkpoint: the steps in their order.
pub(super) fn restore(o: &RestoreOptions, progress: &dyn Progress) -> Result<Restored> {
    let mut run = RestoreRun::open(o, progress)?;
    let lock = run.lock()?;
    let probe = run.probe()?;
    let out = run.outputs()?;
    run.sw.mark("cracin: ports, log files", "");
    run.put_back_files()?;
    run.check_provider_and_agent()?;
    run.adopt_if_foreground();
    run.sw.mark("cracin: org.crac provider", "");
    let kdat = run.prepare_criu(&out)?;
    let (pid, criu_ms) = run.run_criu(&out)?;
    // Only now that the guardian knows the restored pid (a signal in between would leave it
    // running): CRIU's phases from its log, and the kdat cache put away.
    run.sw.mark_parts(
        "criu restore",
        crate::measure::criu_run_phases(criu_ms, &out.log),
    );
    let kdat_state = kdat.state.clone();
    drop(kdat);
    let renew_ms = run.renew(pid)?;
    run.check_ports_are_ours(pid)?;
    drop(lock);
    run.sw.mark(
        "cracin: after criu",
        "kdat cache put away, pid read, port check",
    );
    let ready_ms = run.wait_ready(pid, probe, &out)?;
    if !o.foreground {
        crate::os::guard::forget(pid);
    }
    // Once per boot, after the figure: the next restores skip CRIU's kernel probe.
    crate::stage::kdat::make_after_restore(&run.criu, run.copts.unprivileged, &kdat_state);
    Ok(Restored {
        pid,
        ready_ms,
        criu_ms,
        renew_ms,
        log_dir: out.log_dir,
        stdout: out.stdout,
        stderr: out.stderr,
        timings: run.sw.phases,
    })
}

/// One restore under way: the checkpoint it restores, the CRIU it uses, and where the time went.
struct RestoreRun<'a> {
    o: &'a RestoreOptions,
    progress: &'a dyn Progress,
    /// What `ready_ms` counts from: the start of the cracin process unless given.
    t0: Instant,
    sw: Stopwatch,
    ck: CheckpointDir,
    criu: Criu,
    copts: CriuOptions,
}

/// Where this restore writes: the application's output, CRIU's log and pid file, and the
/// exact `criu restore` arguments.
struct Outputs {
    log_dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    pidfile: PathBuf,
    log: PathBuf,
    args: Vec<String>,
}

impl<'a> RestoreRun<'a> {
    /// Opens the checkpoint only if it can be trusted (owner, mode, recorded paths, checksums
    /// of the small image files), finds CRIU, and checks the CPU's features.
    fn open(o: &'a RestoreOptions, progress: &'a dyn Progress) -> Result<Self> {
        // Readiness counts from the start of the cracin process: what the user waits for.
        let t0 = o.counted_from.unwrap_or_else(crate::measure::process_start);
        let mut sw = Stopwatch::from(t0);
        let ck_path = crate::ckpt::trust::resolve(&dir::absolute(&o.dir)?);
        crate::ckpt::trust::check_owner(&ck_path)?;
        let ck = CheckpointDir::open(&ck_path)?;
        crate::ckpt::trust::check_manifest_paths(&ck.path, &ck.manifest, Path::new(CONTROL_ROOT))?;
        check_images(&ck, false)?;
        let criu = preflight(o.criu.as_deref(), "restore")?;
        let missing = crate::jvm::cpu::restore_check(
            ck.manifest.cpu.as_ref(),
            &ck.manifest.host.cpu_flags,
            &crate::jvm::cpu::host_flags(),
        );
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
        sw.mark("cracin: checkpoint, CRIU, CPU", "");
        let mut copts = criu_options();
        copts.lazy_pages = o.lazy_pages;
        Ok(RestoreRun {
            o,
            progress,
            t0,
            sw,
            ck,
            criu,
            copts,
        })
    }

    /// One restore at a time on this host from the port check until CRIU is done: two restores
    /// started together would both find the port free (and CRIU restores the JVM's attach
    /// socket, the same path for every JVM that was PID 1, as a ghost that two cannot bind).
    /// Then the ports the application listened on must be free.
    fn lock(&mut self) -> Result<Lock> {
        let lock = crate::os::lock::acquire(
            &crate::os::lock::lock_dir(),
            "restore.lock",
            self.o.lock_timeout,
        )?;
        self.sw
            .mark("cracin: restore lock", "waits while another restore runs");
        for port in &self.ck.manifest.listen_ports {
            if let Some(holder) = procfs::port_holder(*port) {
                return Err(Error::PortInUse {
                    port: *port,
                    holder,
                });
            }
        }
        Ok(lock)
    }

    /// The readiness probe: --ready, else the recorded one; none with --no-wait.
    fn probe(&self) -> Result<Option<Probe>> {
        let m = &self.ck.manifest;
        Ok(match (self.o.ready.as_ref(), m.ready.as_ref()) {
            _ if self.o.no_wait => None,
            (Some(r), _) => Some(Probe::parse(r)?),
            // A restored application does not print its start-up lines again: a recorded log:
            // probe would never pass, so wait for its listening port instead.
            (None, Some(r)) if r.starts_with("log:") => match m.listen_ports.first() {
                Some(port) => {
                    self.progress.warn(&format!(
                        "the recorded probe `{r}` reads start-up output, which a restored application does not print again: waiting for tcp://127.0.0.1:{port} instead"
                    ));
                    Some(Probe::parse(&format!("tcp://127.0.0.1:{port}"))?)
                }
                None => None,
            },
            (None, Some(r)) => Some(Probe::parse(r)?),
            (None, None) => None,
        })
    }

    /// A private folder for this restore's output and CRIU's log (`restores/<time>-<pid>` in the
    /// checkpoint), and the `criu restore` arguments that point the application's recorded
    /// output at fresh files.
    fn outputs(&self) -> Result<Outputs> {
        let m = &self.ck.manifest;
        let log_dir = if self.o.inherit_stdio {
            crate::os::cmd::private_tmp_dir("cracin-restore")?
        } else {
            crate::ckpt::logs::restore_log_dir(&self.ck.path)?
        };
        let pidfile = log_dir.join("pid");
        let log = log_dir.join("restore.log");
        let inherit = vec![
            (3, m.app_output.stdout.display().to_string()),
            (4, m.app_output.stderr.display().to_string()),
        ];
        let args = criu::restore_args(&self.ck.images(), &log, &pidfile, &inherit, &self.copts);
        Ok(Outputs {
            stdout: log_dir.join("app.stdout"),
            stderr: log_dir.join("app.stderr"),
            log_dir,
            pidfile,
            log,
            args,
        })
    }

    /// Data changed since the checkpoint refuses; scratch files are put back (ckpt::files).
    fn put_back_files(&mut self) -> Result<()> {
        if let Some(f) = &self.ck.manifest.files {
            let t = Instant::now();
            let p = files::prepare_restore(&self.ck.path, f)?;
            if !p.put_back.is_empty() {
                self.progress
                    .done("files", ms(t.elapsed()), &files::put_back_summary(&p));
            }
        }
        self.sw.mark(
            "cracin: saved files",
            "data checked, scratch files put back",
        );
        Ok(())
    }

    /// The org.crac provider and the agent that CRIU maps back by path must be this cracin's;
    /// the waiting checkpointRestore() learns it was restored.
    fn check_provider_and_agent(&self) -> Result<()> {
        let m = &self.ck.manifest;
        if let Some(c) = &m.coordination {
            // The waiting checkpointRestore() in the image learns it was restored from this file.
            let jar = coordinate::install_provider(Path::new(coordinate::DEFAULT_PROVIDER_DIR))?;
            if jar != c.provider_jar {
                return Err(self.taken_by_another("org.crac provider", &c.provider_jar, &jar));
            }
            coordinate::Control::open(&c.control_dir).mark_restored(&c.nonce)?;
        }
        if let Some(ind) = &m.individual {
            // CRIU maps the agent by path: it must be this cracin's agent, at the recorded path.
            let so = individual::install_agent(Path::new(coordinate::DEFAULT_PROVIDER_DIR))?;
            if so != ind.agent {
                return Err(self.taken_by_another("agent", &ind.agent, &so));
            }
        } else if !self.o.config.is_empty() {
            return Err(Error::usage(
                "--env and --property need cracin's agent in the checkpointed JVM, and this checkpoint has none",
                "take the checkpoint again with this cracin (every checkpoint of a JVM now loads the agent)",
            ));
        }
        Ok(())
    }

    fn taken_by_another(&self, what: &str, recorded: &Path, ours: &Path) -> Error {
        Error::BadCheckpoint {
            path: self.ck.path.clone(),
            why: format!(
                "it was taken with another cracin's {what} ({}); this cracin has {}",
                recorded.display(),
                ours.display()
            ),
        }
    }

    /// With --foreground: the restored process is criu's child; when criu exits it is
    /// re-parented to the nearest subreaper, which makes cracin able to wait for it and learn
    /// its exit status.
    fn adopt_if_foreground(&self) {
        if self.o.foreground {
            unsafe {
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            }
        }
    }

    /// What CRIU finds ready: the kdat cache for this boot in place (held until CRIU is done),
    /// the pages read ahead, and with --lazy-pages the daemon that serves them.
    fn prepare_criu(&mut self, out: &Outputs) -> Result<Placement> {
        let kdat = crate::stage::kdat::for_criu_run(&self.criu, self.copts.unprivileged, false);
        self.sw.mark("cracin: kdat cache", kdat.state.to_string());
        let asked = crate::stage::readahead::pages(&self.ck.images());
        self.sw.mark(
            "cracin: read-ahead of the pages",
            format!("{:.0} MB asked for", asked as f64 / 1e6),
        );
        if self.o.lazy_pages {
            // After the kdat cache is in place: the daemon is a CRIU run too.
            crate::stage::lazy::start(&self.criu, &self.ck.images(), &out.log_dir)?;
            self.sw.mark("cracin: lazy-pages daemon", "");
        }
        Ok(kdat)
    }

    /// `criu restore`, with the application's output going to fresh files (or cracin's own
    /// stdout/stderr). Returns the restored pid, which the guardian watches from then on, and
    /// CRIU's time.
    fn run_criu(&self, out: &Outputs) -> Result<(u32, f64)> {
        self.progress.step(
            "restore",
            &format!(
                "criu {} restoring {}",
                self.criu.version,
                self.ck.path.display()
            ),
        );
        // A stop request (SIGTERM, Ctrl-C) that arrives while criu restores is held back until
        // the guardian knows the restored pid: taking effect in between, it would orphan the
        // application. Put back below, it then ends cracin and the guardian stops the
        // application.
        let held = crate::os::signals::HeldStopSignals::hold();
        crate::os::guard::watch_pidfile(&out.pidfile);
        let t = Instant::now();
        let (out_fd, err_fd) = self.output_files(out)?;
        let mut cmd = Cmd::new(&self.criu.path).args(&out.args);
        for (k, v) in crate::stage::criu::restore_env(self.criu.version) {
            cmd = cmd.env(k, v);
        }
        let result = cmd
            .private()
            .fd(3, out_fd)
            .fd(4, err_fd)
            .timeout(Duration::from_secs(120))
            .logs(&out.log_dir, "criu-restore")
            .run_unchecked()?;
        let criu_ms = ms(t.elapsed());
        let _ = crate::os::perms::make_private(&out.log_dir);
        if !result.status.success() {
            return Err(criu_failure::failed(
                Run::Restore,
                &self.criu.path,
                &out.args,
                result.status,
                out.log.clone(),
                &result.stderr,
                std::slice::from_ref(&out.stderr),
            ));
        }
        let pid: u32 = std::fs::read_to_string(&out.pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::BadCheckpoint {
                path: self.ck.path.clone(),
                why: format!(
                    "criu restored it but wrote no pid to {}",
                    out.pidfile.display()
                ),
            })?;
        self.progress
            .done("restore", criu_ms, &format!("pid {pid}"));
        // Until it is ready (and for as long as a foreground cracin stays attached), a cracin
        // that dies takes the restored application with it.
        crate::os::guard::watch(pid);
        drop(held);
        Ok((pid, criu_ms))
    }

    /// The files the restored application writes to: its own (private, appended) or copies of
    /// cracin's stdout and stderr (`--inherit-stdio`, a container's logs).
    fn output_files(&self, out: &Outputs) -> Result<(std::fs::File, std::fs::File)> {
        if self.o.inherit_stdio {
            use std::os::fd::AsFd;
            let dup = |fd: std::os::fd::BorrowedFd| {
                fd.try_clone_to_owned()
                    .map(std::fs::File::from)
                    .map_err(|e| Error::io("stdout", e))
            };
            Ok((
                dup(std::io::stdout().as_fd())?,
                dup(std::io::stderr().as_fd())?,
            ))
        } else {
            let open = |p: &Path| crate::os::perms::append_private_file(p);
            Ok((open(&out.stdout)?, open(&out.stderr)?))
        }
    }

    /// cracin's agent renews the JVM's random state and applies --env/--property before any
    /// Java thread runs again. A restored instance that would repeat the checkpoint's secrets
    /// is killed rather than left serving.
    fn renew(&mut self, pid: u32) -> Result<Option<f64>> {
        let Some(ind) = &self.ck.manifest.individual else {
            return Ok(None);
        };
        let step = if ind.renew { "renew" } else { "resume" };
        self.progress.step(
            step,
            "fresh random state and restore-time settings, then the threads go on",
        );
        match individual::after_restore(pid, ind, &self.o.config, Duration::from_secs(30)) {
            Ok(r) => {
                self.progress.done(step, r.ms, &r.reports.join("; "));
                self.sw.mark(
                    "cracin: agent hand-shake",
                    "fresh random state, restore-time settings",
                );
                Ok(Some(r.ms))
            }
            Err(e) => {
                kill(pid);
                Err(e)
            }
        }
    }

    /// Nobody else may have taken one of its ports meanwhile (a process that is not cracin).
    fn check_ports_are_ours(&self, pid: u32) -> Result<()> {
        let ours = procfs::tree_of(pid);
        for port in &self.ck.manifest.listen_ports {
            // Cheap first: are all sockets listening on the port the restored tree's own?
            if procfs::only_ours_listen(*port, &ours) {
                continue;
            }
            let outsiders: Vec<u32> = procfs::port_holders(*port)
                .into_iter()
                .filter(|p| !ours.contains(p))
                .collect();
            if let Some(other) = outsiders.first() {
                kill(pid);
                return Err(Error::PortInUse {
                    port: *port,
                    holder: Some(procfs::describe_pid(*other)),
                });
            }
        }
        Ok(())
    }

    /// Waits for the probe's first answer; returns the time from `t0` (None without a probe).
    /// A restored application that does not answer in time is killed.
    fn wait_ready(&mut self, pid: u32, probe: Option<Probe>, out: &Outputs) -> Result<Option<f64>> {
        let Some(probe) = probe else {
            return Ok(None);
        };
        let logs = vec![out.stdout.clone(), out.stderr.clone()];
        match probe::wait_ready(
            &probe,
            &logs,
            self.o.ready_timeout,
            Duration::from_millis(2),
            || procfs::gone(pid),
        ) {
            Ok(_) => {
                let ready_ms = ms(self.t0.elapsed());
                self.sw.mark("first answer", probe.to_string());
                Ok(Some(ready_ms))
            }
            Err(e) => {
                if let NotReady::Timeout = e {
                    kill(pid);
                }
                Err(Error::RestoredNotReady {
                    probe: probe.to_string(),
                    timeout: self.o.ready_timeout,
                    log: out.stderr.clone(),
                    log_tail: output::output_tail(&logs, output::TAIL_LINES),
                })
            }
        }
    }
}

/// SIGKILL to a restored application that must not go on.
fn kill(pid: u32) {
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}
