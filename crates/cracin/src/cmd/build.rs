//! `cracin build`: a container image that starts from a warm checkpoint. It makes the plan
//! (`container::build_plan`), prints it with `--dry-run`, or runs it step by step
//! (`container::execute`) on podman or docker; the image runs cracin's own in-container
//! checkpoint and restore (`cracin checkpoint|restore --in-container`).
use std::path::PathBuf;
use std::time::Duration;

use cracin_core::container::{self, BuildOptions, Output, Runtime, Source};
use cracin_core::{Error, Result};

/// Build a container image whose containers start from a warm checkpoint.
///
/// The pipeline: build the checkpoint image (generated from --jar and --base, or your --image),
/// run it with the runtime's minimal capabilities (inside, the application is started, made
/// ready, warmed up and checkpointed), commit the stopped container with a restore command, run
/// the result --verify times and probe it (with --verify-url, also compare what looks random in
/// the answers of two restores: `cracin verify`'s uniqueness check), tag it, and remove
/// everything temporary; with --push, send it to a registry (see docs/registry.md). A failed
/// step leaves the previous image under the tag untouched.
///
/// criu images run as a non-root user (--user, default 1001:1001, or an --image's own USER);
/// their containers need only CHECKPOINT_RESTORE, no-new-privileges and, for restores, cracin's
/// seccomp profile (--seccomp-profile): the `run it with:` line shows the exact flags
/// (docs/privileges.md).
///
/// Runtimes: criu (any OpenJDK; measured on podman and docker here), crac (Azul Zulu or BellSoft
/// Liberica CRaC; --crac-engine warp for Azul's Warp) and openj9 (IBM Semeru): the last two are
/// generated from the seed's and the vendors' recipes and were never run here (their scripts
/// were, under sh and busybox sh with stand-in java and jcmd).
///
/// Engine: the podman or docker on PATH with its own configuration; cracin adds per command what
/// this host needs (e.g. --ulimit), visible in --dry-run. cracin's private set-up is used only
/// when asked (--engine-config, CONTAINERS_CONF, CRACIN_DOCKER_HOST) or when the system's docker
/// cannot checkpoint (`cracin doctor --engine docker` explains).
///
/// Example: cracin build --engine podman --base cracin-jdk21 --jar app.jar --tag myapp:instant
///          --ready http://127.0.0.1:8080/health --warmup http://127.0.0.1:8080/api --dry-run
#[derive(clap::Args)]
pub struct Args {
    /// Container engine: podman or docker, the one on PATH with its own configuration.
    #[arg(long, default_value = "podman", value_name = "ENGINE")]
    pub engine: String,

    /// The engine's configuration instead of its own: a containers.conf for podman (e.g.
    /// /opt/cracin/containers.conf), a client configuration directory (DOCKER_CONFIG) for docker.
    #[arg(long, value_name = "PATH")]
    pub engine_config: Option<PathBuf>,

    /// CRaC engine for --runtime crac: criu (default) or warp (Azul Zulu from October 2024: no
    /// capabilities, checkpoint inside the image build).
    #[arg(long, default_value = "criu", value_name = "ENGINE")]
    pub crac_engine: String,

    /// How an OpenJ9 application checkpoints itself: crac (org.crac API, default) or criusupport
    /// (OpenJ9's CRIUSupport API); selects the JVM options.
    #[arg(long, default_value = "crac", value_name = "API")]
    pub openj9_api: String,

    /// Checkpoint runtime: criu, crac or openj9.
    #[arg(long, default_value = "criu", value_name = "RUNTIME")]
    pub runtime: String,

    /// Base for --jar: cracin-jdk17|21|25, zulu-ubuntu-jdk, zulu-ubuntu-jre, zulu-alpine-jre,
    /// liberica-jdk, liberica-jdk-musl, liberica-jre, semeru-ubi-jdk, semeru-ubi-jre, or a
    /// Debian/Ubuntu JDK image (CRIU gets built in).
    #[arg(long, value_name = "BASE")]
    pub base: Option<String>,

    /// The application jar (cracin generates the Containerfile).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "image",
        required_unless_present = "image"
    )]
    pub jar: Option<PathBuf>,

    /// Your own image that starts the application (for criu it must hold CRIU >= 4.2; its
    /// ENTRYPOINT + CMD is the application's command unless one follows `--`, and must exec the
    /// JVM rather than keep a shell as its parent).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// Name of the image to produce.
    #[arg(long, value_name = "TAG")]
    pub tag: String,

    /// Readiness probe as seen inside the container (e.g. http://127.0.0.1:8080/health).
    #[arg(long, value_name = "URL")]
    pub ready: Option<String>,

    /// Warm-up URL inside the container (repeatable).
    #[arg(long, value_name = "URL")]
    pub warmup: Vec<String>,

    /// How many restore containers must start and answer before the image is tagged.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = super::ranges::count32::<1, 100>)]
    pub verify: u32,

    /// Uniqueness check before tagging (repeatable): a path or a URL of the application's port
    /// as seen inside the container whose answers carry session IDs or tokens. Two verification
    /// containers (--verify is raised to 2) are each asked every URL twice; a random-looking
    /// value that comes back in both fails the build with exit code 8 and the image is not
    /// tagged. The --warmup URLs are not reused: give the requests that matter (see
    /// docs/verify.md).
    #[arg(long = "verify-url", value_name = "URL")]
    pub verify_urls: Vec<String>,

    /// Do not start the application cold when the checkpoint cannot be restored.
    #[arg(long)]
    pub no_fallback: bool,

    /// Also write the image to oci-archive:PATH or docker-archive:PATH.
    #[arg(long, value_name = "DEST")]
    pub output: Option<String>,

    /// After verification, push the image to this registry reference (REGISTRY/NAME[:TAG]);
    /// see `cracin push`.
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,

    /// With --push: verify the registry's TLS certificate (default: true, false for a registry
    /// on loopback).
    #[arg(long, value_name = "BOOL", requires = "push")]
    pub tls_verify: Option<bool>,

    /// The CPU features the checkpoint may need: host (all of this CPU's), x86-64-v2, x86-64-v3
    /// or x86-64-v4 (criu: the JVM and glibc are capped and the restore checks only those;
    /// crac: -XX:CPUFeatures=generic; openj9: -XX:+PortableSharedCache; see docs/cpu.md).
    #[arg(long, value_name = "LEVEL", default_value = "host")]
    pub cpu_baseline: String,

    /// Print every command the build would run, and the generated files, and stop.
    #[arg(long)]
    pub dry_run: bool,

    /// Build context for the generated files (default: a private temporary directory).
    #[arg(long, value_name = "DIR")]
    pub context: Option<PathBuf>,

    /// The cracin binary copied into criu images (default: this one; a static musl build runs
    /// on any base).
    #[arg(long, value_name = "PATH")]
    pub cracin_binary: Option<PathBuf>,

    /// The non-root user the image runs as, UID[:GID] (criu runtime; default: an --image's own
    /// non-root USER, else 1001:1001).
    #[arg(long, value_name = "UID[:GID]")]
    pub user: Option<String>,

    /// Where to write cracin's seccomp profile for restore containers (criu runtime; default
    /// /var/lib/cracin/seccomp/ for root, ~/.local/share/cracin/seccomp/ for others, named
    /// cracin-restore-HASH.json). `cracin seccomp --out` writes it again.
    #[arg(long, value_name = "PATH")]
    pub seccomp_profile: Option<PathBuf>,

    /// The command that starts the application inside the container (default: java -jar
    /// /app/app.jar with --jar, the image's ENTRYPOINT + CMD with --image).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let runtime = Runtime::parse(&a.runtime)?;
    let recipe = container::Recipe {
        crac_engine: container::CracEngine::parse(&a.crac_engine)?,
        openj9_api: container::Openj9Api::parse(&a.openj9_api)?,
    };
    let choice = container::engine::choose_here(&a.engine, a.engine_config.as_deref())?;
    let engine = choice.engine.clone();
    let source = match (&a.jar, &a.image) {
        (Some(jar), None) => {
            let base = match &a.base {
                Some(b) => container::Base::parse(b)?,
                None => runtime.default_base(),
            };
            Source::Jar {
                jar: jar.clone(),
                base,
            }
        }
        (None, Some(img)) => {
            if a.base.is_some() {
                return Err(Error::usage(
                    "--base goes with --jar, not with --image",
                    "drop --base: your image is the base",
                ));
            }
            Source::Image(img.clone())
        }
        _ => {
            return Err(Error::usage(
                "give --jar or --image",
                "e.g. --jar target/app.jar --base cracin-jdk21",
            ))
        }
    };
    // An existing image is checkpointed running its own command (ENTRYPOINT + CMD) unless one
    // is given after `--`.
    let command = match &source {
        Source::Image(img) if a.command.is_empty() && runtime == Runtime::Criu => {
            container::image_command(&engine, img)?
        }
        _ => a.command.clone(),
    };
    let user = match (&a.user, &source) {
        (Some(u), _) => Some(container::RunUser::parse(u)?),
        // An existing image keeps its own non-root user.
        (None, Source::Image(img)) => container::user::image_user(&engine, img)?,
        (None, Source::Jar { .. }) => None,
    };
    let id = cracin_core::os::id::unique_id();
    let private_context = a.context.is_none();
    // The default context is a fresh mkdtemp directory (0700, random name): it receives copies
    // of the jar and of cracin, which must not go through anyone's symlink.
    let tmp_context = if private_context && !a.dry_run {
        Some(cracin_core::os::tempdir::TempDir::new("cracin-build")?)
    } else {
        None
    };
    let opts = BuildOptions {
        engine,
        runtime,
        source,
        tag: a.tag.clone(),
        ready: a.ready.clone(),
        warmup: a.warmup.clone(),
        verify: a.verify,
        verify_urls: a.verify_urls.clone(),
        fallback: !a.no_fallback,
        output: a.output.as_deref().map(Output::parse).transpose()?,
        command,
        context_dir: a
            .context
            .clone()
            .or_else(|| tmp_context.as_ref().map(|t| t.path().to_path_buf()))
            .unwrap_or_else(|| std::env::temp_dir().join("cracin-build-XXXXXX")),
        cracin_binary: a
            .cracin_binary
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("cracin")),
        id,
        verify_port: cracin_core::os::net::free_port().unwrap_or(18080),
        // 0 when the Yama LSM is absent.
        yama_ptrace_scope: cracin_core::os::sysinfo::ptrace_scope().unwrap_or(0) as u8,
        ready_timeout: Duration::from_secs(120),
        entrypoints: None,
        cpu_baseline: cracin_core::jvm::cpu::CpuBaseline::parse(&a.cpu_baseline)?,
        push: a
            .push
            .as_deref()
            .map(|r| container::push::PushSpec::new(r, a.tls_verify))
            .transpose()?,
        recipe,
        user,
        seccomp_profile: a
            .seccomp_profile
            .clone()
            .unwrap_or_else(container::seccomp::default_path),
    };
    let mut plan = container::build_plan(&opts)?;
    plan.notes.insert(0, format!("engine: {}", choice.why));
    if a.dry_run {
        print!("{}", plan.render());
        if !plan.files.is_empty() {
            println!("\n# ---- generated files ----");
            print!("{}", plan.render_files());
        }
        return Ok(0);
    }
    let log_dir = cracin_core::os::tempdir::mkdtemp(&format!("cracin-build-{}-logs", opts.id))?;
    eprintln!("cracin build: logs in {}", log_dir.display());
    let result = container::execute(&plan, &log_dir, &crate::render::Steps::new(false));
    // The private context holds a copy of the jar and of cracin itself: tens of MB per build.
    drop(tmp_context);
    result?;
    let restores = cracin_core::verify::image::build_verify_count(a.verify, &a.verify_urls);
    if a.verify_urls.is_empty() {
        println!("built {} ({restores} verified restores)", a.tag);
    } else {
        println!(
            "built {} ({restores} verified restores, uniqueness check passed)",
            a.tag
        );
    }
    if let Some(p) = &opts.push {
        println!("pushed to {}", p.dest);
    }
    let env: String = opts
        .engine
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v} "))
        .collect();
    println!(
        // engine.cmd(["run"]) already ends in `run` and this host's run options.
        "run it with: {env}{} -p {port}:{port} {} {}",
        opts.engine.cmd(&["run"]).join(" "),
        opts.restore_flags().join(" "),
        a.tag,
        port = opts.app_port()
    );
    Ok(0)
}
