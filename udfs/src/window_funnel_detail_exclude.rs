//! `window_funnel_detail_exclude(window, mode, pairs, ts, prop, cond1, …, excl1, …)`:
//! `window_funnel_detail` with exclusion steps.

use datafusion::logical_expr::Signature;
use datafusion_macros::user_doc;

use crate::funnel_rows::{Variant, funnel_variant_udf};

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "`window_funnel_detail` with exclusion steps, as `window_funnel_exclude`: `{level, step_ts, \
step_prop}` of the first chain that reached the highest level without crossing an exclusion. `level` always \
equals `window_funnel_exclude`'s answer on the same rows.",
    syntax_example = "window_funnel_detail_exclude(window, mode, pairs, ts, prop, cond1[, ..., condN], excl1[, ..., exclM])",
    sql_example = r#"```sql
> SELECT d.step_prop[1] AS first_channel, count(*) AS members
  FROM (SELECT window_funnel_detail_exclude(INTERVAL '7 days', '', '1-3', ts, channel,
                 event = 'view', event = 'cart', event = 'order', event = 'refund') AS d
        FROM events GROUP BY member_id)
  WHERE d.level = 3 GROUP BY 1;
```"#,
    argument(
        name = "window",
        description = "Window length: whole seconds or an `INTERVAL` (constant)."
    ),
    argument(name = "mode", description = "`''` or mode flags, as `window_funnel`."),
    argument(
        name = "pairs",
        description = "A constant string `'i-j,i-j,…'`: one pair of steps (1 <= i < j <= N) per exclusion condition."
    ),
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(name = "prop", description = "Any column reported per step."),
    argument(
        name = "cond1, ..., condN, excl1, ..., exclM",
        description = "BOOLEAN step conditions in funnel order, then one BOOLEAN exclusion condition per pair; 32 in all at most."
    )
)]
/// The `window_funnel_detail_exclude` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WindowFunnelDetailExclude {
    signature: Signature,
}

funnel_variant_udf!(WindowFunnelDetailExclude, Variant::DETAIL_EXCLUDE);
