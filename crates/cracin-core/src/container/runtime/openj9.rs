//! The OpenJ9 recipe (IBM Semeru): which JVM options the checkpoint run gets, chosen by the API
//! the application checkpoints itself with, and the restore containers' flags. Never run here
//! (no OpenJ9 on this machine); each value cites the seed or the vendor page it follows.

use super::CHECKPOINT_DIR;
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
            Openj9Api::Crac => "OpenJ9 with the org.crac API: the application must call org.crac.Core.checkpointRestore() itself; an OSGi application also needs `-runsystempackages: jdk.crac` in its bndrun (the seed: jdk.crac is in java.base and not exported); for CRIUSupport.checkpointJVM() use --openj9-api criusupport".into(),
            Openj9Api::CriuSupport => "OpenJ9 with the CRIUSupport API: the application must call CRIUSupport.checkpointJVM() itself (with setUnprivileged(true)); an OSGi application also needs `-runsystempackages: org.eclipse.openj9.criu` in its bndrun (the seed)".into(),
        }
    }
}

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
