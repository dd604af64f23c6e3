//! The lake: an immutable, create-only set of Parquet segment files on an object store, from
//! which every CDC event can be rebuilt exactly. The format is specified in schemas/lake.md.
//!
//! Commit protocol: a segment's accounts file is written first, then its transfers file; the
//! transfers file is the commit point. Both writes are create-only, so a retried commit can
//! never alter a committed segment, and an accounts file without its transfers twin (a crash
//! between the two writes) is not part of the lake until `remove_orphan_accounts` deletes it.
//! Accounts recorded by the exporter's account sweep are in their own table (`swept`).
//!
//! One file per concern: `commit` writes segments, `listing` lists and parses what is committed,
//! `resume` is what an exporter session starts from, `read` decodes and checks segments, `meta`
//! binds the lake to a cluster, `quarantine` and `swept` are the two side tables.

mod audit_scan;
pub mod chain;
mod columns;
mod commit;
mod error;
mod layout;
mod listing;
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
mod store;
mod swept;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::cdc::Event;

pub use audit_scan::{AuditedFileMeta, AuditedSegment};
pub use error::LakeError;
pub use meta::LakeMeta;
pub use parquet::estimated_row_bytes;
/// Encoding without committing, for the codec benchmarks and tests.
#[cfg(any(test, feature = "testbed"))]
pub use parquet::{encode_accounts, encode_transfers};
pub use quarantine::{QuarantineInfo, Quarantined};
pub use resume::ResumeState;
pub use rows::{AccountRecord, AccountState, EventRow};
pub use swept::SweptInfo;

/// The lake format this code writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The sealed contents of one segment, as the exporter hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub events: Vec<Event>,
    pub new_accounts: Vec<AccountRecord>,
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
}

impl Lake {
    /// Opens the lake at `location`: a directory (plain path or `file:///dir`, created if
    /// missing), `s3://bucket/prefix` (configured from the `AWS_*` environment, including
    /// `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for S3-compatible servers), `memory://` (a
    /// fresh in-memory lake), or any other URL `object_store` understands.
    pub async fn open(location: &str) -> Result<Lake, LakeError> {
        let opened = store::open_store(location)?;
        Ok(Lake::from_store(opened.store, opened.display))
    }

    /// A lake over an already-built store, rooted at the lake (`location` is for display and
    /// must not contain secrets).
    pub fn from_store(store: Arc<dyn ObjectStore>, location: impl Into<String>) -> Lake {
        Lake {
            store,
            location: location.into(),
        }
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
            .map_err(|e| LakeError::store(path, e))?;
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

    async fn delete(&self, path: &Path) -> Result<(), LakeError> {
        self.store
            .delete(path)
            .await
            .map_err(|e| LakeError::store(path, e))
    }
}
