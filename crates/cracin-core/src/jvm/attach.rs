//! A client for HotSpot's attach mechanism, the protocol `jcmd` speaks: cracin runs diagnostic
//! commands (`GC.run`, `System.trim_native_heap`) in the application's JVM right before the dump
//! without starting a second JVM for `jcmd` (half a second here) and also on a JRE, which has no
//! `jcmd`. The JVM listens on `/tmp/.java_pid<N>` (its own /tmp, its own PID N) once it has seen a
//! trigger file `.attach_pid<N>` and a SIGQUIT.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The PID a process has inside its own PID namespace (the last NSpid field).
pub fn ns_pid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

fn socket_path(pid: u32, nspid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root/tmp/.java_pid{nspid}"))
}

/// Runs one `jcmd` command (e.g. "GC.run") in the JVM `pid` and returns its output.
pub fn jcmd(pid: u32, command: &str, timeout: Duration) -> Result<String> {
    let nspid = ns_pid(pid).unwrap_or(pid);
    let sock = socket_path(pid, nspid);
    let fail = |why: String| Error::Command {
        command: format!("jcmd {pid} {command} (attach API)"),
        status: why,
        log: sock.clone(),
        log_tail: String::new(),
    };
    if !sock.exists() {
        // Ask the JVM to start its attach listener: a trigger file it can see, then SIGQUIT
        // (without the trigger file SIGQUIT would only print a thread dump).
        let candidates = [
            PathBuf::from(format!("/proc/{pid}/cwd/.attach_pid{nspid}")),
            PathBuf::from(format!("/proc/{pid}/root/tmp/.attach_pid{nspid}")),
        ];
        let trigger = candidates
            .iter()
            .find(|p| std::fs::write(p, b"").is_ok())
            .cloned()
            .ok_or_else(|| fail("no place to write the attach trigger file".into()))?;
        unsafe {
            libc::kill(pid as i32, libc::SIGQUIT);
        }
        let deadline = Instant::now() + timeout;
        while !sock.exists() {
            if Instant::now() > deadline {
                let _ = std::fs::remove_file(&trigger);
                return Err(fail(
                    "the JVM did not start its attach listener (-XX:+DisableAttachMechanism?)"
                        .into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_file(&trigger);
    }
    let mut s = UnixStream::connect(&sock).map_err(|e| fail(format!("cannot connect: {e}")))?;
    s.set_read_timeout(Some(timeout)).ok();
    // Protocol version 1, the operation, then exactly three arguments, each NUL-terminated.
    let mut req = Vec::new();
    for part in ["1", "jcmd", command, "", ""] {
        req.extend_from_slice(part.as_bytes());
        req.push(0);
    }
    s.write_all(&req)
        .map_err(|e| fail(format!("cannot send: {e}")))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| fail(format!("no answer: {e}")))?;
    let (code, rest) = out.split_once('\n').unwrap_or((out.as_str(), ""));
    if code.trim() != "0" {
        return Err(fail(format!(
            "attach error {}: {}",
            code.trim(),
            rest.trim()
        )));
    }
    // The JVM answers 0 and prints the command's own error for unknown commands.
    if rest.contains("Unknown diagnostic command")
        || rest.contains("java.lang.IllegalArgumentException")
    {
        return Err(fail(rest.trim().to_string()));
    }
    Ok(rest.to_string())
}

/// Removes the JVM's attach socket file so that the next JVM that is PID 1 of its namespace does
/// not find a stale one (the dumped listener is restored by CRIU as a ghost socket).
///
/// Not as a non-root user: the JVM binds its listener to `.java_pidN.tmp` and renames it, and for
/// a socket whose bound name is gone CRIU 4.2.1 records no real owner, so a non-root restore fails
/// to chown the re-bound socket ("Unable to change ... ownership ... Operation not permitted";
/// root's chown succeeds). Renamed back to its bound name, the socket is dumped with its owner and
/// restored as a file jcmd does not look for.
pub fn remove_socket_file(pid: u32) {
    let nspid = ns_pid(pid).unwrap_or(pid);
    let sock = socket_path(pid, nspid);
    if !crate::os::sysinfo::is_root() {
        let bound = PathBuf::from(format!("{}.tmp", sock.display()));
        if std::fs::rename(&sock, &bound).is_ok() {
            return;
        }
    }
    let _ = std::fs::remove_file(sock);
}
