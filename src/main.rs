//! The `cpgate` binary: parse the command line, run it, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    cpgate::cli::run(cpgate::cli::Cli::parse())
}
