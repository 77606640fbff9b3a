//! The three checkpoint runtimes a container image can use, one file each: plain CRIU (`criu`),
//! OpenJDK CRaC (`crac`) and OpenJ9 (`openj9`). Each file holds its runtime's whole recipe: the
//! Containerfile and scripts, the flags of the checkpoint and restore containers, the checkpoint
//! and restore commands and the plan's notes. This module holds what they share (the paths inside
//! every image, the bases, `Recipe`) and `Runtime`, whose methods are the only place that
//! chooses between the three, so adding a runtime means one file and one arm per method. The
//! plain-CRIU values were measured (docs/containers.md); the CRaC and OpenJ9 values are the
//! seed's and the vendors' and were never run by cracin's tests (no such JDK can be had without
//! a registry). Their shell scripts are in `scripts` (run for real with stand-ins by
//! tests/container_scripts.rs), and which option exists in which JDK build in `versions`.

pub mod crac;
pub mod criu;
pub mod openj9;
pub mod scripts;
pub mod versions;

pub use crac::CracEngine;
pub use criu::checkpoint_cmd as criu_checkpoint_cmd;
pub use openj9::Openj9Api;
use versions::{JdkVersion, Vendor};

use super::engine::EngineKind;
use super::plan::GeneratedFile;
use crate::error::{Error, Result};

/// The choices inside a runtime: the CRaC engine and the OpenJ9 checkpoint API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recipe {
    pub crac_engine: CracEngine,
    pub openj9_api: Openj9Api,
}

/// Where the checkpoint lives inside every image cracin builds.
pub const CHECKPOINT_DIR: &str = "/app/checkpoint";
/// Where the application jar goes in `--jar` mode.
pub const APP_JAR: &str = "/app/app.jar";
/// Where the cracin binary goes in images of the plain-CRIU runtime.
pub const CRACIN_IN_IMAGE: &str = "/usr/local/bin/cracin";
/// Where the JVM's PIDs start at checkpoint time, so that they are free at restore time in a
/// fresh container (where only PID 1 and CRIU's few helpers exist): the same floor the
/// in-container cracin launches the JVM above.
pub const MIN_PID: u32 = crate::jvm::launch::CONTAINER_MIN_PID;

/// What the generated files depend on.
#[derive(Debug, Clone)]
pub struct FilesSpec {
    pub runtime: Runtime,
    pub base: Base,
    /// The application command inside the container (default `java -jar /app/app.jar`).
    pub app_cmd: Vec<String>,
    /// Readiness probe inside the container (e.g. http://127.0.0.1:8080/health).
    pub ready: Option<String>,
    /// Warm-up URLs inside the container.
    pub warmup: Vec<String>,
    /// The port the application listens on (EXPOSE).
    pub port: u16,
    /// Start cold when the checkpoint cannot be restored.
    pub fallback: bool,
    /// Build FROM this image instead of a base (the user's `--image`), adding only what cracin needs.
    pub image: Option<String>,
    /// criu runtime: the checkpoint container's CMD instead of `cracin checkpoint --in-container`
    /// (an image whose own scripts do the in-container work; the end-to-end tests use this).
    pub checkpoint_cmd: Option<Vec<String>>,
    /// The CPU features the checkpoint may need (`--cpu-baseline`, see `portable`).
    pub cpu_baseline: crate::jvm::cpu::CpuBaseline,
    /// The CRaC engine and the OpenJ9 checkpoint API.
    pub recipe: Recipe,
    /// The non-root user the criu runtime's image runs as (`container::user`).
    pub user: crate::container::user::RunUser,
}

/// A generated file.
pub(crate) fn file(name: &str, content: String, mode: u32) -> GeneratedFile {
    GeneratedFile {
        name: name.into(),
        content,
        mode,
    }
}

/// The seed's file descriptor policies (OSGi keeps bundle jars open; CRaC refuses open files).
pub const FD_POLICIES: &str = "type: FILE
path: **/*.jar
action: reopen
warn: false
---
type: FILE
path: **/bundleFile
action: reopen
warn: false
";

/// How the JVM is checkpointed and restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Any OpenJDK; cracin runs `criu dump --unprivileged` from inside the container.
    Criu,
    /// OpenJDK CRaC (Azul Zulu builds): `-XX:CRaCCheckpointTo`, `jcmd … JDK.checkpoint`,
    /// `-XX:CRaCRestoreFrom`.
    Crac,
    /// OpenJ9 CRIU support (IBM Semeru): `-XX:+EnableCRIUSupport`, the application checkpoints
    /// itself, `criu restore --unprivileged`.
    Openj9,
}

impl Runtime {
    pub fn parse(s: &str) -> Result<Runtime> {
        match s {
            "criu" => Ok(Runtime::Criu),
            "crac" => Ok(Runtime::Crac),
            "openj9" => Ok(Runtime::Openj9),
            _ => Err(Error::usage(
                format!("unknown runtime `{s}`"),
                "use --runtime criu (any OpenJDK), crac (Azul Zulu CRaC) or openj9 (IBM Semeru)",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Runtime::Criu => "criu",
            Runtime::Crac => "crac",
            Runtime::Openj9 => "openj9",
        }
    }

    /// The base used when `--base` is not given.
    pub fn default_base(self) -> Base {
        match self {
            Runtime::Criu => Base::CracinDebian { jdk: 21 },
            Runtime::Crac => Base::ZuluUbuntuJdk,
            Runtime::Openj9 => Base::SemeruUbiJre,
        }
    }

    /// `run` flags of the container that takes the checkpoint, as each recipe gives them (images
    /// that run as root). Plans take them through `security::checkpoint_flags`, which replaces
    /// the plain-CRIU set with the non-root least-privilege one (docs/privileges.md).
    pub fn checkpoint_flags(self, yama_ptrace_scope: u8) -> Vec<String> {
        let v: Vec<&str> = match self {
            Runtime::Criu => criu::checkpoint_flags(yama_ptrace_scope),
            Runtime::Crac => crac::CHECKPOINT_FLAGS.to_vec(),
            Runtime::Openj9 => openj9::CHECKPOINT_FLAGS.to_vec(),
        };
        v.into_iter().map(String::from).collect()
    }

    /// `run` flags the checkpoint container needs on this engine besides its privileges.
    pub fn extra_checkpoint_flags(self, engine: EngineKind) -> Vec<String> {
        match self {
            Runtime::Crac => crac::extra_checkpoint_flags(engine),
            Runtime::Criu | Runtime::Openj9 => vec![],
        }
    }

    /// `run` flags every container of the restore image needs (verification and production).
    /// Plans take them through `security::restore_flags`, which replaces the plain-CRIU set
    /// (images that ran as root) with `--cap-drop=ALL` and cracin's seccomp profile.
    pub fn restore_flags(self, engine: EngineKind) -> Vec<String> {
        match self {
            Runtime::Criu => criu::restore_flags(engine),
            Runtime::Crac => crac::restore_flags(),
            Runtime::Openj9 => openj9::restore_flags(),
        }
    }

    /// `restore_flags` for a recipe: Warp restores need no capability at all ("Engine which
    /// doesn't require any additional capabilities, neither for checkpoint nor for restore",
    /// https://docs.azul.com/core/crac/crac-vm-options).
    pub fn restore_flags_for(self, engine: EngineKind, recipe: Recipe) -> Vec<String> {
        if self == Runtime::Crac && recipe.crac_engine == CracEngine::Warp {
            return vec![];
        }
        self.restore_flags(engine)
    }

    /// The restore image's CMD (as an exec-form JSON array's elements): `criu::restore_cmd`,
    /// `crac::restore_cmd` (the fallback flag only for JDK builds that have it),
    /// `openj9::restore_cmd`.
    pub fn restore_cmd(
        self,
        app_cmd: &[String],
        fallback: bool,
        jdk: JdkVersion,
        recipe: Recipe,
    ) -> Vec<String> {
        match self {
            Runtime::Criu => criu::restore_cmd(app_cmd, fallback),
            Runtime::Crac => crac::restore_cmd(jdk, recipe.crac_engine, app_cmd, fallback).0,
            Runtime::Openj9 => openj9::restore_cmd(fallback),
        }
    }

    /// The `--change` values of `commit`: the restore CMD, no ENTRYPOINT (a base's entrypoint
    /// would wrap the restore), SIGTERM to stop, /app as working directory.
    pub fn commit_changes(
        self,
        app_cmd: &[String],
        fallback: bool,
        jdk: JdkVersion,
        recipe: Recipe,
    ) -> Vec<String> {
        self.commit_changes_with(&self.restore_cmd(app_cmd, fallback, jdk, recipe))
    }

    /// `commit_changes` with a given restore CMD.
    pub fn commit_changes_with(self, restore_cmd: &[String]) -> Vec<String> {
        vec![
            format!("CMD {}", json_array(restore_cmd)),
            "ENTRYPOINT []".into(),
            "STOPSIGNAL SIGTERM".into(),
            "WORKDIR /app".into(),
        ]
    }

    /// Refuses a `--base` the runtime cannot use (or whose JDK lacks the chosen CRaC engine).
    pub fn check_base(self, base: &Base, recipe: Recipe) -> Result<()> {
        base.check_runtime(self)?;
        match self {
            Runtime::Crac => crac::check_engine(base, recipe.crac_engine),
            Runtime::Criu | Runtime::Openj9 => Ok(()),
        }
    }

    /// Whether the checkpoint is taken while the image is built (Azul's Warp): then there is no
    /// checkpoint container and no commit.
    pub fn checkpoints_in_build(self, recipe: Recipe) -> bool {
        self == Runtime::Crac && recipe.crac_engine == CracEngine::Warp
    }

    /// Whether the cracin binary goes into the image (it checkpoints and restores from inside).
    pub fn cracin_in_image(self) -> bool {
        self == Runtime::Criu
    }

    /// What the checkpoint step of a plan does.
    pub fn checkpoint_why(self) -> &'static str {
        match self {
            Runtime::Criu => criu::CHECKPOINT_WHY,
            Runtime::Crac => crac::CHECKPOINT_WHY,
            Runtime::Openj9 => openj9::CHECKPOINT_WHY,
        }
    }

    /// The plan's notes on the recipe: what was never run, and what the chosen base and JDK
    /// build can and cannot do. `base` is the `--base` of a `--jar` build.
    pub fn plan_notes(
        self,
        base: Option<&Base>,
        jdk: JdkVersion,
        recipe: Recipe,
        app_cmd: &[String],
        fallback: bool,
    ) -> Vec<String> {
        let never_run = format!(
            "the {} runtime's files follow the vendor's recipe and were never run with such a JDK by cracin's tests; its scripts ran under sh and busybox sh with stand-in java/jcmd",
            self.name()
        );
        match self {
            Runtime::Criu => criu::plan_notes(base),
            Runtime::Crac => std::iter::once(never_run)
                .chain(crac::plan_notes(
                    base,
                    jdk,
                    recipe.crac_engine,
                    app_cmd,
                    fallback,
                ))
                .collect(),
            Runtime::Openj9 => vec![never_run],
        }
    }

    /// What the application itself must do, for the plan's notes (OpenJ9 cannot be checkpointed
    /// from outside).
    pub fn application_note(self, recipe: Recipe) -> Option<String> {
        match self {
            Runtime::Openj9 => Some(recipe.openj9_api.note()),
            Runtime::Criu | Runtime::Crac => None,
        }
    }

    /// A shell command each verification container runs (`exec … sh -c`) that fails when the
    /// container started cold instead of restoring, where the logs cannot tell (CRaC's fallback
    /// prints nothing). Only for the generated start.sh (`from_jar`), which puts the JVM at
    /// PID >= `MIN_PID`; Warp restores under new PIDs.
    pub fn restored_check(self, recipe: Recipe, from_jar: bool) -> Option<String> {
        (self == Runtime::Crac && recipe.crac_engine != CracEngine::Warp && from_jar)
            .then(crac::restored_check)
    }

    /// Whether a restore that fell back to a cold start says so in the container's output
    /// (`FALLBACK_MARKER`: cracin's in-container restore and OpenJ9's restore.sh do).
    pub fn fallback_in_logs(self) -> bool {
        match self {
            Runtime::Criu | Runtime::Openj9 => true,
            Runtime::Crac => false,
        }
    }

    /// The Containerfile of the checkpoint image after cracin's header.
    pub fn containerfile(self, s: &FilesSpec, f: &mut String) {
        match self {
            Runtime::Criu => criu::containerfile(s, f),
            Runtime::Crac => crac::containerfile(s, f),
            Runtime::Openj9 => openj9::containerfile(s, f),
        }
    }

    /// The files of the build context besides the Containerfile.
    pub fn files(self, s: &FilesSpec) -> Vec<GeneratedFile> {
        match self {
            Runtime::Criu => criu::files(s),
            Runtime::Crac => crac::files(s),
            Runtime::Openj9 => openj9::files(s),
        }
    }

    /// The capabilities a restore container needs, as Kubernetes names them (all others dropped).
    pub fn restore_capabilities(self) -> &'static [&'static str] {
        match self {
            Runtime::Criu => criu::RESTORE_CAPABILITIES,
            Runtime::Crac => crac::RESTORE_CAPABILITIES,
            Runtime::Openj9 => openj9::RESTORE_CAPABILITIES,
        }
    }

    /// The `seccompProfile` lines of a Kubernetes pod (`profile`: cracin's generated profile's
    /// file name).
    pub fn kube_seccomp(self, profile: &str) -> String {
        match self {
            Runtime::Criu => criu::kube_seccomp(profile),
            Runtime::Crac => crac::KUBE_SECCOMP.to_string(),
            Runtime::Openj9 => openj9::KUBE_SECCOMP.to_string(),
        }
    }

    /// A restore container's `allowPrivilegeEscalation`, and why.
    pub fn kube_privilege_escalation(self) -> (&'static str, &'static str) {
        match self {
            Runtime::Criu => criu::KUBE_ESCALATION,
            Runtime::Crac => crac::KUBE_ESCALATION,
            Runtime::Openj9 => openj9::KUBE_ESCALATION,
        }
    }

    /// An image's restore command without its cold-start fallback; `None` where the fallback
    /// cannot be taken out of the command.
    pub fn without_fallback(self, restore_cmd: &[String]) -> Option<Vec<String>> {
        match self {
            Runtime::Criu => Some(criu::without_fallback(restore_cmd)),
            Runtime::Crac | Runtime::Openj9 => None,
        }
    }

    /// The plan's note on what `--cpu-baseline` (not `host`) does with this runtime.
    pub fn cpu_baseline_note(self, b: crate::jvm::cpu::CpuBaseline) -> String {
        match self {
            Runtime::Criu => criu::cpu_baseline_note(b),
            Runtime::Crac => crac::cpu_baseline_note(b),
            Runtime::Openj9 => openj9::cpu_baseline_note(b),
        }
    }

    /// What to do instead of `--cpu-baseline` with an existing image, whose files cracin does
    /// not generate (never asked for plain CRIU: cracin caps the JVM of any image itself).
    pub fn cpu_baseline_image_hint(self) -> &'static str {
        match self {
            Runtime::Criu => "",
            Runtime::Crac => crac::CPU_BASELINE_IMAGE_HINT,
            Runtime::Openj9 => openj9::CPU_BASELINE_IMAGE_HINT,
        }
    }

    /// The JVM option `cracin doctor` asks the JDK to accept, and what a JDK that accepts it
    /// is; `None` where any OpenJDK will do (plain CRIU).
    pub fn jdk_probe(self) -> Option<(&'static str, &'static str)> {
        match self {
            Runtime::Criu => None,
            Runtime::Crac => Some(crac::JDK_PROBE),
            Runtime::Openj9 => Some(openj9::JDK_PROBE),
        }
    }
}

/// A JSON array of strings, as Containerfile exec forms and `--change 'CMD […]'` want it.
pub fn json_array(items: &[String]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", parts.join(", "))
}

/// What the image is built `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `localhost/cracin-base:jdkN`, made by `cracin base` (Debian, OpenJDK JRE, CRIU 4.2.1).
    CracinDebian { jdk: u32 },
    /// Any Debian/Ubuntu-based JDK image; CRIU 4.2.1 is built in a builder stage.
    JdkImage { image: String },
    /// Azul Zulu 21 JDK with CRaC on Ubuntu (the seed's `azul/zulu-openjdk:21-jdk-crac-latest`).
    ZuluUbuntuJdk,
    /// Ubuntu 22.04 plus the Zulu 21 CRaC JRE tarball.
    ZuluUbuntuJre,
    /// Alpine 3.20 plus the Zulu 21 CRaC JRE tarball for musl.
    ZuluAlpineJre,
    /// BellSoft Liberica JDK 21 with CRaC on Alpaquita (glibc).
    LibericaJdk,
    /// BellSoft Liberica JDK 21 with CRaC on Alpaquita (musl).
    LibericaJdkMusl,
    /// BellSoft Liberica JRE 21 with CRaC on Alpaquita (glibc).
    LibericaJre,
    /// IBM Semeru 21 (OpenJ9) JDK on UBI 9 minimal.
    SemeruUbiJdk,
    /// IBM Semeru 21 (OpenJ9) JRE on UBI 9 minimal.
    SemeruUbiJre,
}

impl Base {
    /// Parses `--base`: a preset name, `cracin-jdkN`, `localhost/cracin-base:jdkN`, or any other
    /// image reference (a JDK image CRIU gets built into).
    pub fn parse(s: &str) -> Result<Base> {
        Ok(match s {
            "zulu-ubuntu-jdk" => Base::ZuluUbuntuJdk,
            "zulu-ubuntu-jre" => Base::ZuluUbuntuJre,
            "zulu-alpine-jre" => Base::ZuluAlpineJre,
            "liberica-jdk" => Base::LibericaJdk,
            "liberica-jdk-musl" => Base::LibericaJdkMusl,
            "liberica-jre" => Base::LibericaJre,
            "semeru-ubi-jdk" => Base::SemeruUbiJdk,
            "semeru-ubi-jre" => Base::SemeruUbiJre,
            _ => {
                let jdk = s
                    .strip_prefix("cracin-jdk")
                    .or_else(|| s.strip_prefix("localhost/cracin-base:jdk"))
                    .or_else(|| s.strip_prefix("cracin-base:jdk"));
                if let Some(n) = jdk {
                    let jdk: u32 = n
                        .parse()
                        .map_err(|_| Error::usage(format!("bad base `{s}`"), BASE_HINT))?;
                    if ![17, 21, 25].contains(&jdk) {
                        return Err(Error::usage(
                            format!("no cracin base for JDK {jdk}"),
                            BASE_HINT,
                        ));
                    }
                    Base::CracinDebian { jdk }
                } else if s.is_empty() || s.contains(char::is_whitespace) {
                    return Err(Error::usage(format!("bad base `{s}`"), BASE_HINT));
                } else {
                    Base::JdkImage {
                        image: s.to_string(),
                    }
                }
            }
        })
    }

    /// The name `parse` accepts for this base.
    pub fn name(&self) -> String {
        match self {
            Base::CracinDebian { jdk } => format!("cracin-jdk{jdk}"),
            Base::JdkImage { image } => image.clone(),
            Base::ZuluUbuntuJdk => "zulu-ubuntu-jdk".into(),
            Base::ZuluUbuntuJre => "zulu-ubuntu-jre".into(),
            Base::ZuluAlpineJre => "zulu-alpine-jre".into(),
            Base::LibericaJdk => "liberica-jdk".into(),
            Base::LibericaJdkMusl => "liberica-jdk-musl".into(),
            Base::LibericaJre => "liberica-jre".into(),
            Base::SemeruUbiJdk => "semeru-ubi-jdk".into(),
            Base::SemeruUbiJre => "semeru-ubi-jre".into(),
        }
    }

    /// Which runtime a base can serve.
    pub fn check_runtime(&self, rt: Runtime) -> Result<()> {
        let ok = match self {
            Base::CracinDebian { .. } | Base::JdkImage { .. } => rt == Runtime::Criu,
            Base::ZuluUbuntuJdk
            | Base::ZuluUbuntuJre
            | Base::ZuluAlpineJre
            | Base::LibericaJdk
            | Base::LibericaJdkMusl
            | Base::LibericaJre => rt == Runtime::Crac,
            Base::SemeruUbiJdk | Base::SemeruUbiJre => rt == Runtime::Openj9,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::usage(
                format!("base `{}` does not fit runtime {}", self.name(), rt.name()),
                "crac needs zulu-ubuntu-jdk, zulu-ubuntu-jre, zulu-alpine-jre, liberica-jdk, liberica-jdk-musl or liberica-jre; openj9 needs semeru-ubi-jdk or semeru-ubi-jre; criu needs cracin-jdk17|21|25 (made by `cracin base`) or a Debian/Ubuntu JDK image",
            ))
        }
    }

    /// A JDK (with jcmd) rather than a JRE.
    pub fn has_jcmd(&self) -> bool {
        matches!(
            self,
            Base::ZuluUbuntuJdk | Base::SemeruUbiJdk | Base::LibericaJdk | Base::LibericaJdkMusl
        )
    }

    /// musl-based: the seed's Alpine image (the Zulu JRE tarball for musl on alpine:3.20) and
    /// Liberica on Alpaquita musl (no glibc tunables there).
    pub fn is_alpine(&self) -> bool {
        matches!(self, Base::ZuluAlpineJre | Base::LibericaJdkMusl)
    }

    /// CRaC bases where start.sh burns PIDs instead of -XX:CRaCMinPid. The seed ("PID
    /// Handling"): CRaCMinPid works on Ubuntu but fails on Alpine (`Current gid 8 intersects with
    /// pid (1) in images`); the loop "worked across different base images". Liberica's Alpaquita
    /// images were never tried with CRaCMinPid, so they get the loop too.
    pub fn burns_pids_for_crac(&self) -> bool {
        !matches!(self, Base::ZuluUbuntuJdk | Base::ZuluUbuntuJre)
    }

    /// The image a preset is built FROM, when it is an image (not a tarball recipe).
    ///
    /// Liberica: BellSoft's CRaC runtime containers
    /// (https://github.com/bell-sw/Alpaquita/pkgs/container/liberica-runtime-container, tags
    /// `{jdk|jre}-VERSION-crac-[cds-]slim-{glibc|musl}`); the floating `21` tags were not pulled
    /// here (no registry): unverified.
    pub fn image_ref(&self) -> Option<&'static str> {
        match self {
            Base::ZuluUbuntuJdk => Some("azul/zulu-openjdk:21-jdk-crac-latest"),
            Base::LibericaJdk => Some("bellsoft/liberica-runtime-container:jdk-21-crac-slim-glibc"),
            Base::LibericaJdkMusl => {
                Some("bellsoft/liberica-runtime-container:jdk-21-crac-slim-musl")
            }
            Base::LibericaJre => Some("bellsoft/liberica-runtime-container:jre-21-crac-slim-glibc"),
            Base::SemeruUbiJdk => {
                Some("icr.io/appcafe/ibm-semeru-runtimes:open-21-jdk-ubi-minimal")
            }
            Base::SemeruUbiJre => {
                Some("icr.io/appcafe/ibm-semeru-runtimes:open-21-jre-ubi-minimal")
            }
            _ => None,
        }
    }

    /// The JDK build of the base, for the option table (`versions`). The seed's JRE tarballs are
    /// pinned to Zulu 21.0.3 (zulu21.34.21, April 2024); `-latest` tags follow the newest
    /// release; the user's own image is unknown.
    pub fn jdk_version(&self) -> JdkVersion {
        match self {
            Base::ZuluUbuntuJdk => JdkVersion::latest(Vendor::Zulu, 21),
            Base::ZuluUbuntuJre | Base::ZuluAlpineJre => JdkVersion::pinned(Vendor::Zulu, 21, 3),
            Base::LibericaJdk | Base::LibericaJdkMusl | Base::LibericaJre => {
                JdkVersion::latest(Vendor::Liberica, 21)
            }
            Base::SemeruUbiJdk | Base::SemeruUbiJre => JdkVersion::latest(Vendor::Semeru, 21),
            Base::CracinDebian { .. } | Base::JdkImage { .. } => JdkVersion::UNKNOWN,
        }
    }

    /// UBI images run as user 1001; the checkpoint directory must be created as root.
    pub fn is_ubi(&self) -> bool {
        matches!(self, Base::SemeruUbiJdk | Base::SemeruUbiJre)
    }
}

const BASE_HINT: &str = "use zulu-ubuntu-jdk, zulu-ubuntu-jre, zulu-alpine-jre, liberica-jdk, liberica-jdk-musl, liberica-jre (crac), semeru-ubi-jdk, semeru-ubi-jre (openj9), cracin-jdk17|21|25 (criu, made by `cracin base`) or an image reference";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_parse_and_name_round_trip() {
        for n in [
            "zulu-ubuntu-jdk",
            "zulu-alpine-jre",
            "liberica-jdk",
            "liberica-jdk-musl",
            "liberica-jre",
            "semeru-ubi-jre",
            "cracin-jdk21",
            "eclipse-temurin:21-jdk",
        ] {
            assert_eq!(Base::parse(n).unwrap().name(), n);
        }
        assert_eq!(
            Base::parse("localhost/cracin-base:jdk17").unwrap(),
            Base::CracinDebian { jdk: 17 }
        );
        assert!(Base::parse("cracin-jdk11").is_err());
        assert!(Base::parse("a b").is_err());
    }

    #[test]
    fn sys_ptrace_only_with_yama() {
        assert!(!Runtime::Criu
            .checkpoint_flags(0)
            .contains(&"--cap-add=SYS_PTRACE".to_string()));
        assert!(Runtime::Criu
            .checkpoint_flags(1)
            .contains(&"--cap-add=SYS_PTRACE".to_string()));
    }

    #[test]
    fn json_arrays_look_like_the_seed() {
        let v: Vec<String> = ["java", "-XX:CRaCRestoreFrom=/app/checkpoint"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            json_array(&v),
            r#"["java", "-XX:CRaCRestoreFrom=/app/checkpoint"]"#
        );
    }
}
