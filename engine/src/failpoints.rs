//! Faults a test switches on through the environment, to prove what the
//! engine and the server do when they happen (RELIABILITY.md: "a test injects
//! a panicking function"). With `AUDIENCE_FAILPOINTS=panic` the session has
//! `failpoint_panic(x)`, which panics when it runs; with `crash:POINT` the
//! process aborts (as under `kill -9`: no cleanup) when it reaches `POINT`;
//! with `pause:POINT` it waits there [`PAUSE`]. Nothing happens otherwise.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// How long a `pause:POINT` failpoint waits.
pub(crate) const PAUSE: std::time::Duration = std::time::Duration::from_secs(3);

/// The failpoints the environment switches on, read once: points sit on
/// paths taken per batch.
fn switched_on() -> &'static [String] {
    static ON: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ON.get_or_init(|| {
        std::env::var("AUDIENCE_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .map(|f| f.trim().to_string())
            .collect()
    })
}

/// Whether the failpoint `name` is switched on.
fn enabled(name: &str) -> bool {
    switched_on().iter().any(|f| f == name)
}

/// Whether `KIND:POINT` is switched on (compared without allocating).
fn enabled_at(kind: &str, point: &str) -> bool {
    switched_on()
        .iter()
        .any(|f| f.split_once(':') == Some((kind, point)))
}

/// A point where a test may crash the process (`crash:POINT`) or make it
/// wait (`pause:POINT`), to prove what a crash or a race there leaves.
pub(crate) async fn point(name: &str) {
    if enabled_at("crash", name) {
        eprintln!("failpoint crash:{name}: aborting");
        std::process::abort();
    }
    if enabled_at("pause", name) {
        eprintln!("failpoint pause:{name}: waiting {} s", PAUSE.as_secs());
        tokio::time::sleep(PAUSE).await;
    }
}

/// Registers the failpoints the environment switches on.
pub(crate) fn register(ctx: &SessionContext) {
    if enabled("panic") {
        tracing::warn!("failpoint_panic() is registered (AUDIENCE_FAILPOINTS=panic)");
        ctx.register_udf(create_udf(
            "failpoint_panic",
            vec![DataType::Int64],
            DataType::Int64,
            Volatility::Volatile,
            // ok: panicking is this failpoint's purpose, and only a test switches it on
            Arc::new(|_| panic!("failpoint_panic ran (AUDIENCE_FAILPOINTS=panic)")),
        ));
    }
}
