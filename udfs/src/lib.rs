//! Audience's SQL functions (see `shared/SPEC.md`), one function per file.
//!
//! [`register_all`] registers every function on a DataFusion session; it is
//! engine-agnostic, so the CLI, the Flight SQL server and Ballista executors
//! load the same set.

mod args;
mod docs;
mod event_list;
mod retention;
mod sequence_aggregate;
mod sequence_count;
mod sequence_match;
mod sequence_pattern;
mod window_funnel;

use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use docs::{documented_functions, example_queries, reference_markdown};
pub use retention::Retention;
pub use sequence_count::sequence_count;
pub use sequence_match::sequence_match;
pub use window_funnel::WindowFunnel;

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
    Functions {
        scalar: vec![],
        aggregate: vec![
            AggregateUDF::new_from_impl(WindowFunnel::default()),
            AggregateUDF::new_from_impl(Retention::default()),
            sequence_match(),
            sequence_count(),
        ],
    }
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_and_aliases_are_unique_and_documented() {
        let f = all_functions();
        let mut names = HashSet::new();
        let scalar = f.scalar.iter().map(|u| {
            (
                u.name().to_string(),
                u.aliases().to_vec(),
                u.documentation().is_some(),
            )
        });
        let aggregate = f.aggregate.iter().map(|u| {
            (
                u.name().to_string(),
                u.aliases().to_vec(),
                u.documentation().is_some(),
            )
        });
        for (name, aliases, documented) in scalar.chain(aggregate) {
            assert!(documented, "{name} has no documentation");
            for n in std::iter::once(name.clone()).chain(aliases) {
                assert!(names.insert(n.clone()), "{n} is registered twice");
            }
        }
        assert!(names.contains("window_funnel") && names.contains("retention"));
    }
}
