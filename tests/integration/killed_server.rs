//! Reliability F6: the server killed with SIGKILL under dashboard load, then
//! started again on the same address and spill folder. Clients see their
//! connection go, reconnect, and are served within seconds of the restart; the
//! spill files the killed server held are gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::files_under;
use crate::common::reliability::{full, record, server_config, size};
use crate::common::test_server::{TestServer, free_addr};
use crate::flight_protocol::{login, start_reading, try_login};
use crate::load::request;

/// A grouping of `rows` values, larger than the pool: it spills, and its spill
/// files stay while its client has read only the first batch.
fn spilling(rows: usize) -> String {
    format!(
        "SELECT value % 1000000007 AS v, count(*) AS n FROM generate_series(1, {rows}) GROUP BY 1"
    )
}

/// What one dashboard client saw: errors, and when it was last served.
#[derive(Debug, Default)]
struct Seen {
    errors: Vec<(Instant, String)>,
    served: Vec<Instant>,
}

/// A dashboard client that loops over the mix until `stop`, reconnecting
/// whenever its connection fails.
async fn dashboard(url: String, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>, id: i64) {
    let mut pick = id as usize;
    while !stop.load(Ordering::Relaxed) {
        let mut client = match try_login(&url, "analyst").await {
            Ok(client) => client,
            Err(e) => {
                seen.lock().unwrap().errors.push((Instant::now(), e));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            pick = (pick + 1) % 8;
            match request(&mut client, pick, 1 + (id * 37 + pick as i64) % 1000).await {
                Ok(_) => seen.lock().unwrap().served.push(Instant::now()),
                Err(e) => {
                    seen.lock().unwrap().errors.push((Instant::now(), e));
                    break; // reconnect
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f6_a_server_killed_under_load_comes_back_and_leaves_no_spill_files() {
    let spill = tempfile::tempdir().unwrap();
    let config = server_config()
        .with_addr(&free_addr())
        .with_env(
            "AUDIENCE_MEMORY_LIMIT",
            if full() { "1GiB" } else { "128MB" },
        )
        .with_env("AUDIENCE_SPILL_DIR", spill.path().to_str().unwrap());
    let mut first = TestServer::spawn(config.clone());

    // the fault must find spill files to leave behind: a sort holds them
    let mut holder = login(&first, "analyst").await;
    let (_info, held) = start_reading(&mut holder, &spilling(size(5_000_000, 50_000_000))).await;
    let spilled = files_under(spill.path());
    assert!(
        !spilled.is_empty(),
        "the sort spilled nothing to leave behind"
    );

    let clients = size(8, 64);
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Vec<_> = (0..clients)
        .map(|_| Arc::new(Mutex::new(Seen::default())))
        .collect();
    let tasks: Vec<_> = seen
        .iter()
        .enumerate()
        .map(|(id, seen)| {
            tokio::spawn(dashboard(
                first.url.clone(),
                Arc::clone(seen),
                Arc::clone(&stop),
                id as i64,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, seen) in seen.iter().enumerate() {
        let seen = seen.lock().unwrap();
        assert!(
            seen.errors.is_empty(),
            "client {id} failed before the kill: {:?}",
            seen.errors
        );
        assert!(
            !seen.served.is_empty(),
            "client {id} was not served before the kill"
        );
    }

    let killed = Instant::now();
    first.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = Instant::now();
    let second = TestServer::spawn(config.with_data(&first.data));
    let listening = restarted.elapsed();

    // every client reconnects and is served again
    let mut back_after = Duration::ZERO;
    for (id, seen) in seen.iter().enumerate() {
        loop {
            let served = seen
                .lock()
                .unwrap()
                .served
                .iter()
                .copied()
                .find(|t| *t > restarted);
            if let Some(t) = served {
                back_after = back_after.max(t - restarted);
                break;
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(15),
                "client {id} not served 15 s after the restart: {:?}",
                seen.lock().unwrap().errors
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    drop(held);

    // what the clients saw of the outage: the connection going, nothing else
    let errors: Vec<String> = seen
        .iter()
        .flat_map(|s| s.lock().unwrap().errors.clone())
        .map(|(at, e)| {
            assert!(at >= killed, "an error before the kill: {e}");
            e
        })
        .collect();
    assert!(!errors.is_empty(), "no client noticed the kill");
    for e in &errors {
        let lost = [
            "Unavailable",
            "connect:",
            "transport error",
            "connection",
            "broken pipe",
        ];
        assert!(
            lost.iter()
                .any(|l| e.to_lowercase().contains(&l.to_lowercase())),
            "an error other than the lost connection: {e}"
        );
    }
    assert!(
        back_after <= Duration::from_secs(5),
        "clients served again only {back_after:?} after the restart"
    );
    let left = files_under(spill.path());
    assert!(
        left.is_empty(),
        "the killed server's spill files are left: {left:?}"
    );
    assert!(
        second.log().contains("removed what a killed writer left"),
        "the cleanup is not logged"
    );
    println!(
        "F6: {clients} clients; restarted server listening after {listening:?}, every client served again within {back_after:?}; {} errors, e.g. {:?}; {} spill files removed",
        errors.len(),
        errors.first(),
        spilled.len()
    );
    record(
        "F6",
        serde_json::json!({ "clients": clients, "listening_s": listening.as_secs_f64(), "served_again_s": back_after.as_secs_f64(), "errors": errors.len(), "spill_files_removed": spilled.len() }),
    );
}
