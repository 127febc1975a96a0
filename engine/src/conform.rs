//! A source's rows made the table's: columns matched by name (exactly, else
//! ignoring case), values cast without loss, a missing nullable column NULL.
//! Each row that does not fit is named with its column, value and reason, so
//! a load can refuse the whole batch or set such rows aside.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast_with_options, filter};
use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// A row of a batch that does not fit the table: its first bad column.
#[derive(Debug, Clone)]
pub(crate) struct BadRow {
    /// The row's index in its batch.
    pub(crate) row: usize,
    pub(crate) column: String,
    /// The value as the source wrote it (none for a missing value).
    pub(crate) value: Option<String>,
    pub(crate) reason: String,
}

/// What does not fit a table at all: a column it requires is missing, or a
/// column's values can never become its type.
#[derive(Debug)]
pub(crate) struct BadColumn {
    pub(crate) column: String,
    pub(crate) reason: String,
}

/// `batch` made `schema`'s: the rows that fit, and each row that does not
/// (ascending).
pub(crate) fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<(RecordBatch, Vec<BadRow>), BadColumn> {
    let source = batch.schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    let mut bad: Vec<BadRow> = Vec::new();
    for field in schema.fields() {
        let found = source.index_of(field.name()).ok().or_else(|| {
            source
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(field.name()))
        });
        let Some(index) = found else {
            if field.is_nullable() {
                columns.push(new_null_array(field.data_type(), batch.num_rows()));
                continue;
            }
            return Err(BadColumn {
                column: field.name().clone(),
                reason: "the column is missing, and the table requires it".into(),
            });
        };
        let (cast, rows) = conform_column(batch.column(index), field)?;
        bad.extend(rows);
        columns.push(cast);
    }
    // each bad row once, with its first bad column (the sort is stable)
    bad.sort_by_key(|b| b.row);
    bad.dedup_by_key(|b| b.row);
    if !bad.is_empty() {
        let mut keep = vec![true; batch.num_rows()];
        for row in &bad {
            keep[row.row] = false;
        }
        let keep = BooleanArray::from(keep);
        columns = columns
            .iter()
            .map(|c| filter(c.as_ref(), &keep))
            .collect::<Result<_, _>>()
            .map_err(|e| BadColumn {
                column: String::new(),
                reason: e.to_string(),
            })?;
    }
    let conformed = RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| BadColumn {
        column: String::new(),
        reason: e.to_string(),
    })?;
    Ok((conformed, bad))
}

/// `values` cast to `field`'s type, and the rows whose value the cast cannot
/// keep, or that have no value where the table requires one.
fn conform_column(values: &ArrayRef, field: &Field) -> Result<(ArrayRef, Vec<BadRow>), BadColumn> {
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    let cast = cast_with_options(values, field.data_type(), &options).map_err(|e| BadColumn {
        column: field.name().clone(),
        reason: format!(
            "{} values cannot become {}: {e}",
            values.data_type(),
            field.data_type()
        ),
    })?;
    let mut bad = Vec::new();
    // a safe cast turns what it cannot convert into NULL
    if cast.null_count() != values.null_count() {
        let text = ArrayFormatter::try_new(values.as_ref(), &FormatOptions::default()).ok();
        for row in (0..values.len()).filter(|&i| values.is_valid(i) && cast.is_null(i)) {
            let value = text.as_ref().map(|f| f.value(row).to_string());
            bad.push(BadRow {
                row,
                column: field.name().clone(),
                reason: format!(
                    "'{}' is not a valid {}",
                    value.as_deref().unwrap_or_default(),
                    field.data_type()
                ),
                value,
            });
        }
    }
    if !field.is_nullable() && values.null_count() > 0 {
        for row in (0..values.len()).filter(|&i| values.is_null(i)) {
            bad.push(BadRow {
                row,
                column: field.name().clone(),
                value: None,
                reason: "no value, and the table requires one".into(),
            });
        }
    }
    bad.sort_by_key(|b| b.row);
    Ok((cast, bad))
}
