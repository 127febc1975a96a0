//! When things happen: the data's time window, with a weekly rhythm, a daily
//! rhythm and the retail peaks (618 in June, 11.11 in November, the weeks
//! before Chinese New Year).

use chrono::{Datelike, NaiveDate, Weekday};

use crate::rng::{Rng, cumulative};

/// Microseconds in one second.
pub(crate) const SECOND: i64 = 1_000_000;
/// Microseconds in one day.
pub(crate) const DAY: i64 = 86_400 * SECOND;
/// Days of events before the end date.
pub(crate) const EVENT_DAYS: i64 = 365;
/// Days of registrations before the end date.
pub(crate) const REGISTER_DAYS: i64 = 3 * 365;

/// Chinese New Year's day for the years the generator is likely to be asked for.
const NEW_YEARS: [(i32, u32, u32); 8] = [
    (2023, 1, 22),
    (2024, 2, 10),
    (2025, 1, 29),
    (2026, 2, 17),
    (2027, 2, 6),
    (2028, 1, 26),
    (2029, 2, 13),
    (2030, 2, 3),
];

/// The event window and its activity weights.
#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    /// First microsecond of the event window (inclusive).
    pub(crate) start: i64,
    /// End of the data (exclusive): midnight of the end date.
    pub(crate) end: i64,
    /// Running sum of per-day activity weights over the window.
    day_cumulative: Vec<f64>,
    /// Running sum of per-hour activity weights over a day.
    hour_cumulative: Vec<f64>,
    /// Per-day weight, for "is this a festival day".
    day_weight: Vec<f64>,
}

impl Calendar {
    /// The window of [`EVENT_DAYS`] days ending at midnight of `end_date`.
    pub(crate) fn new(end_date: NaiveDate) -> Self {
        let end_days = end_date
            .signed_duration_since(NaiveDate::default())
            .num_days();
        let end = end_days * DAY;
        let start = end - EVENT_DAYS * DAY;
        let first = end_date - chrono::Duration::days(EVENT_DAYS);
        let day_weight: Vec<f64> = (0..EVENT_DAYS)
            .map(|d| day_weight(first + chrono::Duration::days(d)))
            .collect();
        let hours = [
            0.6, 0.3, 0.15, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 1.7, 1.8, 1.9, 2.0, 1.8, 1.6, 1.6, 1.7,
            1.8, 1.9, 2.2, 2.6, 2.8, 2.4, 1.4,
        ];
        Calendar {
            start,
            end,
            day_cumulative: cumulative(&day_weight),
            hour_cumulative: cumulative(&hours),
            day_weight,
        }
    }

    /// A timestamp in `[from, to)` (clamped to the window), following the
    /// calendar's day and hour weights. `None` if the range is empty.
    pub(crate) fn sample(&self, rng: &mut Rng, from: i64, to: i64) -> Option<i64> {
        let from = from.max(self.start);
        let to = to.min(self.end);
        if from >= to {
            return None;
        }
        let first_day = ((from - self.start) / DAY) as usize;
        let last_day = ((to - 1 - self.start) / DAY) as usize;
        let below = |d: usize| {
            if d == 0 {
                0.0
            } else {
                self.day_cumulative[d - 1]
            }
        };
        let (lo, hi) = (below(first_day), self.day_cumulative[last_day]);
        let x = lo + rng.f64() * (hi - lo);
        let day = self.day_cumulative[first_day..=last_day]
            .partition_point(|&c| c <= x)
            .min(last_day - first_day)
            + first_day;
        let hour = rng.weighted(&self.hour_cumulative) as i64;
        let ts =
            self.start + day as i64 * DAY + hour * 3600 * SECOND + rng.below(3600) as i64 * SECOND;
        Some(ts.clamp(from, to - 1))
    }

    /// Whether `ts` falls on a festival peak day.
    pub(crate) fn is_festival(&self, ts: i64) -> bool {
        let d = (ts - self.start) / DAY;
        (0..EVENT_DAYS).contains(&d) && self.day_weight[d as usize] >= 2.0
    }

    /// The campaign running around `ts` (1..=200 over the window).
    pub(crate) fn campaign(&self, rng: &mut Rng, ts: i64) -> i32 {
        let d = ((ts - self.start) / DAY).clamp(0, EVENT_DAYS - 1);
        (1 + d * 199 / (EVENT_DAYS - 1) + rng.below(2) as i64).min(200) as i32
    }
}

/// Relative activity on a calendar day.
fn day_weight(date: NaiveDate) -> f64 {
    let mut w = match date.weekday() {
        Weekday::Sat | Weekday::Sun => 1.3,
        Weekday::Fri => 1.1,
        _ => 1.0,
    };
    let (m, d) = (date.month(), date.day());
    if m == 6 && d <= 18 {
        w *= 1.0 + 2.0 * d as f64 / 18.0; // 618 ramps up to the 18th
    }
    if m == 11 && d <= 11 {
        w *= 1.0 + 4.0 * d as f64 / 11.0; // 11.11 ramps up to the 11th
    }
    if let Some(&(y, nm, nd)) = NEW_YEARS.iter().find(|(y, _, _)| *y == date.year())
        && let Some(new_year) = NaiveDate::from_ymd_opt(y, nm, nd)
    {
        let before = new_year.signed_duration_since(date).num_days();
        if (1..=21).contains(&before) {
            w *= 1.8; // new-year shopping
        } else if (-6..=0).contains(&before) {
            w *= 0.5; // the holiday itself: logistics stop
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_stay_inside_the_asked_range() {
        let cal = Calendar::new(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        let mut rng = Rng::new(1, 2, 3);
        for _ in 0..10_000 {
            let ts = cal.sample(&mut rng, cal.start, cal.end).unwrap();
            assert!(cal.start <= ts && ts < cal.end);
            let from = cal.start + 100 * DAY + 5;
            let ts = cal.sample(&mut rng, from, from + DAY / 2).unwrap();
            assert!(from <= ts && ts < from + DAY / 2);
        }
        assert!(cal.sample(&mut rng, cal.end, cal.end + DAY).is_none());
    }

    #[test]
    fn singles_day_outweighs_an_ordinary_tuesday() {
        let eleven = day_weight(NaiveDate::from_ymd_opt(2026, 11, 11).unwrap());
        let tuesday = day_weight(NaiveDate::from_ymd_opt(2026, 9, 15).unwrap());
        assert!(eleven > 4.0 * tuesday);
    }
}
