//! Deterministic synthetic retail member dataset (see `shared/DATASET.md`):
//! `members`, `events`, `orders`, `member_tags` and `identities` as zstd Parquet,
//! one folder per table, one file per member range, sorted by `(member_id, ts)`.
//!
//! The same seed gives the same rows (indeed the same bytes) at any thread count:
//! every member draws from random streams keyed by the seed and its id, and the
//! member ranges depend only on the dataset's size.

mod calendar;
mod dataset;
mod member;
mod rng;
mod tables;
mod vocab;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use chrono::NaiveDate;
pub use dataset::{DatasetError, STAMP_FILE, ensure_dataset, read_stamp, write_stamp};
pub use tables::{
    EVENTS_SCHEMA, IDENTITIES_SCHEMA, MEMBER_TAGS_SCHEMA, MEMBERS_SCHEMA, ORDERS_SCHEMA,
};
pub use writer::GenError;

/// Version of the generator's output: bumped whenever the same seed would give
/// other rows or other files (5: the stamp names the sizes, not the tag index;
/// 6: each table is a Delta table).
pub const GENERATOR_VERSION: u32 = 6;

/// Names of the generated tables, each a folder under the output directory.
pub const TABLES: [&str; 5] = ["members", "events", "orders", "member_tags", "identities"];

/// The named dataset sizes of `shared/DATASET.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// 1,000 members, ~100,000 events: unit tests and the quick start.
    Tiny,
    /// 100,000 members, ~10M events: CI-sized integration and quick benchmarks.
    S,
    /// 1M members, ~100M events: the standard benchmark on a 2-core machine.
    M,
    /// 10M members, ~1B events: large machines and scale-out.
    L,
    /// 10M members, ~10B events: the design target.
    Xl,
}

impl Scale {
    /// `(members, events)` of this scale.
    pub fn size(self) -> (u64, u64) {
        match self {
            Scale::Tiny => (1_000, 100_000),
            Scale::S => (100_000, 10_000_000),
            Scale::M => (1_000_000, 100_000_000),
            Scale::L => (10_000_000, 1_000_000_000),
            Scale::Xl => (10_000_000, 10_000_000_000),
        }
    }
}

impl std::str::FromStr for Scale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tiny" => Ok(Scale::Tiny),
            "s" => Ok(Scale::S),
            "m" => Ok(Scale::M),
            "l" => Ok(Scale::L),
            "xl" => Ok(Scale::Xl),
            _ => Err(format!("unknown scale '{s}': use tiny, s, m, l or xl")),
        }
    }
}

/// The default end date (exclusive): the window then holds 618, 11.11 and a Chinese New Year.
pub fn default_end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).expect("valid date") // ok: a constant, valid date
}

/// What to generate, and where.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// The named scale the sizes come from (and the stamp names).
    pub scale: Scale,
    /// Number of members (ids `1..=members`).
    pub members: u64,
    /// Approximate number of events.
    pub events: u64,
    /// Random seed: the same seed gives the same rows.
    pub seed: u64,
    /// Events fall in the 365 days before midnight of this date.
    pub end_date: NaiveDate,
    /// Output folder; one subfolder per table is created in it.
    pub out: PathBuf,
    /// Worker threads (they do not change the rows).
    pub threads: usize,
    /// Called with each finished file, e.g. to upload it and remove it.
    pub on_file: Option<FileHook>,
}

/// A function given each finished file's path (under [`GenConfig::out`]) by
/// the worker that wrote it; an `Err` stops generation with that message.
#[derive(Clone)]
pub struct FileHook(pub std::sync::Arc<FileHookFn>);

/// The function inside a [`FileHook`].
pub type FileHookFn = dyn Fn(&std::path::Path) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for FileHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileHook")
    }
}

impl GenConfig {
    /// A config for a named scale with the default seed and end date.
    pub fn new(scale: Scale, out: impl Into<PathBuf>) -> Self {
        let (members, events) = scale.size();
        GenConfig {
            scale,
            members,
            events,
            seed: 42,
            end_date: default_end_date(),
            out: out.into(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            on_file: None,
        }
    }
}

/// Live counters a caller can poll while [`generate`] runs (for a progress bar).
#[derive(Debug, Default)]
pub struct GenProgress {
    /// Events written so far.
    pub events: AtomicU64,
    /// Members done so far.
    pub members: AtomicU64,
}

impl GenProgress {
    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Rows written per table, in [`TABLES`] order.
    pub rows: [u64; 5],
    /// Files written per table.
    pub files_per_table: usize,
    /// Bytes written in all.
    pub bytes: u64,
}

impl GenSummary {
    /// Rows written to `table`.
    pub fn rows_of(&self, table: &str) -> u64 {
        TABLES
            .iter()
            .position(|t| *t == table)
            .map_or(0, |i| self.rows[i])
    }
}

/// Generates the dataset described by `config`, updating `progress` as it goes.
pub fn generate(config: &GenConfig, progress: &GenProgress) -> Result<GenSummary, GenError> {
    writer::generate(config, progress)
}
