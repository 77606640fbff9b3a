//! The privileges each container of a build gets, as `run` flags: least privilege for the
//! plain-CRIU runtime (measured on podman 4.3.1 and Docker 26, docs/containers.md), the seed's
//! sets for CRaC and OpenJ9 (never run here, `runtime`).
//!
//! Plain CRIU, both engines, the image running as a non-root user (`user`):
//! - checkpoint: `--cap-drop=ALL --cap-add=CHECKPOINT_RESTORE` (+ SYS_PTRACE where Yama's
//!   ptrace_scope >= 1), `no-new-privileges`, and `seccomp=unconfined`: compel must suspend the
//!   JVM's seccomp filter to dump it, which the kernel allows only to a tracer that is itself
//!   unfiltered and holds CAP_SYS_ADMIN (kernel/ptrace.c, PTRACE_O_SUSPEND_SECCOMP), so no
//!   profile of any kind can work there.
//! - restore: `--cap-drop=ALL --cap-add=CHECKPOINT_RESTORE`, `no-new-privileges`, and cracin's
//!   generated profile (`seccomp`).

use std::path::Path;

use super::engine::EngineKind;
use super::runtime::Runtime;

/// `run` flags of the checkpoint container.
pub fn checkpoint_flags(rt: Runtime, yama_ptrace_scope: u8) -> Vec<String> {
    if rt != Runtime::Criu {
        return rt.checkpoint_flags(yama_ptrace_scope);
    }
    let mut v = vec!["--cap-drop=ALL", "--cap-add=CHECKPOINT_RESTORE"];
    if yama_ptrace_scope >= 1 {
        // criu is the JVM's sibling, not its ancestor.
        v.push("--cap-add=SYS_PTRACE");
    }
    v.extend([
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
    ]);
    v.into_iter().map(String::from).collect()
}

/// `run` flags of every restore container (verification and production); `profile` is where
/// the generated seccomp profile is on the host running the engine.
pub fn restore_flags(rt: Runtime, engine: EngineKind, profile: &Path) -> Vec<String> {
    if rt != Runtime::Criu {
        return rt.restore_flags(engine);
    }
    vec![
        "--cap-drop=ALL".into(),
        "--cap-add=CHECKPOINT_RESTORE".into(),
        "--security-opt".into(),
        "no-new-privileges".into(),
        "--security-opt".into(),
        format!("seccomp={}", profile.display()),
    ]
}

/// The capabilities a restore container needs, as Kubernetes names them (all others dropped).
pub fn restore_capabilities(rt: Runtime) -> Vec<&'static str> {
    rt.restore_capabilities().to_vec()
}

/// Whether the runtime's restore container takes cracin's generated profile (the others keep
/// the seed's choice: the engine's default for CRaC, unconfined for OpenJ9).
pub fn uses_generated_profile(rt: Runtime) -> bool {
    rt == Runtime::Criu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_drops_everything_but_checkpoint_restore() {
        let c = checkpoint_flags(Runtime::Criu, 0).join(" ");
        assert_eq!(c, "--cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=unconfined");
        assert!(checkpoint_flags(Runtime::Criu, 1).contains(&"--cap-add=SYS_PTRACE".to_string()));
        for e in [EngineKind::Podman, EngineKind::Docker] {
            let r = restore_flags(Runtime::Criu, e, Path::new("/p/x.json")).join(" ");
            assert_eq!(r, "--cap-drop=ALL --cap-add=CHECKPOINT_RESTORE --security-opt no-new-privileges --security-opt seccomp=/p/x.json");
        }
        assert_eq!(
            restore_flags(Runtime::Openj9, EngineKind::Podman, Path::new("/p")),
            Runtime::Openj9.restore_flags(EngineKind::Podman)
        );
    }
}
