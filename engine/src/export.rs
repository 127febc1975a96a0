//! Atomic `COPY (query) TO 'target'`: the result is written under a hidden
//! temporary name beside the target and moved into place only when complete
//! (a rename on a local file system, a server-side copy on S3), so readers
//! never see a partial export, and a failed or cancelled export leaves nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{CopyToStatement, Statement};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::EngineError;
use crate::leftovers::remove_left_by_gone_processes;
use crate::storage::{Location, s3_failure, storage_error};

/// Runs `copy` to completion with its output moved into place atomically and
/// returns its result (one row: the number of rows written).
pub(crate) async fn copy_atomically(
    ctx: &SessionContext,
    copy: CopyToStatement,
) -> Result<Vec<RecordBatch>, EngineError> {
    let what = format!("COPY target '{}'", copy.target);
    match Location::parse(&what, &copy.target)? {
        Location::Local(target) => copy_to_file(ctx, copy, target).await,
        target => copy_to_object(ctx, copy, target).await,
    }
}

/// The number of rows a `COPY` reports having written (one row, one column).
pub(crate) fn rows_copied(batches: &[RecordBatch]) -> Result<u64, EngineError> {
    batches
        .first()
        .filter(|b| b.num_rows() == 1 && b.num_columns() == 1)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
        })
        .map(|c| c.value(0))
        .ok_or_else(|| EngineError::Internal("COPY returned no row count".into()))
}

/// Runs `copy` and returns its batches.
async fn run_copy(
    ctx: &SessionContext,
    copy: CopyToStatement,
) -> Result<Vec<RecordBatch>, EngineError> {
    let plan = ctx
        .state()
        .statement_to_plan(Statement::CopyTo(copy))
        .await?;
    Ok(ctx.execute_logical_plan(plan).await?.collect().await?)
}

/// An export to one S3 object: written to a hidden key beside it, then copied
/// into place by the server in one request (the target appears whole), and the
/// hidden key deleted, also on failure or cancellation.
async fn copy_to_object(
    ctx: &SessionContext,
    mut copy: CopyToStatement,
    target: Location,
) -> Result<Vec<RecordBatch>, EngineError> {
    let Location::S3 { bucket, key } = &target else {
        return Err(EngineError::Internal(format!("{target} is not an object")));
    };
    if writes_directory(&copy) {
        return Err(EngineError::Invalid(format!(
            "COPY to {target}: an export to S3 is one object; name the file with its \
             extension (e.g. s3://{bucket}/segments/vip.parquet)"
        )));
    }
    let name = target
        .file_name()
        .ok_or_else(|| EngineError::Invalid(format!("COPY target {target} names no object")))?;
    let store = ctx
        .runtime_env()
        .object_store(ObjectStoreUrl::parse(format!("s3://{bucket}"))?)?;
    let parent = key.rsplit_once('/').map_or("", |(p, _)| p);
    remove_stale_staging(store.as_ref(), parent).await;
    let staged_key = format!(
        "{}{}{STAGING}{}-{name}",
        parent,
        if parent.is_empty() { "" } else { "/" },
        unique_suffix()
    );
    let staged = StagedObject {
        store: Arc::clone(&store),
        path: Some(ObjectPath::from(staged_key.as_str())),
    };
    copy.target = format!("s3://{bucket}/{staged_key}");
    let from = ObjectPath::from(staged_key.as_str());
    let result = match run_copy(ctx, copy).await {
        Ok(batches) => store
            .copy(&from, &target.object_path())
            .await
            .map(|()| batches)
            .map_err(|e| storage_error(&target, e)),
        Err(e) => Err(s3_failure(&target, &e.to_string()).unwrap_or(e)),
    };
    // Awaited here, not left to `Drop`: a CLI exits as soon as this returns.
    staged.delete().await;
    if result.is_ok() {
        tracing::info!(%target, "export complete");
    }
    result
}

/// A hidden staging object, deleted when dropped (a failed or cancelled export).
struct StagedObject {
    store: Arc<dyn ObjectStore>,
    path: Option<ObjectPath>,
}

impl StagedObject {
    async fn delete(mut self) {
        if let Some(path) = self.path.take() {
            let _ = self.store.delete(&path).await;
        }
    }
}

impl Drop for StagedObject {
    fn drop(&mut self) {
        let (Some(path), Ok(runtime)) = (self.path.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let store = Arc::clone(&self.store);
        runtime.spawn(async move {
            let _ = store.delete(&path).await;
        });
    }
}

/// How a staging object's name begins: `.partial-PID-NANOS-NAME`, its
/// writer's process id and start time (nanoseconds since 1970), in hex.
const STAGING: &str = ".partial-";

/// A staging object older than this is a killed export's: a live export
/// copies and deletes its staging object as soon as its upload completes.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);

/// A name part no concurrent export shares: `PID-NANOS`.
fn unique_suffix() -> String {
    format!("{:x}-{:x}", std::process::id(), now_nanos())
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// When the export that staged `name` started, by its name (nanoseconds).
fn staged_at(name: &str) -> Option<u128> {
    let mut parts = name.strip_prefix(STAGING)?.splitn(3, '-');
    let (_pid, nanos, _target) = (parts.next()?, parts.next()?, parts.next()?);
    u128::from_str_radix(nanos, 16).ok()
}

/// Removes what killed exports left directly under `parent`: staging objects
/// started more than [`STALE_STAGING`] ago. (A multipart upload a killed
/// export left incomplete is no object: the bucket's lifecycle rule for
/// incomplete uploads removes it.) Best effort: a listing or deletion that
/// fails leaves the objects, which readers skip as hidden.
async fn remove_stale_staging(store: &dyn ObjectStore, parent: &str) {
    let prefix = (!parent.is_empty()).then(|| ObjectPath::from(parent));
    let Ok(listing) = store.list_with_delimiter(prefix.as_ref()).await else {
        return;
    };
    let stale_before = now_nanos().saturating_sub(STALE_STAGING.as_nanos());
    for object in listing.objects {
        let started = object.location.filename().and_then(staged_at);
        if started.is_some_and(|t| t < stale_before) && store.delete(&object.location).await.is_ok()
        {
            tracing::info!(object = %object.location, "removed what a killed export left");
        }
    }
}

/// An export to a local file or folder: staged in a hidden folder beside it,
/// renamed into place.
async fn copy_to_file(
    ctx: &SessionContext,
    mut copy: CopyToStatement,
    target: PathBuf,
) -> Result<Vec<RecordBatch>, EngineError> {
    let directory = writes_directory(&copy);
    let name = target
        .file_name()
        .ok_or_else(|| {
            EngineError::Invalid(format!("COPY target '{}' names no file", copy.target))
        })?
        .to_owned();
    if target.is_dir() {
        return Err(EngineError::Invalid(format!(
            "COPY target {} already exists as a folder; remove it or choose a new name",
            target.display()
        )));
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| {
        EngineError::Invalid(format!("cannot create folder {}: {e}", parent.display()))
    })?;
    // Removed when dropped: on error, and when the query is cancelled; one
    // left by a killed process is removed by the next export to this target.
    let prefix = format!(".{}.partial-", name.to_string_lossy());
    remove_left_by_gone_processes(&parent, &prefix);
    let staging = tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .tempdir_in(&parent)
        .map_err(|e| EngineError::Invalid(format!("cannot write in {}: {e}", parent.display())))?;
    let staged = staging.path().join(&name);
    copy.target = staged.to_string_lossy().into_owned();
    if directory && !copy.target.ends_with('/') {
        copy.target.push('/');
    }
    let batches = run_copy(ctx, copy).await?;
    if !staged.exists() {
        // Nothing written (an empty result in folder mode): an empty folder.
        std::fs::create_dir_all(&staged).map_err(|e| io_error(&staged, e))?;
    }
    // One rename: atomic on one file system. The staging folder goes when dropped.
    std::fs::rename(&staged, &target).map_err(|e| {
        EngineError::Invalid(format!(
            "cannot move the finished export into place at {}: {e}",
            target.display()
        ))
    })?;
    drop(staging);
    tracing::info!(target = %target.display(), "export complete");
    Ok(batches)
}

fn io_error(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::Invalid(format!("cannot write {}: {e}", path.display()))
}

/// Whether DataFusion will write a folder of files (rather than one file) for `copy`.
fn writes_directory(copy: &CopyToStatement) -> bool {
    let option = copy
        .options
        .iter()
        .find(|(k, _)| {
            k.eq_ignore_ascii_case("single_file_output") || k.ends_with(".single_file_output")
        })
        .map(|(_, v)| v.to_string().trim_matches('\'').to_ascii_lowercase());
    match option.as_deref() {
        Some("true") => false,
        Some("false") => true,
        _ => {
            let last = copy.target.rsplit('/').next().unwrap_or("");
            copy.target.ends_with('/')
                || !copy.partitioned_by.is_empty()
                || !last.contains('.')
                || last.ends_with('.')
        }
    }
}
