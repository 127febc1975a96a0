//! Reliability B2: every query of the `sql/*.slt` files, mutated in its syntax
//! tree — an expression replaced by a literal of another type or by another
//! expression of the query, or wrapped (`NOT`, negation, casts, an index); an
//! operator swapped; a function's arguments dropped, repeated, swapped or
//! added to; a clause removed — and run where its file runs it (after the
//! file's statements before it). Each mutant answers, fails with an error that
//! is not an internal one, or is stopped at its 10 s deadline within 1 s; none
//! panics.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use audience_engine::{Engine, EngineConfig};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, SetExpr,
    Statement, visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use sqllogictest::{DefaultColumnType, Record};

use crate::common::reliability::{Seeded, fuzz_budget, record};
use crate::sql_files::slt_files;

/// How long a mutant may run before it is stopped.
const DEADLINE: Duration = Duration::from_secs(10);

/// Literals of every type, and edge values.
const LITERALS: &[&str] = &[
    "NULL",
    "0",
    "-1",
    "1",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "0.5",
    "''",
    "'x'",
    "'strict_order'",
    "TRUE",
    "FALSE",
    "DATE '2026-11-05'",
    "TIMESTAMP '0001-01-01 00:00:00'",
    "TIMESTAMP '9999-12-31 00:00:00'",
    "INTERVAL '1 day'",
    "[1, 2]",
    "make_array()",
    "CAST(NULL AS BIGINT)",
    "CAST(NULL AS TIMESTAMP)",
];

/// Wrappers of an expression (`{}`).
const WRAPS: &[&str] = &[
    "NOT ({})",
    "-({})",
    "CAST(({}) AS BIGINT)",
    "CAST(({}) AS VARCHAR)",
    "CAST(({}) AS TIMESTAMP)",
    "CAST(({}) AS DATE)",
    "CAST(({}) AS TINYINT)",
    "({}) IS NULL",
    "coalesce(({}), NULL)",
    "[({})]",
    "({}) + 1",
    "({}) / 0",
    "({})[1]",
    "({})['start']",
    "({}) = ({})",
    "CASE WHEN ({}) THEN 1 END",
];

const OPERATORS: &[BinaryOperator] = &[
    BinaryOperator::Plus,
    BinaryOperator::Minus,
    BinaryOperator::Multiply,
    BinaryOperator::Divide,
    BinaryOperator::Modulo,
    BinaryOperator::Eq,
    BinaryOperator::NotEq,
    BinaryOperator::Lt,
    BinaryOperator::GtEq,
    BinaryOperator::And,
    BinaryOperator::Or,
    BinaryOperator::StringConcat,
];

fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .ok()?
        .parse_expr()
        .ok()
}

/// One of [`LITERALS`], parsed.
fn literal(rng: &mut Seeded) -> Option<Expr> {
    let text: &&str = rng.pick(LITERALS);
    parse_expr(text)
}

/// How many expressions of `statement` satisfy `want`.
fn count(statement: &Statement, want: fn(&Expr) -> bool) -> usize {
    let mut n = 0;
    let _ = visit_expressions(statement, |e| {
        n += usize::from(want(e));
        ControlFlow::<()>::Continue(())
    });
    n
}

/// Edits the `k`-th expression of `statement` that satisfies `want`.
fn edit_nth(
    statement: &mut Statement,
    want: fn(&Expr) -> bool,
    k: usize,
    edit: impl FnOnce(&mut Expr),
) {
    let mut edit = Some(edit);
    let mut i = 0;
    let _ = visit_expressions_mut(statement, |e| {
        if want(e) {
            if i == k {
                if let Some(edit) = edit.take() {
                    edit(e);
                }
                return ControlFlow::Break(());
            }
            i += 1;
        }
        ControlFlow::Continue(())
    });
}

/// A random expression of `statement` satisfying `want`, edited.
fn edit_one(
    statement: &mut Statement,
    want: fn(&Expr) -> bool,
    rng: &mut Seeded,
    edit: impl FnOnce(&mut Expr, &mut Seeded),
) {
    let n = count(statement, want);
    if n > 0 {
        let k = rng.below(n);
        edit_nth(statement, want, k, |e| edit(e, rng));
    }
}

fn any(_: &Expr) -> bool {
    true
}

fn binary(e: &Expr) -> bool {
    matches!(e, Expr::BinaryOp { .. })
}

fn call_with_arguments(e: &Expr) -> bool {
    matches!(e, Expr::Function(f) if matches!(&f.args, FunctionArguments::List(l) if !l.args.is_empty()))
}

/// One random edit of `statement`.
fn mutate(statement: &mut Statement, rng: &mut Seeded) {
    match rng.below(6) {
        0 => edit_one(statement, any, rng, |e, rng| {
            if let Some(literal) = literal(rng) {
                *e = literal;
            }
        }),
        1 => {
            let mut all = Vec::new();
            let _ = visit_expressions(statement, |e| {
                all.push(e.clone());
                ControlFlow::<()>::Continue(())
            });
            if !all.is_empty() {
                let other = rng.pick(&all).clone();
                edit_one(statement, any, rng, |e, _| *e = other);
            }
        }
        2 => edit_one(statement, any, rng, |e, rng| {
            let text = rng.pick(WRAPS).replace("{}", &e.to_string());
            if let Some(wrapped) = parse_expr(&text) {
                *e = wrapped;
            }
        }),
        3 => edit_one(statement, binary, rng, |e, rng| {
            if let Expr::BinaryOp { op, .. } = e {
                *op = rng.pick(OPERATORS).clone();
            }
        }),
        4 => edit_one(statement, call_with_arguments, rng, |e, rng| {
            let Expr::Function(f) = e else { return };
            let FunctionArguments::List(list) = &mut f.args else {
                return;
            };
            let args = &mut list.args;
            let i = rng.below(args.len());
            match rng.below(4) {
                0 => {
                    args.remove(i);
                }
                1 => args.insert(i, args[i].clone()),
                2 => {
                    let j = rng.below(args.len());
                    args.swap(i, j);
                }
                _ => {
                    if let Some(literal) = literal(rng) {
                        args.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(literal)));
                    }
                }
            }
        }),
        _ => remove_clause(statement, rng),
    }
}

/// Removes a random clause of the outermost `SELECT` (or its `ORDER BY`), or
/// toggles its `DISTINCT`.
fn remove_clause(statement: &mut Statement, rng: &mut Seeded) {
    let Statement::Query(query) = statement else {
        return;
    };
    let choice = rng.below(5);
    if choice == 0 {
        query.order_by = None;
        return;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    match choice {
        1 => select.selection = None,
        2 => select.having = None,
        3 => select.group_by = GroupByExpr::Expressions(vec![], vec![]),
        _ => {
            select.distinct = match select.distinct {
                None => Some(datafusion::sql::sqlparser::ast::Distinct::Distinct),
                Some(_) => None,
            }
        }
    }
}

/// How a query ended: `Ok(rows)` or the error's text.
async fn run(engine: Engine, sql: String) -> Result<usize, String> {
    let frame = engine.sql(&sql).await.map_err(|e| e.to_string())?;
    let shown = |e| audience_engine::EngineError::from(e).to_string();
    let batches = frame.collect().await.map_err(shown)?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// What the mutants did.
#[derive(Default)]
struct Tally {
    mutants: usize,
    answered: usize,
    refused: usize,
    stopped: Vec<String>,
    unparsed: usize,
    slowest: Duration,
    findings: Vec<String>,
}

impl Tally {
    /// Runs one mutant and records how it ended.
    async fn run(&mut self, engine: &Engine, sql: String) {
        self.mutants += 1;
        let started = Instant::now();
        let mut task = tokio::spawn(run(engine.clone(), sql.clone()));
        let outcome = match tokio::time::timeout(DEADLINE, &mut task).await {
            Ok(outcome) => outcome,
            Err(_) => {
                task.abort();
                // stopped, not hung: the task must end soon after its abort
                if tokio::time::timeout(Duration::from_secs(1), &mut task)
                    .await
                    .is_err()
                {
                    self.findings
                        .push(format!("not stopped 1 s after its deadline: {sql}"));
                }
                self.stopped.push(sql);
                return;
            }
        };
        self.slowest = self.slowest.max(started.elapsed());
        match outcome {
            Err(e) => self.findings.push(format!("panicked: {e}\n  {sql}")),
            Ok(Ok(_)) => self.answered += 1,
            Ok(Err(e)) => {
                self.refused += 1;
                // an internal error is a bug, ours or DataFusion's
                if e.contains("panicked") || e.to_lowercase().contains("internal error") {
                    self.findings.push(format!("{e}\n  {sql}"));
                }
            }
        }
    }
}

/// Runs `file` once in a fresh engine, each query followed by a mutant of it;
/// returns how many queries it mutated.
async fn fuzz_file(file: &Path, rng: &mut Seeded, tally: &mut Tally) -> usize {
    let records = sqllogictest::parse_file::<DefaultColumnType>(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut config = EngineConfig::default();
    config.engine.target_partitions = 1 + rng.below(3);
    let engine = Engine::start(&config).await.unwrap();
    let mut queries = 0;
    for record in records {
        match record {
            Record::Statement { sql, .. } => {
                let _ = run(engine.clone(), sql).await;
            }
            Record::Query { sql, .. } => {
                let _ = run(engine.clone(), sql.clone()).await;
                let Ok(mut statements) = Parser::parse_sql(&GenericDialect {}, &sql) else {
                    tally.unparsed += 1;
                    continue;
                };
                for _ in 0..1 + rng.below(3) {
                    for statement in &mut statements {
                        mutate(statement, rng);
                    }
                }
                let mutant = statements
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                tally.run(&engine, mutant).await;
                queries += 1;
            }
            _ => {}
        }
    }
    queries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b2_mutated_slt_queries_answer_or_fail_cleanly_never_panic_or_hang() {
    let mut rng = Seeded::new("ast_fuzz", 20261130);
    let budget = fuzz_budget(90, 600);
    let started = Instant::now();
    let files = slt_files();
    let mut tally = Tally::default();
    let mut rounds = 0;
    // every query mutated at least once, then rounds until the budget is spent
    while rounds == 0 || started.elapsed() < budget {
        let mut queries = 0;
        for file in &files {
            queries += fuzz_file(file, &mut rng, &mut tally).await;
        }
        assert!(queries >= 100, "only {queries} queries in {files:?}");
        rounds += 1;
    }
    println!(
        "{rounds} rounds over {} files: {} mutants, {} answered, {} refused, {} stopped at \
         {DEADLINE:?}, {} queries sqlparser could not parse, slowest {:?}",
        files.len(),
        tally.mutants,
        tally.answered,
        tally.refused,
        tally.stopped.len(),
        tally.unparsed,
        tally.slowest
    );
    for sql in &tally.stopped {
        println!("stopped: {sql}");
    }
    assert!(
        tally.findings.is_empty(),
        "{} findings:\n{}",
        tally.findings.len(),
        tally.findings.join("\n")
    );
    assert!(
        tally.answered > 0 && tally.refused > 0,
        "the fuzzer tried too little"
    );
    record(
        "B2",
        serde_json::json!({ "rounds": rounds, "mutants": tally.mutants,
            "answered": tally.answered, "refused": tally.refused,
            "stopped": tally.stopped.len(), "panics": 0,
            "slowest_s": tally.slowest.as_secs_f64() }),
    );
}
