//! `ledgerlake upgrade`: format-1 lakes (built with the format-1 test writer, from synthetic
//! events and from a lake the real stack exported) turned into format 2 in place, compared field
//! by field with what format 1 held; stopped after K commits and killed at every write, then
//! resumed; rerun on an upgraded lake; refused where it must be.

mod common;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use ledgerlake::audit::progress::NoProgress as NoReadProgress;
use ledgerlake::audit::verify::{verify, VerifyReport};
use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::export::sweep::SweepOptions;
use ledgerlake::export::{self};
use ledgerlake::lake::format1::{self, Format1Lake, MetaFile};
use ledgerlake::lake::{AccountRecord, Lake, LakeError, Segment};
use ledgerlake::timefmt::{date_partition, NS_PER_DAY};
use ledgerlake::upgrade::{
    upgrade, NoProgress, UpgradeError, UpgradeOutcome, UpgradeReport, TARGET_FORMAT_VERSION,
};

const CLUSTER: u128 = u128::MAX - 11;
/// 2024-10-04T00:00:00Z.
const DAY0: u64 = 20_000 * NS_PER_DAY;

// ---------------------------------------------------------------------------------------------
// Building format-1 lakes.

fn account(id: u128, created: u64, balance: u128) -> AccountFields {
    AccountFields {
        id,
        debits_pending: balance,
        debits_posted: u128::MAX - balance,
        credits_pending: balance / 3,
        credits_posted: 1,
        user_data_128: id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u128::MAX,
        user_data_64: u64::MAX - id as u64,
        user_data_32: u32::MAX - id as u32,
        code: (id % 65_536) as u16,
        flags: 8,
        timestamp: created,
    }
}

/// When synthetic account `id` was created: 1..=20 before the first day, 50.. on day 2.
fn created(id: u128) -> u64 {
    if id >= 50 {
        DAY0 + 2 * NS_PER_DAY + 1_000 + id as u64
    } else {
        DAY0 - 1_000 + id as u64
    }
}

fn event(timestamp: u64, debit: u128, credit: u128, amount: u128, kind: EventType) -> Event {
    Event {
        timestamp,
        event_type: kind,
        ledger: if amount == u128::MAX { u32::MAX } else { 7 },
        transfer: TransferFields {
            id: u128::from(timestamp) << 64 | 0xFFFF,
            amount,
            pending_id: if kind == EventType::TwoPhasePosted {
                99
            } else {
                0
            },
            user_data_128: u128::MAX,
            user_data_64: u64::MAX,
            user_data_32: u32::MAX,
            timeout: u32::MAX,
            code: u16::MAX,
            flags: 2,
            timestamp: timestamp - 1,
        },
        debit_account: account(debit, created(debit), amount),
        credit_account: account(credit, created(credit), amount / 2),
    }
}

/// Three UTC days of events, ten per day, in segments of three or four; accounts 1..=4 and
/// 50..=51 are swept (the latter created on day 2, between events), the others first seen by
/// an event. One amount is u128::MAX.
fn synthetic() -> (Vec<Vec<Event>>, Vec<Vec<AccountRecord>>) {
    const KINDS: [EventType; 5] = [
        EventType::SinglePhase,
        EventType::TwoPhasePending,
        EventType::TwoPhasePosted,
        EventType::TwoPhaseVoided,
        EventType::TwoPhaseExpired,
    ];
    let mut segments = Vec::new();
    for day in 0..3u64 {
        let mut events = Vec::new();
        for i in 0..10u64 {
            let ts = DAY0 + day * NS_PER_DAY + 10_000 * (i + 1);
            let (debit, credit) = if day == 2 && i >= 5 {
                (50 + u128::from(i % 2), 1 + u128::from(i))
            } else {
                (
                    1 + u128::from((i + day) % 20),
                    5 + u128::from((i * 3 + day) % 15),
                )
            };
            let credit = if credit == debit { 20 } else { credit };
            let amount = match (day, i) {
                (0, 0) => u128::MAX,
                (1, 3) => 10u128.pow(38),
                _ => u128::from(i) * 1_000 + 1,
            };
            events.push(event(ts, debit, credit, amount, KINDS[(i % 5) as usize]));
        }
        segments.push(events[..3].to_vec());
        segments.push(events[3..7].to_vec());
        segments.push(events[7..].to_vec());
    }
    let swept_record = |id: u128| {
        let a = account(id, created(id), 0);
        AccountRecord::from_event_account(&a, 7, a.timestamp)
    };
    let swept = vec![
        (1..=4).map(swept_record).collect(),
        (50..=51).map(swept_record).collect(),
    ];
    (segments, swept)
}

/// Writes `segments` and `swept` as format 1: each account recorded once, in a swept file or in
/// the segment that first shows it; plus an orphan accounts file (account 999) and a
/// quarantined message.
async fn write_format1(
    v1: &Format1Lake,
    cluster_id: u128,
    segments: &[Vec<Event>],
    swept: &[Vec<AccountRecord>],
) {
    assert!(v1.write_meta(cluster_id).await.unwrap());
    let mut known: std::collections::HashSet<u128> = std::collections::HashSet::new();
    for file in swept {
        known.extend(file.iter().map(|a| a.id));
        assert!(v1.write_swept(file, cluster_id).await.unwrap());
    }
    for events in segments {
        let segment = Segment::recording_first_seen(events.clone(), &mut known);
        assert!(v1.write_segment(&segment, cluster_id).await.unwrap());
    }
    let last = segments.last().unwrap().last().unwrap().timestamp;
    let orphan = AccountRecord::from_event_account(&account(999, 5, 0), 7, last + 1);
    assert!(v1
        .write_accounts_file(&[orphan], cluster_id, (last + 1, last + 1))
        .await
        .unwrap());
    v1.put_raw(
        "quarantine/00000000000000000001-000000.json",
        br#"{"received_ns": "1", "received_at": "1970-01-01T00:00:00.000000001Z",
            "reason": "kept", "exchange": "x", "routing_key": "k", "headers": [],
            "body_utf8": "not JSON"}"#
            .to_vec(),
    )
    .await
    .unwrap();
}

async fn synthetic_lake() -> (tempfile::TempDir, Lake, Format1Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let v1 = Format1Lake::of(&lake);
    let (segments, swept) = synthetic();
    write_format1(&v1, CLUSTER, &segments, &swept).await;
    (dir, lake, v1)
}

// ---------------------------------------------------------------------------------------------
// Comparing.

/// The whole lake as format 1 held it, or as format 2 holds it: events in order, accounts by id.
type Contents = (Vec<Event>, Vec<AccountRecord>);

fn by_id(mut accounts: Vec<AccountRecord>) -> Vec<AccountRecord> {
    accounts.sort_by_key(|a| a.id);
    accounts
}

async fn format1_contents(v1: &Format1Lake) -> Contents {
    let (events, accounts) = v1
        .read_all()
        .await
        .expect("the format-1 lake reads back whole");
    (events, by_id(accounts))
}

async fn format2_contents(lake: &Lake) -> Contents {
    let (events, accounts) = lake
        .read_all()
        .await
        .expect("the upgraded lake reads back whole");
    (events, by_id(accounts))
}

/// Field by field, naming the first difference.
fn assert_same(got: &Contents, want: &Contents) {
    assert_eq!(got.0.len(), want.0.len(), "event count");
    for (i, (g, w)) in got.0.iter().zip(&want.0).enumerate() {
        assert_eq!(g, w, "event {i} (timestamp {})", w.timestamp);
    }
    assert_eq!(got.1.len(), want.1.len(), "account count");
    for (g, w) in got.1.iter().zip(&want.1) {
        assert_eq!(g, w, "account {}", w.id);
    }
}

/// What an exporter session starts with refuses the lake, naming the upgrade.
async fn assert_refused_as_format1(lake: &Lake) {
    match lake.resume_state(CLUSTER).await {
        Err(error @ LakeError::Format1 { .. }) => {
            assert!(error.to_string().contains("ledgerlake upgrade"), "{error}")
        }
        other => panic!("a format-1 lake must be refused: {other:?}"),
    }
}

async fn run_upgrade(lake: &Lake, commits_max: Option<u64>) -> UpgradeReport {
    upgrade(lake, commits_max, &NoProgress)
        .await
        .expect("upgrade runs")
}

/// No format-1 file is left; the quarantine is untouched.
async fn assert_no_format1_files(lake: &Lake, v1: &Format1Lake) {
    let listing = v1.listing().await.unwrap();
    assert!(
        listing.is_empty(),
        "format-1 files left: {:?}",
        listing.files()
    );
    assert_eq!(
        format1::detect(lake).await.unwrap(),
        Some(TARGET_FORMAT_VERSION)
    );
}

// ---------------------------------------------------------------------------------------------
// Synthetic lakes.

#[tokio::test]
async fn a_format1_lake_upgrades_exactly_and_its_small_files_merge() {
    let (dir, lake, v1) = synthetic_lake().await;
    let want = format1_contents(&v1).await;
    assert_eq!(want.0.len(), 30);
    assert!(want.0.iter().any(|e| e.transfer.amount == u128::MAX));
    assert_refused_as_format1(&lake).await;
    let format1_files = v1.listing().await.unwrap().files().len();
    assert!(format1_files > 9 + 1 + 2, "segments have accounts files");

    let report = run_upgrade(&lake, None).await;
    assert_eq!(report.outcome, UpgradeOutcome::Upgraded, "{report:?}");
    assert_eq!((report.format_before, report.format_after), (1, 2));
    assert_eq!(
        (
            report.format1_segments,
            report.format1_swept_files,
            report.format1_orphans
        ),
        (9, 2, 1)
    );
    assert_eq!(report.events, 30);
    assert_eq!(report.swept_accounts, 6);
    assert_eq!(report.accounts + report.swept_accounts, want.1.len() as u64);
    // One file per UTC date, and the two swept files.
    assert_eq!((report.commits, report.already_committed), (3 + 2, 0));
    assert_eq!(report.format1_files_deleted, format1_files);

    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    assert_same(&format2_contents(&lake).await, &want);
    assert!(
        !want.1.iter().any(|a| a.id == 999),
        "the orphan is not data"
    );
    assert_no_format1_files(&lake, &v1).await;
    lake.resume_state(CLUSTER)
        .await
        .expect("an exporter may start on it");
    assert!(dir
        .path()
        .join("quarantine/00000000000000000001-000000.json")
        .is_file());
    let segments = lake.list_segments().await.unwrap();
    let dates: Vec<String> = segments.iter().map(|s| s.date.clone()).collect();
    assert_eq!(
        dates,
        [0, 1, 2].map(|d| date_partition(DAY0 + d * NS_PER_DAY)),
        "consecutive segments of a date merge into one file"
    );
}

#[tokio::test]
async fn an_upgrade_stopped_after_k_commits_goes_on_where_it_stopped() {
    for k in 1..5 {
        let (dir, lake, v1) = synthetic_lake().await;
        let want = format1_contents(&v1).await;
        let first = run_upgrade(&lake, Some(k)).await;
        assert_eq!(first.outcome, UpgradeOutcome::Stopped, "k={k}: {first:?}");
        assert_eq!(first.commits, k);
        // Still format 1, whole, and refused by export.
        assert_eq!(format1::detect(&lake).await.unwrap(), Some(1));
        assert_refused_as_format1(&lake).await;
        assert_same(&format1_contents(&v1).await, &want);

        let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
        let second = run_upgrade(&lake, None).await;
        assert_eq!(second.outcome, UpgradeOutcome::Upgraded, "k={k}");
        assert_eq!(
            second.already_committed, k,
            "k={k}: nothing is committed twice"
        );
        assert_eq!(second.commits, 5 - k, "k={k}");
        let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
        assert_same(&format2_contents(&lake).await, &want);
        assert_no_format1_files(&lake, &v1).await;
    }
}

/// Writes to the inner store until `writes_max` writes (puts, deletes, copies) went through;
/// every later write fails, as if the process had been killed at that moment.
#[derive(Debug)]
struct Dying {
    inner: Arc<dyn ObjectStore>,
    writes: AtomicUsize,
    writes_max: usize,
}

impl fmt::Display for Dying {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dying({})", self.inner)
    }
}

impl Dying {
    fn write(&self) -> object_store::Result<()> {
        if self.writes.fetch_add(1, Ordering::SeqCst) >= self.writes_max {
            return Err(object_store::Error::Generic {
                store: "Dying",
                source: "killed".into(),
            });
        }
        Ok(())
    }

    fn dead(&self) -> bool {
        self.writes.load(Ordering::SeqCst) > self.writes_max
    }
}

#[async_trait]
impl ObjectStore for Dying {
    async fn put_opts(
        &self,
        path: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.write()?;
        self.inner.put_opts(path, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        path: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.write()?;
        self.inner.put_multipart_opts(path, opts).await
    }

    async fn get_opts(&self, path: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(path, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // Each delete is a write; once dead, deletes fail.
        let dead = self.write().is_err();
        if dead {
            return locations
                .map(|_| {
                    Err(object_store::Error::Generic {
                        store: "Dying",
                        source: "killed".into(),
                    })
                })
                .boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.write()?;
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn an_upgrade_killed_at_any_write_resumes_to_the_same_lake() {
    let mut writes_max = 0;
    loop {
        // In memory: `Lake::from_store` needs a store that lists in lexical order.
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let v1 = Format1Lake::of(&Lake::from_store(inner.clone(), "memory"));
        let (segments, swept) = synthetic();
        write_format1(&v1, CLUSTER, &segments, &swept).await;
        let want = format1_contents(&v1).await;
        let dying = Arc::new(Dying {
            inner: inner.clone(),
            writes: AtomicUsize::new(0),
            writes_max,
        });
        let doomed = Lake::from_store(dying.clone(), "dying");
        let first = upgrade(&doomed, None, &NoProgress).await;
        let died = dying.dead();
        assert_eq!(first.is_err(), died, "writes_max={writes_max}: {first:?}");

        let lake = Lake::from_store(inner.clone(), "memory");
        let second = run_upgrade(&lake, None).await;
        let lake = Lake::from_store(inner.clone(), "memory");
        assert_same(&format2_contents(&lake).await, &want);
        assert_no_format1_files(&lake, &v1).await;
        if !died {
            assert_eq!(second.outcome, UpgradeOutcome::AlreadyCurrent);
            assert!(writes_max > 5, "the upgrade writes something");
            break;
        }
        writes_max += 1;
        assert!(writes_max < 500, "the upgrade never finished");
    }
}

#[tokio::test]
async fn reruns_are_no_ops_and_leftovers_are_deleted() {
    let (dir, lake, v1) = synthetic_lake().await;
    let want = format1_contents(&v1).await;
    run_upgrade(&lake, None).await;
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let again = run_upgrade(&lake, None).await;
    assert_eq!(again.outcome, UpgradeOutcome::AlreadyCurrent);
    assert_eq!((again.commits, again.format1_files_deleted), (0, 0));

    // Format-1 files left behind (an upgrade stopped while deleting them): deleted, and only they.
    let (segments, swept) = synthetic();
    let leftover = Segment {
        events: segments[0].clone(),
        new_accounts: Vec::new(),
    };
    v1.write_segment(&leftover, CLUSTER).await.unwrap();
    v1.write_swept(&swept[0], CLUSTER).await.unwrap();
    let report = run_upgrade(&lake, None).await;
    assert_eq!(report.outcome, UpgradeOutcome::LeftoversRemoved);
    assert_eq!(report.format1_files_deleted, 2);
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    assert_same(&format2_contents(&lake).await, &want);
    assert_no_format1_files(&lake, &v1).await;
}

#[tokio::test]
async fn what_cannot_be_upgraded_is_refused_by_name() {
    // No lake at all.
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let v1 = Format1Lake::of(&lake);
    assert!(matches!(
        upgrade(&lake, None, &NoProgress).await,
        Err(UpgradeError::NoLake { .. })
    ));
    // Format-1 files without _ledgerlake.json: the cluster is unknown.
    let (segments, _) = synthetic();
    let segment = Segment {
        events: segments[0].clone(),
        new_accounts: Vec::new(),
    };
    v1.write_segment(&segment, CLUSTER).await.unwrap();
    assert!(matches!(
        upgrade(&lake, None, &NoProgress).await,
        Err(UpgradeError::Unbound { .. })
    ));
    // A newer format.
    v1.replace_meta(&MetaFile {
        format_version: 3,
        cluster_id: CLUSTER,
    })
    .await
    .unwrap();
    let error = upgrade(&lake, None, &NoProgress).await.unwrap_err();
    assert!(matches!(
        error,
        UpgradeError::UnsupportedFormat { found: 3 }
    ));
    assert!(error.to_string().contains("format version 3"), "{error}");

    // An event account missing from every accounts file: named, nothing committed.
    v1.replace_meta(&MetaFile {
        format_version: 1,
        cluster_id: CLUSTER,
    })
    .await
    .unwrap();
    let error = upgrade(&lake, None, &NoProgress).await.unwrap_err();
    assert!(
        matches!(
            error,
            UpgradeError::Format1(format1::Format1Error::MissingAccount { .. })
        ),
        "{error}"
    );
    assert_eq!(format1::detect(&lake).await.unwrap(), Some(1));

    // A timestamp format 2 cannot hold.
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let v1 = Format1Lake::of(&lake);
    let late = 1u64 << 63;
    let e = event(late + 10, 1, 2, 5, EventType::SinglePhase);
    let segment = Segment {
        new_accounts: [&e.debit_account, &e.credit_account]
            .map(|a| AccountRecord::from_event_account(a, e.ledger, e.timestamp))
            .to_vec(),
        events: vec![e],
    };
    v1.write_meta(CLUSTER).await.unwrap();
    v1.write_segment(&segment, CLUSTER).await.unwrap();
    let error = upgrade(&lake, None, &NoProgress).await.unwrap_err();
    assert!(
        matches!(error, UpgradeError::TimestampOutOfRange { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("2^63"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// A lake from the real stack.

/// Splits a lake's contents back into format-1 segments of at most `segment_events` events of
/// one UTC date, with the swept accounts (recorded as of their creation) in `swept_files` files.
fn as_format1(
    events: &[Event],
    accounts: &[AccountRecord],
    segment_events: usize,
    swept_files: usize,
) -> (Vec<Vec<Event>>, Vec<Vec<AccountRecord>>) {
    let mut swept: Vec<AccountRecord> = accounts
        .iter()
        .filter(|a| a.first_seen_timestamp == a.timestamp)
        .copied()
        .collect();
    swept.sort_by_key(|a| a.timestamp);
    let per_file = swept.len().div_ceil(swept_files).max(1);
    let swept = swept.chunks(per_file).map(<[_]>::to_vec).collect();
    let mut segments: Vec<Vec<Event>> = Vec::new();
    for e in events {
        match segments.last_mut() {
            Some(s)
                if s.len() < segment_events
                    && date_partition(s[0].timestamp) == date_partition(e.timestamp) =>
            {
                s.push(*e)
            }
            _ => segments.push(vec![*e]),
        }
    }
    (segments, swept)
}

/// The verdict and the counts of a verify report that do not depend on how the events are cut
/// into files.
fn verdict(r: &VerifyReport) -> String {
    format!(
        "ok={} events={} accounts={} swept={} ledgers={} open_pending={} first={:?} last={:?} \
         double_entry={} problems={}",
        r.ok,
        r.events,
        r.accounts,
        r.swept_accounts,
        r.ledgers,
        r.open_pending_transfers,
        r.first_timestamp,
        r.last_timestamp,
        r.double_entry_checked,
        r.problems_total
    )
}

#[tokio::test]
async fn an_exported_lake_in_format1_upgrades_and_verifies_the_same() {
    let stack = common::stack::Stack::start().await;
    let summary = stack.run_workload(0x0b9_0001, 2_000).await;
    let expected_events = summary.events.total();
    let tmp = tempfile::tempdir().unwrap();
    let exported = tmp.path().join("exported").to_string_lossy().into_owned();
    let mut options = stack.export_options(&exported);
    options.seal.events_max = 500;
    options.seal.age_max = Duration::from_millis(300);
    options.until_idle = Some(Duration::from_secs(2));
    options.sweep = Some(SweepOptions {
        addresses: stack.replica.address().to_string(),
        interval: Duration::from_millis(200),
        request_timeout: Duration::from_secs(30),
    });
    let mut committed = 0;
    for _ in 0..20 {
        committed += export::run(options.clone(), Box::pin(std::future::pending()))
            .await
            .expect("export")
            .events_committed;
        if committed >= expected_events {
            break;
        }
    }
    assert_eq!(committed, expected_events);
    let source = Lake::open(&exported).await.unwrap();
    let before = verify(&source, &NoReadProgress).await;
    assert!(before.ok, "{:?}", before.problems);
    assert!(before.swept_accounts > 0, "the sweep recorded accounts");
    let (events, accounts) = source.read_all().await.unwrap();
    let want: Contents = (events.clone(), by_id(accounts.clone()));

    // The same contents, written as format 1 by the format-1 writer, in 100-event segments.
    let upgraded = tmp.path().join("upgraded").to_string_lossy().into_owned();
    let lake = Lake::open(&upgraded).await.unwrap();
    let v1 = Format1Lake::of(&lake);
    let (segments, swept) = as_format1(&events, &accounts, 100, 3);
    write_format1(&v1, stack.replica.cluster_id(), &segments, &swept).await;
    assert_same(&format1_contents(&v1).await, &want);

    let report = run_upgrade(&lake, None).await;
    assert_eq!(report.outcome, UpgradeOutcome::Upgraded, "{report:?}");
    assert_eq!(report.events, expected_events);
    let lake = Lake::open(&upgraded).await.unwrap();
    assert_same(&format2_contents(&lake).await, &want);
    assert_no_format1_files(&lake, &v1).await;
    let after = verify(&lake, &NoReadProgress).await;
    assert_eq!(verdict(&after), verdict(&before), "{:?}", after.problems);
    assert!(after.segments < segments.len(), "small segments merged");

    let again = run_upgrade(&lake, None).await;
    assert_eq!(again.outcome, UpgradeOutcome::AlreadyCurrent);
    let ids: HashMap<u128, usize> = want.1.iter().map(|a| (a.id, 1)).collect();
    assert_eq!(ids.len(), want.1.len(), "each account exactly once");
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// The command line.

fn ledgerlake(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(args)
        .env_remove("LEDGERLAKE_LAKE")
        .env("LEDGERLAKE_LOG", "warn")
        .output()
        .expect("ledgerlake runs")
}

#[tokio::test]
async fn the_command_upgrades_reports_and_exits_as_documented() {
    let (dir, lake, v1) = synthetic_lake().await;
    let location = dir.path().to_string_lossy().into_owned();
    // The other commands refuse the format-1 lake and name the upgrade.
    let output = ledgerlake(&["ls", "--lake", &location]);
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("ledgerlake upgrade --lake"), "{err}");

    let output = ledgerlake(&["upgrade", "--lake", &location, "--commits-max", "1"]);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("stopped after 1 commits"), "{out}");

    let output = ledgerlake(&["upgrade", "--lake", &location, "--format", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["outcome"], "upgraded", "{json}");
    assert_eq!(json["already_committed"], "1", "{json}");
    assert_eq!(json["events"], "30", "{json}");
    assert_eq!(json["cluster_id"], CLUSTER.to_string());

    let output = ledgerlake(&["upgrade", "--lake", &location]);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("already format 2: nothing to do"), "{out}");
    let output = ledgerlake(&["ls", "--lake", &location]);
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{err}");

    v1.replace_meta(&MetaFile {
        format_version: 3,
        cluster_id: CLUSTER,
    })
    .await
    .unwrap();
    let output = ledgerlake(&["upgrade", "--lake", &location]);
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("format version 3"), "{err}");
    drop(lake);

    let output = ledgerlake(&["upgrade", "--lake", "/no/such/lake"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!std::path::Path::new("/no/such/lake").exists());
    let help = ledgerlake(&["upgrade", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(
        help.contains("in place") && help.contains("--commits-max"),
        "{help}"
    );
}

#[tokio::test]
async fn a_bound_but_empty_format1_lake_becomes_an_empty_format2_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let v1 = Format1Lake::of(&lake);
    v1.write_meta(CLUSTER).await.unwrap();
    let report = run_upgrade(&lake, None).await;
    assert_eq!(report.outcome, UpgradeOutcome::Upgraded);
    assert_eq!((report.events, report.commits), (0, 0));
    let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
    let state = lake
        .resume_state(CLUSTER)
        .await
        .expect("an exporter may start");
    assert_eq!(state.committed_last, None);
    assert_eq!(format2_contents(&lake).await, (Vec::new(), Vec::new()));
}
