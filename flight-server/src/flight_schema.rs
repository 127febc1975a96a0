//! What crosses the Flight boundary: view types (`Utf8View`, `BinaryView`),
//! which JDBC 18.x cannot read, become `Utf8`/`Binary`, and dictionaries are
//! hydrated to their values, at any depth. The planned schema, the prepared
//! statement's dataset schema and every batch use the same converted schema.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;

/// The schema clients see for a result planned with `schema`.
pub(crate) fn flight_schema(schema: &Schema) -> SchemaRef {
    let fields: Fields = schema.fields().iter().map(flight_field).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn flight_field(field: &FieldRef) -> FieldRef {
    let data_type = flight_type(field.data_type());
    if &data_type == field.data_type() {
        return Arc::clone(field);
    }
    Arc::new(Field::clone(field).with_data_type(data_type))
}

fn flight_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => flight_type(values),
        DataType::List(f) | DataType::ListView(f) => DataType::List(flight_field(f)),
        DataType::LargeList(f) | DataType::LargeListView(f) => DataType::LargeList(flight_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(flight_field(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(flight_field).collect()),
        DataType::Map(f, sorted) => DataType::Map(flight_field(f), *sorted),
        other => other.clone(),
    }
}

/// `batch` converted to `schema` (from [`flight_schema`] of the batch's planned schema).
pub(crate) fn to_flight_batch(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, ArrowError> {
    if batch.num_columns() != schema.fields().len() {
        return Err(ArrowError::SchemaError(format!(
            "a result batch has {} columns where the plan promised {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Array, DictionaryArray, Int32Array, ListBuilder, StringViewArray, StringViewBuilder,
    };
    use arrow::datatypes::Int32Type;

    #[test]
    fn views_and_dictionaries_become_plain() -> Result<(), ArrowError> {
        let mut list = ListBuilder::new(StringViewBuilder::new());
        list.values().append_value("a");
        list.append(true);
        list.append(false);
        let list = list.finish();
        let dict: DictionaryArray<Int32Type> = vec!["x", "y"].into_iter().collect();
        let planned = Schema::new(vec![
            Field::new("s", DataType::Utf8View, false),
            Field::new("l", list.data_type().clone(), true),
            Field::new("d", dict.data_type().clone(), true),
            Field::new("n", DataType::Int32, true),
        ]);
        let schema = flight_schema(&planned);
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        assert!(!schema.field(0).is_nullable(), "nullability is kept");
        assert_eq!(
            schema.field(1).data_type(),
            &DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
        );
        assert_eq!(schema.field(2).data_type(), &DataType::Utf8);
        let batch = RecordBatch::try_new(
            Arc::new(planned),
            vec![
                Arc::new(StringViewArray::from(vec!["p", "q"])),
                Arc::new(list),
                Arc::new(dict),
                Arc::new(Int32Array::from(vec![Some(1), None])),
            ],
        )?;
        let out = to_flight_batch(&batch, &schema)?;
        assert_eq!(out.schema(), schema);
        assert_eq!(out.num_rows(), 2);
        Ok(())
    }
}
