//! A class-data-sharing (CDS) archive made in a training run before the checkpoint
//! (`cracin checkpoint --cds`), so that the checkpoint holds less class metadata.
//!
//! A JVM maps a CDS archive from its file with a private mapping; pages it never writes stay
//! the file's clean page-cache pages, and CRIU does not dump those (only the pages of a private
//! file mapping that were copied on write). So what a JVM takes from an archive instead of
//! building in its metaspace and malloc heap leaves the checkpoint. Two things make that pay:
//! 1. a training run of the same command, with the same options (the archive is refused when
//!    the boot class path differs) but without native agents (a JVM refuses to write an archive
//!    with one loaded), warmed up the same way and stopped with SIGTERM: the JVM writes a
//!    dynamic archive (`-XX:ArchiveClassesAtExit`) of the classes of its built-in loaders as it
//!    exits. Classes of custom class loaders (OSGi bundles, web applications) are archived too
//!    when they come from a jar file: the JVM finds them again by the size and CRC of the class
//!    file the loader defines (measured: 2947 of the reference OSGi application's 4369 loaded
//!    classes came from the archive, Jersey, Jetty and Felix bundles among them). Left out, and
//!    counted in the training output: classes from signed jars (Equinox itself), classes not
//!    linked at exit and those whose super types were left out;
//! 2. the archives mapped at the address they were made for (`-XX:ArchiveRelocationMode=0`).
//!    JDK 17.0.x updates and 21+ map them at a random address by default, which rewrites every
//!    pointer in them, so every page becomes a private copy and is dumped. Address
//!    randomisation buys nothing to a restored JVM: every restore of a checkpoint has the
//!    checkpoint's addresses anyway.
//!
//! The archive must exist at the same path for every restore (CRIU maps it again), so it is kept
//! content-addressed in /var/lib/cracin/cds, next to cracin's provider jar; the checkpoint's file
//! record lists it as unchanging. Measured in docs/bench-size.md.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::jvm::launch::{self, LaunchSpec};
use crate::stage::probe::{self, NotReady, Probe};
use crate::stage::warmup::{self, WarmupSpec};
use crate::Progress;

/// Where archives are kept: stable across restores, like the provider jar.
pub const DEFAULT_CDS_DIR: &str = "/var/lib/cracin/cds";

/// How long an archive no checkpoint names is kept anyway: longer than any training run and
/// checkpoint take between making an archive and naming it in their cracin.json.
pub const KEEP_UNUSED_FOR: Duration = Duration::from_secs(3600);

/// Options of the command that leave no room for cracin's archive (the user manages CDS).
const OWN_CDS_OPTIONS: &[&str] = &[
    "-Xshare:off",
    "-XX:SharedArchiveFile",
    "-XX:ArchiveClassesAtExit",
    "-XX:-UseSharedSpaces",
    "-XX:AOTCache",
    "-XX:AOTMode",
    "-XX:AOTCacheOutput",
    "-XX:+AutoCreateSharedArchive",
];

/// `--cds` with a command that manages CDS itself is bad input: say which option and what to do.
pub fn check_command(command: &[String], java_options: &[String]) -> Result<()> {
    let clash = command
        .iter()
        .chain(java_options)
        .find(|a| OWN_CDS_OPTIONS.iter().any(|o| a.starts_with(o)));
    match clash {
        Some(opt) => Err(Error::usage(
            format!("--cds makes a CDS archive, but the command already sets {opt}"),
            "drop --cds (the command manages its own archive) or drop the option",
        )),
        None => Ok(()),
    }
}

/// The options of the training run: the checkpoint's own, without native agents (the JVM
/// refuses to write an archive with one loaded) and with cracin's control directory replaced
/// by the training run's own, plus the order to write the archive at exit.
pub fn training_options(java_options: &[String], archive: &Path, ctl: &Path) -> Vec<String> {
    let mut v: Vec<String> = java_options
        .iter()
        .filter(|o| !o.starts_with("-agentpath:") && !o.starts_with("-agentlib:"))
        .map(|o| {
            if o.starts_with("-Dcracin.control=") {
                format!("-Dcracin.control={}", ctl.display())
            } else {
                o.clone()
            }
        })
        .collect();
    v.push(format!("-XX:ArchiveClassesAtExit={}", archive.display()));
    v
}

/// The options of the checkpointed JVM: the archive, mapped where it was made for.
pub fn runtime_options(archive: &Path) -> Vec<String> {
    vec![
        format!("-XX:SharedArchiveFile={}", archive.display()),
        // A diagnostic flag on JDK 17-25.
        "-XX:+UnlockDiagnosticVMOptions".to_string(),
        "-XX:ArchiveRelocationMode=0".to_string(),
    ]
}

/// What the training run made.
#[derive(Debug, Clone)]
pub struct Archive {
    pub path: PathBuf,
    pub bytes: u64,
    /// Classes the JVM left out of the archive, by reason ("Signed JAR", "Not linked", ...).
    pub skipped: Vec<(String, usize)>,
    pub train_ms: f64,
}

impl Archive {
    /// One line for the user: what was made and what it left out.
    pub fn summary(&self) -> String {
        let skipped: usize = self.skipped.iter().map(|(_, n)| n).sum();
        let mut s = format!(
            "archive {} ({:.1} MB) from a training run of {:.1} s",
            self.path.display(),
            self.bytes as f64 / 1e6,
            self.train_ms / 1000.0
        );
        if skipped > 0 {
            let top: Vec<String> = self
                .skipped
                .iter()
                .take(3)
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            s.push_str(&format!(
                "; {skipped} classes left out ({})",
                top.join(", ")
            ));
        }
        s
    }
}

/// What the training run needs from the checkpoint.
pub struct Training<'a> {
    /// The checkpoint's own launch (command, cwd, options, environment).
    pub spec: &'a LaunchSpec,
    pub probe: &'a Probe,
    pub ready_timeout: Duration,
    pub warmup: Option<&'a WarmupSpec>,
    /// A private directory for the training run's output (kept with a failed checkpoint's logs).
    pub work: &'a Path,
    /// Where archives are kept (DEFAULT_CDS_DIR).
    pub archive_dir: &'a Path,
}

/// `--cds` is possible with these options: checked before anything starts.
pub fn validate(o: &crate::local::CheckpointOptions) -> Result<()> {
    if !o.cds {
        return Ok(());
    }
    check_command(&o.command, &o.java_options)?;
    if o.ready.is_none() {
        return Err(Error::usage(
            "--cds needs --ready: the training run is made ready and warmed up like the checkpoint, then stopped",
            "add --ready http://127.0.0.1:PORT/health (or tcp://HOST:PORT, or log:REGEX)",
        ));
    }
    Ok(())
}

/// The hook of `cracin checkpoint --cds`: checks the command, runs the training run in
/// `staging/training`, says what it made, and returns the archive's path with the options that
/// map it.
pub fn prepare(
    o: &crate::local::CheckpointOptions,
    spec: &LaunchSpec,
    probe: Option<&Probe>,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<(PathBuf, Vec<String>)> {
    validate(o)?;
    let probe = probe.ok_or_else(|| Error::usage("--cds needs --ready", "add --ready"))?;
    let work = staging.join("training");
    let archive = train(
        &Training {
            spec,
            probe,
            ready_timeout: o.ready_timeout,
            warmup: o.warmup.as_ref(),
            work: &work,
            archive_dir: Path::new(DEFAULT_CDS_DIR),
        },
        progress,
    )?;
    progress.done("cds", archive.train_ms, &archive.summary());
    let options = runtime_options(&archive.path);
    Ok((archive.path, options))
}

/// Runs the command once as the checkpoint will (ready, warm-up), stops it with SIGTERM and keeps
/// the archive the JVM wrote as it exited.
pub fn train(t: &Training, progress: &dyn Progress) -> Result<Archive> {
    let started = Instant::now();
    crate::os::perms::ensure_private_dir(t.work)?;
    let ctl = t.work.join("control");
    crate::os::perms::ensure_private_dir(&ctl)?;
    std::fs::create_dir_all(t.archive_dir).map_err(|e| Error::io(t.archive_dir, e))?;
    let tmp = t
        .archive_dir
        .join(format!(".training-{}.jsa", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut spec = t.spec.clone();
    spec.java_options = training_options(&t.spec.java_options, &tmp, &ctl);
    spec.stdout = t.work.join("app.stdout");
    spec.stderr = t.work.join("app.stderr");
    let logs = vec![spec.stdout.clone(), spec.stderr.clone()];
    progress.step(
        "cds",
        "training run: the command with -XX:ArchiveClassesAtExit, ready, warm-up, SIGTERM",
    );
    let mut launched = launch::launch(&spec)?;
    crate::os::guard::watch(launched.init_pid);
    let ready = probe::wait_ready(
        t.probe,
        &logs,
        t.ready_timeout,
        Duration::from_millis(10),
        || launched.exited(),
    );
    match ready {
        Ok(_) => {}
        Err(NotReady::Exited(status)) => return Err(crate::jvm::output::app_exited(status, &logs)),
        Err(NotReady::Timeout) => {
            launched.kill();
            return Err(crate::jvm::output::not_ready(
                t.probe.to_string(),
                t.ready_timeout,
                &logs,
            ));
        }
    }
    if let Some(w) = t.warmup.filter(|w| !w.urls.is_empty() && w.requests > 0) {
        warmup::run(w).inspect_err(|_| launched.kill())?;
    }
    // SIGTERM to the JVM: it runs its shutdown hooks, then writes the archive and exits.
    let pid = launched.java_pid().unwrap_or(launched.init_pid);
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let ended = launched.wait_exit(Duration::from_secs(120));
    launched.kill();
    let _ = std::fs::remove_dir_all(&ctl);
    let out = crate::os::cmd::read_lossy(&spec.stdout) + &crate::os::cmd::read_lossy(&spec.stderr);
    let bytes = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
    if bytes == 0 {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::CheckpointFailed {
            command: format!(
                "the --cds training run ({} with -XX:ArchiveClassesAtExit)",
                t.spec.argv.join(" ")
            ),
            status: format!(
                "{}, and no archive written",
                ended.unwrap_or_else(|| "no exit within 120 s of SIGTERM".into())
            ),
            log: spec.stdout.clone(),
            log_tail: crate::jvm::output::output_tail(&logs, 20),
            diagnosis: Vec::new(),
        });
    }
    let path = seal(&tmp, t.archive_dir)?;
    Ok(Archive {
        path,
        bytes,
        skipped: skipped_classes(&out),
        train_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Moves the fresh archive to its content address (read-only: a restore maps it again and CRIU
/// checks that it did not change) and returns that path.
fn seal(tmp: &Path, dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let hash = crate::ckpt::integrity::sha256_file(tmp)?;
    let path = dir.join(format!("{}.jsa", &hash[..16]));
    if path.exists() {
        let _ = std::fs::remove_file(tmp);
        // Made again: young again, so that `prune` leaves it to this checkpoint.
        if let Ok(f) = std::fs::File::open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    } else {
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o444))
            .map_err(|e| Error::io(tmp, e))?;
        std::fs::rename(tmp, &path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(path)
}

/// The file beside an archive that lists the checkpoints made with it, one directory per line.
fn users_file(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".users");
    PathBuf::from(name)
}

/// Notes that the checkpoint in `checkpoint_dir` maps `archive`, so that `prune` keeps the
/// archive for as long as that checkpoint refers to it.
pub fn add_user(archive: &Path, checkpoint_dir: &Path) -> Result<()> {
    use std::io::Write;
    let file = users_file(archive);
    let dir = std::fs::canonicalize(checkpoint_dir).unwrap_or_else(|_| checkpoint_dir.into());
    let line = dir.display().to_string();
    let known = std::fs::read_to_string(&file).unwrap_or_default();
    if known.lines().any(|l| l == line) {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&file)
        .map_err(|e| Error::io(&file, e))?;
    writeln!(f, "{line}").map_err(|e| Error::io(&file, e))
}

/// Removes the archives in `archive_dir` that no checkpoint uses any more: older than
/// `min_age` (a checkpoint being taken right now has a younger one, or had an old one touched
/// when its training run made it again), listed in a users file none of whose checkpoints
/// still names it in its cracin.json (removed, or replaced with `--force`), and mapped by no
/// running process (a restored JVM keeps it mapped). Archives without a users file (made by an
/// older cracin) are left alone. Returns what was removed, with the bytes.
pub fn prune(archive_dir: &Path, min_age: Duration) -> Vec<(PathBuf, u64)> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(archive_dir) else {
        return removed;
    };
    let mut candidates: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_archive_name(p))
        .collect();
    candidates.sort();
    // Old enough and named by none of their checkpoints' cracin.json.
    let unused: Vec<(PathBuf, u64)> = candidates
        .into_iter()
        .filter_map(|archive| {
            let users = std::fs::read_to_string(users_file(&archive)).ok()?;
            let meta = std::fs::metadata(&archive).ok()?;
            let young = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_none_or(|age| age < min_age);
            if young {
                return None;
            }
            let named = archive.display().to_string();
            let used = users.lines().any(|dir| {
                std::fs::read_to_string(Path::new(dir).join(crate::ckpt::dir::MANIFEST))
                    .is_ok_and(|m| m.contains(&named))
            });
            (!used).then_some((archive, meta.len()))
        })
        .collect();
    // Then one pass over /proc for all of them: a process that maps or holds one keeps it.
    let paths: Vec<&Path> = unused.iter().map(|(p, _)| p.as_path()).collect();
    let holders = crate::ckpt::files::holders_of(&paths);
    for ((archive, bytes), holder) in unused.iter().zip(holders) {
        if holder.is_none() && std::fs::remove_file(archive).is_ok() {
            let _ = std::fs::remove_file(users_file(archive));
            removed.push((archive.clone(), *bytes));
        }
    }
    removed
}

/// `<16 hex digits>.jsa`, the names `seal` gives: nothing else in the directory is touched.
fn is_archive_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".jsa"))
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The JVM's "Skipping CLASS: REASON" warnings, counted by reason, most frequent first.
pub fn skipped_classes(output: &str) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for l in output.lines() {
        let Some(rest) = l.split("Skipping ").nth(1) else {
            continue;
        };
        let Some((_, why)) = rest.split_once(": ") else {
            continue;
        };
        // "interface X is excluded" / "super class X is excluded": one reason.
        let why = if why.ends_with(" is excluded") {
            "with an excluded super type"
        } else {
            why.trim()
        };
        match counts.iter_mut().find(|(w, _)| w == why) {
            Some((_, n)) => *n += 1,
            None => counts.push((why.to_string(), 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn training_drops_native_agents_and_uses_its_own_control_directory() {
        let opts = s(&[
            "-XX:-UsePerfData",
            "-Xbootclasspath/a:/var/lib/cracin/provider/x/cracin-crac.jar",
            "-Dcracin.control=/var/lib/cracin/control/abc",
            "-agentpath:/var/lib/cracin/provider/y/libcracin-agent.so=/var/lib/cracin/control/abc",
            "-agentlib:jdwp=transport=dt_socket",
        ]);
        let t = training_options(&opts, Path::new("/a/t.jsa"), Path::new("/w/control"));
        assert_eq!(
            t,
            s(&[
                "-XX:-UsePerfData",
                // The boot class path must match the checkpointed JVM's, or the archive is refused.
                "-Xbootclasspath/a:/var/lib/cracin/provider/x/cracin-crac.jar",
                "-Dcracin.control=/w/control",
                "-XX:ArchiveClassesAtExit=/a/t.jsa",
            ])
        );
        let r = runtime_options(Path::new("/a/b.jsa"));
        assert_eq!(r[0], "-XX:SharedArchiveFile=/a/b.jsa");
        assert!(r.contains(&"-XX:ArchiveRelocationMode=0".to_string()));
    }

    #[test]
    fn a_command_with_its_own_cds_options_is_refused() {
        for opt in [
            "-Xshare:off",
            "-XX:SharedArchiveFile=/x.jsa",
            "-XX:AOTCache=app.aot",
        ] {
            let e = check_command(&s(&["java", opt, "-jar", "a.jar"]), &[]).unwrap_err();
            assert!(e.to_string().contains(opt), "{e}");
        }
        assert!(check_command(&s(&["java", "-jar", "a.jar"]), &s(&["-Xshare:off"])).is_err());
        assert!(check_command(&s(&["java", "-Xshare:auto", "-jar", "a.jar"]), &[]).is_ok());
    }

    #[test]
    fn skipped_classes_are_counted_by_reason() {
        let out = "[10.888s][warning][cds] Skipping org/a/B: Not linked\n\
                   [10.888s][warning][cds] Skipping org/a/C: Signed JAR\n\
                   [10.888s][warning][cds] Skipping org/a/D: Signed JAR\n\
                   [10.888s][warning][cds] Skipping org/a/E: interface org/osgi/framework/BundleActivator is excluded\n\
                   unrelated line\n";
        let c = skipped_classes(out);
        assert_eq!(
            c,
            vec![
                ("Signed JAR".to_string(), 2),
                ("Not linked".to_string(), 1),
                ("with an excluded super type".to_string(), 1)
            ]
        );
        let a = Archive {
            path: PathBuf::from("/var/lib/cracin/cds/x.jsa"),
            bytes: 19_000_000,
            skipped: c,
            train_ms: 8000.0,
        };
        assert!(
            a.summary().contains("4 classes left out (2 Signed JAR"),
            "{}",
            a.summary()
        );
    }

    #[test]
    fn archives_no_checkpoint_uses_are_pruned_and_the_others_kept() {
        use std::time::SystemTime;
        let d = tempfile::tempdir().unwrap();
        let cds = d.path().join("cds");
        std::fs::create_dir(&cds).unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(7200);
        let make = |name: &str, old: bool| {
            let p = cds.join(name);
            std::fs::write(&p, b"archive").unwrap();
            if old {
                let f = std::fs::File::options().write(true).open(&p).unwrap();
                f.set_modified(long_ago).unwrap();
            }
            p
        };
        let used = make("00000000000000aa.jsa", true);
        let unused = make("00000000000000bb.jsa", true);
        let no_users_file = make("00000000000000cc.jsa", true);
        let young = make("00000000000000dd.jsa", false);
        let held = make("00000000000000ee.jsa", true);
        let not_ours = make("notes.jsa", true);
        // A checkpoint that still names its archive, and one that was removed.
        let ck = d.path().join("ck");
        std::fs::create_dir(&ck).unwrap();
        std::fs::write(
            ck.join(crate::ckpt::dir::MANIFEST),
            format!(
                "{{\"java\": [\"-XX:SharedArchiveFile={}\"]}}",
                used.display()
            ),
        )
        .unwrap();
        let gone = d.path().join("removed-ck");
        add_user(&used, &ck).unwrap();
        add_user(&used, &ck).unwrap();
        for a in [&unused, &young, &held, &not_ours] {
            add_user(a, &gone).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(users_file(&used))
                .unwrap()
                .lines()
                .count(),
            1,
            "a checkpoint is listed once"
        );
        // A running process holds one open, as a restored JVM maps its archive.
        let mut holder = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3<'{}'; exec sleep 30", held.display()))
            .spawn()
            .unwrap();
        let fd3 = format!("/proc/{}/fd/3", holder.id());
        let t0 = Instant::now();
        while std::fs::read_link(&fd3).ok() != Some(held.clone()) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the holder never opened it"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let removed = prune(&cds, KEEP_UNUSED_FOR);
        let _ = holder.kill();
        let _ = holder.wait();
        let removed: Vec<PathBuf> = removed.into_iter().map(|(p, _)| p).collect();
        assert_eq!(removed, vec![unused.clone()]);
        assert!(!unused.exists() && !users_file(&unused).exists());
        for kept in [&used, &no_users_file, &young, &held, &not_ours] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
    }
}
