//! The audit commands against lakes exported from the real stack (TigerBeetle replica, the
//! `tigerbeetle amqp` CDC job, RabbitMQ, the exporter in-process): `verify` on honest lakes and
//! on copies altered in each way, `balances --at` against the source's `get_account_balances`,
//! and `reconcile` against the live cluster.

mod common;

use common::stack::Stack;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ledgerlake::audit::balances::balances_at;
use ledgerlake::audit::problem::Problem;
use ledgerlake::audit::progress::NoProgress;
use ledgerlake::audit::reconcile::{reconcile, DifferenceKind};
use ledgerlake::audit::state::Selection;
use ledgerlake::audit::verify::{verify, VerifyReport};
use ledgerlake::cdc::{Event, EventType};
use ledgerlake::export::{self, ExportOptions};
use ledgerlake::lake::{AccountRecord, Lake, Segment};
use ledgerlake::tb::Cluster;

use ledgerlake::timefmt::date_partition;
use ledgerlake::workload::{self, WorkloadConfig, WorkloadSummary};
use rand::{Rng, SeedableRng};
use tigerbeetle_unofficial::account::Filter as AccountFilter;
use tigerbeetle_unofficial::{Client, Transfer};

const HISTORY: u16 = 1 << 3;
const DEBITS_MUST_NOT_EXCEED_CREDITS: u16 = 1 << 1;
const CREDITS_MUST_NOT_EXCEED_DEBITS: u16 = 1 << 2;
const CLOSED: u16 = 1 << 5;

/// A replica, its CDC job publishing to an exchange, a queue bound to it, and a lake that the
/// exporter (in-process) has filled with everything a workload did.
struct ExportedLake {
    stack: Stack,
    _dir: tempfile::TempDir,
    location: String,
    lake: Lake,
    summary: WorkloadSummary,
}

impl ExportedLake {
    async fn build(seed: u64, transfer_count: usize, segment_events_max: usize) -> ExportedLake {
        let stack = Stack::start().await;
        let client = stack.replica.client().expect("client");
        let summary = workload::run(&client, &WorkloadConfig::new(seed, transfer_count), |_| {})
            .await
            .expect("workload runs");
        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().join("lake").to_string_lossy().into_owned();
        let stack = ExportedLake {
            lake: Lake::open(&location).await.expect("lake"),
            stack,
            _dir: dir,
            location,
            summary,
        };
        let committed = stack
            .export_events(segment_events_max, stack.summary.events.total() as u64)
            .await;
        assert_eq!(committed, stack.summary.events.total() as u64);
        stack
    }

    /// Runs the exporter until it has committed `expected` events: the CDC job publishes about
    /// once a second, so one idle period can end before the last events are published.
    async fn export_events(&self, segment_events_max: usize, expected: u64) -> u64 {
        let mut committed = 0;
        for _ in 0..20 {
            committed += self
                .export_until_idle(segment_events_max)
                .await
                .events_committed;
            if committed >= expected {
                break;
            }
        }
        committed
    }

    fn export_options(&self, segment_events_max: usize) -> ExportOptions {
        let mut options = common::stack::export_options(
            &self.stack.queue,
            self.stack.replica.cluster_id(),
            &self.location,
        );
        options.seal.events_max = segment_events_max;
        options.seal.age_max = Duration::from_millis(300);
        options.until_idle = Some(Duration::from_secs(2));
        options
    }

    /// Drains the queue into the lake: the CDC job has published everything once the workload
    /// returns, and the exporter stops after 2 s without a message.
    async fn export_until_idle(&self, segment_events_max: usize) -> export::ExportReport {
        let options = self.export_options(segment_events_max);
        export::run(options, Box::pin(std::future::pending()))
            .await
            .expect("export")
    }

    fn client(&self) -> Client {
        self.stack.replica.client().expect("client")
    }

    fn cluster(&self) -> Cluster {
        Cluster::connect(
            self.stack.replica.cluster_id(),
            self.stack.replica.address(),
            Duration::from_secs(30),
        )
        .expect("cluster")
    }

    async fn cleanup(self) {
        self.stack.cleanup().await;
    }
}

/// A point of a balance history: (timestamp, [debits_pending, debits_posted, credits_pending, credits_posted]).
type Point = (u64, [u128; 4]);

/// The source's balances of a `history` account after its last transfer at or before `at`,
/// with that transfer's timestamp.
async fn source_balances_at(client: &Client, account: u128, at: u64) -> Option<Point> {
    let mut filter = AccountFilter::new(account, 1);
    filter.as_raw_mut().timestamp_max = at;
    filter.as_raw_mut().flags = 0b111; // debits, credits, reversed
    let found = client
        .get_account_balances(Box::new(filter))
        .await
        .expect("get_account_balances");
    found.first().map(|b| {
        let r = b.as_raw();
        (
            r.timestamp,
            [
                r.debits_pending,
                r.debits_posted,
                r.credits_pending,
                r.credits_posted,
            ],
        )
    })
}

fn four(b: &ledgerlake::audit::effect::Balances) -> [u128; 4] {
    [
        b.debits_pending,
        b.debits_posted,
        b.credits_pending,
        b.credits_posted,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_verify_and_reconcile_agree_with_the_source() {
    let started = Instant::now();
    let stack = ExportedLake::build(0xa0d1_0001, 6_000, 1_000).await;
    let lake = &stack.lake;
    let segments = lake.list_segments().await.expect("listing");
    assert!(segments.len() >= 3, "several segments: {}", segments.len());
    eprintln!(
        "lake built in {:?}: {} events in {} segments",
        started.elapsed(),
        stack.summary.events.total(),
        segments.len()
    );

    // verify: an honest lake passes every check.
    let report = verify(lake, &NoProgress).await;
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(report.events, stack.summary.events.total() as u64);
    assert!(report.double_entry_checked);
    eprintln!(
        "verify: {} events in {} ms ({:.0} events/s, debug build)",
        report.events, report.elapsed_ms, report.events_per_second
    );
    // Kept (outside the lake) for `verify --since` below.
    let first_report_json = serde_json::to_vec(&report).expect("json");
    let first_head = report.chain[0].head_version;

    // balances --at agrees with get_account_balances for history accounts, at random moments
    // and exactly at and just before event timestamps.
    let (events, records) = lake.read_all().await.expect("read_all");
    let history: Vec<u128> = records
        .iter()
        .filter(|r| r.flags & HISTORY != 0)
        .map(|r| r.id)
        .collect();
    assert!(history.len() >= 20, "history accounts: {}", history.len());
    let (first, last) = (events[0].timestamp, events[events.len() - 1].timestamp);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xa0d1);
    let mut moments: Vec<u64> = (0..16).map(|_| rng.random_range(first..=last)).collect();
    for _ in 0..4 {
        let t = events[rng.random_range(0..events.len())].timestamp;
        moments.extend([t, t - 1]);
    }
    moments.extend([first, last]);
    let client = stack.client();
    let selection = Selection {
        accounts: history.iter().copied().collect(),
        ledgers: Default::default(),
    };
    let mut kinds_of: HashMap<u128, Vec<(u64, EventType)>> = HashMap::new();
    for e in &events {
        for id in [e.debit_account.id, e.credit_account.id] {
            kinds_of
                .entry(id)
                .or_default()
                .push((e.timestamp, e.event_type));
        }
    }
    let (mut compared, mut after_expiry) = (0, 0);
    for &at in &moments {
        let from_lake = balances_at(lake, at, &selection, &NoProgress)
            .await
            .expect("balances");
        let by_id: HashMap<u128, Point> = from_lake
            .accounts
            .iter()
            .map(|a| (a.account, (a.as_of_timestamp, four(&a.balances))))
            .collect();
        let source: Vec<(u128, Option<Point>)> = futures::stream::iter(history.iter().copied())
            .map(|id| {
                let client = &client;
                async move { (id, source_balances_at(client, id, at).await) }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (id, want) in source {
            compared += 1;
            match (by_id.get(&id).copied(), want) {
                (None, None) => {}
                (Some((lake_ts, got)), Some((source_ts, want))) if lake_ts == source_ts => {
                    assert_eq!(got, want, "balances of history account {id} at {at}");
                }
                (Some((lake_ts, _)), Some((source_ts, want))) => {
                    // get_account_balances lists transfers only: every lake event of the
                    // account after the source's point must be an expiry, and at that point
                    // the lake must agree.
                    assert!(
                        lake_ts > source_ts,
                        "account {id} at {at}: lake point {lake_ts}, source {source_ts}"
                    );
                    let between: Vec<_> = kinds_of[&id]
                        .iter()
                        .filter(|(t, _)| (source_ts + 1..=at).contains(t))
                        .collect();
                    assert!(
                        between
                            .iter()
                            .all(|(_, k)| *k == EventType::TwoPhaseExpired),
                        "account {id}: {between:?}"
                    );
                    let one = Selection {
                        accounts: [id].into(),
                        ledgers: Default::default(),
                    };
                    let then = balances_at(lake, source_ts, &one, &NoProgress)
                        .await
                        .expect("balances");
                    assert_eq!(
                        four(&then.accounts[0].balances),
                        want,
                        "balances of history account {id} at {source_ts}"
                    );
                    after_expiry += 1;
                }
                (lake, source) => {
                    panic!("history account {id} at {at}: lake {lake:?}, source {source:?}")
                }
            }
        }
    }
    eprintln!("balances: {compared} (account, moment) pairs agree with get_account_balances ({after_expiry} after an expiry it does not list)");
    // A moment after the lake's last event is refused, not answered from stale data.
    assert!(balances_at(lake, last + 1, &selection, &NoProgress)
        .await
        .is_err());

    // reconcile: clean on the caught-up lake.
    let cluster = stack.cluster();
    let cluster_id = stack.stack.replica.cluster_id();
    let report = reconcile(
        lake,
        &cluster,
        cluster_id,
        Duration::from_secs(5),
        &NoProgress,
    )
    .await
    .expect("reconcile");
    assert!(report.ok, "{:#?}", report.differences);
    assert_eq!(report.lake_last_timestamp, last);
    assert!(
        report.history_accounts_compared > 0 && report.other_accounts_compared > 0,
        "{report:?}"
    );
    assert!(
        report.accounts_without_events >= stack.summary.untouched_account_ids.len(),
        "{report:?}"
    );

    // A transfer the lake has not seen: reported, with both accounts and the exact values.
    let accounts = common::source_accounts(&client).await;
    let lake_ids: HashSet<u128> = records.iter().map(|r| r.id).collect();
    let plain = |mask: u16| {
        accounts
            .iter()
            .filter(|a| a.as_raw().ledger == 1 && lake_ids.contains(&a.as_raw().id))
            .filter(move |a| a.as_raw().flags & (HISTORY | CLOSED | mask) == 0)
            .map(|a| a.as_raw().id)
    };
    let debit = plain(DEBITS_MUST_NOT_EXCEED_CREDITS)
        .next()
        .expect("a plain debit account");
    let credit = plain(CREDITS_MUST_NOT_EXCEED_DEBITS)
        .find(|&id| id != debit)
        .expect("a plain credit account");
    let unseen = Transfer::new(rng.random::<u128>() >> 1)
        .with_debit_account_id(debit)
        .with_credit_account_id(credit)
        .with_amount(17)
        .with_ledger(1)
        .with_code(1);
    client
        .create_transfers(vec![unseen])
        .await
        .expect("unseen transfer");
    let report = reconcile(
        lake,
        &cluster,
        cluster_id,
        Duration::from_secs(1),
        &NoProgress,
    )
    .await
    .expect("reconcile");
    assert!(!report.ok);
    let mut found: Vec<(u128, DifferenceKind, &str, u128)> = report
        .differences
        .iter()
        .map(|d| {
            let lake: u128 = d.lake.as_deref().expect("lake value").parse().unwrap();
            let cluster: u128 = d
                .cluster
                .as_deref()
                .expect("cluster value")
                .parse()
                .unwrap();
            (d.account, d.kind, d.field, cluster - lake)
        })
        .collect();
    found.sort();
    let mut want = vec![
        (debit, DifferenceKind::MovedSince, "debits_posted", 17),
        (credit, DifferenceKind::MovedSince, "credits_posted", 17),
    ];
    want.sort();
    assert_eq!(found, want, "{:#?}", report.differences);

    // Reconcile waits for the exporter to catch up, and is then clean again.
    let catch_up = stack.export_events(1_000, 1);
    let check = reconcile(
        lake,
        &cluster,
        cluster_id,
        Duration::from_secs(60),
        &NoProgress,
    );
    let (exported, report) = tokio::join!(catch_up, check);
    assert_eq!(exported, 1);
    let report = report.expect("reconcile");
    assert!(report.ok, "{:#?}", report.differences);
    assert!(report.lake_last_timestamp > last);
    assert!(verify(lake, &NoProgress).await.ok);

    // The binary: balances as CSV, reconcile and verify exit codes and JSON.
    let bin = env!("CARGO_BIN_EXE_ledgerlake");
    let out = std::process::Command::new(bin)
        .args([
            "balances",
            "--lake",
            &stack.location,
            "--at",
            &last.to_string(),
            "--format",
            "csv",
            "--account",
            &debit.to_string(),
        ])
        .output()
        .expect("balances runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.starts_with("account,ledger,debits_pending,debits_posted,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let out = std::process::Command::new(bin)
        .args([
            "reconcile",
            "--lake",
            &stack.location,
            "--addresses",
            stack.stack.replica.address(),
            "--cluster-id",
            &cluster_id.to_string(),
            "--format",
            "json",
        ])
        .output()
        .expect("reconcile runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["ok"], true);
    // verify --since the first report (kept outside the lake): only the commits after its
    // heads are walked; a tamper after the head and a rewritten head are both found.
    let kept = tempfile::tempdir().expect("tempdir");
    let first_report = kept.path().join("report.json");
    std::fs::write(&first_report, &first_report_json).expect("report");
    let verify_since = |location: &str| {
        let out = std::process::Command::new(bin)
            .args(["verify", "--lake", location, "--format", "json", "--since"])
            .arg(&first_report)
            .output()
            .expect("verify --since runs");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), json)
    };
    let (code, json) = verify_since(&stack.location);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["chain"][0]["table"], "transfers");
    let since_version: u64 = json["chain"][0]["since_version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let head_version: u64 = json["chain"][0]["head_version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(Some(since_version), first_head);
    assert!(
        head_version > since_version,
        "the catch-up committed: {json:#}"
    );
    assert!(json["since"]["not_proven"]
        .as_str()
        .unwrap()
        .contains("before each recorded head"));
    let out = std::process::Command::new(bin)
        .args(["verify", "--lake", &stack.location, "--since"])
        .arg(&first_report)
        .output()
        .expect("verify --since runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("incremental: the chained log from the heads of"),
        "{text}"
    );
    assert!(text.contains("a full verify also proves:"), "{text}");
    // A file the catch-up added, altered.
    let added = json["chain"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["version"].as_str().unwrap().parse::<u64>().unwrap() > since_version)
        .expect("a file added after the head")["path"]
        .as_str()
        .unwrap()
        .to_string();
    let lake_dir = std::path::Path::new(&stack.location);
    let altered = kept.path().join("altered");
    copy_dir(lake_dir, &altered);
    let path = altered.join("transfers").join(&added);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let (code, json) = verify_since(altered.to_str().unwrap());
    assert_eq!(code, Some(1), "{json:#}");
    let checks: Vec<(&str, &str)> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "chain")
        .map(|p| (p["check"].as_str().unwrap(), p["file"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        vec![("file_altered", format!("transfers/{added}").as_str())]
    );
    // The recorded head commit rewritten (a line appended: still a valid commit).
    let rewritten = kept.path().join("rewritten");
    copy_dir(lake_dir, &rewritten);
    let head_commit = commit_file(&rewritten, "transfers", since_version);
    let mut bytes = std::fs::read(&head_commit).unwrap();
    bytes.extend_from_slice(b"\n");
    std::fs::write(&head_commit, bytes).unwrap();
    let (code, json) = verify_since(rewritten.to_str().unwrap());
    assert_eq!(code, Some(1), "{json:#}");
    let checks: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "chain")
        .map(|p| p["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, vec!["head_changed"], "{json:#}");
    // A full verify of the rewritten copy finds the broken link after the head instead.
    let full = verify(
        &Lake::open(rewritten.to_str().unwrap()).await.unwrap(),
        &NoProgress,
    )
    .await;
    assert!(!full.ok);
    eprintln!("whole test: {:?}", started.elapsed());
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Altered lakes, made from a real exported lake.

/// Splits events into segments of at most `n`, never across UTC midnight.
fn chunk(events: &[Event], n: usize) -> Vec<Vec<Event>> {
    let mut out: Vec<Vec<Event>> = Vec::new();
    for e in events {
        match out.last_mut() {
            Some(c)
                if c.len() < n && date_partition(c[0].timestamp) == date_partition(e.timestamp) =>
            {
                c.push(*e)
            }
            _ => out.push(vec![*e]),
        }
    }
    out
}

/// Writes a lake of these segments (committed in this order), recording each account in the
/// first committed segment that uses it.
async fn write_lake(
    dir: &std::path::Path,
    cluster: u128,
    segments: &[Vec<Event>],
    records: &HashMap<u128, AccountRecord>,
) -> (String, Lake) {
    let location = dir.to_string_lossy().into_owned();
    let lake = Lake::open(&location).await.expect("lake");
    lake.bind_cluster(cluster).await.expect("bind");
    let mut known = HashSet::new();
    for events in segments {
        let mut new_accounts = Vec::new();
        for e in events {
            for id in [e.debit_account.id, e.credit_account.id] {
                if known.insert(id) {
                    new_accounts.push(AccountRecord {
                        first_seen_timestamp: e.timestamp,
                        ..records[&id]
                    });
                }
            }
        }
        lake.commit_ignoring_position(
            &Segment {
                events: events.clone(),
                new_accounts,
            },
            cluster,
        )
        .await
        .expect("commit");
    }
    (location, lake)
}

fn problems_of<'a>(report: &'a VerifyReport, kind: &str) -> Vec<&'a Problem> {
    report
        .problems
        .iter()
        .filter(|p| serde_json::to_value(p).unwrap()["kind"] == kind)
        .collect()
}

fn chain_breaks(report: &VerifyReport) -> Vec<(u128, Option<u64>, u64)> {
    report
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::ChainBreak {
                account,
                previous_timestamp,
                timestamp,
                ..
            } => Some((*account, *previous_timestamp, *timestamp)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_place_of_each_alteration() {
    let started = Instant::now();
    let stack = ExportedLake::build(0xa0d1_0002, 2_500, 500).await;
    let cluster_id = stack.stack.replica.cluster_id();
    let (events, records) = stack.lake.read_all().await.expect("read_all");
    let records: HashMap<u128, AccountRecord> = records.into_iter().map(|r| (r.id, r)).collect();
    let honest = chunk(&events, 400);
    assert!(honest.len() >= 4);
    let root = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    let mut lake_dir = || {
        n += 1;
        root.path().join(format!("lake{n}"))
    };

    // The rewritten honest lake passes: the alterations below are the only differences.
    let (_, lake) = write_lake(&lake_dir(), cluster_id, &honest, &records).await;
    assert!(verify(&lake, &NoProgress).await.ok);

    // Each account's events, to pick events with known neighbours.
    let mut by_account: HashMap<u128, Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        by_account.entry(e.debit_account.id).or_default().push(i);
        by_account.entry(e.credit_account.id).or_default().push(i);
    }
    // A single-phase event in the middle whose two accounts both move again later.
    let middle = (events.len() / 3..events.len())
        .find(|&i| {
            let e = &events[i];
            e.event_type == EventType::SinglePhase
                && e.transfer.amount > 0
                && [e.debit_account.id, e.credit_account.id]
                    .iter()
                    .all(|a| by_account[a].last() > Some(&i))
        })
        .expect("a single-phase event with later neighbours");
    let target = events[middle];
    let next_of = |account: u128| {
        by_account[&account]
            .iter()
            .copied()
            .find(|&j| j > middle)
            .unwrap()
    };
    let previous_of = |account: u128| {
        by_account[&account]
            .iter()
            .copied()
            .rev()
            .find(|&j| j < middle)
            .map(|j| events[j].timestamp)
    };

    // 1. A deleted event: both accounts' chains break at their next event, naming the
    //    timestamps around the hole.
    let mut altered = events.clone();
    altered.remove(middle);
    let (_, lake) = write_lake(&lake_dir(), cluster_id, &chunk(&altered, 400), &records).await;
    let report = verify(&lake, &NoProgress).await;
    assert!(!report.ok);
    let breaks = chain_breaks(&report);
    for account in [target.debit_account.id, target.credit_account.id] {
        let want = (
            account,
            previous_of(account),
            events[next_of(account)].timestamp,
        );
        assert!(
            breaks.contains(&want),
            "deleted event at {}: expected break {want:?} in {breaks:?}",
            target.timestamp
        );
    }

    // 2a. A duplicated event, as its own segment: overlapping names and a timestamp twice.
    let mut segments = honest.clone();
    segments.push(vec![target]);
    let (_, lake) = write_lake(&lake_dir(), cluster_id, &segments, &records).await;
    let report = verify(&lake, &NoProgress).await;
    assert!(
        !problems_of(&report, "segments_overlap").is_empty(),
        "{:#?}",
        report.problems
    );
    let twice = problems_of(&report, "timestamp_not_increasing");
    assert!(
        matches!(twice.as_slice(), [Problem::TimestampNotIncreasing { rows: 1, timestamp, .. }] if *timestamp == target.timestamp),
        "{twice:#?}"
    );
    // 2b. A duplicated event replayed at a free timestamp: the chain breaks at the copy.
    let mut altered = events.clone();
    let mut copy = target;
    copy.timestamp = events[events.len() - 1].timestamp + 1;
    altered.push(copy);
    let debit_before_copy = events[*by_account[&target.debit_account.id].last().unwrap()].timestamp;
    let (_, lake) = write_lake(&lake_dir(), cluster_id, &chunk(&altered, 400), &records).await;
    let report = verify(&lake, &NoProgress).await;
    let breaks = chain_breaks(&report);
    assert!(
        breaks.contains(&(
            target.debit_account.id,
            Some(debit_before_copy),
            copy.timestamp
        )),
        "{breaks:?}"
    );

    // 3. A changed amount: both accounts break exactly at that event.
    let mut altered = events.clone();
    altered[middle].transfer.amount += 1;
    let (_, lake) = write_lake(&lake_dir(), cluster_id, &chunk(&altered, 400), &records).await;
    let report = verify(&lake, &NoProgress).await;
    let breaks = chain_breaks(&report);
    for account in [target.debit_account.id, target.credit_account.id] {
        assert!(
            breaks.contains(&(account, previous_of(account), target.timestamp)),
            "{breaks:?}"
        );
    }

    // 4. A changed balance: the chain breaks at that event (naming the field) and at the
    //    account's next event, and the ledger no longer balances.
    let mut altered = events.clone();
    altered[middle].debit_account.debits_posted += 1;
    let (_, lake) = write_lake(&lake_dir(), cluster_id, &chunk(&altered, 400), &records).await;
    let report = verify(&lake, &NoProgress).await;
    let debit = target.debit_account.id;
    assert!(report.problems.iter().any(|p| matches!(p,
        Problem::ChainBreak { account, timestamp, fields, .. }
            if *account == debit && *timestamp == target.timestamp && fields.len() == 1 && fields[0].field == "debits_posted")), "{:#?}", report.problems);
    assert!(chain_breaks(&report).contains(&(
        debit,
        Some(target.timestamp),
        events[next_of(debit)].timestamp
    )));
    let unbalanced = problems_of(&report, "unbalanced");
    assert!(unbalanced.iter().any(|p| matches!(p, Problem::Unbalanced { ledger, balance: "posted", after_event, .. } if *ledger == target.ledger && *after_event == Some(target.timestamp))), "{unbalanced:#?}");

    // 5. Two overlapping segments (the second re-covers part of the first).
    let mut segments = honest.clone();
    let overlap: Vec<Event> = honest[1][100..]
        .iter()
        .chain(&honest[2][..50])
        .copied()
        .collect();
    segments.push(overlap);
    let (_, lake) = write_lake(&lake_dir(), cluster_id, &segments, &records).await;
    let report = verify(&lake, &NoProgress).await;
    let overlaps = problems_of(&report, "segments_overlap");
    // It overlaps the end of one honest segment and the start of the next: both are named.
    assert_eq!(overlaps.len(), 2, "{overlaps:#?}");
    assert!(
        overlaps[0]
            .to_string()
            .contains(&format!("{:020}", honest[1][0].timestamp)),
        "names the overlapped segment: {}",
        overlaps[0]
    );
    assert!(
        overlaps[1]
            .to_string()
            .contains(&format!("{:020}", honest[2][0].timestamp)),
        "names the overlapped segment: {}",
        overlaps[1]
    );
    assert!(!problems_of(&report, "timestamp_not_increasing").is_empty());

    // 6. A truncated file: named as unreadable; the segments after it re-seed their chains
    //    instead of reporting a cascade of breaks.
    let (location, lake) = write_lake(&lake_dir(), cluster_id, &honest, &records).await;
    let segments = lake.list_segments().await.expect("listing");
    let victim = &segments[1];
    let path = std::path::Path::new(&location).join(victim.transfers_path.as_ref());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open segment file");
    file.set_len(victim.transfers_bytes / 2).expect("truncate");
    drop(file);
    let report = verify(&lake, &NoProgress).await;
    let unreadable = problems_of(&report, "segment_unreadable");
    assert!(
        matches!(unreadable.as_slice(), [Problem::SegmentUnreadable { segment, .. }] if *segment == victim.transfers_path.to_string()),
        "{:#?}",
        report.problems
    );
    assert!(chain_breaks(&report).is_empty(), "{:#?}", report.problems);
    assert!(!report.double_entry_checked);
    // The binary exits non-zero, and its JSON names the file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(["verify", "--lake", &location, "--format", "json"])
        .output()
        .expect("verify runs");
    assert!(!out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["ok"], false);
    // The chained log's check comes first: the truncated file no longer has its digest.
    assert_eq!(json["problems"][0]["check"], "file_altered");
    assert_eq!(
        json["problems"][0]["file"],
        victim.transfers_path.to_string()
    );
    assert_eq!(json["problems"][1]["kind"], "segment_unreadable");
    assert_eq!(
        json["problems"][1]["segment"],
        victim.transfers_path.to_string()
    );

    // 7. A transfer the lake has not seen, and that no later event reveals: an account pair's
    //    last event removed. The lake alone still looks whole; reconcile reports it.
    let last_of_both = (0..events.len() - 1)
        .rev()
        .find(|&i| {
            let e = &events[i];
            e.event_type == EventType::SinglePhase
                && e.transfer.amount > 0
                && [e.debit_account.id, e.credit_account.id]
                    .iter()
                    .all(|a| by_account[a].last() == Some(&i))
        })
        .expect("an event that is the last of both its accounts");
    let hidden = events[last_of_both];
    let mut altered = events.clone();
    altered.remove(last_of_both);
    let (_, lake) = write_lake(&lake_dir(), cluster_id, &chunk(&altered, 400), &records).await;
    let report = verify(&lake, &NoProgress).await;
    assert!(
        report.ok,
        "a hidden last event leaves no trace in the lake alone: {:#?}",
        report.problems
    );
    let report = reconcile(
        &lake,
        &stack.cluster(),
        cluster_id,
        Duration::ZERO,
        &NoProgress,
    )
    .await
    .expect("reconcile");
    assert!(!report.ok);
    let accounts: HashSet<u128> = report.differences.iter().map(|d| d.account).collect();
    assert_eq!(
        accounts,
        HashSet::from([hidden.debit_account.id, hidden.credit_account.id]),
        "{:#?}",
        report.differences
    );
    for d in &report.differences {
        assert!(
            matches!(d.kind, DifferenceKind::Differs | DifferenceKind::MovedSince),
            "{d:?}"
        );
        let (l, c): (u128, u128) = (
            d.lake.as_deref().unwrap().parse().unwrap(),
            d.cluster.as_deref().unwrap().parse().unwrap(),
        );
        if d.field == "last_transfer_timestamp" {
            assert_eq!(
                c,
                u128::from(hidden.timestamp),
                "a history account's last transfer is the hidden one: {d:?}"
            );
        } else {
            assert_eq!(c - l, hidden.transfer.amount, "{d:?}");
        }
    }
    // History accounts are compared as of T, so a hidden event of one is a plain difference.
    for id in [hidden.debit_account.id, hidden.credit_account.id] {
        if records[&id].flags & HISTORY != 0 {
            assert!(report
                .differences
                .iter()
                .any(|d| d.account == id && d.kind == DifferenceKind::Differs));
        }
    }
    eprintln!("whole test: {:?}", started.elapsed());
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// The chained log of lakes the real writer made (`Lake::commit`): `verify` names each
// tampering by table, version and file, passes the honest lake, and `scripts/check-chain.py`
// (no ledgerlake) finds exactly the same.

/// Single-phase transfers of `amount` between four accounts of ledger 1, with the balances
/// after each event: a lake of them verifies.
fn chain_events(n: usize, start: u64) -> (Vec<Event>, HashMap<u128, AccountRecord>) {
    use ledgerlake::cdc::{AccountFields, TransferFields};
    let mut posted: HashMap<u128, (u128, u128)> = HashMap::new();
    let account = |id: u128, (debits, credits): (u128, u128)| AccountFields {
        id,
        debits_posted: debits,
        credits_posted: credits,
        code: 10,
        timestamp: start - 100 + id as u64,
        ..AccountFields::default()
    };
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let debit = 1 + (i % 4) as u128;
        let credit = 1 + ((i % 4) + 1 + (i / 4) % 3) as u128 % 4;
        let amount = 5 + i as u128;
        posted.entry(debit).or_default().0 += amount;
        posted.entry(credit).or_default().1 += amount;
        let timestamp = start + i as u64 * 1_000;
        events.push(Event {
            timestamp,
            event_type: EventType::SinglePhase,
            ledger: 1,
            transfer: TransferFields {
                id: 1_000 + i as u128,
                amount,
                code: 1,
                timestamp,
                ..TransferFields::default()
            },
            debit_account: account(debit, posted[&debit]),
            credit_account: account(credit, posted[&credit]),
        });
    }
    let mut records = HashMap::new();
    for e in &events {
        for a in [&e.debit_account, &e.credit_account] {
            records
                .entry(a.id)
                .or_insert_with(|| AccountRecord::from_event_account(a, e.ledger, e.timestamp));
        }
    }
    (events, records)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `(table, version, check, file)` of chain problems, sorted.
type ChainFound = Vec<(String, Option<u64>, String, String)>;

/// The chain problems of a verify report.
fn chain_problems(report: &VerifyReport) -> ChainFound {
    let mut found: Vec<_> = report
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::Chain(c) => Some((
                c.table.clone(),
                c.version,
                c.check.name().to_string(),
                c.file.clone(),
            )),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

/// What scripts/check-chain.py finds in the lake at `dir`: its exit status, its problems as
/// `chain_problems` gives them, and each table's head.
fn check_chain_script(dir: &std::path::Path) -> (bool, ChainFound, Vec<Option<String>>) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-chain.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg("--json")
        .output()
        .expect("python3 runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-chain.py: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut problems = Vec::new();
    let mut heads = Vec::new();
    for t in json["tables"].as_array().unwrap() {
        heads.push(t["head_sha256"].as_str().map(str::to_string));
        for p in t["problems"].as_array().unwrap() {
            problems.push((
                p["table"].as_str().unwrap().to_string(),
                p["version"].as_str().map(|v| v.parse().unwrap()),
                p["check"].as_str().unwrap().to_string(),
                p["file"].as_str().unwrap().to_string(),
            ));
        }
    }
    problems.sort();
    (out.status.success(), problems, heads)
}

/// The code block of docs/AUDIT.md after the marker `<!-- {name}: … -->`, run on the lake at
/// `lake` instead of the guide's example directory.
fn audit_doc_block(name: &str, lake: &std::path::Path) -> String {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/AUDIT.md"),
    )
    .expect("AUDIT.md");
    let marker = format!("<!-- {name}:");
    let after = &doc[doc.find(&marker).expect("the marker is in AUDIT.md")..];
    let body = &after[after.find("```").unwrap()..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").unwrap()].replace("/srv/ledger-lake", lake.to_str().unwrap())
}

/// The commit file `version` of `table` in the lake at `dir`.
fn commit_file(dir: &std::path::Path, table: &str, version: u64) -> std::path::PathBuf {
    dir.join(table)
        .join("_delta_log")
        .join(format!("{version:020}.json"))
}

fn sha256_file(path: &std::path::Path) -> String {
    ledgerlake::lake::chain::sha256_hex(&std::fs::read(path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_each_tampering_of_the_chained_log() {
    const CLUSTER: u128 = 0xc4a1_0001;
    // 105 segments: more than one checkpoint interval, so the log has a checkpoint too.
    let (events, records) = chain_events(315, 1_795_000_000_000_000_000);
    let segments = chunk(&events, 3);
    assert_eq!(segments.len(), 105);
    let root = tempfile::tempdir().expect("tempdir");
    let honest_dir = root.path().join("honest");
    let (_, lake) = write_lake(&honest_dir, CLUSTER, &segments, &records).await;
    assert!(
        honest_dir
            .join("transfers/_delta_log/_last_checkpoint")
            .exists(),
        "the log has a checkpoint, which is not part of the chain"
    );
    let report = verify(&lake, &NoProgress).await;
    assert!(report.ok, "{:#?}", report.problems);
    assert!(report.chain_checked);
    let heads: Vec<Option<String>> = report.chain.iter().map(|h| h.head_sha256.clone()).collect();
    let transfers_head = report.chain[0].head_version.expect("transfers has commits");
    assert!(transfers_head >= 105, "{:?}", report.chain);
    assert_eq!(
        heads[0].as_deref(),
        Some(sha256_file(&commit_file(&honest_dir, "transfers", transfers_head)).as_str())
    );
    let (script_ok, script_problems, script_heads) = check_chain_script(&honest_dir);
    assert!(
        script_ok && script_problems.is_empty(),
        "{script_problems:?}"
    );
    assert_eq!(script_heads, heads);
    // The binary prints the heads.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(["verify", "--lake", honest_dir.to_str().unwrap()])
        .output()
        .expect("verify runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("sha256 {}", heads[0].as_deref().unwrap())),
        "{text}"
    );

    // The hand checks of docs/AUDIT.md ("Checking the chain by hand") pass on it too.
    for (name, program, want) in [
        ("chain-links.sh", "bash", "links OK".to_string()),
        ("chain-files.sh", "bash", "files OK".to_string()),
        (
            "chain-core.py",
            "python3",
            format!("head {}", heads[0].as_deref().unwrap()),
        ),
    ] {
        let out = std::process::Command::new(program)
            .arg("-c")
            .arg(audit_doc_block(name, &honest_dir))
            .output()
            .expect("the hand check runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(&want),
            "{name}: {text}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(commit_file(&honest_dir, "transfers", 1)).unwrap()
        );
    }

    let segments_listed = lake.list_segments().await.expect("segments");
    let victim = &segments_listed[40];
    let victim_file = victim.transfers_path.to_string();
    // The version that added the victim: the commit whose addedFiles name it.
    let victim_add_path = victim_file.strip_prefix("transfers/").unwrap();
    let victim_version = (0..=transfers_head)
        .find(|&v| {
            std::fs::read_to_string(commit_file(&honest_dir, "transfers", v))
                .unwrap()
                .contains(&format!("\"path\":\"{victim_add_path}\""))
        })
        .expect("a commit adds the victim");
    let t = |s: &str| s.to_string();
    let commit_name = |v: u64| format!("transfers/_delta_log/{v:020}.json");

    let mut n = 0;
    let mut tampered = |what: &str| {
        n += 1;
        let dir = root.path().join(format!("{n}-{what}"));
        copy_dir(&honest_dir, &dir);
        dir
    };
    let mut cases: Vec<(&str, std::path::PathBuf, ChainFound)> = Vec::new();

    // A rewritten data file: one byte changed.
    let dir = tampered("data-byte");
    let path = dir.join(&victim_file);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    cases.push((
        "data-byte",
        dir,
        vec![(
            t("transfers"),
            Some(victim_version),
            t("file_altered"),
            victim_file.clone(),
        )],
    ));

    // A removed data file.
    let dir = tampered("data-removed");
    std::fs::remove_file(dir.join(&victim_file)).unwrap();
    cases.push((
        "data-removed",
        dir,
        vec![(
            t("transfers"),
            Some(victim_version),
            t("file_missing"),
            victim_file.clone(),
        )],
    ));

    // An added data file that no commit names.
    let dir = tampered("data-added");
    let extra = victim_file.replace(".parquet", "-copy.parquet");
    std::fs::copy(dir.join(&victim_file), dir.join(&extra)).unwrap();
    cases.push((
        "data-added",
        dir,
        vec![(t("transfers"), None, t("file_unreferenced"), extra)],
    ));

    // A rewritten commit: an amount in an add's statistics.
    let dir = tampered("commit-stats");
    let path = commit_file(&dir, "transfers", victim_version);
    let text = std::fs::read_to_string(&path).unwrap();
    let add_line = text
        .lines()
        .find(|l| l.contains("\"add\""))
        .expect("an add action");
    let mut add: serde_json::Value = serde_json::from_str(add_line).unwrap();
    let mut stats: serde_json::Value =
        serde_json::from_str(add["add"]["stats"].as_str().expect("stats")).unwrap();
    let max = stats["maxValues"]["amount"].clone();
    assert!(!max.is_null(), "stats hold the amount: {stats}");
    stats["maxValues"]["amount"] = match max {
        serde_json::Value::Number(n) => serde_json::json!(n.as_f64().unwrap() + 1.0),
        serde_json::Value::String(s) => serde_json::json!(format!("{s}1")),
        other => panic!("amount statistic {other}"),
    };
    add["add"]["stats"] = serde_json::Value::String(stats.to_string());
    std::fs::write(&path, text.replacen(add_line, &add.to_string(), 1)).unwrap();
    cases.push((
        "commit-stats",
        dir,
        vec![(
            t("transfers"),
            Some(victim_version + 1),
            t("broken_link"),
            commit_name(victim_version + 1),
        )],
    ));

    // A rewritten commit: a changed addedFiles digest.
    let dir = tampered("commit-digest");
    let path = commit_file(&dir, "transfers", victim_version);
    let text = std::fs::read_to_string(&path).unwrap();
    let digest = sha256_file(&dir.join(&victim_file));
    assert!(
        text.contains(&digest),
        "the commit records the file's digest"
    );
    std::fs::write(&path, text.replace(&digest, &"0".repeat(64))).unwrap();
    cases.push((
        "commit-digest",
        dir,
        vec![
            (
                t("transfers"),
                Some(victim_version),
                t("file_altered"),
                victim_file.clone(),
            ),
            (
                t("transfers"),
                Some(victim_version + 1),
                t("broken_link"),
                commit_name(victim_version + 1),
            ),
        ],
    ));

    // A removed commit: a gap, and the files it added are named by no commit.
    let dir = tampered("commit-removed");
    std::fs::remove_file(commit_file(&dir, "transfers", victim_version)).unwrap();
    cases.push((
        "commit-removed",
        dir,
        vec![
            (
                t("transfers"),
                None,
                t("file_unreferenced"),
                victim_file.clone(),
            ),
            (
                t("transfers"),
                Some(victim_version),
                t("missing_commit"),
                commit_name(victim_version),
            ),
        ],
    ));

    // A commit added at the end by another tool: no ledgerlake object.
    let head_next = transfers_head + 1;
    let dir = tampered("foreign-commit");
    let foreign = "{\"commitInfo\":{\"timestamp\":1795000000000,\"operation\":\"WRITE\"}}\n";
    std::fs::write(commit_file(&dir, "transfers", head_next), foreign).unwrap();
    cases.push((
        "foreign-commit",
        dir,
        vec![(
            t("transfers"),
            Some(head_next),
            t("not_chained"),
            commit_name(head_next),
        )],
    ));

    // A commit added at the end with a wrong previous digest: a copy of the head's commit.
    let dir = tampered("wrong-previous");
    std::fs::copy(
        commit_file(&dir, "transfers", transfers_head),
        commit_file(&dir, "transfers", head_next),
    )
    .unwrap();
    cases.push((
        "wrong-previous",
        dir,
        vec![(
            t("transfers"),
            Some(head_next),
            t("broken_link"),
            commit_name(head_next),
        )],
    ));

    for (what, dir, mut want) in cases {
        want.sort();
        let lake = Lake::open(dir.to_str().unwrap()).await.expect("lake");
        let report = verify(&lake, &NoProgress).await;
        assert!(!report.ok, "{what}");
        assert_eq!(
            chain_problems(&report),
            want,
            "{what}: {:#?}",
            report.problems
        );
        assert!(
            matches!(report.problems[0], Problem::Chain(_)),
            "{what}: chain problems come first"
        );
        let (script_ok, script_problems, script_heads) = check_chain_script(&dir);
        assert!(!script_ok, "{what}");
        assert_eq!(script_problems, want, "{what}: check-chain.py");
        let heads: Vec<Option<String>> =
            report.chain.iter().map(|h| h.head_sha256.clone()).collect();
        assert_eq!(script_heads, heads, "{what}: heads");
    }
}
