//! Member-range partitioning restored on a Ballista scheduler. A table's
//! declared range partitioning (see `member_ranges`) lives in its listing
//! options, which the logical plan a Ballista client sends does not carry; so
//! the scheduler, before distribution is enforced, regroups a scan sorted by
//! `member_id` into contiguous member ranges from its files' statistics and
//! declares them. Per-member aggregates then run inside each scan task, with no
//! shuffle of events between executors.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{ScalarValue, SplitPoint};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, Partitioning, PhysicalSortExpr, RangePartitioning};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// The column whose ranges the files partition.
const COLUMN: &str = "member_id";

/// Declares range partitioning on `member_id` for scans whose files hold
/// disjoint member ranges (the layout `audience gen` writes).
#[derive(Debug, Default)]
pub(crate) struct DeclareMemberRanges;

impl PhysicalOptimizerRule for DeclareMemberRanges {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = config.execution.target_partitions;
        plan.transform_up(|node| {
            let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(files) = scan.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            match member_range_scan(files, partitions) {
                Some(regrouped) => Ok(Transformed::yes(DataSourceExec::from_data_source(
                    regrouped,
                ))),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "declare_member_ranges"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `scan` regrouped into up to `partitions` contiguous member ranges with the
/// partitioning declared, or `None` when it declares one already, is not
/// sorted by `member_id` first, or its files' ranges are unknown or overlap.
fn member_range_scan(scan: &FileScanConfig, partitions: usize) -> Option<FileScanConfig> {
    if scan.output_partitioning.is_some() || scan.limit.is_some() || partitions < 2 {
        return None;
    }
    let index = scan.file_schema().index_of(COLUMN).ok()?;
    let sorted_by_member = scan.output_ordering.iter().any(|ordering| {
        let first = ordering.first();
        !first.options.descending
            && first
                .expr
                .downcast_ref::<Column>()
                .is_some_and(|c| c.name() == COLUMN && c.index() == index)
    });
    if !sorted_by_member {
        return None;
    }
    let mut files: Vec<(i64, i64, PartitionedFile)> = scan
        .file_groups
        .iter()
        .flat_map(|group| group.files().iter())
        .map(|file| {
            let (lo, hi) = file_range(file, index)?;
            Some((lo, hi, file.clone()))
        })
        .collect::<Option<_>>()?;
    if files.len() < 2 {
        return None;
    }
    files.sort_by_key(|(lo, _, _)| *lo);
    if files.windows(2).any(|w| w[0].1 >= w[1].0) {
        return None;
    }
    let chunk = files.len().div_ceil(partitions);
    let groups: Vec<&[(i64, i64, PartitionedFile)]> = files.chunks(chunk).collect();
    let split_points = groups[1..]
        .iter()
        .map(|g| SplitPoint::new(vec![ScalarValue::Int64(Some(g[0].0))]))
        .collect();
    let key = PhysicalSortExpr::new_default(Arc::new(Column::new(COLUMN, index)));
    let range = RangePartitioning::try_new(LexOrdering::new(vec![key])?, split_points).ok()?;
    let file_groups = groups
        .iter()
        .map(|g| FileGroup::new(g.iter().map(|(_, _, f)| f.clone()).collect()))
        .collect();
    Some(
        FileScanConfigBuilder::from(scan.clone())
            .with_file_groups(file_groups)
            .with_output_partitioning(Some(Partitioning::Range(range)))
            .build(),
    )
}

/// A file's exact `[min, max]` of the column at `index`, from its statistics.
fn file_range(file: &PartitionedFile, index: usize) -> Option<(i64, i64)> {
    let column = file.statistics.as_ref()?.column_statistics.get(index)?;
    if !matches!(column.null_count, Precision::Exact(0)) {
        return None;
    }
    let value = |p: &Precision<ScalarValue>| match p {
        Precision::Exact(v) => v
            .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
            .ok(),
        _ => None,
    };
    match (value(&column.min_value)?, value(&column.max_value)?) {
        (ScalarValue::Int64(Some(lo)), ScalarValue::Int64(Some(hi))) => Some((lo, hi)),
        _ => None,
    }
}
