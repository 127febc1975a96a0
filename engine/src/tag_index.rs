//! The tag index: one roaring bitmap of members per (tag, value), from
//! `member_tags` and the members' tier, city, province, gender and
//! register_channel, written as the dataset's `tag_bitmaps` table, which the
//! engine registers like any other. A marketer's segment then becomes bitmap
//! algebra.

use crate::Engine;
use crate::error::EngineError;
use crate::storage::Location;

/// The table the index is written as.
pub const TAG_BITMAPS: &str = "tag_bitmaps";

/// Bitmaps per Parquet row group of the index.
const ROW_GROUP_ROWS: usize = 16;

/// Member attributes indexed beside `member_tags`, each as a tag of the same name.
const MEMBER_ATTRIBUTES: [&str; 5] = ["tier", "city", "province", "gender", "register_channel"];

/// The query that builds the index, sorted by (tag, value).
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

impl Engine {
    /// Builds the tag index of the dataset at `dataset` (local or `s3://`) from
    /// its `member_tags` and `members` tables: `tag_bitmaps/tag_bitmaps.parquet`,
    /// replaced atomically. Returns how many bitmaps it holds.
    pub async fn build_tag_index(&self, dataset: &Location) -> Result<u64, EngineError> {
        let target = dataset
            .join(TAG_BITMAPS)
            .join(&format!("{TAG_BITMAPS}.parquet"));
        // Sorted by (tag, value), one bitmap per page in small row groups:
        // statistics and the page index let a segment read only its own bitmaps.
        let copy = format!(
            "COPY ({}) TO '{}' STORED AS PARQUET OPTIONS (\
             'format.max_row_group_size' '{ROW_GROUP_ROWS}', \
             'format.data_page_row_count_limit' '1', 'format.write_batch_size' '1', \
             'format.compression' 'zstd(3)')",
            index_sql(),
            target.to_string().replace('\'', "''")
        );
        let batches = self.sql(&copy).await?.collect().await?;
        crate::export::rows_copied(&batches)
    }
}
