//! The network facts cracin needs about an address it was given or will hand out: which port a
//! readiness URL names, and a loopback port that is free right now.

/// The port of an http(s)://host:port/… or tcp://host:port URL (80/443 when an http(s) URL
/// names none).
pub fn url_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let hostport = rest.split('/').next()?;
    match hostport.rsplit_once(':') {
        Some((_, p)) => p.parse().ok(),
        None if url.starts_with("https://") => Some(443),
        None if url.starts_with("http://") => Some(80),
        None => None,
    }
}

/// A loopback TCP port that is free right now (the kernel picks it).
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_of_urls() {
        assert_eq!(url_port("http://localhost:8080/health"), Some(8080));
        assert_eq!(url_port("https://example.org/"), Some(443));
        assert_eq!(url_port("http://example.org"), Some(80));
        assert_eq!(url_port("tcp://127.0.0.1:9000"), Some(9000));
        assert_eq!(url_port("tcp://127.0.0.1"), None);
        assert_eq!(url_port("no-scheme"), None);
    }

    #[test]
    fn a_free_port_can_be_bound() {
        let p = free_port().unwrap();
        assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
    }
}
