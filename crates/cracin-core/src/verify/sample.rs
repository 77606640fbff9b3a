//! Sending the check's requests to one restored instance and keeping the answers whole (status,
//! every header with repeats, body). No cookies are kept and no redirects followed, so every
//! request is a new visitor's first request and a `Set-Cookie` on a redirect is seen.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Answer, Samples};

/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client for the check: no cookie store (ureq keeps none without its `cookies`
/// feature), no redirects, generous timeouts for a loaded machine.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(TIMEOUT)
        .redirects(0)
        .build()
}

/// One GET; `Err(why)` when no HTTP answer came at all.
pub fn fetch(agent: &ureq::Agent, url: &str) -> Result<Answer, String> {
    let resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    let mut headers = Vec::new();
    let mut names = resp.headers_names();
    // One entry per header line: `all` returns every value of a repeated name.
    names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let mut done: Vec<String> = Vec::new();
    for name in names {
        if done.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
            continue;
        }
        done.push(name.clone());
        for v in resp.all(&name) {
            headers.push((name.to_ascii_lowercase(), v.to_string()));
        }
    }
    // Bodies are compared as text; a binary body yields no tokens.
    let mut body = Vec::new();
    use std::io::Read;
    resp.into_reader()
        .take(4 << 20)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sends every URL `rounds` times (all URLs, then all again), keyed by the URL as the user
/// gave it (`names[i]` for `urls[i]`), so instances on different ports line up.
/// `Err((url, why))` on the first request that got no answer.
pub fn sample(
    label: &str,
    names: &[String],
    urls: &[String],
    rounds: u32,
) -> Result<Samples, (String, String)> {
    let agent = agent();
    let mut answers: BTreeMap<String, Vec<Answer>> = BTreeMap::new();
    for _ in 0..rounds {
        for (name, url) in names.iter().zip(urls) {
            let a = fetch(&agent, url).map_err(|why| (url.clone(), why))?;
            answers.entry(name.clone()).or_default().push(a);
        }
    }
    Ok(Samples {
        label: label.to_string(),
        answers,
    })
}

/// `URL: status` for answers of 400 or more (shown in the report: an error page is a poor
/// sample).
pub fn error_answers(instances: &[Samples]) -> Vec<String> {
    let mut v: Vec<String> = instances
        .iter()
        .flat_map(|s| {
            s.answers.iter().flat_map(|(url, a)| {
                a.iter()
                    .filter(|a| a.status >= 400)
                    .map(move |a| format!("{url}: HTTP {}", a.status))
            })
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A one-connection-per-request HTTP server on loopback answering two Set-Cookie headers
    /// and a redirect: the client must keep both cookies and not follow the redirect.
    #[test]
    fn answers_keep_repeated_headers_and_redirects_are_not_followed() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for (i, s) in l.incoming().take(2).enumerate() {
                let mut s = s.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                let body = format!("{{\"n\":{i}}}");
                write!(
                    s,
                    "HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: A=1\r\nSet-Cookie: B=2\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        let url = format!("http://127.0.0.1:{port}/x");
        let s = sample("t", &["/x".into()], &[url], 2).unwrap();
        server.join().unwrap();
        let a = &s.answers["/x"];
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].status, 302);
        let cookies: Vec<&str> = a[0]
            .headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cookies, ["A=1", "B=2"]);
        assert_eq!(a[1].body, "{\"n\":1}");
    }

    #[test]
    fn no_answer_names_the_url() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/");
        let (u, _why) = sample("t", &["/".into()], std::slice::from_ref(&url), 1).unwrap_err();
        assert_eq!(u, url);
    }
}
