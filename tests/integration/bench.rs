//! The benchmark harness at scale tiny (the CI smoke run): it generates the
//! dataset, runs every query on every engine, checks that all engines agree,
//! and writes the JSON, Markdown and SVG reports. Times are not checked.

use crate::common;

use std::process::Command;

use common::test_python;

const ENGINES: [&str; 5] = [
    "audience",
    "audience-flight",
    "clickhouse",
    "duckdb",
    "datafusion",
];

#[test]
fn every_engine_agrees_on_every_query_and_the_reports_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_audience"))
        .current_dir(dir.path())
        .args([
            "bench", "--scale", "tiny", "--runs", "2", "--out", "results", "--python",
        ])
        .arg(test_python())
        .env("AUDIENCE_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "audience bench failed:\n{stderr}");
    for progress in [
        "[1/17] q1_funnel: warm-up, answers checked",
        "[1/17] q1_funnel: round 2/2",
        "[17/17] f3_scan_gmv: audience ",
    ] {
        assert!(stderr.contains(progress), "no {progress:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe:\n{stderr}"
    );
    assert!(
        dir.path().join("data/tiny/events").is_dir(),
        "dataset not generated"
    );

    let results = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    let file = |ext: &str| {
        results
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("no .{ext} in {results:?}"))
    };
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("json")).unwrap()).unwrap();
    assert!(
        file("json")
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-tiny.json")
    );
    assert_eq!(json["context"]["scale"], "tiny");
    for engine in ENGINES {
        assert!(
            json["context"]["versions"][engine]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "no version for {engine}"
        );
    }
    let list = json["results"].as_array().unwrap();
    let ids: Vec<_> = list.iter().map(|r| r["query"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "q1_funnel",
            "q2_retention",
            "q3_rfm",
            "q4_lifecycle",
            "q5_segment",
            "q6_daily_gmv",
            "q7_top_categories",
            "q8_member_profile",
            "q9_sequence_count",
            "q10_top_paths",
            "q11_sessions",
            "q12_attribution",
            "q13_time_to_convert",
            "t1_tag_segment",
            "f1_scan_funnel",
            "f2_scan_rfm",
            "f3_scan_gmv"
        ]
    );
    for r in list {
        let rows = r["rows"].as_u64().unwrap();
        assert!(rows > 0, "{} returned no rows", r["query"]);
        for engine in ENGINES {
            let e = &r["engines"][engine];
            assert_eq!(e["rows"].as_u64(), Some(rows), "{} on {engine}", r["query"]);
            assert_eq!(
                e["seconds"].as_array().map(Vec::len),
                Some(2),
                "{} on {engine}",
                r["query"]
            );
            assert!(e["median"].as_f64().is_some_and(|m| m > 0.0));
            assert!(
                e["peak_memory_mb"].as_f64().is_some_and(|m| m > 1.0),
                "{} on {engine}: no memory",
                r["query"]
            );
        }
    }
    // Q8 is the member's last 50 events; Q1 has a row per funnel level 0..=4 reached.
    assert_eq!(list[7]["rows"], 50);

    let markdown = std::fs::read_to_string(file("md")).unwrap();
    assert!(markdown.contains("| query | audience | audience-flight | clickhouse | duckdb | datafusion | fastest peer ÷ Audience |"), "{markdown}");
    assert!(markdown.contains("| q9_sequence_count "), "{markdown}");
    let svg = std::fs::read_to_string(file("svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(
        svg.matches("<title>").count(),
        17 * ENGINES.len(),
        "one bar per query and engine"
    );

    // The compare step shows a file against itself as unchanged.
    let compare = common::audience(&[
        "bench",
        "--compare",
        &file("json").display().to_string(),
        &file("json").display().to_string(),
    ])
    .ok();
    assert!(
        compare.contains("| q1_funnel | audience |") && compare.contains("| 1.00× |"),
        "{compare}"
    );
}

#[test]
fn unknown_queries_and_results_files_are_named() {
    common::audience(&["bench", "--queries", "q99", "--engines", "audience"])
        .user_error("unknown query 'q99'; the workload has q1_funnel");
    common::audience(&["bench", "--compare", "missing-old.json", "missing-new.json"])
        .user_error("cannot read missing-old.json");
}

/// Runs `audience` with `args` in `dir`.
fn audience_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_audience"))
        .current_dir(dir)
        .args(args)
        .env("AUDIENCE_LOG", "error")
        .output()
        .unwrap()
}

#[test]
fn bench_uses_the_dataset_gen_wrote_and_never_replaces_a_folder_of_the_users() {
    let dir = tempfile::tempdir().unwrap();
    let generated = audience_in(dir.path(), &["gen", "--scale", "tiny", "--threads", "1"]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let stamp = std::fs::read_to_string(dir.path().join("data/tiny/.audience-data")).unwrap();
    assert!(
        stamp.starts_with("audience-data ") && stamp.contains("scale=tiny seed=42"),
        "{stamp}"
    );
    let marker = dir.path().join("data/tiny/events/marker.txt");
    std::fs::write(&marker, "the user's file").unwrap();
    let bench = [
        "bench",
        "--scale",
        "tiny",
        "--engines",
        "audience",
        "--queries",
        "q8",
        "--runs",
        "1",
        "--out",
        "results",
    ];
    let out = audience_in(dir.path(), &bench);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("generating"), "generated again:\n{stderr}");
    assert!(marker.exists(), "the dataset gen wrote was replaced");

    // a folder without our stamp is left alone, with an error that says why
    std::fs::remove_file(dir.path().join("data/tiny/.audience-data")).unwrap();
    let out = audience_in(dir.path(), &bench);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not a dataset that audience generated"),
        "{stderr}"
    );
    assert!(marker.exists(), "the user's folder was touched");
}
