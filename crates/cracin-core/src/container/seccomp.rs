//! The seccomp profile cracin generates for restore containers, as data: the usual container
//! default (allow the system calls an ordinary process uses, refuse kernel-administration,
//! namespace, mount, keyring, BPF, perf, io_uring and cross-process-memory calls, `clone` only
//! without namespace flags, `personality` only with the harmless values) plus what
//! `criu restore --unprivileged` needs on top: `clone3`, which CRIU uses with `set_tid` to give
//! every restored thread its old PID. Docker 26's own default answers clone3 with ENOSYS (CRIU
//! then needs a writable ns_last_pid, which a container does not have); podman's default allows
//! it. One profile for both engines, written by cracin as a file (`cracin seccomp`,
//! `cracin build`, `cracin kube`) instead of `unconfined` or another engine's file.
//!
//! What clone3 costs: seccomp cannot look into clone3's argument structure, so a process may
//! create namespaces with it; without capabilities that means only a user namespace, which the
//! host's `user.max_user_namespaces` can forbid. The checkpoint container cannot have a profile
//! at all (docs/containers.md: the kernel lets criu suspend the JVM's filter only when criu is
//! itself unfiltered and holds CAP_SYS_ADMIN).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Allowed without conditions (x86_64 and aarch64 names; names a kernel or libseccomp does not
/// know are skipped by the runtime).
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_madvise",
    "process_mrelease",
    "pselect6",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setdomainname",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "sethostname",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socket",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
];

/// What CRIU's restore needs beyond the default, with the reason the profile file carries.
const FOR_CRIU: &[(&str, &str)] = &[(
    "clone3",
    "criu restore gives each restored task its old PID with clone3 set_tid",
)];

/// `clone` with any of CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET is refused.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `personality` values an ordinary process uses (PER_LINUX, UNAME26, PER_LINUX32, …, query).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The profile as JSON (the format podman, Docker and the kubelet read).
pub fn profile() -> String {
    let mut s = String::from(
        "{\n  \"comment\": \"Generated by cracin: a container default plus clone3 for criu restore --unprivileged (docs/containers.md)\",\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"defaultErrnoRet\": 1,\n  \"syscalls\": [\n",
    );
    let names: Vec<String> = ALLOWED.iter().map(|n| format!("\"{n}\"")).collect();
    let _ = writeln!(
        s,
        "    {{\n      \"names\": [{}],\n      \"action\": \"SCMP_ACT_ALLOW\"\n    }},",
        names.join(", ")
    );
    let _ = writeln!(
        s,
        "    {{\n      \"names\": [\"clone\"],\n      \"action\": \"SCMP_ACT_ALLOW\",\n      \"args\": [{{\"index\": 0, \"value\": {CLONE_NAMESPACE_FLAGS}, \"valueTwo\": 0, \"op\": \"SCMP_CMP_MASKED_EQ\"}}],\n      \"comment\": \"no namespaces\"\n    }},"
    );
    for p in PERSONALITIES {
        let _ = writeln!(
            s,
            "    {{\n      \"names\": [\"personality\"],\n      \"action\": \"SCMP_ACT_ALLOW\",\n      \"args\": [{{\"index\": 0, \"value\": {p}, \"op\": \"SCMP_CMP_EQ\"}}]\n    }},"
        );
    }
    let extra: Vec<String> = FOR_CRIU
        .iter()
        .map(|(n, why)| {
            format!("    {{\n      \"names\": [\"{n}\"],\n      \"action\": \"SCMP_ACT_ALLOW\",\n      \"comment\": \"{why}\"\n    }}")
        })
        .collect();
    s.push_str(&extra.join(",\n"));
    s.push_str("\n  ]\n}\n");
    s
}

/// The profile's file name: content-addressed, so every build and every node agrees on it and a
/// changed profile never overwrites one a running container uses.
pub fn file_name() -> String {
    let d = Sha256::digest(profile().as_bytes());
    format!("cracin-restore-{}.json", crate::os::text::hex(&d[..6]))
}

/// Where `cracin build` keeps the profile by default: root `/var/lib/cracin/seccomp/NAME`, other
/// users `$HOME/.local/share/cracin/seccomp/NAME` (a directory of their own, never a shared /tmp
/// where another user could plant a file or a symlink under the expected name).
pub fn default_path() -> PathBuf {
    let dir = if crate::os::sysinfo::is_root() {
        PathBuf::from("/var/lib/cracin/seccomp")
    } else {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".local/share/cracin/seccomp"))
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("cracin-{}-seccomp", nix::unistd::geteuid()))
            })
    };
    dir.join(file_name())
}

/// Writes the profile to `path` (mode 0644: the engine reads it), replacing it atomically.
pub fn write(path: &Path) -> crate::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    }
    replace_file(path, &profile(), 0o644)
}

/// Writes `content` to a new file beside `path` (never through an existing name or symlink) and
/// renames it over `path`: readers see the old or the new file, never half of one.
pub fn replace_file(path: &Path, content: &str, mode: u32) -> crate::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| crate::Error::io(&tmp, e))?;
    let done = f
        .write_all(content.as_bytes())
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            // The umask may have taken bits the file must have (scripts: 0755).
            f.set_permissions(std::fs::Permissions::from_mode(mode))
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(crate::Error::io(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_json_with_the_criu_delta_and_without_the_dangerous_calls() {
        let v: serde_json::Value = serde_json::from_str(&profile()).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        let rules = v["syscalls"].as_array().unwrap();
        let unconditional: Vec<&str> = rules
            .iter()
            .filter(|r| r["args"].is_null())
            .flat_map(|r| r["names"].as_array().unwrap())
            .map(|n| n.as_str().unwrap())
            .collect();
        for must in [
            "clone3", "read", "mmap", "futex", "ptrace", "rseq", "socket",
        ] {
            assert!(unconditional.contains(&must), "{must}");
        }
        for never in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "bpf",
            "kexec_load",
            "init_module",
            "perf_event_open",
            "keyctl",
            "io_uring_setup",
            "open_by_handle_at",
            "clone",
            "personality",
            "process_vm_writev",
            "userfaultfd",
            "pivot_root",
        ] {
            assert!(!unconditional.contains(&never), "{never}");
        }
        let clone = rules.iter().find(|r| r["names"][0] == "clone").unwrap();
        assert_eq!(clone["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        let mut sorted = ALLOWED.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            ALLOWED.len(),
            "ALLOWED is sorted and has no duplicates"
        );
    }

    #[test]
    fn the_file_name_follows_the_content_and_write_replaces() {
        assert_eq!(file_name(), file_name());
        assert!(file_name().starts_with("cracin-restore-") && file_name().ends_with(".json"));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub").join(file_name());
        write(&p).unwrap();
        // A symlink planted under the name is replaced, not followed.
        let target = d.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&target, &p).unwrap();
        write(&p).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&p)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), profile());
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
