//! Temporary tables and views, as in PostgreSQL: `CREATE TEMPORARY TABLE|VIEW
//! name …` creates `name` in the session's own schema `temp`, which no other
//! session sees and which goes with the session. A name in the default schema
//! (`t` or `public.t`) finds the session's temporary table before a shared one
//! of the same name, which it hides for that session. Everything else (the
//! dataset's tables, plain `CREATE TABLE`) is shared by all sessions of an
//! engine.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{self, Ident, ObjectName, ObjectNamePart};

/// The schema of a session's temporary tables.
pub(crate) const TEMP_SCHEMA: &str = "temp";

/// A new session over `shared`'s catalogs, with temporary tables of its own,
/// and the configuration and functions of `base` (later `SET`s in either
/// session do not reach the other).
pub(crate) fn session_over(
    base: &SessionContext,
    shared: &Arc<dyn CatalogProviderList>,
) -> SessionContext {
    let state = base.state();
    let catalog = &state.config().options().catalog;
    let catalogs = SessionCatalogs {
        shared: Arc::clone(shared),
        catalog: Arc::new(SessionCatalog {
            shared: Arc::clone(shared),
            name: catalog.default_catalog.clone(),
            default_schema: catalog.default_schema.clone(),
            temp: Arc::new(MemorySchemaProvider::new()),
        }),
    };
    let state = SessionStateBuilder::new_from_existing(state)
        .with_catalog_list(Arc::new(catalogs))
        .build();
    SessionContext::new_with_state(state)
}

/// Turns `CREATE TEMPORARY TABLE|VIEW name` (which DataFusion does not know)
/// into the creation of `temp.name`, the session's own.
pub(crate) fn into_temp_schema(statement: &mut Statement) -> Result<()> {
    let (temporary, name) = match statement {
        Statement::Statement(s) => match s.as_mut() {
            ast::Statement::CreateTable(t) => (&mut t.temporary, &mut t.name),
            ast::Statement::CreateView(v) => (&mut v.temporary, &mut v.name),
            _ => return Ok(()),
        },
        Statement::CreateExternalTable(t) => (&mut t.temporary, &mut t.name),
        _ => return Ok(()),
    };
    if !*temporary {
        return Ok(());
    }
    *temporary = false;
    let parts = &name.0;
    let in_temp = match parts.as_slice() {
        [table] => vec![
            ObjectNamePart::Identifier(Ident::new(TEMP_SCHEMA)),
            table.clone(),
        ],
        [schema, _] if schema.to_string().eq_ignore_ascii_case(TEMP_SCHEMA) => parts.clone(),
        _ => {
            return Err(DataFusionError::Plan(format!(
                "temporary table {name}: a temporary table lives in the session's schema \
                 '{TEMP_SCHEMA}'; name it without a catalog or schema"
            )));
        }
    };
    *name = ObjectName(in_temp);
    Ok(())
}

/// The catalogs one session sees: the shared ones, the default catalog
/// through [`SessionCatalog`].
#[derive(Debug)]
struct SessionCatalogs {
    shared: Arc<dyn CatalogProviderList>,
    catalog: Arc<SessionCatalog>,
}

impl CatalogProviderList for SessionCatalogs {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.shared.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.shared.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == self.catalog.name {
            Some(Arc::clone(&self.catalog) as _)
        } else {
            self.shared.catalog(name)
        }
    }
}

/// The default catalog as one session sees it: the shared schemas, the
/// session's `temp`, and the default schema looked up through `temp` first.
#[derive(Debug)]
struct SessionCatalog {
    shared: Arc<dyn CatalogProviderList>,
    name: String,
    default_schema: String,
    temp: Arc<MemorySchemaProvider>,
}

impl SessionCatalog {
    fn shared(&self) -> Result<Arc<dyn CatalogProvider>> {
        self.shared.catalog(&self.name).ok_or_else(|| {
            DataFusionError::Internal(format!("the shared catalog '{}' is gone", self.name))
        })
    }
}

impl CatalogProvider for SessionCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.shared().map(|c| c.schema_names()).unwrap_or_default();
        if !names.iter().any(|n| n == TEMP_SCHEMA) {
            names.push(TEMP_SCHEMA.to_string());
        }
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == TEMP_SCHEMA {
            return Some(Arc::clone(&self.temp) as _);
        }
        let shared = self.shared().ok()?.schema(name)?;
        if name != self.default_schema {
            return Some(shared);
        }
        Some(Arc::new(SessionSchema {
            temp: Arc::clone(&self.temp),
            shared,
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        refuse_temp(name)?;
        self.shared()?.register_schema(name, schema)
    }

    fn deregister_schema(
        &self,
        name: &str,
        cascade: bool,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        refuse_temp(name)?;
        self.shared()?.deregister_schema(name, cascade)
    }
}

fn refuse_temp(schema: &str) -> Result<()> {
    if schema == TEMP_SCHEMA {
        return Err(DataFusionError::Plan(format!(
            "the schema '{TEMP_SCHEMA}' holds each session's temporary tables: \
             it cannot be created or dropped"
        )));
    }
    Ok(())
}

/// The default schema as one session sees it: its temporary tables before
/// the shared ones. A table created here (plain `CREATE TABLE`) is shared;
/// `DROP TABLE name` drops the temporary one first.
#[derive(Debug)]
struct SessionSchema {
    temp: Arc<MemorySchemaProvider>,
    shared: Arc<dyn SchemaProvider>,
}

#[async_trait]
impl SchemaProvider for SessionSchema {
    /// The shared tables; temporary ones are listed under `temp`.
    fn table_names(&self) -> Vec<String> {
        self.shared.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.temp.table(name).await? {
            Some(table) => Ok(Some(table)),
            None => self.shared.table(name).await,
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.shared.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.temp.table_exist(name) {
            self.temp.deregister_table(name)
        } else {
            self.shared.deregister_table(name)
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.temp.table_exist(name) || self.shared.table_exist(name)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, EngineConfig};
    use datafusion::arrow::array::Int64Array;

    async fn number(engine: &Engine, sql: &str) -> i64 {
        let batches = engine.sql(sql).await.unwrap().collect().await.unwrap();
        let column = batches[0].column(0);
        column
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }

    #[tokio::test]
    async fn a_sessions_temporary_tables_are_its_own_and_shadow_shared_ones() {
        let engine = Engine::start(&EngineConfig::default()).await.unwrap();
        let (a, b) = (engine.session(), engine.session());
        engine
            .sql("CREATE TABLE t AS SELECT 1::BIGINT AS x")
            .await
            .unwrap();
        a.sql("CREATE TEMPORARY TABLE t AS SELECT 2::BIGINT AS x")
            .await
            .unwrap();
        b.sql("CREATE TEMP VIEW t AS SELECT 3::BIGINT AS x")
            .await
            .unwrap();
        a.sql("CREATE TEMPORARY TABLE only_a (x BIGINT)")
            .await
            .unwrap();
        assert_eq!(number(&a, "SELECT x FROM t").await, 2);
        assert_eq!(number(&b, "SELECT x FROM t").await, 3);
        assert_eq!(number(&engine, "SELECT x FROM t").await, 1);
        assert_eq!(number(&a, "SELECT count(*) FROM temp.only_a").await, 0);
        let unseen = b.sql("SELECT * FROM only_a").await.unwrap_err();
        assert!(unseen.to_string().contains("only_a"), "{unseen}");
        let listed = number(
            &a,
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = 'temp' AND table_name IN ('t', 'only_a')",
        )
        .await;
        assert_eq!(listed, 2);
        // DROP takes the temporary table first, then the shared one
        a.sql("DROP TABLE t").await.unwrap();
        assert_eq!(number(&a, "SELECT x FROM t").await, 1);
        assert_eq!(number(&b, "SELECT x FROM t").await, 3);
        let qualified = a
            .sql("CREATE TEMPORARY TABLE public.u (x BIGINT)")
            .await
            .unwrap_err();
        assert!(
            qualified.to_string().contains("schema 'temp'"),
            "{qualified}"
        );
    }

    #[tokio::test]
    async fn a_sessions_settings_are_its_own() {
        let engine = Engine::start(&EngineConfig::default()).await.unwrap();
        let (a, b) = (engine.session(), engine.session());
        a.sql("SET datafusion.execution.batch_size = 7")
            .await
            .unwrap();
        let batch_size = |e: &Engine| e.context().state().config().batch_size();
        assert_eq!(batch_size(&a), 7);
        assert_ne!(batch_size(&b), 7);
        assert_ne!(batch_size(&engine), 7);
    }
}
