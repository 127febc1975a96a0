//! The Audience engine: a DataFusion session over Parquet tables, configured
//! from [`EngineConfig`], with the memory limit enforced and every Audience
//! function registered.

mod adopt;
mod catalog;
mod cluster;
mod compact;
mod config;
mod conform;
mod date_cast;
mod delta_tables;
mod dictionary_compare;
mod duration;
mod error;
mod export;
mod expression_depth;
mod failpoints;
mod file_reads;
mod file_scans;
pub mod idle_memory;
mod in_list_guard;
mod join_build_once;
mod lane_merge;
mod leftovers;
mod listed_versions;
mod load;
mod member_ranges;
mod memory;
mod parquet_guard;
mod query_memory;
mod range_merge;
mod rejects;
mod repartition_buffers;
mod result_key;
#[cfg(test)]
mod rule_tests;
mod run_aggregate;
mod scan_checks;
mod session;
mod spill;
mod storage;
mod table_writes;
mod tag_index;
mod temp_tables;
mod vacuum;
mod yield_points;

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::catalog::CatalogProviderList;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{CopyToSource, CopyToStatement, DFParser, Statement};
use datafusion::sql::sqlparser;
use datafusion::sql::sqlparser::dialect::GenericDialect;

pub use cluster::{ClusterConfig, ExecutionMode, run_executor, run_scheduler};
pub use compact::CompactSummary;
pub use config::{
    DEFAULT_CONFIG, DataConfig, EngineConfig, ExecutionConfig, FOREIGN_SECTIONS, TableConfig,
    layered_toml, read_config_file,
};
pub use delta_tables::TableVersions;
pub use duration::parse_duration;
pub use error::{EngineError, ErrorKind, classify};
pub use file_reads::panic_message;
pub use leftovers::remove_left_by_gone_processes;
pub use load::{BadRows, LoadProgress, LoadRequest, LoadSummary, SourceFormat};
pub use memory::{parse_memory_limit, parse_size, total_memory};
pub use query_memory::query_task;
pub use result_key::result_key;
pub use storage::{
    Location, S3Config, StorageConfig, object_store_for, storage_error, upload_file,
};
pub use tag_index::TAG_BITMAPS;
pub use vacuum::{MIN_RETENTION, VacuumSummary};

/// Makes ring the process's TLS provider. Two are linked (ring, which the
/// Flight SQL server and S3 client use, and aws-lc, which Delta Lake's HTTP
/// client brings), and rustls picks none by itself when it has two: a TLS
/// server or client would fail to start. Call it first thing; calling it
/// again changes nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Dataset {
    fn registered(&self) -> Result<std::sync::MutexGuard<'_, BTreeSet<String>>, EngineError> {
        self.registered
            .lock()
            .map_err(|_| EngineError::Internal("table registry lock poisoned".into()))
    }
}

/// A running engine: one session with its tables and functions. Further
/// sessions over the same tables come from [`Engine::session`].
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
    /// The catalogs every session of this engine shares.
    shared: Arc<dyn CatalogProviderList>,
    dataset: Option<Arc<Dataset>>,
    /// Delta tables registered as a version's files (on a Ballista cluster).
    listed: Arc<listed_versions::ListedVersions>,
}

/// The dataset folder and the tables registered from it, for [`Engine::refresh_tables`].
struct Dataset {
    dir: storage::Location,
    /// Names configured explicitly, which the folder never overrides.
    configured: BTreeSet<String>,
    /// Queries run on a Ballista cluster.
    distributed: bool,
    registered: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("session_id", &self.ctx.session_id())
            .finish()
    }
}

impl Engine {
    /// Builds the session (local, or on Ballista as `engine.remote` says) and
    /// registers every configured table.
    pub async fn start(config: &EngineConfig) -> Result<Self, EngineError> {
        let ctx = session::new_context(config)?;
        let mode = ExecutionMode::parse(&config.engine.remote)?;
        let ctx = cluster::distributed_context(ctx, &mode).await?;
        let shared = Arc::clone(ctx.state_ref().read().catalog_list());
        let ctx = temp_tables::session_over(&ctx, &shared);
        let (registered, listed) = session::register_tables(&ctx, config).await?;
        let dataset = config.data.location()?.map(|dir| {
            Arc::new(Dataset {
                dir,
                configured: config.tables.keys().cloned().collect(),
                distributed: mode != ExecutionMode::Local,
                registered: Mutex::new(registered),
            })
        });
        Ok(Engine {
            ctx,
            shared,
            dataset,
            listed: Arc::new(listed),
        })
    }

    /// A new session over this engine's tables, as a client connection gets:
    /// its `SET`s and temporary tables are its own, starting from this
    /// session's settings.
    pub fn session(&self) -> Engine {
        Engine {
            ctx: temp_tables::session_over(&self.ctx, &self.shared),
            shared: Arc::clone(&self.shared),
            dataset: self.dataset.clone(),
            listed: Arc::clone(&self.listed),
        }
    }

    /// Brings the tables of the dataset folder up to date: a new subfolder
    /// becomes a table, a removed one is dropped. A long-running server calls
    /// this before each request, so tables written while it runs are visible to
    /// the next query (on a Ballista cluster too, where a Delta table is
    /// registered again when a newer version was committed). A new folder that
    /// cannot be read yet is skipped (and logged), not an error for the query
    /// at hand.
    pub async fn refresh_tables(&self) -> Result<(), EngineError> {
        self.listed.refresh(&self.ctx).await?;
        let Some(dataset) = &self.dataset else {
            return Ok(());
        };
        let found: Vec<(String, storage::Location)> =
            catalog::dataset_tables(&self.ctx, &dataset.dir)
                .await?
                .into_iter()
                .filter(|(name, _)| !dataset.configured.contains(name))
                .collect();
        let known = dataset.registered()?.clone();
        for name in known.iter() {
            if !found.iter().any(|(n, _)| n == name) {
                self.ctx.deregister_table(name.as_str())?;
                self.listed.forget(name).await;
                dataset.registered()?.remove(name);
            }
        }
        for (name, location) in found {
            if known.contains(&name) {
                continue;
            }
            match catalog::register_table(
                &self.ctx,
                &name,
                &location,
                catalog::dataset_sort_order(&name),
                dataset.distributed,
            )
            .await
            {
                Ok(listed) => {
                    if let Some(listed) = listed {
                        self.listed.add(listed).await;
                    }
                    dataset.registered()?.insert(name);
                }
                Err(e) => tracing::debug!(table = %name, error = %e, "new table not readable yet"),
            }
        }
        Ok(())
    }

    /// Loads files or a query's result into a Delta table in one commit
    /// (creating the table on its first load); see [`LoadRequest`].
    pub async fn load(
        &self,
        request: &LoadRequest,
        progress: &Arc<LoadProgress>,
    ) -> Result<LoadSummary, EngineError> {
        let query = match &request.sql {
            Some(sql) => Some(self.sql(sql).await?),
            None => None,
        };
        load::load(&self.ctx, request, query, progress).await
    }

    /// Merges each member range's files of the Delta table `table` at
    /// `target` into one sorted file, in one commit that changes no data.
    pub async fn compact(
        &self,
        table: &str,
        target: &Location,
    ) -> Result<CompactSummary, EngineError> {
        compact::compact(&self.ctx, table, target).await
    }

    /// Deletes the files of the Delta table at `target` that no version of
    /// the last `retain` needs; see [`MIN_RETENTION`].
    pub async fn vacuum(
        &self,
        target: &Location,
        retain: std::time::Duration,
    ) -> Result<VacuumSummary, EngineError> {
        vacuum::vacuum(&self.ctx, target, retain, None).await
    }

    /// [`Engine::vacuum`] as a run at `now` (ms since the epoch) would do it.
    pub async fn vacuum_as_of(
        &self,
        target: &Location,
        retain: std::time::Duration,
        now: i64,
    ) -> Result<VacuumSummary, EngineError> {
        vacuum::vacuum(&self.ctx, target, retain, Some(now)).await
    }

    /// Makes the Parquet files in `target` the Delta table `table` where
    /// they lie (version 0, member ranges recorded); returns their number.
    /// `audience gen` makes its tables so.
    pub async fn adopt_as_delta_table(
        &self,
        table: &str,
        target: &Location,
    ) -> Result<usize, EngineError> {
        adopt::adopt(&self.ctx, table, target).await
    }

    /// The Delta tables of the dataset folder, by name.
    pub async fn delta_tables(&self) -> Result<Vec<(String, Location)>, EngineError> {
        let Some(dataset) = &self.dataset else {
            return Ok(Vec::new());
        };
        let mut tables = Vec::new();
        for (name, location) in catalog::dataset_tables(&self.ctx, &dataset.dir).await? {
            if delta_tables::is_delta_table(&self.ctx, &location).await? {
                tables.push((name, location));
            }
        }
        Ok(tables)
    }

    /// The underlying DataFusion session.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs every `;`-separated statement in `sql` in order and returns the last
    /// one's result, not yet executed. Earlier statements run to completion.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame, EngineError> {
        let (leading, last) = split_last(sql)?;
        self.run_all(leading).await?;
        self.statement(last).await
    }

    /// Runs `statements` in order, each to completion.
    async fn run_all(&self, statements: VecDeque<Statement>) -> Result<(), EngineError> {
        for statement in statements {
            self.statement(statement).await?.collect().await?;
        }
        Ok(())
    }

    /// Runs `sql` (its last statement a query) and writes the query's result to
    /// `target` (a path, `file://` or `s3://` object) as `format` (`PARQUET`,
    /// `CSV`), atomically; returns the rows written.
    pub async fn export(&self, sql: &str, target: &str, format: &str) -> Result<u64, EngineError> {
        let (leading, last) = split_last(sql)?;
        let Statement::Statement(query) = last else {
            return Err(EngineError::Invalid(
                "the last statement of an export must be a query".into(),
            ));
        };
        let sqlparser::ast::Statement::Query(query) = *query else {
            return Err(EngineError::Invalid(
                "the last statement of an export must be a query".into(),
            ));
        };
        self.run_all(leading).await?;
        let copy = CopyToStatement {
            source: CopyToSource::Query(query),
            target: target.to_string(),
            partitioned_by: vec![],
            stored_as: Some(format.to_string()),
            options: vec![],
        };
        let batches = export::copy_atomically(&self.ctx, copy).await?;
        export::rows_copied(&batches)
    }

    /// Plans one parsed statement. Queries are returned unexecuted; DDL, `SET`
    /// and `COPY … TO` (atomic) run now and return their result.
    pub async fn statement(&self, mut statement: Statement) -> Result<DataFrame, EngineError> {
        temp_tables::into_temp_schema(&mut statement)?;
        if let Statement::CopyTo(copy) = statement {
            let result = export::copy_atomically(&self.ctx, copy).await?;
            return Ok(self.ctx.read_batches(result)?);
        }
        // the query's own state, recording the table versions it reads
        let mut state = self.ctx.state();
        let versions = Arc::new(TableVersions::default());
        state.config_mut().set_extension(Arc::clone(&versions));
        let plan = state.statement_to_plan(statement).await?;
        match plan {
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) => {
                Ok(self.ctx.execute_logical_plan(plan).await?)
            }
            // EXPLAIN also says which version of each table the plan reads
            LogicalPlan::Explain(_) => {
                let mut batches = DataFrame::new(state, plan).collect().await?;
                if let Some(first) = batches.first()
                    && !versions.is_empty()
                {
                    let row = RecordBatch::try_new(
                        first.schema(),
                        vec![
                            Arc::new(StringArray::from(vec!["table_versions"])),
                            Arc::new(StringArray::from(vec![versions.to_string()])),
                        ],
                    )
                    .map_err(datafusion::error::DataFusionError::from)?;
                    batches.push(row);
                }
                Ok(self.ctx.read_batches(batches)?)
            }
            plan => {
                // Optimising checks our functions' constant arguments (their
                // `simplify`): a bad one is an error now, while the statement is
                // planned, not at its first row. A plan with `$n` parameters
                // is checked when it runs with its values.
                if plan.get_parameter_types()?.is_empty() {
                    state.optimize(&plan)?;
                }
                Ok(DataFrame::new(state, plan))
            }
        }
    }
}

/// Parses `sql` into the statements before the last one, and the last one.
fn split_last(sql: &str) -> Result<(VecDeque<Statement>, Statement), EngineError> {
    let mut statements = parse(sql)?;
    let last = statements
        .pop_back()
        .ok_or_else(|| EngineError::Invalid("no SQL statement given".into()))?;
    Ok((statements, last))
}

/// Parses `;`-separated SQL into statements, in Audience's dialect.
pub fn parse(sql: &str) -> Result<VecDeque<Statement>, EngineError> {
    expression_depth::check(sql)?;
    Ok(DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?)
}
