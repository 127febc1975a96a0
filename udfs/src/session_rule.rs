//! The one rule that cuts a member's events into sessions, shared by the
//! window function `session_number` and the aggregate `sessions`: a session
//! begins at the first event, and at every event more than `gap` after the
//! one before it, or at least `max_length` after the session's first event.
//! Equal timestamps never split a session.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};

use crate::args::{duration_micros, is_time};

/// How a session's gap or maximum length is described in errors.
pub(crate) const DURATION: &str = "a constant positive integer (seconds) or INTERVAL";

/// Where sessions split, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionRule {
    gap: i64,
    max_length: Option<i64>,
}

/// A session being cut: its first and latest timestamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Open {
    pub(crate) start: i64,
    pub(crate) last: i64,
}

impl SessionRule {
    /// The rule from the constant arguments after `ts` (`gap [, max_length]`),
    /// or a planning error naming the argument.
    pub(crate) fn new(function: &str, constants: &[Option<ScalarValue>]) -> Result<Self> {
        let positive = |what: &str, value: &Option<ScalarValue>| -> Result<i64> {
            let Some(value) = value else {
                return plan_err!("{function}: {what} must be {DURATION}");
            };
            if value.is_null() {
                return plan_err!("{function}: {what} must be {DURATION}, got NULL");
            }
            match duration_micros(function, what, value)? {
                0 => plan_err!("{function}: {what} must be positive, got {value}"),
                micros => Ok(micros),
            }
        };
        match constants {
            [gap] => Ok(SessionRule {
                gap: positive("gap", gap)?,
                max_length: None,
            }),
            [gap, max_length] => Ok(SessionRule {
                gap: positive("gap", gap)?,
                max_length: Some(positive("max_length", max_length)?),
            }),
            _ => plan_err!(
                "{function}: expects (ts, gap[, max_length]), got {} arguments",
                constants.len() + 1
            ),
        }
    }

    /// Checks the argument types `(ts, gap [, max_length])`.
    pub(crate) fn check_types(function: &str, types: &[DataType]) -> Result<()> {
        if !(2..=3).contains(&types.len()) {
            return plan_err!(
                "{function}: expects (ts, gap[, max_length]), got {} arguments",
                types.len()
            );
        }
        if !is_time(&types[0]) {
            return plan_err!(
                "{function}: ts must be a TIMESTAMP or DATE, got {}",
                types[0]
            );
        }
        for (what, t) in ["gap", "max_length"].iter().zip(&types[1..]) {
            if !(t.is_integer() || matches!(t, DataType::Interval(_))) {
                return plan_err!("{function}: {what} must be {DURATION}, got {t}");
            }
        }
        Ok(())
    }

    /// Whether an event at `ts` (not before `open.last`) begins a new session.
    #[inline(always)]
    pub(crate) fn splits(&self, open: &Open, ts: i64) -> bool {
        // `&` and `|`, not `&&` and `||`: no branch on the data
        (ts > open.last)
            & ((ts - open.last > self.gap)
                | self
                    .max_length
                    .is_some_and(|max| ts.saturating_sub(open.start) >= max))
    }

    /// Calls `session(start, end, events)` for each session of the `len`
    /// sorted timestamps `ts(0..len)`, in order; `starts` is scratch space.
    pub(crate) fn cut(
        &self,
        len: usize,
        ts: impl Fn(usize) -> i64,
        starts: &mut Vec<usize>,
        mut session: impl FnMut(i64, i64, i64),
    ) {
        if len == 0 {
            return;
        }
        // Each session's first index, without a branch per event (where
        // sessions split is data, which a branch predictor misses): every
        // index is written, and the count moves past it where a session begins.
        // Grown, never cleared: every index read below is written first.
        if starts.len() < len {
            starts.resize(len, 0);
        }
        starts[0] = 0;
        let (mut open, mut n) = (
            Open {
                start: ts(0),
                last: ts(0),
            },
            1,
        );
        for i in 1..len {
            let t = ts(i);
            let split = self.splits(&open, t);
            starts[n] = i;
            n += usize::from(split);
            open.start = if split { t } else { open.start };
            open.last = t;
        }
        for k in 0..n {
            let next = if k + 1 < n { starts[k + 1] } else { len };
            session(ts(starts[k]), ts(next - 1), (next - starts[k]) as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    impl SessionRule {
        fn sessions<const N: usize>(&self, sorted: [i64; N]) -> Vec<(i64, i64, i64)> {
            let mut sessions = Vec::new();
            self.cut(
                N,
                |i| sorted[i],
                &mut Vec::new(),
                |start, end, events| sessions.push((start, end, events)),
            );
            sessions
        }
    }

    fn rule(gap: i64, max_length: Option<i64>) -> SessionRule {
        let mut constants = vec![Some(ScalarValue::Int64(Some(gap)))];
        constants.extend(max_length.map(|m| Some(ScalarValue::Int64(Some(m)))));
        SessionRule::new("sessions", &constants).unwrap()
    }

    #[test]
    fn scratch_left_by_a_longer_member_does_not_leak_into_the_next() {
        let r = rule(10, None);
        let mut scratch = Vec::new();
        let mut cut = |ts: &[i64]| {
            let mut sessions = Vec::new();
            r.cut(
                ts.len(),
                |i| ts[i],
                &mut scratch,
                |s, e, n| sessions.push((s, e, n)),
            );
            sessions
        };
        let long: Vec<i64> = (0..50).map(|i| i * 11 * S).collect();
        assert_eq!(cut(&long).len(), 50);
        assert_eq!(
            cut(&[3 * S, 5 * S, 30 * S]),
            vec![(3 * S, 5 * S, 2), (30 * S, 30 * S, 1)]
        );
    }

    #[test]
    fn a_gap_exactly_equal_keeps_the_session_and_one_more_microsecond_splits_it() {
        let r = rule(1800, None);
        assert_eq!(
            r.sessions([0, 1800 * S, 3600 * S + 1]),
            vec![(0, 1800 * S, 2), (3600 * S + 1, 3600 * S + 1, 1)]
        );
    }

    #[test]
    fn max_length_splits_at_exactly_the_length_but_equal_timestamps_never_split() {
        let r = rule(1800, Some(3600));
        // 0, 1200, 2400 in one; 3600 is exactly max_length after the start
        let ts = [0, 1200 * S, 2400 * S, 3600 * S, 3600 * S, 3601 * S];
        assert_eq!(
            r.sessions(ts),
            vec![(0, 2400 * S, 3), (3600 * S, 3601 * S, 3)]
        );
        // ties at a split point stay together
        let r = rule(10, Some(10));
        assert_eq!(r.sessions([5 * S, 5 * S, 5 * S]), vec![(5 * S, 5 * S, 3)]);
        assert_eq!(r.sessions([]), vec![]);
    }

    #[test]
    fn gap_and_max_length_must_be_positive_constants() {
        let e = |constants: &[Option<ScalarValue>]| {
            SessionRule::new("session_number", constants)
                .unwrap_err()
                .to_string()
        };
        assert!(e(&[Some(ScalarValue::Int64(Some(0)))]).contains("gap must be positive"));
        let negative = e(&[
            Some(ScalarValue::Int64(Some(60))),
            Some(ScalarValue::Int64(Some(-1))),
        ]);
        assert!(
            negative.contains("max_length must not be negative"),
            "{negative}"
        );
        assert!(e(&[None]).contains("gap must be a constant positive integer"));
        assert!(e(&[Some(ScalarValue::Int64(None))]).contains("got NULL"));
        assert!(e(&[]).contains("expects (ts, gap[, max_length]), got 1 arguments"));
    }
}
