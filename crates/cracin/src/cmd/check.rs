//! `cracin check DIR`: verifies a checkpoint before it is trusted: owner and permissions, the
//! paths in its cracin.json, and the SHA-256 of every image file recorded at dump.
use std::path::PathBuf;

use cracin_core::Result;

/// Verify a checkpoint: owned by you and writable by no one else, sane paths in cracin.json,
/// and every image file (memory pages included) unchanged since the dump (SHA-256).
///
/// Exit 0 when all is well, 6 when something is wrong (named), 2 when DIR is no checkpoint.
/// `cracin restore` checks the same every time, except the memory pages' checksums (the large
/// files; only this command reads them all).
#[derive(clap::Args)]
pub struct Args {
    /// The checkpoint directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(a: Args) -> Result<i32> {
    let n = cracin_core::local::check(&a.dir)?;
    println!(
        "{}: ok ({n} image files match their checksums)",
        a.dir.display()
    );
    Ok(0)
}
