//! `Lake::resume_state` against a lake on disk, through a store wrapper that counts listings and
//! the objects read: a session start reads the logs, never a data file.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStoreExt;

use crate::testbed::CountedStore;

use super::layout::{self, Table};
use super::tests::{one_day_segment, swept, CLUSTER};
use super::*;

fn watched_lake(_dir: &std::path::Path, read_delay: Duration) -> (Lake, Arc<CountedStore>) {
    // In memory: `Lake::from_store` needs a store that lists in lexical order.
    let store = Arc::new(CountedStore::new(Arc::new(InMemory::new())).with_read_delay(read_delay));
    (Lake::from_store(store.clone(), "watched"), store)
}

/// `n` committed segments on `n` days (two new accounts each: 10*i+1 and 10*i+2), swept files
/// for accounts 1000.., an orphan accounts file, and a quarantined message.
async fn filled_lake(lake: &Lake, n: u64) -> (Path, Segment) {
    lake.bind_cluster(CLUSTER).await.unwrap();
    for day in 0..n {
        let start = format!("2026-10-{:02}T00:00:00Z", day + 1);
        let segment = one_day_segment(&start, 3, u128::from(day) * 10 + 1);
        lake.commit(&segment, CLUSTER).await.unwrap();
    }
    for page in 0..3u64 {
        let accounts: Vec<AccountRecord> = (0..4u64)
            .map(|i| swept(1000 + u128::from(page * 4 + i), 100 + page * 10 + i))
            .collect();
        let through = accounts[3].timestamp;
        lake.commit_swept(&accounts, through, CLUSTER)
            .await
            .unwrap();
    }
    let crashed = one_day_segment("2026-11-30T00:00:00Z", 2, 900);
    let orphan = lake.commit_accounts_only(&crashed, CLUSTER).await.unwrap();
    lake.quarantine(&Quarantined {
        received_ns: 7,
        reason: "not JSON".into(),
        exchange: "x".into(),
        routing_key: String::new(),
        headers: Vec::new(),
        body: b"{".to_vec(),
    })
    .await
    .unwrap();
    (orphan, crashed)
}

/// Listings of one session start, all of `_delta_log/` directories: each table's log when it is
/// created and when its snapshot is taken (six), the transfers position, the orphan removal's
/// commit; none per data file or commit, whatever the lake's size.
const RESUME_LISTS_MAX: u64 = 8;

#[tokio::test]
async fn resume_state_lists_the_lake_once_and_agrees_with_the_single_questions() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, seen) = watched_lake(dir.path(), Duration::ZERO);
    let (orphan, _) = filled_lake(&lake, 12).await;

    seen.reset();
    let state = lake.resume_state(CLUSTER).await.unwrap();
    let lists = seen.counts().lists;
    let data_reads = seen.counts().data_reads;
    assert!(
        data_reads.is_empty(),
        "a session start reads the logs only, never a data file: {data_reads:?}"
    );
    assert!(
        lists <= RESUME_LISTS_MAX,
        "{lists} listings for one session start: one per table's log and commit, whatever the \
         lake's size"
    );

    assert_eq!(state.meta.cluster_id, CLUSTER);
    assert_eq!(state.orphans_removed, vec![orphan.clone()]);
    assert!(lake
        .listing(&[Table::Transfers, Table::Accounts])
        .await
        .unwrap()
        .orphan_accounts()
        .is_empty());
    assert_eq!(lake.list_segments().await.unwrap().len(), 12);
    assert_eq!(lake.list_swept().await.unwrap().len(), 3);
    // Version 0 creates the table, then one per segment.
    assert_eq!(state.transfers_version, 12);
    assert_eq!(state.swept_through, Some(100 + 20 + 3));
    // The accounts are in the lake, for readers: the session start needed none of them.
    let mut want_ids: HashSet<u128> = (0..12u128).flat_map(|d| [d * 10 + 1, d * 10 + 2]).collect();
    want_ids.extend(1000..1012);
    assert_eq!(lake.load_account_ids().await.unwrap(), want_ids);

    // The same answers, asked one by one (each of these lists the lake again).
    assert_eq!(
        state.committed_last,
        lake.last_committed_timestamp().await.unwrap()
    );
    assert_eq!(
        state.committed_last,
        Some(parse_day_start("2026-10-12T00:00:00Z") + 2)
    );
    assert_eq!(state.swept_through, lake.swept_through().await.unwrap());
    assert!(lake
        .remove_orphan_accounts(CLUSTER)
        .await
        .unwrap()
        .is_empty());

    // A second start finds nothing left to remove and the same position.
    let again = lake.resume_state(CLUSTER).await.unwrap();
    assert!(again.orphans_removed.is_empty());
    assert_eq!(
        (again.committed_last, again.swept_through),
        (state.committed_last, state.swept_through)
    );
}

fn parse_day_start(rfc3339: &str) -> u64 {
    crate::timefmt::parse_rfc3339(rfc3339).unwrap()
}

/// The log objects and data objects a session start reads on a filled lake of `n` segments.
async fn start_reads(n: u64) -> (u64, Vec<Path>) {
    let (lake, seen) = watched_lake(std::path::Path::new("."), Duration::ZERO);
    filled_lake(&lake, n).await;
    seen.reset();
    let state = Lake::from_store(lake.store.clone(), "again")
        .resume_state(CLUSTER)
        .await
        .unwrap();
    assert_eq!(state.transfers_version, n);
    let seen = seen.counts();
    (seen.log_reads, seen.data_reads)
}

#[tokio::test]
async fn a_session_start_reads_no_data_file_however_many_accounts_the_lake_holds() {
    let (small_log, small_data) = start_reads(2).await;
    let (large_log, large_data) = start_reads(28).await;
    assert!(small_data.is_empty(), "{small_data:?}");
    assert!(
        large_data.is_empty(),
        "no accounts, swept or transfers file is read: {large_data:?}"
    );
    // The logs are read (both histories are shorter than a checkpoint interval, so each commit
    // once or twice), never a data file.
    assert!(small_log < large_log, "{small_log} then {large_log}");
}

/// A lake whose swept position moved past its last swept file (a sweep page whose accounts
/// had all taken transfers): the next session resumes the sweep after the position.
#[tokio::test]
async fn the_sweep_resumes_after_its_position_not_after_its_last_file() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, seen) = watched_lake(dir.path(), Duration::ZERO);
    lake.bind_cluster(CLUSTER).await.unwrap();
    lake.commit_swept(&[swept(1, 10), swept(2, 20)], 25, CLUSTER)
        .await
        .unwrap();
    assert_eq!(
        lake.commit_swept(&[], 40, CLUSTER).await.unwrap(),
        CommitOutcome::Committed { bytes: 0 }
    );
    // A retried position-only commit is covered.
    assert_eq!(
        lake.commit_swept(&[], 40, CLUSTER).await.unwrap(),
        CommitOutcome::AlreadyCommitted
    );
    seen.reset();
    let state = Lake::from_store(lake.store.clone(), "again")
        .resume_state(CLUSTER)
        .await
        .unwrap();
    assert_eq!(state.swept_through, Some(40));
    assert_eq!(lake.list_swept().await.unwrap().len(), 1);
    assert!(seen.counts().data_reads.is_empty());
    assert_eq!(
        lake.load_account_ids().await.unwrap(),
        HashSet::from([1, 2])
    );
}

#[tokio::test]
async fn an_empty_lake_resumes_from_the_start_and_is_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, seen) = watched_lake(dir.path(), Duration::ZERO);
    let state = lake.resume_state(CLUSTER).await.unwrap();
    assert!(seen.counts().lists <= RESUME_LISTS_MAX);
    assert_eq!(
        state,
        ResumeState {
            meta: LakeMeta {
                format_version: FORMAT_VERSION,
                cluster_id: CLUSTER
            },
            committed_last: None,
            swept_through: None,
            orphans_removed: Vec::new(),
            transfers_version: 0,
            long_tombstone_retention: Vec::new(),
        }
    );
    assert_eq!(lake.read_meta().await.unwrap().unwrap().cluster_id, CLUSTER);
}

#[tokio::test]
async fn another_clusters_lake_is_refused_before_anything_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, _) = watched_lake(dir.path(), Duration::ZERO);
    let (orphan, _) = filled_lake(&lake, 2).await;
    match lake.resume_state(CLUSTER - 1).await {
        Err(LakeError::ClusterMismatch { lake, requested }) => {
            assert_eq!((lake, requested), (CLUSTER, CLUSTER - 1))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        lake.exists(&orphan).await.unwrap(),
        "the orphan is left alone"
    );
}

#[tokio::test]
async fn an_account_recorded_again_is_merged_and_disagreeing_records_name_the_later_file() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, _) = watched_lake(dir.path(), Duration::from_millis(1));
    lake.bind_cluster(CLUSTER).await.unwrap();
    // Accounts 1 and 2 are in both the first and the third segment, as every segment records
    // the accounts it touches: one record each is read back, the first seen.
    let days = [
        "2026-10-01T00:00:00Z",
        "2026-10-02T00:00:00Z",
        "2026-10-03T00:00:00Z",
    ];
    let segments: Vec<Segment> = days
        .iter()
        .map(|day| one_day_segment(day, 2, if day.contains("-02T") { 5 } else { 1 }))
        .collect();
    for segment in &segments {
        lake.commit(segment, CLUSTER).await.unwrap();
    }
    let (_, records) = lake.read_all().await.unwrap();
    let ids: Vec<u128> = records.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![1, 2, 5, 6]);
    assert_eq!(
        records[0], segments[0].new_accounts[0],
        "the first seen is kept"
    );
    assert_eq!(lake.read_all_accounts().await.unwrap(), records);
    lake.resume_state(CLUSTER).await.unwrap();

    // A fourth segment records account 5 with another code: every reader refuses it, naming
    // that file; the session start, which reads no accounts, does not look.
    let mut broken = one_day_segment("2026-10-04T00:00:00Z", 2, 5);
    broken.new_accounts[0].code += 1;
    lake.commit(&broken, CLUSTER).await.unwrap();
    let fourth = lake.list_segments().await.unwrap()[3]
        .accounts_path
        .clone()
        .unwrap();
    for result in [
        lake.read_all().await.map(|_| ()),
        lake.load_account_ids().await.map(|_| ()),
    ] {
        match result {
            Err(LakeError::Corrupt { path, reason }) => {
                assert_eq!(path, fourth.to_string(), "{reason}");
                assert!(
                    reason.contains("account 5 has records that disagree"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    lake.resume_state(CLUSTER).await.unwrap();
}

#[tokio::test]
async fn a_foreign_object_in_a_table_is_not_lake_data() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, _) = watched_lake(dir.path(), Duration::ZERO);
    filled_lake(&lake, 1).await;
    let stray = Path::from("swept_accounts/notes.txt");
    lake.store
        .put(&stray, PutPayload::from_static(b"x"))
        .await
        .unwrap();
    // Objects outside the tables are not the lake's business.
    lake.store
        .put(&Path::from("README"), PutPayload::from_static(b"x"))
        .await
        .unwrap();
    // The log does not name it: the session starts as if it were not there.
    let state = lake.resume_state(CLUSTER).await.unwrap();
    assert_eq!(state.transfers_version, 1);
    assert_eq!(lake.list_swept().await.unwrap().len(), 3);
    assert_eq!(lake.list_segments().await.unwrap().len(), 1);
}

/// Segment `i` of a long history: one event per second from 2026-10-01, two accounts of its own.
fn nth_segment(i: u64) -> Segment {
    let base = parse_day_start("2026-10-01T00:00:00Z") + i * 1_000_000_000;
    let mut segment = one_day_segment("2026-10-01T00:00:00Z", 1, u128::from(i) * 10 + 1);
    for e in &mut segment.events {
        e.timestamp = base;
        e.transfer.timestamp = base;
    }
    for a in &mut segment.new_accounts {
        a.first_seen_timestamp = base;
    }
    segment
}

/// Log objects read by a session start on a lake of `commits` commits.
async fn log_reads_to_open(commits: u64) -> u64 {
    let (lake, seen) = watched_lake(std::path::Path::new("."), Duration::ZERO);
    for i in 0..commits {
        lake.commit(&nth_segment(i), CLUSTER).await.unwrap();
    }
    seen.reset();
    let state = lake.resume_state(CLUSTER).await.unwrap();
    assert_eq!(state.transfers_version, commits);
    let reads = seen.counts().log_reads;
    eprintln!("opening {commits} commits read {reads} log objects");
    reads
}

#[tokio::test]
async fn opening_a_long_history_reads_a_bounded_number_of_log_objects() {
    // Both histories end 30 commits after a checkpoint: one is 100 commits longer, and opening
    // it reads exactly as many log objects (_last_checkpoint, the checkpoint, the commits after
    // it), fewer than its commits.
    let interval = CHECKPOINT_INTERVAL_COMMITS;
    let short = log_reads_to_open(interval + 30).await;
    let long = log_reads_to_open(2 * interval + 30).await;
    assert_eq!(long, short, "opening reads more as the history grows");
    assert!(long < 2 * interval + 30, "{long}");
}

#[tokio::test]
async fn a_second_writer_is_named_and_refused() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let first = Lake::from_store(store.clone(), "shared");
    let second = Lake::from_store(store, "shared");
    first.commit(&nth_segment(0), CLUSTER).await.unwrap();
    // The second writer commits on top of the first one's commit...
    second.commit(&nth_segment(1), CLUSTER).await.unwrap();
    // ...so the first one's next commit, made on its own last snapshot, loses the version race
    // and is refused, naming the other writer; nothing of it is committed.
    match first.commit(&nth_segment(2), CLUSTER).await {
        Err(e @ LakeError::AnotherWriter { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("another exporter is writing this lake"),
                "{text}"
            );
            assert!(!e.is_transient(), "the exporter stops rather than retries");
        }
        other => panic!("{other:?}"),
    }
    let fresh = Lake::from_store(second.store.clone(), "shared");
    assert_eq!(fresh.list_segments().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_session_start_names_the_tables_that_keep_tombstones_longer_than_a_day() {
    let eight_days = Duration::from_secs(8 * 86_400);
    let long = Lake::open("memory://")
        .await
        .unwrap()
        .with_tombstone_retention(eight_days);
    let state = long.resume_state(CLUSTER).await.unwrap();
    assert_eq!(
        state.long_tombstone_retention,
        vec![
            ("transfers", Some(eight_days)),
            ("accounts", Some(eight_days)),
            ("swept_accounts", Some(eight_days)),
        ]
    );
    // The default (an hour) and a day are not named.
    for lake in [
        Lake::open("memory://").await.unwrap(),
        Lake::open("memory://")
            .await
            .unwrap()
            .with_tombstone_retention(log::TOMBSTONE_RETENTION_WARN),
    ] {
        let state = lake.resume_state(CLUSTER).await.unwrap();
        assert_eq!(state.long_tombstone_retention, vec![]);
    }
}

#[tokio::test]
async fn a_log_whose_first_commits_were_cleaned_up_is_read_from_its_checkpoint_and_never_recreated()
{
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let lake = Lake::from_store(store.clone(), "cleaned");
    let n = CHECKPOINT_INTERVAL_COMMITS + 5;
    for i in 0..n {
        lake.commit(&nth_segment(i), CLUSTER).await.unwrap();
    }
    let before = lake.list_segments().await.unwrap();
    assert_eq!(before.len() as u64, n);
    // What another engine's log cleanup does: the transfers commits before the newest
    // checkpoint are deleted.
    for v in 0..CHECKPOINT_INTERVAL_COMMITS {
        store
            .delete(&layout::log_commit_path(Table::Transfers, v))
            .await
            .unwrap();
    }
    let fresh = Lake::from_store(store.clone(), "cleaned");
    // Read from the checkpoint: every segment still listed (it was read as empty before).
    let after = fresh.list_segments().await.unwrap();
    assert_eq!(after.len(), before.len(), "the table read as empty");
    assert!(after == before, "the table read differently");
    // The chain check names the deleted commits.
    assert!(!fresh.check_chain().await.unwrap().ok());
    // A writer appends after the checkpoint instead of creating the table again at version 0.
    fresh.commit(&nth_segment(n), CLUSTER).await.unwrap();
    assert_eq!(
        fresh.list_segments().await.unwrap().len() as u64,
        n + 1,
        "the new segment is added to the table, not to a new one"
    );
    let zero = layout::log_commit_path(Table::Transfers, 0);
    assert!(
        matches!(
            store.head(&zero).await,
            Err(object_store::Error::NotFound { .. })
        ),
        "version 0 was written again"
    );
}

/// The hole the chain's checkpoint check closes: every reader takes the table from the newest
/// checkpoint, which no link covers. A real checkpoint (written by the Delta kernel at version
/// 100) passes; rewritten without one segment's `add`, it hides that segment from the readers,
/// and the chain check names it.
#[tokio::test]
async fn a_checkpoint_rewritten_to_hide_a_segment_is_named_by_the_chain_check() {
    use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use arrow::array::{Array, AsArray, BooleanArray};

    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let lake = Lake::from_store(store.clone(), "hidden");
    let n = CHECKPOINT_INTERVAL_COMMITS + 5;
    for i in 0..n {
        lake.commit(&nth_segment(i), CLUSTER).await.unwrap();
    }
    let honest = lake.check_chain().await.unwrap();
    assert!(honest.ok(), "{honest:#?}");
    let transfers = &honest.tables[0];
    assert_eq!(transfers.table, "transfers");
    assert_eq!(
        transfers.checkpoints_checked, 1,
        "the kernel's checkpoint at 100"
    );
    assert!(honest.tables.iter().all(|t| t.checkpoints_not_checked == 0));
    assert_eq!(
        lake.segments_of_chain(&honest).unwrap(),
        Some(lake.list_segments().await.unwrap())
    );

    // The checkpoint without the add of the oldest segment's transfers file.
    let victim = transfers.files.iter().min_by_key(|f| f.version).unwrap();
    let checkpoint = Path::from(format!(
        "transfers/_delta_log/{:020}.checkpoint.parquet",
        CHECKPOINT_INTERVAL_COMMITS
    ));
    let bytes = store.get(&checkpoint).await.unwrap().bytes().await.unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut kept = Vec::new();
    let mut dropped = 0;
    for batch in reader {
        let batch = batch.unwrap();
        let add = batch.column_by_name("add").unwrap().as_struct();
        let paths = add.column_by_name("path").unwrap().as_string::<i32>();
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|row| Some(add.is_null(row) || paths.value(row) != victim.path))
            .collect();
        dropped += keep.iter().filter(|k| *k == Some(false)).count();
        kept.push(arrow::compute::filter_record_batch(&batch, &keep).unwrap());
    }
    let mut out = Vec::new();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(&mut out, kept[0].schema(), None).unwrap();
    for batch in &kept {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    assert_eq!(dropped, 1);
    store.put(&checkpoint, out.into()).await.unwrap();

    let fresh = Lake::from_store(store.clone(), "hidden");
    let listed = fresh.list_segments().await.unwrap();
    assert_eq!(
        listed.len() as u64,
        n - 1,
        "the readers no longer see the segment"
    );
    let report = fresh.check_chain().await.unwrap();
    let found: Vec<_> = report.problems().collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].check,
        crate::lake::chain::ChainCheck::CheckpointMismatch
    );
    assert_eq!(found[0].file, checkpoint.to_string());
    assert!(
        found[0].detail.contains(&victim.path),
        "{}",
        found[0].detail
    );
}
