//! Runs the DuckDB oracle test (`tests/duckdb/oracle.py`) against the real binary:
//! RFM scores, lifecycle stages, tag-index segment counts and Roaring
//! interoperability with pyroaring. Needs the venv that `scripts/test.sh` creates.

mod common;

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
