//! `session_number(ts, gap [, max_length]) OVER (PARTITION BY member_id ORDER
//! BY ts)`: each event's session, numbered from 1 per member (see
//! [`SessionRule`]). Evaluated row by row as the rows stream in, so on the
//! member-range layout it needs no sort and no repartition.

use std::ops::Range;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Field, FieldRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{
    PartitionEvaluatorArgs, WindowFunctionSimplification, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{
    Documentation, Expr, LimitEffect, PartitionEvaluator, Signature, Volatility, WindowUDFImpl,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion_macros::user_doc;

use crate::args::{MICROS, logical_constant, micros, physical_constant};
use crate::session_rule::{DURATION, Open, SessionRule};

const NAME: &str = "session_number";

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "Each event's session number (1, 2, … per member) as a window function over a member's \
events in time order: a session begins at the member's first event, and at every event more than `gap` after \
the one before it (strictly), or at least `max_length` after the session's first event. Equal timestamps \
never split a session. A row with a NULL `ts` belongs to no session (NULL). The window must be ordered by \
`ts`, ascending. The same sessions as the aggregate `sessions`; on the member-range layout it streams \
(no sort, no repartition).",
    syntax_example = "session_number(ts, gap[, max_length]) OVER (PARTITION BY member_id ORDER BY ts)",
    sql_example = r#"```sql
> SELECT channel, count(DISTINCT (member_id, session)) AS sessions
  FROM (SELECT member_id, channel,
               session_number(ts, INTERVAL '30 minutes') OVER (PARTITION BY member_id ORDER BY ts) AS session
        FROM events)
  GROUP BY channel;
```"#,
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE; the window's ORDER BY."
    ),
    argument(
        name = "gap",
        description = "The longest pause inside a session: whole seconds or an `INTERVAL` (constant, positive)."
    ),
    argument(
        name = "max_length",
        description = "Optional: the longest a session lasts from its first event; an event this long after \
it begins a new one (constant, positive)."
    )
)]
/// The `session_number` window function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SessionNumber {
    signature: Signature,
}

impl Default for SessionNumber {
    fn default() -> Self {
        SessionNumber {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl WindowUDFImpl for SessionNumber {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let constants: Vec<_> = args
            .input_exprs()
            .iter()
            .skip(1)
            .map(|e: &std::sync::Arc<dyn PhysicalExpr>| {
                physical_constant(NAME, "gap", DURATION, e).ok()
            })
            .collect();
        Ok(Box::new(SessionEvaluator {
            rule: SessionRule::new(NAME, &constants)?,
            open: None,
            number: 0,
        }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = field_args
            .input_fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        SessionRule::check_types(NAME, &types)?;
        Ok(Field::new(field_args.name(), DataType::Int64, true).into())
    }

    fn simplify(&self) -> Option<WindowFunctionSimplification> {
        // Checks the constant arguments and the window's order while planning.
        Some(Box::new(|function, _| {
            let args = &function.params.args;
            let constants: Vec<_> = args
                .iter()
                .skip(1)
                .map(|e| logical_constant(NAME, "gap", DURATION, e).ok())
                .collect();
            SessionRule::new(NAME, &constants)?;
            let ordered_by_ts = match (function.params.order_by.first(), args.first()) {
                (Some(order), Some(ts)) => order.asc && order.expr == *ts,
                _ => false,
            };
            if !ordered_by_ts {
                return plan_err!(
                    "{NAME}: the window must be ordered by the ts argument, ascending: \
                     {NAME}(ts, gap) OVER (PARTITION BY member_id ORDER BY ts)"
                );
            }
            Ok(Expr::WindowFunction(Box::new(function)))
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }

    fn limit_effect(&self, _args: &[std::sync::Arc<dyn PhysicalExpr>]) -> LimitEffect {
        LimitEffect::None
    }
}

/// One member's sessions so far.
#[derive(Debug)]
struct SessionEvaluator {
    rule: SessionRule,
    open: Option<Open>,
    number: i64,
}

impl SessionEvaluator {
    /// The session number of the next event (in time order), NULL for no time.
    fn next(&mut self, ts: Option<i64>) -> Option<i64> {
        let ts = ts?;
        match &mut self.open {
            Some(open) if !self.rule.splits(open, ts) => open.last = ts,
            _ => {
                self.open = Some(Open {
                    start: ts,
                    last: ts,
                });
                self.number += 1;
            }
        }
        Some(self.number)
    }
}

impl PartitionEvaluator for SessionEvaluator {
    fn is_causal(&self) -> bool {
        true
    }

    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        let ts = micros_at(&values[0], range.start)?;
        Ok(ScalarValue::Int64(self.next(ts)))
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let (ts, nulls) = micros(&values[0])?;
        let numbers: Int64Array = (0..num_rows)
            .map(|i| {
                let valid = nulls.as_ref().is_none_or(|n| n.is_valid(i));
                self.next(valid.then(|| ts[i]))
            })
            .collect();
        Ok(std::sync::Arc::new(numbers))
    }
}

/// Row `i` of a TIMESTAMP or DATE column in microseconds.
fn micros_at(ts: &ArrayRef, i: usize) -> Result<Option<i64>> {
    if ts.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match ts.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            ts.as_primitive::<TimestampMicrosecondType>().value(i)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => ts
            .as_primitive::<TimestampMillisecondType>()
            .value(i)
            .saturating_mul(1_000),
        DataType::Timestamp(TimeUnit::Second, _) => ts
            .as_primitive::<TimestampSecondType>()
            .value(i)
            .saturating_mul(MICROS),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            ts.as_primitive::<TimestampNanosecondType>().value(i) / 1_000
        }
        DataType::Date32 => i64::from(ts.as_primitive::<Date32Type>().value(i)) * 86_400 * MICROS,
        DataType::Date64 => ts
            .as_primitive::<Date64Type>()
            .value(i)
            .saturating_mul(1_000),
        DataType::Null => return Ok(None),
        other => return plan_err!("{NAME}: ts must be a TIMESTAMP or DATE, got {other}"),
    }))
}
