//! Delta Lake tables: a folder or prefix holding `_delta_log/`. Each scan
//! plans over the table's newest committed version, so a finished load is
//! visible to the next query. The snapshot's files are read by the engine's
//! own Parquet scan with their statistics from their footers (once per file:
//! Delta files never change), so the member-range rule, the read fences and
//! pruning apply as they do to plain Parquet folders. The table's order is
//! declared only when every file's footer declares it (Parquet sorting
//! columns, which every writer here records); files another writer added
//! without it are read as unsorted until `audience compact` rewrites them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Once};

use async_trait::async_trait;
use buoyant_kernel::table_properties::TableProperties;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{Statistics, project_schema};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl, PartitionedFile,
};
use datafusion::datasource::physical_plan::parquet::metadata::{
    DFParquetMetadata, ordering_from_parquet_metadata,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::expressions::{Column, col as physical_col};
use datafusion::prelude::SessionContext;
use deltalake_core::kernel::transaction::TableReference;
use deltalake_core::kernel::{EagerSnapshot, LogicalFileView, Metadata, Protocol, Version};
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use deltalake_core::table::state::DeltaTableState;
use deltalake_core::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore};
use parquet::file::metadata::ParquetMetaData;
use url::Url;

use crate::catalog::sorted_by;
use crate::error::EngineError;
use crate::member_ranges::contiguous_groups;
use crate::storage::{Location, storage_error};

/// The folder of a Delta table's log.
pub(crate) const LOG_FOLDER: &str = "_delta_log";

/// Whether `location` holds a Delta table: its log folder has an entry.
pub(crate) async fn is_delta_table(
    ctx: &SessionContext,
    location: &Location,
) -> Result<bool, EngineError> {
    match location {
        Location::Local(path) => Ok(path.join(LOG_FOLDER).is_dir()),
        Location::S3 { .. } => {
            let (store, _) = table_store(ctx, location)?;
            let log = location.join(LOG_FOLDER).object_path();
            match store.list(Some(&log)).next().await {
                None => Ok(false),
                Some(Ok(_)) => Ok(true),
                Some(Err(e)) => Err(storage_error(location, e)),
            }
        }
    }
}

/// The URL of the object store holding `location`, the store (the session's,
/// with its settings and guards) and the table's URL in it.
pub(crate) fn table_store(
    ctx: &SessionContext,
    location: &Location,
) -> Result<(Arc<dyn ObjectStore>, Url), EngineError> {
    let (store_url, table_url) = match location {
        Location::Local(path) => {
            let path = std::path::absolute(path).map_err(|e| {
                EngineError::Invalid(format!("cannot resolve {}: {e}", path.display()))
            })?;
            let url = Url::from_directory_path(&path).map_err(|()| {
                EngineError::Invalid(format!("{} is not a usable path", path.display()))
            })?;
            (ObjectStoreUrl::local_filesystem(), url)
        }
        Location::S3 { bucket, key } => {
            let url = Url::parse(&format!("s3://{bucket}/{key}/"))
                .map_err(|e| EngineError::Invalid(format!("{location}: {e}")))?;
            (ObjectStoreUrl::parse(format!("s3://{bucket}"))?, url)
        }
    };
    let store = ctx.runtime_env().object_store(&store_url)?;
    Ok((store, table_url))
}

/// The path of the table's folder in its store; the log's file paths are
/// relative to it.
pub(crate) fn table_root(
    ctx: &SessionContext,
    location: &Location,
) -> Result<ObjectPath, EngineError> {
    let (_, url) = table_store(ctx, location)?;
    ObjectPath::from_url_path(url.path())
        .map_err(|e| EngineError::Invalid(format!("{location}: {e}")))
}

/// The Delta log of the table at `location`, not yet loaded.
pub(crate) fn delta_table(
    ctx: &SessionContext,
    location: &Location,
) -> Result<DeltaTable, EngineError> {
    register_s3_log_stores();
    let (store, url) = table_store(ctx, location)?;
    let table = DeltaTableBuilder::from_url(url.clone())
        .and_then(|b| b.with_storage_backend(store, url).build())
        .map_err(|e| delta_error(location, e))?;
    Ok(table)
}

/// `e`, met on the Delta table at `location`, for the user.
pub(crate) fn delta_error(location: &Location, e: DeltaTableError) -> EngineError {
    match e {
        DeltaTableError::ObjectStore { source } => storage_error(location, source),
        DeltaTableError::NotATable(_) => {
            EngineError::NotFound(format!("{location}: not a Delta table (no {LOG_FOLDER}/)"))
        }
        e => EngineError::Invalid(format!("Delta table {location}: {e}")),
    }
}

/// Commits to `s3://` tables go through the default log store: each commit
/// is a conditional put (`If-None-Match: *`) of the next log entry, so of
/// two writers racing for one version exactly one wins.
fn register_s3_log_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(url) = Url::parse("s3://") {
            logstore_factories().insert(url, Arc::new(ConditionalPutLogStores));
        }
    });
}

#[derive(Debug)]
struct ConditionalPutLogStores;

impl LogStoreFactory for ConditionalPutLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// A table's snapshot as the base of a commit. delta-rs built without its
/// DataFusion integration (as here) refuses every commit to a table of
/// writer version 2 — Spark's and the deltalake package's default — because
/// it cannot evaluate column invariants. A table whose columns declare no
/// invariant needs none evaluated, and what version 2 asks besides
/// (append-only tables keep their rows) every commit here keeps, so such a
/// table is presented to the commit check as version 1. The commit writes
/// no protocol action: the table's version stays as it is.
pub(crate) struct CommitBase<'a> {
    snapshot: &'a EagerSnapshot,
    protocol: Option<Protocol>,
}

impl<'a> CommitBase<'a> {
    pub(crate) fn new(state: &'a DeltaTableState) -> Self {
        let snapshot = state.snapshot();
        let declares_invariants = serde_json::to_string(snapshot.schema().as_ref())
            .map_or(true, |schema| schema.contains("delta.invariants"));
        let protocol = (snapshot.protocol().min_writer_version() == 2 && !declares_invariants)
            .then(|| {
                let version_1 = serde_json::json!({
                    "minReaderVersion": snapshot.protocol().min_reader_version(),
                    "minWriterVersion": 1,
                });
                serde_json::from_value(version_1).ok()
            })
            .flatten();
        CommitBase { snapshot, protocol }
    }
}

impl TableReference for CommitBase<'_> {
    fn config(&self) -> &TableProperties {
        self.snapshot.table_properties()
    }

    fn protocol(&self) -> &Protocol {
        self.protocol
            .as_ref()
            .unwrap_or_else(|| self.snapshot.protocol())
    }

    fn metadata(&self) -> &Metadata {
        self.snapshot.metadata()
    }

    fn eager_snapshot(&self) -> &EagerSnapshot {
        self.snapshot
    }
}

/// `logical` (a table's columns as its log gives them) with the types of
/// `stored` (as a writer stores them), when the two name the same columns of
/// the same types up to dictionary encoding; `None` otherwise.
pub(crate) fn with_stored_types(logical: &Schema, stored: &Schema) -> Option<SchemaRef> {
    let same = |stored: &DataType, logical: &DataType| match stored {
        DataType::Dictionary(_, value) => value.as_ref() == logical,
        stored => stored == logical,
    };
    let matches = stored.fields().len() == logical.fields().len()
        && stored
            .fields()
            .iter()
            .zip(logical.fields())
            .all(|(s, l)| s.name() == l.name() && same(s.data_type(), l.data_type()));
    if !matches {
        return None;
    }
    let fields: Vec<Field> = stored
        .fields()
        .iter()
        .zip(logical.fields())
        .map(|(s, l)| s.as_ref().clone().with_nullable(l.is_nullable()))
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        logical.metadata().clone(),
    )))
}

/// `file`'s Parquet footer, through the runtime's metadata cache (so the
/// scan that reads the file does not fetch it again).
pub(crate) async fn footer(
    state: &dyn Session,
    store: &Arc<dyn ObjectStore>,
    file: &ObjectMeta,
) -> DfResult<Arc<ParquetMetaData>> {
    let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
    DFParquetMetadata::new(store.as_ref(), file)
        .with_file_metadata_cache(Some(cache))
        .fetch_metadata()
        .await
}

/// The object of the data file `file` of the table whose folder is `root`.
pub(crate) fn file_meta(root: &ObjectPath, file: &LogicalFileView) -> ObjectMeta {
    ObjectMeta {
        location: ObjectPath::from_iter(root.parts().chain(file.object_store_path().parts())),
        last_modified: file.modification_datetime().unwrap_or_default(),
        size: file.size().max(0) as u64,
        e_tag: None,
        version: None,
    }
}

/// A Delta table as a table of the session, read at its newest version by
/// each scan.
pub(crate) struct DeltaTableProvider {
    name: String,
    location: Location,
    log: tokio::sync::Mutex<DeltaTable>,
    store_url: ObjectStoreUrl,
    /// The table's path in its store; the log's file paths are relative to it.
    root: ObjectPath,
    schema: SchemaRef,
    sort_order: Vec<String>,
    /// What each data file's footer says, read once.
    files: Mutex<HashMap<ObjectPath, Arc<FileFacts>>>,
}

impl std::fmt::Debug for DeltaTableProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaTableProvider")
            .field("name", &self.name)
            .field("location", &self.location)
            .finish()
    }
}

/// What a data file's footer says.
#[derive(Debug)]
struct FileFacts {
    statistics: Arc<Statistics>,
    /// Its sorting columns begin with the table's order.
    sorted: bool,
}

/// One committed version of a table: its number and data files.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) version: Version,
    pub(crate) files: Vec<ObjectMeta>,
}

/// The Delta table versions one query reads, kept in its session's config:
/// a table's first scan takes the newest version and every other scan of the
/// same query reads that one, so a query sees one version of each table
/// (a self-join across a load's commit does not mix two).
#[derive(Debug, Default)]
pub struct TableVersions(Mutex<BTreeMap<String, Arc<Snapshot>>>);

impl TableVersions {
    /// The versions `frame`'s query read (once planned), if it records them.
    pub fn of(frame: &datafusion::dataframe::DataFrame) -> Option<Arc<TableVersions>> {
        frame
            .task_ctx()
            .session_config()
            .get_extension::<TableVersions>()
    }

    fn pinned(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Snapshot>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `frame` to run again: it reads each table's newest version when it
    /// runs, not the versions an earlier run of it read (a prepared statement).
    pub fn unpinned(frame: datafusion::dataframe::DataFrame) -> datafusion::dataframe::DataFrame {
        let (mut state, plan) = frame.into_parts();
        state
            .config_mut()
            .set_extension(Arc::new(TableVersions::default()));
        datafusion::dataframe::DataFrame::new(state, plan)
    }

    /// Whether no Delta table was read.
    pub fn is_empty(&self) -> bool {
        self.pinned().is_empty()
    }
}

/// `events@4 orders@2`: each table read and its version.
impl std::fmt::Display for TableVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pinned = self.pinned();
        let text: Vec<String> = pinned
            .iter()
            .map(|(table, snapshot)| format!("{table}@{}", snapshot.version))
            .collect();
        f.write_str(&text.join(" "))
    }
}

impl DeltaTableProvider {
    /// The Delta table at `location` as table `name`, its files sorted by `sort_order`.
    pub(crate) async fn open(
        ctx: &SessionContext,
        name: &str,
        location: &Location,
        sort_order: &[&str],
    ) -> Result<Self, EngineError> {
        let mut log = delta_table(ctx, location)?;
        log.load().await.map_err(|e| delta_error(location, e))?;
        let root = table_root(ctx, location)?;
        let store_url = match location {
            Location::Local(_) => ObjectStoreUrl::local_filesystem(),
            Location::S3 { bucket, .. } => ObjectStoreUrl::parse(format!("s3://{bucket}"))?,
        };
        let snapshot = log.snapshot().map_err(|e| delta_error(location, e))?;
        let logical = snapshot.snapshot().arrow_schema();
        if let Some(missing) = sort_order
            .iter()
            .find(|c| logical.field_with_name(c).is_err())
        {
            return Err(EngineError::Config(format!(
                "table '{name}': sort_order names column '{missing}', which the table does not have"
            )));
        }
        let mut provider = DeltaTableProvider {
            name: name.to_string(),
            location: location.clone(),
            log: tokio::sync::Mutex::new(log),
            store_url,
            root,
            schema: logical,
            sort_order: sort_order.iter().map(|c| c.to_string()).collect(),
            files: Mutex::new(HashMap::new()),
        };
        provider.schema = provider.stored_schema(ctx).await?;
        Ok(provider)
    }

    /// The table's columns with the types its files store them in, when they
    /// are the log's (dictionary-encoded text stays dictionaries, so scans do
    /// not unpack them); else the log's.
    async fn stored_schema(&self, ctx: &SessionContext) -> Result<SchemaRef, EngineError> {
        let logical = Arc::clone(&self.schema);
        let snapshot = self.newest().await?;
        let Some(first) = snapshot.files.first() else {
            return Ok(logical);
        };
        let store = ctx.runtime_env().object_store(&self.store_url)?;
        let stored = ParquetFormat::default()
            .infer_schema(&ctx.state(), &store, std::slice::from_ref(first))
            .await?;
        Ok(with_stored_types(&logical, &stored).unwrap_or(logical))
    }

    /// The table's name in the catalog.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where the table lies.
    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    /// The table's newest committed version.
    pub(crate) async fn newest(&self) -> Result<Snapshot, EngineError> {
        let mut log = self.log.lock().await;
        log.update_state()
            .await
            .map_err(|e| delta_error(&self.location, e))?;
        let state = log.snapshot().map_err(|e| delta_error(&self.location, e))?;
        let files = state
            .log_data()
            .iter()
            .map(|file| file_meta(&self.root, &file))
            .collect();
        Ok(Snapshot {
            version: state.version(),
            files,
        })
    }

    /// The version the query planned in `state` reads: the one its first
    /// scan of this table took, else the newest.
    async fn snapshot_of_query(&self, state: &dyn Session) -> DfResult<Arc<Snapshot>> {
        self.pinned_in(state.config().get_extension::<TableVersions>())
            .await
    }

    /// The version pinned in `versions` (a query's), pinning the newest if
    /// none is yet.
    pub(crate) async fn pinned_in(
        &self,
        versions: Option<Arc<TableVersions>>,
    ) -> DfResult<Arc<Snapshot>> {
        if let Some(pinned) = versions
            .as_ref()
            .and_then(|v| v.pinned().get(&self.name).cloned())
        {
            return Ok(pinned);
        }
        let newest = Arc::new(
            self.newest()
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
        );
        crate::failpoints::point("delta:snapshot_taken").await;
        Ok(match versions {
            Some(versions) => {
                Arc::clone(versions.pinned().entry(self.name.clone()).or_insert(newest))
            }
            None => newest,
        })
    }

    /// What `file`'s footer says: its statistics, and whether it declares
    /// itself sorted by the table's order. Read once: Delta files never change.
    async fn file_facts(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        file: &ObjectMeta,
    ) -> DfResult<Arc<FileFacts>> {
        if let Some(known) = self.known_files()?.get(&file.location) {
            return Ok(Arc::clone(known));
        }
        let metadata = footer(state, store, file).await?;
        let statistics =
            DFParquetMetadata::statistics_from_parquet_metadata(&metadata, &self.schema)?;
        // the footer's sorting columns, as the table's order or finer
        let ordering = ordering_from_parquet_metadata(&metadata, &self.schema)?;
        let declared: Vec<String> = ordering
            .iter()
            .flat_map(|o| o.iter())
            .map_while(|e| {
                let column = e.expr.downcast_ref::<Column>()?;
                (!e.options.descending).then(|| column.name().to_string())
            })
            .collect();
        let sorted = !self.sort_order.is_empty() && declared.starts_with(&self.sort_order);
        let facts = Arc::new(FileFacts {
            statistics: Arc::new(statistics),
            sorted,
        });
        self.known_files()?
            .insert(file.location.clone(), Arc::clone(&facts));
        Ok(facts)
    }

    fn known_files(
        &self,
    ) -> DfResult<std::sync::MutexGuard<'_, HashMap<ObjectPath, Arc<FileFacts>>>> {
        self.files
            .lock()
            .map_err(|_| DataFusionError::Internal("file facts lock poisoned".into()))
    }

    /// The table at `snapshot` as a plain listing of its files: what a
    /// Ballista cluster can carry to its executors (this provider it cannot).
    pub(crate) async fn listing(
        &self,
        ctx: &SessionContext,
        snapshot: &Snapshot,
    ) -> Result<ListingTable, EngineError> {
        let state = ctx.state();
        let store = state.runtime_env().object_store(&self.store_url)?;
        let mut sorted = true;
        let mut urls = Vec::with_capacity(snapshot.files.len());
        for file in &snapshot.files {
            sorted &= self.file_facts(&state, &store, file).await?.sorted;
            urls.push(ListingTableUrl::parse(format!(
                "{}{}",
                self.store_url.as_str(),
                file.location
            ))?);
        }
        let mut options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        if sorted && !self.sort_order.is_empty() {
            options = sorted_by(options, &self.sort_order);
        }
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(Arc::clone(&self.schema));
        Ok(ListingTable::try_new(config)?)
    }

    /// The declared order of every file, if any.
    fn output_ordering(&self) -> DfResult<Vec<LexOrdering>> {
        let exprs = self
            .sort_order
            .iter()
            .map(|c| {
                // ascending, NULLs last: as ORDER BY sorts by default
                let options = SortOptions {
                    descending: false,
                    nulls_first: false,
                };
                Ok(PhysicalSortExpr::new(
                    physical_col(c, &self.schema)?,
                    options,
                ))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(LexOrdering::new(exprs).into_iter().collect())
    }
}

#[async_trait]
impl TableProvider for DeltaTableProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let snapshot = self.snapshot_of_query(state).await?;
        tracing::debug!(table = %self.name, version = snapshot.version, files = snapshot.files.len(), "reading Delta table");
        if snapshot.files.is_empty() {
            let schema = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let store = state.runtime_env().object_store(&self.store_url)?;
        let format = ParquetFormat::default();
        let mut files = Vec::with_capacity(snapshot.files.len());
        // the table's order holds when every file's footer declares it
        let mut sorted = true;
        for meta in snapshot.files.iter().cloned() {
            let facts = self.file_facts(state, &store, &meta).await?;
            sorted &= facts.sorted;
            let statistics = Arc::clone(&facts.statistics);
            files.push(PartitionedFile::new_from_meta(meta).with_statistics(statistics));
        }
        // in path order, which for the engine's own writers is member order
        files.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));
        // what is known of files no longer in the table is forgotten
        self.known_files()?.retain(|path, _| {
            files
                .binary_search_by(|f| f.object_meta.location.cmp(path))
                .is_ok()
        });
        let partitions = state.config().target_partitions();
        let file_groups = contiguous_groups(&files, partitions)
            .into_iter()
            .map(|group| FileGroup::new(group.to_vec()))
            .collect();
        let ordering = match sorted {
            true => self.output_ordering()?,
            false => Vec::new(),
        };
        let source = format.file_source(TableSchema::from(Arc::clone(&self.schema)));
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(file_groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .with_output_ordering(ordering)
            .build();
        format.create_physical_plan(state, config).await
    }
}
