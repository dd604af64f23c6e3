//! What can go wrong reading a format-1 lake, each error naming the object involved (the same
//! rules as the lake's own errors, kept separate so that format 1 does not follow the current
//! format's error type as it changes).

use object_store::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Format1Error {
    #[error("object store operation on {path:?} failed")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error("Parquet encoding or decoding of {path:?} failed")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error(
        "object {path:?} does not follow the format-1 layout (expected e.g. \
         transfers/date=YYYY-MM-DD/<20-digit first ts>-<20-digit last ts>.parquet); \
         move it out of the lake"
    )]
    BadObjectName { path: String },

    #[error("{path:?} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },

    #[error("{path:?} has format version {found}, but it should be a format-1 file")]
    NotFormat1 { path: String, found: u32 },

    #[error(
        "the event at timestamp {event_timestamp} references account {account_id}, \
         which no committed accounts file records"
    )]
    MissingAccount {
        account_id: u128,
        event_timestamp: u64,
    },
}

impl Format1Error {
    pub(crate) fn store(path: &Path, source: object_store::Error) -> Self {
        Format1Error::Store {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn parquet(path: &Path, source: parquet::errors::ParquetError) -> Self {
        Format1Error::Parquet {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Format1Error::Corrupt {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}
