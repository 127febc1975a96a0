//! Member-range partitioning: whatever the number of files and partitions, a
//! per-member aggregate over files with disjoint member ranges plans with no
//! repartition and answers exactly as with one partition; files whose ranges
//! overlap are not declared range-partitioned, and answer the same too.

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
    for (f, range) in starts.windows(2).enumerate() {
        let (mut members, mut ts, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for member in range[0]..range[1] {
            for step in 0..(member % 5 + 1) {
                members.push(member);
                ts.push(1_700_000_000_000_000 + step * 600_000_000 * (member % 3 + 1));
                events.push(kinds[((member + step) % 4) as usize]);
            }
        }
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(members)),
                Arc::new(TimestampMicrosecondArray::from(ts)),
                Arc::new(StringArray::from(events)),
            ],
        )
        .unwrap();
        let file = std::fs::File::create(folder.join(format!("part-{f:02}.parquet"))).unwrap();
        let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
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
    let batches = engine
        .sql(&format!("EXPLAIN {QUERY}"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_files_are_not_declared_range_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), &[1, 10, 20, 30]);
    // a fourth file with members 9..20, which the second file holds too
    let more = tempfile::tempdir().unwrap();
    write_events(more.path(), &[9, 20]);
    std::fs::rename(
        more.path().join("events/part-00.parquet"),
        dir.path().join("events/part-03.parquet"),
    )
    .unwrap();
    let reference = answer(&engine(dir.path(), 1).await).await;
    let engine = engine(dir.path(), 3).await;
    assert_eq!(answer(&engine).await, reference);
    let plan = plan(&engine).await;
    assert!(plan.contains("RepartitionExec"), "{plan}");
}
