//! Hidden `cracin setcap-checkpoint-restore PATH`: run by the generated Containerfile (as root,
//! while the image is built) to give cracin its file capability (`cracin_core::os::caps`).
use std::path::PathBuf;

use cracin_core::Result;

/// Internal: give PATH CAP_CHECKPOINT_RESTORE as a permitted file capability (image builds).
#[derive(clap::Args)]
pub struct Args {
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

pub fn run(a: Args) -> Result<i32> {
    cracin_core::os::caps::set_file_capability(&a.path)?;
    Ok(0)
}
