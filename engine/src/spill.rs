//! Spilling to disk: the `engine.spill_limit` setting, and a spill folder per
//! process whose leftovers (a process killed mid-spill) the next one removes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};

use crate::error::EngineError;
use crate::leftovers::remove_left_by_gone_processes;
use crate::memory::parse_size;

/// How spill folders are named: `audience-spill-PID-…`.
const FOLDER_PREFIX: &str = "audience-spill-";

/// The disk manager for `spill_dir` (empty: the system temp folder) and
/// `spill_limit`: spill files go in this process's folder under it, and all
/// queries' spill files together may take at most the limit (`"0"`: no spilling).
pub(crate) fn disk_manager(
    spill_dir: &str,
    spill_limit: &str,
) -> Result<DiskManagerBuilder, EngineError> {
    let Some(limit) = parse_spill_limit(spill_limit)? else {
        return Ok(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled));
    };
    let root = match spill_dir {
        "" => std::env::temp_dir(),
        dir => PathBuf::from(dir),
    };
    Ok(DiskManagerBuilder::default()
        .with_mode(DiskManagerMode::Directories(vec![process_folder(&root)?]))
        .with_max_temp_directory_size(limit))
}

/// Bytes for `engine.spill_limit`: a size (`"100GB"`), `"unlimited"`, or
/// `"0"` for no spilling (`None`).
pub(crate) fn parse_spill_limit(text: &str) -> Result<Option<u64>, EngineError> {
    let t = text.trim();
    if t == "0" {
        return Ok(None);
    }
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(Some(u64::MAX));
    }
    parse_size(t).map(|bytes| Some(bytes as u64)).ok_or_else(|| {
        EngineError::Config(format!(
            "engine.spill_limit must be a size like \"100GB\" or \"512MiB\", \"unlimited\", or \"0\" (no spilling); got \"{text}\""
        ))
    })
}

/// This process's spill folder under `root`, created on first use after
/// removing the folders of processes that are gone (killed mid-spill). It
/// lives as long as the process; DataFusion removes each spill file when done.
fn process_folder(root: &Path) -> Result<PathBuf, EngineError> {
    static FOLDERS: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let mut folders = FOLDERS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| EngineError::Internal("spill folder registry lock poisoned".into()))?;
    if let Some(folder) = folders.get(root) {
        return Ok(folder.clone());
    }
    let cannot = |e: std::io::Error| {
        EngineError::Config(format!(
            "engine.spill_dir: cannot create a spill folder in {}: {e}",
            root.display()
        ))
    };
    std::fs::create_dir_all(root).map_err(cannot)?;
    remove_left_by_gone_processes(root, FOLDER_PREFIX);
    let folder = tempfile::Builder::new()
        .prefix(&format!("{FOLDER_PREFIX}{}-", std::process::id()))
        .tempdir_in(root)
        .map_err(cannot)?
        .keep();
    folders.insert(root.to_path_buf(), folder.clone());
    Ok(folder)
}

/// Whether `message` is DataFusion's refusal to spill past the disk limit.
pub(crate) fn is_spill_limit_error(message: &str) -> bool {
    message.contains("during the spilling process has exceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spill_limits() -> Result<(), EngineError> {
        assert_eq!(parse_spill_limit("100MiB")?, Some(100 << 20));
        assert_eq!(parse_spill_limit(" 2GB ")?, Some(2_000_000_000));
        assert_eq!(parse_spill_limit("unlimited")?, Some(u64::MAX));
        assert_eq!(parse_spill_limit("0")?, None);
        for bad in ["8XB", "50%", "", "-1GB"] {
            let e = parse_spill_limit(bad).expect_err(bad).to_string();
            assert!(e.contains("engine.spill_limit"), "{bad}: {e}");
        }
        Ok(())
    }

    #[test]
    fn a_gone_process_folder_is_removed_and_a_live_one_kept() -> Result<(), EngineError> {
        let root = tempfile::tempdir().map_err(|e| EngineError::Internal(e.to_string()))?;
        // pid 0 is never a process that left a folder; this process is alive
        let gone = root.path().join(format!("{FOLDER_PREFIX}0-abc"));
        std::fs::create_dir_all(gone.join("datafusion-x"))
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        std::fs::write(gone.join("datafusion-x/spill"), b"x")
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let mine = process_folder(root.path())?;
        assert!(!gone.exists(), "the gone process's folder stays");
        assert!(mine.is_dir() && mine.starts_with(root.path()));
        assert_eq!(process_folder(root.path())?, mine, "one folder per process");
        Ok(())
    }
}
