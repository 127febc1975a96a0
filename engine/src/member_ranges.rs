//! Declared member-range partitioning: when a table's files each hold a disjoint,
//! increasing range of `member_id` (the layout `audience gen` writes), the scan
//! can promise that every member lies in exactly one partition, so per-member
//! aggregates run in one phase with no repartition (DataFusion's declared
//! `Range` output partitioning).

use std::sync::Arc;

use datafusion::common::{ScalarValue, SplitPoint};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::logical_expr::{Partitioning, RangePartitioning, col};
use datafusion::parquet::file::statistics::Statistics;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore};

/// The `[min, max]` of an INT64 column over a Parquet file, from its footer statistics.
async fn file_range(
    store: &Arc<dyn ObjectStore>,
    file: &ObjectMeta,
    column: &str,
) -> Option<(i64, i64)> {
    let metadata = DFParquetMetadata::new(store.as_ref(), file)
        .fetch_metadata()
        .await
        .ok()?;
    let schema = metadata.file_metadata().schema_descr();
    let index = (0..schema.num_columns()).find(|&i| schema.column(i).name() == column)?;
    let mut range: Option<(i64, i64)> = None;
    for row_group in metadata.row_groups() {
        let Some(Statistics::Int64(stats)) = row_group.column(index).statistics() else {
            return None;
        };
        if stats.null_count_opt() != Some(0) {
            return None;
        }
        let (lo, hi) = (*stats.min_opt()?, *stats.max_opt()?);
        range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
    }
    range
}

/// The `.parquet` objects under `prefix`, in path order (the order DataFusion
/// groups them in); hidden names (`.x`) are left out.
pub(crate) async fn parquet_objects(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
) -> Result<Vec<ObjectMeta>, object_store::Error> {
    let mut files: Vec<ObjectMeta> = store
        .list(Some(prefix))
        .try_filter(|m| {
            let name = m.location.filename().unwrap_or("");
            std::future::ready(name.ends_with(".parquet") && !name.starts_with('.'))
        })
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// Range partitioning on `column` for the files under `prefix` split into up to
/// `partitions` groups, if the files' ranges are disjoint and increasing in path
/// order; `None` otherwise (the scan then declares nothing).
pub(crate) async fn member_range_partitioning(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
    column: &str,
    partitions: usize,
) -> Option<Partitioning> {
    let files = parquet_objects(store, prefix).await.ok()?;
    if files.len() < 2 || partitions < 2 {
        return None;
    }
    let mut ranges = Vec::with_capacity(files.len());
    for file in &files {
        ranges.push(file_range(store, file, column).await?);
    }
    if ranges.windows(2).any(|w| w[0].1 >= w[1].0) {
        return None;
    }
    // DataFusion splits the path-ordered files into chunks of ceil(files / partitions).
    let chunk = files.len().div_ceil(partitions);
    let groups = files.len().div_ceil(chunk);
    let split_points = (1..groups)
        .map(|g| SplitPoint::new(vec![ScalarValue::Int64(Some(ranges[g * chunk].0))]))
        .collect();
    let range =
        RangePartitioning::try_new(vec![col(column).sort(true, false)], split_points).ok()?;
    Some(Partitioning::Range(range))
}
