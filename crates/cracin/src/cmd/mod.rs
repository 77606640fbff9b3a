//! One module per subcommand: its clap arguments and the call into the core.
pub mod app_args;
pub mod base;
pub mod bench;
pub mod build;
pub mod check;
pub mod checkpoint;
pub mod doctor;
pub mod explain;
pub mod init;
pub mod kube;
pub mod push;
pub mod ranges;
pub mod report;
pub mod restore;
pub mod seccomp;
pub mod setcap;
pub mod verify;
