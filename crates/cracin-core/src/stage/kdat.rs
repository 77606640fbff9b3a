//! A copy of CRIU's kernel-feature probe ("kdat") kept for one boot, so that no restore probes
//! the kernel again (~50-120 ms of every `criu restore` here).
//!
//! How CRIU 4.2 does it (criu/kerndat.c): every run first tries to load `/run/criu.kdat`; when
//! the file is missing or was written by another CRIU build (two magic numbers) it probes the
//! kernel and then saves the result there, but only when the file lands on a tmpfs, so that a
//! reboot (perhaps into another kernel) cannot leave a stale cache behind. Loading does not
//! check the file system. On hosts whose /run is a tmpfs CRIU thus caches by itself and cracin
//! does nothing. Where /run is on disk (as on the machines this project runs on) CRIU probes on
//! every run. There cracin:
//! 1. once per boot, runs `criu check` in a private mount namespace with a tmpfs mounted on
//!    /run, so CRIU writes its cache, and keeps a copy in its cache directory together with the
//!    boot id (/proc/sys/kernel/random/boot_id), the kernel release and the CRIU binary's
//!    identity. That costs about twice the probe it saves, so it happens at a checkpoint, in
//!    `cracin doctor`, or after a restore that found no copy (once its figure is taken), never
//!    in a restore container's entrypoint (every container would pay it again);
//! 2. around each CRIU run of its own, puts that copy at /run/criu.kdat when all three still
//!    match, and removes it again afterwards, so that no other CRIU run on a later boot can
//!    ever read it.
//!
//! The restored application stays in the host's mount namespace: only the one-off `criu
//! check` runs in the private one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::criu_cache::CriuKey;

/// The name CRIU gives its cache inside /run.
pub const KDAT_NAME: &str = "criu.kdat";

/// What one cache file is valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdatMeta {
    pub boot_id: String,
    pub kernel: String,
    pub criu: CriuKey,
}

/// Where cracin keeps its copy and where CRIU looks for it.
#[derive(Debug, Clone)]
pub struct KdatCache {
    /// cracin's copy: `<dir>/criu.kdat` and `<dir>/criu.kdat.json`.
    pub dir: PathBuf,
    /// CRIU's fixed directory (/run).
    pub run_dir: PathBuf,
    /// This boot and kernel.
    pub boot_id: String,
    pub kernel: String,
}

/// What `prepare` did, for `--timings` and doctor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KdatState {
    /// /run is a tmpfs: CRIU keeps its own cache.
    CriuKeepsItsOwn,
    /// cracin's copy for this boot was put at /run/criu.kdat.
    Placed,
    /// A copy was made now (`criu check` in a private mount namespace), then put in place.
    Made { ms: u64 },
    /// A /run/criu.kdat that cracin did not put there: left alone (CRIU validates it itself).
    Foreign,
    /// No cache this time, and why (CRIU probes as usual).
    Unavailable(String),
}

impl std::fmt::Display for KdatState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KdatState::CriuKeepsItsOwn => write!(f, "CRIU's own cache (/run is a tmpfs)"),
            KdatState::Placed => write!(f, "cached for this boot"),
            KdatState::Made { ms } => write!(f, "made for this boot ({ms} ms)"),
            KdatState::Foreign => write!(f, "an existing /run/criu.kdat (not cracin's)"),
            KdatState::Unavailable(why) => write!(f, "CRIU probes the kernel ({why})"),
        }
    }
}

/// A placed /run/criu.kdat; removed again when dropped (if it is still the one placed).
#[derive(Debug)]
pub struct Placement {
    pub state: KdatState,
    placed: Option<(PathBuf, u64)>,
}

impl Placement {
    fn none(state: KdatState) -> Placement {
        Placement {
            state,
            placed: None,
        }
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Some((path, ino)) = &self.placed {
            // Another cracin may have put its own copy (a new inode) meanwhile: that one is its.
            if std::fs::metadata(path).is_ok_and(|m| m.ino() == *ino) {
                let _ = std::fs::remove_file(path);
            }
            crate::os::guard::keep(path);
        }
    }
}

/// The marker that says which /run/criu.kdat cracin placed, should a cracin die before removing
/// it: `<inode> <boot id>`.
fn marker_path(dir: &Path) -> PathBuf {
    dir.join("placed")
}

impl KdatCache {
    /// This host: cracin's cache directory, /run, this boot and kernel.
    pub fn host() -> Option<KdatCache> {
        Some(KdatCache {
            dir: super::cache_dir()?.join("kdat"),
            run_dir: PathBuf::from("/run"),
            boot_id: crate::os::boot_id()?,
            kernel: crate::os::sysinfo::kernel_release(),
        })
    }

    fn copy_path(&self) -> PathBuf {
        self.dir.join(KDAT_NAME)
    }

    fn meta_path(&self) -> PathBuf {
        self.dir.join(format!("{KDAT_NAME}.json"))
    }

    fn meta_for(&self, criu: &CriuKey) -> KdatMeta {
        KdatMeta {
            boot_id: self.boot_id.clone(),
            kernel: self.kernel.clone(),
            criu: criu.clone(),
        }
    }

    /// cracin's copy, when it was made on this boot and kernel by this CRIU binary.
    pub fn valid_copy(&self, criu: &CriuKey) -> Option<Vec<u8>> {
        let meta: KdatMeta = serde_json::from_slice(&std::fs::read(self.meta_path()).ok()?).ok()?;
        if meta != self.meta_for(criu) {
            return None;
        }
        std::fs::read(self.copy_path())
            .ok()
            .filter(|b| !b.is_empty())
    }

    /// Makes sure CRIU finds a cache valid for this boot at /run/criu.kdat for the run that
    /// follows. `make` writes a fresh cache file to the path it is given (see
    /// [`make_with_criu`]); it runs at most once per boot, kernel and CRIU binary, and only when
    /// `may_make` (making one costs a `criu check`, about twice what it saves once).
    pub fn prepare(
        &self,
        criu: &CriuKey,
        run_is_tmpfs: bool,
        may_make: bool,
        make: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Placement {
        if run_is_tmpfs {
            return Placement::none(KdatState::CriuKeepsItsOwn);
        }
        let target = self.run_dir.join(KDAT_NAME);
        if target.exists() && !self.placed_by_cracin(&target) {
            return Placement::none(KdatState::Foreign);
        }
        let mut made = None;
        let bytes = match self.valid_copy(criu) {
            Some(b) => b,
            None if !may_make => {
                return Placement::none(KdatState::Unavailable(NO_COPY_YET.into()));
            }
            None => {
                let t = Instant::now();
                match self.make_copy(criu, make) {
                    Ok(b) => {
                        made = Some(t.elapsed().as_millis() as u64);
                        b
                    }
                    Err(why) => return Placement::none(KdatState::Unavailable(why)),
                }
            }
        };
        match self.place(&target, &bytes) {
            Ok(ino) => {
                // Should cracin die before dropping the placement (a signal, SIGKILL), its
                // guardian removes the file: it must never outlive this boot.
                crate::os::guard::remove_on_death(&target);
                Placement {
                    state: match made {
                        Some(ms) => KdatState::Made { ms },
                        None => KdatState::Placed,
                    },
                    placed: Some((target, ino)),
                }
            }
            Err(e) => Placement::none(KdatState::Unavailable(format!(
                "cannot write {}: {e}",
                target.display()
            ))),
        }
    }

    /// Whether /run/criu.kdat is one cracin placed (on any boot): a stale one from a cracin
    /// that died before removing it is replaced, a foreign one never touched.
    fn placed_by_cracin(&self, target: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(text) = std::fs::read_to_string(marker_path(&self.dir)) else {
            return false;
        };
        let ino = text
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        std::fs::metadata(target).is_ok_and(|m| Some(m.ino()) == ino)
    }

    fn make_copy(
        &self,
        criu: &CriuKey,
        make: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<Vec<u8>, String> {
        super::ensure_private_dir(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let fresh = self
            .dir
            .join(format!(".{KDAT_NAME}.new-{}", std::process::id()));
        let _ = std::fs::remove_file(&fresh);
        let r = make(&fresh).and_then(|_| {
            std::fs::read(&fresh)
                .ok()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| "criu check wrote no kernel-feature cache".to_string())
        });
        let _ = std::fs::remove_file(&fresh);
        let bytes = r?;
        let meta = serde_json::to_vec(&self.meta_for(criu)).map_err(|e| e.to_string())?;
        // The copy first, then the metadata that makes it valid.
        super::write_atomic(&self.copy_path(), &bytes).map_err(|e| e.to_string())?;
        super::write_atomic(&self.meta_path(), &meta).map_err(|e| e.to_string())?;
        Ok(bytes)
    }

    fn place(&self, target: &Path, bytes: &[u8]) -> std::io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        super::write_atomic(target, bytes)?;
        let ino = std::fs::metadata(target)?.ino();
        let _ = super::write_atomic(
            &marker_path(&self.dir),
            format!("{ino} {}\n", self.boot_id).as_bytes(),
        );
        Ok(ino)
    }
}

/// Why there is no cache when `prepare` was not allowed to make one.
pub const NO_COPY_YET: &str = "no copy for this boot yet";

/// Whether `dir` is on a tmpfs (where CRIU saves its cache by itself).
pub fn is_tmpfs(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

/// Runs `criu check` in a private mount namespace whose /run is a fresh tmpfs, so that CRIU
/// saves its kernel-feature cache there, and copies that file to `dest` (which must not be
/// under /run). The namespace, the tmpfs and everything in it go away with the command.
pub fn make_with_criu(criu: &Path, dest: &Path) -> Result<(), String> {
    let unshare = crate::os::cmd::which("unshare").ok_or("`unshare` is not installed")?;
    if dest.starts_with("/run") {
        return Err(format!("{} is under /run", dest.display()));
    }
    let out = std::process::Command::new(unshare)
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(
            r#"mount -t tmpfs -o size=1m,mode=0700 cracin-kdat /run || exit 90
"$1" check >/dev/null 2>&1
cat /run/criu.kdat > "$2" || exit 91"#,
        )
        .arg("sh")
        .arg(criu)
        .arg(dest)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(90) => Err("cannot mount a tmpfs in a private mount namespace".into()),
        Some(91) => Err("criu check wrote no kernel-feature cache".into()),
        _ => Err(format!(
            "unshare failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Prepares the kdat cache for one run of `criu` by cracin (see the module text). Set
/// `CRACIN_NO_KDAT_CACHE=1` to let CRIU probe as it would by itself (benchmarks of this lever).
pub fn for_criu_run(
    criu: &crate::stage::criu::Criu,
    unprivileged: bool,
    may_make: bool,
) -> Placement {
    if std::env::var_os("CRACIN_NO_KDAT_CACHE").is_some_and(|v| v != "0" && !v.is_empty()) {
        return Placement::none(KdatState::Unavailable("CRACIN_NO_KDAT_CACHE is set".into()));
    }
    if unprivileged {
        return Placement::none(KdatState::Unavailable(
            "criu --unprivileged keeps its cache in $XDG_RUNTIME_DIR".into(),
        ));
    }
    if !crate::os::sysinfo::is_root() {
        return Placement::none(KdatState::Unavailable("not root".into()));
    }
    let (Some(cache), Some(key)) = (KdatCache::host(), CriuKey::of(&criu.path)) else {
        return Placement::none(KdatState::Unavailable(
            "no boot id or cache directory".into(),
        ));
    };
    let tmpfs = is_tmpfs(&cache.run_dir);
    cache.prepare(&key, tmpfs, may_make, |dest| {
        make_with_criu(&criu.path, dest)
    })
}

/// After a restore that found no copy for this boot: makes one for the next restores, unless
/// cracin is PID 1 of a container (every container is new: it would pay again each time).
pub fn make_after_restore(criu: &crate::stage::criu::Criu, unprivileged: bool, state: &KdatState) {
    if *state == KdatState::Unavailable(NO_COPY_YET.into()) && std::process::id() != 1 {
        drop(for_criu_run(criu, unprivileged, true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn setup(boot: &str) -> (tempfile::TempDir, KdatCache, CriuKey) {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("criu");
        std::fs::write(&bin, b"criu binary").unwrap();
        std::fs::create_dir(d.path().join("run")).unwrap();
        let c = KdatCache {
            dir: d.path().join("cache"),
            run_dir: d.path().join("run"),
            boot_id: boot.into(),
            kernel: "6.18.44".into(),
        };
        let key = CriuKey::of(&bin).unwrap();
        (d, c, key)
    }

    #[test]
    fn made_once_reused_then_remade_on_another_boot() {
        let (_d, c, key) = setup("boot-a");
        let made = Cell::new(0);
        let make = |p: &Path| {
            made.set(made.get() + 1);
            std::fs::write(p, format!("kdat {}", made.get())).map_err(|e| e.to_string())
        };
        let target = c.run_dir.join(KDAT_NAME);
        {
            let p = c.prepare(&key, false, true, make);
            assert!(matches!(p.state, KdatState::Made { .. }), "{:?}", p.state);
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "kdat 1");
        }
        // Removed after the run: no CRIU on a later boot can read it.
        assert!(!target.exists());
        {
            let p = c.prepare(&key, false, true, make);
            assert_eq!(p.state, KdatState::Placed);
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "kdat 1");
        }
        assert_eq!(made.get(), 1);
        // Another boot: the copy is not valid any more and is made again.
        let c2 = KdatCache {
            boot_id: "boot-b".into(),
            ..c.clone()
        };
        assert_eq!(c2.valid_copy(&key), None);
        let p = c2.prepare(&key, false, true, make);
        assert!(matches!(p.state, KdatState::Made { .. }));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kdat 2");
        // Another kernel on the same boot id (cannot happen, but the key says so).
        let c3 = KdatCache {
            kernel: "6.19.0".into(),
            ..c2.clone()
        };
        assert_eq!(c3.valid_copy(&key), None);
    }

    #[test]
    fn tmpfs_run_and_foreign_files_are_left_to_criu() {
        let (_d, c, key) = setup("boot-a");
        let never = |_: &Path| -> Result<(), String> { panic!("must not make a cache") };
        assert_eq!(
            c.prepare(&key, true, true, never).state,
            KdatState::CriuKeepsItsOwn
        );
        let target = c.run_dir.join(KDAT_NAME);
        std::fs::write(&target, b"someone else's").unwrap();
        {
            let p = c.prepare(&key, false, true, never);
            assert_eq!(p.state, KdatState::Foreign);
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"someone else's");
    }

    #[test]
    fn a_copy_left_by_a_dead_cracin_is_replaced() {
        let (_d, c, key) = setup("boot-a");
        let make = |p: &Path| std::fs::write(p, b"fresh").map_err(|e| e.to_string());
        let p = c.prepare(&key, false, true, make);
        std::mem::forget(p); // as if cracin died before removing it
        let target = c.run_dir.join(KDAT_NAME);
        assert!(target.exists());
        let c2 = KdatCache {
            boot_id: "boot-b".into(),
            ..c.clone()
        };
        let p = c2.prepare(&key, false, true, make);
        assert!(matches!(p.state, KdatState::Made { .. }), "{:?}", p.state);
        drop(p);
        assert!(!target.exists());
    }

    #[test]
    fn a_failed_make_means_criu_probes() {
        let (_d, c, key) = setup("boot-a");
        let p = c.prepare(&key, false, true, |_| Err("no tmpfs".into()));
        assert_eq!(p.state, KdatState::Unavailable("no tmpfs".into()));
        assert!(!c.run_dir.join(KDAT_NAME).exists());
    }

    #[test]
    fn a_restore_uses_a_copy_but_does_not_make_one() {
        let (_d, c, key) = setup("boot-a");
        let never = |_: &Path| -> Result<(), String> { panic!("must not make a cache") };
        let p = c.prepare(&key, false, false, never);
        assert_eq!(p.state, KdatState::Unavailable(NO_COPY_YET.into()));
        drop(p);
        let make = |p: &Path| std::fs::write(p, b"k").map_err(|e| e.to_string());
        drop(c.prepare(&key, false, true, make));
        assert_eq!(
            c.prepare(&key, false, false, never).state,
            KdatState::Placed
        );
    }
}
