//! Every restored instance is its own individual: the cracin side of the JVMTI agent
//! (`crates/cracin-agent`) that renews the JVM's random state after each restore and applies the
//! restore-time environment and system properties.
//!
//! The agent's shared library is embedded in this binary and installed, like the org.crac
//! provider jar, at a content-addressed path that is the same at checkpoint and restore (CRIU
//! finds the JVM's mapping of it by path). The JVM loads it with `-agentpath:LIB=CTL`. Before
//! the dump, [`hold`] asks the agent to suspend every Java thread and find the generators;
//! after `criu restore`, [`after_restore`] hands it the configuration and asks it to renew and
//! resume, and waits for its answer before anything probes the application. Commands go to the
//! agent's thread (`/proc/PID/task/TID/comm` = `cracin-agent`) as a queued real-time signal
//! whose value is `id << 8 | command`; answers come back as files in the control directory
//! (`agent-<NSPID>-held-<ID>`, `agent-<NSPID>-done-<ID>`), configuration goes there as
//! `agent-config-<ID>`. See docs/individual.md.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

static AGENT_SO: &[u8] = include!(concat!(env!("OUT_DIR"), "/agent_so.rs"));

/// The agent's file name inside its content-addressed directory.
pub const AGENT_NAME: &str = "libcracin-agent.so";
/// The agent's side of the hand-shake is compiled from this very file.
#[path = "../../../cracin-agent/src/protocol.rs"]
mod protocol;
pub use protocol::*;
/// How often cracin looks for the agent's answer: short, it is on the restore's critical path.
const POLL: Duration = Duration::from_micros(200);

/// What cracin.json records about the agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Individual {
    /// The agent library the JVM mapped (it must exist at this path at restore).
    pub agent: PathBuf,
    /// Where the agent reads configuration and writes its answers.
    pub control_dir: PathBuf,
    /// Whether restores renew the random state (false: `cracin checkpoint --no-renew`).
    pub renew: bool,
    /// What the agent found while holding the JVM for the dump.
    #[serde(default)]
    pub held: Vec<String>,
}

/// Writes the embedded agent under `dir/<first 16 hex digits of its SHA-256>/` unless an
/// identical file is there, and returns its path.
pub fn install_agent(dir: &Path) -> Result<PathBuf> {
    super::install_embedded(dir, AGENT_NAME, AGENT_SO)
}

/// The JVM option that loads the agent.
pub fn jvm_option(agent: &Path, ctl: &Path) -> String {
    format!("-agentpath:{}={}", agent.display(), ctl.display())
}

/// One JVM's agent thread, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentThread {
    /// The JVM's host PID.
    pub pid: u32,
    /// The agent thread's host TID.
    pub tid: u32,
    /// The JVM's PID inside its PID namespace (the agent names its answers with it).
    pub ns_pid: u32,
}

/// The agent threads of every JVM in the process tree of `root`.
pub fn find_agents(root: u32) -> Vec<AgentThread> {
    let mut found = Vec::new();
    for pid in crate::os::procfs::tree_of(root) {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != THREAD_NAME {
                continue;
            }
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let ns_pid = ns_pid_of(&status).unwrap_or(pid);
            found.push(AgentThread { pid, tid, ns_pid });
        }
    }
    found
}

/// The innermost PID from a `/proc/PID/status` text (`NSpid:\t4711\t1`).
fn ns_pid_of(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// Queues the command for the agent thread (rt_tgsigqueueinfo: the value travels with it).
fn send(a: &AgentThread, cmd: u64, id: u32) -> Result<()> {
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&SIGNAL.to_ne_bytes());
    info[8..12].copy_from_slice(&(-1i32).to_ne_bytes()); // SI_QUEUE
    info[16..20].copy_from_slice(&(std::process::id() as i32).to_ne_bytes());
    info[20..24].copy_from_slice(&unsafe { libc::getuid() }.to_ne_bytes());
    info[24..32].copy_from_slice(&((u64::from(id) << 8) | cmd).to_ne_bytes());
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            a.pid as libc::c_long,
            a.tid as libc::c_long,
            SIGNAL as libc::c_long,
            info.as_ptr(),
        )
    };
    if r != 0 {
        return Err(Error::io(
            format!("/proc/{}/task/{}", a.pid, a.tid),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Waits for the agent's answer file, reads and removes it; `Ok(text)` when it starts with `ok`.
fn wait_answer(
    ctl: &Path,
    a: &AgentThread,
    what: &str,
    id: u32,
    deadline: Instant,
) -> std::result::Result<String, String> {
    let path = ctl.join(format!("agent-{}-{what}-{id}", a.ns_pid));
    loop {
        match fs::read_to_string(&path) {
            Ok(text) => {
                let _ = fs::remove_file(&path);
                return match text.strip_prefix("ok\n") {
                    Some(rest) => Ok(rest.to_string()),
                    None => Err(text.trim().to_string()),
                };
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
        if !Path::new(&format!("/proc/{}/task/{}", a.pid, a.tid)).exists() {
            return Err("the JVM is gone".into());
        }
        if Instant::now() >= deadline {
            let tid = format!("/proc/{}/task/{}", a.pid, a.tid);
            let state = fs::read_to_string(format!("{tid}/stat"))
                .ok()
                .and_then(|st| {
                    st.rsplit(')')
                        .next()
                        .map(|r| r.trim().chars().take(1).collect())
                })
                .unwrap_or_else(|| "?".to_string());
            let wchan = fs::read_to_string(format!("{tid}/wchan")).unwrap_or_default();
            return Err(format!(
                "no answer in {} (agent thread {} state {state}, waiting in {wchan:?})",
                ctl.display(),
                a.tid
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// A request id unique among concurrent cracin processes.
fn request_id() -> u32 {
    std::process::id()
}

/// Before the dump: every JVM under `root` suspends its Java threads and finds its generators.
/// Returns the agents' reports. With no agent thread under `root`, `Ok(None)`.
pub fn hold(root: u32, ctl: &Path, timeout: Duration) -> Result<Option<Vec<String>>> {
    let agents = find_agents(root);
    if agents.is_empty() {
        return Ok(None);
    }
    let id = request_id();
    let deadline = Instant::now() + timeout;
    let mut reports = Vec::new();
    for a in &agents {
        send(a, CMD_HOLD, id).map_err(|e| renewal_error(false, format!("{e}")))?;
    }
    for a in &agents {
        let text = wait_answer(ctl, a, "held", id, deadline)
            .map_err(|why| renewal_error(false, format!("the agent of pid {}: {why}", a.pid)))?;
        reports.push(one_line(&text));
    }
    Ok(Some(reports))
}

/// [`hold`] for the checkpoint: when `jvm` (the JVM's host PID) was found, its agent must answer;
/// when there is no JVM at all, an empty list (nothing to renew).
pub fn hold_for_dump(
    root: u32,
    ctl: &Path,
    timeout: Duration,
    jvm: Option<u32>,
) -> Result<Vec<String>> {
    match (hold(root, ctl, timeout)?, jvm) {
        (Some(reports), _) => Ok(reports),
        (None, None) => Ok(Vec::new()),
        (None, Some(pid)) => Err(renewal_error(
            false,
            format!("no `{THREAD_NAME}` thread in the JVM (pid {pid}): the agent did not start"),
        )),
    }
}

/// After a failed dump: lets the held JVMs run on unchanged.
pub fn release(root: u32, ctl: &Path) {
    let id = request_id();
    for a in find_agents(root) {
        if send(&a, CMD_RELEASE, id).is_ok() {
            let _ = wait_answer(ctl, &a, "done", id, Instant::now() + Duration::from_secs(5));
        }
    }
}

/// Restore-time configuration: environment variables and system properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub env: Vec<(String, String)>,
    pub properties: Vec<(String, String)>,
}

impl Config {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.properties.is_empty()
    }

    /// The agent's file format: NUL-separated triples `E|P`, key, value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, list) in [("E", &self.env), ("P", &self.properties)] {
            for (k, v) in list {
                for part in [kind, k.as_str(), v.as_str()] {
                    out.extend_from_slice(part.as_bytes());
                    out.push(0);
                }
            }
        }
        out
    }
}

/// Parses `KEY=VALUE` for --env (`env` true) or --property.
pub fn parse_assignment(s: &str, env: bool) -> Result<(String, String)> {
    let flag = if env { "--env" } else { "--property" };
    let Some((k, v)) = s.split_once('=') else {
        return Err(Error::usage(
            format!("{flag} `{s}` has no `=`"),
            format!("write {flag} KEY=VALUE"),
        ));
    };
    if k.is_empty() || s.contains('\0') {
        return Err(Error::usage(
            format!("{flag} `{s}` has an empty name or a NUL byte"),
            format!("write {flag} KEY=VALUE with a non-empty KEY"),
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// What the agent did after a restore.
#[derive(Debug, Clone, PartialEq)]
pub struct Renewed {
    /// One line per JVM: `random=3 sha1prng=2 ... ms=0.4`.
    pub reports: Vec<String>,
    /// Time from the first command to the last answer, in milliseconds.
    pub ms: f64,
}

/// After `criu restore`: hands every restored JVM under `root` the configuration and has it
/// renew its random state (unless `ind.renew` is false) and resume its threads; returns when
/// all of them answered.
pub fn after_restore(
    root: u32,
    ind: &Individual,
    config: &Config,
    timeout: Duration,
) -> Result<Renewed> {
    let t = Instant::now();
    let deadline = t + timeout;
    let id = request_id();
    let cfg_file = ind.control_dir.join(format!("agent-config-{id}"));
    // The checkpoint removed the directory (it would only hold stale files); the agent answers
    // in it.
    crate::os::perms::ensure_private_dir(&ind.control_dir)?;
    if !config.is_empty() {
        // The values may be secrets (a password given at restore instead of in the image).
        let tmp = ind.control_dir.join(format!("agent-config-{id}.tmp"));
        crate::os::perms::write_private(&tmp, &config.encode())?;
        fs::rename(&tmp, &cfg_file).map_err(|e| Error::io(&cfg_file, e))?;
    } else {
        let _ = fs::remove_file(&cfg_file);
    }
    // The agent thread is there as soon as CRIU returns; allow for a slow /proc anyway.
    let agents = loop {
        let a = find_agents(root);
        if !a.is_empty() || Instant::now() >= deadline {
            break a;
        }
        std::thread::sleep(POLL);
    };
    let result = (|| {
        if agents.is_empty() {
            return Err(renewal_error(
                true,
                format!("no `{THREAD_NAME}` thread in the restored process {root}"),
            ));
        }
        let cmd = if ind.renew { CMD_RENEW } else { CMD_CONFIG };
        for a in &agents {
            send(a, cmd, id).map_err(|e| renewal_error(true, format!("{e}")))?;
        }
        let mut reports = Vec::new();
        for a in &agents {
            let text = wait_answer(&ind.control_dir, a, "done", id, deadline)
                .map_err(|why| renewal_error(true, format!("the agent of pid {}: {why}", a.pid)))?;
            if let Some(bad) = text.lines().find_map(|l| l.strip_prefix("failed=")) {
                return Err(renewal_error(
                    true,
                    format!("the JVM refused to take these settings: {bad}"),
                ));
            }
            reports.push(one_line(&text));
        }
        Ok(reports)
    })();
    let _ = fs::remove_file(&cfg_file);
    // The agent's answers were read and removed, and the next restore makes the directory
    // again: an empty one goes, so restores leave nothing behind in /var/lib/cracin/control. An
    // org.crac provider sharing it keeps it (rmdir refuses a directory that is not empty).
    let _ = fs::remove_dir(&ind.control_dir);
    Ok(Renewed {
        reports: result?,
        ms: t.elapsed().as_secs_f64() * 1000.0,
    })
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn renewal_error(at_restore: bool, why: String) -> Error {
    Error::Renewal { at_restore, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_agent() {
        assert_eq!(SIGNAL, cracin_agent::SIGNAL);
        assert_eq!(THREAD_NAME, cracin_agent::THREAD_NAME);
        assert_eq!(
            [CMD_HOLD, CMD_RENEW, CMD_CONFIG, CMD_RELEASE],
            [
                cracin_agent::CMD_HOLD,
                cracin_agent::CMD_RENEW,
                cracin_agent::CMD_CONFIG,
                cracin_agent::CMD_RELEASE
            ]
        );
        // Linux's real-time range, and glibc keeps 32 and 33 for itself.
        assert!((34..=64).contains(&SIGNAL));
    }

    #[test]
    fn config_encoding_is_what_the_agent_parses() {
        let c = Config {
            env: vec![("A".into(), "x=1".into()), ("EMPTY".into(), String::new())],
            properties: vec![("p.q".into(), "v w".into())],
        };
        assert_eq!(
            cracin_agent::parse_config(&c.encode()),
            vec![
                (true, "A".to_string(), "x=1".to_string()),
                (true, "EMPTY".to_string(), String::new()),
                (false, "p.q".to_string(), "v w".to_string()),
            ]
        );
        assert!(Config::default().is_empty());
    }

    #[test]
    fn assignments() {
        assert_eq!(
            parse_assignment("K=a=b", true).unwrap(),
            ("K".into(), "a=b".into())
        );
        assert_eq!(
            parse_assignment("K=", false).unwrap(),
            ("K".into(), "".into())
        );
        assert!(parse_assignment("K", true).is_err());
        assert!(parse_assignment("=v", false).is_err());
    }

    #[test]
    fn a_jvm_without_its_agent_fails_the_hold_a_tree_without_jvm_does_not() {
        // This test process has no `cracin-agent` thread.
        let t = tempfile::tempdir().unwrap();
        let me = std::process::id();
        assert!(find_agents(me).is_empty());
        let none = hold_for_dump(me, t.path(), Duration::from_millis(50), None).unwrap();
        assert!(none.is_empty());
        match hold_for_dump(me, t.path(), Duration::from_millis(50), Some(me)) {
            Err(Error::Renewal { at_restore, why }) => {
                assert!(!at_restore);
                assert!(why.contains("cracin-agent"), "{why}");
            }
            other => panic!("expected a Renewal error, got {other:?}"),
        }
        let ind = Individual {
            agent: PathBuf::from("/x"),
            control_dir: t.path().to_path_buf(),
            renew: true,
            held: Vec::new(),
        };
        let cfg = Config {
            env: vec![("A".into(), "b".into())],
            properties: Vec::new(),
        };
        match after_restore(me, &ind, &cfg, Duration::from_millis(50)) {
            Err(
                e @ Error::Renewal {
                    at_restore: true, ..
                },
            ) => {
                assert_eq!(e.exit_code(), crate::error::exit::RESTORE)
            }
            other => panic!("expected a Renewal error, got {other:?}"),
        }
        // The configuration file does not outlive the attempt, and the directory, empty then,
        // goes too (the next restore makes it again).
        assert!(!t.path().exists());
    }

    #[test]
    fn ns_pid_is_the_innermost() {
        assert_eq!(ns_pid_of("Name:\tjava\nNSpid:\t4711\t1\n"), Some(1));
        assert_eq!(ns_pid_of("NSpid:\t4711\n"), Some(4711));
        assert_eq!(ns_pid_of("Name:\tx\n"), None);
    }

    #[test]
    fn the_embedded_agent_is_a_shared_library_and_installs_idempotently() {
        assert_eq!(&AGENT_SO[..4], b"\x7fELF");
        let t = tempfile::tempdir().unwrap();
        let a = install_agent(t.path()).unwrap();
        assert_eq!(install_agent(t.path()).unwrap(), a);
        assert_eq!(fs::read(&a).unwrap(), AGENT_SO);
        assert!(jvm_option(&a, Path::new("/c")).starts_with("-agentpath:/"));
        assert!(jvm_option(&a, Path::new("/c")).ends_with(".so=/c"));
    }
}
