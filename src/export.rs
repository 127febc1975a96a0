//! `audience export`: writes a query's result (a segment) to a Parquet or CSV
//! file with a progress bar of rows written. The file appears complete or not
//! at all: it is written under a hidden name and renamed when done, and a
//! failed or cancelled export removes it.

use std::io::IsTerminal;
use std::time::Instant;

use audience_engine::{Engine, Location};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{ExportArgs, ExportFormat};
use crate::error::CliError;
use crate::output::Output;
use crate::query::{engine_config, read_sql, run_task};

pub(crate) fn run(args: ExportArgs) -> Result<(), CliError> {
    let sql = read_sql(&args.sql)?;
    let config = engine_config(&args.engine)?;
    let location = Location::parse(&format!("--to {}", args.to), &args.to)?;
    let format = match args.format {
        Some(f) => f,
        None => format_of(&args.to)?,
    };
    let Location::Local(target) = location else {
        // An object is written by the engine's atomic COPY.
        return run_task(args.limit.timeout, async move {
            let started = Instant::now();
            let engine = Engine::start(&config).await?;
            let stored_as = match format {
                ExportFormat::Parquet => "PARQUET",
                ExportFormat::Csv => "CSV",
            };
            let rows = engine.export(&sql, &args.to, stored_as).await?;
            eprintln!(
                "exported {rows} rows to {} in {:.1} s",
                args.to,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        });
    };
    let output = Output::open(Some(&target), format.into())?.with_progress(progress_bar());
    run_task(args.limit.timeout, async move {
        let started = Instant::now();
        let engine = Engine::start(&config).await?;
        let stream = engine.sql(&sql).await?.execute_stream().await?;
        let rows = output.write_stream(stream).await?;
        eprintln!(
            "exported {rows} rows to {} in {:.1} s",
            target.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

fn format_of(target: &str) -> Result<ExportFormat, CliError> {
    let name = target.rsplit('/').next().unwrap_or(target);
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some(e) if e.eq_ignore_ascii_case("parquet") => Ok(ExportFormat::Parquet),
        Some(e) if e.eq_ignore_ascii_case("csv") => Ok(ExportFormat::Csv),
        _ => Err(CliError::user(format!(
            "cannot tell the format of {target} from its name: pass --format parquet or --format csv"
        ))),
    }
}

/// Rows written so far, on a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} rows written ({per_sec}) {elapsed}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
