//! The Flight SQL protocol over a [`QueryEngine`]: statements and prepared
//! statements planned in `GetFlightInfo` and streamed in `DoGet`, updates
//! through `DoPut`, metadata, login, cancellation.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc,
    Ticket,
};
use audience_engine::ServerConfig;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::sql::parser::Statement;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::access::{Access, access_of, authorize};
use crate::auth::{Authenticator, Identity};
use crate::flight_schema::flight_schema;
use crate::limits::Admission;
use crate::metadata::{
    TABLE_TYPES, foreign_keys_schema, primary_keys_schema, sql_info, table_types_filter,
    xdbc_type_info,
};
use crate::placeholders::number_positional_placeholders;
use crate::query_engine::SharedEngine;
use crate::query_stream::{QueryRecord, QueryStream, Running, short, sql_for_log};
use crate::status::{arrow_status, bad_request, datafusion_status, engine_status};
use crate::ttl_map::TtlMap;

/// Target size of one streamed message: under the 4 MiB that Java and Go gRPC
/// clients accept by default.
const MESSAGE_BYTES: usize = 2 * 1024 * 1024;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A query planned in `GetFlightInfo`, waiting for its `DoGet`.
struct Planned {
    owner: String,
    frame: DataFrame,
    schema: SchemaRef,
    sql: Arc<str>,
    plan: Duration,
}

/// A prepared statement: its SQL with `?` numbered, its plan, and bound values.
#[derive(Clone)]
struct Prepared {
    owner: String,
    sql: Arc<str>,
    statement: Statement,
    access: Access,
    /// A query's plan, made once when prepared; `None` for updates, which run
    /// when planned.
    frame: Option<DataFrame>,
    /// The type of each `$n` where the planner inferred one.
    parameters: Vec<Option<DataType>>,
    values: Option<Vec<ScalarValue>>,
}

/// The Audience Flight SQL service.
pub struct FlightSqlServer {
    engine: SharedEngine,
    auth: Authenticator,
    tickets: TtlMap<Planned>,
    prepared: TtlMap<Arc<Prepared>>,
    running: Arc<Running>,
    admission: Admission,
    query_timeout: Duration,
    export_prefixes: Vec<String>,
}

impl std::fmt::Debug for FlightSqlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlServer")
            .field("engine", &self.engine)
            .finish()
    }
}

impl FlightSqlServer {
    /// A service over `engine` with the users, limits and TTLs of `config`.
    pub fn new(engine: SharedEngine, config: &ServerConfig) -> Self {
        FlightSqlServer {
            engine,
            auth: Authenticator::new(&config.users, config.token_ttl()),
            tickets: TtlMap::new(config.handle_ttl()),
            prepared: TtlMap::new(config.handle_ttl()),
            running: Arc::new(Running::default()),
            admission: Admission::new(config.max_concurrent_queries, config.max_queued_queries),
            query_timeout: config.query_timeout(),
            export_prefixes: config.export.allowed_prefixes.clone(),
        }
    }

    fn who<T>(&self, request: &Request<T>) -> Result<Identity, Status> {
        self.auth.identify(request.metadata())
    }

    async fn refresh(&self) -> Result<(), Status> {
        self.engine.refresh().await.map_err(engine_status)
    }

    /// Parses `sql`, checks each statement against the caller's role, runs all
    /// but the last, and plans the last.
    async fn plan_sql(&self, who: &Identity, sql: &str) -> Result<DataFrame, Status> {
        self.refresh().await?;
        let mut statements = audience_engine::parse(sql).map_err(engine_status)?;
        for statement in statements.iter_mut() {
            if number_positional_placeholders(statement) > 0 {
                return Err(bad_request(
                    "the statement has ? parameters: prepare it and bind values (DoPut) first",
                ));
            }
            authorize(who, &access_of(statement), &self.export_prefixes)?;
        }
        let last = statements
            .pop_back()
            .ok_or_else(|| bad_request("no SQL statement given"))?;
        for statement in statements {
            let frame = self.engine.plan(statement).await.map_err(engine_status)?;
            frame.collect().await.map_err(datafusion_status)?;
        }
        self.engine.plan(last).await.map_err(engine_status)
    }

    /// Stores a planned query and describes it: its schema and one ticket.
    fn planned_info(
        &self,
        who: &Identity,
        frame: DataFrame,
        sql: &str,
        started: Instant,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = flight_schema(frame.schema().as_arrow());
        let handle = self.tickets.insert(Planned {
            owner: who.user.clone(),
            frame,
            schema: Arc::clone(&schema),
            sql: sql.into(),
            plan: started.elapsed(),
        });
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

    /// Describes a metadata call: its schema, and the command itself as the ticket.
    fn metadata_info(
        &self,
        command: &impl ProstMessageExt,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(arrow_status)?
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec())),
            )
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// Streams the query planned under `handle` (its ticket), within a slot and the timeout.
    async fn stream_planned(
        &self,
        who: &Identity,
        handle: &str,
    ) -> Result<BoxStream<arrow_flight::FlightData>, Status> {
        let planned = self.tickets.take(handle).ok_or_else(|| {
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
        let slot = self.admission.admit().await?;
        let started = Instant::now();
        let stream = planned
            .frame
            .execute_stream()
            .await
            .map_err(datafusion_status)?;
        let engine = Arc::clone(&self.engine);
        let record = QueryRecord {
            handle: handle.to_string(),
            user: who.user.clone(),
            sql: planned.sql,
            plan: planned.plan + started.elapsed(),
            slot,
            started,
        };
        let batches = QueryStream::new(
            stream,
            Arc::clone(&planned.schema),
            self.query_timeout,
            record,
            Arc::clone(&self.running),
            Box::new(move || engine.memory_reserved()),
        )
        .map_err(|s| FlightError::Tonic(Box::new(s)));
        let flight = FlightDataEncoderBuilder::new()
            .with_max_flight_data_size(MESSAGE_BYTES)
            .with_schema(planned.schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Box::pin(flight))
    }

    /// Runs an update statement (already authorized) and returns the rows it wrote.
    async fn run_update(&self, statement: Statement) -> Result<i64, Status> {
        let frame = self.engine.plan(statement).await.map_err(engine_status)?;
        let batches = frame.collect().await.map_err(datafusion_status)?;
        Ok(rows_written(&batches))
    }

    /// Creates a prepared statement: a query is planned now for its schemas.
    async fn prepare(
        &self,
        who: &Identity,
        sql: &str,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.refresh().await?;
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
        authorize(who, &access, &self.export_prefixes)?;
        // Only queries are planned now; other statements would run when planned.
        let (frame, dataset_schema, parameters) = if access.is_read() {
            let frame = self
                .engine
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
        let handle = self.prepared.insert(Arc::new(Prepared {
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

    /// Stops a query by any ticket of `info`; true if one was stopped.
    fn cancel(&self, info: &FlightInfo) -> bool {
        let mut cancelled = false;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            let Ok(any) = Any::decode(ticket.ticket.clone()) else {
                continue;
            };
            let Ok(Some(t)) = any.unpack::<TicketStatementQuery>() else {
                continue;
            };
            let handle = String::from_utf8_lossy(&t.statement_handle).into_owned();
            let not_started = self.tickets.take(&handle).is_some();
            if not_started || self.running.cancel(&handle) {
                tracing::info!(query = %short(&handle), "query cancelled by the client");
                cancelled = true;
            }
        }
        cancelled
    }

    fn prepared(&self, who: &Identity, handle: &[u8]) -> Result<(String, Arc<Prepared>), Status> {
        let handle = String::from_utf8_lossy(handle).into_owned();
        let prepared = self.prepared.get(&handle).ok_or_else(|| {
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
}

/// The log line of a query that failed before it could run (CONVENTIONS §9).
fn log_rejected(who: &Identity, sql: &str, started: Instant, error: &Status) {
    tracing::info!(
        target: "audience::query",
        user = %who.user,
        outcome = "rejected",
        code = ?error.code(),
        plan_ms = started.elapsed().as_millis() as u64,
        error = %error.message(),
        sql = %sql_for_log(sql),
        "query"
    );
}

/// The number of rows a `COPY` wrote (its `count` column); 0 for DDL.
fn rows_written(batches: &[RecordBatch]) -> i64 {
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_any().downcast_ref::<UInt64Array>())
        .map(|c| c.iter().flatten().sum::<u64>() as i64)
        .sum()
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(arrow_status)?;
    Ok(bytes)
}

fn one_batch(batch: RecordBatch) -> Response<BoxStream<arrow_flight::FlightData>> {
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
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

#[tonic::async_trait]
impl FlightSqlService for FlightSqlServer {
    type FlightService = FlightSqlServer;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
        let (who, token) = self.auth.login(request.metadata())?;
        tracing::info!(user = %who.user, role = %who.role, "login");
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("token is not ASCII"))?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response: Response<BoxStream<HandshakeResponse>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = self.who(&request)?;
        let started = Instant::now();
        let frame = self
            .plan_sql(&who, &query.query)
            .await
            .inspect_err(|e| log_rejected(&who, &query.query, started, e))?;
        self.planned_info(&who, frame, &query.query, started, request.into_inner())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = self.who(&request)?;
        let started = Instant::now();
        let (_, prepared) = self.prepared(&who, &query.prepared_statement_handle)?;
        authorize(&who, &prepared.access, &self.export_prefixes)?;
        let mut frame = match &prepared.frame {
            Some(frame) => frame.clone(),
            // an update run as a query: it runs now, its result is streamed
            None => {
                self.refresh().await?;
                self.engine
                    .plan(prepared.statement.clone())
                    .await
                    .map_err(engine_status)?
            }
        };
        match &prepared.values {
            Some(values) => {
                frame = frame
                    .with_param_values(values.clone())
                    .map_err(datafusion_status)?;
            }
            None if !prepared.parameters.is_empty() => {
                return Err(bad_request(format!(
                    "bind values for the statement's {} parameters (DoPut) before executing it",
                    prepared.parameters.len()
                )));
            }
            None => {}
        }
        self.planned_info(&who, frame, &prepared.sql, started, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        let handle = String::from_utf8_lossy(&ticket.statement_handle).into_owned();
        Ok(Response::new(self.stream_planned(&who, &handle).await?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let who = self.who(&request)?;
        let started = Instant::now();
        self.prepare(&who, &query.query)
            .await
            .inspect_err(|e| log_rejected(&who, &query.query, started, e))
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let who = self.who(&request)?;
        let (handle, prepared) = self.prepared(&who, &query.prepared_statement_handle)?;
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
        if !self.prepared.update(&handle, Arc::new(bound)) {
            return Err(Status::not_found(
                "the prepared statement was closed while binding",
            ));
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into_bytes().into()),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let who = self.who(&request)?;
        let (_, prepared) = self.prepared(&who, &query.prepared_statement_handle)?;
        authorize(&who, &prepared.access, &self.export_prefixes)?;
        if prepared.values.is_some() || !prepared.parameters.is_empty() {
            return Err(bad_request(
                "parameters bind to queries only, not to updates",
            ));
        }
        self.refresh().await?;
        self.run_update(prepared.statement.clone()).await
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let who = self.who(&request)?;
        self.refresh().await?;
        let mut written = 0;
        for mut statement in audience_engine::parse(&command.query).map_err(engine_status)? {
            if number_positional_placeholders(&mut statement) > 0 {
                return Err(bad_request(
                    "parameters bind to queries only, not to updates",
                ));
            }
            authorize(&who, &access_of(&statement), &self.export_prefixes)?;
            written = self.run_update(statement).await?;
        }
        Ok(written)
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.who(&request)?;
        self.prepared
            .take(&String::from_utf8_lossy(&query.prepared_statement_handle));
        Ok(())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        self.who(&request)?;
        let info = FlightInfo::decode(query.info)
            .map_err(|e| bad_request(format!("cannot read the FlightInfo to cancel: {e}")))?;
        let result = if self.cancel(&info) { 1 } else { 3 };
        Ok(ActionCancelQueryResult { result })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        self.who(&request)?;
        if request.get_ref().r#type != "CancelFlightInfo" {
            return Err(Status::unimplemented(format!(
                "unknown action '{}'",
                request.get_ref().r#type
            )));
        }
        let cancel = CancelFlightInfoRequest::decode(request.get_ref().body.clone())
            .map_err(|e| bad_request(format!("cannot read CancelFlightInfoRequest: {e}")))?;
        let info = cancel
            .info
            .ok_or_else(|| bad_request("CancelFlightInfoRequest carries no FlightInfo"))?;
        let status = if self.cancel(&info) {
            CancelStatus::Cancelled
        } else {
            CancelStatus::NotCancellable
        };
        let result = CancelFlightInfoResult::new(status);
        let body = arrow_flight::Result {
            body: result.encode_to_vec().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(body)]))))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.into_builder().schema();
        self.metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        self.refresh().await?;
        let mut builder: GetCatalogsBuilder = query.into_builder();
        let mut catalogs: Vec<String> =
            tables(self).await?.into_iter().map(|t| t.catalog).collect();
        catalogs.dedup();
        for catalog in catalogs {
            builder.append(catalog);
        }
        Ok(one_batch(builder.build().map_err(arrow_status)?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.clone().into_builder().schema();
        self.metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        self.refresh().await?;
        let mut builder: GetDbSchemasBuilder = query.into_builder();
        let mut pairs: Vec<(String, String)> = tables(self)
            .await?
            .into_iter()
            .map(|t| (t.catalog, t.schema))
            .collect();
        pairs.dedup();
        for (catalog, schema) in pairs {
            builder.append(catalog, schema);
        }
        Ok(one_batch(builder.build().map_err(arrow_status)?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.clone().into_builder().schema();
        self.metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        mut query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        self.refresh().await?;
        query.table_types = table_types_filter(std::mem::take(&mut query.table_types));
        let mut builder: GetTablesBuilder = query.into_builder();
        for t in tables(self).await? {
            builder
                .append(
                    &t.catalog,
                    &t.schema,
                    &t.name,
                    t.table_type,
                    &flight_schema(&t.arrow_schema),
                )
                .map_err(arrow_status)?;
        }
        Ok(one_batch(builder.build().map_err(arrow_status)?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.into_builder().schema();
        self.metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        let mut builder = query.into_builder();
        for t in TABLE_TYPES {
            builder.append(t);
        }
        Ok(one_batch(builder.build().map_err(arrow_status)?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.clone().into_builder(sql_info(true)).schema();
        self.metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        let read_only = who.role == audience_engine::Role::Analyst;
        let batch = query
            .into_builder(sql_info(read_only))
            .build()
            .map_err(arrow_status)?;
        Ok(one_batch(batch))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.into_builder(xdbc_type_info()).schema();
        self.metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        let batch = query
            .into_builder(xdbc_type_info())
            .build()
            .map_err(arrow_status)?;
        Ok(one_batch(batch))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        self.metadata_info(&query, &primary_keys_schema(), request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Ok(one_batch(RecordBatch::new_empty(primary_keys_schema())))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        self.metadata_info(&query, &foreign_keys_schema(), request.into_inner())
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Ok(one_batch(RecordBatch::new_empty(foreign_keys_schema())))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        self.metadata_info(&query, &foreign_keys_schema(), request.into_inner())
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Ok(one_batch(RecordBatch::new_empty(foreign_keys_schema())))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        self.metadata_info(&query, &foreign_keys_schema(), request.into_inner())
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Ok(one_batch(RecordBatch::new_empty(foreign_keys_schema())))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

async fn tables(server: &FlightSqlServer) -> Result<Vec<crate::query_engine::TableInfo>, Status> {
    let mut tables = server.engine.tables().await.map_err(engine_status)?;
    tables.sort_by(|a, b| (&a.catalog, &a.schema, &a.name).cmp(&(&b.catalog, &b.schema, &b.name)));
    Ok(tables)
}
