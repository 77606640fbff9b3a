//! The secrets scan: before a checkpoint is sealed (renamed into place, or tagged as an image),
//! cracin searches the dumped memory (`images/pages-*.img`) for values that must not be frozen
//! into a file that is copied, archived and pushed: the values of the application's
//! environment variables and `-D` system properties whose names look secret (PASSWORD, TOKEN,
//! KEY, ...), values the user names (`--secret-env NAME`, `--secret-file PATH`), and PEM
//! private-key blocks. A finding names the variable and the image file, never the value.
//!
//! One multi-pattern search (Aho-Corasick) over the images read in large chunks: the cost is
//! one sequential read of the pages, whatever the number of values (benchmark:
//! `scripts/bench-secrets.sh`, docs/bench-secrets.md). The same names decide what is masked in
//! the launch line cracin prints and records.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use crate::diagnose::finding::SecretFound;
use crate::error::{Error, Result};

/// Name words that make a variable or property look secret (matched per word of the name, so
/// `DB_PASSWORD`, `apiKey` and `javax.net.ssl.keyStorePassword` match; `keyStore` does not).
pub const DEFAULT_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
];

/// A name whose last word is one of these names a place or a kind, not the secret itself
/// (`PRIVATE_KEY_FILE`, `keyStoreType`, `TOKEN_URL`).
const NOT_A_VALUE: &[&str] = &[
    "FILE",
    "PATH",
    "DIR",
    "STORE",
    "TYPE",
    "ALIAS",
    "ID",
    "NAME",
    "URL",
    "URI",
    "LOCATION",
    "ALGORITHM",
    "ALG",
    "SIZE",
    "LENGTH",
    "SOCK",
    "SOCKET",
    "MODE",
    "PROVIDER",
    "FORMAT",
    "HEADER",
    "ENDPOINT",
    // where a service listens or connects (`tokens.bind`, `SECRETS_HOST`, `KEY_SERVER_PORT`)
    "BIND",
    "HOST",
    "PORT",
    "ADDR",
    "ADDRESS",
];

/// Values shorter than this are not searched: they would match by chance.
pub const MIN_LEN: usize = 6;

/// What to search for and whether a finding stops the checkpoint.
#[derive(Debug, Clone, Default)]
pub struct SecretPolicy {
    /// Name words (DEFAULT_WORDS unless configured).
    pub words: Vec<String>,
    /// Environment variables whose values are secret whatever their name (`--secret-env`).
    pub env_names: Vec<String>,
    /// Files whose content is secret (`--secret-file`).
    pub files: Vec<PathBuf>,
    /// Keep the checkpoint even when something is found (`--allow-secrets`).
    pub allow: bool,
}

impl SecretPolicy {
    pub fn new() -> Self {
        SecretPolicy {
            words: DEFAULT_WORDS.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }
}

/// One value to look for, with a name that can be shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Needle {
    /// e.g. "environment variable DB_PASSWORD", "-D property db.password".
    pub what: String,
    pub value: Vec<u8>,
}

/// What a scan did (recorded in cracin.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    /// How many values were searched for (plus the PEM markers).
    pub values: usize,
    pub bytes: u64,
    pub ms: f64,
    /// Names (never values) of what was found and kept with --allow-secrets.
    #[serde(default)]
    pub allowed: Vec<SecretFound>,
}

/// The words of a name: split at non-alphanumerics and at lower→upper case changes, upper-cased.
fn words_of(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_uppercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether a variable or property name looks like it holds a secret.
pub fn looks_secret(name: &str, words: &[String]) -> bool {
    let ws = words_of(name);
    let Some(last) = ws.last() else {
        return false;
    };
    if NOT_A_VALUE.contains(&last.as_str()) {
        return false;
    }
    // Short words (KEY, PIN) must be a whole word (`API_KEY`, `apiKey`; not `MONKEY`); longer
    // ones may end a word (`DBPASSWORD`). A plural counts (`CREDENTIALS`).
    ws.iter().any(|w| {
        let w = w.strip_suffix('S').unwrap_or(w);
        words.iter().any(|s| {
            let s = s.to_ascii_uppercase();
            if s.len() <= 3 {
                w == s
            } else {
                w.ends_with(s.as_str())
            }
        })
    })
}

/// `-Dname=value` system properties in a list of JVM arguments.
fn properties<'a>(args: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    args.filter_map(|a| a.strip_prefix("-D"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Everything to search for: secret-looking environment variables the application gets
/// (`env`: its whole environment), secret-looking `-D` properties on its command line and in
/// JAVA_TOOL_OPTIONS, `--secret-env` values, `--secret-file` contents. Also returns warnings
/// (values too short to search, a `--secret-env` that is not set).
pub fn needles(
    p: &SecretPolicy,
    env: &[(String, String)],
    argv: &[String],
    java_tool_options: &str,
) -> Result<(Vec<Needle>, Vec<String>)> {
    let mut out: Vec<Needle> = Vec::new();
    let mut warnings = Vec::new();
    let mut push = |what: String, value: &str, warnings: &mut Vec<String>| {
        let v = value.trim();
        if v.len() < MIN_LEN {
            if !v.is_empty() {
                warnings.push(format!(
                    "{what} is shorter than {MIN_LEN} characters: not searched for in the checkpoint"
                ));
            }
            return;
        }
        if !out.iter().any(|n| n.value == v.as_bytes()) {
            out.push(Needle {
                what,
                value: v.as_bytes().to_vec(),
            });
        }
    };
    for (k, v) in env {
        if looks_secret(k, &p.words) || p.env_names.iter().any(|n| n == k) {
            push(format!("environment variable {k}"), v, &mut warnings);
        }
    }
    for n in &p.env_names {
        if !env.iter().any(|(k, _)| k == n) {
            warnings.push(format!(
                "--secret-env {n}: the application's environment has no {n}"
            ));
        }
    }
    let props = properties(
        argv.iter()
            .map(String::as_str)
            .chain(java_tool_options.split_whitespace()),
    );
    for (k, v) in props {
        if looks_secret(&k, &p.words) {
            push(format!("-D property {k}"), &v, &mut warnings);
        }
    }
    for f in &p.files {
        let text = std::fs::read_to_string(f).map_err(|e| {
            Error::usage(
                format!("cannot read --secret-file {}: {e}", f.display()),
                "give a readable file whose content (or each line of it) is a secret value",
            )
        })?;
        push(
            format!("the content of {}", f.display()),
            &text,
            &mut warnings,
        );
        if text.trim().contains('\n') {
            for (i, line) in text.lines().enumerate() {
                if !line.trim_start().starts_with("-----") {
                    push(
                        format!("line {} of {}", i + 1, f.display()),
                        line,
                        &mut warnings,
                    );
                }
            }
        }
    }
    Ok((out, warnings))
}

/// PEM private-key markers; a marker counts only when base64 key data follows it (a JDK class
/// that merely contains the marker text is not a key).
const PEM_MARKERS: &[&str] = &[
    "-----BEGIN PRIVATE KEY-----",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----BEGIN EC PRIVATE KEY-----",
    "-----BEGIN DSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----",
];
/// Bytes after a PEM marker that must look like key data.
const PEM_BODY: usize = 64;

fn looks_like_pem_body(after: &[u8]) -> bool {
    let body: Vec<u8> = after
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .take(PEM_BODY)
        .collect();
    let lead_ok = matches!(after.first(), Some(b'\n') | Some(b'\r'));
    lead_ok
        && body.len() == PEM_BODY
        && (body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || *b == b'=')
            // legacy encrypted keys start with headers
            || body.starts_with(b"Proc-Type:"))
}

fn utf16le(v: &[u8]) -> Option<Vec<u8>> {
    let s = std::str::from_utf8(v).ok()?;
    Some(s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect())
}

/// The image files holding memory: `pages-*.img`.
pub fn memory_files(images: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(images)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("pages-") && n.ends_with(".img")
                })
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Searches `files` for every needle (as stored: UTF-8/Latin-1, and as UTF-16LE, Java's two
/// string encodings) and for PEM private keys. Returns what was found where (each once per
/// file) and how many bytes were read.
pub fn scan(files: &[PathBuf], needles: &[Needle]) -> Result<(Vec<SecretFound>, u64)> {
    // Pattern i < 2*n: needle i/2 (even: as is, odd: UTF-16LE); then the PEM markers.
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    let mut owner: Vec<Option<usize>> = Vec::new();
    for (i, n) in needles.iter().enumerate() {
        patterns.push(n.value.clone());
        owner.push(Some(i));
        if let Some(w) = utf16le(&n.value).filter(|w| *w != n.value) {
            patterns.push(w);
            owner.push(Some(i));
        }
    }
    for m in PEM_MARKERS {
        patterns.push(m.as_bytes().to_vec());
        owner.push(None);
    }
    let ac = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(&patterns)
        .map_err(|e| Error::io("secrets scan", std::io::Error::other(e.to_string())))?;
    let longest = patterns.iter().map(Vec::len).max().unwrap_or(1);
    // A match is judged only when it starts before this many bytes from the end of the
    // buffer; later ones are seen again at the start of the next chunk.
    let overlap = longest + PEM_BODY * 2 + 8;
    const CHUNK: usize = 8 << 20;
    let mut findings: Vec<SecretFound> = Vec::new();
    let mut total = 0u64;
    for path in files {
        let name = format!(
            "images/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + overlap);
        loop {
            let start = buf.len();
            buf.resize(start + CHUNK, 0);
            let mut filled = start;
            // fill the chunk (read may return less)
            while filled < buf.len() {
                let n = f.read(&mut buf[filled..]).map_err(|e| Error::io(path, e))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            total += (filled - start) as u64;
            buf.truncate(filled);
            let eof = filled < start + CHUNK;
            let judge_until = if eof {
                buf.len()
            } else {
                buf.len().saturating_sub(overlap)
            };
            for m in ac.find_overlapping_iter(&buf[..]) {
                if m.start() >= judge_until {
                    continue;
                }
                let pid = m.pattern().as_usize();
                let what = match owner[pid] {
                    Some(i) => needles[i].what.clone(),
                    None => {
                        if !looks_like_pem_body(&buf[m.end()..]) {
                            continue;
                        }
                        "a PEM private key".to_string()
                    }
                };
                if seen.insert(what.clone()) {
                    findings.push(SecretFound {
                        what,
                        file: name.clone(),
                    });
                }
            }
            if eof {
                break;
            }
            // Keep the unjudged tail: matches starting there are judged in the next round,
            // with the bytes that follow them.
            buf.drain(..judge_until);
        }
    }
    Ok((findings, total))
}

/// Runs the scan over a checkpoint's images; returns the summary, or `SecretsFound` unless the
/// policy allows them.
pub fn check_images(images: &Path, needles: &[Needle], p: &SecretPolicy) -> Result<ScanSummary> {
    let t = Instant::now();
    let files = memory_files(images);
    let (found, bytes) = scan(&files, needles)?;
    let summary = ScanSummary {
        values: needles.len(),
        bytes,
        ms: t.elapsed().as_secs_f64() * 1000.0,
        allowed: if p.allow { found.clone() } else { Vec::new() },
    };
    if !found.is_empty() && !p.allow {
        return Err(Error::SecretsFound { found });
    }
    Ok(summary)
}

/// The mask shown instead of a secret value.
pub const MASK: &str = "*****";

/// Masks one command-line word: a secret-looking `-Dname=value` becomes `-Dname=*****`, and any
/// needle value inside it is replaced.
pub fn mask_word(w: &str, words: &[String], needles: &[Needle]) -> String {
    if let Some((k, _)) = w.strip_prefix("-D").and_then(|kv| kv.split_once('=')) {
        if looks_secret(k, words) {
            return format!("-D{k}={MASK}");
        }
    }
    let mut s = w.to_string();
    for n in needles {
        if let Ok(v) = std::str::from_utf8(&n.value) {
            if s.contains(v) {
                s = s.replace(v, MASK);
            }
        }
    }
    s
}

/// `mask_word` over a command line.
pub fn mask_argv(argv: &[String], words: &[String], needles: &[Needle]) -> Vec<String> {
    argv.iter().map(|w| mask_word(w, words, needles)).collect()
}

/// `mask_word` over a whitespace-separated option string (JAVA_TOOL_OPTIONS).
pub fn mask_options(opts: &str, words: &[String], needles: &[Needle]) -> String {
    opts.split(' ')
        .map(|w| mask_word(w, words, needles))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Vec<String> {
        SecretPolicy::new().words
    }

    #[test]
    fn secret_looking_names() {
        for n in [
            "DB_PASSWORD",
            "PASSWD",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "API_KEY",
            "apiKey",
            "javax.net.ssl.keyStorePassword",
            "db.password",
            "GOOGLE_APPLICATION_CREDENTIALS_JSON",
            "APP_CREDENTIALS",
            "PRIVATE_KEY",
            "client-secret",
        ] {
            assert!(looks_secret(n, &w()), "{n}");
        }
        for n in [
            "PATH",
            "HOME",
            "javax.net.ssl.keyStore",
            "PRIVATE_KEY_FILE",
            "keyStoreType",
            "SSH_AUTH_SOCK",
            "TOKEN_URL",
            "MONKEYS_COUNT",
            "JAVA_TOOL_OPTIONS",
            "KEYBOARD",
            "tokens.bind",
            "SECRETS_HOST",
            "KEY_SERVER_PORT",
        ] {
            assert!(!looks_secret(n, &w()), "{n}");
        }
        assert!(looks_secret("MY_PIN", &["PIN".to_string()]));
    }

    #[test]
    fn needles_from_env_properties_and_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("s");
        std::fs::write(&f, "line-one-secret\nline-two-secret\n").unwrap();
        let mut p = SecretPolicy::new();
        p.env_names = vec!["PLAIN".into(), "MISSING".into()];
        p.files = vec![f.clone()];
        let env = vec![
            ("DB_PASSWORD".to_string(), "hunter2hunter2".to_string()),
            ("PLAIN".to_string(), "not-a-secret-name".to_string()),
            ("HOME".to_string(), "/root".to_string()),
            ("SHORT_TOKEN".to_string(), "abc".to_string()),
        ];
        let argv = vec![
            "java".to_string(),
            "-Ddb.password=s3cr3t-value".to_string(),
            "-Dapp.name=counter-app".to_string(),
        ];
        let (n, warn) = needles(&p, &env, &argv, "-Dapi.token=tok-123456").unwrap();
        let whats: Vec<&str> = n.iter().map(|x| x.what.as_str()).collect();
        assert!(whats.contains(&"environment variable DB_PASSWORD"));
        assert!(whats.contains(&"environment variable PLAIN"));
        assert!(whats.contains(&"-D property db.password"));
        assert!(whats.contains(&"-D property api.token"));
        assert!(!whats
            .iter()
            .any(|w| w.contains("HOME") || w.contains("app.name")));
        assert!(n.iter().any(|x| x.value == b"line-two-secret"));
        assert!(warn.iter().any(|w| w.contains("SHORT_TOKEN")));
        assert!(warn.iter().any(|w| w.contains("MISSING")));
        let e = needles(
            &SecretPolicy {
                files: vec![d.path().join("nope")],
                ..SecretPolicy::new()
            },
            &[],
            &[],
            "",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    fn needle(what: &str, v: &str) -> Needle {
        Needle {
            what: what.into(),
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn finds_values_across_chunk_borders_and_in_utf16() {
        let d = tempfile::tempdir().unwrap();
        // A value that straddles the 8 MiB chunk border.
        let mut big = vec![0u8; (8 << 20) - 5];
        big.extend_from_slice(b"straddling-secret");
        big.extend(vec![0u8; 1000]);
        std::fs::write(d.path().join("pages-1.img"), &big).unwrap();
        let u16: Vec<u8> = "wide-secret-x"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let mut small = b"junk".to_vec();
        small.extend(u16);
        std::fs::write(d.path().join("pages-2.img"), &small).unwrap();
        std::fs::write(d.path().join("core-1.img"), b"straddling-secret").unwrap();
        let files = memory_files(d.path());
        assert_eq!(files.len(), 2);
        let n = vec![
            needle("A", "straddling-secret"),
            needle("B", "wide-secret-x"),
            needle("C", "absent-value"),
        ];
        let (found, bytes) = scan(&files, &n).unwrap();
        assert_eq!(bytes, (big.len() + small.len()) as u64);
        assert_eq!(
            found,
            vec![
                SecretFound {
                    what: "A".into(),
                    file: "images/pages-1.img".into()
                },
                SecretFound {
                    what: "B".into(),
                    file: "images/pages-2.img".into()
                },
            ]
        );
    }

    #[test]
    fn pem_keys_need_key_data() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pages-1.img");
        std::fs::write(&p, b"\0\0-----BEGIN PRIVATE KEY-----\0constant in a class").unwrap();
        assert!(scan(std::slice::from_ref(&p), &[]).unwrap().0.is_empty());
        let key = format!(
            "xx-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEAvQ3l5Zr0gWcFhq2Xs8x1c2N0a2V5ZGF0YWtleWRhdGFrZXlk",
            "YXRha2V5ZGF0YWtleWRhdGFrZXlkYXRha2V5ZGF0YQ=="
        );
        std::fs::write(&p, key).unwrap();
        let (f, _) = scan(std::slice::from_ref(&p), &[]).unwrap();
        assert_eq!(f[0].what, "a PEM private key");
    }

    #[test]
    fn found_is_exit_5_without_the_value_and_allowed_is_recorded() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pages-1.img"), b"..the-db-password..").unwrap();
        let n = vec![needle(
            "environment variable DB_PASSWORD",
            "the-db-password",
        )];
        let e = check_images(d.path(), &n, &SecretPolicy::new()).unwrap_err();
        assert_eq!(e.exit_code(), 5);
        let msg = format!("{e} {}", e.hint().unwrap_or_default());
        assert!(msg.contains("DB_PASSWORD") && msg.contains("images/pages-1.img"));
        assert!(!msg.contains("the-db-password"), "{msg}");
        let mut p = SecretPolicy::new();
        p.allow = true;
        let s = check_images(d.path(), &n, &p).unwrap();
        assert_eq!(s.allowed.len(), 1);
        assert_eq!(s.bytes, 19);
    }

    #[test]
    fn masking() {
        let n = vec![needle("x", "given-secret")];
        let argv: Vec<String> = [
            "java",
            "-Ddb.password=pw123456",
            "-Dname=x",
            "--arg=given-secret",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            mask_argv(&argv, &w(), &n),
            vec!["java", "-Ddb.password=*****", "-Dname=x", "--arg=*****"]
        );
        assert_eq!(
            mask_options("-XX:-UsePerfData -Dapi.token=abcdefg", &w(), &n),
            "-XX:-UsePerfData -Dapi.token=*****"
        );
    }
}
