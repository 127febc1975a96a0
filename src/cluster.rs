//! `audience scheduler` and `audience executor`: the Ballista cluster's
//! processes, configured from [cluster] and flags, run until stopped.

use crate::cli::{ExecutorArgs, SchedulerArgs};
use crate::error::CliError;

pub(crate) fn run_scheduler(args: SchedulerArgs) -> Result<(), CliError> {
    let mut config = crate::query::base_config(args.config.as_deref())?;
    if let Some(addr) = args.addr {
        config.cluster.scheduler_addr = addr;
    }
    config.validate()?;
    println!(
        "Audience scheduler (Ballista) listening on {}; connect with --remote df://{}",
        config.cluster.scheduler_addr, config.cluster.scheduler_addr
    );
    crate::query::runtime()?.block_on(audience_engine::run_scheduler(&config))?;
    Ok(())
}

pub(crate) fn run_executor(args: ExecutorArgs) -> Result<(), CliError> {
    let mut config = crate::query::base_config(args.config.as_deref())?;
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
    crate::query::runtime()?.block_on(audience_engine::run_executor(&config))?;
    Ok(())
}
