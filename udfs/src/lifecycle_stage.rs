//! `lifecycle_stage(ts, as_of [, new_days, active_days, dormant_days, churn_days])`:
//! a member's lifecycle stage from their activity timestamps.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, Expr, GroupsAccumulator, Signature,
    Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{
    DurationUnit, INSTANT, duration_micros_in, instant_micros, is_time, logical_constant, micros,
    passes_filter, physical_constant,
};

const NAME: &str = "lifecycle_stage";
const DAY: i64 = 86_400_000_000;
/// The optional thresholds, in argument order, with their defaults in days.
const THRESHOLDS: [(&str, i64); 4] = [
    ("new_days", 30),
    ("active_days", 30),
    ("dormant_days", 90),
    ("churn_days", 180),
];

#[user_doc(
    doc_section(label = "Audience Customer Value Functions"),
    description = "A member's lifecycle stage as of a date, from their activity (purchase) timestamps: \
`prospect` (no activity on or before `as_of`), `new` (first activity within `new_days`), `active` or \
`reactivated` (last activity within `active_days`; reactivated when the gap before it exceeded \
`dormant_days`), `at_risk` (last activity within `dormant_days`), `dormant` (within `churn_days`), else \
`churned`. Only `ts <= as_of` counts and NULL `ts` is ignored, so `members LEFT JOIN orders` classifies \
members who never bought as `prospect`. Durations compare exactly on microsecond timestamps.",
    syntax_example = "lifecycle_stage(ts, as_of[, new_days, active_days, dormant_days, churn_days])",
    sql_example = r#"```sql
> SELECT stage, count(*) AS members
  FROM (SELECT m.member_id, lifecycle_stage(o.ts, DATE '2026-12-01') AS stage
        FROM members m LEFT JOIN orders o ON o.member_id = m.member_id
        GROUP BY m.member_id)
  GROUP BY stage ORDER BY members DESC;
```"#,
    argument(
        name = "ts",
        description = "Activity time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(
        name = "as_of",
        description = "Constant TIMESTAMP, DATE or timestamp string: the day the stage is computed for."
    ),
    argument(
        name = "new_days",
        description = "Whole days or an `INTERVAL` (constant); default 30."
    ),
    argument(
        name = "active_days",
        description = "Whole days or an `INTERVAL` (constant); default 30."
    ),
    argument(
        name = "dormant_days",
        description = "Whole days or an `INTERVAL` (constant); default 90."
    ),
    argument(
        name = "churn_days",
        description = "Whole days or an `INTERVAL` (constant); default 180."
    )
)]
/// The `lifecycle_stage` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LifecycleStage {
    signature: Signature,
}

impl Default for LifecycleStage {
    fn default() -> Self {
        LifecycleStage {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// The constant parameters, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Rules {
    as_of: i64,
    new: i64,
    active: i64,
    dormant: i64,
    churn: i64,
}

impl Rules {
    fn new(values: &[ScalarValue]) -> Result<Self> {
        let as_of = instant_micros(NAME, "as_of", &values[0])?;
        let mut t = THRESHOLDS.map(|(_, days)| days * DAY);
        for (k, value) in values[1..].iter().enumerate() {
            t[k] = duration_micros_in(NAME, THRESHOLDS[k].0, value, DurationUnit::Days)?;
        }
        Ok(Rules {
            as_of,
            new: t[0],
            active: t[1],
            dormant: t[2],
            churn: t[3],
        })
    }

    fn from_logical(args: &[Expr]) -> Result<Self> {
        let values = args[1..]
            .iter()
            .enumerate()
            .map(|(k, e)| logical_constant(NAME, what(k), expected(k), e))
            .collect::<Result<Vec<_>>>()?;
        Rules::new(&values)
    }

    fn from_physical(args: &AccumulatorArgs) -> Result<Self> {
        let values = args.exprs[1..]
            .iter()
            .enumerate()
            .map(|(k, e)| physical_constant(NAME, what(k), expected(k), e))
            .collect::<Result<Vec<_>>>()?;
        Rules::new(&values)
    }

    /// The stage of a member with activity `seen`.
    fn stage(&self, seen: &Seen) -> &'static str {
        if seen.last == NONE {
            return "prospect";
        }
        let since_last = self.as_of - seen.last;
        if self.as_of - seen.first <= self.new {
            "new"
        } else if since_last <= self.active {
            if seen.prev != NONE && seen.last - seen.prev > self.dormant {
                "reactivated"
            } else {
                "active"
            }
        } else if since_last <= self.dormant {
            "at_risk"
        } else if since_last <= self.churn {
            "dormant"
        } else {
            "churned"
        }
    }
}

/// The name of constant argument `k` after `ts`.
fn what(k: usize) -> &'static str {
    if k == 0 { "as_of" } else { THRESHOLDS[k - 1].0 }
}

fn expected(k: usize) -> &'static str {
    if k == 0 {
        INSTANT
    } else {
        DurationUnit::Days.expected()
    }
}

/// "No timestamp" in [`Seen`].
const NONE: i64 = i64::MIN;

/// What the stage needs of a member's timestamps: the earliest, the latest and the
/// one before the latest (equal timestamps count separately), [`NONE`] when absent.
#[derive(Debug, Clone, Copy)]
struct Seen {
    first: i64,
    last: i64,
    prev: i64,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            first: i64::MAX,
            last: NONE,
            prev: NONE,
        }
    }
}

impl Seen {
    fn add(&mut self, ts: i64) {
        self.first = self.first.min(ts);
        if ts >= self.last {
            self.prev = self.last;
            self.last = ts;
        } else if ts > self.prev {
            self.prev = ts;
        }
    }

    fn merge(&mut self, other: &Seen) {
        if other.last != NONE {
            self.add(other.last);
            self.first = self.first.min(other.first);
        }
        if other.prev != NONE {
            self.add(other.prev);
        }
    }
}

/// Calls `f(row, ts µs)` for each row of a batch that counts: `ts` present and `<= as_of`.
fn for_each_counted(values: &[ArrayRef], as_of: i64, mut f: impl FnMut(usize, i64)) -> Result<()> {
    let (ts, nulls) = micros(&values[0])?;
    for (i, &t) in ts.iter().enumerate() {
        if t <= as_of && nulls.as_ref().is_none_or(|n| n.is_valid(i)) {
            f(i, t);
        }
    }
    Ok(())
}

fn output(rules: &Rules, seen: &[Seen]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        seen.iter().map(|s| rules.stage(s)),
    ))
}

fn state_arrays(seen: &[Seen]) -> Vec<ArrayRef> {
    let column = |f: fn(&Seen) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            seen.iter().map(|s| Some(f(s)).filter(|&v| v != NONE)),
        ))
    };
    vec![
        column(|s| if s.last == NONE { NONE } else { s.first }),
        column(|s| s.last),
        column(|s| s.prev),
    ]
}

/// The partial states of rows `0..len` of `states`, one [`Seen`] each.
fn read_states(states: &[ArrayRef]) -> impl Iterator<Item = Seen> {
    let [first, last, prev] = [0, 1, 2].map(|k| states[k].as_primitive::<Int64Type>().clone());
    (0..first.len()).map(move |i| {
        let get = |a: &Int64Array| if a.is_valid(i) { a.value(i) } else { NONE };
        Seen {
            first: if first.is_valid(i) {
                first.value(i)
            } else {
                i64::MAX
            },
            last: get(&last),
            prev: get(&prev),
        }
    })
}

impl AggregateUDFImpl for LifecycleStage {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !(2..=6).contains(&arg_types.len()) {
            return plan_err!(
                "{NAME}: expects (ts, as_of[, new_days, active_days, dormant_days, churn_days]), got {} arguments",
                arg_types.len()
            );
        }
        if !is_time(&arg_types[0]) {
            return plan_err!(
                "{NAME}: ts must be a TIMESTAMP or DATE, got {}",
                arg_types[0]
            );
        }
        Ok(DataType::Utf8)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(StageAccumulator {
            rules: Rules::from_physical(&args)?,
            seen: Seen::default(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(["first", "last", "prev"]
            .map(|s| {
                Arc::new(Field::new(
                    format!("{}[{s}]", args.name),
                    DataType::Int64,
                    true,
                ))
            })
            .to_vec())
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(StageGroups {
            rules: Rules::from_physical(&args)?,
            seen: Vec::new(),
        }))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the constant arguments while planning, before any row is read.
        Some(Box::new(|function, _| {
            Rules::from_logical(&function.params.args)?;
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

/// One group's [`Seen`].
#[derive(Debug)]
struct StageAccumulator {
    rules: Rules,
    seen: Seen,
}

impl Accumulator for StageAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let seen = &mut self.seen;
        for_each_counted(values, self.rules.as_of, |_, ts| seen.add(ts))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(Some(
            self.rules.stage(&self.seen).to_string(),
        )))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        state_arrays(&[self.seen])
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for other in read_states(states) {
            self.seen.merge(&other);
        }
        Ok(())
    }
}

/// Every group's [`Seen`], in one vector.
#[derive(Debug)]
struct StageGroups {
    rules: Rules,
    seen: Vec<Seen>,
}

impl GroupsAccumulator for StageGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.seen.resize(total_num_groups, Seen::default());
        let seen = &mut self.seen;
        for_each_counted(values, self.rules.as_of, |i, ts| {
            if passes_filter(opt_filter, i) {
                seen[group_indices[i]].add(ts);
            }
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(output(&self.rules, &emit_to.take_needed(&mut self.seen)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(state_arrays(&emit_to.take_needed(&mut self.seen)))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.seen.resize(total_num_groups, Seen::default());
        for (&g, other) in group_indices.iter().zip(read_states(values)) {
            self.seen[g].merge(&other);
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut seen = vec![Seen::default(); values[0].len()];
        for_each_counted(values, self.rules.as_of, |i, ts| {
            if passes_filter(opt_filter, i) {
                seen[i].add(ts);
            }
        })?;
        Ok(state_arrays(&seen))
    }

    fn size(&self) -> usize {
        self.seen.capacity() * size_of::<Seen>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::new(&[ScalarValue::Utf8(Some("2026-12-01".into()))]).unwrap()
    }

    fn seen(days_before: &[i64]) -> Seen {
        let as_of = rules().as_of;
        let mut s = Seen::default();
        for d in days_before {
            s.add(as_of - d * DAY);
        }
        s
    }

    #[test]
    fn stages_at_their_edges() {
        let r = rules();
        assert_eq!(r.stage(&seen(&[])), "prospect");
        assert_eq!(r.stage(&seen(&[30])), "new");
        assert_eq!(r.stage(&seen(&[31, 30])), "active");
        assert_eq!(r.stage(&seen(&[200, 30])), "reactivated");
        // last - prev = exactly 90 days is not a gap over dormant_days
        assert_eq!(r.stage(&seen(&[120, 30])), "active");
        assert_eq!(r.stage(&seen(&[200, 90])), "at_risk");
        assert_eq!(r.stage(&seen(&[200, 180])), "dormant");
        assert_eq!(r.stage(&seen(&[200, 181])), "churned");
    }

    #[test]
    fn equal_latest_timestamps_make_a_zero_gap() {
        assert_eq!(rules().stage(&seen(&[300, 10, 10])), "active");
    }

    #[test]
    fn merge_keeps_the_two_latest_and_the_earliest() {
        let mut a = seen(&[300, 10]);
        a.merge(&seen(&[200, 5]));
        let b = seen(&[300, 10, 200, 5]);
        assert_eq!((a.first, a.last, a.prev), (b.first, b.last, b.prev));
        let mut empty = Seen::default();
        empty.merge(&Seen::default());
        assert_eq!(rules().stage(&empty), "prospect");
    }
}
