//! `rfm_segment(r, f, m)`: the marketing segment of an RFM score triple.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

const NAME: &str = "rfm_segment";

/// Segments by recency score (row 0 = R 5) and the rounded-up mean of F and M (column 0 = FM 1).
const GRID: [[&str; 5]; 5] = [
    [
        "New Customers",
        "Potential Loyalists",
        "Potential Loyalists",
        "Champions",
        "Champions",
    ],
    [
        "Promising",
        "Potential Loyalists",
        "Potential Loyalists",
        "Loyal Customers",
        "Loyal Customers",
    ],
    [
        "About To Sleep",
        "About To Sleep",
        "Need Attention",
        "Loyal Customers",
        "Loyal Customers",
    ],
    [
        "Hibernating",
        "Hibernating",
        "At Risk",
        "At Risk",
        "Can't Lose Them",
    ],
    ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
];

/// The segment for scores 1..=5 each, or an error naming the score out of range.
pub(crate) fn segment(r: i64, f: i64, m: i64) -> Result<&'static str> {
    for (what, score) in [("r", r), ("f", f), ("m", m)] {
        if !(1..=5).contains(&score) {
            return exec_err!("{NAME}: score {what} must be 1..5, got {score}");
        }
    }
    let fm = (f + m + 1) / 2;
    // In range by the checks above.
    Ok(GRID[(5 - r) as usize][(fm - 1) as usize])
}

#[user_doc(
    doc_section(label = "Audience Customer Value Functions"),
    description = "The RFM segment for recency, frequency and monetary scores 1..5 (5 best): the R row and the \
rounded-up mean of F and M (`(f + m + 1) / 2`) pick one of Champions, Loyal Customers, Potential Loyalists, \
New Customers, Promising, Need Attention, About To Sleep, At Risk, Can't Lose Them, Hibernating, Lost. \
NULL in any argument gives NULL; a score outside 1..5 is an error.",
    syntax_example = "rfm_segment(r, f, m)",
    sql_example = r#"```sql
> SELECT rfm_segment(5, 4, 5) AS segment;
+-----------+
| segment   |
+-----------+
| Champions |
+-----------+
```"#,
    argument(
        name = "r",
        description = "Recency score 1..5 (5 = bought most recently)."
    ),
    argument(name = "f", description = "Frequency score 1..5."),
    argument(name = "m", description = "Monetary score 1..5.")
)]
/// The `rfm_segment` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RfmSegment {
    signature: Signature,
}

impl Default for RfmSegment {
    fn default() -> Self {
        RfmSegment {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RfmSegment {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        for (what, t) in ["r", "f", "m"].iter().zip(arg_types) {
            if !(t.is_integer() || t == &DataType::Null) {
                return plan_err!("{NAME}: {what} must be an integer score 1..5, got {t}");
            }
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let scores = arrays
            .iter()
            .map(|a| cast(a, &DataType::Int64))
            .collect::<Result<Vec<_>, _>>()?;
        let [r, f, m] = [0, 1, 2].map(|k| scores[k].as_primitive::<Int64Type>());
        let mut out = StringBuilder::with_capacity(rows, rows * 12);
        for i in 0..rows {
            if r.is_null(i) || f.is_null(i) || m.is_null(i) {
                out.append_null();
            } else {
                out.append_value(segment(r.value(i), f.value(i), m.value(i))?);
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_corners_and_fm_rounding() {
        assert_eq!(segment(5, 1, 1).unwrap(), "New Customers");
        assert_eq!(segment(5, 5, 5).unwrap(), "Champions");
        assert_eq!(segment(1, 1, 1).unwrap(), "Lost");
        assert_eq!(segment(1, 5, 5).unwrap(), "Can't Lose Them");
        // fm = (3 + 4 + 1) / 2 = 4 (rounded up mean 3.5)
        assert_eq!(segment(3, 3, 4).unwrap(), "Loyal Customers");
        // fm = (2 + 3 + 1) / 2 = 3
        assert_eq!(segment(3, 2, 3).unwrap(), "Need Attention");
    }

    #[test]
    fn out_of_range_score_names_it() {
        let err = segment(3, 0, 2).unwrap_err().to_string();
        assert!(err.contains("score f must be 1..5, got 0"), "{err}");
    }
}
