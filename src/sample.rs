//! The embedded sample dataset (scale tiny) that `audience query` uses when no
//! data is configured; generated on first use.

use std::path::PathBuf;

use audience_data::Scale;

use crate::error::CliError;

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
    crate::generate::ensure_dataset(&dir, Scale::Tiny, Some(2))?;
    Ok(dir)
}
