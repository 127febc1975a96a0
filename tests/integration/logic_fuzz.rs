//! Reliability B1: logic fuzzing over Flight SQL. Random small tables (every
//! type, NULLs, NaN, duplicates) and random predicates; each query is checked
//! against itself rewritten (ternary logic partitioning: the rows where `p`,
//! `NOT p` and `p IS NULL` together are all the rows, for counts, MIN/MAX and
//! DISTINCT; non-optimizing reference: `count(*) … WHERE p` equals a sum of
//! `CASE WHEN p`), under random `target_partitions`, `batch_size` and
//! per-query memory limit. A panic or an internal error fails at once; so
//! does an answer that disagrees. A query refused for memory is counted, and
//! its check skipped (a rewritten query may need more memory than the whole).

use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use arrow_flight::sql::client::FlightSqlServiceClient;
use tonic::transport::Channel;

use crate::common::reliability::{Seeded, fuzz_budget, record};
use crate::common::test_server::{TestConfig, TestServer};
use crate::flight_protocol::{login, try_fetch};

/// Column types and the literals a table or a predicate uses for each.
const TYPES: [(&str, &[&str]); 5] = [
    ("BIGINT", &["-3", "0", "1", "2", "7", "NULL"]),
    (
        "DOUBLE",
        &[
            "-1.5",
            "0.0",
            "-0.0",
            "2.25",
            "CAST('NaN' AS DOUBLE)",
            "NULL",
        ],
    ),
    (
        "VARCHAR",
        &["''", "'a'", "'A'", "'ab'", "'b'", "' a'", "'é'", "NULL"],
    ),
    ("BOOLEAN", &["true", "false", "NULL"]),
    (
        "TIMESTAMP",
        &[
            "TIMESTAMP '2026-01-01 00:00:00'",
            "TIMESTAMP '2026-01-01 00:00:01'",
            "TIMESTAMP '1970-01-01 00:00:00'",
            "NULL",
        ],
    ),
];

/// A random table: its columns' type indexes.
struct Table {
    name: String,
    columns: Vec<usize>,
    /// The statement that made it, to replay a finding.
    create: String,
}

impl Table {
    fn create(rng: &mut Seeded, name: String) -> Self {
        let columns: Vec<usize> = (0..1 + rng.below(4))
            .map(|_| rng.below(TYPES.len()))
            .collect();
        let defs: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, &t)| format!("c{i} {}", TYPES[t].0))
            .collect();
        let rows: Vec<String> = (0..1 + rng.below(30))
            .map(|_| {
                let values: Vec<&str> = columns.iter().map(|&t| *rng.pick(TYPES[t].1)).collect();
                format!("({})", values.join(", "))
            })
            .collect();
        let sql = format!(
            "CREATE TABLE {name} ({}) AS VALUES {}",
            defs.join(", "),
            rows.join(", ")
        );
        Table {
            name,
            columns,
            create: sql,
        }
    }

    /// A random column of type `t`, if the table has one.
    fn column_of(&self, rng: &mut Seeded, t: usize) -> Option<String> {
        let of: Vec<usize> = (0..self.columns.len())
            .filter(|&i| self.columns[i] == t)
            .collect();
        (!of.is_empty()).then(|| format!("c{}", of[rng.below(of.len())]))
    }

    /// A random predicate, `depth` levels deep at most.
    fn predicate(&self, rng: &mut Seeded, depth: usize) -> String {
        let c = rng.below(self.columns.len());
        let (column, t) = (format!("c{c}"), self.columns[c]);
        let literal = |rng: &mut Seeded| rng.pick(TYPES[t].1).to_string();
        let choice = if depth == 0 {
            rng.below(6)
        } else {
            rng.below(11)
        };
        match choice {
            0 | 1 => {
                let op = rng.pick(&["=", "<>", "<", "<=", ">", ">="]);
                let rhs = match self.column_of(rng, t) {
                    Some(other) if rng.below(3) == 0 => other,
                    _ => literal(rng),
                };
                format!("{column} {op} {rhs}")
            }
            2 => format!(
                "{column} IS {}NULL",
                if rng.below(2) == 0 { "NOT " } else { "" }
            ),
            3 => {
                let list: Vec<String> = (0..1 + rng.below(3)).map(|_| literal(rng)).collect();
                let not = if rng.below(2) == 0 { "NOT " } else { "" };
                format!("{column} {not}IN ({})", list.join(", "))
            }
            4 if TYPES[t].0 == "VARCHAR" => {
                format!(
                    "{column} LIKE {}",
                    rng.pick(&["'a%'", "'%'", "'_'", "'%b'", "''"])
                )
            }
            4 if TYPES[t].0 == "BOOLEAN" => column,
            4 | 5 => format!(
                "coalesce({column}, {}) {} {}",
                literal(rng),
                rng.pick(&["=", "<", ">="]),
                literal(rng)
            ),
            6 => format!("NOT ({})", self.predicate(rng, depth - 1)),
            7 | 8 => format!(
                "({}) {} ({})",
                self.predicate(rng, depth - 1),
                rng.pick(&["AND", "OR"]),
                self.predicate(rng, depth - 1)
            ),
            9 => format!("{column} BETWEEN {} AND {}", literal(rng), literal(rng)),
            _ => format!(
                "CASE WHEN {} THEN {} ELSE {} END",
                self.predicate(rng, depth - 1),
                self.predicate(rng, depth - 1),
                self.predicate(rng, depth - 1)
            ),
        }
    }
}

/// What one statement gave.
enum Outcome {
    Value(Option<i64>),
    /// Refused as the user's mistake (a type the predicate cannot compare).
    Refused(String),
}

/// The one `BIGINT` value `sql` answers; an internal error or a panic fails the test.
async fn scalar(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Outcome {
    let run = async {
        let info = client
            .execute(sql.into(), None)
            .await
            .map_err(|e| e.to_string())?;
        try_fetch(client, &info).await
    };
    match run.await {
        Ok(batches) => {
            let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
                return Outcome::Value(None);
            };
            let column =
                arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Int64).unwrap();
            let values = column.as_primitive::<Int64Type>();
            Outcome::Value((!values.is_null(0)).then(|| values.value(0)))
        }
        Err(e) => {
            assert!(
                !e.contains("Internal")
                    && !e.contains("panicked")
                    && !e.contains("transport error"),
                "{sql}: {e}"
            );
            Outcome::Refused(e)
        }
    }
}

/// How the values of a check's parts make the whole's value.
#[derive(Debug, Clone, Copy)]
enum Combine {
    /// Counts add up (NULL counts as 0).
    Sum,
    Min,
    Max,
}

impl Combine {
    fn apply(self, values: &[Option<i64>]) -> Option<i64> {
        match self {
            Combine::Sum => Some(values.iter().map(|v| v.unwrap_or(0)).sum()),
            Combine::Min => values.iter().flatten().min().copied(),
            Combine::Max => values.iter().flatten().max().copied(),
        }
    }
}

/// One check: the whole's value must equal its parts' values combined.
struct Check {
    whole: String,
    parts: Vec<String>,
    combine: Combine,
}

/// The checks of one predicate `p` on `table`.
fn checks(table: &Table, rng: &mut Seeded, p: &str) -> Vec<Check> {
    let t = &table.name;
    let parts = [
        format!("({p})"),
        format!("NOT ({p})"),
        format!("({p}) IS NULL"),
    ];
    let mut checks = vec![
        Check {
            whole: format!("SELECT count(*) FROM {t}"),
            parts: parts
                .iter()
                .map(|w| format!("SELECT count(*) FROM {t} WHERE {w}"))
                .collect(),
            combine: Combine::Sum,
        },
        Check {
            whole: format!("SELECT count(*) FROM {t} WHERE {p}"),
            parts: vec![format!(
                "SELECT sum(CASE WHEN {p} THEN 1 ELSE 0 END) FROM {t}"
            )],
            combine: Combine::Sum,
        },
    ];
    let c = format!("c{}", rng.below(table.columns.len()));
    let distinct_parts: Vec<String> = parts
        .iter()
        .map(|w| format!("SELECT DISTINCT {c} FROM {t} WHERE {w}"))
        .collect();
    checks.push(Check {
        whole: format!("SELECT count(*) FROM (SELECT DISTINCT {c} FROM {t})"),
        parts: vec![format!(
            "SELECT count(*) FROM ({})",
            distinct_parts.join(" UNION ")
        )],
        combine: Combine::Sum,
    });
    if let Some(n) = table.column_of(rng, 0) {
        for (agg, combine) in [("min", Combine::Min), ("max", Combine::Max)] {
            checks.push(Check {
                whole: format!("SELECT {agg}({n}) FROM {t}"),
                parts: parts
                    .iter()
                    .map(|w| format!("SELECT {agg}({n}) FROM {t} WHERE {w}"))
                    .collect(),
                combine,
            });
        }
    }
    checks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b1_rewritten_queries_agree_and_nothing_panics() {
    let server = TestServer::spawn(TestConfig::default());
    let mut client = login(&server, "admin").await;
    let mut rng = Seeded::new("B1", 1);
    let budget = fuzz_budget(90, 3600);
    let started = Instant::now();
    let (mut queries, mut refused, mut tables) = (0usize, 0usize, 0usize);
    let mut out_of_memory = 0usize;
    while started.elapsed() < budget {
        let table = Table::create(&mut rng, format!("fuzz{tables}"));
        tables += 1;
        if let Outcome::Refused(e) = scalar(&mut client, &table.create).await {
            panic!("{}: {e}", table.create);
        }
        for setting in [
            format!(
                "SET datafusion.execution.target_partitions = {}",
                rng.pick(&[1, 2, 3, 7, 16])
            ),
            format!(
                "SET datafusion.execution.batch_size = {}",
                rng.pick(&[1, 2, 7, 128, 8192])
            ),
            format!(
                "SET audience.query_memory_limit = '{}'",
                rng.pick(&["unlimited", "1MB", "64KB", "16KB"])
            ),
        ] {
            let _ = scalar(&mut client, &setting).await;
        }
        for _ in 0..8 {
            let p = table.predicate(&mut rng, 3);
            'check: for Check {
                whole,
                parts,
                combine,
            } in checks(&table, &mut rng, &p)
            {
                queries += 1 + parts.len();
                let expected = match scalar(&mut client, &whole).await {
                    Outcome::Value(v) => v,
                    Outcome::Refused(e) if out_of(&e) => {
                        out_of_memory += 1;
                        continue;
                    }
                    Outcome::Refused(_) => {
                        refused += 1;
                        continue;
                    }
                };
                let mut values = Vec::new();
                for part in &parts {
                    match scalar(&mut client, part).await {
                        Outcome::Value(v) => values.push(v),
                        Outcome::Refused(e) if out_of(&e) => {
                            out_of_memory += 1;
                            continue 'check;
                        }
                        Outcome::Refused(e) => {
                            panic!("{part}: refused while {whole} answered: {e}")
                        }
                    }
                }
                assert_eq!(
                    combine.apply(&values),
                    combine.apply(&[expected]),
                    "oracle mismatch:\n  {};\n  {whole}\n  {}",
                    table.create,
                    parts.join("\n  ")
                );
            }
        }
        let _ = scalar(&mut client, &format!("DROP TABLE {}", table.name)).await;
    }
    println!(
        "B1: {tables} tables, {queries} queries in {:?}; {refused} predicates refused as invalid, \
         {out_of_memory} checks skipped for a query over its memory limit",
        started.elapsed()
    );
    // the limits were applied: the smallest refuses some queries
    assert!(out_of_memory > 0, "no query was refused under a 16KB limit");
    record(
        "B1",
        serde_json::json!({ "tables": tables, "queries": queries, "refused": refused, "out_of_memory": out_of_memory, "seconds": started.elapsed().as_secs_f64() }),
    );
}

/// Whether `error` is a refusal for memory (the query's limit named, as it must be).
fn out_of(error: &str) -> bool {
    error.contains("resource has been exhausted") && error.contains("query_memory_limit")
}
