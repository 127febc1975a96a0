//! Declared member-range partitioning: when a table's files each hold a disjoint,
//! increasing range of `member_id` (the layout `audience gen` writes), the scan
//! can promise that every member lies in exactly one partition, so per-member
//! aggregates run in one phase with no repartition (DataFusion's declared
//! `Range` output partitioning).

use std::fs::File;
use std::path::{Path, PathBuf};

use datafusion::common::{ScalarValue, SplitPoint};
use datafusion::logical_expr::{Partitioning, RangePartitioning, col};
use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use datafusion::parquet::file::statistics::Statistics;

/// The `[min, max]` of an INT64 column over a Parquet file, from its footer statistics.
fn file_range(path: &Path, column: &str) -> Option<(i64, i64)> {
    let file = File::open(path).ok()?;
    let metadata = ParquetMetaDataReader::new().parse_and_finish(&file).ok()?;
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

/// The `.parquet` files of a folder in path order (the order DataFusion groups them in).
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    files
}

/// Range partitioning on `column` for the files of `dir` split into up to
/// `partitions` groups, if the files' ranges are disjoint and increasing in path
/// order; `None` otherwise (the scan then declares nothing).
pub(crate) fn member_range_partitioning(
    dir: &Path,
    column: &str,
    partitions: usize,
) -> Option<Partitioning> {
    let files = parquet_files(dir);
    if files.len() < 2 || partitions < 2 {
        return None;
    }
    let ranges: Vec<(i64, i64)> = files
        .iter()
        .map(|f| file_range(f, column))
        .collect::<Option<_>>()?;
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
