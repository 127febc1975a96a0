//! `one_id(table)`: One-ID resolution. Members that share an identifier
//! (transitively) are one person; each gets the smallest member id of its
//! connected component.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ahash::RandomState;
use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringViewArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, plan_err};
use datafusion::datasource::{TableType, provider_as_source};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Documentation, Expr, LogicalPlanBuilder, col};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use datafusion_macros::user_doc;
use futures::{StreamExt, TryStreamExt};

use crate::table_arg::NamedTable;

const NAME: &str = "one_id";

#[user_doc(
    doc_section(label = "Audience Customer Value Functions"),
    description = "One-ID resolution over an identities table `(member_id, id_type, id_value)`: one row \
`(member_id, one_id)` per member, where members who share any identifier — the same `(id_type, id_value)`, \
directly or through other members — get the same `one_id`, the smallest member id of their group. Rows with \
a NULL member_id (anonymous identifiers) produce no row. Computed with union-find in one pass over the \
table; memory grows with the number of distinct identifiers (about 40 bytes each) and counts against \
the engine's memory limit.",
    syntax_example = "one_id(table)",
    sql_example = r#"```sql
> SELECT count(*) AS accounts, count(DISTINCT one_id) AS people FROM one_id('identities');
```"#,
    argument(
        name = "table",
        description = "Name of a table with `member_id` (integer), `id_type` and `id_value` columns, in quotes."
    )
)]
/// The `one_id` table function.
#[derive(Debug, Default)]
pub struct OneId {}

impl OneId {
    /// The function's user documentation.
    pub fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _)
    ) || t.is_integer()
}

impl TableFunctionImpl for OneId {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() != 1 {
            return plan_err!("{NAME} takes 1 argument (table), got {}", exprs.len());
        }
        let table = NamedTable::resolve(NAME, args.session(), &exprs[0])?;
        table.require(
            NAME,
            &[
                ("member_id", "an integer", DataType::is_integer),
                ("id_type", "a string", is_text),
                ("id_value", "a string", is_text),
            ],
        )?;
        Ok(Arc::new(OneIdTable { table }))
    }
}

fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("member_id", DataType::Int64, false),
        Field::new("one_id", DataType::Int64, false),
    ]))
}

/// The relation `one_id(table)` returns.
#[derive(Debug)]
struct OneIdTable {
    table: NamedTable,
}

#[async_trait]
impl TableProvider for OneIdTable {
    fn schema(&self) -> SchemaRef {
        output_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = LogicalPlanBuilder::scan(
            self.table.reference.clone(),
            provider_as_source(Arc::clone(&self.table.provider)),
            None,
        )?
        .project(vec![col("member_id"), col("id_type"), col("id_value")])?
        .build()?;
        let input = state.create_physical_plan(&plan).await?;
        let input: Arc<dyn ExecutionPlan> = if input.output_partitioning().partition_count() > 1 {
            Arc::new(CoalescePartitionsExec::new(input))
        } else {
            input
        };
        let schema = match projection {
            Some(p) => Arc::new(output_schema().project(p)?),
            None => output_schema(),
        };
        Ok(Arc::new(OneIdExec {
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(Arc::clone(&schema)),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Final,
                Boundedness::Bounded,
            )),
            input,
            projection: projection.cloned(),
            schema,
        }))
    }
}

/// Reads the whole input, joins members through shared identifiers, then emits
/// `(member_id, one_id)` sorted by member_id.
#[derive(Debug)]
struct OneIdExec {
    input: Arc<dyn ExecutionPlan>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for OneIdExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "OneIdExec")
    }
}

impl ExecutionPlan for OneIdExec {
    fn name(&self) -> &str {
        "OneIdExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(OneIdExec {
            input: Arc::clone(&children[0]),
            projection: self.projection.clone(),
            schema: Arc::clone(&self.schema),
            properties: Arc::clone(&self.properties),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, Arc::clone(&context))?;
        let reservation =
            MemoryConsumer::new(format!("OneIdExec[{partition}]")).register(context.memory_pool());
        let batch_size = context.session_config().batch_size();
        let projection = self.projection.clone();
        // The input's row count (from Parquet footers) bounds the identifiers: sizing the
        // tables once avoids rehashing them ever larger as they fill.
        let rows = StatisticsContext::new()
            .compute(self.input.as_ref(), &StatisticsArgs::new())?
            .num_rows
            .get_value()
            .copied();
        let output = futures::stream::once(async move {
            let mut components = Components::new(reservation);
            if let Some(rows) = rows {
                components.reserve(rows)?;
            }
            while let Some(batch) = input.next().await {
                components.add(&batch?)?;
            }
            components.into_batches(batch_size, projection.as_deref())
        })
        .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            output,
        )))
    }
}

/// Memory charged per distinct identifier and per member (hash map entries and vectors).
const BYTES_PER_IDENTIFIER: usize = 40;
const BYTES_PER_MEMBER: usize = 40;

/// A fast hash map with fixed seeds (the keys are not attacker-chosen for a DoS:
/// a query only reads its own tables).
type FastMap<K, V> = HashMap<K, V, RandomState>;

fn fast_map<K, V>() -> FastMap<K, V> {
    HashMap::with_hasher(SEEDS[0].clone())
}

const SEEDS: [RandomState; 2] = [
    RandomState::with_seeds(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344),
    RandomState::with_seeds(0xa409_3822, 0x299f_31d0, 0x082e_fa98, 0xec4e_6c89),
];

/// Union-find over members (dense indexes), with identifiers keyed by a 128-bit hash.
struct Components {
    index: FastMap<i64, u32>,
    member_ids: Vec<i64>,
    parent: Vec<u32>,
    /// Identifier key → the first member seen with it (keys as two words: 24-byte entries).
    owner: FastMap<[u64; 2], u32>,
    /// The last member looked up (input sorted by member_id repeats it row after row).
    last: Option<(i64, u32)>,
    /// Identifiers whose memory [`Components::reserve`] charged in advance and not yet used.
    reserved_owners: usize,
    reservation: MemoryReservation,
}

/// A 128-bit key for `(id_type, id_value)`: two independent 64-bit hashes.
fn identifier_key(id_type: &str, id_value: &str) -> [u64; 2] {
    SEEDS
        .each_ref()
        .map(|seeds| seeds.hash_one((id_type, id_value)))
}

/// A text column as one string-view array (Parquet strings already are; others are cast).
fn strings(array: &ArrayRef) -> Result<StringViewArray> {
    Ok(cast(array, &DataType::Utf8View)?.as_string_view().clone())
}

impl Components {
    fn new(reservation: MemoryReservation) -> Self {
        Components {
            index: fast_map(),
            member_ids: Vec::new(),
            parent: Vec::new(),
            owner: fast_map(),
            last: None,
            reserved_owners: 0,
            reservation,
        }
    }

    /// Sizes the tables for `rows` input rows, charging the memory up front.
    fn reserve(&mut self, rows: usize) -> Result<()> {
        self.reservation.try_grow(rows * BYTES_PER_IDENTIFIER)?;
        self.owner.reserve(rows);
        self.reserved_owners = rows;
        Ok(())
    }

    fn member(&mut self, id: i64) -> u32 {
        if let Some((last_id, m)) = self.last
            && last_id == id
        {
            return m;
        }
        let next = self.member_ids.len() as u32;
        let (member_ids, parent) = (&mut self.member_ids, &mut self.parent);
        let m = *self.index.entry(id).or_insert_with(|| {
            member_ids.push(id);
            parent.push(next);
            next
        });
        self.last = Some((id, m));
        m
    }

    fn find(&mut self, mut m: u32) -> u32 {
        while self.parent[m as usize] != m {
            let grandparent = self.parent[self.parent[m as usize] as usize];
            self.parent[m as usize] = grandparent;
            m = grandparent;
        }
        m
    }

    /// Joins the groups of `a` and `b`; the root is the one with the smaller member id.
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (keep, child) = if self.member_ids[ra as usize] <= self.member_ids[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[child as usize] = keep;
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let (members_before, owners_before) = (self.member_ids.len(), self.owner.len());
        let member_ids = cast(batch.column(0), &DataType::Int64)?;
        let member_ids = member_ids.as_primitive::<Int64Type>();
        let (types, values) = (strings(batch.column(1))?, strings(batch.column(2))?);
        for i in 0..batch.num_rows() {
            if member_ids.is_null(i) {
                continue; // an anonymous identifier links no member
            }
            let m = self.member(member_ids.value(i));
            if types.is_null(i) || values.is_null(i) {
                continue;
            }
            let (id_type, id_value) = (types.value(i), values.value(i));
            match self.owner.entry(identifier_key(id_type, id_value)) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    let other = *e.get();
                    self.union(m, other);
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(m);
                }
            }
        }
        let new_owners = (self.owner.len() - owners_before).saturating_sub(self.reserved_owners);
        self.reserved_owners = self
            .reserved_owners
            .saturating_sub(self.owner.len() - owners_before);
        self.reservation.try_grow(
            (self.member_ids.len() - members_before) * BYTES_PER_MEMBER
                + new_owners * BYTES_PER_IDENTIFIER,
        )
    }

    /// `(member_id, one_id)` sorted by member_id, in batches of `batch_size`.
    fn into_batches(
        mut self,
        batch_size: usize,
        projection: Option<&[usize]>,
    ) -> Result<Vec<RecordBatch>> {
        self.owner = fast_map();
        let mut rows: Vec<(i64, i64)> = (0..self.member_ids.len() as u32)
            .map(|m| {
                let root = self.find(m);
                (self.member_ids[m as usize], self.member_ids[root as usize])
            })
            .collect();
        rows.sort_unstable();
        let schema = output_schema();
        rows.chunks(batch_size.max(1))
            .map(|chunk| {
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.0))),
                    Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.1))),
                ];
                let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
                Ok(match projection {
                    Some(p) => batch.project(p)?,
                    None => batch,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::{MemoryPool, UnboundedMemoryPool};

    use super::*;

    fn components() -> Components {
        let pool: Arc<dyn MemoryPool> = Arc::new(UnboundedMemoryPool::default());
        Components::new(MemoryConsumer::new("test").register(&pool))
    }

    #[test]
    fn chains_merge_to_the_smallest_member() {
        let mut c = components();
        let (a, b, d, e) = (c.member(7), c.member(3), c.member(9), c.member(1));
        c.union(a, b);
        c.union(d, a);
        let root = c.find(d);
        assert_eq!(c.member_ids[root as usize], 3);
        assert_eq!(c.find(e), e);
    }
}
