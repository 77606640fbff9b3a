//! What an end-to-end test needs from the host, and the one way a test that cannot run here
//! stops: a visible `SKIPPED: test: why` line (stdout and stderr), which `CRACIN_REQUIRE_E2E=1`
//! (set by scripts/test.sh) turns into a failure for everything the machine's set-up provides.
//! A test states its needs in its first line: `require!(can_checkpoint());`, or
//! `let start = require!(installed("/usr/share/jetty9/start.jar", "jetty9"));` for a need that
//! yields what was found.

use std::path::{Path, PathBuf};
use std::process::Command;

use cracin_core::container::Engine;

/// The restore base image the container tests build on (`cracin base --jdk 21`).
pub const BASE_IMAGE: &str = "localhost/cracin-base:jdk21";

/// Why a test cannot run here.
#[derive(Debug)]
pub enum Missing {
    /// Something the machine's set-up provides (scripts/setup*.sh, cracin base, the examples):
    /// a skip, or a failure under CRACIN_REQUIRE_E2E.
    Setup(String),
    /// Something no set-up provides (a CPU feature, an optional tool): always only a skip.
    Optional(String),
}

impl From<String> for Missing {
    fn from(why: String) -> Self {
        Missing::Setup(why)
    }
}

impl From<&str> for Missing {
    fn from(why: &str) -> Self {
        Missing::Setup(why.into())
    }
}

/// A need checked: what was found, or why the test cannot run here.
pub type Need<T = ()> = Result<T, Missing>;

/// The name of the test function it stands in (for SKIPPED lines).
#[macro_export]
macro_rules! test_name {
    () => {{
        fn here() {}
        let path = std::any::type_name_of_val(&here);
        let path = path.strip_suffix("::here").unwrap_or(path);
        path.rsplit("::").next().unwrap_or(path)
    }};
}

/// `require!(need, ...)`: checks each need in order; the first one missing ends the test with
/// a SKIPPED line (or fails it under CRACIN_REQUIRE_E2E). Yields what the last need found.
#[macro_export]
macro_rules! require {
    ($need:expr $(,)?) => {
        match $need {
            Ok(found) => found,
            Err(why) => {
                $crate::common::skipped($crate::test_name!(), why.into());
                return;
            }
        }
    };
    ($need:expr, $($rest:expr),+ $(,)?) => {{
        let _ = $crate::require!($need);
        $crate::require!($($rest),+)
    }};
}

/// Reports a test that cannot run here: `SKIPPED: test: why` on stdout and stderr, or a
/// failure when CRACIN_REQUIRE_E2E is set and the set-up should have provided it.
pub fn skipped(test: &str, why: Missing) {
    let why = match why {
        Missing::Setup(why) => {
            if std::env::var_os("CRACIN_REQUIRE_E2E").is_some() {
                panic!("{test}: prerequisite missing but CRACIN_REQUIRE_E2E is set: {why}");
            }
            why
        }
        Missing::Optional(why) => why,
    };
    eprintln!("SKIPPED: {test}: {why}");
    println!("SKIPPED: {test}: {why}");
}

/// Like `skipped`, for a part of a test that cannot run here while the rest does.
pub fn skipped_in_part(test: &str, why: &str) {
    if std::env::var_os("CRACIN_REQUIRE_E2E").is_some() {
        panic!("{test}: prerequisite missing but CRACIN_REQUIRE_E2E is set: {why}");
    }
    eprintln!("SKIPPED (in part): {test}: {why}");
    println!("SKIPPED (in part): {test}: {why}");
}

/// Why end-to-end tests cannot run here, if they cannot (root, CRIU, javac).
pub fn missing_prerequisite() -> Option<String> {
    can_checkpoint().err().map(|m| match m {
        Missing::Setup(w) | Missing::Optional(w) => w,
    })
}

/// The older form of `require!(can_checkpoint())`: prints the SKIPPED line (or fails under
/// CRACIN_REQUIRE_E2E) and returns true when the test cannot run here.
pub fn skip(test: &str) -> bool {
    match can_checkpoint() {
        Ok(()) => false,
        Err(why) => {
            skipped(test, why);
            true
        }
    }
}

/// What a checkpoint of a JVM on this host needs: root, CRIU, javac (for the test apps).
pub fn can_checkpoint() -> Need {
    root()?;
    let criu = std::env::var_os("CRACIN_CRIU")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| which("criu"))
        .or_else(|| Some(PathBuf::from("/usr/local/sbin/criu")).filter(|p| p.exists()));
    if criu.is_none() {
        return Err("no criu (run scripts/setup.sh)".into());
    }
    on_path("javac").map(drop)
}

/// Root (CRIU and the container engines need it).
pub fn root() -> Need {
    let uid0 = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        == Some("0");
    if uid0 {
        Ok(())
    } else {
        Err("not root (CRIU needs root)".into())
    }
}

/// A CPU feature of this host (no set-up provides one: only ever a skip).
pub fn cpu_has(flag: &str) -> Need {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if cpuinfo.split_whitespace().any(|f| f == flag) {
        Ok(())
    } else {
        Err(Missing::Optional(format!("this CPU has no {flag}")))
    }
}

/// A program on PATH.
pub fn on_path(name: &str) -> Need<PathBuf> {
    which(name).ok_or_else(|| format!("no {name}").into())
}

/// A file a Debian package installs (scripts/setup.sh installs the package).
pub fn installed(path: &str, package: &str) -> Need<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!("{path} missing (apt-get install {package}; scripts/setup.sh does)").into())
    }
}

/// A file a script of the repository makes (e.g. scripts/build-examples.sh).
pub fn built(path: PathBuf, script: &str) -> Need<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} missing (run {script})", path.display()).into())
    }
}

/// A container engine that can run the container tests (root, javac, its client, an answer
/// from it, and the base image in its store): the engine.
pub fn engine_ready(e: Engine) -> Need<Engine> {
    engine_answers(&e)?;
    Ok(e)
}

fn engine_answers(e: &Engine) -> Need {
    root().map_err(|_| Missing::from("not root"))?;
    on_path("javac")?;
    if !Path::new(&e.binary).is_file() && which(&e.binary).is_none() {
        return Err(format!("no {} client (scripts/setup-containers.sh)", e.binary).into());
    }
    match engine_cmd(e).args(["version"]).output() {
        Ok(o) if o.status.success() => {}
        _ => {
            let hint = if e.name() == "docker" {
                " (scripts/dockerd.sh start)"
            } else {
                ""
            };
            return Err(format!("{} does not answer{hint}", e.name()).into());
        }
    }
    if !eng(e, &["image", "inspect", BASE_IMAGE]).0 {
        return Err(format!(
            "no {BASE_IMAGE} in {} (cracin base --jdk 21 --engine {})",
            e.name(),
            e.name()
        )
        .into());
    }
    Ok(())
}

/// The engine's client with its environment, nothing else added.
pub fn engine_cmd(e: &Engine) -> Command {
    let mut c = Command::new(&e.binary);
    for (k, v) in &e.env {
        c.env(k, v);
    }
    c
}

/// Runs an engine command quietly, with what this host needs added (`Engine::cmd`);
/// (success, stdout, stderr).
pub fn eng(e: &Engine, args: &[&str]) -> (bool, String, String) {
    let argv = e.cmd(args);
    let out = engine_cmd(e)
        .args(&argv[1..])
        .output()
        .expect("engine runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
