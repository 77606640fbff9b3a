//! The pipeline's steps around CRIU, each usable on its own: is the application ready (`probe`),
//! warm it up (`warmup`), run CRIU (`criu`: finding it, the exact dump/restore lines; `lazy`: the
//! lazy-pages daemon; `criu_failure`: a failed run as an error with its evidence), and what is
//! prepared once and reused across runs of CRIU: the CRIU binary's version keyed by the binary's
//! identity (`criu_cache`), a copy of CRIU's kernel-feature probe valid for one boot (`kdat`), and
//! the pages read ahead while CRIU sets up the tasks (`readahead`). The caches live in cracin's
//! private cache directory.

pub mod criu;
pub mod criu_cache;
pub mod criu_failure;
pub mod kdat;
pub mod lazy;
pub mod probe;
pub mod readahead;
pub mod warmup;

use std::path::PathBuf;

/// cracin's cache directory: `$CRACIN_CACHE_DIR`, else /var/cache/cracin for root, else
/// `$XDG_CACHE_HOME/cracin` or `~/.cache/cracin`. Created 0700 on first use.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CRACIN_CACHE_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if crate::os::sysinfo::is_root() {
        return Some(PathBuf::from("/var/cache/cracin"));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("cracin"))
}

/// Creates `dir` (and parents) with mode 0700: what is cached there is fed to CRIU as root.
pub fn ensure_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, then rename).
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}
