//! Structured logs on stderr: text or JSON, filtered by AUDIENCE_LOG or RUST_LOG.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// The filter when neither variable is set. A Ballista task's plan keeps the
/// scan's member-range declaration while holding only its own file group, so
/// DataFusion warns and falls back to unknown partitioning on every task: the
/// fallback is the right plan for one task, so that warning is not shown.
const DEFAULT_FILTER: &str = "warn,audience=info,datafusion_datasource::file_scan_config=error";

/// Installs the global subscriber. Colours only on a terminal: a pipe, a file
/// or CI gets plain text.
pub(crate) fn init(format: &LogFormat) {
    let filter = std::env::var("AUDIENCE_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
