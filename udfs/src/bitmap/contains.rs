//! `bitmap_contains(bm, id)`: whether a member is in a bitmap.

use std::sync::Arc;

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::{BitmapArg, check_bitmap, check_id, element, ids};

const NAME: &str = "bitmap_contains";

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "Whether member `id` is in the bitmap; NULL if either argument is NULL. An id outside \
0..4294967295 is an error.",
    syntax_example = "bitmap_contains(bm, id)",
    sql_example = r#"```sql
> SELECT bitmap_contains(bitmap_from_array([1, 2, 3]), 2) AS member;
+--------+
| member |
+--------+
| true   |
+--------+
```"#,
    argument(name = "bm", description = "A bitmap (BINARY)."),
    argument(name = "id", description = "Integer member id.")
)]
/// The `bitmap_contains` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BitmapContains {
    signature: Signature,
}

impl Default for BitmapContains {
    fn default() -> Self {
        BitmapContains {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for BitmapContains {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [bm, id] => {
                check_bitmap(NAME, "bm", bm)?;
                check_id(NAME, "id", id)?;
            }
            _ => return plan_err!("{NAME}: takes a bitmap and an id (bm, id)"),
        }
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut bitmaps = BitmapArg::new(NAME, &args.args[0])?;
        let ids = ids(NAME, &args.args[1].to_array(args.number_rows)?)?;
        let found = ids
            .iter()
            .enumerate()
            .map(|(i, id)| match (bitmaps.get(i)?, id) {
                (Some(bm), Some(id)) => Ok(Some(bm.contains(element(NAME, id)?))),
                _ => Ok(None),
            })
            .collect::<Result<BooleanArray>>()?;
        Ok(ColumnarValue::Array(Arc::new(found)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
