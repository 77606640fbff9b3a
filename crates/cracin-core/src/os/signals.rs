//! Stop signals (SIGTERM, SIGINT, SIGHUP) around the processes cracin starts: while an
//! application cracin launched runs, a stop signal to cracin takes it down too (nothing is left
//! running); while CRIU restores, stop requests are held back until the restored pid is known;
//! and a foreground cracin forwards them to the restored application and returns its exit
//! status. Host plumbing: nothing here knows about JVMs or CRIU.

use std::time::Duration;

use crate::error::{Error, Result};

/// The namespace init that a SIGINT/SIGTERM/SIGHUP to cracin must take down with it.
static GUARDED_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    let pid = GUARDED_PID.load(std::sync::atomic::Ordering::SeqCst);
    // Only async-signal-safe calls here: kill and _exit.
    unsafe {
        if pid > 0 {
            libc::kill(pid, libc::SIGKILL);
        }
        libc::_exit(128 + sig);
    }
}

/// While an application launched by cracin runs, Ctrl-C or a SIGTERM to cracin also kills it,
/// so that an interrupted checkpoint leaves nothing running.
pub fn guard_against_signals(init_pid: u32) {
    GUARDED_PID.store(init_pid as i32, std::sync::atomic::Ordering::SeqCst);
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, on_fatal_signal as *const () as libc::sighandler_t);
        }
    });
}

/// The launched application is being stopped by cracin itself (or is gone): a stop signal to
/// cracin no longer needs to take it down.
pub fn unguard() {
    GUARDED_PID.store(0, std::sync::atomic::Ordering::SeqCst);
}

fn stop_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    set
}

/// SIGTERM/SIGINT/SIGHUP held back on this thread until dropped; dropping puts the previous
/// mask back (a foreground restore keeps them blocked), so a signal that arrived meanwhile takes
/// effect then. Threads started meanwhile inherit the mask; children unblock for themselves.
pub struct HeldStopSignals(Option<nix::sys::signal::SigSet>);

impl HeldStopSignals {
    pub fn hold() -> Self {
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
        let mut old = SigSet::empty();
        match pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&stop_signals()), Some(&mut old)) {
            Ok(()) => Self(Some(old)),
            Err(_) => Self(None),
        }
    }
}

impl Drop for HeldStopSignals {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            let _ = nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&old),
                None,
            );
        }
    }
}

/// Holds back SIGTERM/SIGINT/SIGHUP from now on (call it first, from the main thread, before a
/// foreground restore) so that a stop request that arrives while the restore is still running
/// is forwarded to the application instead of killing cracin and orphaning it.
pub fn block_stop_signals() -> Result<()> {
    stop_signals()
        .thread_block()
        .map_err(|e| Error::io("sigprocmask", e.into()))
}

/// Stays attached to a restored application (restored with `foreground`): forwards SIGTERM and
/// SIGINT to it, reaps it, and returns its exit code (128+signal when a signal ended it).
pub fn wait_foreground(pid: u32) -> Result<i32> {
    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    let set = stop_signals();
    set.thread_block()
        .map_err(|e| Error::io("sigprocmask", e.into()))?;
    std::thread::spawn(move || loop {
        if let Ok(sig) = set.wait() {
            let fwd = if sig == Signal::SIGHUP {
                Signal::SIGTERM
            } else {
                sig
            };
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), fwd);
        }
    });
    // As PID 1 of a container every orphan is ours too: reap them all, return on the JVM.
    let me_init = std::process::id() == 1;
    let target = if me_init {
        None
    } else {
        Some(nix::unistd::Pid::from_raw(pid as i32))
    };
    loop {
        match waitpid(target, None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() as u32 == pid => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() as u32 == pid => {
                return Ok(128 + sig as i32)
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECHILD) => {
                // Not our child (no subreaper): poll until it is gone.
                while super::procfs::alive(pid) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Ok(0);
            }
            Err(e) => return Err(Error::io("waitpid", e.into())),
        }
    }
}
/// Clears the calling thread's signal mask. cracin blocks SIGTERM/SIGINT/SIGHUP to forward
/// them during a foreground restore; programs it starts (in `pre_exec`, where only
/// async-signal-safe calls are allowed: these two are) or execs must receive them themselves.
pub fn unblock_all_signals() {
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}
