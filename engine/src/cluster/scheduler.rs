//! `audience scheduler`: a Ballista scheduler planning with Audience's
//! functions and member-range rule over one shared runtime.

use std::sync::Arc;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::SessionConfig;

use super::ballista_error;
use super::config::socket_addr;
use crate::EngineConfig;
use crate::error::EngineError;
use crate::session::{context_with, runtime_env};

/// A session state for the scheduler: Ballista's session `config` (sent by the
/// client) over Audience's `runtime`, with every function and the
/// member-range rule. The scheduler builds one for every job, so the runtime
/// is shared: its object stores, Parquet metadata cache and statistics cache
/// outlive a job, and planning a repeated query reads no footer again.
fn scheduler_state(
    runtime: &Arc<RuntimeEnv>,
    config: SessionConfig,
) -> datafusion::error::Result<SessionState> {
    Ok(context_with(config, Arc::clone(runtime), false)?.state())
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
