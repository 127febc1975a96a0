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

/// Member ids sampled evenly from a new table's rows (every `stride`-th
/// id, at most `2 × SAMPLE_SIZE` kept), from which its member ranges are
/// chosen: bounded memory however many rows are loaded.
#[derive(Debug)]
pub(crate) struct MemberSample {
    ids: Vec<i64>,
    stride: u64,
    /// Ids seen so far.
    rows: u64,
    /// The position of the next id kept.
    next: u64,
}

/// Ids a [`MemberSample`] keeps at least (when there are that many rows).
const SAMPLE_SIZE: usize = 1 << 16;

impl Default for MemberSample {
    fn default() -> Self {
        MemberSample {
            ids: Vec::new(),
            stride: 1,
            rows: 0,
            next: 0,
        }
    }
}

impl MemberSample {
    /// Samples the `member_id` column of `batch`.
    pub(crate) fn add(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let column = batch
            .column_by_name("member_id")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| EngineError::Internal("member_id is not a BIGINT column".into()))?;
        for id in column.iter().flatten() {
            if self.rows == self.next {
                self.ids.push(id);
                self.next += self.stride;
                if self.ids.len() == 2 * SAMPLE_SIZE {
                    // keep the ids at multiples of twice the stride
                    let kept: Vec<i64> = self.ids.iter().step_by(2).copied().collect();
                    self.ids = kept;
                    self.stride *= 2;
                    self.next = (self.rows + 1).next_multiple_of(self.stride);
                }
            }
            self.rows += 1;
        }
        Ok(())
    }

    /// The member ranges of a new table with these rows: about
    /// [`ROWS_PER_RANGE`] rows each, at least [`MIN_RANGES`] when there are
    /// members enough; the first starts below every id.
    pub(crate) fn ranges(mut self) -> Vec<i64> {
        self.ids.sort_unstable();
        let ids = &self.ids;
        let ranges = (self.rows.div_ceil(ROWS_PER_RANGE) as usize).max(MIN_RANGES);
        let mut starts: Vec<i64> = (0..ranges)
            .filter_map(|r| ids.get(r * ids.len() / ranges).copied())
            .collect();
        starts.dedup();
        if starts.is_empty() {
            starts.push(i64::MIN);
        }
        starts[0] = i64::MIN;
        starts
    }
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
/// rows (one file in all without ranges), streamed: one file is open at a
/// time, holding at most a row group. Returns the files' log entries.
pub(crate) async fn write_ranges<E: Into<WriteError>>(
    store: &Arc<dyn ObjectStore>,
    root: &ObjectPath,
    schema: &SchemaRef,
    sorted_by: &[String],
    sorted: impl Stream<Item = Result<RecordBatch, E>>,
    ranges: Option<&[i64]>,
    tag: &str,
) -> Result<Vec<Add>, WriteError> {
    let starts = ranges.unwrap_or(&[i64::MIN]);
    let mut adds = Vec::new();
    let mut open: Option<(usize, DataFileWriter)> = None;
    let mut sorted = std::pin::pin!(sorted);
    while let Some(batch) = sorted.next().await {
        let batch = batch.map_err(Into::into)?;
        let ids = match ranges.and_then(|_| batch.column_by_name("member_id")) {
            None => None,
            Some(ids) => Some(
                ids.as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or("member_id is not a BIGINT column")?,
            ),
        };
        let mut from = 0;
        while from < batch.num_rows() {
            let (range, end) = match ids {
                None => (0, batch.num_rows()),
                Some(ids) => {
                    let range = range_of(starts, ids.value(from));
                    let end = starts.get(range + 1).map_or(batch.num_rows(), |next| {
                        from + ids.values()[from..].partition_point(|id| id < next)
                    });
                    (range, end)
                }
            };
            match &mut open {
                Some((current, file)) if *current == range => {
                    file.write(&batch.slice(from, end - from)).await?
                }
                Some((current, _)) if *current > range => {
                    return Err("rows to write are not sorted by member_id".into());
                }
                _ => {
                    if let Some((_, file)) = open.take() {
                        adds.push(file.finish().await?);
                    }
                    let name = file_name(range, tag);
                    let mut file = DataFileWriter::open(store, root, name, schema, sorted_by)?;
                    file.write(&batch.slice(from, end - from)).await?;
                    open = Some((range, file));
                }
            }
            from = end;
        }
    }
    if let Some((_, file)) = open {
        adds.push(file.finish().await?);
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
    let mut file = DataFileWriter::open(store, root, name.to_string(), schema, sorted_by)?;
    let mut batches = std::pin::pin!(batches);
    while let Some(batch) = batches.next().await {
        file.write(&batch.map_err(Into::into)?).await?;
    }
    file.finish().await
}

/// A data file being written: its rows so far are in its statistics, the
/// last row group's still in memory.
struct DataFileWriter {
    store: Arc<dyn ObjectStore>,
    name: String,
    path: ObjectPath,
    writer: AsyncArrowWriter<BufWriter>,
    stats: FileStats,
}

impl DataFileWriter {
    fn open(
        store: &Arc<dyn ObjectStore>,
        root: &ObjectPath,
        name: String,
        schema: &SchemaRef,
        sorted_by: &[String],
    ) -> Result<Self, WriteError> {
        let path = root.clone().join(name.as_str());
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
        let writer = AsyncArrowWriter::try_new(writer, Arc::clone(schema), Some(properties))?;
        Ok(DataFileWriter {
            store: Arc::clone(store),
            name,
            path,
            writer,
            stats: FileStats::new(schema),
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        self.stats.add(batch);
        self.writer.write(batch).await?;
        failpoints::point("write:file_open").await;
        Ok(())
    }

    /// Closes the file and returns its log entry.
    async fn finish(self) -> Result<Add, WriteError> {
        self.writer.close().await?;
        failpoints::point("write:file_closed").await;
        let meta = self.store.head(&self.path).await?;
        Ok(Add {
            path: self.name,
            partition_values: HashMap::new(),
            size: meta.size as i64,
            modification_time: meta.last_modified.timestamp_millis(),
            data_change: true,
            stats: Some(self.stats.to_json()),
            ..Default::default()
        })
    }
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

    fn ranges_of(batches: &[RecordBatch]) -> Vec<i64> {
        let mut sample = MemberSample::default();
        for batch in batches {
            sample.add(batch).unwrap();
        }
        sample.ranges()
    }

    #[test]
    fn new_ranges_start_below_every_id_and_split_the_rows_evenly() {
        let values: Vec<i64> = (0..1000).map(|i| 5 + i / 10).collect();
        let starts = ranges_of(&[ids(&values)]);
        assert_eq!(starts, vec![i64::MIN, 30, 55, 80]);
        // fewer members than ranges: one range per member
        assert_eq!(ranges_of(&[ids(&[7, 7, 9])]), vec![i64::MIN, 9]);
        assert_eq!(ranges_of(&[]), vec![i64::MIN]);
        assert_eq!(range_of(&starts, 29), 0);
        assert_eq!(range_of(&starts, 30), 1);
        assert_eq!(range_of(&starts, i64::MAX), 3);
    }

    #[test]
    fn a_sample_of_many_rows_stays_bounded_and_evenly_spaced() {
        // 5 ranges' worth of rows, each member with 7 rows
        let rows = 5 * ROWS_PER_RANGE as i64;
        let mut sample = MemberSample::default();
        let mut id = 0;
        while id < rows {
            let end = (id + 100_003).min(rows);
            sample
                .add(&ids(&(id..end).map(|i| i / 7).collect::<Vec<_>>()))
                .unwrap();
            id = end;
        }
        assert!(sample.ids.len() >= SAMPLE_SIZE && sample.ids.len() < 2 * SAMPLE_SIZE);
        assert_eq!(sample.rows, rows as u64);
        // kept: the ids at every stride-th row
        let stride = sample.stride as i64;
        assert!(
            sample
                .ids
                .iter()
                .enumerate()
                .all(|(i, id)| *id == i as i64 * stride / 7)
        );
        let starts = sample.ranges();
        assert_eq!(starts.len(), 5);
        let members = rows / 7;
        for (r, start) in starts.iter().enumerate().skip(1) {
            let even = r as i64 * members / 5;
            assert!(
                (start - even).abs() <= stride,
                "range {r} starts at {start}, not {even}"
            );
        }
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
