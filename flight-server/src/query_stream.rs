//! A running query's result stream as served: batches converted to the Flight
//! schema, a deadline, cancellation from `CancelFlightInfo`, and one log line
//! per query (CONVENTIONS §9) written when the stream ends — finished, failed,
//! timed out, cancelled, or dropped because the client went away. Dropping the
//! stream drops DataFusion's, which stops the query and frees its memory.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::Stream;
use futures::future::{AbortHandle, AbortRegistration};
use futures::stream::Abortable;
use tokio::time::Sleep;
use tonic::Status;

use crate::flight_schema::to_flight_batch;
use crate::limits::Slot;
use crate::status::{arrow_status, datafusion_status};

/// Queries now streaming, by ticket handle, with their users, so
/// `CancelFlightInfo` can stop them.
#[derive(Debug, Default)]
pub(crate) struct Running {
    queries: Mutex<HashMap<String, (String, AbortHandle)>>,
}

impl Running {
    /// Stops the query streaming under `handle`; false if none is.
    pub(crate) fn cancel(&self, handle: &str) -> bool {
        match self.lock().remove(handle) {
            Some((_, abort)) => {
                abort.abort();
                true
            }
            None => false,
        }
    }

    /// The user whose query streams under `handle`.
    pub(crate) fn owner(&self, handle: &str) -> Option<String> {
        self.lock().get(handle).map(|(user, _)| user.clone())
    }

    fn register(&self, handle: &str, user: &str) -> AbortRegistration {
        let (abort, registration) = AbortHandle::new_pair();
        self.lock()
            .insert(handle.to_string(), (user.to_string(), abort));
        registration
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, AbortHandle)>> {
        self.queries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the log line says about a query.
#[derive(Debug)]
pub(crate) struct QueryRecord {
    /// Ticket handle; also the query's id in logs (its first 12 characters).
    pub(crate) handle: String,
    /// Who ran it.
    pub(crate) user: String,
    /// The SQL, as sent.
    pub(crate) sql: Arc<str>,
    /// Planning time (logical in GetFlightInfo, physical in DoGet).
    pub(crate) plan: Duration,
    /// The query's execution slot, held until the stream ends.
    pub(crate) slot: Slot,
    /// When execution began.
    pub(crate) started: Instant,
    /// The Delta table versions the query reads (known once it is planned).
    pub(crate) tables: Option<Arc<audience_engine::TableVersions>>,
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Streaming,
    Finished,
    Failed,
    TimedOut,
    Cancelled,
}

/// The stream DoGet serves.
pub(crate) struct QueryStream {
    inner: Abortable<SendableRecordBatchStream>,
    schema: SchemaRef,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    record: QueryRecord,
    running: Arc<Running>,
    memory: Box<dyn Fn() -> usize + Send>,
    outcome: Outcome,
    rows: usize,
    bytes: usize,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("record", &self.record)
            .finish()
    }
}

impl QueryStream {
    /// Serves `inner` as `schema`, stopping it `timeout` after `record.started`;
    /// `memory` reads the most engine memory the query has held so far.
    pub(crate) fn new(
        inner: SendableRecordBatchStream,
        schema: SchemaRef,
        timeout: Duration,
        record: QueryRecord,
        running: Arc<Running>,
        memory: Box<dyn Fn() -> usize + Send>,
    ) -> Self {
        let registration = running.register(&record.handle, &record.user);
        QueryStream {
            inner: Abortable::new(inner, registration),
            schema,
            deadline: Box::pin(tokio::time::sleep_until((record.started + timeout).into())),
            timeout,
            record,
            running,
            memory,
            outcome: Outcome::Streaming,
            rows: 0,
            bytes: 0,
        }
    }

    fn end(
        &mut self,
        outcome: Outcome,
        error: Option<Status>,
    ) -> Poll<Option<Result<RecordBatch, Status>>> {
        self.outcome = outcome;
        if let Some(e) = &error {
            tracing::debug!(query = %short(&self.record.handle), error = %e.message(), "query stopped");
        }
        Poll::Ready(error.map(Err))
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.outcome != Outcome::Streaming {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let e = with_query_id(
                crate::execution::timed_out(self.timeout),
                &self.record.handle,
            );
            return self.end(Outcome::TimedOut, Some(e));
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) if self.inner.is_aborted() => {
                let e = Status::cancelled("the query was cancelled (CancelFlightInfo)");
                self.end(Outcome::Cancelled, Some(e))
            }
            Poll::Ready(None) => self.end(Outcome::Finished, None),
            Poll::Ready(Some(Err(e))) => {
                let status = with_query_id(datafusion_status(e), &self.record.handle);
                self.end(Outcome::Failed, Some(status))
            }
            Poll::Ready(Some(Ok(batch))) => match to_flight_batch(&batch, &self.schema) {
                Ok(batch) => {
                    self.rows += batch.num_rows();
                    self.bytes += batch.get_array_memory_size();
                    Poll::Ready(Some(Ok(batch)))
                }
                Err(e) => self.end(Outcome::Failed, Some(arrow_status(e))),
            },
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        self.running.lock().remove(&self.record.handle);
        let outcome = match self.outcome {
            // dropped mid-stream: the client disconnected or stopped reading
            Outcome::Streaming => "disconnected",
            Outcome::Finished => "finished",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::Cancelled => "cancelled",
        };
        tracing::info!(
            target: "audience::query",
            query = %short(&self.record.handle),
            user = %self.record.user,
            outcome,
            queue_ms = self.record.slot.waited.as_millis() as u64,
            plan_ms = self.record.plan.as_millis() as u64,
            execute_ms = self.record.started.elapsed().as_millis() as u64,
            rows = self.rows,
            bytes = self.bytes,
            engine_memory_peak_bytes = (self.memory)(),
            tables = %self.record.tables.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            sql = %sql_for_log(&self.record.sql),
            "query"
        );
    }
}

/// The SQL as logged: its first 300 characters.
pub(crate) fn sql_for_log(sql: &str) -> String {
    sql.chars().take(300).collect()
}

/// The id a handle goes by in logs.
pub(crate) fn short(handle: &str) -> &str {
    &handle[..handle.len().min(12)]
}

/// `status`, naming the query (its id in the log) when it is a bug to report
/// or a timeout to look into.
fn with_query_id(status: Status, handle: &str) -> Status {
    let code = status.code();
    if !matches!(code, tonic::Code::Internal | tonic::Code::DeadlineExceeded) {
        return status;
    }
    let message = format!("{} (query {})", status.message(), short(handle));
    Status::new(code, message)
}
