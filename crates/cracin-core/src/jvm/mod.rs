//! Everything about the application's JVM: launching the user's command the way CRIU needs it
//! (`launch`), its output as the evidence of a failure (`output`), the options cracin adds and
//! why (`options`, with `gc` for the collector and `cpu` for a CPU baseline), talking to the
//! running JVM (`attach` for diagnostic commands, `coordinate` for org.crac Resources,
//! `individual` for the JVMTI agent that makes each restore its own individual).

pub mod attach;
pub mod cds;
pub mod coordinate;
pub mod cpu;
pub mod gc;
pub mod individual;
pub mod launch;
pub mod options;
pub mod output;
pub mod squeeze;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The SHA-256 of `bytes` in lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    crate::os::text::hex(&Sha256::digest(bytes))
}

/// Installs one of cracin's embedded JVM-side files (the org.crac provider jar, the JVMTI agent)
/// as `dir/<first 16 hex digits of its SHA-256>/name`: the same path at checkpoint and restore,
/// which CRIU needs (it maps the file back by path), and another path for other content, so a
/// JVM that has one version mapped is never handed another. An intact copy is kept; a damaged one
/// is replaced by a rename, never rewritten in place (a running JVM may have it mapped).
pub(crate) fn install_embedded(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let sub = dir.join(&sha256_hex(bytes)[..16]);
    let path = sub.join(name);
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(path);
    }
    std::fs::create_dir_all(&sub).map_err(|e| Error::io(&sub, e))?;
    let tmp = sub.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(&path, e)
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_content_addressed_and_idempotent() {
        let t = crate::os::tempdir::TempDir::new("cracin-install-test").unwrap();
        let a = install_embedded(t.path(), "x.jar", b"jar one").unwrap();
        let again = install_embedded(t.path(), "x.jar", b"jar one").unwrap();
        assert_eq!(a, again);
        assert_eq!(std::fs::read(&a).unwrap(), b"jar one");
        assert_eq!(a.file_name().unwrap(), "x.jar");
        let b = install_embedded(t.path(), "x.jar", b"jar two").unwrap();
        assert_ne!(a.parent(), b.parent());
        // A damaged copy is replaced.
        std::fs::write(&a, b"truncated").unwrap();
        assert_eq!(install_embedded(t.path(), "x.jar", b"jar one").unwrap(), a);
        assert_eq!(std::fs::read(&a).unwrap(), b"jar one");
    }
}
