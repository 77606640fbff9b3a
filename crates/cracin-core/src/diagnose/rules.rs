//! The rule catalog: each rule is data (patterns, cause, fix, reference). Add a rule by adding an
//! entry here and a real log fixture under `tests/fixtures/logs/<rule-id>/` that it must match
//! first (`tests/diagnose.rs` fails for a rule without one).
//!
//! Order matters: when several rules match the logs of one failure, the findings come in this
//! order, so a root cause (CRIU too old, a missing capability) is listed before the consequences
//! it drags along (a dump that then fails on a socket, a restore that then finds a PID taken).

/// One known failure mode.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    /// Regular expressions matched against single log lines.
    pub patterns: &'static [&'static str],
    pub cause: &'static str,
    pub fix: &'static str,
    pub reference: Option<&'static str>,
}

pub static RULES: &[Rule] = &[
    // --- this machine can not checkpoint at all -------------------------------------------
    Rule {
        id: "criu-vdso-too-old",
        title: "CRIU is too old for this kernel (vDSO layout)",
        patterns: &[r"Unexpected rt vDSO area bounds"],
        cause: "Linux 6.13 split the vvar/vDSO area; CRIU before 4.1 does not understand the new layout and fails before it does anything",
        fix: "install CRIU 4.2.1 or newer (`scripts/setup.sh` builds it from Debian's source) and pass it with --criu PATH",
        reference: Some("https://github.com/checkpoint-restore/criu/issues/2532"),
    },
    Rule {
        id: "criu-so-passcred-too-old",
        title: "CRIU is too old for this kernel (SO_PASSCRED on TCP sockets)",
        patterns: &[r"Can't get 1:16 opt: Operation not supported", r"Can't get 1:34 opt: Operation not supported"],
        cause: "since Linux 6.16 SO_PASSCRED can not be read on TCP sockets; CRIU before 4.2 asks for it and fails on every JVM that has a socket open",
        fix: "install CRIU 4.2.1 or newer (`scripts/setup.sh` builds it from Debian's source) and pass it with --criu PATH",
        reference: Some("https://github.com/checkpoint-restore/criu/issues/2705"),
    },
    Rule {
        id: "missing-cap-checkpoint-restore",
        title: "criu lacks the privileges to checkpoint (not root, no CAP_CHECKPOINT_RESTORE)",
        patterns: &[
            r"CRIU needs to have the CAP_SYS_ADMIN or the CAP_CHECKPOINT_RESTORE capability",
            r"Effective capability 40 missing",
        ],
        cause: "criu ran as a user without CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (not root, or in a container that did not grant the capability)",
        fix: "run cracin as root (sudo); in a container add --cap-add=CHECKPOINT_RESTORE (and run criu with --unprivileged)",
        reference: None,
    },
    Rule {
        id: "criu-container-needs-unprivileged",
        title: "criu in a container needs --unprivileged (or SYS_ADMIN)",
        patterns: &[
            r"kerndat_has_nftables_concat failed",
            r"Unable create a network namespace: Operation not permitted",
        ],
        cause: "in a container with CHECKPOINT_RESTORE but not SYS_ADMIN, criu's kernel feature detection tries to create namespaces and fails; --unprivileged skips what needs SYS_ADMIN",
        fix: "run criu with --unprivileged inside the container (`cracin build` does), or give the checkpoint container --cap-add=SYS_ADMIN",
        reference: None,
    },
    Rule {
        id: "engine-rlimit-nofile",
        title: "the container engine can not set the open-files limit",
        patterns: &[
            r"setrlimit RLIMIT_NOFILE: Operation not permitted",
            r"error setting rlimit type 7: operation not permitted",
        ],
        cause: "the engine's default nofile limit is above this host's hard limit, and root here lacks CAP_SYS_RESOURCE to raise it, so every container fails to start",
        fix: "use cracin's engine settings (CONTAINERS_CONF=/opt/cracin/containers.conf, written by scripts/setup-containers.sh: default_ulimits nofile=20000:20000) or pass --ulimit nofile=20000:20000",
        reference: None,
    },
    Rule {
        id: "missing-cap-sys-ptrace",
        title: "criu may not ptrace the JVM (CAP_SYS_PTRACE missing)",
        patterns: &[
            r"Unable to interrupt task: \d+ \(Operation not permitted\)",
            r"Unable to seize task: \d+ \(Operation not permitted\)",
            r"Can't seize task",
        ],
        cause: "the JVM holds capabilities criu does not have (or the host restricts ptrace), so the kernel refuses to let criu attach to it without CAP_SYS_PTRACE",
        fix: "give criu CAP_SYS_PTRACE (in a container: --cap-add=SYS_PTRACE), or start the JVM with fewer capabilities than criu (setpriv --inh-caps=-all --bounding-set=-all)",
        reference: None,
    },
    Rule {
        id: "seccomp-blocks-dump",
        title: "a seccomp filter on criu blocks the dump",
        patterns: &[r"suspending seccomp failed"],
        cause: "criu itself runs under a seccomp filter (a container's default profile, or WSL2 mirrored networking), so the kernel refuses to suspend the JVM's seccomp filter while criu dumps it",
        fix: "run the checkpoint container with --security-opt seccomp=unconfined (on WSL2 turn off networkingMode=mirrored)",
        reference: Some("https://github.com/microsoft/WSL/issues/10981"),
    },
    Rule {
        id: "soft-dirty-missing",
        title: "this kernel has no soft-dirty memory tracking (pre-dump, --track-mem)",
        patterns: &[r"BUG at criu/mem\.c", r"Tracking memory is not available"],
        cause: "incremental dumps (criu pre-dump, dump --track-mem) need CONFIG_MEM_SOFT_DIRTY, which this kernel lacks",
        fix: "take a single full dump (cracin does unless asked for pre-dumps); do not pass --track-mem or pre-dump on this kernel",
        reference: None,
    },
    // --- the JVM was started in a way CRIU can not dump -----------------------------------
    Rule {
        id: "session-outside-pidns",
        title: "the JVM's session leader is outside its PID namespace",
        patterns: &[r"session leader of \d+\(\d+\) is outside of its pid namespace", r"is outside of its pid namespace"],
        cause: "the JVM runs in its own PID namespace but belongs to a session started outside it; CRIU can not recreate that session",
        fix: "start the JVM as a session leader inside the namespace (`unshare --pid --fork setsid ...`), as `cracin checkpoint` does",
        reference: None,
    },
    Rule {
        id: "inherited-fd",
        title: "the JVM holds an inherited file descriptor CRIU can not resolve",
        patterns: &[r"Can't lookup mount=\d+ for fd=\d+"],
        cause: "a file descriptor the JVM inherited from its launcher points to a file on a mount that is not visible in the JVM's mount namespace",
        fix: "close every file descriptor above 2 before starting the JVM (cracin's launcher does; a wrapper script or tool that leaks fds must not)",
        reference: None,
    },
    Rule {
        id: "file-locks",
        title: "the JVM holds file locks",
        patterns: &[r"Some file locks are hold by dumping tasks"],
        cause: "the application holds a POSIX or flock lock (an embedded database, a lock file); CRIU refuses to dump locks unless told to",
        fix: "pass --file-locks to criu on dump and on restore (cracin always does; add it if you run criu yourself)",
        reference: None,
    },
    Rule {
        id: "tcp-established-needed",
        title: "the JVM has an open TCP connection",
        patterns: &[
            r"Connected TCP socket, consider using --tcp-established",
            r"Connected TCP socket in image",
        ],
        cause: "a client connection (or a just-closed one a server keeps for a while) was open at checkpoint time; CRIU saves it only with --tcp-established or drops it with --tcp-close, and the restore needs the same flag as the dump",
        fix: "pass --tcp-close on dump and restore (cracin's default: connections are dropped, listening sockets kept), or --tcp-established on both; stop the warm-up load before the dump",
        reference: None,
    },
    Rule {
        id: "no-space",
        title: "no space left for the images",
        patterns: &[r"No space left on device"],
        cause: "the file system holding the checkpoint directory is full; the images are roughly the JVM's resident memory (the heap is most of it)",
        fix: "free space or choose another --out directory; a smaller heap (-Xms16m, -Xmx) shrinks the images",
        reference: None,
    },
    Rule {
        id: "network-lock-leftover",
        title: "CRIU's network-lock firewall rules were left behind",
        patterns: &[r"-m mark ! --mark 0xc114 .*-j DROP", r"table inet CRIU"],
        cause: "a dump with --tcp-established drops the JVM's connections with firewall rules until a restore succeeds; after a failed restore they stay and silently block those ports",
        fix: "delete them (`iptables-save | grep 0xc114`, then `iptables -D ...` for each; with nftables `nft delete table inet CRIU`) or restore successfully once",
        reference: None,
    },
    // --- the restore host differs from the checkpoint host ---------------------------------
    Rule {
        id: "cpu-features-missing",
        title: "this CPU lacks features the checkpoint's CPU had",
        patterns: &[
            r"CPU instruction capabilities do not match run time",
            r"cpu: CPU capabilities .* do not match",
            r"You have to specify -XX:CPUFeatures=",
            r"Image checkpoint has incompatible CPU features",
            r"incompatible or missing CPU features",
        ],
        cause: "the JVM in the checkpoint was compiled (JIT) for CPU instructions the restoring machine does not have; it would crash on first use",
        fix: "restore on the same CPU model, or take the checkpoint on the oldest CPU you restore on (CRaC: -XX:CPUFeatures=generic at checkpoint); `cracin restore --force` tries anyway",
        reference: Some("https://github.com/zulu-openjdk/zulu-openjdk/issues/320"),
    },
    Rule {
        id: "restore-capabilities",
        title: "the restore lacks capabilities the checkpointed JVM held",
        patterns: &[r"Unable to restore capabilities", r"Unable to drop capability \d+"],
        cause: "the JVM was checkpointed holding capabilities (e.g. started as root) that the restoring criu does not have: without CAP_SETPCAP it can not even shrink the bounding set (\"Unable to drop capability\"), and it can never grant capabilities it lacks (\"Unable to restore capabilities\"); the restore then hangs or dies",
        fix: "start the JVM for the checkpoint with fewer capabilities (`setpriv --inh-caps=-all --bounding-set=-checkpoint_restore,-sys_ptrace`, as `cracin build` does), or restore with the same capabilities (root, or --cap-add for each, SETPCAP included)",
        reference: None,
    },
    // --- the restore host's state clashes with the checkpoint ------------------------------
    Rule {
        id: "restore-namespace-privileges",
        title: "the restore may not recreate the JVM's namespaces",
        patterns: &[r"Can't fork for \d+: Operation not permitted"],
        cause: "the checkpoint holds a JVM that ran in its own PID namespace (cracin's local engine); recreating it needs CAP_SYS_ADMIN, which this criu lacks (not root, or an unprivileged container restore)",
        fix: "restore as root (`sudo cracin restore`); in a container, checkpoint and restore inside the container's own PID namespace with criu --unprivileged (`cracin build`)",
        reference: None,
    },
    Rule {
        id: "pid-taken",
        title: "a PID the checkpoint needs is taken",
        patterns: &[r"Can't fork for \d+: File exists"],
        cause: "CRIU restores every task with its original PID, and one of them is used by another process in the target PID namespace: a previous restore still running, the zombie of the original JVM, or any process of the restore container",
        fix: "restore into a fresh PID namespace (cracin's local engine does: checkpoint with `cracin checkpoint`, not a bare JVM) and stop earlier restores; in containers start the JVM with high PIDs (CRaC: -XX:CRaCMinPid=1000) so they are free at restore",
        reference: Some("https://github.com/checkpoint-restore/criu/issues/2383"),
    },
    Rule {
        id: "pid-not-settable",
        title: "CRIU can not give the restored JVM its old PID",
        patterns: &[
            r"ns_last_pid on procfs: Read-only file system",
            r"Can't fork for \d+: Read-only file system",
            r"Pid \d+ do not match expected \d+",
        ],
        cause: "without clone3 set_tid (an old kernel or CRIU, or a seccomp profile such as Docker's that blocks clone3) CRIU sets PIDs through /proc/sys/kernel/ns_last_pid, which is read-only in containers; the JVM then gets another PID and the restore fails",
        fix: "allow clone3 (Podman's default seccomp profile and cracin's own, `cracin seccomp`, do; Docker's default does not) with CRIU 3.15 or newer on Linux 5.5 or newer; CRaC: -XX:CRaCMinPid=1000 keeps the JVM's PID clear of the container's own processes",
        reference: Some("https://github.com/CRaC/openjdk-builds/issues/1"),
    },
    Rule {
        id: "gid-sid-intersects-pid",
        title: "the restoring process group or session id collides with a PID of the checkpoint",
        patterns: &[r"Current [gs]id \d+ intersects with pid \(\d+\) in images", r"sid \d+ intersects with pid"],
        cause: "the JVM was not a session leader (started from a shell or an entrypoint script), so CRIU moves it into the restoring criu's session or process group, whose id is a PID of the checkpoint (common in Alpine and OpenShift containers; the number in parentheses is a task state, not a PID)",
        fix: "start the restore from a process group and session of its own (`setsid`), and checkpoint the JVM with PIDs above those the restore container uses (CRaC: -XX:CRaCMinPid=1000)",
        reference: Some("https://github.com/OpenLiberty/ci.docker/issues/448"),
    },
    Rule {
        id: "port-in-use",
        title: "the application's port is taken",
        patterns: &[
            r"Can't bind inet socket.*Address already in use",
            r"BindException: Address already in use",
            r"Address already in use",
        ],
        cause: "a socket the application listens on is already bound on the restoring host, typically by the original JVM (dumped with --leave-running) or by a previous restore",
        fix: "stop the process that holds the port (`ss -ltnp`), or the previous restore, then restore again",
        reference: None,
    },
    Rule {
        id: "file-size-changed",
        title: "a file the JVM had open changed after the checkpoint",
        patterns: &[r"File .* has bad size \d+ \(expect \d+\)"],
        cause: "CRIU checks the size of every regular file the JVM had open at the dump; this one (named in the evidence) grew or shrank since: a redeployed jar, or a log or redirected output written after the dump",
        fix: "a changed jar or class file means the application changed: take the checkpoint again (`cracin checkpoint --force`); for a log or redirected output, let each restore write elsewhere (cracin does this for stdout/stderr; if you run criu yourself use --inherit-fd fd[1]:PATH)",
        reference: None,
    },
    Rule {
        id: "images-deduplicated",
        title: "the images were emptied by an --auto-dedup restore",
        patterns: &[r"vdso: Invalid ELF magic"],
        cause: "`criu restore --auto-dedup` punches the restored pages out of pages-*.img; the next restore reads zeros instead of the JVM's memory",
        fix: "take the checkpoint again (`cracin checkpoint --force`) and never restore images you keep with --auto-dedup",
        reference: None,
    },
    Rule {
        id: "tty-params",
        title: "CRIU can not restore the JVM's terminal",
        patterns: &[r"Can't set tty params", r"Don't have tty to inherit session from", r"tty: .*Operation not permitted"],
        cause: "the JVM's stdio was a terminal; the restore has no terminal to give back, or (unprivileged) may not set its parameters (harmless for CRaC, fatal for OpenJ9 without -ti)",
        fix: "give the JVM files or pipes instead of a terminal (cracin does), or run the container with -ti; with criu directly use --inherit-fd for fd 0-2",
        reference: Some("https://github.com/eclipse-openj9/openj9/issues/18229"),
    },
    // --- CRaC refuses --------------------------------------------------------------------------
    Rule {
        id: "crac-open-file",
        title: "CRaC refused: the application has open files",
        patterns: &[r"CheckpointOpenFileException"],
        cause: "OpenJDK CRaC refuses to checkpoint while the application holds open files (they could change or vanish before the restore)",
        fix: "close them in an org.crac Resource's beforeCheckpoint, or allow them with a file descriptor policy (-Djdk.crac.resource-policies=FILE, `type: file`, `action: close|ignore|reopen`)",
        reference: Some("https://docs.azul.com/core/crac/fd-policies"),
    },
    Rule {
        id: "crac-open-socket",
        title: "CRaC refused: the application has open sockets",
        patterns: &[r"CheckpointOpenSocketException", r"CheckpointOpenResourceException"],
        cause: "OpenJDK CRaC refuses to checkpoint while the application holds open sockets (a listening server socket, a database connection)",
        fix: "stop the connectors / close the pools in an org.crac Resource's beforeCheckpoint and reopen them in afterRestore (a socket policy can only close, not reopen)",
        reference: Some("https://github.com/spring-projects/spring-framework/issues/33299"),
    },
    // --- the application itself ------------------------------------------------------------
    Rule {
        id: "java-not-found",
        title: "the JVM could not be started (command not found)",
        patterns: &[r"no JVM found: .* is not on PATH", r"exec: \S+: not found", r"failed to execute .*: No such file or directory", r"command not found"],
        cause: "the command after `--` names a program that is not on PATH or does not exist",
        fix: "give the full command that starts the JVM after `--`, e.g. `-- /usr/bin/java -jar app.jar`, and check that `java` is on PATH",
        reference: None,
    },
    Rule {
        id: "class-version-too-new",
        title: "the application needs a newer Java",
        patterns: &[r"UnsupportedClassVersionError"],
        cause: "the application was compiled for a newer Java release than the JVM that runs it",
        fix: "run it with a newer JDK (give its java after `--`) or compile with --release for this JDK",
        reference: None,
    },
    Rule {
        id: "jvm-heap-reservation",
        title: "the JVM could not reserve its heap",
        patterns: &[r"Could not reserve enough space for .*object heap", r"There is insufficient memory for the Java Runtime"],
        cause: "the heap asked for (-Xmx/-Xms) is larger than the memory or address space the machine or container allows",
        fix: "lower -Xmx/-Xms (a small -Xms also makes the checkpoint smaller)",
        reference: None,
    },
    Rule {
        id: "app-did-not-start",
        title: "the JVM exited before the application was ready",
        patterns: &[
            r"the application exited with .* before it was ready",
            r"Could not find or load main class",
            r"Unable to access jarfile",
            r"no main manifest attribute",
            r"Error: A fatal exception has occurred",
            r"Could not create the Java Virtual Machine",
        ],
        cause: "the JVM started but the application could not: a wrong class path, jar or main class, or a bad JVM option",
        fix: "run the command after `--` by hand until it starts, then give it to cracin unchanged",
        reference: None,
    },
    Rule {
        id: "app-not-ready",
        title: "the application never became ready",
        patterns: &[r"did not become ready within"],
        cause: "the JVM kept running but the --ready probe never succeeded: it asks a port, path or log line the application does not offer, or the application needs longer to start",
        fix: "compare the --ready probe with what the application's output says it listens on (app.stdout/app.stderr in the checkpoint directory), or raise --ready-timeout",
        reference: None,
    },
];
