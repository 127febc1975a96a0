//! Segment export is atomic: `audience export` and `COPY … TO` write complete files
//! or nothing; a failure midway, or Ctrl-C, leaves the target as it was and no
//! temporary file behind, and what a killed writer left the next run removes.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{audience, audience_with_env, csv_rows, read_file, sample_dir};

/// Every entry of `dir`, names sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn rows(path: &Path) -> usize {
    read_file(path).iter().map(|b| b.num_rows()).sum()
}

/// A query that fails after producing its first ~500 rows (division by zero),
/// in 10-row batches, so the writer has already written part of the output.
const FAILS_MIDWAY: &str = "SELECT member_id, phone_hash, 1 / (CASE WHEN member_id > 500 THEN 0 ELSE 1 END) AS x FROM members";

#[test]
fn export_writes_parquet_and_csv() {
    sample_dir();
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("segment.parquet");
    let sql = "SELECT member_id, phone_hash FROM members WHERE tier IN ('gold', 'black')";
    let run = audience(&["export", sql, "--to", parquet.to_str().unwrap()]);
    assert!(run.stderr.contains("exported "), "{}", run.stderr);
    run.ok();
    let expected: usize = csv_rows(
        &audience(&[
            "query",
            "--format",
            "csv",
            "SELECT count(*) FROM members WHERE tier IN ('gold', 'black')",
        ])
        .ok(),
    )[0][0]
        .parse()
        .unwrap();
    assert!(expected > 0);
    assert_eq!(rows(&parquet), expected);

    let csv = dir.path().join("segment.csv");
    let url = format!("file://{}", csv.display());
    audience(&["export", "--sql", sql, "--to", &url]).ok();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("member_id,phone_hash\n"), "{text}");
    assert_eq!(text.lines().count(), expected + 1);
    assert_eq!(entries(dir.path()), ["segment.csv", "segment.parquet"]);
}

#[test]
fn export_needs_a_format_it_can_tell() {
    audience(&["export", "SELECT 1", "--to", "/tmp/audience-segment.bin"])
        .user_error("pass --format parquet or --format csv");
    // no credentials anywhere: the client asks the instance metadata service
    // (here a closed loopback port) and gives up
    let no_keys = [(
        "AWS_METADATA_ENDPOINT".to_string(),
        "http://127.0.0.1:9".to_string(),
    )];
    audience_with_env(
        &["export", "SELECT 1", "--to", "s3://bucket/x.parquet"],
        &no_keys,
    )
    .user_error("no S3 credentials found for bucket 'bucket': set AWS_ACCESS_KEY_ID");
}

#[test]
fn failed_export_leaves_the_old_file_and_no_temporary() {
    sample_dir();
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [("seg.csv", "csv"), ("seg.parquet", "parquet")] {
        let target = dir.path().join(name);
        std::fs::write(&target, "previous export").unwrap();
        audience(&[
            "export",
            FAILS_MIDWAY,
            "--batch-size",
            "10",
            "--format",
            format,
            "--to",
            target.to_str().unwrap(),
        ])
        .user_error("Divide by zero");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "previous export");
    }
    assert_eq!(entries(dir.path()), ["seg.csv", "seg.parquet"]);
}

#[test]
fn copy_to_is_atomic() {
    sample_dir();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gold.parquet");
    let folder = dir.path().join("by_tier");
    let out = audience(&[
        "query",
        "--format",
        "csv",
        &format!(
            "COPY (SELECT member_id, tier FROM members WHERE tier = 'gold') TO '{}' STORED AS PARQUET",
            file.display()
        ),
    ])
    .ok();
    let copied: usize = csv_rows(&out)[0][0].parse().unwrap();
    assert!(copied > 0);
    assert_eq!(rows(&file), copied);

    // A folder target (no extension): a folder of files, moved into place whole.
    audience(&[
        "query",
        &format!(
            "COPY (SELECT member_id, tier FROM members) TO '{}' STORED AS PARQUET",
            folder.display()
        ),
    ])
    .ok();
    let parts = entries(&folder);
    assert!(!parts.is_empty() && parts.iter().all(|p| p.ends_with(".parquet")));

    // Failing midway: the earlier file stays as it was, nothing else appears.
    let before = std::fs::read(&file).unwrap();
    audience(&[
        "query",
        "--batch-size",
        "10",
        &format!(
            "COPY ({FAILS_MIDWAY}) TO '{}' STORED AS PARQUET",
            file.display()
        ),
    ])
    .user_error("Divide by zero");
    audience(&[
        "query",
        "--batch-size",
        "10",
        &format!(
            "COPY ({FAILS_MIDWAY}) TO '{}' STORED AS CSV",
            dir.path().join("new.csv").display()
        ),
    ])
    .user_error("Divide by zero");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(entries(dir.path()), ["by_tier", "gold.parquet"]);

    audience(&[
        "query",
        &format!(
            "COPY (SELECT 1) TO '{}' STORED AS PARQUET",
            folder.display()
        ),
    ])
    .user_error("already exists as a folder");
}

#[test]
fn ctrl_c_cancels_an_export_and_leaves_nothing() {
    sample_dir();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big.csv");
    // Far more rows than can be written before the signal arrives.
    let sql = "SELECT e.* FROM events e CROSS JOIN generate_series(1, 1000) g";
    // the query is running, so the Ctrl-C handler is installed
    let child = start_writing(
        dir.path(),
        &["export", sql, "--to", target.to_str().unwrap()],
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cancelled by Ctrl-C"), "{stderr}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

/// Starts `audience` with `args` and returns it once its temporary file (or
/// staging folder) beside the target in `dir` has bytes: it is mid-write.
fn start_writing(dir: &Path, args: &[&str]) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_audience"))
        .args(args)
        .env("AUDIENCE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // a hidden file with bytes, or a hidden folder holding one
    fn has_bytes(path: &Path) -> bool {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => std::fs::read_dir(path)
                .map(|d| d.flatten().any(|e| has_bytes(&e.path())))
                .unwrap_or(false),
            Ok(m) => m.len() > 0,
            Err(_) => false,
        }
    }
    let started = Instant::now();
    while !std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with('.') && has_bytes(&e.path()))
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Kills `args` with SIGKILL mid-write and returns what is left in `dir`.
fn kill_mid_write(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut child = start_writing(dir, args);
    child.kill().unwrap();
    child.wait().unwrap();
    entries(dir)
}

#[test]
fn what_a_killed_writer_left_is_removed_by_the_next_run() {
    sample_dir();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big.csv");
    let target = target.to_str().unwrap();
    std::fs::write(dir.path().join("big.csv"), "the earlier export\n").unwrap();
    let sql = "SELECT e.* FROM events e CROSS JOIN generate_series(1, 1000) g";
    let left = kill_mid_write(dir.path(), &["query", "--format", "csv", "-o", target, sql]);
    assert!(
        left.iter().any(|e| e.starts_with(".big.csv.tmp-")),
        "the kill came after the write began, so its file is there: {left:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("big.csv")).unwrap(),
        "the earlier export\n",
        "the target is untouched"
    );
    // a live writer's temporary file is left alone
    let live = format!(".big.csv.tmp-{}", std::process::id());
    std::fs::write(dir.path().join(&live), "in progress").unwrap();
    audience(&["query", "--format", "csv", "-o", target, "SELECT 1 AS one"]).ok();
    assert_eq!(entries(dir.path()), [live.clone(), "big.csv".to_string()]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("big.csv")).unwrap(),
        "one\n1\n"
    );
    std::fs::remove_file(dir.path().join(&live)).unwrap();

    // the engine's COPY staging folder likewise
    let copy = format!("COPY ({sql}) TO '{target}' STORED AS CSV");
    let left = kill_mid_write(dir.path(), &["query", &copy]);
    assert!(
        left.iter().any(|e| e.starts_with(".big.csv.partial-")),
        "{left:?}"
    );
    let copy = format!("COPY (SELECT 2 AS two) TO '{target}' STORED AS CSV");
    audience(&["query", &copy]).ok();
    assert_eq!(entries(dir.path()), ["big.csv".to_string()]);
}
