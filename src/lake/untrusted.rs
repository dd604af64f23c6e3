//! One lake object decoded from its bytes alone, as a reader meets it in a damaged or tampered
//! lake: a data file (Parquet footer, `ledgerlake.*` metadata, schema, rows), a Delta commit of
//! the chained log (its actions and `commitInfo`), the lake metadata file and a quarantine
//! record. Whatever the bytes, each function returns a value, a `LakeError` or a list of chain
//! problems, never a panic: the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`) drive these, the same code paths the readers and `verify` use.

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::chain::ChainProblem;
use super::columns::{ACCOUNT_COLUMNS, TRANSFER_COLUMNS};
use super::layout::Table;
use super::{chain, log, meta, parquet, quarantine, Lake, LakeError, LakeMeta, Quarantined};

/// What a data file decodes to: its rows and what its metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFile {
    pub rows: u64,
    pub cluster_id: u128,
    pub first_timestamp: u64,
    pub last_timestamp: u64,
}

/// Decodes a whole data file of `table` (the reader's path: footer, metadata, schema, rows).
pub fn decode_data_file(table: Table, bytes: &[u8]) -> Result<DecodedFile, LakeError> {
    let path = Path::from(format!("{}/untrusted.parquet", table.dir()));
    let bytes = Bytes::copy_from_slice(bytes);
    let meta = match table {
        Table::Transfers => parquet::decode(&TRANSFER_COLUMNS, table, bytes, &path)?.0,
        Table::Accounts | Table::SweptAccounts => {
            parquet::decode(&ACCOUNT_COLUMNS, table, bytes, &path)?.0
        }
    };
    Ok(DecodedFile {
        rows: meta.row_count,
        cluster_id: meta.cluster_id,
        first_timestamp: meta.first_timestamp,
        last_timestamp: meta.last_timestamp,
    })
}

/// Rows in a data file from its footer alone, through the ranged reader the listing uses (the
/// footer prefetch, then the metadata), over an in-memory object holding `bytes`. `size` is
/// the size the log claims (it may differ from the bytes' length in a damaged lake).
pub fn footer_rows(bytes: &[u8], size: u64) -> Result<u64, LakeError> {
    let store = Arc::new(InMemory::new());
    let path = Path::from("transfers/untrusted.parquet");
    let lake = Lake::from_store(store.clone() as Arc<dyn ObjectStore>, "memory://untrusted");
    futures::executor::block_on(async {
        store
            .put(&path, Bytes::copy_from_slice(bytes).into())
            .await
            .map_err(|e| LakeError::store(&path, e))?;
        lake.footer_rows(&path, size).await
    })
}

/// What the readers take from a commit's `commitInfo`: the commit time, the writer, and the
/// other tables' versions a transfers commit pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfoFields {
    pub timestamp_ms: i64,
    pub writer: Option<String>,
    pub pinned_versions: Option<(u64, u64)>,
}

/// The `commitInfo` fields of a commit's bytes, as the log reader takes them.
pub fn commit_info_fields(commit: &[u8]) -> CommitInfoFields {
    CommitInfoFields {
        timestamp_ms: log::commit_timestamp(commit),
        writer: log::writer_of(commit),
        pinned_versions: log::pins_in(commit).map(|p| (p.accounts, p.swept_accounts)),
    }
}

/// Checks commit `version` of `table` (its bytes) as `verify` does: every line a Delta action,
/// one `commitInfo.ledgerlake`, its link to the previous commit's digest, its `addedFiles`
/// against its `add` actions, every path inside the table. What is wrong is in the problems.
pub fn check_commit(
    table: Table,
    version: u64,
    commit: &[u8],
    previous_sha256: Option<&str>,
) -> Vec<ChainProblem> {
    chain::check_one_commit(table.dir(), version, commit, previous_sha256)
}

/// Parses the lake metadata file (`_ledgerlake.json`); `Err` says why it is corrupt.
pub fn decode_lake_meta(bytes: &[u8]) -> Result<LakeMeta, String> {
    meta::from_json(bytes)
}

/// Parses a quarantine record; `Err` says why it is corrupt.
pub fn decode_quarantined(bytes: &[u8]) -> Result<Quarantined, String> {
    quarantine::from_json(bytes)
}
