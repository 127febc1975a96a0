//! The rows a load sets aside (`--bad-rows quarantine`), in bounded memory:
//! held a batch at a time, each full batch written to a spill file (Arrow
//! IPC, in the spill folder and under `engine.spill_limit`), and read back in
//! order when the load commits them to its rejects table. With spilling off
//! (`engine.spill_limit = "0"`) they stay in memory.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::error::DataFusionError;
use datafusion::execution::{DiskManager, SpillFile, SpillWriter};

use crate::error::EngineError;

/// Rejected rows held in memory before they go to the spill file.
const BATCH_ROWS: usize = 8192;

/// A source row that does not fit the table.
#[derive(Debug, Clone)]
pub(crate) struct Rejected {
    pub(crate) source: String,
    /// 1-based, in its source.
    pub(crate) row: u64,
    /// Its line, in a CSV or JSON lines file.
    pub(crate) line: Option<u64>,
    pub(crate) column: String,
    pub(crate) value: Option<String>,
    pub(crate) reason: String,
}

/// The columns of a rejects table.
pub(crate) fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("batch_id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("row", DataType::Int64, false),
        Field::new("line", DataType::Int64, true),
        Field::new("column", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

/// The spill file of rejected rows and its writer.
type Spill = (Arc<dyn SpillFile>, StreamWriter<Box<dyn SpillWriter>>);

/// The rejected rows of one load (batch `batch_id`), in the order set aside.
pub(crate) struct Rejects {
    batch_id: String,
    disk: Arc<DiskManager>,
    /// The rows not yet spilled.
    pending: Vec<Rejected>,
    /// Once a batch was spilled.
    spilled: Option<Spill>,
    count: u64,
}

impl Rejects {
    pub(crate) fn new(batch_id: &str, disk: Arc<DiskManager>) -> Self {
        Rejects {
            batch_id: batch_id.to_string(),
            disk,
            pending: Vec::new(),
            spilled: None,
            count: 0,
        }
    }

    /// How many rows were set aside.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn push(&mut self, row: Rejected) -> Result<(), EngineError> {
        self.pending.push(row);
        self.count += 1;
        if self.pending.len() >= BATCH_ROWS && self.disk.tmp_files_enabled() {
            self.spill().map_err(|e| {
                EngineError::Invalid(format!(
                    "cannot set {} rejected rows aside on disk: {e}; raise engine.spill_limit \
                     or fix the source",
                    self.count
                ))
            })?;
        }
        Ok(())
    }

    /// Writes the pending rows to the spill file.
    fn spill(&mut self) -> Result<(), EngineError> {
        let batch = self.take_pending().map_err(DataFusionError::from)?;
        let (_, writer) = match &mut self.spilled {
            Some(spilled) => spilled,
            None => {
                let file = self.disk.create_tmp_file("setting rejected rows aside")?;
                let writer = StreamWriter::try_new(file.open_writer()?, &rejects_schema())
                    .map_err(DataFusionError::from)?;
                self.spilled.insert((file, writer))
            }
        };
        writer.write(&batch).map_err(DataFusionError::from)?;
        Ok(())
    }

    /// The pending rows as a batch of the rejects table; none are left.
    fn take_pending(&mut self) -> Result<RecordBatch, ArrowError> {
        let rows = std::mem::take(&mut self.pending);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![self.batch_id.as_str(); rows.len()])),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.source.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.row as i64),
            )),
            Arc::new(Int64Array::from_iter(
                rows.iter().map(|r| r.line.map(|l| l as i64)),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.column.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.value.as_deref()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.reason.as_str()),
            )),
        ];
        RecordBatch::try_new(rejects_schema(), columns)
    }

    /// Every row set aside, a batch at a time (the spilled ones read back
    /// from disk as they are consumed).
    pub(crate) fn into_batches(
        mut self,
    ) -> Result<impl Iterator<Item = Result<RecordBatch, EngineError>> + Send, EngineError> {
        let last = self.take_pending().map_err(DataFusionError::from)?;
        let spilled = match self.spilled.take() {
            None => None,
            Some((file, mut writer)) => {
                writer.finish().map_err(DataFusionError::from)?;
                drop(writer);
                let Some(path) = file.path() else {
                    return Err(EngineError::Internal(
                        "the spill file of rejected rows has no path".into(),
                    ));
                };
                let open = File::open(path).map_err(|e| {
                    EngineError::Invalid(format!("cannot read rejected rows back: {e}"))
                })?;
                // the file lives while its rows are read
                let reader = StreamReader::try_new(BufReader::new(open), None)
                    .map_err(DataFusionError::from)?;
                Some(reader.map(move |batch| {
                    let _alive = &file;
                    batch.map_err(|e| EngineError::from(DataFusionError::from(e)))
                }))
            }
        };
        let last = (last.num_rows() > 0).then_some(Ok(last));
        Ok(spilled.into_iter().flatten().chain(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};

    fn rejected(row: u64) -> Rejected {
        Rejected {
            source: "wecom.csv".into(),
            row,
            line: Some(row + 1),
            column: "member_id".into(),
            value: Some(format!("m{row}")),
            reason: format!("'m{row}' is not a valid Int64"),
        }
    }

    /// The rows of `batches`, in order.
    fn rows(rejects: Rejects) -> Vec<i64> {
        let batches = rejects.into_batches().unwrap();
        let mut rows = Vec::new();
        for batch in batches {
            let batch = batch.unwrap();
            assert_eq!(batch.schema(), rejects_schema());
            let ids = batch.column(2).as_primitive::<Int64Type>();
            for (i, row) in ids.values().iter().enumerate() {
                assert_eq!(batch.column(0).as_string::<i32>().value(i), "b1");
                let value = batch.column(5).as_string::<i32>().value(i);
                assert_eq!(value, format!("m{row}"));
                rows.push(*row);
            }
        }
        rows
    }

    #[test]
    fn rejected_rows_beyond_a_batch_go_to_disk_and_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![dir.path().into()]))
            .build()
            .unwrap();
        let disk = Arc::new(disk);
        let mut rejects = Rejects::new("b1", Arc::clone(&disk));
        let n = 3 * BATCH_ROWS as u64 + 5;
        for row in 1..=n {
            rejects.push(rejected(row)).unwrap();
            assert!(
                rejects.pending.len() < BATCH_ROWS,
                "row {row} held in memory"
            );
        }
        assert_eq!(rejects.count(), n);
        assert!(disk.used_disk_space() > 0, "nothing spilled");
        assert_eq!(rows(rejects), (1..=n as i64).collect::<Vec<_>>());
        // the spill file is gone once read
        assert_eq!(disk.used_disk_space(), 0);
    }

    #[test]
    fn with_spilling_off_rejected_rows_stay_in_memory() {
        let disk = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Disabled)
            .build()
            .unwrap();
        let mut rejects = Rejects::new("b1", Arc::new(disk));
        let n = BATCH_ROWS as u64 + 1;
        for row in 1..=n {
            rejects.push(rejected(row)).unwrap();
        }
        assert_eq!(rejects.pending.len(), n as usize);
        assert_eq!(rows(rejects), (1..=n as i64).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_spill_folder_is_an_error_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![dir.path().into()]))
            .with_max_temp_directory_size(1000)
            .build()
            .unwrap();
        let mut rejects = Rejects::new("b1", Arc::new(disk));
        let error = (1..=BATCH_ROWS as u64)
            .map(|row| rejects.push(rejected(row)))
            .find_map(Result::err)
            .expect("a spill over the limit fails");
        let message = error.to_string();
        assert!(
            message.contains("cannot set 8192 rejected rows aside on disk")
                && message.contains("engine.spill_limit"),
            "{message}"
        );
    }
}
