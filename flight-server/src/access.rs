//! What a statement does to the system (reads, exports, or changes the
//! catalog or session), and whether a user's role allows it.

use std::path::{Component, Path};

use crate::config::Role;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{self, SetExpr};
use tonic::Status;

use crate::auth::Identity;

/// What running a statement does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only: `SELECT`, `SHOW`, `EXPLAIN`, `DESCRIBE`.
    Read,
    /// `COPY … TO target`.
    Export {
        /// The target location as written.
        target: String,
    },
    /// `SET audience.query_memory_limit`: lowers the memory of the session's own queries.
    OwnLimit,
    /// DDL, `SET`, `INSERT` and anything else that changes state.
    Admin,
}

impl Access {
    /// Whether the statement returns rows without changing anything.
    pub(crate) fn is_read(&self) -> bool {
        matches!(self, Access::Read)
    }
}

/// Classifies a parsed statement.
pub(crate) fn access_of(statement: &Statement) -> Access {
    match statement {
        Statement::Statement(s) => match s.as_ref() {
            ast::Statement::Query(q) => match q.body.as_ref() {
                SetExpr::Select(select) if select.into.is_some() => Access::Admin,
                _ => Access::Read,
            },
            ast::Statement::ShowTables { .. }
            | ast::Statement::ShowColumns { .. }
            | ast::Statement::ShowVariable { .. }
            | ast::Statement::ShowFunctions { .. }
            | ast::Statement::ExplainTable { .. }
            | ast::Statement::Explain { .. } => Access::Read,
            ast::Statement::Set(ast::Set::SingleAssignment { variable, .. })
                if variable
                    .to_string()
                    .eq_ignore_ascii_case("audience.query_memory_limit") =>
            {
                Access::OwnLimit
            }
            _ => Access::Admin,
        },
        Statement::CopyTo(copy) => Access::Export {
            target: copy.target.clone(),
        },
        Statement::Explain(explain) => access_of(&explain.statement),
        Statement::CreateExternalTable(_) | Statement::Reset(_) => Access::Admin,
    }
}

/// Allows `access` for `who`, or says which role it needs (`PERMISSION_DENIED`).
pub(crate) fn authorize(
    who: &Identity,
    access: &Access,
    export_prefixes: &[String],
) -> Result<(), Status> {
    match (access, who.role) {
        (Access::Read | Access::OwnLimit, _) | (_, Role::Admin) => Ok(()),
        (Access::Export { target }, Role::Marketer) => {
            if export_prefixes.iter().any(|p| within(target, p)) {
                Ok(())
            } else {
                Err(Status::permission_denied(format!(
                    "user '{}' (role marketer) may export only under server.export.allowed_prefixes \
                     ({}); '{target}' is outside them",
                    who.user,
                    if export_prefixes.is_empty() {
                        "none configured".to_string()
                    } else {
                        export_prefixes.join(", ")
                    }
                )))
            }
        }
        (Access::Export { .. }, role) => Err(Status::permission_denied(format!(
            "user '{}' (role {role}) may not run COPY … TO: exports need role marketer or admin",
            who.user
        ))),
        (Access::Admin, role) => Err(Status::permission_denied(format!(
            "user '{}' (role {role}) may only read: DDL, SET and other statements that change \
             state need role admin",
            who.user
        ))),
    }
}

/// Whether `target` lies under `prefix`: component-wise for paths (a `..`
/// anywhere in the target never matches), textually for URLs.
fn within(target: &str, prefix: &str) -> bool {
    let local = |s: &str| s.strip_prefix("file://").unwrap_or(s).to_string();
    let (t, p) = (local(target), local(prefix));
    if t.contains("://") || p.contains("://") {
        return t.starts_with(&p);
    }
    let t = Path::new(&t);
    !t.components().any(|c| c == Component::ParentDir) && t.starts_with(Path::new(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(sql: &str) -> Access {
        access_of(
            &audience_engine::parse(sql)
                .expect("parses")
                .pop_front()
                .expect("one statement"),
        )
    }

    fn who(role: Role) -> Identity {
        Identity {
            user: "u".into(),
            role,
            session: Default::default(),
        }
    }

    #[test]
    fn classifies_statements() {
        assert_eq!(access("SELECT 1"), Access::Read);
        assert_eq!(access("SHOW TABLES"), Access::Read);
        assert_eq!(access("EXPLAIN SELECT 1"), Access::Read);
        assert_eq!(access("CREATE VIEW v AS SELECT 1"), Access::Admin);
        assert_eq!(
            access("SET datafusion.execution.batch_size = 10"),
            Access::Admin
        );
        assert_eq!(
            access("SET audience.query_memory_limit = '64MB'"),
            Access::OwnLimit
        );
        assert_eq!(access("SELECT 1 INTO t"), Access::Admin);
        assert_eq!(
            access("COPY (SELECT 1) TO '/x/y.csv'"),
            Access::Export {
                target: "/x/y.csv".into()
            }
        );
    }

    #[test]
    fn roles() {
        let export = Access::Export {
            target: "/exports/team/a.parquet".into(),
        };
        let prefixes = vec!["/exports/team".to_string()];
        assert!(authorize(&who(Role::Analyst), &Access::Read, &prefixes).is_ok());
        let denied = authorize(&who(Role::Analyst), &export, &prefixes).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(
            denied.message().contains("marketer"),
            "{}",
            denied.message()
        );
        assert!(authorize(&who(Role::Marketer), &export, &prefixes).is_ok());
        for outside in [
            "/exports/teamX/a.csv",
            "/exports/team/../../etc/x.csv",
            "/tmp/a.csv",
        ] {
            let e = Access::Export {
                target: outside.into(),
            };
            assert!(
                authorize(&who(Role::Marketer), &e, &prefixes).is_err(),
                "{outside}"
            );
        }
        assert!(authorize(&who(Role::Marketer), &Access::Admin, &prefixes).is_err());
        assert!(authorize(&who(Role::Admin), &Access::Admin, &prefixes).is_ok());
    }
}
