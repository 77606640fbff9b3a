//! The one way cracin runs an external program (criu, java -version, jcmd, podman, ...): with a
//! timeout, standard output and error captured to files, the child killed when the time runs
//! out, and an error that carries the command line, the exit status and the tail of the output,
//! so that no caller has to assemble that evidence by hand.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A command to run: program, arguments, environment additions and limits.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    /// Where stdout and stderr go; a private temporary directory when `None`.
    pub log_dir: Option<PathBuf>,
    /// File stem for the logs (`<stem>.out`, `<stem>.err`).
    pub log_stem: String,
    pub stdin_null: bool,
    /// Files handed to the child at fixed descriptor numbers (e.g. for `criu --inherit-fd`).
    pub fds: Vec<(i32, std::sync::Arc<File>)>,
    /// The child's umask (`private()`: 077, so what CRIU writes is private from the start).
    pub umask: Option<u32>,
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub elapsed: Duration,
}

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Self {
        let program = program.into();
        let stem = Path::new(&program)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cmd".into());
        Cmd {
            program,
            args: Vec::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(60),
            log_dir: None,
            log_stem: stem,
            stdin_null: true,
            fds: Vec::new(),
            umask: None,
        }
    }
    /// The child writes its files private (umask 077): CRIU's images and logs.
    pub fn private(mut self) -> Self {
        self.umask = Some(crate::os::perms::PRIVATE_UMASK);
        self
    }
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Hands `file` to the child as descriptor `fd`.
    pub fn fd(mut self, fd: i32, file: File) -> Self {
        self.fds.push((fd, std::sync::Arc::new(file)));
        self
    }
    pub fn logs(mut self, dir: impl Into<PathBuf>, stem: impl Into<String>) -> Self {
        self.log_dir = Some(dir.into());
        self.log_stem = stem.into();
        self
    }

    /// The command line as a user could paste it into a shell.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(self.args.iter())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the command; a non-zero exit is returned as `Output`, not as an error.
    pub fn run_unchecked(&self) -> Result<Output> {
        let (dir, _keep) = self.log_dir()?;
        let out_path = dir.join(format!("{}.out", self.log_stem));
        let err_path = dir.join(format!("{}.err", self.log_stem));
        let mut c = self.command(&out_path, &err_path)?;
        let start = Instant::now();
        let mut child = c.spawn().map_err(|e| Error::Spawn {
            command: self.display(),
            source: e,
        })?;
        // If cracin dies now, its guardian kills this command and its process group.
        crate::os::guard::watch_group(child.id());
        let _forget = ForgetOnDrop(child.id());
        let status = self.wait_within_timeout(&mut child, start, &out_path, &err_path)?;
        let elapsed = start.elapsed();
        Ok(Output {
            status,
            stdout: read_lossy(&out_path),
            stderr: read_lossy(&err_path),
            stdout_path: out_path,
            stderr_path: err_path,
            elapsed,
        })
    }

    /// Where the output files go: the given log directory, or a private temporary one that is
    /// removed when the returned guard drops.
    fn log_dir(&self) -> Result<(PathBuf, Option<TmpDirGuard>)> {
        match &self.log_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
                Ok((d.clone(), None))
            }
            None => {
                let d = private_tmp_dir("cracin-cmd")?;
                Ok((d.clone(), Some(TmpDirGuard(d))))
            }
        }
    }

    /// The `Command` to spawn: output to private files, its own process group (a timeout kills
    /// the whole tree it started), the umask asked for, signals unblocked, the extra fds placed.
    fn command(&self, out_path: &Path, err_path: &Path) -> Result<Command> {
        let out = crate::os::perms::create_private_file(out_path)?;
        let err = crate::os::perms::create_private_file(err_path)?;
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .stdout(out)
            .stderr(err)
            .stdin(if self.stdin_null {
                Stdio::null()
            } else {
                Stdio::inherit()
            });
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.process_group(0);
        if let Some(mask) = self.umask {
            unsafe {
                c.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        unsafe {
            c.pre_exec(|| {
                // cracin may block SIGTERM/SIGINT to forward them; children start unblocked.
                crate::os::signals::unblock_all_signals();
                Ok(())
            });
        }
        if !self.fds.is_empty() {
            use std::os::fd::AsRawFd;
            let map: Vec<(i32, i32)> = self.fds.iter().map(|(n, f)| (*n, f.as_raw_fd())).collect();
            unsafe {
                c.pre_exec(move || place_fds(&map));
            }
        }
        Ok(c)
    }

    /// Waits for the child; past the timeout, kills its process group and returns
    /// `Error::CommandTimeout` with the tail of its error output.
    fn wait_within_timeout(
        &self,
        child: &mut std::process::Child,
        start: Instant,
        out_path: &Path,
        err_path: &Path,
    ) -> Result<ExitStatus> {
        // Woken the moment the child exits (a pidfd polls readable then), not on the next tick
        // of a sleep loop: `criu restore` is on the path to a restore's first answer.
        let pidfd = PidFd::open(child.id());
        loop {
            if let Some(st) = child.try_wait().map_err(|e| Error::io(out_path, e))? {
                return Ok(st);
            }
            if start.elapsed() > self.timeout {
                let pgid = child.id() as i32;
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
                let _ = child.wait();
                return Err(Error::CommandTimeout {
                    command: self.display(),
                    timeout: self.timeout,
                    log_tail: tail_of_file(err_path, 20),
                });
            }
            let left = self.timeout.saturating_sub(start.elapsed());
            match &pidfd {
                Some(fd) => fd.wait(left.min(Duration::from_millis(500))),
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }

    /// Runs the command and turns a non-zero exit into `Error::Command` with the log tail.
    pub fn run(&self) -> Result<Output> {
        let out = self.run_unchecked()?;
        if !out.status.success() {
            let mut tail = tail_of_text(&out.stderr, 20);
            if tail.trim().is_empty() {
                tail = tail_of_text(&out.stdout, 20);
            }
            return Err(Error::Command {
                command: self.display(),
                status: describe_status(out.status),
                log: out.stderr_path.clone(),
                log_tail: tail,
            });
        }
        Ok(out)
    }
}

/// Withdraws a finished command from the guardian.
struct ForgetOnDrop(u32);
impl Drop for ForgetOnDrop {
    fn drop(&mut self) {
        crate::os::guard::forget(self.0);
    }
}

struct TmpDirGuard(PathBuf);
impl Drop for TmpDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a fresh private directory under the system temp dir (mkdtemp: mode 0700, random name).
pub fn private_tmp_dir(prefix: &str) -> Result<PathBuf> {
    crate::os::tempdir::mkdtemp(prefix)
}

/// "exit status 3", "killed by signal 9 (SIGKILL)".
pub fn describe_status(st: ExitStatus) -> String {
    if let Some(c) = st.code() {
        format!("exit status {c}")
    } else if let Some(s) = st.signal() {
        let name = nix::sys::signal::Signal::try_from(s)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| "?".into());
        format!("killed by signal {s} ({name})")
    } else {
        format!("{st}")
    }
}

/// In the child, between fork and exec: puts each source fd on its target number. Every
/// source is first moved out of the way (a source may sit on another's target number), then
/// dup2'd into place; dup2 clears FD_CLOEXEC on the target.
pub(crate) fn place_fds(map: &[(i32, i32)]) -> std::io::Result<()> {
    let mut high = Vec::with_capacity(map.len());
    for (_, src) in map {
        let h = unsafe { libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 200) };
        if h < 0 {
            return Err(std::io::Error::last_os_error());
        }
        high.push(h);
    }
    for ((target, _), h) in map.iter().zip(high) {
        if unsafe { libc::dup2(h, *target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn read_lossy(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of a text.
pub fn tail_of_text(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// The last `n` lines of a file, reading at most its last 64 KiB.
pub fn tail_of_file(p: &Path, n: usize) -> String {
    let Ok(mut f) = File::open(p) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    let _ = f.seek(SeekFrom::Start(from));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    tail_of_text(&String::from_utf8_lossy(&buf), n)
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A process's pidfd (Linux 5.3+): readable once the process has exited.
struct PidFd(std::os::fd::OwnedFd);

impl PidFd {
    /// None where the kernel has no pidfd_open: the caller polls instead.
    fn open(pid: u32) -> Option<PidFd> {
        use std::os::fd::FromRawFd;
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        (fd >= 0).then(|| PidFd(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Blocks until the process exits or `at_most` passed (or a signal interrupted the wait).
    fn wait(&self, at_most: Duration) {
        use std::os::fd::AsRawFd;
        let mut p = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = at_most.as_millis().clamp(1, i32::MAX as u128) as i32;
        unsafe {
            libc::poll(&mut p, 1, ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc-1.2"), "abc-1.2");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn failing_command_carries_evidence() {
        let err = Cmd::new("sh")
            .args(["-c", "echo boom >&2; exit 3"])
            .run()
            .unwrap_err();
        match err {
            Error::Command {
                status,
                log_tail,
                command,
                ..
            } => {
                assert_eq!(status, "exit status 3");
                assert_eq!(log_tail, "boom");
                assert_eq!(command, "sh -c 'echo boom >&2; exit 3'");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let start = Instant::now();
        let err = Cmd::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .timeout(Duration::from_millis(200))
            .run()
            .unwrap_err();
        assert!(matches!(err, Error::CommandTimeout { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail_of_text("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_of_text("a", 5), "a");
    }
}
