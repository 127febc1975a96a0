//! `sessions(ts, gap [, max_length])`: a group's events cut into sessions
//! (see [`SessionRule`]), as a list of `(start, end, events)` in session order.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, ListArray, StructArray, TimestampMicrosecondArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};
use datafusion::common::Result;
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{logical_constant, physical_constant, time_zone};
use crate::event_list::{Event, EventAccumulator, EventGroups, EventsFinish, state_fields};
use crate::session_rule::{DURATION, SessionRule};

const NAME: &str = "sessions";

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "A group's events cut into sessions, in session order: a session begins at the first event, \
and at every event more than `gap` after the one before it (strictly), or at least `max_length` after the \
session's first event. Equal timestamps never split a session. Each session is `{start, end, events}`. Rows \
with a NULL `ts` belong to no session; a group without a usable row gives an empty list. The same sessions \
as the window function `session_number`.",
    syntax_example = "sessions(ts, gap[, max_length])",
    sql_example = r#"```sql
> SELECT member_id, s.start, s."end", s.events
  FROM (SELECT member_id, unnest(sessions(ts, INTERVAL '30 minutes')) AS s
        FROM events GROUP BY member_id);
```"#,
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
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
/// The `sessions` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sessions {
    signature: Signature,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// The fields of one session.
fn session_fields(ts: &DataType) -> Fields {
    let time = DataType::Timestamp(TimeUnit::Microsecond, time_zone(ts));
    Fields::from(vec![
        Field::new("start", time.clone(), false),
        Field::new("end", time, false),
        Field::new("events", DataType::Int64, false),
    ])
}

/// `sessions` for one query: its rule and its output's fields.
#[derive(Debug)]
struct SessionsFinish {
    rule: SessionRule,
    fields: Fields,
    time_zone: Option<Arc<str>>,
}

impl SessionsFinish {
    fn from_physical(args: &AccumulatorArgs) -> Result<Self> {
        let constants: Vec<_> = args
            .exprs
            .iter()
            .skip(1)
            .map(|e| physical_constant(NAME, "gap", DURATION, e).ok())
            .collect();
        let ts = args.exprs[0].data_type(args.schema)?;
        Ok(SessionsFinish {
            rule: SessionRule::new(NAME, &constants)?,
            fields: session_fields(&ts),
            time_zone: time_zone(&ts),
        })
    }
}

/// Groups' sessions, one column each, and how many each group has.
#[derive(Debug, Default)]
struct SessionColumns {
    lengths: Vec<usize>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    counts: Vec<i64>,
    /// Scratch space of [`SessionRule::cut`].
    first_indices: Vec<usize>,
}

impl EventsFinish for SessionsFinish {
    type Output = SessionColumns;
    const CONDITIONS: bool = false;

    fn keep(&self, _mask: u32) -> bool {
        true
    }

    fn finish(&self, events: &mut [Event], out: &mut SessionColumns) -> Result<()> {
        if !events.is_sorted_by_key(|e| e.ts) {
            events.sort_unstable_by_key(|e| e.ts);
        }
        let before = out.starts.len();
        let (starts, ends, counts) = (&mut out.starts, &mut out.ends, &mut out.counts);
        self.rule.cut(
            events.len(),
            |i| events[i].ts,
            &mut out.first_indices,
            |start, end, events| {
                starts.push(start);
                ends.push(end);
                counts.push(events);
            },
        );
        out.lengths.push(out.starts.len() - before);
        Ok(())
    }

    fn unseen(&self, out: &mut SessionColumns) {
        out.lengths.push(0);
    }

    fn output(&self, out: SessionColumns) -> ArrayRef {
        let SessionColumns {
            lengths,
            starts,
            ends,
            counts,
            ..
        } = out;
        let offsets = OffsetBuffer::<i32>::from_lengths(lengths);
        let tz = self.time_zone.clone();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(starts).with_timezone_opt(tz.clone())),
            Arc::new(TimestampMicrosecondArray::from(ends).with_timezone_opt(tz)),
            Arc::new(Int64Array::from(counts)),
        ];
        let sessions = StructArray::new(self.fields.clone(), columns, None);
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(
                DataType::Struct(self.fields.clone()),
                false,
            )),
            offsets,
            Arc::new(sessions),
            None,
        ))
    }
}

impl AggregateUDFImpl for Sessions {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        SessionRule::check_types(NAME, arg_types)?;
        Ok(DataType::new_list(
            DataType::Struct(session_fields(&arg_types[0])),
            false,
        ))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(EventAccumulator::new(
            Arc::new(SessionsFinish::from_physical(&args)?),
            0,
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
            Arc::new(SessionsFinish::from_physical(&args)?),
            0,
        )))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the constant arguments while planning, before any row is read.
        Some(Box::new(|function, _| {
            let constants: Vec<_> = function
                .params
                .args
                .iter()
                .skip(1)
                .map(|e| logical_constant(NAME, "gap", DURATION, e).ok())
                .collect();
            SessionRule::new(NAME, &constants)?;
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
