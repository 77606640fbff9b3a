//! The host-wide restore lock. One restore at a time checks ports and runs CRIU (see
//! `local::restore`). The lock file lives in a directory only root can enter (0700), so no
//! other user can open it, let alone hold it to hang every restore; the wait for it is bounded
//! and ends with an error naming the file.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::os::perms;

/// Where the restore lock lives.
pub const LOCK_DIR: &str = "/run/cracin";

/// The lock directory of this user: root's restores share `LOCK_DIR`; a non-root user (the
/// user of a cracin image, where /run is not writable) has its own under the temporary
/// directory, checked like root's by `acquire`.
pub fn lock_dir() -> PathBuf {
    if crate::os::sysinfo::is_root() {
        PathBuf::from(LOCK_DIR)
    } else {
        std::env::temp_dir().join(format!("cracin-{}", nix::unistd::geteuid()))
    }
}

/// An exclusive lock held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

/// Takes `dir/name` exclusively, waiting at most `timeout`. `dir` is made 0700 and must not
/// be a symlink or owned by someone else.
pub fn acquire(dir: &Path, name: &str, timeout: Duration) -> Result<Lock> {
    perms::ensure_private_dir(dir)?;
    if let Some(why) = perms::untrusted_reason(dir) {
        return Err(Error::io(dir, std::io::Error::other(why)));
    }
    let path = dir.join(name);
    let file = perms::append_private_file(&path)?;
    let start = Instant::now();
    loop {
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Lock { _file: file, path });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(Error::io(&path, err));
        }
        if start.elapsed() >= timeout {
            return Err(Error::LockTimeout {
                path,
                waited: Duration::from_secs(start.elapsed().as_secs()),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_held_lock_makes_the_second_wait_bounded() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("run");
        let a = acquire(&dir, "t.lock", Duration::from_secs(1)).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let e = acquire(&dir, "t.lock", Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, Error::LockTimeout { .. }), "{e:?}");
        assert_eq!(e.exit_code(), 6);
        drop(a);
        acquire(&dir, "t.lock", Duration::from_millis(50)).unwrap();
    }
}
