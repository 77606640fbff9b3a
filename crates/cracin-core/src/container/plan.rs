//! A plan is data: the generated files to write and the exact commands to run, each with its
//! reason, its timeout and how it is carried out (`StepKind`). `cracin build --dry-run` prints it
//! (`Plan::render`), the snapshot tests compare it line by line, and `execute` runs exactly what
//! is printed. `cracin build`, `cracin base` and `cracin push` all make plans.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::os::cmd::shell_quote;

/// How a step is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Run `command`; a failure stops the plan.
    Run,
    /// Poll the URL in `command[1]` from the host until it answers (or `timeout` passes).
    /// `alive` (an `inspect` printing `.State.Running .State.ExitCode`) ends the wait early when the container
    /// has exited, e.g. a failed restore without fallback; `logs` then shows why.
    Probe {
        timeout: Duration,
        alive: Vec<String>,
        logs: Vec<String>,
    },
    /// Run `command`; it fails if its output (stdout or stderr) contains `absent` — e.g. the
    /// restore entrypoint's fallback message, so a cold start cannot pass as a restore.
    RunExpectAbsent { absent: String },
    /// Run only when an earlier step failed, to remove what the plan created; errors ignored.
    OnFailure,
    /// Send the URLs in `command[1..]` (the `--verify-url` values in `names`, mapped to the
    /// published port) `rounds` times to the running verification container and keep the
    /// answers for `Uniqueness` (`verify::sample`).
    Sample { names: Vec<String>, rounds: u32 },
    /// Compare the answers of every `Sample` step so far (`verify::decide`): a random-looking
    /// value that came back in two containers fails the build before it is tagged.
    Uniqueness,
}

/// What a restore entrypoint prints on stderr when it falls back to a cold start (cracin's
/// in-container restore and the generated OpenJ9 restore.sh); verification fails on it.
pub const FALLBACK_MARKER: &str = "cracin: restore failed";

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub command: Vec<String>,
    pub why: String,
    pub kind: StepKind,
    /// How long the command may take.
    pub timeout: Duration,
}

/// Files to write, then steps to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub title: String,
    /// Environment added to every command (CONTAINERS_CONF, DOCKER_HOST, …).
    pub env: Vec<(String, String)>,
    /// Generated files and the directory they go to.
    pub files_dir: Option<PathBuf>,
    pub files: Vec<GeneratedFile>,
    pub steps: Vec<Step>,
    /// Things the user should know (runtimes never run here, network needs, …).
    pub notes: Vec<String>,
}

impl Plan {
    pub(crate) fn step(
        &mut self,
        name: impl Into<String>,
        command: Vec<String>,
        why: impl Into<String>,
    ) {
        self.steps.push(Step {
            name: name.into(),
            command,
            why: why.into(),
            kind: StepKind::Run,
            timeout: Duration::from_secs(120),
        });
    }

    pub(crate) fn last_timeout(&mut self, t: Duration) {
        if let Some(s) = self.steps.last_mut() {
            s.timeout = t;
        }
    }

    pub(crate) fn on_failure(
        &mut self,
        name: impl Into<String>,
        command: Vec<String>,
        why: impl Into<String>,
    ) {
        self.steps.push(Step {
            name: name.into(),
            command,
            why: why.into(),
            kind: StepKind::OnFailure,
            timeout: Duration::from_secs(60),
        });
    }

    /// The plan as a shell-like script: environment, files, then each step with its reason.
    pub fn render(&self) -> String {
        let mut s = format!("# {}\n", self.title);
        for n in &self.notes {
            let _ = writeln!(s, "# note: {n}");
        }
        if !self.env.is_empty() {
            let env: Vec<String> = self
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", shell_quote(v)))
                .collect();
            let _ = writeln!(s, "export {}", env.join(" "));
        }
        if let Some(dir) = &self.files_dir {
            for f in &self.files {
                let _ = writeln!(
                    s,
                    "# writes {} (mode {:o})",
                    dir.join(&f.name).display(),
                    f.mode
                );
            }
        }
        let mut n = 0;
        for st in &self.steps {
            let line = st
                .command
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ");
            match &st.kind {
                StepKind::Run => {
                    n += 1;
                    let _ = write!(s, "\n# {n}. {}: {}\n{line}\n", st.name, st.why);
                }
                StepKind::Probe { timeout, .. } => {
                    n += 1;
                    let _ = write!(
                        s,
                        "\n# {n}. {}: {} (cracin polls it, up to {} s)\n{line}\n",
                        st.name,
                        st.why,
                        timeout.as_secs()
                    );
                }
                StepKind::RunExpectAbsent { absent } => {
                    n += 1;
                    let _ = write!(
                        s,
                        "\n# {n}. {}: {} (fails if the output contains {absent:?})\n{line}\n",
                        st.name, st.why
                    );
                }
                StepKind::OnFailure => {
                    let _ = write!(s, "\n# on failure, {}: {}\n{line}\n", st.name, st.why);
                }
                StepKind::Sample { rounds, .. } => {
                    n += 1;
                    let _ = write!(
                        s,
                        "\n# {n}. {}: {} (cracin sends each URL {rounds} times)\n{line}\n",
                        st.name, st.why
                    );
                }
                StepKind::Uniqueness => {
                    n += 1;
                    let _ = write!(
                        s,
                        "\n# {n}. {}: {} (cracin compares the answers)\n{line}\n",
                        st.name, st.why
                    );
                }
            }
        }
        s
    }

    /// The generated files, each under a `==> NAME <==` header (as `tail` prints several files).
    pub fn render_files(&self) -> String {
        let mut s = String::new();
        for f in &self.files {
            let _ = write!(s, "==> {} <==\n{}\n", f.name, f.content);
        }
        s
    }
}

/// One generated file, relative to the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub name: String,
    pub content: String,
    /// Unix mode (0o755 for scripts).
    pub mode: u32,
}

/// Writes generated files into `dir` (created if needed) with their modes.
pub fn write_files(dir: &Path, files: &[GeneratedFile], force: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if !force {
        if let Some(f) = files.iter().find(|f| dir.join(&f.name).exists()) {
            return Err(Error::usage(
                format!("{} already exists", dir.join(&f.name).display()),
                "pass --force to overwrite the generated files (your edits are lost), or choose another --dir",
            ));
        }
    }
    let mut written = Vec::new();
    for f in files {
        // An absolute name (the seccomp profile) goes where it says.
        let p = dir.join(&f.name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        crate::os::perms::write_nofollow(&p, f.content.as_bytes(), f.mode)?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_files_refuses_to_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let f = vec![GeneratedFile {
            name: "a.sh".into(),
            content: "x".into(),
            mode: 0o755,
        }];
        write_files(d.path(), &f, false).unwrap();
        assert!(matches!(
            write_files(d.path(), &f, false),
            Err(Error::Usage { .. })
        ));
        write_files(d.path(), &f, true).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(d.path().join("a.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
    }
}
