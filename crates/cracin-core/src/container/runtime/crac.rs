//! The OpenJDK CRaC recipe (Azul Zulu, BellSoft Liberica): the Containerfile, start.sh and the
//! jcmd trigger, the JVM options of the checkpoint run, the restore command with only the options
//! the base's JDK build has (`versions`), the flags of its containers, the check that a
//! verification container really restored (not a cold start), and Azul's Warp engine, which
//! checkpoints inside an ordinary image build and needs no capability at all. None of it was run
//! by cracin's tests (no CRaC JDK can be had without a registry): each line cites the seed or the
//! vendor page it follows.

use super::scripts::{self, StartScript, START_JCMD_SH};
use super::versions::{self, CracOption, JdkVersion};
use super::{file, FilesSpec, FD_POLICIES};
use super::{json_array, Base, CHECKPOINT_DIR, MIN_PID};
use crate::container::engine::EngineKind;
use crate::container::plan::{GeneratedFile, FALLBACK_MARKER};
use crate::error::{Error, Result};

/// The Zulu CRaC JRE tarballs the seed uses (Zulu 21.0.3, April 2024: `Base::jdk_version`). Newer
/// ones exist (and Azul publishes CRaC images); these stay pinned because they are the seed's and
/// the option table knows exactly what this build has (no -XX:+CRaCIgnoreRestoreIfUnavailable,
/// no Warp). Their checksums were never verified here (no download possible).
const ZULU_JRE_GLIBC: &str =
    "https://cdn.azul.com/zulu/bin/zulu21.34.21-ca-crac-jre21.0.3-linux_x64.tar.gz";
const ZULU_JRE_MUSL: &str =
    "https://cdn.azul.com/zulu/bin/zulu21.34.21-ca-crac-jre21.0.3-linux_musl_x64.tar.gz";

/// Which CRaC engine checkpoints and restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CracEngine {
    /// CRIU inside the JDK (the default, the seed's recipe): a checkpoint container with
    /// CHECKPOINT_RESTORE + SYS_PTRACE, `commit`, restore containers with CHECKPOINT_RESTORE.
    #[default]
    Criu,
    /// Azul Warp (`-XX:CRaCEngine=warp`, Zulu from October 2024): no capabilities for checkpoint
    /// or restore, so the checkpoint is taken in a `RUN` step of the image build
    /// (https://docs.azul.com/core/crac/crac-engines, https://foojay.io/today/warp-the-new-crac-engine).
    Warp,
}

impl CracEngine {
    pub fn parse(s: &str) -> Result<CracEngine> {
        match s {
            "criu" => Ok(CracEngine::Criu),
            "warp" => Ok(CracEngine::Warp),
            _ => Err(Error::usage(
                format!("unknown CRaC engine `{s}`"),
                "use --crac-engine criu (the default) or warp (Azul Zulu from October 2024)",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CracEngine::Criu => "criu",
            CracEngine::Warp => "warp",
        }
    }
}

/// `run` flags of the checkpoint container: the seed's CHECKPOINT_RESTORE + SYS_PTRACE.
pub const CHECKPOINT_FLAGS: &[&str] = &["--cap-add=CHECKPOINT_RESTORE", "--cap-add=SYS_PTRACE"];

/// What the checkpoint step of a plan does.
pub const CHECKPOINT_WHY: &str =
    "start the app; the trigger checkpoints it with jcmd (the container exits)";

/// The option `cracin doctor` asks a JDK to accept, and what a JDK that accepts it is.
pub const JDK_PROBE: (&str, &str) = ("-XX:CRaCCheckpointTo=/tmp/cracin-doctor-probe", "CRaC");

/// The capabilities a restore container needs, as Kubernetes names them.
pub const RESTORE_CAPABILITIES: &[&str] = &["CHECKPOINT_RESTORE"];

/// A Kubernetes restore container's `allowPrivilegeEscalation`, and why.
pub const KUBE_ESCALATION: (&str, &str) = ("true", "the CRaC JDK's criu gains its privileges on exec (setuid or file capabilities), which\n          # no_new_privs forbids");

/// The `seccompProfile` lines of a Kubernetes pod: the runtime's default profile.
pub const KUBE_SECCOMP: &str = "          type: RuntimeDefault\n";

/// The plan's note on `--cpu-baseline` (docs/cpu.md).
pub fn cpu_baseline_note(b: crate::jvm::cpu::CpuBaseline) -> String {
    format!(
        "--cpu-baseline {}: -XX:CPUFeatures={} (CRaC knows no levels; generic is the portable set)",
        b.name(),
        b.crac_cpu_features()
    )
}

/// `--cpu-baseline` with an existing image: what the user does instead.
pub const CPU_BASELINE_IMAGE_HINT: &str =
    "add -XX:CPUFeatures=generic to the JVM options in your image, or build with --jar";

/// `run` flags of every restore container: CHECKPOINT_RESTORE (the seed needed it on Docker
/// Desktop; it is what lets CRIU pick PIDs with clone3). Warp needs none
/// (`Runtime::restore_flags_for`).
pub fn restore_flags() -> Vec<String> {
    vec!["--cap-add=CHECKPOINT_RESTORE".into()]
}

/// The plan's notes: the engine and JDK build, the fallback it cannot have, and a JRE base's
/// missing jcmd. `base` is the `--base` of a `--jar` build.
pub fn plan_notes(
    base: Option<&Base>,
    jdk: JdkVersion,
    engine: CracEngine,
    app_cmd: &[String],
    fallback: bool,
) -> Vec<String> {
    let mut v = vec![format!(
        "CRaC engine {}, JDK {}",
        engine.name(),
        jdk.describe()
    )];
    if let (_, Some(why)) = restore_cmd(jdk, engine, app_cmd, fallback) {
        v.push(why);
    }
    if engine == CracEngine::Warp && fallback {
        v.push("Warp restores under new PIDs, so verification cannot tell a cold start (-XX:+CRaCIgnoreRestoreIfUnavailable) from a restore; it checks that the application answers".into());
    }
    if base.is_some_and(|b| !b.has_jcmd()) {
        v.push("a JRE has no jcmd: the application must checkpoint itself (org.crac Core.checkpointRestore())".into());
    }
    v
}

/// Refuses an engine the base's JDK does not have.
pub fn check_engine(base: &Base, engine: CracEngine) -> Result<()> {
    let v = base.jdk_version();
    if engine == CracEngine::Warp && !versions::supports(v, CracOption::WarpEngine) {
        return Err(Error::usage(
            format!(
                "base `{}` (JDK {}) has no Warp engine",
                base.name(),
                v.describe()
            ),
            "Warp is in Azul Zulu from October 2024 (17.0.13, 21.0.5, 23.0.1; docs.azul.com/core/crac/crac-engines): use --base zulu-ubuntu-jdk, or --crac-engine criu",
        ));
    }
    Ok(())
}

/// The checkpoint run's `JAVA_OPTS_EXTRA`, one option per element.
pub fn java_opts_extra(base: &Base, engine: CracEngine) -> Vec<String> {
    let mut v = vec![format!("-XX:CRaCCheckpointTo={CHECKPOINT_DIR}")];
    match engine {
        // Same option at checkpoint and at restore (https://docs.azul.com/core/crac/crac-engines).
        CracEngine::Warp => v.push(CracOption::WarpEngine.flag().into()),
        // The seed, "PID Handling", 3.: -XX:CRaCMinPid works on Ubuntu; on Alpine it fails
        // (`Current gid 8 intersects with pid (1) in images`), there start.sh burns PIDs.
        CracEngine::Criu if !base.burns_pids_for_crac() => {
            v.push(format!("-XX:CRaCMinPid={MIN_PID}"))
        }
        CracEngine::Criu => {}
    }
    v.push("-Djdk.crac.resource-policies=/app/fd_policies.yaml".into());
    v
}

/// The restore image's CMD and, when a requested fallback cannot be had, why.
///
/// The seed, "Create a new image with checkpoint data": `CMD ["java",
/// "-XX:CRaCRestoreFrom=/app/checkpoint"]`. A cold-start fallback needs
/// `-XX:+CRaCIgnoreRestoreIfUnavailable` ("only available in Azul Zulu 25 and the Azul Zulu
/// October 2025 releases", https://docs.azul.com/crac/usage/transparent-restore-startup): an
/// older JVM refuses to start with it, so it is emitted only for builds that have it.
pub fn restore_cmd(
    version: JdkVersion,
    engine: CracEngine,
    app_cmd: &[String],
    fallback: bool,
) -> (Vec<String>, Option<String>) {
    let mut v = vec!["java".to_string()];
    if engine == CracEngine::Warp {
        v.push(CracOption::WarpEngine.flag().into());
    }
    v.push(format!("-XX:CRaCRestoreFrom={CHECKPOINT_DIR}"));
    if !fallback {
        return (v, None);
    }
    let o = CracOption::IgnoreRestoreIfUnavailable;
    if versions::supports(version, o) {
        // The rest of the line is used when the JVM starts normally instead of restoring.
        v.push(o.flag().into());
        v.extend(app_cmd.iter().skip(1).cloned());
        (v, None)
    } else {
        let first = versions::first_in(o, version.vendor, version.feature)
            .map(|f| format!(" (first in {f})"))
            .unwrap_or_default();
        (
            v,
            Some(format!(
                "no cold-start fallback: JDK {} has no {}{first}; a restore that fails ends the container",
                version.describe(),
                o.flag()
            )),
        )
    }
}

/// Extra flags of the checkpoint container. podman: no seccomp filter, as for plain CRIU
/// (`suspending seccomp failed` under any profile, measured: docs/containers.md; the seed,
/// "Build the containers on Windows host with Podman": "You also need to disable the default
/// seccomp profile on running the container for checkpoint creation").
pub fn extra_checkpoint_flags(kind: EngineKind) -> Vec<String> {
    match kind {
        EngineKind::Podman => vec!["--security-opt".into(), "seccomp=unconfined".into()],
        EngineKind::Docker => vec![],
    }
}

/// A shell command for `ENGINE exec CONTAINER sh -c …` that fails when the container started cold
/// instead of restoring: a restored JVM keeps its checkpoint-time PID (>= `MIN_PID`, by
/// -XX:CRaCMinPid or start.sh's loop) under the `java -XX:CRaCRestoreFrom` launcher, while a JVM
/// that fell back (-XX:+CRaCIgnoreRestoreIfUnavailable) initialises as PID 1 and no process of
/// the container reaches `MIN_PID`.
pub fn restored_check() -> String {
    format!(
        "for p in /proc/[0-9]*; do [ \"${{p#/proc/}}\" -ge {MIN_PID} ] && exit 0; done; echo \"{} (no process at PID >= {MIN_PID}: the JVM started cold)\" >&2; exit 1",
        FALLBACK_MARKER
    )
}

/// The files of the build context besides the Containerfile: start.sh, the jcmd trigger where
/// cracin triggers the checkpoint, and the seed's file descriptor policies.
pub fn files(s: &FilesSpec) -> Vec<GeneratedFile> {
    let mut v = vec![file("start.sh", start_sh(s), 0o755)];
    if triggers(s) {
        v.push(file(
            "start_create_checkpoint.sh",
            scripts::trigger_sh(s.ready.as_deref(), &s.warmup),
            0o755,
        ));
        v.push(file("start_jcmd.sh", START_JCMD_SH.to_string(), 0o755));
    }
    v.push(file("fd_policies.yaml", FD_POLICIES.to_string(), 0o644));
    v
}

/// Whether cracin triggers the CRaC checkpoint with jcmd (a JDK base) rather than the
/// application itself (a JRE has no jcmd).
pub fn triggers(s: &FilesSpec) -> bool {
    s.base.has_jcmd() || s.image.is_some()
}

/// start.sh for the CRaC checkpoint run (`scripts::start_sh`).
pub fn start_sh(s: &FilesSpec) -> String {
    let (burn, comment) = match () {
        _ if s.recipe.crac_engine == CracEngine::Warp => (
            false,
            "# Warp restores under new PIDs (https://docs.azul.com/core/crac/crac-engines): no PID loop.\n",
        ),
        _ if s.base.burns_pids_for_crac() => (
            true,
            "# -XX:CRaCMinPid fails on Alpine: use up PIDs so the JVM's PIDs are\n# >= 1000 and free when the checkpoint is restored in a fresh container.\n",
        ),
        _ => (
            false,
            "# PIDs: -XX:CRaCMinPid=1000 in JAVA_OPTS_EXTRA (keeps them free for the restore; works on Ubuntu).\n",
        ),
    };
    scripts::start_sh(&StartScript {
        app_cmd: &s.app_cmd,
        burn_pids: burn,
        pid_comment: comment,
        stdio_to_files: false,
    })
}

pub fn containerfile(s: &FilesSpec, f: &mut String) {
    let warp = s.recipe.crac_engine == CracEngine::Warp;
    match &s.image {
        Some(image) => f.push_str(&format!("FROM {image}\n")),
        None => match (&s.base, s.base.image_ref()) {
            (base, Some(image)) => {
                let why = match base {
                    Base::ZuluUbuntuJdk => "# Azul's CRaC JDK image",
                    _ => "# BellSoft's CRaC runtime container (github.com/bell-sw/Alpaquita/pkgs/container/liberica-runtime-container);\n# the tag follows BellSoft's naming and was not pulled here",
                };
                f.push_str(&format!("{why}\nFROM {image}\n"));
            }
            (Base::ZuluUbuntuJre | Base::ZuluAlpineJre, None) => {
                let (from, url) = if s.base.is_alpine() {
                    ("alpine:3.20", ZULU_JRE_MUSL)
                } else {
                    ("ubuntu:22.04", ZULU_JRE_GLIBC)
                };
                f.push_str(&format!(
                    "# A JRE with CRaC: Zulu 21.0.3 (April 2024) from Azul's CDN.\n\
FROM {from}\n\nENV JAVA_HOME /opt/jdk\nENV PATH $JAVA_HOME/bin:$PATH\n\n\
ADD \"{url}\" $JAVA_HOME/openjdk.tar.gz\n\n\
RUN \\\n    tar --extract --file $JAVA_HOME/openjdk.tar.gz --directory \"$JAVA_HOME\" --strip-components 1; \\\n    rm $JAVA_HOME/openjdk.tar.gz;\n"
                ));
            }
            (other, None) => f.push_str(&format!("FROM {}\n", other.name())),
        },
    }
    let opts = java_opts_extra(&s.base, s.recipe.crac_engine);
    if !warp && !s.base.burns_pids_for_crac() {
        f.push_str("\n# -XX:CRaCMinPid keeps the JVM's PIDs free for the restore (works on Ubuntu; fails on Alpine,\n# where start.sh burns PIDs instead)");
    }
    f.push_str(&format!(
        "\nENV JAVA_OPTS_EXTRA=\"{}{}\"\n\n{}EXPOSE {}\n\n",
        opts.iter()
            .map(|o| format!("\\\n{o}"))
            .collect::<Vec<_>>()
            .join(" "),
        crate::container::portable::crac_java_opts(s.cpu_baseline),
        crate::container::portable::glibc_env(s.cpu_baseline, s.base.is_alpine()),
        s.port
    ));
    let jcmd = triggers(s);
    if s.image.is_none() {
        f.push_str("# copy the application jar to the image\nCOPY app.jar /app/\n");
    }
    f.push_str("# copy the file descriptor policies to the image\nCOPY fd_policies.yaml /app/\n# copy the shell scripts to the image\n");
    let scripts: &[&str] = if jcmd {
        &["start_create_checkpoint.sh", "start_jcmd.sh", "start.sh"]
    } else {
        &["start.sh"]
    };
    for sc in scripts {
        f.push_str(&format!("COPY {sc} /app/\n"));
    }
    f.push_str(&format!(
        "\n# create the folder for the checkpoint files and make the start scripts executable\nRUN \\\n  mkdir -p {CHECKPOINT_DIR}{}\n\n",
        scripts.iter().map(|sc| format!(" && \\\n  chmod 755 /app/{sc}")).collect::<String>()
    ));
    let start = if jcmd {
        "./start_jcmd.sh"
    } else {
        "./start.sh"
    };
    if warp {
        // Warp needs no capability, so the checkpoint is taken while the image is built
        // (https://foojay.io/today/warp-the-new-crac-engine, "Warp enters Docker"); start.sh
        // exits non-zero, failing the build, when no checkpoint was written.
        let (restore, _) = restore_cmd(
            s.base.jdk_version(),
            CracEngine::Warp,
            &s.app_cmd,
            s.fallback,
        );
        f.push_str(&format!(
            "# Warp: start the application, let it get ready and warm, checkpoint it, all in this build step\n\
WORKDIR /app\nRUN {start}\n\n\
# restore with the same engine (https://docs.azul.com/core/crac/crac-engines); no capabilities\n\
CMD {}\n",
            json_array(&restore)
        ));
    } else if jcmd {
        f.push_str(&format!("# start the application; start_create_checkpoint.sh checkpoints it with jcmd once it is ready and warm\nWORKDIR /app\nCMD [\"{start}\"]\n"));
    } else {
        f.push_str("# start the application; a JRE has no jcmd: the application must call\n# org.crac.Core.checkpointRestore() itself once it is ready\nWORKDIR /app\nCMD [\"./start.sh\"]\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::runtime::versions::Vendor;

    fn app() -> Vec<String> {
        ["java", "-jar", "/app/app.jar"].map(String::from).to_vec()
    }

    #[test]
    fn the_fallback_flag_only_for_builds_that_have_it() {
        let old = JdkVersion::pinned(Vendor::Zulu, 21, 3);
        let (cmd, why) = restore_cmd(old, CracEngine::Criu, &app(), true);
        assert_eq!(cmd, ["java", "-XX:CRaCRestoreFrom=/app/checkpoint"]);
        assert!(why.unwrap().contains("first in 21.0.9"));
        let new = JdkVersion::pinned(Vendor::Zulu, 21, 9);
        let (cmd, why) = restore_cmd(new, CracEngine::Criu, &app(), true);
        assert_eq!(
            cmd,
            [
                "java",
                "-XX:CRaCRestoreFrom=/app/checkpoint",
                "-XX:+CRaCIgnoreRestoreIfUnavailable",
                "-jar",
                "/app/app.jar"
            ]
        );
        assert!(why.is_none());
        let (cmd, _) = restore_cmd(new, CracEngine::Warp, &app(), false);
        assert_eq!(
            cmd,
            [
                "java",
                "-XX:CRaCEngine=warp",
                "-XX:CRaCRestoreFrom=/app/checkpoint"
            ]
        );
    }

    #[test]
    fn warp_needs_a_build_that_has_it() {
        assert!(check_engine(&Base::ZuluUbuntuJdk, CracEngine::Warp).is_ok());
        assert!(check_engine(&Base::ZuluUbuntuJre, CracEngine::Warp).is_err());
        assert!(check_engine(&Base::LibericaJdk, CracEngine::Warp).is_err());
        assert!(check_engine(&Base::ZuluAlpineJre, CracEngine::Criu).is_ok());
    }

    #[test]
    fn restored_check_is_valid_sh() {
        // Its behaviour is tested in tests/container_scripts.rs (needs a PID namespace).
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &restored_check()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
