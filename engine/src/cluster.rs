//! Scale-out on Apache DataFusion Ballista: where a session's queries run
//! ([`ExecutionMode`]: here, an in-process Ballista cluster, or a remote
//! scheduler), and the scheduler and executor processes, every Audience
//! function registered on each side. Nothing outside this file sees Ballista.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::Deserialize;

use crate::EngineConfig;
use crate::error::EngineError;
use crate::memory::{parse_memory_limit, total_memory};
use crate::session::{context_with, runtime_env};

/// Where a session's queries run (`engine.remote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionMode {
    /// In this process, on DataFusion (`""`).
    Local,
    /// On a Ballista scheduler and executor started inside this process (`"standalone"`).
    Standalone,
    /// On a Ballista cluster: the scheduler's `df://host:port` URL.
    Remote(String),
}

impl ExecutionMode {
    /// Parses `engine.remote`.
    pub fn parse(text: &str) -> Result<Self, EngineError> {
        let text = text.trim();
        match text {
            "" | "local" => return Ok(ExecutionMode::Local),
            "standalone" => return Ok(ExecutionMode::Standalone),
            _ => {}
        }
        let valid = text
            .strip_prefix("df://")
            .is_some_and(|address| host_port("engine.remote", address).is_ok());
        if !valid {
            return Err(EngineError::Config(format!(
                "engine.remote (--remote) must be \"\" (local), \"standalone\" or \
                 \"df://host:port\" (a Ballista scheduler), got \"{text}\""
            )));
        }
        Ok(ExecutionMode::Remote(text.to_string()))
    }
}

/// The `[cluster]` section: addresses of `audience scheduler` and `audience executor`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The scheduler's gRPC listen address.
    pub scheduler_addr: String,
    /// The executor's Arrow Flight (shuffle data) listen address.
    pub executor_addr: String,
    /// The executor's gRPC port, on the host of `executor_addr`.
    pub executor_grpc_port: u16,
    /// The scheduler an executor registers with (`host:port`).
    pub scheduler: String,
    /// Tasks an executor runs at once; 0 means one per core.
    pub executor_tasks: usize,
    /// Folder for an executor's shuffle files; empty means a temporary folder.
    pub executor_work_dir: String,
}

impl ClusterConfig {
    /// Checks the addresses.
    pub fn validate(&self) -> Result<(), EngineError> {
        socket_addr("cluster.scheduler_addr", &self.scheduler_addr)?;
        socket_addr("cluster.executor_addr", &self.executor_addr)?;
        host_port("cluster.scheduler", &self.scheduler)?;
        Ok(())
    }
}

fn socket_addr(key: &str, text: &str) -> Result<SocketAddr, EngineError> {
    text.parse().map_err(|_| {
        EngineError::Config(format!(
            "{key} must be an IP address and port like 127.0.0.1:50050, got \"{text}\""
        ))
    })
}

fn host_port(key: &str, text: &str) -> Result<(String, u16), EngineError> {
    text.rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse().ok()?)))
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| {
            EngineError::Config(format!(
                "{key} must be host:port like 127.0.0.1:50050, got \"{text}\""
            ))
        })
}

/// `local` (functions registered, no tables) made to run its queries as `mode`
/// says. Ballista rebuilds the session's function set when it takes a state
/// over, dropping ours, so they are registered again on the new context.
pub(crate) async fn distributed_context(
    local: SessionContext,
    mode: &ExecutionMode,
) -> Result<SessionContext, EngineError> {
    let state = local.state();
    let ctx = match mode {
        ExecutionMode::Local => return Ok(local),
        ExecutionMode::Standalone => SessionContext::standalone_with_state(state).await?,
        ExecutionMode::Remote(url) => SessionContext::remote_with_state(url, state)
            .await
            .map_err(|e| EngineError::Config(format!("engine.remote {url}: {e}")))?,
    };
    audience_udfs::register_all(&ctx)?;
    // Ballista's adaptive planner optimizes with a fixed rule list of its own;
    // the static planner runs the session's, the member-range rule included,
    // so per-member aggregates stay inside each scan task.
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set("ballista.planner.adaptive.enabled", "false")?;
    Ok(ctx)
}

/// A session state for the scheduler: Ballista's session `config` (sent by the
/// client) over Audience's `runtime`, with every function and the
/// member-range rule. The scheduler builds one for every job, so the runtime
/// is shared: its object stores, Parquet metadata cache and statistics cache
/// outlive a job, and planning a repeated query reads no footer again.
fn scheduler_state(
    runtime: &Arc<RuntimeEnv>,
    config: SessionConfig,
) -> datafusion::error::Result<SessionState> {
    Ok(context_with(config, Arc::clone(runtime))?.state())
}

/// Runs a Ballista scheduler on `cluster.scheduler_addr` until the process ends.
pub async fn run_scheduler(config: &EngineConfig) -> Result<(), EngineError> {
    config.validate()?;
    let addr = socket_addr("cluster.scheduler_addr", &config.cluster.scheduler_addr)?;
    let runtime = runtime_env(config, false)?;
    let scheduler = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        bind_port: addr.port(),
        external_host: addr.ip().to_string(),
        override_session_builder: Some(Arc::new(move |session: SessionConfig| {
            scheduler_state(&runtime, session)
        })),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&scheduler)
        .await
        .map_err(ballista_error)?;
    tracing::info!(%addr, "Ballista scheduler listening");
    start_server(cluster, addr, Arc::new(scheduler))
        .await
        .map_err(ballista_error)
}

/// Runs a Ballista executor on `cluster.executor_addr` registered with
/// `cluster.scheduler`, until the process ends. Its memory pool is
/// `engine.memory_limit`, shared by its tasks.
pub async fn run_executor(config: &EngineConfig) -> Result<(), EngineError> {
    config.validate()?;
    let c = &config.cluster;
    let addr = socket_addr("cluster.executor_addr", &c.executor_addr)?;
    let (scheduler_host, scheduler_port) = host_port("cluster.scheduler", &c.scheduler)?;
    let functions = crate::session::new_context(config)?.state();
    // one runtime (object stores, metadata cache) under every task; Ballista
    // gives each task its own memory pool over it
    let runtime = runtime_env(config, false)?;
    let memory = parse_memory_limit(&config.engine.memory_limit, total_memory())?;
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
        // 0 is Ballista's "unbounded"
        memory_pool_size: Some(memory.map_or(0, |bytes| bytes as u64)),
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

fn ballista_error(e: ballista_core::error::BallistaError) -> EngineError {
    EngineError::Internal(format!("Ballista: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_bad_ones_are_named() {
        assert_eq!(ExecutionMode::parse("").unwrap(), ExecutionMode::Local);
        assert_eq!(
            ExecutionMode::parse("standalone").unwrap(),
            ExecutionMode::Standalone
        );
        assert_eq!(
            ExecutionMode::parse("df://10.0.0.5:50050").unwrap(),
            ExecutionMode::Remote("df://10.0.0.5:50050".into())
        );
        for bad in ["df://host", "http://h:1", "df://:50050", "cluster"] {
            let e = ExecutionMode::parse(bad).unwrap_err().to_string();
            assert!(e.contains("df://host:port") && e.contains(bad), "{e}");
        }
    }

    /// Ballista replaces a client session's functions with its own set; every
    /// Audience function must be there again on the context it returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_function_survives_ballistas_session_rebuild() {
        let local = crate::session::new_context(&EngineConfig::default()).unwrap();
        let ctx = distributed_context(local, &ExecutionMode::Standalone)
            .await
            .unwrap();
        let state = ctx.state();
        let functions = audience_udfs::all_functions();
        assert!(functions.aggregate.len() >= 8 && functions.scalar.len() >= 5);
        for f in &functions.scalar {
            assert!(
                state.scalar_functions().contains_key(f.name()),
                "{} missing",
                f.name()
            );
        }
        for f in &functions.aggregate {
            assert!(
                state.aggregate_functions().contains_key(f.name()),
                "{} missing",
                f.name()
            );
        }
        for f in &functions.table {
            assert!(
                state.table_functions().contains_key(f.name),
                "{} missing",
                f.name
            );
        }
    }
}
