//! Container images that start from a checkpoint, for podman or docker and for each runtime
//! (plain CRIU, OpenJDK CRaC, OpenJ9). The options of `cracin build` live here; the rest is one
//! module per concern: which engine and how to call it (`engine`), what a plan is (`plan`), the
//! planner that turns options into a plan (`build`) and the executor that runs it (`execute`),
//! the files a build generates (`files`), one recipe per runtime (`runtime`), the privileges of
//! each container (`security`, `seccomp`, `user`), the registry-free base image (`base`), and
//! what follows a build (`push`, `kube`).
//!
//! The pipeline: build the checkpoint image → run it with the runtime's minimal capabilities
//! (inside, the JVM is started, made ready, warmed up and dumped) → commit the stopped container
//! with the restore CMD → run the restore image N times and probe it → tag → remove everything
//! temporary. Measured facts behind each flag are in docs/containers.md.

pub mod base;
pub mod build;
pub mod engine;
pub mod execute;
pub mod files;
pub mod kube;
pub mod plan;
pub mod portable;
pub mod push;
pub mod runtime;
pub mod seccomp;
pub mod security;
pub mod user;

use std::path::PathBuf;
use std::time::Duration;

pub use build::{build_plan, image_command};
pub use engine::{
    Engine, EngineKind, DOCKER_CLIENT, DOCKER_CONFIG_DIR, DOCKER_SOCKET, PODMAN_CONF,
};
pub use execute::execute;
pub use files::FilesSpec;
pub use plan::{write_files, GeneratedFile, Plan, Step, StepKind, FALLBACK_MARKER};
pub use runtime::{Base, CracEngine, Openj9Api, Recipe, Runtime};
pub use user::RunUser;

use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse() {
        assert_eq!(
            Output::parse("oci-archive:/tmp/a.tar").unwrap(),
            Output::OciArchive("/tmp/a.tar".into())
        );
        assert!(Output::parse("dir:/tmp").is_err());
    }
}
