//! Audience's SQL functions (see `shared/SPEC.md`), one function per file.
//!
//! [`register_all`] registers every function on a DataFusion session; it is
//! engine-agnostic, so the CLI, the Flight SQL server and Ballista executors
//! load the same set.

mod args;
mod attribution;
mod bitmap;
mod docs;
mod event_list;
mod event_path;
mod funnel;
mod funnel_rows;
mod lifecycle_stage;
mod one_id;
mod retention;
mod rfm;
mod rfm_segment;
mod row_arena;
mod sequence_aggregate;
mod sequence_count;
mod sequence_match;
mod sequence_next_node;
mod sequence_pattern;
mod session_number;
mod session_rule;
mod sessions;
mod table_arg;
mod window_funnel;
mod window_funnel_detail;
mod window_funnel_detail_exclude;
mod window_funnel_exclude;

use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, Documentation, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

pub use attribution::Attribution;
pub use bitmap::cardinality::BitmapCardinality;
pub use bitmap::collect::BitmapAgg;
pub use bitmap::combine::{BitmapCombineAgg, bitmap_and_agg, bitmap_or_agg};
pub use bitmap::contains::BitmapContains;
pub use bitmap::from_array::BitmapFromArray;
pub use bitmap::set_op::{BitmapSetOp, bitmap_set_ops};
pub use bitmap::to_array::BitmapToArray;
pub use docs::{documented_functions, example_queries, reference_markdown};
pub use event_path::EventPath;
pub use lifecycle_stage::LifecycleStage;
pub use one_id::OneId;
pub use retention::Retention;
pub use rfm::Rfm;
pub use rfm_segment::RfmSegment;
pub use sequence_count::sequence_count;
pub use sequence_match::sequence_match;
pub use sequence_next_node::SequenceNextNode;
pub use session_number::SessionNumber;
pub use sessions::Sessions;
pub use window_funnel::WindowFunnel;
pub use window_funnel_detail::WindowFunnelDetail;
pub use window_funnel_detail_exclude::WindowFunnelDetailExclude;
pub use window_funnel_exclude::WindowFunnelExclude;

/// A table function with its name and user documentation.
#[derive(Debug, Clone)]
pub struct TableFunction {
    /// The name it is called by in SQL.
    pub name: &'static str,
    /// The implementation.
    pub function: Arc<dyn TableFunctionImpl>,
    /// What the user reads about it.
    pub documentation: Option<Documentation>,
}

/// Every Audience function, by kind.
#[derive(Debug, Default)]
pub struct Functions {
    /// Scalar functions.
    pub scalar: Vec<ScalarUDF>,
    /// Aggregate functions.
    pub aggregate: Vec<AggregateUDF>,
    /// Window functions.
    pub window: Vec<WindowUDF>,
    /// Table functions.
    pub table: Vec<TableFunction>,
}

/// Every Audience function, each listed once.
pub fn all_functions() -> Functions {
    let mut scalar = vec![
        ScalarUDF::new_from_impl(RfmSegment::default()),
        ScalarUDF::new_from_impl(BitmapCardinality::default()),
        ScalarUDF::new_from_impl(BitmapContains::default()),
        ScalarUDF::new_from_impl(BitmapToArray::default()),
        ScalarUDF::new_from_impl(BitmapFromArray::default()),
    ];
    scalar.extend(bitmap_set_ops());
    let (rfm, one_id) = (Rfm::default(), OneId::default());
    Functions {
        scalar,
        aggregate: vec![
            AggregateUDF::new_from_impl(WindowFunnel::default()),
            AggregateUDF::new_from_impl(Retention::default()),
            sequence_match(),
            sequence_count(),
            AggregateUDF::new_from_impl(LifecycleStage::default()),
            AggregateUDF::new_from_impl(BitmapAgg::default()),
            bitmap_or_agg(),
            bitmap_and_agg(),
            AggregateUDF::new_from_impl(Sessions::default()),
            AggregateUDF::new_from_impl(EventPath::default()),
            AggregateUDF::new_from_impl(Attribution::default()),
            AggregateUDF::new_from_impl(SequenceNextNode::default()),
            AggregateUDF::new_from_impl(WindowFunnelDetail::default()),
            AggregateUDF::new_from_impl(WindowFunnelExclude::default()),
            AggregateUDF::new_from_impl(WindowFunnelDetailExclude::default()),
        ],
        window: vec![WindowUDF::new_from_impl(SessionNumber::default())],
        table: vec![
            TableFunction {
                name: "rfm",
                documentation: rfm.documentation().cloned(),
                function: Arc::new(rfm),
            },
            TableFunction {
                name: "one_id",
                documentation: one_id.documentation().cloned(),
                function: Arc::new(one_id),
            },
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
    for f in functions.window {
        ctx.register_udwf(f);
    }
    for f in functions.table {
        ctx.register_udtf(f.name, f.function);
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
        let window = f.window.iter().map(|u| {
            (
                u.name().to_string(),
                u.aliases().to_vec(),
                u.documentation().is_some(),
            )
        });
        let table = f
            .table
            .iter()
            .map(|t| (t.name.to_string(), vec![], t.documentation.is_some()));
        for (name, aliases, documented) in scalar.chain(aggregate).chain(window).chain(table) {
            assert!(documented, "{name} has no documentation");
            for n in std::iter::once(name.clone()).chain(aliases) {
                assert!(names.insert(n.clone()), "{n} is registered twice");
            }
        }
        assert!(names.contains("window_funnel") && names.contains("retention"));
    }
}
