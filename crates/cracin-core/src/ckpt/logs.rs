//! The checkpoint's `restores/` folder: each restore writes the application's output and CRIU's
//! log in a private folder of its own, named by time and cracin's pid, and only the newest
//! twenty are kept, so repeated restores never fill the disk. A checkpoint that is not writable
//! (someone else's, or read-only) gets a private temporary folder instead.

use std::path::{Path, PathBuf};

use crate::error::Result;

/// How many restore folders a checkpoint keeps.
pub const KEEP: usize = 20;

/// `restores/<time>-<pid>` inside the checkpoint when it is writable, else a private temp dir.
pub fn restore_log_dir(ck: &Path) -> Result<PathBuf> {
    let name = format!(
        "{}-{}",
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .replace([':', '.'], "-"),
        std::process::id()
    );
    let restores = ck.join("restores");
    let d = restores.join(&name);
    if crate::os::perms::ensure_private_dir(&restores).is_ok()
        && crate::os::perms::create_private_dir(&d).is_ok()
    {
        prune_restores(&restores, KEEP);
        return Ok(d);
    }
    crate::os::cmd::private_tmp_dir("cracin-restore")
}

/// Keeps the newest `keep` restore folders (names sort by time).
fn prune_restores(dir: &Path, keep: usize) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        // Only cracin's own folders: `<rfc3339 time with - for : and .>-<pid>`, real directories.
        let mut v: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| is_restore_folder_name(&e.file_name().to_string_lossy()))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        v.sort();
        if v.len() > keep {
            for p in &v[..v.len() - keep] {
                let _ = std::fs::remove_dir_all(p);
            }
        }
    }
}

/// `2026-12-02T04-07-37-123Z-4242`: what `restore_log_dir` names its folders.
fn is_restore_folder_name(n: &str) -> bool {
    n.len() > 20
        && n.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && n.as_bytes()[10] == b'T'
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_restore_folders_stay_and_nothing_else_goes() {
        let d = crate::os::tempdir::TempDir::new("cracin-logs-test").unwrap();
        let names = [
            "2026-12-02T04-07-37-123Z-4242",
            "2026-12-02T04-07-38-000Z-17",
            "2026-12-02T04-08-00-500Z-9",
        ];
        for n in names {
            std::fs::create_dir(d.path().join(n)).unwrap();
        }
        std::fs::create_dir(d.path().join("keep-me")).unwrap();
        std::fs::write(d.path().join("2026-12-01T00-00-00-000Z-1"), "a file").unwrap();
        prune_restores(d.path(), 2);
        assert!(!d.path().join(names[0]).exists(), "the oldest goes");
        assert!(d.path().join(names[1]).is_dir() && d.path().join(names[2]).is_dir());
        assert!(d.path().join("keep-me").is_dir(), "not a restore folder");
        assert!(
            d.path().join("2026-12-01T00-00-00-000Z-1").is_file(),
            "not a directory"
        );
        assert!(!is_restore_folder_name("2026-12-02"));
    }

    #[test]
    fn a_restore_folder_is_private_and_named_for_pruning() {
        let d = crate::os::tempdir::TempDir::new("cracin-logs-test").unwrap();
        let f = restore_log_dir(d.path()).unwrap();
        assert_eq!(f.parent(), Some(d.path().join("restores").as_path()));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_restore_folder_name(&name), "{name}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
