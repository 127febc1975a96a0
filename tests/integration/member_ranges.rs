//! Member-range partitioning: whatever the number of files and partitions, a
//! per-member aggregate over files with disjoint member ranges plans with no
//! repartition and answers exactly as with one partition; files whose ranges
//! overlap (one per load) are merged per range, with no repartition and no
//! sort, and answer the same too.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::util::pretty::pretty_format_batches;
use audience_engine::{Engine, EngineConfig};
use parquet::arrow::ArrowWriter;

const QUERY: &str = "SELECT member_id, count(*) AS events,
    window_funnel(3600, '', ts, event = 'view', event = 'cart', event = 'pay') AS level
  FROM events GROUP BY member_id ORDER BY member_id";

/// Writes `events/part-NN.parquet` under `dir`: file `f` holds members
/// `starts[f]..starts[f + 1]` (uneven ranges), each with a few events sorted by
/// `(member_id, ts)`.
fn write_events(dir: &Path, starts: &[i64]) {
    for (f, range) in starts.windows(2).enumerate() {
        write_file(dir, &format!("part-{f:02}"), range[0]..range[1], 0);
    }
}

/// Writes `events/NAME.parquet` under `dir`: members `members`, each with a
/// few events sorted by `(member_id, ts)`, at times shifted by `shift` µs.
fn write_file(dir: &Path, name: &str, members: std::ops::Range<i64>, shift: i64) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("member_id", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("event", DataType::Utf8, false),
    ]));
    let folder = dir.join("events");
    std::fs::create_dir_all(&folder).unwrap();
    let kinds = ["view", "cart", "pay", "search"];
    let (mut ids, mut ts, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for member in members {
        for step in 0..(member % 5 + 1) {
            ids.push(member);
            ts.push(1_700_000_000_000_000 + shift + step * 600_000_000 * (member % 3 + 1));
            events.push(kinds[((member + step + shift) % 4) as usize]);
        }
    }
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(TimestampMicrosecondArray::from(ts)),
            Arc::new(StringArray::from(events)),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(folder.join(format!("{name}.parquet"))).unwrap();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

async fn engine(dir: &Path, partitions: usize) -> Engine {
    let mut config = EngineConfig::default();
    config.data.dir = dir.to_str().unwrap().to_string();
    config.engine.target_partitions = partitions;
    Engine::start(&config).await.unwrap()
}

async fn answer(engine: &Engine) -> String {
    let batches = engine.sql(QUERY).await.unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

async fn plan(engine: &Engine) -> String {
    explain(engine, QUERY).await
}

async fn explain(engine: &Engine, sql: &str) -> String {
    let batches = engine
        .sql(&format!("EXPLAIN {sql}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disjoint_files_stream_per_member_at_any_file_and_partition_count() {
    for files in [1usize, 2, 3, 5, 7, 16] {
        let dir = tempfile::tempdir().unwrap();
        // uneven ranges: file f holds 3 + 2f members
        let starts: Vec<i64> = std::iter::once(1)
            .chain((0..files as i64).scan(1, |next, f| {
                *next += 3 + 2 * f;
                Some(*next)
            }))
            .collect();
        write_events(dir.path(), &starts);
        let reference = answer(&engine(dir.path(), 1).await).await;
        assert!(reference.lines().count() > 6, "{reference}");
        for partitions in [2, 3, 4, 16] {
            let engine = engine(dir.path(), partitions).await;
            assert_eq!(
                answer(&engine).await,
                reference,
                "{files} files, {partitions} partitions"
            );
            if files >= 2 {
                let plan = plan(&engine).await;
                assert!(
                    !plan.contains("RepartitionExec") && plan.contains("SinglePartitioned"),
                    "{files} files, {partitions} partitions: expected a one-phase aggregate \
                     with no repartition:\n{plan}"
                );
            }
        }
    }
}

/// The query's rows in `(member_id, ts)` order, which a scan that claims
/// that order must deliver without a sort.
const ROWS: &str = "SELECT member_id, ts, event FROM events ORDER BY member_id, ts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_files_merge_per_range_at_any_partition_count() {
    let dir = tempfile::tempdir().unwrap();
    // a compacted layout, then three "loads" whose files overlap its ranges
    // (times shifted so that their events interleave with the others')
    write_events(dir.path(), &[1, 10, 20, 30, 45, 60]);
    write_file(dir.path(), "load-1", 9..20, 300_000_000);
    write_file(dir.path(), "load-2", 25..50, 150_000_000);
    write_file(dir.path(), "load-3", 58..70, 450_000_000);
    let reference = answer(&engine(dir.path(), 1).await).await;
    let reference_rows = rows(&engine(dir.path(), 1).await).await;
    assert!(reference.lines().count() > 60, "{reference}");
    for partitions in [2, 3, 4, 16] {
        let engine = engine(dir.path(), partitions).await;
        assert_eq!(answer(&engine).await, reference, "{partitions} partitions");
        let plan = plan(&engine).await;
        assert!(
            plan.contains("MergeMemberRangesExec")
                && plan.contains("SinglePartitioned")
                && !plan.contains("RepartitionExec")
                && !plan.contains("SortExec"),
            "{partitions} partitions: expected a one-phase aggregate over merged ranges:\n{plan}"
        );
        // the merged ranges deliver the order they claim: no sort is planned,
        // and the rows come out as a full sort gives them
        let plan = explain(&engine, ROWS).await;
        assert!(!plan.contains("SortExec"), "{plan}");
        assert_eq!(
            rows(&engine).await,
            reference_rows,
            "{partitions} partitions"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_all_overlap_are_not_declared_range_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), &[1, 30]);
    write_file(dir.path(), "load-1", 1..30, 300_000_000);
    write_file(dir.path(), "load-2", 5..25, 150_000_000);
    let reference = answer(&engine(dir.path(), 1).await).await;
    let engine = engine(dir.path(), 3).await;
    assert_eq!(answer(&engine).await, reference);
    let plan = plan(&engine).await;
    assert!(
        plan.contains("RepartitionExec") && !plan.contains("MergeMemberRangesExec"),
        "{plan}"
    );
}

async fn rows(engine: &Engine) -> String {
    let batches = engine.sql(ROWS).await.unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

/// Each event's session: the window function over members in time order.
const SESSION_NUMBERS: &str = "SELECT member_id, ts,
    session_number(ts, 1200, 3000) OVER (PARTITION BY member_id ORDER BY ts) AS session
  FROM events ORDER BY member_id, ts, session";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_numbers_stream_on_disjoint_and_merged_ranges_without_sort_or_repartition() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), &[1, 10, 20, 30, 45, 60]);
    let merged = tempfile::tempdir().unwrap();
    write_events(merged.path(), &[1, 10, 20, 30, 45, 60]);
    write_file(merged.path(), "load-1", 9..20, 300_000_000);
    write_file(merged.path(), "load-2", 25..50, 150_000_000);
    for (layout, dir) in [("disjoint", dir.path()), ("merged", merged.path())] {
        let collect = |engine: Engine| async move {
            let batches = engine.sql(SESSION_NUMBERS).await.unwrap();
            pretty_format_batches(&batches.collect().await.unwrap())
                .unwrap()
                .to_string()
        };
        let reference = collect(engine(dir, 1).await).await;
        assert!(reference.lines().count() > 100, "{reference}");
        // members have several sessions
        let most = engine(dir, 1)
            .await
            .sql(&format!("SELECT max(session) FROM ({SESSION_NUMBERS})"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let most = pretty_format_batches(&most).unwrap().to_string();
        let most: i64 = most
            .lines()
            .nth(3)
            .unwrap()
            .trim_matches(['|', ' '])
            .parse()
            .unwrap();
        assert!(most >= 3, "{layout}: at most {most} sessions per member");
        for partitions in [2, 3, 16] {
            let engine = engine(dir, partitions).await;
            let plan = explain(&engine, SESSION_NUMBERS).await;
            let window = plan
                .lines()
                .skip_while(|l| !l.contains("BoundedWindowAggExec"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                window.contains("mode=[Sorted]")
                    && !window.contains("RepartitionExec")
                    && !window.contains("SortExec"),
                "{layout}, {partitions} partitions: the window must stream:\n{plan}"
            );
            assert_eq!(
                collect(engine).await,
                reference,
                "{layout}, {partitions} partitions"
            );
        }
    }
}

/// The second family's aggregates per member.
const PER_MEMBER: &str = "SELECT member_id, sessions(ts, 1200) AS s,
    event_path(ts, event, event = 'view', 3) AS p,
    attribution('linear', ts, event, event = 'pay') AS a,
    sequence_next_node('forward', 'first_match', ts, event, true, event = 'view') AS n,
    window_funnel_detail(3600, '', ts, event, event = 'view', event = 'pay') AS d,
    window_funnel_exclude(3600, '', '1-2', ts, event = 'view', event = 'pay', event = 'cart') AS x
  FROM events GROUP BY member_id ORDER BY member_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_member_aggregates_of_the_second_family_run_in_one_phase_without_repartition() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), &[1, 10, 20, 30, 45, 60]);
    let merged = tempfile::tempdir().unwrap();
    write_events(merged.path(), &[1, 10, 20, 30, 45, 60]);
    write_file(merged.path(), "load-1", 9..20, 300_000_000);
    for (layout, dir) in [("disjoint", dir.path()), ("merged", merged.path())] {
        let reference = engine(dir, 1).await.sql(PER_MEMBER).await.unwrap();
        let reference = pretty_format_batches(&reference.collect().await.unwrap())
            .unwrap()
            .to_string();
        for partitions in [2, 3] {
            let engine = engine(dir, partitions).await;
            let plan = explain(&engine, PER_MEMBER).await;
            assert!(
                plan.contains("SinglePartitioned") && !plan.contains("RepartitionExec"),
                "{layout}, {partitions} partitions: expected one phase, no repartition:\n{plan}"
            );
            let got = engine
                .sql(PER_MEMBER)
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            assert_eq!(
                pretty_format_batches(&got).unwrap().to_string(),
                reference,
                "{layout}, {partitions} partitions"
            );
        }
    }
}
