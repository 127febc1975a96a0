//! Faults a test switches on through the environment, to prove what the
//! engine and the server do when they happen (RELIABILITY.md: "a test injects
//! a panicking function"). With `AUDIENCE_FAILPOINTS=panic` the session has
//! `failpoint_panic(x)`, which panics when it runs; nothing is added otherwise.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// Registers the failpoints the environment switches on.
pub(crate) fn register(ctx: &SessionContext) {
    let on = std::env::var("AUDIENCE_FAILPOINTS").unwrap_or_default();
    if on.split(',').any(|f| f.trim() == "panic") {
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
