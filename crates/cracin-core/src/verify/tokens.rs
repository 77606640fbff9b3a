//! What looks random in an HTTP answer. A restored JVM whose generators were frozen in the
//! checkpoint hands out the same session IDs, CSRF tokens and nonces as every other restore of
//! that checkpoint; to see that from outside, cracin pulls out of each answer the values that
//! look like they came from a random generator: Set-Cookie values, UUIDs, long hex and
//! base64/base64url tokens in headers and bodies (JSON string values and long numbers too), each
//! with the place it was found ("Set-Cookie JSESSIONID", "header X-Request-Id", "$.csrf"), so two
//! instances' answers can be compared place by place. The heuristics (length, character-class
//! mix, entropy) keep out words, paths, dates and counters; `super::decide` then tells constants
//! from per-request values by asking each instance twice.

use std::collections::HashMap;

/// One HTTP answer as the check sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    pub status: u16,
    /// Header names lower-cased, in the order received; a repeated header (Set-Cookie) appears
    /// once per value.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A random-looking value and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Where: `Set-Cookie JSESSIONID`, `header x-request-id`, `$.session.csrf`, `body`; with
    /// `#N` appended for the N-th token (N > 1) of the same place.
    pub field: String,
    pub value: String,
}

/// Headers whose values are derived from the content or the clock, never from a generator: an
/// equal ETag in two instances means equal content, not a frozen generator.
const DETERMINISTIC_HEADERS: &[&str] = &[
    "etag",
    "content-md5",
    "digest",
    "content-digest",
    "repr-digest",
    "last-modified",
    "date",
    "expires",
    "age",
    "content-length",
    "content-type",
    "server",
];

/// Every random-looking value in an answer, in a stable order of places.
pub fn tokens_of(a: &Answer) -> Vec<Token> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut push = |field: String, value: String, out: &mut Vec<Token>| {
        let n = seen.entry(field.clone()).or_insert(0);
        *n += 1;
        let field = if *n == 1 {
            field
        } else {
            format!("{field} #{n}")
        };
        out.push(Token { field, value });
    };
    for (name, value) in &a.headers {
        let name = name.to_ascii_lowercase();
        if name == "set-cookie" {
            // `NAME=VALUE; Path=/; HttpOnly`: the place is the cookie's name.
            let first = value.split(';').next().unwrap_or("");
            let (cname, cval) = first.split_once('=').unwrap_or((first, ""));
            let field = format!("Set-Cookie {}", cname.trim());
            for t in random_parts(cval.trim().trim_matches('"')) {
                push(field.clone(), t, &mut out);
            }
        } else if !DETERMINISTIC_HEADERS.contains(&name.as_str()) {
            for t in random_parts(value) {
                push(format!("header {name}"), t, &mut out);
            }
        }
    }
    match serde_json::from_str::<serde_json::Value>(a.body.trim()) {
        Ok(v) if v.is_object() || v.is_array() => json_tokens(&v, "$", &mut |f, t| {
            push(f, t, &mut out);
        }),
        _ => {
            for t in random_parts(&a.body) {
                push("body".into(), t, &mut out);
            }
        }
    }
    out
}

fn json_tokens(v: &serde_json::Value, path: &str, f: &mut dyn FnMut(String, String)) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    format!("{path}.{k}")
                } else {
                    format!("{path}[{k:?}]")
                };
                json_tokens(v, &p, f);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                json_tokens(v, &format!("{path}[{i}]"), f);
            }
        }
        Value::String(s) => {
            for t in random_parts(s) {
                f(path.to_string(), t);
            }
        }
        Value::Number(n) => {
            if let Some(t) = random_number(&n.to_string()) {
                f(path.to_string(), t);
            }
        }
        _ => {}
    }
}

/// A JSON number that looks drawn from a generator: at least 15 significant digits, as
/// `nextLong()` (18-19 digits) or `Math.random()` (0.xxxxxxxxxxxxxxxx) give. Shorter numbers are
/// left alone: counters and epoch seconds look the same as `nextInt()`, and a counter answers
/// the same in every restore by design.
fn random_number(text: &str) -> Option<String> {
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    let digits: String = mantissa
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .trim_start_matches('0')
        .to_string();
    (digits.len() >= 15 && entropy(&digits) >= 2.0).then(|| text.to_string())
}

/// Characters that can be part of a token: base64 and base64url alphabets, padding, and the
/// hyphen of UUIDs.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-')
}

/// The random-looking parts of a text, in order: UUIDs first by position, then hex and
/// base64/base64url runs of at least 16 characters that pass `looks_random`.
pub fn random_parts(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in text.split(|c: char| !token_char(c)) {
        let run = run.trim_matches(|c| c == '-' || c == '_' || c == '/' || c == '+');
        if run.len() < 16 {
            continue;
        }
        take_run(run, &mut out);
    }
    out
}

/// One maximal run of token characters: UUIDs in it count on their own; the rest is taken
/// whole when it looks random, else split at `/` `-` `_` `+` (paths, identifiers) and each piece
/// tried again.
fn take_run(run: &str, out: &mut Vec<String>) {
    let b = run.as_bytes();
    let mut i = 0;
    let mut rest_start = 0;
    while i + 36 <= b.len() {
        if is_uuid(&run[i..i + 36])
            && (i == 0 || !b[i - 1].is_ascii_hexdigit())
            && (i + 36 == b.len() || !b[i + 36].is_ascii_hexdigit())
        {
            take_plain(&run[rest_start..i], out);
            let u = &run[i..i + 36];
            // The nil and max UUIDs and other one-character fillers are constants.
            if distinct_chars(u) > 3 {
                out.push(u.to_string());
            }
            i += 36;
            rest_start = i;
        } else {
            i += 1;
        }
    }
    take_plain(&run[rest_start..], out);
}

fn take_plain(s: &str, out: &mut Vec<String>) {
    let s = s.trim_matches(|c| c == '-' || c == '_' || c == '/' || c == '+');
    if s.len() < 16 {
        return;
    }
    // A path (`/reset/password/TOKEN`): its segments are judged one by one. A standard base64
    // token may hold a `/` too, but then no segment is a short lower-case word.
    if s.contains('/')
        && s.split('/')
            .any(|p| p.len() >= 2 && p.len() < 16 && p.chars().all(|c| c.is_ascii_lowercase()))
    {
        for piece in s.split('/') {
            take_plain(piece, out);
        }
        return;
    }
    let core = s.trim_end_matches('=');
    // `name=value` inside text (`;jsessionid=…`): base64 has `=` only as trailing padding.
    if core.contains('=') {
        for piece in core.split('=') {
            take_plain(piece, out);
        }
        return;
    }
    if looks_random(core) {
        out.push(s.to_string());
        return;
    }
    for piece in s.split(['-', '_', '+']) {
        let p = piece.trim_end_matches('=');
        if p.len() >= 16 && p.len() < core.len() && looks_random(p) {
            out.push(piece.to_string());
        }
    }
}

/// `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn distinct_chars(s: &str) -> usize {
    let mut v: Vec<char> = s.chars().collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Shannon entropy of the text's characters, in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0) += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[derive(PartialEq, Clone, Copy)]
enum Class {
    Digit,
    Upper,
    Lower,
    Other,
}

fn class(c: char) -> Class {
    if c.is_ascii_digit() {
        Class::Digit
    } else if c.is_ascii_uppercase() {
        Class::Upper
    } else if c.is_ascii_lowercase() {
        Class::Lower
    } else {
        Class::Other
    }
}

/// Whether a run of token characters (16 or more, padding removed) looks like generator output.
///
/// - digits only: 15 or more with varied digits (`nextLong()`, long numeric IDs);
/// - hex: varied (at least 2.5 bits per character; a random 16-digit hex string has ~3.3) and
///   mixing digits and letters (a random one almost always does; `deadbeefcafebabe` does not);
/// - base64/base64url: at least two of upper, lower and digit, at least 3.3 bits per character,
///   the character class changing often (in random base64 about 2 of 3 neighbours differ in
///   class), and not digit-free with most characters in runs of lower-case letters (words).
pub fn looks_random(s: &str) -> bool {
    let n = s.chars().count();
    if n < 16 || !s.chars().all(token_char) {
        return false;
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return n >= 15 && entropy(s) >= 2.0;
    }
    let classes: Vec<Class> = s.chars().map(class).collect();
    let switches = classes.windows(2).filter(|w| w[0] != w[1]).count();
    let switch_rate = switches as f64 / (n - 1) as f64;
    if s.chars().all(|c| c.is_ascii_hexdigit()) {
        let has_digit = classes.contains(&Class::Digit);
        let has_letter = s.chars().any(|c| c.is_ascii_alphabetic());
        return has_digit && has_letter && entropy(s) >= 2.5;
    }
    let kinds = [Class::Upper, Class::Lower, Class::Digit]
        .iter()
        .filter(|k| classes.contains(k))
        .count();
    // Identifiers made of words have no digits and are mostly lower-case runs.
    let wordy = !classes.contains(&Class::Digit) && word_fraction(s) >= 0.6;
    kinds >= 2 && entropy(s) >= 3.3 && switch_rate >= 0.3 && !wordy
}

/// The share of characters inside runs of three or more lower-case letters: most of an
/// identifier made of words (`ThisIsAVeryLongIdentifierName`: 72 %), a quarter of random
/// base64 on average.
fn word_fraction(s: &str) -> f64 {
    let mut in_words = 0;
    let mut run = 0;
    for c in s.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_lowercase() {
            run += 1;
        } else {
            if run >= 3 {
                in_words += run;
            }
            run = 0;
        }
    }
    in_words as f64 / s.chars().count() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(headers: &[(&str, &str)], body: &str) -> Answer {
        Answer {
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    #[test]
    fn random_strings_look_random() {
        for s in [
            "7f3a9c2e41b0d8e5",                                 // 16 hex (64 bits)
            "4F3A9C2E41B0D8E57A61C0FF3E2D9B01",                 // Tomcat-style session id
            "q8Zr2mX_k1Lp0VbN-3tYw9",                           // base64url, 16 bytes
            "Jb4nK2vQ9xR7tL1mP0sW3yZ6aC8dE5fG",                 // base64
            "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwAC", // base64 with words in it
            "8414709848078965",                                 // digits of Math.random()
            "-4962768465676381896",                             // nextLong()
        ] {
            let s = s.trim_start_matches('-');
            assert!(looks_random(s), "{s} should look random");
        }
    }

    /// Generator output of the usual sizes (16/32 hex, 22/32 base64url, 64-bit numbers) nearly
    /// always passes:
    /// the thresholds sit far from where random strings fall. (A fixed xorshift sequence, so
    /// the test is deterministic.)
    #[test]
    fn nearly_all_generated_tokens_pass() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const HEX: &[u8] = b"0123456789abcdef";
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for (alphabet, len) in [(HEX, 16), (HEX, 32), (B64, 22), (B64, 32)] {
            let passed = (0..1000)
                .filter(|_| {
                    let t: String = (0..len)
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                        .collect();
                    random_parts(&t).len() == 1
                })
                .count();
            assert!(passed >= 980, "{len} chars: only {passed} of 1000 passed");
        }
        // nextLong(): all but the rare small ones (below 10^14) pass.
        let passed = (0..1000)
            .filter(|_| random_number(&(next() as i64).to_string()).is_some())
            .count();
        assert!(passed >= 990, "nextLong(): only {passed} of 1000 passed");
    }

    #[test]
    fn words_paths_dates_and_counters_do_not() {
        for s in [
            "ThisIsAVeryLongIdentifierName",
            "very_long_identifier_name",
            "application/json",
            "deadbeefcafebabe",
            "0000000000000001",
            "1111111111111111111",
            "abcdefabcdefabcdef",
            "org-springframework-web",
            "HttpOnly;SameSite=Strict",
            "short1A",
        ] {
            assert!(!looks_random(s), "{s} should not look random");
        }
        assert!(random_parts("Wed, 02 Dec 2026 04:07:37 GMT").is_empty());
        assert!(random_parts("/api/v1/users/profile/settings").is_empty());
        assert!(random_parts("count 12345 of 99999").is_empty());
    }

    #[test]
    fn uuids_are_found_inside_text_but_nil_ones_are_constants() {
        let u = "0f1e6c2a-9b47-4d3e-8a55-2c7b9e1d4f60";
        assert_eq!(random_parts(&format!("req={u};")), vec![u.to_string()]);
        assert_eq!(random_parts(&format!("id-{u}")), vec![u.to_string()]);
        assert!(random_parts("00000000-0000-0000-0000-000000000000").is_empty());
        assert!(is_uuid(u));
        assert!(!is_uuid("0f1e6c2a-9b47-4d3e-8a55-2c7b9e1d4f6"));
    }

    #[test]
    fn names_and_values_are_split() {
        assert_eq!(
            random_parts("href=\"carts.jsp;jsessionid=168F79106C24FCE90243DE699BF5F15D\""),
            vec!["168F79106C24FCE90243DE699BF5F15D".to_string()]
        );
        assert_eq!(
            random_parts("Jb4nK2vQ9xR7tL1mP0sW3yZ6aC8dE5f=="),
            vec!["Jb4nK2vQ9xR7tL1mP0sW3yZ6aC8dE5f==".to_string()]
        );
    }

    #[test]
    fn paths_with_a_token_yield_the_token() {
        assert_eq!(
            random_parts("/reset/password/q8Zr2mX_k1Lp0VbN3tYw9Q"),
            vec!["q8Zr2mX_k1Lp0VbN3tYw9Q".to_string()]
        );
    }

    #[test]
    fn places_are_named_by_cookie_header_and_json_path() {
        let a = answer(
            &[
                (
                    "Set-Cookie",
                    "JSESSIONID=4F3A9C2E41B0D8E57A61C0FF3E2D9B01; Path=/; HttpOnly",
                ),
                ("Set-Cookie", "theme=dark; Path=/"),
                ("X-Request-Id", "0f1e6c2a-9b47-4d3e-8a55-2c7b9e1d4f60"),
                ("ETag", "\"7f3a9c2e41b0d8e57f3a9c2e41b0d8e5\""),
                ("Date", "Wed, 02 Dec 2026 04:07:37 GMT"),
            ],
            r#"{"csrf":"Jb4nK2vQ9xR7tL1mP0sW3yZ6aC8dE5fG","count":17,"user":{"ids":["7f3a9c2e41b0d8e5","9a8b7c6d5e4f3a2b"]},"r":0.8414709848078965,"n":-4962768465676381896,"name":"ThisIsAVeryLongIdentifierName"}"#,
        );
        let t = tokens_of(&a);
        let fields: Vec<&str> = t.iter().map(|t| t.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "Set-Cookie JSESSIONID",
                "header x-request-id",
                "$.csrf",
                "$.n",
                "$.r",
                "$.user.ids[0]",
                "$.user.ids[1]"
            ],
            "{t:?}"
        );
        assert_eq!(t[0].value, "4F3A9C2E41B0D8E57A61C0FF3E2D9B01");
    }

    #[test]
    fn several_tokens_in_one_place_are_numbered() {
        let a = answer(
            &[],
            "<input name=csrf value=7f3a9c2e41b0d8e5> <a href=/s/9a8b7c6d5e4f3a2b>",
        );
        let t = tokens_of(&a);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(t[0].field, "body");
        assert_eq!(t[1].field, "body #2");
    }
}
