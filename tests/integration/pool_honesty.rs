//! Reliability M5, pool honesty: while a query runs under a memory limit, the
//! heap it allocates stays within twice what the memory pool was told plus
//! 64 MiB. The per-member state of our aggregates (event lists, row arenas)
//! is what grows with the data, so each family gets a grouping whose state
//! is well over 64 MiB: an accumulator whose `size()` under-reports fails it.
//! The heap is counted by the binary's allocator (`common/counting_alloc.rs`),
//! the pool's reservation sampled every millisecond (its peak can only be
//! missed low, which makes the check stricter).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use audience_engine::{Engine, EngineConfig};

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
