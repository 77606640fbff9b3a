//! Coordination with the application through cracin's own org.crac provider, so that an
//! application's `org.crac` Resources run on a plain OpenJDK, where CRIU dumps the JVM from
//! outside and nothing inside the JVM would otherwise know.
//!
//! The provider (Java package `io.cracin.crac`, built from `java/crac-provider` by `build.rs` and
//! embedded here) is put on the JVM's boot class path and named by
//! `-Dorg.crac.Core.Compat=io.cracin.crac`; the org.crac API jar then delegates to it. It talks
//! to cracin through files in a control directory (`-Dcracin.control=CTL`), never through a
//! socket or an open file, because CRIU dumps the JVM while the provider waits:
//!
//! | file | written by | meaning |
//! | --- | --- | --- |
//! | `active` | JVM | the provider is loaded (`pid=N`): the application uses org.crac |
//! | `trigger` | cracin | checkpoint now; the JVM deletes it and runs the Resources |
//! | `aborted` | JVM | a Resource refused the checkpoint (exception text); the JVM carries on |
//! | `request` | JVM | `nonce=HEX`: Resources ran, dump me now; cracin claims it by deleting it |
//! | `result-NONCE` | cracin | `failed\nMSG` (JVM runs afterRestore and carries on), `continued`, or `restored` (written by the restore before CRIU restores, so every restored process sees it) |
//!
//! Every file is written whole under `NAME.tmp` and renamed. This module holds the cracin side:
//! installing the jar, the JVM options, and the polling decisions; the checkpoint and restore
//! code calls it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The provider jar, when `build.rs` found a JDK to build it with.
static PROVIDER_JAR: Option<&[u8]> = include!(concat!(env!("OUT_DIR"), "/provider_jar.rs"));

/// The Java package of the provider, as org.crac's `org.crac.Core.Compat` property names it.
pub const PROVIDER_PACKAGE: &str = "io.cracin.crac";

/// Where `install_provider` puts the jar by default. The JVM keeps the jar open and CRIU checks
/// its path and size at restore, so the path must be stable and the same on both sides.
pub const DEFAULT_PROVIDER_DIR: &str = "/var/lib/cracin/provider";

/// The jar's file name inside its content-addressed directory.
pub const PROVIDER_JAR_NAME: &str = "cracin-crac.jar";

/// How often the cracin side polls the control directory.
pub const POLL: Duration = Duration::from_millis(1);

/// An installed provider jar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub jar: PathBuf,
}

impl Provider {
    /// Installs the embedded jar under `dir` (see [`install_provider`]).
    pub fn install(dir: &Path) -> Result<Provider> {
        Ok(Provider {
            jar: install_provider(dir)?,
        })
    }

    /// The JVM options for this jar and control directory (see [`jvm_options`]).
    pub fn jvm_options(&self, ctl: &Path) -> Vec<String> {
        jvm_options(ctl, &self.jar)
    }
}

/// Whether this cracin binary carries the provider (it was built on a machine with javac).
pub fn provider_available() -> bool {
    PROVIDER_JAR.is_some()
}

/// The SHA-256 of the embedded jar, in hex, if there is one.
pub fn provider_sha256() -> Option<String> {
    PROVIDER_JAR.map(super::sha256_hex)
}

/// Writes the embedded provider jar to `dir/<first 16 hex digits of its SHA-256>/cracin-crac.jar`
/// (directories created as needed) unless an identical file is already there, and returns that
/// path. Content addressing keeps the path of a given jar stable across checkpoint and restore
/// and lets different cracin versions live side by side. The restore side calls this again so
/// that the jar the image refers to exists on this machine.
pub fn install_provider(dir: &Path) -> Result<PathBuf> {
    let bytes = PROVIDER_JAR.ok_or_else(|| {
        Error::usage(
            "this cracin was built without its org.crac provider (no javac when it was compiled)",
            "rebuild cracin on a machine with a JDK (javac and jar on PATH or JAVA_HOME set), \
             or run the application on a CRaC JDK instead",
        )
    })?;
    super::install_embedded(dir, PROVIDER_JAR_NAME, bytes)
}

/// The options cracin adds to the JVM (through `JAVA_TOOL_OPTIONS`) so that org.crac finds the
/// provider and the provider finds the control directory.
///
/// `-Xbootclasspath/a` puts the provider in the boot class loader, which every class loader
/// reaches by parent delegation, so org.crac's `Class.forName("io.cracin.crac.Core")` works on
/// a class path, a module path and in application servers. OSGi is the exception: a bundle
/// class loader delegates to the boot loader only the packages listed in the framework property
/// `org.osgi.framework.bootdelegation`. No option is added for that here, because a system
/// property would replace (not extend) a list the application already has, and the bnd launcher
/// and embedded frameworks do not read system properties anyway; see [`osgi_bootdelegation`] and
/// `docs/coordinate.md` for what an OSGi application adds to its own configuration.
pub fn jvm_options(ctl: &Path, jar: &Path) -> Vec<String> {
    vec![
        format!("-Xbootclasspath/a:{}", jar.display()),
        format!("-Dorg.crac.Core.Compat={PROVIDER_PACKAGE}"),
        format!("-Dcracin.control={}", ctl.display()),
    ]
}

/// The value of `org.osgi.framework.bootdelegation` that lets the org.crac bundle load the
/// provider: `existing` (the application's own list, if any) with `io.cracin.crac` added once.
pub fn osgi_bootdelegation(existing: Option<&str>) -> String {
    let mut parts: Vec<&str> = existing
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let covered = parts.iter().any(|p| {
        *p == "*"
            || *p == PROVIDER_PACKAGE
            || p.strip_suffix('*')
                .is_some_and(|prefix| PROVIDER_PACKAGE.starts_with(prefix))
    });
    if !covered {
        parts.push(PROVIDER_PACKAGE);
    }
    parts.join(",")
}

/// `JAVA_TOOL_OPTIONS` holding `existing` (the user's own value, kept first) and `options`. The
/// JVM splits that variable at white space, so an option containing any is refused.
pub fn java_tool_options(options: &[String], existing: Option<&str>) -> Result<String> {
    if let Some(bad) = options.iter().find(|o| o.chars().any(char::is_whitespace)) {
        return Err(Error::usage(
            format!(
                "the JVM option `{bad}` contains white space, which JAVA_TOOL_OPTIONS cannot carry"
            ),
            "use paths without spaces for cracin's state and control directories",
        ));
    }
    let mut all: Vec<&str> = existing
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .into_iter()
        .collect();
    all.extend(options.iter().map(String::as_str));
    Ok(all.join(" "))
}

/// A checkpoint request from the JVM: its Resources ran and it waits to be dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub nonce: String,
}

/// Why [`Control::wait_for_request`] returned without a request.
#[derive(Debug)]
pub enum Waited {
    /// A Resource refused the checkpoint; the text is the exception. The JVM carries on.
    Aborted(String),
    /// The JVM is gone.
    Exited,
    /// The deadline passed.
    TimedOut,
    /// The control directory could not be read.
    Io(Box<Error>),
}

/// The cracin side of one control directory.
#[derive(Debug, Clone)]
pub struct Control {
    dir: PathBuf,
}

impl Control {
    /// Creates the control directory (or cleans a stale one) before the JVM starts.
    pub fn new(dir: &Path) -> Result<Control> {
        // Private (0700): the JVM and cracin talk here; no one else has anything to read or
        // plant in it.
        if let Some(root) = dir.parent() {
            crate::os::perms::ensure_private_dir(root)?;
        }
        crate::os::perms::ensure_private_dir(dir)?;
        let c = Control {
            dir: dir.to_path_buf(),
        };
        let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = matches!(name.as_ref(), "active" | "trigger" | "aborted" | "request")
                || name.starts_with("result-")
                || name.ends_with(".tmp");
            if ours {
                remove_if_exists(&entry.path())?;
            }
        }
        Ok(c)
    }

    /// The control directory of an existing checkpoint, without cleaning it (restore side).
    pub fn open(dir: &Path) -> Control {
        Control {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the JVM loaded the provider, i.e. the application touched org.crac.
    pub fn is_active(&self) -> bool {
        self.dir.join("active").is_file()
    }

    /// The pid the JVM reported (as it sees itself: 1 as the init of its PID namespace).
    pub fn active_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.dir.join("active")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("pid="))
            .and_then(|p| p.trim().parse().ok())
    }

    /// Asks the JVM to checkpoint: its `cracin-trigger` thread runs `checkpointRestore()`.
    pub fn request_checkpoint(&self) -> Result<()> {
        self.write_atomic("trigger", "")
    }

    /// Waits until the JVM asks to be dumped (after a trigger, or when the application called
    /// `checkpointRestore()` itself), a Resource refuses, the JVM dies (`alive` returns false),
    /// or `deadline` passes. A request is claimed by deleting it: a JVM whose request is not
    /// claimed in time withdraws it and carries on.
    pub fn wait_for_request(
        &self,
        deadline: Instant,
        alive: &dyn Fn() -> bool,
    ) -> std::result::Result<Request, Waited> {
        let request = self.dir.join("request");
        let aborted = self.dir.join("aborted");
        loop {
            match fs::read_to_string(&request) {
                Ok(text) => {
                    if let Some(nonce) = parse_nonce(&text) {
                        match fs::remove_file(&request) {
                            Ok(()) => return Ok(Request { nonce }),
                            // Withdrawn by the JVM between our read and our claim.
                            Err(e) if e.kind() == ErrorKind::NotFound => {}
                            Err(e) => return Err(Waited::Io(Box::new(Error::io(&request, e)))),
                        }
                    } else {
                        return Err(Waited::Io(Box::new(Error::io(
                            &request,
                            std::io::Error::new(
                                ErrorKind::InvalidData,
                                format!("not a checkpoint request: {:?}", text.trim()),
                            ),
                        ))));
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Waited::Io(Box::new(Error::io(&request, e)))),
            }
            match fs::read_to_string(&aborted) {
                Ok(text) => {
                    let _ = fs::remove_file(&aborted);
                    return Err(Waited::Aborted(text.trim_end().to_string()));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Waited::Io(Box::new(Error::io(&aborted, e)))),
            }
            if !alive() {
                return Err(Waited::Exited);
            }
            if Instant::now() >= deadline {
                return Err(Waited::TimedOut);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Tells the waiting JVM that the dump failed: it runs afterRestore and carries on, and its
    /// `checkpointRestore()` throws a CheckpointException carrying `msg`.
    pub fn report_failure(&self, nonce: &str, msg: &str) -> Result<()> {
        self.write_result(nonce, &format!("failed\n{msg}\n"))
    }

    /// Tells the waiting JVM that it was dumped and keeps running (a `--leave-running` dump): it
    /// runs afterRestore and `checkpointRestore()` returns.
    pub fn mark_continued(&self, nonce: &str) -> Result<()> {
        self.write_result(nonce, "continued\n")
    }

    /// Called before every restore of a checkpoint taken for `nonce`: every process restored
    /// from it finds this answer at once, runs afterRestore and returns from
    /// `checkpointRestore()`. Creates the control directory if it is missing.
    pub fn mark_restored(&self, nonce: &str) -> Result<()> {
        if let Some(root) = self.dir.parent() {
            crate::os::perms::ensure_private_dir(root)?;
        }
        crate::os::perms::ensure_private_dir(&self.dir)?;
        self.write_result(nonce, "restored\n")
    }

    fn write_result(&self, nonce: &str, content: &str) -> Result<()> {
        if !valid_nonce(nonce) {
            return Err(Error::usage(
                format!("`{nonce}` is not a checkpoint nonce"),
                "the nonce is the 32 hex digits the JVM wrote into its checkpoint request",
            ));
        }
        self.write_atomic(&format!("result-{nonce}"), content)
    }

    fn write_atomic(&self, name: &str, content: &str) -> Result<()> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let dst = self.dir.join(name);
        fs::write(&tmp, content).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))
    }
}

fn parse_nonce(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("nonce="))
        .map(str::trim)
        .filter(|n| valid_nonce(n))
        .map(str::to_string)
}

/// 128 bits in lower-case hex: it becomes part of a file name, so nothing else is accepted.
fn valid_nonce(n: &str) -> bool {
    n.len() == 32
        && n.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn remove_if_exists(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;

    const NONCE: &str = "0123456789abcdef0123456789abcdef";

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    /// Writes like the provider does: NAME.tmp, then rename.
    fn jvm_write(dir: &Path, name: &str, content: &str) {
        let tmp = dir.join(format!("{name}.tmp"));
        fs::write(&tmp, content).unwrap();
        fs::rename(&tmp, dir.join(name)).unwrap();
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn new_creates_the_directory_and_cleans_stale_files_only() {
        let t = tmp();
        let ctl = t.path().join("ctl");
        fs::create_dir(&ctl).unwrap();
        for f in [
            "active",
            "trigger",
            "aborted",
            "request",
            "result-abc",
            "request.tmp",
        ] {
            fs::write(ctl.join(f), "x").unwrap();
        }
        fs::write(ctl.join("keep.log"), "x").unwrap();
        let c = Control::new(&ctl).unwrap();
        let mut left: Vec<_> = fs::read_dir(&ctl)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["keep.log"]);
        assert!(!c.is_active());
        let fresh = t.path().join("a/b/ctl");
        Control::new(&fresh).unwrap();
        assert!(fresh.is_dir());
    }

    #[test]
    fn active_and_pid() {
        let t = tmp();
        let c = Control::new(t.path()).unwrap();
        assert_eq!(c.active_pid(), None);
        jvm_write(t.path(), "active", "pid=1\n");
        assert!(c.is_active());
        assert_eq!(c.active_pid(), Some(1));
    }

    #[test]
    fn trigger_then_request_from_a_peer_thread() {
        let t = tmp();
        let c = Control::new(t.path()).unwrap();
        let dir = t.path().to_path_buf();
        // The fake JVM: sees the trigger, deletes it, "runs the Resources", asks to be dumped,
        // and checks that cracin claimed the request.
        let peer = thread::spawn(move || {
            let trigger = dir.join("trigger");
            let end = soon(5000);
            while !trigger.exists() {
                assert!(Instant::now() < end, "no trigger");
                thread::sleep(Duration::from_millis(1));
            }
            fs::remove_file(&trigger).unwrap();
            thread::sleep(Duration::from_millis(20));
            jvm_write(&dir, "request", &format!("nonce={NONCE}\n"));
            let end = soon(5000);
            while dir.join("request").exists() {
                assert!(Instant::now() < end, "request never claimed");
                thread::sleep(Duration::from_millis(1));
            }
        });
        c.request_checkpoint().unwrap();
        assert!(t.path().join("trigger").exists());
        let got = c.wait_for_request(soon(5000), &|| true).unwrap();
        assert_eq!(got.nonce, NONCE);
        peer.join().unwrap();
        assert!(!t.path().join("request").exists());
    }

    #[test]
    fn aborted_is_reported_with_its_text_and_consumed() {
        let t = tmp();
        let c = Control::new(t.path()).unwrap();
        let dir = t.path().to_path_buf();
        let peer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            jvm_write(
                &dir,
                "aborted",
                "io.cracin.crac.CheckpointException\n\tSuppressed: x\n",
            );
        });
        match c.wait_for_request(soon(5000), &|| true) {
            Err(Waited::Aborted(text)) => assert!(text.contains("Suppressed: x"), "{text}"),
            other => panic!("expected Aborted, got {other:?}"),
        }
        peer.join().unwrap();
        assert!(!t.path().join("aborted").exists());
    }

    #[test]
    fn a_dead_jvm_ends_the_wait() {
        let t = tmp();
        let c = Control::new(t.path()).unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        let a2 = alive.clone();
        let peer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            a2.store(false, Ordering::SeqCst);
        });
        let start = Instant::now();
        let r = c.wait_for_request(soon(5000), &|| alive.load(Ordering::SeqCst));
        assert!(matches!(r, Err(Waited::Exited)), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(2));
        peer.join().unwrap();
    }

    #[test]
    fn timeout() {
        let t = tmp();
        let c = Control::new(t.path()).unwrap();
        let start = Instant::now();
        let r = c.wait_for_request(soon(30), &|| true);
        assert!(matches!(r, Err(Waited::TimedOut)), "{r:?}");
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn a_request_wins_over_a_dead_peer_seen_in_the_same_round() {
        // The JVM asks and is dumped (CRIU kills it) before cracin polls: the request counts.
        let t = tmp();
        let c = Control::new(t.path()).unwrap();
        jvm_write(t.path(), "request", &format!("nonce={NONCE}\n"));
        let got = c.wait_for_request(soon(1000), &|| false).unwrap();
        assert_eq!(got.nonce, NONCE);
    }

    #[test]
    fn a_malformed_request_is_an_error_not_a_hang() {
        let t = tmp();
        let c = Control::new(t.path()).unwrap();
        jvm_write(t.path(), "request", "nonce=../../etc/passwd\n");
        let r = c.wait_for_request(soon(1000), &|| true);
        assert!(matches!(r, Err(Waited::Io(_))), "{r:?}");
    }

    #[test]
    fn results_are_written_atomically_with_the_agreed_content() {
        let t = tmp();
        let c = Control::new(t.path()).unwrap();
        c.report_failure(NONCE, "criu dump failed: x").unwrap();
        let f = t.path().join(format!("result-{NONCE}"));
        assert_eq!(
            fs::read_to_string(&f).unwrap(),
            "failed\ncriu dump failed: x\n"
        );
        c.mark_continued(NONCE).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "continued\n");
        assert!(c.report_failure("../x", "m").is_err());
        // The restore side: the directory may not exist on this machine yet.
        let gone = t.path().join("elsewhere/ctl");
        Control::open(&gone).mark_restored(NONCE).unwrap();
        assert_eq!(
            fs::read_to_string(gone.join(format!("result-{NONCE}"))).unwrap(),
            "restored\n"
        );
        let tmps = fs::read_dir(t.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(tmps, 0);
    }

    #[test]
    fn nonce_validation() {
        assert!(valid_nonce(NONCE));
        assert!(!valid_nonce("0123456789ABCDEF0123456789abcdef"));
        assert!(!valid_nonce("abc"));
        assert_eq!(parse_nonce(&format!("nonce={NONCE}\n")), Some(NONCE.into()));
        assert_eq!(parse_nonce("nonce=\n"), None);
    }

    #[test]
    fn jvm_options_name_the_provider_and_the_control_directory() {
        let o = jvm_options(
            Path::new("/run/cracin/ctl"),
            Path::new("/var/lib/cracin/provider/ab/cracin-crac.jar"),
        );
        assert_eq!(
            o,
            vec![
                "-Xbootclasspath/a:/var/lib/cracin/provider/ab/cracin-crac.jar",
                "-Dorg.crac.Core.Compat=io.cracin.crac",
                "-Dcracin.control=/run/cracin/ctl",
            ]
        );
        let v = java_tool_options(&o, Some(" -Xmx64m ")).unwrap();
        assert!(v.starts_with("-Xmx64m -Xbootclasspath/a:"), "{v}");
        assert_eq!(java_tool_options(&o, None).unwrap(), o.join(" "));
        assert!(java_tool_options(&["-Dcracin.control=/a b".into()], None).is_err());
    }

    #[test]
    fn osgi_bootdelegation_extends_and_never_duplicates() {
        assert_eq!(osgi_bootdelegation(None), "io.cracin.crac");
        assert_eq!(
            osgi_bootdelegation(Some("sun.*, com.sun.*")),
            "sun.*,com.sun.*,io.cracin.crac"
        );
        assert_eq!(osgi_bootdelegation(Some("io.cracin.*")), "io.cracin.*");
        assert_eq!(osgi_bootdelegation(Some("*")), "*");
        assert_eq!(
            osgi_bootdelegation(Some("io.cracin.crac")),
            "io.cracin.crac"
        );
    }

    #[test]
    fn the_embedded_provider_installs_when_present() {
        let t = tmp();
        match install_provider(t.path()) {
            Ok(jar) => {
                assert!(provider_available());
                let bytes = fs::read(&jar).unwrap();
                assert_eq!(&bytes[..2], b"PK", "not a jar");
                let hash = provider_sha256().unwrap();
                assert!(jar.to_string_lossy().contains(&hash[..16]));
            }
            Err(e) => {
                assert!(!provider_available());
                println!("SKIPPED: cracin was built without javac: {e}");
            }
        }
    }
}
