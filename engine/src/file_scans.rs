//! The file scans of a physical plan, for the rules that check or rewrite them.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_plan::ExecutionPlan;

/// `node`'s file scan configuration, if it is a file scan.
pub(crate) fn file_scan(node: &Arc<dyn ExecutionPlan>) -> Option<&FileScanConfig> {
    node.downcast_ref::<DataSourceExec>()
        .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
}

/// `plan` with each file scan that `rewrite` returns a new configuration for
/// replaced by a scan of that configuration.
pub(crate) fn rewrite_file_scans(
    plan: Arc<dyn ExecutionPlan>,
    mut rewrite: impl FnMut(&FileScanConfig) -> Option<FileScanConfig>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| match file_scan(&node).and_then(&mut rewrite) {
        Some(rewritten) => Ok(Transformed::yes(DataSourceExec::from_data_source(
            rewritten,
        ))),
        None => Ok(Transformed::no(node)),
    })
    .map(|t| t.data)
}
