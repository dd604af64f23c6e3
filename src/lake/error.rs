//! What can go wrong while operating on a lake, with what an operator needs to act on it.
//!
//! Every variant names the object (or location) involved: "the lake is broken" is useless at
//! 3 a.m., "transfers/date=2026-11-21/…parquet: row_count says 10 but holds 9" is not.

use object_store::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake location {location:?} is not usable: {reason}")]
    BadLocation { location: String, reason: String },

    #[error("object store operation on {path:?} failed: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error("Parquet encoding or decoding of {path:?} failed: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error(
        "object {path:?} does not follow the lake layout (expected e.g. \
         transfers/date=YYYY-MM-DD/<20-digit first ts>-<20-digit last ts>.parquet); \
         move it out of the lake"
    )]
    BadObjectName { path: String },

    #[error(
        "the lake belongs to TigerBeetle cluster {lake}, not to cluster {requested}; \
         use a separate lake for each cluster"
    )]
    ClusterMismatch { lake: u128, requested: u128 },

    #[error(
        "the lake has format version {found}, this ledgerlake supports up to {supported}; \
         upgrade ledgerlake"
    )]
    UnsupportedFormat { found: u32, supported: u32 },

    #[error("{path:?} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },

    #[error(
        "the event at timestamp {event_timestamp} references account {account_id}, \
         which no committed accounts file records"
    )]
    MissingAccount {
        account_id: u128,
        event_timestamp: u64,
    },
}

impl LakeError {
    pub(crate) fn store(path: &Path, source: object_store::Error) -> Self {
        LakeError::Store {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn parquet(path: &Path, source: parquet::errors::ParquetError) -> Self {
        LakeError::Parquet {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        LakeError::Corrupt {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}
