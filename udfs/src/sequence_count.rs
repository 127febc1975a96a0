//! `sequence_count(pattern, ts, cond1, …, condN)` → BIGINT (ClickHouse `sequenceCount`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::event_list::{EventAccumulator, EventGroups, state_fields};
use crate::sequence_pattern::{SEQUENCE_TS, SequenceFinish, SequenceKind};

const NAME: &str = "sequence_count";
const KIND: SequenceKind = SequenceKind::Count;

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "How many non-overlapping times the events of a group, ordered by time, contain the pattern, as ClickHouse's `sequenceCount`; each search restarts after the last event the previous match consumed. \
Events are the usable rows where at least one condition holds; ties in time are ordered by the event's lowest \
true condition, then its highest (ClickHouse leaves them undefined). Pattern syntax: `(?N)` an event with \
condition N, `.` any one event, `.*` any number of events, `(?t<=S)`, `(?t<S)`, `(?t>=S)`, `(?t>S)`, \
`(?t==S)` the time in whole seconds since the event before; no spaces. A row where `ts` or any condition is \
NULL is skipped; a group with no usable row returns NULL.",
    syntax_example = "sequence_count(pattern, ts, cond1, cond2[, ..., condN])",
    sql_example = r#"```sql
> SELECT member_id, sequence_count('(?1)(?t<=3600).*(?2)', ts, event = 'view', event = 'pay') AS x
  FROM events GROUP BY member_id;
```"#,
    argument(name = "pattern", description = "The pattern (a constant string)."),
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(
        name = "cond1, ..., condN",
        description = "2 to 32 BOOLEAN conditions, named (?1)..(?N) in the pattern."
    )
)]
/// The `sequence_count` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SequenceCount {
    signature: Signature,
}

impl Default for SequenceCount {
    fn default() -> Self {
        SequenceCount {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for SequenceCount {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        SequenceFinish::return_type(NAME, KIND, arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let finish = SequenceFinish::from_physical(NAME, KIND, &args)?;
        Ok(Box::new(EventAccumulator::new(
            Arc::new(finish),
            SEQUENCE_TS,
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
        let finish = SequenceFinish::from_physical(NAME, KIND, &args)?;
        Ok(Box::new(EventGroups::new(Arc::new(finish), SEQUENCE_TS)))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the pattern while planning, before any row is read.
        Some(Box::new(|function, _| {
            SequenceFinish::check_logical(NAME, KIND, &function.params.args)?;
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
