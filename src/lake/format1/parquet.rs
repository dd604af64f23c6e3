//! Decoding format-1 Parquet files: the `ledgerlake.*` key-value metadata, and the checks that
//! a file read back is the file its name promises (format version, table, row count, schema).

use std::collections::HashMap;

use arrow::datatypes::DataType;
use bytes::Bytes;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;

use super::columns::{self, Column};
use super::layout::Table;
use super::{Format1Error, FORMAT_1};

pub const KEY_FORMAT_VERSION: &str = "ledgerlake.format_version";
pub const KEY_CLUSTER_ID: &str = "ledgerlake.cluster_id";
pub const KEY_TABLE: &str = "ledgerlake.table";
pub const KEY_FIRST_TIMESTAMP: &str = "ledgerlake.first_timestamp";
pub const KEY_LAST_TIMESTAMP: &str = "ledgerlake.last_timestamp";
pub const KEY_ROW_COUNT: &str = "ledgerlake.row_count";

/// The `ledgerlake.*` key-value metadata of a format-1 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub format_version: u32,
    pub cluster_id: u128,
    pub table: Table,
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub row_count: u64,
}

impl FileMeta {
    #[cfg(any(test, feature = "testbed"))]
    pub fn to_key_values(&self) -> Vec<KeyValue> {
        [
            (KEY_FORMAT_VERSION, self.format_version.to_string()),
            (KEY_CLUSTER_ID, self.cluster_id.to_string()),
            (KEY_TABLE, self.table.dir().to_string()),
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
        let table = map
            .get(KEY_TABLE)
            .copied()
            .and_then(Table::of_dir)
            .ok_or_else(|| {
                format!(
                    "metadata {KEY_TABLE}={:?} is not a lake table",
                    map.get(KEY_TABLE)
                )
            })?;
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

/// Decodes a whole format-1 file of `table`, checking its schema and metadata.
pub fn decode<R: Default>(
    cols: &[Column<R>],
    table: Table,
    bytes: Bytes,
    path: &Path,
) -> Result<(FileMeta, Vec<R>), Format1Error> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| Format1Error::parquet(path, e))?;
    let file_meta = builder.metadata().file_metadata();
    let meta = FileMeta::from_key_values(file_meta.key_value_metadata().map_or(&[], |v| v))
        .map_err(|reason| Format1Error::corrupt(path, reason))?;
    if meta.format_version != FORMAT_1 {
        return Err(Format1Error::NotFormat1 {
            path: path.to_string(),
            found: meta.format_version,
        });
    }
    if meta.table != table {
        return Err(Format1Error::corrupt(
            path,
            format!("holds the {} table", meta.table.dir()),
        ));
    }
    if file_meta.num_rows() as u64 != meta.row_count {
        return Err(Format1Error::corrupt(
            path,
            format!(
                "{KEY_ROW_COUNT} is {} but the file holds {} rows",
                meta.row_count,
                file_meta.num_rows()
            ),
        ));
    }
    check_schema(cols, builder.schema(), path)?;

    let reader = builder
        .build()
        .map_err(|e| Format1Error::parquet(path, e))?;
    let mut rows = Vec::with_capacity(meta.row_count as usize);
    for batch in reader {
        let batch = batch.map_err(|e| Format1Error::parquet(path, e.into()))?;
        columns::from_batch(cols, &batch, &mut rows).map_err(|r| Format1Error::corrupt(path, r))?;
    }
    Ok((meta, rows))
}

/// The file's Arrow schema must be exactly the table's: same names, order and types.
pub fn check_schema<R>(
    cols: &[Column<R>],
    found: &arrow::datatypes::Schema,
    path: &Path,
) -> Result<(), Format1Error> {
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
        return Err(Format1Error::corrupt(
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
            format_version: FORMAT_1,
            cluster_id: u128::MAX,
            table: Table::Accounts,
            first_timestamp: 1,
            last_timestamp: u64::MAX,
            row_count: 3,
        };
        assert_eq!(FileMeta::from_key_values(&meta.to_key_values()), Ok(meta));
        assert!(FileMeta::from_key_values(&[]).is_err());
    }
}
