//! The checkpoint directory: its layout, its `cracin.json` manifest, and writing it atomically.
//! A new checkpoint is built in a hidden temporary directory beside the target and only put in
//! place (by an atomic rename, or an atomic exchange when `--force` replaces an old one) after the
//! dump succeeded, so a failed checkpoint never replaces a good one.
//!
//! Layout: `cracin.json`, `images/` (CRIU's images), `dump.log`, `app.stdout`, `app.stderr`
//! (the application's output up to the dump), `restores/<id>/` (one folder per restore: its
//! `restore.log` and the restored application's output), `files/<sha256>` (files saved with the
//! checkpoint and put back before each restore: see `ckpt::files`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::jvm::launch::Jvm;
use crate::stage::warmup::{WarmupSpec, WarmupStats};

pub const MANIFEST: &str = "cracin.json";
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub cracin_version: String,
    pub created: String,
    pub engine: crate::engine::EngineKind,
    pub runtime: String,
    pub command: Vec<String>,
    pub cwd: PathBuf,
    /// What cracin put into JAVA_TOOL_OPTIONS.
    pub java_tool_options: String,
    pub jvm: Option<Jvm>,
    pub criu: CriuInfo,
    pub host: HostInfo,
    pub ready: Option<String>,
    pub ready_timeout_s: f64,
    pub warmup: Option<WarmupSpec>,
    pub warmup_stats: Option<WarmupStats>,
    pub shrink: Shrink,
    pub timings_ms: Timings,
    pub sizes: Sizes,
    /// Paths of the application's stdout/stderr as recorded in the images (restore re-points them).
    pub app_output: AppOutput,
    pub listen_ports: Vec<u16>,
    #[serde(default)]
    pub coordination: Option<Coordination>,
    /// The CPU baseline and the features a restore host needs (absent in checkpoints made
    /// before --cpu-baseline: then every flag of `host` counts).
    #[serde(default)]
    pub cpu: Option<crate::jvm::cpu::CpuRecord>,
    /// The files the process tree held open, sorted; the saved ones are in `files/`.
    #[serde(default)]
    pub files: Option<crate::ckpt::files::Recorded>,
    /// SHA-256 of every image file at dump (`cracin check` verifies them; see ckpt::integrity).
    #[serde(default)]
    pub checksums: std::collections::BTreeMap<String, String>,
    /// What the secrets scan searched before the checkpoint was sealed (see ckpt::secrets).
    #[serde(default)]
    pub secrets_scan: Option<crate::ckpt::secrets::ScanSummary>,
    /// cracin's JVMTI agent: renewal of random state and restore-time configuration (None for
    /// checkpoints made before it existed, or of something that is not a JVM).
    #[serde(default)]
    pub individual: Option<crate::jvm::individual::Individual>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CriuInfo {
    pub path: PathBuf,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostInfo {
    pub kernel: String,
    pub cpu_model: String,
    pub cpu_flags: Vec<String>,
}

impl HostInfo {
    pub fn here() -> HostInfo {
        let (cpu_model, cpu_flags) = crate::os::sysinfo::cpu();
        HostInfo {
            kernel: crate::os::sysinfo::kernel_release(),
            cpu_model,
            cpu_flags,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Shrink {
    pub enabled: bool,
    /// JVM options cracin added to make the heap (and so the image) small.
    pub options: Vec<String>,
    /// Whether a full GC ran right before the dump.
    pub gc_before_dump: bool,
    /// The diagnostic commands that ran in the JVM right before the dump.
    #[serde(default)]
    pub before_dump: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    pub launch_to_ready: f64,
    pub warmup: f64,
    pub gc: f64,
    pub dump: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sizes {
    pub images_bytes: u64,
    pub pages_bytes: u64,
    pub image_files: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppOutput {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Coordination {
    pub control_dir: PathBuf,
    pub nonce: String,
    pub provider_jar: PathBuf,
    pub trigger: String,
}

/// A checkpoint directory on disk that passed validation.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    pub path: PathBuf,
    pub manifest: Manifest,
}

impl CheckpointDir {
    pub fn images(&self) -> PathBuf {
        self.path.join("images")
    }

    /// Opens and validates a checkpoint directory; a missing, incomplete or corrupted one is a
    /// clear `BadCheckpoint` error, never a crash.
    pub fn open(path: &Path) -> Result<CheckpointDir> {
        let bad = |why: String| Error::BadCheckpoint {
            path: path.to_path_buf(),
            why,
        };
        if !path.exists() {
            return Err(Error::usage(
                format!("there is no checkpoint at {}", path.display()),
                "check the path; `cracin checkpoint --out DIR ...` writes one",
            ));
        }
        if !path.is_dir() {
            return Err(bad("it is not a directory".into()));
        }
        let mp = path.join(MANIFEST);
        let text = std::fs::read_to_string(&mp)
            .map_err(|e| bad(format!("cannot read {MANIFEST}: {e}")))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| bad(format!("{MANIFEST} is corrupted: {e}")))?;
        if manifest.format != FORMAT {
            return Err(bad(format!(
                "{MANIFEST} has format {} but this cracin reads format {FORMAT}",
                manifest.format
            )));
        }
        let images = path.join("images");
        for required in ["inventory.img", "pstree.img"] {
            let p = images.join(required);
            match std::fs::metadata(&p) {
                Ok(m) if m.len() > 0 => {}
                Ok(_) => return Err(bad(format!("images/{required} is empty"))),
                Err(_) => return Err(bad(format!("images/{required} is missing"))),
            }
        }
        let pages = dir_size(&images, |n| n.starts_with("pages-"));
        if pages == 0 {
            return Err(bad(
                "images/pages-*.img are missing or empty (was the checkpoint restored with --auto-dedup, or truncated?)".into(),
            ));
        }
        let (total, _) = dir_usage(&images);
        if total != manifest.sizes.images_bytes {
            return Err(bad(format!(
                "the images are {total} bytes but were {} bytes when the checkpoint was written: they were changed or truncated",
                manifest.sizes.images_bytes
            )));
        }
        Ok(CheckpointDir {
            path: path.to_path_buf(),
            manifest,
        })
    }
}

/// Total bytes and file count of the images (one level; CRIU's image dir is flat). CRIU's
/// `stats-*` files are left out: every restore rewrites `stats-restore`.
pub fn dir_usage(dir: &Path) -> (u64, usize) {
    let mut total = 0;
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("stats-") {
                continue;
            }
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    total += m.len();
                    n += 1;
                }
            }
        }
    }
    (total, n)
}

fn dir_size(dir: &Path, keep: impl Fn(&str) -> bool) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| keep(&e.file_name().to_string_lossy()))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

pub fn sizes_of(images: &Path) -> Sizes {
    let (images_bytes, image_files) = dir_usage(images);
    Sizes {
        images_bytes,
        pages_bytes: dir_size(images, |n| n.starts_with("pages-")),
        image_files,
    }
}

/// A checkpoint being written: a hidden directory beside the target, removed unless committed.
pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
    force: bool,
    committed: bool,
    /// Once the application ran, a failure keeps its logs (not its images) in `<target>.failed`.
    keep_logs: bool,
}

impl Staging {
    /// Refuses an existing target without `force` before anything is started.
    pub fn new(target: &Path, force: bool) -> Result<Staging> {
        let target = absolute(target)?;
        if target.exists() && !force {
            return Err(Error::OutputExists { path: target });
        }
        if target.exists() && !target.is_dir() {
            return Err(Error::usage(
                format!("{} exists and is not a directory", target.display()),
                "choose another --out",
            ));
        }
        // --force replaces a checkpoint, never a directory that merely has the name.
        if std::fs::symlink_metadata(&target).is_ok() && !is_cracin_checkpoint(&target) {
            return Err(Error::usage(
                format!(
                    "{} exists and is not a cracin checkpoint (no cracin.json of cracin's), so --force does not replace it",
                    target.display()
                ),
                "choose another --out, or remove that directory yourself if it is really unwanted",
            ));
        }
        let parent = target
            .parent()
            .ok_or_else(|| Error::usage("--out has no parent directory", "choose another --out"))?;
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        remove_stale_staging(parent, &name);
        let dir = parent.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
        // Private from the first byte: the staging directory will hold a memory dump.
        crate::os::perms::create_private_dir(&dir)?;
        crate::os::perms::write_private(&dir.join(STAGING_MARK), b"")?;
        crate::os::perms::create_private_dir(&dir.join("images"))?;
        Ok(Staging {
            dir,
            target,
            force,
            committed: false,
            keep_logs: false,
        })
    }

    /// From now on a failure keeps the logs in `failed_dir()`.
    pub fn keep_logs_on_failure(&mut self) {
        self.keep_logs = true;
    }

    /// Where a failed attempt's logs are kept.
    pub fn failed_dir(&self) -> PathBuf {
        failed_dir_of(&self.target)
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Puts the finished checkpoint in place; an old one is swapped out atomically and removed.
    pub fn commit(mut self) -> Result<PathBuf> {
        if self.target.exists() {
            if !self.force {
                return Err(Error::OutputExists {
                    path: self.target.clone(),
                });
            }
            nix::fcntl::renameat2(
                None,
                &self.dir,
                None,
                &self.target,
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .map_err(|e| Error::io(&self.target, std::io::Error::from(e)))?;
            // `dir` now holds the old checkpoint.
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = std::fs::remove_file(self.target.join(STAGING_MARK));
        } else {
            std::fs::rename(&self.dir, &self.target).map_err(|e| Error::io(&self.target, e))?;
            let _ = std::fs::remove_file(self.target.join(STAGING_MARK));
        }
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if self.keep_logs {
            let failed = self.failed_dir();
            let _ = std::fs::remove_dir_all(self.dir.join("images"));
            let _ = std::fs::remove_dir_all(self.dir.join(crate::ckpt::files::DIR));
            // Only a `.failed` directory cracin itself left (it carries the mark) is replaced.
            if is_ours(&failed) {
                let _ = std::fs::remove_dir_all(&failed);
            }
            let _ = crate::os::perms::make_private(&self.dir);
            if std::fs::rename(&self.dir, &failed).is_ok() {
                return;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The file that marks a staging (and so a `.failed`) directory as cracin's own: pruning and
/// replacing touch nothing without it.
pub const STAGING_MARK: &str = ".cracin-staging";

/// A real directory (not a symlink) that carries cracin's staging mark.
fn is_ours(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
        && std::fs::symlink_metadata(p.join(STAGING_MARK)).is_ok_and(|m| m.is_file())
}

pub fn failed_dir_of(target: &Path) -> PathBuf {
    PathBuf::from(format!("{}.failed", target.display()))
}

/// Removes staging directories of `name` left by a cracin that was killed (its PID is gone).
fn remove_stale_staging(parent: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() && is_ours(&e.path()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

pub fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
        Ok(cwd.join(p))
    }
}

pub fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let p = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(m).expect("manifest serializes");
    crate::os::perms::write_private(&p, (text + "\n").as_bytes())
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Whether `p` is a cracin checkpoint (or what a failed cracin checkpoint left): a directory
/// whose `cracin.json` parses as a cracin manifest. `--force` replaces nothing else.
pub fn is_cracin_checkpoint(p: &Path) -> bool {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return false;
    };
    if !m.is_dir() {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(p.join(MANIFEST)) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    v.get("cracin_version").is_some_and(|x| x.is_string()) && v.get("format").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cracin_checkpoints_are_recognised() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c");
        std::fs::create_dir(&p).unwrap();
        assert!(!is_cracin_checkpoint(&p));
        std::fs::write(p.join(MANIFEST), "{\"x\":1}").unwrap();
        assert!(!is_cracin_checkpoint(&p));
        std::fs::write(
            p.join(MANIFEST),
            "{\"format\":1,\"cracin_version\":\"0.1.0\"}",
        )
        .unwrap();
        assert!(is_cracin_checkpoint(&p));
        std::os::unix::fs::symlink(&p, d.path().join("l")).unwrap();
        assert!(!is_cracin_checkpoint(&d.path().join("l")));
    }

    #[test]
    fn staging_refuses_existing_target_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("ckpt");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join(MANIFEST), FAKE_MANIFEST).unwrap();
        assert!(matches!(
            Staging::new(&t, false),
            Err(Error::OutputExists { .. })
        ));
        {
            let s = Staging::new(&t, true).unwrap();
            assert!(s.dir.exists());
            std::fs::write(s.dir.join("x"), "new").unwrap();
            // dropped without commit: the old target stays, the staging dir goes
        }
        assert!(t.exists() && !t.join("x").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    const FAKE_MANIFEST: &str = "{\"format\":1,\"cracin_version\":\"0.1.0\"}";

    #[test]
    fn force_replaces_only_a_checkpoint_and_staging_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("precious");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join("data"), "mine").unwrap();
        let e = Staging::new(&t, true).err().expect("refused");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not a cracin checkpoint"), "{e}");
        assert_eq!(std::fs::read_to_string(t.join("data")).unwrap(), "mine");
        let _u = crate::os::perms::UmaskGuard::set(0);
        let s = Staging::new(&d.path().join("new"), false).unwrap();
        let mode = std::fs::metadata(&s.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A `.failed` that is not cracin's is left alone.
        let failed = s.failed_dir();
        std::fs::create_dir(&failed).unwrap();
        std::fs::write(failed.join("data"), "mine").unwrap();
        let mut s = s;
        s.keep_logs_on_failure();
        drop(s);
        assert_eq!(
            std::fs::read_to_string(failed.join("data")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn commit_swaps_atomically() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("ckpt");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join(MANIFEST), FAKE_MANIFEST).unwrap();
        std::fs::write(t.join("old"), "old").unwrap();
        let s = Staging::new(&t, true).unwrap();
        std::fs::write(s.dir.join("new"), "new").unwrap();
        s.commit().unwrap();
        assert!(t.join("new").exists() && !t.join("old").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn open_reports_what_is_wrong() {
        let d = tempfile::tempdir().unwrap();
        let e = CheckpointDir::open(&d.path().join("nope")).unwrap_err();
        assert!(e.to_string().contains("there is no checkpoint"), "{e}");
        let e = CheckpointDir::open(d.path()).unwrap_err();
        assert!(e.to_string().contains("cannot read cracin.json"), "{e}");
        std::fs::write(d.path().join(MANIFEST), "{not json").unwrap();
        let e = CheckpointDir::open(d.path()).unwrap_err();
        assert!(e.to_string().contains("corrupted"), "{e}");
    }
}
