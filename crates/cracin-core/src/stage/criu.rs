//! Finding CRIU, reading its version, refusing CRIU/kernel combinations known to be broken, and
//! building the exact `criu dump` / `criu restore` command lines cracin uses. The flag choices
//! are explained where they are made, because each one fixes a failure met on real applications.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::os::cmd::{which, Cmd};
use crate::os::sysinfo::Version;

/// A CRIU binary and its version.
#[derive(Debug, Clone)]
pub struct Criu {
    pub path: PathBuf,
    pub version: Version,
}

/// Where cracin looks for criu when neither `--criu` nor `CRACIN_CRIU` is given, after PATH.
const FALLBACK_LOCATIONS: &[&str] = &[
    "/usr/local/sbin/criu",
    "/usr/sbin/criu",
    "/opt/cracin/criu-4.2.1/criu",
];

impl Criu {
    /// `--criu PATH`, then `CRACIN_CRIU`, then PATH, then the usual sbin locations.
    pub fn find(explicit: Option<&Path>) -> Result<Criu> {
        let mut searched = Vec::new();
        let path = if let Some(p) = explicit {
            searched.push(format!("--criu {}", p.display()));
            Some(p.to_path_buf()).filter(|p| crate::os::cmd::is_executable(p))
        } else if let Some(p) = std::env::var_os("CRACIN_CRIU").filter(|v| !v.is_empty()) {
            searched.push(format!("CRACIN_CRIU={}", p.to_string_lossy()));
            Some(PathBuf::from(p)).filter(|p| crate::os::cmd::is_executable(p))
        } else {
            searched.push("PATH".into());
            which("criu").or_else(|| {
                FALLBACK_LOCATIONS.iter().map(PathBuf::from).find(|p| {
                    searched.push(p.display().to_string());
                    crate::os::cmd::is_executable(p)
                })
            })
        };
        let Some(path) = path else {
            return Err(Error::CriuNotFound {
                searched: searched.join(", "),
            });
        };
        // `criu --version` costs an exec on every restore: ask once per binary.
        let key = crate::stage::criu_cache::CriuKey::of(&path);
        let cache = crate::stage::cache_dir();
        if let (Some(k), Some(d)) = (&key, &cache) {
            if let Some(version) = crate::stage::criu_cache::lookup(d, k) {
                return Ok(Criu { path, version });
            }
        }
        let version = Self::ask_version(&path)?;
        if let (Some(k), Some(d)) = (&key, &cache) {
            crate::stage::criu_cache::store(d, k, version);
        }
        Ok(Criu { path, version })
    }

    /// Runs `criu --version`.
    fn ask_version(path: &Path) -> Result<Version> {
        let out = Cmd::new(path)
            .arg("--version")
            .timeout(Duration::from_secs(10))
            .run()?;
        let version = parse_version(&out.stdout).ok_or_else(|| Error::Command {
            command: format!("{} --version", path.display()),
            status: "an unreadable version".into(),
            log: out.stdout_path.clone(),
            log_tail: out.stdout.clone(),
        })?;
        Ok(version)
    }

    /// Refuses combinations that are known to fail on this kernel.
    pub fn check_kernel(&self, kernel: Version) -> Result<()> {
        if let Some((need, why)) = required_for_kernel(kernel) {
            if self.version < need {
                return Err(Error::CriuTooOld {
                    found: self.version.to_string(),
                    kernel: kernel.to_string(),
                    need: need.to_string(),
                    why: why.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The oldest CRIU that works on a kernel, with the reason, when an old one is known to break.
pub fn required_for_kernel(kernel: Version) -> Option<(Version, &'static str)> {
    if kernel >= Version(6, 16, 0) {
        Some((
            Version(4, 2, 0),
            "Linux 6.16 restricted SO_PASSCRED, so older CRIU fails to dump any TCP socket (`Can't get 1:16 opt`); fixed in CRIU 4.2",
        ))
    } else if kernel >= Version(6, 13, 0) {
        Some((
            Version(4, 1, 0),
            "Linux 6.13 split the vvar area, so older CRIU fails with `Unexpected rt vDSO area bounds`; fixed in CRIU 4.1",
        ))
    } else {
        None
    }
}

/// Reads "Version: 4.2.1" (or "Version: 4.2") from `criu --version`.
pub fn parse_version(text: &str) -> Option<Version> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))
        .and_then(Version::parse_prefix)
}

/// Options shared by dump and restore.
#[derive(Debug, Clone, Default)]
pub struct CriuOptions {
    /// `--unprivileged` (inside containers with only CAP_CHECKPOINT_RESTORE).
    pub unprivileged: bool,
    /// Restore with `--lazy-pages`: memory is filled on first touch by a `criu lazy-pages`
    /// daemon (userfaultfd), which then copies the rest in the background.
    pub lazy_pages: bool,
}

/// `criu dump` of the process tree rooted at `pid` into `images`.
pub fn dump_args(pid: u32, images: &Path, log: &Path, opts: &CriuOptions) -> Vec<String> {
    let mut a = vec![
        "dump".to_string(),
        "--tree".into(),
        pid.to_string(),
        "--images-dir".into(),
        images.display().to_string(),
        // Connections of the warm-up (and server sockets kept in TCP_CLOSE after a request) must
        // not make the checkpoint unrestorable: dump them as closed. `--tcp-established` would
        // also work, but leaves network-lock firewall rules behind until a restore succeeds.
        "--tcp-close".into(),
        // Embedded databases and lock files hold POSIX locks; without this the dump fails.
        "--file-locks".into(),
        "--log-file".into(),
        log.display().to_string(),
        "-v4".into(),
    ];
    if opts.unprivileged {
        a.push("--unprivileged".into());
    }
    a
}

/// `criu restore` of `images`, detached, with the restored stdout/stderr handed in as fds.
pub fn restore_args(
    images: &Path,
    log: &Path,
    pidfile: &Path,
    inherit: &[(i32, String)],
    opts: &CriuOptions,
) -> Vec<String> {
    let mut a = vec![
        "restore".to_string(),
        "--images-dir".into(),
        images.display().to_string(),
        "--restore-detached".into(),
        "--tcp-close".into(),
        "--file-locks".into(),
        "--pidfile".into(),
        pidfile.display().to_string(),
        "--log-file".into(),
        log.display().to_string(),
        "-v4".into(),
    ];
    for (fd, path) in inherit {
        // CRIU names the file by its path without the leading slash.
        a.push("--inherit-fd".into());
        a.push(format!("fd[{fd}]:{}", path.trim_start_matches('/')));
    }
    if opts.unprivileged {
        a.push("--unprivileged".into());
    }
    if opts.lazy_pages {
        a.push("--lazy-pages".into());
        // The lazy-pages daemon listens in the work dir; one per restore, so restores of the
        // same checkpoint can run at once.
        if let Some(dir) = log.parent() {
            a.push("--work-dir".into());
            a.push(dir.display().to_string());
        }
    }
    a
}

/// The environment cracin gives `criu restore`: `CRIU_FAULT=130`, CRIU's switch for its
/// no-breakpoints restore. At the end of a restore CRIU stops every restored thread on its way
/// out of the restorer; by default it writes a hardware breakpoint into each thread's debug
/// registers (two `PTRACE_POKEUSER`s per thread), which under a hypervisor traps to the host:
/// measured here ~0.5-0.8 ms per thread, 20-43 ms for the 40 threads of the reference OSGi
/// application (docs/restore-floor.md). CRIU 2.10 to 3.17 never used them ("Temporary
/// workaround for Xen guests. Breakpoints degrade performance linearly"); 3.18 turned them on
/// again for x86_64 and arm64. The other way, which CRIU takes without breakpoints and tests in
/// its own CI (`--fault 130`), lets each thread run to its `rt_sigreturn` under
/// `PTRACE_SYSCALL`: a few more stops per thread, no debug registers. The restored process is
/// the same either way. Only for a CRIU that knows the number (FI_NO_BREAKPOINTS came with
/// 2.2; a CRIU refuses to start with an unknown `CRIU_FAULT`). `CRACIN_CRIU_BREAKPOINTS=1`
/// keeps CRIU's default (to measure this lever); a `CRIU_FAULT` already in cracin's environment
/// is left as it is.
pub fn restore_env(criu: Version) -> Vec<(&'static str, &'static str)> {
    let keep =
        std::env::var_os("CRACIN_CRIU_BREAKPOINTS").is_some_and(|v| !v.is_empty() && v != "0");
    if keep || std::env::var_os("CRIU_FAULT").is_some() || criu < NO_BREAKPOINTS_SINCE {
        return Vec::new();
    }
    vec![("CRIU_FAULT", NO_BREAKPOINTS)]
}

/// CRIU's fault-injection number FI_NO_BREAKPOINTS (criu/include/fault-injection.h).
pub const NO_BREAKPOINTS: &str = "130";

/// The first CRIU release that knows FI_NO_BREAKPOINTS.
pub const NO_BREAKPOINTS_SINCE: Version = Version(2, 2, 0);

/// `criu lazy-pages`: the daemon that serves the restored process's page faults.
pub fn lazy_pages_args(images: &Path, work_dir: &Path) -> Vec<String> {
    vec![
        "lazy-pages".to_string(),
        "--images-dir".into(),
        images.display().to_string(),
        "--work-dir".into(),
        work_dir.display().to_string(),
        "--log-file".into(),
        work_dir.join("lazy-pages.log").display().to_string(),
        "-v4".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_criu_output() {
        assert_eq!(parse_version("Version: 4.2.1\n"), Some(Version(4, 2, 1)));
        assert_eq!(
            parse_version("Version: 3.17.1\nGitID: x"),
            Some(Version(3, 17, 1))
        );
        assert_eq!(parse_version("nonsense"), None);
    }

    fn criu(v: Version) -> Criu {
        Criu {
            path: "/x/criu".into(),
            version: v,
        }
    }

    #[test]
    fn known_broken_combinations_are_refused() {
        let k618 = Version(6, 18, 44);
        let err = criu(Version(4, 1, 1)).check_kernel(k618).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("CRIU 4.1.1") && msg.contains("Linux 6.18.44"),
            "{msg}"
        );
        assert!(criu(Version(4, 2, 1)).check_kernel(k618).is_ok());
        assert!(criu(Version(3, 17, 1))
            .check_kernel(Version(6, 14, 0))
            .is_err());
        assert!(criu(Version(4, 1, 0))
            .check_kernel(Version(6, 14, 0))
            .is_ok());
        assert!(criu(Version(3, 17, 1))
            .check_kernel(Version(6, 1, 0))
            .is_ok());
    }

    #[test]
    fn restore_args_strip_leading_slash_for_inherit_fd() {
        let a = restore_args(
            Path::new("/c/images"),
            Path::new("/c/r.log"),
            Path::new("/c/pid"),
            &[(3, "/c/app.stdout".into())],
            &CriuOptions::default(),
        );
        assert!(a
            .windows(2)
            .any(|w| w[0] == "--inherit-fd" && w[1] == "fd[3]:c/app.stdout"));
        assert!(!a.contains(&"--lazy-pages".to_string()));
        let lazy = restore_args(
            Path::new("/c/images"),
            Path::new("/c/r1/restore.log"),
            Path::new("/c/r1/pid"),
            &[],
            &CriuOptions {
                lazy_pages: true,
                ..Default::default()
            },
        );
        // The daemon's socket lives in the per-restore work dir.
        assert!(lazy
            .windows(2)
            .any(|w| w[0] == "--work-dir" && w[1] == "/c/r1"));
        assert!(lazy.contains(&"--lazy-pages".to_string()));
    }

    #[test]
    fn no_breakpoints_only_for_a_criu_that_knows_the_number() {
        // The switches are read from the environment; this test runs only where neither is set.
        if std::env::var_os("CRACIN_CRIU_BREAKPOINTS").is_some()
            || std::env::var_os("CRIU_FAULT").is_some()
        {
            return;
        }
        assert_eq!(
            restore_env(Version(4, 2, 1)),
            vec![("CRIU_FAULT", NO_BREAKPOINTS)]
        );
        assert_eq!(restore_env(Version(3, 17, 1)).len(), 1);
        assert!(restore_env(Version(2, 1, 0)).is_empty());
    }
}
