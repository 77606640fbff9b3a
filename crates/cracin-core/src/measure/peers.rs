//! The peers a restore is measured against, each timed from the exec of a command to the first
//! HTTP 2xx, the way a user gets them: `cracin restore` as a command (its whole process, not the
//! library call), a plain `criu restore` of the same images with the command line cracin would
//! run (what a user doing it by hand gets: no cache of CRIU's kernel probe unless /run is a
//! tmpfs; plus the resume hand-shake with cracin's agent that the checkpointed JVM waits for),
//! and a JDK 25 cold start with a Leyden AOT cache made by a training run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ckpt::dir::CheckpointDir;
use crate::error::{Error, Result};
use crate::measure::runs;
use crate::stage::criu::{self, Criu, CriuOptions};
use crate::stage::probe::{NotReady, Probe};

/// Polls `probe` from `start` until it answers; the time from `start` to the first answer.
fn first_answer(
    probe: &Probe,
    start: Instant,
    timeout: Duration,
    what: &str,
    dead: impl FnMut() -> Option<String>,
) -> Result<f64> {
    match runs::first_answer(probe, &[], start, timeout, dead) {
        Ok(t) => Ok(t),
        Err(NotReady::Exited(how)) => Err(Error::RestoreFailed {
            command: what.into(),
            status: how,
            log: PathBuf::new(),
            log_tail: String::new(),
            diagnosis: Vec::new(),
        }),
        Err(NotReady::Timeout) => Err(Error::RestoredNotReady {
            probe: probe.to_string(),
            timeout,
            log: PathBuf::new(),
            log_tail: String::new(),
        }),
    }
}

/// `cracin restore DIR` run as a command: exec → first 2xx, and the restored PID.
pub fn cracin_restore_command(
    cracin: &Path,
    ck: &Path,
    criu: &Path,
    probe: &Probe,
    timeout: Duration,
) -> Result<(f64, u32)> {
    let start = Instant::now();
    let child = Command::new(cracin)
        .arg("restore")
        .arg(ck)
        .arg("--criu")
        .arg(criu)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Spawn {
            command: format!("{} restore {}", cracin.display(), ck.display()),
            source: e,
        })?;
    let took = first_answer(probe, start, timeout, "cracin restore", || None);
    let out = child.wait_with_output().map_err(|e| Error::io(cracin, e))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let pid = v["pid"].as_u64().map(|p| p as u32);
    match (took, pid) {
        (Ok(t), Some(pid)) => Ok((t, pid)),
        (Err(e), Some(pid)) => {
            runs::stop_pid(pid);
            Err(e)
        }
        (Err(e), None) => Err(e),
        (Ok(_), None) => Err(Error::RestoreFailed {
            command: format!("{} restore {} --json", cracin.display(), ck.display()),
            status: crate::os::cmd::describe_status(out.status),
            log: PathBuf::new(),
            log_tail: String::from_utf8_lossy(&out.stdout).into_owned(),
            diagnosis: Vec::new(),
        }),
    }
}

/// A plain `criu restore` of the checkpoint's images with the command line cracin runs (fresh
/// output files handed in as fds 3 and 4), without anything cracin does around it: exec → first
/// 2xx, and the restored PID. Its log goes to `work`.
pub fn plain_criu_restore(
    criu: &Criu,
    ck: &CheckpointDir,
    probe: &Probe,
    timeout: Duration,
    work: &Path,
) -> Result<(f64, u32)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
    let log = work.join("restore.log");
    let pidfile = work.join("pid");
    let _ = std::fs::remove_file(&pidfile);
    let m = &ck.manifest;
    let inherit = vec![
        (3, m.app_output.stdout.display().to_string()),
        (4, m.app_output.stderr.display().to_string()),
    ];
    let args = criu::restore_args(
        &ck.images(),
        &log,
        &pidfile,
        &inherit,
        &CriuOptions::default(),
    );
    let open = |name: &str| {
        let p = work.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))
    };
    let (out, err) = (open("app.stdout")?, open("app.stderr")?);
    let (o, e) = (out.as_raw_fd(), err.as_raw_fd());
    let mut c = Command::new(&criu.path);
    c.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    unsafe {
        // The application's output files on fds 3 and 4, as cracin hands them to criu.
        c.pre_exec(move || crate::os::cmd::place_fds(&[(3, o), (4, e)]));
    }
    let command = format!("{} {}", criu.path.display(), args.join(" "));
    let start = Instant::now();
    let mut child = c.spawn().map_err(|e| Error::Spawn {
        command: command.clone(),
        source: e,
    })?;
    // By hand: `criu restore -d` returns once the tree runs; the JVM of a cracin checkpoint then
    // holds its threads until its agent hears from a restorer (issue 10a), the one more step
    // done here before asking the application (a request to a held JVM would just wait).
    let deadline = start + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => break None,
        }
    };
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let mut failed = match status {
        Some(st) if st.success() => None,
        Some(st) => Some(crate::os::cmd::describe_status(st)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Some(format!("criu did not return within {timeout:?}"))
        }
    };
    if let (None, Some(p), Some(ind)) = (&failed, pid, &ck.manifest.individual) {
        let cfg = crate::jvm::individual::Config::default();
        if let Err(e) = crate::jvm::individual::after_restore(p, ind, &cfg, timeout) {
            failed = Some(format!("the agent's hand-shake failed: {e}"));
        }
    }
    let took = match (&failed, pid) {
        (None, Some(p)) => Some(first_answer(probe, start, timeout, &command, || {
            crate::os::procfs::gone(p)
        })),
        _ => None,
    };
    match (took, pid) {
        (Some(Ok(t)), Some(pid)) => Ok((t, pid)),
        (took, pid) => {
            if let Some(pid) = pid {
                runs::stop_pid(pid);
            }
            let why = failed
                .or_else(|| took.and_then(|r| r.err()).map(|e| e.to_string()))
                .unwrap_or_else(|| "criu wrote no pid file".into());
            Err(Error::RestoreFailed {
                command,
                status: why,
                log_tail: crate::os::cmd::tail_of_file(&log, 20),
                diagnosis: crate::diagnose::explain_files(std::slice::from_ref(&log)),
                log,
            })
        }
    }
}

/// The command with its `java` replaced by `<jdk>/bin/java` and `opts` put right after it.
pub fn on_jdk(command: &[String], jdk: &Path, opts: &[String]) -> Result<Vec<String>> {
    let java = jdk.join("bin/java");
    if !crate::os::cmd::is_executable(&java) {
        return Err(Error::usage(
            format!("{} is not a JDK (no executable bin/java)", jdk.display()),
            "give the JDK's home directory, e.g. /usr/lib/jvm/temurin-25-jdk-amd64",
        ));
    }
    let Some(first) = command.first().filter(|a| Path::new(a).ends_with("java")) else {
        return Err(Error::usage(
            "the AOT-cache column needs a command that starts with java",
            "write the command as `java ...`",
        ));
    };
    let _ = first;
    let mut v = vec![java.display().to_string()];
    v.extend(opts.iter().cloned());
    v.extend(command[1..].iter().cloned());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_moves_to_another_jdk_with_options_first() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        let java = d.path().join("bin/java");
        std::fs::write(&java, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&java, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let cmd: Vec<String> = ["/usr/bin/java", "-jar", "a.jar"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = on_jdk(&cmd, d.path(), &["-XX:AOTCache=x.aot".into()]).unwrap();
        assert_eq!(
            v,
            vec![
                java.display().to_string(),
                "-XX:AOTCache=x.aot".into(),
                "-jar".into(),
                "a.jar".into()
            ]
        );
        assert!(on_jdk(&["python3".into()], d.path(), &[]).is_err());
        assert!(on_jdk(&cmd, Path::new("/nonexistent"), &[]).is_err());
    }
}
