//! The columns of format 1's tables (schemas/lake-format-1.md), declared once: the Arrow schema,
//! decoding and (for the test writer) encoding are all derived from these lists. A private copy
//! of what format 1 was, kept so that `ledgerlake upgrade` reads old lakes whatever the current
//! format's columns become.
//!
//! A `u128` field becomes two UINT64 columns `<name>_hi`, `<name>_lo` (value = hi·2^64 + lo):
//! Parquet has no unsigned 128-bit integer, and this split is lossless over the whole range,
//! readable by every Parquet reader, and cheap when `_hi` is all zeros (see schemas/lake.md).

use std::sync::Arc;

#[cfg(any(test, feature = "testbed"))]
use arrow::array::ArrayRef;
use arrow::array::{Array, PrimitiveArray, RecordBatch};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Schema, SchemaRef, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};

use super::event_type_from_u8;
use crate::cdc::EventType;
use crate::lake::{AccountRecord, EventRow};

/// How a column reads its value from a row (the test writer's side) and writes it back.
#[cfg_attr(not(any(test, feature = "testbed")), allow(dead_code))]
pub enum Access<R> {
    U128(fn(&R) -> u128, fn(&mut R, u128)),
    U64(fn(&R) -> u64, fn(&mut R, u64)),
    U32(fn(&R) -> u32, fn(&mut R, u32)),
    U16(fn(&R) -> u16, fn(&mut R, u16)),
    /// Stored as UINT8, the `#[repr(u8)]` discriminant.
    EventType(fn(&R) -> EventType, fn(&mut R, EventType)),
}

/// One logical column (a `U128` one is two physical columns).
pub struct Column<R: 'static> {
    pub name: &'static str,
    pub access: Access<R>,
}

// Manual impls: derive would demand `R: Copy`, but only fn pointers are copied.
impl<R> Clone for Access<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Access<R> {}
impl<R> Clone for Column<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Column<R> {}

macro_rules! col {
    ($name:expr, $kind:ident, $($field:ident).+) => {
        Column {
            name: $name,
            access: Access::$kind(|r| r.$($field).+, |r, v| r.$($field).+ = v),
        }
    };
}

macro_rules! account_state_cols {
    ($prefix:literal, $side:ident) => {
        [
            col!(concat!($prefix, "id"), U128, $side.id),
            col!(
                concat!($prefix, "debits_pending"),
                U128,
                $side.debits_pending
            ),
            col!(concat!($prefix, "debits_posted"), U128, $side.debits_posted),
            col!(
                concat!($prefix, "credits_pending"),
                U128,
                $side.credits_pending
            ),
            col!(
                concat!($prefix, "credits_posted"),
                U128,
                $side.credits_posted
            ),
            col!(concat!($prefix, "flags"), U16, $side.flags),
        ]
    };
}

const DEBIT: [Column<EventRow>; 6] = account_state_cols!("debit_account_", debit_account);
const CREDIT: [Column<EventRow>; 6] = account_state_cols!("credit_account_", credit_account);

/// The transfers table, in file order.
pub static TRANSFER_COLUMNS: [Column<EventRow>; 25] = [
    col!("timestamp", U64, timestamp),
    col!("event_type", EventType, event_type),
    col!("ledger", U32, ledger),
    col!("transfer_id", U128, transfer.id),
    col!("amount", U128, transfer.amount),
    col!("pending_id", U128, transfer.pending_id),
    col!("user_data_128", U128, transfer.user_data_128),
    col!("user_data_64", U64, transfer.user_data_64),
    col!("user_data_32", U32, transfer.user_data_32),
    col!("timeout", U32, transfer.timeout),
    col!("code", U16, transfer.code),
    col!("flags", U16, transfer.flags),
    col!("transfer_timestamp", U64, transfer.timestamp),
    DEBIT[0],
    DEBIT[1],
    DEBIT[2],
    DEBIT[3],
    DEBIT[4],
    DEBIT[5],
    CREDIT[0],
    CREDIT[1],
    CREDIT[2],
    CREDIT[3],
    CREDIT[4],
    CREDIT[5],
];

/// The accounts table, in file order.
pub static ACCOUNT_COLUMNS: [Column<AccountRecord>; 9] = [
    col!("id", U128, id),
    col!("ledger", U32, ledger),
    col!("code", U16, code),
    col!("flags", U16, flags),
    col!("user_data_128", U128, user_data_128),
    col!("user_data_64", U64, user_data_64),
    col!("user_data_32", U32, user_data_32),
    col!("timestamp", U64, timestamp),
    col!("first_seen_timestamp", U64, first_seen_timestamp),
];

/// The physical (Arrow/Parquet) fields of a table, all non-nullable.
pub fn schema<R>(cols: &[Column<R>]) -> SchemaRef {
    let mut fields = Vec::new();
    for c in cols {
        let leaf = |name: String, t: DataType| Field::new(name, t, false);
        match c.access {
            Access::U128(..) => {
                fields.push(leaf(format!("{}_hi", c.name), DataType::UInt64));
                fields.push(leaf(format!("{}_lo", c.name), DataType::UInt64));
            }
            Access::U64(..) => fields.push(leaf(c.name.into(), DataType::UInt64)),
            Access::U32(..) => fields.push(leaf(c.name.into(), DataType::UInt32)),
            Access::U16(..) => fields.push(leaf(c.name.into(), DataType::UInt16)),
            Access::EventType(..) => fields.push(leaf(c.name.into(), DataType::UInt8)),
        }
    }
    Arc::new(Schema::new(fields))
}

#[cfg(any(test, feature = "testbed"))]
fn array<T: ArrowPrimitiveType, R>(rows: &[R], f: impl Fn(&R) -> T::Native) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::from_iter_values(rows.iter().map(f)))
}

/// Rows → one record batch with `schema(cols)`.
#[cfg(any(test, feature = "testbed"))]
pub fn to_batch<R>(
    cols: &[Column<R>],
    rows: &[R],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut arrays = Vec::new();
    for c in cols {
        match c.access {
            Access::U128(get, _) => {
                arrays.push(array::<UInt64Type, _>(rows, |r| (get(r) >> 64) as u64));
                arrays.push(array::<UInt64Type, _>(rows, |r| get(r) as u64));
            }
            Access::U64(get, _) => arrays.push(array::<UInt64Type, _>(rows, get)),
            Access::U32(get, _) => arrays.push(array::<UInt32Type, _>(rows, get)),
            Access::U16(get, _) => arrays.push(array::<UInt16Type, _>(rows, get)),
            Access::EventType(get, _) => arrays.push(array::<UInt8Type, _>(rows, |r| get(r) as u8)),
        }
    }
    RecordBatch::try_new(schema(cols), arrays)
}

/// The values of physical column `i`, checked to be non-null `T`.
fn values<T: ArrowPrimitiveType>(batch: &RecordBatch, i: usize) -> Result<&[T::Native], String> {
    let name = batch.schema().field(i).name().clone();
    let a = batch
        .column(i)
        .as_any()
        .downcast_ref::<PrimitiveArray<T>>()
        .ok_or_else(|| format!("column {name} has type {}", batch.column(i).data_type()))?;
    if a.null_count() > 0 {
        return Err(format!("column {name} holds nulls"));
    }
    Ok(a.values())
}

/// One record batch (whose schema the caller has checked against `schema(cols)`) → rows,
/// appended to `out`. Errors describe the offending column or value.
pub fn from_batch<R: Default>(
    cols: &[Column<R>],
    batch: &RecordBatch,
    out: &mut Vec<R>,
) -> Result<(), String> {
    let start = out.len();
    out.resize_with(start + batch.num_rows(), R::default);
    let rows = &mut out[start..];
    let mut i = 0;
    for c in cols {
        match c.access {
            Access::U128(_, set) => {
                let hi = values::<UInt64Type>(batch, i)?;
                let lo = values::<UInt64Type>(batch, i + 1)?;
                for ((r, &h), &l) in rows.iter_mut().zip(hi).zip(lo) {
                    set(r, (u128::from(h) << 64) | u128::from(l));
                }
                i += 2;
                continue;
            }
            Access::U64(_, set) => {
                for (r, &v) in rows.iter_mut().zip(values::<UInt64Type>(batch, i)?) {
                    set(r, v);
                }
            }
            Access::U32(_, set) => {
                for (r, &v) in rows.iter_mut().zip(values::<UInt32Type>(batch, i)?) {
                    set(r, v);
                }
            }
            Access::U16(_, set) => {
                for (r, &v) in rows.iter_mut().zip(values::<UInt16Type>(batch, i)?) {
                    set(r, v);
                }
            }
            Access::EventType(_, set) => {
                for (r, &v) in rows.iter_mut().zip(values::<UInt8Type>(batch, i)?) {
                    let t = event_type_from_u8(v)
                        .ok_or_else(|| format!("event_type {v} is not a known event type"))?;
                    set(r, t);
                }
            }
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<R>(cols: &[Column<R>]) -> Vec<String> {
        schema(cols)
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    #[test]
    fn transfers_columns_are_the_documented_ones_in_order() {
        let mut expected: Vec<String> =
            "timestamp event_type ledger transfer_id_hi transfer_id_lo \
             amount_hi amount_lo pending_id_hi pending_id_lo user_data_128_hi user_data_128_lo \
             user_data_64 user_data_32 timeout code flags transfer_timestamp"
                .split_whitespace()
                .map(String::from)
                .collect();
        for side in ["debit_account_", "credit_account_"] {
            for f in [
                "id_hi",
                "id_lo",
                "debits_pending_hi",
                "debits_pending_lo",
                "debits_posted_hi",
                "debits_posted_lo",
                "credits_pending_hi",
                "credits_pending_lo",
                "credits_posted_hi",
                "credits_posted_lo",
                "flags",
            ] {
                expected.push(format!("{side}{f}"));
            }
        }
        assert_eq!(names(&TRANSFER_COLUMNS), expected);
    }

    #[test]
    fn accounts_columns_are_the_documented_ones_in_order() {
        let expected = "id_hi id_lo ledger code flags user_data_128_hi user_data_128_lo \
                        user_data_64 user_data_32 timestamp first_seen_timestamp";
        assert_eq!(names(&ACCOUNT_COLUMNS).join(" "), expected);
    }

    #[test]
    fn every_column_is_described_in_the_format_document() {
        let doc = include_str!("../../../schemas/lake-format-1.md");
        for name in names(&TRANSFER_COLUMNS)
            .into_iter()
            .chain(names(&ACCOUNT_COLUMNS))
        {
            assert!(
                doc.contains(&format!("`{name}`")),
                "schemas/lake-format-1.md does not describe column `{name}`"
            );
        }
    }
}
