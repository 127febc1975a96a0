//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Audience: an analytical SQL engine for retail member (CDP) analytics.
#[derive(Debug, Parser)]
#[command(name = "audience", version, about)]
pub(crate) struct Cli {
    /// Log line format on stderr (level filter from AUDIENCE_LOG or RUST_LOG).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate the synthetic retail dataset as Parquet.
    Gen(GenArgs),
    /// Run SQL and print the last statement's result.
    Query(QueryArgs),
    /// Write a query's result (a segment) to a file, atomically, with a progress bar.
    Export(ExportArgs),
    /// Load a channel's files (CSV, JSON lines, Parquet) or a query's result
    /// into a table of the dataset, in one atomic commit; a batch loaded
    /// before is not loaded again.
    Load(LoadArgs),
    /// Merge each member range's files (one per load) of Delta tables into
    /// one sorted file, in one commit per table, while queries and loads run.
    Compact(MaintainArgs),
    /// Delete Delta tables' files that no version within the retention
    /// needs (removed by compaction, or left by a crashed load).
    Vacuum(VacuumArgs),
    /// Build an index over a dataset folder.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Serve the tables over Arrow Flight SQL (JDBC, ADBC, BI tools) until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// Read a password from stdin and print its hash for `[[server.users]] password_hash`.
    HashPassword,
    /// Benchmark Audience against ClickHouse (chDB), DuckDB and plain DataFusion on
    /// the same Parquet files, interleaved, answers checked equal first.
    Bench(BenchArgs),
    /// Run a Ballista scheduler (the cluster's coordinator) until stopped;
    /// clients use --remote df://ADDR.
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor (a worker) registered with a scheduler, until stopped.
    Executor(ExecutorArgs),
}

/// Arguments of `audience scheduler`.
#[derive(Debug, Args)]
pub(crate) struct SchedulerArgs {
    /// Engine config file (TOML): [cluster], [storage.s3].
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// gRPC listen address (IP:PORT); default cluster.scheduler_addr (127.0.0.1:50050).
    #[arg(long)]
    pub(crate) addr: Option<String>,
}

/// Arguments of `audience executor`.
#[derive(Debug, Args)]
pub(crate) struct ExecutorArgs {
    /// Engine config file (TOML): [cluster], [engine], [storage.s3].
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Arrow Flight (shuffle data) listen address (IP:PORT); default cluster.executor_addr (127.0.0.1:50060).
    #[arg(long)]
    pub(crate) addr: Option<String>,
    /// gRPC port on the same host; default cluster.executor_grpc_port (50061).
    #[arg(long)]
    pub(crate) grpc_port: Option<u16>,
    /// The scheduler to register with (HOST:PORT); default cluster.scheduler (127.0.0.1:50050).
    #[arg(long)]
    pub(crate) scheduler: Option<String>,
    /// Tasks run at once; default one per core.
    #[arg(long)]
    pub(crate) tasks: Option<usize>,
    /// Memory for all of this executor's tasks, e.g. "8GB" or "50%"; default engine.memory_limit.
    #[arg(long)]
    pub(crate) memory_limit: Option<String>,
    /// Folder for shuffle files; default a temporary folder.
    #[arg(long)]
    pub(crate) work_dir: Option<String>,
}

/// Arguments of `audience bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Dataset scale; generated into data/<scale> if absent.
    #[arg(long, default_value = "m")]
    pub(crate) scale: audience_data::Scale,
    /// Dataset folder to use instead of data/<scale> (not generated).
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Engines, comma-separated; the first one's answers are the reference.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "audience,audience-flight,clickhouse,duckdb,datafusion"
    )]
    pub(crate) engines: Vec<audience_bench::EngineKind>,
    /// Queries by id or prefix (q1, q8_member_profile, f), comma-separated; default all.
    #[arg(long, value_delimiter = ',')]
    pub(crate) queries: Vec<String>,
    /// Counted runs per query and engine, after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub(crate) runs: usize,
    /// Folder for <date>-<scale>.json, .md and .svg.
    #[arg(long, default_value = "benches/results")]
    pub(crate) out: PathBuf,
    /// Python with the peers installed; default benches/.venv, made on first use.
    #[arg(long)]
    pub(crate) python: Option<PathBuf>,
    /// Print two results files side by side instead of running.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    pub(crate) compare: Option<Vec<PathBuf>>,
}

/// Arguments of `audience serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    /// Address to listen on (HOST:PORT, port 0 for any free one); default server.addr.
    #[arg(long)]
    pub(crate) addr: Option<String>,
    /// Longest one statement may run, e.g. "60s"; default server.query_timeout.
    #[arg(long, value_parser = audience_engine::parse_duration)]
    pub(crate) query_timeout: Option<std::time::Duration>,
}

/// Indexes `audience index` builds.
#[derive(Debug, Subcommand)]
pub(crate) enum IndexCommand {
    /// Roaring bitmaps of the members holding each (tag, value), from `member_tags`
    /// and the members' tier, city, province, gender and register_channel, written
    /// as the `tag_bitmaps` table of the dataset folder.
    Tags(IndexArgs),
}

/// Arguments of `audience gen`.
#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// Named size: tiny (1K members), s (100K), m (1M), l (10M), xl (10M members, 10B events).
    #[arg(long, default_value = "tiny")]
    pub(crate) scale: audience_data::Scale,
    /// Members, overriding the scale's.
    #[arg(long)]
    pub(crate) members: Option<u64>,
    /// Approximate events, overriding the scale's (default: 100 per member).
    #[arg(long)]
    pub(crate) events: Option<u64>,
    /// Random seed; the same seed gives the same rows at any thread count.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Output folder (one subfolder per table): a path, file:// or s3://bucket/prefix; default data/<scale>.
    #[arg(long)]
    pub(crate) out: Option<String>,
    /// Engine config file (TOML): its [storage.s3] settings are used for an s3:// --out.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Events fall in the 365 days before this date (YYYY-MM-DD, exclusive).
    #[arg(long)]
    pub(crate) end_date: Option<audience_data::NaiveDate>,
    /// Worker threads; default one per core.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
}

/// The SQL a command runs.
#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// SQL to run: one or more statements separated by `;`. Read from stdin when absent.
    #[arg(conflicts_with = "sql_option")]
    pub(crate) sql: Option<String>,
    /// The SQL, as an option instead of the positional argument.
    #[arg(long = "sql", id = "sql_option", value_name = "SQL")]
    pub(crate) sql_option: Option<String>,
    /// Read the SQL from this file.
    #[arg(short = 'f', long = "file", conflicts_with_all = ["sql", "sql_option"])]
    pub(crate) file: Option<PathBuf>,
}

/// Where the engine's tables come from and how it runs.
#[derive(Debug, Args)]
pub(crate) struct EngineArgs {
    /// Engine config file (TOML).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Dataset folder (a path, file:// or s3://bucket/prefix): one subfolder of Parquet files per table.
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// A table as NAME=LOCATION (a .parquet file or a folder of them, local or s3://); repeatable.
    #[arg(long = "table", value_name = "NAME=PATH")]
    pub(crate) tables: Vec<String>,
    /// Memory limit for the query, e.g. "4GB" or "50%".
    #[arg(long)]
    pub(crate) memory_limit: Option<String>,
    /// Parallel partitions; default one per core.
    #[arg(long)]
    pub(crate) target_partitions: Option<usize>,
    /// Rows per internal batch.
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Run on Ballista: "standalone" (an in-process cluster) or df://HOST:PORT
    /// (an `audience scheduler`); default engine.remote (local).
    #[arg(long)]
    pub(crate) remote: Option<String>,
}

/// The time limit of a one-shot command (`query`, `export`, `index tags`).
#[derive(Debug, Args)]
pub(crate) struct TimeoutArg {
    /// Give up when the whole command runs longer than this, e.g. "30s" or
    /// "10m" (an error, and no output file); default no limit.
    #[arg(long, value_parser = audience_engine::parse_duration)]
    pub(crate) timeout: Option<std::time::Duration>,
}

/// Arguments of `audience index tags`.
#[derive(Debug, Args)]
pub(crate) struct IndexArgs {
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    #[command(flatten)]
    pub(crate) limit: TimeoutArg,
}

/// Arguments of `audience query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    pub(crate) sql: SqlArgs,
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    #[command(flatten)]
    pub(crate) limit: TimeoutArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
    /// Write the result to this file instead of stdout (atomically: complete or not at all).
    #[arg(short = 'o', long = "output")]
    pub(crate) output: Option<PathBuf>,
    /// Print to stderr how long startup (tables) and the query took.
    #[arg(long)]
    pub(crate) timing: bool,
}

/// Arguments of `audience export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) sql: SqlArgs,
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    #[command(flatten)]
    pub(crate) limit: TimeoutArg,
    /// The file to write (a path, file:// URL or s3://bucket/key); replaced atomically when complete.
    #[arg(long)]
    pub(crate) to: String,
    /// File format; default from the extension of --to.
    #[arg(long, value_enum)]
    pub(crate) format: Option<ExportFormat>,
}

/// Arguments of `audience load`.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// The table to load into (created by its first load).
    pub(crate) table: String,
    /// Files, folders or globs to load (local paths or s3://); none with --sql.
    pub(crate) sources: Vec<String>,
    /// Engine config file (TOML).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Dataset folder holding the table (a path, file:// or s3://bucket/prefix); default data.dir.
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// The sources' format; default each file's extension.
    #[arg(long, value_enum)]
    pub(crate) format: Option<LoadFormat>,
    /// Load this query's result instead of files (renames, casts and
    /// cleaning in SQL over the raw files, e.g. read with read_csv).
    #[arg(long, conflicts_with = "sources")]
    pub(crate) sql: Option<String>,
    /// The batch's id; loading a batch id again is a no-op. Default: a hash of
    /// the sources' names, sizes and contents (of the query's text with --sql).
    #[arg(long)]
    pub(crate) batch_id: Option<String>,
    /// Rows that do not fit the table: reject the load (naming the first),
    /// or quarantine them into the table TABLE_rejects and load the rest.
    #[arg(long, value_enum, default_value = "reject")]
    pub(crate) bad_rows: BadRowsArg,
    /// Memory for the load's sort (rows beyond it are sorted on disk), e.g.
    /// "4GB" or "50%"; default engine.memory_limit.
    #[arg(long)]
    pub(crate) memory_limit: Option<String>,
    #[command(flatten)]
    pub(crate) limit: TimeoutArg,
}

/// What `audience load` does with rows that do not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BadRowsArg {
    /// Load nothing and name the first bad row.
    Reject,
    /// Load the other rows; the bad ones go, with their reasons, to TABLE_rejects.
    Quarantine,
}

/// Arguments of `audience compact`.
#[derive(Debug, Args)]
pub(crate) struct MaintainArgs {
    /// The tables; default every Delta table of the dataset.
    pub(crate) tables: Vec<String>,
    /// Engine config file (TOML).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Dataset folder holding the tables (a path, file:// or s3://bucket/prefix); default data.dir.
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// Memory for a compaction's sort (rows beyond it are sorted on disk), e.g.
    /// "4GB" or "50%"; default engine.memory_limit.
    #[arg(long)]
    pub(crate) memory_limit: Option<String>,
    #[command(flatten)]
    pub(crate) limit: TimeoutArg,
}

/// Arguments of `audience vacuum`.
#[derive(Debug, Args)]
pub(crate) struct VacuumArgs {
    #[command(flatten)]
    pub(crate) tables: MaintainArgs,
    /// Keep every file a version of this recent past needs, e.g. "7d" or
    /// "12h" (at least 1h: a running query may read a file removed since it began).
    #[arg(long, default_value = "7d", value_parser = audience_engine::parse_duration)]
    pub(crate) retain: std::time::Duration,
}

/// Source formats of `audience load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LoadFormat {
    /// Parquet files.
    Parquet,
    /// CSV with a header line.
    Csv,
    /// JSON lines: one object per line.
    Json,
}

/// File formats of `audience export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// Parquet (zstd).
    Parquet,
    /// CSV with a header row.
    Csv,
}

impl From<ExportFormat> for Format {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Parquet => Format::Parquet,
            ExportFormat::Csv => Format::Csv,
        }
    }
}

/// Result formats of `audience query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
    /// Parquet (zstd).
    Parquet,
}
