//! Reliability B3: every Audience function called with seeded random
//! arguments — 0 to 40 of them, of every type, NULLs, non-constant windows and
//! modes, negative and huge numbers, unknown flags, random and deeply nested
//! patterns, ids −1 and 2^32 — over a small table with ties and NULLs. Each
//! call answers or fails with an error that names the function (or the
//! argument's problem), within 2 s, and never panics.

use std::time::{Duration, Instant};

use audience_engine::{Engine, EngineConfig};

use crate::common::reliability::{Seeded, record, size};

/// Events of four members, with equal timestamps, NULLs and every type a
/// function takes: `(member_id, ts, event, amount, flag, ids, bitmap)`.
const TABLE: &str = "CREATE TABLE fz AS SELECT column1 AS member_id, \
    CAST(column2 AS TIMESTAMP) AS ts, column3 AS event, column4 AS amount, \
    column5 AS flag, column6 AS ids, bitmap_from_array(column6) AS bm FROM (VALUES \
    (1, '2026-11-01 10:00:00', 'view', 10.5, true, [1, 2]), \
    (1, '2026-11-01 10:00:00', 'cart', NULL, false, [3]), \
    (1, '2026-11-01 10:00:00', 'pay', 99.0, true, [1]), \
    (1, '2026-11-02 09:00:00', 'view', 0.0, NULL, []), \
    (2, '2026-11-01 10:00:00', 'pay', -5.0, true, [4294967295]), \
    (2, '2026-11-01 11:00:00', NULL, 1e300, false, [0, 7]), \
    (3, '2026-10-01 00:00:00', 'view', 3.0, true, [5]), \
    (4, '2026-11-03 00:00:00', 'cart', 2.0, false, [2, 4]))";

/// Identifiers for `one_id`: `(member_id, id_type, id_value)`, anonymous rows too.
const IDS: &str = "CREATE TABLE fz_ids AS SELECT column1 AS member_id, column2 AS id_type, \
    column3 AS id_value FROM (VALUES (1, 'phone', 'a'), (2, 'phone', 'a'), (2, 'wechat', 'b'), \
    (3, 'wechat', 'b'), (CAST(NULL AS BIGINT), 'phone', 'a'), (4, 'email', NULL))";

/// Argument expressions, well- and ill-typed.
const ARGUMENTS: &[&str] = &[
    "ts",
    "event",
    "member_id",
    "amount",
    "flag",
    "ids",
    "bm",
    "NULL",
    "CAST(NULL AS BIGINT)",
    "CAST(NULL AS TIMESTAMP)",
    "0",
    "1",
    "-1",
    "3600",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "'x'",
    "''",
    "'strict_order'",
    "'strict_once'",
    "'strict_deduplication'",
    "'strict_increase'",
    "'no_such_mode'",
    "''",
    "event = 'view'",
    "event = 'cart'",
    "event = 'pay'",
    "flag",
    "amount > 5",
    "member_id = 2",
    "TIMESTAMP '0001-01-01 00:00:00'",
    "TIMESTAMP '9999-12-31 00:00:00'",
    "TIMESTAMP '2026-11-05 00:00:00'",
    "DATE '2026-11-05'",
    "'2026-11-05'",
    "'(?1)(?2)'",
    "'(?1).*(?2)'",
    "'(?1)(?t>=3600)(?2)'",
    "'(?1)(?t<=0)(?1)(?1)'",
    "'(?9)'",
    "'(?'",
    "'(?t>x)'",
    "'.*.*.*.*.*.*.*.*.*.*(?1)'",
    "[1, 2, 3]",
    "make_array()",
    "'fz'",
    "'nope'",
    "'orders'",
    "5",
    "0.5",
    "true",
    "member_id % 3",
    "CAST(ts AS DATE)",
];

/// A random argument: one of [`ARGUMENTS`], or a random pattern, or a deep one.
fn argument(rng: &mut Seeded) -> String {
    match rng.below(20) {
        0 => {
            let atoms = ["(?1)", "(?2)", "(?3)", ".", ".*", "(?t>1)", "(?t<100)"];
            let n = 1 + rng.below(30);
            format!(
                "'{}'",
                (0..n).map(|_| *rng.pick(&atoms)).collect::<String>()
            )
        }
        1 => {
            let depth = 1 + rng.below(200);
            format!("'{}(?1){}'", "(".repeat(depth), ")".repeat(depth))
        }
        _ => rng.pick(ARGUMENTS).to_string(),
    }
}

/// A well-formed call of each function, which the fuzzer mutates.
const CALLS: &[(Kind, &str, &[&str])] = &[
    (
        Kind::Aggregate,
        "window_funnel",
        &[
            "3600",
            "''",
            "ts",
            "event = 'view'",
            "event = 'cart'",
            "event = 'pay'",
        ],
    ),
    (
        Kind::Aggregate,
        "window_funnel",
        &[
            "86400",
            "'strict_once'",
            "CAST(ts AS DATE)",
            "event = 'view'",
            "event = 'view'",
            "event = 'pay'",
        ],
    ),
    (
        Kind::Aggregate,
        "retention",
        &["event = 'view'", "event = 'cart'", "event = 'pay'"],
    ),
    (
        Kind::Aggregate,
        "sequence_match",
        &[
            "'(?1)(?t<=3600)(?2)'",
            "ts",
            "event = 'view'",
            "event = 'pay'",
        ],
    ),
    (
        Kind::Aggregate,
        "sequence_count",
        &["'(?1).*(?2)'", "ts", "event = 'view'", "event = 'pay'"],
    ),
    (
        Kind::Aggregate,
        "lifecycle_stage",
        &["ts", "TIMESTAMP '2026-11-05 00:00:00'"],
    ),
    (Kind::Aggregate, "bitmap_agg", &["member_id"]),
    (Kind::Aggregate, "bitmap_or_agg", &["bm"]),
    (Kind::Aggregate, "bitmap_and_agg", &["bm"]),
    (Kind::Scalar, "rfm_segment", &["1", "5", "3"]),
    (Kind::Scalar, "bitmap_cardinality", &["bm"]),
    (Kind::Scalar, "bitmap_contains", &["bm", "1"]),
    (Kind::Scalar, "bitmap_to_array", &["bm"]),
    (Kind::Scalar, "bitmap_from_array", &["ids"]),
    (Kind::Scalar, "bitmap_and", &["bm", "bm"]),
    (Kind::Scalar, "bitmap_or", &["bm", "bm"]),
    (Kind::Scalar, "bitmap_xor", &["bm", "bm"]),
    (Kind::Scalar, "bitmap_andnot", &["bm", "bm"]),
    (
        Kind::Table,
        "rfm",
        &["'fz'", "TIMESTAMP '2026-11-05 00:00:00'", "5"],
    ),
    (Kind::Table, "one_id", &["'fz_ids'"]),
    (Kind::Aggregate, "sessions", &["ts", "1800", "7200"]),
    (
        Kind::Aggregate,
        "sequence_next_node",
        &[
            "'forward'",
            "'first_match'",
            "ts",
            "event",
            "flag",
            "event = 'view'",
            "event = 'cart'",
        ],
    ),
    (
        Kind::Aggregate,
        "attribution",
        &["'time_decay'", "ts", "event", "flag", "3600", "600"],
    ),
    (
        Kind::Aggregate,
        "event_path",
        &["ts", "event", "event = 'view'", "4", "'backward'"],
    ),
    (
        Kind::Aggregate,
        "window_funnel_detail",
        &["3600", "''", "ts", "event", "event = 'view'", "flag"],
    ),
    (
        Kind::Aggregate,
        "window_funnel_exclude",
        &[
            "3600",
            "'strict_once'",
            "'1-2'",
            "ts",
            "event = 'view'",
            "flag",
            "event = 'cart'",
        ],
    ),
    (
        Kind::Aggregate,
        "window_funnel_detail_exclude",
        &[
            "3600",
            "''",
            "'1-2'",
            "ts",
            "event",
            "event = 'view'",
            "flag",
            "event = 'cart'",
        ],
    ),
    (
        Kind::Window,
        "session_number",
        &["ts", "1800", "INTERVAL '2 hours'"],
    ),
];

/// `args` with one to three random changes: an argument replaced, one
/// removed, or more appended (up to 40).
fn mutate(args: &[&str], rng: &mut Seeded) -> Vec<String> {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    for _ in 0..1 + rng.below(3) {
        match rng.below(4) {
            0 | 1 if !args.is_empty() => {
                let at = rng.below(args.len());
                args[at] = argument(rng);
            }
            2 if !args.is_empty() => {
                args.remove(rng.below(args.len()));
            }
            _ => {
                for _ in 0..1 + rng.below(40usize.saturating_sub(args.len()).max(1)) {
                    args.push(argument(rng));
                }
            }
        }
    }
    args
}

#[derive(Clone, Copy)]
enum Kind {
    Scalar,
    Aggregate,
    Window,
    Table,
}

/// One call of `name` with `args`, in the query its kind takes.
fn call(kind: Kind, name: &str, args: &[String]) -> String {
    let call = format!("{name}({})", args.join(", "));
    match kind {
        Kind::Scalar => format!("SELECT {call} FROM fz"),
        Kind::Aggregate => format!("SELECT member_id, {call} FROM fz GROUP BY member_id"),
        Kind::Window => {
            format!("SELECT member_id, {call} OVER (PARTITION BY member_id ORDER BY ts) FROM fz")
        }
        Kind::Table => format!("SELECT * FROM {call}"),
    }
}

/// How a call ended: `Ok(rows)`, or the error's text.
async fn run(engine: &Engine, sql: &str) -> Result<usize, String> {
    let frame = engine.sql(sql).await.map_err(|e| e.to_string())?;
    // as the CLI and the server show it
    let shown = |e| audience_engine::EngineError::from(e).to_string();
    let batches = frame.collect().await.map_err(shown)?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_arguments_are_answered_or_named_never_a_panic() {
    let engine = Engine::start(&EngineConfig::default()).await.unwrap();
    run(&engine, TABLE).await.unwrap();
    run(&engine, IDS).await.unwrap();
    // every function has a call to mutate
    let functions = audience_udfs::all_functions();
    let names = functions.scalar.iter().map(|f| f.name().to_string());
    let names = names.chain(functions.aggregate.iter().map(|f| f.name().to_string()));
    let names = names.chain(functions.window.iter().map(|f| f.name().to_string()));
    for name in names.chain(functions.table.iter().map(|f| f.name.to_string())) {
        assert!(
            CALLS.iter().any(|c| c.1 == name),
            "no call of {name} to fuzz"
        );
    }

    let mut rng = Seeded::new("function_fuzz", 20261129);
    let (mut answered, mut refused, mut slowest) = (0, 0, Duration::ZERO);
    let mut unnamed = Vec::new();
    let mut rows = 0;
    for case in 0..size(1000, 20_000) {
        let (kind, name, valid) = *rng.pick(CALLS);
        let args = match rng.below(5) {
            0 => valid.iter().map(|a| a.to_string()).collect(),
            _ => mutate(valid, &mut rng),
        };
        let sql = call(kind, name, &args);
        let started = Instant::now();
        let engine_for_case = engine.clone();
        let query = sql.clone();
        let outcome = tokio::spawn(async move { run(&engine_for_case, &query).await }).await;
        let took = started.elapsed();
        slowest = slowest.max(took);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => panic!("case {case} panicked: {e}\n{sql}"),
        };
        assert!(
            took <= Duration::from_secs(2),
            "case {case} took {took:?}\n{sql}"
        );
        match outcome {
            Ok(n) => {
                answered += 1;
                rows += n;
            }
            Err(e) => {
                refused += 1;
                assert!(
                    !e.contains("panicked") && !e.to_lowercase().contains("internal error"),
                    "case {case}: {e}\n{sql}"
                );
                if !(e.contains(name) || names_the_problem(&e)) {
                    unnamed.push(format!("case {case}: {e}\n  {sql}"));
                }
            }
        }
    }
    println!("{answered} answered ({rows} rows), {refused} refused, slowest {slowest:?}");
    assert!(
        unnamed.is_empty(),
        "errors that name neither the function nor the problem:\n{}",
        unnamed.join("\n")
    );
    assert!(answered > 0 && refused > 0, "the fuzzer tried too little");
    record(
        "B3",
        serde_json::json!({ "cases": answered + refused, "answered": answered,
            "refused": refused, "panics": 0, "slowest_s": slowest.as_secs_f64() }),
    );
}

/// Errors DataFusion raises before a function sees its arguments name the
/// argument's problem rather than the function (a cast that cannot be made,
/// an unknown table).
fn names_the_problem(e: &str) -> bool {
    let problems = [
        "Cannot cast",
        "Cast error",
        "not found",
        "No field named",
        "No function matches",
    ];
    problems.iter().any(|p| e.contains(p))
}
