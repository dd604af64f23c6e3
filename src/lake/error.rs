//! What can go wrong while operating on a lake, with what an operator needs to act on it.
//!
//! Every variant names the object (or location) involved: "the lake is broken" is useless at
//! 3 a.m., "transfers/date=2026-11-21/…parquet: row_count says 10 but holds 9" is not.

use object_store::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake location {location:?} is not usable: {reason}")]
    BadLocation { location: String, reason: String },

    #[error("object store operation on {path:?} failed")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error(
        "{path:?} is not in the store: the lake read at version {version} needs it, and it was \
         removed from its table by a later version and deleted by `ledgerlake vacuum` (time \
         travel reaches back only as far as the vacuum's retention)"
    )]
    Vacuumed { path: String, version: u64 },

    #[error("Parquet encoding or decoding of {path:?} failed")]
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

    #[error(
        "the lake at {location} is in format 1 (plain Parquet files); this ledgerlake writes \
         format 2 (Delta tables). Run `ledgerlake upgrade --lake {location}` first"
    )]
    Format1 { location: String },

    #[error("the Delta log of table {table:?} could not be read or written")]
    Log {
        table: &'static str,
        #[source]
        source: Box<delta_kernel::KernelError>,
    },

    #[error(
        "another exporter is writing this lake: version {version} of table {table:?} was \
         committed by {writer:?}, not by this process. Only one exporter may write a lake; stop \
         the other one (or point this one at its own lake)"
    )]
    AnotherWriter {
        table: &'static str,
        version: u64,
        writer: String,
    },

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

    /// Whether retrying the same operation may succeed: the object store was unreachable, timed
    /// out or answered with a server error (object_store reports those, after its own retries, as
    /// `Generic`), or an object vanished under a write. Everything else is permanent and fails at
    /// once: a corrupt or foreign lake, a conflicting write (a second exporter?), a refused
    /// request (credentials, permissions, preconditions), a bad location or configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            LakeError::Store { source, .. } => store_error_is_transient(source),
            LakeError::Log { source, .. } => kernel_error_is_transient(source),
            LakeError::BadLocation { .. }
            | LakeError::Parquet { .. }
            | LakeError::BadObjectName { .. }
            | LakeError::ClusterMismatch { .. }
            | LakeError::UnsupportedFormat { .. }
            | LakeError::Format1 { .. }
            | LakeError::AnotherWriter { .. }
            | LakeError::Corrupt { .. }
            | LakeError::MissingAccount { .. }
            | LakeError::Vacuumed { .. } => false,
        }
    }
}

/// A kernel error is transient when it wraps a transient object store error (the log could
/// not be read or written); schema, protocol and log content errors are permanent.
fn kernel_error_is_transient(error: &delta_kernel::KernelError) -> bool {
    match error {
        delta_kernel::KernelError::ObjectStore(e) => store_error_is_transient(e),
        delta_kernel::KernelError::IOError(_) => true,
        _ => false,
    }
}

/// object_store's classification: it maps HTTP statuses to variants (404 `NotFound`, 409
/// `AlreadyExists`, 412 `Precondition`, 401/403 `Unauthenticated`/`PermissionDenied`, …) and
/// reports connection errors, timeouts and 5xx that outlived its retries as `Generic`.
fn store_error_is_transient(error: &object_store::Error) -> bool {
    use object_store::Error as E;
    match error {
        E::Generic { .. } | E::NotFound { .. } | E::JoinError { .. } => true,
        E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::NotImplemented { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::UnknownConfigurationKey { .. } => false,
        // A variant added after this was written: not known to be safe to repeat.
        _ => false,
    }
}
