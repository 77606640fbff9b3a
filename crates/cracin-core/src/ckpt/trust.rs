//! What a restore may trust. `cracin restore` runs as root and hands CRIU what it finds in the
//! checkpoint directory, so a directory that another user owns or can write to is refused, and
//! every path read from `cracin.json` is checked before it is used (the application's output
//! paths handed to `criu --inherit-fd`, the control directory cracin writes into). `--force`
//! replaces only a directory that is recognisably a cracin checkpoint.

use std::path::{Component, Path};

use crate::ckpt::dir::{Manifest, MANIFEST};
use crate::error::{Error, Result};
use crate::os::perms;

/// Refuses a checkpoint directory (and its `images/` and `cracin.json`) owned by another user
/// or writable by group or others.
pub fn check_owner(dir: &Path) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(()); // CheckpointDir::open says there is no checkpoint
    }
    for (p, label) in [
        (dir.to_path_buf(), "the checkpoint directory"),
        (dir.join("images"), "its images directory"),
        (dir.join(MANIFEST), "its cracin.json"),
    ] {
        if std::fs::symlink_metadata(&p).is_err() {
            continue; // CheckpointDir::open names what is missing
        }
        if let Some(why) = perms::untrusted_reason(&p) {
            return Err(Error::Untrusted {
                path: p,
                why: format!("{label}: {why}"),
            });
        }
    }
    Ok(())
}

/// The real directory a checkpoint path names (a symlink such as `current -> ckpt-v2` is
/// resolved; the directory it leads to is what the checks judge). Unchanged if it cannot be
/// resolved (then it does not exist, which `CheckpointDir::open` reports).
pub fn resolve(p: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// An absolute, normal path without `..` and without control characters.
fn plain_absolute(p: &Path) -> bool {
    p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !p.to_string_lossy().chars().any(|c| c.is_control())
}

/// Checks the paths of a manifest before a restore uses them. `control_root` is where control
/// directories must live.
pub fn check_manifest_paths(dir: &Path, m: &Manifest, control_root: &Path) -> Result<()> {
    let bad = |why: String| Error::BadCheckpoint {
        path: dir.to_path_buf(),
        why: format!("{MANIFEST} {why}"),
    };
    for (label, p) in [
        ("app_output.stdout", &m.app_output.stdout),
        ("app_output.stderr", &m.app_output.stderr),
    ] {
        if !plain_absolute(p) {
            return Err(bad(format!(
                "has an unusable {label} path {:?} (must be absolute, without `..` or control characters)",
                p
            )));
        }
    }
    // The org.crac provider's and the agent's (cracin writes restore-time settings there).
    let control_dirs = m
        .coordination
        .iter()
        .map(|c| &c.control_dir)
        .chain(m.individual.iter().map(|i| &i.control_dir));
    for control_dir in control_dirs {
        let name_ok = control_dir.parent() == Some(control_root)
            && control_dir
                .file_name()
                .map(|n| {
                    let n = n.to_string_lossy();
                    !n.is_empty() && n.chars().all(|ch| ch.is_ascii_hexdigit())
                })
                .unwrap_or(false);
        if !name_ok {
            return Err(bad(format!(
                "names a control directory {:?} outside {}",
                control_dir,
                control_root.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths() {
        assert!(plain_absolute(Path::new("/x/app.stdout")));
        assert!(!plain_absolute(Path::new("x/app.stdout")));
        assert!(!plain_absolute(Path::new("/x/../etc/shadow")));
        assert!(!plain_absolute(Path::new("/x/a\nb")));
    }
}
