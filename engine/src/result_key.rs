//! What identifies a query's result, so that a server can answer a repeated
//! query from the last time it ran (the Flight SQL server's result cache):
//! the query's plan, its session's settings and the version of each table it
//! reads. Only a query whose every table is a Delta table has one (a load or
//! compaction commits a new version, and so makes a new key), and only if
//! its functions give the same answer for the same input every time (not
//! `random()`, not `now()`).

use std::fmt::Write;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::source_as_provider;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility, WindowFunctionDefinition};

use crate::delta_tables::{DeltaTableProvider, TableVersions};
use crate::error::EngineError;

/// The key of `frame`'s result, or `None` when a repeat may answer
/// differently (or it reads no table). Pins the newest version of each table
/// in the query, so that running `frame` reads exactly the versions named.
pub async fn result_key(frame: &DataFrame) -> Result<Option<String>, EngineError> {
    let plan = frame.logical_plan();
    let Some(tables) = delta_tables_read(plan)? else {
        return Ok(None);
    };
    let task = frame.task_ctx();
    let config = task.session_config();
    let Some(versions) = config.get_extension::<TableVersions>() else {
        // not planned by `Engine::statement`: its versions are not pinned
        return Ok(None);
    };
    if tables.is_empty() {
        return Ok(None);
    }
    let mut key = format!("{}\n", plan.display_indent_schema());
    for entry in config.options().entries() {
        let _ = writeln!(key, "{}={}", entry.key, entry.value.unwrap_or_default());
    }
    for table in &tables {
        let Some(delta) = table.downcast_ref::<DeltaTableProvider>() else {
            return Ok(None);
        };
        let snapshot = delta.pinned_in(Some(Arc::clone(&versions))).await?;
        let _ = writeln!(
            key,
            "{} at {} version {}",
            delta.name(),
            delta.location(),
            snapshot.version
        );
    }
    Ok(Some(key))
}

/// The tables `plan` (with its subqueries) reads, each a Delta table; `None`
/// when it reads anything else, is not a query, or calls a function that is
/// not immutable.
fn delta_tables_read(plan: &LogicalPlan) -> DfResult<Option<Vec<Arc<dyn TableProvider>>>> {
    let mut tables: Vec<Arc<dyn TableProvider>> = Vec::new();
    let mut repeatable = true;
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                let provider = source_as_provider(&scan.source)?;
                if provider.is::<DeltaTableProvider>() {
                    if !tables.iter().any(|t| Arc::ptr_eq(t, &provider)) {
                        tables.push(provider);
                    }
                } else {
                    repeatable = false;
                }
            }
            LogicalPlan::Extension(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::DescribeTable(_) => repeatable = false,
            _ => {}
        }
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if !is_immutable(e) {
                    repeatable = false;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(match repeatable {
            true => TreeNodeRecursion::Continue,
            false => TreeNodeRecursion::Stop,
        })
    })?;
    Ok(repeatable.then_some(tables))
}

/// Whether `expr`'s own function (if it calls one) always answers the same
/// for the same input.
fn is_immutable(expr: &Expr) -> bool {
    let volatility = match expr {
        Expr::ScalarFunction(f) => f.func.signature().volatility,
        Expr::AggregateFunction(f) => f.func.signature().volatility,
        Expr::WindowFunction(w) => match &w.fun {
            WindowFunctionDefinition::AggregateUDF(f) => f.signature().volatility,
            WindowFunctionDefinition::WindowUDF(f) => f.signature().volatility,
        },
        _ => Volatility::Immutable,
    };
    volatility == Volatility::Immutable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Location;
    use crate::{BadRows, Engine, EngineConfig, LoadProgress, LoadRequest};

    /// An engine over `dir`, where table `t` gets a version per call of `load`
    /// (the first creates it: version 0, then its rows: version 1).
    async fn engine_over(dir: &std::path::Path) -> Engine {
        let text = format!("[data]\ndir = \"{}\"\n", dir.display());
        Engine::start(&EngineConfig::from_toml(&text).unwrap())
            .await
            .unwrap()
    }

    async fn load(engine: &Engine, dir: &std::path::Path, sql: &str) {
        let request = LoadRequest {
            table: "t".into(),
            target: Location::Local(dir.join("t")),
            sources: vec![],
            format: None,
            sql: Some(sql.into()),
            batch_id: None,
            schema: None,
            bad_rows: BadRows::Reject,
        };
        engine
            .load(&request, &Arc::new(LoadProgress::default()))
            .await
            .unwrap();
        engine.refresh_tables().await.unwrap();
    }

    async fn key(engine: &Engine, sql: &str) -> Option<String> {
        result_key(&engine.sql(sql).await.unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn a_key_names_the_plan_settings_and_versions_and_only_repeatable_queries_have_one() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_over(dir.path()).await;
        load(&engine, dir.path(), "SELECT 1::BIGINT AS x").await;
        let sql = "SELECT sum(x) FROM t";
        let first = key(&engine, sql)
            .await
            .expect("a query of a Delta table has a key");
        assert!(
            first.contains("t at ") && first.ends_with("version 1\n"),
            "{first}"
        );
        assert_eq!(key(&engine, sql).await.as_ref(), Some(&first));
        assert_ne!(
            key(&engine, "SELECT sum(x) + 1 FROM t").await.as_ref(),
            Some(&first)
        );

        // a load commits a new version: a new key
        load(&engine, dir.path(), "SELECT 2::BIGINT AS x").await;
        let second = key(&engine, sql).await.unwrap();
        assert!(second.ends_with("version 2\n"), "{second}");

        // a session's settings are part of it
        let session = engine.session();
        assert_eq!(key(&session, sql).await.as_ref(), Some(&second));
        session
            .sql("SET datafusion.execution.time_zone = '+08:00'")
            .await
            .unwrap();
        assert_ne!(key(&session, sql).await.as_ref(), Some(&second));

        // what may answer differently when repeated has none
        engine
            .sql("CREATE TABLE m AS SELECT 1::BIGINT AS x")
            .await
            .unwrap();
        for sql in [
            "SELECT sum(x) FROM t WHERE random() < 0.5",
            "SELECT x, now() FROM t",
            "SELECT x FROM t WHERE x < (SELECT count(*) FROM m)",
            "SELECT count(*) FROM generate_series(1, 3)",
            "SELECT 1",
        ] {
            assert_eq!(key(&engine, sql).await, None, "{sql}");
        }
    }

    #[tokio::test]
    async fn running_a_keyed_query_reads_the_versions_its_key_names() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_over(dir.path()).await;
        load(&engine, dir.path(), "SELECT 1::BIGINT AS x").await;
        let frame = engine.sql("SELECT sum(x) AS s FROM t").await.unwrap();
        let keyed = result_key(&frame).await.unwrap().unwrap();
        // committed after the key was taken: the query does not read it
        load(&engine, dir.path(), "SELECT 2::BIGINT AS x").await;
        let batches = frame.collect().await.unwrap();
        let sum = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        assert!(keyed.ends_with("version 1\n"), "{keyed}");
        assert_eq!(sum, 1);
    }
}
