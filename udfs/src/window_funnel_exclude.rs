//! `window_funnel_exclude(window, mode, pairs, ts, cond1, …, excl1, …)`:
//! `window_funnel` where a chain crossing an exclusion event does not count.

use datafusion::logical_expr::Signature;
use datafusion_macros::user_doc;

use crate::funnel_rows::{Variant, funnel_variant_udf};

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "`window_funnel` with exclusion steps (PostHog's): for each pair `i-j`, a chain in which a \
row of the matching exclusion condition lies strictly between its step i's and step j's times does not \
count; the answer is the highest level a chain that is not void reaches. The last M conditions are the \
exclusions, one per pair, in order; the ones before them are the N steps. Without pairs the answer equals \
`window_funnel`. A row with a NULL `ts` or any NULL condition (exclusions included) is skipped.",
    syntax_example = "window_funnel_exclude(window, mode, pairs, ts, cond1[, ..., condN], excl1[, ..., exclM])",
    sql_example = r#"```sql
> SELECT member_id,
         window_funnel_exclude(INTERVAL '7 days', '', '1-3', ts,
                               event = 'view', event = 'cart', event = 'order',
                               event = 'refund') AS level
  FROM events GROUP BY member_id;
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
    argument(
        name = "cond1, ..., condN, excl1, ..., exclM",
        description = "BOOLEAN step conditions in funnel order, then one BOOLEAN exclusion condition per pair; 32 in all at most."
    )
)]
/// The `window_funnel_exclude` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WindowFunnelExclude {
    signature: Signature,
}

funnel_variant_udf!(WindowFunnelExclude, Variant::EXCLUDE);
