//! `sequence_next_node(direction, base, ts, event_column, base_condition,
//! event1, …, eventN)`: the event after (forward) or before (backward) a
//! chain of events that starts at a base point, as ClickHouse's
//! `sequenceNextNode`.
//!
//! The state is the group's usable rows in a [`RowArena`]: each row's event
//! value in Arrow's row format (bytes that sort as the values do), and as
//! flags which event conditions held (bits 0..N) and whether it can be the
//! base (bit 32).

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, new_null_array};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{
    check_conditions, is_time, logical_constant, micros, passes_filter, physical_constant,
    string_constant,
};
use crate::row_arena::{
    ArenaAccumulator, ArenaAggregate, ArenaGroups, ArenaRow, RowArena, Taken, ValueRows,
    state_fields, value_converter, value_type,
};

const NAME: &str = "sequence_next_node";
const DIRECTION: &str = "'forward' or 'backward'";
const BASE: &str = "'head', 'tail', 'first_match' or 'last_match'";
/// The flag of a row that can be the base point.
const CAN_BE_BASE: u64 = 1 << 32;

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "The value of `event_column` on the event that follows (`'forward'`) or precedes \
(`'backward'`) a chain of events, as ClickHouse's `sequenceNextNode`. A group's rows are ordered by `ts`, \
then by `event_column`'s value. The chain starts at a base point — `'head'` the first row, `'tail'` the last, \
`'first_match'`/`'last_match'` the first/last row where `event1` holds — which must satisfy `base_condition`; \
`event1` must hold on the base, `event2` on the next row (forward) or the one before (backward), and so on. \
NULL when there is no such chain or no event after it; `'first_match'` and `'last_match'` try only that one \
base. A row with a NULL in any argument is skipped. `'forward'` with `'tail'` and `'backward'` with `'head'` \
are errors, as in ClickHouse.",
    syntax_example = "sequence_next_node(direction, base, ts, event_column, base_condition, event1[, ..., eventN])",
    sql_example = r#"```sql
> SELECT next, count(*) AS members
  FROM (SELECT member_id,
               sequence_next_node('forward', 'first_match', ts, event, true,
                                  event = 'view', event = 'cart') AS next
        FROM events GROUP BY member_id)
  GROUP BY next ORDER BY members DESC;
```"#,
    argument(
        name = "direction",
        description = "`'forward'` or `'backward'` (constant)."
    ),
    argument(
        name = "base",
        description = "`'head'`, `'tail'`, `'first_match'` or `'last_match'` (constant)."
    ),
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(name = "event_column", description = "The value returned (any type)."),
    argument(
        name = "base_condition",
        description = "BOOLEAN: the rows that can be the base point."
    ),
    argument(
        name = "event1, ..., eventN",
        description = "1 to 32 BOOLEAN conditions: the chain, from the base point on."
    )
)]
/// The `sequence_next_node` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SequenceNextNode {
    signature: Signature,
}

impl Default for SequenceNextNode {
    fn default() -> Self {
        SequenceNextNode {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// Where the chain starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Base {
    Head,
    Tail,
    FirstMatch,
    LastMatch,
}

/// A call's constant arguments.
#[derive(Debug, Clone, Copy)]
struct Rule {
    backward: bool,
    base: Base,
    events: usize,
}

impl Rule {
    fn new(
        direction: Option<&ScalarValue>,
        base: Option<&ScalarValue>,
        events: usize,
    ) -> Result<Self> {
        let backward = match direction
            .map(|v| string_constant(NAME, "direction", v))
            .transpose()?
        {
            Some("forward") => false,
            Some("backward") => true,
            Some(other) => {
                return plan_err!("{NAME}: direction must be {DIRECTION}, got '{other}'");
            }
            None => return plan_err!("{NAME}: direction must be {DIRECTION}"),
        };
        let base = match base.map(|v| string_constant(NAME, "base", v)).transpose()? {
            Some("head") => Base::Head,
            Some("tail") => Base::Tail,
            Some("first_match") => Base::FirstMatch,
            Some("last_match") => Base::LastMatch,
            Some(other) => return plan_err!("{NAME}: base must be {BASE}, got '{other}'"),
            None => return plan_err!("{NAME}: base must be {BASE}"),
        };
        match (backward, base) {
            (false, Base::Tail) => {
                plan_err!("{NAME}: base 'tail' cannot go 'forward': nothing follows the last event")
            }
            (true, Base::Head) => plan_err!(
                "{NAME}: base 'head' cannot go 'backward': nothing precedes the first event"
            ),
            _ => Ok(Rule {
                backward,
                base,
                events,
            }),
        }
    }

    fn from_physical(args: &AccumulatorArgs) -> Result<Self> {
        let constant = |i: usize, what: &str, expected: &str| {
            physical_constant(NAME, what, expected, &args.exprs[i]).ok()
        };
        let direction = constant(0, "direction", DIRECTION);
        let base = constant(1, "base", BASE);
        Rule::new(direction.as_ref(), base.as_ref(), args.exprs.len() - 5)
    }

    /// The index of the row after (or before) the chain in `rows` (sorted), if any.
    fn next(&self, rows: &[ArenaRow]) -> Option<usize> {
        let n = rows.len();
        if n <= self.events {
            return None;
        }
        let can_be_base = |r: &ArenaRow| r.flags & CAN_BE_BASE != 0;
        let first_event = |r: &ArenaRow| r.flags & 1 != 0 && can_be_base(r);
        let base = match self.base {
            Base::Head => can_be_base(&rows[0]).then_some(0),
            Base::Tail => can_be_base(&rows[n - 1]).then_some(n - 1),
            Base::FirstMatch => rows.iter().position(first_event),
            Base::LastMatch => rows.iter().rposition(first_event),
        }?;
        // event k (0-based) on the k-th row from the base
        let holds = |k: usize, at: usize| rows[at].flags & (1 << k) != 0;
        if self.backward {
            let chain = (0..self.events).take_while(|&k| k < base && holds(k, base - k));
            (chain.count() == self.events).then(|| base - self.events)
        } else {
            let chain = (0..self.events).take_while(|&k| base + k < n && holds(k, base + k));
            let after = base + self.events;
            (chain.count() == self.events && after < n).then_some(after)
        }
    }
}

/// A call's rule, and the conversion of event values to and from row bytes.
#[derive(Debug)]
struct NextNode {
    rule: Rule,
    value_type: DataType,
    converter: RowConverter,
}

impl NextNode {
    fn new(args: &AccumulatorArgs) -> Result<Self> {
        let (converter, value_type) = value_converter(&args.exprs[3].data_type(args.schema)?)?;
        Ok(NextNode {
            rule: Rule::from_physical(args)?,
            converter,
            value_type,
        })
    }
}

impl ArenaAggregate for NextNode {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Adds the rows of `values` with no NULL argument.
    fn update(
        &self,
        arena: &mut RowArena,
        values: &[ArrayRef],
        group_of: impl Fn(usize) -> usize,
        filter: Option<&BooleanArray>,
    ) -> Result<()> {
        let (ts, ts_nulls) = micros(&values[2])?;
        let mut bytes = ValueRows::encode(&self.converter, &values[3])?;
        let events = values[3].logical_nulls();
        let mut conditions = Vec::with_capacity(values.len() - 4);
        for (k, c) in values[4..].iter().enumerate() {
            match c.data_type() {
                DataType::Boolean => conditions.push(c.as_boolean().clone()),
                DataType::Null => conditions.push(BooleanArray::new_null(ts.len())),
                other => {
                    let what = match k {
                        0 => "base_condition".to_string(),
                        k => format!("event{k}"),
                    };
                    return plan_err!("{NAME}: {what} must be BOOLEAN, got {other}");
                }
            }
        }
        for i in 0..ts.len() {
            let usable = ts_nulls.as_ref().is_none_or(|n| n.is_valid(i))
                && events.as_ref().is_none_or(|n| n.is_valid(i))
                && conditions.iter().all(|c| c.is_valid(i))
                && passes_filter(filter, i);
            if !usable {
                continue;
            }
            let mut flags = 0u64;
            if conditions[0].value(i) {
                flags |= CAN_BE_BASE;
            }
            for (k, c) in conditions[1..].iter().enumerate() {
                if c.value(i) {
                    flags |= 1 << k;
                }
            }
            arena.push_value(NAME, group_of(i), ts[i], &mut bytes, i, flags)?;
        }
        Ok(())
    }

    /// The taken groups' results.
    fn evaluate(&self, mut taken: Taken) -> Result<ArrayRef> {
        let mut rows = std::mem::take(&mut taken.rows);
        let parser = self.converter.parser();
        let mut found: Vec<Option<usize>> = Vec::with_capacity(taken.groups());
        let mut picked = Vec::new();
        for g in 0..taken.groups() {
            let group = &mut rows[taken.offsets[g]..taken.offsets[g + 1]];
            let value = |r: &ArenaRow| &taken.bytes[r.from..r.from + r.len as usize];
            // ClickHouse's order: by time, then value; equal rows by their conditions
            group
                .sort_unstable_by(|a, b| (a.ts, value(a), a.flags).cmp(&(b.ts, value(b), b.flags)));
            found.push(self.rule.next(group).map(|i| {
                picked.push(parser.parse(value(&group[i])));
                picked.len() - 1
            }));
        }
        if picked.is_empty() {
            return Ok(new_null_array(&self.value_type, found.len()));
        }
        let values = self.converter.convert_rows(picked)?.remove(0);
        let indices: datafusion::arrow::array::UInt32Array =
            found.iter().map(|f| f.map(|i| i as u32)).collect();
        Ok(datafusion::arrow::compute::take(&values, &indices, None)?)
    }
}

impl AggregateUDFImpl for SequenceNextNode {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() < 6 {
            return plan_err!(
                "{NAME}: expects (direction, base, ts, event_column, base_condition, event1[, ..., eventN]), \
                 got {} arguments",
                arg_types.len()
            );
        }
        for (what, t) in [("direction", &arg_types[0]), ("base", &arg_types[1])] {
            if !matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                let expected = if what == "base" { BASE } else { DIRECTION };
                return plan_err!("{NAME}: {what} must be {expected}, got {t}");
            }
        }
        if !is_time(&arg_types[2]) {
            return plan_err!(
                "{NAME}: ts must be a TIMESTAMP or DATE, got {}",
                arg_types[2]
            );
        }
        if !matches!(arg_types[4], DataType::Boolean | DataType::Null) {
            return plan_err!(
                "{NAME}: base_condition must be BOOLEAN, got {}",
                arg_types[4]
            );
        }
        check_conditions(NAME, &arg_types[5..], 1)?;
        let value = value_type(&arg_types[3]);
        if !RowConverter::supports_fields(&[SortField::new(value.clone())]) {
            return plan_err!("{NAME}: event_column cannot be a {}", arg_types[3]);
        }
        Ok(value)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ArenaAccumulator::new(NextNode::new(&args)?)))
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
        Ok(Box::new(ArenaGroups::new(NextNode::new(&args)?)))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the constant arguments while planning, before any row is read.
        Some(Box::new(|function, _| {
            let args = &function.params.args;
            let constant = |i: usize, what: &str, expected: &str| {
                args.get(i)
                    .and_then(|e| logical_constant(NAME, what, expected, e).ok())
            };
            let direction = constant(0, "direction", DIRECTION);
            let base = constant(1, "base", BASE);
            Rule::new(
                direction.as_ref(),
                base.as_ref(),
                args.len().saturating_sub(5),
            )?;
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
