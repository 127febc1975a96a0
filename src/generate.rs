//! `audience gen`: the dataset generator with a progress bar (or log lines when
//! stderr is not a terminal).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use audience_data::{FileHook, GenConfig, GenProgress, GenSummary, Scale};
use audience_engine::{Location, S3Config, object_store_for, storage_error};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

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
        .unwrap_or_else(|| format!("data/{}", scale_name(args.scale)));
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
    let started = Instant::now();
    let summary = generate_with_progress(&config)?;
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

/// A hook that uploads each finished file to the same relative key under
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
        runtime.block_on(async {
            let mut source = tokio::fs::File::open(file)
                .await
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let mut upload = BufWriter::new(Arc::clone(&store), key.clone());
            let copied = tokio::io::copy(&mut source, &mut upload).await;
            let finished = match copied {
                Ok(_) => upload.shutdown().await,
                Err(e) => {
                    let _ = upload.abort().await;
                    Err(e)
                }
            };
            finished.map_err(|e| {
                let e = object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(e),
                };
                storage_error(&target, e).to_string()
            })
        })?;
        std::fs::remove_file(file).map_err(|e| format!("cannot remove {}: {e}", file.display()))
    })))
}

/// The file in a dataset folder naming what generated it.
const STAMP_FILE: &str = ".audience-data";

/// Generates `scale`'s dataset (seed 42, and its tag index when `tag_index`)
/// into `dir`, unless the folder's stamp says it already holds exactly that.
/// Built beside `dir` and renamed into place, so a reader never sees half a
/// dataset and concurrent first uses agree.
pub(crate) fn ensure_dataset(
    dir: &Path,
    scale: Scale,
    threads: Option<usize>,
    tag_index: bool,
) -> Result<(), CliError> {
    let stamp = format!(
        "audience-data {} scale={} seed=42{}\n",
        audience_data::GENERATOR_VERSION,
        scale_name(scale),
        if tag_index { " tag_bitmaps" } else { "" }
    );
    let current =
        |dir: &Path| std::fs::read_to_string(dir.join(STAMP_FILE)).is_ok_and(|s| s == stamp);
    if current(dir) {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(dir).to_path_buf();
    std::fs::create_dir_all(&parent)
        .map_err(|e| CliError::internal(format!("cannot create {}: {e}", parent.display())))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}-{}", std::process::id()));
    eprintln!(
        "generating the {} dataset in {} ...",
        scale_name(scale),
        dir.display()
    );
    let mut config = GenConfig::new(scale, &tmp);
    if let Some(t) = threads {
        config.threads = config.threads.min(t);
    }
    generate_with_progress(&config)?;
    if tag_index {
        crate::index::index_folder(&tmp)?;
    }
    std::fs::write(tmp.join(STAMP_FILE), &stamp)
        .map_err(|e| CliError::internal(format!("cannot write {}: {e}", tmp.display())))?;
    if current(dir) {
        // another process finished first
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !current(dir) {
            return Err(CliError::internal(format!(
                "cannot move the dataset into {}: {e}",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// The scale's name, as `--scale` spells it.
pub(crate) fn scale_name(scale: Scale) -> &'static str {
    match scale {
        Scale::Tiny => "tiny",
        Scale::S => "s",
        Scale::M => "m",
        Scale::L => "l",
        Scale::Xl => "xl",
    }
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
