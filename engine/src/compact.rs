//! `audience compact`: each member range's files (one per load, and any a
//! foreign writer added across ranges) merged into one sorted file, all
//! ranges in one commit that removes the old files and adds the new ones
//! without changing the table's data. Queries keep reading the snapshot they
//! started on (the old files stay until `audience vacuum`); a load that
//! commits meanwhile only adds files, so the compaction's commit is rebased
//! over it; a second compaction of the same files fails the loser cleanly.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::logical_expr::{col, lit};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use deltalake_core::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake_core::kernel::{Action, Add, MetadataExt};
use deltalake_core::protocol::DeltaOperation;
use deltalake_core::{DeltaTable, DeltaTableError};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::catalog::dataset_sort_order;
use crate::delta_tables::{
    CommitBase, delta_error, delta_table, file_meta, footer, table_root, table_store,
    with_stored_types,
};
use crate::error::EngineError;
use crate::failpoints;
use crate::storage::Location;
use crate::table_writes::{
    FileStats, MEMBER_RANGES_PROPERTY, MemberSample, WriteError, file_name, has_member_ranges,
    range_of, stored_ranges, write_file,
};

/// What a compaction did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactSummary {
    /// Files the compaction replaced (0: the table was compact already).
    pub files_removed: usize,
    /// Files it wrote in their place.
    pub files_written: usize,
    /// Rows in the rewritten files.
    pub rows: u64,
    /// The table's version after the compaction (the version read when
    /// there was nothing to do).
    pub version: u64,
}

/// One file of the table: its log entry and its member ids' `[min, max]`.
struct TableFile {
    url: String,
    remove: deltalake_core::kernel::Remove,
    members: Option<(i64, i64)>,
    size: u64,
}

/// Compacts the Delta table `name` at `target`; see the module's documentation.
pub(crate) async fn compact(
    ctx: &SessionContext,
    name: &str,
    target: &Location,
) -> Result<CompactSummary, EngineError> {
    let sort_order: Vec<String> = dataset_sort_order(name)
        .iter()
        .map(|c| c.to_string())
        .collect();
    let mut log = delta_table(ctx, target)?;
    log.load().await.map_err(|e| delta_error(target, e))?;
    let (store, table_url) = table_store(ctx, target)?;
    let root = table_root(ctx, target)?;
    let state = log.snapshot().map_err(|e| delta_error(target, e))?;
    let logical = state.snapshot().arrow_schema();
    let metas: Vec<_> = state
        .log_data()
        .iter()
        .map(|view| (view.remove_action(false), file_meta(&root, &view)))
        .collect();
    let Some((_, first)) = metas.first() else {
        return Ok(nothing_to_do(state.version()));
    };
    let format = ParquetFormat::default();
    let stored = format
        .infer_schema(&ctx.state(), &store, std::slice::from_ref(first))
        .await?;
    let schema = with_stored_types(&logical, &stored).unwrap_or(logical);
    let ranged = has_member_ranges(&schema, &sort_order);
    let session = ctx.state();
    let mut files = Vec::with_capacity(metas.len());
    for (remove, meta) in metas {
        let members = match ranged {
            true => {
                let metadata = footer(&session, &store, &meta).await?;
                let statistics =
                    DFParquetMetadata::statistics_from_parquet_metadata(&metadata, &schema)?;
                FileStats::from_statistics(&schema, &statistics).range_of("member_id")
            }
            false => None,
        };
        let url = table_url
            .join(&remove.path)
            .map_err(|e| EngineError::Invalid(format!("{target}: {}: {e}", remove.path)))?;
        files.push(TableFile {
            url: url.to_string(),
            remove,
            members,
            size: meta.size,
        });
    }
    // a table no Audience writer created has no member ranges yet: they
    // are chosen from its rows and recorded first, so later loads split
    // their rows the same way
    let starts = match (ranged, stored_ranges(&log, target)?) {
        (false, _) => vec![i64::MIN],
        (true, Some(starts)) => starts,
        (true, None) => {
            let urls: Vec<&str> = files.iter().map(|f| f.url.as_str()).collect();
            let mut ids = ctx
                .read_parquet(urls, ParquetReadOptions::default())
                .await?
                .select(vec![col("member_id")])?
                .execute_stream()
                .await?;
            let mut sample = MemberSample::default();
            while let Some(batch) = ids.next().await {
                sample.add(&batch?)?;
            }
            let starts = sample.ranges();
            let text: Vec<String> = starts.iter().map(i64::to_string).collect();
            let (key, value) = (MEMBER_RANGES_PROPERTY.to_string(), text.join(","));
            let metadata = state
                .metadata()
                .clone()
                .add_config_key(key.clone(), value.clone())
                .map_err(|e| EngineError::Invalid(format!("{target}: {e}")))?;
            let operation = DeltaOperation::SetTableProperties {
                properties: [(key, value)].into(),
            };
            CommitBuilder::default()
                .with_actions(vec![Action::Metadata(metadata)])
                .build(Some(&CommitBase::new(state)), log.log_store(), operation)
                .await
                .map_err(|e| delta_error(target, e))?;
            log.update_state()
                .await
                .map_err(|e| delta_error(target, e))?;
            failpoints::point("compact:ranges_recorded").await;
            starts
        }
    };
    let plan = plan_ranges(&files, &starts);
    if plan.iter().all(Vec::is_empty) {
        return Ok(nothing_to_do(log.version().unwrap_or_default()));
    }
    let written = write_compacted(
        ctx,
        &store,
        &root,
        &schema,
        &sort_order,
        &files,
        &plan,
        &starts,
    )
    .await;
    let (adds, rows) = match written {
        Ok(written) => written,
        Err((e, partial)) => {
            forget(&store, &root, &partial).await;
            return Err(EngineError::Invalid(format!(
                "cannot compact {target}: {e}"
            )));
        }
    };
    let replaced: Vec<usize> = {
        let mut all: Vec<usize> = plan.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let mut actions: Vec<Action> = replaced
        .iter()
        .map(|&i| Action::Remove(files[i].remove.clone()))
        .collect();
    actions.extend(adds.iter().cloned().map(Action::Add));
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: files.iter().map(|f| f.size as i64).max().unwrap_or(0),
    };
    failpoints::point("compact:files_written").await;
    let removed: Vec<&str> = replaced
        .iter()
        .map(|&i| files[i].remove.path.as_str())
        .collect();
    match commit_rebased(&mut log, target, &removed, actions, operation).await {
        Ok(version) => {
            failpoints::point("compact:committed").await;
            Ok(CompactSummary {
                files_removed: replaced.len(),
                files_written: adds.len(),
                rows,
                version,
            })
        }
        Err(e) => {
            forget(&store, &root, &adds).await;
            Err(e)
        }
    }
}

/// Most commits a compaction tries, each over a newer version.
const COMMIT_ATTEMPTS: usize = 50;

/// Commits `actions` (which remove the files `removed`) over the newest
/// version, again over each newer version a concurrent writer commits
/// first, as long as every file in `removed` is still in the table. (delta-rs
/// does not count two removals of one file as a conflict when they change no
/// data, so a second compaction of the same files would commit them twice.)
async fn commit_rebased(
    log: &mut DeltaTable,
    target: &Location,
    removed: &[&str],
    actions: Vec<Action>,
    operation: DeltaOperation,
) -> Result<u64, EngineError> {
    for _ in 0..COMMIT_ATTEMPTS {
        log.update_state()
            .await
            .map_err(|e| delta_error(target, e))?;
        let state = log.snapshot().map_err(|e| delta_error(target, e))?;
        let current: HashSet<String> = state
            .log_data()
            .iter()
            .map(|f| f.path().to_string())
            .collect();
        if let Some(gone) = removed.iter().find(|path| !current.contains(**path)) {
            return Err(EngineError::Invalid(format!(
                "{target} changed while compacting: {gone} was removed by another compaction \
                 (version {}); nothing was changed, run it again",
                state.version()
            )));
        }
        // exactly the next version, or nothing: a writer that took it
        // first is checked for above before trying the one after
        let committed = CommitBuilder::default()
            .with_actions(actions.clone())
            .with_max_retries(0)
            .build(
                Some(&CommitBase::new(state)),
                log.log_store(),
                operation.clone(),
            )
            .await;
        match committed {
            Ok(commit) => return Ok(commit.version()),
            Err(DeltaTableError::Transaction {
                source:
                    TransactionError::MaxCommitAttempts(_) | TransactionError::VersionAlreadyExists(_),
            })
            | Err(DeltaTableError::VersionAlreadyExists(_)) => continue,
            Err(e) => return Err(delta_error(target, e)),
        }
    }
    Err(EngineError::Invalid(format!(
        "{target}: other writers committed {COMMIT_ATTEMPTS} times while compacting; \
         nothing was changed, run it again"
    )))
}

fn nothing_to_do(version: u64) -> CompactSummary {
    CompactSummary {
        files_removed: 0,
        files_written: 0,
        rows: 0,
        version,
    }
}

/// For each member range, the files to merge into one: every file of a
/// range that holds more than one, and of a range that a file spanning
/// several ranges (or one whose range is unknown) touches; empty for a
/// range that is compact already.
fn plan_ranges(files: &[TableFile], starts: &[i64]) -> Vec<Vec<usize>> {
    let mut touching: Vec<Vec<usize>> = vec![Vec::new(); starts.len()];
    let mut spanned = vec![false; starts.len()];
    for (i, file) in files.iter().enumerate() {
        let (first, last) = match file.members {
            Some((lo, hi)) => (range_of(starts, lo), range_of(starts, hi)),
            None => (0, starts.len() - 1),
        };
        for range in first..=last {
            touching[range].push(i);
            spanned[range] |= first != last;
        }
    }
    touching
        .into_iter()
        .zip(spanned)
        .map(|(files, spanned)| match files.len() > 1 || spanned {
            true => files,
            false => Vec::new(),
        })
        .collect()
}

/// Writes one sorted file per planned range: its files' rows of that range.
/// Returns the new files' log entries and rows, or the error and the files
/// written before it.
#[allow(clippy::too_many_arguments)]
async fn write_compacted(
    ctx: &SessionContext,
    store: &Arc<dyn ObjectStore>,
    root: &ObjectPath,
    schema: &SchemaRef,
    sort_order: &[String],
    files: &[TableFile],
    plan: &[Vec<usize>],
    starts: &[i64],
) -> Result<(Vec<Add>, u64), (WriteError, Vec<Add>)> {
    let tag = format!("compact{}", std::process::id());
    let mut adds: Vec<Add> = Vec::new();
    let mut rows = 0u64;
    for (range, members) in plan.iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        let urls: Vec<&str> = members.iter().map(|&i| files[i].url.as_str()).collect();
        let result = async {
            let mut df = ctx
                .read_parquet(urls, ParquetReadOptions::default().schema(schema))
                .await?;
            if starts.len() > 1 {
                df = df.filter(col("member_id").gt_eq(lit(starts[range])))?;
                if let Some(next) = starts.get(range + 1) {
                    df = df.filter(col("member_id").lt(lit(*next)))?;
                }
            }
            let order: Vec<_> = sort_order
                .iter()
                .map(|c| col(format!("\"{c}\"")).sort(true, false))
                .collect();
            if !order.is_empty() {
                df = df.sort(order)?;
            }
            let stream = df.execute_stream().await?;
            let name = file_name(range, &tag);
            let mut add = write_file(store, root, &name, schema, sort_order, stream).await?;
            add.data_change = false;
            Ok::<_, WriteError>(add)
        }
        .await;
        match result {
            Ok(add) => {
                rows += add_rows(&add);
                adds.push(add);
            }
            Err(e) => return Err((e, adds)),
        }
    }
    Ok((adds, rows))
}

/// The row count a log entry's statistics record.
fn add_rows(add: &Add) -> u64 {
    add.stats
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|s| s["numRecords"].as_u64())
        .unwrap_or(0)
}

/// Deletes files written for a commit that did not happen (best effort: what
/// remains is unreferenced, and `audience vacuum` removes it).
async fn forget(store: &Arc<dyn ObjectStore>, root: &ObjectPath, adds: &[Add]) {
    for add in adds {
        let path = root.clone().join(add.path.as_str());
        if let Err(e) = store.delete(&path).await {
            tracing::warn!(file = %path, error = %e, "cannot remove an uncommitted file");
        }
    }
}
