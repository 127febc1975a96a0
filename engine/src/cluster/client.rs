//! A client session whose queries run on Ballista: an in-process cluster
//! (`standalone`) or a remote scheduler (`df://host:port`).

use ballista::prelude::SessionContextExt;
use datafusion::prelude::SessionContext;

use super::ExecutionMode;
use crate::error::EngineError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;

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
        for f in &functions.window {
            assert!(
                state.window_functions().contains_key(f.name()),
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
