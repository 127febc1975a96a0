//! `audience load`: a channel's files or a query's result into a table of the
//! dataset, with a progress bar of rows and MB/s on a terminal and one summary
//! line.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use audience_engine::{BadRows, Engine, LoadProgress, LoadRequest, Location, SourceFormat};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{BadRowsArg, LoadArgs, LoadFormat};
use crate::error::CliError;
use crate::maintain::dataset;
use crate::query::run_task;

pub(crate) fn run(args: LoadArgs) -> Result<(), CliError> {
    let (config, dataset) = dataset(
        args.config.as_deref(),
        args.data.as_deref(),
        args.memory_limit.as_deref(),
    )?;
    if args.table.is_empty() || args.table.starts_with('.') || args.table.contains('/') {
        return Err(CliError::user(format!(
            "'{}' is not a table name: use letters, digits and _",
            args.table
        )));
    }
    if args.sources.is_empty() && args.sql.is_none() {
        return Err(CliError::user(
            "name the files to load (files, folders or globs), or give --sql QUERY",
        ));
    }
    if let Location::Local(dir) = &dataset {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::user(format!(
                "cannot create the dataset folder {}: {e}",
                dir.display()
            ))
        })?;
    }
    let request = LoadRequest {
        table: args.table.clone(),
        target: dataset.join(&args.table),
        sources: args.sources.clone(),
        format: args.format.map(|f| match f {
            LoadFormat::Parquet => SourceFormat::Parquet,
            LoadFormat::Csv => SourceFormat::Csv,
            LoadFormat::Json => SourceFormat::Json,
        }),
        sql: args.sql.clone(),
        batch_id: args.batch_id.clone(),
        schema: known_schema(&args.table),
        bad_rows: match args.bad_rows {
            BadRowsArg::Reject => BadRows::Reject,
            BadRowsArg::Quarantine => {
                BadRows::Quarantine(dataset.join(&format!("{}_rejects", args.table)))
            }
        },
    };
    run_task(args.limit.timeout, async move {
        let started = Instant::now();
        let engine = Engine::start(&config).await?;
        let progress = Arc::new(LoadProgress::default());
        let bar = progress_bar(Arc::clone(&progress), started);
        let summary = engine.load(&request, &progress).await;
        bar.finish_and_clear();
        let summary = summary?;
        let secs = started.elapsed().as_secs_f64();
        if summary.already_loaded {
            println!(
                "batch {} was loaded into {} before (table version {}): nothing to do",
                summary.batch_id, request.target, summary.version
            );
        } else {
            // the rows beyond the memory limit were sorted on disk
            let spilled = match summary.spilled_bytes {
                0 => String::new(),
                bytes => format!(", {:.1} MB sorted on disk", bytes as f64 / 1e6),
            };
            println!(
                "loaded {} rows from {} files into {} (version {}, {} files written, batch {}{spilled}) in {secs:.2} s: {:.2}M rows/s",
                summary.rows,
                summary.files_read,
                request.target,
                summary.version,
                summary.files_written,
                summary.batch_id,
                summary.rows as f64 / secs.max(1e-9) / 1e6
            );
            if let BadRows::Quarantine(rejects) = &request.bad_rows
                && summary.rejected > 0
            {
                println!(
                    "{} rows did not fit and were set aside in {rejects} (batch {})",
                    summary.rejected, summary.batch_id
                );
            }
        }
        Ok(())
    })
}

/// The columns `shared/DATASET.md` gives a known table.
fn known_schema(table: &str) -> Option<datafusion::arrow::datatypes::SchemaRef> {
    use audience_data::*;
    let schema = match table {
        "members" => &MEMBERS_SCHEMA,
        "events" => &EVENTS_SCHEMA,
        "orders" => &ORDERS_SCHEMA,
        "member_tags" => &MEMBER_TAGS_SCHEMA,
        "identities" => &IDENTITIES_SCHEMA,
        _ => return None,
    };
    Some(Arc::clone(schema))
}

/// Rows read and MB/s on a terminal, updated from `progress`; hidden otherwise.
fn progress_bar(progress: Arc<LoadProgress>, started: Instant) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let shown = bar.clone();
    std::thread::spawn(move || {
        while !shown.is_finished() {
            let rows = progress.rows.load(Ordering::Relaxed);
            let mb = progress.bytes.load(Ordering::Relaxed) as f64 / 1e6;
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            shown.set_message(format!("{rows} rows read, {:.1} MB/s", mb / secs));
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    bar
}
