//! `audience serve` end to end: the real binary on a random port, queried by
//! the ADBC Flight SQL driver from Python (`tests/flight/adbc_client.py`), the
//! way analysts, dashboards and notebooks connect. Needs the test venv.

use crate::common;

use std::time::Duration;

use common::test_server::{TestConfig, TestServer};

fn check(server: &TestServer, name: &str, extra: serde_json::Value) -> String {
    let mut args = server.client_args();
    if let (Some(args), Some(extra)) = (args.as_object_mut(), extra.as_object()) {
        args.extend(extra.clone());
    }
    let out = common::python_script("tests/flight/adbc_client.py", &[name, &args.to_string()]);
    println!("{out}");
    out
}

fn assert_all_ok(stdout: &str, expected: &[&str]) {
    for name in expected {
        assert!(
            stdout.contains(&format!("ok {name}\n")),
            "missing 'ok {name}' in:\n{stdout}"
        );
    }
}

#[test]
fn adbc_client_queries_prepares_lists_and_is_authorized() {
    let exports = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(TestConfig::default().with_export_prefix(exports.path()));
    let out = check(
        &server,
        "basics",
        serde_json::json!({ "exports": exports.path() }),
    );
    assert_all_ok(
        &out,
        &[
            "basic auth",
            "prepared statement executed twice",
            "window_funnel over flight equals the CLI",
            "empty result carries its schema, strings as utf8",
            "get_objects lists catalogs, schemas, tables and columns",
            "table filters: LIKE pattern and BASE TABLE",
            "get_table_schema",
            "get_info",
            "bad SQL errors reach the client",
            "analyst COPY and DDL denied",
            "wrong password rejected",
            "marketer exports under the allowed prefix only",
            "admin DDL",
            "tables and files added while serving are visible",
        ],
    );
    // one structured log line per query, with the figures operators need
    let line = server
        .wait_for_log(
            &["\"outcome\":\"finished\"", "\"user\":\"analyst\""],
            Duration::from_secs(5),
        )
        .expect("a query log line");
    for field in [
        "queue_ms",
        "plan_ms",
        "execute_ms",
        "rows",
        "bytes",
        "engine_memory_peak_bytes",
    ] {
        assert!(
            line.contains(&format!("\"{field}\"")),
            "{field} missing: {line}"
        );
    }
    let rejected = server
        .wait_for_log(
            &["\"outcome\":\"rejected\"", "missing_table"],
            Duration::from_secs(5),
        )
        .expect("a failed query is logged too");
    assert!(rejected.contains("NotFound"), "{rejected}");
    assert_eq!(server.terminate(), 0, "SIGTERM stops the server cleanly");
}

#[test]
fn a_large_result_streams_without_the_server_holding_it() {
    let server = TestServer::spawn(TestConfig::default());
    let out = check(&server, "stream", serde_json::json!({}));
    assert_all_ok(&out, &["5M rows streamed"]);
    let figures: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let bytes = figures["bytes"].as_u64().unwrap();
    let growth_kb =
        figures["rss_peak_kb"].as_u64().unwrap() - figures["rss_start_kb"].as_u64().unwrap();
    assert!(bytes > 500_000_000, "the result is large: {bytes} bytes");
    // collected, the result alone would take > 500 MB
    assert!(
        growth_kb < 150_000,
        "server memory grew {growth_kb} kB while streaming {bytes} bytes"
    );
}

#[test]
fn a_client_that_disconnects_stops_its_query() {
    let server = TestServer::spawn(TestConfig::default());
    let out = check(&server, "disconnect", serde_json::json!({}));
    assert_all_ok(&out, &["reading"]);
    let line = server
        .wait_for_log(&["\"outcome\":\"disconnected\""], Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no disconnected query in the log:\n{}", server.log()));
    assert!(line.contains("generate_series"), "{line}");
    // the endless query no longer runs: the server is idle
    let before = server.cpu_seconds();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_seconds() - before;
    assert!(
        used < 0.3,
        "the server kept working after the client left: {used} CPU-s in 1 s"
    );
}

#[test]
fn busy_server_refuses_and_long_queries_time_out() {
    let server = TestServer::spawn(
        TestConfig::default()
            .with_server("max_concurrent_queries = 1")
            .with_server("max_queued_queries = 0")
            .with_server("query_timeout = \"2s\""),
    );
    let out = check(&server, "limits", serde_json::json!({}));
    assert_all_ok(
        &out,
        &[
            "busy server refuses with RESOURCE_EXHAUSTED",
            "query stopped at the timeout",
            "slot freed",
        ],
    );
    assert!(
        server
            .wait_for_log(&["\"outcome\":\"timed_out\""], Duration::from_secs(5))
            .is_some(),
        "{}",
        server.log()
    );
}

#[test]
fn tls_with_a_self_signed_ca() {
    let certs = tempfile::tempdir().unwrap();
    common::python_script(
        "tests/flight/adbc_client.py",
        &[
            "certs",
            &serde_json::json!({ "dir": certs.path() }).to_string(),
        ],
    );
    let server = TestServer::spawn(TestConfig::default().with_tls(
        &certs.path().join("cert.pem"),
        &certs.path().join("key.pem"),
    ));
    assert!(
        server.url.starts_with("grpc+tls://localhost:"),
        "{}",
        server.url
    );
    let out = check(
        &server,
        "tls",
        serde_json::json!({ "ca": certs.path().join("ca.pem") }),
    );
    assert_all_ok(
        &out,
        &[
            "TLS with a self-signed CA",
            "TLS without the CA is refused",
            "TLS 1.1 is refused fast",
            "plaintext on the TLS port is dropped fast",
        ],
    );
}

#[test]
fn concurrent_clients_get_answers_without_errors() {
    let server = TestServer::spawn(TestConfig::default());
    let out = check(
        &server,
        "concurrency",
        serde_json::json!({ "clients": 32, "per_client": 50 }),
    );
    assert_all_ok(&out, &["concurrent clients, zero errors"]);
}

#[test]
fn the_printed_python_snippet_works_as_written() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    common::sample_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_audience"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("AUDIENCE_LOG", "error")
        .env_remove("AUDIENCE_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut snippet = String::new();
    let mut in_python = false;
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("JDBC: jdbc:arrow-flight-sql://127.0.0.1:") {
            break;
        }
        if line.starts_with("Python") {
            in_python = true;
        } else if in_python && let Some(code) = line.strip_prefix("    ") {
            snippet.push_str(code);
        }
        line.clear();
    }
    assert!(
        snippet.contains("flight_sql.connect(\"grpc://127.0.0.1:"),
        "{snippet}"
    );
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), &snippet).unwrap();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = Command::new(python).arg(script.path()).output().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{snippet}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("('view', "),
        "the snippet prints event counts: {printed}"
    );
}

#[test]
fn plaintext_is_refused_off_loopback_and_bad_server_config_is_named() {
    common::sample_dir();
    common::audience(&["serve", "--addr", "0.0.0.0:0"]).user_error("refusing to serve plaintext");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[server]\nquery_timeout = \"soon\"\n").unwrap();
    common::audience(&["serve", "--config", config.to_str().unwrap()])
        .user_error("server.query_timeout");
    std::fs::write(&config, "[server.tls]\ncert = \"/nowhere/cert.pem\"\n").unwrap();
    common::audience(&["serve", "--config", config.to_str().unwrap()])
        .user_error("both cert and key");
}
