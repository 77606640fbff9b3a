//! Which podman or docker cracin talks to, with which configuration, and what it adds per
//! command so that engine works on this machine. The default is the engine on the user's PATH
//! with the user's own configuration; cracin's private installation (the containers.conf and the
//! Docker 26 daemon that scripts/setup-containers.sh makes) is used only when asked for
//! (`--engine-config`, `CONTAINERS_CONF`, `CRACIN_DOCKER_HOST`) or when the machine's docker
//! cannot do the job (no daemon answering, or one too old for CHECKPOINT_RESTORE), which the
//! notes and `cracin doctor` say. What a system podman needs on a host like this one (ulimits
//! the host allows, runc on cgroups v1) is added to each command, so `--dry-run` shows it.
//! The decision is a pure function of `HostFacts`, unit-tested; `HostFacts::probe` reads them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::os::cmd::Cmd;

/// podman or docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Podman,
    Docker,
}

/// A container engine: the client binary, the environment it needs, and what cracin adds to its
/// commands so it works on this host (`choose`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub kind: EngineKind,
    pub binary: String,
    pub env: Vec<(String, String)>,
    /// Options before the subcommand of every command (e.g. podman's `--runtime runc`).
    pub global_args: Vec<String>,
    /// Options right after `run`, `create` and `build` (e.g. `--ulimit nofile=20000:20000`).
    pub run_args: Vec<String>,
}

/// cracin's podman settings (written by scripts/setup-containers.sh).
pub const PODMAN_CONF: &str = "/opt/cracin/containers.conf";
/// cracin's private Docker 26 (scripts/setup-containers.sh, scripts/dockerd.sh).
pub const DOCKER_CLIENT: &str = "/opt/cracin/docker/usr/bin/docker";
pub const DOCKER_SOCKET: &str = "unix:///run/cracin/docker.sock";
pub const DOCKER_CONFIG_DIR: &str = "/opt/cracin/docker-config";

impl Engine {
    /// The `podman` or `docker` on PATH with its own configuration, nothing added.
    pub fn system(kind: EngineKind) -> Engine {
        Engine {
            kind,
            binary: match kind {
                EngineKind::Podman => "podman".into(),
                EngineKind::Docker => "docker".into(),
            },
            env: vec![],
            global_args: vec![],
            run_args: vec![],
        }
    }

    /// podman with cracin's private containers.conf (runc, ulimits this machine allows).
    pub fn podman() -> Engine {
        Engine {
            env: vec![("CONTAINERS_CONF".into(), PODMAN_CONF.into())],
            ..Engine::system(EngineKind::Podman)
        }
    }

    /// cracin's Docker 26 client talking to its private daemon. The docker 28 CLI also talks to
    /// it (API negotiated down to 1.45), but the 26 client is the one measured.
    pub fn docker() -> Engine {
        Engine {
            binary: DOCKER_CLIENT.into(),
            env: vec![
                ("DOCKER_HOST".into(), DOCKER_SOCKET.into()),
                ("DOCKER_CONFIG".into(), DOCKER_CONFIG_DIR.into()),
            ],
            ..Engine::system(EngineKind::Docker)
        }
    }

    /// `podman` or `docker` as `choose` picks it on this machine: the one on PATH with
    /// its own configuration unless the environment asks for another (CONTAINERS_CONF,
    /// CRACIN_DOCKER_HOST) or the system's docker cannot checkpoint.
    pub fn parse(s: &str) -> Result<Engine> {
        choose_here(s, None).map(|c| c.engine)
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
        }
    }

    /// A command line for this engine, with the options this host needs (`engine`).
    pub fn cmd(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec![self.binary.clone()];
        v.extend(self.global_args.iter().cloned());
        if let Some((sub, rest)) = args.split_first() {
            v.push(sub.to_string());
            if matches!(*sub, "run" | "create" | "build") {
                v.extend(self.run_args.iter().cloned());
            }
            v.extend(rest.iter().map(|a| a.to_string()));
        }
        v
    }

    /// The one way to run an engine command: `cmd`'s command line with the engine's
    /// environment, ready for a timeout and logs.
    pub fn command(&self, args: &[&str]) -> Cmd {
        let argv = self.cmd(args);
        let mut c = Cmd::new(&argv[0]).args(&argv[1..]);
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        c
    }
}

/// podman's default `nofile` limit for containers (containers-common): a root without
/// CAP_SYS_RESOURCE whose hard limit is lower cannot start any container with it
/// (`setrlimit RLIMIT_NOFILE: Operation not permitted`, measured: docs/containers.md).
pub const PODMAN_DEFAULT_NOFILE: u64 = 1_048_576;
/// podman's default `nproc` for root containers (same failure, `rlimit type 6`).
pub const PODMAN_DEFAULT_NPROC: u64 = 4_194_304;
/// Docker releases before this reject `--cap-add=CHECKPOINT_RESTORE` (20.10 measured here;
/// 26.1 measured working; 23.0 is the first release whose capability list has the name).
pub const DOCKER_MIN_MAJOR: u32 = 23;

/// What the decision depends on, read from the machine (or given by tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// This process's hard RLIMIT_NOFILE and RLIMIT_NPROC (a container cannot get more).
    pub nofile_hard: u64,
    pub nproc_hard: u64,
    /// kernel.pid_max.
    pub pid_max: u64,
    /// CAP_SYS_RESOURCE in the effective set (then the engine may raise limits).
    pub cap_sys_resource: bool,
    /// The unified cgroup v2 hierarchy is mounted (crun cannot run on v1 "hybrid").
    pub cgroup_v2: bool,
    /// podman's default OCI runtime (`podman info`), when podman answered.
    pub podman_runtime: Option<String>,
    /// runc is installed.
    pub runc: bool,
    /// The server version of the docker on PATH with the user's settings; None = no answer.
    pub docker_server: Option<String>,
    /// cracin's private Docker: client binary present and daemon socket present.
    pub private_docker: bool,
}

impl HostFacts {
    /// Reads the facts for `kind` (only that engine is asked).
    pub fn probe(kind: EngineKind) -> HostFacts {
        let (nofile_hard, nproc_hard) = (hard_limit("Max open files"), hard_limit("Max processes"));
        let mut f = HostFacts {
            nofile_hard,
            nproc_hard,
            pid_max: std::fs::read_to_string("/proc/sys/kernel/pid_max")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(u64::MAX),
            cap_sys_resource: cap_effective() & (1 << 24) != 0,
            cgroup_v2: Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            runc: crate::os::cmd::which("runc").is_some(),
            private_docker: Path::new(DOCKER_CLIENT).exists()
                && Path::new(DOCKER_SOCKET.trim_start_matches("unix://")).exists(),
            ..HostFacts::default()
        };
        match kind {
            EngineKind::Podman => {
                f.podman_runtime = quiet(Cmd::new("podman").args([
                    "info",
                    "--format",
                    "{{.Host.OCIRuntime.Name}}",
                ]));
            }
            EngineKind::Docker => {
                f.docker_server =
                    quiet(Cmd::new("docker").args(["version", "--format", "{{.Server.Version}}"]));
            }
        }
        f
    }
}

fn quiet(c: Cmd) -> Option<String> {
    let out = c.timeout(Duration::from_secs(20)).run_unchecked().ok()?;
    let s = out.stdout.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// A hard limit from /proc/self/limits ("unlimited" = u64::MAX).
fn hard_limit(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with(name)).and_then(|l| {
                let hard = l[name.len()..].split_whitespace().nth(1)?;
                Some(if hard == "unlimited" {
                    u64::MAX
                } else {
                    hard.parse().ok()?
                })
            })
        })
        .unwrap_or(u64::MAX)
}

fn cap_effective() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The engine to use and why (notes for the plan and `cracin doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub engine: Engine,
    pub why: String,
}

/// Chooses the engine. `config`: `--engine-config` (podman: a containers.conf file; docker: a
/// client configuration directory, DOCKER_CONFIG). `env` reads the environment.
pub fn choose(
    name: &str,
    config: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    facts: &HostFacts,
) -> Result<Choice> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(c) = config {
        if !c.exists() {
            return Err(Error::usage(
                format!("--engine-config {}: no such file or directory", c.display()),
                "give an existing containers.conf (podman) or Docker client configuration directory (docker), or drop --engine-config to use the engine's own configuration",
            ));
        }
    }
    match name {
        "podman" => {
            let mut e = Engine::system(EngineKind::Podman);
            if let Some(c) = config {
                e.env = vec![("CONTAINERS_CONF".into(), c.display().to_string())];
                return Ok(Choice {
                    engine: e,
                    why: format!("podman with --engine-config {}", c.display()),
                });
            }
            if let Some(c) = env("CONTAINERS_CONF") {
                e.env = vec![("CONTAINERS_CONF".into(), c.clone())];
                return Ok(Choice {
                    engine: e,
                    why: format!("podman with CONTAINERS_CONF={c} from the environment"),
                });
            }
            let (global, run) = podman_adaptations(facts);
            e.global_args = global;
            e.run_args = run;
            let why = if e.global_args.is_empty() && e.run_args.is_empty() {
                "the system's podman with its own configuration".to_string()
            } else {
                format!(
                    "the system's podman with its own configuration; cracin adds {} to each command this host needs it for",
                    e.global_args
                        .iter()
                        .chain(e.run_args.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            };
            Ok(Choice { engine: e, why })
        }
        "docker" => {
            if let Some(host) = env("CRACIN_DOCKER_HOST") {
                let mut e = Engine::docker();
                e.env = vec![("DOCKER_HOST".into(), host.clone())];
                if Path::new(DOCKER_CONFIG_DIR).exists() {
                    e.env
                        .push(("DOCKER_CONFIG".into(), DOCKER_CONFIG_DIR.into()));
                }
                if !Path::new(DOCKER_CLIENT).exists() {
                    e.binary = "docker".into();
                }
                return Ok(Choice {
                    engine: e,
                    why: format!("docker daemon CRACIN_DOCKER_HOST={host}"),
                });
            }
            let mut e = Engine::system(EngineKind::Docker);
            if let Some(c) = config {
                e.env = vec![("DOCKER_CONFIG".into(), c.display().to_string())];
                return Ok(Choice {
                    engine: e,
                    why: format!(
                        "docker with --engine-config {} (DOCKER_CONFIG)",
                        c.display()
                    ),
                });
            }
            for k in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG"] {
                if let Some(v) = env(k) {
                    e.env.push((k.into(), v));
                }
            }
            let cannot = match &facts.docker_server {
                None => Some("the docker on PATH reaches no daemon".to_string()),
                Some(v) => {
                    let major: u32 = v
                        .split('.')
                        .next()
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0);
                    (major < DOCKER_MIN_MAJOR).then(|| {
                        format!("the system's Docker {v} rejects --cap-add=CHECKPOINT_RESTORE (needs >= {DOCKER_MIN_MAJOR})")
                    })
                }
            };
            match cannot {
                Some(why) if facts.private_docker && e.env.is_empty() => Ok(Choice {
                    engine: Engine::docker(),
                    why: format!("{why}: using cracin's private Docker ({DOCKER_SOCKET}, scripts/dockerd.sh)"),
                }),
                Some(why) => Ok(Choice {
                    engine: e,
                    why: format!("{why}; `cracin doctor --engine docker` says what to do"),
                }),
                None => Ok(Choice {
                    engine: e,
                    why: "the system's docker with its own configuration".into(),
                }),
            }
        }
        _ => Err(Error::usage(
            format!("unknown engine `{name}`"),
            "use --engine podman or --engine docker",
        )),
    }
}

/// What a system podman needs on this host, as (global options, `run`/`build` options).
pub fn podman_adaptations(f: &HostFacts) -> (Vec<String>, Vec<String>) {
    let mut global = Vec::new();
    let mut run = Vec::new();
    if !f.cap_sys_resource {
        if f.nofile_hard < PODMAN_DEFAULT_NOFILE {
            run.push("--ulimit".into());
            run.push(format!("nofile={0}:{0}", f.nofile_hard));
        }
        if f.nproc_hard < PODMAN_DEFAULT_NPROC {
            // Measured here: nproc=32768 (= kernel.pid_max) works, 32769 up to the hard limit
            // 96365 fail (`error setting rlimit type 6: operation not permitted`).
            let n = f.nproc_hard.min(f.pid_max);
            run.push("--ulimit".into());
            run.push(format!("nproc={n}:{n}"));
        }
    }
    // crun refuses cgroups v1 "hybrid" layouts (`cgroups in hybrid mode not supported`).
    if !f.cgroup_v2 && f.podman_runtime.as_deref() == Some("crun") && f.runc {
        global.push("--runtime".into());
        global.push("runc".into());
    }
    (global, run)
}

/// Reads the real environment.
pub fn real_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// `choose` with the machine's facts and environment.
pub fn choose_here(name: &str, config: Option<&Path>) -> Result<Choice> {
    let kind = match name {
        "docker" => EngineKind::Docker,
        _ => EngineKind::Podman,
    };
    choose(name, config, &real_env, &HostFacts::probe(kind))
}

/// cracin's own podman configuration, for messages.
pub fn private_podman_conf() -> PathBuf {
    PathBuf::from(PODMAN_CONF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this_host() -> HostFacts {
        HostFacts {
            nofile_hard: 20000,
            nproc_hard: 96365,
            pid_max: 32768,
            cap_sys_resource: false,
            cgroup_v2: false,
            podman_runtime: Some("runc".into()),
            runc: true,
            docker_server: None,
            private_docker: true,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn system_podman_gets_what_this_host_needs_per_command() {
        let c = choose("podman", None, &no_env, &this_host()).unwrap();
        assert!(c.engine.env.is_empty(), "no cracin configuration");
        assert_eq!(
            c.engine.cmd(&["run", "--rm", "img"]),
            [
                "podman",
                "run",
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=32768:32768",
                "--rm",
                "img"
            ]
        );
        assert_eq!(c.engine.cmd(&["rm", "x"]), ["podman", "rm", "x"]);
        // crun on cgroups v1: runc instead, for every command.
        let mut f = this_host();
        f.podman_runtime = Some("crun".into());
        let c = choose("podman", None, &no_env, &f).unwrap();
        assert_eq!(
            c.engine.cmd(&["rm", "x"]),
            ["podman", "--runtime", "runc", "rm", "x"]
        );
        // A host that allows the defaults gets nothing added.
        let f = HostFacts {
            nofile_hard: u64::MAX,
            nproc_hard: u64::MAX,
            cgroup_v2: true,
            ..this_host()
        };
        let c = choose("podman", None, &no_env, &f).unwrap();
        assert_eq!(c.engine.cmd(&["run", "img"]), ["podman", "run", "img"]);
    }

    #[test]
    fn private_podman_config_only_when_asked() {
        let conf = tempfile::NamedTempFile::new().unwrap();
        let c = choose("podman", Some(conf.path()), &no_env, &this_host()).unwrap();
        assert_eq!(c.engine.env[0].1, conf.path().display().to_string());
        assert_eq!(c.engine.cmd(&["run", "img"]), ["podman", "run", "img"]);
        let env = |k: &str| (k == "CONTAINERS_CONF").then(|| "/etc/mine.conf".to_string());
        let c = choose("podman", None, &env, &this_host()).unwrap();
        assert_eq!(
            c.engine.env,
            [("CONTAINERS_CONF".to_string(), "/etc/mine.conf".to_string())]
        );
        assert!(choose(
            "podman",
            Some(Path::new("/nonexistent/c.conf")),
            &no_env,
            &this_host()
        )
        .is_err());
        assert!(choose("lxc", None, &no_env, &this_host()).is_err());
    }

    #[test]
    fn docker_falls_back_to_the_private_daemon_only_when_the_system_cannot() {
        let mut f = this_host();
        f.docker_server = Some("27.3.1".into());
        let c = choose("docker", None, &no_env, &f).unwrap();
        assert_eq!(c.engine.binary, "docker");
        assert!(c.engine.env.is_empty());
        f.docker_server = Some("20.10.24+dfsg1".into());
        let c = choose("docker", None, &no_env, &f).unwrap();
        assert_eq!(c.engine.binary, DOCKER_CLIENT);
        assert!(
            c.why.contains("rejects --cap-add=CHECKPOINT_RESTORE"),
            "{}",
            c.why
        );
        f.docker_server = None;
        f.private_docker = false;
        let c = choose("docker", None, &no_env, &f).unwrap();
        assert_eq!(c.engine.binary, "docker");
        assert!(c.why.contains("cracin doctor"), "{}", c.why);
        // The user's DOCKER_HOST is theirs: no silent switch.
        f.private_docker = true;
        let env = |k: &str| (k == "DOCKER_HOST").then(|| "tcp://10.0.0.1:2375".to_string());
        let c = choose("docker", None, &env, &f).unwrap();
        assert_eq!(c.engine.binary, "docker");
        let env = |k: &str| (k == "CRACIN_DOCKER_HOST").then(|| DOCKER_SOCKET.to_string());
        let c = choose("docker", None, &env, &f).unwrap();
        assert!(c
            .engine
            .env
            .contains(&("DOCKER_HOST".to_string(), DOCKER_SOCKET.to_string())));
    }
}
