//! Container images that start from a checkpoint: the `cracin build` pipeline as a plan of exact
//! commands for podman or docker and for each runtime (plain CRIU, OpenJDK CRaC, OpenJ9), plus
//! the files it generates (`files`), what each runtime needs from the engine (`runtime`) and the
//! registry-free base image (`base`). A `Plan` is data: `--dry-run` prints it, tests compare it
//! with snapshots, and `execute` runs it step by step through `process::Cmd`, so what is printed
//! is exactly what runs.
//!
//! The pipeline: build the checkpoint image → run it with the runtime's minimal capabilities
//! (inside, the JVM is started, made ready, warmed up and dumped) → commit the stopped container
//! with the restore CMD → run the restore image N times and probe it → tag → remove everything
//! temporary. Measured facts behind each flag are in docs/containers.md.

pub mod base;
pub mod engine;
pub mod files;
pub mod kube;
pub mod portable;
pub mod push;
pub mod runtime;
pub mod seccomp;
pub mod security;
pub mod user;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use engine::{
    Engine, EngineKind, DOCKER_CLIENT, DOCKER_CONFIG_DIR, DOCKER_SOCKET, PODMAN_CONF,
};
pub use files::{FilesSpec, GeneratedFile};
pub use runtime::{Base, CracEngine, Openj9Api, Recipe, Runtime};
pub use user::RunUser;

use crate::error::{Error, Result};
use crate::os::cmd::{shell_quote, Cmd};
use crate::Progress;

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
    fn step(&mut self, name: impl Into<String>, command: Vec<String>, why: impl Into<String>) {
        self.steps.push(Step {
            name: name.into(),
            command,
            why: why.into(),
            kind: StepKind::Run,
            timeout: Duration::from_secs(120),
        });
    }

    fn last_timeout(&mut self, t: Duration) {
        if let Some(s) = self.steps.last_mut() {
            s.timeout = t;
        }
    }

    fn on_failure(
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

/// `--output` of `cracin build`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    OciArchive(PathBuf),
    DockerArchive(PathBuf),
}

impl Output {
    pub fn parse(s: &str) -> Result<Output> {
        if let Some(p) = s.strip_prefix("oci-archive:") {
            Ok(Output::OciArchive(p.into()))
        } else if let Some(p) = s.strip_prefix("docker-archive:") {
            Ok(Output::DockerArchive(p.into()))
        } else {
            Err(Error::usage(
                format!("bad --output `{s}`"),
                "use oci-archive:PATH or docker-archive:PATH",
            ))
        }
    }
}

/// Where the application comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--jar`: cracin generates the Containerfile FROM `base`.
    Jar { jar: PathBuf, base: Base },
    /// `--image`: the user's image (it starts the application; for criu it must hold CRIU).
    Image(String),
}

/// Everything `build_plan` needs; all values explicit so a plan is reproducible.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub engine: Engine,
    pub runtime: Runtime,
    pub source: Source,
    /// The final image name.
    pub tag: String,
    /// Readiness probe inside the container.
    pub ready: Option<String>,
    pub warmup: Vec<String>,
    /// How many restore containers must come up and answer before the image is tagged.
    pub verify: u32,
    /// `--verify-url`: the uniqueness check's requests (paths, or URLs of the application's
    /// port as seen inside the container); empty: no uniqueness check.
    pub verify_urls: Vec<String>,
    pub fallback: bool,
    pub output: Option<Output>,
    /// The application command inside the container (default `java -jar /app/app.jar`).
    pub command: Vec<String>,
    /// Build context directory for generated files.
    pub context_dir: PathBuf,
    /// The cracin binary to copy into criu-runtime images (should be statically linked).
    pub cracin_binary: PathBuf,
    /// Makes container and image names unique.
    pub id: String,
    /// Host port the verification containers publish the application port on.
    pub verify_port: u16,
    /// Yama's ptrace_scope on this host (0 when Yama is absent).
    pub yama_ptrace_scope: u8,
    pub ready_timeout: Duration,
    /// criu runtime: replaces cracin's in-container checkpoint and restore commands (for images
    /// whose own scripts do that work; the end-to-end tests use the fixture's scripts).
    pub entrypoints: Option<Entrypoints>,
    /// The CPU features the checkpoint may need (`--cpu-baseline`).
    pub cpu_baseline: crate::jvm::cpu::CpuBaseline,
    /// Push the verified image to a registry (`--push`).
    pub push: Option<push::PushSpec>,
    /// The CRaC engine and the OpenJ9 checkpoint API (`--crac-engine`, `--openj9-api`).
    pub recipe: Recipe,
    /// The user the image runs as (`--user`; default: an `--image`'s own non-root USER, else
    /// 1001:1001).
    pub user: Option<RunUser>,
    /// Where the generated seccomp profile of restore containers goes (`seccomp`).
    pub seccomp_profile: PathBuf,
}

/// The checkpoint container's CMD and the restore image's CMD, when not cracin's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrypoints {
    pub checkpoint: Vec<String>,
    pub restore: Vec<String>,
}

impl BuildOptions {
    /// The application port inside the container: from the readiness URL, else 8080.
    pub fn app_port(&self) -> u16 {
        self.ready
            .as_deref()
            .and_then(crate::os::net::url_port)
            .unwrap_or(8080)
    }

    /// The user the image runs as.
    pub fn run_user(&self) -> RunUser {
        self.user.clone().unwrap_or_default()
    }

    /// `run` flags of the restore containers.
    pub fn restore_flags(&self) -> Vec<String> {
        if self.runtime == Runtime::Criu {
            security::restore_flags(self.runtime, self.engine.kind, &self.seccomp_profile)
        } else {
            self.runtime
                .restore_flags_for(self.engine.kind, self.recipe)
        }
    }

    pub fn app_cmd(&self) -> Vec<String> {
        if self.command.is_empty() {
            vec!["java".into(), "-jar".into(), runtime::APP_JAR.into()]
        } else {
            self.command.clone()
        }
    }

    pub fn files_spec(&self) -> Option<FilesSpec> {
        let (base, image) = match &self.source {
            Source::Jar { base, .. } => (base.clone(), None),
            // crac/openj9 use the user's image as it is; criu adds a layer with cracin.
            Source::Image(img) if self.runtime == Runtime::Criu => {
                (Runtime::Criu.default_base(), Some(img.clone()))
            }
            Source::Image(_) => return None,
        };
        Some(FilesSpec {
            runtime: self.runtime,
            base,
            app_cmd: self.app_cmd(),
            ready: self.ready.clone(),
            warmup: self.warmup.clone(),
            port: self.app_port(),
            fallback: self.fallback,
            image,
            checkpoint_cmd: self.entrypoints.as_ref().map(|e| e.checkpoint.clone()),
            cpu_baseline: self.cpu_baseline,
            recipe: self.recipe,
            user: self.run_user(),
        })
    }
}

/// The readiness URL as seen from the host through the published port.
fn host_probe(ready: Option<&str>, port: u16) -> String {
    match ready {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            let (scheme, rest) = u.split_once("://").unwrap_or(("http", u));
            let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
            format!("{scheme}://127.0.0.1:{port}{path}")
        }
        _ => format!("tcp://127.0.0.1:{port}"),
    }
}

/// The command an existing image runs: its ENTRYPOINT followed by its CMD, as `ENGINE image
/// inspect` reports them (podman and docker print the same JSON). `cracin build --image` starts
/// exactly this inside the checkpoint container when no command follows `--`.
pub fn image_command(engine: &Engine, image: &str) -> Result<Vec<String>> {
    let out = engine
        .command(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Entrypoint}}|{{json .Config.Cmd}}",
            image,
        ])
        .timeout(Duration::from_secs(60))
        .run().map_err(|e| match e {
        Error::Command { log_tail, .. } => Error::usage(
            format!(
                "cannot read the command of image {image} in {}: {}",
                engine.name(),
                log_tail.lines().last().unwrap_or("").trim()
            ),
            "build or load the image into this engine first, or give the application's command after `--`",
        ),
        other => other,
    })?;
    parse_image_command(&out.stdout).ok_or_else(|| {
        Error::usage(
            format!(
                "image {image} has no ENTRYPOINT or CMD (inspect said {:?})",
                out.stdout.trim()
            ),
            "give the command that starts the JVM after `--`, e.g. `-- java -jar /app/app.jar`",
        )
    })
}

/// `ENTRYPOINT|CMD` as two JSON values (arrays or null) → the whole command line.
fn parse_image_command(s: &str) -> Option<Vec<String>> {
    let (ep, cmd) = s.trim().split_once('|')?;
    let mut v = Vec::new();
    for part in [ep, cmd] {
        let j: serde_json::Value = serde_json::from_str(part.trim()).ok()?;
        if let Some(a) = j.as_array() {
            v.extend(a.iter().filter_map(|x| x.as_str().map(String::from)));
        }
    }
    (!v.is_empty()).then_some(v)
}

/// The whole build as a plan.
pub fn build_plan(o: &BuildOptions) -> Result<Plan> {
    if let Source::Jar { base, .. } = &o.source {
        base.check_runtime(o.runtime)?;
        if o.runtime == Runtime::Crac {
            runtime::crac::check_engine(base, o.recipe.crac_engine)?;
        }
    }
    // Warp checkpoints inside the image build: no checkpoint container, no commit.
    let warp = o.runtime == Runtime::Crac && o.recipe.crac_engine == CracEngine::Warp;
    if warp && matches!(o.source, Source::Image(_)) {
        return Err(Error::usage(
            "--crac-engine warp goes with --jar",
            "Warp checkpoints in a RUN step of a Containerfile cracin generates: give --jar and --base zulu-ubuntu-jdk",
        ));
    }
    let jdk = match &o.source {
        Source::Jar { base, .. } => base.jdk_version(),
        Source::Image(_) => runtime::versions::JdkVersion::UNKNOWN,
    };
    if o.verify == 0 {
        return Err(Error::usage(
            "--verify must be at least 1",
            "an unverified image is not tagged: use --verify 1 or more",
        ));
    }
    // The uniqueness check compares two restores.
    let verify_count = crate::verify::image::build_verify_count(o.verify, &o.verify_urls);
    let e = &o.engine;
    let id = &o.id;
    let ckpt_ctr = format!("cracin-ckpt-{id}");
    let ckpt_img = format!("localhost/cracin-ckpt-{id}:latest");
    let restore_img = format!("localhost/cracin-restore-{id}:latest");
    let mut p = Plan {
        title: format!(
            "cracin build: runtime {}, engine {}, {} -> {}",
            o.runtime.name(),
            e.name(),
            match &o.source {
                Source::Jar { jar, base } => format!("jar {} on {}", jar.display(), base.name()),
                Source::Image(i) => format!("image {i}"),
            },
            o.tag
        ),
        env: e.env.clone(),
        files_dir: None,
        files: Vec::new(),
        steps: Vec::new(),
        notes: Vec::new(),
    };
    if o.runtime != Runtime::Criu {
        p.notes.push(format!(
            "the {} runtime is generated from the seed's recipe and was never run by cracin's tests (no such JDK here); its scripts ran under sh and busybox sh with stand-in java/jcmd",
            o.runtime.name()
        ));
    }
    if o.runtime == Runtime::Crac {
        p.notes.push(format!(
            "CRaC engine {}, JDK {}",
            o.recipe.crac_engine.name(),
            jdk.describe()
        ));
        if let (_, Some(why)) =
            runtime::crac::restore_cmd(jdk, o.recipe.crac_engine, &o.app_cmd(), o.fallback)
        {
            p.notes.push(why);
        }
        if warp && o.fallback {
            p.notes.push("Warp restores under new PIDs, so verification cannot tell a cold start (-XX:+CRaCIgnoreRestoreIfUnavailable) from a restore; it checks that the application answers".into());
        }
    }
    if let Source::Jar {
        base: Base::JdkImage { .. },
        ..
    } = &o.source
    {
        p.notes
            .push("the CRIU builder stage needs network access (apt, deb.debian.org)".into());
    }
    if o.runtime == Runtime::Crac {
        if let Source::Jar { base, .. } = &o.source {
            if !base.has_jcmd() {
                p.notes.push("a JRE has no jcmd: the application must checkpoint itself (org.crac Core.checkpointRestore())".into());
            }
        }
    }
    if verify_count != o.verify {
        p.notes.push(format!(
            "the uniqueness check (--verify-url) compares two restores: --verify {} raised to {verify_count}",
            o.verify
        ));
    }
    if o.runtime == Runtime::Openj9 {
        p.notes.push(o.recipe.openj9_api.note());
    }

    portable::check_build(o.cpu_baseline, o.runtime, &o.source, &mut p.notes)?;

    // 1. The checkpoint image.
    let built = match o.files_spec() {
        Some(spec) => {
            let ctx = o.context_dir.display().to_string();
            p.files_dir = Some(o.context_dir.clone());
            p.files = files::generate(&spec);
            if let Source::Jar { jar, .. } = &o.source {
                p.step(
                    "context-jar",
                    vec![
                        "cp".into(),
                        jar.display().to_string(),
                        format!("{ctx}/app.jar"),
                    ],
                    "put the application jar into the build context",
                );
            }
            if o.runtime == Runtime::Criu {
                p.step(
                    "context-cracin",
                    vec![
                        "cp".into(),
                        o.cracin_binary.display().to_string(),
                        format!("{ctx}/cracin"),
                    ],
                    "cracin checkpoints and restores the JVM from inside the container",
                );
            }
            let file = format!("{ctx}/Containerfile");
            p.step(
                "build",
                e.cmd(&["build", "-f", &file, "-t", &ckpt_img, &ctx]),
                if warp {
                    "build the image; a RUN step starts the app, warms it up and checkpoints it with Warp"
                } else {
                    "build the checkpoint image"
                },
            );
            p.last_timeout(Duration::from_secs(1800) + o.ready_timeout);
            true
        }
        None => false,
    };
    let run_img = if built {
        ckpt_img.clone()
    } else {
        match &o.source {
            Source::Image(i) => i.clone(),
            Source::Jar { .. } => unreachable!("jar sources always build"),
        }
    };

    // Warp: the build already holds the checkpoint; the built image is the restore image.
    let restore_img = if warp { ckpt_img.clone() } else { restore_img };
    if !warp {
        // 2. The checkpoint run: attached, so its exit status is the checkpoint's.
        let mut run = e.cmd(&["run", "--name", &ckpt_ctr]);
        run.extend(security::checkpoint_flags(o.runtime, o.yama_ptrace_scope));
        if o.runtime == Runtime::Crac {
            run.extend(runtime::crac::extra_checkpoint_flags(e.kind));
        }
        run.push(run_img);
        p.step(
            "checkpoint",
            run,
            match o.runtime {
                Runtime::Criu => "start the app, wait until ready, warm up, `criu dump --unprivileged` (the container exits)",
                Runtime::Crac => "start the app; the trigger checkpoints it with jcmd (the container exits)",
                Runtime::Openj9 => "start the app; it checkpoints itself (the container exits)",
            },
        );
        p.last_timeout(o.ready_timeout + Duration::from_secs(600));

        // 3. The restore image.
        let mut commit = e.cmd(&["commit"]);
        let changes = match &o.entrypoints {
            Some(ep) => o.runtime.commit_changes_with(&ep.restore),
            None => o
                .runtime
                .commit_changes(&o.app_cmd(), o.fallback, jdk, o.recipe),
        };
        for c in changes.into_iter().chain(kube::labels(o)) {
            // An existing image keeps its own working directory (its command, started cold by the
            // fallback, may use relative paths; the restored JVM gets its cwd back from CRIU anyway).
            if matches!(o.source, Source::Image(_)) && c.starts_with("WORKDIR ") {
                continue;
            }
            commit.push("--change".into());
            commit.push(c);
        }
        commit.push(ckpt_ctr.clone());
        commit.push(restore_img.clone());
        p.step(
            "commit",
            commit,
            "make the restore image: the stopped container's files plus the restore CMD",
        );
        p.last_timeout(Duration::from_secs(600));
        p.step(
            "remove-checkpoint-container",
            e.cmd(&["rm", &ckpt_ctr]),
            "the checkpoint container is no longer needed",
        );
    }

    // 4. Verification: every restore must come up and answer.
    if security::uses_generated_profile(o.runtime) {
        // The restore containers' seccomp profile, a generated file at its own (absolute) path.
        p.files_dir.get_or_insert_with(|| o.context_dir.clone());
        p.files.push(GeneratedFile {
            name: o.seccomp_profile.display().to_string(),
            content: seccomp::profile(),
            mode: 0o644,
        });
    }
    let port = o.app_port();
    let sample_urls = crate::verify::image::build_sample_urls(&o.verify_urls, port, o.verify_port)?;
    for i in 1..=verify_count {
        let name = format!("cracin-verify-{id}-{i}");
        let mut run = e.cmd(&["run", "-d", "--name", &name]);
        run.extend(o.restore_flags());
        run.push("-p".into());
        run.push(format!("127.0.0.1:{}:{port}", o.verify_port));
        run.push(restore_img.clone());
        p.step(
            format!("verify-{i}-run"),
            run,
            "start a restore container with the production flags",
        );
        p.steps.push(Step {
            name: format!("verify-{i}-ready"),
            command: vec![
                "probe".into(),
                host_probe(o.ready.as_deref(), o.verify_port),
            ],
            why: "the restored application must answer through the published port".into(),
            kind: StepKind::Probe {
                timeout: Duration::from_secs(30),
                alive: e.cmd(&[
                    "inspect",
                    "-f",
                    "{{.State.Running}} {{.State.ExitCode}}",
                    &name,
                ]),
                logs: e.cmd(&["logs", &name]),
            },
            timeout: Duration::from_secs(30),
        });
        // Only for the generated start.sh, which puts the JVM at PID >= 1000; a user's image may
        // rely on CRaC's own PID adjustment (the seed: `exec java` gave PID 129).
        if o.runtime == Runtime::Crac && !warp && matches!(o.source, Source::Jar { .. }) {
            p.step(
                format!("verify-{i}-restored"),
                e.cmd(&["exec", &name, "sh", "-c", &runtime::crac::restored_check()]),
                "a restored JVM keeps its checkpoint-time PID >= 1000; a cold start (fallback) fails the verification",
            );
        }
        if !sample_urls.is_empty() {
            p.steps.push(Step {
                name: format!("verify-{i}-sample"),
                command: std::iter::once("sample".to_string())
                    .chain(sample_urls.iter().cloned())
                    .collect(),
                why: "ask the restored application the uniqueness check's requests".into(),
                kind: StepKind::Sample {
                    names: o.verify_urls.clone(),
                    rounds: crate::verify::DEFAULT_ROUNDS,
                },
                timeout: Duration::from_secs(120),
            });
        }
        p.step(
            format!("verify-{i}-logs"),
            e.cmd(&["logs", &name]),
            "keep the restored application's output as evidence",
        );
        if o.fallback && o.runtime != Runtime::Crac {
            if let Some(s) = p.steps.last_mut() {
                s.kind = StepKind::RunExpectAbsent {
                    absent: FALLBACK_MARKER.into(),
                };
                s.why =
                    "the output is evidence, and a fallback to a cold start fails the verification"
                        .into();
            }
        }
        p.step(
            format!("verify-{i}-stop"),
            e.cmd(&["stop", "-t", "10", &name]),
            "SIGTERM must stop it",
        );
        p.step(
            format!("verify-{i}-rm"),
            e.cmd(&["rm", &name]),
            "remove the verification container",
        );
    }

    if !sample_urls.is_empty() {
        p.steps.push(Step {
            name: "uniqueness".into(),
            command: std::iter::once("compare".to_string())
                .chain(o.verify_urls.iter().cloned())
                .collect(),
            why: "no random-looking value (session ID, token, UUID) may come back in two restores"
                .into(),
            kind: StepKind::Uniqueness,
            timeout: Duration::from_secs(10),
        });
    }

    // 5. Tag, export, clean up.
    p.step(
        "tag",
        e.cmd(&["tag", &restore_img, &o.tag]),
        "the verified image gets its name",
    );
    p.step(
        "untag",
        e.cmd(&["rmi", &restore_img]),
        "drop the temporary name (the image stays under its tag)",
    );
    if built && !warp {
        p.step(
            "remove-checkpoint-image",
            e.cmd(&["rmi", &ckpt_img]),
            "the checkpoint image is no longer needed",
        );
    }
    if let Some(out) = &o.output {
        let step = match (e.kind, out) {
            (EngineKind::Podman, Output::OciArchive(path)) => e.cmd(&[
                "save",
                "--format",
                "oci-archive",
                "-o",
                &path.display().to_string(),
                &o.tag,
            ]),
            (EngineKind::Podman, Output::DockerArchive(path)) => e.cmd(&[
                "save",
                "--format",
                "docker-archive",
                "-o",
                &path.display().to_string(),
                &o.tag,
            ]),
            (EngineKind::Docker, Output::DockerArchive(path)) => {
                e.cmd(&["save", "-o", &path.display().to_string(), &o.tag])
            }
            // Docker >= 25 saves an OCI image layout (oci-layout, index.json, blobs) that is
            // also a docker-archive: skopeo reads it as both. (bookworm's skopeo 1.9 cannot
            // read from Docker 26 directly: "client version 1.22 is too old".)
            (EngineKind::Docker, Output::OciArchive(path)) => {
                e.cmd(&["save", "-o", &path.display().to_string(), &o.tag])
            }
        };
        p.step("export", step, "write the image to an archive");
        p.last_timeout(Duration::from_secs(600));
    }
    if let Some(spec) = &o.push {
        let (steps, notes) = push::push_steps(e, &o.tag, spec);
        p.steps.extend(steps);
        p.notes.extend(notes);
    }
    // One command per object: an engine that does not know one name (a verification that never
    // started) must not keep the others.
    let mut containers = vec![ckpt_ctr.clone()];
    containers.extend((1..=verify_count).map(|i| format!("cracin-verify-{id}-{i}")));
    for c in &containers {
        p.on_failure(
            "remove-container",
            e.cmd(&["rm", "-f", c]),
            "leave no container behind",
        );
    }
    let mut images = vec![restore_img.clone()];
    if built && !warp {
        images.push(ckpt_img.clone());
    }
    for i in &images {
        p.on_failure(
            "remove-image",
            e.cmd(&["rmi", i]),
            "leave no temporary image behind",
        );
    }
    Ok(p)
}

/// A failed engine command as `Error::Engine`, naming the plan step (other errors unchanged).
fn engine_error(s: &Step, e: Error) -> Error {
    match e {
        Error::Command {
            command,
            status,
            log,
            log_tail,
        } if s.command.first().map(String::as_str) != Some("cp") => Error::Engine {
            step: s.name.clone(),
            command,
            status,
            log,
            log_tail,
        },
        other => other,
    }
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
    match &s.kind {
        StepKind::Sample { names, rounds } => {
            samples.push(crate::verify::image::sample_step(
                &s.name,
                names,
                &s.command[1..],
                *rounds,
                log_dir,
            )?);
        }
        StepKind::Uniqueness => {
            let summary = crate::verify::image::uniqueness_step(samples, progress)?;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            progress.done(&s.name, ms, &summary);
            return Ok(());
        }
        StepKind::Probe {
            timeout,
            alive,
            logs,
        } => {
            let url = s.command.get(1).cloned().unwrap_or_default();
            let probe = crate::stage::probe::Probe::parse(&url)?;
            // `inspect` costs tens of milliseconds: ask at most twice a second.
            let mut last_check = Instant::now();
            let dead = || {
                if alive.is_empty() || last_check.elapsed() < Duration::from_millis(500) {
                    return None;
                }
                last_check = Instant::now();
                let st = Step {
                    command: alive.clone(),
                    ..s.clone()
                };
                let out = step_cmd(plan, i, &st, log_dir).ok()?.run_unchecked().ok()?;
                let text = out.stdout.trim().to_string();
                let code = text.strip_prefix("false ")?;
                out.status.success().then(|| format!("exit status {code}"))
            };
            match crate::stage::probe::wait_ready(
                &probe,
                &[],
                *timeout,
                Duration::from_millis(10),
                dead,
            ) {
                Ok(_) => {}
                Err(crate::stage::probe::NotReady::Exited(how)) => {
                    let st = Step {
                        command: logs.clone(),
                        ..s.clone()
                    };
                    let out = step_cmd(plan, i, &st, log_dir)?.run_unchecked()?;
                    let text = format!("{}{}", out.stdout, out.stderr);
                    return Err(Error::Engine {
                        step: s.name.clone(),
                        command: format!("container {}", logs.last().cloned().unwrap_or_default()),
                        status: format!("{how} before {url} answered"),
                        log: out.stdout_path,
                        log_tail: crate::os::cmd::tail_of_text(&text, 15),
                    });
                }
                Err(_) => {
                    return Err(Error::RestoredNotReady {
                        probe: url.clone(),
                        timeout: *timeout,
                        log: log_dir.to_path_buf(),
                        log_tail: String::new(),
                    })
                }
            }
        }
        StepKind::RunExpectAbsent { absent } => {
            let out = step_cmd(plan, i, s, log_dir)?
                .run()
                .map_err(|e| engine_error(s, e))?;
            if out.stdout.contains(absent.as_str()) || out.stderr.contains(absent.as_str()) {
                let text = format!("{}{}", out.stdout, out.stderr);
                // The marker line and the reason lines the restore entrypoint prints under it.
                let line = text
                    .lines()
                    .skip_while(|l| !l.contains(absent.as_str()))
                    .take_while(|l| l.contains(absent.as_str()) || l.starts_with("cracin:   "))
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(Error::Engine {
                    step: s.name.clone(),
                    command: s.command.join(" "),
                    status: format!("output contains {absent:?}"),
                    log: out.stderr_path.clone(),
                    log_tail: line.to_string(),
                });
            }
        }
        _ => {
            step_cmd(plan, i, s, log_dir)?
                .run()
                .map_err(|e| engine_error(s, e))?;
        }
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    progress.done(&s.name, ms, "");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_commands_join_entrypoint_and_cmd() {
        assert_eq!(
            parse_image_command("null|[\"java\",\"-jar\",\"app.jar\"]\n").unwrap(),
            ["java", "-jar", "app.jar"]
        );
        assert_eq!(
            parse_image_command("[\"/entry.sh\"]|[\"--port\",\"8080\"]").unwrap(),
            ["/entry.sh", "--port", "8080"]
        );
        assert_eq!(parse_image_command("null|null"), None);
        assert_eq!(parse_image_command("garbage"), None);
    }

    #[test]
    fn outputs_parse() {
        assert_eq!(
            Output::parse("oci-archive:/tmp/a.tar").unwrap(),
            Output::OciArchive("/tmp/a.tar".into())
        );
        assert!(Output::parse("dir:/tmp").is_err());
    }

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
