//! The Audience engine: a DataFusion session over Parquet tables, configured
//! from [`EngineConfig`], with the memory limit enforced and every Audience
//! function registered.

mod catalog;
mod config;
mod error;
mod export;
mod member_ranges;
mod memory;
mod session;

use std::collections::VecDeque;

use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

pub use catalog::local_location;
pub use config::{DEFAULT_CONFIG, DataConfig, EngineConfig, ExecutionConfig, TableConfig};
pub use error::{EngineError, ErrorKind, classify};
pub use memory::{parse_memory_limit, total_memory};

/// A running engine: one session with its tables and functions.
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("session_id", &self.ctx.session_id())
            .finish()
    }
}

impl Engine {
    /// Builds the session and registers every configured table.
    pub async fn start(config: &EngineConfig) -> Result<Self, EngineError> {
        let ctx = session::new_context(config)?;
        session::register_tables(&ctx, config).await?;
        Ok(Engine { ctx })
    }

    /// The underlying DataFusion session.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs every `;`-separated statement in `sql` in order and returns the last
    /// one's result, not yet executed. Earlier statements run to completion.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame, EngineError> {
        let mut statements = parse(sql)?;
        let Some(last) = statements.pop_back() else {
            return Err(EngineError::Invalid("no SQL statement given".into()));
        };
        for statement in statements {
            self.statement(statement).await?.collect().await?;
        }
        self.statement(last).await
    }

    async fn statement(&self, statement: Statement) -> Result<DataFrame, EngineError> {
        if let Statement::CopyTo(copy) = statement {
            let result = export::copy_atomically(&self.ctx, copy).await?;
            return Ok(self.ctx.read_batches(result)?);
        }
        let plan = self.ctx.state().statement_to_plan(statement).await?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }
}

fn parse(sql: &str) -> Result<VecDeque<Statement>, EngineError> {
    Ok(DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?)
}
