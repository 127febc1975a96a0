//! Reliability B5, B6 (bad logins) and the panic rule: requests a hostile or broken client
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

/// Reliability B6: a brute force of bad logins (wrong passwords, unknown
/// users, malformed credentials), each on a fresh connection, eight at a time.
/// Each is `UNAUTHENTICATED` saying why; the server's users are served while
/// it lasts; memory, descriptors and threads do not grow with the attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn b6_bad_logins_are_refused_and_cost_nothing_lasting() {
    use crate::common::reliability::size;
    use crate::common::test_server::USERS;
    use crate::flight_protocol::{try_login, try_login_with};

    let server = TestServer::spawn(TestConfig::default());
    let attempts = size(200, 1000);
    let bad = async |url: String, n: usize| {
        for i in 0..n {
            let (user, password) = match i % 3 {
                0 => ("analyst", "wrong-pw"),
                1 => ("nobody", "analyst-pw"),
                _ => ("", ""),
            };
            let Err(text) = try_login_with(&url, user, password).await else {
                panic!("a bad login was let in: {user}");
            };
            // UNAUTHENTICATED, as the client prints it
            assert!(
                text.contains("does not have valid authentication credentials"),
                "{text}"
            );
            assert!(text.contains("wrong username or password"), "{text}");
        }
    };
    // warm, eight at a time as below: the first attempts fill the server's
    // pools and its allocator's arenas (argon2 takes 19 MiB per check)
    let warm: Vec<_> = (0..8)
        .map(|_| tokio::spawn(bad(server.url.clone(), 6)))
        .collect();
    for task in warm {
        task.await.unwrap();
    }
    let (rss, fds, threads) = (
        server.status_value("VmRSS:"),
        server.open_fds(),
        server.status_value("Threads:"),
    );
    // two waves: memory that grows with the attempts would show between them
    let started = std::time::Instant::now();
    let mut slowest = Duration::ZERO;
    let mut rss_after = Vec::new();
    for _wave in 0..2 {
        let tasks: Vec<_> = (0..8)
            .map(|_| tokio::spawn(bad(server.url.clone(), attempts / 16)))
            .collect();
        // the server's users are served during the attack
        while !tasks.iter().all(|t| t.is_finished()) {
            let asked = std::time::Instant::now();
            let mut client = try_login(&server.url, USERS[0].0).await.unwrap();
            let info = client
                .execute("SELECT 1 AS one".into(), None)
                .await
                .unwrap();
            assert_eq!(first(&fetch(&mut client, &info).await), 1);
            slowest = slowest.max(asked.elapsed());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        rss_after.push(server.status_value("VmRSS:"));
    }
    let took = started.elapsed();
    let (first_wave_kib, second_wave_kib) = (
        rss_after[0].saturating_sub(rss),
        rss_after[1].saturating_sub(rss_after[0]),
    );
    let (fds_after, threads_after) = (server.open_fds(), server.status_value("Threads:"));
    println!(
        "B6: {attempts} bad logins in {took:?}; a user's login and query took at most {slowest:?}; \
         RSS +{first_wave_kib} KiB after the first half, +{second_wave_kib} KiB after the second; \
         descriptors {fds} → {fds_after}, threads {threads} → {threads_after}"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "a user waited {slowest:?} during the attack"
    );
    // the allocator may keep a few of argon2's 19 MiB blocks (CI once saw one
    // more kept in the second half: +19,964 KiB); nothing per attempt
    assert!(first_wave_kib < 64 * 1024, "RSS grew {first_wave_kib} KiB");
    assert!(
        second_wave_kib < 28 * 1024,
        "RSS grew {second_wave_kib} KiB more in the second half"
    );
    assert!(fds_after <= fds + 4, "descriptors {fds} → {fds_after}");
    assert!(
        threads_after <= threads + 2,
        "threads {threads} → {threads_after}"
    );
    record(
        "B6",
        serde_json::json!({ "attempts": attempts, "seconds": took.as_secs_f64(), "slowest_user_ms": slowest.as_millis(), "rss_growth_kib": [first_wave_kib, second_wave_kib] }),
    );
}

/// Bad arguments to the functions (the second family's, and the first's
/// constant checks) are planning errors naming the function and the argument:
/// `INVALID_ARGUMENT` from `GetFlightInfo` (before any ticket), exit 2 on the
/// CLI; the server serves on.
#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_of_the_second_family_are_invalid_argument_naming_it() {
    let server = TestServer::spawn(TestConfig::default());
    let mut client = login(&server, "analyst").await;
    let cases = [
        (
            "SELECT window_funnel(-5, '', ts, event = 'view') FROM events GROUP BY member_id",
            "window_funnel: window must not be negative",
        ),
        (
            "SELECT session_number(ts, 0) OVER (PARTITION BY member_id ORDER BY ts) FROM events",
            "session_number: gap must be positive",
        ),
        (
            "SELECT session_number(ts, 60) OVER (PARTITION BY member_id) FROM events",
            "session_number: the window must be ordered by the ts argument",
        ),
        (
            "SELECT sessions(ts, -60) FROM events GROUP BY member_id",
            "sessions: gap must not be negative",
        ),
        (
            "SELECT event_path(ts, event, true, 33) FROM events GROUP BY member_id",
            "event_path: max_steps must be a constant integer from 1 to 32",
        ),
        (
            "SELECT attribution('u_shaped', ts, channel, event = 'pay') FROM events GROUP BY member_id",
            "attribution: model must be",
        ),
        (
            "SELECT sequence_next_node('forward', 'tail', ts, event, true, event = 'view') \
             FROM events GROUP BY member_id",
            "sequence_next_node: base 'tail' cannot go 'forward'",
        ),
        (
            "SELECT window_funnel_exclude(3600, '', '2-1', ts, event = 'view', event = 'cart', \
             event = 'refund') FROM events GROUP BY member_id",
            "window_funnel_exclude: pairs must be",
        ),
        (
            "SELECT window_funnel_detail(3600, 'strict', ts, channel, event = 'view') \
             FROM events GROUP BY member_id",
            "window_funnel_detail: mode 'strict' was replaced",
        ),
        (
            "SELECT window_funnel_detail_exclude(3600, '', '1-2', ts, channel, event) \
             FROM events GROUP BY member_id",
            "window_funnel_detail_exclude: condition 1 must be BOOLEAN",
        ),
    ];
    for (sql, needle) in cases {
        let e = match client.execute(sql.into(), None).await {
            Err(e) => e,
            Ok(_) => panic!("planned without an error (a ticket was issued): {sql}"),
        };
        refused(&e, &[Code::InvalidArgument], needle);
        crate::common::audience(&["query", sql]).user_error(needle);
    }
    still_serving(&server).await;
}
