//! The state shared by the ordered behavioral aggregates (`window_funnel`,
//! `sequence_match`, `sequence_count`, `sessions`): per group, the usable rows as
//! `(timestamp µs, condition bitmask)` events, and whether any usable row was seen.
//!
//! The many-groups accumulator keeps all groups' events in one arena (16 bytes
//! an event, no heap object per group) and buckets them by group only when a
//! result or a partial state is emitted. Partial states are the event lists
//! themselves, so merging is exact.

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, UInt32Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt32Type};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

use crate::args::{condition_masks, micros, passes_filter};

/// One usable row: when, and which conditions held (bit `k` = condition `k+1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) ts: i64,
    pub(crate) mask: u32,
}

/// What an ordered behavioral aggregate computes from one group's events.
pub(crate) trait EventsFinish: Debug + Send + Sync + 'static {
    /// Results being built, one group after another.
    type Output: Default;
    /// Whether the arguments after `ts` are conditions (else constants, and
    /// every event's mask is 0).
    const CONDITIONS: bool = true;
    /// Whether a usable row with these conditions must be kept (others only count as "seen").
    fn keep(&self, mask: u32) -> bool;
    /// Adds the group's result from its events, in arrival order (the
    /// function sorts as it needs).
    fn finish(&self, events: &mut [Event], out: &mut Self::Output) -> Result<()>;
    /// Adds the result of a group with no usable row.
    fn unseen(&self, out: &mut Self::Output);
    /// The output array of the results added.
    fn output(&self, out: Self::Output) -> ArrayRef;
}

/// The partial-state fields: event timestamps, event masks, and the seen flag.
pub(crate) fn state_fields(name: &str) -> Vec<FieldRef> {
    vec![
        Arc::new(Field::new(
            format!("{name}[ts]"),
            DataType::new_list(DataType::Int64, false),
            true,
        )),
        Arc::new(Field::new(
            format!("{name}[mask]"),
            DataType::new_list(DataType::UInt32, false),
            true,
        )),
        Arc::new(Field::new(format!("{name}[seen]"), DataType::Boolean, true)),
    ]
}

/// Usable rows of one input batch as events; `args` are `[params…, ts,
/// conditions…]` (or `[ts, params…]` without conditions).
struct BatchEvents {
    ts: datafusion::arrow::buffer::ScalarBuffer<i64>,
    masks: Vec<u32>,
    nulls: Option<NullBuffer>,
}

impl BatchEvents {
    fn new(args: &[ArrayRef], ts_index: usize, conditions: bool) -> Result<Self> {
        let (ts, ts_nulls) = micros(&args[ts_index])?;
        let conditions = if conditions {
            &args[ts_index + 1..]
        } else {
            &[]
        };
        let (masks, cond_nulls) = condition_masks(conditions, ts.len())?;
        Ok(BatchEvents {
            ts,
            masks,
            nulls: NullBuffer::union(ts_nulls.as_ref(), cond_nulls.as_ref()),
        })
    }

    fn usable(&self, i: usize) -> bool {
        self.nulls.as_ref().is_none_or(|n| n.is_valid(i))
    }
}

/// An event tagged with its group, as stored in the arena.
#[derive(Debug, Clone, Copy)]
struct Tagged {
    group: u32,
    mask: u32,
    ts: i64,
}

/// [`GroupsAccumulator`] over event lists.
#[derive(Debug)]
pub(crate) struct EventGroups<F: EventsFinish> {
    finish: Arc<F>,
    ts_index: usize,
    arena: Vec<Tagged>,
    seen: Vec<bool>,
}

impl<F: EventsFinish> EventGroups<F> {
    pub(crate) fn new(finish: Arc<F>, ts_index: usize) -> Self {
        EventGroups {
            finish,
            ts_index,
            arena: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Removes the emitted groups' events, bucketed by group: `(events, offsets, seen)`.
    fn take(&mut self, emit_to: EmitTo) -> (Vec<Event>, Vec<usize>, Vec<bool>) {
        let seen = emit_to.take_needed(&mut self.seen);
        let n = seen.len();
        let n32 = n as u32;
        let mut offsets = vec![0usize; n + 1];
        for t in &self.arena {
            if t.group < n32 {
                offsets[t.group as usize + 1] += 1;
            }
        }
        for g in 0..n {
            offsets[g + 1] += offsets[g];
        }
        // Input sorted by the group key (member histories in member order)
        // leaves the arena in group order already: the emitted groups are its
        // prefix, and bucketing is a copy.
        if self.arena.is_sorted_by_key(|t| t.group) {
            let events = self
                .arena
                .drain(..offsets[n])
                .map(|t| Event {
                    ts: t.ts,
                    mask: t.mask,
                })
                .collect();
            for t in &mut self.arena {
                t.group -= n32;
            }
            return (events, offsets, seen);
        }
        let mut events = vec![Event { ts: 0, mask: 0 }; offsets[n]];
        let mut next = offsets.clone();
        self.arena.retain_mut(|t| {
            if t.group < n32 {
                let slot = &mut next[t.group as usize];
                events[*slot] = Event {
                    ts: t.ts,
                    mask: t.mask,
                };
                *slot += 1;
                false
            } else {
                t.group -= n32;
                true
            }
        });
        (events, offsets, seen)
    }
}

impl<F: EventsFinish> GroupsAccumulator for EventGroups<F> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        check_groups(total_num_groups)?;
        self.seen.resize(total_num_groups, false);
        let batch = BatchEvents::new(values, self.ts_index, F::CONDITIONS)?;
        for (i, &g) in group_indices.iter().enumerate() {
            if !batch.usable(i) || !passes_filter(opt_filter, i) {
                continue;
            }
            self.seen[g] = true;
            let mask = batch.masks[i];
            if self.finish.keep(mask) {
                self.arena.push(Tagged {
                    group: g as u32,
                    mask,
                    ts: batch.ts[i],
                });
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (mut events, offsets, seen) = self.take(emit_to);
        let mut out = F::Output::default();
        for (g, seen) in seen.iter().enumerate() {
            if *seen {
                self.finish
                    .finish(&mut events[offsets[g]..offsets[g + 1]], &mut out)?;
            } else {
                self.finish.unseen(&mut out);
            }
        }
        Ok(self.finish.output(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (events, offsets, seen) = self.take(emit_to);
        state_arrays(&events, offsets, seen)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        check_groups(total_num_groups)?;
        self.seen.resize(total_num_groups, false);
        let (ts, masks, seen) = state_columns(values)?;
        let tv = ts.values().as_primitive::<Int64Type>().values();
        let mv = masks.values().as_primitive::<UInt32Type>().values();
        for (i, &g) in group_indices.iter().enumerate() {
            if seen.is_valid(i) && seen.value(i) {
                self.seen[g] = true;
            }
            if ts.is_null(i) {
                continue;
            }
            let (start, end) = (
                ts.value_offsets()[i] as usize,
                ts.value_offsets()[i + 1] as usize,
            );
            let mstart = masks.value_offsets()[i] as usize;
            for j in start..end {
                self.arena.push(Tagged {
                    group: g as u32,
                    mask: mv[mstart + j - start],
                    ts: tv[j],
                });
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let batch = BatchEvents::new(values, self.ts_index, F::CONDITIONS)?;
        let n = batch.ts.len();
        let mut events = Vec::with_capacity(n);
        let mut offsets = Vec::with_capacity(n + 1);
        let mut seen = Vec::with_capacity(n);
        offsets.push(0);
        for i in 0..n {
            let usable = batch.usable(i) && passes_filter(opt_filter, i);
            if usable && self.finish.keep(batch.masks[i]) {
                events.push(Event {
                    ts: batch.ts[i],
                    mask: batch.masks[i],
                });
            }
            offsets.push(events.len());
            seen.push(usable);
        }
        state_arrays(&events, offsets, seen)
    }

    fn size(&self) -> usize {
        self.arena.capacity() * size_of::<Tagged>() + self.seen.capacity()
    }
}

/// Group indexes are kept as `u32` in the arena (half the size of `usize`).
fn check_groups(total_num_groups: usize) -> Result<()> {
    if total_num_groups > u32::MAX as usize {
        return exec_err!(
            "an event-list aggregate (window_funnel, sequence_*, sessions) got \
             {total_num_groups} groups, more than the {} it can keep; group by fewer keys",
            u32::MAX
        );
    }
    Ok(())
}

/// The three state arrays for groups whose events are `events[offsets[g]..offsets[g+1]]`.
fn state_arrays(events: &[Event], offsets: Vec<usize>, seen: Vec<bool>) -> Result<Vec<ArrayRef>> {
    if events.len() > i32::MAX as usize {
        return exec_err!(
            "an event-list aggregate (window_funnel, sequence_*, sessions) would pass on \
             {} events in one state batch, more than the {} a list array holds; lower \
             datafusion.execution.batch_size or group by more keys",
            events.len(),
            i32::MAX
        );
    }
    let offsets = OffsetBuffer::<i32>::from_lengths(offsets.windows(2).map(|w| w[1] - w[0]));
    let ts = Int64Array::from_iter_values(events.iter().map(|e| e.ts));
    let masks = UInt32Array::from_iter_values(events.iter().map(|e| e.mask));
    Ok(vec![
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Int64, false)),
            offsets.clone(),
            Arc::new(ts),
            None,
        )),
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::UInt32, false)),
            offsets,
            Arc::new(masks),
            None,
        )),
        Arc::new(BooleanArray::from(seen)),
    ])
}

fn state_columns(values: &[ArrayRef]) -> Result<(&ListArray, &ListArray, &BooleanArray)> {
    let [ts, masks, seen] = values else {
        return internal_err!("event-list state has {} columns, expected 3", values.len());
    };
    Ok((
        ts.as_list::<i32>(),
        masks.as_list::<i32>(),
        seen.as_boolean(),
    ))
}

/// [`Accumulator`] over one group's event list.
#[derive(Debug)]
pub(crate) struct EventAccumulator<F: EventsFinish> {
    finish: Arc<F>,
    ts_index: usize,
    events: Vec<Event>,
    seen: bool,
}

impl<F: EventsFinish> EventAccumulator<F> {
    pub(crate) fn new(finish: Arc<F>, ts_index: usize) -> Self {
        EventAccumulator {
            finish,
            ts_index,
            events: Vec::new(),
            seen: false,
        }
    }
}

impl<F: EventsFinish> Accumulator for EventAccumulator<F> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let batch = BatchEvents::new(values, self.ts_index, F::CONDITIONS)?;
        for i in 0..batch.ts.len() {
            if batch.usable(i) {
                self.seen = true;
                if self.finish.keep(batch.masks[i]) {
                    self.events.push(Event {
                        ts: batch.ts[i],
                        mask: batch.masks[i],
                    });
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut out = F::Output::default();
        if self.seen {
            self.finish.finish(&mut self.events.clone(), &mut out)?;
        } else {
            self.finish.unseen(&mut out);
        }
        ScalarValue::try_from_array(&self.finish.output(out), 0)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.events.capacity() * size_of::<Event>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let arrays = state_arrays(&self.events, vec![0, self.events.len()], vec![self.seen])?;
        arrays
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (ts, masks, seen) = state_columns(states)?;
        for i in 0..seen.len() {
            self.seen |= seen.is_valid(i) && seen.value(i);
            if ts.is_null(i) {
                continue;
            }
            let t = ts.value(i);
            let m = masks.value(i);
            let (t, m) = (
                t.as_primitive::<Int64Type>(),
                m.as_primitive::<UInt32Type>(),
            );
            self.events.extend(
                t.values()
                    .iter()
                    .zip(m.values())
                    .map(|(&ts, &mask)| Event { ts, mask }),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_counts_past_u32_are_refused_not_truncated() {
        assert!(check_groups(u32::MAX as usize).is_ok());
        let e = check_groups(u32::MAX as usize + 1).unwrap_err().to_string();
        assert!(
            e.contains("4294967296 groups") && e.contains("window_funnel"),
            "{e}"
        );
    }
}
