//! CSV rendering of any Arrow type: lists as `[1,0,1]`, structs as
//! `{"a":1}`, booleans as `true`/`false`, binary as hex, NULL as an empty field.

use std::fmt::Write as _;
use std::io::{self, Write};

use arrow::array::{Array, AsArray, BooleanArray, GenericListArray, MapArray, StructArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Writes record batches as CSV rows under one header.
#[derive(Debug)]
pub(crate) struct CsvWriter {
    schema: SchemaRef,
    line: String,
    field: String,
}

impl CsvWriter {
    pub(crate) fn new(schema: &SchemaRef) -> Self {
        CsvWriter {
            schema: schema.clone(),
            line: String::new(),
            field: String::new(),
        }
    }

    /// Writes the header row of column names.
    pub(crate) fn write_header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.line.clear();
        for (i, f) in self.schema.fields().iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            push_csv_field(&mut self.line, f.name());
        }
        self.line.push('\n');
        out.write_all(self.line.as_bytes())
    }

    /// Writes every row of `batch`.
    pub(crate) fn write_batch(
        &mut self,
        out: &mut dyn Write,
        batch: &arrow::array::RecordBatch,
    ) -> Result<(), ArrowError> {
        let options = FormatOptions::default().with_null("null");
        let columns: Vec<Renderer<'_>> = batch
            .columns()
            .iter()
            .map(|c| Renderer::new(c.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            self.line.clear();
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    self.line.push(',');
                }
                if column.is_null(row) {
                    continue;
                }
                self.field.clear();
                column.render(row, &mut self.field, false)?;
                push_csv_field(&mut self.line, &self.field);
            }
            self.line.push('\n');
            out.write_all(self.line.as_bytes())?;
        }
        Ok(())
    }
}

/// Appends `value`, quoted when it holds a comma, quote, or line break.
fn push_csv_field(line: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        line.push('"');
        for c in value.chars() {
            if c == '"' {
                line.push('"');
            }
            line.push(c);
        }
        line.push('"');
    } else {
        line.push_str(value);
    }
}

/// Renders the values of one array; nested arrays render their children recursively.
enum Renderer<'a> {
    Bool(&'a BooleanArray),
    Text(&'a dyn Array),
    Binary(&'a dyn Array),
    List(ListOffsets<'a>, Box<Renderer<'a>>),
    Struct(&'a StructArray, Vec<Renderer<'a>>),
    Map(&'a MapArray, Box<Renderer<'a>>, Box<Renderer<'a>>),
    /// A dictionary: the array, each row's key, and the renderer of its values.
    Dictionary(&'a dyn Array, Vec<usize>, Box<Renderer<'a>>),
    Other(&'a dyn Array, ArrayFormatter<'a>),
}

/// Start and end of each list value in the child array.
enum ListOffsets<'a> {
    Small(&'a GenericListArray<i32>),
    Large(&'a GenericListArray<i64>),
    Fixed(usize, &'a dyn Array),
}

impl<'a> Renderer<'a> {
    fn new(array: &'a dyn Array, options: &'a FormatOptions<'a>) -> Result<Self, ArrowError> {
        Ok(match array.data_type() {
            DataType::Boolean => Renderer::Bool(array.as_boolean()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Renderer::Text(array),
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => Renderer::Binary(array),
            DataType::List(_) => {
                let l = array.as_list::<i32>();
                Renderer::List(
                    ListOffsets::Small(l),
                    Box::new(Renderer::new(l.values().as_ref(), options)?),
                )
            }
            DataType::LargeList(_) => {
                let l = array.as_list::<i64>();
                Renderer::List(
                    ListOffsets::Large(l),
                    Box::new(Renderer::new(l.values().as_ref(), options)?),
                )
            }
            DataType::FixedSizeList(_, n) => {
                let l = array.as_fixed_size_list();
                Renderer::List(
                    ListOffsets::Fixed(*n as usize, array),
                    Box::new(Renderer::new(l.values().as_ref(), options)?),
                )
            }
            DataType::Struct(_) => {
                let s = array.as_struct();
                let children = s
                    .columns()
                    .iter()
                    .map(|c| Renderer::new(c.as_ref(), options))
                    .collect::<Result<_, _>>()?;
                Renderer::Struct(s, children)
            }
            DataType::Map(_, _) => {
                let m = array.as_map();
                Renderer::Map(
                    m,
                    Box::new(Renderer::new(m.keys().as_ref(), options)?),
                    Box::new(Renderer::new(m.values().as_ref(), options)?),
                )
            }
            DataType::Dictionary(_, _) => {
                let d = array.as_any_dictionary();
                Renderer::Dictionary(
                    array,
                    d.normalized_keys(),
                    Box::new(Renderer::new(d.values().as_ref(), options)?),
                )
            }
            _ => Renderer::Other(array, ArrayFormatter::try_new(array, options)?),
        })
    }

    fn array(&self) -> &dyn Array {
        match self {
            Renderer::Bool(a) => *a,
            Renderer::Text(a)
            | Renderer::Binary(a)
            | Renderer::Dictionary(a, _, _)
            | Renderer::Other(a, _) => *a,
            Renderer::List(ListOffsets::Small(a), _) => *a,
            Renderer::List(ListOffsets::Large(a), _) => *a,
            Renderer::List(ListOffsets::Fixed(_, a), _) => *a,
            Renderer::Struct(a, _) => *a,
            Renderer::Map(a, _, _) => *a,
        }
    }

    fn is_null(&self, row: usize) -> bool {
        self.array().is_null(row)
    }

    /// Appends the value at `row`; `nested` values (inside a list, struct or map)
    /// quote strings and spell NULL as `null`, as JSON does.
    fn render(&self, row: usize, out: &mut String, nested: bool) -> Result<(), ArrowError> {
        if self.is_null(row) {
            if nested {
                out.push_str("null");
            }
            return Ok(());
        }
        match self {
            Renderer::Bool(a) => out.push_str(if a.value(row) { "true" } else { "false" }),
            Renderer::Text(a) => {
                let s = text_value(*a, row);
                if nested {
                    push_json_string(out, s);
                } else {
                    out.push_str(s);
                }
            }
            Renderer::Binary(a) => {
                let bytes = binary_value(*a, row);
                if nested {
                    out.push('"');
                }
                for b in bytes {
                    let _ = write!(out, "{b:02x}");
                }
                if nested {
                    out.push('"');
                }
            }
            Renderer::List(offsets, child) => {
                let (start, end) = match offsets {
                    ListOffsets::Small(l) => {
                        let o = l.value_offsets();
                        (o[row] as usize, o[row + 1] as usize)
                    }
                    ListOffsets::Large(l) => {
                        let o = l.value_offsets();
                        (o[row] as usize, o[row + 1] as usize)
                    }
                    ListOffsets::Fixed(n, _) => (row * n, (row + 1) * n),
                };
                out.push('[');
                for i in start..end {
                    if i > start {
                        out.push(',');
                    }
                    child.render(i, out, true)?;
                }
                out.push(']');
            }
            Renderer::Struct(s, children) => {
                out.push('{');
                for (i, (field, child)) in s.fields().iter().zip(children).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(out, field.name());
                    out.push(':');
                    child.render(row, out, true)?;
                }
                out.push('}');
            }
            Renderer::Map(m, keys, values) => {
                let o = m.value_offsets();
                out.push('{');
                for i in o[row] as usize..o[row + 1] as usize {
                    if i > o[row] as usize {
                        out.push(',');
                    }
                    keys.render(i, out, true)?;
                    out.push(':');
                    values.render(i, out, true)?;
                }
                out.push('}');
            }
            Renderer::Dictionary(_, keys, values) => values.render(keys[row], out, nested)?,
            Renderer::Other(_, f) => {
                let _ = write!(out, "{}", f.value(row));
            }
        }
        Ok(())
    }
}

fn text_value(array: &dyn Array, row: usize) -> &str {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row),
        _ => array.as_string_view().value(row),
    }
}

fn binary_value(array: &dyn Array, row: usize) -> &[u8] {
    match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(row),
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(row),
        _ => array.as_binary_view().value(row),
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BinaryArray, BooleanArray, DictionaryArray, Int64Array, ListArray, RecordBatch,
        StringArray, StructArray, UInt8Array,
    };
    use arrow::datatypes::{Field, Int32Type};

    use super::*;

    fn csv(batch: &RecordBatch) -> String {
        let mut w = CsvWriter::new(&batch.schema());
        let mut out = Vec::new();
        w.write_header(&mut out).unwrap();
        w.write_batch(&mut out, batch).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn renders_every_kind_of_value() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(0), Some(1)]),
            None,
            Some(vec![Some(2), None]),
        ]);
        let retention = arrow::array::ListArray::new(
            Arc::new(Field::new_list_field(DataType::UInt8, true)),
            arrow::buffer::OffsetBuffer::from_lengths([2, 0, 1]),
            Arc::new(UInt8Array::from(vec![1, 0, 1])),
            None,
        );
        let strukt = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![1, 2, 3])) as _,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec![Some("x\"y"), None, Some("z")])) as _,
            ),
        ]);
        let dictionary_list = ListArray::new(
            Arc::new(Field::new_list_field(
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            )),
            arrow::buffer::OffsetBuffer::from_lengths([2, 0, 1]),
            Arc::new(
                vec![Some("view"), None, Some("pay")]
                    .into_iter()
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
            None,
        );
        let batch = RecordBatch::try_from_iter(vec![
            (
                "flag",
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])) as _,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("plain"), Some("a,b"), None])) as _,
            ),
            (
                "bytes",
                Arc::new(BinaryArray::from(vec![
                    Some(&[0u8, 255][..]),
                    Some(b"A"),
                    None,
                ])) as _,
            ),
            ("list", Arc::new(list) as _),
            ("retention", Arc::new(retention) as _),
            ("s", Arc::new(strukt) as _),
            (
                "event",
                Arc::new(
                    vec![Some("pay"), None, Some("a,b")]
                        .into_iter()
                        .collect::<DictionaryArray<Int32Type>>(),
                ) as _,
            ),
            ("events", Arc::new(dictionary_list) as _),
        ])
        .unwrap();
        assert_eq!(
            csv(&batch),
            "flag,name,bytes,list,retention,s,event,events\n\
             true,plain,00ff,\"[1,0,1]\",\"[1,0]\",\"{\"\"a\"\":1,\"\"b\"\":\"\"x\\\"\"y\"\"}\",pay,\"[\"\"view\"\",null]\"\n\
             false,\"a,b\",41,,[],\"{\"\"a\"\":2,\"\"b\"\":null}\",,[]\n\
             ,,,\"[2,null]\",[1],\"{\"\"a\"\":3,\"\"b\"\":\"\"z\"\"}\",\"a,b\",\"[\"\"pay\"\"]\"\n"
        );
    }
}
