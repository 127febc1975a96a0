//! Reliability L5: every `sql/*.slt` file at once against one server. Eight
//! Flight SQL clients each run a file in a login of their own, its tables
//! made temporary (so files that reuse a table name do not meet), in random
//! order, for several passes; every answer must still be the file's. Then a
//! graceful shutdown, a restart on the same address, and one clean query.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::common::reliability::{Seeded, record, server_config, size};
use crate::common::test_server::{TestServer, free_addr};
use crate::flight_protocol::{fetch, login, try_login};
use crate::sql_files::{render, slt_files};

/// How long one file may take before it counts as hung.
const FILE_DEADLINE: Duration = Duration::from_secs(60);
/// How long a graceful shutdown may take.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// Files run at once.
const CLIENTS: usize = 8;

/// What a statement sent over Flight SQL was refused with.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// One login to the server as a sqllogictest database.
struct FlightSession(FlightSqlServiceClient<Channel>);

/// `sql` with a leading `CREATE TABLE` made `CREATE TEMPORARY TABLE`.
fn temporary(sql: &str) -> String {
    let trimmed = sql.trim_start();
    match trimmed.get(..12) {
        Some(head) if head.eq_ignore_ascii_case("create table") => {
            format!("CREATE TEMPORARY TABLE{}", &trimmed[12..])
        }
        _ => sql.to_string(),
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for FlightSession {
    type Error = Refused;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Refused> {
        let refused = |e: &dyn std::fmt::Display| Refused(e.to_string());
        let info = self
            .0
            .execute(temporary(sql), None)
            .await
            .map_err(|e| refused(&e))?;
        let columns = info.clone().try_decode_schema().map_err(|e| refused(&e))?;
        let ticket = info.endpoint[0]
            .ticket
            .clone()
            .ok_or(Refused("no ticket".into()))?;
        let batches: Vec<_> = self
            .0
            .do_get(ticket)
            .await
            .map_err(|e| refused(&e))?
            .try_collect()
            .await
            .map_err(|e| refused(&e))?;
        let rows = render(&batches).map_err(|e| refused(&e))?;
        if columns.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; columns.fields().len()],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

/// Runs the file `path` in a login of its own on the server at `url`.
async fn run_file(url: String, path: PathBuf) -> Result<(), String> {
    let mut runner = sqllogictest::Runner::new(move || {
        let url = url.clone();
        async move {
            let client = try_login(&url, "admin").await.map_err(Refused)?;
            Ok(FlightSession(client))
        }
    });
    runner
        .run_file_async(&path)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l5_every_slt_file_at_once_against_one_server() {
    let addr = free_addr();
    let server = TestServer::spawn(server_config().with_addr(&addr));
    let files = slt_files();
    assert!(files.len() >= 13, "the sql/*.slt files are missing");
    let passes = size(1, 3);
    let mut rng = Seeded::new("L5", 5);
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for pass in 1..=passes {
        let mut order = files.clone();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let clients = Arc::new(Semaphore::new(CLIENTS));
        let mut running = JoinSet::new();
        for path in order {
            let permit = Arc::clone(&clients).acquire_owned().await.unwrap();
            let url = server.url.clone();
            running.spawn(async move {
                let _permit = permit;
                let started = Instant::now();
                let outcome =
                    tokio::time::timeout(FILE_DEADLINE, run_file(url, path.clone())).await;
                (path, started.elapsed(), outcome)
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = running.join_next().await {
            let (path, took, outcome) = done.expect("a file's task panicked");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if took > slowest.0 {
                slowest = (took, name.clone());
            }
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: still running after {FILE_DEADLINE:?}")),
            }
        }
        assert!(failures.is_empty(), "pass {pass}:\n{}", failures.join("\n"));
    }
    let ran = started.elapsed();
    assert!(
        !server.log().contains("panicked"),
        "the server logged a panic:\n{}",
        server.log()
    );

    let stopping = Instant::now();
    let code = server.terminate();
    let shutdown = stopping.elapsed();
    assert_eq!(code, 0, "the server did not exit cleanly on SIGTERM");
    assert!(
        shutdown <= SHUTDOWN_DEADLINE,
        "a graceful shutdown took {shutdown:?}"
    );

    let server = TestServer::spawn(server_config().with_addr(&addr));
    let mut client = login(&server, "analyst").await;
    let info = client
        .execute("SELECT 41 + 1 AS n".into(), None)
        .await
        .unwrap();
    let batches = fetch(&mut client, &info).await;
    assert_eq!(render(&batches).unwrap(), vec![vec!["42".to_string()]]);

    println!(
        "L5: {} files × {passes} passes, {CLIENTS} at once, in {ran:?}; slowest file {} ({:?}); \
         shutdown {shutdown:?}; restarted and answered",
        files.len(),
        slowest.1,
        slowest.0
    );
    record(
        "L5",
        serde_json::json!({
            "files": files.len(),
            "passes": passes,
            "clients": CLIENTS,
            "seconds": ran.as_secs_f64(),
            "slowest_file": slowest.1,
            "slowest_file_seconds": slowest.0.as_secs_f64(),
            "shutdown_seconds": shutdown.as_secs_f64(),
        }),
    );
}
