//! `cracin seccomp`: prints or writes the seccomp profile of restore containers
//! (`container::seccomp`).
use std::path::PathBuf;

use cracin_core::container::seccomp;
use cracin_core::Result;

/// Print or write cracin's seccomp profile for restore containers.
///
/// The container default (no mount, namespaces, kernel modules, BPF, perf, keyrings, io_uring,
/// cross-process memory) plus clone3, which `criu restore` needs to give each task its old PID.
/// Use it with `--security-opt seccomp=FILE` (podman and docker) or as a kubelet localhost
/// profile (`cracin kube` writes it too). Its file name carries a hash of its content.
#[derive(clap::Args)]
pub struct Args {
    /// Write it to this file (default: print it).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<i32> {
    match a.out {
        Some(p) => {
            seccomp::write(&p)?;
            println!("wrote {}", p.display());
        }
        None => print!("{}", seccomp::profile()),
    }
    Ok(0)
}
