//! `bitmap_to_array(bm)`: a bitmap's member ids, ascending.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Builder, ListBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::{BitmapArg, check_bitmap};

const NAME: &str = "bitmap_to_array";

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "The member ids of a bitmap as an ascending `LIST<BIGINT>`; NULL for NULL. Use `unnest` to \
turn a segment back into rows.",
    syntax_example = "bitmap_to_array(bm)",
    sql_example = r#"```sql
> SELECT bitmap_to_array(bitmap_from_array([3, 1, 2])) AS ids;
+-----------+
| ids       |
+-----------+
| [1, 2, 3] |
+-----------+
```"#,
    argument(name = "bm", description = "A bitmap (BINARY).")
)]
/// The `bitmap_to_array` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BitmapToArray {
    signature: Signature,
}

impl Default for BitmapToArray {
    fn default() -> Self {
        BitmapToArray {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

fn item() -> Field {
    Field::new_list_field(DataType::Int64, false)
}

impl ScalarUDFImpl for BitmapToArray {
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
        Ok(DataType::List(Arc::new(item())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut bitmaps = BitmapArg::new(NAME, &args.args[0])?;
        let mut out = ListBuilder::new(Int64Builder::new()).with_field(Arc::new(item()));
        for i in 0..args.number_rows {
            match bitmaps.get(i)? {
                Some(bm) => {
                    out.values().extend(bm.iter().map(|id| Some(i64::from(id))));
                    out.append(true);
                }
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
