//! The `cpgate` binary: parse the command line, run it, exit with its code.

use clap::Parser;

/// mimalloc instead of glibc's malloc: the request path allocates and frees many small,
/// short-lived objects across worker threads, where glibc's arenas showed up in profiles
/// (`malloc_consolidate`, `unlink_chunk`; docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cpgate::cli::run(cpgate::cli::Cli::parse())
}
