//! Atomic `COPY (query) TO 'target'`: the result is written under a hidden
//! temporary name beside the target and renamed into place only when complete,
//! so readers never see a partial export, and a failed or cancelled export
//! leaves nothing at the target.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{CopyToStatement, Statement};

use crate::catalog::local_location;
use crate::error::EngineError;

/// Runs `copy` to completion with its output moved into place atomically and
/// returns its result (one row: the number of rows written).
pub(crate) async fn copy_atomically(
    ctx: &SessionContext,
    mut copy: CopyToStatement,
) -> Result<Vec<RecordBatch>, EngineError> {
    let target = local_location(&format!("COPY target '{}'", copy.target), &copy.target)?;
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
    // Removed when dropped: on error, and when the query is cancelled.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.partial-", name.to_string_lossy()))
        .tempdir_in(&parent)
        .map_err(|e| EngineError::Invalid(format!("cannot write in {}: {e}", parent.display())))?;
    let staged = staging.path().join(&name);
    copy.target = staged.to_string_lossy().into_owned();
    if directory && !copy.target.ends_with('/') {
        copy.target.push('/');
    }
    let plan = ctx
        .state()
        .statement_to_plan(Statement::CopyTo(copy))
        .await?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
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
