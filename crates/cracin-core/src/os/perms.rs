//! Private permissions, whatever the umask. A checkpoint holds the application's whole memory
//! (heap, keys, the environment of the shell that launched it), so every directory cracin
//! writes for it is 0700 and every file 0600: directories are created private and set again
//! with chmod (a umask can only take bits away, and a umask of 000 must not add any), and
//! whatever CRIU wrote is made private by `make_private` before the checkpoint is sealed.
//! Symlinks are never followed: a walk that meets one leaves it (and what it points to) alone.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;
/// The umask cracin sets for the programs that write checkpoint files (CRIU).
pub const PRIVATE_UMASK: u32 = 0o077;

/// Creates one directory with mode 0700 (exactly, whatever the umask). Fails if it exists.
pub fn create_private_dir(p: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(DIR_MODE)
        .create(p)
        .map_err(|e| Error::io(p, e))?;
    set_mode(p, DIR_MODE)
}

/// Creates `p` and missing parents; `p` itself (new or existing, not a symlink) ends up 0700.
pub fn ensure_private_dir(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::io(
            p,
            std::io::Error::other("is a symlink; cracin does not follow it"),
        )),
        Ok(m) if m.is_dir() => set_mode(p, DIR_MODE),
        Ok(_) => Err(Error::io(p, std::io::Error::other("is not a directory"))),
        Err(_) => {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            match create_private_dir(p) {
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    ensure_private_dir(p)
                }
                r => r,
            }
        }
    }
}

/// Creates (or truncates) a file with mode 0600, refusing to open through a symlink.
pub fn create_private_file(p: &Path) -> Result<File> {
    open_private(p, OpenOptions::new().write(true).truncate(true))
}

/// Opens a file for appending (created 0600), refusing to open through a symlink.
pub fn append_private_file(p: &Path) -> Result<File> {
    open_private(p, OpenOptions::new().append(true))
}

/// Opens `p` with `how`, created 0600 if missing and set to 0600 if it existed, never through
/// a symlink.
fn open_private(p: &Path, how: &mut OpenOptions) -> Result<File> {
    let f = how
        .create(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(|e| Error::io(p, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .map_err(|e| Error::io(p, e))?;
    Ok(f)
}

/// Writes a whole file privately (0600, no symlink followed).
pub fn write_private(p: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    create_private_file(p)?
        .write_all(data)
        .map_err(|e| Error::io(p, e))
}

/// Writes a file with `mode` without following a symlink at `p` (one that is there is
/// removed, not written through): generated files in a build context or `--dir`.
pub fn write_nofollow(p: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(|e| Error::io(p, e))?;
    f.write_all(data).map_err(|e| Error::io(p, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(p, e))
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io(p, e))
}

/// Makes a tree private: directories 0700, regular files 0600. Symlinks and special files are
/// left alone and not followed.
pub fn make_private(root: &Path) -> Result<()> {
    let m = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(root, e)),
    };
    if m.is_file() {
        return set_mode(root, FILE_MODE);
    }
    if !m.is_dir() {
        return Ok(());
    }
    set_mode(root, DIR_MODE)?;
    for e in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let e = e.map_err(|e| Error::io(root, e))?;
        make_private(&e.path())?;
    }
    Ok(())
}

/// Everything in the tree that others could read or that is not private: `(path, mode)`.
/// Used by tests and `cracin check`.
pub fn not_private(root: &Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut bad = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let mode = m.permissions().mode() & 0o7777;
        if m.is_dir() {
            if mode != DIR_MODE {
                bad.push((p.clone(), mode));
            }
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if m.is_file() && mode != FILE_MODE {
            bad.push((p, mode));
        }
    }
    bad.sort();
    bad
}

/// Why a directory cracin is about to trust (a checkpoint to restore) is not safe: not a real
/// directory, owned by another user than the one running cracin, or writable by group or
/// others (anyone who can write there could swap the images cracin restores as root).
pub fn untrusted_reason(p: &Path) -> Option<String> {
    let m = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot read its metadata: {e}")),
    };
    if m.file_type().is_symlink() {
        return Some("it is a symlink".into());
    }
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return Some(format!(
            "it is owned by uid {}, not by the user running cracin (uid {me})",
            m.uid()
        ));
    }
    let mode = m.permissions().mode();
    if mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by {} (mode {:o})",
            if mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            },
            mode & 0o7777
        ));
    }
    None
}

/// Sets the process umask and restores the old one when dropped.
pub struct UmaskGuard(libc::mode_t);

impl UmaskGuard {
    pub fn set(mask: u32) -> UmaskGuard {
        UmaskGuard(unsafe { libc::umask(mask as libc::mode_t) })
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        unsafe {
            libc::umask(self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_tree_under_a_zero_umask() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("ck");
        {
            let _u = UmaskGuard::set(0);
            ensure_private_dir(&root).unwrap();
            std::fs::create_dir(root.join("sub")).unwrap();
            std::fs::write(root.join("sub/a"), "x").unwrap();
            write_private(&root.join("b"), b"y").unwrap();
            std::os::unix::fs::symlink("/etc/hostname", root.join("link")).unwrap();
        }
        assert!(!not_private(&root).is_empty());
        make_private(&root).unwrap();
        assert_eq!(not_private(&root), vec![]);
        // the symlink's target was not touched
        let m = std::fs::metadata("/etc/hostname").unwrap();
        assert_ne!(m.permissions().mode() & 0o777, FILE_MODE);
    }

    #[test]
    fn private_files_refuse_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("t");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, d.path().join("l")).unwrap();
        assert!(create_private_file(&d.path().join("l")).is_err());
        assert!(ensure_private_dir(&d.path().join("l")).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn untrusted_dirs_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        create_private_dir(&p).unwrap();
        assert_eq!(untrusted_reason(&p), None);
        set_mode(&p, 0o777).unwrap();
        assert!(untrusted_reason(&p).unwrap().contains("everyone"));
        set_mode(&p, 0o770).unwrap();
        assert!(untrusted_reason(&p).unwrap().contains("group"));
    }
}
