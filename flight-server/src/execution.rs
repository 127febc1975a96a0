//! The one execution path every statement a client sends takes — a query
//! streamed by `DoGet`, the leading statements of `A; B`, an update through
//! `DoPut`, a prepared update: a slot from admission, `server.query_timeout`
//! from the moment it starts, the engine's memory read while it runs,
//! cancellation, and one log line when it ends (CONVENTIONS §9). A query
//! whose result the cache holds is answered from it, without a slot.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch, UInt64Array};
use arrow::datatypes::SchemaRef;
use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use datafusion::dataframe::DataFrame;
use datafusion::sql::parser::Statement;
use futures::{Stream, TryStreamExt};
use tonic::Status;

use crate::access::access_of;
use crate::auth::Identity;
use crate::flight_schema::flight_schema;
use crate::query_stream::{QueryRecord, QueryStream, sql_for_log};
use crate::result_cache::Keeping;
use crate::service::FlightSqlServer;
use crate::status::engine_status;
use crate::ttl_map::random_handle;

/// Target size of one streamed message: under the 4 MiB that Java and Go gRPC
/// clients accept by default.
const MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// A stream of gRPC replies.
pub(crate) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A statement planned in `GetFlightInfo`, waiting for its `DoGet`.
pub(crate) struct Planned {
    /// The user who planned it; only they may redeem its ticket.
    pub(crate) owner: String,
    /// The SQL as sent.
    pub(crate) sql: Arc<str>,
    /// The result's schema as served.
    pub(crate) schema: SchemaRef,
    /// Logical planning time.
    pub(crate) plan: Duration,
    /// What `DoGet` serves.
    pub(crate) result: PlannedResult,
}

/// What a ticket's `DoGet` serves.
pub(crate) enum PlannedResult {
    /// A query, executed when the ticket is redeemed.
    Query(DataFrame),
    /// The result of a statement that already ran to completion on the
    /// execution path (DDL, `COPY … TO`): served as is.
    Done(Vec<RecordBatch>),
}

impl Planned {
    /// A query planned for `who`, to execute when its ticket is redeemed.
    pub(crate) fn query(who: &Identity, sql: &str, frame: DataFrame, started: Instant) -> Self {
        Planned {
            owner: who.user.clone(),
            sql: sql.into(),
            schema: flight_schema(frame.schema().as_arrow()),
            plan: started.elapsed(),
            result: PlannedResult::Query(frame),
        }
    }

    /// The finished result of a statement that ran when planned.
    pub(crate) fn done(who: &Identity, sql: &str, (schema, batches): Finished) -> Self {
        Planned {
            owner: who.user.clone(),
            sql: sql.into(),
            schema,
            plan: Duration::ZERO,
            result: PlannedResult::Done(batches),
        }
    }
}

/// A statement's finished result: schema and batches, as served.
pub(crate) type Finished = (SchemaRef, Vec<RecordBatch>);

/// Streams `planned` (its ticket `handle`) as Flight data: a query within a
/// slot and the timeout, a finished result as it is.
pub(crate) async fn stream(
    server: &FlightSqlServer,
    handle: &str,
    planned: Planned,
) -> Result<BoxStream<FlightData>, Status> {
    let schema = Arc::clone(&planned.schema);
    let batches = match planned.result {
        PlannedResult::Done(batches) => {
            let batches = futures::stream::iter(batches.into_iter().map(Ok));
            encode(schema, batches)
        }
        PlannedResult::Query(frame) => {
            // a key pins the versions the query reads: failing to read them
            // (the store is down) is the query's failure
            let key = match server.results.key(&frame).await {
                Ok(key) => key,
                Err(e) => {
                    let e = engine_status(e);
                    log_rejected(&planned.owner, &planned.sql, Instant::now(), &e);
                    return Err(e);
                }
            };
            if let Some(batch) = key.as_deref().and_then(|k| server.results.get(k)) {
                log_cached(
                    handle,
                    &planned.owner,
                    &planned.sql,
                    planned.plan,
                    &frame,
                    &batch,
                );
                return Ok(encode(schema, futures::stream::iter([Ok(batch)])));
            }
            let slot = server.admission.admit().await?;
            let started = Instant::now();
            let record = QueryRecord {
                handle: handle.to_string(),
                user: planned.owner,
                sql: planned.sql,
                plan: planned.plan,
                slot,
                started,
                tables: None,
            };
            let running = start(server, frame, record, Arc::clone(&schema));
            let running = Keeping::new(
                running,
                Arc::clone(&schema),
                Arc::clone(&server.results),
                key,
            );
            encode(schema, running.map_err(|s| FlightError::Tonic(Box::new(s))))
        }
    };
    Ok(batches)
}

/// Runs `statement` (part of `sql`, already authorized) to completion on the
/// execution path and returns its result: for the leading statements of a
/// multi-statement text, updates, and prepared updates.
pub(crate) async fn run_to_completion(
    server: &FlightSqlServer,
    who: &Identity,
    sql: &str,
    statement: Statement,
) -> Result<Finished, Status> {
    let slot = server.admission.admit().await?;
    let started = Instant::now();
    // DDL and `COPY … TO` do their work while planned: the deadline covers it.
    let engine = if access_of(&statement).is_read() {
        server.engine_of(who)
    } else {
        server.session_of(who)
    };
    let planned = tokio::time::timeout(server.query_timeout, engine.plan(statement)).await;
    let frame = match planned {
        Ok(Ok(frame)) => frame,
        Ok(Err(e)) => {
            let e = engine_status(e);
            log_rejected(&who.user, sql, started, &e);
            return Err(e);
        }
        Err(_) => {
            let e = timed_out(server.query_timeout);
            log_rejected(&who.user, sql, started, &e);
            return Err(e);
        }
    };
    let schema = flight_schema(frame.schema().as_arrow());
    let record = QueryRecord {
        handle: random_handle(),
        user: who.user.clone(),
        sql: sql.into(),
        plan: started.elapsed(),
        slot,
        started,
        tables: None,
    };
    let batches = start(server, frame, record, Arc::clone(&schema))
        .try_collect()
        .await?;
    Ok((schema, batches))
}

/// Executes `frame` on the query runtime as the query `record` describes: the
/// stream that enforces the deadline, serves cancellation and writes the log line.
fn start(
    server: &FlightSqlServer,
    frame: DataFrame,
    mut record: QueryRecord,
    schema: SchemaRef,
) -> QueryStream {
    record.tables = audience_engine::TableVersions::of(&frame);
    let (batches, pool) = server.queries.execute(frame);
    QueryStream::new(
        batches,
        schema,
        server.query_timeout,
        record,
        Arc::clone(&server.running),
        Box::new(move || pool.peak_reserved()),
    )
}

/// Batches as Flight messages of at most [`MESSAGE_BYTES`].
fn encode(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
) -> BoxStream<FlightData> {
    let flight = FlightDataEncoderBuilder::new()
        .with_max_flight_data_size(MESSAGE_BYTES)
        .with_schema(schema)
        .build(batches)
        .map_err(Status::from);
    Box::pin(flight)
}

/// The status of a statement stopped by `server.query_timeout`.
pub(crate) fn timed_out(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the query ran longer than server.query_timeout ({timeout:?}) and was stopped"
    ))
}

/// The log line of a query answered from the result cache (CONVENTIONS §9).
fn log_cached(
    handle: &str,
    user: &str,
    sql: &str,
    plan: Duration,
    frame: &DataFrame,
    batch: &RecordBatch,
) {
    let tables = audience_engine::TableVersions::of(frame);
    tracing::info!(
        target: "audience::query",
        query = %crate::query_stream::short(handle),
        user = %user,
        outcome = "cached",
        plan_ms = plan.as_millis() as u64,
        rows = batch.num_rows(),
        bytes = batch.get_array_memory_size(),
        tables = %tables.map(|t| t.to_string()).unwrap_or_default(),
        sql = %sql_for_log(sql),
        "query"
    );
}

/// The log line of a statement that failed before it could run (CONVENTIONS §9).
pub(crate) fn log_rejected(user: &str, sql: &str, started: Instant, error: &Status) {
    tracing::info!(
        target: "audience::query",
        user = %user,
        outcome = "rejected",
        code = ?error.code(),
        plan_ms = started.elapsed().as_millis() as u64,
        error = %error.message(),
        sql = %sql_for_log(sql),
        "query"
    );
}

/// The number of rows a `COPY` wrote (its `count` column); 0 for DDL.
pub(crate) fn rows_written(batches: &[RecordBatch]) -> i64 {
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_any().downcast_ref::<UInt64Array>())
        .map(|c| c.iter().flatten().sum::<u64>() as i64)
        .sum()
}
