//! Parquet encoding and decoding of segment files: writer settings, the `ledgerlake.*`
//! key-value metadata, and the checks that a file read back is the file its name promises.

use std::collections::HashMap;
use std::mem::size_of;

use arrow::datatypes::DataType;
use bytes::Bytes;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use super::columns::{self, Column, ACCOUNT_COLUMNS, TRANSFER_COLUMNS};
use super::layout::Table;
use super::rows::{AccountRecord, EventRow};
use super::{LakeError, FORMAT_VERSION};
use crate::cdc::Event;

/// zstd level 3 is zstd's own default: most of the ratio of higher levels at several times
/// their speed, and decompression speed does not depend on the level. Files are written once,
/// on the export path, and read many times.
pub const ZSTD_LEVEL: i32 = 3;
/// Ledger, code, flags, event type and account ids repeat heavily within a segment.
pub const DICTIONARY_ENABLED: bool = true;
/// A column's dictionary stops growing (the rest of the column chunk is plain-encoded) past
/// this size: 8,192 distinct 8-byte values. Repetitive columns (ledger, code, flags, the ids of
/// busy accounts) stay far below it; near-unique ones (random ids, user data) stop paying for a
/// dictionary that only adds indices and hashing.
pub const DICTIONARY_PAGE_BYTES_MAX: usize = 64 * 1024;
/// Page-level min/max (and the column index) let DuckDB skip files and pages by timestamp or
/// id range without reading them.
pub const STATISTICS: EnabledStatistics = EnabledStatistics::Page;
/// One row group per file: the exporter already bounds segment size, and a single row group
/// means one footer and one read per column for a reader.
pub const MAX_ROW_GROUP_ROWS: Option<usize> = None;
/// Transfers columns that (nearly) only increase: a dictionary of all-distinct values only adds
/// indices, while delta encoding stores small differences. Measured on 10,000 typical events:
/// 31.1 → 18.6 bytes per event. Sequential or time-based transfer ids benefit too; random ones
/// cost no more than with plain encoding.
/// (Delta encoding applies to INT64 columns only; the decimal ids are left to the dictionary.)
pub const DELTA_COLUMNS: &[&str] = &["timestamp", "transfer_timestamp"];
/// Version 1 data pages: readable by every Parquet implementation, including old ones.
pub const WRITER_VERSION: WriterVersion = WriterVersion::PARQUET_1_0;

/// Rows a decode allocates room for before reading any (a file's claimed row count is not
/// trusted for the allocation).
pub const DECODE_ROWS_PREALLOCATED_MAX: u64 = 1 << 16;

pub const KEY_FORMAT_VERSION: &str = "ledgerlake.format_version";
pub const KEY_CLUSTER_ID: &str = "ledgerlake.cluster_id";
pub const KEY_TABLE: &str = "ledgerlake.table";
pub const KEY_FIRST_TIMESTAMP: &str = "ledgerlake.first_timestamp";
pub const KEY_LAST_TIMESTAMP: &str = "ledgerlake.last_timestamp";
pub const KEY_ROW_COUNT: &str = "ledgerlake.row_count";

/// The `ledgerlake.*` key-value metadata of a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub format_version: u32,
    pub cluster_id: u128,
    pub table: Table,
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub row_count: u64,
}

fn table_name(t: Table) -> &'static str {
    t.dir()
}

impl FileMeta {
    fn to_key_values(&self) -> Vec<KeyValue> {
        [
            (KEY_FORMAT_VERSION, self.format_version.to_string()),
            (KEY_CLUSTER_ID, self.cluster_id.to_string()),
            (KEY_TABLE, table_name(self.table).to_string()),
            (KEY_FIRST_TIMESTAMP, self.first_timestamp.to_string()),
            (KEY_LAST_TIMESTAMP, self.last_timestamp.to_string()),
            (KEY_ROW_COUNT, self.row_count.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| KeyValue::new(k.to_string(), v))
        .collect()
    }

    fn from_key_values(kvs: &[KeyValue]) -> Result<FileMeta, String> {
        let map: HashMap<&str, &str> = kvs
            .iter()
            .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_deref()?)))
            .collect();
        fn get<T: std::str::FromStr>(map: &HashMap<&str, &str>, key: &str) -> Result<T, String> {
            let v = map
                .get(key)
                .ok_or_else(|| format!("metadata {key} is missing"))?;
            v.parse()
                .map_err(|_| format!("metadata {key}={v:?} is not a number"))
        }
        let table = match map.get(KEY_TABLE).copied() {
            Some("transfers") => Table::Transfers,
            Some("accounts") => Table::Accounts,
            Some("swept_accounts") => Table::SweptAccounts,
            other => {
                return Err(format!(
                    "metadata {KEY_TABLE}={other:?} is not a lake table"
                ))
            }
        };
        Ok(FileMeta {
            format_version: get(&map, KEY_FORMAT_VERSION)?,
            cluster_id: get(&map, KEY_CLUSTER_ID)?,
            table,
            first_timestamp: get(&map, KEY_FIRST_TIMESTAMP)?,
            last_timestamp: get(&map, KEY_LAST_TIMESTAMP)?,
            row_count: get(&map, KEY_ROW_COUNT)?,
        })
    }
}

fn writer_properties(meta: &FileMeta) -> WriterProperties {
    let zstd = ZstdLevel::try_new(ZSTD_LEVEL).expect("ZSTD_LEVEL is a valid zstd level");
    let mut props = WriterProperties::builder()
        .set_writer_version(WRITER_VERSION)
        .set_compression(Compression::ZSTD(zstd))
        .set_dictionary_enabled(DICTIONARY_ENABLED)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES_MAX)
        .set_statistics_enabled(STATISTICS)
        .set_max_row_group_row_count(MAX_ROW_GROUP_ROWS)
        .set_max_row_group_bytes(None)
        .set_key_value_metadata(Some(meta.to_key_values()));
    if meta.table == Table::Transfers {
        for &c in DELTA_COLUMNS {
            let col = ColumnPath::from(c);
            props = props
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
        }
        // Declares what commit asserts, so engines may use it (column 0 is `timestamp`).
        props = props.set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]));
    }
    props.build()
}

/// An encoded data file and the rows it holds (for the statistics of its add action).
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub batch: arrow::array::RecordBatch,
}

fn encode_file<R>(cols: &[Column<R>], rows: &[R], meta: &FileMeta) -> Result<Encoded, LakeError> {
    assert_eq!(meta.row_count, rows.len() as u64);
    let in_memory = Path::from(format!("(encoding {})", table_name(meta.table)));
    let batch =
        columns::to_batch(cols, rows).map_err(|e| LakeError::parquet(&in_memory, e.into()))?;
    let props = writer_properties(meta);
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))
        .map_err(|e| LakeError::parquet(&in_memory, e))?;
    writer
        .write(&batch)
        .map_err(|e| LakeError::parquet(&in_memory, e))?;
    let bytes = writer
        .into_inner()
        .map_err(|e| LakeError::parquet(&in_memory, e))?;
    Ok(Encoded { bytes, batch })
}

/// Asserts what a segment's events must satisfy; these are exporter bugs, not data errors.
pub(crate) fn assert_segment_events(events: &[Event]) {
    assert!(!events.is_empty(), "a segment holds at least one event");
    for w in events.windows(2) {
        assert!(
            w[0].timestamp < w[1].timestamp,
            "segment events must have strictly increasing timestamps: {} then {}",
            w[0].timestamp,
            w[1].timestamp
        );
    }
    let (first, last) = (events[0].timestamp, events[events.len() - 1].timestamp);
    assert_eq!(
        crate::timefmt::date_partition(first),
        crate::timefmt::date_partition(last),
        "a segment must not straddle UTC midnight: {first}..{last}"
    );
}

/// The transfers file of a segment: one row per event. Panics on an empty, unsorted or
/// midnight-straddling slice (see `Lake::commit`).
#[cfg(any(test, feature = "testbed"))]
pub fn encode_transfers(events: &[Event], cluster_id: u128) -> Result<Vec<u8>, LakeError> {
    Ok(encode_transfers_file(events, cluster_id)?.bytes)
}

pub(crate) fn encode_transfers_file(
    events: &[Event],
    cluster_id: u128,
) -> Result<Encoded, LakeError> {
    assert_segment_events(events);
    let rows: Vec<EventRow> = events.iter().map(EventRow::from_event).collect();
    let meta = FileMeta {
        format_version: FORMAT_VERSION,
        cluster_id,
        table: Table::Transfers,
        first_timestamp: events[0].timestamp,
        last_timestamp: events[events.len() - 1].timestamp,
        row_count: rows.len() as u64,
    };
    encode_file(&TRANSFER_COLUMNS, &rows, &meta)
}

/// A transfers file of already-decoded rows (a compaction's merged file): the same columns,
/// writer settings and metadata as a segment's. Panics on empty or unsorted rows.
pub(crate) fn encode_transfer_rows_file(
    rows: &[EventRow],
    cluster_id: u128,
) -> Result<Encoded, LakeError> {
    assert!(
        !rows.is_empty(),
        "a transfers file holds at least one event"
    );
    assert!(
        rows.windows(2).all(|w| w[0].timestamp < w[1].timestamp),
        "transfers rows in strictly increasing timestamp order"
    );
    let meta = FileMeta {
        format_version: FORMAT_VERSION,
        cluster_id,
        table: Table::Transfers,
        first_timestamp: rows[0].timestamp,
        last_timestamp: rows[rows.len() - 1].timestamp,
        row_count: rows.len() as u64,
    };
    encode_file(&TRANSFER_COLUMNS, rows, &meta)
}

/// The accounts file of the segment `first_ts..=last_ts`.
#[cfg(any(test, feature = "testbed"))]
pub fn encode_accounts(
    accounts: &[AccountRecord],
    cluster_id: u128,
    first_ts: u64,
    last_ts: u64,
) -> Result<Vec<u8>, LakeError> {
    Ok(encode_accounts_file(accounts, cluster_id, first_ts, last_ts)?.bytes)
}

pub(crate) fn encode_accounts_file(
    accounts: &[AccountRecord],
    cluster_id: u128,
    first_ts: u64,
    last_ts: u64,
) -> Result<Encoded, LakeError> {
    assert!(first_ts <= last_ts);
    let meta = FileMeta {
        format_version: FORMAT_VERSION,
        cluster_id,
        table: Table::Accounts,
        first_timestamp: first_ts,
        last_timestamp: last_ts,
        row_count: accounts.len() as u64,
    };
    encode_file(&ACCOUNT_COLUMNS, accounts, &meta)
}

/// A swept accounts file: `accounts` in creation-timestamp order, `first_ts..=last_ts` their
/// first and last creation timestamps.
pub fn encode_swept_accounts(
    accounts: &[AccountRecord],
    cluster_id: u128,
) -> Result<Encoded, LakeError> {
    assert!(
        !accounts.is_empty(),
        "a swept file holds at least one account"
    );
    let meta = FileMeta {
        format_version: FORMAT_VERSION,
        cluster_id,
        table: Table::SweptAccounts,
        first_timestamp: accounts[0].timestamp,
        last_timestamp: accounts[accounts.len() - 1].timestamp,
        row_count: accounts.len() as u64,
    };
    encode_file(&ACCOUNT_COLUMNS, accounts, &meta)
}

/// Rough in-memory bytes per buffered event: the `Event` itself plus its Arrow row while the
/// segment is being encoded (the Parquet output is several times smaller).
pub fn estimated_row_bytes() -> usize {
    let arrow_row: usize = columns::schema(&TRANSFER_COLUMNS)
        .fields()
        .iter()
        .map(|f| f.data_type().primitive_width().unwrap_or(8))
        .sum();
    size_of::<Event>() + arrow_row
}

/// Decodes a whole segment file of `table`, checking its schema and metadata.
pub fn decode<R: Default>(
    cols: &[Column<R>],
    table: Table,
    bytes: Bytes,
    path: &Path,
) -> Result<(FileMeta, Vec<R>), LakeError> {
    decode_projected(cols, None, table, bytes, path)
}

/// [`decode`], reading only the logical columns named in `keep` (every name one of `cols`; the
/// other fields of each row stay at their defaults). The footer, the metadata and the whole
/// schema are checked as by [`decode`]; the other columns' pages are never decoded.
pub fn decode_projected<R: Default>(
    cols: &[Column<R>],
    keep: Option<&[&str]>,
    table: Table,
    bytes: Bytes,
    path: &Path,
) -> Result<(FileMeta, Vec<R>), LakeError> {
    if let Some(keep) = keep {
        for name in keep {
            assert!(
                cols.iter().any(|c| c.name == *name),
                "a projection names column {name}, which the table does not have"
            );
        }
    }
    // The parquet crate's decoder can panic on some damaged files (fuzzing found a shift past
    // 63 bits in its `BitReader::get_vlq_int`, on a crafted DELTA_BINARY_PACKED page header, with
    // overflow checks on). A damaged file is an operating error, never a crash of the reader:
    // such a panic becomes an error naming the file.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_unguarded(cols, keep, table, bytes, path)
    })) {
        Ok(decoded) => decoded,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            Err(LakeError::corrupt(
                path,
                format!("the Parquet decoder failed on this file ({what})"),
            ))
        }
    }
}

fn decode_unguarded<R: Default>(
    cols: &[Column<R>],
    keep: Option<&[&str]>,
    table: Table,
    bytes: Bytes,
    path: &Path,
) -> Result<(FileMeta, Vec<R>), LakeError> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| LakeError::parquet(path, e))?;
    let file_meta = builder.metadata().file_metadata();
    let meta = FileMeta::from_key_values(file_meta.key_value_metadata().map_or(&[], |v| v))
        .map_err(|reason| LakeError::corrupt(path, reason))?;
    if meta.format_version > FORMAT_VERSION {
        return Err(LakeError::UnsupportedFormat {
            found: meta.format_version,
            supported: FORMAT_VERSION,
        });
    }
    if meta.table != table {
        return Err(LakeError::corrupt(
            path,
            format!("holds the {} table", table_name(meta.table)),
        ));
    }
    if file_meta.num_rows() as u64 != meta.row_count {
        return Err(LakeError::corrupt(
            path,
            format!(
                "{KEY_ROW_COUNT} is {} but the file holds {} rows",
                meta.row_count,
                file_meta.num_rows()
            ),
        ));
    }
    check_schema(cols, builder.schema(), path)?;
    // The schema is flat and exactly `cols`' (checked), so a logical column's physical columns
    // are the next `width` leaves, and the projected batches keep the file's order.
    let (cols, builder): (Vec<Column<R>>, _) = match keep {
        None => (cols.to_vec(), builder),
        Some(keep) => {
            let mut leaves = Vec::new();
            let mut kept = Vec::new();
            let mut leaf = 0;
            for c in cols {
                let width = c.access.width();
                if keep.contains(&c.name) {
                    leaves.extend(leaf..leaf + width);
                    kept.push(*c);
                }
                leaf += width;
            }
            let mask = ProjectionMask::roots(builder.parquet_schema(), leaves);
            (kept, builder.with_projection(mask))
        }
    };

    let reader = builder.build().map_err(|e| LakeError::parquet(path, e))?;
    // The row count comes from the file: a damaged or crafted footer may claim any number, so
    // it only sizes the first allocation, up to a bound; the rows read decide the rest.
    let mut rows = Vec::with_capacity(meta.row_count.min(DECODE_ROWS_PREALLOCATED_MAX) as usize);
    for batch in reader {
        let batch = batch.map_err(|e| LakeError::parquet(path, e.into()))?;
        columns::from_batch(&cols, &batch, &mut rows).map_err(|r| LakeError::corrupt(path, r))?;
    }
    Ok((meta, rows))
}

/// The file's Arrow schema must be exactly the table's: same names, order and types.
pub fn check_schema<R>(
    cols: &[Column<R>],
    found: &arrow::datatypes::Schema,
    path: &Path,
) -> Result<(), LakeError> {
    let expected = columns::schema(cols);
    let describe = |s: &arrow::datatypes::Schema| -> Vec<(String, DataType)> {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    let (want, got) = (describe(&expected), describe(found));
    if want != got {
        let diff = want
            .iter()
            .zip(&got)
            .find(|(w, g)| w != g)
            .map(|(w, g)| format!("expected column {} {}, found {} {}", w.0, w.1, g.0, g.1))
            .unwrap_or_else(|| format!("expected {} columns, found {}", want.len(), got.len()));
        return Err(LakeError::corrupt(
            path,
            format!("unexpected schema: {diff}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_meta_round_trips() {
        let meta = FileMeta {
            format_version: FORMAT_VERSION,
            cluster_id: u128::MAX,
            table: Table::Accounts,
            first_timestamp: 1,
            last_timestamp: u64::MAX,
            row_count: 3,
        };
        assert_eq!(FileMeta::from_key_values(&meta.to_key_values()), Ok(meta));
        assert!(FileMeta::from_key_values(&[]).is_err());
    }

    #[test]
    fn a_projected_decode_reads_the_named_columns_exactly_and_leaves_the_rest_default() {
        let state = |id: u128, x: u128| crate::lake::rows::AccountState {
            id,
            debits_pending: x,
            debits_posted: x + 1,
            credits_pending: x + 2,
            credits_posted: u128::MAX - x,
            flags: 3,
        };
        let rows: Vec<EventRow> = (0..300u64)
            .map(|i| {
                let mut r = EventRow {
                    timestamp: 1_000 + i,
                    ledger: 7 + i as u32,
                    debit_account: state(u128::MAX - u128::from(i), u128::from(i) << 70),
                    credit_account: state(u128::from(i) * 1_000_000_000_000_000_007, 5),
                    ..Default::default()
                };
                r.transfer.id = u128::MAX - u128::from(i) * 3;
                r.transfer.amount = u128::from(i) << 100;
                r.transfer.pending_id = u128::from(i);
                r.transfer.user_data_64 = u64::MAX - i;
                r.transfer.timeout = u32::MAX;
                r.transfer.code = u16::MAX;
                r.transfer.flags = 1 << 8;
                r.transfer.timestamp = 1_000 + i;
                r
            })
            .collect();
        let file = encode_transfer_rows_file(&rows, 9).unwrap();
        let path = Path::from("t.parquet");
        let bytes = Bytes::from(file.bytes);
        let keep = &columns::TRANSFER_COLUMNS_WITHOUT_ACCOUNT_STATES;
        let (meta, got) = decode_projected(
            &TRANSFER_COLUMNS,
            Some(keep),
            Table::Transfers,
            bytes.clone(),
            &path,
        )
        .unwrap();
        let (_, whole) = decode(&TRANSFER_COLUMNS, Table::Transfers, bytes, &path).unwrap();
        assert_eq!(meta.row_count, 300);
        assert_eq!(whole, rows);
        for (g, r) in got.iter().zip(&rows) {
            let ids_only = |s: &crate::lake::rows::AccountState| crate::lake::rows::AccountState {
                id: s.id,
                ..Default::default()
            };
            let expected = EventRow {
                debit_account: ids_only(&r.debit_account),
                credit_account: ids_only(&r.credit_account),
                ..*r
            };
            assert_eq!(*g, expected);
        }
        assert_eq!(got.len(), rows.len());
    }

    #[test]
    #[should_panic(expected = "which the table does not have")]
    fn a_projection_of_an_unknown_column_is_a_programmer_error() {
        let _ = decode_projected(
            &TRANSFER_COLUMNS,
            Some(&["no_such_column"]),
            Table::Transfers,
            Bytes::new(),
            &Path::from("t.parquet"),
        );
    }

    #[test]
    fn estimated_row_bytes_is_plausible() {
        // 5 ids as INT64 + decimal(21) (8 + 16 bytes) + 9 amounts/balances as decimal(38) + byte
        // (16 + 1) + 1 decimal(20) (16) + 2 timestamps and 3 u32 as INT64 (8) + 4 u16 as INT32
        // (4) + the event type (1) = 120 + 153 + 16 + 40 + 16 + 1 = 346 bytes, plus the Event.
        assert_eq!(estimated_row_bytes(), size_of::<Event>() + 346);
    }
}
