//! Bad input gives exit code 2 and a message naming the problem, never a panic.

use crate::common;

use common::{audience, sample_dir};

#[test]
fn bad_sql_keeps_the_position() {
    audience(&["query", "SELEC 1"]).user_error("Line: 1, Column: 1");
    audience(&["query", "SELECT * FROM"]).user_error("SQL error");
}

#[test]
fn unknown_table_and_column() {
    audience(&["query", "SELECT * FROM no_such_table"]).user_error("no_such_table");
    audience(&["query", "SELECT no_such_column FROM members"]).user_error("no_such_column");
}

#[test]
fn missing_paths() {
    audience(&["query", "--table", "t=/definitely/not/here", "SELECT 1"])
        .user_error("/definitely/not/here");
    audience(&["query", "--data", "/definitely/not/here", "SELECT 1"]).user_error("does not exist");
    audience(&["query", "-f", "/definitely/not/here.sql"]).user_error("cannot read SQL file");
    audience(&["query", "--config", "/definitely/not/here.toml", "SELECT 1"])
        .user_error("cannot read config file");
    audience(&["query", "--table", "oops", "SELECT 1"]).user_error("NAME=PATH");
}

#[test]
fn malformed_parquet_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("garbage.parquet");
    std::fs::write(
        &bad,
        b"this is not a parquet file, just some bytes that go on for a while",
    )
    .unwrap();
    audience(&[
        "query",
        "--table",
        &format!("g={}", bad.display()),
        "SELECT count(*) FROM g",
    ])
    .user_error("garbage.parquet");
}

#[test]
fn unwritable_output() {
    audience(&["query", "-o", "/definitely/not/here/out.csv", "SELECT 1"])
        .user_error("cannot write output file");
    let tmp = tempfile::tempdir().unwrap();
    audience(&["query", "-o", tmp.path().to_str().unwrap(), "SELECT 1"]).user_error("is a folder");
}

#[test]
fn bad_config_values() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "[engine]\nmemory_limt = \"1GB\"\n").unwrap();
    audience(&["query", "--config", cfg.to_str().unwrap(), "SELECT 1"]).user_error("memory_limt");
    audience(&["query", "--memory-limit", "lots", "SELECT 1"]).user_error("memory_limit");
}

#[test]
fn a_query_over_the_memory_limit_fails_cleanly() {
    let dir = sample_dir();
    // A hash join cannot spill: its build side must fit the limit.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never.csv");
    let run = audience(&[
        "query",
        "--data",
        dir.to_str().unwrap(),
        "--memory-limit",
        "2MB",
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
        "SELECT count(*) FROM events a JOIN events b ON a.sku_id = b.sku_id AND a.member_id <> b.member_id",
    ]);
    run.user_error("Resources exhausted");
    assert!(!out.exists(), "a failed query must leave no output file");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no temporary file left"
    );
}

/// DataFusion's nested loop join, out of memory for its build side, runs that
/// side again to spill it, and a second run through a repartition panicked
/// ("partition not used yet"); now a resources-exhausted error
/// (engine/src/join_build_once.rs).
#[test]
fn a_join_without_equality_keys_over_the_memory_limit_fails_cleanly() {
    let grouped = |c: &str| {
        format!("SELECT value % 2000000 AS {c} FROM generate_series(1, 2000000) GROUP BY 1")
    };
    let sql = format!(
        "WITH a AS ({}), b AS ({}) SELECT count(*) FROM a JOIN b ON a.v < b.w AND a.v + 2 > b.w",
        grouped("v"),
        grouped("w")
    );
    audience(&["query", "--memory-limit", "16MiB", &sql])
        .user_error("the build side of a nested loop join");
}

#[test]
fn no_sql_at_all() {
    audience(&["query", ""]).user_error("no SQL statement");
}

#[test]
fn timeout_stops_a_long_query_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("all.csv");
    let started = std::time::Instant::now();
    audience(&[
        "query",
        "--timeout",
        "1s",
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
        "SELECT count(*) FROM generate_series(1, 1000000000000)",
    ])
    .user_error("gave up after --timeout 1s");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the timeout did not stop the query: {:?}",
        started.elapsed()
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "files left: {left:?}");
    audience(&["query", "--timeout", "soon", "SELECT 1"]).user_error("expected a duration");
}
