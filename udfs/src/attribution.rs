//! `attribution(model, ts, touch, conversion [, lookback [, half_life]])`:
//! each conversion's credit 1.0 shared among the touches before it (first
//! touch, last touch, linear, time decay, position based), summed per touch
//! value over a member's conversions.
//!
//! The state is the group's usable rows in a [`RowArena`]: each row's touch
//! in Arrow's row format (bytes that sort as the values do, any type), and
//! whether it is a touch and a conversion.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray, StructArray, new_null_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{HashMap, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{
    duration_micros, is_time, logical_constant, micros, passes_filter, physical_constant,
    string_constant,
};
use crate::row_arena::{
    ArenaAccumulator, ArenaAggregate, ArenaGroups, ArenaRow, RowArena, Taken, ValueRows,
    state_fields, value_converter, value_type,
};

const NAME: &str = "attribution";
const MODELS: &str = "'first_touch', 'last_touch', 'linear', 'time_decay' or 'position_based'";
const DURATION: &str = "a constant non-negative integer (seconds) or INTERVAL";
const DAY: i64 = 86_400 * 1_000_000;
/// The flag of a row with a touch.
const TOUCH: u64 = 1;
/// The flag of a conversion row.
const CONVERSION: u64 = 2;

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "Channel attribution over one member's rows: each conversion (a row where `conversion` is true) \
hands out credit 1.0 among its touches — the rows with a non-NULL `touch` at most `lookback` before it and \
strictly before it — by `model`: `'first_touch'` all to the earliest, `'last_touch'` all to the latest, \
`'linear'` equally, `'time_decay'` in proportion to 2^(−age / half_life), `'position_based'` 0.4 to the first, \
0.4 to the last and 0.2 shared by those between (one touch: 1.0; two: 0.5 each). Touches with equal \
timestamps are ordered by `touch`. A conversion without a touch gives its credit to a NULL touch. The result \
is each credited touch value's summed credit, sorted by value (NULL last); the credits add up to the number \
of conversions, and a member without a conversion gets an empty list. Rows with a NULL `ts` are skipped.",
    syntax_example = "attribution(model, ts, touch, conversion[, lookback[, half_life]])",
    sql_example = r#"```sql
> SELECT a.touch AS channel, round(sum(a.credit), 1) AS orders
  FROM (SELECT unnest(attribution('position_based', ts, CASE WHEN event = 'view' THEN channel END,
                                  event = 'pay', INTERVAL '30 days')) AS a
        FROM events GROUP BY member_id)
  GROUP BY channel ORDER BY orders DESC;
```"#,
    argument(
        name = "model",
        description = "The model, a constant: one of `'first_touch'`, `'last_touch'`, \
`'linear'`, `'time_decay'`, `'position_based'`."
    ),
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(
        name = "touch",
        description = "The touch point (a channel, a campaign; any type); NULL: not a touch."
    ),
    argument(
        name = "conversion",
        description = "BOOLEAN: the row is a conversion; NULL is not."
    ),
    argument(
        name = "lookback",
        description = "How long before a conversion a touch counts: seconds or an \
`INTERVAL` (constant), default 30 days."
    ),
    argument(
        name = "half_life",
        description = "`'time_decay'`: the age at which a touch's weight halves: \
seconds or an `INTERVAL` (constant, positive), default 7 days."
    )
)]
/// The `attribution` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Attribution {
    signature: Signature,
}

impl Default for Attribution {
    fn default() -> Self {
        Attribution {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// How a conversion's credit is shared.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    FirstTouch,
    LastTouch,
    Linear,
    TimeDecay,
    PositionBased,
}

/// A call's constant arguments.
#[derive(Debug, Clone, Copy)]
struct Rule {
    model: Model,
    lookback: i64,
    half_life: i64,
}

impl Rule {
    /// From the constants `model`, `lookback`, `half_life` (`None`: not a
    /// constant; absent: the default).
    fn new(constants: &[Option<ScalarValue>]) -> Result<Self> {
        let model = match constants.first() {
            Some(Some(value)) => match string_constant(NAME, "model", value)? {
                "first_touch" => Model::FirstTouch,
                "last_touch" => Model::LastTouch,
                "linear" => Model::Linear,
                "time_decay" => Model::TimeDecay,
                "position_based" => Model::PositionBased,
                other => return plan_err!("{NAME}: model must be {MODELS}, got '{other}'"),
            },
            _ => return plan_err!("{NAME}: model must be {MODELS}"),
        };
        let duration = |at: usize, what: &str, default: i64| -> Result<i64> {
            match constants.get(at) {
                None => Ok(default),
                Some(Some(value)) if !value.is_null() => duration_micros(NAME, what, value),
                Some(_) => plan_err!("{NAME}: {what} must be {DURATION}"),
            }
        };
        let lookback = duration(1, "lookback", 30 * DAY)?;
        let half_life = duration(2, "half_life", 7 * DAY)?;
        if half_life == 0 {
            return plan_err!("{NAME}: half_life must be positive");
        }
        Ok(Rule {
            model,
            lookback,
            half_life,
        })
    }

    /// The constants among `exprs` (model first, then lookback, half_life).
    fn from_physical(args: &AccumulatorArgs) -> Result<Self> {
        let constants: Vec<_> = std::iter::once(&args.exprs[0])
            .chain(args.exprs.iter().skip(4))
            .map(|e| physical_constant(NAME, "model", MODELS, e).ok())
            .collect();
        Rule::new(&constants)
    }

    /// Adds the credit of one conversion whose touches are `touches[from..to]`
    /// (indexes into `rows`, in time order): to `point`, or spread evenly over
    /// a range of touches through the difference array `spread`.
    fn share(
        &self,
        from: usize,
        to: usize,
        shares: &mut Shares,
        touches: &[usize],
        rows: &[ArenaRow],
    ) {
        let k = to - from;
        match (self.model, k) {
            (_, 0) => {}
            (Model::FirstTouch, _) => shares.point[from] += 1.0,
            (Model::LastTouch, _) => shares.point[to - 1] += 1.0,
            (Model::Linear, _) => shares.spread(from, to, 1.0 / k as f64),
            (Model::TimeDecay, _) => {
                // weights relative to the latest touch's, so none overflows
                let latest = rows[touches[to - 1]].ts;
                let weight = |t: usize| {
                    let age = (latest - rows[touches[t]].ts) as f64 / self.half_life as f64;
                    (-age).exp2()
                };
                let total: f64 = (from..to).map(weight).sum();
                (from..to).for_each(|t| shares.point[t] += weight(t) / total);
            }
            (Model::PositionBased, 1) => shares.point[from] += 1.0,
            (Model::PositionBased, 2) => {
                shares.point[from] += 0.5;
                shares.point[from + 1] += 0.5;
            }
            (Model::PositionBased, _) => {
                shares.point[from] += 0.4;
                shares.point[to - 1] += 0.4;
                shares.spread(from + 1, to - 1, 0.2 / (k - 2) as f64);
            }
        }
    }
}

/// Most touches `'time_decay'` weighs for one group, over all its conversions
/// (each conversion weighs each touch in its lookback).
const TIME_DECAY_WORK: u64 = 200_000_000;

/// Credit handed to a group's touches (by position among them): given to one
/// touch (`point`), or the same to a range of touches (`spread`, a difference
/// array, so a conversion costs the same however many touches it has).
#[derive(Default)]
struct Shares {
    point: Vec<f64>,
    spread: Vec<f64>,
    /// How many spread ranges cover each touch (a difference array too).
    covered: Vec<i64>,
}

impl Shares {
    /// Empties the shares for a group of `touches` touches.
    fn reset(&mut self, touches: usize) {
        for v in [&mut self.point, &mut self.spread] {
            v.clear();
            v.resize(touches + 1, 0.0);
        }
        self.covered.clear();
        self.covered.resize(touches + 1, 0);
    }

    fn spread(&mut self, from: usize, to: usize, each: f64) {
        if from < to {
            self.spread[from] += each;
            self.spread[to] -= each;
            self.covered[from] += 1;
            self.covered[to] -= 1;
        }
    }

    /// Each of the first `touches` touches' credit, and whether it got any.
    fn credits(&self, touches: usize) -> impl Iterator<Item = (f64, bool)> + '_ {
        let (mut spread, mut covered) = (0.0, 0);
        (0..touches).map(move |t| {
            spread += self.spread[t];
            covered += self.covered[t];
            let spread = if covered > 0 { spread } else { 0.0 };
            let point = self.point[t];
            (point + spread, point > 0.0 || covered > 0)
        })
    }
}

/// A touch value (its row-format bytes; `None`: the NULL touch) and its credit.
type Credit<'a> = (Option<&'a [u8]>, f64);

/// Credits summed per touch value, in order of first credit.
#[derive(Default)]
struct Sums<'a> {
    out: Vec<Credit<'a>>,
    /// Each value's place in `out`, by its bytes.
    slots: HashMap<&'a [u8], usize>,
    /// The same by where a row's bytes lie (start and length): rows of one
    /// value often share them ([`RowArena::push_value`]), and a place hashes
    /// cheaper.
    slot_at: HashMap<(usize, u32), usize>,
}

impl<'a> Sums<'a> {
    fn clear(&mut self) {
        self.out.clear();
        self.slots.clear();
        self.slot_at.clear();
    }

    /// Adds `credit` to the value of `row`.
    fn add(&mut self, row: &ArenaRow, taken: &'a Taken, credit: f64) {
        let slot = match self.slot_at.get(&(row.from, row.len)) {
            Some(&slot) => slot,
            None => {
                let value = taken.value(row);
                let next = self.out.len();
                let slot = *self.slots.entry(value).or_insert(next);
                if slot == next {
                    self.out.push((Some(value), 0.0));
                }
                self.slot_at.insert((row.from, row.len), slot);
                slot
            }
        };
        self.out[slot].1 += credit;
    }
}

/// The buffers one evaluation reuses from group to group (no allocation per
/// group): the values are `'a`, the taken rows' bytes.
#[derive(Default)]
struct Crediting<'a> {
    /// The group's touch rows, by position in time order.
    touches: Vec<usize>,
    shares: Shares,
    sums: Sums<'a>,
}

impl<'a> Crediting<'a> {
    /// One group's credits per touch value, sorted by value (NULL last).
    fn credits(
        &mut self,
        rule: &Rule,
        rows: &mut [ArenaRow],
        taken: &'a Taken,
    ) -> Result<&[Credit<'a>]> {
        let order = |a: &ArenaRow, b: &ArenaRow| {
            a.ts.cmp(&b.ts)
                .then_with(|| match (a.from, a.len) == (b.from, b.len) {
                    true => Ordering::Equal,
                    false => taken.value(a).cmp(taken.value(b)),
                })
        };
        // a member's rows mostly arrive in time order (the member-range
        // layout): one pass checks that and finds the touches
        self.touches.clear();
        for (i, row) in rows.iter().enumerate() {
            if i > 0 && order(&rows[i - 1], row).is_gt() {
                rows.sort_unstable_by(order);
                self.touches.clear();
                self.touches
                    .extend((0..rows.len()).filter(|&i| rows[i].flags & TOUCH != 0));
                break;
            }
            if row.flags & TOUCH != 0 {
                self.touches.push(i);
            }
        }
        let touches = &self.touches;
        self.shares.reset(touches.len());
        let mut no_touch = 0.0;
        let (mut from, mut to, mut weighed) = (0, 0, 0u64);
        for conversion in rows.iter().filter(|r| r.flags & CONVERSION != 0) {
            let at = conversion.ts;
            while to < touches.len() && rows[touches[to]].ts < at {
                to += 1;
            }
            while from < to && rows[touches[from]].ts < at.saturating_sub(rule.lookback) {
                from += 1;
            }
            if from == to {
                no_touch += 1.0;
            }
            if rule.model == Model::TimeDecay {
                weighed += (to - from) as u64;
                if weighed > TIME_DECAY_WORK {
                    return exec_err!(
                        "{NAME}: 'time_decay' would weigh more than {TIME_DECAY_WORK} touches for \
                         one group ({} rows); shorten the lookback, or keep fewer touch or \
                         conversion rows",
                        rows.len()
                    );
                }
            }
            rule.share(from, to, &mut self.shares, touches, rows);
        }
        // each touch value's credit, summed in time order; then the values sorted
        self.sums.clear();
        for (t, (credit, got)) in self.shares.credits(touches.len()).enumerate() {
            if got {
                self.sums.add(&rows[touches[t]], taken, credit);
            }
        }
        let out = &mut self.sums.out;
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if no_touch > 0.0 {
            out.push((None, no_touch));
        }
        Ok(out)
    }
}

fn output_fields(touch: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("touch", value_type(touch), true),
        Field::new("credit", DataType::Float64, false),
    ])
}

/// A call's rule, and the conversion of touch values to and from row bytes.
#[derive(Debug)]
struct Attributor {
    rule: Rule,
    touch: DataType,
    converter: RowConverter,
    /// The row bytes of a NULL touch.
    null_touch: Vec<u8>,
}

impl Attributor {
    fn new(args: &AccumulatorArgs) -> Result<Self> {
        let input = args.exprs[2].data_type(args.schema)?;
        let (converter, touch) = value_converter(&input)?;
        let null = converter.convert_columns(&[new_null_array(&touch, 1)])?;
        Ok(Attributor {
            rule: Rule::from_physical(args)?,
            null_touch: null.row(0).as_ref().to_vec(),
            touch,
            converter,
        })
    }
}

impl ArenaAggregate for Attributor {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Adds the usable rows of `values` (`[model, ts, touch, conversion, …]`).
    fn update(
        &self,
        arena: &mut RowArena,
        values: &[ArrayRef],
        group_of: impl Fn(usize) -> usize,
        filter: Option<&BooleanArray>,
    ) -> Result<()> {
        let (ts, ts_nulls) = micros(&values[1])?;
        let mut bytes = ValueRows::encode(&self.converter, &values[2])?;
        let touches = values[2].logical_nulls();
        let conversion = match values[3].data_type() {
            DataType::Boolean => values[3].as_boolean().clone(),
            DataType::Null => BooleanArray::new_null(ts.len()),
            other => return plan_err!("{NAME}: conversion must be BOOLEAN, got {other}"),
        };
        for i in 0..ts.len() {
            if ts_nulls.as_ref().is_some_and(|n| n.is_null(i)) || !passes_filter(filter, i) {
                continue;
            }
            let mut flags = 0;
            if touches.as_ref().is_none_or(|n| n.is_valid(i)) {
                flags |= TOUCH;
            }
            if conversion.is_valid(i) && conversion.value(i) {
                flags |= CONVERSION;
            }
            if flags != 0 {
                arena.push_value(NAME, group_of(i), ts[i], &mut bytes, i, flags)?;
            }
        }
        Ok(())
    }

    /// The taken groups' results.
    fn evaluate(&self, mut taken: Taken) -> Result<ArrayRef> {
        let mut rows = std::mem::take(&mut taken.rows);
        let parser = self.converter.parser();
        let (mut touches, mut values, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
        let mut crediting = Crediting::default();
        for g in 0..taken.groups() {
            let group = crediting.credits(
                &self.rule,
                &mut rows[taken.offsets[g]..taken.offsets[g + 1]],
                &taken,
            )?;
            lengths.push(group.len());
            for &(touch, credit) in group {
                touches.push(touch.unwrap_or(&self.null_touch));
                values.push(credit);
            }
        }
        let touch = match touches.is_empty() {
            true => new_null_array(&self.touch, 0),
            false => {
                let rows = touches.iter().map(|b| parser.parse(b));
                self.converter.convert_rows(rows)?.remove(0)
            }
        };
        let fields = output_fields(&self.touch);
        let entries = StructArray::new(
            fields.clone(),
            vec![touch, Arc::new(Float64Array::from(values))],
            None,
        );
        Ok(Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Struct(fields), false)),
            OffsetBuffer::from_lengths(lengths),
            Arc::new(entries),
            None,
        )))
    }
}

impl AggregateUDFImpl for Attribution {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !(4..=6).contains(&arg_types.len()) {
            return plan_err!(
                "{NAME}: expects (model, ts, touch, conversion[, lookback[, half_life]]), got {} arguments",
                arg_types.len()
            );
        }
        if !matches!(
            arg_types[0],
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return plan_err!("{NAME}: model must be {MODELS}, got {}", arg_types[0]);
        }
        if !is_time(&arg_types[1]) {
            return plan_err!(
                "{NAME}: ts must be a TIMESTAMP or DATE, got {}",
                arg_types[1]
            );
        }
        if !matches!(arg_types[3], DataType::Boolean | DataType::Null) {
            return plan_err!("{NAME}: conversion must be BOOLEAN, got {}", arg_types[3]);
        }
        for (what, t) in ["lookback", "half_life"].iter().zip(&arg_types[4..]) {
            if !(t.is_integer() || matches!(t, DataType::Interval(_))) {
                return plan_err!("{NAME}: {what} must be {DURATION}, got {t}");
            }
        }
        if !RowConverter::supports_fields(&[SortField::new(value_type(&arg_types[2]))]) {
            return plan_err!("{NAME}: touch cannot be a {}", arg_types[2]);
        }
        Ok(DataType::new_list(
            DataType::Struct(output_fields(&arg_types[2])),
            false,
        ))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ArenaAccumulator::new(Attributor::new(&args)?)))
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
        Ok(Box::new(ArenaGroups::new(Attributor::new(&args)?)))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the constant arguments while planning, before any row is read.
        Some(Box::new(|function, _| {
            let args = &function.params.args;
            let constants: Vec<_> = args
                .iter()
                .take(1)
                .chain(args.iter().skip(4))
                .map(|e| logical_constant(NAME, "model", MODELS, e).ok())
                .collect();
            Rule::new(&constants)?;
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
    use datafusion::logical_expr::EmitTo;

    /// One member with `n` rows a second apart: a conversion every 4th, the
    /// others touches `a` and `b` in turn, all within one lookback.
    fn member(n: usize) -> Taken {
        let mut arena = RowArena::default();
        for i in 0..n {
            let (value, flags): (&[u8], u64) = match i % 4 {
                3 => (b"", CONVERSION),
                k if k % 2 == 0 => (b"a", TOUCH),
                _ => (b"b", TOUCH),
            };
            arena
                .push(NAME, 0, i as i64 * 1_000_000, value, flags)
                .unwrap();
        }
        arena.take(EmitTo::All)
    }

    #[test]
    fn values_are_told_apart_by_their_bytes_where_they_start_at_one_place() {
        // an empty value lies where the next value starts
        let mut arena = RowArena::default();
        for (ts, value, flags) in [(0, &b""[..], TOUCH), (1, b"a", TOUCH), (2, b"", CONVERSION)] {
            arena.push(NAME, 0, ts, value, flags).unwrap();
        }
        let mut taken = arena.take(EmitTo::All);
        let mut rows = std::mem::take(&mut taken.rows);
        assert_eq!((rows[0].from, rows[1].from), (0, 0));
        let rule = Rule {
            model: Model::Linear,
            lookback: DAY,
            half_life: DAY,
        };
        let mut crediting = Crediting::default();
        let credited = crediting.credits(&rule, &mut rows, &taken).unwrap();
        assert_eq!(credited, [(Some(&b""[..]), 0.5), (Some(&b"a"[..]), 0.5)]);
    }

    #[test]
    fn credits_take_linear_time_in_conversions_times_touches() {
        // 100,000 conversions each with up to 300,000 touches: 3·10^10 steps
        // were it per touch; the difference array makes it one pass
        let mut taken = member(400_000);
        let mut rows = std::mem::take(&mut taken.rows);
        // the first touch (t=0) and each conversion's last (the row before it) are `a`
        for (model, values) in [
            (Model::FirstTouch, 1),
            (Model::LastTouch, 1),
            (Model::Linear, 2),
            (Model::PositionBased, 2),
        ] {
            let rule = Rule {
                model,
                lookback: 30 * DAY,
                half_life: 7 * DAY,
            };
            let mut crediting = Crediting::default();
            let credited = crediting.credits(&rule, &mut rows, &taken).unwrap();
            let total: f64 = credited.iter().map(|(_, c)| c).sum();
            assert!((total - 100_000.0).abs() < 1e-6, "{model:?}: {total}");
            assert_eq!(credited.len(), values, "{model:?}: {credited:?}");
            assert_eq!(credited[0].0, Some(&b"a"[..]), "{model:?}");
        }
    }
}
