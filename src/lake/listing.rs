//! Listing what a lake holds: object names carry each file's time range, so a listing alone says
//! which segments and swept files are committed and which accounts files are orphans, without
//! opening any file.
//!
//! A `Listing` is built from one pass over the store (the whole lake, or a few table
//! directories) and then answers every question about it; `Lake::resume_state` uses one listing
//! for everything an exporter session needs. That whole-lake listing also walks `quarantine/`,
//! which a healthy lake keeps small; the single questions (`list_segments`, `list_swept`, ...)
//! list only the table directories they need.

use std::collections::{HashMap, HashSet};

use object_store::path::Path;
use object_store::ObjectMeta;

use super::layout::{self, SegmentName, Table};
use super::{Lake, LakeError, SegmentInfo, SweptInfo};

/// The parsed files of the three tables, from one listing. Objects outside the table
/// directories (the metadata file, `quarantine/`, anything else at the root) are not part of it.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    transfers: Vec<(SegmentName, ObjectMeta)>,
    accounts: Vec<(SegmentName, ObjectMeta)>,
    /// Sorted by first timestamp.
    swept: Vec<SweptInfo>,
}

fn bad_name(o: &ObjectMeta) -> LakeError {
    LakeError::BadObjectName {
        path: o.location.to_string(),
    }
}

impl Listing {
    /// Sorts listed objects into their tables; an object inside a table directory whose name is
    /// outside the layout is an error (it is named, never skipped).
    pub(crate) fn from_objects(
        objects: impl IntoIterator<Item = ObjectMeta>,
    ) -> Result<Listing, LakeError> {
        let mut listing = Listing::default();
        for o in objects {
            let table = match o.location.parts().next() {
                Some(dir) if dir.as_ref() == layout::TRANSFERS_DIR => Table::Transfers,
                Some(dir) if dir.as_ref() == layout::ACCOUNTS_DIR => Table::Accounts,
                Some(dir) if dir.as_ref() == layout::SWEPT_ACCOUNTS_DIR => Table::SweptAccounts,
                _ => continue,
            };
            match table {
                Table::Transfers | Table::Accounts => {
                    let name = layout::parse_segment_path(table, &o.location)
                        .ok_or_else(|| bad_name(&o))?;
                    if table == Table::Transfers {
                        listing.transfers.push((name, o));
                    } else {
                        listing.accounts.push((name, o));
                    }
                }
                Table::SweptAccounts => {
                    let (first_timestamp, last_timestamp) =
                        layout::parse_swept_path(&o.location).ok_or_else(|| bad_name(&o))?;
                    listing.swept.push(SweptInfo {
                        first_timestamp,
                        last_timestamp,
                        path: o.location,
                        bytes: o.size,
                    });
                }
            }
        }
        listing
            .swept
            .sort_by_key(|f| (f.first_timestamp, f.last_timestamp));
        Ok(listing)
    }

    /// The committed segments (one per transfers file, joined with its accounts twin), sorted by
    /// first timestamp.
    pub(crate) fn segments(&self) -> Vec<SegmentInfo> {
        let accounts: HashMap<(u64, u64), &ObjectMeta> = self
            .accounts
            .iter()
            .map(|(name, o)| ((name.first_timestamp, name.last_timestamp), o))
            .collect();
        let mut segments: Vec<SegmentInfo> = self
            .transfers
            .iter()
            .map(|(name, o)| {
                let twin = accounts.get(&(name.first_timestamp, name.last_timestamp));
                SegmentInfo {
                    date: name.date.clone(),
                    first_timestamp: name.first_timestamp,
                    last_timestamp: name.last_timestamp,
                    transfers_path: o.location.clone(),
                    accounts_path: twin.map(|a| a.location.clone()),
                    transfers_bytes: o.size,
                    accounts_bytes: twin.map_or(0, |a| a.size),
                }
            })
            .collect();
        segments.sort_by_key(|s| (s.first_timestamp, s.last_timestamp));
        segments
    }

    /// Accounts files whose transfers twin does not exist (a crash between the two writes).
    pub(crate) fn orphan_accounts(&self) -> Vec<Path> {
        let transfers: HashSet<(u64, u64)> = self
            .transfers
            .iter()
            .map(|(name, _)| (name.first_timestamp, name.last_timestamp))
            .collect();
        self.accounts
            .iter()
            .filter(|(name, _)| !transfers.contains(&(name.first_timestamp, name.last_timestamp)))
            .map(|(_, o)| o.location.clone())
            .collect()
    }

    /// The swept files, sorted by first timestamp.
    pub(crate) fn swept(&self) -> &[SweptInfo] {
        &self.swept
    }
}

impl Lake {
    /// One listing of the given tables' directories.
    pub(crate) async fn listing(&self, tables: &[Table]) -> Result<Listing, LakeError> {
        let mut objects = Vec::new();
        for &table in tables {
            objects.extend(self.list(Some(&layout::table_dir(table))).await?);
        }
        Listing::from_objects(objects)
    }

    /// One listing of the whole lake (a single list request stream).
    pub(crate) async fn listing_all(&self) -> Result<Listing, LakeError> {
        Listing::from_objects(self.list(None).await?)
    }

    /// The committed segments (one per transfers file), sorted by first timestamp.
    pub async fn list_segments(&self) -> Result<Vec<SegmentInfo>, LakeError> {
        Ok(self
            .listing(&[Table::Transfers, Table::Accounts])
            .await?
            .segments())
    }

    /// Every swept file, sorted by first timestamp; a name outside the layout is an error.
    pub async fn list_swept(&self) -> Result<Vec<SweptInfo>, LakeError> {
        Ok(self
            .listing(&[Table::SweptAccounts])
            .await?
            .swept()
            .to_vec())
    }

    /// The last event timestamp of the lake: the exporter resumes after it.
    /// Test and benchmark API: the exporter reads all of this at once with `resume_state`.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn last_committed_timestamp(&self) -> Result<Option<u64>, LakeError> {
        let transfers = self.listing(&[Table::Transfers]).await?;
        Ok(transfers.segments().iter().map(|s| s.last_timestamp).max())
    }

    /// Where the next sweep starts: after the newest swept account (`None`: from the start).
    /// Test and benchmark API: the exporter reads all of this at once with `resume_state`.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn swept_through(&self) -> Result<Option<u64>, LakeError> {
        let swept = self.listing(&[Table::SweptAccounts]).await?;
        Ok(swept.swept().iter().map(|f| f.last_timestamp).max())
    }

    /// Deletes accounts files whose transfers twin does not exist (left by a crash between
    /// the two writes of a commit).
    /// Test and benchmark API: the exporter reads all of this at once with `resume_state`.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn remove_orphan_accounts(&self) -> Result<Vec<Path>, LakeError> {
        let listing = self.listing(&[Table::Transfers, Table::Accounts]).await?;
        self.delete_orphans(&listing).await
    }

    pub(crate) async fn delete_orphans(&self, listing: &Listing) -> Result<Vec<Path>, LakeError> {
        let orphans = listing.orphan_accounts();
        for path in &orphans {
            self.delete(path).await?;
        }
        Ok(orphans)
    }
}
