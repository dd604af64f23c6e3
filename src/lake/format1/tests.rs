//! The format-1 reader against lakes its test writer builds: exact round trips (u128::MAX
//! included), orphans, swept files, format-2 objects beside format-1 ones, and every check a
//! format-1 reader made.

use std::collections::HashSet;

use super::*;
use crate::cdc::{AccountFields, Event, TransferFields};
use crate::lake::{AccountRecord, Segment};
use crate::timefmt::NS_PER_DAY;

const CLUSTER: u128 = u128::MAX - 3;

fn account(id: u128, created: u64, balance: u128) -> AccountFields {
    AccountFields {
        id,
        debits_pending: balance,
        debits_posted: u128::MAX - balance,
        credits_pending: 1,
        credits_posted: balance / 2,
        user_data_128: id ^ u128::MAX,
        user_data_64: u64::MAX - id as u64,
        user_data_32: u32::MAX,
        code: u16::MAX,
        flags: 8,
        timestamp: created,
    }
}

fn event(timestamp: u64, debit: u128, credit: u128, amount: u128) -> Event {
    Event {
        timestamp,
        event_type: EventType::SinglePhase,
        ledger: u32::MAX,
        transfer: TransferFields {
            id: timestamp as u128 | (1 << 127),
            amount,
            pending_id: 0,
            user_data_128: u128::MAX,
            user_data_64: u64::MAX,
            user_data_32: 7,
            timeout: u32::MAX,
            code: 1,
            flags: 0,
            timestamp,
        },
        debit_account: account(debit, 10 + debit as u64, amount),
        credit_account: account(credit, 10 + credit as u64, 5),
    }
}

fn swept(id: u128) -> AccountRecord {
    let a = account(id, 10 + id as u64, 0);
    AccountRecord {
        first_seen_timestamp: a.timestamp,
        ..AccountRecord::from_event_account(&a, 3, a.timestamp)
    }
}

async fn tmp_lake() -> (tempfile::TempDir, Lake, Format1Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let v1 = Format1Lake::of(&lake);
    (dir, lake, v1)
}

/// Two days of segments (amounts up to u128::MAX), one swept file, one orphan.
async fn sample(v1: &Format1Lake) -> (Vec<Event>, Vec<AccountRecord>) {
    assert!(v1.write_meta(CLUSTER).await.unwrap());
    let swept_accounts = vec![swept(1), swept(2)];
    assert!(v1.write_swept(&swept_accounts, CLUSTER).await.unwrap());
    let mut known: HashSet<u128> = [1, 2].into();
    let day = 20_000 * NS_PER_DAY;
    let batches = vec![
        vec![event(day + 100, 1, 3, u128::MAX), event(day + 200, 3, 4, 1)],
        vec![event(day + 300, 4, 2, 10u128.pow(38))],
        vec![event(day + NS_PER_DAY + 5, 5, 1, 0)],
    ];
    let mut events = Vec::new();
    let mut records = swept_accounts.clone();
    for batch in batches {
        let s = Segment::recording_first_seen(batch, &mut known);
        assert!(v1.write_segment(&s, CLUSTER).await.unwrap());
        events.extend(s.events.clone());
        records.extend(s.new_accounts.clone());
    }
    let orphan = AccountRecord::from_event_account(&account(99, 1, 0), 3, day + 400);
    assert!(v1
        .write_accounts_file(&[orphan], CLUSTER, (day + 400, day + 400))
        .await
        .unwrap());
    (events, records)
}

#[tokio::test]
async fn a_written_lake_reads_back_exactly_with_its_orphan_apart() {
    let (_dir, _lake, v1) = tmp_lake().await;
    let (events, records) = sample(&v1).await;
    let (got_events, got_records) = v1.read_all().await.unwrap();
    assert_eq!(got_events, events);
    assert_eq!(got_records, records);
    assert_eq!(got_events[0].transfer.amount, u128::MAX);

    let listing = v1.listing().await.unwrap();
    assert_eq!(listing.segments.len(), 3);
    assert_eq!(listing.swept.len(), 1);
    assert_eq!(listing.orphans.len(), 1);
    assert!(listing.orphans[0]
        .location
        .as_ref()
        .starts_with("accounts/date="));
    // The second segment saw no new account: it has no accounts file.
    assert!(listing.segments[1].accounts_path.is_none());
    assert!(listing.segments[2].accounts_path.is_some());
    assert_eq!(listing.files().len(), 3 + 2 + 1 + 1);
    listing.check_overlaps().unwrap();
    assert_eq!(
        v1.read_meta().await.unwrap(),
        Some(MetaFile {
            format_version: 1,
            cluster_id: CLUSTER
        })
    );
}

#[tokio::test]
async fn format2_objects_are_skipped_and_foreign_ones_named() {
    let (_dir, _lake, v1) = tmp_lake().await;
    sample(&v1).await;
    for path in [
        "transfers/_delta_log/00000000000000000000.json",
        "accounts/_delta_log/_last_checkpoint",
        "transfers/date=2024-10-04/00000000000000000001-00000000000000000002-0123456789abcdef.parquet",
        "swept_accounts/00000000000000000001-00000000000000000002-0123456789abcdef.parquet",
        "quarantine/00000000000000000001-000000.json",
    ] {
        v1.put_raw(path, b"x".to_vec()).await.unwrap();
    }
    let listing = v1.listing().await.unwrap();
    assert_eq!(
        (
            listing.segments.len(),
            listing.swept.len(),
            listing.orphans.len()
        ),
        (3, 1, 1)
    );
    v1.put_raw("transfers/date=2024-10-04/notes.txt", b"x".to_vec())
        .await
        .unwrap();
    match v1.listing().await {
        Err(Format1Error::BadObjectName { path }) => {
            assert_eq!(path, "transfers/date=2024-10-04/notes.txt")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn files_that_break_format_1_rules_are_named() {
    let (_dir, _lake, v1) = tmp_lake().await;
    sample(&v1).await;
    let listing = v1.listing().await.unwrap();
    // Another cluster's file.
    match v1.read_events(&listing.segments[0], CLUSTER - 1).await {
        Err(Format1Error::Corrupt { path, reason }) => {
            assert_eq!(path, listing.segments[0].transfers_path.to_string());
            assert!(reason.contains("written for cluster"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A file whose name promises another range.
    let mut wrong = listing.segments[0].clone();
    wrong.last_timestamp += 1;
    assert!(matches!(
        v1.read_events(&wrong, CLUSTER).await,
        Err(Format1Error::Corrupt { .. })
    ));
    // A transfers file where a swept file should be.
    let as_swept = Format1Swept {
        first_timestamp: listing.segments[0].first_timestamp,
        last_timestamp: listing.segments[0].last_timestamp,
        path: listing.segments[0].transfers_path.clone(),
        bytes: listing.segments[0].transfers_bytes,
    };
    match v1.read_swept(&as_swept, CLUSTER).await {
        Err(Format1Error::Corrupt { reason, .. }) => {
            assert!(reason.contains("holds the transfers table"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Not Parquet at all.
    v1.put_raw(
        listing.segments[1].transfers_path.as_ref(),
        b"garbage".to_vec(),
    )
    .await
    .unwrap();
    assert!(matches!(
        v1.read_events(&listing.segments[1], CLUSTER).await,
        Err(Format1Error::Parquet { .. })
    ));
}

#[tokio::test]
async fn an_account_recorded_twice_or_missing_is_refused() {
    let (_dir, _lake, v1) = tmp_lake().await;
    v1.write_meta(CLUSTER).await.unwrap();
    v1.write_swept(&[swept(1)], CLUSTER).await.unwrap();
    // Account 1 recorded again by the segment, account 2 by nobody.
    let e = event(NS_PER_DAY + 1, 1, 2, 5);
    let again = AccountRecord::from_event_account(&e.debit_account, e.ledger, e.timestamp);
    let seg = Segment {
        events: vec![e],
        new_accounts: vec![again],
    };
    v1.write_segment(&seg, CLUSTER).await.unwrap();
    match v1.read_all().await {
        Err(Format1Error::Corrupt { reason, .. }) => {
            assert!(
                reason.contains("account 1 was already recorded"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn detect_reads_any_version_and_the_current_code_refuses_format_1() {
    let (_dir, lake, v1) = tmp_lake().await;
    assert_eq!(detect(&lake).await.unwrap(), None);
    v1.write_meta(CLUSTER).await.unwrap();
    assert_eq!(detect(&lake).await.unwrap(), Some(1));
    // The exporter starts with `resume_state`: it names the upgrade.
    let error = lake.resume_state(CLUSTER).await.unwrap_err();
    assert!(matches!(error, LakeError::Format1 { .. }), "{error}");
    assert!(
        error.to_string().contains("ledgerlake upgrade --lake "),
        "{error}"
    );
    v1.replace_meta(&MetaFile {
        format_version: 2,
        cluster_id: CLUSTER,
    })
    .await
    .unwrap();
    assert_eq!(detect(&lake).await.unwrap(), Some(2));
    lake.resume_state(CLUSTER).await.unwrap();
}
