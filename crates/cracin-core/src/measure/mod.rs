//! Measurement, one path for `cracin bench` and `cracin report`: `runs` (the loop every
//! measurement repeats: start, first answer, timed requests, stop), `local` (cold starts against
//! restores of one application on the host), `container` (the same with podman or docker images),
//! `peers` (the application restored by a plain CRIU or started with a JDK 25 AOT cache), `stats`
//! (min, median, percentiles), and, here, where the time of a restore goes. The figure cracin reports counts from the start of the
//! cracin process (marked first thing in `main`), not from the start of CRIU, so that it is
//! what a user or an orchestrator waits for; the phases break it down into cracin's own checks,
//! CRIU's phases (read from the timestamps of its log) and the wait for the first answer.

pub mod container;
pub mod local;
pub mod peers;
pub mod runs;
pub mod stats;

use std::path::Path;
use std::sync::OnceLock;

use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Marks the start of this process; call it first thing in `main`. (What runs before `main`,
/// the exec and the dynamic loader, is not counted: well under a millisecond for cracin.)
pub fn mark_process_start() {
    let _ = START.set(Instant::now());
}

/// The instant marked by [`mark_process_start`], or the first call of this function when
/// nobody marked it (library use).
pub fn process_start() -> Instant {
    *START.get_or_init(Instant::now)
}

/// One phase of a restore.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Phase {
    /// Short name ("checks", "criu: kernel probe", "first answer" ...).
    pub name: String,
    pub ms: f64,
    /// What happened in it, when worth saying (e.g. whether the kernel probe was cached).
    pub detail: String,
}

/// Collects phases as a restore goes: each `mark` closes the phase that began at the previous.
#[derive(Debug)]
pub struct Stopwatch {
    last: Instant,
    pub phases: Vec<Phase>,
}

impl Stopwatch {
    /// Starts at the process start: the first phase includes the start of cracin itself.
    pub fn from_process_start() -> Stopwatch {
        Stopwatch::from(process_start())
    }

    /// Starts at `t`.
    pub fn from(t: Instant) -> Stopwatch {
        Stopwatch {
            last: t,
            phases: Vec::new(),
        }
    }

    /// Ends the current phase under `name`; returns its length in ms.
    pub fn mark(&mut self, name: &str, detail: impl Into<String>) -> f64 {
        let now = Instant::now();
        let ms = now.duration_since(self.last).as_secs_f64() * 1000.0;
        self.last = now;
        self.phases.push(Phase {
            name: name.into(),
            ms,
            detail: detail.into(),
        });
        ms
    }
}

/// CRIU's own phases of a restore, from the `(SS.ffffff)` timestamps of its log (-v4): the
/// kernel-feature probe and set-up until it reads the image tree, forking and restoring the
/// tasks' resources until the restorer blob takes over, memory and resume until "Restore
/// finished", and what follows until CRIU exits. Missing markers leave their phase out.
pub fn criu_restore_phases(log: &Path) -> Vec<Phase> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    parse_criu_restore_phases(&text)
}

pub fn parse_criu_restore_phases(text: &str) -> Vec<Phase> {
    let stamp = |l: &str| -> Option<f64> {
        let inner = l.strip_prefix('(')?.split_once(')')?.0;
        inner.trim().parse::<f64>().ok().map(|s| s * 1000.0)
    };
    let find = |needle: &str| text.lines().find(|l| l.contains(needle)).and_then(&stamp);
    let cached = text.lines().any(|l| l.contains("Loaded kdat cache"));
    let last = text.lines().rev().find_map(stamp);
    let marks = [
        (
            "criu: kernel probe and set-up",
            find("Reading image tree"),
            if cached {
                "kernel features from the kdat cache"
            } else {
                "kernel features probed"
            },
        ),
        (
            "criu: tasks and resources",
            find("Switched to the restorer"),
            "",
        ),
        (
            "criu: memory and resume",
            find("Restore finished successfully"),
            "",
        ),
        ("criu: after resume", last, ""),
    ];
    let mut out = Vec::new();
    let mut prev = 0.0;
    for (name, at, detail) in marks {
        if let Some(at) = at.filter(|a| *a >= prev) {
            out.push(Phase {
                name: name.into(),
                ms: at - prev,
                detail: detail.into(),
            });
            prev = at;
        }
    }
    out
}

/// The phases of one CRIU run that took `wall_ms` from exec to exit: its log's phases, and the
/// rest (exec, reading its options, exit) that its log does not see.
pub fn criu_run_phases(wall_ms: f64, log: &Path) -> Vec<Phase> {
    let mut v = criu_restore_phases(log);
    let inside: f64 = v.iter().map(|p| p.ms).sum();
    if !v.is_empty() && wall_ms > inside {
        v.push(Phase {
            name: "criu: exec and exit".into(),
            ms: wall_ms - inside,
            detail: "outside its log".into(),
        });
    }
    v
}

impl Stopwatch {
    /// Ends the current phase as the given sub-phases (e.g. CRIU's, measured by CRIU itself);
    /// when they cannot be known, as one phase under `name`. The next phase starts where the
    /// parts end, so whatever ran between them and now is counted there and the phases still
    /// add up to the whole.
    pub fn mark_parts(&mut self, name: &str, parts: Vec<Phase>) {
        if parts.is_empty() {
            self.mark(name, "");
        } else {
            let sum: f64 = parts.iter().map(|p| p.ms).sum();
            self.last += std::time::Duration::from_secs_f64(sum / 1000.0);
            self.phases.extend(parts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_log_phases() {
        let log =
            "(00.000000) CRIU run id = x\n(00.000161) Loaded kdat cache from /run/criu.kdat\n\
                   (00.001074) Reading image tree\n(00.124125) Forking task with 1 pid\n\
                   (00.141210) pie: 1: Switched to the restorer 1\n\
                   (00.157862) Restore finished successfully. Tasks resumed.\n\
                   (00.158000) Writing stats\n(00.160000) Running post-resume scripts\n";
        let p = parse_criu_restore_phases(log);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "criu: kernel probe and set-up",
                "criu: tasks and resources",
                "criu: memory and resume",
                "criu: after resume"
            ]
        );
        assert!((p[0].ms - 1.074).abs() < 1e-6);
        assert!(p[0].detail.contains("cache"));
        assert!((p[1].ms - 140.136).abs() < 1e-6);
        assert!((p.iter().map(|p| p.ms).sum::<f64>() - 160.0).abs() < 1e-6);
        assert!(parse_criu_restore_phases("no timestamps").is_empty());
    }

    #[test]
    fn stopwatch_phases_add_up() {
        let mut s = Stopwatch::from_process_start();
        let a = s.mark("one", "");
        let b = s.mark("two", "x");
        assert_eq!(s.phases.len(), 2);
        assert!(a >= 0.0 && b >= 0.0);
        assert_eq!(s.phases[1].detail, "x");
    }
}
