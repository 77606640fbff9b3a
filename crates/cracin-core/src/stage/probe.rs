//! Readiness: instead of sleeping, cracin asks the application whether it is ready. A probe is an
//! HTTP(S) URL that must answer 2xx, a TCP address that must accept a connection, or a regular
//! expression that must appear in the application's output. `wait_ready` polls a probe every few
//! milliseconds until it passes, the deadline passes, or the application dies.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How to tell that the application is ready.
#[derive(Debug, Clone)]
pub enum Probe {
    Http(String),
    Tcp(String),
    Log(regex::Regex),
}

/// The probe as written by the user, kept in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeSpec(pub String);

impl Probe {
    /// Parses `http://…`, `https://…`, `tcp://host:port` or `log:REGEX`.
    pub fn parse(s: &str) -> Result<Probe> {
        let bad = |why: &str| {
            Error::usage(
                format!("invalid --ready value `{s}`: {why}"),
                "use an HTTP(S) URL that answers 2xx when ready (http://127.0.0.1:8080/health), tcp://HOST:PORT, or log:REGEX matched against the application's output",
            )
        };
        if s.starts_with("http://") || s.starts_with("https://") {
            let rest = s.split_once("://").map(|x| x.1).unwrap_or("");
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad("the URL has no host"));
            }
            Ok(Probe::Http(s.to_string()))
        } else if let Some(addr) = s.strip_prefix("tcp://") {
            let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad("expected tcp://HOST:PORT with a numeric port"));
            }
            Ok(Probe::Tcp(addr.to_string()))
        } else if let Some(re) = s.strip_prefix("log:") {
            let re =
                regex::Regex::new(re).map_err(|e| bad(&format!("bad regular expression: {e}")))?;
            Ok(Probe::Log(re))
        } else {
            Err(bad("unknown kind of probe"))
        }
    }

    /// The TCP port the probe talks to on this host, if it is a local HTTP or TCP probe.
    pub fn local_port(&self) -> Option<u16> {
        let hostport = match self {
            Probe::Http(u) => {
                let rest = u.split_once("://")?.1;
                let hp = rest.split('/').next()?;
                let default = if u.starts_with("https") { 443 } else { 80 };
                if hp.contains(':') {
                    hp.to_string()
                } else {
                    format!("{hp}:{default}")
                }
            }
            Probe::Tcp(a) => a.clone(),
            Probe::Log(_) => return None,
        };
        let (host, port) = hostport.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if ["127.0.0.1", "localhost", "::1", "0.0.0.0"].contains(&host) || host.starts_with("127.")
        {
            port.parse().ok()
        } else {
            None
        }
    }

    /// One attempt. `logs` are the application's output files (for `log:` probes).
    pub fn check(&self, logs: &[PathBuf], agent: &ureq::Agent) -> bool {
        match self {
            Probe::Http(url) => {
                matches!(agent.get(url).call(), Ok(r) if (200..300).contains(&r.status()))
            }
            Probe::Tcp(addr) => resolve(addr)
                .map(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
                .unwrap_or(false),
            Probe::Log(re) => logs
                .iter()
                .any(|p| re.is_match(&crate::os::cmd::read_lossy(p))),
        }
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Http(u) => write!(f, "{u}"),
            Probe::Tcp(a) => write!(f, "tcp://{a}"),
            Probe::Log(r) => write!(f, "log:{}", r.as_str()),
        }
    }
}

fn resolve(addr: &str) -> Option<SocketAddr> {
    addr.to_socket_addrs().ok()?.next()
}

/// An HTTP agent for probes: short timeouts, no proxies, no redirects followed silently.
pub fn probe_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_millis(500))
        .timeout(Duration::from_secs(5))
        .redirects(0)
        .build()
}

/// Why waiting ended without readiness.
#[derive(Debug)]
pub enum NotReady {
    /// The deadline passed.
    Timeout,
    /// `alive` said the application is gone; its description of how it ended.
    Exited(String),
}

/// Polls `probe` every `interval` until it passes (returns the time it took), the application
/// dies (`alive` returns `Some(how)`), or `timeout` passes.
pub fn wait_ready(
    probe: &Probe,
    logs: &[PathBuf],
    timeout: Duration,
    interval: Duration,
    mut dead: impl FnMut() -> Option<String>,
) -> std::result::Result<Duration, NotReady> {
    let agent = probe_agent();
    let start = Instant::now();
    loop {
        if probe.check(logs, &agent) {
            return Ok(start.elapsed());
        }
        if let Some(how) = dead() {
            return Err(NotReady::Exited(how));
        }
        if start.elapsed() >= timeout {
            return Err(NotReady::Timeout);
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        assert!(matches!(
            Probe::parse("http://127.0.0.1:8080/health"),
            Ok(Probe::Http(_))
        ));
        assert!(matches!(
            Probe::parse("https://localhost/x"),
            Ok(Probe::Http(_))
        ));
        assert!(matches!(
            Probe::parse("tcp://127.0.0.1:9"),
            Ok(Probe::Tcp(_))
        ));
        assert!(matches!(
            Probe::parse("log:Started .* in"),
            Ok(Probe::Log(_))
        ));
    }

    #[test]
    fn rejects_bad_probes_with_a_hint() {
        for bad in [
            "ftp://x",
            "tcp://nohost",
            "tcp://h:notaport",
            "log:(",
            "http://",
            "8080",
        ] {
            let e = Probe::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("invalid --ready value"),
                "{bad}: {e}"
            );
            assert!(e.hint().unwrap().contains("tcp://HOST:PORT"));
        }
    }

    #[test]
    fn local_ports() {
        assert_eq!(
            Probe::parse("http://127.0.0.1:8080/h")
                .unwrap()
                .local_port(),
            Some(8080)
        );
        assert_eq!(
            Probe::parse("http://localhost/h").unwrap().local_port(),
            Some(80)
        );
        assert_eq!(
            Probe::parse("tcp://[::1]:9000").unwrap().local_port(),
            Some(9000)
        );
        assert_eq!(
            Probe::parse("http://example.org:81/").unwrap().local_port(),
            None
        );
    }

    #[test]
    fn tcp_probe_against_a_real_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let p = Probe::parse(&format!("tcp://127.0.0.1:{port}")).unwrap();
        let r = wait_ready(
            &p,
            &[],
            Duration::from_secs(2),
            Duration::from_millis(5),
            || None,
        );
        assert!(r.is_ok());
        drop(l);
        let r = wait_ready(
            &p,
            &[],
            Duration::from_millis(50),
            Duration::from_millis(5),
            || None,
        );
        assert!(matches!(r, Err(NotReady::Timeout)));
    }

    #[test]
    fn log_probe_reads_files_and_death_stops_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("out");
        std::fs::write(&f, "booting\nStarted in 1.2s\n").unwrap();
        let p = Probe::parse("log:Started in").unwrap();
        assert!(wait_ready(
            &p,
            std::slice::from_ref(&f),
            Duration::from_secs(1),
            Duration::from_millis(5),
            || None
        )
        .is_ok());
        let p = Probe::parse("log:never").unwrap();
        let r = wait_ready(
            &p,
            &[f],
            Duration::from_secs(5),
            Duration::from_millis(5),
            || Some("exit status 1".into()),
        );
        assert!(matches!(r, Err(NotReady::Exited(s)) if s == "exit status 1"));
    }
}
