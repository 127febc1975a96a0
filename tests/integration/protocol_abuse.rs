//! Reliability B5 and the panic rule: requests a hostile or broken client
//! sends — garbage tickets, unknown commands, closed handles, a 10 MB
//! statement, 10,000 columns, expressions nested 10,000 deep, 1,000 idle
//! connections — and a query that panics inside the engine. Each is answered
//! with a clear status, and the server goes on serving: a login and `SELECT 1`
//! work after every one.

use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow_flight::Ticket;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{Any, CommandPreparedStatementQuery, ProstMessageExt};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

use crate::common::reliability::record;
use crate::common::test_server::{TestConfig, TestServer};
use crate::flight_protocol::{close_prepared, create_prepared, fetch, flight_info_of, login};

/// A fresh login runs `SELECT 1` and gets 1.
async fn still_serving(server: &TestServer) {
    let mut client = login(server, "analyst").await;
    let info = client.execute("SELECT 1 AS one".into(), None).await;
    let batches = fetch(&mut client, &info.unwrap()).await;
    assert_eq!(first(&batches), 1);
}

fn first(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// Asserts that `e` is a status with one of `codes` and a message containing `needle`.
fn refused(e: &FlightError, codes: &[Code], needle: &str) {
    let FlightError::Tonic(status) = e else {
        panic!("not a gRPC status: {e}");
    };
    status_is(status, codes, needle);
}

/// Asserts `status` has one of `codes` and a message containing `needle`.
fn status_is(status: &tonic::Status, codes: &[Code], needle: &str) {
    assert!(
        codes.contains(&status.code()) && status.message().contains(needle),
        "expected {codes:?} with {needle:?}, got {:?}: {}",
        status.code(),
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_clear_statuses_and_the_server_serves_on() {
    let server = TestServer::spawn(TestConfig::default());
    let mut client = login(&server, "analyst").await;

    // garbage tickets: bytes that are not protobuf (arrow-flight's decode
    // error answers), and a well-formed message of no known type
    for garbage in [&b"garbage"[..], &[0xff; 64][..]] {
        let e = client
            .do_get(Ticket::new(garbage.to_vec()))
            .await
            .expect_err("a garbage ticket was served");
        refused(&e, &[Code::InvalidArgument], "DecodeError");
    }
    let e = client.do_get(Ticket::new(vec![])).await.err().unwrap();
    refused(&e, &[Code::InvalidArgument], "not one this server issued");
    still_serving(&server).await;

    // an unknown command type
    let unknown = Any {
        type_url: "type.googleapis.com/arrow.flight.protocol.sql.CommandNoSuchThing".into(),
        value: vec![1, 2, 3].into(),
    };
    let e = flight_info_of(&mut client, unknown.encode_to_vec())
        .await
        .unwrap_err();
    status_is(
        &e,
        &[Code::InvalidArgument, Code::Unimplemented],
        "CommandNoSuchThing",
    );
    still_serving(&server).await;

    // a closed prepared statement
    let handle = create_prepared(&mut client, "SELECT 1 AS one").await;
    client.do_action(close_prepared(&handle)).await.unwrap();
    let command = CommandPreparedStatementQuery {
        prepared_statement_handle: handle,
    };
    let e = flight_info_of(&mut client, command.as_any().encode_to_vec())
        .await
        .unwrap_err();
    status_is(
        &e,
        &[Code::NotFound, Code::InvalidArgument],
        "prepared statement",
    );
    still_serving(&server).await;
    record(
        "B5-requests",
        serde_json::json!({ "garbage_tickets": 3, "unknown_commands": 1, "closed_handles": 1 }),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_wide_and_deep_statements_are_refused_or_answered_never_crash() {
    let server = TestServer::spawn(TestConfig::default());
    let mut client = login(&server, "analyst").await;

    // 10 MB of SQL
    let huge = format!("SELECT 1 AS one WHERE '{}' <> ''", "x".repeat(10 << 20));
    let e = client.execute(huge, None).await.expect_err("10 MB served");
    refused(
        &e,
        &[
            Code::ResourceExhausted,
            Code::InvalidArgument,
            Code::OutOfRange,
        ],
        "too large",
    );
    still_serving(&server).await;

    // 10,000 columns: answered
    let columns: Vec<String> = (0..10_000).map(|i| format!("{i} AS c{i}")).collect();
    let wide = format!("SELECT {}", columns.join(", "));
    let info = client.execute(wide, None).await.unwrap();
    let batches = fetch(&mut client, &info).await;
    assert_eq!(batches[0].num_columns(), 10_000);

    // expressions nested 10,000 deep, as parentheses, operator chains and unions
    let deep = [
        format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("SELECT {}", vec!["1"; 10_000].join(" + ")),
        format!(
            "SELECT count(*) FROM events WHERE {}",
            vec!["member_id = 1"; 10_000].join(" OR ")
        ),
        vec!["SELECT 1 AS one"; 10_000].join(" UNION ALL "),
    ];
    for sql in deep {
        let e = client.execute(sql, None).await.expect_err("served");
        refused(&e, &[Code::InvalidArgument], "levels deep");
        still_serving(&server).await;
    }
    record(
        "B5-statements",
        serde_json::json!({ "sql_bytes": 10 << 20, "columns": 10_000, "depth": 10_000 }),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_cost_little_and_block_nobody() {
    let server = TestServer::spawn(TestConfig::default());
    still_serving(&server).await;
    let (rss, threads) = (
        server.status_value("VmRSS:"),
        server.status_value("Threads:"),
    );
    let mut idle = Vec::new();
    for _ in 0..1000 {
        let url = server.url.replace("grpc://", "http://");
        let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
        idle.push(channel);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.open_fds() >= 1000,
        "the connections are not open: {} fds",
        server.open_fds()
    );
    let per_connection = (server.status_value("VmRSS:").saturating_sub(rss)) * 1024 / 1000;
    assert!(
        per_connection <= 50 << 10,
        "an idle connection costs {per_connection} bytes"
    );
    assert_eq!(
        server.status_value("Threads:"),
        threads,
        "a thread per connection"
    );
    still_serving(&server).await;
    drop(idle);
    record(
        "B5-idle",
        serde_json::json!({ "connections": 1000, "bytes_per_connection": per_connection }),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_that_panics_is_an_internal_error_and_the_server_serves_on() {
    let server = TestServer::spawn(TestConfig::default().with_env("AUDIENCE_FAILPOINTS", "panic"));
    let mut client = login(&server, "analyst").await;
    for _ in 0..3 {
        let info = client
            .execute(
                "SELECT failpoint_panic(member_id) FROM members".into(),
                None,
            )
            .await
            .unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let e = match client.do_get(ticket).await {
            Ok(stream) => stream
                .try_collect::<Vec<_>>()
                .await
                .err()
                .map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        let e = e.expect("a panicking query returned a result");
        assert!(
            e.contains("Internal") && e.contains("failpoint_panic ran") && e.contains("(query "),
            "{e}"
        );
        still_serving(&server).await;
    }
    assert!(
        server.log().contains("panicked"),
        "the failpoint never fired"
    );
}
