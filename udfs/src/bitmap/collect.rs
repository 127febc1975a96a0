//! `bitmap_agg(id)`: the set of a group's member ids as a roaring bitmap.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BinaryArray, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;
use roaring::RoaringBitmap;

use super::id_sets::IdSets;
use super::{bitmaps, check_id, decode_all, element, encode, heap_size, ids};
use crate::args::passes_filter;

const NAME: &str = "bitmap_agg";

#[user_doc(
    doc_section(label = "Audience Bitmap Functions"),
    description = "The distinct member ids of a group as a roaring bitmap (BINARY, the standard portable \
format read by CRoaring, Java RoaringBitmap and pyroaring). NULL ids are ignored; a group without ids \
gives an empty bitmap. Ids must lie in 0..4294967295.",
    syntax_example = "bitmap_agg(id)",
    sql_example = r#"```sql
> SELECT tier, bitmap_cardinality(bitmap_agg(member_id)) AS members
  FROM members GROUP BY tier ORDER BY tier;
```"#,
    argument(name = "id", description = "Integer member id.")
)]
/// The `bitmap_agg` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BitmapAgg {
    signature: Signature,
}

impl Default for BitmapAgg {
    fn default() -> Self {
        BitmapAgg {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

fn output(sets: &[RoaringBitmap]) -> ArrayRef {
    Arc::new(BinaryArray::from_iter_values(sets.iter().map(encode)))
}

/// Adds the ids of `values[0]` passing `filter` to `sets`' group `group(i)`.
fn add_ids(
    values: &[ArrayRef],
    filter: Option<&BooleanArray>,
    mut group: impl FnMut(usize) -> usize,
    sets: &mut IdSets,
) -> Result<()> {
    for (i, id) in ids(NAME, &values[0])?.iter().enumerate() {
        if let Some(id) = id
            && passes_filter(filter, i)
        {
            sets.add(group(i), element(NAME, id)?);
        }
    }
    sets.settle();
    Ok(())
}

/// ORs the partial bitmaps of `states[0]` into `sets`' group `group(i)`.
fn merge_states(
    states: &[ArrayRef],
    mut group: impl FnMut(usize) -> usize,
    sets: &mut IdSets,
) -> Result<()> {
    for (i, partial) in decode_all(NAME, &bitmaps(&states[0])?).enumerate() {
        if let Some(partial) = partial? {
            sets.union(group(i), partial);
        }
    }
    Ok(())
}

impl AggregateUDFImpl for BitmapAgg {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => check_id(NAME, "id", t)?,
            _ => return plan_err!("{NAME}: takes one argument (id)"),
        }
        Ok(DataType::Binary)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CollectAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[bitmap]", args.name),
            DataType::Binary,
            false,
        ))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(CollectGroups::default()))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// One group's bitmap.
#[derive(Debug)]
struct CollectAccumulator {
    set: IdSets,
}

impl Default for CollectAccumulator {
    fn default() -> Self {
        let mut set = IdSets::default();
        set.resize(1);
        CollectAccumulator { set }
    }
}

impl Accumulator for CollectAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        add_ids(values, None, |_| 0, &mut self.set)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(encode(self.set.complete(0)))))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.set.size() + heap_size(self.set.set(0))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        merge_states(states, |_| 0, &mut self.set)
    }
}

/// Every group's bitmap, and the heap they hold.
#[derive(Debug, Default)]
struct CollectGroups {
    sets: IdSets,
    /// Per group, its bitmap's [`heap_size`] when last measured.
    heaps: Vec<usize>,
    /// `heaps`, summed.
    held: usize,
    /// Per group, the ids it took since it was last measured.
    unmeasured: Vec<usize>,
}

/// A group is measured again once it took an id per this many bytes of its
/// last measured heap: an id adds 2 to 4 bytes, so `size()` misses at most
/// ~6 % of a group's heap, and a batch touching many large bitmaps (one a
/// day, say) measures few of them (measuring each cost Q11 4 %).
const BYTES_PER_MEASURED_ID: usize = 64;

impl CollectGroups {
    /// Runs `change` over the sets, a batch of ids (`ids`) or of merged
    /// bitmaps in groups `group_indices`, then measures the groups that may
    /// have grown past their share.
    fn change(
        &mut self,
        group_indices: &[usize],
        total_num_groups: usize,
        ids: bool,
        change: impl FnOnce(&mut IdSets) -> Result<()>,
    ) -> Result<()> {
        self.sets.resize(total_num_groups);
        self.heaps.resize(total_num_groups, 0);
        self.unmeasured.resize(total_num_groups, 0);
        let changed = change(&mut self.sets);
        for &g in group_indices {
            // a merged bitmap can add any number of ids
            self.unmeasured[g] = if ids {
                self.unmeasured[g] + 1
            } else {
                usize::MAX
            };
        }
        for &g in group_indices {
            let due = self.unmeasured[g].saturating_mul(BYTES_PER_MEASURED_ID);
            if self.unmeasured[g] > 0 && due >= self.heaps[g] {
                let heap = heap_size(self.sets.set(g));
                self.held = self.held + heap - self.heaps[g];
                self.heaps[g] = heap;
                self.unmeasured[g] = 0;
            }
        }
        changed
    }
}

impl GroupsAccumulator for CollectGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.change(group_indices, total_num_groups, true, |sets| {
            add_ids(values, opt_filter, |i| group_indices[i], sets)
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        emit_to.take_needed(&mut self.unmeasured);
        self.held -= emit_to.take_needed(&mut self.heaps).iter().sum::<usize>();
        Ok(output(&self.sets.take(emit_to)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.change(group_indices, total_num_groups, false, |sets| {
            merge_states(values, |i| group_indices[i], sets)
        })
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut sets = IdSets::default();
        sets.resize(values[0].len());
        add_ids(values, opt_filter, |i| i, &mut sets)?;
        Ok(vec![output(&sets.take(EmitTo::All))])
    }

    fn size(&self) -> usize {
        self.sets.size()
            + self.heaps.capacity() * size_of::<usize>()
            + self.unmeasured.capacity() * size_of::<usize>()
            + self.held
    }
}
