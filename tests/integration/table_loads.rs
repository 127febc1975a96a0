//! `audience load` into Delta tables: a channel's CSV, JSON and Parquet exports
//! (and a query's result) become one committed version each, visible to the
//! next query, readable by the `deltalake` package; a batch loads once; a bad
//! value is an error naming file, line and column, and commits nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::common::{
    audience, audience_with_env, audience_with_peak_memory, csv_rows, python_script,
    python_script_with_stdin, read_file, with_extension,
};

/// One event row of a channel's export: member, UTC time (µs), event name.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) member: i64,
    pub(crate) micros: i64,
    pub(crate) event: &'static str,
}

const EVENTS: [&str; 3] = ["view", "cart", "purchase"];
/// 2026-11-01T00:00:00Z in µs.
const DAY: i64 = 1_793_491_200_000_000;

/// `n` events of members in `members`, deterministic, on day `day` (0-based).
pub(crate) fn events(n: usize, members: std::ops::Range<i64>, day: i64, seed: u64) -> Vec<Event> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    // distinct times (the row's number in µs), so the order of a member's
    // events is never a tie
    (0..n)
        .map(|i| Event {
            member: members.start + (next() % (members.end - members.start) as u64) as i64,
            micros: DAY + day * 86_400_000_000 + (next() % 86_400) as i64 * 1_000_000 + i as i64,
            event: EVENTS[(next() % 3) as usize],
        })
        .collect()
}

/// Writes `rows` as a CSV export with ISO-8601 times in +08:00 (China
/// Standard Time) and a column the table does not have.
fn write_csv(path: &Path, rows: &[Event]) {
    let mut text = String::from("member_id,ts,event,channel,amount,extra\n");
    for r in rows {
        let local = chrono::DateTime::from_timestamp_micros(r.micros + 8 * 3_600_000_000)
            .unwrap()
            .naive_utc();
        text.push_str(&format!(
            "{},{}+08:00,{},tmall,12.5,x\n",
            r.member,
            local.format("%Y-%m-%dT%H:%M:%S%.6f"),
            r.event
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// Writes `rows` as JSON lines with times in UTC (`Z`).
fn write_json(path: &Path, rows: &[Event]) {
    let text: String = rows
        .iter()
        .map(|r| {
            let at = chrono::DateTime::from_timestamp_micros(r.micros).unwrap();
            format!(
                "{{\"member_id\": {}, \"ts\": \"{}\", \"event\": \"{}\", \"channel\": \"jd\"}}\n",
                r.member,
                at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                r.event
            )
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

/// Writes `rows` as a Parquet file with INT member ids (cast to BIGINT on load).
pub(crate) fn write_parquet(path: &Path, rows: &[Event]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("member_id", DataType::Int32, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("event", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(arrow::array::Int32Array::from_iter_values(
                rows.iter().map(|r| r.member as i32),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|r| r.micros),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.event))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "store"))),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Writes `rows` as the Delta table `table` with the `deltalake` package:
/// three appends of unsorted slices, so files overlap in members.
pub(crate) fn write_with_deltalake(table: &Path, rows: &[Event]) {
    std::fs::create_dir_all(table.parent().unwrap()).unwrap();
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::json!([r.member, r.micros, r.event]))
        .collect();
    python_script_with_stdin(
        "tests/delta/read_table.py",
        &["--write", table.to_str().unwrap()],
        &serde_json::Value::Array(json).to_string(),
    );
}

/// The plan of [`VIEW_THEN_PURCHASE`] over two partitions.
pub(crate) fn funnel_plan(data: &Path) -> String {
    audience(&[
        "query",
        "--data",
        data.to_str().unwrap(),
        "--target-partitions",
        "2",
        "--format",
        "csv",
        &format!("EXPLAIN {VIEW_THEN_PURCHASE}"),
    ])
    .ok()
}

/// Rows per member of `rows`.
pub(crate) fn per_member(rows: &[Event]) -> BTreeMap<i64, u64> {
    let mut counts = BTreeMap::new();
    for r in rows {
        *counts.entry(r.member).or_insert(0) += 1;
    }
    counts
}

/// `audience query --data DIR` with CSV output, as rows of text.
pub(crate) fn query(data: &Path, sql: &str) -> Vec<Vec<String>> {
    query_with(data.to_str().unwrap(), sql, &[])
}

/// [`query`] over a dataset anywhere, with `env` (S3 settings).
pub(crate) fn query_with(data: &str, sql: &str, env: &[(String, String)]) -> Vec<Vec<String>> {
    let args = ["query", "--data", data, "--format", "csv", sql];
    csv_rows(&audience_with_env(&args, env).ok())
}

/// Events per member as the engine counts them.
pub(crate) fn counted_per_member(data: &Path) -> BTreeMap<i64, u64> {
    counted_per_member_with(data.to_str().unwrap(), &[])
}

/// [`counted_per_member`] over a dataset anywhere, with `env`.
pub(crate) fn counted_per_member_with(data: &str, env: &[(String, String)]) -> BTreeMap<i64, u64> {
    query_with(
        data,
        "SELECT member_id, count(*) FROM events GROUP BY member_id ORDER BY member_id",
        env,
    )
    .iter()
    .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
    .collect()
}

/// `audience load events SOURCES --data DIR`.
pub(crate) fn load(data: &Path, sources: &[&Path], extra: &[&str]) -> crate::common::Run {
    let mut args = vec!["load", "events"];
    args.extend(sources.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--data", data.to_str().unwrap()]);
    args.extend(extra);
    audience(&args)
}

/// The table's committed versions (log entries).
pub(crate) fn log_entries(table: &Path) -> Vec<PathBuf> {
    with_extension(&table.join("_delta_log"), "json")
}

/// The table's data files.
pub(crate) fn data_files(table: &Path) -> Vec<PathBuf> {
    with_extension(table, "parquet")
}

#[test]
fn loads_of_csv_json_and_parquet_are_versions_the_next_query_sees() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    let table = data.join("events");
    let day1 = events(400, 1..80, 0, 1);
    let day2 = events(300, 50..120, 1, 2);
    let day3 = events(200, 100..150, 2, 3);
    let (csv, json, parquet) = (
        dir.path().join("tmall-2026-11-01.csv"),
        dir.path().join("jd-2026-11-02.json"),
        dir.path().join("stores-2026-11-03.parquet"),
    );
    write_csv(&csv, &day1);
    write_json(&json, &day2);
    write_parquet(&parquet, &day3);

    let out = load(&data, &[&csv], &[]).ok();
    assert!(
        out.starts_with("loaded 400 rows from 1 files into") && out.contains("(version 1,"),
        "{out}"
    );
    // the first load creates the table with DATASET.md's columns, member
    // ranges recorded, and its rows cut into them
    assert_eq!(log_entries(&table).len(), 2, "create + the load");
    assert!(data_files(&table).len() >= 4, "{:?}", data_files(&table));
    assert_eq!(counted_per_member(&data), per_member(&day1));
    // +08:00 is converted to UTC: the earliest local time is 8 hours later
    let first = day1.iter().map(|r| r.micros).min().unwrap();
    let earliest = chrono::DateTime::from_timestamp_micros(first)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    assert_eq!(query(&data, "SELECT min(ts) FROM events")[0][0], earliest);

    let out = load(&data, &[&json], &[]).ok();
    assert!(
        out.contains("loaded 300 rows") && out.contains("(version 2,"),
        "{out}"
    );
    let out = load(&data, &[&parquet], &[]).ok();
    assert!(
        out.contains("loaded 200 rows") && out.contains("(version 3,"),
        "{out}"
    );

    // every load writes its files in one set of types (DATASET.md's,
    // dictionary-encoded text), whatever the source's were
    let stored: std::collections::BTreeSet<String> = data_files(&table)
        .iter()
        .map(|f| format!("{:?}", read_file(f)[0].schema().fields()))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored.iter().all(|s| s.contains("Dictionary")),
        "{stored:?}"
    );

    let all: Vec<Event> = [day1, day2, day3].concat();
    // a per-member function over fresh, uncompacted files stays exact, and
    // streams: each range's files (one per load) are merged in its partition
    assert_exact(&data, &all);
    let plan = funnel_plan(&data);
    assert!(
        plan.contains("MergeMemberRangesExec")
            && plan.contains("SinglePartitioned")
            && !plan.contains("RepartitionExec")
            && !plan.contains("SortExec"),
        "{plan}"
    );
    // EXPLAIN names the version it read
    assert!(plan.contains("table_versions,events@3"), "{plan}");

    // the deltalake package reads the same rows and columns
    let read: serde_json::Value = serde_json::from_str(&python_script(
        "tests/delta/read_table.py",
        &[table.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(read["version"], 3);
    assert_eq!(read["rows"], all.len());
    let theirs: BTreeMap<i64, u64> = read["per_member"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(theirs, per_member(&all));
    let columns: Vec<&str> = read["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(&columns[..2], ["member_id int64", "ts timestamp[us]"]);
}

/// Members with a view followed by a purchase within 30 days.
pub(crate) const VIEW_THEN_PURCHASE: &str = "SELECT count(*) FROM (SELECT member_id, \
    window_funnel(INTERVAL '30' DAY, '', ts, event = 'view', event = 'purchase') AS level \
    FROM events GROUP BY member_id) WHERE level = 2";

/// [`VIEW_THEN_PURCHASE`] as `window_funnel` counts them.
fn counted_view_then_purchase(data: &Path) -> usize {
    let funnels = query(data, VIEW_THEN_PURCHASE);
    funnels[0][0].parse().unwrap()
}

/// Asserts that the table answers exactly as `rows`: events per member, and
/// a per-member function (a 2-step funnel).
pub(crate) fn assert_exact(data: &Path, rows: &[Event]) {
    assert_eq!(counted_per_member(data), per_member(rows));
    assert_eq!(
        counted_view_then_purchase(data),
        expected_view_then_purchase(rows)
    );
}

/// Members with a view followed by a purchase within 30 days.
fn expected_view_then_purchase(rows: &[Event]) -> usize {
    let mut by_member: BTreeMap<i64, Vec<(i64, &str)>> = BTreeMap::new();
    for r in rows {
        by_member
            .entry(r.member)
            .or_default()
            .push((r.micros, r.event));
    }
    by_member
        .values()
        .filter(|events| {
            events.iter().any(|(view, e)| {
                *e == "view"
                    && events.iter().any(|(at, p)| {
                        *p == "purchase" && *at > *view && *at - *view <= 30 * 86_400_000_000
                    })
            })
        })
        .count()
}

#[test]
fn a_batch_loads_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    let table = data.join("events");
    let csv = dir.path().join("day.csv");
    let rows = events(120, 1..30, 0, 7);
    write_csv(&csv, &rows);
    load(&data, &[&csv], &[]).ok();
    let versions = log_entries(&table);
    let files = data_files(&table);

    // the same file again, under the hash of its name, size and content
    let out = load(&data, &[&csv], &[]).ok();
    assert!(
        out.contains("was loaded into") && out.contains("nothing to do"),
        "{out}"
    );
    // a copy under another name is another batch unless its id is given
    let copy = dir.path().join("day-resent.csv");
    std::fs::copy(&csv, &copy).unwrap();
    load(&data, &[&copy], &["--batch-id", "tmall-2026-11-01"]).ok();
    let out = load(&data, &[&copy], &["--batch-id", "tmall-2026-11-01"]).ok();
    assert!(out.contains("nothing to do"), "{out}");

    assert_eq!(log_entries(&table).len(), versions.len() + 1);
    assert_eq!(data_files(&table).len(), files.len() * 2);
    let doubled: BTreeMap<i64, u64> = per_member(&rows)
        .into_iter()
        .map(|(m, n)| (m, 2 * n))
        .collect();
    assert_eq!(counted_per_member(&data), doubled);
}

#[test]
fn a_bad_value_names_file_line_and_column_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    let table = data.join("events");
    let good = dir.path().join("good.csv");
    write_csv(&good, &events(50, 1..10, 0, 3));
    load(&data, &[&good], &[]).ok();
    let versions = log_entries(&table);
    let files = data_files(&table);

    let bad = dir.path().join("bad.csv");
    let mut text = std::fs::read_to_string(&good).unwrap();
    text = text.replacen(",12.5,", ",12,5,", 1); // line 2: one field too many
    std::fs::write(&bad, &text).unwrap();
    load(&data, &[&bad], &[]).user_error("bad.csv");

    let lines: Vec<String> = std::fs::read_to_string(&good)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut edited = lines.clone();
    edited[3] = edited[3].replace(",12.5,", ",twelve,");
    std::fs::write(&bad, edited.join("\n") + "\n").unwrap();
    load(&data, &[&bad], &[]).user_error("bad.csv: line 4, column amount: 'twelve' is not a valid");

    let mut edited = lines.clone();
    edited[5] = edited[5].replacen("+08:00", "+08:00x", 1);
    std::fs::write(&bad, edited.join("\n") + "\n").unwrap();
    load(&data, &[&bad], &[]).user_error("line 6, column ts");

    let no_event = dir.path().join("no-event.json");
    std::fs::write(
        &no_event,
        "{\"member_id\": 1, \"ts\": \"2026-11-01T00:00:00Z\", \"channel\": \"jd\"}\n",
    )
    .unwrap();
    load(&data, &[&no_event], &[])
        .user_error("column event: the column is missing, and the table requires it");

    let null_member = dir.path().join("null-member.json");
    std::fs::write(
        &null_member,
        "{\"member_id\": 1, \"ts\": \"2026-11-01T00:00:00Z\", \"event\": \"view\", \"channel\": \"jd\"}\n\
         {\"member_id\": null, \"ts\": \"2026-11-01T00:00:00Z\", \"event\": \"view\", \"channel\": \"jd\"}\n",
    )
    .unwrap();
    load(&data, &[&null_member], &[]).user_error("line 2, column member_id: no value");

    // no rows, and not the table's columns: still an error
    let foreign = dir.path().join("foreign.csv");
    std::fs::write(&foreign, "order_no,total\n").unwrap();
    load(&data, &[&foreign], &[]).user_error("column member_id: the column is missing");

    load(&data, &[&dir.path().join("missing.csv")], &[]).user_error("missing.csv");
    assert_eq!(log_entries(&table), versions, "a failed load committed");
    assert_eq!(data_files(&table), files, "a failed load left files");
}

#[test]
fn a_query_result_loads_with_its_renames_and_casts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    let raw = dir.path().join("wecom.csv");
    let rows = events(90, 1..40, 0, 11);
    let mut text = String::from("uid,at_epoch_s,what\n");
    for r in &rows {
        text.push_str(&format!(
            "{},{},{}\n",
            r.member,
            r.micros / 1_000_000,
            r.event
        ));
    }
    std::fs::write(&raw, text).unwrap();
    let sql = format!(
        "CREATE EXTERNAL TABLE raw (uid INT, at_epoch_s BIGINT, what VARCHAR) STORED AS CSV \
         LOCATION '{}' OPTIONS ('format.has_header' 'true'); \
         SELECT uid AS member_id, to_timestamp_seconds(at_epoch_s) AS ts, what AS event, \
         'wecom' AS channel FROM raw",
        raw.display()
    );
    let out = audience(&[
        "load",
        "events",
        "--data",
        data.to_str().unwrap(),
        "--sql",
        &sql,
    ])
    .ok();
    assert!(out.contains("loaded 90 rows from 0 files"), "{out}");
    assert_eq!(counted_per_member(&data), per_member(&rows));
    let channels = query(&data, "SELECT DISTINCT channel FROM events");
    assert_eq!(channels, vec![vec!["wecom".to_string()]]);
}

#[test]
fn a_table_written_by_deltalake_in_no_particular_layout_is_answered_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    let rows = events(150, 1..60, 0, 5);
    let table = data.join("events");
    write_with_deltalake(&table, &rows);
    assert!(data_files(&table).len() >= 3);
    assert_exact(&data, &rows);
}

#[test]
fn loads_to_s3_commit_once_each_even_when_two_writers_race() {
    use crate::common::seaweed::{BUCKET, SECRET_KEY, SeaweedFs};

    let s3 = SeaweedFs::start();
    let env = s3.env(SECRET_KEY);
    let dir = tempfile::tempdir().unwrap();
    let data = format!("s3://{BUCKET}/shop");
    let days: Vec<Vec<Event>> = (0..3)
        .map(|d| events(150, 1..40, d, 20 + d as u64))
        .collect();
    let files: Vec<PathBuf> = (0..3)
        .map(|d| dir.path().join(format!("day{d}.csv")))
        .collect();
    for (file, rows) in files.iter().zip(&days) {
        write_csv(file, rows);
    }
    let load = |file: &Path| {
        audience_with_env(
            &["load", "events", file.to_str().unwrap(), "--data", &data],
            &env,
        )
    };
    let out = load(&files[0]).ok();
    assert!(out.contains("(version 1,"), "{out}");
    assert!(load(&files[0]).ok().contains("nothing to do"));

    // two loads at once: each commit is a conditional put of the next log
    // entry, so one wins each version and the other retries on the next
    let racing: Vec<_> = files[1..]
        .iter()
        .cloned()
        .map(|file| {
            let (env, data) = (env.clone(), data.clone());
            std::thread::spawn(move || {
                audience_with_env(
                    &["load", "events", file.to_str().unwrap(), "--data", &data],
                    &env,
                )
                .ok()
            })
        })
        .collect();
    let mut versions: Vec<String> = racing
        .into_iter()
        .map(|t| {
            let out = t.join().unwrap();
            out.split("(version ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    versions.sort();
    assert_eq!(versions, ["2", "3"]);

    let log = s3.list(BUCKET, "shop/events/_delta_log").unwrap();
    assert_eq!(
        log.iter().filter(|f| f.ends_with(".json")).count(),
        4,
        "{log:?}"
    );
    // the store refuses a second put of an existing log entry (what keeps
    // racing writers from overwriting each other's version)
    assert!(
        matches!(
            put_if_absent(&s3, "shop/events/_delta_log/00000000000000000001.json"),
            Err(object_store::Error::AlreadyExists { .. })
        ),
        "SeaweedFS accepted a conditional put over an existing object"
    );
    assert!(put_if_absent(&s3, "shop/events/_delta_log/not-there-yet.json").is_ok());
    let counted = counted_per_member_with(&data, &env);
    assert_eq!(counted, per_member(&days.concat()));
}

/// Puts a small object at `key` only if none is there (`If-None-Match: *`).
fn put_if_absent(
    s3: &crate::common::seaweed::SeaweedFs,
    key: &str,
) -> Result<object_store::PutResult, object_store::Error> {
    use crate::common::seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY};
    use object_store::{ObjectStore, PutMode, PutOptions};
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(BUCKET)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .build()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    runtime.block_on(store.put_opts(&key.into(), "{}".into(), options))
}

#[test]
fn quarantined_rows_are_set_aside_with_their_reasons_once_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    let csv = dir.path().join("wecom-2026-11-04.csv");
    let mut text = String::from("member_id,ts,event,channel\n");
    for i in 0..10 {
        let member = if i == 1 {
            "abc".to_string()
        } else {
            (i + 1).to_string()
        };
        let ts = if i == 4 {
            "yesterday"
        } else {
            "2026-11-04T10:00:00Z"
        };
        text.push_str(&format!("{member},{ts},view,wecom\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let source = csv.to_str().unwrap();
    let args = [
        "load",
        "events",
        source,
        "--data",
        data.to_str().unwrap(),
        "--bad-rows",
        "quarantine",
    ];
    // a crash after the rejects are recorded: the retry records them once
    let env = [(
        "AUDIENCE_FAILPOINTS".to_string(),
        "crash:load:quarantined".to_string(),
    )];
    let crashed = crate::common::audience_with_env(&args, &env);
    assert!(
        crashed.stderr.contains("failpoint crash:load:quarantined"),
        "{}",
        crashed.stderr
    );
    let out = audience(&args).ok();
    assert!(out.contains("loaded 8 rows"), "{out}");
    assert!(
        out.contains("2 rows did not fit and were set aside in"),
        "{out}"
    );
    assert!(audience(&args).ok().contains("nothing to do"));
    assert_eq!(query(&data, "SELECT count(*) FROM events")[0][0], "8");
    let rejects = query(
        &data,
        "SELECT line, \"column\", value, reason, source = '${SOURCE}' FROM events_rejects ORDER BY line"
            .replace("${SOURCE}", source)
            .as_str(),
    );
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert_eq!(rejects[0][..3], ["3", "member_id", "abc"]);
    assert!(
        rejects[0][3].contains("'abc' is not a valid Int64"),
        "{rejects:?}"
    );
    assert_eq!(rejects[1][..3], ["6", "ts", "yesterday"]);
    assert!(
        rejects[1][3].contains("is not a valid Timestamp"),
        "{rejects:?}"
    );
    assert_eq!(rejects[0][4], "true");
    // without quarantine, the same file is refused, naming the first bad row
    let other = dir.path().join("other");
    load(&other, &[&csv], &[]).user_error("line 3, column member_id: 'abc' is not a valid Int64");
}

#[test]
fn a_load_of_millions_of_bad_rows_sets_them_aside_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    // 2M rows, all but every 100th with a member id that is not a number:
    // each rejected row was held in memory until the commit (about 0.5 GB)
    let rows: i64 = 2_000_000;
    let sql = format!(
        "SELECT CASE WHEN v % 100 = 0 THEN CAST(v AS VARCHAR) ELSE 'm' || v END AS member_id, \
         to_timestamp_micros({DAY} + v * 1000000) AS ts, 'view' AS event, 'tmall' AS channel \
         FROM generate_series(1, {rows}) AS t(v)"
    );
    let args = [
        "load",
        "events",
        "--sql",
        &sql,
        "--data",
        data.to_str().unwrap(),
        "--bad-rows",
        "quarantine",
        "--memory-limit",
        "64MB",
    ];
    let (run, peak) = audience_with_peak_memory(&args, &[]);
    let out = run.ok();
    let good = rows / 100;
    assert!(out.contains(&format!("loaded {good} rows")), "{out}");
    assert!(
        out.contains(&format!("{} rows did not fit", rows - good)),
        "{out}"
    );
    assert!(
        peak < 300_000_000,
        "the load peaked at {} MB",
        peak / 1_000_000
    );
    // each rejected row once (its place in the query's result, which has no
    // order of its own), with its value and reason
    let rejects = query(
        &data,
        "SELECT count(*), count(DISTINCT \"row\"), min(\"row\") >= 1, max(\"row\") <= 2000000, \
         count(DISTINCT value), count(*) FILTER (WHERE CAST(substr(value, 2) AS BIGINT) % 100 = 0), \
         count(*) FILTER (WHERE \"column\" <> 'member_id' \
                          OR reason NOT LIKE '''' || value || '''' || ' is not a valid Int64%') \
         FROM events_rejects",
    );
    let bad = (rows - good).to_string();
    assert_eq!(
        rejects[0],
        [
            bad.as_str(),
            bad.as_str(),
            "true",
            "true",
            bad.as_str(),
            "0",
            "0"
        ]
    );
    assert_eq!(
        query(&data, "SELECT count(*), sum(member_id) FROM events")[0],
        [good.to_string(), (100 * good * (good + 1) / 2).to_string()]
    );
}

#[test]
fn a_load_larger_than_the_memory_limit_sorts_on_disk_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    // 8M events of 500,000 members (16 each, ids visited in a scrambled
    // order): about 1 GB held in memory, as every load did before
    let rows: i64 = 8_000_000;
    let sql = format!(
        "SELECT (v * 7919) % 500000 AS member_id, \
         to_timestamp_micros({DAY} + (v % 1000) * 1000000) AS ts, \
         CASE v % 3 WHEN 0 THEN 'view' WHEN 1 THEN 'cart' ELSE 'purchase' END AS event, \
         'tmall' AS channel, v AS sku_id FROM generate_series(1, {rows}) AS t(v)"
    );
    let data_arg = data.to_str().unwrap();
    let args = [
        "load",
        "events",
        "--sql",
        &sql,
        "--data",
        data_arg,
        "--memory-limit",
        "64MB",
    ];
    let (run, peak) = audience_with_peak_memory(&args, &[]);
    let out = run.ok();
    assert!(out.contains(&format!("loaded {rows} rows")), "{out}");
    assert!(
        out.contains("MB sorted on disk"),
        "the sort did not spill: {out}"
    );
    assert!(
        peak < 600_000_000,
        "the load peaked at {} MB under a 64 MB limit",
        peak / 1_000_000
    );
    // every row once: 16 per member, each sku once
    let counted = query(
        &data,
        "SELECT count(*), count(DISTINCT member_id), sum(sku_id), \
         count(*) FILTER (WHERE n <> 16) FROM \
         (SELECT member_id, sku_id, count(*) OVER (PARTITION BY member_id) AS n FROM events)",
    );
    assert_eq!(
        counted[0],
        [
            "8000000",
            "500000",
            &(rows * (rows + 1) / 2).to_string(),
            "0"
        ]
    );
    // the files: ascending disjoint member ranges, each sorted by (member_id, ts)
    let files = data_files(&data.join("events"));
    assert!(files.len() >= 4, "{files:?}");
    let mut last: Option<(i64, i64)> = None;
    for (i, file) in files.iter().enumerate() {
        let mut previous_file_max = last.map(|(member, _)| member);
        for batch in read_file(file) {
            let members = batch
                .column_by_name("member_id")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .clone();
            let ts = batch
                .column_by_name("ts")
                .unwrap()
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap()
                .clone();
            for row in 0..batch.num_rows() {
                let key = (members.value(row), ts.value(row));
                if let Some(max) = previous_file_max.take() {
                    assert!(key.0 > max, "file {i} overlaps the one before");
                }
                assert!(last.is_none_or(|l| l <= key), "file {i} is not sorted");
                last = Some(key);
            }
        }
    }
}
