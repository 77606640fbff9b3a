//! The CRIU binary's version without running `criu --version` on every restore: the answer is
//! kept in cracin's cache directory keyed by the binary's path, size and modification time, so
//! a replaced or upgraded CRIU is asked again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::os::sysinfo::Version;

/// What identifies one CRIU binary on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriuKey {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
}

impl CriuKey {
    pub fn of(path: &Path) -> Option<CriuKey> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(path).ok()?;
        Some(CriuKey {
            path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            size: md.size(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
        })
    }

    /// A short file-name-safe digest of the key's path.
    pub fn slug(&self) -> String {
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(self.path.as_os_str().as_encoded_bytes());
        crate::os::text::hex(&h[..8])
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: CriuKey,
    version: Version,
}

fn entry_path(dir: &Path, key: &CriuKey) -> PathBuf {
    dir.join(format!("criu-version-{}.json", key.slug()))
}

/// The cached version of this exact binary, if there is one.
pub fn lookup(dir: &Path, key: &CriuKey) -> Option<Version> {
    let text = std::fs::read_to_string(entry_path(dir, key)).ok()?;
    let e: Entry = serde_json::from_str(&text).ok()?;
    (e.key == *key).then_some(e.version)
}

/// Remembers the version of this exact binary (best effort: a cache that cannot be written
/// only costs the next run a `criu --version`).
pub fn store(dir: &Path, key: &CriuKey, version: Version) {
    if super::ensure_private_dir(dir).is_err() {
        return;
    }
    let e = Entry {
        key: key.clone(),
        version,
    };
    if let Ok(text) = serde_json::to_vec(&e) {
        let _ = super::write_atomic(&entry_path(dir, key), &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_reused_only_for_the_same_binary() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("criu");
        std::fs::write(&bin, b"one").unwrap();
        let key = CriuKey::of(&bin).unwrap();
        let cache = d.path().join("cache");
        assert_eq!(lookup(&cache, &key), None);
        store(&cache, &key, Version(4, 2, 1));
        assert_eq!(lookup(&cache, &key), Some(Version(4, 2, 1)));
        // Replaced by another binary (other size): asked again.
        std::fs::write(&bin, b"another").unwrap();
        let key2 = CriuKey::of(&bin).unwrap();
        assert_ne!(key, key2);
        assert_eq!(lookup(&cache, &key2), None);
    }
}
