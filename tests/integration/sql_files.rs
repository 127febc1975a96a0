//! Every `sql/*.slt` file (sqllogictest) as its own test, run against an
//! engine with Audience's functions in fresh sessions.

use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use audience_engine::{Engine, EngineConfig, EngineError};
use sqllogictest::{DBOutput, DefaultColumnType};

/// One engine session as a sqllogictest database.
struct Session(Engine);

pub(crate) fn render(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, EngineError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .zip(batch.columns())
                    .map(|(f, c)| {
                        let s = f.value(row).to_string();
                        if s.is_empty() && !c.is_null(row) {
                            "(empty)".to_string()
                        } else {
                            s
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Session {
    type Error = EngineError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, EngineError> {
        let frame = self.0.sql(sql).await?;
        let columns = frame.schema().fields().len();
        let batches = frame.collect().await?;
        let rows = render(&batches)?;
        if columns == 0
            || (rows.is_empty() && sql.trim_start().to_ascii_lowercase().starts_with("create"))
        {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; columns],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

/// Every `sql/*.slt` file, in name order.
pub(crate) fn slt_files() -> Vec<PathBuf> {
    crate::common::with_extension(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sql"), "slt")
}

/// Runs `sql/<name>.slt` in fresh sessions.
async fn run_file(name: &str) {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sql")
        .join(format!("{name}.slt"));
    let mut runner = sqllogictest::Runner::new(|| async {
        let mut config = EngineConfig::default();
        config.engine.target_partitions = 2;
        Ok(Session(Engine::start(&config).await?))
    });
    if let Err(e) = runner.run_file_async(&file).await {
        panic!("{}: {e}", file.display());
    }
}

/// One test per `.slt` file, and a check that no file is left without one.
macro_rules! slt_files {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run_file(stringify!($name)).await;
            }
        )*

        #[test]
        fn every_slt_file_has_a_test() {
            let files: Vec<String> = slt_files()
                .iter()
                .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
                .collect();
            let mut listed = vec![$(stringify!($name).to_string()),*];
            listed.sort();
            assert_eq!(files, listed, "list every sql/*.slt file in slt_files! ({})", file!());
        }
    };
}

slt_files!(
    attribution,
    bitmap,
    event_path,
    lifecycle_stage,
    null_logic,
    one_id,
    retention,
    rfm,
    sequence,
    sequence_next_node,
    sessions,
    window_funnel,
    window_funnel_detail,
);
