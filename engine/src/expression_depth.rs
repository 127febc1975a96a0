//! A bound on how deeply a statement's expressions can nest, checked on its
//! tokens before it is parsed. Parsing, planning and optimising recurse once
//! per level, so a chain of a couple of thousand operators (`1+1+…`,
//! `a OR b OR …`, `SELECT … UNION SELECT …`) would overflow the thread's stack
//! and abort the process — a server with it. The bound counts, along each
//! nesting of parentheses, the operators of the expression being read (a
//! clause keyword or a comma starts a new one) and the set operations; it is
//! an upper bound on the depth of the expression tree the parser would build.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::EngineError;

/// The deepest expression a statement may hold (DuckDB's `max_expression_depth`
/// is 1,000; a debug build here overflows its 2 MiB stack near 2,000).
pub(crate) const MAX_DEPTH: usize = 500;

/// An error when `sql` nests expressions deeper than [`MAX_DEPTH`]. Text that
/// does not tokenize is left to the parser to report.
pub(crate) fn check(sql: &str) -> Result<(), EngineError> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    // one per open parenthesis (and the statement)
    let mut groups = vec![Group::default()];
    let mut total = 0; // the open groups' depths
    for token in &tokens {
        let height = groups.len();
        let Some(group) = groups.last_mut() else {
            break;
        };
        let before = group.depth();
        match token {
            Token::LParen | Token::LBracket => groups.push(Group::default()),
            Token::RParen | Token::RBracket if height > 1 => {
                groups.pop();
            }
            Token::Comma | Token::SemiColon => group.operators = [0; CLASSES],
            Token::Word(w) if is_set_operation(w.keyword) => group.set_operations += 1,
            Token::Word(w) if starts_expression(w.keyword) => group.operators = [0; CLASSES],
            t => {
                if let Some(class) = operator_class(t) {
                    group.operators[class] += 1;
                }
            }
        }
        // the group the token was read in changed (or closed); a new one is empty
        total -= before;
        if groups.len() >= height {
            total += groups[height - 1].depth();
        }
        let depth = total + groups.len() - 1;
        if depth > MAX_DEPTH {
            return Err(EngineError::Invalid(format!(
                "the statement nests expressions more than {MAX_DEPTH} levels deep (each \
                 operator of a chain like `a OR b OR …` or `x + y + …`, each UNION and each \
                 parenthesis is a level); simplify it — `x IN (…)` instead of a chain of ORs, \
                 or split it into several statements"
            )));
        }
    }
    Ok(())
}

/// Operator classes by precedence: OR, AND, NOT, comparisons, bitwise,
/// additive, multiplicative, casts and accessors.
const CLASSES: usize = 8;

/// The expression being read inside one parenthesis.
#[derive(Default)]
struct Group {
    /// Operators of each class since the expression began.
    operators: [usize; CLASSES],
    set_operations: usize,
}

impl Group {
    /// The deepest tree the group's operators can build: its longest chain
    /// of one class, a level for each other class under it, and its set
    /// operations.
    fn depth(&self) -> usize {
        let longest = self.operators.iter().max().copied().unwrap_or(0);
        let classes = self.operators.iter().filter(|&&n| n > 0).count();
        longest + classes.saturating_sub(1) + self.set_operations
    }
}

fn operator_class(token: &Token) -> Option<usize> {
    let class = match token {
        Token::Word(w) => match w.keyword {
            Keyword::OR | Keyword::XOR => 0,
            Keyword::AND => 1,
            Keyword::NOT => 2,
            Keyword::IS | Keyword::LIKE | Keyword::ILIKE | Keyword::BETWEEN | Keyword::IN => 3,
            _ => return None,
        },
        Token::DoubleEq
        | Token::Eq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Spaceship => 3,
        Token::Ampersand | Token::Pipe | Token::Caret | Token::ShiftLeft | Token::ShiftRight => 4,
        Token::Plus | Token::Minus | Token::StringConcat => 5,
        Token::Mul | Token::Div | Token::DuckIntDiv | Token::Mod => 6,
        Token::DoubleColon | Token::Arrow | Token::LongArrow => 7,
        _ => return None,
    };
    Some(class)
}

fn is_set_operation(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT | Keyword::MINUS
    )
}

/// Keywords after which a new expression starts.
fn starts_expression(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::ON
            | Keyword::AS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(op: &str, n: usize) -> String {
        format!("SELECT {}", vec!["1"; n].join(op))
    }

    #[test]
    fn long_chains_and_deep_nesting_are_refused_wide_queries_are_not() {
        assert!(check(&chain("+", MAX_DEPTH)).is_ok());
        let e = check(&chain("+", MAX_DEPTH + 2)).unwrap_err().to_string();
        assert!(e.contains("more than 500 levels"), "{e}");
        assert!(check(&chain(" OR ", 2000)).is_err());
        // a chain of comparisons joined by OR is as deep as its ORs
        let ors: Vec<String> = (0..400).map(|i| format!("x = {i}")).collect();
        assert!(check(&format!("SELECT * FROM t WHERE {}", ors.join(" OR "))).is_ok());
        let unions = vec!["SELECT 1 FROM t"; 1000].join(" UNION ALL ");
        assert!(check(&unions).is_err());
        let nested = format!("SELECT {}1{}", "(".repeat(600), ")".repeat(600));
        assert!(check(&nested).is_err());
        // many items, each shallow: fine
        let wide: Vec<String> = (0..10_000).map(|i| format!("a + {i} AS c{i}")).collect();
        assert!(check(&format!("SELECT {} FROM t", wide.join(", "))).is_ok());
        let cases: Vec<String> = (0..2000)
            .map(|i| format!("WHEN x = {i} THEN {i}"))
            .collect();
        assert!(check(&format!("SELECT CASE {} END FROM t", cases.join(" "))).is_ok());
        let list: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        assert!(check(&format!("SELECT * FROM t WHERE x IN ({})", list.join(","))).is_ok());
    }
}
