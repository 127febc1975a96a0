//! The embedded sample dataset (scale tiny) that `audience query` uses when no
//! data is configured; generated on first use.

use std::path::PathBuf;

use audience_data::{GenConfig, Scale};

use crate::error::CliError;

/// Identifies what generated the sample; a folder with another stamp is regenerated.
fn stamp() -> String {
    format!(
        "audience-data {} scale=tiny seed=42 tag_bitmaps\n",
        audience_data::GENERATOR_VERSION
    )
}

const STAMP_FILE: &str = ".audience-sample";

/// The sample folder: `data/sample` in the source tree, or the user cache when
/// the binary runs away from its source tree.
fn sample_dir() -> PathBuf {
    let source_data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    if source_data.is_dir() {
        return source_data.join("sample");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("audience").join("sample")
}

/// The sample dataset folder, generated first if absent or stale.
pub(crate) fn ensure_sample() -> Result<PathBuf, CliError> {
    let dir = sample_dir();
    if std::fs::read_to_string(dir.join(STAMP_FILE)).is_ok_and(|s| s == stamp()) {
        return Ok(dir);
    }
    let parent = dir.parent().unwrap_or(&dir).to_path_buf();
    std::fs::create_dir_all(&parent)
        .map_err(|e| CliError::internal(format!("cannot create {}: {e}", parent.display())))?;
    // Generate beside the target and rename, so concurrent first uses never see half a dataset.
    let tmp = parent.join(format!(".sample-{}", std::process::id()));
    eprintln!(
        "generating the sample dataset (scale tiny) in {} ...",
        dir.display()
    );
    let mut config = GenConfig::new(Scale::Tiny, &tmp);
    config.threads = config.threads.min(2);
    crate::generate::generate_with_progress(&config)?;
    crate::index::index_folder(&tmp)?;
    std::fs::write(tmp.join(STAMP_FILE), stamp())
        .map_err(|e| CliError::internal(format!("cannot write {}: {e}", tmp.display())))?;
    if dir.exists() && std::fs::read_to_string(dir.join(STAMP_FILE)).is_ok_and(|s| s == stamp()) {
        // another process finished first
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(STAMP_FILE).exists() {
            return Err(CliError::internal(format!(
                "cannot move sample into {}: {e}",
                dir.display()
            )));
        }
    }
    Ok(dir)
}
