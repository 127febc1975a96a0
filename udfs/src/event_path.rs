//! `event_path(ts, event, start_condition [, max_steps [, direction]])`: a
//! group's path of events from (forward) or to (backward) an event, repeats
//! collapsed, at most `max_steps` long.
//! The state is the group's usable rows `(ts, event, start)` in a
//! [`RowArena`]; a group's rows are ordered only when its path is emitted.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, StringArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{is_time, logical_constant, micros, passes_filter, physical_constant};
use crate::row_arena::{
    ArenaAccumulator, ArenaAggregate, ArenaGroups, ArenaRow, RowArena, Taken, state_fields,
};

const NAME: &str = "event_path";
const MAX_STEPS: &str = "a constant integer from 1 to 32";
const DIRECTION: &str = "'forward' or 'backward'";
/// The longest path a call may ask for.
const STEPS_LIMIT: i64 = 32;

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "A group's path of events, in time order: with `direction` `'forward'` (the default) it starts \
at the first row where `start_condition` is true and follows the next events; with `'backward'` it ends at the \
last such row and is the events leading up to it. Consecutive repeats of one event collapse to one, then the \
path is cut to `max_steps` events (the first ones forward, the last ones backward). NULL when \
`start_condition` is never true. Rows with a NULL `ts` or `event` are skipped; rows with equal timestamps are \
ordered by `event`. `GROUP BY member_id` gives a path per member, `GROUP BY member_id, session` per session.",
    syntax_example = "event_path(ts, event, start_condition[, max_steps[, direction]])",
    sql_example = r#"```sql
> SELECT path, count(*) AS members
  FROM (SELECT member_id, event_path(ts, event, event = 'view', 4) AS path
        FROM events GROUP BY member_id)
  WHERE path IS NOT NULL GROUP BY path ORDER BY members DESC LIMIT 20;
```"#,
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(
        name = "event",
        description = "The event's name (any type; shown as text)."
    ),
    argument(
        name = "start_condition",
        description = "BOOLEAN: where the path starts (forward) or ends (backward); NULL counts as false."
    ),
    argument(
        name = "max_steps",
        description = "The most events in the path after collapsing repeats: 1 to 32, default 5 (constant)."
    ),
    argument(
        name = "direction",
        description = "`'forward'` (default) or `'backward'` (constant)."
    )
)]
/// The `event_path` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EventPath {
    signature: Signature,
}

impl Default for EventPath {
    fn default() -> Self {
        EventPath {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// A call's constant arguments.
#[derive(Debug, Clone, Copy)]
struct PathRule {
    max_steps: usize,
    backward: bool,
}

impl PathRule {
    /// From the constants after `start_condition` (`None`: not a constant).
    fn new(constants: &[Option<ScalarValue>]) -> Result<Self> {
        let max_steps = match constants.first() {
            None => 5,
            Some(Some(value)) if value.data_type().is_integer() => {
                match value.cast_to(&DataType::Int64)? {
                    ScalarValue::Int64(Some(n)) if (1..=STEPS_LIMIT).contains(&n) => n as usize,
                    _ => return plan_err!("{NAME}: max_steps must be {MAX_STEPS}, got {value}"),
                }
            }
            Some(Some(value)) => {
                return plan_err!("{NAME}: max_steps must be {MAX_STEPS}, got {value}");
            }
            Some(None) => return plan_err!("{NAME}: max_steps must be {MAX_STEPS}"),
        };
        let backward = match constants.get(1) {
            None => false,
            Some(Some(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)),
            )) => match s.as_str() {
                "forward" => false,
                "backward" => true,
                other => {
                    return plan_err!("{NAME}: direction must be {DIRECTION}, got '{other}'");
                }
            },
            Some(Some(value)) => {
                return plan_err!("{NAME}: direction must be {DIRECTION}, got {value}");
            }
            Some(None) => return plan_err!("{NAME}: direction must be {DIRECTION}"),
        };
        Ok(PathRule {
            max_steps,
            backward,
        })
    }

    fn from_physical(args: &AccumulatorArgs) -> Result<Self> {
        let constants: Vec<_> = args
            .exprs
            .iter()
            .skip(3)
            .map(|e| physical_constant(NAME, "max_steps", MAX_STEPS, e).ok())
            .collect();
        PathRule::new(&constants)
    }

    /// The path of one group's `rows` (any order; sorted here), as ranges of
    /// `bytes`; `None` when no row starts it.
    fn path(&self, rows: &mut [ArenaRow], bytes: &[u8]) -> Option<Vec<(usize, usize)>> {
        let name = |r: &ArenaRow| &bytes[r.from..r.from + r.len as usize];
        rows.sort_unstable_by(|a, b| a.ts.cmp(&b.ts).then_with(|| name(a).cmp(name(b))));
        let starts = |r: &ArenaRow| r.flags & START != 0;
        let rows: &[ArenaRow] = if self.backward {
            let end = rows.iter().rposition(starts)?;
            &rows[..=end]
        } else {
            let start = rows.iter().position(starts)?;
            &rows[start..]
        };
        let ordered: Box<dyn Iterator<Item = &ArenaRow>> = match self.backward {
            true => Box::new(rows.iter().rev()),
            false => Box::new(rows.iter()),
        };
        let mut steps: Vec<(usize, usize)> = Vec::new();
        let mut last: Option<&[u8]> = None;
        for row in ordered {
            if last != Some(name(row)) {
                last = Some(name(row));
                steps.push((row.from, row.len as usize));
                if steps.len() == self.max_steps {
                    break;
                }
            }
        }
        if self.backward {
            steps.reverse();
        }
        Some(steps)
    }
}

/// The flag of a row where the path starts.
const START: u64 = 1;

impl ArenaAggregate for PathRule {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Adds the usable rows of `values` (`[ts, event, start, …]`).
    fn update(
        &self,
        arena: &mut RowArena,
        values: &[ArrayRef],
        group_of: impl Fn(usize) -> usize,
        filter: Option<&BooleanArray>,
    ) -> Result<()> {
        let (ts, ts_nulls) = micros(&values[0])?;
        let events = cast(&values[1], &DataType::Utf8)?;
        let events = events.as_string::<i32>();
        let start = match values[2].data_type() {
            DataType::Boolean => values[2].as_boolean().clone(),
            DataType::Null => BooleanArray::new_null(ts.len()),
            other => return plan_err!("{NAME}: start_condition must be BOOLEAN, got {other}"),
        };
        for i in 0..ts.len() {
            let usable = ts_nulls.as_ref().is_none_or(|n| n.is_valid(i))
                && events.is_valid(i)
                && passes_filter(filter, i);
            if usable {
                let flags = if start.is_valid(i) && start.value(i) {
                    START
                } else {
                    0
                };
                arena.push(NAME, group_of(i), ts[i], events.value(i).as_bytes(), flags)?;
            }
        }
        Ok(())
    }

    /// The paths of the taken groups, as a list array.
    fn evaluate(&self, mut taken: Taken) -> Result<ArrayRef> {
        let groups = taken.groups();
        let mut rows = std::mem::take(&mut taken.rows);
        let mut steps: Vec<&str> = Vec::new();
        let mut lengths = Vec::with_capacity(groups);
        let mut valid = Vec::with_capacity(groups);
        for g in 0..groups {
            match self.path(
                &mut rows[taken.offsets[g]..taken.offsets[g + 1]],
                &taken.bytes,
            ) {
                Some(path) => {
                    for (at, len) in &path {
                        // the bytes were a `&str` when stored
                        let name = std::str::from_utf8(&taken.bytes[*at..*at + *len]);
                        steps.push(name.map_err(|e| {
                            datafusion::error::DataFusionError::Internal(e.to_string())
                        })?);
                    }
                    lengths.push(path.len());
                    valid.push(true);
                }
                None => {
                    lengths.push(0);
                    valid.push(false);
                }
            }
        }
        Ok(Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Utf8, false)),
            OffsetBuffer::from_lengths(lengths),
            Arc::new(StringArray::from(steps)),
            Some(valid.into()),
        )))
    }
}

impl AggregateUDFImpl for EventPath {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !(3..=5).contains(&arg_types.len()) {
            return plan_err!(
                "{NAME}: expects (ts, event, start_condition[, max_steps[, direction]]), got {} arguments",
                arg_types.len()
            );
        }
        if !is_time(&arg_types[0]) {
            return plan_err!(
                "{NAME}: ts must be a TIMESTAMP or DATE, got {}",
                arg_types[0]
            );
        }
        if !matches!(arg_types[2], DataType::Boolean | DataType::Null) {
            return plan_err!(
                "{NAME}: start_condition must be BOOLEAN, got {}",
                arg_types[2]
            );
        }
        Ok(DataType::new_list(DataType::Utf8, false))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ArenaAccumulator::new(PathRule::from_physical(
            &args,
        )?)))
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
        Ok(Box::new(ArenaGroups::new(PathRule::from_physical(&args)?)))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the constant arguments while planning, before any row is read.
        Some(Box::new(|function, _| {
            let constants: Vec<_> = function
                .params
                .args
                .iter()
                .skip(3)
                .map(|e| logical_constant(NAME, "max_steps", MAX_STEPS, e).ok())
                .collect();
            PathRule::new(&constants)?;
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
