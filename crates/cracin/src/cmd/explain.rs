//! `cracin explain` (being written).
use cracin_core::{Error, Result};

/// Not available yet in this build.
#[derive(clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(_a: Args) -> Result<i32> {
    Err(Error::usage("`cracin explain` is not available in this build yet", "see the README for what works today"))
}
