//! The application: the user's command line, the JVM it runs, and launching it the way CRIU
//! needs it. The command runs as PID 1 of a fresh PID namespace (so its PIDs are free again at
//! every restore; in a checkpoint container, whose namespace that is already, as cracin's child
//! above the PIDs a restore needs), as a session leader (CRIU refuses a session leader outside
//! the namespace), with stdin from /dev/null, stdout and stderr in files (a terminal cannot be
//! restored), and no inherited file descriptors (a stray pipe or file makes the dump fail).
//! cracin's JVM options go in through `JAVA_TOOL_OPTIONS`, so `java -jar`, a classpath and main
//! class, or a vendor start script that ends in `exec java` all work alike.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::os::cmd::{describe_status, which};
use crate::os::procfs::{children_of, exe_of};

/// The JVM an application runs on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Jvm {
    pub java: PathBuf,
    pub home: PathBuf,
    pub version: String,
}

impl Jvm {
    /// Describes the JVM of a `java` binary (symlinks resolved), reading `$JAVA_HOME/release`.
    pub fn from_binary(java: &Path) -> Jvm {
        let real = std::fs::canonicalize(java).unwrap_or_else(|_| java.to_path_buf());
        let home = real
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let release = std::fs::read_to_string(home.join("release")).unwrap_or_default();
        let field = |k: &str| {
            release.lines().find_map(|l| {
                l.strip_prefix(k)
                    .and_then(|v| v.strip_prefix('='))
                    .map(|v| v.trim_matches('"').to_string())
            })
        };
        let version = match (
            field("IMPLEMENTOR"),
            field("JAVA_RUNTIME_VERSION").or_else(|| field("JAVA_VERSION")),
        ) {
            (Some(i), Some(v)) => format!("{v} ({i})"),
            (None, Some(v)) => v,
            _ => "unknown".into(),
        };
        Jvm {
            java: real,
            home,
            version,
        }
    }

    /// `jcmd` beside this JVM's `java`, if the JDK has one (a JRE does not).
    pub fn jcmd(&self) -> Option<PathBuf> {
        let p = self.home.join("bin/jcmd");
        crate::os::cmd::is_executable(&p).then_some(p)
    }
}

/// Checks the command line before anything is started, so that a typo gives a clear error
/// instead of an application that "exited before it was ready".
pub fn validate_command(argv: &[String], cwd: &Path) -> Result<PathBuf> {
    let Some(prog) = argv.first() else {
        return Err(Error::usage(
            "no application command given",
            "put the command that starts the JVM after `--`, e.g. `cracin checkpoint --out ckpt --ready http://127.0.0.1:8080/ -- java -jar app.jar`",
        ));
    };
    let resolved = if prog.contains('/') {
        let p = cwd.join(prog);
        if !p.exists() {
            return Err(Error::JavaNotFound {
                why: format!("the program `{prog}` does not exist"),
            });
        }
        if !crate::os::cmd::is_executable(&p) {
            return Err(Error::JavaNotFound {
                why: format!(
                    "`{prog}` is not executable (chmod +x, or run it through its interpreter)"
                ),
            });
        }
        p
    } else {
        which(prog).ok_or_else(|| Error::JavaNotFound {
            why: format!("`{prog}` is not on PATH"),
        })?
    };
    if is_java(&resolved) {
        let mut it = argv.iter().skip(1);
        while let Some(a) = it.next() {
            if a == "-jar" {
                match it.next() {
                    Some(jar) if !cwd.join(jar).is_file() => {
                        return Err(Error::usage(
                            format!(
                                "the jar `{jar}` does not exist (relative to {})",
                                cwd.display()
                            ),
                            "check the path after -jar",
                        ))
                    }
                    None => {
                        return Err(Error::usage(
                            "`-jar` needs a jar file",
                            "add the jar's path after -jar",
                        ))
                    }
                    _ => {}
                }
                break;
            }
            if !a.starts_with('-') {
                break; // the main class: arguments after it belong to the application
            }
        }
    }
    Ok(resolved)
}

fn is_java(p: &Path) -> bool {
    p.file_name().map(|n| n == "java").unwrap_or(false)
}

/// Whether the command line already chooses a garbage collector (cracin then adds none).
pub fn chooses_gc(argv: &[String]) -> bool {
    argv.iter()
        .any(|a| a.starts_with("-XX:+Use") && a.ends_with("GC"))
}

/// Whether the command line already sets the initial heap.
pub fn sets_initial_heap(argv: &[String]) -> bool {
    argv.iter()
        .any(|a| a.starts_with("-Xms") || a.starts_with("-XX:InitialHeapSize"))
}

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// Options appended to `JAVA_TOOL_OPTIONS`.
    pub java_options: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Inside a checkpoint container: the container is the PID namespace, so the command is
    /// started directly (with PIDs above `CONTAINER_MIN_PID`, a session of its own and without the
    /// capabilities the restore container will not have).
    pub in_container: bool,
}

/// In a container the checkpointed JVM's PIDs must be free at restore, where the restore
/// wrapper, criu and their helpers take the low ones: start the JVM above this PID.
pub const CONTAINER_MIN_PID: u32 = 1000;

impl LaunchSpec {
    pub fn java_tool_options(&self) -> String {
        let mut v: Vec<String> = std::env::var("JAVA_TOOL_OPTIONS")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .into_iter()
            .collect();
        v.extend(self.java_options.iter().cloned());
        v.join(" ")
    }
}

/// A launched application: the `unshare` process and the host PID of the namespace's init
/// (the user's command). Dropping it kills the whole namespace.
pub struct Launched {
    launcher: Child,
    pub init_pid: u32,
    pub started: Instant,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    finished: Option<String>,
}

/// Starts the command the way CRIU needs it: in a PID namespace of its own on the host, or
/// directly when cracin already is PID 1 of a checkpoint container (`spec.in_container`). The
/// rest of the set-up (working directory, no stdin, cracin's JVM options, the environment, no
/// inherited descriptors) is the same for both.
pub fn launch(spec: &LaunchSpec) -> Result<Launched> {
    let isolation = Isolation::for_spec(spec)?;
    let mut c = isolation.command(spec)?;
    c.current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .env("JAVA_TOOL_OPTIONS", spec.java_tool_options());
    for (k, v) in &spec.env {
        c.env(k, v);
    }
    unsafe {
        c.pre_exec(|| {
            // No inherited descriptors: anything cracin's parent left open (a CI pipe, a
            // terminal on another mount) would end up in the checkpoint and break the dump.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    isolation.restrict(&mut c);
    let started = Instant::now();
    let mut launcher = c.spawn().map_err(|e| Error::Spawn {
        command: spec.argv.join(" "),
        source: e,
    })?;
    let init_pid = isolation.first_process(&mut launcher, spec)?;
    crate::os::signals::guard_against_signals(init_pid);
    Ok(Launched {
        launcher,
        init_pid,
        started,
        stdout: spec.stdout.clone(),
        stderr: spec.stderr.clone(),
        finished: None,
    })
}

/// How the application is kept apart so that CRIU can dump it and find its PIDs free again at
/// every restore.
enum Isolation {
    /// On the host: `unshare --pid --fork` makes the command PID 1 of a new PID namespace and
    /// `setsid` the leader of its own session.
    PidNamespace { unshare: PathBuf, setsid: PathBuf },
    /// cracin is PID 1 of a checkpoint container: the container is the namespace, so the command
    /// runs as cracin's child, above `CONTAINER_MIN_PID`, in a session of its own.
    Container,
}

impl Isolation {
    fn for_spec(spec: &LaunchSpec) -> Result<Isolation> {
        if spec.in_container {
            return Ok(Isolation::Container);
        }
        let unshare = which("unshare").ok_or_else(|| Error::JavaNotFound {
            why: "`unshare` (util-linux) is not installed".into(),
        })?;
        let setsid = which("setsid").ok_or_else(|| Error::JavaNotFound {
            why: "`setsid` (util-linux) is not installed".into(),
        })?;
        Ok(Isolation::PidNamespace { unshare, setsid })
    }

    /// The command line that starts the application, with its output going to its files
    /// (created private, 0600).
    fn command(&self, spec: &LaunchSpec) -> Result<Command> {
        match self {
            Isolation::PidNamespace { unshare, setsid } => {
                // unshare's own messages (it reports the killed child when CRIU ends the dumped
                // tree) go to a log of their own; a small sh, exec'd away at once, gives the
                // application its files.
                let launcher_log = spec.stderr.with_file_name("launcher.log");
                let log = crate::os::perms::create_private_file(&launcher_log)?;
                // The shell's `>` keeps the mode of an existing file: the output starts private.
                crate::os::perms::create_private_file(&spec.stdout)?;
                crate::os::perms::create_private_file(&spec.stderr)?;
                let log2 = log.try_clone().map_err(|e| Error::io(&launcher_log, e))?;
                let mut c = Command::new(unshare);
                // Not --kill-child: its parent-death signal would be dumped with the process and
                // CRIU would deliver it right after every restore.
                // `os::signals::guard_against_signals` covers Ctrl-C instead.
                c.args(["--pid", "--fork", "--"])
                    .arg(setsid)
                    .args([
                        "/bin/sh",
                        "-c",
                        r#"o=$1; e=$2; shift 2; exec "$@" >"$o" 2>"$e""#,
                        "sh",
                    ])
                    .arg(&spec.stdout)
                    .arg(&spec.stderr)
                    .args(&spec.argv)
                    .stdout(log)
                    .stderr(log2);
                Ok(c)
            }
            Isolation::Container => {
                let out = crate::os::perms::create_private_file(&spec.stdout)?;
                let err = crate::os::perms::create_private_file(&spec.stderr)?;
                raise_pid_counter(CONTAINER_MIN_PID as i32);
                let mut c = Command::new(&spec.argv[0]);
                c.args(&spec.argv[1..]).stdout(out).stderr(err);
                Ok(c)
            }
        }
    }

    /// In a container, what the child does for itself before it execs (after the common set-up):
    /// a session of its own and none of the capabilities the restore container will not have.
    fn restrict(&self, c: &mut Command) {
        if let Isolation::Container = self {
            unsafe {
                c.pre_exec(|| {
                    // A session of its own: CRIU restores the session leader with the process.
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The restore container has CHECKPOINT_RESTORE only: a JVM that held a
                    // capability the restore lacks cannot be restored ("Unable to restore
                    // capabilities").
                    for cap in [
                        crate::os::sysinfo::CAP_SYS_PTRACE,
                        crate::os::sysinfo::CAP_CHECKPOINT_RESTORE,
                        crate::os::sysinfo::CAP_SYS_ADMIN,
                    ] {
                        libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
                    }
                    // Non-root: no ambient or inheritable capability, so the JVM execs with none.
                    crate::os::caps::clear_inherited();
                    Ok(())
                });
            }
        }
    }

    /// The host PID of the application's first process: the namespace's init, which appears
    /// as unshare's only child within milliseconds, or the child itself in a container.
    fn first_process(&self, launcher: &mut Child, spec: &LaunchSpec) -> Result<u32> {
        if let Isolation::Container = self {
            return Ok(launcher.id());
        }
        let upid = launcher.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(p) = children_of(upid).first() {
                return Ok(*p);
            }
            if let Ok(Some(st)) = launcher.try_wait() {
                return Err(super::output::app_exited(
                    describe_status(st),
                    &[spec.stdout.clone(), spec.stderr.clone()],
                ));
            }
            if Instant::now() > deadline {
                let _ = launcher.kill();
                let _ = launcher.wait();
                return Err(Error::Spawn {
                    command: spec.argv.join(" "),
                    source: std::io::Error::other(
                        "the PID namespace's first process never appeared",
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Moves this PID namespace's PID counter to at least `min` by creating short-lived children
/// that share our memory (clone with CLONE_VM|CLONE_VFORK: no copy of the address space, about
/// 50 microseconds each), far cheaper than the usual loop of 1000 `/bin/true` processes.
pub fn raise_pid_counter(min: i32) {
    extern "C" fn child(_: *mut libc::c_void) -> libc::c_int {
        unsafe { libc::_exit(0) }
    }
    let mut stack = vec![0u8; 64 * 1024];
    let top = unsafe { stack.as_mut_ptr().add(stack.len()) } as *mut libc::c_void;
    for _ in 0..(min as usize + 100) {
        let pid = unsafe {
            libc::clone(
                child,
                top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::null_mut(),
            )
        };
        if pid < 0 {
            return;
        }
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        if pid >= min {
            return;
        }
    }
}

impl Launched {
    /// `Some(how it ended)` once the application is gone.
    pub fn exited(&mut self) -> Option<String> {
        if self.finished.is_none() {
            if let Ok(Some(st)) = self.launcher.try_wait() {
                self.finished = Some(describe_status(st));
            }
        }
        self.finished.clone()
    }

    /// Waits up to `timeout` for the application to end (after a dump CRIU kills it).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    /// The JVM process inside the namespace: the init itself or its first `java` descendant.
    pub fn java_pid(&self) -> Option<u32> {
        let mut queue = vec![self.init_pid];
        while let Some(p) = queue.pop() {
            if exe_of(p).map(|e| is_java(&e)).unwrap_or(false) {
                return Some(p);
            }
            queue.extend(children_of(p));
        }
        None
    }

    /// Kills every process of the namespace and reaps the launcher. Returns once the processes
    /// are gone (their sockets closed), so the next start finds its port free.
    pub fn kill(&mut self) {
        crate::os::signals::unguard();
        if self.exited().is_none() {
            // SIGKILL to the namespace's init ends every process in it; unshare, which waits for
            // init, then exits by itself.
            unsafe {
                libc::kill(self.init_pid as i32, libc::SIGKILL);
            }
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                let _ = self.launcher.kill();
                let _ = self.launcher.wait();
            }
            self.finished = Some("killed by cracin".into());
        }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_and_heap_detection() {
        let a: Vec<String> = ["java", "-XX:+UseG1GC", "-Xms1g", "-jar", "x.jar"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(chooses_gc(&a));
        assert!(sets_initial_heap(&a));
        let b: Vec<String> = ["java", "-jar", "x.jar"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(!chooses_gc(&b) && !sets_initial_heap(&b));
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let cwd = std::env::temp_dir();
        let e = validate_command(&[], &cwd).unwrap_err();
        assert!(e.to_string().contains("no application command"));
        let e = validate_command(&["no-such-program-xyz".into()], &cwd).unwrap_err();
        assert!(e.to_string().contains("not on PATH"), "{e}");
        let e = validate_command(&["./missing.sh".into()], &cwd).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        if which("java").is_some() {
            let e = validate_command(&["java".into(), "-jar".into(), "nope-404.jar".into()], &cwd)
                .unwrap_err();
            assert!(e.to_string().contains("nope-404.jar"), "{e}");
        }
    }
}
