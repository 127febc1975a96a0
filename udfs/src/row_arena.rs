//! The state of the aggregates that keep a group's rows with a value each
//! (`event_path`, `attribution`, `sequence_next_node`, the `window_funnel`
//! variants): per row its time, up to 64 flags and the value's bytes, and per
//! group whether any usable row was seen. All groups' rows live in one arena
//! (their bytes in one buffer, no allocation per row) and are bucketed by
//! group only when a result or a partial state is emitted. Partial states are
//! the rows themselves, so merging is exact.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int64Array, ListArray, UInt64Array,
    new_null_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

/// One kept row: its time, flags, group, and its value's bytes in the arena.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArenaRow {
    pub(crate) ts: i64,
    pub(crate) from: usize,
    pub(crate) len: u32,
    pub(crate) group: u32,
    pub(crate) flags: u64,
}

/// Rows of every group and their values' bytes.
#[derive(Debug, Default)]
pub(crate) struct RowArena {
    pub(crate) rows: Vec<ArenaRow>,
    pub(crate) bytes: Vec<u8>,
    /// Per group so far: whether it had a usable row (kept or not).
    seen: Vec<bool>,
}

/// Rows taken out of the arena, bucketed by group: group `g`'s rows are
/// `rows[offsets[g]..offsets[g + 1]]`, their values in `bytes`.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) rows: Vec<ArenaRow>,
    pub(crate) offsets: Vec<usize>,
    pub(crate) bytes: Vec<u8>,
    /// Per group: whether it had a usable row.
    pub(crate) seen: Vec<bool>,
}

impl Taken {
    /// The value bytes of `row`.
    pub(crate) fn value(&self, row: &ArenaRow) -> &[u8] {
        &self.bytes[row.from..row.from + row.len as usize]
    }

    pub(crate) fn groups(&self) -> usize {
        self.offsets.len() - 1
    }
}

impl RowArena {
    /// Notes that there are `total` groups (some may have no row).
    pub(crate) fn groups(&mut self, total: usize) {
        if self.seen.len() < total {
            self.seen.resize(total, false);
        }
    }

    /// Notes that `group` had a usable row (kept or not).
    #[inline]
    pub(crate) fn mark(&mut self, group: usize) {
        self.groups(group + 1);
        self.seen[group] = true;
    }

    #[inline]
    pub(crate) fn push(
        &mut self,
        function: &str,
        group: usize,
        ts: i64,
        value: &[u8],
        flags: u64,
    ) -> Result<()> {
        self.push_at(function, group, ts, self.bytes.len(), value.len(), flags)?;
        self.bytes.extend_from_slice(value);
        Ok(())
    }

    /// Pushes row `i` of `values`. A dictionary value's bytes are stored once
    /// per group and batch: the group's later rows with that value point at
    /// them (so they also lie after the group's first row, as [`Self::take`]
    /// needs).
    #[inline]
    pub(crate) fn push_value(
        &mut self,
        function: &str,
        group: usize,
        ts: i64,
        values: &mut ValueRows,
        i: usize,
        flags: u64,
    ) -> Result<()> {
        let Some(keys) = &values.keys else {
            return self.push(function, group, ts, values.row(i), flags);
        };
        let key = keys[i];
        let stored = &mut values.stored[key];
        if stored.group == group {
            return self.push_at(function, group, ts, stored.from, stored.len, flags);
        }
        stored.group = group;
        stored.from = self.bytes.len();
        self.push(function, group, ts, values.rows.row(key).data(), flags)
    }

    /// Pushes a row whose value is `bytes[from..from + len]`.
    #[inline(always)]
    fn push_at(
        &mut self,
        function: &str,
        group: usize,
        ts: i64,
        from: usize,
        len: usize,
        flags: u64,
    ) -> Result<()> {
        let (Ok(group), Ok(len)) = (u32::try_from(group), u32::try_from(len)) else {
            return exec_err!(
                "{function}: more than {} groups or a value that long; group by fewer keys",
                u32::MAX
            );
        };
        self.rows.push(ArenaRow {
            ts,
            from,
            len,
            group,
            flags,
        });
        self.mark(group as usize);
        Ok(())
    }

    /// Adds the rows of partial states `values` (see [`state_fields`]).
    pub(crate) fn merge(
        &mut self,
        function: &str,
        values: &[ArrayRef],
        group_of: impl Fn(usize) -> usize,
    ) -> Result<()> {
        let [ts, bytes, flags, seen] = values else {
            return internal_err!("{function} state has {} columns, expected 4", values.len());
        };
        let (ts, bytes, flags, seen) = (
            ts.as_list::<i32>(),
            bytes.as_list::<i32>(),
            flags.as_list::<i32>(),
            seen.as_boolean(),
        );
        let tv = ts.values().as_primitive::<Int64Type>();
        let bv = bytes.values().as_binary::<i32>();
        let fv = flags.values().as_primitive::<UInt64Type>();
        for i in 0..ts.len() {
            self.groups(group_of(i) + 1);
            if seen.is_valid(i) && seen.value(i) {
                self.mark(group_of(i));
            }
            if ts.is_null(i) {
                continue;
            }
            let range = ts.value_offsets()[i] as usize..ts.value_offsets()[i + 1] as usize;
            for j in range {
                self.push(function, group_of(i), tv.value(j), bv.value(j), fv.value(j))?;
            }
        }
        Ok(())
    }

    /// Removes the rows of the groups `emit_to` names.
    pub(crate) fn take(&mut self, emit_to: EmitTo) -> Taken {
        let n = match emit_to {
            EmitTo::All => self.seen.len(),
            EmitTo::First(n) => n,
        };
        self.groups(n);
        let seen: Vec<bool> = self.seen.drain(..n).collect();
        let mut offsets = vec![0usize; n + 1];
        for r in self.rows.iter().filter(|r| (r.group as usize) < n) {
            offsets[r.group as usize + 1] += 1;
        }
        for g in 0..n {
            offsets[g + 1] += offsets[g];
        }
        // Input in group order (member histories in member order) leaves the
        // emitted groups' rows a prefix of the arena, already bucketed, and
        // their bytes a prefix of the bytes (bytes follow the rows' order):
        // the prefixes are taken as they lie (not copied), the rest moved to
        // buffers of the arena's capacity.
        let n32 = n as u32;
        let prefix = offsets[n];
        let head = &self.rows[..prefix];
        if head.is_sorted_by_key(|r| r.group) && head.last().is_none_or(|r| r.group < n32) {
            let cut = self.rows.get(prefix).map_or(self.bytes.len(), |r| r.from);
            let rows = split_head(&mut self.rows, prefix);
            let bytes = split_head(&mut self.bytes, cut);
            for r in &mut self.rows {
                r.from -= cut;
                r.group -= n32;
            }
            return Taken {
                rows,
                offsets,
                bytes,
                seen,
            };
        }
        let empty = ArenaRow {
            ts: 0,
            from: 0,
            len: 0,
            group: 0,
            flags: 0,
        };
        let mut taken = vec![empty; offsets[n]];
        let mut next = offsets.clone();
        let (mut kept, mut kept_bytes) = (Vec::new(), Vec::new());
        for r in &self.rows {
            if (r.group as usize) < n {
                taken[next[r.group as usize]] = *r;
                next[r.group as usize] += 1;
            } else {
                kept.push(ArenaRow {
                    from: kept_bytes.len(),
                    group: r.group - n as u32,
                    ..*r
                });
                kept_bytes.extend_from_slice(&self.bytes[r.from..r.from + r.len as usize]);
            }
        }
        let bytes = std::mem::replace(&mut self.bytes, kept_bytes);
        self.rows = kept;
        Taken {
            rows: taken,
            offsets,
            bytes,
            seen,
        }
    }

    /// The rows of one group (an [`Accumulator`](datafusion::logical_expr::Accumulator)'s), left in place.
    pub(crate) fn copy_all(&self) -> Taken {
        Taken {
            rows: self.rows.clone(),
            offsets: vec![0, self.rows.len()],
            bytes: self.bytes.clone(),
            seen: vec![self.seen.first().copied().unwrap_or(false)],
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.rows.capacity() * size_of::<ArenaRow>() + self.bytes.capacity() + self.seen.capacity()
    }
}

/// Takes `v[..at]` out of `v` without copying it; `v` keeps the rest, in a
/// buffer of the same capacity.
fn split_head<T: Copy>(v: &mut Vec<T>, at: usize) -> Vec<T> {
    let mut rest = Vec::with_capacity(v.capacity());
    rest.extend_from_slice(&v[at..]);
    v.truncate(at);
    std::mem::replace(v, rest)
}

/// The partial-state fields: the rows' times, values and flags, and whether
/// the group had a usable row.
pub(crate) fn state_fields(name: &str) -> Vec<FieldRef> {
    let list = |what: &str, t: DataType| -> FieldRef {
        Arc::new(Field::new(
            format!("{name}[{what}]"),
            DataType::new_list(t, false),
            true,
        ))
    };
    vec![
        list("ts", DataType::Int64),
        list("value", DataType::Binary),
        list("flags", DataType::UInt64),
        Arc::new(Field::new(format!("{name}[seen]"), DataType::Boolean, true)),
    ]
}

/// The partial states of the taken groups.
pub(crate) fn states(taken: &Taken) -> Vec<ArrayRef> {
    let offsets = OffsetBuffer::<i32>::from_lengths(taken.offsets.windows(2).map(|w| w[1] - w[0]));
    let list = |t: DataType, values: ArrayRef| -> ArrayRef {
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(t, false)),
            offsets.clone(),
            values,
            None,
        ))
    };
    let ts = Int64Array::from_iter_values(taken.rows.iter().map(|r| r.ts));
    let values = BinaryArray::from_iter_values(taken.rows.iter().map(|r| taken.value(r)));
    let flags = UInt64Array::from_iter_values(taken.rows.iter().map(|r| r.flags));
    vec![
        list(DataType::Int64, Arc::new(ts)),
        list(DataType::Binary, Arc::new(values)),
        list(DataType::UInt64, Arc::new(flags)),
        Arc::new(BooleanArray::from(taken.seen.clone())),
    ]
}

/// An aggregate over a [`RowArena`]: which rows it keeps, and its result.
pub(crate) trait ArenaAggregate: std::fmt::Debug + Send + Sync + 'static {
    /// The function's name, for errors.
    fn name(&self) -> &'static str;
    /// Adds the usable rows of `values` (its arguments), row `i` to group `group_of(i)`.
    fn update(
        &self,
        arena: &mut RowArena,
        values: &[ArrayRef],
        group_of: impl Fn(usize) -> usize,
        filter: Option<&BooleanArray>,
    ) -> Result<()>;
    /// The results of the taken groups.
    fn evaluate(&self, taken: Taken) -> Result<ArrayRef>;
}

/// The values' type an aggregate keeps and returns: a dictionary's values.
pub(crate) fn value_type(t: &DataType) -> DataType {
    match t {
        DataType::Dictionary(_, values) => values.as_ref().clone(),
        other => other.clone(),
    }
}

/// The converter of an argument of type `input` to the arena's value bytes
/// (over its values' type: see [`ValueRows`]), and the type they decode to.
pub(crate) fn value_converter(input: &DataType) -> Result<(RowConverter, DataType)> {
    let values = value_type(input);
    let converter = RowConverter::new(vec![SortField::new(values.clone())])?;
    Ok((converter, values))
}

/// A batch of an argument as the arena's value bytes (Arrow row format, by a
/// [`value_converter`]). A dictionary's values are encoded once and each row
/// reads its key's bytes — the bytes Arrow's converter gives a dictionary,
/// without its copy of every row's bytes into a buffer of its own, which the
/// arena would copy once more.
pub(crate) struct ValueRows {
    rows: Rows,
    /// Per row, its row in `rows` (a dictionary's); `None`: row `i` is `i`.
    keys: Option<Vec<usize>>,
    /// Per row of a dictionary's `rows`: where the arena last stored it.
    stored: Vec<Stored>,
}

/// Where the arena holds a dictionary value's bytes for a group ([`RowArena::push_value`]).
#[derive(Clone, Copy)]
struct Stored {
    /// `usize::MAX`: for none yet.
    group: usize,
    from: usize,
    len: usize,
}

impl ValueRows {
    pub(crate) fn encode(converter: &RowConverter, column: &ArrayRef) -> Result<Self> {
        let Some(dictionary) = column.as_any_dictionary_opt() else {
            let rows = converter.convert_columns(&[Arc::clone(column)])?;
            return Ok(ValueRows {
                rows,
                keys: None,
                stored: Vec::new(),
            });
        };
        let values = dictionary.values();
        let mut rows = converter.convert_columns(&[Arc::clone(values)])?;
        let mut keys = dictionary.normalized_keys();
        if let Some(nulls) = dictionary.keys().nulls().filter(|n| n.null_count() > 0) {
            let null = converter.convert_columns(&[new_null_array(values.data_type(), 1)])?;
            rows.push(null.row(0));
            for i in nulls
                .iter()
                .enumerate()
                .filter_map(|(i, v)| (!v).then_some(i))
            {
                keys[i] = values.len();
            }
        }
        Ok(ValueRows {
            stored: (0..rows.num_rows())
                .map(|row| Stored {
                    group: usize::MAX,
                    from: 0,
                    len: rows.row(row).as_ref().len(),
                })
                .collect(),
            rows,
            keys: Some(keys),
        })
    }

    /// Row `i`'s value bytes.
    pub(crate) fn row(&self, i: usize) -> &[u8] {
        let row = self.keys.as_ref().map_or(i, |keys| keys[i]);
        self.rows.row(row).data()
    }
}

/// [`GroupsAccumulator`] of an [`ArenaAggregate`].
#[derive(Debug)]
pub(crate) struct ArenaGroups<F> {
    function: F,
    arena: RowArena,
}

impl<F> ArenaGroups<F> {
    pub(crate) fn new(function: F) -> Self {
        ArenaGroups {
            function,
            arena: RowArena::default(),
        }
    }
}

impl<F: ArenaAggregate> GroupsAccumulator for ArenaGroups<F> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.arena.groups(total_num_groups);
        self.function
            .update(&mut self.arena, values, |i| group_indices[i], opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.function.evaluate(self.arena.take(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(states(&self.arena.take(emit_to)))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.arena.groups(total_num_groups);
        self.arena
            .merge(self.function.name(), values, |i| group_indices[i])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // each row its own group
        let mut arena = RowArena::default();
        arena.groups(values.first().map_or(0, |v| v.len()));
        self.function
            .update(&mut arena, values, |i| i, opt_filter)?;
        Ok(states(&arena.take(EmitTo::All)))
    }

    fn size(&self) -> usize {
        self.arena.size()
    }
}

/// [`Accumulator`] of an [`ArenaAggregate`] over one group.
#[derive(Debug)]
pub(crate) struct ArenaAccumulator<F> {
    function: F,
    arena: RowArena,
}

impl<F> ArenaAccumulator<F> {
    pub(crate) fn new(function: F) -> Self {
        ArenaAccumulator {
            function,
            arena: RowArena::default(),
        }
    }
}

impl<F: ArenaAggregate> Accumulator for ArenaAccumulator<F> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.arena.groups(1);
        self.function.update(&mut self.arena, values, |_| 0, None)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let result = self.function.evaluate(self.arena.copy_all())?;
        ScalarValue::try_from_array(&result, 0)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.arena.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        states(&self.arena.copy_all())
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.arena.groups(1);
        self.arena.merge(self.function.name(), states, |_| 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::HashMap;

    /// Each taken group's values, in order.
    fn values(taken: &Taken) -> Vec<Vec<String>> {
        (0..taken.groups())
            .map(|g| {
                taken.rows[taken.offsets[g]..taken.offsets[g + 1]]
                    .iter()
                    .map(|r| String::from_utf8_lossy(taken.value(r)).into_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_dictionarys_value_bytes_are_arrows_for_the_dictionary() {
        use datafusion::arrow::array::{DictionaryArray, Int8Array, StringArray};
        use datafusion::arrow::datatypes::{Int8Type, Int32Type};
        let values = Arc::new(StringArray::from(vec![Some("view"), None, Some("pay")]));
        let keys = [Some(2), None, Some(0), Some(1), Some(2), None, Some(0)];
        let int8 = DictionaryArray::<Int8Type>::try_new(
            Int8Array::from(keys.to_vec()),
            Arc::clone(&values) as ArrayRef,
        )
        .unwrap();
        let int32: DictionaryArray<Int32Type> = keys
            .iter()
            .map(|k| {
                k.and_then(|k| {
                    values
                        .is_valid(k as usize)
                        .then(|| values.value(k as usize))
                })
            })
            .collect();
        let plain = Arc::new(StringArray::from(vec![Some("a"), None, Some("")])) as ArrayRef;
        for column in [Arc::new(int8) as ArrayRef, Arc::new(int32), plain] {
            let arrow =
                RowConverter::new(vec![SortField::new(column.data_type().clone())]).unwrap();
            let expected = arrow.convert_columns(&[Arc::clone(&column)]).unwrap();
            let (ours, decoded) = value_converter(column.data_type()).unwrap();
            assert_eq!(decoded, DataType::Utf8);
            let rows = ValueRows::encode(&ours, &column).unwrap();
            for i in 0..column.len() {
                assert_eq!(rows.row(i), expected.row(i).data(), "{column:?} row {i}");
            }
        }
    }

    #[test]
    fn a_groups_rows_of_one_dictionary_value_share_its_bytes() {
        use datafusion::arrow::array::DictionaryArray;
        use datafusion::arrow::datatypes::Int32Type;
        let column: DictionaryArray<Int32Type> =
            ["view", "pay", "view", "view", "pay", "cart", "view", "pay"]
                .into_iter()
                .collect();
        let column = Arc::new(column) as ArrayRef;
        let (converter, _) = value_converter(column.data_type()).unwrap();
        // in group order; in none; sorted up to the cut but with a later group in it
        for order in [
            [0, 0, 0, 1, 1, 2, 2, 3],
            [2, 0, 3, 1, 0, 2, 0, 1],
            [0, 0, 2, 1, 3, 2, 2, 0],
        ] {
            let (mut shared, mut copied) = (RowArena::default(), RowArena::default());
            // two batches, the second with the groups that stay after the first take
            let batch = |arena: &mut RowArena, groups: &[usize], share: bool| {
                let mut rows = ValueRows::encode(&converter, &column).unwrap();
                for (i, &g) in groups.iter().enumerate() {
                    match share {
                        true => arena.push_value("f", g, i as i64, &mut rows, i, 0).unwrap(),
                        false => arena.push("f", g, i as i64, rows.row(i), 0).unwrap(),
                    }
                }
            };
            batch(&mut shared, &order, true);
            batch(&mut copied, &order, false);
            // rows in group order: each group's values stored once
            let encoded = ValueRows::encode(&converter, &column).unwrap();
            let distinct: HashMap<_, _> = order
                .iter()
                .enumerate()
                .map(|(i, g)| ((g, encoded.row(i)), encoded.row(i).len()))
                .collect();
            let stored: usize = distinct.values().sum();
            assert!(shared.bytes.len() <= copied.bytes.len(), "{order:?}");
            if order.is_sorted() {
                assert_eq!(shared.bytes.len(), stored, "{order:?}");
                assert!(stored < copied.bytes.len());
            }
            let bytes = |t: &Taken| -> Vec<Vec<Vec<u8>>> {
                (0..t.groups())
                    .map(|g| {
                        t.rows[t.offsets[g]..t.offsets[g + 1]]
                            .iter()
                            .map(|r| t.value(r).to_vec())
                            .collect()
                    })
                    .collect()
            };
            let first = bytes(&shared.take(EmitTo::First(2)));
            assert_eq!(first, bytes(&copied.take(EmitTo::First(2))), "{order:?}");
            assert!(first.iter().all(|g| !g.is_empty()), "{order:?}");
            let later = [1, 0, 1, 0, 1, 0, 1, 0];
            batch(&mut shared, &later, true);
            batch(&mut copied, &later, false);
            let rest = bytes(&shared.take(EmitTo::All));
            assert_eq!(rest, bytes(&copied.take(EmitTo::All)), "{order:?}");
            let kept = order.iter().filter(|&&g| g >= 2).count();
            assert_eq!(
                rest.iter().map(Vec::len).sum::<usize>(),
                kept + 8,
                "{order:?}"
            );
        }
    }

    #[test]
    fn take_buckets_by_group_whether_rows_arrive_in_group_order_or_not() {
        // in group order; in none; sorted up to the cut but with a later group in it
        for order in [[0, 0, 1, 2, 2, 3], [2, 0, 3, 1, 0, 2], [0, 0, 2, 1, 3, 2]] {
            let mut arena = RowArena::default();
            for (i, &g) in order.iter().enumerate() {
                arena
                    .push("f", g, i as i64, format!("g{g}r{i}").as_bytes(), 0)
                    .unwrap();
            }
            arena.mark(5);
            let first = arena.take(EmitTo::First(2));
            let expect = |g: usize| -> Vec<String> {
                order
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| **x == g)
                    .map(|(i, _)| format!("g{g}r{i}"))
                    .collect()
            };
            assert_eq!(values(&first), vec![expect(0), expect(1)], "{order:?}");
            assert_eq!(first.seen, vec![true, true]);
            // the rest are renumbered from 0 and keep their values
            arena.push("f", 0, 9, b"g2r9", 0).unwrap();
            let rest = arena.take(EmitTo::All);
            let mut two = expect(2);
            two.push("g2r9".into());
            assert_eq!(
                values(&rest),
                vec![two, expect(3), vec![], vec![]],
                "{order:?}"
            );
            assert_eq!(rest.seen, vec![true, true, false, true]);
            assert!(arena.rows.is_empty() && arena.bytes.is_empty());
        }
    }
}
