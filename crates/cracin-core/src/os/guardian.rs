//! The guardian process itself (`cracin __guard`): reads what cracin tells it over its stdin
//! (`guard` is cracin's side) and, when the pipe closes without a final `done` because cracin
//! died, kills what it was told through pidfds (a PID reused meanwhile is never hit), removes
//! the paths (never following a symlink) and runs the clean-up commands, then exits.

use std::io::BufRead;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A clean-up command: argv and environment additions.
type CleanupCmd = (Vec<String>, Vec<(String, String)>);

struct Watched {
    pid: u32,
    group: bool,
    fd: Option<OwnedFd>,
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the process behind a pidfd still runs (a pidfd becomes readable when it exits).
fn alive(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    unsafe { libc::poll(&mut p, 1, 0) == 0 }
}

/// The guardian's main loop (`cracin __guard`): reads instructions from stdin until `done`
/// (exit quietly) or end of file (cracin died: clean up).
pub fn serve() -> i32 {
    let mut watched: Vec<Watched> = Vec::new();
    let mut paths: Vec<std::path::PathBuf> = Vec::new();
    let mut commands: Vec<CleanupCmd> = Vec::new();
    // criu's pid files and when they were named (clock ticks since boot).
    let mut pidfiles: Vec<(std::path::PathBuf, u64)> = Vec::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let (verb, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match verb {
            "done" => return 0,
            "watch" | "group" => {
                if let Ok(pid) = arg.parse::<u32>() {
                    watched.push(Watched {
                        pid,
                        group: verb == "group",
                        // Opened while cracin is alive and the process is its own: a later
                        // reuse of the PID cannot be mistaken for it.
                        fd: pidfd_open(pid),
                    });
                }
            }
            "forget" => {
                if let Ok(pid) = arg.parse::<u32>() {
                    watched.retain(|w| w.pid != pid);
                    pidfiles.retain(|(path, _)| read_pid(path) != Some(pid));
                }
            }
            "pidfile" => pidfiles.push((arg.into(), uptime_ticks())),
            "remove" => paths.push(arg.into()),
            "keep" => paths.retain(|p| p.as_os_str() != arg),
            "run" => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(arg) {
                    let argv: Vec<String> = v["argv"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    let env: Vec<(String, String)> = v["env"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|kv| {
                                    Some((kv[0].as_str()?.to_string(), kv[1].as_str()?.to_string()))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    if !argv.is_empty() {
                        commands.push((argv, env));
                    }
                }
            }
            _ => {}
        }
    }
    for (path, since) in &pidfiles {
        if let Some(pid) = read_pid(path).filter(|&p| started_ticks(p).is_some_and(|t| t >= *since))
        {
            if !watched.iter().any(|w| w.pid == pid) {
                watched.push(Watched {
                    pid,
                    group: false,
                    fd: pidfd_open(pid),
                });
            }
        }
    }
    clean_up(&watched, &paths, &commands);
    0
}

fn read_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Clock ticks since boot now (/proc/uptime), comparable with a process's start time.
fn uptime_ticks() -> u64 {
    let secs: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // A tick back: /proc/uptime and the start time are rounded differently.
    ((secs * hz) as u64).saturating_sub(1)
}

/// When `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat).
fn started_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Every descendant of `pid` (from /proc/PID/task/*/children), parents before children.
fn descendants(pid: u32) -> Vec<u32> {
    let mut tree = crate::os::procfs::tree_of(pid);
    tree.remove(0);
    tree
}

fn clean_up(watched: &[Watched], paths: &[std::path::PathBuf], commands: &[CleanupCmd]) {
    // criu first (its process group), then the application: the last registered first.
    for w in watched.iter().rev() {
        let Some(fd) = &w.fd else { continue };
        if !alive(fd) {
            continue;
        }
        if w.group {
            // Its descendants first (criu's restored tasks are not in its group), then the group.
            for d in descendants(w.pid) {
                unsafe {
                    libc::kill(d as i32, libc::SIGKILL);
                }
            }
            unsafe {
                libc::kill(-(w.pid as i32), libc::SIGKILL);
            }
        }
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            );
        }
    }
    // Wait (bounded) until they are gone, so that files they hold can go too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while watched.iter().any(|w| w.fd.as_ref().is_some_and(alive))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    for p in paths {
        // remove_dir_all does not follow a symlink; a path that became one is only unlinked.
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir_all(p);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(p);
            }
            Err(_) => {}
        }
    }
    for (argv, env) in commands {
        let mut c = crate::os::cmd::Cmd::new(&argv[0])
            .args(&argv[1..])
            .timeout(Duration::from_secs(120));
        for (k, v) in env {
            c = c.env(k, v);
        }
        let _ = c.run_unchecked();
    }
}
