//! The OpenJ9 recipe (IBM Semeru): the Containerfile, start.sh and the fallback's restore.sh,
//! the JVM options of the checkpoint run, chosen by the API the application checkpoints itself
//! with, the restore command and the flags of its containers. Never run by cracin's tests (no
//! OpenJ9 can be had without a registry); each value cites the seed or the vendor page it follows.

use super::scripts::{self, StartScript};
use super::CHECKPOINT_DIR;
use super::{file, FilesSpec, FD_POLICIES};
use crate::container::plan::{GeneratedFile, FALLBACK_MARKER};
use crate::error::{Error, Result};

/// How the application checkpoints itself (OpenJ9 cannot be checkpointed from outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Openj9Api {
    /// The portable `org.crac` API (the reference app-crac.jar, the seed's application). The
    /// default: the same jar then works on OpenJDK CRaC too.
    #[default]
    Crac,
    /// OpenJ9's own `org.eclipse.openj9.criu.CRIUSupport` API.
    CriuSupport,
}

impl Openj9Api {
    pub fn parse(s: &str) -> Result<Openj9Api> {
        match s {
            "crac" => Ok(Openj9Api::Crac),
            "criusupport" => Ok(Openj9Api::CriuSupport),
            _ => Err(Error::usage(
                format!("unknown OpenJ9 checkpoint API `{s}`"),
                "use --openj9-api crac (the application calls org.crac.Core.checkpointRestore(), the default) or criusupport (it calls CRIUSupport.checkpointJVM())",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Openj9Api::Crac => "crac",
            Openj9Api::CriuSupport => "criusupport",
        }
    }

    /// The checkpoint run's `JAVA_OPTS_EXTRA`, one option per element.
    ///
    /// org.crac: the seed, "OpenJ9 CRIU Support / CRaC": "-XX:CRaCCheckpointTo=/app/checkpoint
    /// -Djdk.crac.resource-policies=/app/fd_policies.yaml -Dorg.crac.Core.Compat=jdk.crac
    /// -Dopenj9.internal.criu.unprivilegedMode=true", and "If you want to use the org.crac API
    /// with OpenJ9, you need to use -XX:CRaCCheckpointTo={PATH} instead, as the
    /// -XX:+EnableCRIUSupport is not compatible with that."
    /// CRIUSupport: the seed, "PID Handling": `ENV JAVA_OPTS_EXTRA="-XX:+EnableCRIUSupport"`
    /// (https://eclipse.dev/openj9/docs/xxenablecriusupport/); the application sets
    /// unprivileged mode through the API (CRIUSupport.setUnprivileged).
    pub fn java_opts_extra(self) -> Vec<String> {
        match self {
            Openj9Api::Crac => vec![
                format!("-XX:CRaCCheckpointTo={CHECKPOINT_DIR}"),
                "-Djdk.crac.resource-policies=/app/fd_policies.yaml".into(),
                "-Dorg.crac.Core.Compat=jdk.crac".into(),
                "-Dopenj9.internal.criu.unprivilegedMode=true".into(),
            ],
            Openj9Api::CriuSupport => vec!["-XX:+EnableCRIUSupport".into()],
        }
    }

    /// What the application must do, for the plan's notes.
    pub fn note(self) -> String {
        match self {
            Openj9Api::Crac => "OpenJ9 with the org.crac API: the application must call org.crac.Core.checkpointRestore() itself; an OSGi application also needs `-runsystempackages: jdk.crac` in its bndrun (jdk.crac is in java.base and not exported to bundles); for CRIUSupport.checkpointJVM() use --openj9-api criusupport".into(),
            Openj9Api::CriuSupport => "OpenJ9 with the CRIUSupport API: the application must call CRIUSupport.checkpointJVM() itself (with setUnprivileged(true)); an OSGi application also needs `-runsystempackages: org.eclipse.openj9.criu` in its bndrun (the seed)".into(),
        }
    }
}

/// `run` flags of the checkpoint container: the seed's set, which drops everything else.
pub const CHECKPOINT_FLAGS: &[&str] = &[
    "--cap-drop=ALL",
    "--cap-add=CHECKPOINT_RESTORE",
    "--cap-add=SYS_PTRACE",
    "--cap-add=SETPCAP",
    "--security-opt",
    "seccomp=unconfined",
];

/// What the checkpoint step of a plan does.
pub const CHECKPOINT_WHY: &str = "start the app; it checkpoints itself (the container exits)";

/// The option `cracin doctor` asks a JDK to accept, and what a JDK that accepts it is.
pub const JDK_PROBE: (&str, &str) = ("-XX:+EnableCRIUSupport", "OpenJ9 with CRIU support");

/// The restore image's CMD. criu cannot fall back by itself: with a fallback, restore.sh restores
/// detached and starts the application cold when that fails.
pub fn restore_cmd(fallback: bool) -> Vec<String> {
    if fallback {
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

/// The capabilities a restore container needs, as Kubernetes names them: the seed's OpenJ9
/// restore set.
pub const RESTORE_CAPABILITIES: &[&str] = &["CHECKPOINT_RESTORE", "SYS_PTRACE"];

/// A Kubernetes restore container's `allowPrivilegeEscalation`, and why.
pub const KUBE_ESCALATION: (&str, &str) = ("true", "Semeru's criu gains CHECKPOINT_RESTORE from its file capabilities on exec by java,\n          # which no_new_privs forbids");

/// The `seccompProfile` lines of a Kubernetes pod: the seed's OpenJ9 restore runs unconfined.
pub const KUBE_SECCOMP: &str =
    "          # OpenJ9's unprivileged restore runs unconfined.\n          type: Unconfined\n";

/// The plan's note on `--cpu-baseline` (docs/cpu.md).
pub fn cpu_baseline_note(b: crate::jvm::cpu::CpuBaseline) -> String {
    format!(
        "--cpu-baseline {}: OpenJ9 compiles portable code before a checkpoint by itself; -XX:+PortableSharedCache for its AOT code",
        b.name()
    )
}

/// `--cpu-baseline` with an existing image: what the user does instead.
pub const CPU_BASELINE_IMAGE_HINT: &str =
    "add -XX:+PortableSharedCache to the JVM options in your image, or build with --jar";

/// `run` flags of every restore container. The seed, "Run container with checkpoint data":
/// CHECKPOINT_RESTORE + SYS_PTRACE + seccomp=unconfined; plus SETPCAP, which the restore needs to
/// drop capabilities and which Open Liberty's InstantOn adds explicitly
/// (`--cap-add=CHECKPOINT_RESTORE --cap-add=SETPCAP`, https://openliberty.io/docs/latest/instanton.html)
/// rather than relying on the engine's default set (cracin's own non-root images may drop it).
pub fn restore_flags() -> Vec<String> {
    [
        "--cap-add=CHECKPOINT_RESTORE",
        "--cap-add=SYS_PTRACE",
        "--cap-add=SETPCAP",
        "--security-opt",
        "seccomp=unconfined",
    ]
    .map(String::from)
    .to_vec()
}

/// The files of the build context besides the Containerfile: start.sh, the seed's file
/// descriptor policies and, with a fallback, restore.sh.
pub fn files(s: &FilesSpec) -> Vec<GeneratedFile> {
    let mut v = vec![
        file("start.sh", start_sh(s), 0o755),
        file("fd_policies.yaml", FD_POLICIES.to_string(), 0o644),
    ];
    if s.fallback {
        v.push(file("restore.sh", restore_sh(s), 0o755));
    }
    v
}

/// start.sh for the OpenJ9 checkpoint run (`scripts::start_sh`).
pub fn start_sh(s: &FilesSpec) -> String {
    scripts::start_sh(&StartScript {
        app_cmd: &s.app_cmd,
        burn_pids: true,
        pid_comment: "# OpenJ9 has no PID adjustment and no -XX:CRaCMinPid: use up PIDs so\n# the JVM's PIDs are >= 1000 and free when the checkpoint is restored in a fresh container.\n",
        stdio_to_files: true,
    })
}

pub fn containerfile(s: &FilesSpec, f: &mut String) {
    let from = match (&s.image, s.base.image_ref()) {
        (Some(image), _) => image.clone(),
        // The seed, "Choose the base container": icr.io/appcafe/ibm-semeru-runtimes:open-21-…-ubi-minimal.
        (None, Some(image)) => image.to_string(),
        (None, None) => s.base.name(),
    };
    let api = s.recipe.openj9_api;
    if s.image.is_none() {
        f.push_str("# IBM Semeru (OpenJ9) on UBI 9 minimal\n");
    }
    f.push_str(&format!(
        "FROM {from}\n\n\
# checkpoint API: {api} (cracin --openj9-api; org.crac and -XX:+EnableCRIUSupport do not mix)\n\
ENV JAVA_OPTS_EXTRA=\"{opts}{j9opts}\"\n\n\
{glibc}USER root\n\n\
EXPOSE {port}\n\n",
        api = api.name(),
        opts = api
            .java_opts_extra()
            .iter()
            .map(|o| format!("\\\n{o}"))
            .collect::<Vec<_>>()
            .join(" "),
        j9opts = crate::container::portable::openj9_java_opts(s.cpu_baseline),
        glibc = crate::container::portable::glibc_env(s.cpu_baseline, s.base.is_alpine()),
        port = s.port
    ));
    if s.image.is_none() {
        f.push_str("# copy the application jar to the image\nCOPY app.jar /app/app.jar\n");
    }
    f.push_str("# copy the file descriptor policies to the image\nCOPY fd_policies.yaml /app/\n# copy the shell scripts to the image\nCOPY start.sh /app/\n");
    if s.fallback {
        f.push_str("COPY restore.sh /app/\n");
    }
    f.push_str(&format!(
        "\n# create the folder for the checkpoint files and make the start scripts executable\nRUN \\\n  mkdir -p {CHECKPOINT_DIR} && \\\n  chmod 777 {CHECKPOINT_DIR} && \\\n  chmod 755 /app/start.sh{}\n\nUSER 1001\n\n\
# start the application; it checkpoints itself ({})\nWORKDIR /app\nCMD [\"./start.sh\"]\n",
        if s.fallback { " /app/restore.sh" } else { "" },
        match api {
            Openj9Api::Crac => "org.crac.Core.checkpointRestore()",
            Openj9Api::CriuSupport => "CRIUSupport.checkpointJVM()",
        }
    ));
}

/// OpenJ9 with a fallback: restore detached; start cold when the checkpoint cannot be restored.
fn restore_sh(s: &FilesSpec) -> String {
    let lines = [
        "#!/bin/sh".to_string(),
        "# Generated by cracin: restore the checkpoint; start the application cold if that fails.".into(),
        "rm -f /tmp/restored.pid".into(),
        // The seed, "Create a new image with checkpoint data": criu restore --unprivileged -D
        // /app/checkpoint --shell-job -v4 --log-file=restore.log ("works for the org.crac
        // support as well as for the OpenJ9 CRIUSupport"); -d so this script can wait and fall back.
        format!("if criu restore --unprivileged -D {CHECKPOINT_DIR} --shell-job -v4 --log-file=restore.log -d --pidfile /tmp/restored.pid; then"),
        "  pid=$(cat /tmp/restored.pid)".into(),
        "  trap 'kill -TERM \"$pid\" 2>/dev/null' TERM INT".into(),
        "  # PID 1 inherits the restored JVM; stay until it is gone (a zombie counts as gone)".into(),
        "  while [ -e /proc/$pid ] && ! grep -q '^[^)]*) Z' /proc/$pid/stat 2>/dev/null; do sleep 0.2 & wait $!; done".into(),
        "  exit 0".into(),
        "fi".into(),
        // The marker verification looks for (`FALLBACK_MARKER`).
        format!("echo \"{} (see {CHECKPOINT_DIR}/restore.log); starting cold\" >&2", FALLBACK_MARKER),
        format!("exec {}", scripts::java_line(&s.app_cmd, false)),
    ];
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_api() {
        let c = Openj9Api::Crac.java_opts_extra();
        assert!(c.contains(&"-Dorg.crac.Core.Compat=jdk.crac".to_string()));
        assert!(c.contains(&"-XX:CRaCCheckpointTo=/app/checkpoint".to_string()));
        assert!(
            !c.iter().any(|o| o == "-XX:+EnableCRIUSupport"),
            "they do not mix"
        );
        assert_eq!(
            Openj9Api::CriuSupport.java_opts_extra(),
            ["-XX:+EnableCRIUSupport"]
        );
        assert_eq!(
            Openj9Api::parse("criusupport").unwrap(),
            Openj9Api::CriuSupport
        );
        assert!(Openj9Api::parse("jcmd").is_err());
        assert!(restore_flags().contains(&"--cap-add=SETPCAP".to_string()));
    }
}
