//! Warm-up: before the checkpoint, cracin sends real requests so that the JIT compiles the hot
//! paths and the checkpoint freezes a fast JVM, not a cold one. The load generator is a small pool
//! of threads with keep-alive HTTP connections; it reports throughput at the start and at the end,
//! which shows how much warmer the application became. The same module measures request latency
//! series for benchmarks (the first N requests after a start).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What to send.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WarmupSpec {
    pub urls: Vec<String>,
    pub requests: usize,
    pub concurrency: usize,
}

/// What the warm-up measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WarmupStats {
    pub requests: usize,
    pub errors: usize,
    pub duration_ms: f64,
    /// Requests per second over the first tenth of the requests.
    pub start_rps: f64,
    /// Requests per second over the last tenth of the requests.
    pub end_rps: f64,
    /// Median latency of the first and last tenth, in milliseconds.
    pub start_median_ms: f64,
    pub end_median_ms: f64,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .max_idle_connections_per_host(1)
        .build()
}

/// One request: true for a 2xx answer whose body was read completely.
fn request(agent: &ureq::Agent, url: &str) -> bool {
    match agent.get(url).call() {
        Ok(r) if (200..300).contains(&r.status()) => {
            let mut sink = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut sink).is_ok()
        }
        _ => false,
    }
}

/// Runs the warm-up; fails when most requests fail (a warm-up of errors warms nothing).
pub fn run(spec: &WarmupSpec) -> Result<WarmupStats> {
    if spec.urls.is_empty() || spec.requests == 0 {
        return Ok(WarmupStats {
            requests: 0,
            errors: 0,
            duration_ms: 0.0,
            start_rps: 0.0,
            end_rps: 0.0,
            start_median_ms: 0.0,
            end_median_ms: 0.0,
        });
    }
    let next = Arc::new(AtomicUsize::new(0));
    // (index, finished-at offset, latency, ok)
    let samples = Arc::new(Mutex::new(Vec::<(usize, f64, f64, bool)>::with_capacity(
        spec.requests,
    )));
    let start = Instant::now();
    let threads: Vec<_> = (0..spec.concurrency.max(1))
        .map(|_| {
            let next = next.clone();
            let samples = samples.clone();
            let spec = spec.clone();
            std::thread::spawn(move || {
                let a = agent();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= spec.requests {
                        break;
                    }
                    let url = &spec.urls[i % spec.urls.len()];
                    let t0 = Instant::now();
                    let ok = request(&a, url);
                    let lat = t0.elapsed().as_secs_f64() * 1000.0;
                    let at = start.elapsed().as_secs_f64() * 1000.0;
                    samples.lock().unwrap().push((i, at, lat, ok));
                }
                // Dropping the agent closes its keep-alive connections before the dump.
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let duration_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut s = Arc::try_unwrap(samples).unwrap().into_inner().unwrap();
    s.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap());
    let errors = s.iter().filter(|x| !x.3).count();
    if errors * 2 > s.len() {
        return Err(Error::usage(
            format!(
                "the warm-up failed: {errors} of {} requests to {} did not answer 2xx",
                s.len(),
                spec.urls.join(", ")
            ),
            "check the --warmup URLs against the running application (they must answer 2xx)",
        ));
    }
    let tenth = (s.len() / 10).max(1);
    let rps = |part: &[(usize, f64, f64, bool)], begin: f64| {
        let end = part.last().map(|x| x.1).unwrap_or(begin);
        if end - begin <= 0.0 {
            0.0
        } else {
            part.len() as f64 / ((end - begin) / 1000.0)
        }
    };
    let first = &s[..tenth];
    let last = &s[s.len() - tenth..];
    let last_begin = s.get(s.len() - tenth - 1).map(|x| x.1).unwrap_or(0.0);
    let med = |part: &[(usize, f64, f64, bool)]| {
        crate::measure::stats::median(&part.iter().map(|x| x.2).collect::<Vec<_>>())
    };
    Ok(WarmupStats {
        requests: s.len(),
        errors,
        duration_ms,
        start_rps: rps(first, 0.0),
        end_rps: rps(last, last_begin),
        start_median_ms: med(first),
        end_median_ms: med(last),
    })
}

/// Latencies (ms) of `n` sequential requests to `url` over one keep-alive connection; a failed
/// request is an error, because a latency series with holes would mislead.
pub fn latency_series(url: &str, n: usize) -> Result<Vec<f64>> {
    let a = agent();
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        if !request(&a, url) {
            return Err(Error::usage(
                format!("request {} of {n} to {url} failed", i + 1),
                "check that the URL answers 2xx",
            ));
        }
        v.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// A minimal keep-alive HTTP server on a real socket, answering `status`.
    fn server(status: u16) -> (u16, std::thread::JoinHandle<()>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            for s in l.incoming().take(4) {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let body = "ok";
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                });
            }
        });
        (port, h)
    }

    #[test]
    fn warmup_against_a_real_server() {
        let (port, _h) = server(200);
        let st = run(&WarmupSpec {
            urls: vec![format!("http://127.0.0.1:{port}/")],
            requests: 200,
            concurrency: 2,
        })
        .unwrap();
        assert_eq!(st.requests, 200);
        assert_eq!(st.errors, 0);
        assert!(st.start_rps > 0.0 && st.end_rps > 0.0);
    }

    #[test]
    fn warmup_of_errors_is_refused() {
        let (port, _h) = server(500);
        let e = run(&WarmupSpec {
            urls: vec![format!("http://127.0.0.1:{port}/")],
            requests: 20,
            concurrency: 1,
        })
        .unwrap_err();
        assert!(e.to_string().contains("20 of 20 requests"), "{e}");
    }
}
