//! `window_funnel(window, mode, ts, cond1, …, condN)`: how far along an ordered
//! funnel each group got inside one time window (ClickHouse `windowFunnel`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{
    check_time_and_conditions, duration_micros, logical_constant, physical_constant,
    string_constant,
};
use crate::event_list::{Event, EventAccumulator, EventGroups, EventsFinish, state_fields};

const NAME: &str = "window_funnel";
/// Most partial chains `strict_once` may visit within one run of equal
/// timestamps of a group before the group is refused as too complex: inside
/// such a run every assignment of its rows to steps is a chain of its own,
/// so many tied rows matching several steps each grow exponentially.
const MAX_CHAIN_VISITS: usize = 250_000;
const WINDOW: &str = "a constant non-negative integer (seconds) or INTERVAL";
const MODE: &str = "a constant string of mode flags";
/// Position of `ts` among the arguments.
const TS: usize = 2;

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "Length (0..N) of the longest prefix of the ordered steps `cond1, cond2, …` that a group \
reached inside one window measured from the chain's first event, as ClickHouse's `windowFunnel`. \
One row may fill several steps. A row where `ts` or any condition is NULL is skipped entirely \
(write `coalesce(amount > 100, false)` to keep rows without an amount); a group with no usable row returns NULL.",
    syntax_example = "window_funnel(window, mode, ts, cond1[, ..., condN])",
    sql_example = r#"```sql
> SELECT member_id,
         window_funnel(INTERVAL '7 days', '', ts,
                       event = 'view', event = 'cart', event = 'order', event = 'pay') AS level
  FROM events GROUP BY member_id;
```"#,
    argument(
        name = "window",
        description = "Window length: whole seconds or an `INTERVAL` (constant)."
    ),
    argument(
        name = "mode",
        description = "`''` or a comma-separated set of `strict_deduplication` (a repeated step stops the search), \
`strict_order` (no other event may come between steps), `strict_increase` (steps need strictly increasing \
timestamps), `strict_once` (one row fills at most one step of a chain), `allow_reentry` (with `strict_order`: \
skip out-of-order steps instead of stopping)."
    ),
    argument(
        name = "ts",
        description = "Event time: a TIMESTAMP of any unit, or a DATE."
    ),
    argument(
        name = "cond1, ..., condN",
        description = "1 to 32 BOOLEAN step conditions, in funnel order."
    )
)]
/// The `window_funnel` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WindowFunnel {
    signature: Signature,
}

impl Default for WindowFunnel {
    fn default() -> Self {
        WindowFunnel {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// The mode flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mode {
    deduplication: bool,
    order: bool,
    increase: bool,
    once: bool,
    reentry: bool,
}

impl Mode {
    fn parse(text: &str) -> Result<Mode> {
        let mut mode = Mode::default();
        for flag in text.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            match flag {
                "strict_deduplication" => mode.deduplication = true,
                "strict_order" => mode.order = true,
                "strict_increase" => mode.increase = true,
                "strict_once" => mode.once = true,
                "allow_reentry" => mode.reentry = true,
                "strict" => {
                    return plan_err!(
                        "{NAME}: mode 'strict' was replaced by 'strict_deduplication'"
                    );
                }
                other => {
                    return plan_err!(
                        "{NAME}: unknown mode flag '{other}'; use strict_deduplication, strict_order, strict_increase, strict_once or allow_reentry"
                    );
                }
            }
        }
        if mode.reentry && !mode.order {
            return plan_err!("{NAME}: mode 'allow_reentry' requires 'strict_order'");
        }
        Ok(mode)
    }
}

/// A parsed funnel: its window, step count and mode.
#[derive(Debug, Clone, Copy)]
struct Funnel {
    window: i64,
    steps: usize,
    mode: Mode,
}

impl Funnel {
    fn new(window: &ScalarValue, mode: &ScalarValue, steps: usize) -> Result<Self> {
        let window = duration_micros(NAME, "window", window)?;
        let mode = Mode::parse(string_constant(NAME, "mode", mode)?)?;
        Ok(Funnel {
            window,
            steps,
            mode,
        })
    }

    fn from_physical(args: &AccumulatorArgs) -> Result<Self> {
        let window = physical_constant(NAME, "window", WINDOW, &args.exprs[0])?;
        let mode = physical_constant(NAME, "mode", MODE, &args.exprs[1])?;
        Funnel::new(&window, &mode, args.exprs.len() - 3)
    }

    fn from_logical(args: &[Expr]) -> Result<Self> {
        let window = logical_constant(NAME, "window", WINDOW, &args[0])?;
        let mode = logical_constant(NAME, "mode", MODE, &args[1])?;
        Funnel::new(&window, &mode, args.len() - 3)
    }

    /// The greedy pass of SPEC.md over entries `(ts, step)` sorted by `(ts, step)`;
    /// `rows` are sorted by ts. Each row yields one entry per true condition (and,
    /// with `strict_order`, a step-0 entry when none holds).
    fn level(&self, rows: &[Event]) -> i64 {
        let n = self.steps;
        let mut first = [0i64; 32];
        let mut last = [0i64; 32];
        let mut filled: u32 = 0;
        let mut started = false;
        let highest = |filled: u32| i64::from(32 - filled.leading_zeros());
        let mut i = 0;
        while i < rows.len() {
            let ts = rows[i].ts;
            let run_end = i + rows[i..].iter().take_while(|r| r.ts == ts).count();
            let run = &rows[i..run_end];
            i = run_end;
            if self.mode.order && run.iter().any(|r| r.mask == 0) && started {
                return highest(filled);
            }
            let union = run.iter().fold(0u32, |a, r| a | r.mask);
            for k in BitIter(union) {
                for _ in run.iter().filter(|r| r.mask & (1 << k) != 0) {
                    if k == 0 {
                        first[0] = ts;
                        last[0] = ts;
                        filled |= 1;
                        started = true;
                    } else if self.mode.deduplication && filled & (1 << k) != 0 {
                        return highest(filled);
                    } else if self.mode.order && started && filled & (1 << (k - 1)) == 0 {
                        if self.mode.reentry {
                            continue;
                        }
                        return i64::from(filled.trailing_ones());
                    } else if filled & (1 << (k - 1)) != 0 {
                        let f = first[k - 1];
                        let mut ok = ts <= f.saturating_add(self.window);
                        if self.mode.increase {
                            ok &= last[k - 1] < ts;
                        }
                        if ok {
                            first[k] = f;
                            last[k] = ts;
                            filled |= 1 << k;
                            if k + 1 == n {
                                return n as i64;
                            }
                        }
                    }
                }
            }
        }
        highest(filled)
    }

    /// `strict_once`: every partial chain is kept per level with the rows it used,
    /// so one row never fills two steps of the same chain. Between runs of equal
    /// timestamps a level keeps only its chain with the latest window start: later
    /// rows are other rows (the rows a chain used no longer matter) at later
    /// timestamps (`strict_increase` holds for every chain), so that chain can
    /// take every extension any other could, and the answer is unchanged.
    fn level_once(&self, rows: &[Event]) -> Result<i64> {
        #[derive(Clone, Copy)]
        struct Chain {
            first: i64,
            last: i64,
            rows: [u32; 32],
        }
        let n = self.steps;
        let mut levels: Vec<Vec<Chain>> = vec![Vec::new(); n];
        let mut started = false;
        let highest = |levels: &[Vec<Chain>]| {
            Ok(levels
                .iter()
                .rposition(|l| !l.is_empty())
                .map_or(0, |p| p as i64 + 1))
        };
        let mut i = 0;
        while i < rows.len() {
            let ts = rows[i].ts;
            let run_start = i;
            let run_end = i + rows[i..].iter().take_while(|r| r.ts == ts).count();
            i = run_end;
            let run = &rows[run_start..run_end];
            if self.mode.order && run.iter().any(|r| r.mask == 0) && started {
                return highest(&levels);
            }
            for level in levels.iter_mut().filter(|l| l.len() > 1) {
                if let Some(latest) = level.iter().max_by_key(|c| c.first).copied() {
                    level.clear();
                    level.push(latest);
                }
            }
            let mut visits = 0usize;
            let union = run.iter().fold(0u32, |a, r| a | r.mask);
            for k in BitIter(union) {
                for (offset, _) in run
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.mask & (1 << k) != 0)
                {
                    let row = (run_start + offset) as u32;
                    if k == 0 {
                        let mut chain = Chain {
                            first: ts,
                            last: ts,
                            rows: [u32::MAX; 32],
                        };
                        chain.rows[0] = row;
                        levels[0].push(chain);
                        started = true;
                    } else if self.mode.deduplication && !levels[k].is_empty() {
                        return highest(&levels);
                    } else if self.mode.order && started && levels[k - 1].is_empty() {
                        if self.mode.reentry {
                            continue;
                        }
                        return Ok(levels.iter().position(Vec::is_empty).map_or(n, |p| p) as i64);
                    } else if !levels[k - 1].is_empty() {
                        let (lower, upper) = levels.split_at_mut(k);
                        let prev = &mut lower[k - 1];
                        let next = &mut upper[0];
                        visits += prev.len();
                        if visits > MAX_CHAIN_VISITS {
                            return exec_err!(
                                "{NAME}: strict_once would follow more than {MAX_CHAIN_VISITS} partial \
                                 funnels among the rows of one group at one timestamp (many rows \
                                 with equal timestamps, each matching several steps); use finer \
                                 timestamps, fewer or more selective conditions, or drop strict_once"
                            );
                        }
                        let mut remaining = prev.len();
                        let mut kept = 0;
                        for r in 0..prev.len() {
                            let chain = prev[r];
                            let in_window = ts <= chain.first.saturating_add(self.window);
                            if !in_window && remaining > 1 {
                                remaining -= 1;
                                continue;
                            }
                            prev[kept] = chain;
                            kept += 1;
                            let fits = in_window
                                && !chain.rows[..k].contains(&row)
                                && (!self.mode.increase || chain.last < ts);
                            if fits {
                                let mut extended = Chain {
                                    first: chain.first,
                                    last: ts,
                                    rows: chain.rows,
                                };
                                extended.rows[k] = row;
                                next.push(extended);
                                if k + 1 == n {
                                    return Ok(n as i64);
                                }
                            }
                        }
                        prev.truncate(kept);
                    }
                }
            }
        }
        highest(&levels)
    }
}

/// The set bits of a mask, lowest first.
struct BitIter(u32);

impl Iterator for BitIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let k = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(k)
    }
}

impl EventsFinish for Funnel {
    type Value = i64;

    fn keep(&self, mask: u32) -> bool {
        mask != 0 || self.mode.order
    }

    fn finish(&self, events: &mut [Event]) -> Result<i64> {
        if events.is_empty() {
            return Ok(0);
        }
        if self.steps == 1 && !self.mode.order {
            return Ok(1);
        }
        if !events.is_sorted_by_key(|e| e.ts) {
            events.sort_unstable_by_key(|e| e.ts);
        }
        if self.mode.once {
            self.level_once(events)
        } else {
            Ok(self.level(events))
        }
    }

    fn output(&self, values: Vec<Option<i64>>) -> ArrayRef {
        Arc::new(Int32Array::from_iter(
            values.into_iter().map(|v| v.map(|v| v as i32)),
        ))
    }
}

impl AggregateUDFImpl for WindowFunnel {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() < 4 {
            return plan_err!(
                "{NAME}: expects (window, mode, ts, cond1[, ..., condN]), got {} arguments",
                arg_types.len()
            );
        }
        if !(arg_types[0].is_integer() || matches!(arg_types[0], DataType::Interval(_))) {
            return plan_err!("{NAME}: window must be {WINDOW}, got {}", arg_types[0]);
        }
        if !matches!(
            arg_types[1],
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return plan_err!("{NAME}: mode must be {MODE}, got {}", arg_types[1]);
        }
        check_time_and_conditions(NAME, &arg_types[TS], &arg_types[TS + 1..], 1)?;
        Ok(DataType::Int32)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(EventAccumulator::new(
            Arc::new(Funnel::from_physical(&args)?),
            TS,
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
        Ok(Box::new(EventGroups::new(
            Arc::new(Funnel::from_physical(&args)?),
            TS,
        )))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the constant arguments while planning, before any row is read.
        Some(Box::new(|function, _| {
            Funnel::from_logical(&function.params.args)?;
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

    fn funnel(window_s: i64, mode: &str, steps: usize) -> Funnel {
        Funnel {
            window: window_s * 1_000_000,
            steps,
            mode: Mode::parse(mode).unwrap_or_default(),
        }
    }

    fn ev(ts_s: i64, steps: &[usize]) -> Event {
        Event {
            ts: ts_s * 1_000_000,
            mask: steps.iter().fold(0, |m, s| m | 1 << (s - 1)),
        }
    }

    fn run(f: &Funnel, events: &[Event]) -> i64 {
        f.finish(&mut events.to_vec()).unwrap_or(-1)
    }

    #[test]
    fn window_is_measured_from_the_chain_start() {
        let f = funnel(10, "", 3);
        assert_eq!(run(&f, &[ev(0, &[1]), ev(5, &[2]), ev(10, &[3])]), 3);
        assert_eq!(run(&f, &[ev(0, &[1]), ev(5, &[2]), ev(11, &[3])]), 2);
        // a later step 1 restarts the chain
        assert_eq!(
            run(&f, &[ev(0, &[1]), ev(8, &[1]), ev(15, &[2]), ev(18, &[3])]),
            3
        );
    }

    #[test]
    fn one_row_fills_several_steps_unless_strict_once() {
        assert_eq!(run(&funnel(10, "", 2), &[ev(0, &[1, 2])]), 2);
        assert_eq!(run(&funnel(10, "strict_once", 2), &[ev(0, &[1, 2])]), 1);
        assert_eq!(
            run(
                &funnel(10, "strict_once", 2),
                &[ev(0, &[1, 2]), ev(0, &[2])]
            ),
            2
        );
    }

    #[test]
    fn strict_once_keeps_one_chain_per_level_between_timestamps() {
        // 120 seconds, each with a row for step 1 and a row for steps 2..6 in
        // turn; step 7 never holds, so every chain is followed to the end.
        // Kept whole, the chains of each level multiply with every second.
        let mut events = Vec::new();
        for t in 0..120 {
            events.push(ev(t, &[1]));
            events.push(ev(t, &[2 + (t as usize % 5)]));
        }
        assert_eq!(run(&funnel(100_000, "strict_once", 7), &events), 6);
        assert_eq!(
            run(&funnel(100_000, "strict_once,strict_increase", 7), &events),
            6
        );
        // the window still counts from each chain's own start: steps 2..6 span 4 s
        assert_eq!(run(&funnel(3, "strict_once", 7), &events), 5);
        assert_eq!(run(&funnel(4, "strict_once", 7), &events), 6);
    }

    #[test]
    fn strict_once_refuses_an_exponential_group() {
        // 20 rows at one timestamp, each matching all 7 steps: 20!/13! chains
        let events = vec![ev(0, &[1, 2, 3, 4, 5, 6, 7]); 20];
        let f = funnel(10, "strict_once", 8);
        let e = f.finish(&mut events.clone()).unwrap_err().to_string();
        assert!(
            e.contains("window_funnel: strict_once") && e.contains("equal timestamps"),
            "{e}"
        );
    }

    #[test]
    fn strict_modes_stop_early() {
        let evs = [ev(0, &[1]), ev(1, &[2]), ev(2, &[2]), ev(3, &[3])];
        assert_eq!(run(&funnel(10, "", 3), &evs), 3);
        assert_eq!(run(&funnel(10, "strict_deduplication", 3), &evs), 2);
        // strict_order: an unrelated row between steps stops the search
        let evs = [ev(0, &[1]), ev(1, &[]), ev(2, &[2])];
        assert_eq!(run(&funnel(10, "strict_order", 2), &evs), 1);
        assert_eq!(run(&funnel(10, "", 2), &evs), 2);
        // strict_order: a step out of order stops, allow_reentry skips it
        let evs = [ev(0, &[1]), ev(1, &[3]), ev(2, &[2]), ev(3, &[3])];
        assert_eq!(run(&funnel(10, "strict_order", 3), &evs), 1);
        assert_eq!(run(&funnel(10, "strict_order,allow_reentry", 3), &evs), 3);
        // strict_increase needs a later timestamp for each step
        assert_eq!(
            run(
                &funnel(10, "strict_increase", 2),
                &[ev(0, &[1]), ev(0, &[2])]
            ),
            1
        );
        assert_eq!(run(&funnel(10, "", 2), &[ev(0, &[1]), ev(0, &[2])]), 2);
    }

    #[test]
    fn modes_are_validated() {
        assert!(Mode::parse("strict").is_err());
        assert!(Mode::parse("allow_reentry").is_err());
        assert!(Mode::parse("strict_orde").is_err());
        assert_eq!(
            Mode::parse(" strict_order , allow_reentry")
                .map(|m| m.reentry)
                .ok(),
            Some(true)
        );
    }

    /// The many-groups accumulator answers the same whether the rows arrive
    /// in group order (its fast path) or interleaved, emitted in two parts.
    #[test]
    fn groups_accumulator_is_order_independent() {
        use datafusion::arrow::array::{Array, AsArray, BooleanArray, TimestampMicrosecondArray};
        use datafusion::arrow::datatypes::Int32Type;
        use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

        // (group, ts seconds, step 1, step 2)
        let rows = [
            (0, 0, true, false),
            (0, 5, false, true),
            (1, 0, true, false),
            (1, 20, false, true),
            (2, 3, false, true),
        ];
        let levels = |order: &[usize]| {
            let mut acc = EventGroups::new(Arc::new(funnel(10, "", 2)), 0);
            for part in order.chunks(2) {
                let values: Vec<ArrayRef> = vec![
                    Arc::new(TimestampMicrosecondArray::from_iter_values(
                        part.iter().map(|&i| rows[i].1 * 1_000_000),
                    )),
                    Arc::new(BooleanArray::from_iter(
                        part.iter().map(|&i| Some(rows[i].2)),
                    )),
                    Arc::new(BooleanArray::from_iter(
                        part.iter().map(|&i| Some(rows[i].3)),
                    )),
                ];
                let groups: Vec<usize> = part.iter().map(|&i| rows[i].0).collect();
                acc.update_batch(&values, &groups, None, 3).unwrap();
            }
            let mut out: Vec<Option<i32>> = Vec::new();
            for emit in [EmitTo::First(2), EmitTo::All] {
                let array = acc.evaluate(emit).unwrap();
                let array = array.as_primitive::<Int32Type>();
                out.extend((0..array.len()).map(|i| array.is_valid(i).then(|| array.value(i))));
            }
            out
        };
        let expected = vec![Some(2), Some(1), Some(0)];
        assert_eq!(levels(&[0, 1, 2, 3, 4]), expected);
        assert_eq!(levels(&[2, 0, 4, 3, 1]), expected);
    }
}
