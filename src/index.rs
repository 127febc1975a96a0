//! `audience index tags`: one roaring bitmap of members per (tag, value), written
//! as the dataset folder's `tag_bitmaps` table, which the engine registers like
//! any other table. A marketer's segment then becomes bitmap algebra.

use std::path::{Path, PathBuf};
use std::time::Instant;

use audience_engine::Engine;

use crate::cli::{EngineArgs, Format};
use crate::error::CliError;
use crate::output::Output;
use crate::query::{engine_config, run_task};

/// The table the index is written as.
pub(crate) const TAG_BITMAPS: &str = "tag_bitmaps";

/// Bitmaps per Parquet row group of the index.
const ROW_GROUP_ROWS: usize = 16;

/// Member attributes indexed beside `member_tags`, each as a tag of the same name.
const MEMBER_ATTRIBUTES: [&str; 5] = ["tier", "city", "province", "gender", "register_channel"];

/// The query that builds the index.
fn index_sql() -> String {
    let mut sql = String::from(
        "SELECT tag, value, bitmap_agg(member_id) AS bitmap FROM (\n  \
         SELECT tag, value, member_id FROM member_tags",
    );
    for column in MEMBER_ATTRIBUTES {
        sql.push_str(&format!(
            "\n  UNION ALL SELECT '{column}', {column}, member_id FROM members"
        ));
    }
    sql.push_str("\n) GROUP BY tag, value ORDER BY tag, value");
    sql
}

pub(crate) fn run_tags(args: EngineArgs) -> Result<(), CliError> {
    let config = engine_config(&args)?;
    if config.data.dir.is_empty() {
        return Err(CliError::user(
            "index tags writes into a dataset folder: pass --data DIR (or set data.dir in the config)",
        ));
    }
    let dir = PathBuf::from(&config.data.dir);
    run_task(args.timeout, async move {
        let started = Instant::now();
        let engine = Engine::start(&config).await?;
        let rows = build_tag_index(&engine, &dir).await?;
        eprintln!(
            "indexed {rows} (tag, value) bitmaps into {} in {:.1} s",
            dir.join(TAG_BITMAPS).display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

/// Builds `dir/tag_bitmaps/tag_bitmaps.parquet` (replacing it atomically) and
/// returns how many bitmaps it holds.
pub(crate) async fn build_tag_index(engine: &Engine, dir: &Path) -> Result<u64, CliError> {
    let folder = dir.join(TAG_BITMAPS);
    std::fs::create_dir_all(&folder)
        .map_err(|e| CliError::user(format!("cannot create {}: {e}", folder.display())))?;
    // Sorted by (tag, value), one bitmap per page in small row groups: statistics and
    // the page index let a segment read only its own bitmaps.
    let output = Output::open(
        Some(&folder.join(format!("{TAG_BITMAPS}.parquet"))),
        Format::Parquet,
    )?
    .with_small_groups(ROW_GROUP_ROWS, 1);
    let written = async {
        output
            .write_stream(engine.sql(&index_sql()).await?.execute_stream().await?)
            .await
    };
    let result = written.await;
    if result.is_err() {
        // Leave no empty table folder behind (it would fail the next start).
        let _ = std::fs::remove_dir(&folder);
    }
    result
}

/// Builds the tag index of the dataset folder `dir` (outside any async runtime).
pub(crate) fn index_folder(dir: &Path) -> Result<u64, CliError> {
    let mut config = audience_engine::EngineConfig::default();
    config.data.dir = dir.to_string_lossy().into_owned();
    crate::query::runtime()?.block_on(async {
        let engine = Engine::start(&config).await?;
        build_tag_index(&engine, dir).await
    })
}
