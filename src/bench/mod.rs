//! `audience bench`: the workload on Audience and its peers over the same
//! Parquet files, in one run, interleaved (A B C D A B C D …), after checking
//! that every engine gives the same answer; writes JSON, Markdown and an SVG chart.

mod answer;
mod engines;
mod report;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::cli::BenchArgs;
use crate::error::CliError;
pub(crate) use engines::EngineKind;
use engines::Runner;

/// The peers' Python packages, pinned (installed into the harness's venv).
const REQUIREMENTS: &str = include_str!("../../benches/requirements.txt");

pub(crate) fn run(args: BenchArgs) -> Result<(), CliError> {
    if let Some(files) = &args.compare {
        let read = |p: &PathBuf| -> Result<Value, CliError> {
            let text = std::fs::read_to_string(p)
                .map_err(|e| CliError::user(format!("cannot read {}: {e}", p.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| CliError::user(format!("{} is not a results file: {e}", p.display())))
        };
        print!("{}", report::compare(&read(&files[0])?, &read(&files[1])?));
        return Ok(());
    }
    if args.runs == 0 {
        return Err(CliError::user("--runs must be at least 1"));
    }
    let queries = workload::select(&args.queries).map_err(CliError::user)?;
    let scale = crate::generate::scale_name(args.scale);
    let data = match &args.data {
        Some(dir) => dir.clone(),
        None => {
            let dir = PathBuf::from("data").join(scale);
            crate::generate::ensure_dataset(&dir, args.scale, None, false)?;
            dir
        }
    };
    let data = std::fs::canonicalize(&data)
        .map_err(|e| CliError::user(format!("dataset folder {}: {e}", data.display())))?;
    let python = if args.engines.iter().any(|e| *e != EngineKind::Audience) {
        Some(python(args.python.as_deref())?)
    } else {
        None
    };

    let mut runners = Vec::new();
    for &kind in &args.engines {
        eprintln!("starting {} ...", kind.name());
        let runner = Runner::start(kind, &data, python.as_deref())
            .map_err(|e| CliError::user(format!("cannot start {}: {e}", kind.name())))?;
        runners.push((kind, runner));
    }

    let mut results = Vec::new();
    for query in queries {
        let sqls: Vec<String> = runners
            .iter()
            .map(|(k, _)| query.sql(k.dialect(), |t| k.table_ref(&data, t)))
            .collect();
        // The warm-up run: every answer must equal the first engine's.
        let mut reference = None;
        let mut rows = Vec::new();
        for ((kind, runner), sql) in runners.iter_mut().zip(&sqls) {
            let run = runner.run(sql).map_err(|e| {
                CliError::user(format!("{} failed on {}: {e}", query.id, kind.name()))
            })?;
            match &reference {
                None => reference = Some((kind.name(), run.rows.clone())),
                Some((first, expected)) => {
                    answer::compare(expected, &run.rows).map_err(|diff| {
                        CliError::user(format!(
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
        for _ in 0..args.runs {
            for (i, ((kind, runner), sql)) in runners.iter_mut().zip(&sqls).enumerate() {
                let run = runner.run(sql).map_err(|e| {
                    CliError::user(format!("{} failed on {}: {e}", query.id, kind.name()))
                })?;
                times[i].push(run.seconds);
                peaks[i] = match (peaks[i], run.peak_mb) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let mut per_engine = serde_json::Map::new();
        let mut line = format!("{:<20}", query.id);
        for (i, (kind, _)) in runners.iter().enumerate() {
            let median = median(&times[i]);
            line.push_str(&format!(" {} {median:.3} s", kind.name()));
            per_engine.insert(
                kind.name().to_string(),
                json!({
                    "seconds": times[i],
                    "median": median,
                    "min": times[i].iter().cloned().fold(f64::INFINITY, f64::min),
                    "max": times[i].iter().cloned().fold(0.0, f64::max),
                    "peak_memory_mb": peaks[i],
                    "rows": rows[i],
                }),
            );
        }
        eprintln!("{line}");
        results.push(json!({
            "query": query.id,
            "title": query.title,
            "floor": query.floor,
            "rows": rows.first(),
            "engines": per_engine,
        }));
    }

    let versions: serde_json::Map<String, Value> = runners
        .iter()
        .map(|(k, r)| (k.name().to_string(), r.version.clone().into()))
        .collect();
    let date = chrono::Utc::now();
    let results = json!({
        "context": {
            "date": date.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "commit": git_commit(),
            "scale": scale,
            "data": data.display().to_string(),
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "memory_gib": audience_engine::total_memory() as f64 / (1u64 << 30) as f64,
            "cpu": cpu_model(),
            "os": std::env::consts::OS,
            "runs": args.runs,
            "arguments": std::env::args().skip(1).collect::<Vec<_>>(),
            "versions": versions,
        },
        "engines": runners.iter().map(|(k, _)| k.name()).collect::<Vec<_>>(),
        "results": results,
    });
    write_reports(
        &args.out,
        &format!("{}-{scale}", date.format("%Y-%m-%d")),
        &results,
    )
}

/// Writes `<stem>.json`, `.md` and `.svg` into `out`, and prints the Markdown.
fn write_reports(out: &Path, stem: &str, results: &Value) -> Result<(), CliError> {
    std::fs::create_dir_all(out)
        .map_err(|e| CliError::user(format!("cannot create {}: {e}", out.display())))?;
    let markdown = report::markdown(results);
    let files = [
        (
            "json",
            serde_json::to_string_pretty(results).unwrap_or_default() + "\n",
        ),
        ("md", markdown.clone()),
        ("svg", report::svg(results)),
    ];
    for (ext, text) in files {
        let path = out.join(format!("{stem}.{ext}"));
        std::fs::write(&path, text)
            .map_err(|e| CliError::user(format!("cannot write {}: {e}", path.display())))?;
    }
    println!(
        "{markdown}\nwritten {}/{stem}.{{json,md,svg}}",
        out.display()
    );
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The Python that runs the peers: `--python`, or `benches/.venv` made and
/// filled from `benches/requirements.txt` on first use.
fn python(given: Option<&Path>) -> Result<PathBuf, CliError> {
    let check = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                "import chdb, duckdb, datafusion, pyarrow, adbc_driver_flightsql",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(python) = given {
        if check(python) {
            return Ok(python.to_path_buf());
        }
        return Err(CliError::user(format!(
            "{} cannot import the peers; install benches/requirements.txt into it (pip install -r benches/requirements.txt) or leave out --python",
            python.display()
        )));
    }
    let venv = PathBuf::from("benches/.venv");
    let python = venv.join("bin/python");
    if check(&python) {
        return Ok(python);
    }
    eprintln!(
        "installing the peers (chdb, duckdb, datafusion, adbc-driver-flightsql) into {} ...",
        venv.display()
    );
    if !python.exists() {
        run_command(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    let requirements = std::env::temp_dir().join(format!(
        "audience-bench-requirements-{}.txt",
        std::process::id()
    ));
    std::fs::write(&requirements, REQUIREMENTS)
        .map_err(|e| CliError::internal(format!("cannot write {}: {e}", requirements.display())))?;
    let installed = run_command(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install",
    );
    let _ = std::fs::remove_file(&requirements);
    installed?;
    Ok(python)
}

fn run_command(command: &mut Command, what: &str) -> Result<(), CliError> {
    let status = command
        .status()
        .map_err(|e| CliError::user(format!("cannot run {what}: {e}")))?;
    if !status.success() {
        return Err(CliError::user(format!(
            "{what} failed ({status}); see its output above"
        )));
    }
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
