//! The OpenJDK CRaC recipe (Azul Zulu, BellSoft Liberica): the JVM options of the checkpoint
//! run, the restore command with only the options the base's JDK build has
//! (`versions`), the extra engine flags, the check that a verification container really
//! restored (not a cold start), and Azul's Warp engine, which checkpoints inside an ordinary
//! image build and needs no capability at all. None of it ran here (no CRaC JDK can be had on
//! this machine): each line cites the seed or the vendor page it follows.

use super::versions::{self, CracOption, JdkVersion};
use super::{Base, CHECKPOINT_DIR, MIN_PID};
use crate::container::EngineKind;
use crate::error::{Error, Result};

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
        crate::container::FALLBACK_MARKER
    )
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
