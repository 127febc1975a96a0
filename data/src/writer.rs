//! Splitting the members into ranges, running the ranges on worker threads,
//! and writing each range's tables as Parquet files.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::calendar::Calendar;
use crate::member::{Model, Rows, Scratch};
use crate::tables::{
    EVENTS_SCHEMA, IDENTITIES_SCHEMA, MEMBER_TAGS_SCHEMA, MEMBERS_SCHEMA, ORDERS_SCHEMA,
};
use crate::vocab::{INTEREST_TOPICS, SCORE_TAGS, cities};
use crate::{FileHook, GenConfig, GenProgress, GenSummary, TABLES};

/// Events per file the member ranges aim for.
const EVENTS_PER_FILE: u64 = 4_000_000;
/// Fewest files per table, so even tiny datasets have several member ranges.
const MIN_FILES: u64 = 4;
/// Rows buffered before a batch is handed to the Parquet writer.
const BATCH_ROWS: usize = 65_536;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// Rows per data page for scanned tables: Parquet's default limit (pages also
/// end at 1 MiB, checked every 1,024 rows).
const DEFAULT_PAGE_ROWS: usize = 20_000;

/// Rows per data page of `members`: a member-profile lookup (the dashboard
/// drill-down) decodes one page of each column, so pages stay small.
const MEMBER_PAGE_ROWS: usize = 1024;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The request itself is unusable.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Encoding Parquet failed.
    #[error("cannot write Parquet file {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
}

/// The inclusive member-id ranges, one per output file; a function of the dataset size only.
pub(crate) fn member_ranges(members: u64, events: u64) -> Vec<(u64, u64)> {
    let files = events
        .div_ceil(EVENTS_PER_FILE)
        .max(MIN_FILES)
        .min(members.max(1));
    let chunk = members.div_ceil(files).max(1);
    (0..files)
        .map(|i| (1 + i * chunk, ((i + 1) * chunk).min(members)))
        .filter(|(lo, hi)| lo <= hi)
        .collect()
}

pub(crate) fn generate(config: &GenConfig, progress: &GenProgress) -> Result<GenSummary, GenError> {
    if config.members == 0 {
        return Err(GenError::Invalid("--members must be at least 1".into()));
    }
    if config.members >= 1 << 32 {
        return Err(GenError::Invalid(format!(
            "--members {} is too many: member ids must stay below 2^32 so audiences fit in roaring bitmaps",
            config.members
        )));
    }
    let ranges = member_ranges(config.members, config.events);
    for table in TABLES {
        let dir = config.out.join(table);
        fs::create_dir_all(&dir).map_err(|source| GenError::Io {
            path: dir.clone(),
            source,
        })?;
        remove_old_parts(&dir)?;
    }
    let model = Model::new(
        config.seed,
        Calendar::new(config.end_date),
        config.members,
        config.events,
    );
    let context = FileContext {
        model: &model,
        out: &config.out,
        progress,
        cities: cities(),
        tag_names: tag_names(),
        on_file: config.on_file.as_ref(),
    };
    let next = AtomicUsize::new(0);
    let total = Mutex::new(GenSummary {
        files_per_table: ranges.len(),
        ..GenSummary::default()
    });
    let failure: Mutex<Option<GenError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..config.threads.clamp(1, ranges.len()) {
            scope.spawn(|| {
                let mut scratch = Scratch::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&range) = ranges.get(i) else { break };
                    if lock(&failure).is_some() {
                        break;
                    }
                    match context.write_range(i, range, &mut scratch) {
                        Ok(part) => {
                            let mut t = lock(&total);
                            for (sum, rows) in t.rows.iter_mut().zip(part.rows) {
                                *sum += rows;
                            }
                            t.bytes += part.bytes;
                        }
                        Err(e) => {
                            lock(&failure).get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = lock(&failure).take() {
        return Err(e);
    }
    Ok(lock(&total).clone())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Generated tag names: `interest_001..` then `score_01..`.
fn tag_names() -> Vec<String> {
    (1..=INTEREST_TOPICS)
        .map(|i| format!("interest_{i:03}"))
        .chain((1..=SCORE_TAGS).map(|i| format!("score_{i:02}")))
        .collect()
}

/// Removes `part-*.parquet` files a previous run left, so a smaller dataset does not mix with them.
fn remove_old_parts(dir: &Path) -> Result<(), GenError> {
    let io = |source| GenError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("part-") && name.ends_with(".parquet") {
            fs::remove_file(&path).map_err(|source| GenError::Io {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Everything a worker needs to write one member range.
struct FileContext<'a> {
    model: &'a Model,
    out: &'a Path,
    progress: &'a GenProgress,
    cities: Vec<(String, &'static str)>,
    tag_names: Vec<String>,
    on_file: Option<&'a FileHook>,
}

/// A table's Parquet file being written: to a hidden temporary name, renamed when complete.
struct PartFile {
    writer: ArrowWriter<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    rows: u64,
}

impl PartFile {
    fn create(
        dir: &Path,
        index: usize,
        schema: &SchemaRef,
        sorted_by: &[usize],
        page_rows: usize,
    ) -> Result<Self, GenError> {
        let path = dir.join(format!("part-{index:05}.parquet"));
        let tmp = dir.join(format!(".part-{index:05}.parquet.tmp"));
        let file = File::create(&tmp).map_err(|source| GenError::Io {
            path: tmp.clone(),
            source,
        })?;
        let sorting = sorted_by
            .iter()
            .map(|&i| SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: false,
            })
            .collect();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_data_page_row_count_limit(page_rows)
            .set_sorting_columns(Some(sorting));
        // Timestamps rise within each member's history: deltas pack into far
        // fewer bits than a dictionary that overflows into plain 8-byte values.
        let props = ["ts", "register_ts"]
            .into_iter()
            .fold(props, |props, column| {
                let path = ColumnPath::from(column);
                props
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED)
            })
            .build();
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            schema.clone(),
            Some(props),
        )
        .map_err(|source| GenError::Parquet {
            path: tmp.clone(),
            source,
        })?;
        Ok(PartFile {
            writer,
            tmp,
            path,
            rows: 0,
        })
    }

    fn write(&mut self, batch: RecordBatch) -> Result<(), GenError> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(&batch)
            .map_err(|source| GenError::Parquet {
                path: self.tmp.clone(),
                source,
            })
    }

    /// Finishes the file and moves it to its final name; returns its size.
    fn finish(self, hook: Option<&FileHook>) -> Result<u64, GenError> {
        let PartFile {
            writer, tmp, path, ..
        } = self;
        let inner = writer.into_inner().map_err(|source| GenError::Parquet {
            path: tmp.clone(),
            source,
        })?;
        let file = inner.into_inner().map_err(|e| GenError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(|source| GenError::Io {
            path: tmp.clone(),
            source,
        })?;
        let bytes = file
            .metadata()
            .map_err(|source| GenError::Io {
                path: tmp.clone(),
                source,
            })?
            .len();
        fs::rename(&tmp, &path).map_err(|source| GenError::Io {
            path: path.clone(),
            source,
        })?;
        if let Some(hook) = hook {
            (hook.0)(&path).map_err(|e| GenError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?;
        }
        Ok(bytes)
    }
}

impl FileContext<'_> {
    fn write_range(
        &self,
        index: usize,
        (lo, hi): (u64, u64),
        scratch: &mut Scratch,
    ) -> Result<GenSummary, GenError> {
        let dir = |t: &str| self.out.join(t);
        // member_id and ts are the first columns of events; member_id leads the others but orders.
        let page = DEFAULT_PAGE_ROWS;
        let mut members = PartFile::create(
            &dir("members"),
            index,
            &MEMBERS_SCHEMA,
            &[0],
            MEMBER_PAGE_ROWS,
        )?;
        let mut events = PartFile::create(&dir("events"), index, &EVENTS_SCHEMA, &[0, 1], page)?;
        let mut orders = PartFile::create(&dir("orders"), index, &ORDERS_SCHEMA, &[1, 2], page)?;
        let mut tags =
            PartFile::create(&dir("member_tags"), index, &MEMBER_TAGS_SCHEMA, &[0], page)?;
        let mut ids = PartFile::create(&dir("identities"), index, &IDENTITIES_SCHEMA, &[], page)?;
        let mut rows = Rows::default();
        let mut reported = 0;
        for id in lo..=hi {
            self.model.simulate(id, &mut rows, scratch);
            let last = id == hi;
            if rows.events.len() >= BATCH_ROWS || last {
                let n = rows.events.len() as u64;
                events.write(rows.events.take_batch())?;
                self.progress.events.fetch_add(n, Ordering::Relaxed);
                self.progress
                    .members
                    .fetch_add(id + 1 - lo - reported, Ordering::Relaxed);
                reported = id + 1 - lo;
            }
            if rows.orders.len() >= BATCH_ROWS || last {
                orders.write(rows.orders.take_batch())?;
            }
            if rows.tags.len() >= BATCH_ROWS || last {
                tags.write(rows.tags.take_batch(&self.tag_names))?;
            }
            if rows.identities.len() >= BATCH_ROWS || last {
                ids.write(rows.identities.take_batch())?;
            }
            if rows.members.len() >= BATCH_ROWS || last {
                members.write(rows.members.take_batch(&self.cities))?;
            }
        }
        let mut summary = GenSummary::default();
        for (i, part) in [members, events, orders, tags, ids].into_iter().enumerate() {
            summary.rows[i] = part.rows;
            summary.bytes += part.finish(self.on_file)?;
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_member_once() {
        for (members, events) in [
            (1, 10),
            (7, 100),
            (1_000, 100_000),
            (100_000, 10_000_000),
            (1_000_001, 100_000_000),
        ] {
            let ranges = member_ranges(members, events);
            assert_eq!(ranges[0].0, 1);
            assert_eq!(ranges.last().unwrap().1, members);
            for w in ranges.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
        assert_eq!(member_ranges(1_000, 100_000).len(), 4);
        assert_eq!(member_ranges(1_000_000, 100_000_000).len(), 25);
    }
}
