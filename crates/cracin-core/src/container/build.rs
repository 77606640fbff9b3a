//! The planner of `cracin build`: `BuildOptions` in, a `Plan` out, nothing run. The plan is the
//! pipeline as named steps: check the options, build the checkpoint image, run it to take the
//! checkpoint, commit the restore image, verify it with restore containers, then tag, export,
//! push, and say what to remove when a step fails. What each runtime needs comes from `runtime`,
//! the privileges from `security`.

use std::time::Duration;

use super::plan::{Plan, Step, StepKind, FALLBACK_MARKER};
use super::runtime::versions::JdkVersion;
use super::{
    files, kube, push, runtime, seccomp, security, BuildOptions, Engine, EngineKind, FilesSpec,
    GeneratedFile, Output, RunUser, Runtime, Source,
};
use crate::error::{Error, Result};
use crate::jvm::cpu::CpuBaseline;

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

/// The names a build gives what it creates, and the facts its steps share.
struct Build<'a> {
    o: &'a BuildOptions,
    e: &'a Engine,
    /// Warp checkpoints inside the image build: no checkpoint container, no commit.
    warp: bool,
    jdk: JdkVersion,
    /// The uniqueness check compares two restores.
    verify_count: u32,
    ckpt_ctr: String,
    ckpt_img: String,
    /// The image verified and tagged (Warp: the built image itself).
    restore_img: String,
}

impl<'a> Build<'a> {
    fn new(o: &'a BuildOptions) -> Build<'a> {
        let id = &o.id;
        let warp = o.runtime.checkpoints_in_build(o.recipe);
        let ckpt_img = format!("localhost/cracin-ckpt-{id}:latest");
        Build {
            o,
            e: &o.engine,
            warp,
            jdk: match &o.source {
                Source::Jar { base, .. } => base.jdk_version(),
                Source::Image(_) => JdkVersion::UNKNOWN,
            },
            verify_count: crate::verify::image::build_verify_count(o.verify, &o.verify_urls),
            ckpt_ctr: format!("cracin-ckpt-{id}"),
            restore_img: if warp {
                ckpt_img.clone()
            } else {
                format!("localhost/cracin-restore-{id}:latest")
            },
            ckpt_img,
        }
    }

    fn verify_name(&self, i: u32) -> String {
        format!("cracin-verify-{}-{i}", self.o.id)
    }
}

/// The whole build as a plan.
pub fn build_plan(o: &BuildOptions) -> Result<Plan> {
    check_options(o)?;
    let b = Build::new(o);
    let mut p = empty_plan(&b);
    add_notes(&b, &mut p);
    check_cpu_baseline(o.cpu_baseline, o.runtime, &o.source, &mut p.notes)?;
    let built = add_image_build(&b, &mut p);
    if !b.warp {
        add_checkpoint(&b, &mut p, built);
        add_commit(&b, &mut p);
    }
    add_verification(&b, &mut p)?;
    add_tag_and_export(&b, &mut p, built);
    add_cleanup_on_failure(&b, &mut p, built);
    Ok(p)
}

/// Refuses options no plan can come from.
fn check_options(o: &BuildOptions) -> Result<()> {
    if let Source::Jar { base, .. } = &o.source {
        o.runtime.check_base(base, o.recipe)?;
    }
    if o.runtime.checkpoints_in_build(o.recipe) && matches!(o.source, Source::Image(_)) {
        return Err(Error::usage(
            "--crac-engine warp goes with --jar",
            "Warp checkpoints in a RUN step of a Containerfile cracin generates: give --jar and --base zulu-ubuntu-jdk",
        ));
    }
    if o.verify == 0 {
        return Err(Error::usage(
            "--verify must be at least 1",
            "an unverified image is not tagged: use --verify 1 or more",
        ));
    }
    Ok(())
}

/// A build's baseline: refused where cracin generates nothing to apply it (an existing image
/// with the crac or openj9 runtime), else a plan note saying what it does.
fn check_cpu_baseline(
    b: CpuBaseline,
    rt: Runtime,
    source: &Source,
    notes: &mut Vec<String>,
) -> Result<()> {
    if b == CpuBaseline::Host {
        return Ok(());
    }
    if matches!(source, Source::Image(_)) && rt != Runtime::Criu {
        return Err(Error::usage(
            format!(
                "--cpu-baseline cannot be applied to an existing image with the {} runtime: cracin generates none of its files",
                rt.name()
            ),
            rt.cpu_baseline_image_hint(),
        ));
    }
    notes.push(rt.cpu_baseline_note(b));
    Ok(())
}

fn empty_plan(b: &Build) -> Plan {
    let o = b.o;
    Plan {
        title: format!(
            "cracin build: runtime {}, engine {}, {} -> {}",
            o.runtime.name(),
            b.e.name(),
            match &o.source {
                Source::Jar { jar, base } => format!("jar {} on {}", jar.display(), base.name()),
                Source::Image(i) => format!("image {i}"),
            },
            o.tag
        ),
        env: b.e.env.clone(),
        files_dir: None,
        files: Vec::new(),
        steps: Vec::new(),
        notes: Vec::new(),
    }
}

/// What the user should know before the steps: the recipe's notes, then the verification's.
fn add_notes(b: &Build, p: &mut Plan) {
    let o = b.o;
    let base = match &o.source {
        Source::Jar { base, .. } => Some(base),
        Source::Image(_) => None,
    };
    p.notes.extend(
        o.runtime
            .plan_notes(base, b.jdk, o.recipe, &o.app_cmd(), o.fallback),
    );
    if b.verify_count != o.verify {
        p.notes.push(format!(
            "the uniqueness check (--verify-url) compares two restores: --verify {} raised to {}",
            o.verify, b.verify_count
        ));
    }
    p.notes.extend(o.runtime.application_note(o.recipe));
}

/// Step 1, the checkpoint image, built from the generated files (an `--image` of the crac or
/// openj9 runtime is used as it is). Returns whether an image is built.
fn add_image_build(b: &Build, p: &mut Plan) -> bool {
    let o = b.o;
    let Some(spec) = o.files_spec() else {
        return false;
    };
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
    if o.runtime.cracin_in_image() {
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
    // The build's own label makes its checkpoint image its own: reproducible layers would
    // otherwise give two builds of the same application one image ID, and one build's removal
    // of its checkpoint image would then hit the other's running checkpoint container.
    let label = format!("cracin.build={}", o.id);
    // --no-cache unless CRIU is compiled in a builder stage: then no step reuses another build's
    // cached intermediate image. A concurrent build of a similar application that removes its
    // checkpoint image also removes its untagged parents, and a build standing on one of them
    // failed with "image not known" (seen in CI: two podman builds of the counter at once).
    // The usual steps (copy the jar and cracin, a mkdir, a setcap) take a second uncached; the
    // builder stage takes minutes, so it keeps the cache.
    let mut args = vec!["build"];
    if !has_builder_stage(&p.files) {
        args.push("--no-cache");
    }
    args.extend(["-f", &file, "--label", &label, "-t", &b.ckpt_img, &ctx]);
    p.step(
        "build",
        b.e.cmd(&args),
        if b.warp {
            "build the image; a RUN step starts the app, warms it up and checkpoints it with Warp"
        } else {
            "build the checkpoint image"
        },
    );
    p.last_timeout(Duration::from_secs(1800) + o.ready_timeout);
    true
}

/// Whether the generated Containerfile has a builder stage (`FROM ... AS NAME`).
fn has_builder_stage(files: &[crate::container::plan::GeneratedFile]) -> bool {
    files.iter().filter(|f| f.name == "Containerfile").any(|f| {
        f.content
            .lines()
            .any(|l| l.starts_with("FROM ") && l.to_ascii_uppercase().contains(" AS "))
    })
}

/// Step 2, the checkpoint run: attached, so its exit status is the checkpoint's.
fn add_checkpoint(b: &Build, p: &mut Plan, built: bool) {
    let o = b.o;
    let run_img = if built {
        b.ckpt_img.clone()
    } else {
        match &o.source {
            Source::Image(i) => i.clone(),
            Source::Jar { .. } => unreachable!("jar sources always build"),
        }
    };
    let mut run = b.e.cmd(&["run", "--name", &b.ckpt_ctr]);
    run.extend(security::checkpoint_flags(o.runtime, o.yama_ptrace_scope));
    run.extend(o.runtime.extra_checkpoint_flags(b.e.kind));
    run.push(run_img);
    p.step("checkpoint", run, o.runtime.checkpoint_why());
    p.last_timeout(o.ready_timeout + Duration::from_secs(600));
}

/// Step 3, the restore image: the stopped checkpoint container committed with the restore CMD.
fn add_commit(b: &Build, p: &mut Plan) {
    let o = b.o;
    let mut commit = b.e.cmd(&["commit"]);
    let changes = match &o.entrypoints {
        Some(ep) => o.runtime.commit_changes_with(&ep.restore),
        None => o
            .runtime
            .commit_changes(&o.app_cmd(), o.fallback, b.jdk, o.recipe),
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
    commit.push(b.ckpt_ctr.clone());
    commit.push(b.restore_img.clone());
    p.step(
        "commit",
        commit,
        "make the restore image: the stopped container's files plus the restore CMD",
    );
    p.last_timeout(Duration::from_secs(600));
    p.step(
        "remove-checkpoint-container",
        b.e.cmd(&["rm", &b.ckpt_ctr]),
        "the checkpoint container is no longer needed",
    );
}

/// Step 4, verification: every restore must come up and answer, with the production flags.
fn add_verification(b: &Build, p: &mut Plan) -> Result<()> {
    let o = b.o;
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
    for i in 1..=b.verify_count {
        add_one_verification(b, p, i, &sample_urls);
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
    Ok(())
}

/// The steps of the `i`th verification container: run, ready, (restored), (sample), logs, stop,
/// rm.
fn add_one_verification(b: &Build, p: &mut Plan, i: u32, sample_urls: &[String]) {
    let (o, e) = (b.o, b.e);
    let port = o.app_port();
    let name = b.verify_name(i);
    let mut run = e.cmd(&["run", "-d", "--name", &name]);
    run.extend(o.restore_flags());
    run.push("-p".into());
    run.push(format!("127.0.0.1:{}:{port}", o.verify_port));
    run.push(b.restore_img.clone());
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
    let from_jar = matches!(o.source, Source::Jar { .. });
    if let Some(check) = o.runtime.restored_check(o.recipe, from_jar) {
        p.step(
            format!("verify-{i}-restored"),
            e.cmd(&["exec", &name, "sh", "-c", &check]),
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
    if o.fallback && o.runtime.fallback_in_logs() {
        if let Some(s) = p.steps.last_mut() {
            s.kind = StepKind::RunExpectAbsent {
                absent: FALLBACK_MARKER.into(),
            };
            s.why = "the output is evidence, and a fallback to a cold start fails the verification"
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

/// Step 5, tag (only now: a failed build never replaces a good image), export, push.
fn add_tag_and_export(b: &Build, p: &mut Plan, built: bool) {
    let (o, e) = (b.o, b.e);
    p.step(
        "tag",
        e.cmd(&["tag", &b.restore_img, &o.tag]),
        "the verified image gets its name",
    );
    p.step(
        "untag",
        e.cmd(&["rmi", &b.restore_img]),
        "drop the temporary name (the image stays under its tag)",
    );
    if built && !b.warp {
        p.step(
            "remove-checkpoint-image",
            e.cmd(&["rmi", &b.ckpt_img]),
            "the checkpoint image is no longer needed",
        );
    }
    if let Some(out) = &o.output {
        p.step(
            "export",
            export_cmd(e, out, &o.tag),
            "write the image to an archive",
        );
        p.last_timeout(Duration::from_secs(600));
    }
    if let Some(spec) = &o.push {
        let (steps, notes) = push::push_steps(e, &o.tag, spec);
        p.steps.extend(steps);
        p.notes.extend(notes);
    }
}

/// The engine's `save` for `--output`.
fn export_cmd(e: &Engine, out: &Output, tag: &str) -> Vec<String> {
    match (e.kind, out) {
        (EngineKind::Podman, Output::OciArchive(path)) => e.cmd(&[
            "save",
            "--format",
            "oci-archive",
            "-o",
            &path.display().to_string(),
            tag,
        ]),
        (EngineKind::Podman, Output::DockerArchive(path)) => e.cmd(&[
            "save",
            "--format",
            "docker-archive",
            "-o",
            &path.display().to_string(),
            tag,
        ]),
        (EngineKind::Docker, Output::DockerArchive(path)) => {
            e.cmd(&["save", "-o", &path.display().to_string(), tag])
        }
        // Docker >= 25 saves an OCI image layout (oci-layout, index.json, blobs) that is
        // also a docker-archive: skopeo reads it as both. (bookworm's skopeo 1.9 cannot
        // read from Docker 26 directly: "client version 1.22 is too old".)
        (EngineKind::Docker, Output::OciArchive(path)) => {
            e.cmd(&["save", "-o", &path.display().to_string(), tag])
        }
    }
}

/// What a failed step leaves to remove: every container and temporary image the plan makes.
fn add_cleanup_on_failure(b: &Build, p: &mut Plan, built: bool) {
    let e = b.e;
    // One command per object: an engine that does not know one name (a verification that never
    // started) must not keep the others.
    let mut containers = vec![b.ckpt_ctr.clone()];
    containers.extend((1..=b.verify_count).map(|i| b.verify_name(i)));
    for c in &containers {
        p.on_failure(
            "remove-container",
            e.cmd(&["rm", "-f", c]),
            "leave no container behind",
        );
    }
    let mut images = vec![b.restore_img.clone()];
    if built && !b.warp {
        images.push(b.ckpt_img.clone());
    }
    for i in &images {
        p.on_failure(
            "remove-image",
            e.cmd(&["rmi", i]),
            "leave no temporary image behind",
        );
    }
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
}
