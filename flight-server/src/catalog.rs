//! Catalog metadata for BI drivers: catalogs, schemas, tables, table types,
//! SQL info, XDBC type info and the (empty) key listings. `GetFlightInfo`
//! answers with the schema and the command itself as the ticket; `DoGet`
//! builds the answer (static answers live in `metadata`).

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::metadata::{GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, ProstMessageExt,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use futures::TryStreamExt;
use prost::Message;
use tonic::{Response, Status};

use crate::auth::Identity;
use crate::execution::BoxStream;
use crate::flight_schema::flight_schema;
use crate::metadata::{TABLE_TYPES, sql_info, table_types_filter, xdbc_type_info};
use crate::query_engine::TableInfo;
use crate::service::FlightSqlServer;
use crate::status::{arrow_status, engine_status};

/// A `DoGet` reply.
pub(crate) type Reply = Result<Response<BoxStream<arrow_flight::FlightData>>, Status>;

/// Describes a metadata call: its schema, and the command itself as the ticket.
pub(crate) fn info(
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

/// One batch as a `DoGet` reply.
pub(crate) fn one_batch(batch: RecordBatch) -> Reply {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(batch.schema())
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(stream)))
}

/// Every table and view, sorted by catalog, schema and name.
async fn tables(server: &FlightSqlServer, who: &Identity) -> Result<Vec<TableInfo>, Status> {
    server.refresh().await?;
    let mut tables = server
        .engine_of(who)
        .tables()
        .await
        .map_err(engine_status)?;
    tables.sort_by(|a, b| (&a.catalog, &a.schema, &a.name).cmp(&(&b.catalog, &b.schema, &b.name)));
    Ok(tables)
}

/// `DoGet` of `CommandGetCatalogs`.
pub(crate) async fn catalogs(
    server: &FlightSqlServer,
    who: &Identity,
    query: CommandGetCatalogs,
) -> Reply {
    let mut builder: GetCatalogsBuilder = query.into_builder();
    let mut catalogs: Vec<String> = tables(server, who)
        .await?
        .into_iter()
        .map(|t| t.catalog)
        .collect();
    catalogs.dedup();
    for catalog in catalogs {
        builder.append(catalog);
    }
    one_batch(builder.build().map_err(arrow_status)?)
}

/// `DoGet` of `CommandGetDbSchemas`.
pub(crate) async fn schemas(
    server: &FlightSqlServer,
    who: &Identity,
    query: CommandGetDbSchemas,
) -> Reply {
    let mut builder: GetDbSchemasBuilder = query.into_builder();
    let mut pairs: Vec<(String, String)> = tables(server, who)
        .await?
        .into_iter()
        .map(|t| (t.catalog, t.schema))
        .collect();
    pairs.dedup();
    for (catalog, schema) in pairs {
        builder.append(catalog, schema);
    }
    one_batch(builder.build().map_err(arrow_status)?)
}

/// `DoGet` of `CommandGetTables`.
pub(crate) async fn tables_reply(
    server: &FlightSqlServer,
    who: &Identity,
    mut query: CommandGetTables,
) -> Reply {
    query.table_types = table_types_filter(std::mem::take(&mut query.table_types));
    let mut builder: GetTablesBuilder = query.into_builder();
    for t in tables(server, who).await? {
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
    one_batch(builder.build().map_err(arrow_status)?)
}

/// `DoGet` of `CommandGetTableTypes`.
pub(crate) fn table_types(query: CommandGetTableTypes) -> Reply {
    let mut builder = query.into_builder();
    for t in TABLE_TYPES {
        builder.append(t);
    }
    one_batch(builder.build().map_err(arrow_status)?)
}

/// `DoGet` of `CommandGetSqlInfo`: analysts see a read-only server.
pub(crate) fn sql_info_reply(who: &Identity, query: CommandGetSqlInfo) -> Reply {
    let read_only = who.role == crate::config::Role::Analyst;
    let batch = query
        .into_builder(sql_info(read_only))
        .build()
        .map_err(arrow_status)?;
    one_batch(batch)
}

/// `DoGet` of `CommandGetXdbcTypeInfo`.
pub(crate) fn xdbc_types(query: CommandGetXdbcTypeInfo) -> Reply {
    let batch = query
        .into_builder(xdbc_type_info())
        .build()
        .map_err(arrow_status)?;
    one_batch(batch)
}
