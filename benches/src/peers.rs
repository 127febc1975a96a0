//! The Python that runs the peers (chDB, DuckDB, DataFusion, the ADBC Flight
//! SQL client): `--python`, or `benches/.venv` made and filled from
//! `requirements.txt` on first use.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BenchError;

/// The peers' Python packages, pinned.
const REQUIREMENTS: &str = include_str!("../requirements.txt");

/// `given`, if it can import the peers, or the benchmark's own venv.
pub(crate) fn python(given: Option<&Path>) -> Result<PathBuf, BenchError> {
    let check = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                "import chdb, duckdb, datafusion, pyarrow, adbc_driver_flightsql",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(python) = given {
        if check(python) {
            return Ok(python.to_path_buf());
        }
        return Err(BenchError::User(format!(
            "{} cannot import the peers; install benches/requirements.txt into it (pip install -r benches/requirements.txt) or leave out --python",
            python.display()
        )));
    }
    let venv = PathBuf::from("benches/.venv");
    let python = venv.join("bin/python");
    if check(&python) {
        return Ok(python);
    }
    eprintln!(
        "installing the peers (chdb, duckdb, datafusion, adbc-driver-flightsql) into {} ...",
        venv.display()
    );
    if !python.exists() {
        run_command(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    let requirements = std::env::temp_dir().join(format!(
        "audience-bench-requirements-{}.txt",
        std::process::id()
    ));
    std::fs::write(&requirements, REQUIREMENTS)
        .map_err(|e| BenchError::User(format!("cannot write {}: {e}", requirements.display())))?;
    let installed = run_command(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install",
    );
    let _ = std::fs::remove_file(&requirements);
    installed?;
    Ok(python)
}

fn run_command(command: &mut Command, what: &str) -> Result<(), BenchError> {
    let status = command
        .status()
        .map_err(|e| BenchError::User(format!("cannot run {what}: {e}")))?;
    if !status.success() {
        return Err(BenchError::User(format!(
            "{what} failed ({status}); see its output above"
        )));
    }
    Ok(())
}
