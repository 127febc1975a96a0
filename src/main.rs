//! `audience`: the command-line front of the Audience engine.

mod bench;
mod cli;
mod cluster;
mod error;
mod export;
mod generate;
mod index;
mod logging;
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
    let cli = Cli::parse();
    logging::init(&cli.log_format);
    error::install_panic_hook();
    let result = match cli.command {
        Command::Gen(args) => generate::run(args),
        Command::Query(args) => query::run(args),
        Command::Export(args) => export::run(args),
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
