//! Lake-level tests: commits and exact reconstruction through real stores (in memory and on
//! disk), the commit protocol's edge cases, and reading the files back with DuckDB.

use std::collections::HashSet;
use std::process::Command;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::layout::{self, Table};
use super::*;
use crate::cdc::{AccountFields, EventType, TransferFields, TIMESTAMP_MAX};
use crate::timefmt::{parse_rfc3339, NS_PER_DAY};

pub(super) const CLUSTER: u128 = u128::MAX - 7;

const TYPES: [EventType; 5] = [
    EventType::SinglePhase,
    EventType::TwoPhasePending,
    EventType::TwoPhasePosted,
    EventType::TwoPhaseVoided,
    EventType::TwoPhaseExpired,
];

/// An account's immutable fields, as a function of its id (TigerBeetle never changes them, and
/// reconstruction relies on that).
fn immutable_account(id: u128) -> AccountFields {
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) ^ (id >> 17);
    AccountFields {
        id,
        user_data_128: h,
        user_data_64: (h >> 64) as u64,
        user_data_32: (h >> 32) as u32,
        code: h as u16,
        timestamp: ((h >> 3) as u64) >> 1,
        ..Default::default()
    }
}

fn account(id: u128, balances: [u128; 4], flags: u16) -> AccountFields {
    AccountFields {
        debits_pending: balances[0],
        debits_posted: balances[1],
        credits_pending: balances[2],
        credits_posted: balances[3],
        flags,
        ..immutable_account(id)
    }
}

async fn commit_all(lake: &Lake, segments: &[Segment]) {
    lake.bind_cluster(CLUSTER).await.unwrap();
    for s in segments {
        let outcome = lake.commit(s, CLUSTER).await.unwrap();
        assert!(
            matches!(outcome, CommitOutcome::Committed { .. }),
            "{outcome:?}"
        );
    }
}

/// Field by field, so that a failure names the field.
fn assert_events_equal(got: &[Event], want: &[Event]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.timestamp, w.timestamp);
        assert_eq!(g.event_type, w.event_type, "at {}", w.timestamp);
        assert_eq!(g.ledger, w.ledger, "at {}", w.timestamp);
        assert_eq!(g.transfer, w.transfer, "at {}", w.timestamp);
        assert_eq!(g.debit_account, w.debit_account, "at {}", w.timestamp);
        assert_eq!(g.credit_account, w.credit_account, "at {}", w.timestamp);
    }
}

const U128S: [u128; 6] = [0, 1, u64::MAX as u128, 1 << 64, u128::MAX - 1, u128::MAX];
const U64S: [u64; 4] = [0, 1, u64::MAX - 1, u64::MAX];
/// Timestamps are below 2^63 (schemas/lake.md).
const TIMESTAMPS: [u64; 4] = [1, 2, TIMESTAMP_MAX - 1, TIMESTAMP_MAX];

/// Events in which every u128 field takes every extreme value (in rotation), on the first and
/// on the last representable UTC day.
fn extreme_segments() -> Vec<Segment> {
    let mut known = HashSet::new();
    let mut segments = Vec::new();
    for base in [0, TIMESTAMP_MAX - 11] {
        let mut events = Vec::new();
        for i in 0..12usize {
            let v = |k: usize| U128S[(i + k) % U128S.len()];
            let w = |k: usize| U64S[(i + k) % U64S.len()];
            events.push(Event {
                timestamp: base + i as u64,
                event_type: TYPES[i % TYPES.len()],
                ledger: [0, 1, u32::MAX][i % 3],
                transfer: TransferFields {
                    id: v(0),
                    amount: v(1),
                    pending_id: v(2),
                    user_data_128: v(3),
                    user_data_64: w(0),
                    user_data_32: [0, u32::MAX][i % 2],
                    timeout: [u32::MAX, 0][i % 2],
                    code: [0, u16::MAX][i % 2],
                    flags: [u16::MAX, 0][i % 2],
                    timestamp: TIMESTAMPS[(i + 1) % TIMESTAMPS.len()],
                },
                debit_account: account(v(4), [v(5), v(0), v(1), v(2)], u16::MAX),
                credit_account: account(v(5), [v(3), v(4), v(5), v(0)], i as u16),
            });
        }
        segments.push(Segment::recording_first_seen(events, &mut known));
    }
    segments
}

async fn check_round_trip(lake: &Lake) {
    let segments = extreme_segments();
    commit_all(lake, &segments).await;
    let (events, accounts) = lake.read_all().await.unwrap();
    let want: Vec<Event> = segments.iter().flat_map(|s| s.events.clone()).collect();
    assert_events_equal(&events, &want);
    let want_accounts: Vec<AccountRecord> = segments
        .iter()
        .flat_map(|s| s.new_accounts.clone())
        .collect();
    assert_eq!(accounts, want_accounts);
    let ids: HashSet<u128> = want_accounts.iter().map(|a| a.id).collect();
    assert!(ids.contains(&u128::MAX) && ids.contains(&0));
    assert_eq!(lake.load_account_ids().await.unwrap(), ids);
    assert_eq!(
        lake.last_committed_timestamp().await.unwrap(),
        Some(TIMESTAMP_MAX)
    );
}

#[tokio::test]
async fn u128_max_round_trips_through_parquet() {
    check_round_trip(&Lake::open("memory://").await.unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    check_round_trip(&lake).await;
    // And again through a fresh handle on the same directory: nothing is cached.
    let (events, _) = Lake::open(dir.path().to_str().unwrap())
        .await
        .unwrap()
        .read_all()
        .await
        .unwrap();
    assert_eq!(events.len(), 24);
}

/// Random events over a small pool of accounts, split into segments at random points and at
/// every UTC midnight.
fn random_segments(seed: u64, n: usize, max_step: u64) -> Vec<Segment> {
    let mut rng = StdRng::seed_from_u64(seed);
    let pool: Vec<u128> = (0..8).map(|_| rng.random()).collect();
    let mut ts: u64 = rng.random_range(0..TIMESTAMP_MAX / 2);
    let mut known = HashSet::new();
    let mut segments = Vec::new();
    let mut current: Vec<Event> = Vec::new();
    for _ in 0..n {
        ts += rng.random_range(1..=max_step);
        let crosses = current
            .last()
            .is_some_and(|e| e.timestamp / NS_PER_DAY != ts / NS_PER_DAY);
        if crosses || (!current.is_empty() && rng.random_ratio(1, 20)) {
            segments.push(Segment::recording_first_seen(
                std::mem::take(&mut current),
                &mut known,
            ));
        }
        let mut balances = || [rng.random(), rng.random(), rng.random(), rng.random()];
        let (b1, b2) = (balances(), balances());
        current.push(Event {
            timestamp: ts,
            event_type: TYPES[rng.random_range(0..5)],
            ledger: rng.random(),
            transfer: TransferFields {
                id: rng.random(),
                amount: rng.random(),
                pending_id: rng.random(),
                user_data_128: rng.random(),
                user_data_64: rng.random(),
                user_data_32: rng.random(),
                timeout: rng.random(),
                code: rng.random(),
                flags: rng.random(),
                timestamp: rng.random_range(1..=TIMESTAMP_MAX),
            },
            debit_account: account(pool[rng.random_range(0..8)], b1, rng.random()),
            credit_account: account(pool[rng.random_range(0..8)], b2, rng.random()),
        });
    }
    if !current.is_empty() {
        segments.push(Segment::recording_first_seen(current, &mut known));
    }
    segments
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_events_round_trip_exactly(seed: u64, n in 1usize..300, max_step in 1u64..(NS_PER_DAY / 4)) {
        let segments = random_segments(seed, n, max_step);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (events, accounts) = rt.block_on(async {
            let lake = Lake::open("memory://").await.unwrap();
            commit_all(&lake, &segments).await;
            lake.read_all().await.unwrap()
        });
        let want: Vec<Event> = segments.iter().flat_map(|s| s.events.clone()).collect();
        prop_assert_eq!(events, want);
        let want_accounts: Vec<AccountRecord> =
            segments.iter().flat_map(|s| s.new_accounts.clone()).collect();
        prop_assert_eq!(accounts, want_accounts);
    }
}

pub(super) fn one_day_segment(start_rfc3339: &str, n: u64, first_account: u128) -> Segment {
    let base = parse_rfc3339(start_rfc3339).unwrap();
    let events = (0..n)
        .map(|i| Event {
            timestamp: base + i,
            event_type: EventType::SinglePhase,
            ledger: 1,
            transfer: TransferFields {
                id: u128::from(i) + 1,
                amount: 10,
                timestamp: base + i,
                ..Default::default()
            },
            debit_account: account(first_account, [0, 10 * u128::from(i + 1), 0, 0], 0),
            credit_account: account(first_account + 1, [0, 0, 0, 10 * u128::from(i + 1)], 0),
        })
        .collect();
    Segment::recording_first_seen(events, &mut HashSet::new())
}

#[tokio::test]
async fn bind_cluster_refuses_another_cluster_and_newer_formats() {
    let lake = Lake::open("memory://").await.unwrap();
    assert_eq!(lake.read_meta().await.unwrap(), None);
    let meta = lake.bind_cluster(7).await.unwrap();
    assert_eq!(
        meta,
        LakeMeta {
            format_version: FORMAT_VERSION,
            cluster_id: 7
        }
    );
    assert_eq!(lake.bind_cluster(7).await.unwrap(), meta);
    assert_eq!(lake.read_meta().await.unwrap(), Some(meta));
    match lake.bind_cluster(8).await {
        Err(LakeError::ClusterMismatch {
            lake: 7,
            requested: 8,
        }) => {}
        other => panic!("{other:?}"),
    }

    let newer = Lake::open("memory://").await.unwrap();
    let json = br#"{"format_version":3,"cluster_id":"7","created_by":"ledgerlake 9"}"#;
    newer
        .store
        .put(&layout::meta_path(), PutPayload::from_static(json))
        .await
        .unwrap();
    match newer.bind_cluster(7).await {
        Err(LakeError::UnsupportedFormat {
            found: 3,
            supported: 2,
        }) => {}
        other => panic!("{other:?}"),
    }

    // A format-1 lake is refused with the command that upgrades it.
    let older = Lake::open("memory://").await.unwrap();
    let json = br#"{"format_version":1,"cluster_id":"7","created_by":"ledgerlake 0.1"}"#;
    older
        .store
        .put(&layout::meta_path(), PutPayload::from_static(json))
        .await
        .unwrap();
    match older.bind_cluster(7).await {
        Err(e @ LakeError::Format1 { .. }) => {
            assert!(e.to_string().contains("ledgerlake upgrade --lake"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn committing_twice_is_already_committed_and_changes_nothing() {
    let lake = Lake::open("memory://").await.unwrap();
    let seg = one_day_segment("2026-11-21T21:02:30Z", 3, 100);
    let first = lake.commit(&seg, CLUSTER).await.unwrap();
    let CommitOutcome::Committed { bytes } = first else {
        panic!("{first:?}")
    };
    let listed = lake.list_segments().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(bytes, listed[0].transfers_bytes + listed[0].accounts_bytes);
    assert_eq!(listed[0].date, "2026-11-21");
    let path = listed[0].transfers_path.as_ref();
    assert!(
        path.starts_with("transfers/date=2026-11-21/01795294950000000000-01795294950000000002-")
            && path.ends_with(".parquet"),
        "{path}"
    );

    // A retry of the same segment, even with different contents, leaves the lake as it was.
    let mut changed = seg.clone();
    changed.events[1].transfer.amount = 99;
    changed.new_accounts[0].code = 5;
    assert_eq!(
        lake.commit(&changed, CLUSTER).await.unwrap(),
        CommitOutcome::AlreadyCommitted
    );
    assert_eq!(lake.list_segments().await.unwrap(), listed);
    let (events, accounts) = lake.read_all().await.unwrap();
    assert_eq!(events, seg.events);
    assert_eq!(accounts, seg.new_accounts);
}

#[tokio::test]
async fn orphan_accounts_are_removed_and_replaced() {
    let lake = Lake::open("memory://").await.unwrap();
    let committed = one_day_segment("2026-11-21T00:00:00Z", 2, 1);
    lake.commit(&committed, CLUSTER).await.unwrap();
    // A crash between the two commits of the next segment leaves its accounts file alone.
    let crashed = one_day_segment("2026-11-22T00:00:00Z", 2, 10);
    let orphan = lake.commit_accounts_only(&crashed, CLUSTER).await.unwrap();

    // Not part of the lake:
    assert_eq!(lake.list_segments().await.unwrap().len(), 1);
    assert_eq!(
        lake.load_account_ids().await.unwrap(),
        HashSet::from([1, 2])
    );
    assert_eq!(
        lake.remove_orphan_accounts(CLUSTER).await.unwrap(),
        vec![orphan.clone()]
    );
    assert_eq!(
        lake.remove_orphan_accounts(CLUSTER).await.unwrap(),
        Vec::<Path>::new()
    );
    let accounts = lake
        .listing(&[Table::Transfers, Table::Accounts])
        .await
        .unwrap();
    assert_eq!(accounts.orphan_accounts().len(), 0);
    assert!(lake.list_segments().await.unwrap()[0]
        .accounts_path
        .is_some());

    // The segment committed again (re-sealed after a restart) records its accounts again.
    lake.log.forget();
    let outcome = lake.commit(&crashed, CLUSTER).await.unwrap();
    assert_eq!(
        outcome,
        CommitOutcome::Committed {
            bytes: committed_bytes(&lake, &crashed).await
        }
    );
    assert_eq!(
        lake.load_account_ids().await.unwrap(),
        HashSet::from([1, 2, 10, 11])
    );
    let (events, _) = lake.read_all().await.unwrap();
    assert_eq!(events.len(), 4);
}

/// The bytes of the committed files of `seg`'s segment.
async fn committed_bytes(lake: &Lake, seg: &Segment) -> u64 {
    lake.list_segments()
        .await
        .unwrap()
        .iter()
        .find(|s| s.first_timestamp == seg.events[0].timestamp)
        .map_or(0, |s| s.transfers_bytes + s.accounts_bytes)
}

#[tokio::test]
#[should_panic(expected = "straddle UTC midnight")]
async fn a_segment_across_midnight_is_refused() {
    let lake = Lake::open("memory://").await.unwrap();
    let mut seg = one_day_segment("2026-11-21T23:59:59.999999999Z", 1, 1);
    let mut next = seg.events[0];
    next.timestamp += 1;
    seg.events.push(next);
    let _ = lake.commit(&seg, CLUSTER).await;
}

#[tokio::test]
#[should_panic(expected = "strictly increasing")]
async fn unsorted_events_are_refused() {
    let lake = Lake::open("memory://").await.unwrap();
    let mut seg = one_day_segment("2026-11-21T12:00:00Z", 3, 1);
    seg.events.swap(0, 2);
    let _ = lake.commit(&seg, CLUSTER).await;
}

#[tokio::test]
#[should_panic(expected = "at least one event")]
async fn empty_segments_are_refused() {
    let lake = Lake::open("memory://").await.unwrap();
    let seg = Segment {
        events: vec![],
        new_accounts: vec![],
    };
    let _ = lake.commit(&seg, CLUSTER).await;
}

#[tokio::test]
async fn objects_the_log_does_not_name_are_not_lake_data() {
    let lake = Lake::open("memory://").await.unwrap();
    lake.commit(&one_day_segment("2026-11-21T12:00:00Z", 1, 1), CLUSTER)
        .await
        .unwrap();
    let stray = Path::from("transfers/date=2026-11-21/part-0.parquet");
    lake.store
        .put(&stray, PutPayload::from_static(b"x"))
        .await
        .unwrap();
    // Not named by the log, so not part of the lake (verify names it).
    let listed = lake.list_segments().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0].transfers_path, stray);
    let stray_q = Path::from("quarantine/notes.txt");
    lake.store
        .put(&stray_q, PutPayload::from_static(b"x"))
        .await
        .unwrap();
    assert!(matches!(
        lake.list_quarantine().await,
        Err(LakeError::BadObjectName { .. })
    ));
}

#[tokio::test]
async fn misnamed_and_unjoinable_files_are_reported() {
    // A transfers file copied under another segment's name.
    let lake = Lake::open("memory://").await.unwrap();
    lake.commit(&one_day_segment("2026-11-21T12:00:00Z", 2, 1), CLUSTER)
        .await
        .unwrap();
    lake.commit(&one_day_segment("2026-11-22T12:00:00Z", 2, 3), CLUSTER)
        .await
        .unwrap();
    let segs = lake.list_segments().await.unwrap();
    // The second segment's file replaced by the first's bytes: its name promises another range.
    let wrong = segs[1].transfers_path.clone();
    lake.store
        .copy(&segs[0].transfers_path, &wrong)
        .await
        .unwrap();
    match lake.read_all().await {
        Err(LakeError::Corrupt { path, .. }) => assert_eq!(path, wrong.to_string()),
        other => panic!("{other:?}"),
    }

    // A segment whose accounts were never recorded.
    let lake = Lake::open("memory://").await.unwrap();
    let mut seg = one_day_segment("2026-11-21T12:00:00Z", 2, 1);
    seg.new_accounts.clear();
    lake.commit(&seg, CLUSTER).await.unwrap();
    match lake.read_all().await {
        Err(LakeError::MissingAccount {
            account_id: 1,
            event_timestamp,
        }) => {
            assert_eq!(event_timestamp, seg.events[0].timestamp)
        }
        other => panic!("{other:?}"),
    }

    // Files of another cluster.
    let lake = Lake::open("memory://").await.unwrap();
    lake.bind_cluster(1).await.unwrap();
    assert!(matches!(
        lake.commit(&one_day_segment("2026-11-21T12:00:00Z", 2, 1), 2)
            .await,
        Err(LakeError::ClusterMismatch {
            lake: 1,
            requested: 2
        })
    ));
}

#[tokio::test]
async fn quarantined_messages_are_kept_verbatim() {
    let lake = Lake::open("memory://").await.unwrap();
    let q = Quarantined {
        received_ns: 5,
        reason: "bad json".into(),
        exchange: "tb".into(),
        routing_key: "rk".into(),
        headers: vec![("k".into(), "v".into())],
        body: vec![0xff, 0],
    };
    let p0 = lake.quarantine(&q).await.unwrap();
    let p1 = lake.quarantine(&q).await.unwrap();
    assert_eq!(p0.as_ref(), "quarantine/00000000000000000005-000000.json");
    assert_eq!(p1.as_ref(), "quarantine/00000000000000000005-000001.json");
    let listed = lake.list_quarantine().await.unwrap();
    assert_eq!(
        listed.iter().map(|i| &i.path).collect::<Vec<_>>(),
        [&p0, &p1]
    );
    assert_eq!(listed[0].reason, "bad json");
    assert_eq!(listed[0].received_ns, 5);
    assert_eq!(lake.read_quarantined(&p1).await.unwrap(), q);
    // Quarantine never shows up as lake data.
    assert!(lake.list_segments().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_empty_lake_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for location in ["memory://", dir.path().to_str().unwrap()] {
        let lake = Lake::open(location).await.unwrap();
        assert!(lake.list_segments().await.unwrap().is_empty());
        assert_eq!(lake.last_committed_timestamp().await.unwrap(), None);
        assert!(lake
            .remove_orphan_accounts(CLUSTER)
            .await
            .unwrap()
            .is_empty());
        assert!(lake.load_account_ids().await.unwrap().is_empty());
        assert!(lake.list_quarantine().await.unwrap().is_empty());
        assert_eq!(lake.read_all().await.unwrap(), (vec![], vec![]));
    }
}

#[tokio::test]
async fn location_never_shows_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&format!("file://{}", dir.path().display()))
        .await
        .unwrap();
    assert_eq!(
        lake.location(),
        dir.path().canonicalize().unwrap().display().to_string()
    );
    assert_eq!(
        Lake::open("memory://").await.unwrap().location(),
        "memory://"
    );
}

/// Bytes per event on disk, printed for the record; the bounds catch a broken encoding.
#[tokio::test]
async fn bytes_per_event() {
    let n = 10_000;
    // Worst case: every u128 uniformly random (incompressible).
    let random: Vec<Event> = random_segments(1, n, 1_000_000)
        .into_iter()
        .flat_map(|s| s.events)
        .take_while({
            let mut day = None;
            move |e| *day.get_or_insert(e.timestamp / NS_PER_DAY) == e.timestamp / NS_PER_DAY
        })
        .collect();
    let random_bytes =
        encode_transfers(&random, CLUSTER).unwrap().len() as f64 / random.len() as f64;
    // Typical: small amounts, 1000 accounts, one ledger, transfers 1 ms apart.
    let mut rng = StdRng::seed_from_u64(2);
    let base = parse_rfc3339("2026-11-21T00:00:00Z").unwrap();
    let mut posted = vec![0u128; 1000];
    let typical: Vec<Event> = (0..n as u64)
        .map(|i| {
            let (d, c) = (rng.random_range(0..1000), rng.random_range(0..1000));
            let amount = rng.random_range(1..100_000u128);
            posted[d] += amount;
            posted[c] += amount;
            Event {
                timestamp: base + i * 1_000_000,
                event_type: EventType::SinglePhase,
                ledger: 1,
                transfer: TransferFields {
                    id: u128::from(i) + 1,
                    amount,
                    code: 1,
                    timestamp: base + i * 1_000_000,
                    ..Default::default()
                },
                debit_account: account(d as u128 + 1, [0, posted[d], 0, 0], 0),
                credit_account: account(c as u128 + 1, [0, 0, 0, posted[c]], 0),
            }
        })
        .collect();
    let typical_bytes = encode_transfers(&typical, CLUSTER).unwrap().len() as f64 / n as f64;
    eprintln!(
        "transfers bytes/event: random {random_bytes:.1} ({} events), typical {typical_bytes:.1}; \
         estimated_row_bytes {}",
        random.len(),
        estimated_row_bytes()
    );
    assert!(random.len() > 1000);
    assert!(random_bytes < 400.0, "{random_bytes}");
    assert!(typical_bytes < 40.0, "{typical_bytes}");
}

fn duckdb(sql: &str) -> String {
    let out = match Command::new("duckdb")
        .args(["-csv", "-noheader", "-c", sql])
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cannot run the duckdb CLI ({e}); run scripts/setup.sh to install it"),
    };
    assert!(
        out.status.success(),
        "duckdb failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn duckdb_reads_the_lake_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let mut seg = one_day_segment("2026-11-21T21:02:30Z", 3, 1);
    seg.events[1].transfer.id = u128::MAX - 1;
    seg.events[1].transfer.amount = u128::MAX;
    seg.events[2].transfer.amount = u128::MAX;
    seg.events[2].transfer.id = 1 << 64;
    commit_all(&lake, &[seg]).await;

    let transfers = format!(
        "read_parquet('{}/transfers/*/*.parquet', hive_partitioning = true)",
        dir.path().display()
    );
    const E18: u128 = columns::E18;
    let got = duckdb(&format!(
        "SELECT (transfer_id_e18::UHUGEINT * {E18}::UHUGEINT + transfer_id::UHUGEINT)::VARCHAR, \
                date, typeof(date) FROM {transfers} ORDER BY timestamp"
    ));
    assert_eq!(
        got,
        "1,2026-11-21,DATE\n340282366920938463463374607431768211454,2026-11-21,DATE\n\
         18446744073709551616,2026-11-21,DATE\n"
    );
    // Exact sums over the full range: the total (2·u128::MAX + 10) does not even fit a u128, yet
    // both parts (value mod 10^38, value div 10^38) sum exactly.
    let got = duckdb(&format!(
        "SELECT sum(amount)::VARCHAR, sum(amount_e38)::VARCHAR FROM {transfers}"
    ));
    let low = u128::MAX % columns::E38;
    assert_eq!(got, format!("{},6\n", 10 + 2 * low));
    let got = duckdb(&format!(
        "SELECT column_name || ':' || column_type FROM (DESCRIBE SELECT timestamp, event_type, \
         ledger, code, timeout, amount, amount_e38, user_data_64, transfer_id, transfer_id_e18 \
         FROM {transfers})"
    ));
    assert_eq!(
        got,
        "timestamp:BIGINT\nevent_type:TINYINT\nledger:BIGINT\ncode:INTEGER\n\
         timeout:BIGINT\n\"amount:DECIMAL(38,0)\"\namount_e38:TINYINT\n\"user_data_64:DECIMAL(20,0)\"\n\
         transfer_id:BIGINT\n\"transfer_id_e18:DECIMAL(21,0)\"\n"
    );
    let got = duckdb(&format!(
        "SELECT key::VARCHAR || '=' || value::VARCHAR FROM parquet_kv_metadata('{}/transfers/*/*.parquet') \
         WHERE key::VARCHAR LIKE 'ledgerlake.%' ORDER BY 1",
        dir.path().display()
    ));
    assert_eq!(
        got,
        format!(
            "ledgerlake.cluster_id={CLUSTER}\nledgerlake.first_timestamp=1795294950000000000\n\
             ledgerlake.format_version=2\nledgerlake.last_timestamp=1795294950000000002\n\
             ledgerlake.row_count=3\nledgerlake.table=transfers\n"
        )
    );
    let got = duckdb(&format!(
        "SELECT count(DISTINCT row_group_id), string_agg(DISTINCT compression, ','), \
                bool_and(encodings LIKE '%DELTA_BINARY_PACKED%') FILTER (path_in_schema = 'timestamp') \
         FROM parquet_metadata('{}/transfers/*/*.parquet')",
        dir.path().display()
    ));
    assert_eq!(got, "1,ZSTD,true\n");
    let accounts = format!(
        "read_parquet('{}/accounts/*/*.parquet', hive_partitioning = true)",
        dir.path().display()
    );
    assert_eq!(
        duckdb(&format!(
            "SELECT count(*), min(date)::VARCHAR FROM {accounts}"
        )),
        "2,2026-11-21\n"
    );
}

/// A swept record: the account's fields as created, recorded as of its creation.
pub(super) fn swept(id: u128, timestamp: u64) -> AccountRecord {
    AccountRecord {
        timestamp,
        first_seen_timestamp: timestamp,
        ledger: 1,
        ..AccountRecord::from_event_account(&immutable_account(id), 1, 0)
    }
}

fn simple_event(timestamp: u64, debit: u128, credit: u128, debit_ts: u64, credit_ts: u64) -> Event {
    Event {
        timestamp,
        event_type: EventType::SinglePhase,
        ledger: 1,
        transfer: TransferFields {
            id: u128::from(timestamp),
            amount: 5,
            timestamp,
            ..TransferFields::default()
        },
        debit_account: AccountFields {
            timestamp: debit_ts,
            ..account(debit, [0, 5, 0, 0], 0)
        },
        credit_account: AccountFields {
            timestamp: credit_ts,
            ..account(credit, [0, 0, 0, 5], 0)
        },
    }
}

#[tokio::test]
async fn swept_accounts_are_part_of_the_lake_and_readers_merge_them_with_segments() {
    let lake = Lake::open("memory://").await.unwrap();
    lake.bind_cluster(CLUSTER).await.unwrap();
    let base = 20_000 * NS_PER_DAY;
    // Accounts 1..=4 created at base+1..=4; 1 and 2 transfer at base+10; 3 is swept and later
    // used at base+11 (the sweep saw it before its event); 4 never transfers.
    let swept_page = vec![swept(3, base + 3), swept(4, base + 4)];
    assert!(matches!(
        lake.commit_swept(&swept_page, base + 4, CLUSTER)
            .await
            .unwrap(),
        CommitOutcome::Committed { .. }
    ));
    // A retried write finds the position covered.
    assert_eq!(
        lake.commit_swept(&swept_page, base + 4, CLUSTER)
            .await
            .unwrap(),
        CommitOutcome::AlreadyCommitted
    );
    let events = vec![
        simple_event(base + 10, 1, 2, base + 1, base + 2),
        simple_event(base + 11, 3, 1, base + 3, base + 1),
    ];
    // The segment records every account it touches, the swept one too.
    let seg = Segment::recording_first_seen(events.clone(), &mut HashSet::new());
    assert_eq!(
        seg.new_accounts.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    lake.commit(&seg, CLUSTER).await.unwrap();

    // Segment listing is unchanged by the new directory (what a reader without the sweep sees).
    let segments = lake.list_segments().await.unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(
        lake.last_committed_timestamp().await.unwrap(),
        Some(base + 11)
    );

    let swept_files = lake.list_swept().await.unwrap();
    assert_eq!(swept_files.len(), 1);
    assert_eq!(
        &swept_files[0].path.as_ref()[..57],
        format!("swept_accounts/{:020}-{:020}-", base + 3, base + 4)
    );
    assert_eq!(lake.swept_through().await.unwrap(), Some(base + 4));
    assert_eq!(
        lake.load_account_ids().await.unwrap(),
        HashSet::from([1, 2, 3, 4])
    );
    let (got, records) = lake.read_all().await.unwrap();
    assert_events_equal(&got, &events);
    let ids: Vec<u128> = records.iter().map(|a| a.id).collect();
    assert_eq!(
        ids,
        vec![3, 4, 1, 2],
        "swept first, then by first appearance; one record per account"
    );
    assert_eq!(
        records[..2],
        swept_page[..],
        "account 3's swept record is first seen, so kept"
    );
    assert_eq!(lake.read_all_accounts().await.unwrap(), records);
    assert_eq!(
        lake.read_all_swept(Some(CLUSTER)).await.unwrap(),
        swept_page
    );
    assert!(lake.read_all_swept(Some(CLUSTER + 1)).await.is_err());
}

#[tokio::test]
async fn an_account_in_both_tables_is_merged_unless_its_records_disagree() {
    let lake = Lake::open("memory://").await.unwrap();
    lake.bind_cluster(CLUSTER).await.unwrap();
    let base = 20_000 * NS_PER_DAY;
    let mut known = HashSet::new();
    lake.commit(
        &Segment::recording_first_seen(
            vec![simple_event(base + 10, 1, 2, base + 1, base + 2)],
            &mut known,
        ),
        CLUSTER,
    )
    .await
    .unwrap();
    // Account 2 swept too (the sweep read it before its transfer): merged, the swept record
    // kept (first seen at its creation).
    lake.commit_swept(&[swept(2, base + 2)], base + 2, CLUSTER)
        .await
        .unwrap();
    let (_, records) = lake.read_all().await.unwrap();
    assert_eq!(
        records
            .iter()
            .map(|a| (a.id, a.first_seen_timestamp))
            .collect::<Vec<_>>(),
        vec![(2, base + 2), (1, base + 10)]
    );
    // A record of account 1 with another creation timestamp: refused by every reader.
    lake.commit_swept(&[swept(1, base + 3)], base + 5, CLUSTER)
        .await
        .unwrap();
    let err = lake.load_account_ids().await.unwrap_err().to_string();
    assert!(err.contains("account 1 has records that disagree"), "{err}");
    let err = lake.read_all().await.unwrap_err().to_string();
    assert!(err.contains("account 1 has records that disagree"), "{err}");
}

#[tokio::test]
async fn swept_files_are_checked_against_their_names() {
    let lake = Lake::open("memory://").await.unwrap();
    lake.commit_swept(&[swept(1, 10), swept(2, 20)], 20, CLUSTER)
        .await
        .unwrap();
    // A stray object under swept_accounts/ is not part of the lake: the log does not name it.
    lake.put_create(&Path::from("swept_accounts/notes.txt"), b"x".to_vec())
        .await
        .unwrap();
    let listed = lake.list_swept().await.unwrap();
    assert_eq!(listed.len(), 1);
    // A file whose name promises other accounts than it holds.
    lake.commit_swept(&[swept(3, 30)], 30, CLUSTER)
        .await
        .unwrap();
    let listed = lake.list_swept().await.unwrap();
    lake.store
        .copy(&listed[0].path, &listed[1].path)
        .await
        .unwrap();
    let err = lake.read_all_swept(None).await.unwrap_err().to_string();
    assert!(err.contains("metadata says 10..=20"), "{err}");
}

#[test]
#[should_panic(expected = "creation order")]
fn an_unordered_sweep_page_is_a_programmer_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let lake = Lake::open("memory://").await.unwrap();
        let _ = lake
            .commit_swept(&[swept(2, 20), swept(1, 10)], 20, CLUSTER)
            .await;
    });
}

#[tokio::test]
async fn a_lake_read_at_an_earlier_version_is_the_lake_as_it_stood() {
    let lake = Lake::open("memory://").await.unwrap();
    let days = [
        "2026-11-20T00:00:00Z",
        "2026-11-21T00:00:00Z",
        "2026-11-22T00:00:00Z",
    ];
    let segments: Vec<Segment> = days
        .iter()
        .enumerate()
        .map(|(i, d)| one_day_segment(d, 2, 10 * i as u128 + 1))
        .collect();
    let mut versions = Vec::new();
    for s in &segments {
        lake.commit(s, CLUSTER).await.unwrap();
        versions.push(lake.transfers_version().await.unwrap().unwrap());
        lake.commit_swept(
            &[swept(1000 + versions.len() as u128, versions.len() as u64)],
            versions.len() as u64,
            CLUSTER,
        )
        .await
        .unwrap();
    }
    // Version 0 creates the table; each segment is one more version.
    assert_eq!(versions, vec![1, 2, 3]);
    let store = lake.store.clone();
    for (k, &v) in versions.iter().enumerate() {
        let then = Lake::from_store(store.clone(), "memory").at_version(v);
        let (events, accounts) = then.read_all().await.unwrap();
        let want: Vec<Event> = segments[..=k]
            .iter()
            .flat_map(|s| s.events.clone())
            .collect();
        assert_eq!(events, want, "at version {v}");
        // The accounts of its segments, and the swept files committed before it.
        let mut want_ids: Vec<u128> = segments[..=k]
            .iter()
            .flat_map(|s| s.new_accounts.iter().map(|a| a.id))
            .collect();
        want_ids.extend((1..=k as u128).map(|j| 1000 + j));
        let mut ids: Vec<u128> = accounts.iter().map(|a| a.id).collect();
        ids.sort();
        want_ids.sort();
        assert_eq!(ids, want_ids, "at version {v}");
        assert_eq!(then.transfers_version().await.unwrap(), Some(v));
    }
    let history = lake.table_versions(Table::Transfers).await.unwrap();
    assert_eq!(history.len(), 4);
    assert!(history
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    // A version that does not exist is an error, not an empty lake.
    assert!(Lake::from_store(store, "memory")
        .at_version(9)
        .read_all()
        .await
        .is_err());
}

#[tokio::test]
async fn a_data_file_left_by_an_interrupted_commit_is_a_note_not_a_problem() {
    let lake = Lake::open("memory://").await.unwrap();
    lake.commit(&one_day_segment("2026-11-21T00:00:00Z", 2, 1), CLUSTER)
        .await
        .unwrap();
    // The next segment's transfers file was written, then the exporter died before its commit.
    let next = one_day_segment("2026-11-22T00:00:00Z", 2, 3);
    let encoded = parquet::encode_transfers_file(&next.events, CLUSTER).unwrap();
    let (first, last) = (next.events[0].timestamp, next.events[1].timestamp);
    let file = commit::prepare(Table::Transfers, first, last, encoded);
    lake.store
        .put(&file.path, PutPayload::from(file.bytes.clone()))
        .await
        .unwrap();
    let report = lake.check_chain().await.unwrap();
    let transfers = &report.tables[0];
    assert!(transfers.problems.is_empty(), "{:?}", transfers.problems);
    assert_eq!(transfers.notes.len(), 1);
    assert_eq!(transfers.notes[0].check, chain::ChainCheck::FileUncommitted);
    assert_eq!(transfers.notes[0].file, file.path.to_string());
    // The same name over other bytes is not an interrupted write: it is a problem.
    let mut forged = file.bytes.clone();
    forged[10] ^= 1;
    lake.store
        .put(&file.path, PutPayload::from(forged))
        .await
        .unwrap();
    let report = lake.check_chain().await.unwrap();
    assert_eq!(report.tables[0].problems.len(), 1);
    assert_eq!(
        report.tables[0].problems[0].check,
        chain::ChainCheck::FileUnreferenced
    );
}

#[tokio::test]
async fn a_segment_left_by_a_killed_session_whose_events_a_later_commit_holds_is_a_note() {
    let lake = Lake::open("memory://").await.unwrap();
    // A session wrote the first two events' files, then was killed before its commit; the next
    // session received the same events again and committed them in a segment of three.
    let committed = one_day_segment("2026-11-21T00:00:00Z", 3, 1);
    let mut killed = committed.clone();
    killed.events.truncate(2);
    let (first, last) = (killed.events[0].timestamp, killed.events[1].timestamp);
    let transfers = parquet::encode_transfers_file(&killed.events, CLUSTER).unwrap();
    let transfers = commit::prepare(Table::Transfers, first, last, transfers);
    let accounts =
        parquet::encode_accounts_file(&killed.new_accounts, CLUSTER, first, last).unwrap();
    let accounts = commit::prepare(Table::Accounts, first, last, accounts);
    for file in [&transfers, &accounts] {
        lake.store
            .put(&file.path, PutPayload::from(file.bytes.clone()))
            .await
            .unwrap();
    }
    lake.commit(&committed, CLUSTER).await.unwrap();
    let report = lake.check_chain().await.unwrap();
    for (table, file) in [("transfers", &transfers), ("accounts", &accounts)] {
        let t = report.tables.iter().find(|t| t.table == table).unwrap();
        assert!(t.problems.is_empty(), "{table}: {:?}", t.problems);
        assert_eq!(t.notes.len(), 1, "{table}: {:?}", t.notes);
        assert_eq!(t.notes[0].check, chain::ChainCheck::FileUncommitted);
        assert_eq!(t.notes[0].file, file.path.to_string());
    }
    // The same range holding an event the table does not hold (another amount) is a problem,
    // although its name carries its own digest.
    let mut altered = killed.events.clone();
    altered[1].transfer.amount += 1;
    let forged = parquet::encode_transfers_file(&altered, CLUSTER).unwrap();
    let forged = commit::prepare(Table::Transfers, first, last, forged);
    assert_ne!(forged.path, transfers.path);
    lake.store
        .put(&forged.path, PutPayload::from(forged.bytes.clone()))
        .await
        .unwrap();
    let report = lake.check_chain().await.unwrap();
    let t = report
        .tables
        .iter()
        .find(|t| t.table == "transfers")
        .unwrap();
    assert_eq!(t.notes.len(), 1, "{:?}", t.notes);
    assert_eq!(t.problems.len(), 1, "{:?}", t.problems);
    assert_eq!(t.problems[0].check, chain::ChainCheck::FileUnreferenced);
    assert_eq!(t.problems[0].file, forged.path.to_string());
    // A copy of the committed file in another date partition holds only rows the table holds,
    // but its range is a committed file's: a duplicate, a problem.
    let committed_file = lake.list_segments().await.unwrap()[0]
        .transfers_path
        .to_string();
    let copy = Path::from(committed_file.replace("date=2026-11-21", "date=1999-12-31"));
    assert_ne!(copy.to_string(), committed_file);
    let bytes = lake
        .store
        .get(&Path::from(committed_file.clone()))
        .await
        .unwrap();
    lake.store
        .put(&copy, PutPayload::from(bytes.bytes().await.unwrap()))
        .await
        .unwrap();
    let report = lake.check_chain().await.unwrap();
    let t = report
        .tables
        .iter()
        .find(|t| t.table == "transfers")
        .unwrap();
    assert!(
        t.problems
            .iter()
            .any(|p| p.file == copy.to_string() && p.check == chain::ChainCheck::FileUnreferenced),
        "{:?}",
        t.problems
    );
}
