//! Listing a format-1 lake: object names carry each file's time range, so a listing alone says
//! which segments and swept files are committed (a transfers file is the commit point) and which
//! accounts files are orphans (no transfers twin: a crash between the two writes).
//!
//! Objects of format 2 in the same directories (`_delta_log/`, `<first>-<last>-<digest>.parquet`)
//! are not part of the format-1 lake and are skipped; any other name is an error.

use std::collections::{HashMap, HashSet};

use object_store::path::Path;
use object_store::ObjectMeta;

use super::layout::{self, SegmentName, Table};
use super::{Format1Error, Format1Lake};

/// A committed format-1 segment: its transfers file and, if it saw new accounts, its accounts
/// twin. Paths are relative to the lake root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format1Segment {
    pub date: String,
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub transfers_path: Path,
    pub transfers_bytes: u64,
    pub accounts_path: Option<Path>,
    pub accounts_bytes: u64,
}

/// A format-1 swept accounts file, named by its first and last account's creation timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format1Swept {
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub path: Path,
    pub bytes: u64,
}

/// The format-1 files of a lake, from one listing of its three table directories.
#[derive(Debug, Default, Clone)]
pub struct Format1Listing {
    /// Sorted by first timestamp.
    pub segments: Vec<Format1Segment>,
    /// Sorted by first timestamp.
    pub swept: Vec<Format1Swept>,
    /// Accounts files without a transfers twin, sorted by name.
    pub orphans: Vec<ObjectMeta>,
}

fn bad_name(o: &ObjectMeta) -> Format1Error {
    Format1Error::BadObjectName {
        path: o.location.to_string(),
    }
}

impl Format1Listing {
    /// Sorts listed objects into their tables. Objects outside the three table directories are
    /// ignored; inside them, format-2 objects are skipped and any other unknown name is an error.
    pub fn from_objects(
        objects: impl IntoIterator<Item = ObjectMeta>,
    ) -> Result<Format1Listing, Format1Error> {
        let mut transfers: Vec<(SegmentName, ObjectMeta)> = Vec::new();
        let mut accounts: Vec<(SegmentName, ObjectMeta)> = Vec::new();
        let mut listing = Format1Listing::default();
        for o in objects {
            let Some(table) = o
                .location
                .parts()
                .next()
                .and_then(|dir| Table::of_dir(dir.as_ref()))
            else {
                continue;
            };
            if layout::is_format2_object(&o.location) {
                continue;
            }
            match table {
                Table::Transfers | Table::Accounts => {
                    let name = layout::parse_segment_path(table, &o.location)
                        .ok_or_else(|| bad_name(&o))?;
                    if table == Table::Transfers {
                        transfers.push((name, o));
                    } else {
                        accounts.push((name, o));
                    }
                }
                Table::SweptAccounts => {
                    let (first_timestamp, last_timestamp) =
                        layout::parse_swept_path(&o.location).ok_or_else(|| bad_name(&o))?;
                    listing.swept.push(Format1Swept {
                        first_timestamp,
                        last_timestamp,
                        path: o.location,
                        bytes: o.size,
                    });
                }
            }
        }
        let range = |name: &SegmentName| (name.first_timestamp, name.last_timestamp);
        let transfer_ranges: HashSet<(u64, u64)> =
            transfers.iter().map(|(n, _)| range(n)).collect();
        let mut twins: HashMap<(u64, u64), ObjectMeta> = HashMap::new();
        for (name, o) in accounts {
            if transfer_ranges.contains(&range(&name)) {
                twins.insert(range(&name), o);
            } else {
                listing.orphans.push(o);
            }
        }
        listing.segments = transfers
            .into_iter()
            .map(|(name, o)| {
                let twin = twins.remove(&range(&name));
                Format1Segment {
                    date: name.date,
                    first_timestamp: name.first_timestamp,
                    last_timestamp: name.last_timestamp,
                    transfers_path: o.location,
                    transfers_bytes: o.size,
                    accounts_bytes: twin.as_ref().map_or(0, |a| a.size),
                    accounts_path: twin.map(|a| a.location),
                }
            })
            .collect();
        listing
            .segments
            .sort_by_key(|s| (s.first_timestamp, s.last_timestamp));
        listing
            .swept
            .sort_by_key(|f| (f.first_timestamp, f.last_timestamp));
        listing.orphans.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(listing)
    }

    /// No format-1 file at all.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.swept.is_empty() && self.orphans.is_empty()
    }

    /// Every format-1 data file: transfers and accounts files, orphans and swept files.
    pub fn files(&self) -> Vec<Path> {
        let mut files = Vec::new();
        for s in &self.segments {
            files.push(s.transfers_path.clone());
            files.extend(s.accounts_path.clone());
        }
        files.extend(self.orphans.iter().map(|o| o.location.clone()));
        files.extend(self.swept.iter().map(|f| f.path.clone()));
        files
    }

    /// Segments do not overlap, nor do swept files (format 1's rule; readers checked it).
    pub fn check_overlaps(&self) -> Result<(), Format1Error> {
        if let Some(w) = self
            .segments
            .windows(2)
            .find(|w| w[0].last_timestamp >= w[1].first_timestamp)
        {
            return Err(Format1Error::corrupt(
                &w[1].transfers_path,
                format!("overlaps {}", w[0].transfers_path),
            ));
        }
        if let Some(w) = self
            .swept
            .windows(2)
            .find(|w| w[0].last_timestamp >= w[1].first_timestamp)
        {
            return Err(Format1Error::corrupt(
                &w[1].path,
                format!("overlaps {}", w[0].path),
            ));
        }
        Ok(())
    }
}

impl Format1Lake {
    /// One listing of the three table directories.
    pub async fn listing(&self) -> Result<Format1Listing, Format1Error> {
        let mut objects = Vec::new();
        for table in [Table::Transfers, Table::Accounts, Table::SweptAccounts] {
            objects.extend(self.list(&layout::table_dir(table)).await?);
        }
        Format1Listing::from_objects(objects)
    }
}
