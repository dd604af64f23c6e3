//! The lake: three Delta Lake tables of Parquet files on an object store (format 2, specified in
//! schemas/lake.md), from which every CDC event can be rebuilt exactly.
//!
//! Commit protocol: a segment's accounts file is written and committed to the `accounts` log
//! first, then its transfers file to the `transfers` log; the transfers commit is the commit
//! point, and it records the consumer position. An accounts file whose transfers twin never
//! reached the log (a crash between the two commits) is an orphan, removed from the log when the
//! next exporter session starts. Accounts recorded by the account sweep are in their own table.
//!
//! One file per concern: `log` is the Delta log (through delta_kernel), `commit` writes
//! segments, `listing` is what the logs say is committed, `resume` is what an exporter session
//! starts from, `read` decodes and checks data files, `meta` binds the lake to a cluster,
//! `quarantine` and `swept` are the two side tables, `dedupe` merges an account's records.

mod audit_scan;
pub mod chain;
mod columns;
mod commit;
mod compact;
pub mod dedupe;
mod error;
pub mod format1;
mod layout;
mod listing;
mod log;
mod meta;
mod parquet;
mod quarantine;
mod read;
mod reader;
mod resume;
#[cfg(test)]
mod resume_tests;
mod rows;
mod scan;
pub mod store;
mod swept;
#[cfg(test)]
mod tests;
pub mod untrusted;
mod vacuum;

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::cdc::Event;

pub use audit_scan::{AuditedFileMeta, AuditedSegment};
pub use compact::{
    start_compactor, CompactOptions, CompactReport, Compactor, MergeDone, TEST_KILL_AT_ENV,
};
pub use dedupe::{dedupe_accounts, AccountBook, AccountDisagreement};
pub use error::LakeError;
pub use layout::Table;
pub use log::{TableVersion, CHECKPOINT_INTERVAL_COMMITS, TOMBSTONE_RETENTION};
pub use meta::LakeMeta;
pub use parquet::estimated_row_bytes;
/// Encoding without committing, for the codec benchmarks and tests.
#[cfg(any(test, feature = "testbed"))]
pub use parquet::{encode_accounts, encode_transfers};
pub use quarantine::{QuarantineInfo, Quarantined};
pub use resume::ResumeState;
pub use rows::{AccountRecord, AccountState, EventRow};
pub use swept::SweptInfo;
pub use vacuum::{
    VacuumOptions, VacuumReport, VacuumedCheckpoint, VacuumedFile, VacuumedTable,
    VACUUM_RECORD_FILE,
};

/// The lake format this code writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;

/// The Arrow schema of a table's data files (without the `date` partition column).
pub(crate) fn table_arrow_schema(table: layout::Table) -> arrow::datatypes::SchemaRef {
    match table {
        layout::Table::Transfers => columns::schema(&columns::TRANSFER_COLUMNS),
        layout::Table::Accounts | layout::Table::SweptAccounts => {
            columns::schema(&columns::ACCOUNT_COLUMNS)
        }
    }
}

/// The sealed contents of one segment, as the exporter hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub events: Vec<Event>,
    pub new_accounts: Vec<AccountRecord>,
}

#[cfg(any(test, feature = "testbed"))]
impl Segment {
    /// A segment of `events` that records each account the first time `known` sees it, as
    /// the exporter does (an id already in `known`, say swept, is not recorded again). For
    /// tests and benchmarks that write lakes without the exporter.
    pub fn recording_first_seen(
        events: Vec<Event>,
        known: &mut std::collections::HashSet<u128>,
    ) -> Segment {
        let mut new_accounts = Vec::new();
        for e in &events {
            for a in [&e.debit_account, &e.credit_account] {
                if known.insert(a.id) {
                    new_accounts.push(AccountRecord::from_event_account(a, e.ledger, e.timestamp));
                }
            }
        }
        Segment {
            events,
            new_accounts,
        }
    }
}

/// Rows in one segment (see `Lake::segment_counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentCounts {
    pub events: u64,
    pub accounts: u64,
}

/// A committed segment. Paths are relative to the lake root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub date: String,
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub transfers_path: Path,
    pub accounts_path: Option<Path>,
    pub transfers_bytes: u64,
    pub accounts_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written now; `bytes` is the size of the transfers and accounts files together.
    Committed { bytes: u64 },
    /// The transfers file of this segment already existed: it was committed before.
    AlreadyCommitted,
}

/// An open lake. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Lake {
    /// Rooted at the lake: every path below is relative to the lake root.
    store: Arc<dyn ObjectStore>,
    location: String,
    /// The Delta log of the three tables.
    log: log::Log,
    /// The three tables exist and the lake is bound (see `ensure_tables`).
    tables_ready: std::sync::atomic::AtomicBool,
    /// Read the lake as it stood at this `transfers` table version (see `at_version`).
    as_of: Option<u64>,
}

impl Lake {
    /// Opens the lake at `location`: a directory (plain path or `file:///dir`, created if
    /// missing), `s3://bucket/prefix` (configured from the `AWS_*` environment, including
    /// `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for S3-compatible servers), `memory://` (a
    /// fresh in-memory lake), or any other URL `object_store` understands.
    pub async fn open(location: &str) -> Result<Lake, LakeError> {
        let opened = store::open_store(location)?;
        Ok(Lake {
            store: opened.store,
            location: opened.display,
            log: log::Log::new(opened.base, opened.root),
            tables_ready: Default::default(),
            as_of: None,
        })
    }

    /// A lake over an already-built store, rooted at the lake (`location` is for display and
    /// must not contain secrets). The store must list in lexical order, as object stores and
    /// `InMemory` do (the Delta log relies on it); a local directory goes through `open`.
    pub fn from_store(store: Arc<dyn ObjectStore>, location: impl Into<String>) -> Lake {
        let root = url::Url::parse("memory:///").expect("a valid URL");
        Lake {
            log: log::Log::new(store.clone(), root),
            store,
            location: location.into(),
            tables_ready: Default::default(),
            as_of: None,
        }
    }

    /// This lake as it stood at version `version` of its `transfers` table (time travel): every
    /// read sees that version's files, the accounts files of its segments and the swept files
    /// committed by then. Such a lake is read-only: committing to it is a programmer error.
    pub fn at_version(mut self, version: u64) -> Lake {
        self.as_of = Some(version);
        self
    }

    /// This lake, creating its tables with `retention` as their tombstone retention instead of
    /// `TOMBSTONE_RETENTION` (tests and benchmarks model an hour of a live stream in seconds;
    /// tables that exist keep theirs).
    pub fn with_tombstone_retention(mut self, retention: std::time::Duration) -> Lake {
        self.log.set_tombstone_retention(retention);
        self
    }

    /// The `transfers` version this lake is read at, if not the latest.
    pub fn version(&self) -> Option<u64> {
        self.as_of
    }

    /// Where the lake is, for display: never contains a password or a query value (see
    /// `crate::secret`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every object under `dir`, or under the lake root with `None`.
    async fn list(&self, dir: Option<&Path>) -> Result<Vec<ObjectMeta>, LakeError> {
        let root = Path::default();
        self.store
            .list(dir)
            .try_collect()
            .await
            .map_err(|e| LakeError::store(dir.unwrap_or(&root), e))
    }

    async fn get(&self, path: &Path) -> Result<Bytes, LakeError> {
        let result = self
            .store
            .get(path)
            .await
            .map_err(|e| match (e, self.as_of) {
                // Read at an earlier version, a file removed since may have been vacuumed.
                (object_store::Error::NotFound { .. }, Some(version)) => LakeError::Vacuumed {
                    path: path.to_string(),
                    version,
                },
                (e, _) => LakeError::store(path, e),
            })?;
        result.bytes().await.map_err(|e| LakeError::store(path, e))
    }

    /// Create-only put: `Ok(false)` if the object already exists.
    async fn put_create(&self, path: &Path, bytes: Vec<u8>) -> Result<bool, LakeError> {
        let opts = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(LakeError::store(path, e)),
        }
    }

    async fn exists(&self, path: &Path) -> Result<bool, LakeError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(LakeError::store(path, e)),
        }
    }
}
