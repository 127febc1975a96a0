//! Writing a Delta table's data the way its readers expect it: a new table's
//! member ranges (recorded as a table property), one file per range sorted by
//! `(member_id, ts)`, each with the statistics its log entry carries. Loads,
//! compaction and `audience gen` all write through here.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::common::{ScalarValue, Statistics};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::{Action, Add, StructType};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::SaveMode;
use futures::{Stream, StreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::delta_tables::delta_error;
use crate::error::EngineError;
use crate::failpoints;
use crate::storage::Location;

/// The table property holding the first member id of each member range.
pub(crate) const MEMBER_RANGES_PROPERTY: &str = "audience.memberRangeStarts";
/// Rows a member range of a new table aims for.
const ROWS_PER_RANGE: u64 = 4_000_000;
/// Fewest member ranges of a new table (when it has that many members).
const MIN_RANGES: usize = 4;
/// Rows per Parquet row group of the written files.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// An error while writing a table's files.
pub(crate) type WriteError = Box<dyn std::error::Error + Send + Sync>;

/// Whether rows of `schema` sorted by `sort_order` are cut into member ranges.
pub(crate) fn has_member_ranges(schema: &Schema, sort_order: &[String]) -> bool {
    sort_order.first().is_some_and(|c| c == "member_id")
        && schema
            .field_with_name("member_id")
            .is_ok_and(|f| f.data_type() == &DataType::Int64)
}

/// The member ranges of a new table for its first rows: about
/// [`ROWS_PER_RANGE`] rows each, at least [`MIN_RANGES`] when there are
/// members enough; the first starts at the smallest id of all.
pub(crate) fn new_ranges(batches: &[RecordBatch]) -> Result<Vec<i64>, EngineError> {
    let mut ids: Vec<i64> = Vec::new();
    for batch in batches {
        let column = batch
            .column_by_name("member_id")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| EngineError::Internal("member_id is not a BIGINT column".into()))?;
        ids.extend(column.iter().flatten());
    }
    ids.sort_unstable();
    let ranges = ((ids.len() as u64).div_ceil(ROWS_PER_RANGE) as usize).max(MIN_RANGES);
    let mut starts: Vec<i64> = (0..ranges)
        .filter_map(|r| ids.get(r * ids.len() / ranges).copied())
        .collect();
    starts.dedup();
    if starts.is_empty() {
        starts.push(i64::MIN);
    }
    starts[0] = i64::MIN;
    Ok(starts)
}

/// The member ranges the table's properties record, if any.
pub(crate) fn stored_ranges(
    log: &DeltaTable,
    target: &Location,
) -> Result<Option<Vec<i64>>, EngineError> {
    let state = log.snapshot().map_err(|e| delta_error(target, e))?;
    let configuration = state.metadata().configuration();
    let Some(text) = configuration.get(MEMBER_RANGES_PROPERTY) else {
        return Ok(None);
    };
    parse_ranges(text).map(Some).ok_or_else(|| {
        EngineError::Invalid(format!(
            "{target}: table property {MEMBER_RANGES_PROPERTY} = '{text}' is not a list of ids"
        ))
    })
}

/// The range starts written as `a,b,c`, ascending.
fn parse_ranges(text: &str) -> Option<Vec<i64>> {
    let starts: Vec<i64> = text
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    (!starts.is_empty() && starts.windows(2).all(|w| w[0] < w[1])).then_some(starts)
}

/// The index of the range (of those starting at `starts`) holding `id`.
pub(crate) fn range_of(starts: &[i64], id: i64) -> usize {
    starts.partition_point(|s| *s <= id).max(1) - 1
}

/// Writes `sorted` (by `sorted_by`) as one file per member range that has
/// rows (one file in all without ranges) and returns their log entries.
pub(crate) async fn write_ranges(
    store: &Arc<dyn ObjectStore>,
    root: &ObjectPath,
    schema: &SchemaRef,
    sorted_by: &[String],
    sorted: Vec<RecordBatch>,
    ranges: Option<&[i64]>,
    tag: &str,
) -> Result<Vec<Add>, WriteError> {
    let starts = ranges.unwrap_or(&[i64::MIN]);
    let mut pieces: Vec<Vec<RecordBatch>> = vec![Vec::new(); starts.len()];
    for batch in sorted {
        match ranges.and_then(|_| batch.column_by_name("member_id")) {
            None => pieces[0].push(batch),
            Some(ids) => {
                let ids = ids
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or("member_id is not a BIGINT column")?;
                let mut from = 0;
                while from < batch.num_rows() {
                    let range = range_of(starts, ids.value(from));
                    let end = starts.get(range + 1).map_or(batch.num_rows(), |next| {
                        from + ids.values()[from..].partition_point(|id| id < next)
                    });
                    pieces[range].push(batch.slice(from, end - from));
                    from = end;
                }
            }
        }
    }
    let mut adds = Vec::new();
    for (range, batches) in pieces.into_iter().enumerate() {
        if batches.is_empty() {
            continue;
        }
        let rows = futures::stream::iter(batches.into_iter().map(Ok::<_, WriteError>));
        adds.push(write_file(store, root, &file_name(range, tag), schema, sorted_by, rows).await?);
    }
    Ok(adds)
}

/// The name of a new data file of member range `range`, written by the
/// operation `tag` names (a batch id): `r00003-<tag>-<random>.parquet`, so
/// a table's files list in member order and no two writers' names collide.
pub(crate) fn file_name(range: usize, tag: &str) -> String {
    let tag: String = tag.chars().take(16).collect();
    format!("r{range:05}-{tag}-{}.parquet", unique_suffix())
}

/// A suffix no other writer's file names share.
fn unique_suffix() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (nanos ^ u64::from(std::process::id())).to_le_bytes();
    }
    hex(&bytes)
}

/// `bytes` in lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes one data file named `name` in the table's folder from `batches`
/// (streamed: only a row group is held), sorted by `sorted_by` (which its
/// footer declares, for readers to rely on), and returns its log entry.
pub(crate) async fn write_file<E: Into<WriteError>>(
    store: &Arc<dyn ObjectStore>,
    root: &ObjectPath,
    name: &str,
    schema: &SchemaRef,
    sorted_by: &[String],
    batches: impl Stream<Item = Result<RecordBatch, E>>,
) -> Result<Add, WriteError> {
    let path = root.clone().join(name);
    // the order's leading columns the table has (the rows are sorted by those)
    let sorting: Vec<SortingColumn> = sorted_by
        .iter()
        .map_while(|column| schema.index_of(column).ok())
        .map(|index| SortingColumn {
            column_idx: index as i32,
            descending: false,
            nulls_first: false,
        })
        .collect();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns((!sorting.is_empty()).then_some(sorting))
        .build();
    let writer = BufWriter::new(Arc::clone(store), path.clone());
    let mut writer = AsyncArrowWriter::try_new(writer, Arc::clone(schema), Some(properties))?;
    let mut stats = FileStats::new(schema);
    let mut batches = std::pin::pin!(batches);
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(Into::into)?;
        stats.add(&batch);
        writer.write(&batch).await?;
        failpoints::point("write:file_open").await;
    }
    writer.close().await?;
    failpoints::point("write:file_closed").await;
    let meta = store.head(&path).await?;
    Ok(Add {
        path: name.to_string(),
        partition_values: HashMap::new(),
        size: meta.size as i64,
        modification_time: meta.last_modified.timestamp_millis(),
        data_change: true,
        stats: Some(stats.to_json()),
        ..Default::default()
    })
}

/// The Delta statistics of a file's rows: the row count, each column's NULL
/// count, and the minimum and maximum of its integer columns.
pub(crate) struct FileStats {
    schema: SchemaRef,
    rows: usize,
    nulls: Vec<usize>,
    ranges: Vec<Option<(i64, i64)>>,
}

impl FileStats {
    fn new(schema: &SchemaRef) -> Self {
        let columns = schema.fields().len();
        FileStats {
            schema: Arc::clone(schema),
            rows: 0,
            nulls: vec![0; columns],
            ranges: vec![None; columns],
        }
    }

    fn add(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows();
        for (i, column) in batch.columns().iter().enumerate() {
            self.nulls[i] += column.null_count();
            if let Some((lo, hi)) = int_range(column) {
                self.ranges[i] = Some(match self.ranges[i] {
                    Some((l, h)) => (l.min(lo), h.max(hi)),
                    None => (lo, hi),
                });
            }
        }
    }

    /// The statistics of a file already written, from its footer's.
    pub(crate) fn from_statistics(schema: &SchemaRef, statistics: &Statistics) -> Self {
        let mut stats = FileStats::new(schema);
        stats.rows = statistics.num_rows.get_value().copied().unwrap_or(0);
        for (i, column) in statistics
            .column_statistics
            .iter()
            .enumerate()
            .take(stats.nulls.len())
        {
            stats.nulls[i] = column.null_count.get_value().copied().unwrap_or(0);
            let int = |value: Option<&ScalarValue>| match value {
                Some(ScalarValue::Int64(Some(v))) => Some(*v),
                Some(ScalarValue::Int32(Some(v))) => Some(i64::from(*v)),
                _ => None,
            };
            if let (Some(lo), Some(hi)) = (
                int(column.min_value.get_value()),
                int(column.max_value.get_value()),
            ) {
                stats.ranges[i] = Some((lo, hi));
            }
        }
        stats
    }

    /// The `[min, max]` of the integer column `name`, if known.
    pub(crate) fn range_of(&self, name: &str) -> Option<(i64, i64)> {
        self.ranges[self.schema.index_of(name).ok()?]
    }

    pub(crate) fn to_json(&self) -> String {
        let mut nulls = serde_json::Map::new();
        let mut mins = serde_json::Map::new();
        let mut maxs = serde_json::Map::new();
        for (i, field) in self.schema.fields().iter().enumerate() {
            nulls.insert(field.name().clone(), self.nulls[i].into());
            if let Some((lo, hi)) = self.ranges[i] {
                mins.insert(field.name().clone(), lo.into());
                maxs.insert(field.name().clone(), hi.into());
            }
        }
        serde_json::json!({
            "numRecords": self.rows,
            "minValues": mins,
            "maxValues": maxs,
            "nullCount": nulls,
        })
        .to_string()
    }
}

/// The smallest and largest value of an integer column, if it has any.
fn int_range(column: &ArrayRef) -> Option<(i64, i64)> {
    match column.data_type() {
        DataType::Int64 => {
            let values = column.as_primitive::<Int64Type>();
            Some((min(values)?, max(values)?))
        }
        DataType::Int32 => {
            let values = column.as_primitive::<Int32Type>();
            Some((i64::from(min(values)?), i64::from(max(values)?)))
        }
        _ => None,
    }
}

/// Creates the table: its columns, member ranges and the files `adds` (none
/// for a table a load creates) as version 0.
pub(crate) async fn create(
    log: DeltaTable,
    name: &str,
    schema: &SchemaRef,
    ranges: Option<&[i64]>,
    adds: Vec<Add>,
) -> Result<DeltaTable, deltalake_core::DeltaTableError> {
    let columns: StructType = schema.as_ref().try_into_kernel()?;
    let mut configuration: HashMap<String, Option<String>> = HashMap::new();
    if let Some(starts) = ranges {
        let text: Vec<String> = starts.iter().map(i64::to_string).collect();
        configuration.insert(MEMBER_RANGES_PROPERTY.into(), Some(text.join(",")));
    }
    CreateBuilder::new()
        .with_log_store(log.log_store())
        .with_table_name(name)
        .with_columns(columns.fields().cloned())
        .with_configuration(configuration)
        .with_actions(adds.into_iter().map(Action::Add))
        .with_raise_if_key_not_exists(false)
        .with_save_mode(SaveMode::ErrorIfExists)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    fn ids(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "member_id",
            DataType::Int64,
            false,
        )]));
        let column: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
        RecordBatch::try_new(schema, vec![column]).unwrap()
    }

    #[test]
    fn new_ranges_start_below_every_id_and_split_the_rows_evenly() {
        let values: Vec<i64> = (0..1000).map(|i| 5 + i / 10).collect();
        let starts = new_ranges(&[ids(&values)]).unwrap();
        assert_eq!(starts, vec![i64::MIN, 30, 55, 80]);
        // fewer members than ranges: one range per member
        assert_eq!(new_ranges(&[ids(&[7, 7, 9])]).unwrap(), vec![i64::MIN, 9]);
        assert_eq!(new_ranges(&[]).unwrap(), vec![i64::MIN]);
        assert_eq!(range_of(&starts, 29), 0);
        assert_eq!(range_of(&starts, 30), 1);
        assert_eq!(range_of(&starts, i64::MAX), 3);
    }

    #[test]
    fn stored_ranges_parse_only_when_ascending() {
        let text = "-9223372036854775808,13,32";
        assert_eq!(parse_ranges(text), Some(vec![i64::MIN, 13, 32]));
        assert_eq!(parse_ranges("1,1"), None);
        assert_eq!(parse_ranges("3,2"), None);
        assert_eq!(parse_ranges("1,x"), None);
        assert_eq!(parse_ranges(""), None);
    }
}
