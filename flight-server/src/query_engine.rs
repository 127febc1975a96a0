//! The one seam between the Flight SQL protocol and the engine that answers
//! it (CONVENTIONS §3): plan a statement, list tables.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use audience_engine::{Engine, EngineError};
use datafusion::dataframe::DataFrame;
use datafusion::sql::parser::Statement;

/// One table as metadata calls list it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Catalog name.
    pub catalog: String,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// `TABLE` or `VIEW`.
    pub table_type: &'static str,
    /// Columns, as planned (before the Flight boundary's conversions).
    pub arrow_schema: SchemaRef,
}

/// What the Flight SQL service needs from an engine.
#[tonic::async_trait]
pub trait QueryEngine: Send + Sync + std::fmt::Debug + 'static {
    /// Brings the catalog up to date with storage before a request.
    async fn refresh(&self) -> Result<(), EngineError>;
    /// Plans one statement: a query is returned unexecuted; DDL, `SET` and
    /// `COPY … TO` run now and return their result.
    async fn plan(&self, statement: Statement) -> Result<DataFrame, EngineError>;
    /// Every table and view.
    async fn tables(&self) -> Result<Vec<TableInfo>, EngineError>;
    /// A new session over the same tables, for one client: its `SET`s and
    /// temporary tables are its own.
    fn session(&self) -> SharedEngine;
}

#[tonic::async_trait]
impl QueryEngine for Engine {
    async fn refresh(&self) -> Result<(), EngineError> {
        self.refresh_tables().await
    }

    async fn plan(&self, statement: Statement) -> Result<DataFrame, EngineError> {
        self.statement(statement).await
    }

    fn session(&self) -> SharedEngine {
        Arc::new(Engine::session(self))
    }

    async fn tables(&self) -> Result<Vec<TableInfo>, EngineError> {
        let ctx = self.context();
        let mut tables = Vec::new();
        for catalog_name in ctx.catalog_names() {
            let Some(catalog) = ctx.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for name in schema.table_names() {
                    let Some(table) = schema.table(&name).await? else {
                        continue;
                    };
                    let table_type = match table.table_type() {
                        datafusion::logical_expr::TableType::View => "VIEW",
                        _ => "TABLE",
                    };
                    tables.push(TableInfo {
                        catalog: catalog_name.clone(),
                        schema: schema_name.clone(),
                        name,
                        table_type,
                        arrow_schema: table.schema(),
                    });
                }
            }
        }
        Ok(tables)
    }
}

/// Shares an engine between the service and its owner.
pub type SharedEngine = Arc<dyn QueryEngine>;
