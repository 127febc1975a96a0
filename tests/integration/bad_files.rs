//! Corrupt and foreign files in a table's folder: each is an error that names
//! the file (exit 2, one line, no panic), never rows silently lost or counted,
//! and the table answers again once the file is gone.

use std::path::Path;

use crate::common;

use common::{audience, csv_rows, sample_dir};

/// A copy of the sample's `events` and `orders` tables in `dir`.
fn tables(dir: &Path) {
    for table in ["events", "orders"] {
        let from = sample_dir().join(table);
        let to = dir.join(table);
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(&from).unwrap() {
            // the data files only: the copy is a plain Parquet folder
            let file = file.unwrap().path();
            if file.is_file() {
                std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// A copy of the tables, its events count, and one file of the copy's `table`.
fn copy_with_a_file_of(table: &str) -> (tempfile::TempDir, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    tables(dir.path());
    let expected = csv_rows(&count(dir.path()).ok())[0][0].clone();
    let file = std::fs::read_dir(dir.path().join(table))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (dir, expected, file)
}

fn count(dir: &Path) -> common::Run {
    let data = dir.to_str().unwrap();
    audience(&[
        "query",
        "--format",
        "csv",
        "--data",
        data,
        "SELECT count(*) FROM events",
    ])
}

/// Asserts a one-line user error naming `file`, then that the table answers
/// `expected` once the file is removed.
fn refused_then_fine(dir: &Path, file: &Path, needle: &str, expected: &str) {
    let run = count(dir);
    let stderr = run.stderr.clone();
    run.user_error(needle);
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains(name.as_ref()),
        "the file is not named: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    std::fs::remove_file(file).unwrap();
    assert_eq!(csv_rows(&count(dir).ok())[0][0], expected);
}

#[test]
fn a_zero_byte_part_file_is_an_error_not_an_empty_file() {
    let (dir, expected, _) = copy_with_a_file_of("events");
    let empty = dir.path().join("events/part-99999.parquet");
    std::fs::write(&empty, b"").unwrap();
    refused_then_fine(dir.path(), &empty, "has 0 bytes", &expected);
}

#[test]
fn a_footer_longer_than_its_file_is_an_error_not_a_panic() {
    let (dir, expected, first) = copy_with_a_file_of("events");
    let mut bytes = std::fs::read(first).unwrap();
    let n = bytes.len();
    bytes[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let bad = dir.path().join("events/part-99999.parquet");
    std::fs::write(&bad, &bytes).unwrap();
    refused_then_fine(
        dir.path(),
        &bad,
        "footer claims 4294967295 bytes",
        &expected,
    );
    // and a file that is not Parquet at all
    std::fs::write(&bad, b"member_id,ts,event\n1,2026-01-01,view\n").unwrap();
    refused_then_fine(dir.path(), &bad, "magic bytes", &expected);
}

#[test]
fn a_file_of_another_table_is_named_not_counted() {
    let (dir, expected, orders) = copy_with_a_file_of("orders");
    let foreign = dir.path().join("events/part-99999.parquet");
    std::fs::copy(orders, &foreign).unwrap();
    refused_then_fine(
        dir.path(),
        &foreign,
        "is it a file of another table?",
        &expected,
    );
}

#[test]
fn an_optimizer_error_reads_as_its_cause() {
    let run = audience(&[
        "query",
        "SELECT member_id, lifecycle_stage(ts, TIMESTAMP '0001-01-01') FROM orders GROUP BY member_id",
    ]);
    let stderr = run.stderr.clone();
    assert_eq!(run.code, 2, "{stderr}");
    assert!(!stderr.contains("Optimizer rule"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_file_arriving_after_registration_is_named_at_planning() {
    let dir = tempfile::tempdir().unwrap();
    tables(dir.path());
    let mut config = audience_engine::EngineConfig::default();
    config.data.dir = dir.path().to_str().unwrap().to_string();
    let engine = audience_engine::Engine::start(&config).await.unwrap();
    let sql = "SELECT count(*) FROM events";
    assert!(engine.sql(sql).await.unwrap().collect().await.is_ok());
    let orders = std::fs::read_dir(dir.path().join("orders"))
        .unwrap()
        .next()
        .unwrap();
    std::fs::copy(
        orders.unwrap().path(),
        dir.path().join("events/part-99999.parquet"),
    )
    .unwrap();
    let e = match engine.sql(sql).await {
        Ok(frame) => frame.collect().await.err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    let e = e.expect("the foreign file was read");
    assert!(
        e.contains("part-99999.parquet") && e.contains("is NOT NULL and the file lacks the column"),
        "{e}"
    );
}
