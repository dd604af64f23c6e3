//! `ledgerlake upgrade`: turns a format-1 lake (plain Parquet files, schemas/lake-format-1.md)
//! into the current format in place, losing nothing, by replaying it through the lake's own
//! commit path; resumable after a crash and idempotent.
//!
//! The replay reads the format-1 lake in timestamp order with every format-1 check
//! (`lake::format1`), rebuilds each event exactly (its transfers row joined with its accounts'
//! records, as a reader of format 1 does) and commits it with `Lake::commit`, the accounts a
//! segment first saw as its new accounts; swept files go through `Lake::commit_swept`. Order:
//! a swept file is committed before the first group of events that ends at or after its first
//! account's creation, so every account is recorded before any event that uses it (an account
//! is created before its first transfer), exactly once. Consecutive format-1 segments of one
//! UTC date are merged into one file of at most `EVENTS_PER_FILE_MAX` events, which also ends
//! the small files of an old lake.
//!
//! Resuming: the grouping is a function of the format-1 files alone, which the upgrade does not
//! change until everything is committed, so a rerun forms the same groups, and `Lake::commit`
//! reports `AlreadyCommitted` for each one the log already holds. Once all is committed, the
//! metadata file is replaced by the current format's (the only overwrite in a lake; see
//! `Format1Lake::replace_meta`), and only then are the format-1 files deleted: before the flip
//! every format-1 file is in place and the lake says format 1 (which every other command
//! refuses, so nobody reads a half-replayed lake as the current format); after it the current
//! format's tables hold everything; a crash while deleting leaves files the rerun deletes.
//!
//! Memory: one group's events, and every account record of the lake (events are rebuilt from
//! them, and the records of a format-1 lake are in no particular file).

use std::collections::HashMap;
use std::time::Instant;

use object_store::path::Path;
use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};

use crate::cdc::Event;
use crate::lake::format1::{
    check_first_seen, prepare_tables, transfers_position, Format1Error, Format1Lake,
    Format1Listing, Format1Segment, MetaFile, FORMAT_1,
};
use crate::lake::{AccountRecord, CommitOutcome, Lake, LakeError, Segment};

/// The format an upgrade produces.
pub const TARGET_FORMAT_VERSION: u32 = 2;

/// Events in one file of the upgraded lake, at most (unless one format-1 segment alone holds
/// more: segments are never split). About 20-30 MB of Parquet, the size Delta readers like,
/// and about 1 GB of memory while it is being built and encoded.
pub const EVENTS_PER_FILE_MAX: usize = 1_000_000;

/// Timestamps of the current format are signed 64-bit: TigerBeetle's stay below 2^63 until 2262.
const TIMESTAMP_LIMIT: u64 = 1 << 63;

/// What `upgrade` needs.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    pub lake: String,
    /// Stop after this many commits (an upgrade in steps; a rerun goes on where it stopped).
    pub commits_max: Option<u64>,
}

/// Why the upgrade could not run or finish. What was committed stays committed: rerun it.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Format1(#[from] Format1Error),
    #[error(
        "there is no lake at {location}: it holds no _ledgerlake.json and no format-1 files \
         (check --lake)"
    )]
    NoLake { location: String },
    #[error(
        "the lake at {location} holds format-1 files but no _ledgerlake.json, so the cluster it \
         belongs to is unknown; restore its _ledgerlake.json"
    )]
    Unbound { location: String },
    #[error(
        "the lake has format version {found}; this ledgerlake upgrades format 1 to format \
         {TARGET_FORMAT_VERSION} and knows no other: upgrade ledgerlake"
    )]
    UnsupportedFormat { found: u32 },
    #[error(
        "{path}: timestamp {timestamp} is 2^63 or above, which format {TARGET_FORMAT_VERSION} \
         cannot store (TigerBeetle timestamps stay below 2^63 until the year 2262)"
    )]
    TimestampOutOfRange { path: String, timestamp: u64 },
    #[error(
        "the transfers log records events up to {position}, inside the events {first}..={last} \
         this upgrade would commit next: an earlier upgrade of this lake cut it into files \
         differently; finish it with the ledgerlake that started it"
    )]
    PositionInsideFile {
        position: u64,
        first: u64,
        last: u64,
    },
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeOutcome {
    /// The lake was format 1 and is now the current format, its format-1 files deleted.
    Upgraded,
    /// The lake was already the current format, without format-1 files: nothing was done.
    AlreadyCurrent,
    /// The lake was the current format but format-1 files were left (an earlier run stopped
    /// while deleting them); they are deleted now.
    LeftoversRemoved,
    /// `commits_max` was reached; the lake is still format 1. Run the upgrade again.
    Stopped,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeReport {
    pub lake: String,
    pub cluster_id: String,
    pub outcome: UpgradeOutcome,
    pub format_before: u32,
    pub format_after: u32,
    /// Format-1 files found (committed segments, swept files, orphan accounts files).
    pub format1_segments: usize,
    pub format1_swept_files: usize,
    pub format1_orphans: usize,
    /// What the replay carried over (all of the lake once it is upgraded).
    #[serde_as(as = "DisplayFromStr")]
    pub events: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub accounts: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub swept_accounts: u64,
    /// Commits written by this run, and commits an earlier run had written (skipped).
    #[serde_as(as = "DisplayFromStr")]
    pub commits: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub already_committed: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub bytes_written: u64,
    pub format1_files_deleted: usize,
    #[serde_as(as = "DisplayFromStr")]
    pub elapsed_ms: u64,
}

/// Where the upgrade reports its progress (the CLI draws it); called after every format-1
/// segment.
pub trait UpgradeProgress: Send + Sync {
    fn segments_replayed(&self, segments_done: usize, segments_total: usize, events_done: u64);
    /// The replay is over.
    fn finished(&self) {}
}

/// Reports nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl UpgradeProgress for NoProgress {
    fn segments_replayed(&self, _: usize, _: usize, _: u64) {}
}

/// Opens the lake and upgrades it.
pub async fn run(
    options: &UpgradeOptions,
    progress: &dyn UpgradeProgress,
) -> Result<UpgradeReport, UpgradeError> {
    let lake = Lake::open(&options.lake).await?;
    upgrade(&lake, options.commits_max, progress).await
}

/// Upgrades `lake` (see the module comment); `commits_max` stops it after that many commits.
pub async fn upgrade(
    lake: &Lake,
    commits_max: Option<u64>,
    progress: &dyn UpgradeProgress,
) -> Result<UpgradeReport, UpgradeError> {
    let started = Instant::now();
    let v1 = Format1Lake::of(lake);
    let meta = v1.read_meta().await?;
    let listing = v1.listing().await?;
    let meta = match meta {
        Some(meta) => meta,
        None if listing.is_empty() => {
            return Err(UpgradeError::NoLake {
                location: lake.location().to_string(),
            })
        }
        None => {
            return Err(UpgradeError::Unbound {
                location: lake.location().to_string(),
            })
        }
    };
    let mut report = UpgradeReport {
        lake: lake.location().to_string(),
        cluster_id: meta.cluster_id.to_string(),
        outcome: UpgradeOutcome::AlreadyCurrent,
        format_before: meta.format_version,
        format_after: meta.format_version,
        format1_segments: listing.segments.len(),
        format1_swept_files: listing.swept.len(),
        format1_orphans: listing.orphans.len(),
        events: 0,
        accounts: 0,
        swept_accounts: 0,
        commits: 0,
        already_committed: 0,
        bytes_written: 0,
        format1_files_deleted: 0,
        elapsed_ms: 0,
    };
    match meta.format_version {
        FORMAT_1 => {
            let mut replay = Replay {
                lake,
                v1: &v1,
                cluster_id: meta.cluster_id,
                commits_max,
                report: &mut report,
                tables_ready: false,
            };
            let finished = replay.run(&listing, progress).await?;
            progress.finished();
            if finished {
                v1.replace_meta(&MetaFile {
                    format_version: TARGET_FORMAT_VERSION,
                    cluster_id: meta.cluster_id,
                })
                .await?;
                report.format_after = TARGET_FORMAT_VERSION;
                report.format1_files_deleted = delete_all(&v1, &listing).await?;
                report.outcome = UpgradeOutcome::Upgraded;
            } else {
                report.outcome = UpgradeOutcome::Stopped;
            }
        }
        TARGET_FORMAT_VERSION if listing.is_empty() => {}
        TARGET_FORMAT_VERSION => {
            report.format1_files_deleted = delete_all(&v1, &listing).await?;
            report.outcome = UpgradeOutcome::LeftoversRemoved;
        }
        found => return Err(UpgradeError::UnsupportedFormat { found }),
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Deletes every format-1 file of `listing` (orphans included); returns how many.
async fn delete_all(v1: &Format1Lake, listing: &Format1Listing) -> Result<usize, UpgradeError> {
    let files = listing.files();
    for path in &files {
        v1.delete(path).await?;
    }
    Ok(files.len())
}

/// Events of consecutive format-1 segments of one UTC date, to be committed as one segment.
struct Group {
    date: String,
    events: Vec<Event>,
    new_accounts: Vec<AccountRecord>,
}

/// One replay of a format-1 lake through the commit path.
struct Replay<'a> {
    lake: &'a Lake,
    v1: &'a Format1Lake,
    cluster_id: u128,
    commits_max: Option<u64>,
    report: &'a mut UpgradeReport,
    /// The current format's tables exist (created before the first commit).
    tables_ready: bool,
}

impl Replay<'_> {
    /// Replays everything; `Ok(false)` if `commits_max` stopped it first.
    async fn run(
        &mut self,
        listing: &Format1Listing,
        progress: &dyn UpgradeProgress,
    ) -> Result<bool, UpgradeError> {
        listing.check_overlaps()?;
        // Every account record, by id: events are rebuilt from them.
        let mut known: HashMap<u128, AccountRecord> = HashMap::new();
        let mut swept_files: Vec<Vec<AccountRecord>> = Vec::new();
        for file in &listing.swept {
            let accounts = self.v1.read_swept(file, self.cluster_id).await?;
            for a in &accounts {
                check_record(a, &file.path)?;
                remember(&mut known, a, &file.path)?;
            }
            self.report.swept_accounts += accounts.len() as u64;
            swept_files.push(accounts);
        }
        let mut swept = swept_files.into_iter().peekable();

        let mut group: Option<Group> = None;
        for (done, seg) in listing.segments.iter().enumerate() {
            let rows = self.v1.read_events(seg, self.cluster_id).await?;
            let accounts = self.v1.read_accounts(seg, self.cluster_id).await?;
            let events = rows.len() as u64;
            if let Some(g) = group.take_if(|g| {
                g.date != seg.date || g.events.len() + rows.len() > EVENTS_PER_FILE_MAX
            }) {
                if !self.commit_group(g, &mut swept).await? {
                    return Ok(false);
                }
            }
            let g = group.get_or_insert_with(|| Group {
                date: seg.date.clone(),
                events: Vec::new(),
                new_accounts: Vec::new(),
            });
            let path = accounts_or_transfers(seg);
            for a in &accounts {
                check_record(a, path)?;
                remember(&mut known, a, path)?;
            }
            self.report.accounts += accounts.len() as u64;
            g.new_accounts.extend(accounts);
            for row in rows {
                let lookup = |id: u128| {
                    let record = known.get(&id).ok_or(Format1Error::MissingAccount {
                        account_id: id,
                        event_timestamp: row.timestamp,
                    })?;
                    check_first_seen(record, row.timestamp, &seg.transfers_path)?;
                    Ok::<_, Format1Error>(record)
                };
                let event = row.to_event(
                    lookup(row.debit_account.id)?,
                    lookup(row.credit_account.id)?,
                );
                check_event(&event, &seg.transfers_path)?;
                g.events.push(event);
            }
            self.report.events += events;
            progress.segments_replayed(done + 1, listing.segments.len(), self.report.events);
        }
        if let Some(g) = group {
            if !self.commit_group(g, &mut swept).await? {
                return Ok(false);
            }
        }
        for accounts in swept {
            if !self.commit_swept(&accounts).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Commits the swept files due before `g` (those whose first account was created no later
    /// than `g`'s last event), then `g`; `Ok(false)` if `commits_max` stopped it.
    async fn commit_group(
        &mut self,
        g: Group,
        swept: &mut std::iter::Peekable<impl Iterator<Item = Vec<AccountRecord>>>,
    ) -> Result<bool, UpgradeError> {
        let last = g.events.last().expect("a group holds events").timestamp;
        while let Some(accounts) = swept.next_if(|f| f[0].timestamp <= last) {
            if !self.commit_swept(&accounts).await? {
                return Ok(false);
            }
        }
        if self.stop() {
            return Ok(false);
        }
        let segment = Segment {
            events: g.events,
            new_accounts: g.new_accounts,
        };
        self.prepare().await?;
        let first = segment.events[0].timestamp;
        if let Some(position) = transfers_position(self.lake, self.cluster_id)
            .await?
            .filter(|&p| first <= p && p < last)
        {
            return Err(UpgradeError::PositionInsideFile {
                position,
                first,
                last,
            });
        }
        let outcome = self.lake.commit(&segment, self.cluster_id).await?;
        self.count(outcome);
        Ok(true)
    }

    async fn commit_swept(&mut self, accounts: &[AccountRecord]) -> Result<bool, UpgradeError> {
        if self.stop() {
            return Ok(false);
        }
        self.prepare().await?;
        // Format 1's sweep resumed after its newest swept account: so does this position.
        let through = accounts.last().map_or(0, |a| a.timestamp);
        let outcome = self
            .lake
            .commit_swept(accounts, through, self.cluster_id)
            .await?;
        self.count(outcome);
        Ok(true)
    }

    async fn prepare(&mut self) -> Result<(), UpgradeError> {
        if !self.tables_ready {
            prepare_tables(self.lake, self.cluster_id).await?;
            self.tables_ready = true;
        }
        Ok(())
    }

    /// Whether `commits_max` commits were written.
    fn stop(&self) -> bool {
        self.commits_max
            .is_some_and(|max| self.report.commits >= max)
    }

    fn count(&mut self, outcome: CommitOutcome) {
        match outcome {
            CommitOutcome::Committed { bytes } => {
                self.report.commits += 1;
                self.report.bytes_written += bytes;
            }
            CommitOutcome::AlreadyCommitted => self.report.already_committed += 1,
        }
    }
}

fn accounts_or_transfers(seg: &Format1Segment) -> &Path {
    seg.accounts_path.as_ref().unwrap_or(&seg.transfers_path)
}

/// Records an account once; a second record of the same id is corruption (format 1's rule:
/// each account exactly once, in an accounts file or a swept file).
fn remember(
    known: &mut HashMap<u128, AccountRecord>,
    a: &AccountRecord,
    path: &Path,
) -> Result<(), Format1Error> {
    if known.insert(a.id, *a).is_some() {
        return Err(Format1Error::Corrupt {
            path: path.to_string(),
            reason: format!(
                "account {} was already recorded by an earlier file or a sweep",
                a.id
            ),
        });
    }
    Ok(())
}

fn timestamp_in_range(timestamp: u64, path: &Path) -> Result<(), UpgradeError> {
    if timestamp >= TIMESTAMP_LIMIT {
        return Err(UpgradeError::TimestampOutOfRange {
            path: path.to_string(),
            timestamp,
        });
    }
    Ok(())
}

fn check_record(a: &AccountRecord, path: &Path) -> Result<(), UpgradeError> {
    timestamp_in_range(a.timestamp, path)?;
    timestamp_in_range(a.first_seen_timestamp, path)
}

fn check_event(e: &Event, path: &Path) -> Result<(), UpgradeError> {
    for ts in [
        e.timestamp,
        e.transfer.timestamp,
        e.debit_account.timestamp,
        e.credit_account.timestamp,
    ] {
        timestamp_in_range(ts, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
