//! The funnel of `window_funnel` and its variants (SPEC.md): window, mode
//! flags, exclusion pairs, and the greedy pass over a group's events that
//! finds the level reached and the rows of the chain that first reached it.

use datafusion::common::{Result, ScalarValue, exec_err, plan_err};

use crate::args::{MAX_CONDITIONS, duration_micros, string_constant};
use crate::event_list::Event;

/// Most partial chains `strict_once` may visit within one run of equal
/// timestamps of a group before the group is refused as too complex: inside
/// such a run every assignment of its rows to steps is a chain of its own,
/// so many tied rows matching several steps each grow exponentially.
const MAX_CHAIN_VISITS: usize = 250_000;
/// How the window is described in errors.
pub(crate) const WINDOW: &str = "a constant non-negative integer (seconds) or INTERVAL";
/// How the mode is described in errors.
pub(crate) const MODE: &str = "a constant string of mode flags";
/// How the exclusion pairs are described in errors.
pub(crate) const PAIRS: &str =
    "a constant string 'i-j,i-j,…' (one pair of steps per exclusion condition)";
/// No node: a chain's first step has no parent.
const NONE: u32 = u32::MAX;

/// The mode flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Mode {
    deduplication: bool,
    pub(crate) order: bool,
    increase: bool,
    once: bool,
    reentry: bool,
}

impl Mode {
    pub(crate) fn parse(function: &str, text: &str) -> Result<Mode> {
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
                        "{function}: mode 'strict' was replaced by 'strict_deduplication'"
                    );
                }
                other => {
                    return plan_err!(
                        "{function}: unknown mode flag '{other}'; use strict_deduplication, strict_order, strict_increase, strict_once or allow_reentry"
                    );
                }
            }
        }
        if mode.reentry && !mode.order {
            return plan_err!("{function}: mode 'allow_reentry' requires 'strict_order'");
        }
        Ok(mode)
    }
}

/// "A row of exclusion condition `m` between step `from` and step `to`
/// (0-based) voids the chain."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exclusion {
    from: usize,
    to: usize,
}

/// A parsed funnel. Its events' mask has the `steps` conditions in its low
/// bits and one bit per exclusion above them, in argument order.
#[derive(Debug, Clone)]
pub(crate) struct Funnel {
    /// The function's name, for errors.
    function: &'static str,
    window: i64,
    steps: usize,
    mode: Mode,
    exclusions: Vec<Exclusion>,
}

/// The level a group reached, and the rows (indices into its sorted events)
/// that filled steps `1..=level` of the chain that first reached it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reached {
    pub(crate) level: usize,
    pub(crate) chain: [u32; MAX_CONDITIONS],
}

/// A step of a chain in [`Funnel::greedy`]: its row and the node of the step before.
#[derive(Debug, Clone, Copy)]
struct Node {
    row: u32,
    parent: u32,
}

/// Buffers one pass reuses from the group before.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    nodes: Vec<Node>,
    /// Per exclusion, the timestamps of its rows, ascending.
    excluded: Vec<Vec<i64>>,
}

/// A partial chain of `strict_once`.
#[derive(Debug, Clone, Copy)]
struct Chain {
    first: i64,
    last: i64,
    rows: [u32; MAX_CONDITIONS],
}

impl Funnel {
    /// From the constant arguments; `conditions` counts the steps and the exclusions.
    pub(crate) fn new(
        function: &'static str,
        window: &ScalarValue,
        mode: &ScalarValue,
        pairs: Option<&ScalarValue>,
        conditions: usize,
    ) -> Result<Self> {
        let window = duration_micros(function, "window", window)?;
        let mode = Mode::parse(function, string_constant(function, "mode", mode)?)?;
        let pairs = match pairs {
            Some(p) => string_constant(function, "pairs", p)?,
            None => "",
        };
        let pairs: Vec<&str> = pairs
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let Some(steps) = conditions.checked_sub(pairs.len()).filter(|s| *s > 0) else {
            return plan_err!(
                "{function}: {} exclusion pairs need {} exclusion conditions after at least one step \
                 condition, got {conditions} conditions",
                pairs.len(),
                pairs.len()
            );
        };
        let mut exclusions = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let parsed = pair.split_once('-').and_then(|(i, j)| {
                Some((
                    i.trim().parse::<usize>().ok()?,
                    j.trim().parse::<usize>().ok()?,
                ))
            });
            match parsed {
                Some((i, j)) if 1 <= i && i < j && j <= steps => exclusions.push(Exclusion {
                    from: i - 1,
                    to: j - 1,
                }),
                _ => {
                    return plan_err!(
                        "{function}: pairs must be {PAIRS} with 1 <= i < j <= {steps} (the steps), got '{pair}'"
                    );
                }
            }
        }
        Ok(Funnel {
            function,
            window,
            steps,
            mode,
            exclusions,
        })
    }

    /// Whether a usable row with these conditions takes part in the pass.
    pub(crate) fn keep(&self, mask: u32) -> bool {
        mask != 0 || self.mode.order
    }

    /// The greedy pass of SPEC.md over `rows` sorted by ts (each row yields one
    /// entry per true step condition and, with `strict_order`, a step-0 entry
    /// when none holds). With `CHAIN`, [`Reached::chain`] names the rows of the
    /// chain that first reached the level; without, only the level is set.
    pub(crate) fn pass<const CHAIN: bool>(
        &self,
        rows: &[Event],
        scratch: &mut Scratch,
    ) -> Result<Reached> {
        let mut reached = Reached {
            level: 0,
            chain: [0; MAX_CONDITIONS],
        };
        if rows.is_empty() {
            return Ok(reached);
        }
        if !CHAIN && !self.exclusions.is_empty() {
            // the exclusions need the chains' step times
            return self.pass::<true>(rows, scratch);
        }
        if !CHAIN && self.steps == 1 && !self.mode.order {
            reached.level = 1;
            return Ok(reached);
        }
        scratch
            .excluded
            .resize_with(self.exclusions.len(), Vec::new);
        for (m, times) in scratch.excluded.iter_mut().enumerate() {
            let bit = 1u32 << (self.steps + m);
            times.clear();
            times.extend(rows.iter().filter(|r| r.mask & bit != 0).map(|r| r.ts));
        }
        if self.mode.once {
            self.once::<CHAIN>(rows, scratch, reached)
        } else {
            self.greedy::<CHAIN>(rows, scratch, reached)
        }
    }

    /// The mask of the step conditions.
    fn step_bits(&self) -> u32 {
        u32::MAX >> (32 - self.steps)
    }

    /// Whether a chain whose steps' times are `step_ts(i)` would cross an
    /// exclusion row if step `to` were filled at `ts`.
    fn crosses(
        &self,
        to: usize,
        ts: i64,
        excluded: &[Vec<i64>],
        step_ts: impl Fn(usize) -> i64,
    ) -> bool {
        self.exclusions
            .iter()
            .zip(excluded)
            .filter(|(e, _)| e.to == to)
            .any(|(e, times)| between(times, step_ts(e.from), ts))
    }

    /// Without `strict_once`: one chain per slot, a step-i entry extends the chain of slot i−1.
    fn greedy<const CHAIN: bool>(
        &self,
        rows: &[Event],
        scratch: &mut Scratch,
        mut reached: Reached,
    ) -> Result<Reached> {
        let n = self.steps;
        let steps = self.step_bits();
        let mut first = [0i64; MAX_CONDITIONS];
        let mut last = [0i64; MAX_CONDITIONS];
        // CHAIN: slot k's chain ends at node[k] of scratch.nodes
        let mut node = [NONE; MAX_CONDITIONS];
        let mut best = NONE;
        let nodes = &mut scratch.nodes;
        nodes.clear();
        let mut filled: u32 = 0;
        let mut started = false;
        'runs: for (run_start, run) in runs(rows) {
            let ts = run[0].ts;
            if self.mode.order && started && run.iter().any(|r| r.mask & steps == 0) {
                break;
            }
            for (k, row) in entries(run_start, run, steps) {
                if k == 0 {
                    first[0] = ts;
                    last[0] = ts;
                    started = true;
                } else if self.mode.deduplication && filled & (1 << k) != 0 {
                    break 'runs;
                } else if self.mode.order && started && filled & (1 << (k - 1)) == 0 {
                    if self.mode.reentry {
                        continue;
                    }
                    break 'runs;
                } else if filled & (1 << (k - 1)) != 0 {
                    let f = first[k - 1];
                    let mut ok = ts <= f.saturating_add(self.window);
                    if self.mode.increase {
                        ok &= last[k - 1] < ts;
                    }
                    if ok && !self.exclusions.is_empty() {
                        ok = !self.crosses(k, ts, &scratch.excluded, |step| {
                            let mut at = node[k - 1];
                            for _ in step..k - 1 {
                                at = nodes[at as usize].parent;
                            }
                            rows[nodes[at as usize].row as usize].ts
                        });
                    }
                    if !ok {
                        continue;
                    }
                    first[k] = f;
                    last[k] = ts;
                } else {
                    continue;
                }
                filled |= 1 << k;
                if CHAIN {
                    let parent = if k == 0 { NONE } else { node[k - 1] };
                    nodes.push(Node { row, parent });
                    node[k] = (nodes.len() - 1) as u32;
                }
                if k + 1 > reached.level {
                    reached.level = k + 1;
                    best = node[k];
                    if k + 1 == n {
                        break 'runs;
                    }
                }
            }
        }
        if CHAIN {
            let mut at = best;
            for k in (0..reached.level).rev() {
                reached.chain[k] = nodes[at as usize].row;
                at = nodes[at as usize].parent;
            }
        }
        Ok(reached)
    }

    /// `strict_once`: every partial chain is kept per level with the rows it
    /// used, so one row never fills two steps of the same chain. Between runs
    /// of equal timestamps a level keeps only its chain with the latest window
    /// start: later rows are other rows (the rows a chain used no longer
    /// matter) at later timestamps (`strict_increase` holds for every chain),
    /// so that chain can take every extension any other could. It crosses no
    /// exclusion another escapes either: each level's survivor extends the
    /// survivors below it, so a later start means later steps throughout
    /// (searched for a counterexample in the tests).
    fn once<const CHAIN: bool>(
        &self,
        rows: &[Event],
        scratch: &mut Scratch,
        mut reached: Reached,
    ) -> Result<Reached> {
        let n = self.steps;
        let steps = self.step_bits();
        let excluded = &scratch.excluded;
        let mut levels: Vec<Vec<Chain>> = vec![Vec::new(); n];
        let mut started = false;
        'runs: for (run_start, run) in runs(rows) {
            let ts = run[0].ts;
            if self.mode.order && started && run.iter().any(|r| r.mask & steps == 0) {
                break;
            }
            for level in levels.iter_mut().filter(|l| l.len() > 1) {
                if let Some(latest) = level.iter().max_by_key(|c| c.first).copied() {
                    level.clear();
                    level.push(latest);
                }
            }
            let mut visits = 0usize;
            for (k, row) in entries(run_start, run, steps) {
                if k == 0 {
                    let mut chain = Chain {
                        first: ts,
                        last: ts,
                        rows: [u32::MAX; MAX_CONDITIONS],
                    };
                    chain.rows[0] = row;
                    levels[0].push(chain);
                    started = true;
                    if reached.level == 0 {
                        reached.level = 1;
                        reached.chain = chain.rows;
                    }
                } else if self.mode.deduplication && !levels[k].is_empty() {
                    break 'runs;
                } else if self.mode.order && started && levels[k - 1].is_empty() {
                    if self.mode.reentry {
                        continue;
                    }
                    break 'runs;
                } else if !levels[k - 1].is_empty() {
                    let (lower, upper) = levels.split_at_mut(k);
                    let prev = &mut lower[k - 1];
                    let next = &mut upper[0];
                    visits += prev.len();
                    if visits > MAX_CHAIN_VISITS {
                        return exec_err!(
                            "{}: strict_once would follow more than {MAX_CHAIN_VISITS} partial \
                             funnels among the rows of one group at one timestamp (many rows \
                             with equal timestamps, each matching several steps); use finer \
                             timestamps, fewer or more selective conditions, or drop strict_once",
                            self.function
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
                            && (!self.mode.increase || chain.last < ts)
                            && (self.exclusions.is_empty()
                                || !self
                                    .crosses(k, ts, excluded, |s| rows[chain.rows[s] as usize].ts));
                        if fits {
                            let mut extended = Chain { last: ts, ..chain };
                            extended.rows[k] = row;
                            next.push(extended);
                            if reached.level == k {
                                reached.level = k + 1;
                                reached.chain = extended.rows;
                                if k + 1 == n {
                                    break 'runs;
                                }
                            }
                        }
                    }
                    prev.truncate(kept);
                }
            }
        }
        Ok(reached)
    }
}

/// Whether `times` (ascending) holds a time strictly between `after` and `before`.
fn between(times: &[i64], after: i64, before: i64) -> bool {
    let p = times.partition_point(|&t| t <= after);
    p < times.len() && times[p] < before
}

/// The runs of equal timestamps of `rows` (sorted by ts): `(index of the
/// run's first row, the run)`.
fn runs(rows: &[Event]) -> impl Iterator<Item = (usize, &[Event])> {
    let mut i = 0;
    std::iter::from_fn(move || {
        let start = i;
        let ts = rows.get(i)?.ts;
        i += rows[i..].iter().take_while(|r| r.ts == ts).count();
        Some((start, &rows[start..i]))
    })
}

/// A run's entries in the pass's order, by step then row: `(step k
/// (0-based), row index)` for every step condition true on a row.
fn entries(run_start: usize, run: &[Event], steps: u32) -> impl Iterator<Item = (usize, u32)> {
    let union = run.iter().fold(0u32, |a, r| a | r.mask) & steps;
    BitIter(union).flat_map(move |k| {
        run.iter()
            .enumerate()
            .filter(move |(_, r)| r.mask & (1 << k) != 0)
            .map(move |(offset, _)| (k, (run_start + offset) as u32))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn funnel(window_s: i64, mode: &str, steps: usize) -> Funnel {
        Funnel {
            function: "window_funnel",
            window: window_s * 1_000_000,
            steps,
            mode: Mode::parse("window_funnel", mode).unwrap_or_default(),
            exclusions: Vec::new(),
        }
    }

    fn excluding(mut f: Funnel, pairs: &[(usize, usize)]) -> Funnel {
        f.exclusions = pairs
            .iter()
            .map(|&(i, j)| Exclusion {
                from: i - 1,
                to: j - 1,
            })
            .collect();
        f
    }

    /// An event at `ts_s` seconds; `steps` are 1-based condition numbers
    /// (exclusions after the steps).
    fn ev(ts_s: i64, steps: &[usize]) -> Event {
        Event {
            ts: ts_s * 1_000_000,
            mask: steps.iter().fold(0, |m, s| m | 1 << (s - 1)),
        }
    }

    fn run(f: &Funnel, events: &[Event]) -> i64 {
        let plain = f.pass::<false>(events, &mut Scratch::default());
        let chained = f.pass::<true>(events, &mut Scratch::default());
        match (plain, chained) {
            (Ok(p), Ok(c)) => {
                assert_eq!(p.level, c.level, "the chain never changes the level");
                p.level as i64
            }
            _ => -1,
        }
    }

    /// The seconds of the chain's steps.
    fn chain(f: &Funnel, events: &[Event]) -> Vec<i64> {
        let r = f
            .pass::<true>(events, &mut Scratch::default())
            .expect("pass");
        r.chain[..r.level]
            .iter()
            .map(|&i| events[i as usize].ts / 1_000_000)
            .collect()
    }

    #[test]
    fn window_is_measured_from_the_chain_start() {
        let f = funnel(10, "", 3);
        assert_eq!(run(&f, &[ev(0, &[1]), ev(5, &[2]), ev(10, &[3])]), 3);
        assert_eq!(run(&f, &[ev(0, &[1]), ev(5, &[2]), ev(11, &[3])]), 2);
        // a later step 1 restarts the chain
        let restart = [ev(0, &[1]), ev(8, &[1]), ev(15, &[2]), ev(18, &[3])];
        assert_eq!(run(&f, &restart), 3);
        assert_eq!(chain(&f, &restart), vec![8, 15, 18]);
    }

    #[test]
    fn the_chain_is_the_one_that_first_reached_the_level() {
        let f = funnel(10, "", 3);
        // level 2 first at 5 (from 0); the chain from 20 reaches 2 again at 22
        let events = [ev(0, &[1]), ev(5, &[2]), ev(20, &[1]), ev(22, &[2])];
        assert_eq!(chain(&f, &events), vec![0, 5]);
        // each slot carries its own chain: step 3 extends slot 2 (from 4)
        // after step 1 restarted at 6
        let events = [ev(0, &[1]), ev(4, &[2]), ev(6, &[1]), ev(7, &[3])];
        assert_eq!(chain(&f, &events), vec![0, 4, 7]);
        assert_eq!(chain(&funnel(10, "strict_once", 3), &events), vec![0, 4, 7]);
        assert_eq!(chain(&f, &[]), Vec::<i64>::new());
        assert_eq!(
            chain(&funnel(10, "", 1), &[ev(3, &[1]), ev(4, &[1])]),
            vec![3]
        );
    }

    #[test]
    fn an_exclusion_strictly_between_its_steps_voids_the_chain() {
        // steps 1..3, exclusion (condition 4) between steps 1 and 3
        let f = excluding(funnel(100, "", 3), &[(1, 3)]);
        let base = [ev(0, &[1]), ev(5, &[2]), ev(9, &[3])];
        assert_eq!(run(&f, &base), 3);
        let mut crossed = base.to_vec();
        crossed.push(ev(7, &[4]));
        crossed.sort_by_key(|e| e.ts);
        assert_eq!(run(&f, &crossed), 2);
        // exactly at step 1's or step 3's timestamp: not between
        for at in [0, 9] {
            let mut edge = base.to_vec();
            edge.push(ev(at, &[4]));
            edge.sort_by_key(|e| e.ts);
            assert_eq!(run(&f, &edge), 3, "exclusion at {at}");
        }
        // a later chain that starts after the exclusion is not void
        let mut later = crossed.clone();
        later.extend([ev(20, &[1]), ev(21, &[2]), ev(22, &[3])]);
        assert_eq!(run(&f, &later), 3);
        assert_eq!(chain(&f, &later), vec![20, 21, 22]);
        // the same with strict_once
        let once = excluding(funnel(100, "strict_once", 3), &[(1, 3)]);
        assert_eq!(run(&once, &crossed), 2);
        assert_eq!(run(&once, &later), 3);
    }

    /// `strict_once` keeps every chain that may still matter, so its level is
    /// the longest chain of distinct rows, steps in time order, inside the
    /// window, crossing no exclusion: checked against that definition by
    /// search on small seeded groups.
    #[test]
    fn strict_once_with_exclusions_finds_the_longest_chain_there_is() {
        fn longest(f: &Funnel, rows: &[Event], chain: &mut Vec<usize>) -> usize {
            let k = chain.len();
            if k == f.steps {
                return k;
            }
            let mut best = k;
            for (r, row) in rows.iter().enumerate() {
                let fits = row.mask & (1 << k) != 0
                    && !chain.contains(&r)
                    && chain.last().is_none_or(|&p| {
                        let before = rows[p].ts;
                        before < row.ts || (before == row.ts && !f.mode.increase)
                    })
                    && chain
                        .first()
                        .is_none_or(|&p| row.ts <= rows[p].ts + f.window)
                    && f.exclusions.iter().enumerate().all(|(m, e)| {
                        e.to != k
                            || !rows.iter().any(|x| {
                                x.mask & (1 << (f.steps + m)) != 0
                                    && rows[chain[e.from]].ts < x.ts
                                    && x.ts < row.ts
                            })
                    });
                if fits {
                    chain.push(r);
                    best = best.max(longest(f, rows, chain));
                    chain.pop();
                }
            }
            best
        }
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut checked = [0usize; 5];
        for _ in 0..3000 {
            let pairs = [(1, 3), (2, 3), (1, 2), (2, 4), (3, 4)];
            let chosen: Vec<(usize, usize)> =
                pairs.iter().copied().filter(|_| next(3) == 0).collect();
            let mode = ["strict_once", "strict_once,strict_increase"][next(2) as usize];
            let f = excluding(funnel(next(6) as i64, mode, 4), &chosen);
            let mut rows: Vec<Event> = (0..next(9))
                .map(|_| Event {
                    ts: next(8) as i64 * 1_000_000,
                    mask: next(1 << (4 + chosen.len())) as u32,
                })
                .filter(|e| e.mask != 0)
                .collect();
            rows.sort_by_key(|e| e.ts);
            let expected = longest(&f, &rows, &mut Vec::new());
            assert_eq!(run(&f, &rows) as usize, expected, "{f:?} {rows:?}");
            checked[expected] += 1;
        }
        assert!(checked.iter().all(|&c| c > 20), "levels seen: {checked:?}");
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
        let e = f
            .pass::<false>(&events, &mut Scratch::default())
            .unwrap_err()
            .to_string();
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
    fn modes_and_pairs_are_validated() {
        assert!(Mode::parse("f", "strict").is_err());
        assert!(Mode::parse("f", "allow_reentry").is_err());
        assert!(Mode::parse("f", "strict_orde").is_err());
        assert_eq!(
            Mode::parse("f", " strict_order , allow_reentry")
                .map(|m| m.reentry)
                .ok(),
            Some(true)
        );
        let text = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
        let window = ScalarValue::Int64(Some(10));
        let parse = |pairs: &str, conditions| {
            Funnel::new("f", &window, &text(""), Some(&text(pairs)), conditions)
        };
        let ok = parse(" 1-3 , 2-3", 5).expect("two pairs over three steps");
        assert_eq!((ok.steps, ok.exclusions.len()), (3, 2));
        assert_eq!(parse("", 3).map(|f| f.steps).ok(), Some(3));
        for (bad, conditions) in [("3-1", 4), ("1-1", 4), ("0-2", 4), ("1-4", 4), ("1to2", 4)] {
            let e = parse(bad, conditions).unwrap_err().to_string();
            assert!(e.contains("f: pairs must be") && e.contains(bad), "{e}");
        }
        let e = parse("1-2", 1).unwrap_err().to_string();
        assert!(e.contains("after at least one step condition"), "{e}");
    }
}
