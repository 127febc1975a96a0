//! The generated dataset: deterministic at any thread count, and every behavior
//! `shared/DATASET.md` promises, checked by SQL over the generated files.

use crate::common;

use std::path::Path;

use arrow::array::{Array, AsArray, Int64Array};
use arrow::datatypes::TimestampMicrosecondType;
use audience_data::{GenConfig, GenProgress, Scale};
use audience_engine::{Engine, EngineConfig};

fn generate(out: &Path, threads: usize) -> audience_data::GenSummary {
    let mut config = GenConfig::new(Scale::Tiny, out);
    config.members = 2_000;
    config.events = 200_000;
    config.threads = threads;
    audience_data::generate(&config, &GenProgress::default()).unwrap()
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn same_seed_same_bytes_at_any_thread_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = generate(a.path(), 1);
    let sb = generate(b.path(), 2);
    assert_eq!(sa, sb);
    for table in audience_data::TABLES {
        let (fa, fb) = (files(&a.path().join(table)), files(&b.path().join(table)));
        assert_eq!(fa.len(), 4, "{table}: one file per member range");
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(x.file_name(), y.file_name());
            assert!(
                std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
                "{} differs",
                x.display()
            );
        }
    }
    // a different seed gives different rows
    let c = tempfile::tempdir().unwrap();
    let mut config = GenConfig::new(Scale::Tiny, c.path());
    config.members = 2_000;
    config.events = 200_000;
    config.seed = 7;
    audience_data::generate(&config, &GenProgress::default()).unwrap();
    let first = |d: &Path| std::fs::read(d.join("events/part-00000.parquet")).unwrap();
    assert!(first(a.path()) != first(c.path()));
}

#[test]
fn files_are_sorted_with_disjoint_member_ranges() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 2);
    for table in ["events", "orders"] {
        let mut previous_max = 0;
        for file in files(&dir.path().join(table)) {
            let mut last: Option<(i64, i64)> = None;
            let mut min_member = i64::MAX;
            for batch in common::read_file(&file) {
                let members = batch
                    .column_by_name("member_id")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                let ts = batch
                    .column_by_name("ts")
                    .unwrap()
                    .as_primitive::<TimestampMicrosecondType>();
                for i in 0..batch.num_rows() {
                    let key = (members.value(i), ts.value(i));
                    assert!(
                        last.is_none_or(|l| l <= key),
                        "{}: {last:?} then {key:?}",
                        file.display()
                    );
                    last = Some(key);
                    min_member = min_member.min(key.0);
                }
            }
            if let Some((max_member, _)) = last {
                assert!(
                    min_member > previous_max,
                    "{}: member ranges overlap",
                    file.display()
                );
                previous_max = max_member;
            }
        }
    }
}

/// Runs `sql` and returns the first row's values as f64.
async fn row(engine: &Engine, sql: &str) -> Vec<f64> {
    let batches = engine.sql(sql).await.unwrap().collect().await.unwrap();
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .unwrap_or_else(|| panic!("no rows: {sql}"));
    batch
        .columns()
        .iter()
        .map(|c| {
            let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Float64).unwrap();
            assert!(!c.is_null(0), "NULL from {sql}");
            c.as_primitive::<arrow::datatypes::Float64Type>().value(0)
        })
        .collect()
}

fn within(what: &str, value: f64, lo: f64, hi: f64) {
    assert!(
        (lo..=hi).contains(&value),
        "{what} = {value}, expected in [{lo}, {hi}]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviors_hold() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(dir.path(), 2);
    let mut config = EngineConfig::default();
    config.data.dir = dir.path().to_string_lossy().into_owned();
    let engine = Engine::start(&config).await.unwrap();
    let n = 2_000.0;

    // dense ids, unique members, events reference members
    assert_eq!(row(&engine, "SELECT count(*), count(DISTINCT member_id), min(member_id), max(member_id) FROM members").await, [n, n, 1.0, n]);
    assert_eq!(row(&engine, "SELECT count(*) FROM events e LEFT JOIN members m ON e.member_id = m.member_id WHERE m.member_id IS NULL").await, [0.0]);
    let events = row(&engine, "SELECT count(*) FROM events").await[0];
    assert_eq!(events as u64, summary.rows_of("events"));
    within("events per member", events / n, 70.0, 130.0);

    // a member's events have distinct timestamps, so every engine orders a history the same way
    assert_eq!(row(&engine, "SELECT count(*) FROM (SELECT member_id, ts FROM events GROUP BY member_id, ts HAVING count(*) > 1)").await, [0.0]);

    // every pay event has exactly one order with the same member, time, channel and amount
    let [pays, orders, matched] = row(&engine, "SELECT (SELECT count(*) FROM events WHERE event = 'pay') AS pays, (SELECT count(*) FROM orders) AS orders, \
        (SELECT count(*) FROM events e JOIN orders o ON e.member_id = o.member_id AND e.ts = o.ts AND e.channel = o.channel AND e.amount = o.amount WHERE e.event = 'pay') AS matched").await[..] else { unreachable!() };
    assert_eq!(pays, orders);
    assert_eq!(pays, matched);
    assert_eq!(
        row(
            &engine,
            "SELECT count(*) - count(DISTINCT order_id) FROM orders"
        )
        .await,
        [0.0]
    );

    // the funnel: view → cart ~30% → order ~40% of carts → pay ~85% of orders
    let f = row(&engine, "SELECT sum(CASE WHEN event = 'view' THEN 1 END), sum(CASE WHEN event = 'cart' THEN 1 END), \
        sum(CASE WHEN event = 'order' THEN 1 END), sum(CASE WHEN event = 'pay' THEN 1 END) FROM events").await;
    within("cart/view", f[1] / f[0], 0.25, 0.36);
    within("order/cart", f[2] / f[1], 0.33, 0.47);
    within("pay/order", f[3] / f[2], 0.80, 0.90);

    // amounts only on order, pay and refund, always positive; store ids only in stores
    assert_eq!(row(&engine, "SELECT count(*) FROM events WHERE (amount IS NOT NULL) <> (event IN ('order', 'pay', 'refund')) OR amount <= 0").await, [0.0]);
    assert_eq!(
        row(
            &engine,
            "SELECT count(*) FROM events WHERE (store_id IS NOT NULL) <> (channel = 'store')"
        )
        .await,
        [0.0]
    );

    // all events inside the 365 days before the end date
    let [lo, hi] = row(&engine, "SELECT min(ts) >= TIMESTAMP '2025-12-01 00:00:00', max(ts) < TIMESTAMP '2026-12-01 00:00:00' FROM events").await[..] else { unreachable!() };
    assert_eq!((lo, hi), (1.0, 1.0));

    // activity is heavy-tailed: the median member is well below the mean, the busiest far above
    let [median, max] = row(
        &engine,
        "SELECT median(c), max(c) FROM (SELECT count(*) AS c FROM events GROUP BY member_id)",
    )
    .await[..] else {
        unreachable!()
    };
    within("median events per member", median, 5.0, events / n / 2.0);
    assert!(max > 10.0 * events / n, "busiest member has {max} events");

    // prospects never pay; repeat buyers exist; some members are dormant at the end
    let buyers = row(&engine, "SELECT count(DISTINCT member_id) FROM orders").await[0];
    within("prospect share", 1.0 - buyers / n, 0.15, 0.6);
    let repeat = row(&engine, "SELECT count(*) FROM (SELECT member_id FROM orders GROUP BY member_id HAVING count(*) >= 2)").await[0];
    within("repeat buyer share", repeat / buyers, 0.3, 1.0);
    let dormant = row(&engine, "SELECT count(*) FROM (SELECT member_id FROM events GROUP BY member_id HAVING max(ts) < TIMESTAMP '2026-09-01 00:00:00')").await[0];
    within("dormant share", dormant / n, 0.05, 0.6);

    // seasonal peaks and weekly rhythm
    let [single_day, average_day] = row(&engine, "SELECT sum(CASE WHEN CAST(ts AS DATE) = DATE '2026-11-11' THEN 1 ELSE 0 END), count(*) / 365.0 FROM events").await[..] else { unreachable!() };
    assert!(
        single_day > 2.5 * average_day,
        "11.11 {single_day} vs average {average_day}"
    );
    let [weekend, weekday] = row(
        &engine,
        "SELECT sum(CASE WHEN extract(dow FROM ts) IN (0, 6) THEN 1 ELSE 0 END) / 2.0, \
        sum(CASE WHEN extract(dow FROM ts) IN (1, 2, 3, 4) THEN 1 ELSE 0 END) / 4.0 FROM events",
    )
    .await[..] else {
        unreachable!()
    };
    assert!(
        weekend > 1.1 * weekday,
        "weekend {weekend} vs weekday {weekday}"
    );

    // members: tiers, cities, provinces consistent, some shared phones
    within(
        "black tier share",
        row(
            &engine,
            "SELECT avg(CASE WHEN tier = 'black' THEN 1.0 ELSE 0 END) FROM members",
        )
        .await[0],
        0.002,
        0.03,
    );
    within(
        "cities",
        row(&engine, "SELECT count(DISTINCT city) FROM members").await[0],
        100.0,
        300.0,
    );
    assert_eq!(row(&engine, "SELECT count(*) FROM (SELECT city FROM members GROUP BY city HAVING count(DISTINCT province) > 1)").await, [0.0]);
    within(
        "birth year unknown",
        row(
            &engine,
            "SELECT avg(CASE WHEN birth_year IS NULL THEN 1.0 ELSE 0 END) FROM members",
        )
        .await[0],
        0.1,
        0.2,
    );
    assert!(row(&engine, "SELECT count(*) FROM (SELECT phone_hash FROM members WHERE phone_hash IS NOT NULL GROUP BY phone_hash HAVING count(*) > 1)").await[0] > 0.0);

    // tags: ~20 per member, ~400 names; identities: shared values link members
    within(
        "tags per member",
        row(&engine, "SELECT count(*) / 2000.0 FROM member_tags").await[0],
        15.0,
        25.0,
    );
    within(
        "tag names",
        row(&engine, "SELECT count(DISTINCT tag) FROM member_tags").await[0],
        300.0,
        420.0,
    );
    assert!(row(&engine, "SELECT count(*) FROM (SELECT id_value FROM identities WHERE member_id IS NOT NULL GROUP BY id_value HAVING count(DISTINCT member_id) > 1)").await[0] > 0.0);
    assert!(
        row(
            &engine,
            "SELECT count(*) FROM identities WHERE member_id IS NULL"
        )
        .await[0]
            > 0.0
    );
}
