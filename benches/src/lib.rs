//! The Audience benchmark (`audience bench`): the workload (`queries/`) on
//! Audience and its peers — ClickHouse (chDB), DuckDB, plain DataFusion, and
//! Audience over Flight SQL — over the same Parquet files, in one run,
//! interleaved (A B C D A B C D …), after checking that every engine gives the
//! same answer; writes JSON, Markdown and an SVG chart (`results/`).

mod answer;
mod engines;
mod peers;
mod report;
mod results;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use engines::EngineKind;
use engines::Runner;
pub use results::{Context, EngineResult, QueryResult, Results};

/// Why a benchmark run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A mistake in the request (arguments, files) or an engine that cannot start.
    #[error("{0}")]
    User(String),
    /// Two engines answered a query differently: a bug in one of them.
    #[error("{0}")]
    Mismatch(String),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The dataset folder (absolute), one subfolder per table.
    pub data: PathBuf,
    /// The dataset's scale name, for the report and the file names.
    pub scale: String,
    /// Engines in order; the first one's answers are the reference.
    pub engines: Vec<EngineKind>,
    /// Query ids or prefixes; all queries when empty.
    pub queries: Vec<String>,
    /// Counted runs per query and engine, after one warm-up.
    pub runs: usize,
    /// Folder for the reports.
    pub out: PathBuf,
    /// Python with the peers installed; `None` makes `benches/.venv` on first use.
    pub python: Option<PathBuf>,
}

/// Checks what needs no dataset: the query selection and the number of runs.
pub fn check(queries: &[String], runs: usize) -> Result<(), BenchError> {
    selection(queries, runs).map(|_| ())
}

/// The queries `queries` names, if `runs` is at least 1.
fn selection(queries: &[String], runs: usize) -> Result<Vec<&'static workload::Query>, BenchError> {
    if runs == 0 {
        return Err(BenchError::User("--runs must be at least 1".into()));
    }
    workload::select(queries).map_err(BenchError::User)
}

/// Runs the benchmark and writes `<date>-<scale>.{json,md,svg}` into
/// `options.out`; prints the Markdown report, and progress on stderr.
pub fn run(options: &Options) -> Result<Results, BenchError> {
    let queries = selection(&options.queries, options.runs)?;
    let data = &options.data;
    let python = if options.engines.iter().any(|e| *e != EngineKind::Audience) {
        Some(peers::python(options.python.as_deref())?)
    } else {
        None
    };

    let mut runners = Vec::new();
    for &kind in &options.engines {
        eprintln!("starting {} ...", kind.name());
        let runner = Runner::start(kind, data, python.as_deref())
            .map_err(|e| BenchError::User(format!("cannot start {}: {e}", kind.name())))?;
        runners.push((kind, runner));
    }

    let mut results = Vec::new();
    for (n, query) in queries.iter().enumerate() {
        let progress = format!("[{}/{}] {}", n + 1, queries.len(), query.id);
        let failed = |kind: EngineKind, e: String| {
            BenchError::User(format!("{} failed on {}: {e}", query.id, kind.name()))
        };
        let sqls: Vec<String> = runners
            .iter()
            .map(|(k, _)| query.sql(k.dialect(), |t| k.table_ref(data, t)))
            .collect();
        // The warm-up run: every answer must equal the first engine's.
        eprintln!("{progress}: warm-up, answers checked");
        let mut reference = None;
        let mut rows = Vec::new();
        for ((kind, runner), sql) in runners.iter_mut().zip(&sqls) {
            let run = runner.run(sql).map_err(|e| failed(*kind, e))?;
            match &reference {
                None => reference = Some((kind.name(), run.rows.clone())),
                Some((first, expected)) => {
                    answer::compare(expected, &run.rows).map_err(|diff| {
                        BenchError::Mismatch(format!(
                            "{}: {} answers differently from {first}: {diff}",
                            query.id,
                            kind.name()
                        ))
                    })?
                }
            }
            rows.push(run.rows.len());
        }
        let mut times = vec![Vec::new(); runners.len()];
        let mut peaks = vec![None::<f64>; runners.len()];
        for round in 1..=options.runs {
            eprintln!("{progress}: round {round}/{}", options.runs);
            for (i, ((kind, runner), sql)) in runners.iter_mut().zip(&sqls).enumerate() {
                let run = runner.run(sql).map_err(|e| failed(*kind, e))?;
                times[i].push(run.seconds);
                peaks[i] = match (peaks[i], run.peak_mb) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let engines: std::collections::BTreeMap<String, EngineResult> = runners
            .iter()
            .enumerate()
            .map(|(i, (kind, _))| {
                let figures = EngineResult::of(times[i].clone(), peaks[i], rows[i]);
                (kind.name().to_string(), figures)
            })
            .collect();
        let line: Vec<String> = runners
            .iter()
            .map(|(k, _)| format!("{} {:.3} s", k.name(), engines[k.name()].median))
            .collect();
        eprintln!("{progress}: {}", line.join(", "));
        results.push(QueryResult {
            query: query.id.to_string(),
            title: query.title.to_string(),
            floor: query.floor.map(str::to_string),
            rows: rows.first().copied(),
            engines,
        });
    }

    let date = chrono::Utc::now();
    let results = Results {
        context: Context {
            date: date.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            commit: git_commit(),
            scale: options.scale.clone(),
            data: data.display().to_string(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: audience_engine::total_memory() as f64 / (1u64 << 30) as f64,
            cpu: cpu_model(),
            os: std::env::consts::OS.to_string(),
            runs: options.runs,
            arguments: std::env::args().skip(1).collect(),
            versions: runners
                .iter()
                .map(|(k, r)| (k.name().to_string(), r.version.clone()))
                .collect(),
        },
        engines: runners.iter().map(|(k, _)| k.name().to_string()).collect(),
        results,
    };
    let stem = format!("{}-{}", date.format("%Y-%m-%d"), options.scale);
    write_reports(&options.out, &stem, &results)?;
    Ok(results)
}

/// Two results files side by side (Markdown): each engine's median per query, old → new.
pub fn compare(old: &Path, new: &Path) -> Result<String, BenchError> {
    Ok(report::compare(&Results::read(old)?, &Results::read(new)?))
}

/// Writes `<stem>.json`, `.md` and `.svg` into `out`, and prints the Markdown.
fn write_reports(out: &Path, stem: &str, results: &Results) -> Result<(), BenchError> {
    let user = |e: String| BenchError::User(e);
    std::fs::create_dir_all(out)
        .map_err(|e| user(format!("cannot create {}: {e}", out.display())))?;
    let json = serde_json::to_string_pretty(results)
        .map_err(|e| user(format!("cannot encode the results: {e}")))?;
    let markdown = report::markdown(results);
    for (ext, text) in [
        ("json", json + "\n"),
        ("md", markdown.clone()),
        ("svg", report::svg(results)),
    ] {
        let path = out.join(format!("{stem}.{ext}"));
        std::fs::write(&path, text)
            .map_err(|e| user(format!("cannot write {}: {e}", path.display())))?;
    }
    println!(
        "{markdown}\nwritten {}/{stem}.{{json,md,svg}}",
        out.display()
    );
    Ok(())
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_default()
}
