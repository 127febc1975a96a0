//! A faster `CAST(ts AS DATE)` for timestamps without a time zone (or in UTC).
//! Arrow's cast builds a chrono date-time for every value; the day of a UTC
//! timestamp is its value floor-divided by one day's units, which is what this
//! kernel computes when the column's smallest and largest values lie in chrono's
//! range (otherwise it hands the array to Arrow's cast, so errors stay Arrow's).
//!
//! The rule rewrites such casts in projections and groupings only: a filter
//! keeps the `CAST` that statistics pruning understands.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, PrimitiveArray};
use datafusion::arrow::compute::{cast, max, min};
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Date32Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// Days of chrono's date range either side of 1970 (its years are ±262,143).
const CHRONO_DAYS: i64 = 95_000_000;

/// Replaces `CAST(ts AS DATE)` of a UTC timestamp in projections and groupings
/// by `date_of_utc(ts)`, keeping the column's name.
#[derive(Debug)]
pub(crate) struct FastDateCasts {
    date_of: Arc<ScalarUDF>,
}

impl Default for FastDateCasts {
    fn default() -> Self {
        FastDateCasts {
            date_of: Arc::new(ScalarUDF::new_from_impl(DateOfUtc {
                signature: Signature::any(1, Volatility::Immutable),
            })),
        }
    }
}

impl OptimizerRule for FastDateCasts {
    fn name(&self) -> &str {
        "fast_date_casts"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let input = match &plan {
            LogicalPlan::Projection(p) => Arc::clone(p.input.schema()),
            LogicalPlan::Aggregate(a) => Arc::clone(a.input.schema()),
            _ => return Ok(Transformed::no(plan)),
        };
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|e| {
            let name = names.save(&e);
            let rewritten = e.transform_up(|e| match e {
                Expr::Cast(Cast { expr, field })
                    if field.data_type() == &DataType::Date32
                        && field.metadata().is_empty()
                        && utc_timestamp(&expr.get_type(&input)?) =>
                {
                    Ok(Transformed::yes(self.date_of.call(vec![*expr])))
                }
                e => Ok(Transformed::no(e)),
            })?;
            Ok(rewritten.update_data(|e| name.restore(e)))
        })
    }
}

/// A timestamp whose date is the same in UTC as written.
fn utc_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, tz)
        if tz.as_deref().is_none_or(|tz| tz == "UTC" || tz == "+00:00"))
}

/// The date of a UTC timestamp, as `CAST(… AS DATE)` answers it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateOfUtc {
    signature: Signature,
}

impl ScalarUDFImpl for DateOfUtc {
    fn name(&self) -> &str {
        "date_of_utc"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(date_of_utc(a)?)),
            ColumnarValue::Scalar(s) => {
                let day = date_of_utc(&s.to_array()?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&day, 0)?))
            }
        }
    }
}

/// Each timestamp's day since 1970 (a `Date32` array).
fn date_of_utc(a: &ArrayRef) -> Result<ArrayRef> {
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            days(a, a.as_primitive::<TimestampSecondType>(), 86_400)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            days(a, a.as_primitive::<TimestampMillisecondType>(), 86_400_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => days(
            a,
            a.as_primitive::<TimestampMicrosecondType>(),
            86_400_000_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => days(
            a,
            a.as_primitive::<TimestampNanosecondType>(),
            86_400_000_000_000,
        ),
        _ => Ok(cast(a, &DataType::Date32)?),
    }
}

/// Floor division by `per_day` when every value is in chrono's range, else
/// Arrow's cast (which names the value it cannot convert).
fn days<T: ArrowTimestampType>(
    a: &ArrayRef,
    ts: &PrimitiveArray<T>,
    per_day: i64,
) -> Result<ArrayRef> {
    let in_range = |v: Option<i64>| v.is_none_or(|v| v.div_euclid(per_day).abs() < CHRONO_DAYS);
    if !(in_range(min(ts)) && in_range(max(ts))) {
        return Ok(cast(a, &DataType::Date32)?);
    }
    let days: PrimitiveArray<Date32Type> = ts.unary(|v| v.div_euclid(per_day) as i32);
    Ok(Arc::new(days))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Date32Array, TimestampMicrosecondArray};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    use super::*;

    const DAY_US: i64 = 86_400_000_000;

    #[test]
    fn days_are_arrows_dates_in_every_unit_and_zone() {
        let values = [
            Some(0),
            Some(-1),
            Some(1),
            Some(DAY_US - 1),
            Some(DAY_US),
            Some(-DAY_US),
            Some(-DAY_US - 1),
            None,
            Some(1_767_225_599_999_999),
            Some(-62_135_596_800_000_000), // 0001-01-01
            Some(253_402_300_799_999_999), // 9999-12-31 23:59:59.999999
        ];
        let us = TimestampMicrosecondArray::from(values.to_vec());
        for tz in [None, Some("UTC"), Some("+00:00")] {
            for unit in [
                TimeUnit::Second,
                TimeUnit::Millisecond,
                TimeUnit::Microsecond,
                TimeUnit::Nanosecond,
            ] {
                let t = DataType::Timestamp(unit, tz.map(Into::into));
                // nanoseconds hold ±292 years: the far dates are left out there
                let a = cast(&us, &t).unwrap_or_else(|_| {
                    cast(&TimestampMicrosecondArray::from(values[..9].to_vec()), &t).unwrap()
                });
                let fast = date_of_utc(&a).unwrap();
                assert_eq!(
                    fast.as_primitive::<Date32Type>(),
                    cast(&a, &DataType::Date32)
                        .unwrap()
                        .as_primitive::<Date32Type>(),
                    "{t}"
                );
            }
        }
        // a zone other than UTC moves dates: its casts are left to Arrow
        let shanghai = DataType::Timestamp(TimeUnit::Microsecond, Some("Asia/Shanghai".into()));
        assert!(!utc_timestamp(&shanghai) && !utc_timestamp(&DataType::Int64));
        let first = date_of_utc(&(Arc::new(us) as ArrayRef)).unwrap();
        let expected = Date32Array::from(vec![0, -1, 0, 0, 1, -1, -2]);
        assert_eq!(first.as_primitive::<Date32Type>().slice(0, 7), expected);
    }

    #[test]
    fn values_past_chronos_range_keep_arrows_error() {
        let a: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![0, i64::MAX]));
        let fast = date_of_utc(&a).unwrap_err().to_string();
        let arrow = cast(&a, &DataType::Date32).unwrap_err().to_string();
        assert!(fast.contains(&arrow), "{fast} vs {arrow}");
    }

    #[tokio::test]
    async fn projections_and_groupings_use_it_and_filters_keep_the_cast() {
        let ctx = SessionContext::new();
        ctx.add_optimizer_rule(Arc::new(FastDateCasts::default()));
        let sql = "SELECT CAST(ts AS DATE), count(*) AS n, CAST(ts AS DATE) AS day, \
            min(CAST(zoned AS DATE)) AS first FROM \
            (SELECT CAST(column1 AS TIMESTAMP) AS ts, CAST(column1 AS TIMESTAMP WITH TIME ZONE) AS zoned \
             FROM (VALUES ('2026-11-30T23:59:59'), ('1969-12-31T23:00:00'), ('2026-12-01T00:00:00'), (NULL))) \
            WHERE CAST(ts AS DATE) > DATE '1900-01-01' OR ts IS NULL \
            GROUP BY CAST(ts AS DATE) ORDER BY day NULLS LAST";
        let df = ctx.sql(sql).await.unwrap();
        let plan = df
            .clone()
            .into_optimized_plan()
            .unwrap()
            .display_indent()
            .to_string();
        let grouping = plan.lines().find(|l| l.contains("Aggregate:")).unwrap();
        let filter = plan.lines().find(|l| l.contains("Filter:")).unwrap();
        assert_eq!(grouping.matches("date_of_utc(").count(), 2, "{plan}");
        assert!(
            !filter.contains("date_of_utc(") && filter.contains("CAST("),
            "{plan}"
        );
        let out = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        assert_eq!(
            out,
            "+------------+---+------------+------------+\n\
             | ts         | n | day        | first      |\n\
             +------------+---+------------+------------+\n\
             | 1969-12-31 | 1 | 1969-12-31 | 1969-12-31 |\n\
             | 2026-11-30 | 1 | 2026-11-30 | 2026-11-30 |\n\
             | 2026-12-01 | 1 | 2026-12-01 | 2026-12-01 |\n\
             |            | 1 |            |            |\n\
             +------------+---+------------+------------+",
        );
    }
}
