//! Cancellation: `CancelFlightInfo` (and the older `CancelQuery` action) stop
//! a query of the caller's by any ticket of its `FlightInfo`, whether its
//! ticket is still waiting for `DoGet` or its stream is running.

use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, Any, TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo,
};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::auth::Identity;
use crate::execution::BoxStream;
use crate::query_stream::short;
use crate::service::FlightSqlServer;
use crate::status::bad_request;

/// The `CancelQuery` action: 1 (cancelled) or 3 (not cancellable).
pub(crate) fn cancel_query(
    server: &FlightSqlServer,
    who: &Identity,
    query: ActionCancelQueryRequest,
) -> Result<ActionCancelQueryResult, Status> {
    let info = FlightInfo::decode(query.info)
        .map_err(|e| bad_request(format!("cannot read the FlightInfo to cancel: {e}")))?;
    let result = if cancel(server, who, &info)? { 1 } else { 3 };
    Ok(ActionCancelQueryResult { result })
}

/// Actions the Flight SQL layer does not route itself: `CancelFlightInfo`.
pub(crate) fn other_action(
    server: &FlightSqlServer,
    request: Request<Action>,
) -> Result<Response<BoxStream<arrow_flight::Result>>, Status> {
    let who = server.who(&request)?;
    if request.get_ref().r#type != "CancelFlightInfo" {
        return Err(Status::unimplemented(format!(
            "unknown action '{}'",
            request.get_ref().r#type
        )));
    }
    let cancel_request = CancelFlightInfoRequest::decode(request.get_ref().body.clone())
        .map_err(|e| bad_request(format!("cannot read CancelFlightInfoRequest: {e}")))?;
    let info = cancel_request
        .info
        .ok_or_else(|| bad_request("CancelFlightInfoRequest carries no FlightInfo"))?;
    let status = if cancel(server, &who, &info)? {
        CancelStatus::Cancelled
    } else {
        CancelStatus::NotCancellable
    };
    let body = arrow_flight::Result {
        body: CancelFlightInfoResult::new(status).encode_to_vec().into(),
    };
    Ok(Response::new(Box::pin(futures::stream::iter([Ok(body)]))))
}

/// Stops `who`'s query by any ticket of `info`; true if one was stopped.
/// Another user's query is `PERMISSION_DENIED` and keeps running.
fn cancel(server: &FlightSqlServer, who: &Identity, info: &FlightInfo) -> Result<bool, Status> {
    let mut cancelled = false;
    for handle in ticket_handles(info) {
        if let Some(owner) = server
            .tickets
            .get_with(&handle, |p| p.owner.clone())
            .or_else(|| server.running.owner(&handle))
            && owner != who.user
        {
            return Err(Status::permission_denied(format!(
                "this query belongs to another user than '{}'",
                who.user
            )));
        }
        let not_started = server.tickets.take(&handle).is_some();
        if not_started || server.running.cancel(&handle) {
            tracing::info!(query = %short(&handle), user = %who.user, "query cancelled by the client");
            cancelled = true;
        }
    }
    Ok(cancelled)
}

/// The statement handles of `info`'s tickets.
fn ticket_handles(info: &FlightInfo) -> impl Iterator<Item = String> + '_ {
    info.endpoint.iter().filter_map(|endpoint| {
        let any = Any::decode(endpoint.ticket.as_ref()?.ticket.clone()).ok()?;
        let ticket = any.unpack::<TicketStatementQuery>().ok()??;
        Some(String::from_utf8_lossy(&ticket.statement_handle).into_owned())
    })
}
