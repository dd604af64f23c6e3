//! What a lake holds, as its Delta logs say: the active data files of the three tables, parsed
//! from their names (each name carries the file's time range), without opening any file. A
//! data object that no log names is not part of the lake, whatever the directory holds.
//!
//! A `Listing` is built from one snapshot of each table (the latest, or the lake as it stood at
//! an earlier `transfers` version) and then answers every question about it; `Lake::resume_state`
//! needs one only after a crash between a segment's two commits (to find the orphan).

use std::collections::{HashMap, HashSet};

use object_store::path::Path;

use super::chain::{ChainFile, ChainReport, TableChain};
use super::layout::{self, SegmentName, Table};
use super::log::{ActiveFile, CommitRequest, TableVersion};
use super::{Lake, LakeError, SegmentInfo, SweptInfo};

/// A data file of a table, as its log lists it.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub name: SegmentName,
    /// Relative to the lake root.
    pub path: Path,
    /// `add.path`, relative to the table root.
    pub table_path: String,
    pub size: u64,
}

/// The active files of the three tables, from one snapshot of each.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    transfers: Vec<Listed>,
    accounts: Vec<Listed>,
    /// Sorted by first timestamp.
    swept: Vec<SweptInfo>,
}

fn bad_name(table: Table, path: &str) -> LakeError {
    LakeError::BadObjectName {
        path: format!("{}/{path}", table.dir()),
    }
}

/// Parses the active files of a date-partitioned table; a name outside the layout, or a
/// partition value that disagrees with it, is an error naming the file.
fn parse_segment_files(table: Table, files: Vec<ActiveFile>) -> Result<Vec<Listed>, LakeError> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let path = Path::from(format!("{}/{}", table.dir(), f.path));
        let name =
            layout::parse_segment_path(table, &path).ok_or_else(|| bad_name(table, &f.path))?;
        if f.date.as_deref() != Some(name.date.as_str()) {
            return Err(LakeError::corrupt(
                &path,
                format!(
                    "the log gives it partition date {:?}, its name {}",
                    f.date, name.date
                ),
            ));
        }
        out.push(Listed {
            name,
            path,
            table_path: f.path,
            size: f.size,
        });
    }
    out.sort_by_key(|l| (l.name.first_timestamp, l.name.last_timestamp));
    Ok(out)
}

fn parse_swept_files(files: Vec<ActiveFile>) -> Result<Vec<SweptInfo>, LakeError> {
    let table = Table::SweptAccounts;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let path = Path::from(format!("{}/{}", table.dir(), f.path));
        let (first_timestamp, last_timestamp) =
            layout::parse_swept_path(&path).ok_or_else(|| bad_name(table, &f.path))?;
        out.push(SweptInfo {
            first_timestamp,
            last_timestamp,
            path,
            bytes: f.size,
        });
    }
    out.sort_by_key(|f| (f.first_timestamp, f.last_timestamp));
    Ok(out)
}

impl Listing {
    /// `transfers` and `accounts` as a chain check found them active (`lake::chain`); `None`
    /// if a file lacks its partition date (a verify report of an older ledgerlake).
    fn from_chain(
        transfers: &[ChainFile],
        accounts: &[ChainFile],
    ) -> Result<Option<Listing>, LakeError> {
        let active = |files: &[ChainFile]| -> Option<Vec<ActiveFile>> {
            files
                .iter()
                .map(|f| {
                    Some(ActiveFile {
                        path: f.path.clone(),
                        size: f.size,
                        date: Some(f.date.clone()?),
                    })
                })
                .collect()
        };
        let (Some(t), Some(a)) = (active(transfers), active(accounts)) else {
            return Ok(None);
        };
        Ok(Some(Listing {
            transfers: parse_segment_files(Table::Transfers, t)?,
            accounts: parse_segment_files(Table::Accounts, a)?,
            swept: Vec::new(),
        }))
    }

    /// The committed segments (one per transfers file, joined with its accounts twin), sorted by
    /// first timestamp.
    pub(crate) fn segments(&self) -> Vec<SegmentInfo> {
        let accounts: HashMap<(u64, u64), &Listed> = self
            .accounts
            .iter()
            .map(|l| ((l.name.first_timestamp, l.name.last_timestamp), l))
            .collect();
        self.transfers
            .iter()
            .map(|t| {
                let twin = accounts.get(&(t.name.first_timestamp, t.name.last_timestamp));
                SegmentInfo {
                    date: t.name.date.clone(),
                    first_timestamp: t.name.first_timestamp,
                    last_timestamp: t.name.last_timestamp,
                    transfers_path: t.path.clone(),
                    accounts_path: twin.map(|a| a.path.clone()),
                    transfers_bytes: t.size,
                    accounts_bytes: twin.map_or(0, |a| a.size),
                }
            })
            .collect()
    }

    /// Accounts files whose transfers twin is not committed (a crash between the two commits
    /// of a segment): without a twin, and after the last committed transfers file. An accounts
    /// file without a twin inside the committed range is the first half of a compaction a crash
    /// interrupted: the next compaction pass completes it (`Lake::recover`); it is not removed.
    pub(crate) fn orphan_accounts(&self) -> Vec<&Listed> {
        let last = self.transfers.iter().map(|t| t.name.last_timestamp).max();
        self.unpaired_accounts()
            .into_iter()
            .filter(|a| last.is_none_or(|l| a.name.first_timestamp > l))
            .collect()
    }

    /// Whether an accounts file without a twin lies inside the committed range: a compaction
    /// interrupted between its two commits.
    pub(crate) fn interrupted_compaction(&self) -> bool {
        self.unpaired_accounts().len() > self.orphan_accounts().len()
    }

    /// Accounts files without a transfers twin.
    pub(crate) fn unpaired_accounts(&self) -> Vec<&Listed> {
        let transfers: HashSet<(u64, u64)> = self
            .transfers
            .iter()
            .map(|t| (t.name.first_timestamp, t.name.last_timestamp))
            .collect();
        self.accounts
            .iter()
            .filter(|a| !transfers.contains(&(a.name.first_timestamp, a.name.last_timestamp)))
            .collect()
    }

    /// The swept files, sorted by first timestamp.
    pub(crate) fn swept(&self) -> &[SweptInfo] {
        &self.swept
    }
}

impl Lake {
    /// The active files of `table` at `version` (latest: `None`); a table without a log is empty.
    async fn active(
        &self,
        table: Table,
        version: Option<u64>,
    ) -> Result<(Option<u64>, Vec<ActiveFile>), LakeError> {
        if !self.table_exists(table).await? {
            return Ok((None, Vec::new()));
        }
        let snapshot = self.log.snapshot(table, version).await?;
        let v = snapshot.version();
        Ok((Some(v), self.log.active_files(table, snapshot).await?))
    }

    /// One listing of the given tables, as the logs say now, or, for a lake opened at a
    /// `transfers` version (`at_version`), as the lake stood then: `transfers` at that version,
    /// and `accounts` and `swept_accounts` at the versions that commit recorded
    /// (`tableVersions`; the table-creating version 0 records none: nothing was swept then).
    ///
    /// A compaction interrupted between its two commits (the accounts swap committed, the
    /// transfers swap not) is read as the state before it: `accounts` as the latest `transfers`
    /// version pins it, until the next compaction pass completes it (`Lake::recover`).
    pub(crate) async fn listing(&self, tables: &[Table]) -> Result<Listing, LakeError> {
        let mut listing = self.listing_as_logged(tables).await?;
        let both = tables.contains(&Table::Transfers) && tables.contains(&Table::Accounts);
        if self.as_of.is_none() && both && listing.interrupted_compaction() {
            let latest = self.log.snapshot(Table::Transfers, None).await?.version();
            if let Some(pins) = self.log.pins_of(Table::Transfers, latest).await? {
                let files = self.active(Table::Accounts, Some(pins.accounts)).await?.1;
                listing.accounts = parse_segment_files(Table::Accounts, files)?;
            }
        }
        Ok(listing)
    }

    /// `listing`, with every table at the version the logs say (latest, or pinned by
    /// `at_version`), an interrupted compaction as it is.
    pub(crate) async fn listing_as_logged(&self, tables: &[Table]) -> Result<Listing, LakeError> {
        let mut listing = Listing::default();
        let pins = match self.as_of {
            Some(v) => Some(self.log.pins_of(Table::Transfers, v).await?),
            None => None,
        };
        for &table in tables {
            match table {
                Table::Transfers => {
                    let files = self.active(table, self.as_of).await?.1;
                    listing.transfers = parse_segment_files(table, files)?;
                }
                Table::Accounts => {
                    let version = pins.map(|p| p.map_or(0, |p| p.accounts));
                    listing.accounts =
                        parse_segment_files(table, self.active(table, version).await?.1)?
                }
                Table::SweptAccounts => {
                    let version = pins.map(|p| p.map_or(0, |p| p.swept_accounts));
                    listing.swept = parse_swept_files(self.active(table, version).await?.1)?
                }
            }
        }
        Ok(listing)
    }

    /// One listing of the three tables (a session start no longer needs one).
    #[allow(dead_code)]
    pub(crate) async fn listing_all(&self) -> Result<Listing, LakeError> {
        self.listing(&[Table::Transfers, Table::Accounts, Table::SweptAccounts])
            .await
    }

    /// The `transfers` version this lake is read at: `at_version`'s, or the latest (`None`: no
    /// table yet).
    pub async fn transfers_version(&self) -> Result<Option<u64>, LakeError> {
        if self.as_of.is_some() {
            return Ok(self.as_of);
        }
        if !self.table_exists(Table::Transfers).await? {
            return Ok(None);
        }
        Ok(Some(
            self.log.snapshot(Table::Transfers, None).await?.version(),
        ))
    }

    /// Every version of `table` with its commit time, oldest first (empty: no table yet).
    pub async fn table_versions(&self, table: Table) -> Result<Vec<TableVersion>, LakeError> {
        let (Some(latest), _) = self.active(table, None).await? else {
            return Ok(Vec::new());
        };
        self.log.versions(table, latest).await
    }

    /// The committed segments (one per transfers file), sorted by first timestamp.
    pub async fn list_segments(&self) -> Result<Vec<SegmentInfo>, LakeError> {
        Ok(self
            .listing(&[Table::Transfers, Table::Accounts])
            .await?
            .segments())
    }

    /// `list_segments`, from a chain check of this lake (`check_chain_from`) instead of the
    /// tables' snapshots: the same segments, since a chain without problems has every
    /// checkpoint a reader starts from list exactly the files it has active, and every commit
    /// after it walked. `None` where it cannot stand in for the snapshots: a lake read at an
    /// earlier version, a chain with a problem in `transfers` or `accounts`, a file without
    /// its partition date (an older report's), or a compaction interrupted between its two
    /// commits (which `listing` reads as the state before it).
    pub fn segments_of_chain(
        &self,
        chain: &ChainReport,
    ) -> Result<Option<Vec<SegmentInfo>>, LakeError> {
        let table = |name: &str| chain.tables.iter().find(|t| t.table == name);
        let (Some(transfers), Some(accounts)) = (table("transfers"), table("accounts")) else {
            return Ok(None);
        };
        let whole =
            |t: &TableChain| t.problems.is_empty() && t.files.len() as u64 == t.active_files;
        if self.as_of.is_some() || !whole(transfers) || !whole(accounts) {
            return Ok(None);
        }
        let Some(listing) = Listing::from_chain(&transfers.files, &accounts.files)? else {
            return Ok(None);
        };
        if listing.interrupted_compaction() {
            return Ok(None);
        }
        Ok(Some(listing.segments()))
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

    /// Removes from the `accounts` log the accounts files whose transfers twin is not committed
    /// (left by a crash between the two commits of a segment).
    /// Test and benchmark API: the exporter does this in `resume_state`.
    #[cfg(any(test, feature = "testbed"))]
    pub async fn remove_orphan_accounts(&self, cluster_id: u128) -> Result<Vec<Path>, LakeError> {
        let listing = self.listing(&[Table::Transfers, Table::Accounts]).await?;
        self.remove_orphans(&listing, cluster_id).await
    }

    /// Commits the removal of `listing`'s orphan accounts files; the `accounts` position moves
    /// back to the last committed segment, so that a segment re-sealed over the same events
    /// commits its accounts again.
    pub(crate) async fn remove_orphans(
        &self,
        listing: &Listing,
        cluster_id: u128,
    ) -> Result<Vec<Path>, LakeError> {
        let orphans = listing.orphan_accounts();
        if orphans.is_empty() {
            return Ok(Vec::new());
        }
        let position = listing
            .segments()
            .iter()
            .map(|s| s.last_timestamp)
            .max()
            .map_or(0, super::columns::timestamp_to_i64);
        let request = CommitRequest {
            table: Table::Accounts,
            adds: Vec::new(),
            removes: orphans.iter().map(|o| o.table_path.clone()).collect(),
            position,
            skip_if_covered: false,
            pins: None,
        };
        self.log.commit(request, cluster_id).await?;
        Ok(orphans.into_iter().map(|o| o.path.clone()).collect())
    }
}
