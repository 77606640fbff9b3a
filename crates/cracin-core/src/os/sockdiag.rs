//! Listening TCP sockets of this network namespace through the kernel's sock_diag netlink
//! interface (NETLINK_SOCK_DIAG, `inet_diag_req_v2`), the way `ss` asks. Reading
//! /proc/net/tcp and /proc/net/tcp6 formats every socket of the namespace as text and cost
//! ~13 ms each on the restore path here; the kernel filters by state (LISTEN) and hands back
//! binary records instead. Callers fall back to /proc/net/tcp when netlink is not available
//! (e.g. a seccomp profile that forbids AF_NETLINK).

use std::io;

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then a 48-byte sockid.
const REQ_LEN: usize = 8 + 48;
/// `struct inet_diag_msg`: 4 bytes, the 48-byte sockid, expires, rqueue, wqueue, uid, inode.
const MSG_LEN: usize = 4 + 48 + 20;

/// (local port, socket inode) of every TCP socket in LISTEN state, IPv4 and IPv6.
pub fn tcp_listeners() -> io::Result<Vec<(u16, u64)>> {
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let mut out = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        send_request(raw, family)?;
        read_replies(raw, &mut out)?;
    }
    Ok(out)
}

/// The dump request for one address family: TCP sockets in LISTEN state.
fn request(family: u8, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + REQ_LEN;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    b.push(family);
    b.push(libc::IPPROTO_TCP as u8);
    b.push(0); // no extensions
    b.push(0);
    b.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    b.resize(len, 0); // any address, any port, any interface
    b
}

fn send_request(fd: i32, family: u8) -> io::Result<()> {
    let req = request(family, family as u32);
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    let n = unsafe {
        libc::sendto(
            fd,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn read_replies(fd: i32, out: &mut Vec<(u16, u64)>) -> io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if parse_replies(&buf[..n as usize], out)? {
            return Ok(());
        }
    }
}

/// Parses one datagram of netlink messages into `out`; true once the dump is complete.
pub fn parse_replies(mut data: &[u8], out: &mut Vec<(u16, u64)>) -> io::Result<bool> {
    let u32_at = |b: &[u8], o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            ));
        }
        let body = &data[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = if body.len() >= 4 {
                    -(u32_at(body, 0) as i32)
                } else {
                    libc::EIO
                };
                return Err(io::Error::from_raw_os_error(errno));
            }
            SOCK_DIAG_BY_FAMILY if body.len() >= MSG_LEN => {
                // The port is in network byte order; the inode is the last field.
                let port = u16::from_be_bytes([body[4], body[5]]);
                let inode = u32_at(body, MSG_LEN - 4) as u64;
                out.push((port, inode));
            }
            _ => {}
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        data = &data[next.min(data.len())..];
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_kernel_layout() {
        let r = request(libc::AF_INET6 as u8, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!(r[16], libc::AF_INET6 as u8);
        assert_eq!(r[17], libc::IPPROTO_TCP as u8);
        assert_eq!(
            u32::from_ne_bytes(r[20..24].try_into().unwrap()),
            1 << TCP_LISTEN
        );
    }

    #[test]
    fn replies_parse_port_and_inode_then_done() {
        let mut msg = vec![0u8; NLMSG_HDRLEN + MSG_LEN];
        msg[0..4].copy_from_slice(&((NLMSG_HDRLEN + MSG_LEN) as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg[NLMSG_HDRLEN + 4..NLMSG_HDRLEN + 6].copy_from_slice(&8080u16.to_be_bytes());
        msg[NLMSG_HDRLEN + MSG_LEN - 4..].copy_from_slice(&123456u32.to_ne_bytes());
        let mut done = vec![0u8; NLMSG_HDRLEN + 4];
        done[0..4].copy_from_slice(&((NLMSG_HDRLEN + 4) as u32).to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        let mut out = Vec::new();
        assert!(!parse_replies(&msg, &mut out).unwrap());
        msg.extend_from_slice(&done);
        assert!(parse_replies(&msg, &mut out).unwrap());
        assert_eq!(out, vec![(8080, 123456), (8080, 123456)]);
    }

    #[test]
    fn finds_a_socket_this_process_listens_on() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let all = tcp_listeners().expect("sock_diag netlink works on Linux");
        assert!(all.iter().any(|(p, _)| *p == port), "{port} not in {all:?}");
    }
}
