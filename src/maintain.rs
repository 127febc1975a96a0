//! `audience compact` and `audience vacuum`: a dataset's Delta tables kept
//! fast (one sorted file per member range) and small (no file kept that no
//! version within the retention needs), one summary line per table.

use std::path::Path;
use std::time::Instant;

use audience_engine::{Engine, EngineConfig, Location};

use crate::cli::{MaintainArgs, VacuumArgs};
use crate::error::CliError;
use crate::query::{base_config, run_task};

/// The configuration with `--data` and `--memory-limit` applied, and the
/// dataset folder, which must be named.
pub(crate) fn dataset(
    config: Option<&Path>,
    data: Option<&str>,
    memory_limit: Option<&str>,
) -> Result<(EngineConfig, Location), CliError> {
    let mut config = base_config(config)?;
    if let Some(limit) = memory_limit {
        config.engine.memory_limit = limit.to_string();
    }
    if let Some(dir) = data {
        config.data.dir = dir.to_string();
    }
    if config.data.dir.is_empty() {
        return Err(CliError::user(
            "name the dataset folder holding the tables: --data DIR (or data.dir in the config)",
        ));
    }
    let dir = Location::parse(&format!("--data {}", config.data.dir), &config.data.dir)?;
    Ok((config, dir))
}

/// The tables `args` names (each a Delta table of the dataset), or all of them.
async fn tables(
    engine: &Engine,
    dir: &Location,
    args: &[String],
) -> Result<Vec<(String, Location)>, CliError> {
    let all = engine.delta_tables().await?;
    if args.is_empty() {
        if all.is_empty() {
            return Err(CliError::user(format!(
                "{dir} holds no Delta tables (folders with _delta_log/, written by audience load)"
            )));
        }
        return Ok(all);
    }
    args.iter()
        .map(|name| {
            all.iter().find(|(n, _)| n == name).cloned().ok_or_else(|| {
                CliError::user(format!(
                    "{} is not a Delta table (no {}/_delta_log/): only tables written by \
                         audience load can be compacted or vacuumed",
                    dir.join(name),
                    dir.join(name)
                ))
            })
        })
        .collect()
}

pub(crate) fn run_compact(args: MaintainArgs) -> Result<(), CliError> {
    let (config, dir) = dataset(
        args.config.as_deref(),
        args.data.as_deref(),
        args.memory_limit.as_deref(),
    )?;
    run_task(args.limit.timeout, async move {
        let engine = Engine::start(&config).await?;
        for (name, location) in tables(&engine, &dir, &args.tables).await? {
            let started = Instant::now();
            let summary = engine.compact(&name, &location).await?;
            let secs = started.elapsed().as_secs_f64();
            if summary.files_removed == 0 {
                println!(
                    "{name}: compact already (version {}): nothing to do",
                    summary.version
                );
            } else {
                println!(
                    "{name}: {} files merged into {} ({} rows, version {}) in {secs:.2} s",
                    summary.files_removed, summary.files_written, summary.rows, summary.version
                );
            }
        }
        Ok(())
    })
}

pub(crate) fn run_vacuum(args: VacuumArgs) -> Result<(), CliError> {
    let (config, dir) = dataset(
        args.tables.config.as_deref(),
        args.tables.data.as_deref(),
        args.tables.memory_limit.as_deref(),
    )?;
    let retain = args.retain;
    run_task(args.tables.limit.timeout, async move {
        let engine = Engine::start(&config).await?;
        for (name, location) in tables(&engine, &dir, &args.tables.tables).await? {
            let summary = engine.vacuum(&location, retain).await?;
            println!(
                "{name}: {} files deleted (version {})",
                summary.files_deleted, summary.version
            );
        }
        Ok(())
    })
}
