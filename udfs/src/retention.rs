//! `retention(cond1, …, condN)`: for each group, whether the first condition held
//! and, for each later one, whether it held too (ClickHouse `retention`).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListArray, UInt8Array, UInt32Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt32Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::args::{check_conditions, condition_masks, passes_filter};

const NAME: &str = "retention";

#[user_doc(
    doc_section(label = "Audience Behavioral Functions"),
    description = "An array of N 0/1 flags per group: `r[1] = any(cond1)`, and `r[i] = any(cond1) AND any(condi)` \
for i ≥ 2, as ClickHouse's `retention`. No time or order is involved. Rows where any condition is NULL are \
skipped; the result is never NULL (a group with no usable row gives all zeros). The array is 1-indexed in SQL.",
    syntax_example = "retention(cond1, cond2[, ..., condN])",
    sql_example = r#"```sql
> SELECT member_id,
         retention(ts < DATE '2026-01-08', ts >= DATE '2026-01-08' AND ts < DATE '2026-01-15') AS r
  FROM events WHERE event = 'pay' GROUP BY member_id;
```"#,
    argument(
        name = "cond1, ..., condN",
        description = "2 to 32 BOOLEAN conditions; the first defines the cohort."
    )
)]
/// The `retention` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Retention {
    signature: Signature,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// The result flags for an OR of condition masks over `n` conditions.
fn flags(mask: u32, n: usize) -> impl Iterator<Item = u8> {
    let cohort = mask & 1 != 0;
    (0..n).map(move |k| u8::from(cohort && mask & (1 << k) != 0))
}

fn output(masks: &[u32], n: usize) -> ArrayRef {
    let values = UInt8Array::from_iter_values(masks.iter().flat_map(|&m| flags(m, n)));
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(n, masks.len()));
    Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::UInt8, false)),
        offsets,
        Arc::new(values),
        None,
    ))
}

/// Per-row condition masks with rows holding a NULL condition cleared.
fn usable_masks(values: &[ArrayRef]) -> Result<Vec<u32>> {
    let len = values.first().map_or(0, |v| v.len());
    let (mut masks, nulls) = condition_masks(values, len)?;
    if let Some(nulls) = nulls {
        for i in nulls
            .iter()
            .enumerate()
            .filter(|(_, valid)| !valid)
            .map(|(i, _)| i)
        {
            masks[i] = 0;
        }
    }
    Ok(masks)
}

impl AggregateUDFImpl for Retention {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_conditions(NAME, arg_types, 2)?;
        Ok(DataType::new_list(DataType::UInt8, false))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RetentionAccumulator {
            n: args.exprs.len(),
            mask: 0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[mask]", args.name),
            DataType::UInt32,
            false,
        ))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(RetentionGroups {
            n: args.exprs.len(),
            masks: Vec::new(),
        }))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// One group's OR of condition masks.
#[derive(Debug)]
struct RetentionAccumulator {
    n: usize,
    mask: u32,
}

impl Accumulator for RetentionAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.mask = usable_masks(values)?
            .into_iter()
            .fold(self.mask, |a, m| a | m);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        ScalarValue::try_from_array(&output(&[self.mask], self.n), 0)
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::UInt32(Some(self.mask))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let masks = states[0].as_primitive::<UInt32Type>();
        self.mask = masks.iter().flatten().fold(self.mask, |a, m| a | m);
        Ok(())
    }
}

/// Every group's OR of condition masks, in one vector.
#[derive(Debug)]
struct RetentionGroups {
    n: usize,
    masks: Vec<u32>,
}

impl GroupsAccumulator for RetentionGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.masks.resize(total_num_groups, 0);
        let masks = usable_masks(values)?;
        for (i, (&g, m)) in group_indices.iter().zip(masks).enumerate() {
            if passes_filter(opt_filter, i) {
                self.masks[g] |= m;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(output(&emit_to.take_needed(&mut self.masks), self.n))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![Arc::new(UInt32Array::from(
            emit_to.take_needed(&mut self.masks),
        ))])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.masks.resize(total_num_groups, 0);
        let masks = values[0].as_primitive::<UInt32Type>();
        for (i, &g) in group_indices.iter().enumerate() {
            if masks.is_valid(i) {
                self.masks[g] |= masks.value(i);
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let masks = usable_masks(values)?;
        let masks = masks
            .into_iter()
            .enumerate()
            .map(|(i, m)| if passes_filter(opt_filter, i) { m } else { 0 });
        Ok(vec![Arc::new(UInt32Array::from_iter_values(masks))])
    }

    fn size(&self) -> usize {
        self.masks.capacity() * size_of::<u32>()
    }
}
