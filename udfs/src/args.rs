//! Argument handling shared by the behavioral aggregates: constant parameters,
//! timestamps normalised to microseconds, and per-row condition bitmasks.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;

/// Most conditions a behavioral aggregate accepts (one bit each in a `u32`).
pub(crate) const MAX_CONDITIONS: usize = 32;

/// Microseconds per second.
pub(crate) const MICROS: i64 = 1_000_000;

/// The value of a constant argument given as a logical expression, or a
/// planning error naming the argument.
pub(crate) fn logical_constant(
    function: &str,
    what: &str,
    expected: &str,
    expr: &Expr,
) -> Result<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Ok(value.clone()),
        Expr::Cast(c) => logical_constant(function, what, expected, &c.expr),
        other => plan_err!("{function}: {what} must be {expected}, got {other}"),
    }
}

/// The value of a constant argument given as a physical expression.
pub(crate) fn physical_constant(
    function: &str,
    what: &str,
    expected: &str,
    expr: &Arc<dyn PhysicalExpr>,
) -> Result<ScalarValue> {
    match expr.as_ref().downcast_ref::<Literal>() {
        Some(literal) => Ok(literal.value().clone()),
        None => plan_err!("{function}: {what} must be {expected}, got {expr}"),
    }
}

/// The unit of a duration given as a plain integer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DurationUnit {
    /// Whole seconds (the behavioral aggregates' windows).
    Seconds,
    /// Whole days (the lifecycle thresholds).
    Days,
}

impl DurationUnit {
    fn micros(self) -> i64 {
        match self {
            DurationUnit::Seconds => MICROS,
            DurationUnit::Days => 86_400 * MICROS,
        }
    }

    /// How a constant duration in this unit is described in errors.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            DurationUnit::Seconds => "a constant non-negative integer (seconds) or INTERVAL",
            DurationUnit::Days => "a constant non-negative integer (days) or INTERVAL",
        }
    }
}

/// A duration given as whole seconds or an `INTERVAL`, in microseconds.
pub(crate) fn duration_micros(function: &str, what: &str, value: &ScalarValue) -> Result<i64> {
    duration_micros_in(function, what, value, DurationUnit::Seconds)
}

/// A duration given as an integer count of `unit` or an `INTERVAL`, in microseconds.
pub(crate) fn duration_micros_in(
    function: &str,
    what: &str,
    value: &ScalarValue,
    unit: DurationUnit,
) -> Result<i64> {
    let expected = unit.expected();
    let per = unit.micros();
    let micros = match value {
        ScalarValue::Int8(Some(v)) => Some(i64::from(*v).checked_mul(per)),
        ScalarValue::Int16(Some(v)) => Some(i64::from(*v).checked_mul(per)),
        ScalarValue::Int32(Some(v)) => Some(i64::from(*v).checked_mul(per)),
        ScalarValue::Int64(Some(v)) => Some(v.checked_mul(per)),
        ScalarValue::UInt8(Some(v)) => Some(i64::from(*v).checked_mul(per)),
        ScalarValue::UInt16(Some(v)) => Some(i64::from(*v).checked_mul(per)),
        ScalarValue::UInt32(Some(v)) => Some(i64::from(*v).checked_mul(per)),
        ScalarValue::UInt64(Some(v)) => {
            Some(i64::try_from(*v).ok().and_then(|v| v.checked_mul(per)))
        }
        ScalarValue::IntervalDayTime(Some(v)) => Some(
            i64::from(v.days)
                .checked_mul(86_400 * MICROS)
                .and_then(|d| d.checked_add(i64::from(v.milliseconds) * 1_000)),
        ),
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => Some(
            i64::from(v.days)
                .checked_mul(86_400 * MICROS)
                .and_then(|d| d.checked_add(v.nanoseconds / 1_000)),
        ),
        ScalarValue::IntervalMonthDayNano(Some(_)) | ScalarValue::IntervalYearMonth(Some(_)) => {
            return plan_err!(
                "{function}: {what} must be a fixed duration; an INTERVAL in months or years has none (write days instead)"
            );
        }
        _ => None,
    };
    match micros {
        Some(Some(m)) if m >= 0 => Ok(m),
        Some(Some(_)) => plan_err!("{function}: {what} must not be negative, got {value}"),
        Some(None) => plan_err!("{function}: {what} is too large: {value}"),
        None => plan_err!("{function}: {what} must be {expected}, got {value}"),
    }
}

/// How a constant point in time is described in errors.
pub(crate) const INSTANT: &str = "a constant TIMESTAMP, DATE or timestamp string";

/// A constant point in time (TIMESTAMP of any unit, DATE, or a timestamp string)
/// in microseconds since the epoch.
pub(crate) fn instant_micros(function: &str, what: &str, value: &ScalarValue) -> Result<i64> {
    let as_micros = if value.data_type().is_numeric() {
        None
    } else {
        value
            .cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None))
            .ok()
    };
    match as_micros {
        Some(ScalarValue::TimestampMicrosecond(Some(us), _)) => Ok(us),
        _ => plan_err!("{function}: {what} must be {INSTANT}, got {value}"),
    }
}

/// A constant string argument.
pub(crate) fn string_constant<'a>(
    function: &str,
    what: &str,
    value: &'a ScalarValue,
) -> Result<&'a str> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Ok(s),
        other => plan_err!("{function}: {what} must be a constant string, got {other}"),
    }
}

/// Whether `t` can be a behavioral timestamp: a TIMESTAMP of any unit, or a DATE.
pub(crate) fn is_time(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 | DataType::Null
    )
}

/// The time zone of a `ts` type, which timestamps computed from it keep.
pub(crate) fn time_zone(ts: &DataType) -> Option<Arc<str>> {
    match ts {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    }
}

/// Checks the timestamp and condition types of a behavioral aggregate.
pub(crate) fn check_time_and_conditions(
    function: &str,
    ts: &DataType,
    conditions: &[DataType],
    min_conditions: usize,
) -> Result<()> {
    if !is_time(ts) {
        return plan_err!("{function}: ts must be a TIMESTAMP or DATE, got {ts}");
    }
    check_conditions(function, conditions, min_conditions)
}

/// Checks the count (`min_conditions`..=32) and BOOLEAN type of the conditions.
pub(crate) fn check_conditions(
    function: &str,
    conditions: &[DataType],
    min_conditions: usize,
) -> Result<()> {
    if conditions.len() < min_conditions || conditions.len() > MAX_CONDITIONS {
        return plan_err!(
            "{function}: takes {min_conditions} to {MAX_CONDITIONS} conditions, got {}",
            conditions.len()
        );
    }
    for (i, t) in conditions.iter().enumerate() {
        if !matches!(t, DataType::Boolean | DataType::Null) {
            return plan_err!("{function}: condition {} must be BOOLEAN, got {t}", i + 1);
        }
    }
    Ok(())
}

/// Whether row `i` passes an aggregate's `FILTER (WHERE …)` clause (no clause: every row).
pub(crate) fn passes_filter(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
}

/// Timestamps as microseconds since the epoch, with their nulls.
pub(crate) fn micros(ts: &ArrayRef) -> Result<(ScalarBuffer<i64>, Option<NullBuffer>)> {
    let as_micros = match ts.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => Arc::clone(ts),
        DataType::Timestamp(_, tz) => {
            cast(ts, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?
        }
        _ => cast(ts, &DataType::Timestamp(TimeUnit::Microsecond, None))?,
    };
    let values = as_micros.as_primitive::<TimestampMicrosecondType>();
    Ok((values.values().clone(), values.nulls().cloned()))
}

/// Bit `k` of `masks[i]` is condition `k+1` on row `i`; the null buffer marks rows
/// where any condition is NULL.
pub(crate) fn condition_masks(
    conditions: &[ArrayRef],
    len: usize,
) -> Result<(Vec<u32>, Option<NullBuffer>)> {
    let mut masks = vec![0u32; len];
    let mut nulls: Option<NullBuffer> = None;
    for (k, c) in conditions.iter().enumerate() {
        match c.data_type() {
            DataType::Boolean => {
                let b = c.as_boolean();
                nulls = NullBuffer::union(nulls.as_ref(), b.nulls());
                for i in b.values().set_indices() {
                    masks[i] |= 1 << k;
                }
            }
            DataType::Null => nulls = Some(NullBuffer::new_null(len)),
            other => return plan_err!("condition {} must be BOOLEAN, got {other}", k + 1),
        }
    }
    Ok((masks, nulls))
}
