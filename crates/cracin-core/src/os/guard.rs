//! The guardian: a small helper process that cleans up after cracin if cracin dies without
//! doing it itself: killed by SIGKILL, by a signal during a step that has no handler, or by a
//! panic. cracin tells it over a pipe what to clean up (processes: the application, criu and
//! its process group, a restored application until it is ready; paths: the staging
//! directory; commands: `podman rm -f` of a build's containers and images) and withdraws it as
//! the work finishes. When the pipe closes without a final `done`, cracin is gone: the guardian
//! kills what it was told (through pidfds, so a PID reused meanwhile is never hit), removes
//! the paths (never following a symlink) and runs the commands, then exits.
//!
//! The guardian is cracin's own binary (`cracin __guard`, hidden), in a session of its own so
//! that the Ctrl-C that reaches cracin's process group does not reach it, with no stdio. This
//! module is cracin's side (starting the guardian, telling it what to watch); the guardian's own
//! loop is `guardian`.

use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The guardian of this process, once `enable` started it.
static GUARD: OnceLock<Mutex<Option<ChildStdin>>> = OnceLock::new();

/// The hidden subcommand that runs `serve`.
pub const SUBCOMMAND: &str = "__guard";

/// Starts the guardian (the current executable with `__guard`). Without one (it cannot be
/// started), every call below does nothing and cracin's own handlers are all there is.
pub fn enable() -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let mut c = Command::new(exe);
    c.arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            crate::os::signals::unblock_all_signals();
            // A session of its own: the terminal's Ctrl-C and hang-up do not reach it.
            libc::setsid();
            // It must outlive cracin, and it is cheap: nothing else to do.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    match c.spawn() {
        Ok(mut child) => {
            let stdin = child.stdin.take();
            // Never waited for: it exits on its own when cracin's end of the pipe closes.
            std::mem::forget(child);
            GUARD.set(Mutex::new(stdin)).is_ok()
        }
        Err(_) => false,
    }
}

fn send(line: &str) {
    if line.contains('\n') {
        return;
    }
    if let Some(m) = GUARD.get() {
        if let Ok(mut g) = m.lock() {
            if let Some(w) = g.as_mut() {
                let _ = writeln!(w, "{line}");
                let _ = w.flush();
            }
        }
    }
}

/// Kill `pid` if cracin dies (a PID namespace's init: its whole namespace goes with it).
pub fn watch(pid: u32) {
    send(&format!("watch {pid}"));
}

/// Kill `pid` and its process group if cracin dies (criu, which runs in a group of its own).
pub fn watch_group(pid: u32) {
    send(&format!("group {pid}"));
}

/// Kill the process whose pid `path` will hold (criu's --pidfile) if cracin dies: covers the
/// moment between criu writing it and cracin calling `watch` with it. Only a process started
/// after this call is killed, so a pid reused from earlier is never hit.
pub fn watch_pidfile(path: &std::path::Path) {
    send(&format!("pidfile {}", path.display()));
}

/// `pid` is done or handed over: leave it alone.
pub fn forget(pid: u32) {
    send(&format!("forget {pid}"));
}

/// Remove `path` (a directory cracin created) if cracin dies.
pub fn remove_on_death(path: &std::path::Path) {
    send(&format!("remove {}", path.display()));
}

/// `path` is no longer to be removed.
pub fn keep(path: &std::path::Path) {
    send(&format!("keep {}", path.display()));
}

/// Run `argv` (with `env` added) if cracin dies: a build's engine clean-up.
pub fn run_on_death(argv: &[String], env: &[(String, String)]) {
    let j = serde_json::json!({ "argv": argv, "env": env });
    send(&format!("run {j}"));
}

/// The work is finished (or cleaned up by cracin itself): the guardian exits without acting.
pub fn disarm() {
    send("done");
    if let Some(m) = GUARD.get() {
        if let Ok(mut g) = m.lock() {
            g.take();
        }
    }
}
