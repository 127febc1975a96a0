//! The five tables' Arrow schemas and the column buffers rows are appended to.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};

use crate::vocab::{CATEGORIES, CHANNELS, EVENTS, GENDERS, ID_TYPES, TIERS};

/// Code meaning "no value" in the `u8`-coded columns.
pub(crate) const NONE: u8 = u8::MAX;

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// Low-cardinality strings (event names, channels, categories, cities, tiers,
/// tag names, id types) are dictionary-encoded in Arrow, so the files carry
/// that type in their Arrow schema and readers decode them as dictionaries:
/// a filter like `event = 'pay'` then compares the few distinct values once,
/// not every row's string.
fn code_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

/// Schema of `members`.
pub static MEMBERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        Field::new("member_id", DataType::Int64, false),
        Field::new("register_ts", ts_type(), false),
        Field::new("register_channel", code_type(), false),
        Field::new("city", code_type(), false),
        Field::new("province", code_type(), false),
        Field::new("gender", code_type(), false),
        Field::new("birth_year", DataType::Int32, true),
        Field::new("tier", code_type(), false),
        Field::new("points", DataType::Int64, false),
        Field::new("home_store_id", DataType::Int32, true),
        Field::new("phone_hash", DataType::Utf8, true),
    ])
});

/// Schema of `events`.
pub static EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        Field::new("member_id", DataType::Int64, false),
        Field::new("ts", ts_type(), false),
        Field::new("event", code_type(), false),
        Field::new("channel", code_type(), false),
        Field::new("sku_id", DataType::Int64, true),
        Field::new("category", code_type(), true),
        Field::new("amount", DataType::Float64, true),
        Field::new("store_id", DataType::Int32, true),
        Field::new("campaign_id", DataType::Int32, true),
    ])
});

/// Schema of `orders`.
pub static ORDERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("member_id", DataType::Int64, false),
        Field::new("ts", ts_type(), false),
        Field::new("channel", code_type(), false),
        Field::new("store_id", DataType::Int32, true),
        Field::new("amount", DataType::Float64, false),
        Field::new("discount", DataType::Float64, false),
        Field::new("item_count", DataType::Int32, false),
        Field::new("coupon_id", DataType::Int64, true),
    ])
});

/// Schema of `member_tags`.
pub static MEMBER_TAGS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        Field::new("member_id", DataType::Int64, false),
        Field::new("tag", code_type(), false),
        Field::new("value", DataType::Utf8, false),
    ])
});

/// Schema of `identities`.
pub static IDENTITIES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(vec![
        Field::new("member_id", DataType::Int64, true),
        Field::new("id_type", code_type(), false),
        Field::new("id_value", DataType::Utf8, false),
    ])
});

/// The dictionary array of `codes` (indexes into `vocab`, [`NONE`] for NULL).
fn codes(codes: &[u8], vocab: &[&str]) -> ArrayRef {
    let keys = Int32Array::from_iter(codes.iter().map(|&c| (c != NONE).then_some(i32::from(c))));
    dictionary(keys, StringArray::from_iter_values(vocab))
}

/// The dictionary array of `values`, coded in order of first appearance.
fn interned<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(values.collect::<DictionaryArray<Int32Type>>())
}

fn dictionary(keys: Int32Array, values: StringArray) -> ArrayRef {
    // Every key indexes the vocabulary it was coded from.
    let array = DictionaryArray::try_new(keys, Arc::new(values));
    Arc::new(array.expect("codes index their vocabulary")) // ok: see above
}

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    // Every buffer pushes one value per column per row, so lengths and types match the schema.
    let batch = RecordBatch::try_new(Arc::clone(schema), columns);
    batch.expect("column buffers match their schema") // ok: see above
}

fn ts_array(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values))
}

/// Rows of `events` not yet written.
#[derive(Debug, Default)]
pub(crate) struct EventRows {
    pub(crate) member_id: Vec<i64>,
    pub(crate) ts: Vec<i64>,
    pub(crate) event: Vec<u8>,
    pub(crate) channel: Vec<u8>,
    pub(crate) sku_id: Vec<Option<i64>>,
    pub(crate) category: Vec<u8>,
    pub(crate) amount: Vec<Option<f64>>,
    pub(crate) store_id: Vec<Option<i32>>,
    pub(crate) campaign_id: Vec<Option<i32>>,
}

impl EventRows {
    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    /// Moves the buffered rows into a batch.
    pub(crate) fn take_batch(&mut self) -> RecordBatch {
        let t = std::mem::take(self);
        let category_names: Vec<&str> = CATEGORIES.iter().map(|c| c.name).collect();
        batch(
            &EVENTS_SCHEMA,
            vec![
                Arc::new(Int64Array::from(t.member_id)),
                ts_array(t.ts),
                codes(&t.event, &EVENTS),
                codes(&t.channel, &CHANNELS),
                Arc::new(Int64Array::from(t.sku_id)),
                codes(&t.category, &category_names),
                Arc::new(Float64Array::from(t.amount)),
                Arc::new(Int32Array::from(t.store_id)),
                Arc::new(Int32Array::from(t.campaign_id)),
            ],
        )
    }
}

/// Rows of `orders` not yet written.
#[derive(Debug, Default)]
pub(crate) struct OrderRows {
    pub(crate) order_id: Vec<i64>,
    pub(crate) member_id: Vec<i64>,
    pub(crate) ts: Vec<i64>,
    pub(crate) channel: Vec<u8>,
    pub(crate) store_id: Vec<Option<i32>>,
    pub(crate) amount: Vec<f64>,
    pub(crate) discount: Vec<f64>,
    pub(crate) item_count: Vec<i32>,
    pub(crate) coupon_id: Vec<Option<i64>>,
}

impl OrderRows {
    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    /// Moves the buffered rows into a batch.
    pub(crate) fn take_batch(&mut self) -> RecordBatch {
        let t = std::mem::take(self);
        batch(
            &ORDERS_SCHEMA,
            vec![
                Arc::new(Int64Array::from(t.order_id)),
                Arc::new(Int64Array::from(t.member_id)),
                ts_array(t.ts),
                codes(&t.channel, &CHANNELS),
                Arc::new(Int32Array::from(t.store_id)),
                Arc::new(Float64Array::from(t.amount)),
                Arc::new(Float64Array::from(t.discount)),
                Arc::new(Int32Array::from(t.item_count)),
                Arc::new(Int64Array::from(t.coupon_id)),
            ],
        )
    }
}

/// Rows of `members` not yet written.
#[derive(Debug, Default)]
pub(crate) struct MemberRows {
    pub(crate) member_id: Vec<i64>,
    pub(crate) register_ts: Vec<i64>,
    pub(crate) register_channel: Vec<u8>,
    pub(crate) city: Vec<u16>,
    pub(crate) gender: Vec<u8>,
    pub(crate) birth_year: Vec<Option<i32>>,
    pub(crate) tier: Vec<u8>,
    pub(crate) points: Vec<i64>,
    pub(crate) home_store_id: Vec<Option<i32>>,
    pub(crate) phone_hash: Vec<Option<u64>>,
}

impl MemberRows {
    pub(crate) fn len(&self) -> usize {
        self.member_id.len()
    }

    /// Moves the buffered rows into a batch; `cities` is `(city, province)` by code.
    pub(crate) fn take_batch(&mut self, cities: &[(String, &'static str)]) -> RecordBatch {
        let t = std::mem::take(self);
        let city = dictionary(
            Int32Array::from_iter_values(t.city.iter().map(|&c| i32::from(c))),
            StringArray::from_iter_values(cities.iter().map(|c| &c.0)),
        );
        // Several cities share a province: interned, so each name is one value.
        let province = interned(t.city.iter().map(|&c| cities[c as usize].1));
        let phone = StringArray::from_iter(t.phone_hash.iter().map(|p| p.map(hex)));
        batch(
            &MEMBERS_SCHEMA,
            vec![
                Arc::new(Int64Array::from(t.member_id)),
                ts_array(t.register_ts),
                codes(&t.register_channel, &CHANNELS),
                city,
                province,
                codes(&t.gender, &GENDERS),
                Arc::new(Int32Array::from(t.birth_year)),
                codes(&t.tier, &TIERS),
                Arc::new(Int64Array::from(t.points)),
                Arc::new(Int32Array::from(t.home_store_id)),
                Arc::new(phone),
            ],
        )
    }
}

/// Rows of `member_tags` not yet written.
#[derive(Debug, Default)]
pub(crate) struct TagRows {
    pub(crate) member_id: Vec<i64>,
    pub(crate) tag: Vec<&'static str>,
    /// Index into `tag_names` when `tag` is empty (the generated tag names).
    pub(crate) tag_code: Vec<u16>,
    pub(crate) value: Vec<&'static str>,
}

impl TagRows {
    pub(crate) fn len(&self) -> usize {
        self.member_id.len()
    }

    /// Moves the buffered rows into a batch; generated tag names come from `tag_names`.
    pub(crate) fn take_batch(&mut self, tag_names: &[String]) -> RecordBatch {
        let t = std::mem::take(self);
        let tag = interned(t.tag.iter().zip(&t.tag_code).map(|(&name, &code)| {
            if name.is_empty() {
                tag_names[code as usize].as_str()
            } else {
                name
            }
        }));
        batch(
            &MEMBER_TAGS_SCHEMA,
            vec![
                Arc::new(Int64Array::from(t.member_id)),
                tag,
                Arc::new(StringArray::from_iter_values(t.value)),
            ],
        )
    }
}

/// Rows of `identities` not yet written.
#[derive(Debug, Default)]
pub(crate) struct IdentityRows {
    pub(crate) member_id: Vec<Option<i64>>,
    pub(crate) id_type: Vec<u8>,
    /// The identifier's value as a 64-bit key, rendered per type.
    pub(crate) id_key: Vec<u64>,
}

impl IdentityRows {
    pub(crate) fn len(&self) -> usize {
        self.member_id.len()
    }

    /// Moves the buffered rows into a batch.
    pub(crate) fn take_batch(&mut self) -> RecordBatch {
        let t = std::mem::take(self);
        let value = StringArray::from_iter_values(
            t.id_type
                .iter()
                .zip(&t.id_key)
                .map(|(&ty, &key)| id_value(ty, key)),
        );
        batch(
            &IDENTITIES_SCHEMA,
            vec![
                Arc::new(Int64Array::from(t.member_id)),
                codes(&t.id_type, &ID_TYPES),
                Arc::new(value),
            ],
        )
    }
}

/// The 16-digit lowercase hex digest of a key (how phone numbers are hashed).
pub(crate) fn hex(key: u64) -> String {
    format!("{key:016x}")
}

/// How an identifier of type `id_type` with key `key` is written.
fn id_value(id_type: u8, key: u64) -> String {
    match ID_TYPES[id_type as usize] {
        "phone" => hex(key),
        "openid" => format!("o{:012x}", key >> 16),
        "unionid" => format!("u{:012x}", key >> 16),
        "card_no" => format!("{:012}", key % 1_000_000_000_000),
        "device_id" => format!("dev-{:010x}", key >> 24),
        "tmall_nick" => format!("tm_{}", key % 100_000_000),
        _ => format!("jd_{}", key % 100_000_000),
    }
}
