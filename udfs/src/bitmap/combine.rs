//! `bitmap_or_agg(bm)` and `bitmap_and_agg(bm)`: the union or intersection of a
//! group's bitmaps.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion_macros::user_doc;
use roaring::RoaringBitmap;

use super::{bitmaps, check_bitmap, decode_all, encode, heap_size};

/// How a group's bitmaps combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Combine {
    Or,
    And,
}

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "The union of a group's bitmaps (members in any of them). NULL bitmaps are ignored; a group \
without bitmaps gives an empty bitmap.",
    syntax_example = "bitmap_or_agg(bm)",
    sql_example = r#"```sql
> SELECT bitmap_cardinality(bitmap_or_agg(b)) AS members
  FROM (SELECT bitmap_agg(member_id) AS b FROM members GROUP BY tier)
  WHERE b IS NOT NULL;
```"#,
    argument(name = "bm", description = "A bitmap (BINARY).")
)]
#[derive(Debug)]
struct OrDoc;

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "The intersection of a group's bitmaps (members in all of them). NULL bitmaps are ignored; a \
group without bitmaps gives NULL.",
    syntax_example = "bitmap_and_agg(bm)",
    sql_example = r#"```sql
> SELECT bitmap_cardinality(bitmap_and_agg(b)) AS members
  FROM (SELECT bitmap_agg(member_id) AS b FROM members WHERE member_id <= 10
        UNION ALL
        SELECT bitmap_agg(member_id) FROM members WHERE member_id > 5);
```"#,
    argument(name = "bm", description = "A bitmap (BINARY).")
)]
#[derive(Debug)]
struct AndDoc;

/// The `bitmap_or_agg` / `bitmap_and_agg` aggregates.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BitmapCombineAgg {
    combine: Combine,
    signature: Signature,
}

impl BitmapCombineAgg {
    fn new(combine: Combine) -> Self {
        BitmapCombineAgg {
            combine,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

/// The `bitmap_or_agg` aggregate.
pub fn bitmap_or_agg() -> AggregateUDF {
    AggregateUDF::new_from_impl(BitmapCombineAgg::new(Combine::Or))
}

/// The `bitmap_and_agg` aggregate.
pub fn bitmap_and_agg() -> AggregateUDF {
    AggregateUDF::new_from_impl(BitmapCombineAgg::new(Combine::And))
}

impl Combine {
    fn name(self) -> &'static str {
        match self {
            Combine::Or => "bitmap_or_agg",
            Combine::And => "bitmap_and_agg",
        }
    }
}

impl AggregateUDFImpl for BitmapCombineAgg {
    fn name(&self) -> &str {
        self.combine.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => check_bitmap(self.name(), "bm", t)?,
            _ => return plan_err!("{}: takes one argument (bm)", self.name()),
        }
        Ok(DataType::Binary)
    }

    fn is_nullable(&self) -> bool {
        self.combine == Combine::And
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CombineAccumulator {
            name: self.combine.name(),
            combine: self.combine,
            set: None,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[bitmap]", args.name),
            DataType::Binary,
            true,
        ))])
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        match self.combine {
            Combine::Or => OrDoc.doc(),
            Combine::And => AndDoc.doc(),
        }
    }
}

/// A group's combined bitmap; `None` until the first bitmap arrives.
#[derive(Debug)]
struct CombineAccumulator {
    name: &'static str,
    combine: Combine,
    set: Option<RoaringBitmap>,
}

impl Accumulator for CombineAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for bitmap in decode_all(self.name, &bitmaps(&values[0])?) {
            let Some(bitmap) = bitmap? else { continue };
            self.set = Some(match (self.set.take(), self.combine) {
                (None, _) => bitmap,
                (Some(set), Combine::Or) => set | bitmap,
                (Some(set), Combine::And) => set & bitmap,
            });
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(match (&self.set, self.combine) {
            (Some(set), _) => Some(encode(set)),
            (None, Combine::Or) => Some(encode(&RoaringBitmap::new())),
            (None, Combine::And) => None,
        }))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.set.as_ref().map_or(0, heap_size)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(self.set.as_ref().map(encode))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        // A partial state is a bitmap of the same kind: combining it is an update.
        self.update_batch(states)
    }
}
