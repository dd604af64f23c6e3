//! Compaction through real (in-memory) lakes: what a pass merges, that the lake reads the same
//! afterwards (every event and account record, time travel included), that an interrupted
//! merge is completed, that the chain check names a compaction that lost an event, and what
//! vacuum deletes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use object_store::{ObjectStoreExt, PutPayload};

use super::super::chain::ChainCheck;
use super::super::commit::prepare;
use super::super::layout::Table;
use super::super::log::{CommitRequest, CompactionInfo, TOMBSTONE_RETENTION};
use super::*;
use crate::cdc::{AccountFields, Event, EventType, TransferFields};
use crate::lake::{CommitOutcome, Segment, VacuumOptions, VacuumReport, VACUUM_RECORD_FILE};
use crate::timefmt::{parse_rfc3339, NS_PER_DAY, NS_PER_SECOND};
use object_store::path::Path;

const CLUSTER: u128 = 0x1234_5678_9abc_def0_1234_5678_9abc_def0;
const ACCOUNTS: u128 = 40;

fn account(id: u128, posted: u128) -> AccountFields {
    AccountFields {
        id,
        debits_posted: posted,
        credits_posted: posted / 2,
        user_data_128: id * 3,
        user_data_64: id as u64 * 5,
        user_data_32: id as u32 * 7,
        code: 11,
        timestamp: id as u64 + 1,
        ..Default::default()
    }
}

/// One segment per `step_ns` from `start`, `events` events each (a nanosecond apart), the
/// accounts recorded the first time they appear (as the exporter does).
fn segments(
    start: u64,
    count: u64,
    step_ns: u64,
    events: u64,
    known: &mut HashSet<u128>,
) -> Vec<Segment> {
    (0..count)
        .map(|s| {
            let base = start + s * step_ns;
            let events: Vec<Event> = (0..events)
                .map(|i| {
                    let n = u128::from(s * events + i);
                    let ts = base + i;
                    Event {
                        timestamp: ts,
                        event_type: EventType::SinglePhase,
                        ledger: 1,
                        transfer: TransferFields {
                            id: (u128::from(ts) << 8) | 1,
                            amount: n + 1,
                            timestamp: ts,
                            ..Default::default()
                        },
                        debit_account: account(1 + n % ACCOUNTS, n * 10),
                        credit_account: account(1 + (n * 7 + 3) % ACCOUNTS, n * 10 + 1),
                    }
                })
                .collect();
            Segment::recording_first_seen(events, known)
        })
        .collect()
}

async fn commit_all(lake: &Lake, segments: &[Segment]) {
    for s in segments {
        let outcome = lake.commit(s, CLUSTER).await.unwrap();
        assert!(
            matches!(outcome, CommitOutcome::Committed { .. }),
            "{outcome:?}"
        );
    }
}

fn all_events(segments: &[Segment]) -> Vec<Event> {
    segments.iter().flat_map(|s| s.events.clone()).collect()
}

/// The chain has no problem, and the segments it has active are those the tables' snapshots
/// list (what `verify` reads in their place).
async fn assert_chain_whole(lake: &Lake) {
    let report = lake.check_chain().await.unwrap();
    let problems: Vec<_> = report.problems().collect();
    assert!(problems.is_empty(), "{problems:?}");
    let of_chain = lake.segments_of_chain(&report).unwrap();
    assert_eq!(of_chain, Some(lake.list_segments().await.unwrap()));
}

fn t0() -> u64 {
    parse_rfc3339("2026-11-21T00:00:00Z").unwrap()
}

async fn pass(lake: &Lake) -> CompactReport {
    lake.compact_pass(CLUSTER, &mut |_| true).await.unwrap()
}

/// Twelve minutes of segments committed to a lake in memory, one every two seconds, 3 events
/// each: 00:00-00:05 and 00:05-00:10 are closed windows, 00:10-00:12 is open. With the accounts
/// the segments recorded.
async fn twelve_minutes() -> (Lake, Vec<Segment>, HashSet<u128>) {
    let lake = Lake::open("memory://").await.unwrap();
    let mut known = HashSet::new();
    let segs = segments(t0(), 360, 2 * NS_PER_SECOND, 3, &mut known);
    commit_all(&lake, &segs).await;
    (lake, segs, known)
}

#[tokio::test]
async fn a_pass_merges_the_closed_windows_and_the_lake_reads_the_same() {
    let (lake, segs, mut known) = twelve_minutes().await;
    let (events_before, accounts_before) = lake.read_all().await.unwrap();
    assert_eq!(events_before, all_events(&segs));
    let version_before = lake.transfers_version().await.unwrap().unwrap();

    let report = pass(&lake).await;
    assert_eq!(report.merges.len(), 2, "{report:?}");
    assert_eq!(report.merges[0].inputs, 150);
    assert_eq!(report.merges[1].inputs, 150);
    assert!(report.merges.iter().all(|m| !m.recovered));
    assert_eq!(report.merges.iter().map(|m| m.events).sum::<u64>(), 900);
    let listed = lake.list_segments().await.unwrap();
    assert_eq!(listed.len(), 2 + 60);
    assert!(report.bytes_after < report.bytes_before);
    // Every event and account record, exactly, in order.
    let (events, accounts) = lake.read_all().await.unwrap();
    assert_eq!(events, events_before);
    assert_eq!(accounts, accounts_before);
    // The consumer position did not move and the exporter resumes where it was.
    let resume = lake.resume_state(CLUSTER).await.unwrap();
    assert_eq!(
        resume.committed_last,
        Some(segs.last().unwrap().events.last().unwrap().timestamp)
    );
    assert_eq!(
        resume.orphans_removed,
        Vec::<object_store::path::Path>::new()
    );
    // The chain verifies, compaction commits included, and checks them.
    assert_chain_whole(&lake).await;
    // Time travel to before the compaction reads the same lake from the old files.
    let (events_then, _) = Lake::from_store(lake.store.clone(), "then")
        .at_version(version_before)
        .read_all()
        .await
        .unwrap();
    assert_eq!(events_then, events_before);
    // A second pass has nothing to merge.
    assert!(pass(&lake).await.merges.is_empty());
    // The exporter goes on; once the day is over the whole day becomes one file.
    let next_day = segments(t0() + NS_PER_DAY, 2, NS_PER_SECOND, 1, &mut known);
    commit_all(&lake, &next_day).await;
    let report = pass(&lake).await;
    assert_eq!(report.merges.len(), 1);
    let listed = lake.list_segments().await.unwrap();
    assert_eq!(listed.len(), 1 + 2, "{listed:?}");
    let (events, accounts) = lake.read_all().await.unwrap();
    let mut want = events_before.clone();
    want.extend(all_events(&next_day));
    assert_eq!(events, want);
    assert_eq!(accounts, accounts_before);
    assert_chain_whole(&lake).await;
}

/// A running exporter's compaction pass reads the snapshots its own commits left (`Log::snapshot`)
/// and lists no `_delta_log`: on a local directory a listing reads the whole directory, which
/// grows by a commit a second. What it merges, and what a fresh reader of the same store lists
/// and reads afterwards, are as the log says.
#[tokio::test]
async fn a_writers_compaction_pass_lists_no_log_and_a_fresh_reader_agrees() {
    let store = Arc::new(crate::testbed::CountedStore::new(Arc::new(
        object_store::memory::InMemory::new(),
    )));
    let lake = Lake::from_store(store.clone(), "counted");
    let mut known = HashSet::new();
    // Six minutes, then a pass (00:00-00:05 closes), six more, then the pass measured.
    let segs = segments(t0(), 360, 2 * NS_PER_SECOND, 3, &mut known);
    commit_all(&lake, &segs[..180]).await;
    assert_eq!(pass(&lake).await.merges.len(), 1);
    commit_all(&lake, &segs[180..]).await;
    store.reset();
    let report = pass(&lake).await;
    assert_eq!(report.merges.len(), 1, "{report:?}");
    assert_eq!(report.merges[0].inputs, 150);
    let counts = store.counts();
    assert_eq!(counts.log_lists, 0, "{counts:?}");
    // A reader that has committed nothing builds its snapshots from the log (and is counted).
    let fresh = Lake::from_store(store.clone(), "fresh");
    let listed = fresh.list_segments().await.unwrap();
    assert!(store.counts().log_lists > 0);
    assert_eq!(listed.len(), 2 + 60);
    assert_eq!(listed, lake.list_segments().await.unwrap());
    assert_eq!(
        fresh.transfers_version().await.unwrap(),
        lake.transfers_version().await.unwrap()
    );
    let (events, accounts) = fresh.read_all().await.unwrap();
    assert_eq!(events, all_events(&segs));
    assert_eq!((events, accounts), lake.read_all().await.unwrap());
    assert_chain_whole(&fresh).await;
}

#[test]
fn account_records_are_deduplicated_keeping_the_first_seen() {
    let record = |id: u128, first_seen: u64| AccountRecord {
        id,
        ledger: 1,
        code: 2,
        timestamp: id as u64,
        first_seen_timestamp: first_seen,
        ..Default::default()
    };
    let records = vec![
        record(5, 20),
        record(6, 21),
        record(5, 10),
        record(7, 30),
        record(6, 21),
        record(5, 10),
    ];
    assert_eq!(
        dedupe_accounts(records),
        vec![record(5, 10), record(6, 21), record(7, 30)]
    );
}

#[tokio::test]
async fn a_merged_accounts_file_records_each_account_once() {
    // Segments that each record every account they touch (duplicates across files): the
    // merged accounts file keeps one record per id, the earliest.
    let lake = Lake::open("memory://").await.unwrap();
    let mut segs = segments(t0(), 20, NS_PER_SECOND, 2, &mut HashSet::new());
    for s in &mut segs {
        let mut seen = HashSet::new();
        s.new_accounts = s
            .events
            .iter()
            .flat_map(|e| [(e, &e.debit_account), (e, &e.credit_account)])
            .filter(|(_, a)| seen.insert(a.id))
            .map(|(e, a)| AccountRecord::from_event_account(a, e.ledger, e.timestamp))
            .collect();
    }
    commit_all(&lake, &segs).await;
    let report = lake.compact_pass(CLUSTER, &mut |_| true).await.unwrap();
    assert!(report.merges.is_empty(), "the window is open");
    let next = segments(t0() + NS_PER_DAY, 1, NS_PER_SECOND, 1, &mut HashSet::new());
    commit_all(&lake, &next).await;
    let report = pass(&lake).await;
    assert_eq!(report.merges.len(), 1);
    let merged = &lake.list_segments().await.unwrap()[0];
    let records = lake.read_accounts(merged).await.unwrap();
    let want = dedupe_accounts(segs.iter().flat_map(|s| s.new_accounts.clone()).collect());
    assert_eq!(records, want);
    let ids: HashSet<u128> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), records.len());
    assert_chain_whole(&lake).await;
}

#[tokio::test]
async fn a_merge_interrupted_between_its_two_commits_is_completed_and_never_removed() {
    let lake = Lake::open("memory://").await.unwrap();
    let mut known = HashSet::new();
    let segs = segments(t0(), 8, NS_PER_SECOND, 2, &mut known);
    commit_all(&lake, &segs).await;
    let next = segments(t0() + NS_PER_DAY, 1, NS_PER_SECOND, 1, &mut known);
    commit_all(&lake, &next).await;
    let (events_before, accounts_before) = lake.read_all().await.unwrap();

    let day = lake.list_segments().await.unwrap()[..8].to_vec();
    let stopped = lake
        .merge_segments_until(&day, CLUSTER, None, Stop::AfterAccounts)
        .await;
    assert!(stopped.is_err());
    // The accounts swap is committed, the transfers swap is not: the merged accounts file has
    // no twin but lies inside the committed range, so it is not an orphan.
    let listing = lake
        .listing_as_logged(&[Table::Transfers, Table::Accounts])
        .await
        .unwrap();
    assert_eq!(listing.unpaired_accounts().len(), 1);
    assert!(listing.orphan_accounts().is_empty());
    assert!(listing.interrupted_compaction());
    // The chain's active files are not read in place of the snapshots then.
    let chain = lake.check_chain().await.unwrap();
    assert_eq!(lake.segments_of_chain(&chain).unwrap(), None);
    // Readers see the lake as it was before the merge: every event and account record.
    assert_eq!(
        lake.read_all().await.unwrap(),
        (events_before.clone(), accounts_before.clone())
    );
    // An exporter starting now removes nothing.
    assert!(lake
        .resume_state(CLUSTER)
        .await
        .unwrap()
        .orphans_removed
        .is_empty());
    // The next pass completes it first.
    let report = pass(&lake).await;
    assert!(report.merges[0].recovered, "{report:?}");
    assert_eq!(report.merges[0].inputs, 8);
    let (events, accounts) = lake.read_all().await.unwrap();
    assert_eq!(events, events_before);
    assert_eq!(accounts, accounts_before);
    assert_eq!(lake.list_segments().await.unwrap().len(), 2);
    assert_chain_whole(&lake).await;
}

#[tokio::test]
async fn a_merge_interrupted_before_its_commits_leaves_a_note_and_is_redone() {
    let lake = Lake::open("memory://").await.unwrap();
    let mut known = HashSet::new();
    let segs = segments(t0(), 8, NS_PER_SECOND, 2, &mut known);
    commit_all(&lake, &segs).await;
    commit_all(
        &lake,
        &segments(t0() + NS_PER_DAY, 1, NS_PER_SECOND, 1, &mut known),
    )
    .await;
    let (events_before, _) = lake.read_all().await.unwrap();
    let day = lake.list_segments().await.unwrap()[..8].to_vec();
    assert!(lake
        .merge_segments_until(&day, CLUSTER, None, Stop::AfterWrite)
        .await
        .is_err());
    let report = lake.check_chain().await.unwrap();
    assert!(report.ok(), "{:?}", report.problems().collect::<Vec<_>>());
    let notes: Vec<_> = report.tables.iter().flat_map(|t| t.notes.iter()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().all(|n| n.check == ChainCheck::FileUncommitted));
    assert_eq!(lake.read_all().await.unwrap().0, events_before);
    let report = pass(&lake).await;
    assert_eq!(report.merges.len(), 1);
    assert_eq!(lake.read_all().await.unwrap().0, events_before);
    // The same merge wrote the same objects: nothing is left unreferenced.
    let report = lake.check_chain().await.unwrap();
    assert!(report.ok());
    assert!(
        report.tables.iter().all(|t| t.notes.is_empty()),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_compaction_that_loses_an_event_is_a_problem_verify_names() {
    let lake = Lake::open("memory://").await.unwrap();
    let mut known = HashSet::new();
    let segs = segments(t0(), 4, NS_PER_SECOND, 3, &mut known);
    commit_all(&lake, &segs).await;
    let day = lake.list_segments().await.unwrap();
    // A writer that drops the last event of the window and commits the swap anyway.
    let mut rows = Vec::new();
    for s in &day {
        rows.extend(lake.read_events(s).await.unwrap());
    }
    rows.pop();
    let (first, last) = (rows[0].timestamp, rows[rows.len() - 1].timestamp);
    let encoded = parquet::encode_transfer_rows_file(&rows, CLUSTER).unwrap();
    let file = prepare(Table::Transfers, first, last, encoded);
    lake.store
        .put(&file.path, PutPayload::from(file.bytes.clone()))
        .await
        .unwrap();
    let request = CommitRequest {
        table: Table::Transfers,
        adds: vec![file.add],
        removes: day
            .iter()
            .map(|s| table_path(Table::Transfers, &s.transfers_path))
            .collect(),
        position: 0,
        skip_if_covered: false,
        pins: None,
    };
    let info = CompactionInfo {
        removed_files: day.len() as u64,
        rows: rows.len() as u64,
    };
    lake.log
        .commit_compaction(request, CLUSTER, info)
        .await
        .unwrap();
    let report = lake.check_chain().await.unwrap();
    let problems: Vec<_> = report.problems().collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].check, ChainCheck::CompactionMismatch);
    assert_eq!(problems[0].file, file.path.to_string());
    assert!(
        problems[0].detail.contains("11 rows"),
        "{}",
        problems[0].detail
    );
}

#[tokio::test]
async fn vacuum_deletes_only_files_removed_longer_ago_than_the_retention() {
    let lake = Lake::open("memory://").await.unwrap();
    let mut known = HashSet::new();
    let segs = segments(t0(), 10, NS_PER_SECOND, 2, &mut known);
    commit_all(&lake, &segs).await;
    commit_all(
        &lake,
        &segments(t0() + NS_PER_DAY, 2, NS_PER_SECOND, 1, &mut known),
    )
    .await;
    let before = lake.transfers_version().await.unwrap().unwrap();
    let (events_before, accounts_before) = lake.read_all().await.unwrap();
    let removed_segments = lake.list_segments().await.unwrap()[..10].to_vec();
    pass(&lake).await;
    let now = crate::timefmt::now_ms();
    let hour = Duration::from_secs(3_600);

    // Removed a moment ago: kept.
    let report = lake.vacuum(hour, false, now).await.unwrap();
    assert!(report.deleted.is_empty());
    let removed_files = removed_segments
        .iter()
        .map(|s| 1 + u64::from(s.accounts_path.is_some()))
        .sum::<u64>();
    assert_eq!(report.kept_recent, removed_files);
    // Two hours later, a dry run lists them and deletes nothing.
    let later = now + 2 * 3_600_000;
    let dry = lake.vacuum(hour, true, later).await.unwrap();
    assert_eq!(dry.deleted.len() as u64, removed_files);
    assert!(lake
        .store
        .head(&removed_segments[0].transfers_path)
        .await
        .is_ok());
    // For real: exactly the removed files go, never an active one.
    let done = lake.vacuum(hour, false, later).await.unwrap();
    assert_eq!(done.deleted, dry.deleted);
    for s in &removed_segments {
        assert!(lake.store.head(&s.transfers_path).await.is_err());
    }
    let (events, accounts) = lake.read_all().await.unwrap();
    assert_eq!(events, events_before);
    assert_eq!(accounts, accounts_before);
    assert_chain_whole(&lake).await;
    // Again: nothing more to do, and nothing read (the record says everything before the
    // newest commit is gone); a rescan reads everything and finds them deleted.
    let again = lake.vacuum(hour, false, later).await.unwrap();
    assert!(again.deleted.is_empty());
    assert!(
        again.tables.iter().all(|t| t.commits_read == 0),
        "{again:?}"
    );
    let rescan = VacuumOptions {
        retain: hour,
        dry_run: false,
        rescan: true,
    };
    let again = lake.vacuum_with(&rescan, later).await.unwrap();
    assert!(again.deleted.is_empty());
    assert_eq!(again.already_deleted, removed_files);
    // Time travel to before the compaction says what is missing, and why.
    let err = Lake::from_store(lake.store.clone(), "then")
        .at_version(before)
        .read_all()
        .await
        .unwrap_err();
    assert!(
        matches!(err, LakeError::Vacuumed { version, .. } if version == before),
        "{err}"
    );
    assert!(err.to_string().contains("ledgerlake vacuum"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_alongside_commits_loses_and_duplicates_nothing() {
    let lake = Arc::new(Lake::open("memory://").await.unwrap());
    let mut known = HashSet::new();
    // Segments every 20 s over 40 minutes, committed while passes run.
    let segs = segments(t0(), 120, 20 * NS_PER_SECOND, 2, &mut known);
    let writer = {
        let lake = lake.clone();
        let segs = segs.clone();
        tokio::spawn(async move {
            for s in &segs {
                lake.commit(s, CLUSTER).await.unwrap();
            }
        })
    };
    let mut merges = 0;
    while !writer.is_finished() {
        merges += pass(&lake).await.merges.len();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.await.unwrap();
    merges += pass(&lake).await.merges.len();
    assert!(merges >= 7, "{merges} merges");
    let (events, _) = lake.read_all().await.unwrap();
    assert_eq!(events, all_events(&segs));
    assert_chain_whole(&lake).await;
    let resume = lake.resume_state(CLUSTER).await.unwrap();
    assert_eq!(
        resume.committed_last,
        Some(segs.last().unwrap().events[1].timestamp)
    );
}

#[tokio::test]
async fn a_compaction_removes_files_without_their_statistics_and_adds_with_them() {
    let (lake, segs, _) = twelve_minutes().await;
    let before = lake.transfers_version().await.unwrap().unwrap();
    assert_eq!(pass(&lake).await.merges.len(), 2);
    let after = lake.transfers_version().await.unwrap().unwrap();
    let (mut removes, mut adds) = (0, 0);
    for version in before + 1..=after {
        let path = super::super::layout::log_commit_path(Table::Transfers, version);
        let bytes = lake.store.get(&path).await.unwrap().bytes().await.unwrap();
        for line in std::str::from_utf8(&bytes).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(remove) = action.get("remove") {
                removes += 1;
                // Every checkpoint repeats the removes of the retention window: no stats there.
                assert!(remove.get("stats").is_none_or(|s| s.is_null()), "{line}");
                assert!(remove["size"].as_u64().unwrap() > 0, "{line}");
                assert!(
                    remove["path"].as_str().unwrap().ends_with(".parquet"),
                    "{line}"
                );
            }
            if let Some(add) = action.get("add") {
                adds += 1;
                // Readers skip files by the adds' statistics: they stay.
                let stats = add["stats"].as_str().unwrap();
                assert!(stats.contains("\"numRecords\":450"), "{line}");
            }
        }
    }
    assert_eq!((removes, adds), (300, 2));
    // The chain still verifies, the compaction commits included.
    assert_chain_whole(&lake).await;
    let (events, _) = lake.read_all().await.unwrap();
    assert_eq!(events, all_events(&segs));
}

/// The remove actions of a table's checkpoint at `version`.
async fn checkpoint_removes(lake: &Lake, version: u64) -> usize {
    let path = object_store::path::Path::from(format!(
        "transfers/_delta_log/{version:020}.checkpoint.parquet"
    ));
    let bytes = lake.store.get(&path).await.unwrap().bytes().await.unwrap();
    let reader = ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut removes = 0;
    for batch in reader {
        let batch = batch.unwrap();
        let remove = batch.column_by_name("remove").unwrap();
        removes += remove.len() - remove.null_count();
    }
    removes
}

#[tokio::test]
async fn checkpoints_drop_the_removes_older_than_the_tombstone_retention_and_vacuum_still_sees_them(
) {
    // Two lakes with the same history: one with the default retention (an hour), one with a
    // second. 360 segments (versions 1..=360), two merges removing 300 files, then segments up
    // to the checkpoint at version 400, written after the short retention has passed.
    let short = Lake::open("memory://")
        .await
        .unwrap()
        .with_tombstone_retention(Duration::from_secs(1));
    let default = Lake::open("memory://").await.unwrap();
    for (lake, retention) in [(&short, 1), (&default, TOMBSTONE_RETENTION.as_secs())] {
        let mut known = HashSet::new();
        let segs = segments(t0(), 360, 2 * NS_PER_SECOND, 3, &mut known);
        commit_all(lake, &segs).await;
        assert_eq!(
            lake.log
                .tombstone_retention(Table::Transfers)
                .await
                .unwrap(),
            Some(Duration::from_secs(retention))
        );
        assert_eq!(pass(lake).await.merges.len(), 2);
        // The 300 removes are in the checkpoints written while they are within the retention.
        let version = lake.transfers_version().await.unwrap().unwrap();
        assert_eq!(version, 362);
        if retention == 1 {
            tokio::time::sleep(Duration::from_millis(1_100)).await;
        }
        let later = segments(
            t0() + 720 * NS_PER_SECOND,
            38,
            2 * NS_PER_SECOND,
            3,
            &mut known,
        );
        commit_all(lake, &later).await;
        assert_eq!(lake.transfers_version().await.unwrap().unwrap(), 400);
        assert_eq!(
            lake.resume_state(CLUSTER)
                .await
                .unwrap()
                .long_tombstone_retention,
            vec![]
        );
    }
    assert_eq!(checkpoint_removes(&default, 400).await, 300);
    assert_eq!(checkpoint_removes(&short, 400).await, 0);
    // ledgerlake's vacuum reads the removes from the commits: it still finds all 300.
    let report = short
        .vacuum(Duration::from_secs(1), true, crate::timefmt::now_ms())
        .await
        .unwrap();
    assert_eq!(
        report
            .deleted
            .iter()
            .filter(|f| f.table == "transfers")
            .count(),
        300
    );
    // The transfers checkpoints at 100, 200 and 300 were superseded by 400's more than a
    // second ago.
    let superseded: Vec<u64> = report
        .checkpoints_deleted
        .iter()
        .filter(|c| c.table == "transfers")
        .map(|c| c.version)
        .collect();
    assert_eq!(superseded, vec![100, 200, 300]);
    let done = short
        .vacuum(Duration::from_secs(1), false, crate::timefmt::now_ms())
        .await
        .unwrap();
    assert_eq!(done.checkpoints_deleted, report.checkpoints_deleted);
    let log_dir = object_store::path::Path::from("transfers/_delta_log");
    let left: Vec<String> = short
        .list(Some(&log_dir))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.location.filename().map(str::to_string))
        .filter(|n| n.contains("checkpoint."))
        .collect();
    assert_eq!(left, vec![format!("{:020}.checkpoint.parquet", 400)]);
    // The lake reads the same, every event in order; a version the deleted checkpoints served
    // is replayed from its commits; the chain and a session start still hold.
    let (events, _) = short.read_all().await.unwrap();
    let (expected, _) = default.read_all().await.unwrap();
    assert_eq!(events, expected);
    let at = |lake: &Lake| Lake::from_store(lake.store.clone(), "memory").at_version(399);
    assert_eq!(
        at(&short).read_all().await.unwrap().0,
        at(&default).read_all().await.unwrap().0
    );
    assert_chain_whole(&short).await;
    let resume = short.resume_state(CLUSTER).await.unwrap();
    assert_eq!(resume.transfers_version, 400);
}

/// The vacuum record: a second run reads only the commits from the oldest one whose removed
/// files the first run kept, decides exactly as a full read does, and a record that cannot be
/// right is ignored, saying why.
#[tokio::test]
async fn vacuum_reads_only_the_commits_after_what_an_earlier_run_deleted() {
    let lake = Lake::open("memory://").await.unwrap();
    let mut known = HashSet::new();
    let mut day = |d: u64, n: u64| segments(t0() + d * NS_PER_DAY, n, NS_PER_SECOND, 2, &mut known);
    let (first, second) = (day(0, 8), day(1, 8));
    let (closing, closing_again) = (day(2, 3), day(3, 1));
    commit_all(&lake, &first).await;
    commit_all(&lake, &second).await;
    commit_all(&lake, &closing).await;
    // Days 0 and 1 are compacted; their files are the ones removed.
    let removed_days: usize = lake
        .list_segments()
        .await
        .unwrap()
        .iter()
        .filter(|s| s.first_timestamp < t0() + 2 * NS_PER_DAY)
        .map(|s| 1 + usize::from(s.accounts_path.is_some()))
        .sum();
    pass(&lake).await;
    let hour = Duration::from_secs(3_600);
    let now = crate::timefmt::now_ms();
    let full = |dry_run| VacuumOptions {
        retain: hour,
        dry_run,
        rescan: true,
    };
    let transfers = |r: &VacuumReport| {
        r.tables
            .iter()
            .find(|t| t.table == "transfers")
            .cloned()
            .unwrap()
    };
    let head = lake.transfers_version().await.unwrap().unwrap();

    // Nothing old enough yet: the record points at the compaction commits, which the next run
    // must read again.
    let kept = lake.vacuum(hour, false, now).await.unwrap();
    assert!(kept.recorded && kept.deleted.is_empty() && kept.kept_recent > 0);
    assert_eq!(transfers(&kept).read_from_version, 0);
    assert_eq!(transfers(&kept).commits_read, head + 1);
    let record: serde_json::Value =
        serde_json::from_slice(&lake.get(&Path::from(VACUUM_RECORD_FILE)).await.unwrap()).unwrap();
    let from: u64 = record["read_from"]["transfers"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(from > 0 && from <= head, "{record}");

    // More segments, another compaction: two hours later the next run reads from the record
    // on, and lists exactly what a full read lists; a dry run records nothing.
    let removed_day_2: usize = lake
        .list_segments()
        .await
        .unwrap()
        .iter()
        .filter(|s| s.first_timestamp >= t0() + 2 * NS_PER_DAY)
        .map(|s| 1 + usize::from(s.accounts_path.is_some()))
        .sum();
    commit_all(&lake, &closing_again).await;
    pass(&lake).await; // compacts day 2
    let head = lake.transfers_version().await.unwrap().unwrap();
    let later = now + 2 * 3_600_000;
    let dry = lake.vacuum(hour, true, later).await.unwrap();
    assert!(!dry.recorded);
    assert_eq!(transfers(&dry).read_from_version, from);
    assert_eq!(transfers(&dry).commits_read, head + 1 - from);
    let dry_full = lake.vacuum_with(&full(true), later).await.unwrap();
    assert_eq!(transfers(&dry_full).commits_read, head + 1);
    assert_eq!(dry.deleted, dry_full.deleted);
    assert_eq!(dry.kept_recent, dry_full.kept_recent);
    assert_eq!(dry.deleted.len(), removed_days + removed_day_2);
    assert!(removed_day_2 > 1, "day 2 was compacted too");
    let done = lake.vacuum(hour, false, later).await.unwrap();
    assert_eq!(done.deleted, dry.deleted);
    assert!(done.recorded);
    let again = lake.vacuum(hour, false, later).await.unwrap();
    assert_eq!(transfers(&again).read_from_version, head + 1);
    assert_eq!(transfers(&again).commits_read, 0);
    let (events, _) = lake.read_all().await.unwrap();
    assert_eq!(
        events.len(),
        [&first, &second, &closing, &closing_again]
            .iter()
            .map(|d| d.iter().map(|s| s.events.len()).sum::<usize>())
            .sum::<usize>()
    );
    assert_chain_whole(&lake).await;

    // A record beyond the log (a lake put back from an older copy) or unreadable: ignored,
    // the report says why, and the whole log is read.
    for (bytes, why) in [
        (
            br#"{"format_version":1,"read_from":{"transfers":"1000000"}}"#.to_vec(),
            "beyond its log",
        ),
        (b"not json".to_vec(), "not readable"),
        (
            br#"{"format_version":9,"read_from":{}}"#.to_vec(),
            "format version 9",
        ),
    ] {
        lake.store
            .put(&Path::from(VACUUM_RECORD_FILE), PutPayload::from(bytes))
            .await
            .unwrap();
        let report = lake.vacuum(hour, true, later).await.unwrap();
        let t = transfers(&report);
        assert_eq!((t.read_from_version, t.commits_read), (0, head + 1));
        assert!(
            t.record_ignored.as_deref().is_some_and(|w| w.contains(why)),
            "{t:?}"
        );
        assert_eq!(
            report.already_deleted,
            (removed_days + removed_day_2) as u64
        );
    }
}
