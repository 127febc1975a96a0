//! Patterns of `sequence_match` / `sequence_count` (ClickHouse syntax): parsing,
//! the NFA matcher for patterns without time conditions, and the backtracking
//! matcher for the rest.

use datafusion::common::{Result, exec_err, plan_err};

use crate::args::MICROS;
use crate::event_list::Event;

/// Most matcher steps one match attempt may take before it is refused as too slow.
const MAX_STEPS: usize = 1_000_000;

/// One pattern element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// `(?N)`: an event with condition N (bit N-1).
    Event(u32),
    /// `.`: any one event.
    Any,
    /// `.*`: zero or more events.
    Star,
    /// `(?t<=S)` … `(?t==S)`, S in microseconds.
    Time(TimeOp, i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeOp {
    Le,
    Lt,
    Ge,
    Gt,
    Eq,
}

/// An NFA state: whether it loops on any event (`.*`), and its outgoing transition.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    star: bool,
    next: Option<Option<u32>>,
}

/// A parsed pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    actions: Vec<Action>,
    states: Vec<State>,
    has_time: bool,
    /// Conditions the pattern names, as a bitmask.
    pub(crate) named: u32,
}

impl Pattern {
    /// Parses `text` for a function with `conditions` conditions.
    pub(crate) fn parse(function: &str, text: &str, conditions: usize) -> Result<Self> {
        let mut p = Pattern {
            actions: vec![Action::Star],
            states: vec![State {
                star: true,
                next: None,
            }],
            has_time: false,
            named: 0,
        };
        let bytes = text.as_bytes();
        let mut pos = 0;
        let error = |pos: usize, what: &str| {
            plan_err!(
                "{function}: pattern '{text}': {what} at position {pos} ('{}')",
                &text[pos.min(text.len())..]
            )
        };
        let number = |pos: &mut usize| -> Option<u64> {
            let start = *pos;
            while *pos < bytes.len() && bytes[*pos].is_ascii_digit() {
                *pos += 1;
            }
            text[start..*pos].parse().ok()
        };
        while pos < bytes.len() {
            if text[pos..].starts_with("(?t") {
                pos += 3;
                let op = [
                    ("<=", TimeOp::Le),
                    ("<", TimeOp::Lt),
                    (">=", TimeOp::Ge),
                    (">", TimeOp::Gt),
                    ("==", TimeOp::Eq),
                ]
                .into_iter()
                .find(|(s, _)| text[pos..].starts_with(s));
                let Some((s, op)) = op else {
                    return error(pos, "unknown time condition");
                };
                pos += s.len();
                let Some(seconds) = number(&mut pos) else {
                    return error(pos, "expected a whole number of seconds");
                };
                let Some(micros) = i64::try_from(seconds)
                    .ok()
                    .and_then(|s| s.checked_mul(MICROS))
                else {
                    return error(pos, "time condition too large");
                };
                if !matches!(
                    p.actions.last(),
                    Some(Action::Event(_) | Action::Any | Action::Star)
                ) {
                    return error(pos, "a time condition must follow (?N), . or .*");
                }
                p.has_time = true;
                p.actions.push(Action::Time(op, micros));
            } else if text[pos..].starts_with("(?") {
                pos += 2;
                let Some(n) = number(&mut pos) else {
                    return error(pos, "expected a condition number");
                };
                if n == 0 || n as usize > conditions {
                    return plan_err!(
                        "{function}: pattern '{text}': (?{n}) names no condition; use (?1) to (?{conditions})"
                    );
                }
                let bit = (n - 1) as u32;
                p.actions.push(Action::Event(bit));
                p.named |= 1 << bit;
                if let Some(last) = p.states.last_mut() {
                    last.next = Some(Some(bit));
                }
                p.states.push(State::default());
            } else if text[pos..].starts_with(".*") {
                pos += 2;
                p.actions.push(Action::Star);
                if let Some(last) = p.states.last_mut() {
                    last.star = true;
                }
                continue;
            } else if text[pos..].starts_with('.') {
                pos += 1;
                p.actions.push(Action::Any);
                if let Some(last) = p.states.last_mut() {
                    last.next = Some(None);
                }
                p.states.push(State::default());
                continue;
            } else {
                return error(pos, "unexpected symbol");
            }
            if !text[pos..].starts_with(')') {
                return error(pos, "expected ')'");
            }
            pos += 1;
        }
        Ok(p)
    }

    /// Whether every condition the pattern names occurs in `events`.
    pub(crate) fn could_match(&self, events: &[Event]) -> bool {
        let seen = events.iter().fold(0u32, |a, e| a | e.mask);
        seen & self.named == self.named
    }

    /// Sorts events by time, ties by their lowest then highest true condition.
    pub(crate) fn sort(events: &mut [Event]) {
        let key = |e: &Event| (e.ts, e.mask.trailing_zeros(), 31 - e.mask.leading_zeros());
        if !events.is_sorted_by_key(key) {
            events.sort_unstable_by_key(key);
        }
    }

    /// `sequence_match` on sorted events.
    pub(crate) fn matches(&self, events: &[Event]) -> Result<bool> {
        if !self.could_match(events) {
            return Ok(false);
        }
        if self.has_time {
            let mut start = 0;
            self.backtrack(events, &mut start)
        } else {
            Ok(self.nfa(events))
        }
    }

    /// `sequence_count` on sorted events: non-overlapping matches.
    pub(crate) fn count(&self, events: &[Event]) -> Result<i64> {
        if !self.could_match(events) {
            return Ok(0);
        }
        let mut start = 0;
        let mut count = 0;
        while start < events.len() && self.backtrack(events, &mut start)? {
            count += 1;
        }
        Ok(count)
    }

    /// Set-of-states simulation; linear in events for a fixed pattern.
    fn nfa(&self, events: &[Event]) -> bool {
        let n = self.states.len();
        let mut active = vec![false; n];
        let mut next = vec![false; n];
        active[0] = true;
        let mut any_active = true;
        for e in events {
            if !any_active || active[n - 1] {
                break;
            }
            next.iter_mut().for_each(|s| *s = false);
            any_active = false;
            for (i, state) in self.states.iter().enumerate() {
                if !active[i] {
                    continue;
                }
                match state.next {
                    Some(None) => {
                        next[i + 1] = true;
                        any_active = true;
                    }
                    Some(Some(bit)) if e.mask & (1 << bit) != 0 => {
                        next[i + 1] = true;
                        any_active = true;
                    }
                    _ => {}
                }
                if state.star {
                    next[i] = true;
                    any_active = true;
                }
            }
            std::mem::swap(&mut active, &mut next);
        }
        active[n - 1]
    }

    /// One backtracking match attempt from `*start`; leaves `*start` after the
    /// last event the attempt consumed (one further if it consumed none).
    fn backtrack(&self, events: &[Event], start: &mut usize) -> Result<bool> {
        let actions = &self.actions;
        let n = events.len();
        let begin = *start;
        let (mut a, mut e, mut base) = (0usize, *start, *start);
        let mut stack: Vec<(usize, usize, usize)> = Vec::new();
        let pop = |stack: &mut Vec<(usize, usize, usize)>,
                   a: &mut usize,
                   e: &mut usize,
                   base: &mut usize| {
            while let Some((sa, se, sb)) = stack.pop() {
                (*a, *e, *base) = (sa, se + 1, sb);
                if *e != n {
                    return true;
                }
            }
            false
        };
        let mut steps = 0;
        while a < actions.len() && e < n {
            match actions[a] {
                Action::Event(bit) => {
                    if events[e].mask & (1 << bit) != 0 {
                        base = e;
                        a += 1;
                        e += 1;
                    } else if !pop(&mut stack, &mut a, &mut e, &mut base) {
                        break;
                    }
                }
                Action::Any => {
                    base = e;
                    a += 1;
                    e += 1;
                }
                Action::Star => {
                    stack.push((a, e, base));
                    base = e;
                    a += 1;
                }
                Action::Time(op, d) => {
                    let (t, limit) = (events[e].ts, events[base].ts.saturating_add(d));
                    let holds = match op {
                        TimeOp::Le => t <= limit,
                        TimeOp::Lt => t < limit,
                        TimeOp::Ge => t >= limit,
                        TimeOp::Gt => t > limit,
                        TimeOp::Eq => t == limit,
                    };
                    if holds {
                        stack.push((a, e, base));
                        base = e;
                        a += 1;
                    } else if matches!(op, TimeOp::Le | TimeOp::Lt) {
                        if !pop(&mut stack, &mut a, &mut e, &mut base) {
                            break;
                        }
                    } else {
                        e += 1;
                        if e == n && !pop(&mut stack, &mut a, &mut e, &mut base) {
                            break;
                        }
                    }
                }
            }
            steps += 1;
            if steps > MAX_STEPS {
                return exec_err!(
                    "sequence pattern too slow: more than {MAX_STEPS} matcher steps for one group; simplify the pattern or pre-filter the rows"
                );
            }
        }
        while a < actions.len()
            && matches!(
                actions[a],
                Action::Star
                    | Action::Time(TimeOp::Le | TimeOp::Lt, _)
                    | Action::Time(TimeOp::Ge, 0)
            )
        {
            a += 1;
        }
        *start = if e == begin { e + 1 } else { e };
        Ok(a == actions.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_s: i64, conds: &[u32]) -> Event {
        Event {
            ts: ts_s * MICROS,
            mask: conds.iter().fold(0, |m, c| m | 1 << (c - 1)),
        }
    }

    fn pattern(text: &str) -> Result<Pattern> {
        Pattern::parse("t", text, 3)
    }

    #[test]
    fn plain_patterns_need_adjacent_events() -> Result<()> {
        let events = [ev(0, &[1]), ev(1, &[3]), ev(2, &[2])];
        assert!(!pattern("(?1)(?2)")?.matches(&events)?);
        assert!(pattern("(?1).*(?2)")?.matches(&events)?);
        assert!(pattern("(?1).(?2)")?.matches(&events)?);
        assert!(pattern("")?.matches(&events)?);
        Ok(())
    }

    #[test]
    fn time_conditions_compare_with_the_previous_event() -> Result<()> {
        let events = [ev(0, &[1]), ev(5, &[3]), ev(20, &[2])];
        assert!(pattern("(?1).*(?2)(?t<=20)")?.matches(&events)?);
        assert!(pattern("(?1)(?t>=10)(?2)")?.matches(&events)?);
        assert!(!pattern("(?1)(?t<10).*(?2)")?.matches(&events[..1])?);
        assert_eq!(pattern("(?1).*(?2)")?.count(&events)?, 1);
        let twice = [ev(0, &[1]), ev(1, &[2]), ev(2, &[1]), ev(3, &[2])];
        assert_eq!(pattern("(?1)(?2)")?.count(&twice)?, 2);
        assert_eq!(pattern("(?1).*(?2)")?.count(&twice)?, 2);
        Ok(())
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for bad in [
            "(?0)",
            "(?4)",
            "(?1",
            "(?x)",
            "(?1) (?2)",
            "(?t<)",
            "(?t!5)",
            "(?1)(?t<=1)(?t<=2)",
            "x",
        ] {
            assert!(Pattern::parse("t", bad, 3).is_err(), "{bad}");
        }
    }
}

/// What a sequence aggregate returns per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceKind {
    /// `sequence_match`: BOOLEAN.
    Match,
    /// `sequence_count`: BIGINT.
    Count,
}

/// Position of `ts` among a sequence aggregate's arguments.
pub(crate) const SEQUENCE_TS: usize = 1;
const PATTERN: &str = "a constant string";

/// A sequence aggregate's per-group computation.
#[derive(Debug)]
pub(crate) struct SequenceFinish {
    kind: SequenceKind,
    pattern: Pattern,
}

impl SequenceFinish {
    fn new(
        function: &str,
        kind: SequenceKind,
        pattern: &datafusion::common::ScalarValue,
        conditions: usize,
    ) -> Result<Self> {
        let text = crate::args::string_constant(function, "pattern", pattern)?;
        Ok(SequenceFinish {
            kind,
            pattern: Pattern::parse(function, text, conditions)?,
        })
    }

    /// From the physical arguments `(pattern, ts, cond…)`.
    pub(crate) fn from_physical(
        function: &str,
        kind: SequenceKind,
        args: &datafusion::logical_expr::function::AccumulatorArgs,
    ) -> Result<Self> {
        let pattern = crate::args::physical_constant(function, "pattern", PATTERN, &args.exprs[0])?;
        Self::new(function, kind, &pattern, args.exprs.len() - 2)
    }

    /// Checks the logical arguments while planning.
    pub(crate) fn check_logical(
        function: &str,
        kind: SequenceKind,
        args: &[datafusion::logical_expr::Expr],
    ) -> Result<()> {
        let pattern = crate::args::logical_constant(function, "pattern", PATTERN, &args[0])?;
        Self::new(function, kind, &pattern, args.len() - 2).map(|_| ())
    }

    /// The return type after checking the argument types.
    pub(crate) fn return_type(
        function: &str,
        kind: SequenceKind,
        arg_types: &[datafusion::arrow::datatypes::DataType],
    ) -> Result<datafusion::arrow::datatypes::DataType> {
        use datafusion::arrow::datatypes::DataType;
        if arg_types.len() < 3 {
            return plan_err!(
                "{function}: expects (pattern, ts, cond1, cond2[, ..., condN]), got {} arguments",
                arg_types.len()
            );
        }
        if !matches!(
            arg_types[0],
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return plan_err!(
                "{function}: pattern must be {PATTERN}, got {}",
                arg_types[0]
            );
        }
        crate::args::check_time_and_conditions(
            function,
            &arg_types[SEQUENCE_TS],
            &arg_types[SEQUENCE_TS + 1..],
            2,
        )?;
        Ok(match kind {
            SequenceKind::Match => DataType::Boolean,
            SequenceKind::Count => DataType::Int64,
        })
    }
}

impl crate::event_list::EventsFinish for SequenceFinish {
    type Output = Vec<Option<i64>>;

    fn keep(&self, mask: u32) -> bool {
        mask != 0
    }

    fn finish(&self, events: &mut [Event], out: &mut Self::Output) -> Result<()> {
        Pattern::sort(events);
        out.push(Some(match self.kind {
            SequenceKind::Match => self.pattern.matches(events).map(i64::from)?,
            SequenceKind::Count => self.pattern.count(events)?,
        }));
        Ok(())
    }

    fn unseen(&self, out: &mut Self::Output) {
        out.push(None);
    }

    fn output(&self, values: Self::Output) -> datafusion::arrow::array::ArrayRef {
        use std::sync::Arc;

        use datafusion::arrow::array::{BooleanArray, Int64Array};
        match self.kind {
            SequenceKind::Match => Arc::new(BooleanArray::from_iter(
                values.into_iter().map(|v| v.map(|v| v != 0)),
            )),
            SequenceKind::Count => Arc::new(Int64Array::from(values)),
        }
    }
}
