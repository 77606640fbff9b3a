//! `cracin init`: writes the files a checkpointed container image needs (Containerfile, start
//! scripts, fd_policies.yaml) for the user to own and edit; never overwrites without --force.
use std::path::PathBuf;

use cracin_core::container::{self, files, Base, FilesSpec, Runtime};
use cracin_core::{Error, Result};

/// Write a Containerfile, start scripts and fd_policies.yaml for a checkpointed image.
///
/// The files are yours: edit them, commit them, build them with `cracin build --jar` or by hand.
/// For --runtime criu the Containerfile copies a `cracin` binary from the build context; cracin
/// puts a copy of itself there. Existing files are never overwritten without --force.
///
/// Example: cracin init --runtime crac --base zulu-ubuntu-jre --jar app.jar
#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint runtime: criu, crac or openj9.
    #[arg(long, default_value = "criu", value_name = "RUNTIME")]
    pub runtime: String,

    /// Base: cracin-jdk17|21|25, zulu-ubuntu-jdk, zulu-ubuntu-jre, zulu-alpine-jre, liberica-jdk,
    /// liberica-jdk-musl, liberica-jre, semeru-ubi-jdk, semeru-ubi-jre, or a Debian/Ubuntu JDK
    /// image (default: per runtime).
    #[arg(long, value_name = "BASE")]
    pub base: Option<String>,

    /// CRaC engine for --runtime crac: criu (default) or warp (Azul Zulu from October 2024).
    #[arg(long, default_value = "criu", value_name = "ENGINE")]
    pub crac_engine: String,

    /// How an OpenJ9 application checkpoints itself: crac (org.crac, default) or criusupport.
    #[arg(long, default_value = "crac", value_name = "API")]
    pub openj9_api: String,

    /// Where to write the files.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// The application jar; copied into DIR as app.jar when it is elsewhere.
    #[arg(long, value_name = "PATH")]
    pub jar: Option<PathBuf>,

    /// Readiness probe inside the container (e.g. http://127.0.0.1:8080/health).
    #[arg(long, value_name = "URL")]
    pub ready: Option<String>,

    /// Warm-up URL inside the container (repeatable).
    #[arg(long, value_name = "URL")]
    pub warmup: Vec<String>,

    /// Do not generate a cold-start fallback for a failed restore.
    #[arg(long)]
    pub no_fallback: bool,

    /// The non-root user the criu runtime's image runs as, UID[:GID] (default 1001:1001).
    #[arg(long, value_name = "UID[:GID]")]
    pub user: Option<String>,

    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,

    /// The CPU features the checkpoint may need: host, x86-64-v2, x86-64-v3 or x86-64-v4
    /// (criu: cracin caps the JVM and glibc; crac: -XX:CPUFeatures=generic; openj9:
    /// -XX:+PortableSharedCache; see docs/cpu.md).
    #[arg(long, value_name = "LEVEL", default_value = "host")]
    pub cpu_baseline: String,

    /// The command that starts the application inside the container (default: java -jar
    /// /app/app.jar).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let runtime = Runtime::parse(&a.runtime)?;
    let base = match &a.base {
        Some(b) => Base::parse(b)?,
        None => runtime.default_base(),
    };
    base.check_runtime(runtime)?;
    let recipe = container::Recipe {
        crac_engine: container::CracEngine::parse(&a.crac_engine)?,
        openj9_api: container::Openj9Api::parse(&a.openj9_api)?,
    };
    if runtime == Runtime::Crac {
        container::runtime::crac::check_engine(&base, recipe.crac_engine)?;
    }
    let app_cmd = if a.command.is_empty() {
        vec!["java".into(), "-jar".into(), "/app/app.jar".into()]
    } else {
        a.command.clone()
    };
    let spec = FilesSpec {
        runtime,
        base: base.clone(),
        app_cmd,
        ready: a.ready.clone(),
        warmup: a.warmup.clone(),
        port: a
            .ready
            .as_deref()
            .and_then(cracin_core::os::net::url_port)
            .unwrap_or(8080),
        fallback: !a.no_fallback,
        image: None,
        checkpoint_cmd: None,
        cpu_baseline: cracin_core::jvm::cpu::CpuBaseline::parse(&a.cpu_baseline)?,
        recipe,
        user: a
            .user
            .as_deref()
            .map(container::RunUser::parse)
            .transpose()?
            .unwrap_or_default(),
    };
    let generated = files::generate(&spec);
    let mut written = container::write_files(&a.dir, &generated, a.force)?;
    if let Some(jar) = &a.jar {
        let dest = a.dir.join("app.jar");
        let same = std::fs::canonicalize(jar).ok() == std::fs::canonicalize(&dest).ok();
        if !same {
            if dest.exists() && !a.force {
                return Err(Error::usage(
                    format!("{} already exists", dest.display()),
                    "pass --force to replace it, or choose another --dir",
                ));
            }
            std::fs::copy(jar, &dest).map_err(|e| Error::io(jar, e))?;
            written.push(dest);
        }
    }
    if runtime == Runtime::Criu {
        let dest = a.dir.join("cracin");
        let me = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
        if !dest.exists() || a.force {
            std::fs::copy(&me, &dest).map_err(|e| Error::io(&me, e))?;
            written.push(dest);
        }
    }
    for p in &written {
        println!("wrote {}", p.display());
    }
    if runtime != Runtime::Criu {
        println!("note: the {} runtime's files follow the vendor's recipe; cracin's tests never ran them with such a JDK, only its scripts with stand-in java and jcmd", runtime.name());
    }
    println!(
        "by hand: podman build -f {d}/Containerfile {d}   (docker needs the -f too: it looks for a Dockerfile)",
        d = a.dir.display()
    );
    let mut extra = String::new();
    if runtime == Runtime::Crac && recipe.crac_engine != container::CracEngine::Criu {
        extra.push_str(&format!(" --crac-engine {}", recipe.crac_engine.name()));
    }
    if runtime == Runtime::Openj9 {
        extra.push_str(&format!(" --openj9-api {}", recipe.openj9_api.name()));
    }
    println!(
        "next: cracin build --runtime {}{extra} --jar {}/app.jar --base {} --tag IMAGE --dry-run",
        runtime.name(),
        a.dir.display(),
        base.name()
    );
    if runtime == Runtime::Criu {
        println!(
            "the image runs as {}; its containers need: checkpoint --cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=unconfined; restore the same with seccomp=FILE from `cracin seccomp --out FILE` (docs/privileges.md)",
            spec.user.spec()
        );
    }
    Ok(0)
}
