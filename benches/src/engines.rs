//! The engines under test and how each runs a query: Audience in this process,
//! each peer (and the Flight SQL client) in its own Python process speaking one
//! JSON line per query (`benches/peer_worker.py`), so its memory is its own.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use audience_engine::{Engine, EngineConfig};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::answer::{Rows, rows_of};

/// The Python side of the peers, run with `python -c`.
const PEER_WORKER: &str = include_str!("../peer_worker.py");

/// An engine of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// Audience, in this process (release build).
    Audience,
    /// Audience over Flight SQL: `audience serve` queried through ADBC from Python.
    AudienceFlight,
    /// ClickHouse, in-process through chDB.
    Clickhouse,
    /// DuckDB.
    Duckdb,
    /// Plain DataFusion (the `datafusion` Python package, no custom functions).
    Datafusion,
}

impl EngineKind {
    /// The name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Audience => "audience",
            EngineKind::AudienceFlight => "audience-flight",
            EngineKind::Clickhouse => "clickhouse",
            EngineKind::Duckdb => "duckdb",
            EngineKind::Datafusion => "datafusion",
        }
    }

    /// Which of a query's texts this engine runs.
    pub(crate) fn dialect(self) -> &'static str {
        match self {
            EngineKind::Audience | EngineKind::AudienceFlight => "audience",
            other => other.name(),
        }
    }

    /// How its SQL names `table` of the dataset in `data`.
    pub(crate) fn table_ref(self, data: &Path, table: &str) -> String {
        match self {
            EngineKind::Clickhouse => {
                format!("file('{}/{table}/*.parquet', Parquet)", data.display())
            }
            _ => table.to_string(),
        }
    }
}

/// One query run: wall time until the whole result is in memory, the answer,
/// and the engine process's peak resident memory during the run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) seconds: f64,
    pub(crate) rows: Rows,
    pub(crate) peak_mb: Option<f64>,
}

/// A started engine.
pub(crate) struct Runner {
    /// The engine's version as reported in the results.
    pub(crate) version: String,
    kind: RunnerKind,
}

enum RunnerKind {
    InProcess {
        engine: Engine,
        runtime: tokio::runtime::Runtime,
    },
    Worker {
        worker: Worker,
        memory_pid: u32,
        _server: Option<KillOnDrop>,
    },
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("version", &self.version)
            .finish()
    }
}

impl Runner {
    /// Starts `kind` over the dataset in `data`; peers run under `python`.
    pub(crate) fn start(
        kind: EngineKind,
        data: &Path,
        python: Option<&Path>,
    ) -> Result<Self, String> {
        let data_arg = data.display().to_string();
        match kind {
            EngineKind::Audience => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the runtime: {e}"))?;
                let mut config = EngineConfig::default();
                config.data.dir = data_arg;
                let engine = runtime
                    .block_on(Engine::start(&config))
                    .map_err(|e| e.to_string())?;
                let version = format!("audience {}", env!("CARGO_PKG_VERSION"));
                Ok(Runner {
                    version,
                    kind: RunnerKind::InProcess { engine, runtime },
                })
            }
            EngineKind::AudienceFlight => {
                let (server, uri, password) = start_server(data)?;
                let memory_pid = server.0.id();
                let python = python.ok_or("no Python for the Flight SQL client")?;
                let (worker, client) =
                    Worker::start(python, &["flight", &data_arg, &uri, "bench", &password])?;
                let version = format!(
                    "audience {} over Flight SQL, {client}",
                    env!("CARGO_PKG_VERSION")
                );
                Ok(Runner {
                    version,
                    kind: RunnerKind::Worker {
                        worker,
                        memory_pid,
                        _server: Some(server),
                    },
                })
            }
            peer => {
                let python = python.ok_or("no Python for the peers")?;
                let (worker, version) = Worker::start(python, &[peer.name(), &data_arg])?;
                let memory_pid = worker.child.0.id();
                Ok(Runner {
                    version,
                    kind: RunnerKind::Worker {
                        worker,
                        memory_pid,
                        _server: None,
                    },
                })
            }
        }
    }

    /// Runs `sql` once.
    pub(crate) fn run(&mut self, sql: &str) -> Result<Run, String> {
        match &mut self.kind {
            RunnerKind::InProcess { engine, runtime } => {
                let pid = std::process::id();
                reset_peak_memory(pid);
                let started = Instant::now();
                let batches = runtime.block_on(async {
                    let frame = engine.sql(sql).await.map_err(|e| e.to_string())?;
                    frame.collect().await.map_err(|e| e.to_string())
                })?;
                let seconds = started.elapsed().as_secs_f64();
                let peak_mb = peak_memory_mb(pid);
                Ok(Run {
                    seconds,
                    rows: rows_of(&batches)?,
                    peak_mb,
                })
            }
            RunnerKind::Worker {
                worker, memory_pid, ..
            } => {
                reset_peak_memory(*memory_pid);
                let (seconds, rows) = worker.run(sql)?;
                Ok(Run {
                    seconds,
                    rows,
                    peak_mb: peak_memory_mb(*memory_pid),
                })
            }
        }
    }
}

/// A child process killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `peer_worker.py` process.
struct Worker {
    child: KillOnDrop,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts the worker and waits for its ready line; returns it and the version it reports.
    fn start(python: &Path, args: &[&str]) -> Result<(Worker, String), String> {
        let mut child = Command::new(python)
            .arg("-c")
            .arg(PEER_WORKER)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("worker pipes missing".into());
        };
        let mut worker = Worker {
            child: KillOnDrop(child),
            stdin,
            stdout: BufReader::new(stdout),
        };
        let ready: Ready = worker.read_line()?;
        Ok((worker, ready.version))
    }

    /// The worker's next line, as `T`.
    fn read_line<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => Err("the engine's process exited (see its message above)".into()),
            Ok(_) => {
                serde_json::from_str(&line).map_err(|e| format!("bad worker answer ({e}): {line}"))
            }
        }
    }

    fn run(&mut self, sql: &str) -> Result<(f64, Rows), String> {
        let request = serde_json::to_string(&Request { sql })
            .map_err(|e| format!("cannot encode the request: {e}"))?;
        writeln!(self.stdin, "{request}")
            .and_then(|()| self.stdin.flush())
            .map_err(|_| "the engine's process exited (see its message above)".to_string())?;
        match self.read_line()? {
            Answer::Done { seconds, rows } => Ok((seconds, rows)),
            Answer::Failed { error } => Err(error),
        }
    }
}

/// The worker's first line, once its tables are set up.
#[derive(Deserialize)]
struct Ready {
    version: String,
}

/// One query for the worker.
#[derive(Serialize)]
struct Request<'a> {
    sql: &'a str,
}

/// The worker's answer to a [`Request`].
#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    /// The query's wall time until its result was in Arrow, and its rows as text.
    Done { seconds: f64, rows: Rows },
    /// Why it failed.
    Failed { error: String },
}

/// Starts `audience serve` on a free loopback port over `data`, with one
/// analyst `bench` and a random password; returns it, its URI and the password.
fn start_server(data: &Path) -> Result<(KillOnDrop, String, String), String> {
    let password = audience_flight_server::random_handle();
    let hash = audience_flight_server::hash_password(&password)?;
    let dir = std::env::temp_dir().join(format!("audience-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let config = dir.join("serve.toml");
    let toml = format!(
        "[data]\ndir = {:?}\n\n[server]\naddr = \"127.0.0.1:0\"\nquery_timeout = \"1h\"\n\n\
         [[server.users]]\nname = \"bench\"\nrole = \"analyst\"\npassword_hash = \"{hash}\"\n",
        data.display().to_string()
    );
    std::fs::write(&config, toml).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("AUDIENCE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start audience serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("serve stdout missing")?;
    let server = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    let uri = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(uri) = line.strip_prefix("Audience Flight SQL server listening on ") {
                    break uri.trim().to_string();
                }
            }
            _ => {
                return Err(
                    "audience serve exited before listening (see its message above)".into(),
                );
            }
        }
    };
    // keep draining stdout so the server never blocks on a full pipe
    std::thread::spawn(move || for _ in lines {});
    let _ = std::fs::remove_dir_all(&dir);
    Ok((server, uri, password))
}

/// Resets the process's peak resident memory (Linux; a no-op elsewhere).
fn reset_peak_memory(pid: u32) {
    let _ = std::fs::write(PathBuf::from(format!("/proc/{pid}/clear_refs")), "5");
}

/// The process's peak resident memory since the last reset, in MB.
fn peak_memory_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
