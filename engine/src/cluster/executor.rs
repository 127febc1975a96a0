//! `audience executor`: a Ballista executor running tasks with Audience's
//! functions over one shared runtime, its memory pool `engine.memory_limit`:
//! Audience's pool (fair spilling, the largest consumers named when a query is
//! refused, repartition buffers granted), shared by all its tasks.

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use datafusion::prelude::SessionConfig;

use super::ballista_error;
use super::config::{host_port, socket_addr};
use crate::EngineConfig;
use crate::error::EngineError;
use crate::session::runtime_env;

/// Runs a Ballista executor on `cluster.executor_addr` registered with
/// `cluster.scheduler`, until the process ends. Its memory pool is
/// `engine.memory_limit`, shared by its tasks.
pub async fn run_executor(config: &EngineConfig) -> Result<(), EngineError> {
    config.validate()?;
    let c = &config.cluster;
    let addr = socket_addr("cluster.executor_addr", &c.executor_addr)?;
    let (scheduler_host, scheduler_port) = host_port("cluster.scheduler", &c.scheduler)?;
    let functions = crate::session::new_context(config)?.state();
    // one runtime (object stores, metadata cache, memory pool) under every
    // task; Ballista's own per-task pools (a plain FairSpillPool each, `limit /
    // vcores`) are off, so they cannot replace Audience's pool
    let runtime = runtime_env(config, true)?;
    let executor = ExecutorProcessConfig {
        bind_host: addr.ip().to_string(),
        external_host: Some(addr.ip().to_string()),
        port: addr.port(),
        grpc_port: c.executor_grpc_port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: if c.executor_tasks > 0 {
            c.executor_tasks
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        },
        work_dir: (!c.executor_work_dir.is_empty()).then(|| c.executor_work_dir.clone()),
        print_thread_info: false,
        // 0: Ballista installs no pool of its own; the runtime's is the limit
        memory_pool_size: Some(0),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&functions))),
        override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| {
            Ok(Arc::clone(&runtime))
        })),
        ..ExecutorProcessConfig::default()
    };
    tracing::info!(%addr, scheduler = %c.scheduler, "Ballista executor starting");
    start_executor_process(Arc::new(executor))
        .await
        .map_err(ballista_error)
}
