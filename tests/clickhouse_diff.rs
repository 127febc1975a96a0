//! Runs the ClickHouse differential test (`tests/clickhouse/diff.py`) against the
//! real binary. Needs the Python venv that `scripts/test.sh` creates (chdb, pyarrow).

mod common;

#[test]
fn behavioral_aggregates_agree_with_clickhouse() {
    let work = tempfile::tempdir().unwrap();
    let stdout = common::python_script(
        "tests/clickhouse/diff.py",
        &[
            env!("CARGO_BIN_EXE_audience"),
            work.path().to_str().unwrap(),
            "1",
            "2",
            "3",
        ],
    );
    assert_eq!(stdout.matches(", 0 mismatches").count(), 3, "{stdout}");
    assert!(stdout.contains("0 mismatches in all"), "{stdout}");
}
