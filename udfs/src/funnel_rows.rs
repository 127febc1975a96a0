//! The `window_funnel` variants that need more than a row's time and
//! conditions — `window_funnel_exclude`, `window_funnel_detail` and
//! `window_funnel_detail_exclude`: where their arguments are, their result
//! type, and their state, the group's usable rows in a [`RowArena`] (flags =
//! the conditions, value = `prop` in Arrow row format).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, ListArray, StructArray, TimestampMicrosecondArray,
    new_empty_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, AggregateFunctionSimplification};
use datafusion::logical_expr::{Accumulator, Expr, GroupsAccumulator};

use crate::args::{
    check_time_and_conditions, condition_masks, logical_constant, micros, passes_filter,
    physical_constant, time_zone,
};
use crate::event_list::Event;
use crate::funnel::{Funnel, MODE, PAIRS, Scratch, WINDOW};
use crate::row_arena::{
    ArenaAccumulator, ArenaAggregate, ArenaGroups, ArenaRow, RowArena, Taken, ValueRows,
    value_converter, value_type,
};

/// A variant: its name, whether it takes exclusion `pairs` (after `mode`)
/// and whether it takes `prop` and returns the detail (after `ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Variant {
    pub(crate) name: &'static str,
    pairs: bool,
    detail: bool,
}

impl Variant {
    pub(crate) const EXCLUDE: Variant = Variant {
        name: "window_funnel_exclude",
        pairs: true,
        detail: false,
    };
    pub(crate) const DETAIL: Variant = Variant {
        name: "window_funnel_detail",
        pairs: false,
        detail: true,
    };
    pub(crate) const DETAIL_EXCLUDE: Variant = Variant {
        name: "window_funnel_detail_exclude",
        pairs: true,
        detail: true,
    };

    fn ts(self) -> usize {
        2 + usize::from(self.pairs)
    }

    fn prop(self) -> usize {
        self.ts() + 1
    }

    fn first_condition(self) -> usize {
        self.prop() + usize::from(self.detail)
    }

    fn syntax(self) -> String {
        let pairs = if self.pairs { "pairs, " } else { "" };
        let prop = if self.detail { "prop, " } else { "" };
        let exclusions = if self.pairs { ", excl1, ..." } else { "" };
        format!("(window, mode, {pairs}ts, {prop}cond1, ..., condN{exclusions})")
    }

    /// The result type for these argument types, or a planning error naming the argument.
    pub(crate) fn return_type(self, arg_types: &[DataType]) -> Result<DataType> {
        let name = self.name;
        if arg_types.len() <= self.first_condition() {
            return plan_err!(
                "{name}: expects {}, got {} arguments",
                self.syntax(),
                arg_types.len()
            );
        }
        if !(arg_types[0].is_integer() || matches!(arg_types[0], DataType::Interval(_))) {
            return plan_err!("{name}: window must be {WINDOW}, got {}", arg_types[0]);
        }
        let text =
            |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        if !text(&arg_types[1]) {
            return plan_err!("{name}: mode must be {MODE}, got {}", arg_types[1]);
        }
        if self.pairs && !text(&arg_types[2]) {
            return plan_err!("{name}: pairs must be {PAIRS}, got {}", arg_types[2]);
        }
        let ts = &arg_types[self.ts()];
        check_time_and_conditions(name, ts, &arg_types[self.first_condition()..], 1)?;
        if !self.detail {
            return Ok(DataType::Int32);
        }
        let prop = value_type(&arg_types[self.prop()]);
        if !RowConverter::supports_fields(&[SortField::new(prop.clone())]) {
            return plan_err!("{name}: prop cannot be a {}", arg_types[self.prop()]);
        }
        Ok(DataType::Struct(detail_fields(ts, &prop)))
    }

    /// The funnel of a call's constant arguments (`None`: not a constant).
    fn funnel(self, constants: [Option<ScalarValue>; 3], conditions: usize) -> Result<Funnel> {
        let name = self.name;
        let [Some(window), Some(mode), pairs] = constants else {
            let what = if constants[0].is_none() {
                ("window", WINDOW)
            } else {
                ("mode", MODE)
            };
            return plan_err!("{name}: {} must be {}", what.0, what.1);
        };
        if self.pairs && pairs.is_none() {
            return plan_err!("{name}: pairs must be {PAIRS}");
        }
        Funnel::new(name, &window, &mode, pairs.as_ref(), conditions)
    }

    fn physical_funnel(self, args: &AccumulatorArgs) -> Result<Funnel> {
        // not a constant: None, and `funnel` names the argument
        let constant = |i: usize| physical_constant(self.name, "", "", &args.exprs[i]).ok();
        let pairs = if self.pairs { constant(2) } else { None };
        let conditions = args.exprs.len() - self.first_condition();
        self.funnel([constant(0), constant(1), pairs], conditions)
    }

    fn aggregate(self, args: &AccumulatorArgs) -> Result<FunnelRows> {
        let funnel = self.physical_funnel(args)?;
        let ts = args.exprs[self.ts()].data_type(args.schema)?;
        let prop = if self.detail {
            let (converter, t) = value_converter(&args.exprs[self.prop()].data_type(args.schema)?)?;
            Some(Prop {
                converter,
                fields: detail_fields(&ts, &t),
                value_type: t,
            })
        } else {
            None
        };
        Ok(FunnelRows {
            variant: self,
            funnel,
            prop,
            time_zone: time_zone(&ts),
        })
    }

    pub(crate) fn accumulator(self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ArenaAccumulator::new(self.aggregate(&args)?)))
    }

    pub(crate) fn groups_accumulator(
        self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(ArenaGroups::new(self.aggregate(&args)?)))
    }

    /// Checks the constant arguments while planning, before any row is read.
    pub(crate) fn simplify(self) -> AggregateFunctionSimplification {
        Box::new(move |function, _| {
            let args = &function.params.args;
            let constant = |i: usize| {
                args.get(i)
                    .and_then(|e| logical_constant(self.name, "", "", e).ok())
            };
            let pairs = if self.pairs { constant(2) } else { None };
            let conditions = args.len().saturating_sub(self.first_condition());
            self.funnel([constant(0), constant(1), pairs], conditions)?;
            Ok(Expr::AggregateFunction(function))
        })
    }
}

/// `{level, step_ts, step_prop}`; a NULL detail has NULL fields too, so
/// `detail['level']` is NULL where `window_funnel` is.
fn detail_fields(ts: &DataType, prop: &DataType) -> Fields {
    let time = DataType::Timestamp(TimeUnit::Microsecond, time_zone(ts));
    Fields::from(vec![
        Field::new("level", DataType::Int32, true),
        Field::new("step_ts", DataType::new_list(time, false), true),
        Field::new("step_prop", DataType::new_list(prop.clone(), true), true),
    ])
}

/// How `prop` is kept and returned.
#[derive(Debug)]
struct Prop {
    value_type: DataType,
    converter: RowConverter,
    fields: Fields,
}

/// A variant's call: its funnel, and its `prop` when it returns the detail.
#[derive(Debug)]
pub(crate) struct FunnelRows {
    variant: Variant,
    funnel: Funnel,
    prop: Option<Prop>,
    time_zone: Option<Arc<str>>,
}

impl ArenaAggregate for FunnelRows {
    fn name(&self) -> &'static str {
        self.variant.name
    }

    /// Adds the usable rows (no NULL `ts` or condition) the pass needs; the
    /// others only mark their group as seen.
    fn update(
        &self,
        arena: &mut RowArena,
        values: &[ArrayRef],
        group_of: impl Fn(usize) -> usize,
        filter: Option<&BooleanArray>,
    ) -> Result<()> {
        let (ts, ts_nulls) = micros(&values[self.variant.ts()])?;
        let (masks, condition_nulls) =
            condition_masks(&values[self.variant.first_condition()..], ts.len())?;
        let nulls = NullBuffer::union(ts_nulls.as_ref(), condition_nulls.as_ref());
        let mut props = match &self.prop {
            Some(p) => Some(ValueRows::encode(
                &p.converter,
                &values[self.variant.prop()],
            )?),
            None => None,
        };
        for i in 0..ts.len() {
            if !nulls.as_ref().is_none_or(|n| n.is_valid(i)) || !passes_filter(filter, i) {
                continue;
            }
            if self.funnel.keep(masks[i]) {
                let (name, group, flags) = (self.variant.name, group_of(i), u64::from(masks[i]));
                match props.as_mut() {
                    Some(p) => arena.push_value(name, group, ts[i], p, i, flags)?,
                    None => arena.push(name, group, ts[i], &[], flags)?,
                }
            } else {
                arena.mark(group_of(i));
            }
        }
        Ok(())
    }

    /// The taken groups' levels, or details.
    fn evaluate(&self, mut taken: Taken) -> Result<ArrayRef> {
        let groups = taken.groups();
        let mut rows = std::mem::take(&mut taken.rows);
        let mut events: Vec<Event> = Vec::new();
        let mut scratch = Scratch::default();
        let mut levels = Vec::with_capacity(groups);
        let (mut step_ts, mut steps) = (Vec::new(), Vec::new());
        for g in 0..groups {
            if !taken.seen[g] {
                levels.push(None);
                continue;
            }
            let group = &mut rows[taken.offsets[g]..taken.offsets[g + 1]];
            // by time, then deterministically among equal times
            let value = |r: &ArenaRow| &taken.bytes[r.from..r.from + r.len as usize];
            group
                .sort_unstable_by(|a, b| (a.ts, a.flags, value(a)).cmp(&(b.ts, b.flags, value(b))));
            events.clear();
            events.extend(group.iter().map(|r| Event {
                ts: r.ts,
                mask: r.flags as u32,
            }));
            let reached = self.funnel.pass::<true>(&events, &mut scratch)?;
            levels.push(Some(reached.level as i32));
            for &row in &reached.chain[..reached.level] {
                let row = &group[row as usize];
                step_ts.push(row.ts);
                steps.push((row.from, row.len));
            }
        }
        let Some(prop) = &self.prop else {
            return Ok(Arc::new(Int32Array::from(levels)));
        };
        let lengths = levels.iter().map(|l| l.unwrap_or(0) as usize);
        let offsets = OffsetBuffer::<i32>::from_lengths(lengths);
        let props = if steps.is_empty() {
            new_empty_array(&prop.value_type)
        } else {
            let parser = prop.converter.parser();
            let parsed = steps
                .iter()
                .map(|&(from, len)| parser.parse(&taken.bytes[from..from + len as usize]));
            prop.converter.convert_rows(parsed)?.remove(0)
        };
        let valid = NullBuffer::from_iter(levels.iter().map(Option::is_some));
        let step_ts =
            TimestampMicrosecondArray::from(step_ts).with_timezone_opt(self.time_zone.clone());
        let list = |field: &Field, values: ArrayRef| -> Result<ArrayRef> {
            let DataType::List(item) = field.data_type() else {
                return plan_err!("{}: {} is not a list", self.variant.name, field.name());
            };
            Ok(Arc::new(ListArray::new(
                Arc::clone(item),
                offsets.clone(),
                values,
                Some(valid.clone()),
            )))
        };
        let columns = vec![
            Arc::new(Int32Array::from(levels)) as ArrayRef,
            list(&prop.fields[1], Arc::new(step_ts))?,
            list(&prop.fields[2], props)?,
        ];
        Ok(Arc::new(StructArray::new(
            prop.fields.clone(),
            columns,
            Some(valid),
        )))
    }
}

/// The [`AggregateUDFImpl`](datafusion::logical_expr::AggregateUDFImpl) of
/// a variant's documented struct (with a `signature` field).
macro_rules! funnel_variant_udf {
    ($udf:ty, $variant:expr) => {
        impl datafusion::logical_expr::AggregateUDFImpl for $udf {
            fn name(&self) -> &str {
                $variant.name
            }

            fn signature(&self) -> &datafusion::logical_expr::Signature {
                &self.signature
            }

            fn return_type(
                &self,
                arg_types: &[datafusion::arrow::datatypes::DataType],
            ) -> datafusion::common::Result<datafusion::arrow::datatypes::DataType> {
                $variant.return_type(arg_types)
            }

            fn accumulator(
                &self,
                args: datafusion::logical_expr::function::AccumulatorArgs,
            ) -> datafusion::common::Result<Box<dyn datafusion::logical_expr::Accumulator>> {
                $variant.accumulator(args)
            }

            fn state_fields(
                &self,
                args: datafusion::logical_expr::function::StateFieldsArgs,
            ) -> datafusion::common::Result<Vec<datafusion::arrow::datatypes::FieldRef>> {
                Ok(crate::row_arena::state_fields(args.name))
            }

            fn groups_accumulator_supported(
                &self,
                _args: datafusion::logical_expr::function::AccumulatorArgs,
            ) -> bool {
                true
            }

            fn create_groups_accumulator(
                &self,
                args: datafusion::logical_expr::function::AccumulatorArgs,
            ) -> datafusion::common::Result<Box<dyn datafusion::logical_expr::GroupsAccumulator>>
            {
                $variant.groups_accumulator(args)
            }

            fn simplify(
                &self,
            ) -> Option<datafusion::logical_expr::function::AggregateFunctionSimplification> {
                Some($variant.simplify())
            }

            fn order_sensitivity(
                &self,
            ) -> datafusion::logical_expr::utils::AggregateOrderSensitivity {
                datafusion::logical_expr::utils::AggregateOrderSensitivity::Insensitive
            }

            fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
                self.doc()
            }
        }

        impl Default for $udf {
            fn default() -> Self {
                Self {
                    signature: datafusion::logical_expr::Signature::variadic_any(
                        datafusion::logical_expr::Volatility::Immutable,
                    ),
                }
            }
        }
    };
}
pub(crate) use funnel_variant_udf;
