//! Runs the ClickHouse differential test (`tests/clickhouse/diff.py`) against the
//! real binary. Needs the Python venv that `scripts/test.sh` creates (chdb, pyarrow).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn behavioral_aggregates_agree_with_clickhouse() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("AUDIENCE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh, which creates the test venv with chdb and pyarrow",
        python.display()
    );
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .arg(root.join("tests/clickhouse/diff.py"))
        .arg(env!("CARGO_BIN_EXE_audience"))
        .arg(work.path())
        .args(["1", "2", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mismatches with ClickHouse:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.matches(", 0 mismatches").count(), 3, "{stdout}");
    assert!(stdout.contains("0 mismatches in all"), "{stdout}");
}
