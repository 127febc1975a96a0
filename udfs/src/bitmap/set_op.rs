//! `bitmap_and`, `bitmap_or`, `bitmap_xor`, `bitmap_andnot`: set algebra on two bitmaps.

use std::sync::Arc;

use datafusion::arrow::array::BinaryBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_macros::user_doc;

use super::{BitmapArg, check_bitmap, encode};

/// The set operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SetOp {
    And,
    Or,
    Xor,
    AndNot,
}

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "Members in both bitmaps. NULL if either is NULL.",
    syntax_example = "bitmap_and(a, b)",
    sql_example = r#"```sql
> SELECT bitmap_to_array(bitmap_and(bitmap_from_array([1, 2, 3]), bitmap_from_array([2, 3, 4]))) AS ids;
+--------+
| ids    |
+--------+
| [2, 3] |
+--------+
```"#,
    argument(name = "a", description = "A bitmap (BINARY)."),
    argument(name = "b", description = "A bitmap (BINARY).")
)]
#[derive(Debug)]
struct AndDoc;

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "Members in either bitmap. NULL if either is NULL.",
    syntax_example = "bitmap_or(a, b)",
    sql_example = r#"```sql
> SELECT bitmap_to_array(bitmap_or(bitmap_from_array([1, 2]), bitmap_from_array([2, 4]))) AS ids;
+-----------+
| ids       |
+-----------+
| [1, 2, 4] |
+-----------+
```"#,
    argument(name = "a", description = "A bitmap (BINARY)."),
    argument(name = "b", description = "A bitmap (BINARY).")
)]
#[derive(Debug)]
struct OrDoc;

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "Members in exactly one of the bitmaps. NULL if either is NULL.",
    syntax_example = "bitmap_xor(a, b)",
    sql_example = r#"```sql
> SELECT bitmap_to_array(bitmap_xor(bitmap_from_array([1, 2]), bitmap_from_array([2, 4]))) AS ids;
+--------+
| ids    |
+--------+
| [1, 4] |
+--------+
```"#,
    argument(name = "a", description = "A bitmap (BINARY)."),
    argument(name = "b", description = "A bitmap (BINARY).")
)]
#[derive(Debug)]
struct XorDoc;

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "Members in `a` but not in `b` (the NOT of a segment). NULL if either is NULL.",
    syntax_example = "bitmap_andnot(a, b)",
    sql_example = r#"```sql
> SELECT bitmap_to_array(bitmap_andnot(bitmap_from_array([1, 2, 3]), bitmap_from_array([2]))) AS ids;
+--------+
| ids    |
+--------+
| [1, 3] |
+--------+
```"#,
    argument(name = "a", description = "A bitmap (BINARY)."),
    argument(name = "b", description = "A bitmap (BINARY) of members to leave out.")
)]
#[derive(Debug)]
struct AndNotDoc;

impl SetOp {
    fn name(self) -> &'static str {
        match self {
            SetOp::And => "bitmap_and",
            SetOp::Or => "bitmap_or",
            SetOp::Xor => "bitmap_xor",
            SetOp::AndNot => "bitmap_andnot",
        }
    }
}

/// The `bitmap_and` / `bitmap_or` / `bitmap_xor` / `bitmap_andnot` scalar functions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BitmapSetOp {
    op: SetOp,
    signature: Signature,
}

fn function(op: SetOp) -> ScalarUDF {
    ScalarUDF::new_from_impl(BitmapSetOp {
        op,
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// Every set operation, one function each.
pub fn bitmap_set_ops() -> Vec<ScalarUDF> {
    [SetOp::And, SetOp::Or, SetOp::Xor, SetOp::AndNot]
        .into_iter()
        .map(function)
        .collect()
}

impl ScalarUDFImpl for BitmapSetOp {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [a, b] => {
                check_bitmap(self.name(), "a", a)?;
                check_bitmap(self.name(), "b", b)?;
            }
            _ => return plan_err!("{}: takes two bitmaps (a, b)", self.name()),
        }
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.op.name();
        let mut a = BitmapArg::new(name, &args.args[0])?;
        let mut b = BitmapArg::new(name, &args.args[1])?;
        let mut out = BinaryBuilder::with_capacity(args.number_rows, 0);
        for i in 0..args.number_rows {
            match (a.get(i)?, b.get(i)?) {
                (Some(a), Some(b)) => out.append_value(encode(&match self.op {
                    SetOp::And => a & b,
                    SetOp::Or => a | b,
                    SetOp::Xor => a ^ b,
                    SetOp::AndNot => a - b,
                })),
                _ => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        match self.op {
            SetOp::And => AndDoc.doc(),
            SetOp::Or => OrDoc.doc(),
            SetOp::Xor => XorDoc.doc(),
            SetOp::AndNot => AndNotDoc.doc(),
        }
    }
}
