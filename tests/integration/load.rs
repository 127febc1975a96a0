//! Reliability L1–L3: dashboards over Flight SQL. Clients loop over an
//! eight-request dashboard mix (a member profile, a bitmap segment size, 7-day
//! GMV, this week's top categories, a 3-step funnel, one cohort's retention,
//! `GetTables`/`GetSqlInfo`, a prepared statement with a parameter) against
//! one server with its default limits (8 running, 64 queued) and its result
//! cache, which answers four of them (GMV, categories, funnel, retention: the
//! same query each time, over Delta tables) once their first run has
//! finished (L2 turns it off). The CI slice
//! runs on the tiny sample with the debug build; `scripts/reliability.sh`
//! runs the full sizes on scale s (release) and records the figures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::FlightInfo;
use arrow_flight::sql::CommandGetTables;
use arrow_flight::sql::client::FlightSqlServiceClient;
use tonic::transport::Channel;

use crate::common::reliability::{Seeded, full, record, server_config};
use crate::common::test_server::{TestServer, open_fds, status_value};
use crate::flight_protocol::{login, try_fetch};

/// The dashboard's SQL requests (the mix adds metadata and a prepared statement).
const DASHBOARD: [&str; 6] = [
    "SELECT m.tier, m.city, e.ts, e.event FROM members m JOIN (SELECT * FROM events \
     WHERE member_id = {id} ORDER BY ts DESC LIMIT 50) e ON e.member_id = m.member_id",
    "SELECT bitmap_cardinality(bitmap_and((SELECT bitmap_or_agg(bitmap) FROM tag_bitmaps \
     WHERE tag = 'tier' AND value IN ('gold', 'black')), (SELECT bitmap_or_agg(bitmap) \
     FROM tag_bitmaps WHERE tag = 'preferred_channel' AND value IN ('app', 'miniprogram')))) AS n",
    "SELECT CAST(ts AS DATE) AS day, sum(amount) AS gmv, count(DISTINCT member_id) AS buyers \
     FROM orders WHERE ts >= TIMESTAMP '2026-11-23 00:00:00' GROUP BY 1 ORDER BY 1",
    "SELECT category, count(DISTINCT member_id) AS buyers FROM events WHERE event = 'pay' \
     AND category IS NOT NULL AND ts >= TIMESTAMP '2026-11-09 00:00:00' \
     AND ts < TIMESTAMP '2026-11-16 00:00:00' GROUP BY category ORDER BY buyers DESC LIMIT 20",
    "SELECT level, count(*) AS members FROM (SELECT member_id, window_funnel(604800, '', ts, \
     event = 'view', event = 'cart', event = 'pay') AS level FROM events \
     WHERE event IN ('view', 'cart', 'pay') GROUP BY member_id) GROUP BY level ORDER BY level",
    "SELECT sum(r[1]) AS cohort, sum(r[2]) AS w1, sum(r[3]) AS w2 FROM (SELECT member_id, \
     retention(ts < TIMESTAMP '2026-10-08 00:00:00', ts >= TIMESTAMP '2026-10-08 00:00:00' \
     AND ts < TIMESTAMP '2026-10-15 00:00:00', ts >= TIMESTAMP '2026-10-15 00:00:00') AS r \
     FROM orders WHERE ts >= TIMESTAMP '2026-10-01 00:00:00' GROUP BY member_id)",
];
const PREPARED: &str =
    "SELECT count(*) AS orders, sum(amount) AS spent FROM orders WHERE member_id = $1";
/// A heavy query (L3): a self-join of each member's events.
const HEAVY: &str = "SELECT count(*) FROM events a JOIN events b \
                     ON a.member_id = b.member_id AND a.ts < b.ts";

/// What the clients saw.
#[derive(Debug, Default)]
struct Seen {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    /// Requests completed by each client.
    completed: Vec<usize>,
}

impl Seen {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    fn figures(&self, seconds: f64) -> serde_json::Value {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        serde_json::json!({
            "requests": self.latencies.len(), "errors": self.errors.len(),
            "per_second": self.latencies.len() as f64 / seconds,
            "p50_ms": ms(self.percentile(0.50)), "p95_ms": ms(self.percentile(0.95)),
            "p99_ms": ms(self.percentile(0.99)),
        })
    }
}

async fn run_info(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<usize, String> {
    let batches = try_fetch(client, &info).await?;
    Ok(batches.iter().map(RecordBatch::num_rows).sum())
}

/// One request of the mix, chosen by `pick` (0..8).
pub(crate) async fn request(
    client: &mut FlightSqlServiceClient<Channel>,
    pick: usize,
    member: i64,
) -> Result<usize, String> {
    let info = match pick {
        0..=5 => {
            let sql = DASHBOARD[pick].replace("{id}", &member.to_string());
            client.execute(sql, None).await
        }
        6 if member % 2 == 0 => {
            let tables = CommandGetTables {
                include_schema: true,
                ..Default::default()
            };
            client.get_tables(tables).await
        }
        6 => client.get_sql_info(vec![]).await,
        _ => {
            let mut statement = client
                .prepare(PREPARED.into(), None)
                .await
                .map_err(|e| e.to_string())?;
            let schema = Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, false)]));
            let id = Arc::new(Int64Array::from(vec![member]));
            let parameters = RecordBatch::try_new(schema, vec![id]).unwrap();
            statement
                .set_parameters(parameters)
                .map_err(|e| e.to_string())?;
            let info = statement.execute().await;
            let _ = statement.close().await;
            info
        }
    };
    run_info(client, info.map_err(|e| e.to_string())?).await
}

/// `clients` dashboards looping for `duration`, each pausing `think` (a
/// range of milliseconds) between requests.
async fn dashboards(
    server: &TestServer,
    clients: usize,
    duration: Duration,
    think: Option<(u64, u64)>,
    seed: u64,
) -> Seen {
    let seen = Arc::new(Mutex::new(Seen {
        completed: vec![0; clients],
        ..Seen::default()
    }));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = login(server, if c % 2 == 0 { "analyst" } else { "admin" }).await;
        let seen = Arc::clone(&seen);
        tasks.push(tokio::spawn(async move {
            let mut rng = Seeded::quiet(seed ^ (c as u64) << 32);
            while Instant::now() < deadline {
                let (pick, member) = (rng.below(8), 1 + rng.below(1000) as i64);
                let started = Instant::now();
                let outcome = request(&mut client, pick, member).await;
                {
                    let mut seen = seen.lock().unwrap();
                    match outcome {
                        Ok(_) => {
                            seen.latencies.push(started.elapsed());
                            seen.completed[c] += 1;
                        }
                        Err(e) => seen.errors.push(format!("request {pick}: {e}")),
                    }
                }
                if let Some((lo, hi)) = think {
                    let pause = lo + rng.below((hi - lo) as usize) as u64;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

/// A server on the sample, or in the full run on `AUDIENCE_RELIABILITY_DATA`.
fn server() -> TestServer {
    TestServer::spawn(server_config())
}

fn errors_of(seen: &Seen) -> String {
    seen.errors
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l1_dashboards_with_think_time_get_fast_answers() {
    let server = server();
    let seconds = if full() { 600 } else { 90 };
    let sampler = {
        let pid = server.pid;
        tokio::spawn(async move {
            // resources under load: at a fifth of the run (warm), and near its end
            tokio::time::sleep(Duration::from_secs(seconds / 5)).await;
            let warm = resources(pid);
            tokio::time::sleep(Duration::from_secs(seconds * 3 / 4)).await;
            (warm, resources(pid))
        })
    };
    let think = Some((1000, 3000));
    let seen = dashboards(&server, 64, Duration::from_secs(seconds), think, 11).await;
    let (early, late) = sampler.await.unwrap();
    let figures = seen.figures(seconds as f64);
    println!("L1: {figures}; RSS KiB, fds, threads: {early:?} → {late:?}");
    assert!(seen.errors.is_empty(), "errors:\n{}", errors_of(&seen));
    let enough = 64 * seconds as usize / 4;
    assert!(seen.latencies.len() > enough, "too few: {figures}");
    assert!(!server.log().contains("panicked"), "a panic in the log");
    let p99 = seen.percentile(0.99);
    assert!(
        p99 <= Duration::from_millis(if full() { 600 } else { 300 }),
        "p99 {p99:?}"
    );
    if full() {
        assert!(
            seen.percentile(0.50) <= Duration::from_millis(100),
            "{figures}"
        );
        assert!(
            seen.percentile(0.95) <= Duration::from_millis(300),
            "{figures}"
        );
        let drift = late.0 as f64 / early.0 as f64;
        assert!(drift <= 1.05, "RSS grew: {early:?} → {late:?}");
    }
    // flat: no more descriptors or threads near the end than when warm
    assert!(late.1 <= early.1 + 16, "fds grew: {early:?} → {late:?}");
    assert!(late.2 <= early.2 + 16, "threads grew: {early:?} → {late:?}");
    let figures = serde_json::json!({ "clients": 64, "seconds": seconds, "load": figures,
        "rss_kib": [early.0, late.0], "fds": [early.1, late.1], "threads": [early.2, late.2] });
    record("L1", figures);
}

/// The server's RSS (KiB), open descriptors and threads.
fn resources(pid: u32) -> (u64, usize, u64) {
    let threads = status_value(pid, "Threads:");
    (status_value(pid, "VmRSS:"), open_fds(pid), threads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l2_saturation_keeps_throughput_and_starves_no_client() {
    // Without the result cache: this row measures how the execution path
    // shares the machine when saturated. With it, five of the eight requests
    // are answered in a millisecond, and the queue is never saturated.
    let server = TestServer::spawn(server_config().with_server("result_cache = \"0\""));
    let (warm, seconds) = if full() { (30, 300) } else { (10, 60) };
    let mut best: f64 = 0.0;
    for clients in [2, 4] {
        let seen = dashboards(&server, clients, Duration::from_secs(warm), None, 21).await;
        assert!(seen.errors.is_empty(), "errors:\n{}", errors_of(&seen));
        best = best.max(seen.latencies.len() as f64 / warm as f64);
    }
    let seen = dashboards(&server, 64, Duration::from_secs(seconds), None, 22).await;
    let figures = seen.figures(seconds as f64);
    println!("L2: best of 2–4 clients {best:.1}/s; 64 clients {figures}");
    assert!(seen.errors.is_empty(), "errors:\n{}", errors_of(&seen));
    let throughput = seen.latencies.len() as f64 / seconds as f64;
    // no collapse: 90 % of the best in the full run; in the CI slice (debug
    // build, 10 s baselines on a shared machine) seven runs measured 0.79–1.13
    // of the best, so it asserts 60 %: a collapse, not the machine's noise
    let floor = if full() { 0.9 } else { 0.6 };
    assert!(
        throughput >= floor * best,
        "throughput {throughput:.1}/s against {best:.1}/s"
    );
    let mut completed = seen.completed.clone();
    completed.sort();
    let (least, median) = (completed[0], completed[completed.len() / 2]);
    assert!(
        least * 2 >= median,
        "a client starved: {least} against a median of {median}"
    );
    let (p50, p99) = (seen.percentile(0.5), seen.percentile(0.99));
    assert!(p99 <= p50 * 3, "p99 {p99:?} > 3 × p50 {p50:?}");
    record(
        "L2",
        serde_json::json!({ "clients": 64, "seconds": seconds, "best_few_per_s": best,
        "load": figures, "least_completed": least, "median_completed": median }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l3_a_burst_is_answered_or_refused_and_never_hangs() {
    // A queue of 16: the burst overflows it whether the light requests are
    // answered in milliseconds or not (with the default 64, one CI run of this
    // shared machine answered all 128).
    let server = TestServer::spawn(server_config().with_server("max_queued_queries = 16"));
    let connections = if full() { 256 } else { 128 };
    let mut clients = Vec::new();
    for c in 0..connections {
        clients.push(login(&server, if c % 2 == 0 { "analyst" } else { "admin" }).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            tokio::spawn(async move {
                let outcome = if c % 10 == 0 {
                    match client.execute(HEAVY.into(), None).await {
                        Ok(info) => run_info(&mut client, info).await,
                        Err(e) => Err(e.to_string()),
                    }
                } else {
                    request(&mut client, c % 8, 1 + c as i64).await
                };
                (outcome, started.elapsed())
            })
        })
        .collect();
    let (mut answered, mut refused, mut slowest) = (0, 0, Duration::ZERO);
    let mut timed_out = 0;
    for (c, task) in tasks.into_iter().enumerate() {
        let (outcome, took) = tokio::time::timeout(Duration::from_secs(61), task)
            .await
            .expect("a request hung past the query timeout")
            .unwrap();
        slowest = slowest.max(took);
        match outcome {
            Ok(_) => answered += 1,
            Err(e) if e.contains("server busy") && e.contains("retry") => refused += 1,
            // at scale s a self-join of every member's events runs minutes:
            // stopped at the query timeout, which names it
            Err(e) if c % 10 == 0 && e.contains("longer than server.query_timeout") => {
                timed_out += 1
            }
            Err(e) => panic!("neither answered nor refused as busy: {e}"),
        }
    }
    let after = Instant::now();
    let mut fresh = login(&server, "analyst").await;
    request(&mut fresh, 0, 7).await.unwrap();
    let served_in = after.elapsed();
    println!(
        "L3: {connections} at once: {answered} answered, {refused} refused busy, {timed_out} \
         heavy stopped at the query timeout, slowest {slowest:?}; a new connection served in \
         {served_in:?}"
    );
    assert!(refused > 0, "the burst never filled the queue");
    assert!(served_in <= Duration::from_secs(1), "{served_in:?}");
    record(
        "L3",
        serde_json::json!({ "connections": connections, "answered": answered,
        "refused_busy": refused, "timed_out": timed_out, "slowest_s": slowest.as_secs_f64(),
        "new_connection_s": served_in.as_secs_f64() }),
    );
}
