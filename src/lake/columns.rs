//! The columns of the three tables, declared once: the Arrow schema, the Delta schema, encoding
//! and decoding are all derived from these lists, so they cannot drift apart.
//!
//! Every type is portable (schemas/lake.md, "Types"): no engine that reads Delta or Parquet has
//! unsigned integers, so a `u128` quantity (amount, balance) becomes `<name>` decimal(38,0)
//! (value mod 10^38) and `<name>_e38` byte (value div 10^38); a `u128` identifier (ids,
//! `user_data_128`) becomes `<name>` INT64 (value mod 10^18) and `<name>_e18` decimal(21,0)
//! (value div 10^18); a non-timestamp `u64` decimal(20,0), a `u32` INT64, a `u16` INT32;
//! timestamps are INT64 (TigerBeetle timestamps stay below 2^63 until 2262).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Decimal128Array, PrimitiveArray, RecordBatch};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Field, Int32Type, Int64Type, Int8Type, Schema,
    SchemaRef,
};

use super::rows::{event_type_from_u8, AccountRecord, EventRow};
use crate::cdc::EventType;

/// 10^38: a `u128` is stored as (value mod 10^38, value div 10^38).
pub const E38: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;
/// The precision of the decimal holding `value mod 10^38`.
pub const U128_PRECISION: u8 = 38;
/// The precision of the decimal holding a `u64` (u64::MAX has 20 digits).
pub const U64_PRECISION: u8 = 20;
/// The suffix of the column holding `value div 10^38`.
pub const E38_SUFFIX: &str = "_e38";
/// 10^18: a `u128` identifier is stored as (value mod 10^18, value div 10^18). The low part is
/// an INT64, which every engine filters and joins on at full speed; a 16-byte decimal costs
/// DuckDB 1.6-1.8x more per value (BENCHMARKS.md, "Identifiers as INT64").
pub const E18: u128 = 1_000_000_000_000_000_000;
/// The precision of the decimal holding `value div 10^18` (u128::MAX / 10^18 has 21 digits).
pub const ID_HIGH_PRECISION: u8 = 21;
/// The suffix of the column holding `value div 10^18`.
pub const E18_SUFFIX: &str = "_e18";

/// Splits a `u128` into (value mod 10^38, value div 10^38).
pub fn split_u128(v: u128) -> (i128, i8) {
    let low = v % E38;
    let high = v / E38;
    assert!(high <= 3, "u128 div 10^38 is at most 3");
    (low as i128, high as i8)
}

/// Joins (value mod 10^38, value div 10^38) back; `None` if they do not form a `u128`.
pub fn join_u128(low: i128, high: i8) -> Option<u128> {
    if !(0..E38 as i128).contains(&low) || !(0..=3).contains(&high) {
        return None;
    }
    (high as u128).checked_mul(E38)?.checked_add(low as u128)
}

/// Splits a `u128` identifier into (value mod 10^18, value div 10^18).
pub fn split_id(v: u128) -> (i64, i128) {
    let low = (v % E18) as i64;
    let high = (v / E18) as i128;
    assert!(high < 10i128.pow(u32::from(ID_HIGH_PRECISION)));
    (low, high)
}

/// Joins (value mod 10^18, value div 10^18) back; `None` if they do not form a `u128`.
pub fn join_id(low: i64, high: i128) -> Option<u128> {
    if !(0..E18 as i64).contains(&low) || high < 0 {
        return None;
    }
    (high as u128).checked_mul(E18)?.checked_add(low as u128)
}

/// A timestamp as stored: TigerBeetle timestamps are below 2^63 (until the year 2262).
pub fn timestamp_to_i64(ts: u64) -> i64 {
    i64::try_from(ts).unwrap_or_else(|_| panic!("timestamp {ts} is not below 2^63"))
}

/// How a column reads its value from a row and writes it back.
pub enum Access<R> {
    /// A quantity, two columns: `<name>` decimal(38,0) and `<name>_e38` byte.
    U128(fn(&R) -> u128, fn(&mut R, u128)),
    /// An identifier, two columns: `<name>` INT64 and `<name>_e18` decimal(21,0).
    Id128(fn(&R) -> u128, fn(&mut R, u128)),
    /// A TigerBeetle timestamp (below 2^63): INT64.
    Timestamp(fn(&R) -> u64, fn(&mut R, u64)),
    /// Any `u64`: decimal(20,0).
    U64(fn(&R) -> u64, fn(&mut R, u64)),
    U32(fn(&R) -> u32, fn(&mut R, u32)),
    U16(fn(&R) -> u16, fn(&mut R, u16)),
    /// Stored as a byte (INT8), the `#[repr(u8)]` discriminant.
    EventType(fn(&R) -> EventType, fn(&mut R, EventType)),
}

impl<R> Access<R> {
    /// How many physical columns the logical one is.
    pub fn width(&self) -> usize {
        match self {
            Access::U128(..) | Access::Id128(..) => 2,
            _ => 1,
        }
    }
}

/// One logical column (a `U128` or `Id128` one is two physical columns).
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
            col!(concat!($prefix, "id"), Id128, $side.id),
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
    col!("timestamp", Timestamp, timestamp),
    col!("event_type", EventType, event_type),
    col!("ledger", U32, ledger),
    col!("transfer_id", Id128, transfer.id),
    col!("amount", U128, transfer.amount),
    col!("pending_id", Id128, transfer.pending_id),
    col!("user_data_128", Id128, transfer.user_data_128),
    col!("user_data_64", U64, transfer.user_data_64),
    col!("user_data_32", U32, transfer.user_data_32),
    col!("timeout", U32, transfer.timeout),
    col!("code", U16, transfer.code),
    col!("flags", U16, transfer.flags),
    col!("transfer_timestamp", Timestamp, transfer.timestamp),
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

/// The transfers table's columns but the accounts' balances and flags: what a replay reads
/// (`Lake::read_transfers_of_cluster`).
pub static TRANSFER_COLUMNS_WITHOUT_ACCOUNT_STATES: [&str; 15] = [
    "timestamp",
    "event_type",
    "ledger",
    "transfer_id",
    "amount",
    "pending_id",
    "user_data_128",
    "user_data_64",
    "user_data_32",
    "timeout",
    "code",
    "flags",
    "transfer_timestamp",
    "debit_account_id",
    "credit_account_id",
];

/// The accounts table, in file order.
pub static ACCOUNT_COLUMNS: [Column<AccountRecord>; 9] = [
    col!("id", Id128, id),
    col!("ledger", U32, ledger),
    col!("code", U16, code),
    col!("flags", U16, flags),
    col!("user_data_128", Id128, user_data_128),
    col!("user_data_64", U64, user_data_64),
    col!("user_data_32", U32, user_data_32),
    col!("timestamp", Timestamp, timestamp),
    col!("first_seen_timestamp", Timestamp, first_seen_timestamp),
];

/// The physical (Arrow/Parquet) fields of a table's data files, all non-nullable.
pub fn schema<R>(cols: &[Column<R>]) -> SchemaRef {
    let mut fields = Vec::new();
    for c in cols {
        let leaf = |name: String, t: DataType| Field::new(name, t, false);
        match c.access {
            Access::U128(..) => {
                fields.push(leaf(c.name.into(), DataType::Decimal128(U128_PRECISION, 0)));
                fields.push(leaf(format!("{}{E38_SUFFIX}", c.name), DataType::Int8));
            }
            Access::Id128(..) => {
                fields.push(leaf(c.name.into(), DataType::Int64));
                fields.push(leaf(
                    format!("{}{E18_SUFFIX}", c.name),
                    DataType::Decimal128(ID_HIGH_PRECISION, 0),
                ));
            }
            Access::Timestamp(..) => fields.push(leaf(c.name.into(), DataType::Int64)),
            Access::U64(..) => {
                fields.push(leaf(c.name.into(), DataType::Decimal128(U64_PRECISION, 0)))
            }
            Access::U32(..) => fields.push(leaf(c.name.into(), DataType::Int64)),
            Access::U16(..) => fields.push(leaf(c.name.into(), DataType::Int32)),
            Access::EventType(..) => fields.push(leaf(c.name.into(), DataType::Int8)),
        }
    }
    Arc::new(Schema::new(fields))
}

fn array<T: ArrowPrimitiveType, R>(rows: &[R], f: impl Fn(&R) -> T::Native) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::from_iter_values(rows.iter().map(f)))
}

fn decimal<R>(rows: &[R], precision: u8, f: impl Fn(&R) -> i128) -> ArrayRef {
    let a = Decimal128Array::from_iter_values(rows.iter().map(f))
        .with_precision_and_scale(precision, 0)
        .expect("precisions 20, 21 and 38 are valid for Decimal128");
    Arc::new(a)
}

/// Rows → one record batch with `schema(cols)`. Panics (a writer bug) on a timestamp at or
/// above 2^63.
pub fn to_batch<R>(
    cols: &[Column<R>],
    rows: &[R],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut arrays = Vec::new();
    for c in cols {
        match c.access {
            Access::U128(get, _) => {
                arrays.push(decimal(rows, U128_PRECISION, |r| split_u128(get(r)).0));
                arrays.push(array::<Int8Type, _>(rows, |r| split_u128(get(r)).1));
            }
            Access::Id128(get, _) => {
                arrays.push(array::<Int64Type, _>(rows, |r| split_id(get(r)).0));
                arrays.push(decimal(rows, ID_HIGH_PRECISION, |r| split_id(get(r)).1));
            }
            Access::Timestamp(get, _) => {
                arrays.push(array::<Int64Type, _>(rows, |r| timestamp_to_i64(get(r))))
            }
            Access::U64(get, _) => {
                arrays.push(decimal(rows, U64_PRECISION, |r| i128::from(get(r))))
            }
            Access::U32(get, _) => arrays.push(array::<Int64Type, _>(rows, |r| i64::from(get(r)))),
            Access::U16(get, _) => arrays.push(array::<Int32Type, _>(rows, |r| i32::from(get(r)))),
            Access::EventType(get, _) => {
                arrays.push(array::<Int8Type, _>(rows, |r| get(r) as u8 as i8))
            }
        }
    }
    RecordBatch::try_new(schema(cols), arrays)
}

/// The values of physical column `i`, checked to be non-null `T`.
fn values<T: ArrowPrimitiveType>(batch: &RecordBatch, i: usize) -> Result<&[T::Native], String> {
    let name = column_name(batch, i);
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

fn column_name(batch: &RecordBatch, i: usize) -> String {
    batch.schema().field(i).name().clone()
}

/// Converts every value of physical column `i` with `f` and stores it with `set`, naming the
/// column and value when it does not fit the source type.
fn convert<T: ArrowPrimitiveType, V, R>(
    batch: &RecordBatch,
    i: usize,
    rows: &mut [R],
    f: impl Fn(T::Native) -> Option<V>,
    set: fn(&mut R, V),
) -> Result<(), String> {
    for (r, &v) in rows.iter_mut().zip(values::<T>(batch, i)?) {
        let converted = f(v).ok_or_else(|| {
            format!(
                "column {} holds {v:?}, outside the source field's range",
                column_name(batch, i)
            )
        })?;
        set(r, converted);
    }
    Ok(())
}

/// Joins the two physical columns `i` (low part) and `i + 1` (high part) of a `u128` into each
/// row with `join`, naming both columns and values when they do not form a `u128`.
fn join_pair<L: ArrowPrimitiveType, H: ArrowPrimitiveType, R>(
    batch: &RecordBatch,
    i: usize,
    rows: &mut [R],
    join: fn(L::Native, H::Native) -> Option<u128>,
    set: fn(&mut R, u128),
) -> Result<(), String> {
    let low = values::<L>(batch, i)?;
    let high = values::<H>(batch, i + 1)?;
    for ((r, &l), &h) in rows.iter_mut().zip(low).zip(high) {
        let v = join(l, h).ok_or_else(|| {
            format!(
                "columns {} = {l:?} and {} = {h:?} do not form a u128",
                column_name(batch, i),
                column_name(batch, i + 1)
            )
        })?;
        set(r, v);
    }
    Ok(())
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
                join_pair::<Decimal128Type, Int8Type, _>(batch, i, rows, join_u128, set)?;
                i += 2;
                continue;
            }
            Access::Id128(_, set) => {
                join_pair::<Int64Type, Decimal128Type, _>(batch, i, rows, join_id, set)?;
                i += 2;
                continue;
            }
            Access::Timestamp(_, set) => {
                convert::<Int64Type, _, _>(batch, i, rows, |v| u64::try_from(v).ok(), set)?
            }
            Access::U64(_, set) => {
                convert::<Decimal128Type, _, _>(batch, i, rows, |v| u64::try_from(v).ok(), set)?
            }
            Access::U32(_, set) => {
                convert::<Int64Type, _, _>(batch, i, rows, |v| u32::try_from(v).ok(), set)?
            }
            Access::U16(_, set) => {
                convert::<Int32Type, _, _>(batch, i, rows, |v| u16::try_from(v).ok(), set)?
            }
            Access::EventType(_, set) => {
                let to_type = |v: i8| u8::try_from(v).ok().and_then(event_type_from_u8);
                convert::<Int8Type, _, _>(batch, i, rows, to_type, set)?
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
        let mut expected: Vec<String> = "timestamp event_type ledger transfer_id transfer_id_e18 \
             amount amount_e38 pending_id pending_id_e18 user_data_128 user_data_128_e18 \
             user_data_64 user_data_32 timeout code flags transfer_timestamp"
            .split_whitespace()
            .map(String::from)
            .collect();
        for side in ["debit_account_", "credit_account_"] {
            for f in [
                "id",
                "id_e18",
                "debits_pending",
                "debits_pending_e38",
                "debits_posted",
                "debits_posted_e38",
                "credits_pending",
                "credits_pending_e38",
                "credits_posted",
                "credits_posted_e38",
                "flags",
            ] {
                expected.push(format!("{side}{f}"));
            }
        }
        assert_eq!(names(&TRANSFER_COLUMNS), expected);
    }

    #[test]
    fn accounts_columns_are_the_documented_ones_in_order() {
        let expected = "id id_e18 ledger code flags user_data_128 user_data_128_e18 \
                        user_data_64 user_data_32 timestamp first_seen_timestamp";
        assert_eq!(names(&ACCOUNT_COLUMNS).join(" "), expected);
    }

    #[test]
    fn u128_split_is_exact_at_the_bounds() {
        for v in [
            0,
            1,
            E38 - 1,
            E38,
            E38 + 1,
            2 * E38,
            3 * E38,
            u128::MAX - 1,
            u128::MAX,
        ] {
            let (low, high) = split_u128(v);
            assert_eq!(join_u128(low, high), Some(v), "{v}");
        }
        assert_eq!(split_u128(u128::MAX).1, 3);
        assert_eq!(join_u128(-1, 0), None);
        assert_eq!(join_u128(E38 as i128, 0), None);
        assert_eq!(join_u128(0, 4), None);
        // 3·10^38 + (10^38 − 1) is above u128::MAX.
        assert_eq!(join_u128(E38 as i128 - 1, 3), None);
    }

    #[test]
    fn id_split_is_exact_at_the_bounds() {
        for v in [
            0,
            1,
            E18 - 1,
            E18,
            E18 + 1,
            u128::from(u64::MAX),
            E38,
            u128::MAX - 1,
            u128::MAX,
        ] {
            let (low, high) = split_id(v);
            assert!((0..E18 as i64).contains(&low));
            assert_eq!(join_id(low, high), Some(v), "{v}");
        }
        assert_eq!(split_id(u128::MAX).1, (u128::MAX / E18) as i128);
        assert_eq!(join_id(-1, 0), None);
        assert_eq!(join_id(E18 as i64, 0), None);
        assert_eq!(join_id(0, -1), None);
        // One more than the largest high part overflows a u128.
        assert_eq!(join_id(0, (u128::MAX / E18) as i128 + 1), None);
    }

    #[test]
    fn every_column_is_described_in_the_format_document() {
        let doc = include_str!("../../schemas/lake.md");
        for name in names(&TRANSFER_COLUMNS)
            .into_iter()
            .chain(names(&ACCOUNT_COLUMNS))
        {
            assert!(
                doc.contains(&format!("`{name}`")),
                "schemas/lake.md does not describe column `{name}`"
            );
        }
    }
}
