//! What /proc (and the kernel's socket tables) say about the host's processes: whether one
//! still runs, its children and whole tree, its executable and name, and which TCP ports it
//! listens on; who else holds a port. Nothing here is JVM-specific: the local engine uses it
//! to follow the launched application, to refuse a taken port, and to find what a restore owns.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// `Some(state)` when the process no longer runs (gone or a zombie).
pub fn gone(pid: u32) -> Option<String> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => Some("exited".into()),
        Ok(s) => {
            let state = s.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
            (state == Some('Z')).then(|| "exited".into())
        }
    }
}

/// Whether the process still runs (neither gone nor a zombie).
pub fn alive(pid: u32) -> bool {
    gone(pid).is_none()
}

/// Direct children of a process (from /proc/PID/task/*/children, with a /proc scan fallback).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                v.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

pub fn exe_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// TCP ports in LISTEN state held by the given process (IPv4 and IPv6).
pub fn listening_ports_of(pid: u32) -> Vec<u16> {
    let inodes: BTreeSet<u64> = socket_inodes_of(pid);
    let mut ports: Vec<u16> = listening_sockets()
        .into_iter()
        .filter(|(_, ino)| inodes.contains(ino))
        .map(|(p, _)| p)
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

fn socket_inodes_of(pid: u32) -> BTreeSet<u64> {
    let mut s = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(l) = std::fs::read_link(e.path()) {
                let l = l.to_string_lossy();
                if let Some(ino) = l.strip_prefix("socket:[").and_then(|x| x.strip_suffix(']')) {
                    if let Ok(i) = ino.parse() {
                        s.insert(i);
                    }
                }
            }
        }
    }
    s
}

/// (port, inode) of every TCP socket listening on this host's network namespace: asked of the
/// kernel through sock_diag netlink, or read from /proc/net/tcp{,6} when netlink is refused.
pub fn listening_sockets() -> Vec<(u16, u64)> {
    if let Ok(v) = crate::os::sockdiag::tcp_listeners() {
        return v;
    }
    let mut v = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        v.extend(parse_proc_net_tcp(&text));
    }
    v
}

/// Parses /proc/net/tcp{,6}, keeping LISTEN (state 0A) sockets.
pub fn parse_proc_net_tcp(text: &str) -> Vec<(u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                return None;
            }
            let port = u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()?;
            let inode = f[9].parse().ok()?;
            Some((port, inode))
        })
        .collect()
}

/// A process and all its descendants.
pub fn tree_of(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let kids = children_of(all[i]);
        all.extend(kids);
        i += 1;
    }
    all
}

/// "pid 123 (java)".
pub fn describe_pid(pid: u32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("pid {pid} ({})", comm.trim())
}

/// Whether every socket listening on `port` belongs to one of `pids` (no /proc-wide scan).
pub fn only_ours_listen(port: u16, pids: &[u32]) -> bool {
    let ours: BTreeSet<u64> = pids.iter().flat_map(|p| socket_inodes_of(*p)).collect();
    listening_sockets()
        .into_iter()
        .filter(|(p, _)| *p == port)
        .all(|(_, i)| ours.contains(&i))
}

/// The inodes of the sockets listening on `port` on this host.
fn listening_inodes(port: u16) -> BTreeSet<u64> {
    listening_sockets()
        .into_iter()
        .filter(|(p, _)| *p == port)
        .map(|(_, i)| i)
        .collect()
}

/// The processes holding one of `inodes`, in /proc order, read lazily.
fn holders_of(inodes: &BTreeSet<u64>) -> impl Iterator<Item = u32> + '_ {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| socket_inodes_of(*pid).iter().any(|i| inodes.contains(i)))
}

/// Every process holding a socket that listens on `port` on this host.
pub fn port_holders(port: u16) -> Vec<u32> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return Vec::new();
    }
    holders_of(&inodes).collect()
}

/// Who listens on `port` on this host, as "pid 123 (java)", if anyone does: `None` when nothing
/// listens, `Some(None)` when a socket listens but no process visible here holds it.
pub fn port_holder(port: u16) -> Option<Option<String>> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let first = holders_of(&inodes).next();
    Some(first.map(describe_pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_listen_entries() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 999 1\n";
        assert_eq!(parse_proc_net_tcp(t), vec![(8080, 12345)]);
    }

    #[test]
    fn finds_our_own_listening_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_ports_of(std::process::id()).contains(&port));
        let holder = port_holder(port)
            .expect("someone listens")
            .expect("and we know who");
        assert!(holder.contains(&std::process::id().to_string()), "{holder}");
    }

    #[test]
    fn a_running_process_is_alive_and_a_reaped_one_gone() {
        assert!(alive(std::process::id()));
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        assert_eq!(gone(pid).as_deref(), Some("exited"));
    }
}
