//! Scale-out on Apache DataFusion Ballista, behind this module's boundary:
//! where a session's queries run ([`ExecutionMode`]: here, an in-process
//! Ballista cluster, or a remote scheduler), and the scheduler and executor
//! processes, every Audience function registered on each side. Nothing outside
//! this folder sees Ballista; the core engine is readable without it.

mod client;
mod config;
mod executor;
mod scheduler;

pub(crate) use client::distributed_context;
pub use config::{ClusterConfig, ExecutionMode};
pub use executor::run_executor;
pub use scheduler::run_scheduler;

use crate::error::EngineError;

/// A Ballista failure: not the user's doing.
pub(crate) fn ballista_error(e: ballista_core::error::BallistaError) -> EngineError {
    EngineError::Internal(format!("Ballista: {e}"))
}
