//! Building the DataFusion session: execution options, memory pool, tables and functions.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::EngineConfig;
use crate::catalog::{dataset_sort_order, dataset_tables, register_table};
use crate::date_cast::FastDateCasts;
use crate::dictionary_compare::CompareDictionaryKeys;
use crate::error::EngineError;
use crate::file_reads::FenceFileReads;
use crate::in_list_guard::GuardInListPairs;
use crate::join_build_once::BuildJoinsOnce;
use crate::listed_versions::ListedVersions;
use crate::member_ranges::DeclareMemberRanges;
use crate::memory::{memory_pool, parse_memory_limit, total_memory};
use crate::query_memory::AudienceOptions;
use crate::run_aggregate::AggregateRuns;
use crate::scan_checks::CheckScanFiles;
use crate::spill::disk_manager;
use crate::storage::{Location, StoreRegistry};
use crate::yield_points::InsertYieldPoints;

/// A session configured from `config`, without tables.
pub(crate) fn new_context(config: &EngineConfig) -> Result<SessionContext, EngineError> {
    config.validate()?;
    let e = &config.engine;
    let mut session = SessionConfig::new()
        .with_batch_size(e.batch_size)
        .with_information_schema(true)
        .with_collect_statistics(true);
    if e.target_partitions > 0 {
        session = session.with_target_partitions(e.target_partitions);
    }
    // per-query limits hold in this process (`validate` refuses one with engine.remote)
    if e.remote.trim().is_empty() {
        let query_limit = parse_memory_limit(&e.query_memory_limit, total_memory())?;
        session = session.with_option_extension(AudienceOptions::configured(
            query_limit,
            &e.query_memory_limit,
        ));
    }
    let options = session.options_mut();
    // Filters are not pushed into the Parquet decoder (DataFusion's default):
    // measured at scale m it made Q1 1.5×, Q2 1.6×, Q4 2.5×, Q5 2.2×, Q7 2.5×
    // and Q9 1.9× slower (join filters and selective predicates evaluated row by
    // row during decoding), and the tag-segment bitmap count 1.4× slower;
    // statistics and the page index still prune row groups and pages.
    options.execution.parquet.pushdown_filters = false;
    options.execution.parquet.enable_page_index = true;
    options.execution.parquet.pruning = true;
    // Sorted tables whose files do not overlap keep their order across files
    // (member-range scans are then regrouped by `member_ranges`).
    options.execution.split_file_groups_by_statistics = true;

    crate::file_reads::install_panic_hook();
    let ctx = context_with(session, runtime_env(config, true)?, true)?;
    crate::failpoints::register(&ctx);
    Ok(ctx)
}

/// A session over `runtime` with DataFusion's defaults, every Audience function,
/// and, ahead of the physical optimizer's own rules, the scan-file check and the
/// member-range rule (it must declare partitioning before distribution is
/// enforced). When `in_process` (a plan that travels to Ballista cannot carry
/// their nodes), also: comparisons of dictionary strings with constants on
/// their keys, aggregates over sorted keys that group by runs, nested
/// loop joins that build once, yield points and the
/// fence that names the file of a failed read after the physical rules, the
/// guard that keeps DataFusion from merging `IN` lists wrongly among the
/// analyzer rules, and the faster `CAST(ts AS DATE)` after the optimizer's
/// rules.
pub(crate) fn context_with(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    in_process: bool,
) -> datafusion::error::Result<SessionContext> {
    let mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> = vec![
        Arc::new(CheckScanFiles),
        Arc::new(DeclareMemberRanges {
            merge_overlapping: in_process,
        }),
    ];
    rules.extend(PhysicalOptimizer::new().rules);
    if in_process {
        rules.push(Arc::new(CompareDictionaryKeys));
        rules.push(Arc::new(AggregateRuns));
        rules.push(Arc::new(BuildJoinsOnce));
        rules.push(Arc::new(InsertYieldPoints));
        rules.push(Arc::new(FenceFileReads));
    }
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_physical_optimizer_rules(rules);
    if in_process {
        state = state
            .with_analyzer_rule(Arc::new(GuardInListPairs::default()))
            .with_optimizer_rule(Arc::new(FastDateCasts::default()));
    }
    let state = state.build();
    let ctx = SessionContext::new_with_state(state);
    audience_udfs::register_all(&ctx)?;
    Ok(ctx)
}

/// The runtime of a session configured from `config`: object stores, caches,
/// spill folder and limit, and the memory limit when `with_memory_limit` (a Ballista
/// executor applies its own).
pub(crate) fn runtime_env(
    config: &EngineConfig,
    with_memory_limit: bool,
) -> Result<Arc<RuntimeEnv>, EngineError> {
    let e = &config.engine;
    // No file-listing cache: DataFusion's never expires, and files written while
    // a server runs (exports, new tables) must be visible to the next query.
    // Parquet footers (and page indexes) are cached up to `metadata_cache`, so
    // repeated queries do not re-read them from object storage; statistics stay
    // cached too, validated by size and mtime.
    let metadata_cache = metadata_cache_bytes(&e.metadata_cache)?;
    let mut runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(
            CacheManagerConfig::default()
                .with_list_files_cache_limit(0)
                .with_metadata_cache_limit(metadata_cache),
        )
        .with_object_store_registry(Arc::new(StoreRegistry::new(config.storage.s3.clone())));
    if with_memory_limit && let Some(bytes) = parse_memory_limit(&e.memory_limit, total_memory())? {
        runtime = runtime.with_memory_pool(memory_pool(bytes));
    }
    runtime = runtime.with_disk_manager_builder(disk_manager(&e.spill_dir, &e.spill_limit)?);
    Ok(runtime.build_arc()?)
}

/// The `engine.metadata_cache` setting in bytes: `"0"` is off, `"unlimited"` no limit.
pub(crate) fn metadata_cache_bytes(text: &str) -> Result<usize, EngineError> {
    if text.trim() == "0" {
        return Ok(0);
    }
    let bytes = parse_memory_limit(text, total_memory()).map_err(|_| {
        EngineError::Config(format!(
            "engine.metadata_cache must be a size like \"64MB\", a share like \"1%\", \"0\" (off) or \"unlimited\"; got \"{text}\""
        ))
    })?;
    Ok(bytes.unwrap_or(usize::MAX))
}

/// Registers the dataset folder's tables, then the explicitly configured ones;
/// returns the names registered from the dataset folder, and the tables
/// registered as a version's files (on a Ballista cluster).
pub(crate) async fn register_tables(
    ctx: &SessionContext,
    config: &EngineConfig,
) -> Result<(BTreeSet<String>, ListedVersions), EngineError> {
    let mut from_folder = BTreeSet::new();
    let listed = ListedVersions::default();
    let distributed = !config.engine.remote.trim().is_empty();
    if let Some(dir) = config.data.location()? {
        for (name, location) in dataset_tables(ctx, &dir).await? {
            if config.tables.contains_key(&name) {
                continue;
            }
            if let Some(version) = register_table(
                ctx,
                &name,
                &location,
                dataset_sort_order(&name),
                distributed,
            )
            .await?
            {
                listed.add(version).await;
            }
            from_folder.insert(name);
        }
    }
    for (name, table) in &config.tables {
        let order: Vec<&str> = table.sort_order().iter().map(String::as_str).collect();
        let location = Location::parse(&format!("table '{name}'"), table.location())?;
        if let Some(version) = register_table(ctx, name, &location, &order, distributed).await? {
            listed.add(version).await;
        }
    }
    Ok((from_folder, listed))
}
