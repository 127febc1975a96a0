//! A folder of Parquet files made a Delta table where it lies: version 0
//! holds every file, with its statistics, and the member ranges the files
//! hold are recorded, so loads into it split their rows the same way. This
//! is how `audience gen`'s tables become Delta tables.

use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::prelude::SessionContext;
use deltalake_core::kernel::Add;
use object_store::ObjectMeta;

use crate::catalog::dataset_sort_order;
use crate::delta_tables::{
    delta_error, delta_table, footer, is_delta_table, table_root, table_store,
};
use crate::error::EngineError;
use crate::storage::Location;
use crate::table_writes::{FileStats, create, has_member_ranges};

/// Makes the Parquet files directly in `target` the Delta table `name`
/// (version 0); returns how many files it holds.
pub(crate) async fn adopt(
    ctx: &SessionContext,
    name: &str,
    target: &Location,
) -> Result<usize, EngineError> {
    if is_delta_table(ctx, target).await? {
        return Err(EngineError::Invalid(format!(
            "{target} is a Delta table already"
        )));
    }
    let (store, _) = table_store(ctx, target)?;
    let root = table_root(ctx, target)?;
    let mut files: Vec<ObjectMeta> = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| crate::storage::storage_error(target, e))?
        .objects
        .into_iter()
        .filter(|m| {
            m.location
                .filename()
                .is_some_and(|n| n.ends_with(".parquet") && !n.starts_with('.'))
        })
        .collect();
    files.sort_by(|a, b| a.location.cmp(&b.location));
    if files.is_empty() {
        return Err(EngineError::NotFound(format!(
            "{target} holds no Parquet files"
        )));
    }
    let state = ctx.state();
    let schema = ParquetFormat::default()
        .infer_schema(&state, &store, &files)
        .await?;
    let mut adds = Vec::with_capacity(files.len());
    let mut members = Vec::with_capacity(files.len());
    for file in &files {
        let metadata = footer(&state, &store, file).await?;
        let statistics = DFParquetMetadata::statistics_from_parquet_metadata(&metadata, &schema)?;
        let stats = FileStats::from_statistics(&schema, &statistics);
        members.push(stats.range_of("member_id"));
        adds.push(Add {
            path: file.location.filename().unwrap_or_default().to_string(),
            size: file.size as i64,
            modification_time: file.last_modified.timestamp_millis(),
            data_change: true,
            stats: Some(stats.to_json()),
            ..Default::default()
        });
    }
    let sort_order: Vec<String> = dataset_sort_order(name)
        .iter()
        .map(|c| c.to_string())
        .collect();
    let ranges = has_member_ranges(&schema, &sort_order)
        .then(|| file_ranges(&members))
        .flatten();
    let log = delta_table(ctx, target)?;
    create(log, name, &schema, ranges.as_deref(), adds)
        .await
        .map_err(|e| delta_error(target, e))?;
    Ok(files.len())
}

/// The member ranges files holding these `[min, max]` member ids (in file
/// order) form, if they are known, ascending and disjoint: the first starts
/// below every id, each other at its file's smallest.
fn file_ranges(members: &[Option<(i64, i64)>]) -> Option<Vec<i64>> {
    let members: Vec<(i64, i64)> = members.iter().copied().collect::<Option<_>>()?;
    if members.windows(2).any(|w| w[0].1 >= w[1].0) {
        return None;
    }
    let mut starts: Vec<i64> = members.iter().map(|(lo, _)| *lo).collect();
    *starts.first_mut()? = i64::MIN;
    Some(starts)
}

#[cfg(test)]
mod tests {
    use super::file_ranges;

    #[test]
    fn ranges_come_from_disjoint_ascending_files_only() {
        let files = [Some((3, 9)), Some((10, 19)), Some((25, 40))];
        assert_eq!(file_ranges(&files), Some(vec![i64::MIN, 10, 25]));
        assert_eq!(file_ranges(&[Some((3, 9)), Some((9, 19))]), None);
        assert_eq!(file_ranges(&[Some((3, 9)), None]), None);
        assert_eq!(file_ranges(&[]), None);
    }
}
