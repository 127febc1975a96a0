//! `audience scheduler` and `audience executor`: the Ballista cluster's
//! processes, configured from [cluster] and flags, run until stopped.

use audience_engine::EngineConfig;

use crate::cli::{ExecutorArgs, SchedulerArgs};
use crate::error::CliError;

/// Defaults, then `--config`, then `AUDIENCE_*` variables.
fn base_config(file: Option<&std::path::Path>) -> Result<EngineConfig, CliError> {
    let mut config = match file {
        Some(path) => EngineConfig::from_file(path)?,
        None => EngineConfig::default(),
    };
    config.apply_env(std::env::vars())?;
    Ok(config)
}

pub(crate) fn run_scheduler(args: SchedulerArgs) -> Result<(), CliError> {
    let mut config = base_config(args.config.as_deref())?;
    if let Some(addr) = args.addr {
        config.cluster.scheduler_addr = addr;
    }
    config.validate()?;
    println!(
        "Audience scheduler (Ballista) listening on {}; connect with --remote df://{}",
        config.cluster.scheduler_addr, config.cluster.scheduler_addr
    );
    runtime()?.block_on(audience_engine::run_scheduler(&config))?;
    Ok(())
}

pub(crate) fn run_executor(args: ExecutorArgs) -> Result<(), CliError> {
    let mut config = base_config(args.config.as_deref())?;
    let c = &mut config.cluster;
    if let Some(addr) = args.addr {
        c.executor_addr = addr;
    }
    if let Some(port) = args.grpc_port {
        c.executor_grpc_port = port;
    }
    if let Some(scheduler) = args.scheduler {
        c.scheduler = scheduler;
    }
    if let Some(tasks) = args.tasks {
        c.executor_tasks = tasks;
    }
    if let Some(dir) = args.work_dir {
        c.executor_work_dir = dir;
    }
    if let Some(limit) = args.memory_limit {
        config.engine.memory_limit = limit;
    }
    config.validate()?;
    println!(
        "Audience executor (Ballista) on {} registering with scheduler {}",
        config.cluster.executor_addr, config.cluster.scheduler
    );
    runtime()?.block_on(audience_engine::run_executor(&config))?;
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot start the runtime: {e}")))
}
