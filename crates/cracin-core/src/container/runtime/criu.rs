//! The plain-CRIU recipe (any OpenJDK): cracin itself is in the image, checkpoints the JVM from
//! inside the container (`cracin checkpoint --in-container`, `criu dump --unprivileged`) and
//! restores it as the container's PID 1 (`cracin restore --in-container`). Its Containerfile, its
//! commands and the flags of its containers; every value was measured on podman and Docker
//! (docs/containers.md, docs/privileges.md).

use super::{json_array, Base, FilesSpec, APP_JAR, CHECKPOINT_DIR, CRACIN_IN_IMAGE, MIN_PID};
use crate::container::engine::EngineKind;
use crate::container::plan::GeneratedFile;

/// CRIU 4.2.1 from Debian's source tarball (the same pin as scripts/setup.sh).
pub const CRIU_VERSION: &str = "4.2.1";
pub const CRIU_SHA256: &str = "29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9";

/// Docker 26's default seccomp profile answers clone3 with ENOSYS, so CRIU falls back to writing
/// ns_last_pid, which is read-only in a container. Podman's default profile (containers-common)
/// allows clone3 and works for Docker too (measured: docs/containers.md).
pub const DOCKER_RESTORE_SECCOMP: &str = "/usr/share/containers/seccomp.json";

/// What the checkpoint step of a plan does.
pub const CHECKPOINT_WHY: &str =
    "start the app, wait until ready, warm up, `criu dump --unprivileged` (the container exits)";

/// `run` flags of the checkpoint container of an image that runs as root (the least-privilege
/// set for cracin's non-root images is `security::checkpoint_flags`): `criu dump
/// --unprivileged` needs CHECKPOINT_RESTORE and no seccomp filter at all (`suspending seccomp
/// failed` under any profile); SYS_PTRACE only where Yama's ptrace_scope >= 1, because criu is
/// java's sibling, not its ancestor.
pub fn checkpoint_flags(yama_ptrace_scope: u8) -> Vec<&'static str> {
    let mut v = vec!["--cap-add=CHECKPOINT_RESTORE"];
    if yama_ptrace_scope >= 1 {
        v.push("--cap-add=SYS_PTRACE");
    }
    v.extend(["--security-opt", "seccomp=unconfined"]);
    v
}

/// `run` flags of restore containers of an image that runs as root: `criu restore
/// --unprivileged` with CHECKPOINT_RESTORE only; on Docker also a seccomp profile that allows
/// clone3 (see `DOCKER_RESTORE_SECCOMP`).
pub fn restore_flags(engine: EngineKind) -> Vec<String> {
    match engine {
        EngineKind::Podman => vec!["--cap-add=CHECKPOINT_RESTORE".into()],
        EngineKind::Docker => vec![
            "--cap-add=CHECKPOINT_RESTORE".into(),
            "--security-opt".into(),
            format!("seccomp={DOCKER_RESTORE_SECCOMP}"),
        ],
    }
}

/// The capabilities a restore container needs, as Kubernetes names them.
pub const RESTORE_CAPABILITIES: &[&str] = &["CHECKPOINT_RESTORE"];

/// A Kubernetes restore container's `allowPrivilegeEscalation`, and why.
pub const KUBE_ESCALATION: (&str, &str) = ("false", "cracin, the container's first process, holds CHECKPOINT_RESTORE as a file capability and\n          # hands it to criu through the ambient set: that works under no_new_privs");

/// The `seccompProfile` lines of a Kubernetes pod: cracin's generated profile.
pub fn kube_seccomp(profile: &str) -> String {
    format!("          # The container default plus clone3 for criu restore; install seccomp/{profile}\n          # into the kubelet's seccomp folder (default /var/lib/kubelet/seccomp) on every node.\n          type: Localhost\n          localhostProfile: {profile}\n")
}

/// The restore command without `--fallback` and the application command after it.
pub fn without_fallback(restore_cmd: &[String]) -> Vec<String> {
    let i = restore_cmd.iter().position(|a| a == "--fallback");
    restore_cmd[..i.unwrap_or(restore_cmd.len())].to_vec()
}

/// The plan's note on `--cpu-baseline` (docs/cpu.md).
pub fn cpu_baseline_note(b: crate::jvm::cpu::CpuBaseline) -> String {
    format!(
        "--cpu-baseline {}: the JVM and glibc are capped at that level inside the checkpoint container; cracin.json records the features a restore host needs",
        b.name()
    )
}

/// The restore image's CMD: cracin is PID 1 of the restore container: it restores with `criu
/// restore -d`, becomes the JVM's parent (orphans go to PID 1), forwards SIGTERM/SIGINT and exits
/// with the JVM's status; `--inherit-stdio` maps the dumped stdout/stderr files onto the
/// container's own (`criu --inherit-fd`), so `logs` shows the restored application; with a
/// fallback it starts the application cold when the checkpoint cannot be restored.
pub fn restore_cmd(app_cmd: &[String], fallback: bool) -> Vec<String> {
    let mut v: Vec<String> = [
        CRACIN_IN_IMAGE,
        "restore",
        CHECKPOINT_DIR,
        "--in-container",
        "--foreground",
        "--inherit-stdio",
    ]
    .map(String::from)
    .to_vec();
    if fallback {
        v.push("--fallback".into());
        v.push("--".into());
        v.extend(app_cmd.iter().cloned());
    }
    v
}

/// The checkpoint command of the plain-CRIU runtime (the checkpoint container's CMD): cracin is
/// PID 1, starts the application with PIDs >= `MIN_PID` and no capabilities, waits for readiness,
/// warms up and dumps with `criu dump --unprivileged`.
pub fn checkpoint_cmd(ready: Option<&str>, warmup: &[String], app_cmd: &[String]) -> Vec<String> {
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

/// The notes of a plan: a JDK image gets CRIU built in a stage that needs the network.
pub fn plan_notes(base: Option<&Base>) -> Vec<String> {
    match base {
        Some(Base::JdkImage { .. }) => {
            vec!["the CRIU builder stage needs network access (apt, deb.debian.org)".into()]
        }
        _ => vec![],
    }
}

/// The files of the build context besides the Containerfile: none (cracin is copied in by a
/// plan step).
pub fn files(_s: &FilesSpec) -> Vec<GeneratedFile> {
    vec![]
}

/// The Containerfile of the checkpoint image.
pub fn containerfile(s: &FilesSpec, f: &mut String) {
    match (&s.image, &s.base) {
        (Some(image), _) => {
            f.push_str(&format!(
                "# The image must already hold a JVM and CRIU >= 4.2 on PATH (checked below).\nFROM {image}\n"
            ));
        }
        (None, Base::CracinDebian { jdk }) => {
            f.push_str(&format!(
                "# Debian with OpenJDK {jdk} and CRIU {CRIU_VERSION}, made offline by `cracin base --jdk {jdk}`.\nFROM localhost/cracin-base:jdk{jdk}\n"
            ));
        }
        (None, Base::JdkImage { image }) => {
            let lines = [
                format!("# CRIU {CRIU_VERSION} is built from Debian's source tarball in a builder stage FROM the same"),
                "# (Debian or Ubuntu based) JDK image, so its libraries match; distribution packages of CRIU".into(),
                "# before 4.2 fail on Linux >= 6.16. This stage needs the network (apt, deb.debian.org).".into(),
                format!("ARG JDK_IMAGE={image}"),
                "FROM ${JDK_IMAGE} AS criu-builder".into(),
                "RUN apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config \\".into(),
                "    libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev libprotobuf-c-dev \\".into(),
                "    libprotobuf-dev protobuf-c-compiler protobuf-compiler python3-protobuf uuid-dev curl xz-utils \\".into(),
                "    ca-certificates".into(),
                "WORKDIR /build".into(),
                format!("RUN curl -fsSLO http://deb.debian.org/debian/pool/main/c/criu/criu_{CRIU_VERSION}.orig.tar.xz \\"),
                format!(" && echo \"{CRIU_SHA256}  criu_{CRIU_VERSION}.orig.tar.xz\" | sha256sum -c \\"),
                format!(" && tar xf criu_{CRIU_VERSION}.orig.tar.xz \\"),
                format!(" && make -C criu-{CRIU_VERSION} -j\"$(nproc)\" criu \\"),
                format!(" && mkdir -p /out/lib && cp criu-{CRIU_VERSION}/criu/criu /out/criu \\"),
                " && ldd /out/criu | awk '/=> \\//{print $3}' | grep -vE '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\\.so' \\".into(),
                "    | xargs -r cp -L -t /out/lib/".into(),
                String::new(),
                "FROM ${JDK_IMAGE}".into(),
                "COPY --from=criu-builder /out/criu /usr/local/sbin/criu".into(),
                "COPY --from=criu-builder /out/lib/ /usr/local/lib/cracin-criu/".into(),
                "RUN echo /usr/local/lib/cracin-criu >/etc/ld.so.conf.d/cracin-criu.conf && ldconfig".into(),
            ];
            for l in lines {
                f.push_str(&l);
                f.push('\n');
            }
        }
        (None, other) => {
            f.push_str(&format!("FROM {}\n", other.name()));
        }
    }
    let jar = s.image.is_none();
    if jar {
        f.push_str(&format!("COPY app.jar {APP_JAR}\n"));
    }
    f.push_str(&format!(
        "# cracin checkpoints the JVM from inside the container and restores it as PID 1.\n\
COPY cracin {CRACIN_IN_IMAGE}\n\
# {CHECKPOINT_DIR} must not exist yet: the checkpoint is written atomically.\n\
{user}{workdir}EXPOSE {port}\n\
STOPSIGNAL SIGTERM\n\
# Checkpoint run: start the application with PIDs >= {MIN_PID} and no capabilities, wait until it is\n\
# ready, warm it up, `criu dump --unprivileged` into {CHECKPOINT_DIR}; the container then exits.\n\
ENTRYPOINT []\n\
CMD {cmd}\n",
        port = s.port,
        user = crate::container::user::criu_image_lines(&s.user, CRACIN_IN_IMAGE),
        // An existing image keeps its own working directory: its command may use relative paths.
        workdir = if jar { "WORKDIR /app\n" } else { "" },
        cmd = json_array(
            &s.checkpoint_cmd
                .clone()
                .unwrap_or_else(|| crate::container::portable::criu_checkpoint_cmd(
                    checkpoint_cmd(s.ready.as_deref(), &s.warmup, &s.app_cmd),
                    s.cpu_baseline
                ))
        ),
    ));
}
