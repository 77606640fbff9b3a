//! The three checkpoint runtimes a container image can use and what each needs from the engine:
//! which capabilities and security options the checkpoint container and the restore container
//! get, which command the checkpoint container runs, and which `--change` values turn the
//! stopped checkpoint container into the restore image. The values for plain CRIU were measured
//! on this machine (docs/containers.md); the CRaC and OpenJ9 values are the seed's and the
//! vendors' and were never run here (no such JDK can be had without a registry). The CRaC and
//! OpenJ9 recipes live in `crac` and `openj9`, their shell scripts in `scripts` (run for real with
//! stand-ins by tests/container_scripts.rs), and which option exists in which JDK build in
//! `versions`.

pub mod crac;
pub mod openj9;
pub mod scripts;
pub mod versions;

pub use crac::CracEngine;
pub use openj9::Openj9Api;
use versions::{JdkVersion, Vendor};

use super::EngineKind;
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
/// Docker 26's default seccomp profile answers clone3 with ENOSYS, so CRIU falls back to writing
/// ns_last_pid, which is read-only in a container. Podman's default profile (containers-common)
/// allows clone3 and works for Docker too (measured: docs/containers.md).
pub const DOCKER_RESTORE_SECCOMP: &str = "/usr/share/containers/seccomp.json";

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

    /// `run` flags of the container that takes the checkpoint. Plans take them through
    /// `security::checkpoint_flags`, which replaces the plain-CRIU set below (images that ran
    /// as root) with the non-root least-privilege one (docs/privileges.md).
    ///
    /// Plain CRIU: `criu dump --unprivileged` needs CHECKPOINT_RESTORE and no seccomp filter at
    /// all (`suspending seccomp failed` under any profile); SYS_PTRACE only where Yama's
    /// ptrace_scope >= 1, because criu is java's sibling, not its ancestor. CRaC: the seed's
    /// CHECKPOINT_RESTORE + SYS_PTRACE. OpenJ9: the seed's set, which drops everything else.
    pub fn checkpoint_flags(self, yama_ptrace_scope: u8) -> Vec<String> {
        let v: Vec<&str> = match self {
            Runtime::Criu => {
                let mut v = vec!["--cap-add=CHECKPOINT_RESTORE"];
                if yama_ptrace_scope >= 1 {
                    v.push("--cap-add=SYS_PTRACE");
                }
                v.extend(["--security-opt", "seccomp=unconfined"]);
                v
            }
            Runtime::Crac => vec!["--cap-add=CHECKPOINT_RESTORE", "--cap-add=SYS_PTRACE"],
            Runtime::Openj9 => vec![
                "--cap-drop=ALL",
                "--cap-add=CHECKPOINT_RESTORE",
                "--cap-add=SYS_PTRACE",
                "--cap-add=SETPCAP",
                "--security-opt",
                "seccomp=unconfined",
            ],
        };
        v.into_iter().map(String::from).collect()
    }

    /// `run` flags every container of the restore image needs (verification and production).
    /// Plans take them through `security::restore_flags`, which replaces the plain-CRIU set
    /// below (images that ran as root) with `--cap-drop=ALL` and cracin's seccomp profile.
    ///
    /// Plain CRIU: `criu restore --unprivileged` with CHECKPOINT_RESTORE only; on Docker also a
    /// seccomp profile that allows clone3 (see `DOCKER_RESTORE_SECCOMP`). CRaC: CHECKPOINT_RESTORE
    /// (the seed needed it on Docker Desktop; it is what lets CRIU pick PIDs with clone3).
    /// OpenJ9: the seed's CHECKPOINT_RESTORE + SYS_PTRACE + seccomp=unconfined, plus SETPCAP.
    pub fn restore_flags(self, engine: EngineKind) -> Vec<String> {
        let v: Vec<String> = match (self, engine) {
            (Runtime::Criu, EngineKind::Podman) => vec!["--cap-add=CHECKPOINT_RESTORE".into()],
            (Runtime::Criu, EngineKind::Docker) => vec![
                "--cap-add=CHECKPOINT_RESTORE".into(),
                "--security-opt".into(),
                format!("seccomp={DOCKER_RESTORE_SECCOMP}"),
            ],
            (Runtime::Crac, _) => vec!["--cap-add=CHECKPOINT_RESTORE".into()],
            (Runtime::Openj9, _) => openj9::restore_flags(),
        };
        v
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

    /// The restore image's CMD (as an exec-form JSON array's elements).
    ///
    /// Plain CRIU: cracin is PID 1 of the restore container: it restores with `criu restore -d`,
    /// becomes the JVM's parent (orphans go to PID 1), forwards SIGTERM/SIGINT and exits with the
    /// JVM's status; `--inherit-stdio` maps the dumped stdout/stderr files onto the container's
    /// own (`criu --inherit-fd`), so `logs` shows the restored application; with a fallback it
    /// starts the application cold when the checkpoint cannot be restored.
    /// CRaC: `crac::restore_cmd` (the fallback flag only for JDK builds that have it).
    pub fn restore_cmd(
        self,
        app_cmd: &[String],
        fallback: bool,
        jdk: JdkVersion,
        recipe: Recipe,
    ) -> Vec<String> {
        if self == Runtime::Crac {
            return crac::restore_cmd(jdk, recipe.crac_engine, app_cmd, fallback).0;
        }
        let mut v: Vec<String> = match self {
            Runtime::Criu => [
                CRACIN_IN_IMAGE,
                "restore",
                CHECKPOINT_DIR,
                "--in-container",
                "--foreground",
                "--inherit-stdio",
            ]
            .map(String::from)
            .to_vec(),
            Runtime::Crac => unreachable!("handled above"),
            Runtime::Openj9 => {
                if fallback {
                    // criu cannot fall back by itself: a script restores detached and starts the
                    // application cold when that fails.
                    return vec!["/app/restore.sh".into()];
                }
                [
                    "criu",
                    "restore",
                    "--unprivileged",
                    "-D",
                    CHECKPOINT_DIR,
                    "--shell-job",
                    "-v4",
                    "--log-file=restore.log",
                ]
                .map(String::from)
                .to_vec()
            }
        };
        if fallback {
            match self {
                Runtime::Criu => {
                    v.push("--fallback".into());
                    v.push("--".into());
                    v.extend(app_cmd.iter().cloned());
                }
                Runtime::Crac | Runtime::Openj9 => {}
            }
        }
        v
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
}

/// The checkpoint command of the plain-CRIU runtime (the checkpoint container's CMD): cracin is
/// PID 1, starts the application with PIDs >= `MIN_PID` and no capabilities, waits for readiness,
/// warms up and dumps with `criu dump --unprivileged`.
pub fn criu_checkpoint_cmd(
    ready: Option<&str>,
    warmup: &[String],
    app_cmd: &[String],
) -> Vec<String> {
    let mut v: Vec<String> = [
        CRACIN_IN_IMAGE,
        "checkpoint",
        "--in-container",
        "--out",
        CHECKPOINT_DIR,
    ]
    .map(String::from)
    .to_vec();
    if let Some(r) = ready {
        v.push("--ready".into());
        v.push(r.into());
    }
    for w in warmup {
        v.push("--warmup".into());
        v.push(w.clone());
    }
    v.push("--".into());
    v.extend(app_cmd.iter().cloned());
    v
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
