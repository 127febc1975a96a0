//! JDBC and the Python DB-API drivers send `?` placeholders, which DataFusion
//! does not plan: number them `$1 … $n` in order of appearance, on the AST.

use std::ops::ControlFlow;

use datafusion::sql::parser::{CopyToSource, Statement};
use datafusion::sql::sqlparser::ast::{Expr, Value, visit_expressions_mut};

/// Rewrites every positional `?` in `statement` to `$1 … $n`; returns `n`.
pub(crate) fn number_positional_placeholders(statement: &mut Statement) -> usize {
    let mut next = 0;
    let mut number = |expr: &mut Expr| {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &mut v.value
            && p == "?"
        {
            next += 1;
            *p = format!("${next}");
        }
        ControlFlow::<()>::Continue(())
    };
    number_in(statement, &mut number);
    next
}

fn number_in(statement: &mut Statement, number: &mut impl FnMut(&mut Expr) -> ControlFlow<()>) {
    match statement {
        Statement::Statement(s) => {
            let _ = visit_expressions_mut(s.as_mut(), number);
        }
        Statement::CopyTo(copy) => {
            if let CopyToSource::Query(q) = &mut copy.source {
                let _ = visit_expressions_mut(q.as_mut(), number);
            }
        }
        Statement::Explain(explain) => number_in(explain.statement.as_mut(), number),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(sql: &str) -> (String, usize) {
        let mut statement = audience_engine::parse(sql)
            .expect("parses")
            .pop_front()
            .expect("one statement");
        let n = number_positional_placeholders(&mut statement);
        (statement.to_string(), n)
    }

    #[test]
    fn numbers_question_marks_in_order() {
        let (sql, n) = rewrite(
            "SELECT '?' AS q, count(*) FROM events WHERE member_id = ? AND event IN (?, ?) LIMIT 5",
        );
        assert_eq!(n, 3);
        assert!(
            sql.contains("member_id = $1") && sql.contains("IN ($2, $3)"),
            "{sql}"
        );
        assert!(
            sql.contains("'?'"),
            "a string literal is not a placeholder: {sql}"
        );
    }

    #[test]
    fn leaves_numbered_placeholders_alone() {
        let (sql, n) = rewrite("SELECT * FROM t WHERE a = $1");
        assert_eq!(n, 0);
        assert!(sql.contains("$1"), "{sql}");
    }

    #[test]
    fn reaches_into_copy_and_explain() {
        let (sql, n) = rewrite("COPY (SELECT * FROM t WHERE a = ?) TO '/tmp/x.parquet'");
        assert_eq!((n, sql.contains("a = $1")), (1, true), "{sql}");
        let (sql, n) = rewrite("EXPLAIN SELECT * FROM t WHERE a = ? OR b = ?");
        assert_eq!((n, sql.contains("b = $2")), (2, true), "{sql}");
    }
}
