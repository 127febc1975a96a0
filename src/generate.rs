//! `audience gen`: the dataset generator with a progress bar (or log lines when
//! stderr is not a terminal).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use audience_data::{FileHook, GenConfig, GenProgress, GenSummary, Scale};
use audience_engine::{Engine, EngineConfig, Location, S3Config, object_store_for, upload_file};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::GenArgs;
use crate::error::CliError;

pub(crate) fn run(args: GenArgs) -> Result<(), CliError> {
    let (members, events) = args.scale.size();
    let members = args.members.unwrap_or(members);
    let events = args.events.unwrap_or(match args.members {
        Some(m) => m.saturating_mul(100),
        None => events,
    });
    let out = args
        .out
        .unwrap_or_else(|| format!("data/{}", args.scale.name()));
    let location = Location::parse(&format!("--out {out}"), &out)?;
    // An s3:// dataset is written file by file into a local staging folder,
    // each file uploaded and removed as soon as it is complete.
    let (out, staging) = match &location {
        Location::Local(path) => (path.clone(), None),
        Location::S3 { .. } => {
            let dir = tempfile::Builder::new()
                .prefix("audience-gen-")
                .tempdir()
                .map_err(|e| CliError::internal(format!("cannot create a staging folder: {e}")))?;
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    let mut config = GenConfig::new(args.scale, out);
    config.members = members;
    config.events = events;
    config.seed = args.seed;
    if let Some(d) = args.end_date {
        config.end_date = d;
    }
    if let Some(t) = args.threads {
        if t == 0 {
            return Err(CliError::user("--threads must be at least 1"));
        }
        config.threads = t;
    }
    let runtime = crate::query::runtime()?;
    if staging.is_some() {
        let engine = crate::query::base_config(args.config.as_deref())?;
        config.on_file = Some(upload_hook(
            &engine.storage.s3,
            &location,
            &config.out,
            runtime.handle().clone(),
        )?);
    }
    // The stamp says the folder holds a complete dataset: gone while writing.
    if staging.is_none() {
        let _ = std::fs::remove_file(config.out.join(audience_data::STAMP_FILE));
    }
    let started = Instant::now();
    let summary = generate_with_progress(&config)?;
    let engine = crate::query::base_config(args.config.as_deref())?;
    runtime.block_on(adopt_tables(&engine, &location))?;
    if staging.is_none() {
        audience_data::write_stamp(&config.out, &config.stamp()).map_err(|e| {
            CliError::internal(format!("cannot stamp {}: {e}", config.out.display()))
        })?;
    }
    let secs = started.elapsed().as_secs_f64();
    let ev = summary.rows_of("events");
    println!(
        "generated {} members, {} events, {} orders, {} tags, {} identities into {} ({} files per table, {:.1} MB) in {:.1} s: {:.2}M events/s",
        summary.rows_of("members"),
        ev,
        summary.rows_of("orders"),
        summary.rows_of("member_tags"),
        summary.rows_of("identities"),
        location,
        summary.files_per_table,
        summary.bytes as f64 / 1e6,
        secs,
        ev as f64 / secs / 1e6,
    );
    Ok(())
}

/// Makes each generated table under `dataset` a Delta table where its files
/// lie (version 0 holds them, with their member ranges recorded).
async fn adopt_tables(config: &EngineConfig, dataset: &Location) -> Result<(), CliError> {
    let mut config = config.clone();
    config.data.dir.clear();
    config.tables.clear();
    let engine = Engine::start(&config).await?;
    for table in audience_data::TABLES {
        engine
            .adopt_as_delta_table(table, &dataset.join(table))
            .await?;
    }
    Ok(())
}

/// A hook that uploads each finished file to the same relative path under
/// `target` (an S3 prefix), then removes the local file.
fn upload_hook(
    s3: &S3Config,
    target: &Location,
    staging: &Path,
    runtime: tokio::runtime::Handle,
) -> Result<FileHook, CliError> {
    let (store, prefix) = object_store_for(s3, target)?;
    let staging = staging.to_path_buf();
    let target = target.clone();
    Ok(FileHook(Arc::new(move |file: &Path| {
        let relative = file
            .strip_prefix(&staging)
            .map_err(|_| format!("{} is outside the staging folder", file.display()))?;
        let key = relative.iter().fold(prefix.clone(), |key, part| {
            key.join(part.to_string_lossy().as_ref())
        });
        runtime
            .block_on(upload_file(&store, file, key, &target))
            .map_err(|e| e.to_string())?;
        std::fs::remove_file(file).map_err(|e| format!("cannot remove {}: {e}", file.display()))
    })))
}

/// Generates `scale`'s dataset (seed 42) with its tag index into `dir`, unless
/// its stamp says it holds that dataset (see [`audience_data::ensure_dataset`]:
/// a folder that is not ours is never replaced). The index is built before the
/// dataset is moved into place, so a reader never sees it without one.
pub(crate) fn ensure_dataset(
    dir: &Path,
    scale: Scale,
    threads: Option<usize>,
) -> Result<(), CliError> {
    let mut config = GenConfig::new(scale, dir);
    if let Some(t) = threads {
        config.threads = config.threads.min(t);
    }
    let stamp = config.stamp();
    audience_data::ensure_dataset(dir, &stamp, |tmp| {
        eprintln!(
            "generating the {} dataset in {} ...",
            scale.name(),
            dir.display()
        );
        config.out = tmp.to_path_buf();
        generate_with_progress(&config).map_err(|e| e.to_string())?;
        let runtime = crate::query::runtime().map_err(|e| e.to_string())?;
        let (config, location) = (EngineConfig::default(), Location::Local(tmp.to_path_buf()));
        runtime
            .block_on(adopt_tables(&config, &location))
            .map_err(|e| e.to_string())?;
        crate::index::index_folder(tmp).map_err(|e| e.to_string())?;
        Ok(())
    })
    .map_err(|e| match e {
        audience_data::DatasetError::Occupied(m) | audience_data::DatasetError::Build(m) => {
            CliError::user(m)
        }
        e => CliError::internal(e.to_string()),
    })
}

/// Builds the tag index of the dataset in `dir` if it has none (a dataset that
/// `audience gen` wrote).
pub(crate) fn ensure_tag_index(dir: &Path) -> Result<(), CliError> {
    let index = audience_engine::TAG_BITMAPS;
    if dir.join(index).join(format!("{index}.parquet")).is_file() {
        return Ok(());
    }
    crate::index::index_folder(dir).map(|_| ())
}

/// Generates `config`'s dataset, showing progress on stderr.
pub(crate) fn generate_with_progress(config: &GenConfig) -> Result<GenSummary, CliError> {
    let progress = GenProgress::default();
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| show_progress(config, &progress, &done));
        let result = audience_data::generate(config, &progress);
        done.store(true, Ordering::Relaxed);
        result
    });
    result.map_err(|e| CliError::user(e.to_string()))
}

/// A progress bar with events/s on a terminal; a log line every few seconds otherwise.
fn show_progress(config: &GenConfig, progress: &GenProgress, done: &AtomicBool) {
    let started = Instant::now();
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(config.events), ProgressDrawTarget::stderr());
        let template = "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/~{human_len} events ({msg}, eta {eta})";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        while !done.load(Ordering::Relaxed) {
            let events = progress.events();
            bar.set_position(events.min(config.events));
            let rate = events as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{:.2}M events/s", rate / 1e6));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    } else {
        let mut last_log = Instant::now();
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last_log.elapsed() >= Duration::from_secs(5) {
                last_log = Instant::now();
                let events = progress.events();
                tracing::info!(
                    events,
                    of = config.events,
                    events_per_sec = (events as f64 / started.elapsed().as_secs_f64()) as u64,
                    "generating"
                );
            }
        }
    }
}
