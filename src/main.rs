//! `audience`: the command-line front of the Audience engine.

mod bench;
mod cli;
mod cluster;
mod error;
mod export;
mod generate;
mod index;
mod load;
mod logging;
mod maintain;
mod output;
mod query;
mod render;
mod sample;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, IndexCommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    audience_engine::install_tls_provider();
    let cli = Cli::parse();
    logging::init(&cli.log_format);
    error::install_panic_hook();
    let result = match cli.command {
        Command::Gen(args) => generate::run(args),
        Command::Query(args) => query::run(args),
        Command::Export(args) => export::run(args),
        Command::Load(args) => load::run(args),
        Command::Compact(args) => maintain::run_compact(args),
        Command::Vacuum(args) => maintain::run_vacuum(args),
        Command::Index(IndexCommand::Tags(args)) => index::run_tags(args),
        Command::Serve(args) => serve::run(args),
        Command::HashPassword => serve::hash_password_command(),
        Command::Bench(args) => bench::run(args),
        Command::Scheduler(args) => cluster::run_scheduler(args),
        Command::Executor(args) => cluster::run_executor(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

/// Turns transparent huge pages off for this process (and the processes it
/// starts). The allocator asks for huge pages on its arenas, so the first touch
/// of every 2 MiB region zeroes all of it though a query's short-lived buffers
/// use a fraction: measured on the scale-m funnel, 18% of the CPU time went to
/// zeroing pages (4.6 s of CPU with huge pages, 3.8 s without).
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a
    // flag of this process; a failure (an old kernel) leaves the default.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
