//! The results file (`<date>-<scale>.json`): what ran, where, and each
//! engine's times, memory and row count per query. Reports and `--compare`
//! read it back; files written before these types existed read the same.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::BenchError;

/// One benchmark run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Where and how it ran.
    pub context: Context,
    /// The engines, in the order they ran; the first one's answers are the reference.
    pub engines: Vec<String>,
    /// One entry per query, in workload order.
    pub results: Vec<QueryResult>,
}

/// Where and how a run happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    /// UTC time the run finished, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// The git commit of the working tree, if known.
    pub commit: Option<String>,
    /// The dataset scale.
    pub scale: String,
    /// The dataset folder.
    pub data: String,
    /// Cores available to the process.
    pub cores: usize,
    /// Machine memory in GiB.
    pub memory_gib: f64,
    /// Processor model.
    #[serde(default)]
    pub cpu: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// Counted runs per query and engine.
    pub runs: usize,
    /// The command's arguments.
    #[serde(default)]
    pub arguments: Vec<String>,
    /// Each engine's version, by engine name.
    pub versions: BTreeMap<String, String>,
}

/// One query's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryResult {
    /// The query id, e.g. `q1_funnel`.
    pub query: String,
    /// What it answers.
    pub title: String,
    /// The scan floor query that bounds it from below.
    pub floor: Option<String>,
    /// Rows in the (reference) answer.
    pub rows: Option<usize>,
    /// Each engine's figures, by engine name.
    pub engines: BTreeMap<String, EngineResult>,
}

/// One engine's figures for one query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineResult {
    /// Every counted run's wall time, in order.
    pub seconds: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// The fastest run.
    pub min: f64,
    /// The slowest run.
    pub max: f64,
    /// Peak resident memory of the engine's process over the runs.
    pub peak_memory_mb: Option<f64>,
    /// Rows in the engine's answer.
    pub rows: usize,
}

impl EngineResult {
    /// The figures of `seconds` (at least one run).
    pub(crate) fn of(seconds: Vec<f64>, peak_memory_mb: Option<f64>, rows: usize) -> Self {
        let mut sorted = seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        EngineResult {
            median,
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
            seconds,
            peak_memory_mb,
            rows,
        }
    }
}

impl Results {
    /// Reads a results file.
    pub fn read(path: &Path) -> Result<Self, BenchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BenchError::User(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| BenchError::User(format!("{} is not a results file: {e}", path.display())))
    }

    /// The median of `engine` on `query`, if it ran.
    pub(crate) fn median(result: &QueryResult, engine: &str) -> Option<f64> {
        result.engines.get(engine).map(|e| e.median)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_runs() {
        let odd = EngineResult::of(vec![3.0, 1.0, 2.0], None, 1);
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        assert_eq!(odd.seconds, [3.0, 1.0, 2.0], "runs keep their order");
        assert_eq!(EngineResult::of(vec![4.0, 1.0], None, 1).median, 2.5);
    }

    #[test]
    fn an_earlier_results_file_reads() -> Result<(), BenchError> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/2026-11-24-m.json");
        let results = Results::read(&path)?;
        assert_eq!(results.context.scale, "m");
        let q1 = results
            .results
            .iter()
            .find(|r| r.query == "q1_funnel")
            .ok_or(BenchError::User("no q1".into()))?;
        assert!(Results::median(q1, "audience").is_some_and(|m| m > 0.0));
        Ok(())
    }
}
