//! Grouping by runs. On input sorted by its one group key (a per-member
//! aggregate on the member-range layout), each group is a run of equal keys.
//! [`RunAggregateExec`] takes the place of DataFusion's `AggregateExec` there:
//! it numbers the runs instead of hashing every row's key into a table, feeds
//! the same `GroupsAccumulator`s, and emits each group once the next begins.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::kernels::cmp::not_distinct;
use datafusion::arrow::compute::{concat, partition, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::sort_expr::OrderingRequirements;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{
    AggregateExec, AggregateMode, aggregate_expressions, evaluate_many,
};
use datafusion::physical_plan::distribution_requirements::InputDistributionRequirements;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;

/// Replaces every `AggregateExec` that can group by runs with a
/// [`RunAggregateExec`].
#[derive(Debug, Default)]
pub(crate) struct AggregateRuns;

impl PhysicalOptimizerRule for AggregateRuns {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match RunAggregateExec::over(&node) {
            Some(runs) => Ok(Transformed::yes(Arc::new(runs) as Arc<dyn ExecutionPlan>)),
            None => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "aggregate_runs"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// An `AggregateExec` (one phase, one primitive group key, input sorted by
/// it, every aggregate with a `GroupsAccumulator`) that groups by runs.
#[derive(Debug)]
pub(crate) struct RunAggregateExec {
    aggregate: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
}

impl RunAggregateExec {
    /// `node` grouping by runs, when it is an aggregate that can.
    fn over(node: &Arc<dyn ExecutionPlan>) -> Option<Self> {
        let agg = node.downcast_ref::<AggregateExec>()?;
        let group_by = agg.group_expr();
        let key_type = group_by
            .expr()
            .first()?
            .0
            .data_type(&agg.input_schema())
            .ok()?;
        let runs = matches!(
            agg.mode(),
            AggregateMode::Single | AggregateMode::SinglePartitioned
        ) && *agg.input_order_mode() == InputOrderMode::Sorted
            && group_by.expr().len() == 1
            && group_by.is_single()
            && !group_by.has_grouping_set()
            && key_type.is_primitive()
            && agg.limit_options().is_none()
            && agg.dynamic_expressions_produced().is_empty()
            && agg
                .aggr_expr()
                .iter()
                .all(|a| a.groups_accumulator_supported());
        runs.then(|| RunAggregateExec {
            aggregate: Arc::clone(node),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn agg(&self) -> &AggregateExec {
        // ok: built only over an `AggregateExec` (`over`).
        self.aggregate
            .downcast_ref::<AggregateExec>()
            .expect("a RunAggregateExec wraps an AggregateExec")
    }
}

impl DisplayAs for RunAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let agg = self.agg();
        let (key, name) = &agg.group_expr().expr()[0];
        let aggr: Vec<_> = agg.aggr_expr().iter().map(|a| a.name()).collect();
        write!(
            f,
            "RunAggregateExec: mode={:?}, gby=[{key} as {name}], aggr=[{}], ordering_mode=Sorted",
            agg.mode(),
            aggr.join(", ")
        )
    }
}

impl ExecutionPlan for RunAggregateExec {
    fn name(&self) -> &str {
        "RunAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.agg().input()]
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.aggregate.input_distribution_requirements()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.aggregate.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.aggregate.maintains_input_order()
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        self.aggregate.benefits_from_input_partitioning()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = Arc::clone(&self.aggregate).replace_children(children, options)?;
        Ok(match RunAggregateExec::over(&aggregate) {
            Some(runs) => Arc::new(runs),
            None => aggregate,
        })
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let agg = self.agg();
        let input = agg.input().execute(partition, Arc::clone(&context))?.fuse();
        let runs = Runs {
            schema: agg.schema(),
            key: Arc::clone(&agg.group_expr().expr()[0].0),
            arguments: aggregate_expressions(agg.aggr_expr(), agg.mode(), 0)?,
            filters: agg.filter_expr().to_vec(),
            accumulators: agg
                .aggr_expr()
                .iter()
                .map(|a| a.create_groups_accumulator())
                .collect::<Result<_>>()?,
            keys: Vec::new(),
            open: 0,
            last_key: None,
            group_indices: Vec::new(),
            reservation: MemoryConsumer::new(format!("RunAggregateExec[{partition}]"))
                .register(context.memory_pool()),
            metrics: BaselineMetrics::new(&self.metrics, partition),
        };
        let batches =
            futures::stream::try_unfold((input, runs), |(mut input, mut runs)| async move {
                while let Some(batch) = input.next().await {
                    if let Some(out) = runs.add(&batch?)? {
                        return Ok(Some((out, (input, runs))));
                    }
                }
                Ok(runs.emit(EmitTo::All)?.map(|out| (out, (input, runs))))
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            agg.schema(),
            batches,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One partition's grouping: the groups not yet emitted ("open"), the last
/// of which may continue into the next batch.
struct Runs {
    schema: SchemaRef,
    key: Arc<dyn PhysicalExpr>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// The open groups' keys, in group order.
    keys: Vec<ArrayRef>,
    open: usize,
    /// The key of the last row seen (one row).
    last_key: Option<ArrayRef>,
    group_indices: Vec<usize>,
    reservation: MemoryReservation,
    metrics: BaselineMetrics,
}

impl Runs {
    /// Aggregates `batch`; the groups it completed, if any.
    fn add(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(None);
        }
        let timer = self.metrics.elapsed_compute().timer();
        let key = self.key.evaluate(batch)?.into_array(rows)?;
        let continues = match &self.last_key {
            Some(last) => not_distinct(last, &key.slice(0, 1))?.value(0),
            None => false,
        };
        self.group_indices.clear();
        let mut starts = Vec::new();
        for (i, run) in partition(&[Arc::clone(&key)])?
            .ranges()
            .into_iter()
            .enumerate()
        {
            if i > 0 || !continues {
                starts.push(run.start as u32);
                self.open += 1;
            }
            let g = self.open - 1;
            self.group_indices.extend(std::iter::repeat_n(g, run.len()));
        }
        self.keys
            .push(take(&key, &UInt32Array::from(starts), None)?);
        self.last_key = Some(key.slice(rows - 1, 1));
        let arguments = evaluate_many(&self.arguments, batch)?;
        for ((acc, values), filter) in self
            .accumulators
            .iter_mut()
            .zip(&arguments)
            .zip(&self.filters)
        {
            let filter = match filter {
                Some(f) => Some(f.evaluate(batch)?.into_array(rows)?),
                None => None,
            };
            let filter = filter.as_ref().map(|f| f.as_boolean());
            acc.update_batch(values, &self.group_indices, filter, self.open)?;
        }
        self.reservation
            .try_resize(self.accumulators.iter().map(|a| a.size()).sum())?;
        drop(timer);
        // Every open group but the last is complete.
        match self.open - 1 {
            0 => Ok(None),
            complete => self.emit(EmitTo::First(complete)),
        }
    }

    /// Emits the first groups (or all), if any.
    fn emit(&mut self, emit_to: EmitTo) -> Result<Option<RecordBatch>> {
        let n = match emit_to {
            EmitTo::First(n) => n,
            EmitTo::All => self.open,
        };
        if n == 0 {
            return Ok(None);
        }
        let timer = self.metrics.elapsed_compute().timer();
        let keys = concat(&self.keys.iter().map(|k| k.as_ref()).collect::<Vec<_>>())?;
        self.keys = vec![keys.slice(n, keys.len() - n)];
        let mut columns = vec![keys.slice(0, n)];
        for acc in &mut self.accumulators {
            columns.push(acc.evaluate(emit_to)?);
        }
        self.open -= n;
        self.reservation
            .try_resize(self.accumulators.iter().map(|a| a.size()).sum())?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        drop(timer);
        self.metrics.record_output(batch.num_rows());
        Ok(Some(batch))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionContext, col};

    use super::*;
    use crate::rule_tests::plan_and_answer as run;

    /// A context over `events(k, v, ts)`, sorted by `k` (NULLs last), cut into
    /// batches of `batch_rows`; grouping by runs when `runs`.
    fn context(batch_rows: usize, runs: bool) -> SessionContext {
        // keys: runs of 1 to 7 rows, one spanning several batches, then NULLs
        let mut keys: Vec<Option<i64>> = Vec::new();
        for k in 0..40i64 {
            keys.extend(std::iter::repeat_n(Some(k * 3), (k as usize * 5) % 7 + 1));
        }
        keys.extend(std::iter::repeat_n(Some(500), 23));
        keys.extend([None, None, None]);
        let n = keys.len();
        let values: Vec<Option<i64>> = (0..n as i64)
            .map(|i| (i % 5 != 3).then_some(i % 11))
            .collect();
        let ts: Vec<i64> = (0..n as i64)
            .map(|i| (i * 7919 % 97) * 600_000_000)
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
        ]));
        let batches: Vec<RecordBatch> = (0..n)
            .step_by(batch_rows)
            .map(|start| {
                let end = (start + batch_rows).min(n);
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(Int64Array::from(keys[start..end].to_vec())),
                        Arc::new(Int64Array::from(values[start..end].to_vec())),
                        Arc::new(TimestampMicrosecondArray::from(ts[start..end].to_vec())),
                    ],
                )
                .unwrap()
            })
            .collect();
        let table = MemTable::try_new(schema, vec![batches])
            .unwrap()
            .with_sort_order(vec![vec![col("k").sort(true, false)]]);
        let rule =
            runs.then(|| Arc::new(AggregateRuns) as Arc<dyn PhysicalOptimizerRule + Send + Sync>);
        crate::rule_tests::context(table, rule)
    }

    #[tokio::test]
    async fn runs_give_datafusions_answers_at_every_batch_size() {
        let sql = "SELECT k, count(*) AS n, sum(v) AS s, max(v) AS m, \
                   count(v) FILTER (WHERE v % 2 = 0) AS even, \
                   window_funnel(3600, '', ts, v = 1, v = 2) AS level, \
                   sessions(ts, 1800) AS sessions \
                   FROM events GROUP BY k";
        let (_, want) = run(&context(8192, false), &format!("{sql} ORDER BY k")).await;
        assert!(want.contains("| 500 | 23 "), "{want}");
        for batch_rows in [1, 2, 3, 7, 64, 8192] {
            let ctx = context(batch_rows, true);
            let (plan, _) = run(&ctx, sql).await;
            assert!(plan.contains("RunAggregateExec: mode=Single"), "{plan}");
            assert_eq!(plan.matches("AggregateExec: mode").count(), 1, "{plan}");
            let (_, answer) = run(&ctx, &format!("{sql} ORDER BY k")).await;
            assert_eq!(answer, want, "batches of {batch_rows} rows");
        }
    }

    #[tokio::test]
    async fn other_groupings_keep_datafusions_aggregate() {
        let ctx = context(5, true);
        for sql in [
            // two keys, or a key the input is not sorted by
            "SELECT k, v, count(*) FROM events GROUP BY k, v",
            "SELECT v, count(*) FROM events GROUP BY v",
        ] {
            let (plan, _) = run(&ctx, sql).await;
            assert!(!plan.contains("RunAggregateExec"), "{plan}");
        }
    }
}
