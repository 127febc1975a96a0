//! Loading a channel's files (CSV, JSON lines, Parquet) or a query's result
//! into a Delta table, in one atomic commit: the rows are conformed to the
//! table's columns (by name, lossless casts), sorted by the table's order, cut
//! into its member ranges and written as one file per range; the commit
//! records the batch, so loading the same batch again changes nothing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionConfig;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::col;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{CsvReadOptions, DataFrame, JsonReadOptions, SessionContext};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::catalog::dataset_sort_order;
use crate::conform::{BadColumn, conform};
use crate::delta_tables::{
    CommitBase, delta_error, delta_table, is_delta_table, table_root, table_store,
    with_stored_types,
};
use crate::error::EngineError;
use crate::failpoints;
use crate::rejects::{Rejected, Rejects, rejects_schema};
use crate::storage::Location;
use crate::table_writes::{
    MemberSample, WriteError, create, has_member_ranges, hex, stored_ranges, write_ranges,
};

/// The application id prefix of the batch transactions in the log.
const BATCH_APP_ID: &str = "audience-load:";

/// The format of a load's source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// Parquet files.
    Parquet,
    /// CSV with a header line.
    Csv,
    /// JSON lines (one object per line).
    Json,
}

impl SourceFormat {
    /// The format a file's name says, if any.
    fn of_file(name: &str) -> Option<Self> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "parquet" => Some(SourceFormat::Parquet),
            "csv" => Some(SourceFormat::Csv),
            "json" | "ndjson" | "jsonl" => Some(SourceFormat::Json),
            _ => None,
        }
    }

    /// The number of the line holding row `row` (0-based) of a file, where
    /// lines mean something.
    fn line(self, row: u64) -> Option<u64> {
        match self {
            SourceFormat::Csv => Some(row + 2),
            SourceFormat::Json => Some(row + 1),
            SourceFormat::Parquet => None,
        }
    }
}

/// What to load, and where.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// The table's name (in messages).
    pub table: String,
    /// The table's folder or prefix.
    pub target: Location,
    /// Source files, folders or globs (local or `s3://`).
    pub sources: Vec<String>,
    /// The sources' format; by default each file's extension.
    pub format: Option<SourceFormat>,
    /// A query whose result is loaded instead of files.
    pub sql: Option<String>,
    /// The batch's id; by default a hash of the sources (or the query's text).
    pub batch_id: Option<String>,
    /// The columns of the table when the load creates it, if known.
    pub schema: Option<SchemaRef>,
    /// What to do with rows that do not fit the table.
    pub bad_rows: BadRows,
}

/// What a load does with a source row that does not fit the table (a value
/// that cannot be cast, no value where one is required).
#[derive(Debug, Clone, PartialEq)]
pub enum BadRows {
    /// Load nothing, naming the first such row.
    Reject,
    /// Load the other rows, and these — with their source, row, line, column,
    /// value and reason — into the Delta table at this location.
    Quarantine(Location),
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    /// The batch's id.
    pub batch_id: String,
    /// Rows committed (0 when the batch was loaded before).
    pub rows: u64,
    /// Source files read.
    pub files_read: usize,
    /// Data files committed.
    pub files_written: usize,
    /// The table's version after the load.
    pub version: u64,
    /// The batch had been loaded already: nothing was written.
    pub already_loaded: bool,
    /// Rows set aside by [`BadRows::Quarantine`].
    pub rejected: u64,
    /// Bytes the sort spilled to disk (rows beyond the memory limit).
    pub spilled_bytes: u64,
}

/// Progress of a running load, for a progress bar.
#[derive(Debug, Default)]
pub struct LoadProgress {
    /// Rows read from the sources so far.
    pub rows: AtomicU64,
    /// Bytes of source files read so far.
    pub bytes: AtomicU64,
}

/// A source file.
struct SourceFile {
    url: String,
    meta: ObjectMeta,
    store: Arc<dyn ObjectStore>,
    format: SourceFormat,
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Loads `request` into its table; see the module's documentation.
/// `query` is the planned `request.sql`, if given.
pub(crate) async fn load(
    ctx: &SessionContext,
    request: &LoadRequest,
    query: Option<DataFrame>,
    progress: &Arc<LoadProgress>,
) -> Result<LoadSummary, EngineError> {
    let target = &request.target;
    let sort_order: Vec<String> = dataset_sort_order(&request.table)
        .iter()
        .map(|c| c.to_string())
        .collect();
    let mut log = delta_table(ctx, target)?;
    let exists = is_delta_table(ctx, target).await?;
    if exists {
        log.load().await.map_err(|e| delta_error(target, e))?;
    }
    let files = match &request.sql {
        Some(_) => Vec::new(),
        None => source_files(ctx, request).await?,
    };
    let batch_id = match (&request.batch_id, &request.sql) {
        (Some(id), _) => id.clone(),
        (None, Some(sql)) => hex(&Sha256::digest(sql.as_bytes())),
        (None, None) => batch_hash(&files).await?,
    };
    let app_id = format!("{BATCH_APP_ID}{batch_id}");
    if exists {
        let state = log.snapshot().map_err(|e| delta_error(target, e))?;
        let loaded = state
            .transaction_version(log.log_store().as_ref(), &app_id)
            .await
            .map_err(|e| delta_error(target, e))?;
        if loaded.is_some() {
            return Ok(LoadSummary {
                batch_id,
                rows: 0,
                files_read: 0,
                files_written: 0,
                version: state.version(),
                already_loaded: true,
                rejected: 0,
                spilled_bytes: 0,
            });
        }
    }
    // an existing table's columns, in the known types when they agree
    // (dictionary-encoded text), so every load writes its files alike
    let table_schema: Option<SchemaRef> = if exists {
        let state = log.snapshot().map_err(|e| delta_error(target, e))?;
        let logical = state.snapshot().arrow_schema();
        let known = request
            .schema
            .as_ref()
            .and_then(|known| with_stored_types(&logical, known));
        Some(known.unwrap_or(logical))
    } else {
        request.schema.clone()
    };
    let reader = reading_context(ctx);
    let inputs: Vec<Input> = match query {
        Some(df) => vec![Input::Query(df)],
        None => files.into_iter().map(Input::File).collect(),
    };
    let files_read = inputs
        .iter()
        .filter(|i| matches!(i, Input::File(_)))
        .count();
    // the table's columns; a new one of unknown columns takes the first source's
    let schema = match (table_schema, inputs.first()) {
        (Some(schema), _) => schema,
        (None, Some(first)) => Arc::new(first.open(&reader).await?.df.schema().as_arrow().clone()),
        (None, None) => return Err(EngineError::Invalid("no files to load".into())),
    };
    let ranged = has_member_ranges(&schema, &sort_order);
    let read = Arc::new(Mutex::new(ReadState {
        rejected: matches!(request.bad_rows, BadRows::Quarantine(_))
            .then(|| Rejects::new(&batch_id, Arc::clone(&ctx.runtime_env().disk_manager))),
        sample: (ranged && !exists).then(MemberSample::default),
    }));
    let rows = read_rows(
        reader,
        inputs,
        Arc::clone(&schema),
        Arc::clone(&read),
        Arc::clone(progress),
    );
    let (plan, mut sorted) = sort(ctx, rows, &sort_order).await?;
    // a sort reads all its input before its first row: from here the rows
    // are read and their member ids sampled
    let first = sorted.next().await.transpose().map_err(read_error)?;
    failpoints::point("load:read").await;
    // A new table is created empty first (its columns and member ranges), so
    // its folder never holds data files outside a committed version.
    let log = match exists {
        true => log,
        false => {
            let sample = lock(&read).sample.take();
            let ranges = sample.map(MemberSample::ranges);
            create(log, &request.table, &schema, ranges.as_deref(), Vec::new())
                .await
                .map_err(|e| delta_error(target, e))?
        }
    };
    failpoints::point("load:created").await;
    let ranges = stored_ranges(&log, target)?;
    let (store, _) = table_store(ctx, target)?;
    let root = table_root(ctx, target)?;
    let rows = AtomicU64::new(0);
    let sorted = futures::stream::iter(first.map(Ok))
        .chain(sorted)
        .inspect_ok(|batch| {
            rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        })
        .map_err(|e| WriteError::from(Box::new(read_error(e))));
    let written = write_ranges(
        &store,
        &root,
        &schema,
        &sort_order,
        sorted,
        ranges.as_deref(),
        &batch_id,
    )
    .await
    .map_err(|e| write_error(target, e))?;
    failpoints::point("load:files_written").await;
    let rejected = lock(&read).rejected.take();
    let rejected_count = rejected.as_ref().map_or(0, Rejects::count);
    if let BadRows::Quarantine(rejects) = &request.bad_rows
        && let Some(rejected) = rejected.filter(|r| r.count() > 0)
    {
        quarantine_rows(ctx, request, rejects, &batch_id, &app_id, rejected).await?;
        failpoints::point("load:quarantined").await;
    }
    let files_written = written.len();
    let version = commit_batch(&log, target, &app_id, written).await?;
    failpoints::point("load:committed").await;
    Ok(LoadSummary {
        batch_id,
        rows: rows.into_inner(),
        files_read,
        files_written,
        version,
        already_loaded: false,
        rejected: rejected_count,
        spilled_bytes: spilled_bytes(plan.as_ref()),
    })
}

/// Commits the rows `rejected` (of the batch `batch_id`) to the rejects table at
/// `target`, creating it on first use, once per batch: a retry of a load
/// that crashed after this commit records them only once.
async fn quarantine_rows(
    ctx: &SessionContext,
    request: &LoadRequest,
    target: &Location,
    batch_id: &str,
    app_id: &str,
    rejected: Rejects,
) -> Result<(), EngineError> {
    let mut log = delta_table(ctx, target)?;
    let schema = rejects_schema();
    if is_delta_table(ctx, target).await? {
        log.load().await.map_err(|e| delta_error(target, e))?;
        let state = log.snapshot().map_err(|e| delta_error(target, e))?;
        let recorded = state
            .transaction_version(log.log_store().as_ref(), app_id)
            .await
            .map_err(|e| delta_error(target, e))?;
        if recorded.is_some() {
            return Ok(());
        }
    } else {
        let name = format!("{}_rejects", request.table);
        log = create(log, &name, &schema, None, Vec::new())
            .await
            .map_err(|e| delta_error(target, e))?;
    }
    let (store, _) = table_store(ctx, target)?;
    let root = table_root(ctx, target)?;
    let batches =
        futures::stream::iter(rejected.into_batches()?).map_err(|e| WriteError::from(Box::new(e)));
    let written = write_ranges(&store, &root, &schema, &[], batches, None, batch_id)
        .await
        .map_err(|e| write_error(target, e))?;
    commit_batch(&log, target, app_id, written).await?;
    Ok(())
}

/// A failed write of rows to `target`: the error of the rows themselves
/// (an input's, carried through the stream) when it is one, else the write's.
fn write_error(target: &Location, e: WriteError) -> EngineError {
    match e.downcast::<EngineError>() {
        Ok(read) => *read,
        Err(e) => EngineError::Invalid(format!("cannot write to {target}: {e}")),
    }
}

/// Commits the files `written` to the table `log` at `target` as one append
/// recording the batch `app_id`; returns the new version.
async fn commit_batch(
    log: &DeltaTable,
    target: &Location,
    app_id: &str,
    written: Vec<Add>,
) -> Result<u64, EngineError> {
    let adds: Vec<Action> = written.into_iter().map(Action::Add).collect();
    let properties =
        CommitProperties::default().with_application_transaction(Transaction::new(app_id, 1));
    let state = log.snapshot().map_err(|e| delta_error(target, e))?;
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    Ok(CommitBuilder::from(properties)
        .with_actions(adds)
        .build(Some(&CommitBase::new(state)), log.log_store(), operation)
        .await
        .map_err(|e| delta_error(target, e))?
        .version())
}

/// A session for reading the sources in file order: one partition per file,
/// so a row's position in its file is known.
fn reading_context(ctx: &SessionContext) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(1)
        .with_repartition_file_scans(false);
    SessionContext::new_with_config_rt(config, ctx.runtime_env())
}

/// Every file the request's sources name, in path order.
async fn source_files(
    ctx: &SessionContext,
    request: &LoadRequest,
) -> Result<Vec<SourceFile>, EngineError> {
    if request.sources.is_empty() {
        return Err(EngineError::Invalid(
            "name the files to load (files, folders or globs), or give --sql".into(),
        ));
    }
    let state = ctx.state();
    let mut files = Vec::new();
    for source in &request.sources {
        let url = ListingTableUrl::parse(source)
            .map_err(|e| EngineError::Invalid(format!("source {source}: {e}")))?;
        let store = state.runtime_env().object_store(url.object_store())?;
        let found: Vec<ObjectMeta> = url
            .list_all_files(&state, store.as_ref(), "")
            .await
            .map_err(|e| EngineError::Invalid(format!("source {source}: {e}")))?
            .try_collect()
            .await
            .map_err(|e| EngineError::Invalid(format!("source {source}: {e}")))?;
        let found: Vec<ObjectMeta> = found
            .into_iter()
            .filter(|m| m.location.filename().is_some_and(|n| !n.starts_with('.')))
            .collect();
        if found.is_empty() {
            return Err(EngineError::NotFound(format!(
                "source {source}: no files found"
            )));
        }
        for meta in found {
            // a local file by its path, an object by its URL
            let url = match url.object_store().as_str() {
                "file:///" => format!("/{}", meta.location),
                store => format!("{}/{}", store.trim_end_matches('/'), meta.location),
            };
            let name = meta.location.filename().unwrap_or_default().to_string();
            let Some(format) = request.format.or_else(|| SourceFormat::of_file(&name)) else {
                return Err(EngineError::Invalid(format!(
                    "{url}: cannot tell its format from its name; give --format parquet|csv|json"
                )));
            };
            files.push(SourceFile {
                url,
                meta,
                store: Arc::clone(&store),
                format,
            });
        }
    }
    files.sort_by(|a, b| a.url.cmp(&b.url));
    files.dedup_by(|a, b| a.url == b.url);
    Ok(files)
}

/// The batch id of `files`: a hash of their names, sizes and contents.
async fn batch_hash(files: &[SourceFile]) -> Result<String, EngineError> {
    let mut hash = Sha256::new();
    for file in files {
        let name = file.meta.location.filename().unwrap_or_default();
        hash.update(name.as_bytes());
        hash.update(file.meta.size.to_le_bytes());
        let mut content = file
            .store
            .get(&file.meta.location)
            .await
            .map_err(|e| EngineError::Invalid(format!("cannot read {}: {e}", file.url)))?
            .into_stream();
        while let Some(chunk) = content.next().await {
            let chunk = chunk
                .map_err(|e| EngineError::Invalid(format!("cannot read {}: {e}", file.url)))?;
            hash.update(&chunk);
        }
    }
    Ok(hex(&hash.finalize()))
}

/// What a load reads: its source files, or its query's result.
enum Input {
    File(SourceFile),
    Query(DataFrame),
}

/// An input opened for reading.
struct Opened {
    df: DataFrame,
    /// The input's name in messages.
    name: String,
    format: Option<SourceFormat>,
    /// The file's size in bytes.
    bytes: u64,
}

impl Input {
    async fn open(&self, reader: &SessionContext) -> Result<Opened, EngineError> {
        Ok(match self {
            Input::File(file) => Opened {
                df: read_file(reader, file).await?,
                name: file.url.clone(),
                format: Some(file.format),
                bytes: file.meta.size,
            },
            Input::Query(df) => Opened {
                df: df.clone(),
                name: "the query".into(),
                format: None,
                bytes: 0,
            },
        })
    }
}

/// What reading a load's rows found besides them.
struct ReadState {
    /// Rows set aside (with `--bad-rows quarantine`).
    rejected: Option<Rejects>,
    /// The member ids of a new table with member ranges.
    sample: Option<MemberSample>,
}

fn lock(state: &Mutex<ReadState>) -> std::sync::MutexGuard<'_, ReadState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The rows of every input in turn, conformed to `schema`, as a stream (an
/// error in it is the [`EngineError`] naming the input, row and column).
fn read_rows(
    reader: SessionContext,
    inputs: Vec<Input>,
    schema: SchemaRef,
    state: Arc<Mutex<ReadState>>,
    progress: Arc<LoadProgress>,
) -> SendableRecordBatchStream {
    let table = Arc::clone(&schema);
    let rows = futures::stream::iter(inputs)
        .then(move |input| {
            let (reader, schema) = (reader.clone(), Arc::clone(&table));
            let (state, progress) = (Arc::clone(&state), Arc::clone(&progress));
            async move {
                let opened = input.open(&reader).await?;
                conformed_rows(opened, schema, state, progress).await
            }
        })
        .map_err(as_stream_error)
        .try_flatten();
    Box::pin(RecordBatchStreamAdapter::new(schema, rows))
}

/// The input's rows conformed to `schema`: columns matched by name, values
/// cast losslessly. A row that does not fit is set aside with `--bad-rows
/// quarantine` (the state's `rejected`), else an error naming the input,
/// line and column.
async fn conformed_rows(
    input: Opened,
    schema: SchemaRef,
    state: Arc<Mutex<ReadState>>,
    progress: Arc<LoadProgress>,
) -> Result<impl Stream<Item = Result<RecordBatch, DataFusionError>>, EngineError> {
    let Opened {
        df,
        name,
        format,
        bytes,
    } = input;
    let source_schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let bad_column = {
        let name = name.clone();
        move |bad: BadColumn| {
            EngineError::Invalid(format!(
                "{name}: column {}: {}; nothing was loaded",
                bad.column, bad.reason
            ))
        }
    };
    // the columns first: a source without a required column is an error
    // even when it has no rows
    conform(&RecordBatch::new_empty(Arc::clone(&source_schema)), &schema).map_err(&bad_column)?;
    let batches = df
        .execute_stream()
        .await
        .map_err(|e| EngineError::Invalid(format!("{name}: {}", e.find_root())))?;
    let mut row = 0u64;
    let read_progress = Arc::clone(&progress);
    let rows = batches.map(move |batch| {
        let batch =
            batch.map_err(|e| EngineError::Invalid(format!("{name}: {}", e.find_root())))?;
        let (conformed, bad) = conform(&batch, &schema).map_err(&bad_column)?;
        let mut bad = bad.into_iter().map(|bad| Rejected {
            source: name.clone(),
            row: row + bad.row as u64 + 1,
            line: format.and_then(|f| f.line(row + bad.row as u64)),
            column: bad.column,
            value: bad.value,
            reason: bad.reason,
        });
        let mut state = lock(&state);
        if let Some(rejected) = &mut state.rejected {
            bad.try_for_each(|bad| rejected.push(bad))?;
        } else if let Some(bad) = bad.next() {
            let place = match bad.line {
                Some(line) => format!("line {line}"),
                None => format!("row {}", bad.row),
            };
            return Err(EngineError::Invalid(format!(
                "{name}: {place}, column {}: {}; nothing was loaded",
                bad.column, bad.reason
            )));
        }
        if let Some(sample) = &mut state.sample {
            sample.add(&conformed)?;
        }
        row += batch.num_rows() as u64;
        read_progress
            .rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(conformed)
    });
    let read = futures::stream::once(async move {
        progress.bytes.fetch_add(bytes, Ordering::Relaxed);
        None
    })
    .filter_map(|done: Option<Result<RecordBatch, EngineError>>| async move { done });
    Ok(rows.chain(read).map_err(as_stream_error))
}

/// An error of a load's input as it travels through DataFusion's plan.
fn as_stream_error(e: EngineError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The error a load's rows met: the input's own (see [`as_stream_error`])
/// when it is one, else DataFusion's (a sort over the memory limit).
fn read_error(e: DataFusionError) -> EngineError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(error) = cause {
        match error.downcast_ref::<EngineError>() {
            Some(EngineError::NotFound(message)) => return EngineError::NotFound(message.clone()),
            Some(input) => return EngineError::Invalid(input.to_string()),
            None => cause = error.source(),
        }
    }
    EngineError::from(e)
}

/// One source file as a data frame; CSV values are read as text and cast to
/// the table's types afterwards, so a bad value is named with its line.
async fn read_file(reader: &SessionContext, file: &SourceFile) -> Result<DataFrame, EngineError> {
    let named = |e: datafusion::error::DataFusionError| {
        EngineError::Invalid(format!("{}: {}", file.url, e.find_root()))
    };
    match file.format {
        SourceFormat::Parquet => reader
            .read_parquet(file.url.as_str(), Default::default())
            .await
            .map_err(named),
        SourceFormat::Json => reader
            .read_json(
                file.url.as_str(),
                JsonReadOptions::default().file_extension(""),
            )
            .await
            .map_err(named),
        SourceFormat::Csv => {
            let options = CsvReadOptions::new().has_header(true).file_extension("");
            let inferred = reader
                .read_csv(file.url.as_str(), options.clone())
                .await
                .map_err(named)?;
            let text = Schema::new(
                inferred
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| Field::new(f.name(), DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            );
            reader
                .read_csv(file.url.as_str(), options.schema(&text))
                .await
                .map_err(named)
        }
    }
}

/// `rows` sorted by `sort_order` (spilling under the memory limit), and the
/// plan that sorts them (for its metrics).
async fn sort(
    ctx: &SessionContext,
    rows: SendableRecordBatchStream,
    sort_order: &[String],
) -> Result<(Arc<dyn ExecutionPlan>, SendableRecordBatchStream), EngineError> {
    let schema = rows.schema();
    let source = StreamingTable::try_new(Arc::clone(&schema), vec![Arc::new(ReadOnce::new(rows))])?;
    let mut df = ctx.read_table(Arc::new(source))?;
    let order: Vec<_> = sort_order
        .iter()
        .filter(|c| schema.field_with_name(c).is_ok())
        .map(|c| col(format!("\"{c}\"")).sort(true, false))
        .collect();
    if !order.is_empty() {
        df = df.sort(order)?;
    }
    let plan = df.create_physical_plan().await?;
    let sorted = execute_stream(Arc::clone(&plan), ctx.task_ctx())?;
    Ok((plan, sorted))
}

/// Bytes the operators of `plan` spilled to disk.
fn spilled_bytes(plan: &dyn ExecutionPlan) -> u64 {
    let own = plan.metrics().and_then(|m| m.spilled_bytes()).unwrap_or(0) as u64;
    own + plan
        .children()
        .into_iter()
        .map(|child| spilled_bytes(child.as_ref()))
        .sum::<u64>()
}

/// A stream as a plan's input, read once.
struct ReadOnce {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl ReadOnce {
    fn new(stream: SendableRecordBatchStream) -> Self {
        ReadOnce {
            schema: stream.schema(),
            stream: Mutex::new(Some(stream)),
        }
    }
}

impl fmt::Debug for ReadOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadOnce")
    }
}

impl PartitionStream for ReadOnce {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self
            .stream
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        taken.unwrap_or_else(|| {
            let again = futures::stream::once(async {
                Err(DataFusionError::Internal(
                    "a load read its rows twice".into(),
                ))
            });
            Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                again,
            ))
        })
    }
}
