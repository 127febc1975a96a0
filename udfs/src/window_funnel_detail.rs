//! `window_funnel_detail(window, mode, ts, prop, cond1, …)`: `window_funnel`'s
//! level with the time and `prop` of each step of the chain that reached it.

use datafusion::logical_expr::Signature;
use datafusion_macros::user_doc;

use crate::funnel_rows::{Variant, funnel_variant_udf};

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "`window_funnel`'s level with the detail of the chain that first reached it: \
`{level, step_ts, step_prop}`, where `step_ts[k]` and `step_prop[k]` (k = 1..level) are the time and the `prop` \
of the row that filled step k. `level` always equals `window_funnel`'s answer on the same arguments. Time to \
convert is `step_ts[level] - step_ts[1]`; a breakdown by the first step's channel is `step_prop[1]`. Empty \
lists when level is 0; NULL for a group with no usable row. A row with a NULL `ts` or condition is skipped; \
a NULL `prop` still counts. When several rows at one time could fill a step, which one's `prop` is reported \
is unspecified.",
    syntax_example = "window_funnel_detail(window, mode, ts, prop, cond1[, ..., condN])",
    sql_example = r#"```sql
> SELECT d.step_prop[1] AS first_channel, d.level, count(*) AS members,
         median(date_part('epoch', d.step_ts[d.level]) - date_part('epoch', d.step_ts[1])) AS seconds_to_convert
  FROM (SELECT window_funnel_detail(INTERVAL '7 days', '', ts, channel,
                 event = 'view', event = 'cart', event = 'order') AS d
        FROM events GROUP BY member_id)
  WHERE d.level > 0 GROUP BY 1, 2 ORDER BY 1, 2;
```"#,
    argument(
        name = "window",
        description = "Window length: whole seconds or an `INTERVAL` (constant)."
    ),
    argument(name = "mode", description = "`''` or mode flags, as `window_funnel`."),
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(
        name = "prop",
        description = "Any column reported per step (a channel, a product, an amount)."
    ),
    argument(
        name = "cond1, ..., condN",
        description = "1 to 32 BOOLEAN step conditions, in funnel order."
    )
)]
/// The `window_funnel_detail` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WindowFunnelDetail {
    signature: Signature,
}

funnel_variant_udf!(WindowFunnelDetail, Variant::DETAIL);
