//! `cracin doctor`: a pre-flight that says, check by check, whether this machine can checkpoint
//! and restore a JVM, and what to fix when it cannot. Each check is pass, warn or fail with a fix.

use serde::Serialize;

use std::path::{Path, PathBuf};

use crate::container;
use crate::engine::EngineKind;
use crate::os::sysinfo::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_string),
    }
}

/// Options of `cracin doctor`.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    pub criu: Option<std::path::PathBuf>,
    /// The java to check (default: `java` on PATH).
    pub java: Option<std::path::PathBuf>,
    /// `local` (default), `podman` or `docker`, as the user wrote it: an unknown word is a
    /// failed check (with the fix), not a usage error, so the other checks still print.
    pub engine: Option<String>,
    /// `criu` (default), `crac` or `openj9`: checks that the JVM supports it.
    pub runtime: Option<String>,
    /// Where the checkpoint will be written, and how large it is expected to be (MB).
    pub out: Option<std::path::PathBuf>,
    pub expected_mb: u64,
}

/// Every check, in the order they print: the host and CRIU, the privileges and kernel settings
/// CRIU needs, the JDK and tools, disk space and seccomp, then the runtime and the engine asked for.
pub fn run(o: &DoctorOptions) -> Vec<Check> {
    let kernel = kernel_version();
    let mut v = vec![kernel_check(kernel), cpu_check()];
    v.extend(criu_checks(o.criu.as_deref(), kernel));
    v.extend([
        privileges_check(),
        ns_last_pid_check(),
        soft_dirty_check(),
        ptrace_check(),
        rlimits_check(),
        jdk_check(o.java.as_deref()),
    ]);
    v.extend(tool_checks());
    v.extend(disk_check(o.out.as_deref(), o.expected_mb));
    v.push(seccomp_check());
    v.extend(runtime_checks(o.runtime.as_deref(), o.java.clone()));
    v.extend(engine_checks_for(o.engine.as_deref()));
    v
}

/// The line about this CPU: its level, so the user knows which baselines work here.
fn cpu_check() -> Check {
    let (model, flags) = crate::os::sysinfo::cpu();
    let (status, detail) = match crate::jvm::cpu::highest_level(&flags) {
        Some(l) => (
            Status::Pass,
            format!(
                "{model}: {}; --cpu-baseline up to {} works here (default `host` needs every feature of this CPU on the restore host)",
                l.name(),
                l.name()
            ),
        ),
        None => (
            Status::Warn,
            format!("{model}: below x86-64-v2; only --cpu-baseline host works here"),
        ),
    };
    Check {
        name: "cpu level".into(),
        status,
        detail,
        fix: None,
    }
}

fn kernel_check(kernel: Option<Version>) -> Check {
    check(
        "kernel",
        if kernel.is_some() {
            Status::Pass
        } else {
            Status::Warn
        },
        format!("Linux {}", kernel_release()),
        None,
    )
}

/// CRIU is there and knows this kernel; then its kernel-feature cache.
fn criu_checks(criu: Option<&Path>, kernel: Option<Version>) -> Vec<Check> {
    match crate::stage::criu::Criu::find(criu) {
        Ok(c) => {
            let detail = format!("CRIU {} at {}", c.version, c.path.display());
            let first = match kernel.map(|k| c.check_kernel(k)) {
                Some(Err(e)) => check(
                    "criu",
                    Status::Fail,
                    format!("{detail}: {e}"),
                    e.hint().as_deref(),
                ),
                _ => check("criu", Status::Pass, detail, None),
            };
            vec![first, kdat_check(&c)]
        }
        Err(e) => vec![check(
            "criu",
            Status::Fail,
            e.to_string(),
            e.hint().as_deref(),
        )],
    }
}

fn privileges_check() -> Check {
    let root = is_root();
    let cr = has_cap(CAP_CHECKPOINT_RESTORE);
    let admin = has_cap(CAP_SYS_ADMIN);
    if root && admin {
        check("privileges", Status::Pass, "root with CAP_SYS_ADMIN", None)
    } else if cr {
        check(
            "privileges",
            Status::Warn,
            "CAP_CHECKPOINT_RESTORE without CAP_SYS_ADMIN: only `criu --unprivileged` works",
            Some("run as root for the local engine, or use a container engine"),
        )
    } else {
        check(
            "privileges",
            Status::Fail,
            "not root and no CAP_CHECKPOINT_RESTORE",
            Some("run cracin as root (sudo)"),
        )
    }
}

fn ns_last_pid_check() -> Check {
    let (exists, writable) = ns_last_pid();
    match (exists, writable) {
        (true, true) => check("ns_last_pid", Status::Pass, "/proc/sys/kernel/ns_last_pid is writable", None),
        (true, false) => check(
            "ns_last_pid",
            Status::Warn,
            "/proc/sys/kernel/ns_last_pid is read-only (a container with /proc/sys masked?)",
            Some("CRIU >= 3.16 restores PIDs with clone3 set_tid instead; fine unless the kernel is older than 5.5"),
        ),
        _ => check(
            "ns_last_pid",
            Status::Fail,
            "/proc/sys/kernel/ns_last_pid is missing: the kernel lacks CONFIG_CHECKPOINT_RESTORE",
            Some("use a kernel built with CONFIG_CHECKPOINT_RESTORE=y (every major distribution's is)"),
        ),
    }
}

fn soft_dirty_check() -> Check {
    if soft_dirty_supported() {
        check(
            "soft-dirty",
            Status::Pass,
            "soft-dirty page tracking works (pre-dump possible)",
            None,
        )
    } else {
        check(
            "soft-dirty",
            Status::Warn,
            "no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY off): `criu pre-dump` and --track-mem fail",
            Some("nothing to do: cracin does not use pre-dump; a full dump works"),
        )
    }
}

fn ptrace_check() -> Check {
    match ptrace_scope() {
        Some(s) if s >= 2 => check(
            "ptrace",
            Status::Fail,
            format!("Yama ptrace_scope={s}: only privileged processes may ptrace"),
            Some("echo 1 > /proc/sys/kernel/yama/ptrace_scope, or add CAP_SYS_PTRACE"),
        ),
        Some(s) => check(
            "ptrace",
            Status::Pass,
            format!("Yama ptrace_scope={s}"),
            None,
        ),
        None => check("ptrace", Status::Pass, "no Yama restrictions", None),
    }
}

fn rlimits_check() -> Check {
    if has_cap(CAP_SYS_RESOURCE) {
        check("rlimits", Status::Pass, "CAP_SYS_RESOURCE present", None)
    } else {
        check(
            "rlimits",
            Status::Warn,
            "no CAP_SYS_RESOURCE: CRIU prints a harmless `Can't setup RLIMIT_NOFILE` line",
            None,
        )
    }
}

/// The java given, or the one on PATH.
fn jdk_check(java: Option<&Path>) -> Check {
    match java
        .map(Path::to_path_buf)
        .or_else(|| crate::os::cmd::which("java"))
    {
        Some(j) => {
            let jvm = crate::jvm::launch::Jvm::from_binary(&j);
            check(
                "jdk",
                Status::Pass,
                format!("{} at {}", jvm.version, jvm.home.display()),
                None,
            )
        }
        None => check(
            "jdk",
            Status::Fail,
            "no java on PATH",
            Some("apt-get install openjdk-17-jdk-headless, or put your JDK's bin on PATH"),
        ),
    }
}

/// The tools cracin launches an application with; a line only for a missing one.
fn tool_checks() -> Vec<Check> {
    let mut v = Vec::new();
    for (tool, pkg) in [("unshare", "util-linux"), ("setsid", "util-linux")] {
        if crate::os::cmd::which(tool).is_none() {
            v.push(check(
                tool,
                Status::Fail,
                format!("`{tool}` not found"),
                Some(&format!("apt-get install {pkg}")),
            ));
        }
    }
    v
}

/// Free space where the checkpoint goes (default: the temp dir) against its expected size; no
/// line when the free space cannot be read.
fn disk_check(out: Option<&Path>, expected_mb: u64) -> Option<Check> {
    let target = out
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let expected = expected_mb.max(1) * 1_000_000;
    let free = free_bytes(&target)?;
    let mb = free / 1_000_000;
    let (st, fix) = if free < expected {
        (
            Status::Fail,
            Some("free some space, or write the checkpoint elsewhere (--out)"),
        )
    } else if free < expected * 3 {
        (
            Status::Warn,
            Some("a checkpoint with --force needs room for the old and the new one"),
        )
    } else {
        (Status::Pass, None)
    };
    Some(check(
        "disk",
        st,
        format!(
            "{mb} MB free in {} (a checkpoint is expected to need about {} MB)",
            target.display(),
            expected / 1_000_000
        ),
        fix,
    ))
}

/// Inside a seccomp filter (a container's default profile) criu dump cannot suspend it.
fn seccomp_check() -> Check {
    let seccomp = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    if seccomp == "2" {
        check(
            "seccomp",
            Status::Fail,
            "cracin runs under a seccomp filter: `criu dump` fails with `suspending seccomp failed`",
            Some("run the checkpoint container with --security-opt seccomp=unconfined"),
        )
    } else {
        check(
            "seccomp",
            Status::Pass,
            "no seccomp filter on this process",
            None,
        )
    }
}

/// The runtime asked for (`criu`, the default, needs nothing of the JVM).
fn runtime_checks(runtime: Option<&str>, java: Option<PathBuf>) -> Option<Check> {
    let name = runtime.unwrap_or("criu");
    match crate::container::Runtime::parse(name) {
        Ok(rt) => rt.jdk_probe().map(|probe| runtime_check(probe, java)),
        Err(_) => Some(check(
            "runtime",
            Status::Fail,
            format!("unknown runtime `{name}`"),
            Some("use --runtime criu, crac or openj9"),
        )),
    }
}

/// The engine asked for, as the user wrote it (`local`, the default, needs no more checks).
fn engine_checks_for(engine: Option<&str>) -> Vec<Check> {
    let engine = engine.unwrap_or(EngineKind::Local.name());
    match EngineKind::parse(engine).map(|e| (e, e.container())) {
        Some((_, None)) => vec![],
        Some((_, Some(kind))) => engine_checks(kind),
        None => vec![check(
            "engine",
            Status::Fail,
            format!("unknown engine `{engine}`"),
            Some("use --engine local, podman or docker"),
        )],
    }
}

/// CRIU's kernel-feature cache for this boot (made now when missing: `criu check` once).
fn kdat_check(c: &crate::stage::criu::Criu) -> Check {
    use crate::stage::kdat::{for_criu_run, KdatState};
    let unprivileged = !crate::os::sysinfo::has_cap(crate::os::sysinfo::CAP_SYS_ADMIN);
    let state = for_criu_run(c, unprivileged, true).state.clone();
    match state {
        KdatState::Unavailable(_) => check(
            "kdat cache",
            Status::Warn,
            format!("CRIU's kernel-feature probe: {state}"),
            Some("every CRIU run probes the kernel again (tens of milliseconds per restore)"),
        ),
        _ => check(
            "kdat cache",
            Status::Pass,
            format!("CRIU's kernel-feature probe: {state}"),
            None,
        ),
    }
}

/// Whether the JVM accepts the runtime's start flag (a CRaC or OpenJ9 JDK), by asking it.
fn runtime_check((flag, what): (&str, &str), java: Option<PathBuf>) -> Check {
    let Some(java) = java.or_else(|| crate::os::cmd::which("java")) else {
        return check(
            "runtime",
            Status::Fail,
            "no java to check",
            Some("put the runtime's JDK on PATH or pass --java"),
        );
    };
    let ok = crate::os::cmd::Cmd::new(&java)
        .args([flag, "-version"])
        .timeout(std::time::Duration::from_secs(30))
        .run()
        .is_ok();
    if ok {
        check(
            "runtime",
            Status::Pass,
            format!("{} accepts {flag}", java.display()),
            None,
        )
    } else {
        check(
            "runtime",
            Status::Fail,
            format!("{} does not accept {flag}: it is no {what} JDK", java.display()),
            Some("use --runtime criu (cracin checkpoints any OpenJDK from outside), or point --java at the runtime's JDK"),
        )
    }
}

/// The container engine answers, is recent enough, and has the settings cracin needs.
fn engine_checks(kind: container::EngineKind) -> Vec<Check> {
    let name = EngineKind::from(kind).name();
    let (e, why) = match crate::container::engine::choose_here(name, None) {
        Ok(c) => (c.engine, c.why),
        Err(err) => {
            return vec![check(
                "engine",
                Status::Fail,
                err.to_string(),
                err.hint().as_deref(),
            )]
        }
    };
    let mut v = vec![engine_choice_check(why), engine_version_check(kind, &e)];
    if kind == container::EngineKind::Podman {
        v.push(podman_settings_check(&e));
    }
    v
}

/// Which engine and configuration cracin uses, and what it adds per command.
fn engine_choice_check(why: String) -> Check {
    if why.contains("cracin doctor") {
        // The system's docker cannot checkpoint and cracin's private one is not running.
        check(
            "engine-choice",
            Status::Warn,
            why.split("; `cracin doctor").next().unwrap_or(&why).to_string(),
            Some("start a Docker >= 23 daemon, or cracin's private Docker 26 (scripts/setup-containers.sh, scripts/dockerd.sh start), or use --engine podman"),
        )
    } else {
        check("engine-choice", Status::Pass, why, None)
    }
}

/// The engine answers `version`, and a docker is 26 or later.
fn engine_version_check(kind: container::EngineKind, e: &container::Engine) -> Check {
    let name = EngineKind::from(kind).name();
    let format = if kind == container::EngineKind::Podman {
        "{{.Version}}"
    } else {
        "{{.Server.Version}}"
    };
    let cmd = e
        .command(&["version", "--format", format])
        .timeout(std::time::Duration::from_secs(15));
    match cmd.run() {
        Ok(out) => {
            let ver = out.stdout.trim().to_string();
            let parsed = Version::parse_prefix(&ver);
            let too_old = kind == container::EngineKind::Docker
                && parsed.is_some_and(|p| p < Version(26, 0, 0));
            if too_old {
                check(
                    "engine",
                    Status::Fail,
                    format!("docker {ver}: older than 26, rejects --cap-add=CHECKPOINT_RESTORE"),
                    Some("install Docker >= 23 (26 measured), or use cracin's private Docker 26: scripts/setup-containers.sh, scripts/dockerd.sh start, then CRACIN_DOCKER_HOST=unix:///run/cracin/docker.sock"),
                )
            } else {
                check(
                    "engine",
                    Status::Pass,
                    format!("{name} {ver} ({})", e.binary),
                    None,
                )
            }
        }
        Err(err) => check(
            "engine",
            Status::Fail,
            format!("{name} does not answer: {err}"),
            Some(if kind == container::EngineKind::Docker {
                "run scripts/setup-containers.sh, then scripts/dockerd.sh start"
            } else {
                "run scripts/setup-containers.sh"
            }),
        ),
    }
}

/// podman's configuration: the system's (with what cracin adds per command), or a
/// CONTAINERS_CONF with the settings containers need on such hosts.
fn podman_settings_check(e: &container::Engine) -> Check {
    let conf = e
        .env
        .iter()
        .find(|(k, _)| k == "CONTAINERS_CONF")
        .map(|(_, v)| v.clone());
    let text = conf
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c).ok())
        .unwrap_or_default();
    if conf.is_none() {
        check(
            "engine-settings",
            Status::Pass,
            if e.global_args.is_empty() && e.run_args.is_empty() {
                "the system's podman configuration; this host needs nothing added".to_string()
            } else {
                format!(
                    "the system's podman configuration; cracin adds `{}` to the commands this host needs it for (--dry-run shows them)",
                    e.global_args.iter().chain(e.run_args.iter()).cloned().collect::<Vec<_>>().join(" ")
                )
            },
            None,
        )
    } else if text.contains("default_ulimits") && text.contains("runc") {
        check(
            "engine-settings",
            Status::Pass,
            format!(
                "CONTAINERS_CONF={} (nofile ulimit, runc)",
                conf.unwrap_or_default()
            ),
            None,
        )
    } else {
        check(
            "engine-settings",
            Status::Warn,
            format!("CONTAINERS_CONF={} has no default_ulimits/runc: containers may fail here (`setrlimit RLIMIT_NOFILE`, `cgroups in hybrid mode`)", conf.unwrap_or_default()),
            Some("unset CONTAINERS_CONF (cracin then adds what this host needs per command), or use /opt/cracin/containers.conf (scripts/setup-containers.sh)"),
        )
    }
}

/// Whether any check failed.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}
