//! Temporary directories with mkdtemp semantics: a fresh random name, mode 0700, created
//! atomically, never an existing path (a local user who pre-creates `/tmp/cracin-x` or puts a
//! symlink there cannot make root write through it). `TempDir` removes itself when dropped
//! (and its path is given to cracin's guardian, so it also goes if cracin is killed) unless
//! `keep` is called.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates `<base>/<prefix>-XXXXXX` with mkdtemp(3): random suffix, mode 0700, fails instead of
/// reusing anything that exists.
pub fn mkdtemp_in(base: &Path, prefix: &str) -> Result<PathBuf> {
    let template = base.join(format!("{prefix}-XXXXXX"));
    let c = CString::new(template.as_os_str().as_bytes())
        .map_err(|_| Error::io(&template, std::io::Error::other("NUL byte in path")))?;
    let mut buf = c.into_bytes_with_nul();
    // SAFETY: buf is a NUL-terminated template that mkdtemp rewrites in place.
    let r = unsafe { libc::mkdtemp(buf.as_mut_ptr() as *mut libc::c_char) };
    if r.is_null() {
        return Err(Error::io(&template, std::io::Error::last_os_error()));
    }
    buf.pop();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&buf)))
}

/// `mkdtemp_in` under the system temporary directory ($TMPDIR, else /tmp).
pub fn mkdtemp(prefix: &str) -> Result<PathBuf> {
    mkdtemp_in(&std::env::temp_dir(), prefix)
}

/// A private temporary directory removed when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir> {
        let path = mkdtemp(prefix)?;
        // Also gone if cracin is killed before it is dropped.
        crate::os::guard::remove_on_death(&path);
        Ok(TempDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory in place (its path is returned).
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        crate::os::guard::keep(&self.path);
        self.path.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn fresh_private_and_unique() {
        let base = tempfile::tempdir().unwrap();
        let a = mkdtemp_in(base.path(), "cracin-t").unwrap();
        let b = mkdtemp_in(base.path(), "cracin-t").unwrap();
        assert_ne!(a, b);
        for d in [&a, &b] {
            let m = std::fs::symlink_metadata(d).unwrap();
            assert!(m.is_dir());
            assert_eq!(m.permissions().mode() & 0o777, 0o700);
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with("cracin-t-") && name.len() == "cracin-t-".len() + 6);
        }
    }

    #[test]
    fn removed_on_drop_unless_kept() {
        let t = TempDir::new("cracin-unit").unwrap();
        let p = t.path().to_path_buf();
        std::fs::write(p.join("x"), "y").unwrap();
        drop(t);
        assert!(!p.exists());
        let k = TempDir::new("cracin-unit").unwrap().keep();
        assert!(k.is_dir());
        std::fs::remove_dir_all(k).unwrap();
    }
}
