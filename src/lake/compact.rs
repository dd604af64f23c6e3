//! Compaction: an active stream seals a segment about every second, and each small Parquet file
//! carries ~14 KB of footer whatever it holds, so a lake of one-second segments is ~20× the
//! bytes of the same events in bulk and slow to read. A compaction pass merges the small files
//! of closed time windows (`plan`) into one file each and swaps them in the log.
//!
//! One merge, in order (each step safe to interrupt, see docs/DESIGN.md "The life of a file"):
//! 1. read the window's transfers files (and their accounts twins) and check them;
//! 2. encode one transfers file (same writer settings and naming as a segment) and one accounts
//!    file (the accounts records deduplicated by id: the record with the smallest
//!    `first_seen_timestamp` is kept, the first in time order on a tie), named by the merged
//!    range, so the two are twins as a segment's are;
//! 3. decode both back and check they hold exactly the input rows, in order (transfers: every
//!    row equal, so the count and the first and last timestamps too; accounts: the deduplicated
//!    records, in order);
//! 4. write both objects (plain puts: not data until a commit names them);
//! 5. holding the log's write lock (so this process's exporter never commits in between):
//!    commit the accounts swap, then the transfers swap, each ONE Delta commit with the removes
//!    and the add, `dataChange = false`, no consumer position, and the chained
//!    `commitInfo.ledgerlake` (its `addedFiles` digest and a `compaction` record).
//!
//! A crash between the two commits leaves the accounts merged and the transfers not: an accounts
//! file with no twin inside the committed range. Table readers see the same rows either way; the
//! next pass (or exporter start) completes it first (`recover`), merging exactly the transfers
//! files inside that accounts file's range.

pub(crate) mod check;
mod plan;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

pub(crate) use check::CompactionCommit;
pub use plan::{plan, PlanFile};

use super::columns::TRANSFER_COLUMNS;
use super::commit::{prepare, Prepared};
use super::layout::Table;
use super::log::{CommitRequest, CompactionInfo, Pins};
use super::read::check_cluster;
use super::{columns, parquet, AccountRecord, EventRow, Lake, LakeError, SegmentInfo};

/// Environment variable read only by `testbed` builds: the step of the first merge at which the
/// process kills itself with SIGKILL (`planned`, `read`, `written`, `accounts-committed`,
/// `transfers-committed`), for the crash tests.
pub const TEST_KILL_AT_ENV: &str = "LEDGERLAKE_TEST_KILL_AT";

/// What one merge did.
#[serde_with::serde_as]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MergeDone {
    pub date: String,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub first_timestamp: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub last_timestamp: u64,
    /// Transfers files replaced (their accounts twins are replaced too).
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub inputs: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub events: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub accounts: u64,
    /// Transfers and accounts bytes before and after.
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub bytes_before: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub bytes_after: u64,
    /// Completed an interrupted merge (`recover`) rather than a planned one.
    pub recovered: bool,
}

/// What a compaction pass did.
#[serde_with::serde_as]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactReport {
    /// Active transfers and accounts data files before and after the pass.
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub files_before: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub files_after: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub bytes_before: u64,
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub bytes_after: u64,
    pub merges: Vec<MergeDone>,
}

/// Background compaction inside `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactOptions {
    /// Time between the end of one pass and the start of the next.
    pub interval: Duration,
}

/// The background compaction task of an exporter; stops (between merges) when dropped.
pub struct Compactor {
    stop: tokio::sync::watch::Sender<bool>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Compactor {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts background compaction for an exporter of `cluster_id` (`None`: compaction is off).
/// First, whatever the options, completes a merge a crash interrupted (before the exporter
/// reads the lake: a segment committed on top of a half-done merge would make it visible), then
/// runs a pass every `interval` on its own task: never on the commit path; `on_merge` is told of
/// every merge committed (the exporter counts them in its metrics).
pub async fn start_compactor(
    lake: Arc<Lake>,
    cluster_id: u128,
    options: Option<CompactOptions>,
    on_merge: fn(&MergeDone),
) -> Result<Option<Compactor>, LakeError> {
    // Only a lake of this cluster, in this format, with tables: otherwise the exporter refuses
    // it (or creates the tables) and there is nothing to complete.
    let ours = matches!(lake.read_meta().await, Ok(Some(m)) if m.cluster_id == cluster_id);
    if ours && lake.table_exists(Table::Transfers).await? {
        for done in lake.recover(cluster_id).await? {
            tracing::warn!(
                first = done.first_timestamp,
                last = done.last_timestamp,
                files = done.inputs,
                "completed a compaction a crash interrupted"
            );
            on_merge(&done);
        }
    }
    let Some(options) = options else {
        return Ok(None);
    };
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(options.interval) => {}
                _ = stopped.changed() => return,
            }
            if !lake.table_exists(Table::Transfers).await.unwrap_or(false) {
                continue;
            }
            let stop_flag = stopped.clone();
            let result = lake
                .compact_pass(cluster_id, &mut |done| {
                    tracing::info!(
                        date = %done.date,
                        files = done.inputs,
                        events = done.events,
                        bytes_before = done.bytes_before,
                        bytes_after = done.bytes_after,
                        "compacted"
                    );
                    on_merge(done);
                    !*stop_flag.borrow()
                })
                .await;
            match result {
                Ok(_) => {}
                Err(e @ LakeError::AnotherWriter { .. }) => {
                    tracing::error!(error = %crate::errors::one_line(&e), "compaction stopped");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %crate::errors::one_line(&e), "compaction pass failed; retried next interval");
                }
            }
        }
    });
    Ok(Some(Compactor { stop, _task: task }))
}

/// `add.path` (relative to the table root) of a data file path relative to the lake root.
fn table_path(table: Table, path: &Path) -> String {
    let full = path.as_ref();
    full.strip_prefix(table.dir())
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(full)
        .to_string()
}

#[cfg(feature = "testbed")]
fn kill_point(step: &str) {
    if std::env::var(TEST_KILL_AT_ENV).as_deref() == Ok(step) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::thread::sleep(Duration::from_secs(10));
        unreachable!("killed at {step}");
    }
}

#[cfg(not(feature = "testbed"))]
fn kill_point(_step: &str) {}

/// Keeps, per account id, the record with the smallest `first_seen_timestamp` (the first in
/// `records`' order on a tie), in order of first appearance.
pub(crate) fn dedupe_accounts(records: Vec<AccountRecord>) -> Vec<AccountRecord> {
    let mut index: HashMap<u128, usize> = HashMap::with_capacity(records.len());
    let mut out: Vec<AccountRecord> = Vec::with_capacity(records.len());
    for r in records {
        match index.get(&r.id) {
            Some(&i) => {
                if r.first_seen_timestamp < out[i].first_seen_timestamp {
                    out[i] = r;
                }
            }
            None => {
                index.insert(r.id, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// Where `merge_segments_until` stops (`Never` outside tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Never,
    #[cfg_attr(not(test), allow(dead_code))]
    AfterWrite,
    #[cfg_attr(not(test), allow(dead_code))]
    AfterAccounts,
}

/// The merged contents of a window, encoded and checked, not yet written.
struct Merged {
    transfers: Prepared,
    accounts: Option<Prepared>,
    events: u64,
    accounts_rows: u64,
}

/// Passes `Lake::compact` runs at most (one pass normally does everything: each file goes
/// straight to its largest closed window).
pub const PASSES_MAX: usize = 4;

impl Lake {
    /// Compacts a lake whose exporter is stopped (`ledgerlake compact`), for the cluster its
    /// metadata names: passes until one merges nothing. A lake without tables is left alone; a
    /// format-1 lake is refused (upgrade it first).
    ///
    /// With `all_windows`, the windows still open (the current five minutes, hour and day) are
    /// merged too, as if the position were at the end of time: fewer files now, and the files
    /// an exporter adds to those windows later are merged with them again.
    pub async fn compact(
        &self,
        all_windows: bool,
        on_merge: &mut (dyn FnMut(&MergeDone) -> bool + Send),
    ) -> Result<CompactReport, LakeError> {
        let Some(meta) = self.read_meta().await? else {
            return Ok(CompactReport::default());
        };
        if meta.format_version < super::FORMAT_VERSION {
            return Err(LakeError::Format1 {
                location: self.location().to_string(),
            });
        }
        let mut total = CompactReport::default();
        for pass in 0..PASSES_MAX {
            let report = self
                .compact_pass_with(meta.cluster_id, all_windows, on_merge)
                .await?;
            if pass == 0 {
                total.files_before = report.files_before;
                total.bytes_before = report.bytes_before;
            }
            total.files_after = report.files_after;
            total.bytes_after = report.bytes_after;
            let merged = !report.merges.is_empty();
            total.merges.extend(report.merges);
            if !merged {
                break;
            }
        }
        if total.merges.is_empty() {
            total.files_after = total.files_before;
            total.bytes_after = total.bytes_before;
        }
        Ok(total)
    }

    /// One compaction pass: completes an interrupted merge, then merges every closed window of
    /// the current file list. `on_merge` is called after each merge; returning `false` stops the
    /// pass there (a merge is never left half done by this).
    pub async fn compact_pass(
        &self,
        cluster_id: u128,
        on_merge: &mut (dyn FnMut(&MergeDone) -> bool + Send),
    ) -> Result<CompactReport, LakeError> {
        self.compact_pass_with(cluster_id, false, on_merge).await
    }

    /// `compact_pass`; with `all_windows`, open windows merge too (see `compact`).
    async fn compact_pass_with(
        &self,
        cluster_id: u128,
        all_windows: bool,
        on_merge: &mut (dyn FnMut(&MergeDone) -> bool + Send),
    ) -> Result<CompactReport, LakeError> {
        let mut report = CompactReport::default();
        if !self.table_exists(Table::Transfers).await? {
            return Ok(report);
        }
        self.ensure_tables(cluster_id).await?;
        let (files, bytes) = self.data_file_totals().await?;
        report.files_before = files;
        report.bytes_before = bytes;
        for done in self.recover(cluster_id).await? {
            let go_on = on_merge(&done);
            report.merges.push(done);
            if !go_on {
                return self.finish_report(report).await;
            }
        }
        // The position first, then the listing: a file committed in between starts after the
        // position, so it is in no closed window.
        let position = self
            .log
            .known_position(Table::Transfers, cluster_id)
            .await?
            .map_or(0, |p| u64::try_from(p).unwrap_or(0));
        let segments = self
            .listing(&[Table::Transfers, Table::Accounts])
            .await?
            .segments();
        let files: Vec<PlanFile> = segments
            .iter()
            .map(|s| PlanFile {
                first_timestamp: s.first_timestamp,
                last_timestamp: s.last_timestamp,
                size: s.transfers_bytes + s.accounts_bytes,
            })
            .collect();
        let horizon = if all_windows { u64::MAX } else { position };
        for merge in plan(&files, horizon) {
            kill_point("planned");
            let done = self
                .merge_segments(&segments[merge.inputs.clone()], cluster_id, None)
                .await?;
            let go_on = on_merge(&done);
            report.merges.push(done);
            if !go_on {
                break;
            }
        }
        self.finish_report(report).await
    }

    async fn finish_report(&self, mut report: CompactReport) -> Result<CompactReport, LakeError> {
        let (files, bytes) = self.data_file_totals().await?;
        report.files_after = files;
        report.bytes_after = bytes;
        Ok(report)
    }

    /// Active transfers and accounts data files, and their bytes.
    async fn data_file_totals(&self) -> Result<(u64, u64), LakeError> {
        let segments = self
            .listing(&[Table::Transfers, Table::Accounts])
            .await?
            .segments();
        let files = segments
            .iter()
            .map(|s| 1 + u64::from(s.accounts_path.is_some()))
            .sum();
        let bytes = segments
            .iter()
            .map(|s| s.transfers_bytes + s.accounts_bytes)
            .sum();
        Ok((files, bytes))
    }

    /// Completes merges a crash interrupted between their two commits: an accounts file with
    /// no transfers twin inside the committed range is a merged accounts file whose transfers
    /// swap did not happen; the transfers files inside its range are merged into its twin.
    pub(crate) async fn recover(&self, cluster_id: u128) -> Result<Vec<MergeDone>, LakeError> {
        let listing = self
            .listing_as_logged(&[Table::Transfers, Table::Accounts])
            .await?;
        let segments = listing.segments();
        let last = segments.iter().map(|s| s.last_timestamp).max();
        let mut done = Vec::new();
        for unpaired in listing.unpaired_accounts() {
            let (first, end) = (unpaired.name.first_timestamp, unpaired.name.last_timestamp);
            if last.is_none_or(|l| first > l) {
                continue; // an orphan of a segment commit: the exporter removes it
            }
            let inside: Vec<SegmentInfo> = segments
                .iter()
                .filter(|s| s.last_timestamp >= first && s.first_timestamp <= end)
                .cloned()
                .collect();
            let exact = inside.first().map(|s| s.first_timestamp) == Some(first)
                && inside.last().map(|s| s.last_timestamp) == Some(end)
                && inside.iter().all(|s| s.accounts_path.is_none());
            if !exact {
                return Err(LakeError::corrupt(
                    &unpaired.path,
                    "an accounts file without its transfers twin inside the committed range, \
                     and the transfers files there do not span exactly its range: not what an \
                     interrupted compaction leaves"
                        .to_string(),
                ));
            }
            let merged = self
                .merge_segments(&inside, cluster_id, Some(unpaired.path.clone()))
                .await?;
            done.push(merged);
        }
        Ok(done)
    }

    /// Merges `segments` (consecutive, of one date) into one transfers file and one accounts
    /// file, checks, writes and commits them. With `accounts_done`, the accounts swap was
    /// committed before (recovery): only the transfers swap is made, pairing with that file.
    async fn merge_segments(
        &self,
        segments: &[SegmentInfo],
        cluster_id: u128,
        accounts_done: Option<Path>,
    ) -> Result<MergeDone, LakeError> {
        self.merge_segments_until(segments, cluster_id, accounts_done, Stop::Never)
            .await
    }

    /// `merge_segments`, stopping early at `stop` (as a crash would: for tests).
    async fn merge_segments_until(
        &self,
        segments: &[SegmentInfo],
        cluster_id: u128,
        accounts_done: Option<Path>,
        stop: Stop,
    ) -> Result<MergeDone, LakeError> {
        assert!(!segments.is_empty(), "a merge has inputs");
        let merged = self
            .merged(segments, cluster_id, accounts_done.is_none())
            .await?;
        kill_point("read");
        // Written before any commit names them: until then they are not data.
        for file in std::iter::once(&merged.transfers).chain(merged.accounts.as_ref()) {
            self.store
                .put(&file.path, PutPayload::from(file.bytes.clone()))
                .await
                .map_err(|e| LakeError::store(&file.path, e))?;
        }
        kill_point("written");
        if stop == Stop::AfterWrite {
            return Err(LakeError::corrupt(&merged.transfers.path, "stopped (test)"));
        }
        let bytes_before = segments
            .iter()
            .map(|s| s.transfers_bytes + s.accounts_bytes)
            .sum();
        let bytes_after =
            merged.transfers.add.size + merged.accounts.as_ref().map_or(0, |a| a.add.size);
        let first = segments[0].clone();
        let inputs = segments.len() as u64;
        let accounts_inputs: Vec<String> = segments
            .iter()
            .filter_map(|s| s.accounts_path.as_ref())
            .map(|p| table_path(Table::Accounts, p))
            .collect();
        let transfers_inputs: Vec<String> = segments
            .iter()
            .map(|s| table_path(Table::Transfers, &s.transfers_path))
            .collect();
        let recovered = accounts_done.is_some();

        let _writes = self.log.lock_writes().await;
        if let Some(accounts) = merged.accounts {
            let request = CommitRequest {
                table: Table::Accounts,
                adds: vec![accounts.add],
                removes: accounts_inputs.clone(),
                position: 0,
                skip_if_covered: false,
                pins: None,
            };
            let info = CompactionInfo {
                removed_files: accounts_inputs.len() as u64,
                rows: merged.accounts_rows,
            };
            self.log
                .commit_compaction(request, cluster_id, info)
                .await?;
            kill_point("accounts-committed");
            if stop == Stop::AfterAccounts {
                return Err(LakeError::corrupt(&merged.transfers.path, "stopped (test)"));
            }
        }
        let pins = Pins {
            accounts: self.log.known_version(Table::Accounts, cluster_id).await?,
            swept_accounts: self
                .log
                .known_version(Table::SweptAccounts, cluster_id)
                .await?,
        };
        let request = CommitRequest {
            table: Table::Transfers,
            adds: vec![merged.transfers.add],
            removes: transfers_inputs,
            position: 0,
            skip_if_covered: false,
            pins: Some(pins),
        };
        let info = CompactionInfo {
            removed_files: inputs,
            rows: merged.events,
        };
        self.log
            .commit_compaction(request, cluster_id, info)
            .await?;
        kill_point("transfers-committed");
        Ok(MergeDone {
            date: first.date,
            first_timestamp: first.first_timestamp,
            last_timestamp: segments[segments.len() - 1].last_timestamp,
            inputs,
            events: merged.events,
            accounts: merged.accounts_rows,
            bytes_before,
            bytes_after,
            recovered,
        })
    }

    /// Reads, merges, encodes and checks the window's files (no write).
    async fn merged(
        &self,
        segments: &[SegmentInfo],
        cluster_id: u128,
        with_accounts: bool,
    ) -> Result<Merged, LakeError> {
        let mut rows: Vec<EventRow> = Vec::new();
        let mut accounts: Vec<AccountRecord> = Vec::new();
        for seg in segments {
            let (meta, events) = self.read_events_checked(seg).await?;
            check_cluster(&meta, Some(cluster_id), &seg.transfers_path)?;
            if let (Some(previous), Some(next)) = (rows.last(), events.first()) {
                if previous.timestamp >= next.timestamp {
                    return Err(LakeError::corrupt(
                        &seg.transfers_path,
                        format!("overlaps the file before it ({})", previous.timestamp),
                    ));
                }
            }
            rows.extend(events);
            if with_accounts {
                if let Some((meta, records)) = self.read_accounts_checked(seg).await? {
                    let path = seg.accounts_path.as_ref().expect("read only if present");
                    check_cluster(&meta, Some(cluster_id), path)?;
                    accounts.extend(records);
                }
            }
        }
        let first = rows[0].timestamp;
        let last = rows[rows.len() - 1].timestamp;
        let accounts = dedupe_accounts(accounts);

        let encoded = parquet::encode_transfer_rows_file(&rows, cluster_id)?;
        let transfers = prepare(Table::Transfers, first, last, encoded);
        let (meta, back) = parquet::decode(
            &TRANSFER_COLUMNS,
            Table::Transfers,
            transfers.bytes.clone().into(),
            &transfers.path,
        )?;
        check_same(&transfers.path, &meta, first, last, &rows, &back)?;

        let accounts_file = if accounts.is_empty() {
            None
        } else {
            let encoded = parquet::encode_accounts_file(&accounts, cluster_id, first, last)?;
            let file = prepare(Table::Accounts, first, last, encoded);
            let (meta, back) = parquet::decode(
                &columns::ACCOUNT_COLUMNS,
                Table::Accounts,
                file.bytes.clone().into(),
                &file.path,
            )?;
            check_same(&file.path, &meta, first, last, &accounts, &back)?;
            Some(file)
        };
        Ok(Merged {
            transfers,
            events: rows.len() as u64,
            accounts_rows: accounts.len() as u64,
            accounts: accounts_file,
        })
    }
}

/// The re-read file must hold exactly `expected`, in order, and say the merged range.
fn check_same<R: PartialEq + std::fmt::Debug>(
    path: &Path,
    meta: &parquet::FileMeta,
    first: u64,
    last: u64,
    expected: &[R],
    found: &[R],
) -> Result<(), LakeError> {
    if (meta.first_timestamp, meta.last_timestamp) != (first, last) {
        return Err(LakeError::corrupt(
            path,
            format!(
                "the merged file says {}..={}, its inputs {first}..={last}",
                meta.first_timestamp, meta.last_timestamp
            ),
        ));
    }
    if found.len() != expected.len() {
        return Err(LakeError::corrupt(
            path,
            format!(
                "the merged file holds {} rows, its inputs {}",
                found.len(),
                expected.len()
            ),
        ));
    }
    if let Some(i) = (0..found.len()).find(|&i| found[i] != expected[i]) {
        return Err(LakeError::corrupt(
            path,
            format!("row {i} of the merged file differs from its input"),
        ));
    }
    Ok(())
}
