//! Registering Parquet tables (a file or a folder of files) with their declared sort order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::logical_expr::{SortExpr, col};
use datafusion::prelude::SessionContext;

use crate::error::EngineError;
use crate::member_ranges::member_range_partitioning;

/// The sort order the dataset layout (`shared/DATASET.md`) promises for a table
/// found in a dataset folder, if any.
pub(crate) fn dataset_sort_order(table: &str) -> &'static [&'static str] {
    match table {
        "events" | "orders" => &["member_id", "ts"],
        "members" | "member_tags" => &["member_id"],
        _ => &[],
    }
}

/// The local path of `location` (a plain path or a `file://` URL); `what` names
/// it in the error for any other scheme.
pub fn local_location(what: &str, location: &str) -> Result<PathBuf, EngineError> {
    if let Some(rest) = location.strip_prefix("file://") {
        return Ok(PathBuf::from(rest));
    }
    if let Some((scheme, _)) = location.split_once("://") {
        return Err(EngineError::Invalid(format!(
            "{what}: {scheme}:// locations are not supported yet; use a local path or file:// URL"
        )));
    }
    Ok(PathBuf::from(location))
}

/// Resolves a table location (local path or `file://` URL) to an existing local path.
pub(crate) fn local_path(table: &str, location: &str) -> Result<PathBuf, EngineError> {
    let path = local_location(&format!("table '{table}'"), location)?;
    if !path.exists() {
        return Err(EngineError::NotFound(format!(
            "table '{table}': location does not exist: {}",
            path.display()
        )));
    }
    Ok(path)
}

/// Registers the Parquet file or folder at `location` as table `name`, declaring
/// that its files are sorted by `sort_order` (ascending).
pub(crate) async fn register_parquet(
    ctx: &SessionContext,
    name: &str,
    location: &str,
    sort_order: &[&str],
) -> Result<(), EngineError> {
    let path = local_path(name, location)?;
    let path = std::fs::canonicalize(&path).map_err(|e| {
        EngineError::Invalid(format!(
            "table '{name}': cannot open {}: {e}",
            path.display()
        ))
    })?;
    if path.is_dir() && !has_parquet_files(&path)? {
        return Err(EngineError::NotFound(format!(
            "table '{name}': no .parquet files in {}",
            path.display()
        )));
    }
    let mut url_text = path.to_string_lossy().into_owned();
    if path.is_dir() && !url_text.ends_with('/') {
        url_text.push('/');
    }
    let url = ListingTableUrl::parse(&url_text)?;
    let state = ctx.state();
    let mut options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let schema = options.infer_schema(&state, &url).await.map_err(|e| {
        EngineError::Invalid(format!(
            "table '{name}': cannot read Parquet schema from {}: {e}",
            path.display()
        ))
    })?;
    if !sort_order.is_empty() {
        if let Some(missing) = sort_order
            .iter()
            .find(|c| schema.field_with_name(c).is_err())
        {
            return Err(EngineError::Config(format!(
                "table '{name}': sort_order names column '{missing}', which the table does not have"
            )));
        }
        let order: Vec<SortExpr> = sort_order
            .iter()
            .map(|c| col(*c).sort(true, false))
            .collect();
        options = options.with_file_sort_order(vec![order]);
        if sort_order[0] == "member_id" && path.is_dir() {
            let partitions = state.config().target_partitions();
            let declared = member_range_partitioning(&path, "member_id", partitions);
            tracing::debug!(table = name, ?declared, "member-range partitioning");
            options = options.with_output_partitioning(declared);
        }
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
    tracing::debug!(table = name, location = %path.display(), ?sort_order, "registered table");
    Ok(())
}

fn has_parquet_files(dir: &Path) -> Result<bool, EngineError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| EngineError::Invalid(format!("cannot list {}: {e}", dir.display())))?;
    Ok(entries.flatten().any(|e| {
        let p = e.path();
        p.is_dir() || p.extension().is_some_and(|x| x == "parquet")
    }))
}

/// The table folders of a dataset folder: `(name, path)` for each subfolder not starting with `.`.
pub(crate) fn dataset_tables(dir: &Path) -> Result<Vec<(String, PathBuf)>, EngineError> {
    if !dir.is_dir() {
        return Err(EngineError::NotFound(format!(
            "dataset folder does not exist: {}",
            dir.display()
        )));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        EngineError::Invalid(format!("cannot list dataset folder {}: {e}", dir.display()))
    })?;
    let mut tables: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            (!name.starts_with('.')).then_some((name, p))
        })
        .collect();
    tables.sort();
    Ok(tables)
}
