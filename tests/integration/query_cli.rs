//! `audience query` end to end: the real binary over the sample dataset, with
//! answers computed independently by reading the Parquet files directly.

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Float64Array, Int64Array};
use common::{audience, audience_with_stdin, csv_rows, read_table, sample_dir, strings};

#[test]
fn counts_per_event_type_match_the_files() {
    let dir = sample_dir();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for batch in read_table(&dir.join("events")) {
        let events = strings(&batch, "event");
        for e in events.iter() {
            *expected.entry(e.unwrap().to_string()).or_default() += 1;
        }
    }
    let out = audience(&[
        "query",
        "--data",
        dir.to_str().unwrap(),
        "--format",
        "csv",
        "SELECT event, count(*) AS n FROM events GROUP BY event ORDER BY event",
    ])
    .ok();
    assert!(out.starts_with("event,n\n"), "{out}");
    let got: BTreeMap<String, u64> = csv_rows(&out)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 12, "every event type appears in the sample");
}

#[test]
fn revenue_by_tier_joins_orders_to_members() {
    let dir = sample_dir();
    let mut tier_of: HashMap<i64, String> = HashMap::new();
    for batch in read_table(&dir.join("members")) {
        let ids = batch
            .column_by_name("member_id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let tiers = strings(&batch, "tier");
        for (id, tier) in ids.iter().zip(tiers.iter()) {
            tier_of.insert(id.unwrap(), tier.unwrap().to_string());
        }
    }
    let mut revenue: BTreeMap<String, (HashSet<i64>, f64)> = BTreeMap::new();
    for batch in read_table(&dir.join("orders")) {
        let ids = batch
            .column_by_name("member_id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let amounts = batch
            .column_by_name("amount")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        for (id, amount) in ids.iter().zip(amounts.iter()) {
            let e = revenue.entry(tier_of[&id.unwrap()].clone()).or_default();
            e.0.insert(id.unwrap());
            e.1 += amount.unwrap();
        }
    }
    let out = audience(&[
        "query",
        "--format",
        "csv",
        "SELECT m.tier, count(DISTINCT o.member_id) AS buyers, sum(o.amount) AS revenue \
         FROM orders o JOIN members m ON o.member_id = m.member_id GROUP BY m.tier ORDER BY m.tier",
    ])
    .ok();
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), revenue.len(), "{out}");
    for (row, (tier, (buyers, sum))) in rows.iter().zip(&revenue) {
        assert_eq!(&row[0], tier);
        assert_eq!(row[1].parse::<usize>().unwrap(), buyers.len(), "{tier}");
        let got: f64 = row[2].parse().unwrap();
        assert!(
            (got - sum).abs() <= 1e-6 * sum.abs().max(1.0),
            "{tier}: {got} vs {sum}"
        );
    }
}

#[test]
fn single_file_table_and_several_statements() {
    let dir = sample_dir();
    let file = dir.join("events").join("part-00001.parquet");
    let rows: usize = common::read_file(&file).iter().map(|b| b.num_rows()).sum();
    let table = format!("e={}", file.display());
    let out = audience(&[
        "query",
        "--table",
        &table,
        "--format",
        "csv",
        "CREATE VIEW pays AS SELECT * FROM e WHERE event = 'pay'; SELECT count(*) AS n FROM e",
    ])
    .ok();
    assert_eq!(out, format!("n\n{rows}\n"));
    // with --table alone, the dataset's tables are not registered
    audience(&["query", "--table", &table, "SELECT count(*) FROM members"]).user_error("members");
}

#[test]
fn sql_from_a_file_and_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let sql = tmp.path().join("q.sql");
    std::fs::write(&sql, "SELECT 40 + 2 AS answer").unwrap();
    let out = audience(&["query", "--format", "csv", "-f", sql.to_str().unwrap()]).ok();
    assert_eq!(out, "answer\n42\n");
    let out = audience_with_stdin(
        &["query", "--format", "csv"],
        Some("SELECT 'a' AS x;\nSELECT 'b' AS y"),
    )
    .ok();
    assert_eq!(out, "y\nb\n");
}

#[test]
fn csv_renders_nested_and_binary_values() {
    let out = audience(&[
        "query",
        "--format",
        "csv",
        "SELECT [1,0,1] AS l, true AS b, CAST(NULL AS INT) AS n, X'00ff' AS bin, 'a,\"b' AS s, \
         named_struct('k', 1, 'v', 'x') AS st",
    ])
    .ok();
    assert_eq!(
        out,
        "l,b,n,bin,s,st\n\"[1,0,1]\",true,,00ff,\"a,\"\"b\",\"{\"\"k\"\":1,\"\"v\"\":\"\"x\"\"}\"\n"
    );
}

#[test]
fn json_table_and_parquet_outputs() {
    let out = audience(&[
        "query",
        "--format",
        "json",
        "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, NULL",
    ])
    .ok();
    let v: Vec<String> = out
        .trim()
        .trim_matches(['[', ']'])
        .split("},{")
        .map(str::to_string)
        .collect();
    assert_eq!(v.len(), 2, "{out}");
    assert!(
        out.contains("\"a\":1") && out.contains("\"b\":\"x\"") && out.contains("\"a\":2"),
        "{out}"
    );
    let empty = audience(&["query", "--format", "json", "SELECT 1 AS a WHERE false"]).ok();
    assert_eq!(empty.trim(), "[]");

    let table = audience(&["query", "SELECT 7 AS seven"]).ok();
    assert!(
        table.contains("| seven |") && table.contains("| 7     |"),
        "{table}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("out.parquet");
    audience(&[
        "query",
        "--format",
        "parquet",
        "-o",
        path.to_str().unwrap(),
        "SELECT member_id FROM members WHERE member_id <= 10",
    ])
    .ok();
    let batches = common::read_file(&path);
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=10).collect::<Vec<_>>());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
}

#[test]
fn events_scan_declares_the_member_ts_order() {
    let out = audience(&[
        "query",
        "--format",
        "csv",
        "EXPLAIN SELECT member_id, ts FROM events",
    ])
    .ok();
    assert!(
        out.contains("output_ordering=[member_id@0 ASC NULLS LAST, ts@1 ASC NULLS LAST]"),
        "{out}"
    );
}

#[test]
fn recipes_run_on_the_sample() {
    sample_dir();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/recipes");
    let mut recipes: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    recipes.sort();
    assert!(recipes.len() >= 3, "{recipes:?}");
    for recipe in &recipes {
        let out = audience(&["query", "--format", "csv", "-f", recipe.to_str().unwrap()]).ok();
        assert!(
            !csv_rows(&out).is_empty(),
            "{}: no rows\n{out}",
            recipe.display()
        );
    }
    // the funnel recipe: members per step never grow, and step 1 is everyone who viewed
    let out = audience(&[
        "query",
        "--format",
        "csv",
        "-f",
        dir.join("funnel_conversion.sql").to_str().unwrap(),
    ])
    .ok();
    let members: Vec<u64> = csv_rows(&out)
        .iter()
        .map(|r| r[2].parse().unwrap())
        .collect();
    assert_eq!(members.len(), 4, "{out}");
    assert!(members.windows(2).all(|w| w[0] >= w[1]), "{out}");
    let viewers = audience(&[
        "query",
        "--format",
        "csv",
        "SELECT count(DISTINCT member_id) FROM events WHERE event = 'view'",
    ])
    .ok();
    assert_eq!(csv_rows(&viewers)[0][0].parse::<u64>().unwrap(), members[0]);
}

#[test]
fn per_member_aggregates_stream_without_repartition() {
    // Files hold disjoint member ranges, so the scan declares range partitioning on
    // member_id: one aggregation phase, sorted (streaming, grouping by runs of
    // member ids), and no RepartitionExec.
    let plan = audience(&[
        "query",
        "--target-partitions",
        "2",
        "--format",
        "csv",
        "EXPLAIN SELECT member_id, window_funnel(3600, '', ts, event = 'view', event = 'pay') FROM events GROUP BY member_id",
    ])
    .ok();
    assert!(
        plan.contains("RunAggregateExec: mode=SinglePartitioned"),
        "{plan}"
    );
    assert!(plan.contains("ordering_mode=Sorted"), "{plan}");
    assert!(!plan.contains("RepartitionExec"), "{plan}");
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal() {
    sample_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audience"))
        .args(["query", "--format", "csv", "SELECT 1 AS one"])
        .env("AUDIENCE_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("DEBUG"), "no log lines to check:\n{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe:\n{stderr}"
    );
}
