//! Audience's SQL functions (see `shared/SPEC.md`), one function per file.
//!
//! [`register_all`] registers every function on a DataFusion session; it is
//! engine-agnostic, so the CLI, the Flight SQL server and Ballista executors
//! load the same set.

use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

/// Every Audience function, by kind.
#[derive(Debug, Default)]
pub struct Functions {
    /// Scalar functions.
    pub scalar: Vec<ScalarUDF>,
    /// Aggregate functions.
    pub aggregate: Vec<AggregateUDF>,
}

/// Every Audience function, each listed once.
pub fn all_functions() -> Functions {
    Functions::default()
}

/// Registers every function of [`all_functions`] on `ctx`.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    let functions = all_functions();
    for f in functions.scalar {
        ctx.register_udf(f);
    }
    for f in functions.aggregate {
        ctx.register_udaf(f);
    }
    Ok(())
}
