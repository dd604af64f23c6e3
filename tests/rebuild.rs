//! `ledgerlake rebuild` against the real stack: a source ledger built by the workload generator
//! (every event kind), exported by the real CDC job and the in-process exporter, then rebuilt into
//! fresh clusters at several `--until` cuts and compared with the source as it stood then; a
//! rebuild killed mid-run and resumed; and the refusals.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::export::{self};
use ledgerlake::lake::{AccountRecord, Lake, Segment};
use ledgerlake::rebuild::plan::{expiry_void_id, PlanError, Until};
use ledgerlake::rebuild::report::Report;
use ledgerlake::rebuild::target::TargetError;
use ledgerlake::rebuild::{self, RebuildError, RebuildOptions};
use ledgerlake::testbed::{self, Broker, CdcJob, Replica};
use ledgerlake::workload::{self, WorkloadConfig, WorkloadSummary};
use tigerbeetle_unofficial::{account, Account, Client};
use tokio::sync::oneshot;

const LINKED: u16 = 1;
const PENDING: u16 = 1 << 1;
const VOID: u16 = 1 << 3;
const T_IMPORTED: u16 = 1 << 8;
const A_LINKED: u16 = 1;
const A_IMPORTED: u16 = 1 << 4;
const A_CLOSED: u16 = 1 << 5;

/// The source ledger, exported: the lake, and everything the comparisons need from the source.
struct Source {
    replica: Replica,
    _dir: tempfile::TempDir,
    lake: String,
    summary: WorkloadSummary,
    events: Vec<Event>,
    /// The source's accounts, as an account sweep would record them.
    sweep: Vec<AccountRecord>,
    transfers: HashMap<u128, tigerbeetle_unofficial::transfer::Raw>,
    accounts: Vec<account::Raw>,
    history: HashMap<u128, Vec<(u64, [u128; 4])>>,
}

/// Runs the workload on a fresh replica while the CDC job and the in-process exporter move every
/// event into a lake; returns once the lake holds them all.
async fn build_source(replica: Replica, seed: u64, transfer_count: usize) -> Source {
    let broker = Broker::connect()
        .await
        .expect("broker (run scripts/setup.sh)");
    let exchange = testbed::unique_name("ledgerlake-rebuild");
    let queue = testbed::unique_name("ledgerlake-rebuild-lake");
    broker.declare_exchange(&exchange).await.expect("exchange");
    broker
        .declare_queue_bound(&queue, &exchange)
        .await
        .expect("queue");
    let cdc = CdcJob::start(&replica, &exchange, None)
        .await
        .expect("CDC job");
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = dir.path().join("lake").to_string_lossy().into_owned();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut options = common::stack::export_options(&queue, replica.cluster_id(), &lake_location);
    options.seal.events_max = 4096;
    let exporter = tokio::spawn(export::run(
        options,
        Box::pin(async move {
            let _ = stopped.await;
        }),
    ));
    let client = replica.client().expect("client");
    let summary = workload::run(&client, &WorkloadConfig::new(seed, transfer_count), |_| {})
        .await
        .expect("workload");
    let lake = Lake::open(&lake_location).await.expect("lake");
    let expected = summary.events.total() as usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (events, _) = lake.read_all().await.expect("lake reads");
        if events.len() >= expected {
            assert_eq!(
                events.len(),
                expected,
                "the lake holds more events than the source made"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lake has {} of {expected} events",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = stop.send(());
    exporter
        .await
        .expect("exporter task")
        .expect("exporter ends cleanly");
    cdc.stop().await;
    let _ = broker.delete_queue(&queue).await;
    let _ = broker.delete_exchange(&exchange).await;
    let _ = broker.delete_cdc_queues(replica.cluster_id()).await;

    let (events, _) = lake.read_all().await.expect("lake reads");
    let accounts: Vec<account::Raw> = common::source_accounts(&client)
        .await
        .iter()
        .map(|a| *a.as_raw())
        .collect();
    let sweep = accounts
        .iter()
        .map(|a| AccountRecord {
            id: a.id,
            ledger: a.ledger,
            code: a.code,
            flags: a.flags,
            user_data_128: a.user_data_128,
            user_data_64: a.user_data_64,
            user_data_32: a.user_data_32,
            timestamp: a.timestamp,
            first_seen_timestamp: 0,
        })
        .collect();
    let transfers = common::source_transfers(&client)
        .await
        .iter()
        .map(|t| (t.as_raw().id, *t.as_raw()))
        .collect();
    let mut history = HashMap::new();
    for a in accounts
        .iter()
        .filter(|a| a.flags & common::ACCOUNT_HISTORY != 0)
    {
        history.insert(a.id, common::account_history(&client, a.id).await);
    }
    Source {
        replica,
        _dir: dir,
        lake: lake_location,
        summary,
        events,
        sweep,
        transfers,
        accounts,
        history,
    }
}

fn options(source: &Source, target: &Replica, until: Until) -> RebuildOptions {
    RebuildOptions {
        lake: source.lake.clone(),
        addresses: Some(target.address().to_string()),
        cluster_id: target.cluster_id(),
        lake_cluster_id: (target.cluster_id() != source.replica.cluster_id())
            .then(|| source.replica.cluster_id()),
        until,
        ledgers: None,
        dry_run: false,
        batch_events_max: 8189,
        reply_timeout: Duration::from_secs(60),
    }
}

async fn rebuild_with_sweep(
    source: &Source,
    options: &RebuildOptions,
) -> Result<Report, RebuildError> {
    rebuild::rebuild(options, source.sweep.clone(), &mut |_| {}).await
}

fn balances(a: &AccountFields) -> [u128; 4] {
    [
        a.debits_pending,
        a.debits_posted,
        a.credits_pending,
        a.credits_posted,
    ]
}

/// The transfer the target must hold for a lake event (deviations applied).
fn expected_transfer(
    source: &Source,
    event: &Event,
    cut_chain: bool,
) -> tigerbeetle_unofficial::transfer::Raw {
    if event.event_type == EventType::TwoPhaseExpired {
        let p = source.transfers[&event.transfer.id];
        return tigerbeetle_unofficial::transfer::Raw {
            id: expiry_void_id(p.id),
            pending_id: p.id,
            timeout: 0,
            flags: VOID | T_IMPORTED,
            timestamp: event.timestamp,
            ..p
        };
    }
    let t = source.transfers[&event.transfer.id];
    assert_eq!(t.timestamp, event.timestamp);
    let mut flags = t.flags | T_IMPORTED;
    if cut_chain {
        flags &= !LINKED;
    }
    tigerbeetle_unofficial::transfer::Raw {
        timeout: 0,
        flags,
        ..t
    }
}

type RawTransfer = tigerbeetle_unofficial::transfer::Raw;

fn transfer_fields(t: &RawTransfer) -> [(&'static str, u128); 13] {
    [
        ("id", t.id),
        ("debit_account_id", t.debit_account_id),
        ("credit_account_id", t.credit_account_id),
        ("amount", t.amount),
        ("pending_id", t.pending_id),
        ("user_data_128", t.user_data_128),
        ("user_data_64", t.user_data_64.into()),
        ("user_data_32", t.user_data_32.into()),
        ("timeout", t.timeout.into()),
        ("ledger", t.ledger.into()),
        ("code", t.code.into()),
        ("flags", t.flags.into()),
        ("timestamp", t.timestamp.into()),
    ]
}

fn account_fields(a: &account::Raw) -> [(&'static str, u128); 12] {
    [
        ("id", a.id),
        ("debits_pending", a.debits_pending),
        ("debits_posted", a.debits_posted),
        ("credits_pending", a.credits_pending),
        ("credits_posted", a.credits_posted),
        ("user_data_128", a.user_data_128),
        ("user_data_64", a.user_data_64.into()),
        ("user_data_32", a.user_data_32.into()),
        ("ledger", a.ledger.into()),
        ("code", a.code.into()),
        ("flags", a.flags.into()),
        ("timestamp", a.timestamp.into()),
    ]
}

#[derive(Debug, Default)]
struct Compared {
    transfers: usize,
    voids: usize,
    accounts: usize,
    history_points: usize,
    open_pending: usize,
}

/// Asserts that the target is the source as it stood at `until`: every transfer event ≤ until
/// as a transfer, field by field (documented deviations applied), nothing after; every account
/// created ≤ until (those without transfers only `with_sweep`) with its balances and `closed`
/// flag as of the last lake event ≤ until; `history` accounts with the source's history ≤ until
/// plus one point per replayed expiry.
async fn assert_target_is_source_at(
    source: &Source,
    target: &Client,
    until: u64,
    with_sweep: bool,
) -> Compared {
    let upto: Vec<&Event> = source
        .events
        .iter()
        .take_while(|e| e.timestamp <= until)
        .collect();
    let mut compared = Compared::default();

    let got = common::source_transfers(target).await;
    assert_eq!(
        got.len(),
        upto.len(),
        "transfers in the target at {until}: one per lake event ≤ until"
    );
    for (i, (event, got)) in upto.iter().zip(&got).enumerate() {
        let cut_chain = i + 1 == upto.len()
            && event.event_type != EventType::TwoPhaseExpired
            && event.transfer.flags & LINKED != 0;
        let want = expected_transfer(source, event, cut_chain);
        for ((name, w), (_, g)) in transfer_fields(&want)
            .iter()
            .zip(transfer_fields(got.as_raw()))
        {
            assert_eq!(
                g, *w,
                "{name} of transfer {} (event {} at {})",
                want.id, event.event_type, event.timestamp
            );
        }
        compared.voids += usize::from(event.event_type == EventType::TwoPhaseExpired);
    }
    compared.transfers = got.len();

    // Balances and flags as of the last event ≤ until.
    let mut state: HashMap<u128, ([u128; 4], u16)> = HashMap::new();
    let mut points: HashMap<u128, Vec<(u64, [u128; 4])>> = HashMap::new();
    for e in &upto {
        for side in [&e.debit_account, &e.credit_account] {
            state.insert(side.id, (balances(side), side.flags));
            if e.event_type == EventType::TwoPhaseExpired {
                points
                    .entry(side.id)
                    .or_default()
                    .push((e.timestamp, balances(side)));
            }
        }
    }
    // Without the sweep, only accounts the CDC stream showed: not those without transfers, nor
    // those whose every transfer was rejected.
    let in_lake: HashSet<u128> = source
        .events
        .iter()
        .flat_map(|e| [e.debit_account.id, e.credit_account.id])
        .collect();
    let want_accounts: Vec<&account::Raw> = source
        .accounts
        .iter()
        .filter(|a| a.timestamp <= until && (with_sweep || in_lake.contains(&a.id)))
        .collect();
    let got = common::source_accounts(target).await;
    assert_eq!(
        got.len(),
        want_accounts.len(),
        "accounts in the target at {until}"
    );
    for (src, got) in want_accounts.iter().zip(&got) {
        let (b, flags) = state.get(&src.id).copied().unwrap_or(([0; 4], 0));
        let want = account::Raw {
            debits_pending: b[0],
            debits_posted: b[1],
            credits_pending: b[2],
            credits_posted: b[3],
            flags: (src.flags & !(A_CLOSED | A_LINKED)) | A_IMPORTED | (flags & A_CLOSED),
            ..**src
        };
        for ((name, w), (_, g)) in account_fields(&want)
            .iter()
            .zip(account_fields(got.as_raw()))
        {
            assert_eq!(g, *w, "{name} of account {} at {until}", src.id);
        }
    }
    compared.accounts = got.len();

    for (&id, history) in &source.history {
        if !want_accounts.iter().any(|a| a.id == id) {
            continue;
        }
        let mut want: Vec<(u64, [u128; 4])> = history
            .iter()
            .copied()
            .filter(|(t, _)| *t <= until)
            .collect();
        want.extend(points.get(&id).into_iter().flatten().copied());
        want.sort_by_key(|p| p.0);
        let got = common::account_history(target, id).await;
        assert_eq!(
            got, want,
            "history of account {id} at {until} (the source's, plus a point per expiry void)"
        );
        compared.history_points += got.len();
    }

    // Pending transfers still open in the target.
    let all = common::source_transfers(target).await;
    let resolved: HashSet<u128> = all
        .iter()
        .map(|t| t.as_raw().pending_id)
        .filter(|&p| p != 0)
        .collect();
    compared.open_pending = all
        .iter()
        .filter(|t| t.as_raw().flags & PENDING != 0 && !resolved.contains(&t.as_raw().id))
        .count();
    compared
}

/// A rebuild into a fresh cluster at `until`, compared with the source.
async fn rebuild_and_compare(
    source: &Source,
    name: &str,
    until: u64,
    targets: &mut Targets,
) -> (Replica, Report) {
    let phase = Instant::now();
    let target = targets.next().await;
    let started = phase.elapsed();
    let report = rebuild_with_sweep(source, &options(source, &target, Until::At(until)))
        .await
        .unwrap_or_else(|e| panic!("rebuild {name} at {until}: {e}"));
    let client = target.client().expect("client");
    let rebuilt = phase.elapsed();
    let compared = assert_target_is_source_at(source, &client, until, true).await;
    let run = report.run.as_ref().expect("not a dry run");
    assert_eq!(run.target, "fresh");
    assert_eq!(
        run.transfers_created as usize, compared.transfers,
        "{name}: report vs target"
    );
    assert_eq!(
        run.accounts_created as usize, compared.accounts,
        "{name}: report vs target"
    );
    assert_eq!(
        report.plan.deviations.expiry_voids_total, compared.voids,
        "{name}: voids"
    );
    assert_eq!(
        report.plan.open_pending_total, compared.open_pending,
        "{name}: open pending transfers"
    );
    eprintln!(
        "cut {name} at {until}: {compared:?}, {:.0} events/s; replica start {started:?}, rebuilt at {rebuilt:?}, compared at {:?}",
        run.events_per_second,
        phase.elapsed()
    );
    (target, report)
}

/// Fresh target clusters, started in the background ahead of use (formatting a data file takes
/// seconds), at most three at a time next to the source.
struct Targets {
    ids: std::collections::VecDeque<u128>,
    starting: std::collections::VecDeque<tokio::task::JoinHandle<Replica>>,
}

impl Targets {
    fn new(ids: Vec<u128>) -> Targets {
        let mut t = Targets {
            ids: ids.into(),
            starting: Default::default(),
        };
        for _ in 0..testbed::MAX_LIVE_REPLICAS - 1 {
            t.start_one();
        }
        t
    }

    fn start_one(&mut self) {
        if let Some(id) = self.ids.pop_front() {
            self.starting.push_back(tokio::spawn(async move {
                Replica::start(id).await.expect("target replica")
            }));
        }
    }

    async fn next(&mut self) -> Replica {
        let replica = self
            .starting
            .pop_front()
            .expect("a target was planned")
            .await
            .expect("target start task");
        self.start_one();
        replica
    }

    /// Stops a target in the background; its permit frees the next start.
    fn retire(replica: Replica) {
        tokio::spawn(replica.stop());
    }
}

/// The `ledgerlake` binary built with this test, copied aside on first use.
/// `CARGO_BIN_EXE_ledgerlake` names a file that a build of another worktree sharing the target
/// directory can replace at any moment, so each test takes its copy first thing.
fn ledgerlake_bin() -> std::path::PathBuf {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let built = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ledgerlake"));
        let copy =
            std::env::temp_dir().join(format!("ledgerlake-rebuild-test-{}", std::process::id()));
        std::fs::copy(&built, &copy).expect("copy the ledgerlake binary");
        let help = Command::new(&copy)
            .args(["rebuild", "--help"])
            .output()
            .expect("run ledgerlake");
        assert!(
            help.status.success()
                && String::from_utf8_lossy(&help.stdout).contains("--batch-events-max"),
            "{} is not this worktree's build (a shared target directory?): rerun the test",
            built.display()
        );
        copy
    })
    .clone()
}

fn find(events: &[Event], what: &str, f: impl Fn(usize) -> bool) -> u64 {
    let i = (0..events.len())
        .filter(|&i| f(i))
        .nth(1)
        .or_else(|| (0..events.len()).find(|&i| f(i)))
        .unwrap_or_else(|| panic!("the workload made no {what}"));
    events[i].timestamp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_reproduces_the_source_at_every_cut_and_resumes_after_a_kill() {
    let started = Instant::now();
    let bin = ledgerlake_bin();
    let source_replica = Replica::start(testbed::random_cluster_id())
        .await
        .expect("source replica");
    let id = source_replica.cluster_id();
    // One fresh cluster per cut, in the order used below; the expiry cut goes to a cluster with
    // another id, and the last one is for the kill.
    let other_id = testbed::random_cluster_id();
    let mut targets = Targets::new(vec![id, id, id, other_id, id, id, id]);
    let source = build_source(source_replica, 0x5eed_0003, 20_000).await;
    let events = &source.events;
    eprintln!(
        "source: {} events, built in {:?}",
        events.len(),
        started.elapsed()
    );

    let first_account = source.accounts.iter().map(|a| a.timestamp).min().unwrap();
    let before_first_event = events[0].timestamp - 1;
    assert!(
        before_first_event >= first_account,
        "the workload creates accounts first"
    );
    let on_event = find(events, "plain single-phase transfer", |i| {
        i > events.len() / 3
            && events[i].event_type == EventType::SinglePhase
            && events[i].transfer.flags & LINKED == 0
    });
    let between = find(events, "gap between events", |i| {
        i + 1 < events.len()
            && events[i + 1].timestamp - events[i].timestamp >= 2
            && i > events.len() / 2
    }) + 1;
    assert!(events.iter().all(|e| e.timestamp != between));
    let expiry = find(events, "expiry", |i| {
        events[i].event_type == EventType::TwoPhaseExpired
    });
    let inside_chain = find(events, "linked chain", |i| {
        events[i].transfer.flags & LINKED != 0 && events[i].event_type != EventType::TwoPhaseExpired
    });
    let latest = events[events.len() - 1].timestamp;

    // Accounts only.
    let (target, report) = rebuild_and_compare(
        &source,
        "before the first event",
        before_first_event,
        &mut targets,
    )
    .await;
    assert_eq!(report.plan.events.total(), 0);
    // A target that holds an object not created by a rebuild is refused before any write.
    let client = target.client().expect("client");
    let stranger = Account::new(u128::MAX - 12345, 1, 1);
    client
        .create_accounts(vec![stranger])
        .await
        .expect("a plain account");
    let err = rebuild_with_sweep(&source, &options(&source, &target, Until::Latest))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RebuildError::Target(TargetError::NotImported { .. })),
        "unrelated target: {err}"
    );
    assert_eq!(
        common::source_transfers(&client).await.len(),
        0,
        "nothing written"
    );
    Targets::retire(target);

    let (target, _) = rebuild_and_compare(&source, "on an event", on_event, &mut targets).await;
    // The same target, asked for another subset: not a part-way rebuild of that plan.
    let mut other = options(&source, &target, Until::At(on_event));
    other.ledgers = Some([1].into());
    let err = rebuild_with_sweep(&source, &other).await.unwrap_err();
    assert!(
        matches!(
            err,
            RebuildError::Target(TargetError::NotThisRebuild { .. })
        ),
        "another subset: {err}"
    );
    // A target already past the requested --until.
    let err = rebuild_with_sweep(&source, &options(&source, &target, Until::At(on_event - 1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RebuildError::Target(TargetError::AheadOfUntil { .. })),
        "{err}"
    );
    Targets::retire(target);

    // Between two events, then carried forward to `latest` in the same target (a resume).
    let (target, _) =
        rebuild_and_compare(&source, "between two events", between, &mut targets).await;
    let report = rebuild_with_sweep(&source, &options(&source, &target, Until::Latest))
        .await
        .expect("forward");
    assert_eq!(report.run.as_ref().unwrap().target, "resumed");
    assert_target_is_source_at(&source, &target.client().unwrap(), latest, true).await;
    Targets::retire(target);

    // Into a cluster with another id, confirmed with --lake-cluster-id.
    let (target, report) = rebuild_and_compare(&source, "at an expiry", expiry, &mut targets).await;
    assert!(report.plan.deviations.expiry_voids_total > 0);
    Targets::retire(target);

    let (target, report) =
        rebuild_and_compare(&source, "inside a linked chain", inside_chain, &mut targets).await;
    assert_eq!(
        report.plan.deviations.chain_cuts.len(),
        1,
        "the chain is closed at --until"
    );
    Targets::retire(target);

    let (target, report) = rebuild_and_compare(&source, "latest", latest, &mut targets).await;
    assert_eq!(
        report.plan.deviations.expiry_voids_total,
        source.summary.expired_transfer_ids.len(),
        "one void per expiry"
    );
    assert!(
        !source.summary.untouched_account_ids.is_empty(),
        "the sweep brings accounts without transfers (compared above)"
    );
    let run = report.run.as_ref().unwrap();
    eprintln!(
        "THROUGHPUT latest: {} accounts + {} transfers in {:.3} s = {:.0} events/s ({} + {} requests; plan {:.3} s, inspect {:.3} s)",
        run.accounts_created,
        run.transfers_created,
        run.replay_s,
        run.events_per_second,
        run.account_requests,
        run.transfer_requests,
        run.plan_s,
        run.inspect_s
    );
    for kind in [
        "single_phase",
        "two_phase_pending",
        "two_phase_posted",
        "two_phase_voided",
        "two_phase_expired",
    ] {
        let json = serde_json::to_value(report.plan.events).unwrap();
        let replayed: u64 = json[kind].as_str().unwrap().parse().unwrap();
        assert!(replayed > 0, "no {kind} replayed");
    }
    Targets::retire(target);

    // Killed mid-run (the binary, without the account sweep), then run again: it resumes.
    let target = targets.next().await;
    let args = |extra: &[&str]| {
        let mut a = vec![
            "rebuild".to_string(),
            "--lake".into(),
            source.lake.clone(),
            "--addresses".into(),
            target.address().to_string(),
            "--cluster-id".into(),
            id.to_string(),
            "--until".into(),
            "latest".into(),
            "--batch-events-max".into(),
            "500".into(),
            "--format".into(),
            "json".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut child = Command::new(&bin)
        .args(args(&[]))
        .env("LEDGERLAKE_LOG", "ledgerlake=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ledgerlake rebuild");
    let stderr = child.stderr.take().unwrap();
    let (killed, lines) = tokio::task::spawn_blocking(move || {
        let mut committed = 0;
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.expect("stderr line");
            if line.contains("request committed") {
                committed += 1;
                if committed == 12 {
                    child.kill().expect("kill");
                    break;
                }
            } else {
                lines.push(line);
            }
        }
        child.wait().expect("wait");
        (committed, lines)
    })
    .await
    .unwrap();
    assert_eq!(
        killed, 12,
        "the rebuild ended before it could be killed: {lines:?}"
    );
    let client = target.client().expect("client");
    let part = common::source_transfers(&client).await.len()
        + common::source_accounts(&client).await.len();
    let whole = events.len() + source.accounts.len();
    assert!(
        part > 0 && part < whole,
        "killed part-way: {part} of {whole} objects"
    );
    let output = Command::new(&bin).args(args(&[])).output().expect("rerun");
    assert!(
        output.status.success(),
        "rerun: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["run"]["target"], "resumed");
    // Every u64 of the JSON report is a decimal string.
    let count = |field: &str| -> u64 { report["run"][field].as_str().unwrap().parse().unwrap() };
    let present = count("accounts_already_present") + count("transfers_already_present");
    assert!(
        present >= part as u64,
        "resumed after {present} objects, the target held {part}"
    );
    assert_target_is_source_at(&source, &client, latest, false).await;
    // Once more: nothing left to do.
    let output = Command::new(&bin).args(args(&[])).output().expect("rerun");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["run"]["transfers_created"], "0");
    assert_eq!(report["run"]["accounts_created"], "0");
    Targets::retire(target);
    eprintln!("whole test: {:?}", started.elapsed());
}

/// A small lake written directly (no cluster needed): two accounts, a few events.
async fn small_lake(dir: &std::path::Path, cluster_id: u128) -> (String, u64, u64) {
    let location = dir.join("lake").to_string_lossy().into_owned();
    let lake = Lake::open(&location).await.unwrap();
    lake.bind_cluster(cluster_id).await.unwrap();
    let base = 1_760_000_000_000_000_000u64;
    let account = |id: u128, amount: u128, debit: bool| AccountFields {
        id,
        code: 1,
        timestamp: base + id as u64,
        debits_posted: if debit { amount } else { 0 },
        credits_posted: if debit { 0 } else { amount },
        ..AccountFields::default()
    };
    let events: Vec<Event> = (1..=3u64)
        .map(|i| Event {
            timestamp: base + 10 + i,
            event_type: EventType::SinglePhase,
            ledger: 1,
            transfer: TransferFields {
                id: u128::from(i),
                amount: 5,
                code: 1,
                timestamp: base + 10 + i,
                ..TransferFields::default()
            },
            debit_account: account(1, 5 * u128::from(i), true),
            credit_account: account(2, 5 * u128::from(i), false),
        })
        .collect();
    let new_accounts = vec![
        AccountRecord::from_event_account(&events[0].debit_account, 1, events[0].timestamp),
        AccountRecord::from_event_account(&events[0].credit_account, 1, events[0].timestamp),
    ];
    lake.commit(
        &Segment {
            events,
            new_accounts,
        },
        cluster_id,
    )
    .await
    .unwrap();
    (location, base + 1, base + 13)
}

#[tokio::test]
async fn rebuild_refuses_until_outside_the_lake_and_a_lake_of_another_cluster() {
    let bin = ledgerlake_bin();
    let dir = tempfile::tempdir().unwrap();
    let (lake, first, last) = small_lake(dir.path(), 42).await;
    let base = RebuildOptions {
        lake: lake.clone(),
        // Nothing listens there: every refusal must come before any connection.
        addresses: Some("127.0.0.1:1".into()),
        cluster_id: 42,
        lake_cluster_id: None,
        until: Until::Latest,
        ledgers: None,
        dry_run: false,
        batch_events_max: 8189,
        reply_timeout: Duration::from_secs(5),
    };
    for until in [first - 1, last + 1] {
        let err = rebuild::rebuild(
            &RebuildOptions {
                until: Until::At(until),
                ..base.clone()
            },
            [],
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, RebuildError::Plan(PlanError::UntilOutOfRange { .. })),
            "{err}"
        );
        assert!(
            err.to_string().contains(&format!("{first}..={last}")),
            "{err}"
        );
    }
    let err = rebuild::rebuild(
        &RebuildOptions {
            cluster_id: 43,
            ..base.clone()
        },
        [],
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            RebuildError::ClusterMismatch {
                lake: 42,
                target: 43
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--lake-cluster-id 42"), "{err}");
    let err = rebuild::rebuild(
        &RebuildOptions {
            cluster_id: 43,
            lake_cluster_id: Some(44),
            ..base.clone()
        },
        [],
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            RebuildError::LakeClusterMismatch {
                lake: 42,
                given: 44
            }
        ),
        "{err}"
    );
    let empty = dir.path().join("nothing").to_string_lossy().into_owned();
    let err = rebuild::rebuild(
        &RebuildOptions {
            lake: empty,
            ..base.clone()
        },
        [],
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RebuildError::NotALake { .. }), "{err}");

    // A dry run plans and touches nothing (the target address is never used).
    let report = rebuild::rebuild(
        &RebuildOptions {
            dry_run: true,
            ..base.clone()
        },
        [],
        &mut |_| {},
    )
    .await
    .expect("dry run");
    assert!(report.run.is_none());
    assert_eq!((report.plan.accounts, report.plan.transfers), (2, 3));
    assert_eq!(report.plan.until, last);

    // The same refusal through the binary: non-zero exit, the range in the message.
    let output = Command::new(&bin)
        .args([
            "rebuild",
            "--lake",
            &lake,
            "--cluster-id",
            "42",
            "--dry-run",
            "--until",
        ])
        .arg((last + 1).to_string())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{first}..={last}")), "{stderr}");
    let output = Command::new(&bin)
        .args([
            "rebuild",
            "--lake",
            &lake,
            "--cluster-id",
            "42",
            "--dry-run",
            "--until",
            "latest",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("dry run: nothing written"), "{stdout}");
}
