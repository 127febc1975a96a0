//! Roaring bitmap audiences: sets of member ids as BINARY values in the standard
//! 32-bit portable Roaring format (readable by CRoaring, Java RoaringBitmap and
//! pyroaring). Shared encoding, decoding and argument checks; one function per file.

pub(crate) mod cardinality;
pub(crate) mod collect;
pub(crate) mod combine;
pub(crate) mod contains;
pub(crate) mod from_array;
mod id_sets;
pub(crate) mod set_op;
pub(crate) mod to_array;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Int64Array};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::ColumnarValue;
use roaring::RoaringBitmap;

/// The bitmap in `bytes`, or an error saying that `function` got something else.
pub(crate) fn decode(function: &str, bytes: &[u8]) -> Result<RoaringBitmap> {
    RoaringBitmap::deserialize_from(bytes)
        .or_else(|e| exec_err!("{function}: argument is not a serialized roaring bitmap ({e})"))
}

/// `bitmap` in the portable format.
pub(crate) fn encode(bitmap: &RoaringBitmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(bitmap.serialized_size());
    // ok: serializing into a Vec performs no I/O that could fail.
    bitmap
        .serialize_into(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// The heap bytes `bitmap` holds: its containers (about 32 bytes each) and
/// their values. (roaring's statistics count an array container's capacity
/// at 4 bytes a value, which are `u16`, and a bitset container as 65,536,
/// its bits.)
pub(crate) fn heap_size(bitmap: &RoaringBitmap) -> usize {
    let s = bitmap.statistics();
    s.n_containers as usize * 32
        + s.n_bytes_array_containers as usize / 2
        + s.n_bitset_containers as usize * 8192
        + s.n_bytes_run_containers as usize
}

/// Whether `t` can hold a serialized bitmap.
pub(crate) fn is_bitmap_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null
    )
}

/// Whether `t` can hold member ids.
pub(crate) fn is_id_type(t: &DataType) -> bool {
    t.is_integer() || t == &DataType::Null
}

/// Checks that argument `what` of `function` has a bitmap type.
pub(crate) fn check_bitmap(function: &str, what: &str, t: &DataType) -> Result<()> {
    if is_bitmap_type(t) {
        Ok(())
    } else {
        plan_err!("{function}: {what} must be a bitmap (BINARY), got {t}")
    }
}

/// Checks that argument `what` of `function` has an integer type.
pub(crate) fn check_id(function: &str, what: &str, t: &DataType) -> Result<()> {
    if is_id_type(t) {
        Ok(())
    } else {
        plan_err!("{function}: {what} must be an integer member id, got {t}")
    }
}

/// A bitmap argument as a plain BINARY array.
pub(crate) fn bitmaps(array: &ArrayRef) -> Result<BinaryArray> {
    Ok(cast_with_options(array, &DataType::Binary, &strict())?
        .as_binary::<i32>()
        .clone())
}

/// An id argument as Int64 (values beyond Int64 are an error).
pub(crate) fn ids(function: &str, array: &ArrayRef) -> Result<Int64Array> {
    match cast_with_options(array, &DataType::Int64, &strict()) {
        Ok(a) => Ok(a.as_primitive::<Int64Type>().clone()),
        Err(_) => exec_err!("{function}: {OUT_OF_RANGE}"),
    }
}

/// `id` as a bitmap element, or an error naming it.
pub(crate) fn element(function: &str, id: i64) -> Result<u32> {
    u32::try_from(id).or_else(|_| {
        exec_err!("{function}: member id {id} is outside 0..4294967295 (bitmaps hold 32-bit ids)")
    })
}

/// The error for an id that does not fit a bitmap.
pub(crate) const OUT_OF_RANGE: &str = "member id outside 0..4294967295 (bitmaps hold 32-bit ids)";

/// Casts that fail instead of turning unrepresentable values into NULL.
pub(crate) fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

/// A bitmap argument of a scalar function, decoded on demand: a constant once, an
/// array row by row, reusing the previous row's decoded bitmap when the bytes are
/// the same (a segment joined to every row is decoded once, not once per row).
pub(crate) struct BitmapArg {
    function: &'static str,
    source: Source,
    /// The last decoded array row and its bitmap.
    last: Option<(usize, RoaringBitmap)>,
}

enum Source {
    Constant(Option<RoaringBitmap>),
    Rows(BinaryArray),
}

impl BitmapArg {
    /// Reads argument `arg` of `function`.
    pub(crate) fn new(function: &'static str, arg: &ColumnarValue) -> Result<Self> {
        let source = match arg {
            ColumnarValue::Scalar(s) => {
                let bytes = s.to_array_of_size(1)?;
                Source::Constant(
                    decode_all(function, &bitmaps(&bytes)?)
                        .next()
                        .transpose()?
                        .flatten(),
                )
            }
            ColumnarValue::Array(a) => Source::Rows(bitmaps(a)?),
        };
        Ok(BitmapArg {
            function,
            source,
            last: None,
        })
    }

    /// The bitmap of row `i` (`None` for NULL).
    pub(crate) fn get(&mut self, i: usize) -> Result<Option<&RoaringBitmap>> {
        let values = match &self.source {
            Source::Constant(bitmap) => return Ok(bitmap.as_ref()),
            Source::Rows(values) => values,
        };
        if values.is_null(i) {
            return Ok(None);
        }
        let same = matches!(&self.last, Some((j, _)) if values.value(*j) == values.value(i));
        if !same {
            self.last = Some((i, decode(self.function, values.value(i))?));
        }
        Ok(self.last.as_ref().map(|(_, bitmap)| bitmap))
    }
}

/// The values of a bitmap array, decoded (`None` for NULL).
pub(crate) fn decode_all(
    function: &str,
    array: &BinaryArray,
) -> impl Iterator<Item = Result<Option<RoaringBitmap>>> {
    array
        .iter()
        .map(move |v| v.map(|bytes| decode(function, bytes)).transpose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_bytes() {
        let bm: RoaringBitmap = [1u32, 5, 70_000, u32::MAX].into_iter().collect();
        assert_eq!(decode("f", &encode(&bm)).unwrap(), bm);
        let err = decode("f", b"not a bitmap").unwrap_err().to_string();
        assert!(
            err.contains("f: argument is not a serialized roaring bitmap"),
            "{err}"
        );
    }

    #[test]
    fn ids_outside_u32_are_errors() {
        assert_eq!(element("f", 4_294_967_295).unwrap(), u32::MAX);
        let err = element("f", 4_294_967_296).unwrap_err().to_string();
        assert!(err.contains("member id 4294967296 is outside"), "{err}");
        assert!(element("f", -1).is_err());
    }
}
