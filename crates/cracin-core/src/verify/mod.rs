//! The uniqueness check (`cracin verify`, and `cracin build --verify-url`): every instance
//! restored from one checkpoint must be its own individual. cracin restores the checkpoint
//! twice, sends the same requests to each instance, and compares what looks random in the
//! answers (`tokens`). A value that changes from request to request inside one instance comes
//! from a generator; the same such value in two instances means the generator's state was
//! frozen in the checkpoint, so every production instance hands out the same session IDs and
//! tokens. Each request is sent twice to each instance: a value that is the same on every
//! request and in every instance is a constant (a build ID, a configured key) and is not
//! flagged. `decide` is the pure decision; `sample` sends the requests; `local` and `image`
//! bring the two instances up and stop them cleanly.

pub mod image;
pub mod local;
pub mod sample;
pub mod tokens;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{Error, Result};
pub use tokens::{Answer, Token};

/// An instance the check started and has not stopped yet.
#[derive(Debug, Clone)]
enum Live {
    Pid(u32),
    Container {
        engine: crate::container::Engine,
        name: String,
    },
    /// A private log directory that is removed when the check ends normally.
    Dir(std::path::PathBuf),
}

/// What runs right now, so that a stop request to cracin (Ctrl-C, SIGTERM) can end it too.
static LIVE: std::sync::Mutex<Vec<Live>> = std::sync::Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<Live>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn register_pid(pid: u32) {
    live().push(Live::Pid(pid));
}

fn unregister_pid(pid: u32) {
    live().retain(|l| !matches!(l, Live::Pid(p) if *p == pid));
}

fn register_container(engine: &crate::container::Engine, name: &str) {
    live().push(Live::Container {
        engine: engine.clone(),
        name: name.to_string(),
    });
}

fn unregister_container(name: &str) {
    live().retain(|l| !matches!(l, Live::Container { name: n, .. } if n == name));
}

fn register_dir(dir: &std::path::Path) {
    live().push(Live::Dir(dir.to_path_buf()));
}

fn unregister_dir(dir: &std::path::Path) {
    live().retain(|l| !matches!(l, Live::Dir(d) if d == dir));
}

/// Stops every instance the check has running (SIGTERM, SIGKILL after 10 s; containers are
/// removed with `rm -f`, which stops them first). For the binary's stop-signal handler: after a
/// Ctrl-C nothing the check started is left running.
pub fn stop_all_live() {
    let all: Vec<Live> = {
        let mut l = live();
        let (instances, dirs): (Vec<Live>, Vec<Live>) =
            l.drain(..).partition(|x| !matches!(x, Live::Dir(_)));
        l.extend(dirs);
        instances
    };
    for l in all {
        match l {
            Live::Pid(pid) => {
                local::stop_pid(pid, std::time::Duration::from_secs(10));
            }
            Live::Container { engine, name } => image::remove_container(&engine, &name),
            Live::Dir(_) => {}
        }
    }
}

/// Removes the check's private log directories (after `stop_all_live`, once the check itself
/// has stopped writing its error's evidence into them).
pub fn remove_live_dirs() {
    let all: Vec<Live> = live().drain(..).collect();
    for l in all {
        if let Live::Dir(d) = l {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Waits for SIGTERM, SIGINT or SIGHUP (held back with `os::signals::block_stop_signals` first) and
/// returns its number.
pub fn wait_for_stop_signal() -> i32 {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    loop {
        if let Ok(sig) = set.wait() {
            return sig as i32;
        }
    }
}

/// How many times each URL is sent to each instance unless asked otherwise.
pub const DEFAULT_ROUNDS: u32 = 2;

/// What cracin says is the likely cause of a repeat.
pub const CAUSE: &str = "a random generator whose state was frozen in the checkpoint and not renewed at restore continues the same sequence in every restored instance: SecureRandom SHA1PRNG or DRBG, new Random(), Math.random() or ThreadLocalRandom set up before the checkpoint, a generator given a fixed seed (kept on purpose), or a library's own copy of one";

/// What to do about a repeat.
pub const FIX: &str = "cracin renews the generators the JDK seeded itself unless the checkpoint was made with --no-renew (see docs/individual.md); a generator the application seeded explicitly, or one inside a library, must be reseeded after every restore: an org.crac Resource whose afterRestore() gives the generator fresh state (cracin runs Resources after each restore), or draw such values from NativePRNG (SecureRandom.getInstance(\"NativePRNG\")) or UUID.randomUUID(), which read /dev/urandom on every call; then run `cracin verify` again (details: docs/verify.md)";

/// The answers of one instance: for each URL, one answer per round, in order.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Who answered: `restore 1 (pid 4242)`, `container cracin-verify-…`.
    pub label: String,
    pub answers: BTreeMap<String, Vec<Answer>>,
}

/// What the check concluded about one place in the answers of one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// New on every request inside each instance, and some value came back in two instances:
    /// the failure this check exists for.
    Repeated { shared: Vec<String> },
    /// New on every request and never the same in two instances: fine.
    Fresh,
    /// The same on every request of one instance, different between instances: fine (made
    /// after the restore, once per instance).
    PerInstance,
    /// The same everywhere: a constant, or a value computed before the checkpoint. Not flagged:
    /// from outside the two cannot be told apart.
    Constant,
    /// Could not be judged (missing from some answers, or repeating inside one instance, as a
    /// value drawn from a small set does).
    Unclear { why: String },
}

/// One place (URL and field) and what was seen there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldCheck {
    pub url: String,
    pub field: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The values per instance, in request order.
    pub values: Vec<Vec<String>>,
}

/// Compares the instances' answers place by place (see the module comment for the rules).
pub fn decide(instances: &[Samples]) -> Vec<FieldCheck> {
    // url → field → per-instance values
    let mut seen: BTreeMap<(String, String), Vec<Vec<String>>> = BTreeMap::new();
    // (url, instance, value) → the answers (rounds) it appeared in, wherever in them
    let mut answers_with: BTreeMap<(String, usize, String), BTreeSet<usize>> = BTreeMap::new();
    for (i, inst) in instances.iter().enumerate() {
        for (url, answers) in &inst.answers {
            for (round, a) in answers.iter().enumerate() {
                for t in tokens::tokens_of(a) {
                    answers_with
                        .entry((url.clone(), i, t.value.clone()))
                        .or_default()
                        .insert(round);
                    let per = seen
                        .entry((url.clone(), t.field))
                        .or_insert_with(|| vec![Vec::new(); instances.len()]);
                    per[i].push(t.value);
                }
            }
        }
    }
    seen.into_iter()
        .map(|((url, field), values)| {
            let rounds: Vec<usize> = instances
                .iter()
                .map(|s| s.answers.get(&url).map_or(0, Vec::len))
                .collect();
            let mut verdict = judge(&values, &rounds);
            // A value made for one request appears in that request's answer only. One that is
            // in several answers of an instance is a constant that moved between places (a
            // page whose number of tokens varies): not a repeat.
            if let Verdict::Repeated { shared } = &mut verdict {
                shared.retain(|v| {
                    (0..instances.len()).all(|i| {
                        answers_with
                            .get(&(url.clone(), i, v.clone()))
                            .is_some_and(|r| r.len() == 1)
                    })
                });
                if shared.is_empty() {
                    verdict = Verdict::Unclear {
                        why: "the values shared by the instances are in several answers of each: constants that moved between places".into(),
                    };
                }
            }
            FieldCheck {
                url,
                field,
                verdict,
                values,
            }
        })
        .collect()
}

/// The verdict for one place: `values[i]` are instance i's values, `rounds[i]` how many answers
/// instance i gave for the URL.
fn judge(values: &[Vec<String>], rounds: &[usize]) -> Verdict {
    if values.len() < 2 {
        return Verdict::Unclear {
            why: "only one instance".into(),
        };
    }
    // A value the heuristics miss in one answer (a random number that happens to look plain)
    // leaves a gap: judge on what was seen, as long as each instance showed it twice.
    if values.iter().any(|v| v.len() < 2) {
        return Verdict::Unclear {
            why: if rounds.iter().all(|&r| r >= 2) {
                "in fewer than two answers of an instance".into()
            } else {
                "fewer than two answers per instance: constants cannot be told from random values"
                    .into()
            },
        };
    }
    let distinct = |v: &Vec<String>| v.iter().collect::<BTreeSet<_>>().len();
    let per_request = values.iter().all(|v| distinct(v) == v.len());
    let per_instance = values.iter().all(|v| distinct(v) == 1);
    if per_request {
        let mut shared = BTreeSet::new();
        for (i, a) in values.iter().enumerate() {
            for b in &values[i + 1..] {
                shared.extend(a.iter().filter(|x| b.contains(x)).cloned());
            }
        }
        if shared.is_empty() {
            Verdict::Fresh
        } else {
            Verdict::Repeated {
                shared: shared.into_iter().collect(),
            }
        }
    } else if per_instance {
        let firsts: BTreeSet<&String> = values.iter().map(|v| &v[0]).collect();
        if firsts.len() == 1 {
            Verdict::Constant
        } else {
            Verdict::PerInstance
        }
    } else {
        Verdict::Unclear {
            why: "repeats inside one instance (drawn from a small set, or partly constant)".into(),
        }
    }
}

/// One instance as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceInfo {
    pub label: String,
    /// Time from the start of its restore (local) or of `run -d` (containers) to its first
    /// ready answer.
    pub ready_ms: Option<f64>,
    /// How it was stopped: `SIGTERM`, or `SIGKILL` when SIGTERM did not end it in time.
    pub stopped: String,
}

/// The result of a uniqueness check.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The checkpoint directory or the image.
    pub target: String,
    /// `local`, `podman` or `docker`; None for the check inside `cracin build` (its engine is
    /// the build's, and that report is never written out).
    pub engine: Option<crate::engine::EngineKind>,
    pub urls: Vec<String>,
    /// How many times each URL went to each instance.
    pub rounds: u32,
    pub instances: Vec<InstanceInfo>,
    pub checks: Vec<FieldCheck>,
    /// Answers with an HTTP status of 400 or more: `URL: status` (the check still compares them).
    pub error_answers: Vec<String>,
}

impl Report {
    /// The report of a check: the verdicts of `decide` over the instances' samples.
    pub fn new(
        target: String,
        engine: Option<crate::engine::EngineKind>,
        urls: &[String],
        rounds: u32,
        instances: Vec<InstanceInfo>,
        samples: &[Samples],
    ) -> Report {
        Report {
            target,
            engine,
            urls: urls.to_vec(),
            rounds,
            instances,
            error_answers: sample::error_answers(samples),
            checks: decide(samples),
        }
    }

    pub fn repeated(&self) -> impl Iterator<Item = &FieldCheck> {
        self.checks
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Repeated { .. }))
    }

    /// Places whose values were really compared (per-request or per-instance values).
    pub fn compared(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| {
                matches!(
                    c.verdict,
                    Verdict::Repeated { .. } | Verdict::Fresh | Verdict::PerInstance
                )
            })
            .count()
    }

    pub fn passed(&self) -> bool {
        self.repeated().next().is_none()
    }

    /// The failure as an error (exit code 8), naming each URL and place, the likely cause and
    /// the fix; `None` when the check passed.
    pub fn failure(&self) -> Option<Error> {
        let mut rep: Vec<&FieldCheck> = self.repeated().collect();
        // Session cookies first: the repeat users are most exposed by.
        rep.sort_by_key(|c| {
            if c.field.starts_with("Set-Cookie") {
                0
            } else if c.field.starts_with("header") {
                1
            } else {
                2
            }
        });
        let first = rep.first()?;
        let evidence = rep
            .iter()
            .map(|c| {
                let shared = match &c.verdict {
                    Verdict::Repeated { shared } => shared.join(", "),
                    _ => String::new(),
                };
                format!("{} {}: {} in two instances", c.url, c.field, shared)
            })
            .collect::<Vec<_>>()
            .join("\n");
        Some(Error::NotUnique {
            what: format!(
                "{} at {}{}",
                first.field,
                first.url,
                if rep.len() > 1 {
                    format!(" and {} more place(s)", rep.len() - 1)
                } else {
                    String::new()
                }
            ),
            cause: cause_for(&first.field),
            evidence,
            fix: FIX.into(),
        })
    }
}

/// The likely cause, specific to where the repeat was found.
pub fn cause_for(field: &str) -> String {
    if field.starts_with("Set-Cookie") {
        format!("session IDs come from a generator frozen in the checkpoint (servlet containers such as Tomcat make them with SHA1PRNG seeded at start); {CAUSE}")
    } else {
        CAUSE.to_string()
    }
}

/// The URLs to send, made absolute: `/path` goes to `base` (`http://127.0.0.1:PORT`); an
/// absolute URL is kept.
pub fn absolute_urls(urls: &[String], base: &str) -> Result<Vec<String>> {
    urls.iter()
        .map(|u| {
            if u.starts_with("http://") || u.starts_with("https://") {
                Ok(u.clone())
            } else if u.starts_with('/') {
                Ok(format!("{base}{u}"))
            } else {
                Err(Error::usage(
                    format!("invalid --url `{u}`"),
                    "give a path relative to the application's port (/api/token) or an absolute http:// URL",
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer the fake application gives: a session cookie and a JSON body.
    fn ans(cookie: &str, token: &str, build: &str, count: u32) -> Answer {
        Answer {
            status: 200,
            headers: vec![(
                "set-cookie".into(),
                format!("SESSION={cookie}; Path=/; HttpOnly"),
            )],
            body: format!(r#"{{"token":"{token}","build":"{build}","count":{count}}}"#),
        }
    }

    fn inst(label: &str, answers: Vec<Answer>) -> Samples {
        let mut m = BTreeMap::new();
        m.insert("http://127.0.0.1:8080/login".to_string(), answers);
        Samples {
            label: label.into(),
            answers: m,
        }
    }

    const BUILD: &str = "3f9a2c7e1b4d8f60a5c3e9d2b7f1a4c8e6d0b3a9";

    fn verdict(checks: &[FieldCheck], field: &str) -> Verdict {
        checks
            .iter()
            .find(|c| c.field == field)
            .unwrap_or_else(|| panic!("no {field} in {checks:?}"))
            .verdict
            .clone()
    }

    #[test]
    fn a_frozen_generator_repeats_across_instances_and_fails() {
        // Both instances continue the same sequence: A1 = B1, A2 = B2.
        let seq = [
            ("7f3a9c2e41b0d8e5a1c4", "q8Zr2mX_k1Lp0VbN-3tYw9"),
            ("9a8b7c6d5e4f3a2b1c0d", "Jb4nK2vQ9xR7tL1mP0sW3y"),
        ];
        let a = inst(
            "A",
            vec![
                ans(seq[0].0, seq[0].1, BUILD, 5),
                ans(seq[1].0, seq[1].1, BUILD, 6),
            ],
        );
        let b = inst(
            "B",
            vec![
                ans(seq[0].0, seq[0].1, BUILD, 5),
                ans(seq[1].0, seq[1].1, BUILD, 6),
            ],
        );
        let checks = decide(&[a, b]);
        assert_eq!(
            verdict(&checks, "Set-Cookie SESSION"),
            Verdict::Repeated {
                shared: vec!["7f3a9c2e41b0d8e5a1c4".into(), "9a8b7c6d5e4f3a2b1c0d".into()]
            }
        );
        assert!(matches!(
            verdict(&checks, "$.token"),
            Verdict::Repeated { .. }
        ));
        // The constant build hash is the same everywhere and is not flagged; the counter does
        // not look random at all.
        assert_eq!(verdict(&checks, "$.build"), Verdict::Constant);
        assert!(checks.iter().all(|c| c.field != "$.count"));
        let r = Report {
            target: "ckpt".into(),
            engine: Some(crate::engine::EngineKind::Local),
            urls: vec![],
            rounds: 2,
            instances: vec![],
            checks,
            error_answers: vec![],
        };
        assert!(!r.passed());
        let e = r.failure().unwrap();
        assert_eq!(e.exit_code(), crate::error::exit::NOT_UNIQUE);
        let msg = e.to_string();
        assert!(
            msg.contains("$.token") || msg.contains("Set-Cookie SESSION"),
            "{msg}"
        );
        assert!(msg.contains("/login"), "{msg}");
        assert!(e.hint().unwrap().contains("afterRestore"));
    }

    #[test]
    fn a_shifted_sequence_is_caught_too() {
        // Instance B served one request more before ours: its first value is A's second.
        let a = inst(
            "A",
            vec![
                ans("7f3a9c2e41b0d8e5a1c4", "q8Zr2mX_k1Lp0VbN-3tYw9", BUILD, 1),
                ans("9a8b7c6d5e4f3a2b1c0d", "Jb4nK2vQ9xR7tL1mP0sW3y", BUILD, 2),
            ],
        );
        let b = inst(
            "B",
            vec![
                ans("9a8b7c6d5e4f3a2b1c0d", "Jb4nK2vQ9xR7tL1mP0sW3y", BUILD, 2),
                ans("5c4d3e2f1a0b9c8d7e6f", "Xy7Kp2Qw9Lm4Nb6Vc1Zr8T", BUILD, 3),
            ],
        );
        let checks = decide(&[a, b]);
        assert_eq!(
            verdict(&checks, "Set-Cookie SESSION"),
            Verdict::Repeated {
                shared: vec!["9a8b7c6d5e4f3a2b1c0d".into()]
            }
        );
    }

    #[test]
    fn fresh_values_pass() {
        let a = inst(
            "A",
            vec![
                ans("7f3a9c2e41b0d8e5a1c4", "q8Zr2mX_k1Lp0VbN-3tYw9", BUILD, 5),
                ans("9a8b7c6d5e4f3a2b1c0d", "Jb4nK2vQ9xR7tL1mP0sW3y", BUILD, 6),
            ],
        );
        let b = inst(
            "B",
            vec![
                ans("5c4d3e2f1a0b9c8d7e6f", "Xy7Kp2Qw9Lm4Nb6Vc1Zr8T", BUILD, 5),
                ans("0e1d2c3b4a5f6e7d8c9b", "Hg3Jk8Lm2Nb5Vc7Xz1Qw4E", BUILD, 6),
            ],
        );
        let checks = decide(&[a, b]);
        assert_eq!(verdict(&checks, "Set-Cookie SESSION"), Verdict::Fresh);
        assert_eq!(verdict(&checks, "$.token"), Verdict::Fresh);
        assert_eq!(verdict(&checks, "$.build"), Verdict::Constant);
        let r = Report {
            target: "ckpt".into(),
            engine: Some(crate::engine::EngineKind::Local),
            urls: vec![],
            rounds: 2,
            instances: vec![],
            checks,
            error_answers: vec![],
        };
        assert!(r.passed());
        assert!(r.failure().is_none());
        assert_eq!(r.compared(), 2);
    }

    #[test]
    fn per_instance_values_pass_and_small_sets_are_not_judged() {
        // An instance ID made after the restore: the same inside one instance, new in each.
        let node = |id: &str, tok: &str| Answer {
            status: 200,
            headers: vec![("x-node".into(), id.into())],
            body: format!(r#"{{"shard":"{tok}"}}"#),
        };
        let a = inst(
            "A",
            vec![
                node(
                    "0f1e6c2a-9b47-4d3e-8a55-2c7b9e1d4f60",
                    "Xy7Kp2Qw9Lm4Nb6Vc1Zr8T",
                ),
                node(
                    "0f1e6c2a-9b47-4d3e-8a55-2c7b9e1d4f60",
                    "Xy7Kp2Qw9Lm4Nb6Vc1Zr8T",
                ),
                node(
                    "0f1e6c2a-9b47-4d3e-8a55-2c7b9e1d4f60",
                    "Hg3Jk8Lm2Nb5Vc7Xz1Qw4E",
                ),
            ],
        );
        let b = inst(
            "B",
            vec![
                node(
                    "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d",
                    "Hg3Jk8Lm2Nb5Vc7Xz1Qw4E",
                ),
                node(
                    "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d",
                    "Xy7Kp2Qw9Lm4Nb6Vc1Zr8T",
                ),
                node(
                    "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d",
                    "Xy7Kp2Qw9Lm4Nb6Vc1Zr8T",
                ),
            ],
        );
        let checks = decide(&[a, b]);
        assert_eq!(verdict(&checks, "header x-node"), Verdict::PerInstance);
        // The shard names rotate among two values: equal ones in both instances say nothing.
        assert!(matches!(
            verdict(&checks, "$.shard"),
            Verdict::Unclear { .. }
        ));
    }

    #[test]
    fn a_token_missing_from_some_answers_is_not_judged() {
        let a = inst(
            "A",
            vec![
                ans("7f3a9c2e41b0d8e5a1c4", "q8Zr2mX_k1Lp0VbN-3tYw9", BUILD, 1),
                ans("9a8b7c6d5e4f3a2b1c0d", "Jb4nK2vQ9xR7tL1mP0sW3y", BUILD, 2),
            ],
        );
        let mut no_cookie = ans("x", "Xy7Kp2Qw9Lm4Nb6Vc1Zr8T", BUILD, 1);
        no_cookie.headers.clear();
        let b = inst("B", vec![no_cookie.clone(), no_cookie]);
        let checks = decide(&[a, b]);
        assert!(matches!(
            verdict(&checks, "Set-Cookie SESSION"),
            Verdict::Unclear { .. }
        ));
        // B gave the same token twice, A two different ones: neither rule fits.
        assert!(matches!(
            verdict(&checks, "$.token"),
            Verdict::Unclear { .. }
        ));
    }

    #[test]
    fn a_value_missed_in_one_answer_still_counts_when_seen_twice() {
        // Three rounds; the heuristics found no token in A's second answer.
        let missed = ans("9a8b7c6d5e4f3a2b1c0d", "plain", BUILD, 2);
        let seq = [
            ans("7f3a9c2e41b0d8e5a1c4", "q8Zr2mX_k1Lp0VbN-3tYw9", BUILD, 1),
            ans("5c4d3e2f1a0b9c8d7e6f", "Jb4nK2vQ9xR7tL1mP0sW3y", BUILD, 3),
        ];
        let a = inst("A", vec![seq[0].clone(), missed, seq[1].clone()]);
        let b = inst(
            "B",
            vec![
                seq[0].clone(),
                ans("9a8b7c6d5e4f3a2b1c0d", "Xy7Kp2Qw9Lm4Nb6Vc1Zr8T", BUILD, 2),
                seq[1].clone(),
            ],
        );
        assert_eq!(
            verdict(&decide(&[a, b]), "$.token"),
            Verdict::Repeated {
                shared: vec![
                    "Jb4nK2vQ9xR7tL1mP0sW3y".into(),
                    "q8Zr2mX_k1Lp0VbN-3tYw9".into()
                ]
            }
        );
    }

    #[test]
    fn constants_that_move_between_places_are_not_repeats() {
        // Two constants swap places from one answer to the next (in both instances): `body #2`
        // and `body #3` change per request and hold the same values in both instances, but
        // each value is in every answer, so neither was made for one request.
        const C: &str = "3f9a2c7e1b4d8f60a5c3e9d2b7f1a4c8e6d0b3a9";
        const X: &str = "0e1d2c3b4a5f6e7d8c9b0a1f";
        let page = |session: &str, swapped: bool| Answer {
            status: 200,
            headers: vec![],
            body: if swapped {
                format!("<p>{session}</p><p>{X}</p><p>{C}</p>")
            } else {
                format!("<p>{session}</p><p>{C}</p><p>{X}</p>")
            },
        };
        let a = inst(
            "A",
            vec![
                page("7f3a9c2e41b0d8e5a1c4", false),
                page("9a8b7c6d5e4f3a2b1c0d", true),
            ],
        );
        let b = inst(
            "B",
            vec![
                page("5c4d3e2f1a0b9c8d7e6f", false),
                page("1a2b3c4d5e6f7a8b9c0d", true),
            ],
        );
        let checks = decide(&[a, b]);
        assert_eq!(verdict(&checks, "body"), Verdict::Fresh);
        assert!(matches!(
            verdict(&checks, "body #2"),
            Verdict::Unclear { .. }
        ));
        assert!(matches!(
            verdict(&checks, "body #3"),
            Verdict::Unclear { .. }
        ));
    }

    #[test]
    fn one_round_cannot_tell_constants_from_random_values() {
        let a = inst(
            "A",
            vec![ans(
                "7f3a9c2e41b0d8e5a1c4",
                "q8Zr2mX_k1Lp0VbN-3tYw9",
                BUILD,
                1,
            )],
        );
        let b = inst(
            "B",
            vec![ans(
                "7f3a9c2e41b0d8e5a1c4",
                "q8Zr2mX_k1Lp0VbN-3tYw9",
                BUILD,
                1,
            )],
        );
        assert!(decide(&[a, b])
            .iter()
            .all(|c| matches!(c.verdict, Verdict::Unclear { .. })));
    }

    #[test]
    fn urls_are_made_absolute() {
        let u = absolute_urls(
            &["/a?x=1".into(), "http://127.0.0.1:9/b".into()],
            "http://127.0.0.1:8080",
        )
        .unwrap();
        assert_eq!(u, ["http://127.0.0.1:8080/a?x=1", "http://127.0.0.1:9/b"]);
        assert!(absolute_urls(&["api".into()], "http://x").is_err());
    }
}
