//! A guard against DataFusion 55 merging `IN` lists wrongly. Its expression
//! simplifier merges two lists that test the same expression
//! (`a IN (…) AND a NOT IN (…)` → one list, or `false` when none is left)
//! without three-valued logic: a NULL tested value, or a NULL in a list,
//! yields `false` where SQL yields NULL, or NULL where it yields `false`. Under
//! `NOT`, `IS NULL` or in a projection that is a wrong answer: found by the
//! logic fuzzer (reliability B1), e.g.
//! `SELECT (c IN ('x')) AND (c NOT IN ('x')) FROM (VALUES (NULL)) t(c)` gave
//! `false`, and `NOT ((c IN (-3, 0)) OR (NOT (c IN (7, NULL))))` gave NULL for
//! `c = -3` instead of `false`. Fixed upstream after 55
//! (apache/datafusion#24258); remove this file with the upgrade.
//!
//! The guard wraps each `IN` list whose tested expression another list of the
//! same expression tree also tests in `keep_as_written(…)`, which returns its
//! argument: the simplifier then has no pair of lists to merge (also after it
//! pushes `NOT` down, which is how pairs appear that the SQL did not write).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarUDF, Volatility, create_udf,
};
use datafusion::optimizer::AnalyzerRule;

/// Wraps the `IN` lists that share a tested expression in `keep_as_written`.
#[derive(Debug)]
pub(crate) struct GuardInListPairs {
    keep: Arc<ScalarUDF>,
}

impl Default for GuardInListPairs {
    fn default() -> Self {
        let keep = create_udf(
            "keep_as_written",
            vec![DataType::Boolean],
            DataType::Boolean,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
        );
        GuardInListPairs {
            keep: Arc::new(keep),
        }
    }
}

impl AnalyzerRule for GuardInListPairs {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            // a rewritten projection keeps its column names
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let name = names.save(&e);
                Ok(self.guard(e)?.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "guard_in_list_pairs"
    }
}

impl GuardInListPairs {
    fn guard(&self, expr: Expr) -> Result<Transformed<Expr>> {
        let mut tested: Vec<Expr> = Vec::new();
        expr.apply(|e| {
            if let Expr::InList(list) = e {
                tested.push(list.expr.as_ref().clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let shared = |e: &Expr| tested.iter().filter(|t| *t == e).count() > 1;
        if !tested.iter().any(shared) {
            return Ok(Transformed::no(expr));
        }
        expr.transform_up(|e| match &e {
            Expr::InList(list) if shared(&list.expr) => {
                Ok(Transformed::yes(self.keep.call(vec![e])))
            }
            _ => Ok(Transformed::no(e)),
        })
    }
}
