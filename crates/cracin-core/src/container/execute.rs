//! Running a plan: write its files, run its steps in order with the plan's environment and a log
//! per step, and on the first failure (or when cracin itself is killed: `os::guard`) run the
//! plan's `OnFailure` steps, which remove what the plan made. Nothing is lost: a plan only tags
//! its image after every verification passed, so a failed build never replaces a good image.

use std::path::Path;
use std::time::{Duration, Instant};

use super::plan::{write_files, Plan, Step, StepKind};
use crate::error::{Error, Result};
use crate::os::cmd::Cmd;
use crate::Progress;

/// A failed engine command as `Error::Engine`, naming the plan step (a `cp` of cracin's own
/// files and other errors unchanged).
fn engine_error(s: &Step, e: Error) -> Error {
    if s.command.first().map(String::as_str) == Some("cp") {
        return e;
    }
    e.at_engine_step(&s.name)
}

/// Runs a plan: writes its files, runs its steps in order with the plan's environment (logs in
/// `log_dir`), and on the first failure runs the `OnFailure` steps before returning the error.
pub fn execute(plan: &Plan, log_dir: &Path, progress: &dyn Progress) -> Result<()> {
    if let Some(dir) = &plan.files_dir {
        write_files(dir, &plan.files, true)?;
    }
    // If cracin dies mid-build (Ctrl-C, SIGTERM, SIGKILL), its guardian removes what the plan
    // created, as a failed step would.
    for s in plan.steps.iter().filter(|s| s.kind == StepKind::OnFailure) {
        crate::os::guard::run_on_death(&s.command, &plan.env);
    }
    // The answers of the verification containers, for the uniqueness check.
    let mut samples = Vec::new();
    let result = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind != StepKind::OnFailure)
        .try_for_each(|(i, s)| run_step(plan, i, s, log_dir, progress, &mut samples));
    if result.is_err() {
        for (i, s) in plan
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == StepKind::OnFailure)
        {
            let _ = step_cmd(plan, i, s, log_dir).map(|c| c.run_unchecked());
        }
    }
    result
}

fn step_cmd(plan: &Plan, i: usize, s: &Step, log_dir: &Path) -> Result<Cmd> {
    let (prog, args) = s.command.split_first().ok_or_else(|| {
        Error::usage(
            format!("plan step {} has no command", s.name),
            "this is a bug in cracin",
        )
    })?;
    let mut c = Cmd::new(prog)
        .args(args)
        .timeout(s.timeout)
        .logs(log_dir, format!("{:02}-{}", i + 1, s.name));
    for (k, v) in &plan.env {
        c = c.env(k, v);
    }
    Ok(c)
}

/// Where a step runs: the plan (its environment), the step's index (its log's name) and the log
/// directory.
struct Ctx<'a> {
    plan: &'a Plan,
    i: usize,
    log_dir: &'a Path,
}

impl Ctx<'_> {
    /// The step's command, or another command logged under the step's name.
    fn cmd(&self, s: &Step, command: Option<&[String]>) -> Result<Cmd> {
        match command {
            Some(c) => step_cmd(
                self.plan,
                self.i,
                &Step {
                    command: c.to_vec(),
                    ..s.clone()
                },
                self.log_dir,
            ),
            None => step_cmd(self.plan, self.i, s, self.log_dir),
        }
    }
}

fn run_step(
    plan: &Plan,
    i: usize,
    s: &Step,
    log_dir: &Path,
    progress: &dyn Progress,
    samples: &mut Vec<crate::verify::Samples>,
) -> Result<()> {
    progress.step(&s.name, &s.why);
    let t0 = Instant::now();
    let ctx = Ctx { plan, i, log_dir };
    let summary = match &s.kind {
        StepKind::Sample { names, rounds } => {
            samples.push(crate::verify::image::sample_step(
                &s.name,
                names,
                &s.command[1..],
                *rounds,
                log_dir,
            )?);
            String::new()
        }
        StepKind::Uniqueness => crate::verify::image::uniqueness_step(samples, progress)?,
        StepKind::Probe {
            timeout,
            alive,
            logs,
        } => {
            probe(&ctx, s, *timeout, alive, logs)?;
            String::new()
        }
        StepKind::RunExpectAbsent { absent } => {
            run_expect_absent(&ctx, s, absent)?;
            String::new()
        }
        StepKind::Run | StepKind::OnFailure => {
            ctx.cmd(s, None)?.run().map_err(|e| engine_error(s, e))?;
            String::new()
        }
    };
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    progress.done(&s.name, ms, &summary);
    Ok(())
}

/// Polls the URL in `command[1]` until it answers; ends early, with the container's logs as
/// evidence, when `alive` says the container has exited.
fn probe(ctx: &Ctx, s: &Step, timeout: Duration, alive: &[String], logs: &[String]) -> Result<()> {
    let url = s.command.get(1).cloned().unwrap_or_default();
    let probe = crate::stage::probe::Probe::parse(&url)?;
    // `inspect` costs tens of milliseconds: ask at most twice a second.
    let mut last_check = Instant::now();
    let dead = || {
        if alive.is_empty() || last_check.elapsed() < Duration::from_millis(500) {
            return None;
        }
        last_check = Instant::now();
        let out = ctx.cmd(s, Some(alive)).ok()?.run_unchecked().ok()?;
        let text = out.stdout.trim().to_string();
        let code = text.strip_prefix("false ")?;
        out.status.success().then(|| format!("exit status {code}"))
    };
    match crate::stage::probe::wait_ready(&probe, &[], timeout, Duration::from_millis(10), dead) {
        Ok(_) => Ok(()),
        Err(crate::stage::probe::NotReady::Exited(how)) => {
            let out = ctx.cmd(s, Some(logs))?.run_unchecked()?;
            let text = format!("{}{}", out.stdout, out.stderr);
            Err(Error::Engine {
                step: s.name.clone(),
                command: format!("container {}", logs.last().cloned().unwrap_or_default()),
                status: format!("{how} before {url} answered"),
                log: out.stdout_path,
                log_tail: crate::os::cmd::tail_of_text(&text, 15),
            })
        }
        Err(_) => Err(Error::RestoredNotReady {
            probe: url.clone(),
            timeout,
            log: ctx.log_dir.to_path_buf(),
            log_tail: String::new(),
        }),
    }
}

/// Runs the step's command; fails when its output contains `absent` (a restore's fallback
/// marker), quoting the marker line and the reasons under it.
fn run_expect_absent(ctx: &Ctx, s: &Step, absent: &str) -> Result<()> {
    let out = ctx.cmd(s, None)?.run().map_err(|e| engine_error(s, e))?;
    if !out.stdout.contains(absent) && !out.stderr.contains(absent) {
        return Ok(());
    }
    let text = format!("{}{}", out.stdout, out.stderr);
    // The marker line and the reason lines the restore entrypoint prints under it.
    let line = text
        .lines()
        .skip_while(|l| !l.contains(absent))
        .take_while(|l| l.contains(absent) || l.starts_with("cracin:   "))
        .collect::<Vec<_>>()
        .join("\n");
    Err(Error::Engine {
        step: s.name.clone(),
        command: s.command.join(" "),
        status: format!("output contains {absent:?}"),
        log: out.stderr_path.clone(),
        log_tail: line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{GeneratedFile, FALLBACK_MARKER};

    #[test]
    fn execute_runs_steps_in_order_and_cleans_up_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("cleaned");
        let mut p = Plan {
            title: "t".into(),
            env: vec![("CRACIN_TEST_ENV".into(), "yes".into())],
            files_dir: Some(d.path().join("ctx")),
            files: vec![GeneratedFile {
                name: "f".into(),
                content: "hello".into(),
                mode: 0o644,
            }],
            steps: vec![],
            notes: vec![],
        };
        p.step(
            "ok",
            vec![
                "sh".into(),
                "-c".into(),
                "test \"$CRACIN_TEST_ENV\" = yes".into(),
            ],
            "env reaches steps",
        );
        p.step(
            "fail",
            vec!["sh".into(), "-c".into(), "exit 3".into()],
            "fails",
        );
        p.on_failure(
            "clean",
            vec!["touch".into(), marker.display().to_string()],
            "cleanup runs",
        );
        p.steps.insert(
            1,
            Step {
                name: "no-fallback".into(),
                command: vec!["echo".into(), "restored".into()],
                why: "passes: the marker is absent".into(),
                kind: StepKind::RunExpectAbsent {
                    absent: FALLBACK_MARKER.into(),
                },
                timeout: Duration::from_secs(5),
            },
        );
        let err = execute(&p, &d.path().join("logs"), &crate::Quiet).unwrap_err();
        assert!(
            matches!(err, Error::Engine { ref status, ref step, .. } if status == "exit status 3" && step == "fail"),
            "{err:?}"
        );
        assert!(marker.exists());
        assert_eq!(
            std::fs::read_to_string(d.path().join("ctx/f")).unwrap(),
            "hello"
        );
    }

    #[test]
    fn a_fallback_fails_verification() {
        let d = tempfile::tempdir().unwrap();
        let p = Plan {
            title: "t".into(),
            env: vec![],
            files_dir: None,
            files: vec![],
            steps: vec![Step {
                name: "logs".into(),
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    format!("echo '{FALLBACK_MARKER} (see restore.log); starting cold' >&2"),
                ],
                why: "t".into(),
                kind: StepKind::RunExpectAbsent {
                    absent: FALLBACK_MARKER.into(),
                },
                timeout: Duration::from_secs(5),
            }],
            notes: vec![],
        };
        match execute(&p, d.path(), &crate::Quiet).unwrap_err() {
            Error::Engine { log_tail, .. } => {
                assert!(log_tail.contains("starting cold"), "{log_tail}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
