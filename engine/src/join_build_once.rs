//! A nested loop join's build side runs once. When DataFusion 55's
//! `NestedLoopJoinExec` cannot hold its build (left) side in the memory pool,
//! it falls back to running that side a second time and spilling it; a second
//! run of a plan holding a repartition panics ("partition not used yet": a
//! repartition's channels serve one run), and its source notes that the
//! fallback can answer LEFT, SEMI and ANTI joins over several partitions
//! wrongly. Found by the configuration matrix (reliability M3):
//! `sql/recipes/lifecycle_series.sql` (a cross join with its parameters) under a
//! 128 MiB pool and 7 partitions panicked in 8 of 20 runs. Guarded, a second run
//! is a resources-exhausted error naming the join and `engine.memory_limit`.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
    Statistics,
};

/// Puts a [`BuildOnceExec`] above the build side of every nested loop join.
#[derive(Debug, Default)]
pub(crate) struct BuildJoinsOnce;

impl PhysicalOptimizerRule for BuildJoinsOnce {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<NestedLoopJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if join.left().is::<BuildOnceExec>() {
                return Ok(Transformed::no(node));
            }
            let build = Arc::new(BuildOnceExec::new(Arc::clone(join.left())));
            let probe = Arc::clone(join.right());
            Ok(Transformed::yes(node.replace_children(
                vec![build, probe],
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
            )?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "build_joins_once"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Its input, each partition run at most once; a second run is a
/// resources-exhausted error.
#[derive(Debug)]
pub(crate) struct BuildOnceExec {
    input: Arc<dyn ExecutionPlan>,
    ran: Mutex<HashSet<usize>>,
}

impl BuildOnceExec {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        BuildOnceExec {
            input,
            ran: Mutex::default(),
        }
    }
}

impl DisplayAs for BuildOnceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "BuildOnceExec")
    }
}

impl ExecutionPlan for BuildOnceExec {
    fn name(&self) -> &str {
        "BuildOnceExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

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
        Ok(Arc::new(BuildOnceExec::new(children.swap_remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let first = self.ran.lock().is_ok_and(|mut ran| ran.insert(partition));
        if !first {
            return Err(DataFusionError::ResourcesExhausted(
                "the build side of a nested loop join (a join without equality keys, such as \
                 a cross join) does not fit in memory"
                    .into(),
            ));
        }
        self.input.execute(partition, context)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }
}
