//! Format 1 of the lake (schemas/lake-format-1.md: plain Parquet files with unsigned columns,
//! the transfers file the commit point, no log), kept readable so that `ledgerlake upgrade`
//! can turn such a lake into the current format; and, for the tests only, writable.
//!
//! Everything here is a private copy of what format 1 was (its columns, names, checks and
//! metadata file), independent of the current format's code, which is free to change.
//! `Format1Lake` lists and decodes a format-1 lake with every check the format-1 readers made;
//! `detect` reads the format version whatever it is, and `prepare_tables` readies the current
//! format's tables for the replay while the lake still says format 1.

mod columns;
mod error;
mod layout;
mod listing;
mod meta;
mod parquet;
mod read;
#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "testbed"))]
mod write;

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::{Lake, LakeError, Table};
use crate::cdc::EventType;

pub use error::Format1Error;
pub use listing::{Format1Listing, Format1Segment, Format1Swept};
pub use meta::MetaFile;
pub use read::check_first_seen;

/// The format version this module reads.
pub const FORMAT_1: u32 = 1;

/// A lake read (and, in tests, written) as format 1. Cheap to clone.
#[derive(Clone)]
pub struct Format1Lake {
    /// Rooted at the lake.
    store: Arc<dyn ObjectStore>,
    location: String,
}

impl Format1Lake {
    /// The same store `lake` uses: both views of one lake.
    pub fn of(lake: &Lake) -> Format1Lake {
        Format1Lake {
            store: lake.store.clone(),
            location: lake.location().to_string(),
        }
    }

    /// Where the lake is, for display (never contains a secret: it is the `Lake`'s).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every object under `dir`.
    async fn list(&self, dir: &Path) -> Result<Vec<ObjectMeta>, Format1Error> {
        self.store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| Format1Error::store(dir, e))
    }

    async fn get(&self, path: &Path) -> Result<Bytes, Format1Error> {
        let result = self
            .store
            .get(path)
            .await
            .map_err(|e| Format1Error::store(path, e))?;
        result
            .bytes()
            .await
            .map_err(|e| Format1Error::store(path, e))
    }

    /// Deletes one object; one already gone (a rerun after a crash) is not an error.
    pub async fn delete(&self, path: &Path) -> Result<(), Format1Error> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Format1Error::store(path, e)),
        }
    }
}

/// The format version recorded in the lake's `_ledgerlake.json`, whatever it is (`None`: no
/// metadata file). Callers decide what they accept.
pub async fn detect(lake: &Lake) -> Result<Option<u32>, Format1Error> {
    Ok(Format1Lake::of(lake)
        .read_meta()
        .await?
        .map(|m| m.format_version))
}

/// Creates the current format's tables in a lake still marked format 1, so that the commit
/// path can replay it: `Lake::commit` would otherwise bind the lake first, and binding refuses a
/// format-1 lake (rightly: only the upgrade may write one). `cluster_id` is the one format 1's
/// `_ledgerlake.json` records; the caller has read it.
pub async fn prepare_tables(lake: &Lake, cluster_id: u128) -> Result<(), LakeError> {
    for table in [Table::Accounts, Table::Transfers, Table::SweptAccounts] {
        if !lake.table_exists(table).await? {
            lake.log.create(table, cluster_id).await?;
        }
    }
    lake.tables_ready
        .store(true, std::sync::atomic::Ordering::Release);
    Ok(())
}

/// The `transfers` table's position (the last event timestamp its log records as committed), as
/// the lake's writer knows it; `None` before the first commit.
pub async fn transfers_position(lake: &Lake, cluster_id: u128) -> Result<Option<u64>, LakeError> {
    Ok(lake
        .log
        .known_position(Table::Transfers, cluster_id)
        .await?
        .map(|p| u64::try_from(p).unwrap_or(0)))
}

/// The stored discriminant back to an `EventType`.
fn event_type_from_u8(v: u8) -> Option<EventType> {
    Some(match v {
        0 => EventType::SinglePhase,
        1 => EventType::TwoPhasePending,
        2 => EventType::TwoPhasePosted,
        3 => EventType::TwoPhaseVoided,
        4 => EventType::TwoPhaseExpired,
        _ => return None,
    })
}
