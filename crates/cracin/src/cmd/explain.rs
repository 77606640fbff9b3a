//! `cracin explain PATH [--json]`: explains a failed checkpoint, restore or start after the fact,
//! from a log file or a checkpoint directory (its CRIU logs, CRaC's dump4.log, OpenJ9's
//! criu.log, the application's output, and any other `*.log` in it). For each known failure it
//! prints what went wrong, the decisive log line with file and line number, the fix and a
//! reference; for an unknown one, the error lines of each log and where the logs are.
use std::path::PathBuf;

use cracin_core::diagnose;
use cracin_core::{Error, Result};

/// Explain why a checkpoint, restore or start failed, from its logs.
///
/// For a directory: its CRIU logs, the application's output, the newest five restores/*/
/// folders and any other log file directly in it. Symlinks inside the directory are not
/// followed, at most 16 MiB of each log is read, and terminal escape sequences are stripped
/// from what is printed.
#[derive(clap::Args)]
pub struct Args {
    /// A log file, or a checkpoint directory (its logs are found inside).
    pub path: PathBuf,
    /// Print machine-readable JSON (`logs`, `findings`, `tail`) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let e = diagnose::explain_path(&a.path).map_err(|err| match err {
        // A path that is not there is bad input, not an internal error.
        Error::Io { path, source } => Error::usage(
            format!("cannot read {}: {source}", path.display()),
            "give a log file or a checkpoint directory, e.g. `cracin explain ./checkpoint`",
        ),
        other => other,
    })?;
    if a.json {
        let s =
            serde_json::to_string_pretty(&e).map_err(|err| Error::usage(err.to_string(), ""))?;
        println!("{s}");
    } else {
        println!("{}", diagnose::render(&e));
    }
    Ok(0)
}
