//! The `cracin` binary: a thin layer that turns command-line arguments into the core's option
//! structs, renders progress and results, and turns errors into a message, a hint and a
//! documented exit code. All logic lives in `cracin-core`.

// Errors carry their evidence (command line, log tail, diagnosis) by design and travel only on
// the failure path, so their size does not matter.
#![allow(clippy::result_large_err)]

mod cmd;
mod render;

use clap::{Parser, Subcommand};

/// Make JVM applications start in milliseconds.
///
/// cracin runs your application once, waits until it is really ready, warms it up, freezes the
/// warm JVM to disk with CRIU, and starts every later instance from that frozen state.
///
/// Runtimes: plain CRIU on any OpenJDK (run and tested here); OpenJDK CRaC and OpenJ9 CRIU
/// support are generated and planned (`--dry-run`, `init`) but were never run on a CRaC or
/// OpenJ9 JDK by this project.
///
/// Exit codes: 0 ok, 1 internal or I/O error, 2 bad input, 3 this machine cannot do it
/// (criu missing or too old, not root), 4 the application failed (exited, never ready, port
/// taken), 5 the checkpoint failed, 6 the restore failed, 7 a container engine step failed,
/// 8 the uniqueness check failed (two restored instances gave the same random-looking values).
#[derive(Parser)]
#[command(name = "cracin", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Checkpoint(cmd::checkpoint::Args),
    Restore(cmd::restore::Args),
    Doctor(cmd::doctor::Args),
    Bench(cmd::bench::Args),
    Explain(cmd::explain::Args),
    Check(cmd::check::Args),
    Build(cmd::build::Args),
    Init(cmd::init::Args),
    Push(cmd::push::Args),
    Base(cmd::base::Args),
    Report(cmd::report::Args),
    /// cracin's guardian (internal): cleans up after a cracin that died.
    #[command(name = "__guard", hide = true)]
    Guard,
    Verify(cmd::verify::Args),
    Kube(cmd::kube::Args),
    Seccomp(cmd::seccomp::Args),
    #[command(name = "setcap-checkpoint-restore", hide = true)]
    Setcap(cmd::setcap::Args),
}

fn main() {
    // `restore` reports readiness from here, the start of the process.
    cracin_core::measure::mark_process_start();
    let cli = Cli::parse();
    // Commands that start applications, criu or containers get a guardian that cleans up if
    // cracin is killed (even by SIGKILL). Inside a container cracin is PID 1: its death ends
    // every process there anyway.
    let guarded = match &cli.command {
        Command::Checkpoint(a) => !a.in_container,
        Command::Restore(a) => !a.in_container,
        Command::Build(_) | Command::Bench(_) | Command::Report(_) => true,
        _ => false,
    };
    if guarded {
        cracin_core::os::guard::enable();
    }
    let result = match cli.command {
        Command::Checkpoint(a) => cmd::checkpoint::run(a),
        Command::Restore(a) => cmd::restore::run(a),
        Command::Doctor(a) => cmd::doctor::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Build(a) => cmd::build::run(a),
        Command::Init(a) => cmd::init::run(a),
        Command::Push(a) => cmd::push::run(a),
        Command::Base(a) => cmd::base::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Guard => Ok(cracin_core::os::guardian::serve()),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Kube(a) => cmd::kube::run(a),
        Command::Seccomp(a) => cmd::seccomp::run(a),
        Command::Setcap(a) => cmd::setcap::run(a),
    };
    // Finished normally (also with an error): cracin cleaned up itself.
    cracin_core::os::guard::disarm();
    let code = match result {
        Ok(code) => code,
        Err(e) => render::error(&e),
    };
    std::process::exit(code);
}
