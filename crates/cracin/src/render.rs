//! How the binary shows things: progress lines on stderr, and the one error renderer that prints
//! the message, its cause chain, the evidence (log excerpt and where the full log is), the
//! diagnosis, and the hint, then returns the documented exit code.

use std::io::Write;
use std::time::Instant;

use cracin_core::Error;

/// Progress on stderr, one line per step, with the elapsed time since the start.
pub struct Steps {
    start: Instant,
    quiet: bool,
}

impl Steps {
    pub fn new(quiet: bool) -> Self {
        Steps {
            start: Instant::now(),
            quiet,
        }
    }
}

impl cracin_core::Progress for Steps {
    fn step(&self, name: &str, detail: &str) {
        if !self.quiet {
            eprintln!(
                "[{:>7.2}s] {name:<10} {detail}",
                self.start.elapsed().as_secs_f64()
            );
        }
    }
    fn done(&self, name: &str, ms: f64, summary: &str) {
        if !self.quiet {
            let s = if summary.is_empty() {
                String::new()
            } else {
                format!(": {summary}")
            };
            eprintln!(
                "[{:>7.2}s] {name:<10} done in {ms:.0} ms{s}",
                self.start.elapsed().as_secs_f64()
            );
        }
    }
    fn warn(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }
}

/// Prints an error for a human and returns its exit code.
pub fn error(e: &Error) -> i32 {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let _ = writeln!(err, "  caused by: {s}");
        src = s.source();
    }
    if let Some((file, tail)) = e.evidence() {
        if !tail.trim().is_empty() {
            match file {
                Some(f) => {
                    let _ = writeln!(err, "\nlast lines of {}:", f.display());
                }
                None if matches!(e, Error::NotUnique { .. }) => {
                    let _ = writeln!(err, "\nrepeated in two instances:");
                }
                None => {
                    let _ = writeln!(err, "\nlast lines of its output:");
                }
            }
            // The application's output: no terminal escape sequence of its reaches the terminal.
            for l in tail.lines() {
                let _ = writeln!(err, "  | {}", cracin_core::diagnose::safe::sanitize(l));
            }
        }
    }
    for f in e.diagnosis() {
        let _ = writeln!(err, "\ndiagnosis: {}", f.title);
        let _ = writeln!(err, "  cause:    {}", f.cause);
        let _ = writeln!(
            err,
            "  evidence: {}:{}: {}",
            f.evidence.file.display(),
            f.evidence.line,
            f.evidence.text
        );
        let _ = writeln!(err, "  fix:      {}", f.fix);
        if let Some(r) = &f.reference {
            let _ = writeln!(err, "  see:      {r}");
        }
    }
    if let Some(h) = e.hint() {
        // The first diagnosis already printed its fix.
        if e.diagnosis().first().map(|f| &f.fix) != Some(&h) {
            let _ = writeln!(err, "\nhint: {h}");
        }
    }
    e.exit_code()
}
