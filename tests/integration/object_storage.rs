//! `s3://` locations against a real S3-compatible server (SeaweedFS, started
//! per test on loopback with credentials enforced): generating a dataset
//! straight to S3, querying it, atomic exports, and the errors a user sees for
//! wrong credentials, a missing bucket and a stalled store.

use crate::common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::seaweed::{BUCKET, SECRET_KEY, SeaweedFs};
use common::{audience, audience_with_env, csv_rows};

/// A query whose answer covers every table and the member-range layout.
const CHECK_SQL: &str = "SELECT (SELECT count(*) FROM members) AS members, \
     (SELECT count(*) FROM events) AS events, \
     (SELECT sum(amount) FROM orders) AS gmv, \
     (SELECT count(*) FROM member_tags) AS tags, \
     (SELECT count(*) FROM identities) AS ids, \
     (SELECT sum(CASE WHEN f >= 2 THEN 1 ELSE 0 END) FROM \
        (SELECT member_id, window_funnel(604800, '', ts, event = 'view', event = 'cart') AS f \
         FROM events GROUP BY member_id)) AS funnel_2";

/// The rows `sql` answers over the exported object `target`, as table `seg`.
fn read_back(target: &str, sql: &str, env: &[(String, String)]) -> Vec<Vec<String>> {
    let table = format!("seg={target}");
    let args = ["query", "--format", "csv", "--table", &table, sql];
    csv_rows(&audience_with_env(&args, env).ok())
}

#[test]
fn dataset_generated_to_s3_answers_like_the_local_one() {
    let s3 = SeaweedFs::start();
    let env = s3.env(SECRET_KEY);
    let local = tempfile::tempdir().unwrap();
    let local_dir = local.path().join("tiny");
    audience(&["gen", "--out", local_dir.to_str().unwrap()]).ok();
    let remote = format!("s3://{BUCKET}/datasets/tiny");
    let out = audience_with_env(&["gen", "--out", &remote], &env).ok();
    assert!(out.contains(&remote), "{out}");
    let tables = s3.list(BUCKET, "datasets/tiny").unwrap();
    for table in ["members", "events", "orders", "member_tags", "identities"] {
        assert!(tables.contains(&table.to_string()), "{tables:?}");
        // a Delta table: its log and its data files
        let files = s3.list(BUCKET, &format!("datasets/tiny/{table}")).unwrap();
        let (log, data): (Vec<&String>, Vec<&String>) =
            files.iter().partition(|f| *f == "_delta_log");
        assert!(
            log.len() == 1 && data.len() >= 4 && data.iter().all(|f| f.starts_with("part-")),
            "{table}: {files:?}"
        );
    }

    let query = |data: &str, env: &[(String, String)]| {
        audience_with_env(
            &["query", "--format", "csv", "--data", data, CHECK_SQL],
            env,
        )
        .ok()
    };
    let expected = query(local_dir.to_str().unwrap(), &[]);
    assert_eq!(csv_rows(&expected)[0][0], "1000", "{expected}");
    assert_eq!(query(&remote, &env), expected);

    // a single table given by its prefix, and one object of it
    let one = audience_with_env(
        &[
            "query",
            "--format",
            "csv",
            "--table",
            &format!("e={remote}/events"),
            "--table",
            &format!("p={remote}/events/part-00000.parquet"),
            "SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM p) < (SELECT count(*) FROM e)",
        ],
        &env,
    )
    .ok();
    assert_eq!(csv_rows(&one)[0][0], csv_rows(&expected)[0][1], "{one}");
    assert_eq!(csv_rows(&one)[0][1], "true", "{one}");

    // the tag index is built on S3 as it is locally, and nothing local is made
    let index_sql = "SELECT count(*), sum(bitmap_cardinality(bitmap)) FROM tag_bitmaps";
    audience(&["index", "tags", "--data", local_dir.to_str().unwrap()]).ok();
    audience_with_env(&["index", "tags", "--data", &remote], &env).ok();
    let index = |data: &str, env: &[(String, String)]| {
        let args = ["query", "--format", "csv", "--data", data, index_sql];
        audience_with_env(&args, env).ok()
    };
    let local_index = index(local_dir.to_str().unwrap(), &[]);
    assert!(
        csv_rows(&local_index)[0][0].parse::<u64>().unwrap() > 10,
        "{local_index}"
    );
    assert_eq!(index(&remote, &env), local_index);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        !root.join("s3:").exists(),
        "a local folder was made for an s3:// dataset"
    );
}

#[test]
fn segments_export_to_s3_whole_or_not_at_all() {
    let s3 = SeaweedFs::start();
    let env = s3.env(SECRET_KEY);
    let data = format!("s3://{BUCKET}/tiny");
    audience_with_env(&["gen", "--out", &data], &env).ok();
    let segment = "SELECT member_id FROM members WHERE member_id % 7 = 0 ORDER BY member_id";

    // audience export: Parquet, then read back from S3
    let target = format!("s3://{BUCKET}/segments/every7.parquet");
    let out = audience_with_env(&["export", "--data", &data, "--to", &target, segment], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("exported 142 rows"), "{}", out.stderr);
    let back = read_back(
        &target,
        "SELECT count(*), min(member_id), max(member_id) FROM seg",
        &env,
    );
    assert_eq!(back, vec![vec!["142", "7", "994"]]);

    // COPY to a CSV object
    let csv_target = format!("s3://{BUCKET}/segments/every7.csv");
    let copied = audience_with_env(
        &[
            "query",
            "--format",
            "csv",
            "--data",
            &data,
            &format!("COPY ({segment}) TO '{csv_target}' STORED AS CSV"),
        ],
        &env,
    )
    .ok();
    assert_eq!(csv_rows(&copied), vec![vec!["142"]]);
    assert_eq!(
        s3.list(BUCKET, "segments").unwrap(),
        vec!["every7.csv".to_string(), "every7.parquet".to_string()]
    );

    // a query failing after rows were written leaves nothing behind
    let failing = audience_with_env(
        &[
            "query",
            "--data",
            &data,
            &format!(
                "COPY (SELECT e.member_id, 10 / (e.member_id - 990) AS x FROM events e ORDER BY e.member_id) \
                 TO 's3://{BUCKET}/segments/broken.parquet'"
            ),
        ],
        &env,
    );
    assert_ne!(failing.code, 0);
    assert!(
        failing.stderr.contains("Divide by zero"),
        "{}",
        failing.stderr
    );
    assert_eq!(
        s3.list(BUCKET, "segments").unwrap(),
        vec!["every7.csv".to_string(), "every7.parquet".to_string()],
        "a failed export left an object"
    );

    // a folder export is refused with the fix named
    audience_with_env(
        &[
            "query",
            "--data",
            &data,
            &format!("COPY ({segment}) TO 's3://{BUCKET}/segments/folder/' STORED AS PARQUET"),
        ],
        &env,
    )
    .user_error("name the file with its extension");

    // What a killed export leaves (its staging object, named with its process
    // id and start time) goes with the next export to the same folder once an
    // hour old; a running export's is kept.
    let nanos =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let now = std::time::SystemTime::now();
    let running = format!(".partial-7-{:x}-every7.parquet", nanos(now));
    let killed = format!(
        ".partial-7-{:x}-every7.parquet",
        nanos(now - Duration::from_secs(2 * 3600))
    );
    for left in [&running, &killed] {
        let planted = audience_with_env(
            &[
                "query",
                "--data",
                &data,
                &format!("COPY ({segment}) TO 's3://{BUCKET}/segments/{left}'"),
            ],
            &env,
        );
        assert_eq!(planted.code, 0, "{}", planted.stderr);
    }
    let listed = s3.list(BUCKET, "segments").unwrap();
    assert!(
        listed.contains(&killed) && listed.contains(&running),
        "{listed:?}"
    );
    let out = audience_with_env(&["export", "--data", &data, "--to", &target, segment], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        s3.list(BUCKET, "segments").unwrap(),
        vec![
            running,
            "every7.csv".to_string(),
            "every7.parquet".to_string()
        ],
        "the killed export's staging object stayed, or the running one's went"
    );
}

#[test]
fn wrong_secret_and_missing_bucket_are_named() {
    let s3 = SeaweedFs::start();
    let data = format!("s3://{BUCKET}/tiny");
    audience_with_env(&["gen", "--out", &data], &s3.env(SECRET_KEY)).ok();

    let wrong = s3.env("not-the-secret");
    audience_with_env(&["query", "--data", &data, "SELECT 1"], &wrong)
        .user_error(&format!("access to bucket '{BUCKET}' was denied"));
    audience_with_env(
        &["query", "--table", &format!("e={data}/events"), "SELECT 1"],
        &wrong,
    )
    .user_error("table 'e'");
    audience_with_env(&["gen", "--out", &format!("s3://{BUCKET}/other")], &wrong)
        .user_error(&format!("access to bucket '{BUCKET}' was denied"));

    let env = s3.env(SECRET_KEY);
    audience_with_env(
        &["query", "--data", "s3://no-such-bucket/tiny", "SELECT 1"],
        &env,
    )
    .user_error("bucket 'no-such-bucket' does not exist");
    audience_with_env(
        &[
            "query",
            "--table",
            &format!("e=s3://{BUCKET}/nothing/here"),
            "SELECT 1",
        ],
        &env,
    )
    .user_error("no .parquet objects under");
}

#[test]
fn a_stalled_store_fails_within_the_configured_bound() {
    // accepts connections and never answers
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("audience.toml");
    std::fs::write(
        &config,
        format!(
            "[storage.s3]\nendpoint = \"http://127.0.0.1:{port}\"\nallow_http = true\n\
             access_key_id = \"k\"\nsecret_access_key = \"s\"\n\
             request_timeout = \"1s\"\nmax_retries = 1\nretry_timeout = \"3s\"\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let run = audience_with_env(
        &[
            "query",
            "--config",
            config.to_str().unwrap(),
            "--data",
            "s3://stalled/data",
            "SELECT 1",
        ],
        &[],
    );
    let took = started.elapsed();
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("s3://stalled/data"), "{}", run.stderr);
    assert!(
        took < Duration::from_secs(20),
        "took {took:?}: {}",
        run.stderr
    );
}

/// Reliability F4: the S3 server behind a fault-injecting proxy. Delayed
/// requests still answer exactly; dropped connections and `503`s are retried,
/// or the query fails naming the store — never a wrong or partial answer, and
/// an export is whole or absent; a stalled store fails by the request timeout;
/// a store that goes down fails the next query within seconds, and the server
/// answers again when it is back, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_object_store_faults_give_the_right_answer_or_a_clear_error() {
    use crate::common::fault_proxy::{Fault, FaultProxy};
    use crate::common::reliability::{Seeded, record, size};
    use crate::common::test_server::{TestConfig, TestServer};
    use std::sync::atomic::Ordering::SeqCst;

    let s3 = SeaweedFs::start();
    let data = format!("s3://{BUCKET}/tiny");
    audience_with_env(&["gen", "--out", &data], &s3.env(SECRET_KEY)).ok();
    let seed = Seeded::new("F4", 4).next_u64();
    let proxy = FaultProxy::start(s3.endpoint.trim_start_matches("http://"), seed);
    let through_proxy: Vec<(String, String)> = s3
        .env(SECRET_KEY)
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "AWS_ENDPOINT_URL" => (k, proxy.endpoint.clone()),
            _ => (k, v),
        })
        .collect();
    // a short request timeout, so that a stalled request fails fast
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("audience.toml");
    std::fs::write(
        &config,
        "[storage.s3]\nrequest_timeout = \"2s\"\nmax_retries = 3\nretry_timeout = \"8s\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let query = |sql: &str| {
        let args = [
            "query", "--config", config, "--format", "csv", "--data", &data, sql,
        ];
        audience_with_env(&args, &through_proxy)
    };
    let expected = query(CHECK_SQL).ok();
    let requests = |p: &FaultProxy| p.injected().requests.load(SeqCst);
    assert!(
        requests(&proxy) > 0,
        "the queries did not go through the proxy"
    );

    // (a) 200 ms per request
    proxy.set(Fault::Delay(Duration::from_millis(200)));
    let started = Instant::now();
    assert_eq!(
        query(CHECK_SQL).ok(),
        expected,
        "a delayed store answered differently"
    );
    let delayed_s = started.elapsed().as_secs_f64();
    assert!(proxy.injected().delayed.load(SeqCst) > 0);

    // (b) 5 % dropped connections, 5 % 503s: the answer, or a clear error
    proxy.set(Fault::Flaky {
        drop_percent: 5,
        unavailable_percent: 5,
    });
    let runs = size(3, 20);
    let (mut answered, mut exported) = (0, 0);
    for run in 0..runs {
        let got = query(CHECK_SQL);
        if got.code == 0 {
            assert_eq!(
                got.stdout, expected,
                "run {run}: a flaky store answered differently"
            );
            answered += 1;
        } else {
            assert!(
                got.stderr.contains("s3://") || got.stderr.contains("bject store"),
                "run {run}: {}",
                got.stderr
            );
        }
        let target = format!("s3://{BUCKET}/segments/flaky-{run}.parquet");
        let segment = "SELECT member_id FROM members WHERE member_id % 7 = 0";
        let copied = query(&format!("COPY ({segment}) TO '{target}'"));
        let listed = s3.list(BUCKET, "segments").unwrap_or_default();
        let present = listed.contains(&format!("flaky-{run}.parquet"));
        assert_eq!(
            present,
            copied.code == 0,
            "run {run}: the export's outcome and the store disagree: {}",
            copied.stderr
        );
        if present {
            let back = read_back(&target, "SELECT count(*) FROM seg", &s3.env(SECRET_KEY));
            assert_eq!(back, vec![vec!["142"]], "run {run}: a partial export");
            exported += 1;
        }
    }
    let (dropped, unavailable) = (
        proxy.injected().dropped.load(SeqCst),
        proxy.injected().unavailable.load(SeqCst),
    );
    assert!(dropped + unavailable > 0, "no fault was injected");

    // (c) a stalled store: fails by the request timeout, never hangs
    proxy.set(Fault::Stall);
    let started = Instant::now();
    let stalled = query(CHECK_SQL);
    let stalled_s = started.elapsed().as_secs_f64();
    assert_ne!(stalled.code, 0);
    assert!(stalled.stderr.contains("s3://"), "{}", stalled.stderr);
    assert!(
        stalled_s < 20.0,
        "a stalled store took {stalled_s:.1} s to fail"
    );
    assert!(proxy.injected().stalled.load(SeqCst) > 0);

    // (d) down, then back: the server answers again without a restart
    proxy.set(Fault::None);
    let mut server_config = TestConfig::default().with_data(std::path::Path::new(&data));
    for (k, v) in &through_proxy {
        server_config = server_config.with_env(k, v);
    }
    let server = TestServer::spawn(server_config);
    let mut client = crate::flight_protocol::login(&server, "analyst").await;
    let mut ask = async move || {
        let info = client
            .execute(CHECK_SQL.into(), None)
            .await
            .map_err(|e| e.to_string())?;
        crate::flight_protocol::try_fetch(&mut client, &info).await
    };
    let before = ask().await.unwrap();
    proxy.down();
    let started = Instant::now();
    let refused = ask().await.expect_err("answered while the store was down");
    let down_s = started.elapsed().as_secs_f64();
    assert!(
        down_s <= 10.0,
        "the first query with the store down took {down_s:.1} s"
    );
    assert!(
        refused.contains("s3://") || refused.contains("bject store"),
        "{refused}"
    );
    assert!(proxy.injected().refused_while_down.load(SeqCst));
    proxy.up();
    assert_eq!(
        ask().await.unwrap(),
        before,
        "not answered after the store came back"
    );

    println!(
        "F4: delay 200 ms: {delayed_s:.1} s; flaky ({dropped} dropped, {unavailable} 503s): {answered}/{runs} answered, \
         {exported}/{runs} exported whole, the rest failed naming the store; stall failed in {stalled_s:.1} s; down: failed in {down_s:.1} s, answered after"
    );
    record(
        "F4",
        serde_json::json!({ "delay_s": delayed_s, "runs": runs, "answered": answered, "exported": exported, "dropped": dropped, "unavailable": unavailable, "stall_s": stalled_s, "down_s": down_s }),
    );
}
