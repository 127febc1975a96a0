//! The oracles, run against the real binary: the ClickHouse differential test
//! (`tests/clickhouse/diff.py`) and the DuckDB oracles (`tests/duckdb/oracle.py`,
//! `tests/duckdb/second_family.py`).
//! Both need the Python venv that `scripts/test.sh` creates.

use crate::common;

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
    // per seed: the aggregates and sequence_next_node
    assert_eq!(stdout.matches(", 0 mismatches").count(), 6, "{stdout}");
    assert!(stdout.contains("0 mismatches in all"), "{stdout}");
}

/// RFM scores, lifecycle stages, tag-index segment counts and Roaring
/// interoperability with pyroaring.
#[test]
fn customer_value_functions_agree_with_duckdb() {
    let work = tempfile::tempdir().unwrap();
    let stdout = common::python_script(
        "tests/duckdb/oracle.py",
        &[
            env!("CARGO_BIN_EXE_audience"),
            work.path().to_str().unwrap(),
        ],
    );
    // 5 RFM, 4 lifecycle, the index, 2 segments, pyroaring: every one compared.
    assert_eq!(stdout.matches(" 0 mismatches").count(), 13, "{stdout}");
    assert!(stdout.contains("0 mismatches in all"), "{stdout}");
}

/// The second family (sessions, both shapes, paths, attribution, funnel detail and exclusions) against
/// DuckDB SQL written from SPEC, on a seeded table whose gaps hit their
/// bounds exactly, with ties and NULLs.
#[test]
fn second_family_agrees_with_duckdb() {
    let work = tempfile::tempdir().unwrap();
    let stdout = common::python_script(
        "tests/duckdb/second_family.py",
        &[
            env!("CARGO_BIN_EXE_audience"),
            work.path().to_str().unwrap(),
        ],
    );
    // 4 rules × (session_number, sessions), 4 paths, 5 attribution models,
    // 4 funnel details and 3 with exclusions: every one compared
    assert_eq!(stdout.matches(" 0 mismatches").count(), 24, "{stdout}");
    assert!(stdout.contains("0 mismatches in all"), "{stdout}");
}
