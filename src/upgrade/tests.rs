//! The replay alone, from a format-1 lake into a separate lake through the current commit path:
//! grouping by date, swept files before the events that need them, the stop after K commits.

use std::collections::HashSet;

use super::*;
use crate::cdc::{AccountFields, EventType, TransferFields};
use crate::timefmt::NS_PER_DAY;

const CLUSTER: u128 = 77;
const DAY0: u64 = 20_000 * NS_PER_DAY;

fn account(id: u128) -> AccountFields {
    AccountFields {
        id,
        debits_posted: u128::MAX - id,
        user_data_128: u128::MAX,
        code: 9,
        // 1..=9 exist before the first day; 100.. are created on day 1, between events.
        timestamp: if id >= 100 {
            DAY0 + NS_PER_DAY + 500 + id as u64
        } else {
            DAY0 - 100 + id as u64
        },
        ..AccountFields::default()
    }
}

fn event(timestamp: u64, debit: u128, credit: u128) -> Event {
    Event {
        timestamp,
        event_type: EventType::SinglePhase,
        ledger: 1,
        transfer: TransferFields {
            id: u128::from(timestamp),
            amount: u128::MAX,
            timestamp,
            ..TransferFields::default()
        },
        debit_account: account(debit),
        credit_account: account(credit),
    }
}

fn swept(id: u128) -> AccountRecord {
    let a = account(id);
    AccountRecord::from_event_account(&a, 1, a.timestamp)
}

/// Two days, two segments each; swept files: accounts 1..=2 (before everything) and 100..=101
/// (created on day 1 after its first segment, used by its second).
async fn source() -> (tempfile::TempDir, Format1Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let v1 = Format1Lake::of(&lake);
    v1.write_meta(CLUSTER).await.unwrap();
    v1.write_swept(&[swept(1), swept(2)], CLUSTER)
        .await
        .unwrap();
    v1.write_swept(&[swept(100), swept(101)], CLUSTER)
        .await
        .unwrap();
    let mut known: HashSet<u128> = [1, 2, 100, 101].into();
    let segments = [
        vec![event(DAY0 + 10, 1, 3), event(DAY0 + 20, 3, 4)],
        vec![event(DAY0 + 30, 2, 5)],
        vec![event(DAY0 + NS_PER_DAY + 10, 5, 6)],
        vec![
            event(DAY0 + NS_PER_DAY + 1_000, 100, 101),
            event(DAY0 + NS_PER_DAY + 1_001, 101, 7),
        ],
    ];
    for events in segments {
        let segment = Segment::recording_first_seen(events, &mut known);
        v1.write_segment(&segment, CLUSTER).await.unwrap();
    }
    (dir, v1)
}

fn empty_report() -> UpgradeReport {
    UpgradeReport {
        lake: String::new(),
        cluster_id: CLUSTER.to_string(),
        outcome: UpgradeOutcome::Stopped,
        format_before: 1,
        format_after: 1,
        format1_segments: 0,
        format1_swept_files: 0,
        format1_orphans: 0,
        events: 0,
        accounts: 0,
        swept_accounts: 0,
        commits: 0,
        already_committed: 0,
        bytes_written: 0,
        format1_files_deleted: 0,
        elapsed_ms: 0,
    }
}

async fn replay(
    v1: &Format1Lake,
    target: &Lake,
    commits_max: Option<u64>,
) -> (bool, UpgradeReport) {
    let listing = v1.listing().await.unwrap();
    let mut report = empty_report();
    let finished = Replay {
        lake: target,
        v1,
        cluster_id: CLUSTER,
        commits_max,
        report: &mut report,
        tables_ready: false,
    }
    .run(&listing, &NoProgress)
    .await
    .unwrap();
    (finished, report)
}

fn sorted(mut accounts: Vec<AccountRecord>) -> Vec<AccountRecord> {
    accounts.sort_by_key(|a| a.id);
    accounts
}

#[tokio::test]
async fn the_replay_carries_every_event_and_account_over_in_one_file_per_date() {
    let (_src, v1) = source().await;
    let (want_events, want_accounts) = v1.read_all().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    target.bind_cluster(CLUSTER).await.unwrap();
    let (finished, report) = replay(&v1, &target, None).await;
    assert!(finished);
    // Day 0's two segments and day 1's two become one commit each; two swept files.
    assert_eq!((report.commits, report.already_committed), (4, 0));
    assert_eq!(
        (report.events, report.accounts, report.swept_accounts),
        (6, 5, 4)
    );
    let (events, accounts) = target.read_all().await.unwrap();
    assert_eq!(events, want_events);
    assert_eq!(sorted(accounts), sorted(want_accounts));
    assert_eq!(target.list_segments().await.unwrap().len(), 2);

    // Again: everything is already committed.
    let (finished, report) = replay(&v1, &target, None).await;
    assert!(finished);
    assert_eq!((report.commits, report.already_committed), (0, 4));
}

#[tokio::test]
async fn the_replay_stops_after_k_commits_and_goes_on_from_there() {
    let (_src, v1) = source().await;
    let (want_events, _) = v1.read_all().await.unwrap();
    for k in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let target = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
        target.bind_cluster(CLUSTER).await.unwrap();
        let (finished, report) = replay(&v1, &target, Some(k)).await;
        assert!(!finished, "k={k}");
        assert_eq!(report.commits, k);
        // The order: swept 1..=2, day 0, swept 100..=101 (created before day 1's last event,
        // used by it), day 1.
        let swept_files = target.list_swept().await.unwrap().len();
        let segments = target.list_segments().await.unwrap().len();
        let expected = [(0, 0), (1, 0), (1, 1), (2, 1)][k as usize];
        assert_eq!((swept_files, segments), expected, "k={k}");
        let (finished, report) = replay(&v1, &target, None).await;
        assert!(finished);
        assert_eq!(
            (report.commits, report.already_committed),
            (4 - k, k),
            "k={k}"
        );
        assert_eq!(target.read_all().await.unwrap().0, want_events, "k={k}");
    }
}

#[tokio::test]
async fn a_position_inside_the_next_file_is_refused_not_committed_twice() {
    let (_src, v1) = source().await;
    let dir = tempfile::tempdir().unwrap();
    let target = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    target.bind_cluster(CLUSTER).await.unwrap();
    // Part of day 0 committed as its own file (as a run with smaller files would have).
    let events = vec![event(DAY0 + 10, 1, 3), event(DAY0 + 20, 3, 4)];
    let new_accounts = [(3, DAY0 + 10), (4, DAY0 + 20)]
        .map(|(id, seen)| AccountRecord::from_event_account(&account(id), 1, seen))
        .to_vec();
    let segment = Segment {
        events,
        new_accounts,
    };
    target.commit(&segment, CLUSTER).await.unwrap();
    let listing = v1.listing().await.unwrap();
    let mut report = empty_report();
    let error = Replay {
        lake: &target,
        v1: &v1,
        cluster_id: CLUSTER,
        commits_max: None,
        report: &mut report,
        tables_ready: false,
    }
    .run(&listing, &NoProgress)
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            UpgradeError::PositionInsideFile {
                position,
                first,
                last
            } if (position, first, last) == (DAY0 + 20, DAY0 + 10, DAY0 + 30)
        ),
        "{error}"
    );
    assert_eq!(target.read_all().await.unwrap().0.len(), 2, "nothing twice");
}
