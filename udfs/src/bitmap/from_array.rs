//! `bitmap_from_array(list)`: a bitmap of the member ids in a list.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BinaryBuilder};
use datafusion::arrow::compute::cast_with_options;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;
use roaring::RoaringBitmap;

use super::{OUT_OF_RANGE, element, encode, ids, is_id_type, strict};

const NAME: &str = "bitmap_from_array";

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "A bitmap of the ids in a list (duplicates and NULL elements ignored); NULL for a NULL list. \
Ids must lie in 0..4294967295.",
    syntax_example = "bitmap_from_array(list)",
    sql_example = r#"```sql
> SELECT bitmap_cardinality(bitmap_from_array([5, 7, 7, NULL])) AS members;
+---------+
| members |
+---------+
| 2       |
+---------+
```"#,
    argument(name = "list", description = "A list of integer member ids.")
)]
/// The `bitmap_from_array` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BitmapFromArray {
    signature: Signature,
}

impl Default for BitmapFromArray {
    fn default() -> Self {
        BitmapFromArray {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for BitmapFromArray {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)]
                if is_id_type(f.data_type()) => {}
            [DataType::Null] => {}
            [t] => {
                return plan_err!("{NAME}: list must be a list of integer member ids, got {t}");
            }
            _ => return plan_err!("{NAME}: takes one argument (list)"),
        }
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let lists = cast_with_options(
            &arrays[0],
            &DataType::new_list(DataType::Int64, true),
            &strict(),
        )
        .or_else(|_| exec_err!("{NAME}: {OUT_OF_RANGE}"))?;
        let lists = lists.as_list::<i32>();
        let mut out = BinaryBuilder::with_capacity(lists.len(), 0);
        for list in lists.iter() {
            match list {
                Some(values) => {
                    let mut bm = RoaringBitmap::new();
                    for id in ids(NAME, &values)?.iter().flatten() {
                        bm.insert(element(NAME, id)?);
                    }
                    out.append_value(encode(&bm));
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
