//! Flight SQL protocol details that the Python driver does not expose, checked
//! with arrow-flight's Rust client against the real `audience serve`: schema
//! identity across FlightInfo, prepared statements and batches; message sizes;
//! CancelFlightInfo; handle expiry; ticket ownership; DDL through the update path.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandPreparedStatementQuery, ProstMessageExt,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo,
};
use common::test_server::{TestConfig, TestServer, USERS};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::Channel;

pub(crate) async fn login(server: &TestServer, user: &str) -> FlightSqlServiceClient<Channel> {
    try_login(&server.url, user).await.unwrap()
}

/// A client of the server at `url` logged in as the test user `user`, or why not.
pub(crate) async fn try_login(
    url: &str,
    user: &str,
) -> Result<FlightSqlServiceClient<Channel>, String> {
    let password = USERS.iter().find(|u| u.0 == user).unwrap().2;
    try_login_with(url, user, password).await
}

/// A client of the server at `url` (on a new connection) logged in with
/// `user` and `password`, or why not.
pub(crate) async fn try_login_with(
    url: &str,
    user: &str,
    password: &str,
) -> Result<FlightSqlServiceClient<Channel>, String> {
    let url = url.replace("grpc://", "http://");
    let channel = Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut client = FlightSqlServiceClient::new(channel);
    client
        .handshake(user, password)
        .await
        .map_err(|e| e.to_string())?;
    Ok(client)
}

pub(crate) async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: &FlightInfo,
) -> Vec<RecordBatch> {
    try_fetch(client, info).await.unwrap()
}

/// The batches of `info`'s first endpoint, or why not.
pub(crate) async fn try_fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: &FlightInfo,
) -> Result<Vec<RecordBatch>, String> {
    let ticket = info.endpoint[0].ticket.clone().ok_or("no ticket")?;
    client
        .do_get(ticket)
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())
}

/// Creates a prepared statement of `sql` with the raw action; its handle.
pub(crate) async fn create_prepared(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> prost::bytes::Bytes {
    let create = ActionCreatePreparedStatementRequest {
        query: sql.into(),
        transaction_id: None,
    };
    let action = Action::new("CreatePreparedStatement", create.as_any().encode_to_vec());
    let created = action_results(client, action).await;
    let created: ActionCreatePreparedStatementResult = Any::decode(created[0].body.clone())
        .unwrap()
        .unpack()
        .unwrap()
        .unwrap();
    created.prepared_statement_handle
}

/// The results of `action`, which must succeed.
pub(crate) async fn action_results(
    client: &mut FlightSqlServiceClient<Channel>,
    action: Action,
) -> Vec<arrow_flight::Result> {
    let results = client.do_action(action).await.unwrap();
    results.try_collect().await.unwrap()
}

/// The `ClosePreparedStatement` action for `handle`.
pub(crate) fn close_prepared(handle: &prost::bytes::Bytes) -> Action {
    let close = ActionClosePreparedStatementRequest {
        prepared_statement_handle: handle.clone(),
    };
    Action::new("ClosePreparedStatement", close.as_any().encode_to_vec())
}

/// GetFlightInfo for the command `command` (any message), as `client`'s user.
pub(crate) async fn flight_info_of(
    client: &mut FlightSqlServiceClient<Channel>,
    command: Vec<u8>,
) -> Result<tonic::Response<FlightInfo>, tonic::Status> {
    let mut request = tonic::Request::new(arrow_flight::FlightDescriptor::new_cmd(command));
    let token = client.token().unwrap().clone();
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    client.inner_mut().get_flight_info(request).await
}

/// Starts a query that would run for hours and reads its first batch.
async fn start_endless_query(
    client: &mut FlightSqlServiceClient<Channel>,
) -> (FlightInfo, FlightRecordBatchStream) {
    start_reading(client, "SELECT value FROM generate_series(1, 2000000000)").await
}

/// Starts `sql` and reads its first batch; its info and the rest of its stream.
pub(crate) async fn start_reading(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> (FlightInfo, FlightRecordBatchStream) {
    let info = client.execute(sql.into(), None).await.unwrap();
    let mut stream = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    stream.next().await.unwrap().unwrap();
    (info, stream)
}

fn announced(info: &FlightInfo) -> Schema {
    info.clone().try_decode_schema().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_agree_across_info_prepared_statement_and_batches() {
    let server = TestServer::spawn(TestConfig::default());
    let mut client = login(&server, "analyst").await;
    for sql in [
        "SELECT event, count(*) AS n FROM events GROUP BY event",
        "SELECT event, count(*) AS n FROM events WHERE member_id < 0 GROUP BY event",
    ] {
        let info = client.execute(sql.to_string(), None).await.unwrap();
        let schema = announced(&info);
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8, "{sql}");
        assert!(
            !schema.field(1).is_nullable(),
            "count(*) stays NOT NULL: {schema:?}"
        );
        let prepared = client.prepare(sql.to_string(), None).await.unwrap();
        assert_eq!(prepared.dataset_schema().unwrap(), &schema, "{sql}");
        let batches = fetch(&mut client, &info).await;
        for b in &batches {
            assert_eq!(b.schema().as_ref(), &schema, "{sql}");
        }
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let redeemed = client.do_get(ticket).await.err();
        assert!(redeemed.is_some(), "a ticket is redeemed once");
    }
    let mut prepared = client
        .prepare(
            "SELECT count(*) AS n FROM events WHERE member_id = ?".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        prepared.parameter_schema().unwrap().field(0).data_type(),
        &DataType::Int64
    );
    let mut answers = Vec::new();
    for member in [42i64, 7] {
        let params = Schema::new(vec![Field::new("$1", DataType::Int64, true)]);
        let batch = RecordBatch::try_new(
            Arc::new(params),
            vec![Arc::new(Int64Array::from(vec![member]))],
        )
        .unwrap();
        prepared.set_parameters(batch).unwrap();
        let info = prepared.execute().await.unwrap();
        let batches = fetch(&mut client, &info).await;
        answers.push(
            batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
        );
    }
    assert!(answers[0] > 0 && answers[0] != answers[1], "{answers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn large_batches_are_split_under_four_mib() {
    let server = TestServer::spawn(TestConfig::default());
    let mut client = login(&server, "analyst").await;
    // 8,192-row batches of 1 KB strings: 8 MB each before splitting
    let info = client
        .execute(
            "SELECT value, repeat('z', 1000) AS pad FROM generate_series(1, 30000)".into(),
            None,
        )
        .await
        .unwrap();
    let token = client.token().unwrap().clone();
    let mut raw = client.inner().clone();
    let mut request = tonic::Request::new(info.endpoint[0].ticket.clone().unwrap());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut messages = raw.do_get(request).await.unwrap().into_inner();
    let (mut count, mut largest) = (0, 0);
    while let Some(message) = messages.next().await {
        let m = message.unwrap();
        largest = largest.max(m.data_body.len() + m.data_header.len());
        count += 1;
    }
    assert!(count > 8, "{count} messages");
    assert!(largest < 4 * 1024 * 1024, "a message of {largest} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_flight_info_stops_a_running_query() {
    let server = TestServer::spawn(TestConfig::default());
    let mut client = login(&server, "analyst").await;
    let (info, mut stream) = start_endless_query(&mut client).await;
    let action = Action::new(
        "CancelFlightInfo",
        CancelFlightInfoRequest::new(info.clone()).encode_to_vec(),
    );
    let results = action_results(&mut client, action).await;
    let result = CancelFlightInfoResult::decode(results[0].body.clone()).unwrap();
    assert_eq!(result.status(), CancelStatus::Cancelled);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(e.to_string()),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream ends after the cancel");
    assert!(
        ended.is_some_and(|e| e.contains("cancelled")),
        "the client learns why"
    );
    assert!(
        server
            .wait_for_log(&["\"outcome\":\"cancelled\""], Duration::from_secs(5))
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn handles_expire_and_belong_to_their_user() {
    let server = TestServer::spawn(TestConfig::default().with_server("handle_ttl = \"1s\""));
    let mut analyst = login(&server, "analyst").await;
    let mut prepared = analyst
        .prepare("SELECT 1 AS one".into(), None)
        .await
        .unwrap();
    let info = analyst
        .execute("SELECT 2 AS two".into(), None)
        .await
        .unwrap();
    let mut marketer = login(&server, "marketer").await;
    let stolen = marketer
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .err()
        .unwrap();
    assert!(stolen.to_string().contains("another user"), "{stolen}");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = prepared.execute().await.err().unwrap();
    assert!(expired.to_string().contains("expired"), "{expired}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ddl_and_export_run_through_the_update_path() {
    let exports = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(TestConfig::default().with_export_prefix(exports.path()));
    let mut admin = login(&server, "admin").await;
    let mut ddl = admin
        .prepare(
            "CREATE VIEW big_spenders AS SELECT member_id FROM orders WHERE amount > 500".into(),
            None,
        )
        .await
        .unwrap();
    assert!(
        ddl.dataset_schema().unwrap().fields().is_empty(),
        "DDL has no result set"
    );
    assert_eq!(ddl.execute_update().await.unwrap(), 0);
    let info = admin
        .execute("SELECT count(*) AS n FROM big_spenders".into(), None)
        .await
        .unwrap();
    assert_eq!(fetch(&mut admin, &info).await[0].num_rows(), 1);

    let mut marketer = login(&server, "marketer").await;
    let target = exports.path().join("segment.csv");
    let copy = format!(
        "COPY (SELECT member_id FROM members LIMIT 25) TO '{}'",
        target.display()
    );
    assert_eq!(marketer.execute_update(copy, None).await.unwrap(), 25);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap().lines().count(),
        26
    );
    let mut analyst = login(&server, "analyst").await;
    let denied = analyst
        .execute_update("CREATE VIEW v AS SELECT 1".into(), None)
        .await
        .err()
        .unwrap();
    assert!(denied.to_string().contains("admin"), "{denied}");
}

/// The first column of `sql`'s answer as text, row by row, or why not.
async fn column_of(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<String>, String> {
    let info = client
        .execute(sql.into(), None)
        .await
        .map_err(|e| e.to_string())?;
    let batches = try_fetch(client, &info).await?;
    Ok(crate::sql_files::render(&batches)
        .unwrap()
        .into_iter()
        .map(|row| row[0].clone())
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_login_has_a_session_of_its_own() {
    use arrow::array::StringArray;
    use arrow_flight::sql::CommandGetTables;

    let server = TestServer::spawn(TestConfig::default());
    let (mut a, mut b) = (login(&server, "admin").await, login(&server, "admin").await);
    a.execute_update(
        "CREATE TEMPORARY TABLE members AS SELECT 7 AS member_id".into(),
        None,
    )
    .await
    .unwrap();
    a.execute_update("SET datafusion.execution.batch_size = 7".into(), None)
        .await
        .unwrap();
    // later calls of the login see its table (hiding the shared one) and its setting
    let count = "SELECT count(*) FROM members";
    assert_eq!(column_of(&mut a, count).await.unwrap(), ["1"]);
    let batch_size = "SELECT value FROM information_schema.df_settings                       WHERE name = 'datafusion.execution.batch_size'";
    assert_eq!(column_of(&mut a, batch_size).await.unwrap(), ["7"]);
    let mut prepared = a
        .prepare("SELECT member_id FROM members".into(), None)
        .await
        .unwrap();
    let info = prepared.execute().await.unwrap();
    assert_eq!(
        crate::sql_files::render(&fetch(&mut a, &info).await).unwrap(),
        [["7"]]
    );
    // another login sees neither
    assert_eq!(column_of(&mut b, count).await.unwrap(), ["1000"]);
    assert_eq!(column_of(&mut b, batch_size).await.unwrap(), ["8192"]);
    // and metadata lists the table under `temp` for its own login only
    let temp_tables = CommandGetTables {
        db_schema_filter_pattern: Some("temp".into()),
        ..Default::default()
    };
    for (client, expected) in [(&mut a, vec!["members"]), (&mut b, vec![])] {
        let info = client.get_tables(temp_tables.clone()).await.unwrap();
        let batches = fetch(client, &info).await;
        let names: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let names = b.column_by_name("table_name").unwrap();
                let names = names.as_any().downcast_ref::<StringArray>().unwrap();
                names
                    .iter()
                    .flatten()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(names, expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_gives_running_queries_the_shutdown_timeout_then_exits() {
    let server = TestServer::spawn(TestConfig::default().with_server("shutdown_timeout = \"1s\""));
    let mut client = login(&server, "analyst").await;
    let (_info, _stream) = start_endless_query(&mut client).await;
    let started = std::time::Instant::now();
    let code = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(code, 0);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "the running query got its grace: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_calls_answer_as_drivers_expect() {
    use arrow::array::{Array, BinaryArray, StringArray};
    use arrow_flight::IpcMessage;
    use arrow_flight::sql::{
        CommandGetCrossReference, CommandGetExportedKeys, CommandGetImportedKeys,
        CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo, SqlInfo,
    };

    let server = TestServer::spawn(TestConfig::default());
    let mut client = login(&server, "analyst").await;
    let rows = |batches: &[RecordBatch]| batches.iter().map(|b| b.num_rows()).sum::<usize>();

    let info = client.get_table_types().await.unwrap();
    let types = fetch(&mut client, &info).await;
    let types = types[0]
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(
        types.iter().flatten().collect::<Vec<_>>(),
        ["TABLE", "VIEW"]
    );

    let tables = CommandGetTables {
        catalog: None,
        db_schema_filter_pattern: Some("pub%".into()),
        table_name_filter_pattern: Some("member%".into()),
        table_types: vec!["BASE TABLE".into()],
        include_schema: true,
    };
    let info = client.get_tables(tables).await.unwrap();
    let batches = fetch(&mut client, &info).await;
    let names = batches[0].column_by_name("table_name").unwrap();
    let names = names.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(
        names.iter().flatten().collect::<Vec<_>>(),
        ["member_tags", "members"]
    );
    let schemas = batches[0].column_by_name("table_schema").unwrap();
    let schemas = schemas.as_any().downcast_ref::<BinaryArray>().unwrap();
    let members = Schema::try_from(IpcMessage(schemas.value(1).to_vec().into())).unwrap();
    assert_eq!(
        members.field_with_name("tier").unwrap().data_type(),
        &DataType::Utf8
    );

    let primary = CommandGetPrimaryKeys {
        catalog: None,
        db_schema: None,
        table: "events".into(),
    };
    let info = client.get_primary_keys(primary).await.unwrap();
    assert_eq!(announced(&info).fields().len(), 6);
    assert_eq!(rows(&fetch(&mut client, &info).await), 0);
    let exported = CommandGetExportedKeys {
        catalog: None,
        db_schema: None,
        table: "events".into(),
    };
    let info = client.get_exported_keys(exported).await.unwrap();
    assert_eq!(rows(&fetch(&mut client, &info).await), 0);
    let imported = CommandGetImportedKeys {
        catalog: None,
        db_schema: None,
        table: "events".into(),
    };
    let info = client.get_imported_keys(imported).await.unwrap();
    assert_eq!(rows(&fetch(&mut client, &info).await), 0);
    let cross = CommandGetCrossReference {
        pk_table: "members".into(),
        fk_table: "events".into(),
        ..Default::default()
    };
    let info = client.get_cross_reference(cross).await.unwrap();
    assert_eq!(announced(&info).fields().len(), 13);
    assert_eq!(rows(&fetch(&mut client, &info).await), 0);

    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    assert_eq!(rows(&fetch(&mut client, &info).await), 12);

    for (user, read_only) in [("analyst", true), ("admin", false)] {
        let mut c = login(&server, user).await;
        let info = c
            .get_sql_info(vec![
                SqlInfo::FlightSqlServerName,
                SqlInfo::FlightSqlServerReadOnly,
            ])
            .await
            .unwrap();
        let batches = fetch(&mut c, &info).await;
        assert_eq!(rows(&batches), 2);
        let printed = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(printed.contains("Audience"), "{printed}");
        assert!(
            printed.contains(&format!("{{bool_value={read_only}}}")),
            "{printed}"
        );
    }
}

/// The status a request ended with, or a test failure if it succeeded.
fn refused<T: std::fmt::Debug>(result: Result<T, arrow_flight::error::FlightError>) -> String {
    result
        .expect_err("expected the server to refuse")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn leading_statements_run_within_the_query_timeout() {
    let server = TestServer::spawn(TestConfig::default().with_server("query_timeout = \"1s\""));
    let mut client = login(&server, "analyst").await;
    let started = std::time::Instant::now();
    let slow = "SELECT count(*) FROM generate_series(1, 100000000000); SELECT 1 AS one";
    let error = tokio::time::timeout(
        Duration::from_secs(30),
        client.execute(slow.to_string(), None),
    )
    .await
    .expect("the leading statement is stopped by the timeout");
    let error = refused(error);
    assert!(error.contains("query_timeout"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // the error names the query its log line is about
    let id = error
        .split("(query ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no query id in: {error}"));
    let logged = format!("\"query\":\"{id}\"");
    assert!(
        server
            .wait_for_log(
                &["\"outcome\":\"timed_out\"", &logged],
                Duration::from_secs(5)
            )
            .is_some(),
        "the leading statement writes its own log line, with its id {id}:\n{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_server_refuses_every_statement_and_runs_none() {
    let exports = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(
        TestConfig::default()
            .with_export_prefix(exports.path())
            .with_server("max_concurrent_queries = 1")
            .with_server("max_queued_queries = 0"),
    );
    let mut analyst = login(&server, "analyst").await;
    let (_info, _stream) = start_endless_query(&mut analyst).await;
    let mut marketer = login(&server, "marketer").await;
    let target = exports.path().join("segment.csv");
    let copy = format!(
        "COPY (SELECT member_id FROM members LIMIT 5) TO '{}'",
        target.display()
    );
    let busy = refused(marketer.execute(format!("{copy}; SELECT 1"), None).await);
    assert!(busy.contains("server busy"), "{busy}");
    let busy = refused(marketer.execute_update(copy.clone(), None).await);
    assert!(busy.contains("server busy"), "{busy}");
    let mut prepared = marketer.prepare(copy, None).await.unwrap();
    let busy = refused(prepared.execute_update().await);
    assert!(busy.contains("server busy"), "{busy}");
    assert!(!target.exists(), "a refused export wrote its file");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_owner_cancels_a_query_or_closes_a_prepared_statement() {
    let server = TestServer::spawn(TestConfig::default());
    let mut analyst = login(&server, "analyst").await;
    let (info, mut stream) = start_endless_query(&mut analyst).await;
    let mut marketer = login(&server, "marketer").await;
    let action = Action::new(
        "CancelFlightInfo",
        CancelFlightInfoRequest::new(info.clone()).encode_to_vec(),
    );
    let denied = marketer.do_action(action).await.err().unwrap();
    assert!(denied.to_string().contains("another user"), "{denied}");
    assert!(
        stream.next().await.is_some_and(|b| b.is_ok()),
        "the query keeps running"
    );

    let handle = create_prepared(&mut analyst, "SELECT 1 AS one").await;
    let denied = marketer
        .do_action(close_prepared(&handle))
        .await
        .err()
        .unwrap();
    assert!(denied.to_string().contains("another user"), "{denied}");
    // still open for its owner
    let command = CommandPreparedStatementQuery {
        prepared_statement_handle: handle,
    };
    flight_info_of(&mut analyst, command.as_any().encode_to_vec())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_that_never_yield_leave_logins_and_small_queries_answered() {
    let server = TestServer::spawn(TestConfig::default());
    // a nested-loop join over 114K × 114K rows: minutes of CPU per query
    let heavy = "SELECT count(*) FROM events a CROSS JOIN events b WHERE a.ts > b.ts";
    let mut running = Vec::new();
    for _ in 0..2 {
        let mut client = login(&server, "analyst").await;
        running.push(tokio::spawn(async move {
            let info = client.execute(heavy.to_string(), None).await.unwrap();
            let ticket = info.endpoint[0].ticket.clone().unwrap();
            let stream = client.do_get(ticket).await.unwrap();
            let _ = stream.try_collect::<Vec<_>>().await;
        }));
    }
    let cpu = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        server.cpu_seconds() - cpu > 1.5,
        "the heavy queries are not running: {:.2} CPU s in 2 s",
        server.cpu_seconds() - cpu
    );
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        let mut client = login(&server, "admin").await;
        let info = client
            .execute("SELECT 1 AS one".into(), None)
            .await
            .unwrap();
        fetch(&mut client, &info).await
    })
    .await
    .expect("a login and SELECT 1 waited behind the heavy queries");
    assert_eq!(answered[0].num_rows(), 1);
    for query in running {
        query.abort();
    }
}

/// The `engine_memory_peak_bytes` of a query log line.
fn peak_bytes(line: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    json["fields"]["engine_memory_peak_bytes"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_query_log_line_counts_its_own_memory() {
    let server = TestServer::spawn(TestConfig::default());
    let mut heavy = login(&server, "analyst").await;
    // a sort of every event holds its whole input until the last row is read
    let sort = "SELECT * FROM events ORDER BY ts DESC, member_id";
    let info = heavy.execute(sort.into(), None).await.unwrap();
    let mut stream = heavy
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    stream.next().await.unwrap().unwrap();
    let mut small = login(&server, "analyst").await;
    let info = small.execute("SELECT 1 AS one".into(), None).await.unwrap();
    assert_eq!(fetch(&mut small, &info).await[0].num_rows(), 1);
    let line = server
        .wait_for_log(&["\"sql\":\"SELECT 1 AS one\""], Duration::from_secs(5))
        .unwrap();
    assert!(
        peak_bytes(&line) < 1 << 20,
        "SELECT 1 counted the sort's memory: {line}"
    );
    drop(stream);
    let line = server
        .wait_for_log(
            &["\"outcome\":\"disconnected\"", "ORDER BY ts DESC"],
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(
        peak_bytes(&line) > 4 << 20,
        "the sort held its input: {line}"
    );
}
