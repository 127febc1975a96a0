//! Member-range partitioning, decided in one place: when a scan is sorted by
//! `member_id` and its files hold disjoint member ranges (the layout
//! `audience gen` writes), this physical optimizer rule regroups the files into
//! contiguous member ranges from their statistics and declares exactly those
//! ranges as the scan's `Range` output partitioning. Every member then lies in
//! one partition, so per-member aggregates run in one phase with no
//! repartition — locally, and inside each scan task on a Ballista cluster
//! (whose scheduler runs the same rule). The groups and the declared split
//! points come from the same list, so they cannot disagree.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::{ScalarValue, SplitPoint};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::error::Result;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, Partitioning, PhysicalSortExpr, RangePartitioning};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::file_scans::rewrite_file_scans;

/// The column whose ranges the files partition.
const COLUMN: &str = "member_id";

/// Regroups and declares range partitioning on `member_id` for scans whose
/// files hold disjoint member ranges. It runs ahead of DataFusion's own rules,
/// before distribution is enforced.
#[derive(Debug, Default)]
pub(crate) struct DeclareMemberRanges;

impl PhysicalOptimizerRule for DeclareMemberRanges {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = config.execution.target_partitions;
        rewrite_file_scans(plan, |files| member_range_scan(files, partitions))
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
    let groups = contiguous_groups(&files, partitions);
    // Fewer files than partitions: the ranges above the last member are
    // declared too, empty, so the scan has exactly `partitions` partitions
    // and distribution is not "improved" by a hash repartition.
    let last = files.last().map(|(_, hi, _)| *hi)?;
    let empty = (1..=(partitions - groups.len()) as i64).map(|k| last.checked_add(k));
    let split_points = groups[1..]
        .iter()
        .map(|g| Some(g[0].0))
        .chain(empty)
        .map(|point| Some(SplitPoint::new(vec![ScalarValue::Int64(Some(point?))])))
        .collect::<Option<Vec<_>>>()?;
    let key = PhysicalSortExpr::new_default(Arc::new(Column::new(COLUMN, index)));
    let range = RangePartitioning::try_new(LexOrdering::new(vec![key])?, split_points).ok()?;
    let file_groups = (0..partitions)
        .map(|g| {
            let files = groups.get(g).map_or(&[][..], |g| *g);
            FileGroup::new(files.iter().map(|(_, _, f)| f.clone()).collect())
        })
        .collect();
    Some(
        FileScanConfigBuilder::from(scan.clone())
            .with_file_groups(file_groups)
            .with_output_partitioning(Some(Partitioning::Range(range)))
            .build(),
    )
}

/// `files` (sorted by range) cut into `min(partitions, files)` contiguous
/// groups whose sizes differ by at most one file.
pub(crate) fn contiguous_groups<T>(files: &[T], partitions: usize) -> Vec<&[T]> {
    let groups = partitions.min(files.len()).max(1);
    (0..groups)
        .map(|g| &files[g * files.len() / groups..(g + 1) * files.len() / groups])
        .collect()
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

#[cfg(test)]
mod tests {
    use super::contiguous_groups;

    #[test]
    fn groups_are_contiguous_balanced_and_cover_every_file() {
        for files in [1, 2, 3, 5, 7, 16, 25] {
            for partitions in [1, 2, 3, 5, 7, 16] {
                let list: Vec<usize> = (0..files).collect();
                let groups = contiguous_groups(&list, partitions);
                assert_eq!(
                    groups.len(),
                    partitions.min(files),
                    "{files} files, {partitions}"
                );
                let flat: Vec<usize> = groups.iter().flat_map(|g| g.iter().copied()).collect();
                assert_eq!(flat, list, "{files} files, {partitions} partitions");
                let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(
                    hi - lo <= 1 && *lo >= 1,
                    "{files} files, {partitions}: {sizes:?}"
                );
            }
        }
    }
}
