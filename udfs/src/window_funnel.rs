//! `window_funnel(window, mode, ts, cond1, …, condN)`: how far along an ordered
//! funnel each group got inside one time window (ClickHouse `windowFunnel`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{check_time_and_conditions, logical_constant, physical_constant};
use crate::event_list::{Event, EventAccumulator, EventGroups, EventsFinish, state_fields};
use crate::funnel::{Funnel, MODE, Scratch, WINDOW};

const NAME: &str = "window_funnel";
/// Position of `ts` among the arguments.
const TS: usize = 2;

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "Length (0..N) of the longest prefix of the ordered steps `cond1, cond2, …` that a group \
reached inside one window measured from the chain's first event, as ClickHouse's `windowFunnel`. \
One row may fill several steps. A row where `ts` or any condition is NULL is skipped entirely \
(write `coalesce(amount > 100, false)` to keep rows without an amount); a group with no usable row returns NULL.",
    syntax_example = "window_funnel(window, mode, ts, cond1[, ..., condN])",
    sql_example = r#"```sql
> SELECT member_id,
         window_funnel(INTERVAL '7 days', '', ts,
                       event = 'view', event = 'cart', event = 'order', event = 'pay') AS level
  FROM events GROUP BY member_id;
```"#,
    argument(
        name = "window",
        description = "Window length: whole seconds or an `INTERVAL` (constant)."
    ),
    argument(
        name = "mode",
        description = "`''` or a comma-separated set of `strict_deduplication` (a repeated step stops the search), \
`strict_order` (no other event may come between steps), `strict_increase` (steps need strictly increasing \
timestamps), `strict_once` (one row fills at most one step of a chain), `allow_reentry` (with `strict_order`: \
skip out-of-order steps instead of stopping)."
    ),
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(
        name = "cond1, ..., condN",
        description = "1 to 32 BOOLEAN step conditions, in funnel order."
    )
)]
/// The `window_funnel` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WindowFunnel {
    signature: Signature,
}

impl Default for WindowFunnel {
    fn default() -> Self {
        WindowFunnel {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// Reads the constant arguments of a `window_funnel` call.
fn funnel(window: &ScalarValue, mode: &ScalarValue, conditions: usize) -> Result<Funnel> {
    Funnel::new(NAME, window, mode, None, conditions)
}

fn from_physical(args: &AccumulatorArgs) -> Result<Funnel> {
    let window = physical_constant(NAME, "window", WINDOW, &args.exprs[0])?;
    let mode = physical_constant(NAME, "mode", MODE, &args.exprs[1])?;
    funnel(&window, &mode, args.exprs.len() - 3)
}

impl EventsFinish for Funnel {
    type Output = Vec<Option<i32>>;

    fn keep(&self, mask: u32) -> bool {
        Funnel::keep(self, mask)
    }

    fn finish(&self, events: &mut [Event], out: &mut Self::Output) -> Result<()> {
        if !events.is_sorted_by_key(|e| e.ts) {
            events.sort_unstable_by_key(|e| e.ts);
        }
        let reached = self.pass::<false>(events, &mut Scratch::default())?;
        out.push(Some(reached.level as i32));
        Ok(())
    }

    fn unseen(&self, out: &mut Self::Output) {
        out.push(None);
    }

    fn output(&self, out: Self::Output) -> ArrayRef {
        Arc::new(Int32Array::from(out))
    }
}

impl AggregateUDFImpl for WindowFunnel {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() < 4 {
            return plan_err!(
                "{NAME}: expects (window, mode, ts, cond1[, ..., condN]), got {} arguments",
                arg_types.len()
            );
        }
        if !(arg_types[0].is_integer() || matches!(arg_types[0], DataType::Interval(_))) {
            return plan_err!("{NAME}: window must be {WINDOW}, got {}", arg_types[0]);
        }
        if !matches!(
            arg_types[1],
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return plan_err!("{NAME}: mode must be {MODE}, got {}", arg_types[1]);
        }
        check_time_and_conditions(NAME, &arg_types[TS], &arg_types[TS + 1..], 1)?;
        Ok(DataType::Int32)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(EventAccumulator::new(
            Arc::new(from_physical(&args)?),
            TS,
        )))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(EventGroups::new(
            Arc::new(from_physical(&args)?),
            TS,
        )))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the constant arguments while planning, before any row is read.
        Some(Box::new(|function, _| {
            let args = &function.params.args;
            let window = logical_constant(NAME, "window", WINDOW, &args[0])?;
            let mode = logical_constant(NAME, "mode", MODE, &args[1])?;
            funnel(&window, &mode, args.len() - 3)?;
            Ok(Expr::AggregateFunction(function))
        }))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funnel(window_s: i64, steps: usize) -> Funnel {
        let text = ScalarValue::Utf8(Some(String::new()));
        super::funnel(&ScalarValue::Int64(Some(window_s)), &text, steps).expect("funnel")
    }

    /// The many-groups accumulator answers the same whether the rows arrive
    /// in group order (its fast path) or interleaved, emitted in two parts.
    #[test]
    fn groups_accumulator_is_order_independent() {
        use datafusion::arrow::array::{Array, AsArray, BooleanArray, TimestampMicrosecondArray};
        use datafusion::arrow::datatypes::Int32Type;
        use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

        // (group, ts seconds, step 1, step 2)
        let rows = [
            (0, 0, true, false),
            (0, 5, false, true),
            (1, 0, true, false),
            (1, 20, false, true),
            (2, 3, false, true),
        ];
        let levels = |order: &[usize]| {
            let mut acc = EventGroups::new(Arc::new(funnel(10, 2)), 0);
            for part in order.chunks(2) {
                let values: Vec<ArrayRef> = vec![
                    Arc::new(TimestampMicrosecondArray::from_iter_values(
                        part.iter().map(|&i| rows[i].1 * 1_000_000),
                    )),
                    Arc::new(BooleanArray::from_iter(
                        part.iter().map(|&i| Some(rows[i].2)),
                    )),
                    Arc::new(BooleanArray::from_iter(
                        part.iter().map(|&i| Some(rows[i].3)),
                    )),
                ];
                let groups: Vec<usize> = part.iter().map(|&i| rows[i].0).collect();
                acc.update_batch(&values, &groups, None, 3).unwrap();
            }
            let mut out: Vec<Option<i32>> = Vec::new();
            for emit in [EmitTo::First(2), EmitTo::All] {
                let array = acc.evaluate(emit).unwrap();
                let array = array.as_primitive::<Int32Type>();
                out.extend((0..array.len()).map(|i| array.is_valid(i).then(|| array.value(i))));
            }
            out
        };
        let expected = vec![Some(2), Some(1), Some(0)];
        assert_eq!(levels(&[0, 1, 2, 3, 4]), expected);
        assert_eq!(levels(&[2, 0, 4, 3, 1]), expected);
    }
}
