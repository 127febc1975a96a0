//! Ad-hoc SQL: `CommandStatementQuery` planned in `GetFlightInfo` and streamed
//! by its ticket in `DoGet`, and `CommandStatementUpdate` through `DoPut`.
//! A text of several statements runs all but the last to completion on the
//! execution path, each in its own slot and within the timeout.

use std::time::Instant;

use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use datafusion::sql::parser::Statement;
use prost::Message;
use tonic::{Response, Status};

use crate::access::{access_of, authorize};
use crate::auth::Identity;
use crate::execution::{BoxStream, Planned, log_rejected, rows_written, run_to_completion};
use crate::placeholders::number_positional_placeholders;
use crate::service::FlightSqlServer;
use crate::status::{arrow_status, bad_request, engine_status};

/// `GetFlightInfo` for a statement: runs all but the last statement of `sql`
/// to completion, then plans the last — a query runs when its ticket is
/// redeemed, anything else runs now — and describes it (schema and one ticket).
/// Each statement that runs writes its own log line; a text refused before any
/// runs writes one "rejected" line.
pub(crate) async fn flight_info(
    server: &FlightSqlServer,
    who: &Identity,
    sql: &str,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let started = Instant::now();
    let reject = |e: Status| {
        log_rejected(&who.user, sql, started, &e);
        e
    };
    server.refresh().await.map_err(reject)?;
    let mut statements = checked_statements(
        server,
        who,
        sql,
        "the statement has ? parameters: prepare it and bind values (DoPut) first",
    )
    .map_err(reject)?;
    let last = statements
        .pop()
        .ok_or_else(|| reject(bad_request("no SQL statement given")))?;
    for statement in statements {
        run_to_completion(server, who, sql, statement).await?;
    }
    let planned = if access_of(&last).is_read() {
        let frame = server.engine_of(who).plan(last).await;
        let frame = frame.map_err(|e| reject(engine_status(e)))?;
        Planned::query(who, sql, frame, started)
    } else {
        Planned::done(who, sql, run_to_completion(server, who, sql, last).await?)
    };
    describe(server, planned, descriptor)
}

/// The statements of `sql`, each allowed for `who` and free of `?` parameters
/// (`parameters` says what to do instead).
fn checked_statements(
    server: &FlightSqlServer,
    who: &Identity,
    sql: &str,
    parameters: &str,
) -> Result<Vec<Statement>, Status> {
    let mut statements: Vec<Statement> = audience_engine::parse(sql).map_err(engine_status)?.into();
    for statement in statements.iter_mut() {
        if number_positional_placeholders(statement) > 0 {
            return Err(bad_request(parameters));
        }
        authorize(who, &access_of(statement), &server.export_prefixes)?;
    }
    Ok(statements)
}

/// Stores a planned statement and describes it: its schema and one ticket.
pub(crate) fn describe(
    server: &FlightSqlServer,
    planned: Planned,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let schema = std::sync::Arc::clone(&planned.schema);
    let handle = server.tickets.insert(planned);
    let ticket = TicketStatementQuery {
        statement_handle: handle.into_bytes().into(),
    };
    let info = FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_status)?
        .with_endpoint(
            FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())),
        )
        .with_descriptor(descriptor)
        .with_ordered(true);
    Ok(Response::new(info))
}

/// `DoGet` of a statement ticket: streams what was planned under it, once,
/// for the user who planned it.
pub(crate) async fn do_get(
    server: &FlightSqlServer,
    who: &Identity,
    ticket: TicketStatementQuery,
) -> Result<BoxStream<arrow_flight::FlightData>, Status> {
    let handle = String::from_utf8_lossy(&ticket.statement_handle).into_owned();
    let planned = server.tickets.take(&handle).ok_or_else(|| {
        Status::not_found(
            "unknown or expired ticket: a ticket is redeemed once, within server.handle_ttl; \
             run the query again",
        )
    })?;
    if planned.owner != who.user {
        return Err(Status::permission_denied(format!(
            "this ticket belongs to another user than '{}'",
            who.user
        )));
    }
    crate::execution::stream(server, &handle, planned).await
}

/// `DoPut` of `CommandStatementUpdate`: runs each statement in order; returns
/// the rows the last one wrote.
pub(crate) async fn update(
    server: &FlightSqlServer,
    who: &Identity,
    sql: &str,
) -> Result<i64, Status> {
    let started = Instant::now();
    let reject = |e: Status| {
        log_rejected(&who.user, sql, started, &e);
        e
    };
    server.refresh().await.map_err(reject)?;
    let statements = checked_statements(
        server,
        who,
        sql,
        "parameters bind to queries only, not to updates",
    )
    .map_err(reject)?;
    let mut written = 0;
    for statement in statements {
        let (_, batches) = run_to_completion(server, who, sql, statement).await?;
        written = rows_written(&batches);
    }
    Ok(written)
}
