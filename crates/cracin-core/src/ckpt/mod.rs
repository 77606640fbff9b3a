//! The checkpoint directory's parts beyond CRIU's images: the files the checkpointed process
//! tree held open, recorded, sorted, saved and put back before each restore (`files`); what
//! must not be sealed into it (`secrets`); how its images are proven unchanged (`integrity`);
//! which paths and directories recorded in it may be trusted (`trust`); and the folders each
//! restore writes its logs to (`logs`).

pub mod dir;
pub mod files;
pub mod integrity;
pub mod logs;
pub mod secrets;
pub mod trust;

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Result;

/// What sealing a checkpoint recorded.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub checksums: BTreeMap<String, String>,
    pub scan: secrets::ScanSummary,
}

/// The last step before a staging directory is renamed into place: make every file private
/// (whatever CRIU's umask was), search the memory for secrets (an error when found and not
/// allowed: the caller then drops the staging directory, so nothing is kept), and checksum
/// every image file.
pub fn seal(
    staging: &Path,
    needles: &[secrets::Needle],
    policy: &secrets::SecretPolicy,
) -> Result<Sealed> {
    crate::os::perms::make_private(staging)?;
    let images = staging.join("images");
    let scan = secrets::check_images(&images, needles, policy)?;
    let checksums = integrity::checksums(&images)?;
    Ok(Sealed { checksums, scan })
}
