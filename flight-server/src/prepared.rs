//! Prepared statements: created with their `?` parameters numbered and a
//! query planned once for its schemas, values bound by `DoPut`, executed
//! through a ticket like any statement, closed by their owner.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementResult,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, DoPutPreparedStatementResult,
};
use arrow_flight::{FlightDescriptor, FlightInfo, IpcMessage, SchemaAsIpc};
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::sql::parser::Statement;
use futures::TryStreamExt;
use tonic::{Request, Response, Status};

use crate::access::{Access, access_of, authorize};
use crate::auth::Identity;
use crate::execution::{Planned, log_rejected, rows_written, run_to_completion};
use crate::flight_schema::flight_schema;
use crate::placeholders::number_positional_placeholders;
use crate::service::FlightSqlServer;
use crate::statements::describe;
use crate::status::{arrow_status, bad_request, datafusion_status, engine_status};

/// A prepared statement: its SQL with `?` numbered, its plan, and bound values.
#[derive(Clone)]
pub(crate) struct Prepared {
    owner: String,
    sql: Arc<str>,
    statement: Statement,
    access: Access,
    /// A query's plan, made once when prepared; `None` for updates, which run
    /// when executed.
    frame: Option<DataFrame>,
    /// The type of each `$n` where the planner inferred one.
    parameters: Vec<Option<DataType>>,
    values: Option<Vec<ScalarValue>>,
}

/// Creates a prepared statement: a query is planned now for its schemas.
pub(crate) async fn create(
    server: &FlightSqlServer,
    who: &Identity,
    sql: &str,
) -> Result<ActionCreatePreparedStatementResult, Status> {
    let started = Instant::now();
    create_statement(server, who, sql)
        .await
        .inspect_err(|e| log_rejected(&who.user, sql, started, e))
}

async fn create_statement(
    server: &FlightSqlServer,
    who: &Identity,
    sql: &str,
) -> Result<ActionCreatePreparedStatementResult, Status> {
    server.refresh().await?;
    let mut statements = audience_engine::parse(sql).map_err(engine_status)?;
    if statements.len() != 1 {
        return Err(bad_request(format!(
            "a prepared statement holds exactly one SQL statement, got {}",
            statements.len()
        )));
    }
    let Some(mut statement) = statements.pop_front() else {
        return Err(bad_request("no SQL statement given"));
    };
    number_positional_placeholders(&mut statement);
    let access = access_of(&statement);
    authorize(who, &access, &server.export_prefixes)?;
    // Only queries are planned now; other statements would run when planned.
    let (frame, dataset_schema, parameters) = if access.is_read() {
        let frame = server
            .engine_of(who)
            .plan(statement.clone())
            .await
            .map_err(engine_status)?;
        let parameters = parameter_types(&frame)?;
        let schema = ipc_schema(&flight_schema(frame.schema().as_arrow()))?;
        (Some(frame), schema, parameters)
    } else {
        (None, bytes::Bytes::new(), Vec::new())
    };
    let parameter_schema = if parameters.is_empty() {
        bytes::Bytes::new()
    } else {
        let fields: Vec<Field> = parameters
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Field::new(
                    format!("${}", i + 1),
                    t.clone().unwrap_or(DataType::Null),
                    true,
                )
            })
            .collect();
        ipc_schema(&Schema::new(fields))?
    };
    let handle = server.prepared.insert(Arc::new(Prepared {
        owner: who.user.clone(),
        sql: sql.into(),
        statement,
        access,
        frame,
        parameters,
        values: None,
    }));
    Ok(ActionCreatePreparedStatementResult {
        prepared_statement_handle: handle.into_bytes().into(),
        dataset_schema,
        parameter_schema,
    })
}

/// `GetFlightInfo` of a prepared statement: its query with the bound values,
/// or an update run now (its result served by the ticket).
pub(crate) async fn flight_info(
    server: &FlightSqlServer,
    who: &Identity,
    query: CommandPreparedStatementQuery,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let started = Instant::now();
    let (_, prepared) = owned(server, who, &query.prepared_statement_handle)?;
    authorize(who, &prepared.access, &server.export_prefixes)?;
    let Some(frame) = &prepared.frame else {
        server.refresh().await?;
        let finished = run_to_completion(server, who, &prepared.sql, prepared.statement.clone());
        let planned = Planned::done(who, &prepared.sql, finished.await?);
        return describe(server, planned, descriptor);
    };
    let frame = match &prepared.values {
        Some(values) => frame
            .clone()
            .with_param_values(values.clone())
            .map_err(datafusion_status)?,
        None if !prepared.parameters.is_empty() => {
            return Err(bad_request(format!(
                "bind values for the statement's {} parameters (DoPut) before executing it",
                prepared.parameters.len()
            )));
        }
        None => frame.clone(),
    };
    // each execution reads the newest versions, as an ad-hoc query does
    let frame = audience_engine::TableVersions::unpinned(frame);
    describe(
        server,
        Planned::query(who, &prepared.sql, frame, started),
        descriptor,
    )
}

/// `DoPut` of parameter values: one row, kept with the statement for its
/// next executions.
pub(crate) async fn bind(
    server: &FlightSqlServer,
    query: CommandPreparedStatementQuery,
    request: Request<PeekableFlightDataStream>,
) -> Result<DoPutPreparedStatementResult, Status> {
    let who = server.who(&request)?;
    let (handle, prepared) = owned(server, &who, &query.prepared_statement_handle)?;
    let batches: Vec<RecordBatch> =
        arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            request.into_inner().map_err(FlightError::from),
        )
        .try_collect()
        .await
        .map_err(|e| bad_request(format!("cannot read the bound parameter values: {e}")))?;
    let bound = Prepared {
        values: Some(bound_values(&batches, &prepared.parameters)?),
        ..Prepared::clone(&prepared)
    };
    if !server.prepared.update(&handle, Arc::new(bound)) {
        return Err(Status::not_found(
            "the prepared statement was closed while binding",
        ));
    }
    Ok(DoPutPreparedStatementResult {
        prepared_statement_handle: Some(handle.into_bytes().into()),
    })
}

/// `DoPut` of a prepared update: runs it; returns the rows it wrote.
pub(crate) async fn update(
    server: &FlightSqlServer,
    who: &Identity,
    query: CommandPreparedStatementUpdate,
) -> Result<i64, Status> {
    let (_, prepared) = owned(server, who, &query.prepared_statement_handle)?;
    authorize(who, &prepared.access, &server.export_prefixes)?;
    if prepared.values.is_some() || !prepared.parameters.is_empty() {
        return Err(bad_request(
            "parameters bind to queries only, not to updates",
        ));
    }
    server.refresh().await?;
    let (_, batches) =
        run_to_completion(server, who, &prepared.sql, prepared.statement.clone()).await?;
    Ok(rows_written(&batches))
}

/// Closes a prepared statement of the caller's; closing one that is gone
/// already (expired, closed) is no error.
pub(crate) fn close(
    server: &FlightSqlServer,
    who: &Identity,
    query: ActionClosePreparedStatementRequest,
) -> Result<(), Status> {
    match owned(server, who, &query.prepared_statement_handle) {
        Ok((handle, _)) => {
            server.prepared.take(&handle);
            Ok(())
        }
        Err(e) if e.code() == tonic::Code::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The prepared statement under `handle`, if it is `who`'s.
fn owned(
    server: &FlightSqlServer,
    who: &Identity,
    handle: &[u8],
) -> Result<(String, Arc<Prepared>), Status> {
    let handle = String::from_utf8_lossy(handle).into_owned();
    let prepared = server.prepared.get(&handle).ok_or_else(|| {
        Status::not_found(
            "unknown or expired prepared statement (idle longer than server.handle_ttl, or \
             closed): prepare it again",
        )
    })?;
    if prepared.owner != who.user {
        return Err(Status::permission_denied(format!(
            "this prepared statement belongs to another user than '{}'",
            who.user
        )));
    }
    Ok((handle, prepared))
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(arrow_status)?;
    Ok(bytes)
}

/// `$1 … $n` types from the plan, in order; `n` is the highest index used.
fn parameter_types(frame: &DataFrame) -> Result<Vec<Option<DataType>>, Status> {
    let types = frame
        .logical_plan()
        .get_parameter_types()
        .map_err(datafusion_status)?;
    let mut out = Vec::new();
    for (name, data_type) in types {
        let index: usize = name
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                bad_request(format!(
                    "named parameter {name} is not supported; use ? or $1"
                ))
            })?;
        if out.len() < index {
            out.resize(index, None);
        }
        out[index - 1] = data_type;
    }
    Ok(out)
}

/// Values bound by `DoPut`: exactly one row, cast to the types the plan infers.
fn bound_values(
    batches: &[RecordBatch],
    parameters: &[Option<DataType>],
) -> Result<Vec<ScalarValue>, Status> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(bad_request("no parameter values were sent: bind one row"));
    };
    if rows != 1 {
        return Err(bad_request(format!(
            "bind one row of parameter values per execution, got {rows}"
        )));
    }
    if batch.num_columns() != parameters.len() {
        return Err(bad_request(format!(
            "the statement has {} parameters but {} values were bound",
            parameters.len(),
            batch.num_columns()
        )));
    }
    batch
        .columns()
        .iter()
        .zip(parameters)
        .enumerate()
        .map(|(i, (column, expected))| {
            let value = ScalarValue::try_from_array(column, 0).map_err(datafusion_status)?;
            match expected {
                Some(t) if &value.data_type() != t && !value.is_null() => {
                    value.cast_to(t).map_err(|e| {
                        bad_request(format!(
                            "parameter ${}: cannot use {value:?} as {t}: {e}",
                            i + 1
                        ))
                    })
                }
                _ => Ok(value),
            }
        })
        .collect()
}
