//! `audience vacuum`: deletes a Delta table's files that no version within
//! the retention still needs: files removed from the table (by compaction)
//! longer ago than the retention, and files no version ever referenced (a
//! crashed load's or compaction's) older than it. A file removed recently may
//! still be read by a query that started on an older snapshot, so the
//! retention has a floor no query outlives.

use std::sync::Arc;
use std::time::Duration;

use datafusion::prelude::SessionContext;
use deltalake_core::operations::vacuum::{Clock, VacuumMode};

use crate::delta_tables::{delta_error, delta_table};
use crate::error::EngineError;
use crate::storage::Location;

/// The shortest retention: longer than any query may run.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);

/// What a vacuum did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacuumSummary {
    /// Files deleted.
    pub files_deleted: usize,
    /// The table's version after the vacuum.
    pub version: u64,
}

/// A clock standing at a fixed time: what a vacuum run then would delete.
#[derive(Debug)]
struct At(i64);

impl Clock for At {
    fn current_timestamp_millis(&self) -> i64 {
        self.0
    }
}

/// Vacuums the Delta table at `target`, keeping what the last `retain`
/// needs, as if it were `now` (milliseconds since the epoch; by default the
/// present).
pub(crate) async fn vacuum(
    ctx: &SessionContext,
    target: &Location,
    retain: Duration,
    now: Option<i64>,
) -> Result<VacuumSummary, EngineError> {
    if retain < MIN_RETENTION {
        return Err(EngineError::Invalid(format!(
            "a retention of {} s is too short: a query that started before a compaction may \
             still read the files it removed; keep at least {} s (--retain 1h)",
            retain.as_secs(),
            MIN_RETENTION.as_secs()
        )));
    }
    let mut log = delta_table(ctx, target)?;
    log.load().await.map_err(|e| delta_error(target, e))?;
    let retention = chrono::Duration::from_std(retain)
        .map_err(|e| EngineError::Invalid(format!("retention {retain:?}: {e}")))?;
    let mut builder = log
        .vacuum()
        .with_mode(VacuumMode::Full)
        .with_retention_period(retention)
        .with_enforce_retention_duration(false);
    if let Some(now) = now {
        builder = builder.with_clock(Arc::new(At(now)));
    }
    let (log, metrics) = builder.await.map_err(|e| delta_error(target, e))?;
    Ok(VacuumSummary {
        files_deleted: metrics.files_deleted.len(),
        version: log.version().unwrap_or_default(),
    })
}
