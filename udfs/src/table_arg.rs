//! The table a table function reads, named by its first argument.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result, ScalarValue, TableReference, plan_datafusion_err, plan_err};
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;

/// A required column: name, the expected type in words, and the types accepted.
pub(crate) type RequiredColumn<'a> = (&'a str, &'a str, fn(&DataType) -> bool);

/// A table named by a table function's string argument, resolved in the calling session.
#[derive(Debug)]
pub(crate) struct NamedTable {
    /// The reference as written (`orders`, `public.orders`, …).
    pub(crate) reference: TableReference,
    /// The table itself.
    pub(crate) provider: Arc<dyn TableProvider>,
}

impl NamedTable {
    /// Resolves argument `arg` of `function` (a constant string naming a table).
    pub(crate) fn resolve(function: &str, session: &dyn Session, arg: &Expr) -> Result<Self> {
        let name = match arg {
            Expr::Literal(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
                _,
            ) => s,
            other => {
                return plan_err!(
                    "{function}: the first argument must be a table name in quotes, e.g. {function}('orders', …); got {other}"
                );
            }
        };
        let state = session
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| plan_datafusion_err!("{function}: needs a DataFusion SessionState"))?;
        let reference = TableReference::from(name.as_str());
        let schema = state.schema_for_ref(reference.clone())?;
        // Audience's catalogs are in memory: the lookup is ready at once.
        let provider = futures::executor::block_on(schema.table(reference.table()))?
            .ok_or_else(|| plan_datafusion_err!("{function}: table '{name}' not found"))?;
        Ok(NamedTable {
            reference,
            provider,
        })
    }

    /// The table's schema.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.provider.schema()
    }

    /// Checks that the table has `columns`, each of a type accepted by `accepts`.
    pub(crate) fn require(&self, function: &str, columns: &[RequiredColumn<'_>]) -> Result<()> {
        let schema = self.schema();
        for (column, expected, accepts) in columns {
            match schema.field_with_name(column) {
                Ok(field) if accepts(field.data_type()) => {}
                Ok(field) => {
                    return plan_err!(
                        "{function}: column {column} of '{}' must be {expected}, got {}",
                        self.reference,
                        field.data_type()
                    );
                }
                Err(_) => {
                    let names: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    return plan_err!(
                        "{function}: table '{}' has no column {column} (it has {})",
                        self.reference,
                        names.join(", ")
                    );
                }
            }
        }
        Ok(())
    }
}
