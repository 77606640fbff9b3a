//! `cracin doctor`: a pre-flight that says, check by check, whether this machine can checkpoint
//! and restore a JVM, and what to fix when it cannot. Each check is pass, warn or fail with a fix.

use serde::Serialize;

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
}

pub fn run(o: &DoctorOptions) -> Vec<Check> {
    use crate::sysinfo::*;
    let mut v = Vec::new();
    let kernel = kernel_version();
    v.push(check(
        "kernel",
        if kernel.is_some() {
            Status::Pass
        } else {
            Status::Warn
        },
        format!("Linux {}", kernel_release()),
        None,
    ));
    match crate::criu::Criu::find(o.criu.as_deref()) {
        Ok(c) => {
            let detail = format!("CRIU {} at {}", c.version, c.path.display());
            match kernel.map(|k| c.check_kernel(k)) {
                Some(Err(e)) => v.push(check(
                    "criu",
                    Status::Fail,
                    format!("{detail}: {e}"),
                    e.hint().as_deref(),
                )),
                _ => v.push(check("criu", Status::Pass, detail, None)),
            }
        }
        Err(e) => v.push(check(
            "criu",
            Status::Fail,
            e.to_string(),
            e.hint().as_deref(),
        )),
    }
    let root = is_root();
    let cr = has_cap(CAP_CHECKPOINT_RESTORE);
    let admin = has_cap(CAP_SYS_ADMIN);
    v.push(if root && admin {
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
    });
    let (exists, writable) = ns_last_pid();
    v.push(match (exists, writable) {
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
    });
    v.push(if soft_dirty_supported() {
        check("soft-dirty", Status::Pass, "soft-dirty page tracking works (pre-dump possible)", None)
    } else {
        check(
            "soft-dirty",
            Status::Warn,
            "no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY off): `criu pre-dump` and --track-mem fail",
            Some("nothing to do: cracin does not use pre-dump; a full dump works"),
        )
    });
    match ptrace_scope() {
        Some(s) if s >= 2 => v.push(check(
            "ptrace",
            Status::Fail,
            format!("Yama ptrace_scope={s}: only privileged processes may ptrace"),
            Some("echo 1 > /proc/sys/kernel/yama/ptrace_scope, or add CAP_SYS_PTRACE"),
        )),
        Some(s) => v.push(check(
            "ptrace",
            Status::Pass,
            format!("Yama ptrace_scope={s}"),
            None,
        )),
        None => v.push(check("ptrace", Status::Pass, "no Yama restrictions", None)),
    }
    v.push(if has_cap(CAP_SYS_RESOURCE) {
        check("rlimits", Status::Pass, "CAP_SYS_RESOURCE present", None)
    } else {
        check(
            "rlimits",
            Status::Warn,
            "no CAP_SYS_RESOURCE: CRIU prints a harmless `Can't setup RLIMIT_NOFILE` line",
            None,
        )
    });
    let java = o.java.clone().or_else(|| crate::process::which("java"));
    match java {
        Some(j) => {
            let jvm = crate::app::Jvm::from_binary(&j);
            v.push(check(
                "jdk",
                Status::Pass,
                format!("{} at {}", jvm.version, jvm.home.display()),
                None,
            ));
        }
        None => v.push(check(
            "jdk",
            Status::Fail,
            "no java on PATH",
            Some("apt-get install openjdk-17-jdk-headless, or put your JDK's bin on PATH"),
        )),
    }
    for (tool, pkg) in [("unshare", "util-linux"), ("setsid", "util-linux")] {
        if crate::process::which(tool).is_none() {
            v.push(check(
                tool,
                Status::Fail,
                format!("`{tool}` not found"),
                Some(&format!("apt-get install {pkg}")),
            ));
        }
    }
    if let Some(free) = free_bytes(&std::env::temp_dir()) {
        let gib = free as f64 / (1u64 << 30) as f64;
        v.push(check(
            "disk",
            if free < 1 << 30 {
                Status::Warn
            } else {
                Status::Pass
            },
            format!("{gib:.1} GiB free in {}", std::env::temp_dir().display()),
            (free < 1 << 30).then_some("a JVM checkpoint needs 50-500 MB; free some space"),
        ));
    }
    v
}

/// Whether any check failed.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}
