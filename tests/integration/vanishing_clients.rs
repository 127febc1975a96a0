//! Reliability F1 and F8: clients that vanish mid-stream and clients that read
//! slowly. A dropped connection stops its query at once (CPU idle, nothing
//! left running, memory back); a slow reader holds the server to a bounded
//! buffer, not the whole result.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::common::reliability::{full, record, size};
use crate::common::test_server::{TestConfig, TestServer};
use crate::flight_protocol::{login, start_reading};

/// A result of millions of rows, computed as it streams.
const LARGE: &str = "SELECT value, value * 2 AS twice FROM generate_series(1, 50000000)";

/// How many queries the server has logged as ended by a vanished client.
fn disconnected(server: &TestServer) -> usize {
    let log = server.log();
    let ended = |l: &&str| l.contains("\"outcome\":\"disconnected\"");
    log.lines().filter(ended).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_clients_that_vanish_mid_stream_leave_nothing_running() {
    let server = TestServer::spawn(TestConfig::default());
    let (clients, rounds) = (size(10, 50), size(3, 20));
    let mut rss = Vec::new();
    let mut slowest_stop = Duration::ZERO;
    for round in 0..rounds {
        // all start at once (more than the server's 8 slots: the rest queue),
        // and each goes as soon as it has its first batch
        let mut logged_in = Vec::new();
        for _ in 0..clients {
            logged_in.push(login(&server, "analyst").await);
        }
        let vanishing: Vec<_> = logged_in
            .into_iter()
            .map(|mut client| {
                tokio::spawn(async move {
                    start_reading(&mut client, LARGE).await;
                    // the connection closes with the client and its stream
                })
            })
            .collect();
        for client in vanishing {
            client.await.unwrap();
        }
        let dropped = Instant::now();
        while disconnected(&server) < (round + 1) * clients {
            assert!(
                dropped.elapsed() < Duration::from_secs(2),
                "round {round}: {} of {} queries stopped after 2 s",
                disconnected(&server) - round * clients,
                clients
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slowest_stop = slowest_stop.max(dropped.elapsed());
        // each query was streaming and was stopped by its client's going (the
        // log lines above); now nothing runs
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(dropped.elapsed())).await;
        let idle = server.cpu_seconds();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = server.cpu_seconds() - idle;
        assert!(
            used < 0.15,
            "round {round}: {used:.2} CPU s in the second after"
        );
        rss.push(server.status_value("VmRSS:"));
    }
    println!(
        "F1: {clients} clients × {rounds} rounds; all stopped within {slowest_stop:?}; RSS KiB per round {rss:?}"
    );
    // no growth across rounds (the first round warms caches and pools)
    let (first, last) = (rss[0], *rss.last().unwrap());
    assert!(
        last <= first + (50 << 10),
        "RSS grew across rounds: {rss:?}"
    );
    record(
        "F1",
        serde_json::json!({ "clients": clients, "rounds": rounds,
            "stopped_within_s": slowest_stop.as_secs_f64(), "rss_kib": rss }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_a_slow_reader_holds_the_server_to_a_bounded_buffer() {
    let server = TestServer::spawn(TestConfig::default());
    let seconds = if full() { 60 } else { 15 };
    let mut client = login(&server, "analyst").await;
    let info = client.execute(LARGE.into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = client.do_get(ticket).await.unwrap();
    stream.next().await.unwrap().unwrap();
    let before = server.status_value("VmRSS:");
    let (mut rows, mut peak) = (0, before);
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rows += stream.next().await.unwrap().unwrap().num_rows();
        peak = peak.max(server.status_value("VmRSS:"));
    }
    let growth = (peak - before) >> 10;
    println!("F8: read {rows} rows in {seconds} s; server RSS {before} KiB, peak +{growth} MiB");
    assert!(rows > 0);
    assert!(
        growth <= 100,
        "the server buffered {growth} MiB for a slow reader"
    );
    record(
        "F8",
        serde_json::json!({ "seconds": seconds, "rows_read": rows, "rss_growth_mib": growth }),
    );
}
