//! Member-range partitioning, decided in one place: when a scan is sorted by
//! `member_id` and its files' member ranges are known from their statistics,
//! this physical optimizer rule clusters the files whose ranges overlap (the
//! files of one range, one per load), cuts the clusters into contiguous
//! groups, and declares exactly those groups' ranges as `Range` output
//! partitioning. Every member then lies in one partition, so per-member
//! aggregates run in one phase with no repartition — locally, and inside each
//! scan task on a Ballista cluster (whose scheduler runs the same rule). The
//! groups and the declared split points come from the same list, so they
//! cannot disagree.
//!
//! When every cluster is one file (the layout `audience gen` and compaction
//! write), the scan reads each group's files one after the other. Otherwise a
//! [`MergeMemberRangesExec`] merges each group's overlapping files in the
//! scan's order (in-process only: Ballista cannot carry the node, and there
//! such a scan keeps DataFusion's own plan).

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

use crate::file_scans::file_scan;
use crate::range_merge::MergeMemberRangesExec;

/// The column whose ranges the files partition.
const COLUMN: &str = "member_id";

/// Regroups and declares range partitioning on `member_id` for scans whose
/// files' member ranges are known. It runs ahead of DataFusion's own rules,
/// before distribution is enforced.
#[derive(Debug)]
pub(crate) struct DeclareMemberRanges {
    /// Whether a range of several overlapping files may be merged (a plan
    /// that travels to Ballista cannot carry the merge node).
    pub(crate) merge_overlapping: bool,
}

impl PhysicalOptimizerRule for DeclareMemberRanges {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = config.execution.target_partitions;
        plan.transform_up(|node| {
            match file_scan(&node)
                .and_then(|scan| member_range_plan(scan, partitions, self.merge_overlapping))
            {
                Some(plan) => Ok(Transformed::yes(plan)),
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

/// A file with its exact member range.
type RangedFile = (i64, i64, PartitionedFile);

/// `scan` read as up to `partitions` contiguous member ranges, declared, or
/// `None` when it declares a partitioning already, has a limit, is not sorted
/// by `member_id` first, a file's range is unknown, all files overlap, or
/// files overlap and `merge` is off.
fn member_range_plan(
    scan: &FileScanConfig,
    partitions: usize,
    merge: bool,
) -> Option<Arc<dyn ExecutionPlan>> {
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
    let mut files: Vec<RangedFile> = scan
        .file_groups
        .iter()
        .flat_map(|group| group.files().iter())
        .map(|file| {
            let (lo, hi) = file_range(file, index)?;
            Some((lo, hi, file.clone()))
        })
        .collect::<Option<_>>()?;
    files.sort_by_key(|(lo, hi, _)| (*lo, *hi));
    let clusters = overlapping_clusters(files);
    if clusters.len() < 2 {
        return None;
    }
    let groups = contiguous_groups(&clusters, partitions);
    // Fewer clusters than partitions: the ranges above the last member are
    // declared too, empty, so the plan has exactly `partitions` partitions
    // and distribution is not "improved" by a hash repartition.
    let last = clusters.iter().flatten().map(|(_, hi, _)| *hi).max()?;
    let empty = (1..=(partitions - groups.len()) as i64).map(|k| last.checked_add(k));
    let split_points = groups[1..]
        .iter()
        .map(|g| Some(g[0][0].0))
        .chain(empty)
        .map(|point| Some(SplitPoint::new(vec![ScalarValue::Int64(Some(point?))])))
        .collect::<Option<Vec<_>>>()?;
    let file_group = |files: Vec<&RangedFile>| {
        FileGroup::new(files.into_iter().map(|(_, _, f)| f.clone()).collect())
    };
    if clusters.iter().all(|c| c.len() == 1) {
        let key = PhysicalSortExpr::new_default(Arc::new(Column::new(COLUMN, index)));
        let range = RangePartitioning::try_new(LexOrdering::new(vec![key])?, split_points).ok()?;
        let file_groups = (0..partitions)
            .map(|g| {
                file_group(
                    groups
                        .get(g)
                        .map_or(vec![], |g| g.iter().flatten().collect()),
                )
            })
            .collect();
        let scan = FileScanConfigBuilder::from(scan.clone())
            .with_file_groups(file_groups)
            .with_output_partitioning(Some(Partitioning::Range(range)))
            .build();
        return Some(DataSourceExec::from_data_source(scan));
    }
    if !merge {
        return None;
    }
    // Each group reads its clusters' files in lanes: lane j holds the j-th
    // file of each cluster, in member order (so each lane is sorted), and
    // the group's lanes are merged.
    let mut lane_groups = Vec::new();
    let mut lanes = Vec::with_capacity(partitions);
    for g in 0..partitions {
        let clusters = groups.get(g).copied().unwrap_or_default();
        let width = clusters.iter().map(Vec::len).max().unwrap_or(0);
        let first = lane_groups.len();
        for j in 0..width {
            lane_groups.push(file_group(
                clusters.iter().filter_map(|c| c.get(j)).collect(),
            ));
        }
        lanes.push(first..lane_groups.len());
    }
    let scan = FileScanConfigBuilder::from(scan.clone())
        .with_file_groups(lane_groups)
        .build();
    let merge = MergeMemberRangesExec::try_new(
        DataSourceExec::from_data_source(scan),
        COLUMN,
        lanes,
        split_points,
    )?;
    Some(Arc::new(merge))
}

/// `files` (sorted by range start) as clusters of files whose ranges
/// overlap, directly or through others; the clusters' ranges are disjoint
/// and ascending.
fn overlapping_clusters(files: Vec<RangedFile>) -> Vec<Vec<RangedFile>> {
    let mut clusters: Vec<(i64, Vec<RangedFile>)> = Vec::new();
    for file in files {
        match clusters.last_mut() {
            Some((hi, cluster)) if file.0 <= *hi => {
                *hi = (*hi).max(file.1);
                cluster.push(file);
            }
            _ => clusters.push((file.1, vec![file])),
        }
    }
    clusters.into_iter().map(|(_, cluster)| cluster).collect()
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
