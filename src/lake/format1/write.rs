//! A format-1 writer, for the tests only (`cfg(test)` or the `testbed` feature): the code that
//! wrote format 1 (its Parquet settings, create-only puts, the accounts file before its
//! transfers twin, the metadata file), so that tests can build the lakes `ledgerlake upgrade`
//! turns into the current format. Nothing in the product writes format 1 any more.

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use super::columns::{self, Column, ACCOUNT_COLUMNS, TRANSFER_COLUMNS};
use super::layout::{self, Table};
use super::meta::{self, MetaFile};
use super::parquet::FileMeta;
use super::{Format1Error, Format1Lake, FORMAT_1};
use crate::lake::{AccountRecord, EventRow, Segment};

/// Format 1's writer settings (schemas/lake-format-1.md, "Parquet files").
fn writer_properties(meta: &FileMeta) -> WriterProperties {
    let zstd = ZstdLevel::try_new(3).expect("3 is a valid zstd level");
    let mut props = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_dictionary_enabled(true)
        .set_dictionary_page_size_limit(64 * 1024)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .set_key_value_metadata(Some(meta.to_key_values()));
    if meta.table == Table::Transfers {
        for c in ["timestamp", "transfer_timestamp", "transfer_id_lo"] {
            let col = ColumnPath::from(c);
            props = props
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
        }
        props = props.set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]));
    }
    props.build()
}

fn encode<R>(cols: &[Column<R>], rows: &[R], meta: &FileMeta) -> Result<Vec<u8>, Format1Error> {
    assert_eq!(meta.row_count, rows.len() as u64);
    let in_memory = Path::from(format!("(encoding {})", meta.table.dir()));
    let batch =
        columns::to_batch(cols, rows).map_err(|e| Format1Error::parquet(&in_memory, e.into()))?;
    let props = writer_properties(meta);
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))
        .map_err(|e| Format1Error::parquet(&in_memory, e))?;
    writer
        .write(&batch)
        .map_err(|e| Format1Error::parquet(&in_memory, e))?;
    writer
        .into_inner()
        .map_err(|e| Format1Error::parquet(&in_memory, e))
}

fn file_meta(table: Table, cluster_id: u128, range: (u64, u64), rows: usize) -> FileMeta {
    FileMeta {
        format_version: FORMAT_1,
        cluster_id,
        table,
        first_timestamp: range.0,
        last_timestamp: range.1,
        row_count: rows as u64,
    }
}

impl Format1Lake {
    /// Create-only put: `Ok(false)` if the object already exists.
    async fn put_create(&self, path: &Path, bytes: Vec<u8>) -> Result<bool, Format1Error> {
        let opts = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(Format1Error::store(path, e)),
        }
    }

    /// Binds the lake to `cluster_id` as format 1 (create-only); `false` if it was bound.
    pub async fn write_meta(&self, cluster_id: u128) -> Result<bool, Format1Error> {
        let meta = MetaFile {
            format_version: FORMAT_1,
            cluster_id,
        };
        self.put_create(&layout::meta_path(), meta::to_json(&meta))
            .await
    }

    /// Writes a segment as format 1 did: its accounts file (if it has new accounts), then its
    /// transfers file, both create-only; `false` if its transfers file existed. Panics on an
    /// empty, unsorted or midnight-straddling segment.
    pub async fn write_segment(
        &self,
        segment: &Segment,
        cluster_id: u128,
    ) -> Result<bool, Format1Error> {
        let events = &segment.events;
        assert!(!events.is_empty(), "a segment holds at least one event");
        assert!(events.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        let range = (events[0].timestamp, events[events.len() - 1].timestamp);
        let transfers_path = layout::segment_path(Table::Transfers, range.0, range.1);
        if !segment.new_accounts.is_empty() {
            self.write_accounts_file(&segment.new_accounts, cluster_id, range)
                .await?;
        }
        let rows: Vec<EventRow> = events.iter().map(EventRow::from_event).collect();
        let meta = file_meta(Table::Transfers, cluster_id, range, rows.len());
        let bytes = encode(&TRANSFER_COLUMNS, &rows, &meta)?;
        self.put_create(&transfers_path, bytes).await
    }

    /// An accounts file for the segment range `range` (create-only). Without its transfers
    /// twin it is what a crash between the two writes of a commit left: an orphan.
    pub async fn write_accounts_file(
        &self,
        accounts: &[AccountRecord],
        cluster_id: u128,
        range: (u64, u64),
    ) -> Result<bool, Format1Error> {
        let path = layout::segment_path(Table::Accounts, range.0, range.1);
        let meta = file_meta(Table::Accounts, cluster_id, range, accounts.len());
        let bytes = encode(&ACCOUNT_COLUMNS, accounts, &meta)?;
        self.put_create(&path, bytes).await
    }

    /// A swept accounts file (create-only): accounts in creation order, each recorded as of its
    /// creation. Panics on an empty page.
    pub async fn write_swept(
        &self,
        accounts: &[AccountRecord],
        cluster_id: u128,
    ) -> Result<bool, Format1Error> {
        assert!(
            !accounts.is_empty(),
            "a swept file holds at least one account"
        );
        let range = (
            accounts[0].timestamp,
            accounts[accounts.len() - 1].timestamp,
        );
        let path = layout::swept_path(range.0, range.1);
        let meta = file_meta(Table::SweptAccounts, cluster_id, range, accounts.len());
        let bytes = encode(&ACCOUNT_COLUMNS, accounts, &meta)?;
        self.put_create(&path, bytes).await
    }

    /// Any object, as is (for tests that plant foreign or damaged files).
    pub async fn put_raw(&self, path: &str, bytes: Vec<u8>) -> Result<(), Format1Error> {
        let path = Path::from(path);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| Format1Error::store(&path, e))
    }
}
