//! sock_diag netlink against a real process: a listening socket of another process (IPv4 and
//! IPv6) is found with its port and inode, and cracin's port checks name its holder.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use cracin_core::os::{procfs, sockdiag};

#[test]
fn finds_the_listening_sockets_of_another_process() {
    require!(common::on_path("python3"));
    let script = r#"
import socket, sys, time
a = socket.socket(socket.AF_INET); a.bind(("127.0.0.1", 0)); a.listen()
b = socket.socket(socket.AF_INET6); b.bind(("::1", 0)); b.listen()
print(a.getsockname()[1], b.getsockname()[1], flush=True)
sys.stdin.read()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports: Vec<u16> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let pid = child.id();
    let all = sockdiag::tcp_listeners().expect("sock_diag answers");
    let result = std::panic::catch_unwind(|| {
        for port in &ports {
            assert!(all.iter().any(|(p, _)| p == port), "{port} not in {all:?}");
            assert_eq!(procfs::port_holders(*port), vec![pid]);
            let holder = procfs::port_holder(*port).flatten().unwrap();
            assert!(holder.contains(&pid.to_string()), "{holder}");
        }
        let mut mine = procfs::listening_ports_of(pid);
        mine.sort();
        let mut want = ports.clone();
        want.sort();
        assert_eq!(mine, want);
    });
    drop(child.stdin.take()); // EOF: the script exits
    let _ = child.wait();
    result.unwrap();
}
