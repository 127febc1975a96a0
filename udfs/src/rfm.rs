//! `rfm(table, as_of [, bins])`: recency, frequency and monetary scores per member.
//!
//! The function returns a view: a logical plan of ordinary operators (filter,
//! aggregate by member, three `NTILE` windows, a projection) that DataFusion
//! inlines into the calling query, so it streams, spills and distributes like
//! any other SQL.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Column, Result, ScalarValue, plan_err};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::functions_aggregate::count::count_all;
use datafusion::functions_aggregate::expr_fn::{max, sum};
use datafusion::functions_window::expr_fn::ntile;
use datafusion::logical_expr::{
    Documentation, Expr, ExprFunctionExt, LogicalPlanBuilder, ScalarUDF, SortExpr, cast, col, lit,
};
use datafusion_macros::user_doc;

use crate::args::{INSTANT, MICROS, instant_micros, logical_constant};
use crate::rfm_segment::RfmSegment;
use crate::table_arg::NamedTable;

const NAME: &str = "rfm";
const MICROS_PER_DAY: i64 = 86_400 * MICROS;
const DEFAULT_BINS: i64 = 5;

#[user_doc(
    doc_section(label = "Audience Customer Value Functions"),
    description = "One row per member who bought on or before `as_of`: `member_id, recency_days, frequency, \
monetary, r, f, m, segment`. `recency_days = floor((as_of - max(ts)) / 1 day)`, `frequency = count(*)`, \
`monetary = sum(amount)` (NULL when every amount is NULL; such members sort lowest). The scores are \
`NTILE(bins)` over members ordered by `(recency_days DESC, member_id)`, `(frequency, member_id)` and \
`(monetary NULLS FIRST, member_id)`, so ties split by member id and every score has the same number of \
members (±1). `segment = rfm_segment(r, f, m)` for 5 bins, NULL otherwise. The result plans into ordinary \
operators, so filters, joins and aggregates over it work as on any table.",
    syntax_example = "rfm(table, as_of[, bins])",
    sql_example = r#"```sql
> SELECT segment, count(*) AS members, round(sum(monetary), 2) AS revenue
  FROM rfm('orders', TIMESTAMP '2026-12-01 00:00:00')
  GROUP BY segment ORDER BY revenue DESC;
```"#,
    argument(
        name = "table",
        description = "Name of a table with `member_id`, `ts` (TIMESTAMP or DATE) and numeric `amount` columns, in quotes."
    ),
    argument(
        name = "as_of",
        description = "Constant TIMESTAMP, DATE or timestamp string: only rows with `ts <= as_of` count."
    ),
    argument(
        name = "bins",
        description = "Number of score buckets, a constant integer ≥ 1 (default 5)."
    )
)]
/// The `rfm` table function.
#[derive(Debug, Default)]
pub struct Rfm {}

impl Rfm {
    /// The function's user documentation.
    pub fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

fn is_time(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    )
}

fn bins(arg: Option<&Expr>) -> Result<i64> {
    let Some(arg) = arg else {
        return Ok(DEFAULT_BINS);
    };
    let expected = "a constant integer ≥ 1";
    let value = logical_constant(NAME, "bins", expected, arg)?;
    match value.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(n))) if n >= 1 && value.data_type().is_integer() => Ok(n),
        _ => plan_err!("{NAME}: bins must be {expected}, got {value}"),
    }
}

impl TableFunctionImpl for Rfm {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(2..=3).contains(&exprs.len()) {
            return plan_err!(
                "{NAME} takes 2 or 3 arguments (table, as_of[, bins]), got {}",
                exprs.len()
            );
        }
        let table = NamedTable::resolve(NAME, args.session(), &exprs[0])?;
        table.require(
            NAME,
            &[
                ("member_id", "an integer", DataType::is_integer),
                ("ts", "a TIMESTAMP or DATE", is_time),
                ("amount", "numeric", DataType::is_numeric),
            ],
        )?;
        let as_of = instant_micros(
            NAME,
            "as_of",
            &logical_constant(NAME, "as_of", INSTANT, &exprs[1])?,
        )?;
        let bins = bins(exprs.get(2))?;

        let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
        let ts_type = table.schema().field_with_name("ts")?.data_type().clone();
        let as_of_in_ts_type =
            ScalarValue::TimestampMicrosecond(Some(as_of), None).cast_to(&ts_type)?;
        let last_micros = cast(cast(col("last_ts"), micros), DataType::Int64);
        let score = |name: &str, order: Vec<SortExpr>| -> Result<(Expr, Expr)> {
            let window = ntile(lit(bins)).order_by(order).build()?;
            let column = Expr::Column(Column::from_name(window.schema_name().to_string()));
            Ok((window, cast(column, DataType::Int32).alias(name)))
        };
        let by_member = col("member_id").sort(true, false);
        let (r_window, r) = score(
            "r",
            vec![col("recency_days").sort(false, true), by_member.clone()],
        )?;
        let (f_window, f) = score(
            "f",
            vec![col("frequency").sort(true, true), by_member.clone()],
        )?;
        let (m_window, m) = score("m", vec![col("monetary").sort(true, true), by_member])?;
        let segment = if bins == DEFAULT_BINS {
            ScalarUDF::new_from_impl(RfmSegment::default()).call(vec![col("r"), col("f"), col("m")])
        } else {
            lit(ScalarValue::Utf8(None))
        };

        let scored = LogicalPlanBuilder::scan(
            table.reference.clone(),
            provider_as_source(Arc::clone(&table.provider)),
            None,
        )?
        .filter(col("ts").lt_eq(lit(as_of_in_ts_type)))?
        .aggregate(
            vec![col("member_id")],
            vec![
                max(col("ts")).alias("last_ts"),
                count_all().alias("frequency"),
                sum(col("amount")).alias("monetary"),
            ],
        )?
        .project(vec![
            // Unqualified, so the window expressions below name it as built.
            col("member_id").alias("member_id"),
            ((lit(as_of) - last_micros) / lit(MICROS_PER_DAY)).alias("recency_days"),
            col("frequency"),
            col("monetary"),
        ])?
        .build()?;
        let plan = LogicalPlanBuilder::window_plan(scored, [r_window, f_window, m_window])?;
        let plan = LogicalPlanBuilder::from(plan)
            .project(vec![
                col("member_id"),
                col("recency_days"),
                col("frequency"),
                col("monetary"),
                r,
                f,
                m,
            ])?
            .project(vec![
                col("member_id"),
                col("recency_days"),
                col("frequency"),
                col("monetary"),
                col("r"),
                col("f"),
                col("m"),
                segment.alias("segment"),
            ])?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}
