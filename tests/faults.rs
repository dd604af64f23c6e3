//! Faults injected on the real stack (a TigerBeetle replica, RabbitMQ, the real `tigerbeetle
//! amqp` CDC job, the exporter binary or in-process), each test printing its figures (what it
//! injected, how often, what came out); docs/RELIABILITY.md collects them. Every test ends by
//! comparing the lake with the source cluster field by field (0 lost, 0 duplicated) or, for the
//! tampering cases, by `ledgerlake verify` naming every damaged object.
//!
//! RabbitMQ is shared by every test binary of the machine: the restart test stops and starts it
//! only while this binary runs under the stack lock (`flock /tmp/ledgerlake-stack.lock`, see
//! scripts/test.sh), and a guard starts it again whatever happens.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::stack::{lake_event_count, lake_path, wait_for_event_count, InProcessExporter, Stack};
use ledgerlake::export::sweep::SweepOptions;
use ledgerlake::lake::Lake;
use ledgerlake::testbed::{self, Broker, CdcJob};
use ledgerlake::workload::{self, WorkloadConfig};
use tigerbeetle_unofficial::{Account, Client, Transfer};

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

const SIGKILL: i32 = 9;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc_kill(pid as i32, sig) };
    assert_eq!(rc, 0, "signal {sig} to {pid}");
}

/// The exporter binary on `lake`, with small segments so a drain takes many commits.
fn exporter_command(stack: &Stack, lake: &str, extra: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"));
    command
        .args(["export", "--queue", &stack.queue, "--lake", lake])
        .args(["--cluster-id", &stack.replica.cluster_id().to_string()])
        .args([
            "--segment-events-max",
            "100",
            "--prefetch",
            "100",
            "--segment-age-max",
            "200ms",
        ])
        .args(extra)
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .env("LEDGERLAKE_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The tests of this file run one at a time: one of them stops RabbitMQ itself, which would
/// break the broker connections of any test running beside it.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the exporter until the queue has been idle for 3 s; asserts it exits 0.
async fn drain(stack: &Stack, lake: &str) {
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        exporter_command(stack, lake, &["--until-idle", "3s"]).output(),
    )
    .await
    .expect("the draining export finishes")
    .expect("export runs");
    assert!(
        output.status.success(),
        "draining export: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `ledgerlake verify --format json` on `lake`: (exit code, report).
fn verify(lake: &str) -> (i32, serde_json::Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(["verify", "--lake", lake, "--format", "json"])
        .env("LEDGERLAKE_LOG", "warn")
        .output()
        .expect("verify runs");
    let code = output.status.code().unwrap_or(-1);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "verify prints JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (code, report)
}

fn rabbitmqctl(args: &[&str]) {
    let output = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// RabbitMQ's application stopped (`rabbitmqctl stop_app`); started again by `start` or, if the
/// test fails first, on drop: the broker is shared and must be left running.
struct StoppedBroker {
    started: bool,
}

impl StoppedBroker {
    fn stop() -> StoppedBroker {
        rabbitmqctl(&["stop_app"]);
        StoppedBroker { started: false }
    }

    async fn start(mut self) {
        rabbitmqctl(&["start_app"]);
        self.started = true;
        testbed::wait_until(
            "RabbitMQ to accept connections",
            Duration::from_secs(60),
            || async { Broker::connect().await.is_ok() },
        )
        .await
        .expect("RabbitMQ is back");
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        if !self.started {
            let _ = std::process::Command::new("rabbitmqctl")
                .arg("start_app")
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restarted_mid_stream_loses_and_duplicates_nothing() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let mut stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let lake = Lake::open(&lake_location).await.expect("lake");
    let mut options = stack.export_options(&lake_location);
    options.broker.prefetch = 100;
    options.seal.events_max = 100;
    options.broker_retry_max = Duration::from_secs(120);
    let exporter = InProcessExporter::start(options);

    let client = stack.replica.client().expect("client");
    let workload = tokio::spawn(async move {
        let config = WorkloadConfig::new(0x5eed_f001, 8_000);
        workload::run(&client, &config, |_| {})
            .await
            .expect("workload runs")
    });
    testbed::wait_until("the first segment", Duration::from_secs(60), || async {
        lake_event_count(&lake).await > 0
    })
    .await
    .expect("export started");

    let at_stop = lake_event_count(&lake).await;
    let stopped = StoppedBroker::stop();
    let down = Duration::from_secs(5);
    tokio::time::sleep(down).await;
    stopped.start().await;
    let at_start = lake_event_count(&lake).await;
    let summary = workload.await.expect("workload task");
    let expected = summary.events.total() as u64;

    // The CDC job lost its broker too: a new one resumes from the progress it keeps in
    // RabbitMQ (at least once: some events may be published twice).
    let old = stack.cdc.take().expect("cdc");
    let old_status = old.stop().await;
    stack.cdc = Some(
        CdcJob::start(&stack.replica, &stack.exchange, None)
            .await
            .expect("CDC job restarts"),
    );
    stack.broker = Broker::connect().await.expect("broker");
    wait_for_event_count(&lake, expected, Duration::from_secs(240)).await;
    let report = exporter.stop().await;

    eprintln!(
        "RabbitMQ stopped for {down:?} with {at_stop} of {expected} events in the lake \
         ({at_start} when it came back); old CDC job ended with {old_status:?}; exporter: \
         {} reconnects, {} committed, {} duplicates dropped",
        report.reconnects, report.events_committed, report.duplicates_dropped
    );
    assert!(at_stop < expected, "the broker stopped mid-stream");
    assert!(
        report.reconnects >= 1,
        "the exporter reconnected: {report:?}"
    );
    assert_eq!(report.events_committed, expected, "{report:?}");
    assert_eq!(report.quarantined, 0);
    let comparison =
        common::assert_lake_matches_source(&lake, &stack.replica.client().expect("client")).await;
    eprintln!("{comparison:?}");
    stack.cleanup().await;
}

/// A tmpfs mounted for one test; unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            output.status.success(),
            "mounting a tmpfs (the tests run as root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Bytes free on the filesystem (`df`).
    fn available(&self) -> u64 {
        let output = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.dir)
            .output()
            .expect("df runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the free bytes")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_lake_filesystem_acknowledges_nothing_and_a_restart_after_space_is_freed_loses_nothing(
) {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = Tmpfs::mount(&dir.path().join("fs"), "8m");
    let lake_location = fs.dir.join("lake").to_string_lossy().into_owned();
    let summary = stack.run_workload(0x5eed_f002, 3_000).await;
    let expected = summary.events.total() as u64;

    // Ballast: the lake has room for a few segments, then the filesystem is full.
    let room = 384 * 1024;
    let ballast = fs.dir.join("ballast");
    let ballast_bytes = fs.available() - room;
    std::fs::write(&ballast, vec![0u8; ballast_bytes as usize]).expect("ballast");
    let retry_max = Duration::from_secs(3);
    let started = Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        exporter_command(&stack, &lake_location, &["--lake-retry-max", "3s"])
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("the exporter gives up on a full filesystem")
    .expect("export runs");
    let ran = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lake = Lake::open(&lake_location).await.expect("lake");
    let committed = lake_event_count(&lake).await;
    let broker = &stack.broker;
    let requeued = testbed::wait_until(
        "the unacknowledged events to return to the queue",
        Duration::from_secs(15),
        || async {
            broker
                .queue_depth(&stack.queue)
                .await
                .is_ok_and(|depth| committed + u64::from(depth) == expected)
        },
    )
    .await;
    let waiting = u64::from(broker.queue_depth(&stack.queue).await.expect("depth"));
    eprintln!(
        "filesystem full ({room} bytes of room): exporter exited {} after {ran:?} with \
         {committed} of {expected} events committed, {waiting} back in the queue; stderr:\n{stderr}",
        output.status
    );
    assert!(
        !output.status.success(),
        "a non-zero exit on a full filesystem"
    );
    assert!(
        stderr.contains("No space left on device") || stderr.contains("no space"),
        "the error says the filesystem is full: {stderr}"
    );
    assert!(
        committed > 0 && committed < expected,
        "the filesystem filled mid-stream: {committed} of {expected}"
    );
    assert!(
        requeued.is_ok(),
        "nothing uncommitted was acknowledged: {committed} committed + {waiting} waiting != {expected}"
    );
    assert!(
        ran < retry_max + Duration::from_secs(60),
        "bounded retries: gave up after {ran:?}"
    );

    // Space freed: a restart completes with nothing lost.
    std::fs::remove_file(&ballast).expect("free the space");
    drain(&stack, &lake_location).await;
    assert_eq!(lake_event_count(&lake).await, expected);
    common::assert_lake_matches_source(&lake, &stack.replica.client().expect("client")).await;
    let (code, report) = verify(&lake_location);
    assert_eq!(code, 0, "the lake verifies after the restart: {report:#}");
    eprintln!(
        "after freeing space: {expected} events, verify ok, notes: {}",
        report["notes"]
    );
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_replica_restarted_during_the_account_sweep_leaves_every_account_recorded_once()
{
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let mut stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let lake = Lake::open(&lake_location).await.expect("lake");
    let summary = stack.run_workload(0x5eed_f003, 2_000).await;
    let expected = summary.events.total() as u64;

    let mut options = stack.export_options(&lake_location);
    options.sweep = Some(SweepOptions {
        addresses: stack.replica.address().to_string(),
        interval: Duration::from_millis(100),
        request_timeout: Duration::from_secs(2),
    });
    let exporter = InProcessExporter::start(options);
    testbed::wait_until("the first sweep page", Duration::from_secs(60), || async {
        lake.list_swept().await.is_ok_and(|s| !s.is_empty())
    })
    .await
    .expect("the sweep runs");

    // Accounts keep being created, by pages, while the replica goes down and comes back: the
    // sweep's passes meet the outage whatever page they are on.
    let client = stack.replica.client().expect("client");
    let creator = tokio::spawn(async move {
        let mut created = 0u128;
        for page in 0..40u128 {
            let accounts: Vec<Account> = (0..200)
                .map(|i| Account::new(0xacc0_0000_0000 + page * 1_000 + i, 1, 7))
                .collect();
            client
                .create_accounts(accounts)
                .await
                .expect("create accounts (the client retries through the outage)");
            created += 200;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        created
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let swept_before = lake.read_all_swept(None).await.expect("swept").len();
    let down = Duration::from_secs(3);
    stack
        .replica
        .restart(down)
        .await
        .expect("the replica restarts");
    let created = creator.await.expect("creator task");

    let client = stack.replica.client().expect("client");
    let source_ids: HashSet<u128> = common::source_accounts(&client)
        .await
        .iter()
        .map(|a| a.as_raw().id)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let records = loop {
        let (_, records) = lake.read_all().await.expect("the lake reads back whole");
        let recorded: HashSet<u128> = records.iter().map(|r| r.id).collect();
        if recorded == source_ids {
            break records;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} source accounts recorded",
            recorded.intersection(&source_ids).count(),
            source_ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    wait_for_event_count(&lake, expected, Duration::from_secs(60)).await;
    let report = exporter.stop().await;
    let swept_after = lake.read_all_swept(None).await.expect("swept").len();
    eprintln!(
        "replica down {down:?} during the sweep ({swept_before} accounts swept before, \
         {created} created around the outage): {} accounts recorded once each ({swept_after} \
         swept), {expected} events; exporter: {report:?}",
        records.len()
    );
    // read_all refuses an account recorded twice, in one table or across both.
    assert_eq!(records.len(), source_ids.len());
    assert_eq!(report.events_committed, expected);
    let (events, _) = lake.read_all().await.expect("lake");
    assert_eq!(events.len() as u64, expected);
    let (code, verified) = verify(&lake_location);
    assert_eq!(code, 0, "{verified:#}");
    stack.cleanup().await;
}

/// A stream in which every event brings two accounts never seen before, so that every segment
/// makes both commits (accounts, then transfers): `rounds` requests of `per_round` transfers,
/// each after creating its accounts. Returns the events the stream makes.
async fn fresh_account_stream(client: &Client, rounds: u128, per_round: u128) -> u64 {
    for round in 0..rounds {
        let base = 1_000_000 + round * per_round * 2;
        let accounts: Vec<Account> = (0..per_round * 2)
            .map(|i| Account::new(base + i, 1, 1))
            .collect();
        client
            .create_accounts(accounts)
            .await
            .expect("create accounts");
        let transfers: Vec<Transfer> = (0..per_round)
            .map(|i| {
                Transfer::new(base + i)
                    .with_debit_account_id(base + 2 * i)
                    .with_credit_account_id(base + 2 * i + 1)
                    .with_amount(u128::from(1 + (i as u64 % 97)))
                    .with_ledger(1)
                    .with_code(1)
            })
            .collect();
        client
            .create_transfers(transfers)
            .await
            .expect("create transfers");
    }
    (rounds * per_round) as u64
}

/// Where an export process can be when it is killed inside a commit (schemas/lake.md, "Commit
/// protocol").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Window {
    /// The accounts data file is written, the accounts log does not name it yet.
    AccountsLogWrite,
    /// The accounts commit is in the log, the transfers commit is not (the commit point).
    BetweenAccountsAndTransfers,
    /// The transfers data file is written, the transfers log does not name it yet.
    TransfersLogWrite,
}

/// What the lake directory shows of the commits in progress.
#[derive(Default)]
struct LakeProbe {
    /// Parsed commits by (table, version): adds and, for transfers, the pinned accounts version.
    commits: HashMap<(String, u64), (usize, Option<u64>)>,
}

impl LakeProbe {
    fn commit(&mut self, root: &Path, table: &str, version: u64) -> Option<(usize, Option<u64>)> {
        if let Some(c) = self.commits.get(&(table.to_string(), version)) {
            return Some(*c);
        }
        let path = root
            .join(table)
            .join("_delta_log")
            .join(format!("{version:020}.json"));
        let bytes = std::fs::read(path).ok()?;
        let mut adds = 0;
        let mut pinned = None;
        for line in bytes.split(|&b| b == b'\n') {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                // Half written: not a commit yet.
                if line.iter().any(|b| !b.is_ascii_whitespace()) {
                    return None;
                }
                continue;
            };
            adds += usize::from(v.get("add").is_some());
            if let Some(p) = v.pointer("/commitInfo/ledgerlake/tableVersions/accounts") {
                pinned = p.as_u64();
            }
        }
        self.commits
            .insert((table.to_string(), version), (adds, pinned));
        Some((adds, pinned))
    }

    /// (newest version and its adds, adds over all commits, pinned accounts version of the
    /// newest).
    fn log(&mut self, root: &Path, table: &str) -> (Option<(u64, usize)>, usize, Option<u64>) {
        let dir = root.join(table).join("_delta_log");
        let mut versions: Vec<u64> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let v = name.strip_suffix(".json")?;
                        (v.len() == 20).then(|| v.parse().ok()).flatten()
                    })
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_unstable();
        let mut adds = 0;
        let mut newest = None;
        let mut pinned = None;
        for v in versions {
            if let Some((a, p)) = self.commit(root, table, v) {
                adds += a;
                newest = Some((v, a));
                pinned = p;
            }
        }
        (newest, adds, pinned)
    }

    fn data_files(root: &Path, table: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![root.join(table)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.filter_map(|e| e.ok()) {
                let path = e.path();
                if path.is_dir() {
                    if !path.ends_with("_delta_log") {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|x| x == "parquet") {
                    count += 1;
                }
            }
        }
        count
    }

    /// Data files beyond the log's adds, per table (files of removed orphans stay counted:
    /// compared with a baseline taken when the process started).
    fn unnamed(&mut self, root: &Path) -> (usize, usize) {
        let (_, transfers_adds, _) = self.log(root, "transfers");
        let (_, accounts_adds, _) = self.log(root, "accounts");
        (
            Self::data_files(root, "transfers").saturating_sub(transfers_adds),
            Self::data_files(root, "accounts").saturating_sub(accounts_adds),
        )
    }

    fn window(&mut self, root: &Path, baseline: (usize, usize)) -> Option<Window> {
        let (accounts_head, _, _) = self.log(root, "accounts");
        let (_, _, pinned) = self.log(root, "transfers");
        let (transfers_unnamed, accounts_unnamed) = self.unnamed(root);
        if accounts_unnamed > baseline.1 {
            Some(Window::AccountsLogWrite)
        } else if transfers_unnamed > baseline.0 {
            Some(Window::TransfersLogWrite)
        } else if accounts_head.is_some_and(|(h, adds)| adds > 0 && pinned.is_some_and(|p| h > p)) {
            // A segment's accounts commit (not the removal of an orphan at session start).
            Some(Window::BetweenAccountsAndTransfers)
        } else {
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_a_delta_commit_loses_and_duplicates_nothing() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let root = PathBuf::from(&lake_location);
    let lake = Lake::open(&lake_location).await.expect("lake");
    let client = stack.replica.client().expect("client");
    let expected = fresh_account_stream(&client, 250, 100).await;

    // Watch the lake directory; when it shows a commit in progress, stop the process (SIGSTOP),
    // look again, and SIGKILL it if it is still inside the commit.
    let hits_per_window = 3;
    let mut hits: HashMap<Window, usize> = HashMap::new();
    let mut probe = LakeProbe::default();
    let mut processes = 0;
    let mut stops = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while hits.len() < 3 || hits.values().any(|&h| h < hits_per_window) {
        assert!(
            Instant::now() < deadline,
            "windows hit within the time: {hits:?} over {processes} processes"
        );
        if lake_event_count(&lake).await >= expected {
            break;
        }
        let baseline = probe.unnamed(&root);
        let mut child = exporter_command(&stack, &lake_location, &[])
            .spawn()
            .expect("exporter starts");
        processes += 1;
        let pid = child.id().expect("pid");
        let spawned = Instant::now();
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if spawned.elapsed() > Duration::from_secs(30) {
                child.start_kill().expect("kill");
                break;
            }
            let Some(seen) = probe.window(&root, baseline) else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            if hits.get(&seen).copied().unwrap_or(0) >= hits_per_window {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            signal(pid, SIGSTOP);
            stops += 1;
            // Stopped: the directory no longer changes; is it still inside that commit?
            tokio::time::sleep(Duration::from_millis(20)).await;
            if probe.window(&root, baseline) == Some(seen) {
                signal(pid, SIGKILL);
                *hits.entry(seen).or_default() += 1;
                break;
            }
            signal(pid, SIGCONT);
        }
        let _ = child.wait().await;
    }
    drain(&stack, &lake_location).await;

    eprintln!(
        "SIGKILL inside a commit: {hits:?} over {processes} exporter processes ({stops} \
         SIGSTOPs); {expected} events"
    );
    for window in [
        Window::AccountsLogWrite,
        Window::BetweenAccountsAndTransfers,
        Window::TransfersLogWrite,
    ] {
        assert!(
            hits.get(&window).copied().unwrap_or(0) >= 1,
            "killed at least once in {window:?}: {hits:?}"
        );
    }
    assert_eq!(lake_event_count(&lake).await, expected);
    common::assert_lake_matches_source(&lake, &stack.replica.client().expect("client")).await;
    let (code, report) = verify(&lake_location);
    assert_eq!(code, 0, "{report:#}");
    eprintln!(
        "verify: ok, {} notes (data files of commits that never happened)",
        report["notes"].as_array().map_or(0, Vec::len)
    );
    stack.cleanup().await;
}

/// One way of damaging one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    Deleted,
    Duplicated,
    Truncated,
    BitFlipped,
    Replaced,
}

const DAMAGES: [Damage; 5] = [
    Damage::Deleted,
    Damage::Duplicated,
    Damage::Truncated,
    Damage::BitFlipped,
    Damage::Replaced,
];

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success(), "cp -a");
}

/// Files under `root/dir` whose name ends with `suffix`, relative to `root`, sorted.
fn files(root: &Path, dir: &str, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .expect("read_dir")
            .filter_map(|e| e.ok())
        {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(
                    path.strip_prefix(root)
                        .expect("under root")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

/// Applies `damage` to `target` (relative to `root`); `other` is another object of the same
/// kind (for `Replaced`). Returns the objects verify must name (any one of them).
fn damage(root: &Path, target: &str, other: &str, damage: Damage, log: bool) -> Vec<String> {
    let path = root.join(target);
    let bytes = std::fs::read(&path).expect("target");
    match damage {
        Damage::Deleted => std::fs::remove_file(&path).expect("delete"),
        Damage::Duplicated => {
            let copy = if log {
                // The commit again as the next version of the log.
                let dir = path.parent().expect("log dir");
                let head = files(
                    root,
                    &dir.strip_prefix(root).expect("rel").to_string_lossy(),
                    ".json",
                )
                .iter()
                .filter_map(|f| {
                    f.rsplit('/')
                        .next()?
                        .trim_end_matches(".json")
                        .parse::<u64>()
                        .ok()
                })
                .max()
                .expect("a head");
                dir.join(format!("{:020}.json", head + 1))
            } else {
                // The same file again, in another date partition of the table.
                let name = path.file_name().expect("name");
                let table_dir = path.parent().and_then(Path::parent).expect("table dir");
                let other_date = table_dir.join("date=1999-12-31");
                std::fs::create_dir_all(&other_date).expect("partition dir");
                other_date.join(name)
            };
            std::fs::write(&copy, &bytes).expect("duplicate");
            return vec![copy
                .strip_prefix(root)
                .expect("rel")
                .to_string_lossy()
                .into_owned()];
        }
        Damage::Truncated => std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate"),
        Damage::BitFlipped => {
            let mut flipped = bytes.clone();
            let at = flipped.len() / 3;
            flipped[at] ^= 0x08;
            std::fs::write(&path, flipped).expect("flip");
        }
        Damage::Replaced => {
            let replacement = std::fs::read(root.join(other)).expect("other");
            assert_ne!(replacement, bytes, "a different object of the same kind");
            std::fs::write(&path, replacement).expect("replace");
        }
    }
    vec![target.to_string()]
}

/// Whether verify's problems name one of `objects`: by path, or for a commit by its table and
/// version (or as the commit the next one's link no longer matches).
fn names_object(report: &serde_json::Value, objects: &[String], log: bool) -> bool {
    let problems = report["problems"].as_array().cloned().unwrap_or_default();
    let text = report["problems"].to_string();
    objects.iter().any(|object| {
        if text.contains(object.as_str()) {
            return true;
        }
        if !log {
            return false;
        }
        let table = object.split('/').next().unwrap_or_default();
        let Some(version) = object
            .rsplit('/')
            .next()
            .and_then(|f| f.trim_end_matches(".json").parse::<u64>().ok())
        else {
            return false;
        };
        problems.iter().any(|p| {
            let at = p["version"].as_str().and_then(|v| v.parse::<u64>().ok());
            p["table"] == table
                && (at == Some(version) || (at == Some(version + 1) && p["check"] == "broken_link"))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_every_deleted_duplicated_truncated_flipped_or_replaced_object() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = lake_path(dir.path());
    let root = PathBuf::from(&lake_location);
    let summary = stack.run_workload(0x5eed_f005, 2_000).await;
    drain(&stack, &lake_location).await;
    let lake = Lake::open(&lake_location).await.expect("lake");
    assert_eq!(lake_event_count(&lake).await, summary.events.total() as u64);
    let (code, clean) = verify(&lake_location);
    assert_eq!(code, 0, "the exported lake verifies: {clean:#}");
    let heads = clean["chain"].clone();

    // Objects: the first, a middle and the last data file and commit of both tables.
    let mut objects: Vec<(String, String, bool)> = Vec::new();
    for (dir_name, suffix, log) in [
        ("transfers", ".parquet", false),
        ("accounts", ".parquet", false),
        ("transfers/_delta_log", ".json", true),
        ("accounts/_delta_log", ".json", true),
    ] {
        let all: Vec<String> = files(&root, dir_name, suffix)
            .into_iter()
            .filter(|f| log || !f.contains("_delta_log"))
            .collect();
        assert!(all.len() >= 4, "{dir_name}: {} objects", all.len());
        // Version 0 of a log is the table's creation (protocol, metadata): from version 1 on.
        let first = usize::from(log);
        let picks = [first, all.len() / 2, all.len() - 1];
        for i in picks {
            let other = if i == all.len() - 1 { i - 1 } else { i + 1 };
            objects.push((all[i].clone(), all[other].clone(), log));
        }
    }

    let mut cases = 0;
    let mut named = 0;
    let mut named_by_head = 0;
    let mut misses = Vec::new();
    for (target, other, log) in &objects {
        for kind in DAMAGES {
            cases += 1;
            let case_dir = tempfile::tempdir().expect("tempdir");
            let copy = case_dir.path().join("lake");
            copy_dir(&root, &copy);
            let expect = damage(&copy, target, other, kind, *log);
            let (code, report) = verify(&copy.to_string_lossy());
            let names = names_object(&report, &expect, *log);
            if code == 1 && names {
                named += 1;
            } else if report["chain"] != heads {
                let problems = report["problems_total"].clone();
                // The log itself is intact up to a shorter head (the newest commit deleted
                // or cut): only the head an auditor recorded shows it.
                named_by_head += 1;
                eprintln!(
                    "{kind:?} {target}: exit {code}, {problems} problems not naming it; the \
                     chain head changed: {}",
                    report["chain"]
                );
            } else {
                misses.push(format!("{kind:?} {target}: exit {code}, {report:#}"));
            }
        }
    }
    eprintln!(
        "tampering: {cases} cases ({} objects x {} damages); verify named the object in {named}, \
         the chain head changed in {named_by_head}, missed {}",
        objects.len(),
        DAMAGES.len(),
        misses.len()
    );
    assert!(misses.is_empty(), "verify missed:\n{}", misses.join("\n"));
    stack.cleanup().await;
}
