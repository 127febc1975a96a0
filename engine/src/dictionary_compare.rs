//! Comparisons of a dictionary-encoded string column with constants
//! (`event = 'pay'`, `<>`, `event [NOT] IN ('view', 'cart')`), answered on
//! its keys.
//! Arrow compares the dictionary's values and then takes each row's bit by
//! its key, one bit at a time (`take_bits`, 12 % of the Q1 funnel's time);
//! [`KeysIn`] finds the matching values once per batch and builds each row's
//! answer from a table indexed by its key, 64 rows to a word.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, downcast_dictionary_array,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{ArrowNativeType, DataType, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, InListExpr, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// Rewrites comparisons of dictionary string columns with constants, in
/// filters and aggregate arguments, into [`KeysIn`].
#[derive(Debug, Default)]
pub(crate) struct CompareDictionaryKeys;

impl PhysicalOptimizerRule for CompareDictionaryKeys {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                let schema = filter.input().schema();
                let predicate = on_keys(filter.predicate(), &schema)?;
                if !predicate.transformed {
                    return Ok(Transformed::no(node));
                }
                let filter = FilterExecBuilder::from(filter)
                    .with_predicate(predicate.data)
                    .build()?;
                return Ok(Transformed::yes(Arc::new(filter) as Arc<dyn ExecutionPlan>));
            }
            if let Some(agg) = node.downcast_ref::<AggregateExec>() {
                let schema = agg.input_schema();
                let mut changed = false;
                let mut on_keys_changed = |e: &Arc<dyn PhysicalExpr>| -> Result<_> {
                    let e = on_keys(e, &schema)?;
                    changed |= e.transformed;
                    Ok(e.data)
                };
                let mut aggr_exprs = Vec::with_capacity(agg.aggr_expr().len());
                for a in agg.aggr_expr() {
                    let args = a
                        .expressions()
                        .iter()
                        .map(&mut on_keys_changed)
                        .collect::<Result<_>>()?;
                    let order_bys = a.order_bys().iter().map(|o| Arc::clone(&o.expr)).collect();
                    match a.with_new_expressions(args, order_bys) {
                        Some(new) => aggr_exprs.push(Arc::new(new)),
                        None => return Ok(Transformed::no(node)),
                    }
                }
                let filters = agg
                    .filter_expr()
                    .iter()
                    .map(|f| f.as_ref().map(&mut on_keys_changed).transpose())
                    .collect::<Result<_>>()?;
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let agg = AggregateExec::try_new(
                    *agg.mode(),
                    agg.group_expr().clone(),
                    aggr_exprs,
                    filters,
                    Arc::clone(agg.input()),
                    agg.input_schema(),
                )?
                .with_limit_options(agg.limit_options());
                return Ok(Transformed::yes(Arc::new(agg) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "compare_dictionary_keys"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `expr` with its comparisons of dictionary strings with constants on keys.
fn on_keys(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        let keys_in = if let Some(b) = e.downcast_ref::<BinaryExpr>() {
            let negated = match *b.op() {
                Operator::Eq => Some(false),
                Operator::NotEq => Some(true),
                _ => None,
            };
            negated.and_then(|negated| {
                KeysIn::over(b.left(), &[Arc::clone(b.right())], negated, schema)
                    .or_else(|| KeysIn::over(b.right(), &[Arc::clone(b.left())], negated, schema))
            })
        } else if let Some(list) = e.downcast_ref::<InListExpr>() {
            KeysIn::over(list.expr(), list.list(), list.negated(), schema)
        } else {
            None
        };
        Ok(match keys_in {
            Some(k) => Transformed::yes(Arc::new(k) as Arc<dyn PhysicalExpr>),
            None => Transformed::no(e),
        })
    })
}

/// The string of a non-NULL string constant.
fn constant(expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
    let value = match expr.downcast_ref::<Literal>()?.value() {
        ScalarValue::Dictionary(_, v) => v.as_ref(),
        v => v,
    };
    match value {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.clone(),
        _ => None,
    }
}

/// Whether a dictionary-encoded string `input`'s value is (or, `negated`,
/// is not) one of `values`; NULL where `input` is.
#[derive(Debug, Eq)]
pub(crate) struct KeysIn {
    input: Arc<dyn PhysicalExpr>,
    values: Vec<String>,
    negated: bool,
}

impl PartialEq for KeysIn {
    fn eq(&self, other: &Self) -> bool {
        self.input.eq(&other.input) && self.values == other.values && self.negated == other.negated
    }
}

impl Hash for KeysIn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.values.hash(state);
        self.negated.hash(state);
    }
}

impl KeysIn {
    /// `input IN (list)` on keys, when `input` is a dictionary of strings and
    /// `list` non-NULL string constants.
    fn over(
        input: &Arc<dyn PhysicalExpr>,
        list: &[Arc<dyn PhysicalExpr>],
        negated: bool,
        schema: &Schema,
    ) -> Option<KeysIn> {
        let DataType::Dictionary(_, value_type) = input.data_type(schema).ok()? else {
            return None;
        };
        if !matches!(
            *value_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return None;
        }
        Some(KeysIn {
            input: Arc::clone(input),
            values: list.iter().map(constant).collect::<Option<_>>()?,
            negated,
        })
    }

    /// Per dictionary value, the answer for a row holding it.
    fn answers(&self, values: &ArrayRef) -> Result<Vec<bool>> {
        let answer =
            |s: Option<&str>| s.is_some_and(|s| self.values.iter().any(|v| v == s)) != self.negated;
        Ok(match values.data_type() {
            DataType::Utf8 => values.as_string::<i32>().iter().map(answer).collect(),
            DataType::LargeUtf8 => values.as_string::<i64>().iter().map(answer).collect(),
            DataType::Utf8View => values.as_string_view().iter().map(answer).collect(),
            t => return internal_err!("KeysIn over a dictionary of {t}"),
        })
    }
}

impl fmt::Display for KeysIn {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let not = if self.negated { "NOT " } else { "" };
        write!(
            f,
            "{} {not}IN ({}) on keys",
            self.input,
            self.values.join(", ")
        )
    }
}

impl PhysicalExpr for KeysIn {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.input.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let array = self.input.evaluate(batch)?.into_array(batch.num_rows())?;
        let nulls = array.logical_nulls();
        let dictionary = array.as_ref();
        let bits = downcast_dictionary_array!(
            dictionary => {
                let answers = self.answers(dictionary.values())?;
                let keys = dictionary.keys().values();
                BooleanBuffer::collect_bool(keys.len(), |i| {
                    answers.get(keys[i].as_usize()).copied().unwrap_or(false)
                })
            }
            t => return internal_err!("KeysIn over {t}")
        );
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            bits, nulls,
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(KeysIn {
            input: children.swap_remove(0),
            values: self.values.clone(),
            negated: self.negated,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.input.fmt_sql(f)?;
        let not = if self.negated { " NOT" } else { "" };
        let quoted: Vec<_> = self
            .values
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect();
        write!(f, "{not} IN ({})", quoted.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{DictionaryArray, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Int8Type, Int32Type};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::rule_tests::plan_and_answer as run;

    /// `events(k, event, small)`: `event` a dictionary with NULL rows, a NULL
    /// value and a value twice; `small` the same with 8-bit keys.
    fn context(on_keys: bool) -> SessionContext {
        let values = StringArray::from(vec![
            Some("view"),
            Some("pay"),
            None,
            Some("cart"),
            Some("pay"),
            Some("it's"),
        ]);
        let keys: Vec<Option<i32>> = (0..200)
            .map(|i| (i % 13 != 0).then_some(i * 7 % 6))
            .collect();
        let event = DictionaryArray::<Int32Type>::try_new(
            keys.iter().copied().collect(),
            Arc::new(values.clone()),
        )
        .unwrap();
        let small = DictionaryArray::<Int8Type>::try_new(
            keys.iter()
                .map(|k| k.map(|k| ((k + 1) % 6) as i8))
                .collect(),
            Arc::new(values),
        )
        .unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("event", event.data_type().clone(), true),
            Field::new("small", small.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values((0..200).map(|i| i % 9))),
                Arc::new(event),
                Arc::new(small),
            ],
        )
        .unwrap();
        let table = MemTable::try_new(schema, vec![vec![batch.slice(0, 77), batch.slice(77, 123)]])
            .unwrap();
        let rule = on_keys.then(|| {
            Arc::new(CompareDictionaryKeys) as Arc<dyn PhysicalOptimizerRule + Send + Sync>
        });
        crate::rule_tests::context(table, rule)
    }

    /// How many comparisons the plan of `sql` answers on keys.
    async fn keys_in(ctx: &SessionContext, sql: &str) -> usize {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut found = 0;
        plan.apply(|node| {
            node.apply_expressions(&mut |e| {
                e.apply(|e| {
                    found += usize::from(e.is::<KeysIn>());
                    Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
                })
            })?;
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        found
    }

    #[tokio::test]
    async fn comparisons_on_keys_give_arrows_answers() {
        let (plain, keys) = (context(false), context(true));
        for sql in [
            "SELECT k, count(*) FILTER (WHERE event = 'pay') AS pay, \
             count(*) FILTER (WHERE 'view' = small) AS view, \
             sum(CASE WHEN event IN ('cart', 'it''s') THEN 1 END) AS cart, \
             count(event NOT IN ('pay', 'nothing')) AS answered, \
             sum(CAST(small NOT IN ('pay', 'nothing') AS INT)) AS not_pay \
             FROM events GROUP BY k ORDER BY k",
            "SELECT k, event, small FROM events WHERE event IN ('pay', 'view') AND small <> 'cart' ORDER BY k, event, small",
            "SELECT count(*) FROM events WHERE small NOT IN ('view', 'pay')",
        ] {
            let (_, want) = run(&plain, sql).await;
            let (plan, answer) = run(&keys, sql).await;
            assert!(keys_in(&keys, sql).await >= 2, "{plan}");
            assert_eq!(answer, want, "{sql}");
        }
    }
}
