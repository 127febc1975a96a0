//! Reliability M5, pool honesty: while a query runs under a memory limit, the
//! heap it allocates stays within twice what the memory pool was told plus
//! 64 MiB. The per-member state of our aggregates (event lists, row arenas)
//! is what grows with the data, so each family gets a grouping whose state
//! is well over 64 MiB: an accumulator whose `size()` under-reports fails it.
//! The heap is counted by the binary's allocator (`common/counting_alloc.rs`),
//! the pool's reservation sampled every millisecond (its peak can only be
//! missed low, which makes the check stricter). And each of our aggregates'
//! accumulators (grouped and single) reports in `size()` what it holds on the
//! heap, within 25 %.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use audience_engine::{Engine, EngineConfig};
use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::{ExecutionPlan, collect};

use crate::common::counting_alloc;

/// Events of 2,000 members, one a second: a member's events are 2,000 s apart.
const EVENTS: &str = "SELECT value % 2000 AS m, to_timestamp_seconds(value) AS ts, value % 5 AS e,
        CAST(value % 7 AS VARCHAR) AS ch
    FROM generate_series(1, 4000000)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_the_heap_stays_within_twice_the_pool_reservation() {
    let mut config = EngineConfig::default();
    config.engine.memory_limit = "2GiB".into();
    config.engine.target_partitions = 2;
    let engine = Engine::start(&config).await.unwrap();
    for (family, aggregate) in [
        (
            "event list",
            "window_funnel(7200, '', ts, e = 1, e = 2, e = 3)",
        ),
        ("row arena", "attribution('linear', ts, ch, e = 4)"),
        ("row arena, paths", "event_path(ts, ch, e = 1, 8)"),
    ] {
        let sql = format!("SELECT m, {aggregate} AS a FROM ({EVENTS}) GROUP BY m");
        let pool = Arc::clone(&engine.context().runtime_env().memory_pool);
        let reserved_peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (Arc::clone(&reserved_peak), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(pool.reserved(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let before = counting_alloc::reset_peak();
        let rows: usize = engine
            .sql(&sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        let heap = counting_alloc::peak() - before;
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        let reserved = reserved_peak.load(Ordering::Relaxed);
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        println!(
            "M5 {family}: heap +{:.0} MiB, pool reservation peak {:.0} MiB ({rows} groups)",
            mib(heap),
            mib(reserved)
        );
        assert_eq!(rows, 2000, "{family}");
        assert!(
            heap > 64 << 20,
            "{family}: the state should outgrow the 64 MiB slack: heap +{:.0} MiB",
            mib(heap)
        );
        assert!(
            heap <= 2 * reserved + (64 << 20),
            "{family}: heap +{:.0} MiB against a pool reservation of {:.0} MiB",
            mib(heap),
            mib(reserved)
        );
    }
}

/// Every aggregate of ours, with how many groups make its state large: a
/// state of a fixed size per group needs many groups.
const AGGREGATES: &[(&str, u64, u64)] = &[
    (
        "window_funnel(7200, '', ts, e = 1, e = 2, e = 3)",
        2_000,
        1_000_000,
    ),
    (
        "sequence_match('(?1)(?t<3600)(?2)', ts, e = 1, e = 2)",
        2_000,
        1_000_000,
    ),
    (
        "sequence_count('(?1)(?2)', ts, e = 1, e = 2)",
        2_000,
        1_000_000,
    ),
    ("sessions(ts, 1800)", 2_000, 1_000_000),
    ("retention(e = 1, e = 2, e = 3)", 200_000, 1_000_000),
    ("lifecycle_stage(ts, DATE '2026-12-01')", 200_000, 1_000_000),
    ("bitmap_agg(id)", 2_000, 1_000_000),
    (
        "bitmap_or_agg(bitmap_from_array(make_array(id, id + 70000)))",
        2_000,
        1_000_000,
    ),
    // the intersection of every other row's 0..1M: 500,000 ids
    (
        "bitmap_and_agg(bitmap_from_array(range(0, 1000000, 1 + id % 2)))",
        1,
        4,
    ),
    ("event_path(ts, ch, e = 1, 8)", 2_000, 1_000_000),
    ("attribution('linear', ts, ch, e = 4)", 2_000, 1_000_000),
    (
        "sequence_next_node('forward', 'head', ts, ch, e = 1, e = 1, e = 2)",
        2_000,
        1_000_000,
    ),
    (
        "window_funnel_detail(7200, '', ts, ch, e = 1, e = 2, e = 3)",
        2_000,
        1_000_000,
    ),
    (
        "window_funnel_exclude(7200, '', '1-2', ts, e = 1, e = 2, e = 3)",
        2_000,
        1_000_000,
    ),
    (
        "window_funnel_detail_exclude(7200, '', '1-2', ts, ch, e = 1, e = 2, e = 3)",
        2_000,
        1_000_000,
    ),
];

/// The lowest aggregation of `plan` (the one that reads rows).
fn first_aggregation(plan: &Arc<dyn ExecutionPlan>) -> Option<&AggregateExec> {
    let below = plan.children().into_iter().find_map(first_aggregation);
    below.or_else(|| plan.downcast_ref::<AggregateExec>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_each_accumulator_reports_its_heap() {
    let mut config = EngineConfig::default();
    config.engine.target_partitions = 1;
    let engine = Engine::start(&config).await.unwrap();
    let mut failures = Vec::new();
    for &(aggregate, groups, rows) in AGGREGATES {
        let sql = format!(
            "SELECT m, {aggregate} AS a FROM (SELECT value % {groups} AS m, value AS id,
                 to_timestamp_seconds(value) AS ts, value % 5 AS e, CAST(value % 7 AS VARCHAR) AS ch
             FROM generate_series(1, {rows})) GROUP BY m"
        );
        let plan = engine
            .sql(&sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let aggregation = first_aggregation(&plan).unwrap();
        let function = &aggregation.aggr_expr()[0];
        // the rows, their groups and the function's arguments, made before counting
        let input = collect(Arc::clone(aggregation.input()), engine.context().task_ctx())
            .await
            .unwrap();
        let evaluate = |batch: &RecordBatch| -> (Vec<usize>, Vec<ArrayRef>) {
            let key = aggregation.group_expr().expr()[0]
                .0
                .evaluate(batch)
                .unwrap();
            let key = key.into_array(batch.num_rows()).unwrap();
            let key = key.as_primitive::<Int64Type>().values().iter();
            let args = function.expressions().into_iter();
            let args = args.map(|e| {
                e.evaluate(batch)
                    .unwrap()
                    .into_array(batch.num_rows())
                    .unwrap()
            });
            (key.map(|&m| m as usize).collect(), args.collect())
        };
        let batches: Vec<_> = input.iter().map(evaluate).collect();

        // (the bitmap combinations have no groups accumulator)
        // and after the first half of the groups is emitted
        let [mut held, mut reported, mut held_rest, mut reported_rest] = [0; 4];
        if function.groups_accumulator_supported() {
            let before = counting_alloc::live();
            let mut grouped = function.create_groups_accumulator().unwrap();
            for (groups_of, args) in &batches {
                grouped
                    .update_batch(args, groups_of, None, groups as usize)
                    .unwrap();
            }
            held = counting_alloc::live() - before;
            reported = grouped.size();
            drop(
                grouped
                    .evaluate(EmitTo::First(groups as usize / 2))
                    .unwrap(),
            );
            held_rest = counting_alloc::live() - before;
            reported_rest = grouped.size();
        }

        let before = counting_alloc::live();
        let mut single = function.create_accumulator().unwrap();
        for (_, args) in &batches {
            single.update_batch(args).unwrap();
        }
        let held_single = counting_alloc::live() - before;
        let reported_single = single.size();
        drop(single);

        if held.max(held_single) < 100 << 10 {
            failures.push(format!(
                "{aggregate}: {} bytes held, too few to judge",
                held.max(held_single)
            ));
        }
        for (what, held, reported) in [
            ("grouped", held, reported),
            ("grouped, half emitted", held_rest, reported_rest),
            ("single", held_single, reported_single),
        ] {
            let kib = |b: usize| b as f64 / 1024.0;
            let off = reported as f64 - held as f64;
            println!(
                "M5 {aggregate} ({what}): heap {:.1} KiB, size() {:.1} KiB ({:+.0} %)",
                kib(held),
                kib(reported),
                100.0 * off / held.max(1) as f64
            );
            // a single group's fixed-size state is judged to 4 KiB
            if off.abs() > (0.25 * held as f64).max(4096.0) {
                failures.push(format!(
                    "{aggregate} ({what}): size() {:.1} KiB against {:.1} KiB on the heap",
                    kib(reported),
                    kib(held)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
