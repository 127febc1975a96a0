//! Where and how a result is written: stdout or a file (written atomically),
//! as a text table, CSV, JSON or Parquet.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use indicatif::ProgressBar;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::cli::Format;
use crate::error::CliError;
use crate::render::CsvWriter;

/// An output file being written under a temporary name, moved into place when
/// complete; the temporary file is removed when this is dropped (on failure or
/// cancellation: after the move there is nothing left to remove).
#[derive(Debug)]
struct PendingFile {
    tmp: PathBuf,
    target: PathBuf,
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The destination of a query result.
pub(crate) struct Output {
    format: Format,
    sink: Box<dyn Write + Send>,
    file: Option<PendingFile>,
    progress: Option<ProgressBar>,
    rows: u64,
}

impl Output {
    /// Opens stdout, or a temporary file beside `path` (failing now if it cannot be written).
    pub(crate) fn open(path: Option<&Path>, format: Format) -> Result<Self, CliError> {
        let Some(target) = path else {
            return Ok(Output {
                format,
                sink: Box::new(BufWriter::new(io::stdout())),
                file: None,
                progress: None,
                rows: 0,
            });
        };
        if target.is_dir() {
            return Err(CliError::user(format!(
                "cannot write output file {}: it is a folder",
                target.display()
            )));
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // what a killed run left beside the target goes first
        let prefix = format!(".{name}.tmp-");
        audience_engine::remove_left_by_gone_processes(dir, &prefix);
        let tmp = dir.join(format!("{prefix}{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| {
            CliError::user(format!(
                "cannot write output file {}: {e}",
                target.display()
            ))
        })?;
        Ok(Output {
            format,
            sink: Box::new(BufWriter::new(file)),
            file: Some(PendingFile {
                tmp,
                target: target.to_path_buf(),
            }),
            progress: None,
            rows: 0,
        })
    }

    /// Counts the rows written on `bar` as they go.
    pub(crate) fn with_progress(mut self, bar: ProgressBar) -> Self {
        self.progress = Some(bar);
        self
    }

    /// Writes every batch of `stream` and returns the number of rows; on any
    /// failure a partial file is removed.
    pub(crate) async fn write_stream(
        mut self,
        stream: SendableRecordBatchStream,
    ) -> Result<u64, CliError> {
        let result = self.write_all(stream).await;
        let pending = self.file.take();
        drop(self.sink);
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
        match (result, pending) {
            (Err(e), None) if e.is_broken_pipe() => Ok(self.rows),
            (Err(e), _) => Err(e.into_cli()),
            (Ok(()), Some(p)) => std::fs::rename(&p.tmp, &p.target)
                .map(|()| self.rows)
                .map_err(|e| {
                    CliError::user(format!(
                        "cannot write output file {}: {e}",
                        p.target.display()
                    ))
                }),
            (Ok(()), None) => Ok(self.rows),
        }
    }

    async fn write_all(&mut self, mut stream: SendableRecordBatchStream) -> Result<(), WriteError> {
        let schema = stream.schema();
        match self.format {
            Format::Table => {
                let mut batches = Vec::new();
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    count(&mut self.rows, self.progress.as_ref(), batch.num_rows());
                    batches.push(batch);
                }
                let table =
                    arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)?;
                writeln!(self.sink, "{table}")?;
            }
            Format::Csv => {
                let mut csv = CsvWriter::new(&schema);
                csv.write_header(&mut self.sink)?;
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    csv.write_batch(&mut self.sink, &batch)?;
                    count(&mut self.rows, self.progress.as_ref(), batch.num_rows());
                }
            }
            Format::Json => {
                let mut json = arrow::json::ArrayWriter::new(&mut self.sink);
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    json.write(&batch)?;
                    count(&mut self.rows, self.progress.as_ref(), batch.num_rows());
                }
                json.finish()?;
                self.sink.write_all(b"\n")?;
            }
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                let mut writer = ArrowWriter::try_new(&mut self.sink, schema, Some(props))?;
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    writer.write(&batch)?;
                    count(&mut self.rows, self.progress.as_ref(), batch.num_rows());
                }
                writer.close()?;
            }
        }
        self.sink.flush()?;
        Ok(())
    }
}

/// Adds `n` rows to the written count and the progress bar.
fn count(rows: &mut u64, progress: Option<&ProgressBar>, n: usize) {
    *rows += n as u64;
    if let Some(bar) = progress {
        bar.inc(n as u64);
    }
}

/// A failure while producing or writing the result.
#[derive(Debug)]
enum WriteError {
    Query(datafusion::error::DataFusionError),
    Io(io::Error),
    Encode(String),
}

impl WriteError {
    fn is_broken_pipe(&self) -> bool {
        matches!(self, WriteError::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    fn into_cli(self) -> CliError {
        match self {
            WriteError::Query(e) => e.into(),
            WriteError::Io(e) => CliError::user(format!("cannot write the result: {e}")),
            WriteError::Encode(e) => CliError::internal(format!("cannot encode the result: {e}")),
        }
    }
}

impl From<datafusion::error::DataFusionError> for WriteError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        WriteError::Query(e)
    }
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

impl From<arrow::error::ArrowError> for WriteError {
    fn from(e: arrow::error::ArrowError) -> Self {
        match e {
            arrow::error::ArrowError::IoError(_, io) => WriteError::Io(io),
            other => WriteError::Encode(other.to_string()),
        }
    }
}

impl From<parquet::errors::ParquetError> for WriteError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        WriteError::Encode(e.to_string())
    }
}
