//! A scan's files checked against their table before a query runs: a file
//! that lacks a column the table declares NOT NULL, or holds NULLs in it (a
//! file of another table dropped into the folder, say), is an error naming the
//! file — instead of its rows being counted with NULLs filled in, or a later
//! "declared as non-nullable" error that names no file. The check reads the
//! files' statistics only (kept with the table), so it costs no I/O.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::file_scans::file_scan;

/// Fails planning when a scanned file does not fit its table's NOT NULL columns.
#[derive(Debug, Default)]
pub(crate) struct CheckScanFiles;

impl PhysicalOptimizerRule for CheckScanFiles {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.apply(|node| {
            if let Some(files) = file_scan(node) {
                check(files)?;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "check_scan_files"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// An error naming the first file with NULLs in a NOT NULL column of `scan`'s table.
fn check(scan: &FileScanConfig) -> Result<()> {
    let schema = scan.file_schema();
    for file in scan.file_groups.iter().flat_map(|group| group.files()) {
        let Some(statistics) = &file.statistics else {
            continue;
        };
        let columns = schema.fields().iter().zip(&statistics.column_statistics);
        for (field, column) in columns.filter(|(field, _)| !field.is_nullable()) {
            if let Precision::Exact(nulls) = column.null_count
                && nulls > 0
            {
                let rows = match statistics.num_rows {
                    Precision::Exact(rows) if rows == nulls => "lacks the column".to_string(),
                    _ => format!("has {nulls} NULLs in it"),
                };
                return Err(DataFusionError::Plan(format!(
                    "{} does not fit its table: the table's column '{}' is NOT NULL and the \
                     file {rows}; is it a file of another table? Move it out of the table's folder",
                    file.object_meta.location,
                    field.name()
                )));
            }
        }
    }
    Ok(())
}
