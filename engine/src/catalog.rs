//! Registering Parquet tables (a file or a folder of files) with their declared sort order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{SortExpr, col};
use datafusion::prelude::SessionContext;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::delta_tables::{DeltaTableProvider, is_delta_table};
use crate::error::EngineError;
use crate::file_reads::fenced_future;
use crate::listed_versions::ListedVersion;
use crate::parquet_guard::bad_file_message;
use crate::storage::{Location, storage_error};

/// The sort order the dataset layout (`shared/DATASET.md`) promises for a table
/// found in a dataset folder, if any.
pub(crate) fn dataset_sort_order(table: &str) -> &'static [&'static str] {
    match table {
        "events" | "orders" => &["member_id", "ts"],
        "members" | "member_tags" => &["member_id"],
        _ => &[],
    }
}

/// Resolves a local location to an existing path.
pub(crate) fn existing_path(table: &str, path: &Path) -> Result<PathBuf, EngineError> {
    if !path.exists() {
        return Err(EngineError::NotFound(format!(
            "table '{table}': location does not exist: {}",
            path.display()
        )));
    }
    Ok(path.to_path_buf())
}

/// Registers the table at `location` as `name`, declaring that its files are
/// sorted by `sort_order` (ascending): a Delta table (a folder with
/// `_delta_log/`; on a Ballista cluster, when `distributed`, its newest
/// version's files, returned to be kept up to date), or a Parquet file or
/// folder of files.
pub(crate) async fn register_table(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    sort_order: &[&str],
    distributed: bool,
) -> Result<Option<ListedVersion>, EngineError> {
    if is_delta_table(ctx, location)
        .await
        .map_err(|e| in_table(name, e))?
    {
        let table = DeltaTableProvider::open(ctx, name, location, sort_order).await?;
        tracing::debug!(table = name, %location, ?sort_order, "registered Delta table");
        if distributed {
            return ListedVersion::register(ctx, name, table).await.map(Some);
        }
        ctx.register_table(name, Arc::new(table))?;
        return Ok(None);
    }
    register_parquet(ctx, name, location, sort_order).await?;
    Ok(None)
}

/// `options` declaring that every file is sorted by `sort_order` (ascending,
/// NULLs last: as `ORDER BY` sorts by default).
pub(crate) fn sorted_by<S: AsRef<str>>(
    options: ListingOptions,
    sort_order: &[S],
) -> ListingOptions {
    let order: Vec<SortExpr> = sort_order
        .iter()
        .map(|c| col(c.as_ref()).sort(true, false))
        .collect();
    options.with_file_sort_order(vec![order])
}

/// Registers the Parquet file or folder at `location` as table `name`, declaring
/// that its files are sorted by `sort_order` (ascending).
async fn register_parquet(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    sort_order: &[&str],
) -> Result<(), EngineError> {
    let url_text = table_url(ctx, name, location).await?;
    let url = ListingTableUrl::parse(&url_text)?;
    let state = ctx.state();
    let mut options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let schema = table_schema(&state, name, &url, &options).await?;
    if !sort_order.is_empty() {
        if let Some(missing) = sort_order
            .iter()
            .find(|c| schema.field_with_name(c).is_err())
        {
            return Err(EngineError::Config(format!(
                "table '{name}': sort_order names column '{missing}', which the table does not have"
            )));
        }
        // Scans sorted by member_id over disjoint member ranges are regrouped
        // and declared range-partitioned at planning (`member_ranges`).
        options = sorted_by(options, sort_order);
    }
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    // Per-file statistics are cached for the session (validated by size and
    // mtime), as DataFusion's own table registration does; without it every
    // query re-derives them from each file's footer.
    let table = ListingTable::try_new(config)?
        .with_cache(ctx.runtime_env().cache_manager.get_file_statistic_cache());
    ctx.register_table(name, Arc::new(table))?;
    tracing::debug!(table = name, %location, ?sort_order, "registered table");
    Ok(())
}

/// The schema of the table at `url`, merged from its files' schemas, each read
/// on its own (behind a fence, so that a file whose footer cannot be read, or
/// panics the reader, is the error, named). A file whose columns (names and
/// types) are not those most of the table's files have is an error naming it:
/// a file of another table dropped into the folder would otherwise be read
/// with NULLs for what it lacks. Footers stay cached for the queries.
async fn table_schema(
    state: &SessionState,
    name: &str,
    url: &ListingTableUrl,
    options: &ListingOptions,
) -> Result<SchemaRef, EngineError> {
    let invalid = |e: String| EngineError::Invalid(format!("table '{name}': {e}"));
    let store = state.runtime_env().object_store(url)?;
    let files: Vec<ObjectMeta> = url
        .list_all_files(state, store.as_ref(), &options.file_extension)
        .await?
        .try_collect()
        .await?;
    let mut columns = Vec::with_capacity(files.len());
    for file in &files {
        let path = file.location.to_string();
        let read = options
            .format
            .infer_schema(state, &store, std::slice::from_ref(file));
        let schema = fenced_future(&path, read)
            .await
            .map_err(|e| invalid(file_error(&path, "schema", e)))?;
        let mut fields: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect();
        fields.sort();
        columns.push(fields);
    }
    let usual = columns
        .iter()
        .max_by_key(|c| columns.iter().filter(|other| other == c).count())
        .cloned()
        .unwrap_or_default();
    if let Some((file, odd)) = files.iter().zip(&columns).find(|(_, c)| **c != usual) {
        return Err(invalid(format!(
            "{} has the columns ({}) where the table's other files have ({}): is it a file of \
             another table? Move it out of the table's folder",
            file.location,
            odd.join(", "),
            usual.join(", ")
        )));
    }
    let schema = options
        .format
        .infer_schema(state, &store, &files)
        .await
        .map_err(|e| invalid(format!("cannot read Parquet schema from {url}: {e}")))?;
    // each file's statistics as queries will derive them (a corrupt footer
    // can make that fail or panic too): named here rather than mid-query
    for file in &files {
        let path = file.location.to_string();
        let stats = options
            .format
            .infer_stats(state, &store, Arc::clone(&schema), file);
        fenced_future(&path, stats)
            .await
            .map_err(|e| invalid(file_error(&path, "statistics", e)))?;
    }
    Ok(schema)
}

/// The message of `e`, met reading the `what` of the file at `path`, naming it.
fn file_error(path: &str, what: &str, e: DataFusionError) -> String {
    match e {
        DataFusionError::Execution(message) if message.contains(path) => message,
        e if e.to_string().contains(path) => e.to_string(),
        e => bad_file_message(path, &format!("its {what} cannot be read: {e}")),
    }
}

/// The listing URL of a table's location (a folder URL ends with `/`), after
/// checking that it holds Parquet data.
async fn table_url(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
) -> Result<String, EngineError> {
    match location {
        Location::Local(path) => {
            let path = existing_path(name, path)?;
            let path = std::fs::canonicalize(&path).map_err(|e| {
                EngineError::Invalid(format!(
                    "table '{name}': cannot open {}: {e}",
                    path.display()
                ))
            })?;
            let is_folder = path.is_dir();
            if is_folder && !has_parquet_files(&path)? {
                return Err(EngineError::NotFound(format!(
                    "table '{name}': no .parquet files in {}",
                    path.display()
                )));
            }
            let mut text = path.to_string_lossy().into_owned();
            if is_folder && !text.ends_with('/') {
                text.push('/');
            }
            Ok(text)
        }
        Location::S3 { bucket, key } => {
            let store = ctx
                .runtime_env()
                .object_store(ObjectStoreUrl::parse(format!("s3://{bucket}"))?)?;
            if key.ends_with(".parquet") {
                store
                    .head(&location.object_path())
                    .await
                    .map_err(|e| in_table(name, storage_error(location, e)))?;
                return Ok(location.to_string());
            }
            let files = parquet_objects(&store, &location.object_path())
                .await
                .map_err(|e| in_table(name, storage_error(location, e)))?;
            if files.is_empty() {
                return Err(EngineError::NotFound(format!(
                    "table '{name}': no .parquet objects under {location}/"
                )));
            }
            Ok(format!("{location}/"))
        }
    }
}

/// The `.parquet` objects under `prefix`, in path order; hidden names (`.x`)
/// are left out.
async fn parquet_objects(
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

/// `e`, prefixed with the table it happened for.
fn in_table(name: &str, e: EngineError) -> EngineError {
    match e {
        EngineError::NotFound(m) => EngineError::NotFound(format!("table '{name}': {m}")),
        EngineError::Invalid(m) => EngineError::Invalid(format!("table '{name}': {m}")),
        e => e,
    }
}

fn has_parquet_files(dir: &Path) -> Result<bool, EngineError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| EngineError::Invalid(format!("cannot list {}: {e}", dir.display())))?;
    Ok(entries.flatten().any(|e| {
        let p = e.path();
        p.is_dir() || p.extension().is_some_and(|x| x == "parquet")
    }))
}

/// The tables of a dataset folder or prefix: `(name, location)` for each
/// subfolder not starting with `.`, sorted by name.
pub(crate) async fn dataset_tables(
    ctx: &SessionContext,
    dir: &Location,
) -> Result<Vec<(String, Location)>, EngineError> {
    let mut names: Vec<String> = match dir {
        Location::Local(path) => local_subfolders(path)?,
        Location::S3 { bucket, key } => {
            let store = ctx
                .runtime_env()
                .object_store(ObjectStoreUrl::parse(format!("s3://{bucket}"))?)?;
            let prefix = (!key.is_empty()).then(|| dir.object_path());
            let listing = store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map_err(|e| storage_error(dir, e))?;
            listing
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .collect()
        }
    };
    names.retain(|n| !n.starts_with('.'));
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let location = dir.join(&n);
            (n, location)
        })
        .collect())
}

fn local_subfolders(dir: &Path) -> Result<Vec<String>, EngineError> {
    if !dir.is_dir() {
        return Err(EngineError::NotFound(format!(
            "dataset folder does not exist: {}",
            dir.display()
        )));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        EngineError::Invalid(format!("cannot list dataset folder {}: {e}", dir.display()))
    })?;
    Ok(entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|p| Some(p.file_name()?.to_str()?.to_string()))
        .collect())
}
