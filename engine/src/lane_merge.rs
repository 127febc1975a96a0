//! The merge of a member range's lanes (one sorted file per load) by
//! `(member_id, ts)`, in chunks rather than row by row. Every lane is sorted,
//! so once each lane has buffered rows up to some member, all rows of the
//! members before the smallest such member are at hand: they are placed by a
//! counting sort on `member_id` (member ids are dense), and each member's rows
//! put in time order where the lanes interleave them, then copied out in
//! `batch_size` batches. Ties keep lane order, as a merge does.
//!
//! DataFusion's merge compares every row against the other lanes' heads in
//! its row format (~80 ns a row over 30 lanes at scale m); this works on the
//! key and time columns as integers. It takes an `Int64` key and an `Int64`
//! or timestamp time, both ascending with NULLs last, as the member-range
//! layout sorts them; for any other order [`merge_lanes`] says no.

use std::collections::VecDeque;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::{
    DataType, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::error::Result;
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::BaselineMetrics;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

/// The key and time columns of an order this merge serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaneOrder {
    key: usize,
    ts: usize,
}

impl LaneOrder {
    /// `ordering` over `schema`, if it is an `Int64` column then an `Int64` or
    /// timestamp column, both ascending with NULLs last.
    pub(crate) fn of(ordering: &LexOrdering, schema: &SchemaRef) -> Option<Self> {
        let columns: Vec<usize> = ordering
            .iter()
            .map(|e| {
                let column = e.expr.downcast_ref::<Column>()?;
                (!e.options.descending && !e.options.nulls_first).then_some(column.index())
            })
            .collect::<Option<_>>()?;
        let [key, ts] = columns[..] else {
            return None;
        };
        let type_of = |i: usize| schema.fields().get(i).map(|f| f.data_type());
        let key_ok = matches!(type_of(key), Some(DataType::Int64));
        let ts_ok = matches!(
            type_of(ts),
            Some(DataType::Int64 | DataType::Timestamp(_, _))
        );
        (key_ok && ts_ok).then_some(LaneOrder { key, ts })
    }
}

/// One stream of `lanes` (each sorted by `order`) in that order.
pub(crate) fn merge_lanes(
    lanes: Vec<SendableRecordBatchStream>,
    schema: SchemaRef,
    order: LaneOrder,
    batch_size: usize,
    reservation: MemoryReservation,
    metrics: BaselineMetrics,
) -> SendableRecordBatchStream {
    let merge = LaneMerge {
        pending: vec![VecDeque::new(); lanes.len()],
        ended: vec![false; lanes.len()],
        lanes,
        order,
        batch_size: batch_size.max(1),
        reservation,
        metrics,
        out: VecDeque::new(),
    };
    let batches = futures::stream::unfold(merge, |mut merge| async move {
        match merge.next_batch().await {
            Ok(Some(batch)) => Some((Ok(batch), merge)),
            Ok(None) => None,
            Err(e) => Some((Err(e), merge)),
        }
    })
    .fuse();
    Box::pin(RecordBatchStreamAdapter::new(schema, batches))
}

/// A batch of a lane and the first of its rows not yet merged.
#[derive(Debug, Clone)]
struct Pending {
    batch: RecordBatch,
    from: usize,
}

struct LaneMerge {
    lanes: Vec<SendableRecordBatchStream>,
    /// Each lane's buffered batches, oldest first; never an exhausted one.
    pending: Vec<VecDeque<Pending>>,
    ended: Vec<bool>,
    order: LaneOrder,
    batch_size: usize,
    reservation: MemoryReservation,
    metrics: BaselineMetrics,
    /// Merged batches not yet returned.
    out: VecDeque<RecordBatch>,
}

/// A key's place in the order: NULL after every value.
fn rank(values: &[i64], array: &dyn Array, row: usize) -> (bool, i64) {
    if array.is_null(row) {
        (true, 0)
    } else {
        (false, values[row])
    }
}

/// The values of an `Int64` or timestamp array.
fn integers(array: &dyn Array) -> &[i64] {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive::<TimestampSecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            array.as_primitive::<TimestampMicrosecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive::<TimestampNanosecondType>().values()
        }
        _ => array.as_primitive::<Int64Type>().values(),
    }
}

/// The rows of one chunk from one batch: `batch[from..to]`.
struct Slice {
    source: usize,
    from: usize,
    to: usize,
}

impl LaneMerge {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(batch) = self.out.pop_front() {
                self.metrics.record_output(batch.num_rows());
                return Ok(Some(batch));
            }
            if !self.merge_chunk().await? {
                self.metrics.done();
                return Ok(None);
            }
        }
    }

    /// Pulls `lane`'s next non-empty batch; false when the lane has ended.
    async fn pull(&mut self, lane: usize) -> Result<bool> {
        while let Some(batch) = self.lanes[lane].next().await {
            let batch = batch?;
            if batch.num_rows() > 0 {
                self.reservation.try_grow(batch.get_array_memory_size())?;
                self.pending[lane].push_back(Pending { batch, from: 0 });
                return Ok(true);
            }
        }
        self.ended[lane] = true;
        Ok(false)
    }

    /// The key of the last row `lane` has buffered.
    fn last_key(&self, lane: usize) -> Option<(bool, i64)> {
        let last = self.pending[lane].back()?;
        let keys = last.batch.column(self.order.key);
        Some(rank(integers(keys), keys, last.batch.num_rows() - 1))
    }

    /// Merges the next chunk into `out`; false when every lane is done.
    async fn merge_chunk(&mut self) -> Result<bool> {
        for lane in 0..self.lanes.len() {
            if self.pending[lane].is_empty() && !self.ended[lane] {
                self.pull(lane).await?;
            }
        }
        loop {
            // every row before the smallest last key of a running lane is here
            let bound = (0..self.lanes.len())
                .filter(|&l| !self.ended[l])
                .filter_map(|l| self.last_key(l).map(|k| (k, l)))
                .min();
            let slices = self.slices(bound.map(|(k, _)| k));
            if !slices.is_empty() {
                self.emit(&slices)?;
                return Ok(true);
            }
            match bound {
                // that lane holds only the bound's key: read on
                Some((_, lane)) => {
                    self.pull(lane).await?;
                }
                None => return Ok(false),
            }
        }
    }

    /// The buffered rows whose key is below `bound` (all, without one).
    fn slices(&self, bound: Option<(bool, i64)>) -> Vec<(usize, Slice)> {
        let mut slices = Vec::new();
        for (lane, pending) in self.pending.iter().enumerate() {
            for (i, p) in pending.iter().enumerate() {
                let rows = p.batch.num_rows();
                let to = match bound {
                    None => rows,
                    Some(bound) => {
                        let keys = p.batch.column(self.order.key);
                        let values = integers(keys);
                        // the first row at or past the bound
                        let (mut lo, mut hi) = (p.from, rows);
                        while lo < hi {
                            let mid = lo + (hi - lo) / 2;
                            if rank(values, keys, mid) < bound {
                                lo = mid + 1;
                            } else {
                                hi = mid;
                            }
                        }
                        lo
                    }
                };
                if to > p.from {
                    slices.push((
                        lane,
                        Slice {
                            source: i,
                            from: p.from,
                            to,
                        },
                    ));
                }
                if to < rows {
                    break;
                }
            }
        }
        slices
    }

    /// Sorts the rows of `slices` and queues them as batches; drops what is
    /// merged.
    fn emit(&mut self, slices: &[(usize, Slice)]) -> Result<()> {
        let _timer = self.metrics.elapsed_compute().timer();
        let sources: Vec<&RecordBatch> = slices
            .iter()
            .map(|(lane, s)| &self.pending[*lane][s.source].batch)
            .collect();
        let order = self.order;
        let rows = sorted_rows(&sources, slices, order);
        for chunk in rows.chunks(self.batch_size) {
            self.out
                .push_back(interleave_record_batch(&sources, chunk)?);
        }
        // advance each lane past what was merged
        for (lane, s) in slices {
            self.pending[*lane][s.source].from = s.to;
        }
        let mut freed = 0;
        for pending in self.pending.iter_mut() {
            while pending
                .front()
                .is_some_and(|p| p.from == p.batch.num_rows())
            {
                if let Some(p) = pending.pop_front() {
                    freed += p.batch.get_array_memory_size();
                }
            }
        }
        self.reservation.shrink(freed.min(self.reservation.size()));
        Ok(())
    }
}

/// The rows of `slices` (`sources[i]` holds slice `i`) as `(source, row)`
/// in `order`, ties in slice order.
fn sorted_rows(
    sources: &[&RecordBatch],
    slices: &[(usize, Slice)],
    order: LaneOrder,
) -> Vec<(usize, usize)> {
    let columns = |c: usize| -> Vec<(&dyn Array, &[i64])> {
        sources
            .iter()
            .map(|b| {
                let a = b.column(c).as_ref();
                (a, integers(a))
            })
            .collect()
    };
    let keys = columns(order.key);
    let times = columns(order.ts);
    let count: usize = slices.iter().map(|(_, s)| s.to - s.from).sum();
    let nulls = keys
        .iter()
        .chain(times.iter())
        .any(|(a, _)| a.null_count() > 0);
    let (lo, hi) = slices
        .iter()
        .enumerate()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (i, (_, s))| {
            (lo.min(keys[i].1[s.from]), hi.max(keys[i].1[s.to - 1]))
        });
    let span = (hi as i128 - lo as i128 + 1) as usize;
    if nulls || span > 4 * count + 1024 {
        // the general case: a stable sort of every row
        let mut rows: Vec<(usize, usize)> = slices
            .iter()
            .enumerate()
            .flat_map(|(i, (_, s))| (s.from..s.to).map(move |r| (i, r)))
            .collect();
        rows.sort_by_key(|&(i, r)| {
            (
                rank(keys[i].1, keys[i].0, r),
                rank(times[i].1, times[i].0, r),
            )
        });
        return rows;
    }
    // a counting sort by key, then each key's rows in time order
    let mut starts = vec![0usize; span + 1];
    for (i, (_, s)) in slices.iter().enumerate() {
        for &k in &keys[i].1[s.from..s.to] {
            starts[(k - lo) as usize + 1] += 1;
        }
    }
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    let mut next = starts.clone();
    let mut rows = vec![(0usize, 0usize); count];
    let mut ts = vec![0i64; count];
    for (i, (_, s)) in slices.iter().enumerate() {
        let keys = &keys[i].1[s.from..s.to];
        let times = &times[i].1[s.from..s.to];
        for ((r, &k), &t) in (s.from..s.to).zip(keys).zip(times) {
            let at = &mut next[(k - lo) as usize];
            rows[*at] = (i, r);
            ts[*at] = t;
            *at += 1;
        }
    }
    // a key's rows are one sorted run per lane: put them in time order,
    // ties in the order they were placed (lane order)
    let mut by_time = TimeOrder::default();
    for k in 0..span {
        let (from, to) = (starts[k], starts[k + 1]);
        if !ts[from..to].is_sorted() {
            by_time.sort(&ts[from..to], &mut rows[from..to]);
        }
    }
    rows
}

/// Reorders rows by their times, ties in their order; buffers reused.
#[derive(Default)]
struct TimeOrder {
    packed: Vec<u64>,
    pairs: Vec<(i64, u32)>,
    rows: Vec<(usize, usize)>,
}

impl TimeOrder {
    /// Sorts `rows` by `ts` (one per row), stably.
    fn sort(&mut self, ts: &[i64], rows: &mut [(usize, usize)]) {
        let min = ts.iter().copied().min().unwrap_or(0);
        let max = ts.iter().copied().max().unwrap_or(0);
        let index_bits = usize::BITS - rows.len().leading_zeros();
        let spread = max.abs_diff(min);
        self.rows.clear();
        if spread
            .checked_shr(64 - index_bits)
            .is_some_and(|high| high == 0)
        {
            // one u64 a row: the time from the smallest, then the row's index
            self.packed.clear();
            self.packed.extend(
                ts.iter()
                    .enumerate()
                    .map(|(j, &t)| (t.abs_diff(min) << index_bits) | j as u64),
            );
            self.packed.sort_unstable();
            let mask = (1u64 << index_bits) - 1;
            self.rows
                .extend(self.packed.iter().map(|&p| rows[(p & mask) as usize]));
        } else {
            self.pairs.clear();
            self.pairs
                .extend(ts.iter().enumerate().map(|(j, &t)| (t, j as u32)));
            self.pairs.sort_unstable();
            self.rows
                .extend(self.pairs.iter().map(|&(_, j)| rows[j as usize]));
        }
        rows.copy_from_slice(&self.rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, TimestampMicrosecondArray, UInt32Array};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer, MemoryPool};
    use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("member_id", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("row", DataType::UInt32, false),
        ]))
    }

    /// A seeded stream of numbers (SplitMix64).
    struct Numbers(u64);

    impl Numbers {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    type Row = (Option<i64>, Option<i64>, u32);

    /// A lane of `n` rows sorted by (key, ts), NULLs last; `row` numbers every
    /// row of every lane, in lane order.
    fn lane(
        numbers: &mut Numbers,
        n: usize,
        first_row: u32,
        (keys, times): (u64, i64),
        nulls: bool,
    ) -> Vec<Row> {
        let mut rows: Vec<(Option<i64>, Option<i64>)> = (0..n)
            .map(|_| {
                let key = (!nulls || numbers.below(20) > 0).then(|| numbers.below(keys) as i64);
                let ts = (!nulls || numbers.below(20) > 0)
                    .then(|| (numbers.below(50) as i64 - 25) * times);
                (key, ts)
            })
            .collect();
        let last = |v: Option<i64>| (v.is_none(), v.unwrap_or(0));
        rows.sort_by_key(|&(k, t)| (last(k), last(t)));
        rows.into_iter()
            .enumerate()
            .map(|(i, (k, t))| (k, t, first_row + i as u32))
            .collect()
    }

    fn batches(rows: &[Row], sizes: &mut Numbers) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < rows.len() {
            let n = (1 + sizes.below(40) as usize).min(rows.len() - at);
            let part = &rows[at..at + n];
            out.push(
                RecordBatch::try_new(
                    schema(),
                    vec![
                        Arc::new(Int64Array::from_iter(part.iter().map(|r| r.0))),
                        Arc::new(TimestampMicrosecondArray::from_iter(
                            part.iter().map(|r| r.1),
                        )),
                        Arc::new(UInt32Array::from_iter_values(part.iter().map(|r| r.2))),
                    ],
                )
                .unwrap(),
            );
            if sizes.below(5) == 0 {
                out.push(RecordBatch::new_empty(schema()));
            }
            at += n;
        }
        out
    }

    async fn merged(lanes: Vec<Vec<RecordBatch>>, batch_size: usize) -> Vec<u32> {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 30));
        let reservation = MemoryConsumer::new("test").register(&pool);
        let streams = lanes
            .into_iter()
            .map(|batches| {
                let stream = futures::stream::iter(batches.into_iter().map(Ok));
                Box::pin(RecordBatchStreamAdapter::new(schema(), stream)) as _
            })
            .collect();
        let order = LaneOrder { key: 0, ts: 1 };
        let metrics = BaselineMetrics::new(&ExecutionPlanMetricsSet::new(), 0);
        let out: Vec<RecordBatch> =
            merge_lanes(streams, schema(), order, batch_size, reservation, metrics)
                .map(|b| b.unwrap())
                .collect()
                .await;
        assert!(
            out.iter()
                .all(|b| b.num_rows() <= batch_size && b.num_rows() > 0)
        );
        assert_eq!(pool.reserved(), 0, "the merge gives back what it held");
        out.iter()
            .flat_map(|b| {
                b.column(2)
                    .as_primitive::<datafusion::arrow::datatypes::UInt32Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    /// Random lanes (dense and sparse keys, near and far times, NULLs,
    /// ties, empty and tiny batches) come out as a stable sort of all their
    /// rows gives them.
    #[tokio::test]
    async fn lanes_come_out_as_a_stable_sort_of_all_their_rows() {
        let mut numbers = Numbers(7);
        for case in 0..300 {
            let lanes = 1 + numbers.below(6) as usize;
            let keys = [3, 40, 1_000, 1 << 40][case % 4];
            // times close together, and spread over almost all of i64
            let times = [1, 1 << 40, i64::MAX / 64][case % 3];
            let nulls = case % 5 == 0;
            let mut all = Vec::new();
            let mut parts = Vec::new();
            for _ in 0..lanes {
                let n = numbers.below(120) as usize;
                let rows = lane(&mut numbers, n, all.len() as u32, (keys, times), nulls);
                parts.push(batches(&rows, &mut numbers));
                all.extend(rows);
            }
            let last = |v: Option<i64>| (v.is_none(), v.unwrap_or(0));
            all.sort_by_key(|&(k, t, _)| (last(k), last(t)));
            let expected: Vec<u32> = all.iter().map(|r| r.2).collect();
            let batch_size = 1 + numbers.below(50) as usize;
            assert_eq!(merged(parts, batch_size).await, expected, "case {case}");
        }
    }

    #[test]
    fn serves_only_an_integer_key_then_an_integer_or_timestamp_time_ascending() {
        use datafusion::arrow::compute::SortOptions;
        use datafusion::physical_expr::PhysicalSortExpr;
        let schema = schema();
        let sort = |i: usize, descending: bool| {
            PhysicalSortExpr::new(
                Arc::new(Column::new(schema.field(i).name(), i)),
                SortOptions {
                    descending,
                    nulls_first: false,
                },
            )
        };
        let of = |exprs: Vec<PhysicalSortExpr>| {
            LaneOrder::of(&LexOrdering::new(exprs).unwrap(), &schema)
        };
        assert!(of(vec![sort(0, false), sort(1, false)]).is_some());
        assert!(of(vec![sort(0, false), sort(1, true)]).is_none());
        assert!(of(vec![sort(0, false)]).is_none());
        assert!(of(vec![sort(0, false), sort(2, false)]).is_none());
        assert!(of(vec![sort(0, false), sort(1, false), sort(2, false)]).is_none());
    }
}
