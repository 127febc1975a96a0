//! `audience bench`: a thin call into the benchmark crate (`benches/`,
//! `audience-bench`). It stays a subcommand of the one binary so that a user
//! benchmarks exactly the engine they run, and the Flight SQL engine can start
//! this binary as its server.

use std::path::PathBuf;

use audience_bench::{BenchError, Options};

use crate::cli::BenchArgs;
use crate::error::CliError;

pub(crate) fn run(args: BenchArgs) -> Result<(), CliError> {
    if let Some(files) = &args.compare {
        print!(
            "{}",
            audience_bench::compare(&files[0], &files[1]).map_err(error)?
        );
        return Ok(());
    }
    audience_bench::check(&args.queries, args.runs).map_err(error)?;
    let data = match &args.data {
        Some(dir) => dir.clone(),
        None => {
            let dir = PathBuf::from("data").join(args.scale.name());
            crate::generate::ensure_dataset(&dir, args.scale, None)?;
            crate::generate::ensure_tag_index(&dir)?;
            dir
        }
    };
    let data = std::fs::canonicalize(&data)
        .map_err(|e| CliError::user(format!("dataset folder {}: {e}", data.display())))?;
    let options = Options {
        data,
        scale: args.scale.name().to_string(),
        engines: args.engines,
        queries: args.queries,
        runs: args.runs,
        out: args.out,
        python: args.python,
    };
    audience_bench::run(&options).map(|_| ()).map_err(error)
}

/// A mismatch between engines is a bug (exit 1); anything else the user's to fix.
fn error(e: BenchError) -> CliError {
    match e {
        BenchError::Mismatch(m) => CliError::internal(m),
        BenchError::User(m) => CliError::user(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_that_disagree_are_a_bug_not_a_user_error() {
        use std::process::ExitCode;
        let mismatch = error(BenchError::Mismatch(
            "q1: duckdb answers differently".into(),
        ));
        assert_eq!(mismatch.report(), ExitCode::from(1));
        let user = error(BenchError::User("--runs must be at least 1".into()));
        assert_eq!(user.report(), ExitCode::from(2));
    }
}
