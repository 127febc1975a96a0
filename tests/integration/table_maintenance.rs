//! `audience compact` and `audience vacuum` on Delta tables: compaction
//! leaves one sorted file per member range and changes no answer, older
//! snapshots stay readable until vacuumed, a load racing a compaction is
//! rebased, a second compaction of the same files fails cleanly, and a crash
//! at any point of a load or a compaction loses and doubles nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use audience_engine::{Engine, EngineConfig, Location};

use crate::common::{audience, audience_with_env, python_script};
use crate::table_loads::{
    Event, assert_exact, counted_per_member, data_files, events, funnel_plan, load, per_member,
    write_parquet, write_with_deltalake,
};

/// A dataset whose `events` table holds three daily loads (Parquet files of
/// overlapping members), and the rows loaded.
fn three_loads(dir: &Path) -> (PathBuf, Vec<Event>) {
    let data = dir.join("dataset");
    let days = [
        events(400, 1..80, 0, 1),
        events(300, 50..120, 1, 2),
        events(200, 100..150, 2, 3),
    ];
    for (day, rows) in days.iter().enumerate() {
        let file = dir.join(format!("day-{day}.parquet"));
        write_parquet(&file, rows);
        load(&data, &[&file], &[]).ok();
    }
    (data, days.concat())
}

/// `audience compact --data DATA [TABLES]`.
fn compact(data: &Path, tables: &[&str]) -> crate::common::Run {
    let mut args = vec!["compact", "--data", data.to_str().unwrap()];
    args.extend(tables);
    audience(&args)
}

/// What the `deltalake` package reads of `table` (at `version`, if given).
fn deltalake_read(table: &Path, version: Option<u64>) -> serde_json::Value {
    let version = version.map(|v| v.to_string());
    let mut args = vec![table.to_str().unwrap()];
    args.extend(version.as_deref());
    serde_json::from_str(&python_script("tests/delta/read_table.py", &args)).unwrap()
}

fn deltalake_per_member(read: &serde_json::Value) -> BTreeMap<i64, u64> {
    read["per_member"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap()))
        .collect()
}

#[test]
fn compaction_leaves_one_sorted_file_per_range_and_changes_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (data, all) = three_loads(dir.path());
    let table = data.join("events");
    let before = data_files(&table);
    assert!(funnel_plan(&data).contains("MergeMemberRangesExec"));

    let out = compact(&data, &[]).ok();
    // ranges hold 1 + 1 + 2 + 3 files (see the loads' members): the last
    // two ranges are merged, one file each
    assert!(out.starts_with("events: 5 files merged into 2 ("), "{out}");
    assert!(out.contains("version 4)"), "{out}");
    assert_exact(&data, &all);
    let plan = funnel_plan(&data);
    assert!(
        plan.contains("SinglePartitioned")
            && !plan.contains("MergeMemberRangesExec")
            && !plan.contains("RepartitionExec")
            && !plan.contains("SortExec"),
        "{plan}"
    );
    // the deltalake package reads the compacted table, one file per range,
    // and the version before it, whose files are all still there
    let now = deltalake_read(&table, None);
    assert_eq!(
        (now["version"].as_u64(), now["files"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(deltalake_per_member(&now), per_member(&all));
    let then = deltalake_read(&table, Some(3));
    assert_eq!(then["files"].as_u64(), Some(before.len() as u64));
    assert_eq!(deltalake_per_member(&then), per_member(&all));
    assert_eq!(data_files(&table).len(), before.len() + 2);

    let again = compact(&data, &["events"]).ok();
    assert_eq!(
        again.trim(),
        "events: compact already (version 4): nothing to do"
    );
    // a load after the compaction adds its files to the compact ranges
    let more = events(100, 1..150, 3, 4);
    let file = dir.path().join("day-3.parquet");
    write_parquet(&file, &more);
    assert!(load(&data, &[&file], &[]).ok().contains("(version 5,"));
    let all = [all, more].concat();
    assert_eq!(counted_per_member(&data), per_member(&all));
}

#[test]
fn a_foreign_table_is_read_unsorted_until_compaction_sorts_and_ranges_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    let table = data.join("events");
    // three appends of unsorted slices by the deltalake package
    let rows = events(600, 1..200, 0, 7);
    write_with_deltalake(&table, &rows);
    // its files are not claimed sorted: the aggregate hashes, exactly
    let plan = funnel_plan(&data);
    assert!(plan.contains("RepartitionExec"), "{plan}");
    assert_exact(&data, &rows);

    // versions 0-2 are the appends; 3 records the member ranges, 4 compacts
    let out = compact(&data, &[]).ok();
    assert!(
        out.contains("files merged into 4 (600 rows, version 4)"),
        "{out}"
    );
    let plan = funnel_plan(&data);
    assert!(
        plan.contains("SinglePartitioned") && !plan.contains("RepartitionExec"),
        "{plan}"
    );
    assert_exact(&data, &rows);
    assert_eq!(
        deltalake_per_member(&deltalake_read(&table, None)),
        per_member(&rows)
    );
    // a later load splits its rows by the recorded ranges
    let more = events(100, 1..200, 1, 8);
    let file = dir.path().join("more.parquet");
    write_parquet(&file, &more);
    let out = load(&data, &[&file], &[]).ok();
    assert!(out.contains("4 files written"), "{out}");
}

/// Milliseconds since the epoch, `days` from now.
fn days_from_now(days: i64) -> i64 {
    chrono::Utc::now().timestamp_millis() + days * 86_400_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_what_a_recent_snapshot_needs_and_deletes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (data, all) = three_loads(dir.path());
    let table = data.join("events");
    compact(&data, &[]).ok();
    // a file a crashed load left: in the folder, in no version
    let orphan = table.join("r00000-crashedload000-0000000000000000.parquet");
    std::fs::copy(&data_files(&table)[0], &orphan).unwrap();
    let files = data_files(&table).len();

    let vacuum = |extra: &[&str]| {
        let mut args = vec!["vacuum", "--data", data.to_str().unwrap()];
        args.extend(extra);
        audience(&args)
    };
    vacuum(&["--retain", "30m"]).user_error("too short");
    // the compacted-away files were removed a moment ago, the orphan is new:
    // a query that started before may read them, so they stay
    let out = vacuum(&[]).ok();
    assert_eq!(out.trim(), "events: 0 files deleted (version 4)");
    assert_eq!(data_files(&table).len(), files);

    // eight days on, with the default retention: the five removed files and
    // the orphan go, what version 4 reads stays
    let mut config = EngineConfig::default();
    config.data.dir = data.to_str().unwrap().to_string();
    let engine = Engine::start(&config).await.unwrap();
    let location = Location::Local(table.clone());
    let week = std::time::Duration::from_secs(7 * 86_400);
    let summary = engine
        .vacuum_as_of(&location, week, days_from_now(8))
        .await
        .unwrap();
    assert_eq!(summary.files_deleted, 6);
    assert!(!orphan.exists());
    assert_eq!(data_files(&table).len(), files - 6);
    assert_eq!(counted_per_member(&data), per_member(&all));
    assert_eq!(
        deltalake_per_member(&deltalake_read(&table, None)),
        per_member(&all)
    );
    // six days on, nothing would have been old enough
    let again = engine
        .vacuum_as_of(&location, week, days_from_now(6))
        .await
        .unwrap();
    assert_eq!(again.files_deleted, 0);
}

/// A running `audience compact`.
struct Compaction {
    child: Child,
    /// Its stderr after the failpoint's line.
    stderr: std::thread::JoinHandle<String>,
}

impl Compaction {
    /// Starts `audience compact` with a failpoint and waits until it reports
    /// that it reached it.
    fn paused_at(data: &Path, point: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_audience"))
            .args(["compact", "--data", data.to_str().unwrap()])
            .env("AUDIENCE_FAILPOINTS", format!("pause:{point}"))
            .env("AUDIENCE_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.contains(&format!("failpoint pause:{point}")), "{line}");
        let stderr = std::thread::spawn(move || {
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
            rest
        });
        Compaction { child, stderr }
    }

    /// Its exit code, stdout and stderr.
    fn finish(self) -> (Option<i32>, String, String) {
        let out = self.child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout, self.stderr.join().unwrap())
    }
}

#[test]
fn a_load_racing_a_compaction_is_rebased_and_a_second_compaction_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (data, all) = three_loads(dir.path());
    let table = data.join("events");

    // a load commits while a compaction has written its files
    let compaction = Compaction::paused_at(&data, "compact:files_written");
    let more = events(100, 1..150, 3, 4);
    let file = dir.path().join("day-3.parquet");
    write_parquet(&file, &more);
    assert!(load(&data, &[&file], &[]).ok().contains("(version 4,"));
    let (code, stdout, stderr) = compaction.finish();
    assert!(
        code == Some(0) && stdout.contains("version 5)"),
        "{stdout}{stderr}"
    );
    let all = [all, more].concat();
    assert_eq!(counted_per_member(&data), per_member(&all));
    assert_eq!(
        deltalake_per_member(&deltalake_read(&table, None)),
        per_member(&all)
    );

    // two compactions of the same files: one commits, the other changes
    // nothing and takes its files away
    let files = data_files(&table).len();
    let first = Compaction::paused_at(&data, "compact:files_written");
    let second = Compaction::paused_at(&data, "compact:files_written");
    let (first, second) = (first.finish(), second.finish());
    let (won, lost) = match first.0 {
        Some(0) => (first, second),
        _ => (second, first),
    };
    assert!(
        won.1.contains("merged into") && won.1.contains("version 6)"),
        "{won:?}"
    );
    assert_eq!(lost.0, Some(2), "{lost:?}");
    assert!(lost.2.contains("changed while compacting"), "{lost:?}");
    let written: usize = won
        .1
        .split(" files merged into ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(
        data_files(&table).len(),
        files + written,
        "the loser left files"
    );
    assert_eq!(counted_per_member(&data), per_member(&all));
    assert_eq!(
        deltalake_per_member(&deltalake_read(&table, None)),
        per_member(&all)
    );
}

/// Runs `audience ARGS` crashing (as `kill -9` would) at `point`; asserts it
/// did crash there.
fn crash_at(point: &str, args: &[&str]) {
    let env = [("AUDIENCE_FAILPOINTS".to_string(), format!("crash:{point}"))];
    let run = audience_with_env(args, &env);
    assert_ne!(run.code, 0, "{point}: did not crash:\n{}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("failpoint crash:{point}: aborting")),
        "{point}: {}",
        run.stderr
    );
}

#[test]
fn a_crash_at_any_point_of_a_load_or_compaction_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let day0 = events(300, 1..90, 0, 11);
    let day1 = events(200, 40..130, 1, 12);
    let (file0, file1) = (dir.path().join("d0.parquet"), dir.path().join("d1.parquet"));
    write_parquet(&file0, &day0);
    write_parquet(&file1, &day1);
    let both = [day0.clone(), day1.clone()].concat();

    // loads: into a new table (crashes before and after it is created) and
    // into an existing one; a retry always ends with each row once
    let load_points = [
        "load:read",
        "load:created",
        "write:file_open",
        "write:file_closed",
        "load:files_written",
        "load:committed",
    ];
    for (i, point) in load_points.iter().enumerate() {
        let data = dir.path().join(format!("new-{i}"));
        let args = [
            "load",
            "events",
            file0.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ];
        crash_at(point, &args);
        let retry = audience(&args).ok();
        match *point {
            "load:committed" => assert!(retry.contains("nothing to do"), "{point}: {retry}"),
            _ => assert!(retry.contains("loaded 300 rows"), "{point}: {retry}"),
        }
        assert_eq!(counted_per_member(&data), per_member(&day0), "{point}");

        let args = [
            "load",
            "events",
            file1.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ];
        crash_at(point, &args);
        let after_crash = counted_per_member(&data);
        let expected = match *point {
            "load:committed" => per_member(&both),
            _ => per_member(&day0),
        };
        assert_eq!(
            after_crash, expected,
            "{point}: the crashed load half-happened"
        );
        audience(&args).ok();
        assert_eq!(counted_per_member(&data), per_member(&both), "{point}");
    }

    // compactions: of a table with member ranges, and of a foreign one
    // (whose ranges are recorded first)
    let compact_points = [
        "compact:ranges_recorded",
        "write:file_open",
        "write:file_closed",
        "compact:files_written",
        "compact:committed",
    ];
    for (i, point) in compact_points.iter().enumerate() {
        let data = dir.path().join(format!("compact-{i}"));
        let table = data.join("events");
        let rows = match *point {
            "compact:ranges_recorded" => {
                write_with_deltalake(&table, &both);
                both.clone()
            }
            _ => {
                for file in [&file0, &file1] {
                    load(&data, &[file], &[]).ok();
                }
                both.clone()
            }
        };
        crash_at(point, &["compact", "--data", data.to_str().unwrap()]);
        assert_eq!(counted_per_member(&data), per_member(&rows), "{point}");
        let retry = compact(&data, &[]).ok();
        match *point {
            "compact:committed" => assert!(retry.contains("nothing to do"), "{point}: {retry}"),
            _ => assert!(retry.contains("files merged into"), "{point}: {retry}"),
        }
        assert_eq!(counted_per_member(&data), per_member(&rows), "{point}");
        assert_eq!(
            deltalake_per_member(&deltalake_read(&table, None)),
            per_member(&rows),
            "{point}"
        );
    }
}

type Client = arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>;

/// The single number a query's FlightInfo answers.
async fn number(client: &mut Client, info: arrow_flight::FlightInfo) -> i64 {
    let batches = crate::flight_protocol::try_fetch(client, &info)
        .await
        .unwrap();
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}

/// `SELECT count(*) FROM events` over Flight SQL.
async fn server_count(client: &mut Client) -> i64 {
    let info = client
        .execute("SELECT count(*) AS n FROM events".into(), None)
        .await
        .unwrap();
    number(client, info).await
}

/// The events of members from `first` on, by a statement prepared once and
/// executed each time with `first`.
async fn prepared_count(
    client: &mut Client,
    statement: &mut arrow_flight::sql::client::PreparedStatement<tonic::transport::Channel>,
    first: i64,
) -> i64 {
    use arrow::datatypes::{DataType, Field, Schema};
    let schema = std::sync::Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, false)]));
    let value = std::sync::Arc::new(arrow::array::Int64Array::from(vec![first]));
    let values = arrow::array::RecordBatch::try_new(schema, vec![value]).unwrap();
    statement.set_parameters(values).unwrap();
    let info = statement.execute().await.unwrap();
    number(client, info).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_each_query_from_the_newest_version_and_logs_it() {
    use crate::common::test_server::{TestConfig, TestServer};
    use crate::flight_protocol::login;

    let dir = tempfile::tempdir().unwrap();
    let (data, all) = three_loads(dir.path());
    let server = TestServer::spawn(TestConfig::default().with_data(&data));
    let mut client = login(&server, "analyst").await;
    let mut statement = client
        .prepare(
            "SELECT count(*) AS n FROM events WHERE member_id >= $1".into(),
            None,
        )
        .await
        .unwrap();
    let n = all.len() as i64;
    assert_eq!(server_count(&mut client).await, n);
    assert_eq!(prepared_count(&mut client, &mut statement, 0).await, n);
    // asked again, the same query is answered from the result cache
    assert_eq!(server_count(&mut client).await, n);
    let cached = |log: &str| log.matches("\"outcome\":\"cached\"").count();
    server
        .wait_for_log(
            &["\"outcome\":\"cached\""],
            std::time::Duration::from_secs(10),
        )
        .expect("the repeated query was not answered from the result cache");

    // a load finishes while the server runs: the next query sees it, the
    // prepared statement too, then the repeat is cached again
    let more = events(100, 1..150, 3, 4);
    let file = dir.path().join("day-3.parquet");
    write_parquet(&file, &more);
    load(&data, &[&file], &[]).ok();
    let now = n + more.len() as i64;
    assert_eq!(server_count(&mut client).await, now);
    assert_eq!(prepared_count(&mut client, &mut statement, 0).await, now);
    assert_eq!(server_count(&mut client).await, now);
    server
        .wait_for_log(
            &["\"tables\":\"events@4\""],
            std::time::Duration::from_secs(10),
        )
        .expect("no query log line names version 4");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cached(&server.log()) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = server.log();
    assert!(log.contains("\"tables\":\"events@3\""), "{log}");
    assert_eq!(cached(&log), 2, "{log}");
}

#[test]
fn a_query_reads_one_version_of_a_table_even_when_a_load_commits_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let (data, all) = three_loads(dir.path());
    // the query takes its snapshot at its first scan of events, then waits
    let mut query = Command::new(env!("CARGO_BIN_EXE_audience"))
        .args([
            "query",
            "--data",
            data.to_str().unwrap(),
            "--format",
            "csv",
            // one subtree planned at a time: the second scan comes after the load
            "SET datafusion.execution.planning_concurrency = 1; \
             SELECT a.n, b.n FROM (SELECT count(*) AS n FROM events) a \
             CROSS JOIN (SELECT count(*) AS n FROM events WHERE event <> '') b",
        ])
        .env("AUDIENCE_FAILPOINTS", "pause:delta:snapshot_taken")
        .env("AUDIENCE_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(query.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("failpoint pause:delta:snapshot_taken"),
        "{line}"
    );
    let more = events(100, 1..150, 3, 4);
    let file = dir.path().join("day-3.parquet");
    write_parquet(&file, &more);
    assert!(load(&data, &[&file], &[]).ok().contains("(version 4,"));
    let out = query.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let n = all.len();
    assert_eq!(
        text.lines().nth(1),
        Some(format!("{n},{n}").as_str()),
        "{text}"
    );
    // the next query reads the new version
    let now = crate::table_loads::query(&data, "SELECT count(*) FROM events");
    assert_eq!(now[0][0], (n + more.len()).to_string());
}
