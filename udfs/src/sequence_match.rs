//! `sequence_match(pattern, ts, cond1, …, condN)` → BOOLEAN (ClickHouse `sequenceMatch`).

use datafusion::logical_expr::AggregateUDF;
use datafusion_macros::user_doc;

use crate::sequence_aggregate::SequenceAggregate;
use crate::sequence_pattern::SequenceKind;

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "Whether the events of a group, ordered by time, contain the pattern, as ClickHouse's `sequenceMatch`. \
Events are the usable rows where at least one condition holds; ties in time are ordered by the event's lowest \
true condition, then its highest (ClickHouse leaves them undefined). Pattern syntax: `(?N)` an event with \
condition N, `.` any one event, `.*` any number of events, `(?t<=S)`, `(?t<S)`, `(?t>=S)`, `(?t>S)`, \
`(?t==S)` the time in whole seconds since the event before; no spaces. A row where `ts` or any condition is \
NULL is skipped; a group with no usable row returns NULL.",
    syntax_example = "sequence_match(pattern, ts, cond1, cond2[, ..., condN])",
    sql_example = r#"```sql
> SELECT member_id, sequence_match('(?1).*(?2)(?t<=3600)', ts, event = 'cart', event = 'pay') AS x
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
/// The documentation of `sequence_match`.
struct SequenceMatchDoc;

/// The `sequence_match` aggregate.
pub fn sequence_match() -> AggregateUDF {
    AggregateUDF::new_from_impl(SequenceAggregate::new(
        "sequence_match",
        SequenceKind::Match,
        SequenceMatchDoc.doc(),
    ))
}
