//! Test helpers for physical optimizer rules: a context over one table with
//! DataFusion's rules (and the rule under test after them), and a query's
//! plan and answer.

use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::displayable;
use datafusion::prelude::{SessionConfig, SessionContext};

/// One partition, `events` = `table`, every Audience function, and `rule`
/// (if any) after DataFusion's physical rules.
pub(crate) fn context(
    table: MemTable,
    rule: Option<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> SessionContext {
    let mut rules = PhysicalOptimizer::new().rules;
    rules.extend(rule);
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(SessionConfig::new().with_target_partitions(1))
        .with_physical_optimizer_rules(rules)
        .build();
    let ctx = SessionContext::new_with_state(state);
    audience_udfs::register_all(&ctx).unwrap();
    ctx.register_table("events", Arc::new(table)).unwrap();
    ctx
}

/// The physical plan of `sql`, and its answer, as text.
pub(crate) async fn plan_and_answer(ctx: &SessionContext, sql: &str) -> (String, String) {
    let df = ctx.sql(sql).await.unwrap();
    let plan = df.clone().create_physical_plan().await.unwrap();
    let plan = displayable(plan.as_ref()).indent(false).to_string();
    let answer = pretty_format_batches(&df.collect().await.unwrap())
        .unwrap()
        .to_string();
    (plan, answer)
}
