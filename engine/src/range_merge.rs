//! One sorted stream per member range when a range holds several sorted
//! files (one per load, until compaction): each output partition merges, in
//! the scan's `(member_id, ts)` order, the input partitions ("lanes") that
//! `member_ranges` gave it, and declares the same `Range` partitioning the
//! files were grouped by. Per-member aggregates then run in one phase with no
//! repartition and no sort, as over a compacted table.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::common::SplitPoint;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    LexOrdering, Partitioning, PhysicalExpr, PhysicalSortExpr, RangePartitioning,
};
use datafusion::physical_plan::common::spawn_buffered;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::sorts::streaming_merge::StreamingMergeBuilder;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    SendableRecordBatchStream, Statistics,
};

use crate::lane_merge::{LaneOrder, merge_lanes};

/// Merges groups of sorted input partitions into range partitions.
#[derive(Debug)]
pub(crate) struct MergeMemberRangesExec {
    input: Arc<dyn ExecutionPlan>,
    /// The partitioning key.
    column: String,
    /// The input partitions each output partition merges (possibly none).
    lanes: Vec<Range<usize>>,
    /// The first key of every output partition but the first.
    split_points: Vec<SplitPoint>,
    /// The input's order, which every output partition keeps.
    ordering: LexOrdering,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl MergeMemberRangesExec {
    /// Output partition `p` merges `input`'s partitions `lanes[p]`, and holds
    /// the keys of `column` from `split_points[p - 1]` up to `split_points[p]`.
    /// `None` when `input` is not sorted by `column` first or the ranges do
    /// not fit the lanes.
    pub(crate) fn try_new(
        input: Arc<dyn ExecutionPlan>,
        column: &str,
        lanes: Vec<Range<usize>>,
        split_points: Vec<SplitPoint>,
    ) -> Option<Self> {
        let index = input.schema().index_of(column).ok()?;
        let ordering = input.output_ordering()?.clone();
        let first = ordering.first();
        let sorted_by_key = !first.options.descending
            && first
                .expr
                .downcast_ref::<Column>()
                .is_some_and(|c| c.name() == column && c.index() == index);
        let inputs = input.output_partitioning().partition_count();
        if !sorted_by_key
            || lanes.len() != split_points.len() + 1
            || lanes.iter().any(|l| l.end > inputs)
        {
            return None;
        }
        let key = PhysicalSortExpr::new_default(Arc::new(Column::new(column, index)));
        let range =
            RangePartitioning::try_new(LexOrdering::new(vec![key])?, split_points.clone()).ok()?;
        let mut equivalences = input.equivalence_properties().clone();
        equivalences.clear_per_partition_constants();
        let properties = PlanProperties::new(
            equivalences,
            Partitioning::Range(range),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Some(MergeMemberRangesExec {
            input,
            column: column.to_string(),
            lanes,
            split_points,
            ordering,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for MergeMemberRangesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let lanes: usize = self.lanes.iter().map(|l| l.len()).sum();
        write!(
            f,
            "MergeMemberRangesExec: partitions={}, files_in_parallel={lanes}, order=[{}]",
            self.lanes.len(),
            self.ordering
        )
    }
}

impl ExecutionPlan for MergeMemberRangesExec {
    fn name(&self) -> &str {
        "MergeMemberRangesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// The lanes are the input's partitions as planned: splitting them
    /// further would break the mapping.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        match MergeMemberRangesExec::try_new(
            Arc::clone(&input),
            &self.column,
            self.lanes.clone(),
            self.split_points.clone(),
        ) {
            Some(merge) => Ok(Arc::new(merge)),
            None => datafusion::common::internal_err!(
                "MergeMemberRangesExec: the new input {} no longer fits its ranges",
                input.name()
            ),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(lanes) = self.lanes.get(partition).cloned() else {
            return datafusion::common::internal_err!(
                "MergeMemberRangesExec has no partition {partition}"
            );
        };
        match lanes.len() {
            0 => EmptyExec::new(self.schema()).execute(0, context),
            1 => self.input.execute(lanes.start, context),
            _ => {
                let streams = lanes
                    .map(|lane| {
                        Ok(spawn_buffered(
                            self.input.execute(lane, Arc::clone(&context))?,
                            1,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let reservation =
                    MemoryConsumer::new(format!("MergeMemberRangesExec[{partition}]"))
                        .register(&context.runtime_env().memory_pool);
                let batch_size = context.session_config().batch_size();
                let metrics = BaselineMetrics::new(&self.metrics, partition);
                if let Some(order) = LaneOrder::of(&self.ordering, &self.schema()) {
                    return Ok(merge_lanes(
                        streams,
                        self.schema(),
                        order,
                        batch_size,
                        reservation,
                        metrics,
                    ));
                }
                StreamingMergeBuilder::new()
                    .with_streams(streams)
                    .with_schema(self.schema())
                    .with_expressions(&self.ordering)
                    .with_metrics(metrics)
                    .with_batch_size(batch_size)
                    .with_reservation(reservation)
                    .build()
            }
        }
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        match partition {
            None => vec![ChildStats::At(None)],
            Some(_) => vec![ChildStats::Skip],
        }
    }

    /// The whole output has the input's statistics; a single partition's are unknown.
    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        match (args.partition(), input_stats.first()) {
            (None, Some(stats)) => Ok(Arc::clone(stats)),
            _ => Ok(Arc::new(Statistics::new_unknown(&self.schema()))),
        }
    }
}
