//! The loop every measurement repeats, on the host and in containers alike: start the
//! application one way, time the start to its first answer, after the first start time a series
//! of requests (how warm it is), then stop it and wait until it is gone. A `Starter` is one way
//! of starting (a cold start, a restore, a container of an image ...); `in_turn` measures several
//! of them run by run, so that whatever else slows the host slows them alike.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::measure::stats::ms;
use crate::stage::probe::{self, NotReady, Probe};
use crate::stage::warmup;
use crate::Progress;

/// One way of starting the application, measured again and again.
pub trait Starter {
    /// What a failed start is reported as (the local engine: cracin's errors; a container
    /// engine: the reason it was not measured).
    type Error: From<Error>;
    /// Starts the application once (`run` counts from 0) and returns once it answered: the time
    /// from the start to the first answer. It keeps running until `stop`.
    fn start(&mut self, run: usize) -> Result<f64, Self::Error>;
    /// Where the running application answers the timed requests (None: they are not timed).
    fn latency_url(&self) -> Option<String>;
    /// Stops the running application and waits until it is gone.
    fn stop(&mut self);
}

/// How a series shows in the progress: `step` with `detail` and "run i/n" at each start, and a
/// `done` line with `done`'s summary when one is given.
pub struct Label {
    pub step: String,
    pub detail: String,
    pub done: Option<String>,
}

impl Label {
    /// `step` with "run i/n" and a done line without summary.
    pub fn plain(step: &str) -> Label {
        Label {
            step: step.into(),
            detail: String::new(),
            done: Some(String::new()),
        }
    }
}

/// Which requests are timed after the first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmth {
    /// None.
    Untimed,
    /// The first requests.
    First,
    /// The first requests, then as many again once it served those (steady state).
    FirstAndSteady,
}

/// One starter, how it shows, and which requests are timed after its first start.
pub struct Series<'a, E> {
    pub label: Label,
    pub warmth: Warmth,
    pub starter: &'a mut dyn Starter<Error = E>,
}

/// What a series measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Start → first answer, one per run.
    pub ms: Vec<f64>,
    /// Latency of each of the first requests after the first start.
    pub first_ms: Vec<f64>,
    /// As many requests once those were served (`Warmth::FirstAndSteady`).
    pub steady_ms: Vec<f64>,
}

/// Measures `runs` starts of every series, the series taking turns within each run. After the
/// first start of a series the warmth requests (`requests` of them) are timed; the application
/// is stopped whatever they gave. The first failure ends the measurement.
pub fn in_turn<E: From<Error>>(
    runs: usize,
    requests: usize,
    series: &mut [Series<'_, E>],
    progress: &dyn Progress,
) -> Result<Vec<Measured>, E> {
    let mut out = vec![Measured::default(); series.len()];
    for i in 0..runs {
        for (s, m) in series.iter_mut().zip(out.iter_mut()) {
            progress.step(
                &s.label.step,
                &format!("{}run {}/{}", s.label.detail, i + 1, runs),
            );
            let took = s.starter.start(i)?;
            let timed = if i == 0 && requests > 0 && s.warmth != Warmth::Untimed {
                warmth(s.starter.latency_url(), requests, s.warmth, m)
            } else {
                Ok(())
            };
            s.starter.stop();
            timed?;
            m.ms.push(took);
            if let Some(summary) = &s.label.done {
                progress.done(&s.label.step, took, summary);
            }
        }
    }
    Ok(out)
}

/// Times the first requests (and the steady ones) into `m`.
fn warmth(
    url: Option<String>,
    requests: usize,
    w: Warmth,
    m: &mut Measured,
) -> crate::error::Result<()> {
    if let Some(u) = url {
        m.first_ms = warmup::latency_series(&u, requests)?;
        if w == Warmth::FirstAndSteady {
            m.steady_ms = warmup::latency_series(&u, requests)?;
        }
    }
    Ok(())
}

/// Polls `probe` (every 2 ms) until it answers: the time from `start` to the first answer. The
/// logs are what a log-line probe reads; `dead` says why the application can no longer answer.
pub fn first_answer(
    probe: &Probe,
    logs: &[PathBuf],
    start: Instant,
    timeout: Duration,
    dead: impl FnMut() -> Option<String>,
) -> Result<f64, NotReady> {
    probe::wait_ready(probe, logs, timeout, Duration::from_millis(2), dead)?;
    Ok(ms(start.elapsed()))
}

/// Stops a restored process and waits until it is gone (its port free again). A zombie leader
/// may still have threads closing its sockets, so only a reaped process counts as gone.
pub fn stop_pid(pid: u32) {
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        // Reap it if it is ours (a foreground restore made cracin its subreaper).
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid as i32),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A starter that takes a fixed time, or fails at one run; it records what happened.
    struct Fake {
        name: &'static str,
        fail_at: Option<usize>,
        log: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
    }

    impl Starter for Fake {
        type Error = Error;
        fn start(&mut self, run: usize) -> crate::error::Result<f64> {
            self.log
                .borrow_mut()
                .push(format!("{} start {run}", self.name));
            if self.fail_at == Some(run) {
                return Err(Error::usage("no answer", "none"));
            }
            Ok(10.0 + run as f64)
        }
        fn latency_url(&self) -> Option<String> {
            None
        }
        fn stop(&mut self) {
            self.log.borrow_mut().push(format!("{} stop", self.name));
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);
    impl Progress for Recorder {
        fn step(&self, name: &str, detail: &str) {
            self.0.lock().unwrap().push(format!("step {name} {detail}"));
        }
        fn done(&self, name: &str, ms: f64, summary: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("done {name} {ms} {summary}"));
        }
        fn warn(&self, _: &str) {}
    }

    #[test]
    fn series_take_turns_and_each_start_is_stopped() {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let (mut a, mut b) = (
            Fake {
                name: "a",
                fail_at: None,
                log: log.clone(),
            },
            Fake {
                name: "b",
                fail_at: None,
                log: log.clone(),
            },
        );
        let progress = Recorder::default();
        let m = in_turn(
            2,
            5,
            &mut [
                Series {
                    label: Label {
                        step: "a".into(),
                        detail: "cold ".into(),
                        done: None,
                    },
                    warmth: Warmth::First,
                    starter: &mut a,
                },
                Series {
                    label: Label::plain("b"),
                    warmth: Warmth::Untimed,
                    starter: &mut b,
                },
            ],
            &progress,
        )
        .unwrap();
        assert_eq!(m[0].ms, [10.0, 11.0]);
        assert_eq!(m[1].ms, [10.0, 11.0]);
        assert!(m[0].first_ms.is_empty(), "no URL, no series");
        assert_eq!(
            *log.borrow(),
            [
                "a start 0",
                "a stop",
                "b start 0",
                "b stop",
                "a start 1",
                "a stop",
                "b start 1",
                "b stop"
            ]
        );
        assert_eq!(
            *progress.0.lock().unwrap(),
            [
                "step a cold run 1/2",
                "step b run 1/2",
                "done b 10 ",
                "step a cold run 2/2",
                "step b run 2/2",
                "done b 11 "
            ]
        );
    }

    #[test]
    fn the_first_failure_ends_the_measurement() {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut a = Fake {
            name: "a",
            fail_at: Some(1),
            log: log.clone(),
        };
        let r = in_turn(
            3,
            0,
            &mut [Series {
                label: Label::plain("a"),
                warmth: Warmth::Untimed,
                starter: &mut a,
            }],
            &crate::Quiet,
        );
        assert!(r.is_err());
        assert_eq!(*log.borrow(), ["a start 0", "a stop", "a start 1"]);
    }
}
