//! `audience query`: runs SQL over the configured tables and writes the last result.

use std::future::Future;
use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

use audience_engine::{Engine, EngineConfig, TableConfig};

use crate::cli::{EngineArgs, QueryArgs, SqlArgs};
use crate::error::CliError;
use crate::output::Output;

pub(crate) fn run(args: QueryArgs) -> Result<(), CliError> {
    let sql = read_sql(&args.sql)?;
    let timing = args.timing;
    let config = engine_config(&args.engine)?;
    // Open the output first: an unwritable -o fails before any work is done.
    let output = Output::open(args.output.as_deref(), args.format)?;
    run_task(args.limit.timeout, async move {
        let started = Instant::now();
        let engine = Engine::start(&config).await?;
        let registered = Instant::now();
        let frame = engine.sql(&sql).await?;
        let (task, _) = audience_engine::query_task(frame.task_ctx());
        let plan = frame.create_physical_plan().await?;
        let stream = datafusion::physical_plan::execute_stream(plan, task)?;
        output.write_stream(stream).await?;
        if timing {
            eprintln!(
                "timing: startup {:.3} s, query {:.3} s",
                (registered - started).as_secs_f64(),
                registered.elapsed().as_secs_f64()
            );
        }
        Ok(())
    })
}

/// A fresh multi-threaded runtime for a command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .on_thread_park(audience_engine::idle_memory::on_thread_park)
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot start the runtime: {e}")))
}

/// Defaults, then the config `file`, then `AUDIENCE_*` variables.
pub(crate) fn base_config(file: Option<&std::path::Path>) -> Result<EngineConfig, CliError> {
    let mut config = match file {
        Some(path) => EngineConfig::from_file(path)?,
        None => EngineConfig::default(),
    };
    config.apply_env(std::env::vars())?;
    Ok(config)
}

/// Runs `work` on a fresh multi-threaded runtime. Ctrl-C or passing `timeout`
/// cancels it (dropping it, so partial outputs are removed), and a panic
/// inside surfaces as an internal error, not a crash.
pub(crate) fn run_task(
    timeout: Option<Duration>,
    work: impl Future<Output = Result<(), CliError>> + Send + 'static,
) -> Result<(), CliError> {
    let runtime = runtime()?;
    let result = runtime.block_on(async move {
        let task = tokio::spawn(work);
        let abort = task.abort_handle();
        let deadline = async move {
            match timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
            timeout
        };
        tokio::select! {
            joined = task => match joined {
                Ok(r) => r,
                Err(join) => Err(CliError::internal(format!("query task failed: {join}"))),
            },
            _ = tokio::signal::ctrl_c() => {
                abort.abort();
                Err(CliError::user("cancelled by Ctrl-C; no output file was written"))
            }
            Some(limit) = deadline => {
                abort.abort();
                Err(CliError::user(format!(
                    "gave up after --timeout {limit:?}; no output file was written"
                )))
            }
        }
    });
    // A stopped query may be inside an operator that has not reached a yield
    // point (a nested-loop join, say): it gets a moment to clean up, then its
    // threads are left behind and the process exits (the next write to the
    // target removes a temporary file it could not).
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The SQL text of a command: the argument, the file, or stdin.
pub(crate) fn read_sql(args: &SqlArgs) -> Result<String, CliError> {
    if let Some(sql) = args.sql.as_ref().or(args.sql_option.as_ref()) {
        return Ok(sql.clone());
    }
    if let Some(path) = &args.file {
        return std::fs::read_to_string(path)
            .map_err(|e| CliError::user(format!("cannot read SQL file {}: {e}", path.display())));
    }
    if std::io::stdin().is_terminal() {
        return Err(CliError::user(
            "no SQL given: pass it as an argument, with -f FILE, or on stdin",
        ));
    }
    let mut sql = String::new();
    std::io::stdin()
        .read_to_string(&mut sql)
        .map_err(|e| CliError::user(format!("cannot read SQL from stdin: {e}")))?;
    Ok(sql)
}

/// Defaults, then --config, then AUDIENCE_* variables, then flags. With no data
/// configured at all, the embedded sample dataset.
pub(crate) fn engine_config(args: &EngineArgs) -> Result<EngineConfig, CliError> {
    let mut config = base_config(args.config.as_deref())?;
    if let Some(dir) = &args.data {
        config.data.dir = dir.clone();
    }
    for spec in &args.tables {
        let Some((name, location)) = spec
            .split_once('=')
            .filter(|(n, l)| !n.is_empty() && !l.is_empty())
        else {
            return Err(CliError::user(format!(
                "--table expects NAME=PATH, got '{spec}'"
            )));
        };
        config.tables.insert(
            name.to_string(),
            TableConfig::Location(location.to_string()),
        );
    }
    if let Some(limit) = &args.memory_limit {
        config.engine.memory_limit = limit.clone();
    }
    if let Some(n) = args.target_partitions {
        config.engine.target_partitions = n;
    }
    if let Some(n) = args.batch_size {
        config.engine.batch_size = n;
    }
    if let Some(remote) = &args.remote {
        config.engine.remote = remote.clone();
    }
    if args.config.is_none() && config.data.dir.is_empty() && config.tables.is_empty() {
        config.data.dir = crate::sample::ensure_sample()?
            .to_string_lossy()
            .into_owned();
    }
    config.validate()?;
    Ok(config)
}
