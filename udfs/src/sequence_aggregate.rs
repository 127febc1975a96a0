//! The aggregate behind `sequence_match` and `sequence_count`: one
//! implementation, told apart by [`SequenceKind`] and their documentation.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Signature, Volatility,
};

use crate::event_list::{EventAccumulator, EventGroups, state_fields};
use crate::sequence_pattern::{SEQUENCE_TS, SequenceFinish, SequenceKind};

/// `sequence_match` or `sequence_count`.
#[derive(Debug)]
pub(crate) struct SequenceAggregate {
    name: &'static str,
    kind: SequenceKind,
    doc: Option<&'static Documentation>,
    signature: Signature,
}

impl SequenceAggregate {
    pub(crate) fn new(
        name: &'static str,
        kind: SequenceKind,
        doc: Option<&'static Documentation>,
    ) -> Self {
        SequenceAggregate {
            name,
            kind,
            doc,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl PartialEq for SequenceAggregate {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.kind == other.kind
    }
}

impl Eq for SequenceAggregate {}

impl Hash for SequenceAggregate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl AggregateUDFImpl for SequenceAggregate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        SequenceFinish::return_type(self.name, self.kind, arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let finish = SequenceFinish::from_physical(self.name, self.kind, &args)?;
        Ok(Box::new(EventAccumulator::new(
            Arc::new(finish),
            SEQUENCE_TS,
        )))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let finish = SequenceFinish::from_physical(self.name, self.kind, &args)?;
        Ok(Box::new(EventGroups::new(Arc::new(finish), SEQUENCE_TS)))
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        // Checks the pattern while planning, before any row is read.
        let (name, kind) = (self.name, self.kind);
        Some(Box::new(move |function, _| {
            SequenceFinish::check_logical(name, kind, &function.params.args)?;
            Ok(Expr::AggregateFunction(function))
        }))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc
    }
}
