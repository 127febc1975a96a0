//! The Flight SQL service: [`FlightSqlServer`] holds the server's state, and
//! its `FlightSqlService` methods authenticate the caller and hand the call to
//! the module of its concern — `statements` (ad-hoc SQL), `prepared`,
//! `catalog` (metadata), `cancellation` — all of which run statements on the
//! one path of `execution`.

use std::sync::Arc;
use std::time::Duration;

use audience_engine::EngineError;

use crate::config::ServerConfig;
use arrow::array::RecordBatch;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Authenticator, Identity};
use crate::catalog::{self, Reply};
use crate::execution::{BoxStream, Planned};
use crate::limits::Admission;
use crate::metadata::{foreign_keys_schema, primary_keys_schema, sql_info, xdbc_type_info};
use crate::prepared::Prepared;
use crate::query_engine::SharedEngine;
use crate::query_runtime::QueryRuntime;
use crate::query_stream::Running;
use crate::result_cache::ResultCache;
use crate::status::engine_status;
use crate::ttl_map::TtlMap;
use crate::{cancellation, prepared, statements};

/// The Audience Flight SQL service.
pub struct FlightSqlServer {
    pub(crate) engine: SharedEngine,
    auth: Authenticator,
    /// Planned statements by ticket handle, until redeemed.
    pub(crate) tickets: TtlMap<Planned>,
    /// Prepared statements by handle.
    pub(crate) prepared: TtlMap<Arc<Prepared>>,
    /// Streaming queries, for cancellation.
    pub(crate) running: Arc<Running>,
    pub(crate) admission: Admission,
    /// Where queries execute, apart from the runtime serving connections.
    pub(crate) queries: QueryRuntime,
    pub(crate) query_timeout: Duration,
    pub(crate) export_prefixes: Vec<String>,
    /// Finished results of repeated queries.
    pub(crate) results: Arc<ResultCache>,
}

impl std::fmt::Debug for FlightSqlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlServer")
            .field("engine", &self.engine)
            .finish()
    }
}

impl FlightSqlServer {
    /// A service over `engine` with the users, limits and TTLs of `config`,
    /// and a runtime of its own for queries.
    pub fn new(engine: SharedEngine, config: &ServerConfig) -> Result<Self, EngineError> {
        Ok(FlightSqlServer {
            engine,
            auth: Authenticator::new(&config.users, config.token_ttl()),
            tickets: TtlMap::new(config.handle_ttl()),
            prepared: TtlMap::new(config.handle_ttl()),
            running: Arc::new(Running::default()),
            admission: Admission::new(config.max_concurrent_queries, config.max_queued_queries),
            query_timeout: config.query_timeout(),
            export_prefixes: config.export.allowed_prefixes.clone(),
            queries: QueryRuntime::new(config.max_concurrent_queries)?,
            results: Arc::new(ResultCache::new(config.result_cache_bytes()?)),
        })
    }

    /// The caller, from the request's bearer token or Basic credentials.
    pub(crate) fn who<T>(&self, request: &Request<T>) -> Result<Identity, Status> {
        self.auth.identify(request.metadata())
    }

    /// The engine `who` reads through: the login's session once started,
    /// else the server's.
    pub(crate) fn engine_of(&self, who: &Identity) -> SharedEngine {
        who.session.engine(&self.engine)
    }

    /// The engine a statement of `who` that may change its session (`SET`,
    /// DDL) runs on: the login's session, started now if need be.
    pub(crate) fn session_of(&self, who: &Identity) -> SharedEngine {
        who.session.start(&self.engine)
    }

    /// Brings the engine's catalog up to date with storage.
    pub(crate) async fn refresh(&self) -> Result<(), Status> {
        self.engine.refresh().await.map_err(engine_status)
    }
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
        statements::flight_info(self, &who, &query.query, request.into_inner()).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = self.who(&request)?;
        prepared::flight_info(self, &who, query, request.into_inner()).await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        Ok(Response::new(statements::do_get(self, &who, ticket).await?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let who = self.who(&request)?;
        prepared::create(self, &who, &query.query).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        prepared::bind(self, query, request).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let who = self.who(&request)?;
        prepared::update(self, &who, query).await
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let who = self.who(&request)?;
        statements::update(self, &who, &command.query).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let who = self.who(&request)?;
        prepared::close(self, &who, query)
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let who = self.who(&request)?;
        cancellation::cancel_query(self, &who, query)
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Err(Status::invalid_argument(format!(
            "the ticket is not one this server issued (its type is '{}'); get a ticket from \
             GetFlightInfo for the statement",
            message.type_url
        )))
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        cancellation::other_action(self, request)
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        catalog::info(&query, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_catalogs(&self, query: CommandGetCatalogs, request: Request<Ticket>) -> Reply {
        let who = self.who(&request)?;
        catalog::catalogs(self, &who, query).await
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        catalog::info(
            &query,
            &query.clone().into_builder().schema(),
            request.into_inner(),
        )
    }

    async fn do_get_schemas(&self, query: CommandGetDbSchemas, request: Request<Ticket>) -> Reply {
        let who = self.who(&request)?;
        catalog::schemas(self, &who, query).await
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        catalog::info(
            &query,
            &query.clone().into_builder().schema(),
            request.into_inner(),
        )
    }

    async fn do_get_tables(&self, query: CommandGetTables, request: Request<Ticket>) -> Reply {
        let who = self.who(&request)?;
        catalog::tables_reply(self, &who, query).await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        catalog::info(&query, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Reply {
        self.who(&request)?;
        catalog::table_types(query)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.clone().into_builder(sql_info(true)).schema();
        catalog::info(&query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(&self, query: CommandGetSqlInfo, request: Request<Ticket>) -> Reply {
        let who = self.who(&request)?;
        catalog::sql_info_reply(&who, query)
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.into_builder(xdbc_type_info()).schema();
        catalog::info(&query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Reply {
        self.who(&request)?;
        catalog::xdbc_types(query)
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        catalog::info(&query, &primary_keys_schema(), request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        _: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Reply {
        self.who(&request)?;
        catalog::one_batch(RecordBatch::new_empty(primary_keys_schema()))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        catalog::info(&query, &foreign_keys_schema(), request.into_inner())
    }

    async fn do_get_exported_keys(
        &self,
        _: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Reply {
        self.who(&request)?;
        catalog::one_batch(RecordBatch::new_empty(foreign_keys_schema()))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        catalog::info(&query, &foreign_keys_schema(), request.into_inner())
    }

    async fn do_get_imported_keys(
        &self,
        _: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Reply {
        self.who(&request)?;
        catalog::one_batch(RecordBatch::new_empty(foreign_keys_schema()))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        catalog::info(&query, &foreign_keys_schema(), request.into_inner())
    }

    async fn do_get_cross_reference(
        &self,
        _: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Reply {
        self.who(&request)?;
        catalog::one_batch(RecordBatch::new_empty(foreign_keys_schema()))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
