//! `bitmap_cardinality(bm)`: how many members a bitmap holds.

use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::{BitmapArg, check_bitmap};

const NAME: &str = "bitmap_cardinality";

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "The number of member ids in a bitmap; NULL for NULL.",
    syntax_example = "bitmap_cardinality(bm)",
    sql_example = r#"```sql
> SELECT bitmap_cardinality(bitmap_from_array([1, 2, 3, 3])) AS members;
+---------+
| members |
+---------+
| 3       |
+---------+
```"#,
    argument(name = "bm", description = "A bitmap (BINARY).")
)]
/// The `bitmap_cardinality` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BitmapCardinality {
    signature: Signature,
}

impl Default for BitmapCardinality {
    fn default() -> Self {
        BitmapCardinality {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for BitmapCardinality {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => check_bitmap(NAME, "bm", t)?,
            _ => return plan_err!("{NAME}: takes one argument (bm)"),
        }
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut bitmaps = BitmapArg::new(NAME, &args.args[0])?;
        let counts = (0..args.number_rows)
            .map(|i| Ok(bitmaps.get(i)?.map(|b| b.len() as i64)))
            .collect::<Result<Int64Array>>()?;
        Ok(ColumnarValue::Array(Arc::new(counts)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
