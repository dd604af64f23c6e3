//! A trickle day through the real stack, compacted in the background, next to the same events
//! exported in bulk (BENCHMARKS.md, "Compaction"): the five-minute windows close only in real
//! time, so this runs for real minutes.
//!
//! - a fresh TigerBeetle replica with 1,000 accounts; the real CDC job (`tigerbeetle amqp
//!   --timestamp-last=0`) publishes into one fanout exchange bound to two queues, so both hold
//!   the same real messages;
//! - a paced client submits single-phase transfers at 5 events/s for `--minutes`, on an absolute
//!   schedule (every 200 ms, one request with the transfers due by then)
//!   (full scale 10, small 2) while the release `ledgerlake export --compact-interval 1m` (and
//!   otherwise default options) consumes the first queue into a local lake;
//! - once the lake holds every event, one more compaction interval passes, then the exporter
//!   stops (SIGTERM) and the snapshot is read: its data files, which are merged files of closed
//!   windows and which single segments of the open window, and bytes per event;
//! - the anchor: the second queue, the same messages, exported in bulk after the trickle by the
//!   same binary (`--until-idle 3s --no-compact`, default segments of 32,768 events) into a
//!   second lake;
//! - then `ledgerlake compact --all-windows` on the trickle lake (what the day's close does
//!   once the day is over), against the same anchor.
//!
//! Holds TigerBeetle and RabbitMQ for `--minutes` + about 2 minutes: run it under the stack lock,
//! `flock /tmp/ledgerlake-stack.lock target/release/deps/trickle-* --run yes --scale full --out FILE`
//! (without `--run yes` it does nothing, so a plain `cargo bench` does not hold the stack).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Args, Better, Report, Row, Scale};
use ledgerlake::lake::{Lake, SegmentInfo};
use ledgerlake::testbed::{self, Broker, CdcJob, Replica};
use serde_json::json;
use tigerbeetle_unofficial::{Account, Transfer};
use tokio::process::Command;

const ACCOUNTS: u128 = 1_000;
/// The trickle's rate.
const EVENTS_PER_SECOND: u64 = 5;
/// How often the client sends what is due: one request a tick carries the transfers due by then.
const TICK: Duration = Duration::from_millis(200);
/// The five-minute window of the compaction plan (`lake::compact::plan`).
const WINDOW_NS: u64 = 300 * 1_000_000_000;
/// How long the lake may take to hold every event after the last transfer.
const CATCH_UP_MAX: Duration = Duration::from_secs(60);

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(run(args));
}

/// A snapshot's data files, split into merged files (a compaction's output: more than one
/// segment's span) and single segments.
#[derive(Debug, Default)]
struct Snapshot {
    files: u64,
    bytes: u64,
    events: u64,
    merged_files: u64,
    merged_bytes: u64,
    merged_events: u64,
    /// `first..last` timestamp, events, bytes of every merged transfers file.
    merged: Vec<serde_json::Value>,
}

async fn snapshot(location: &str) -> Snapshot {
    let lake = Lake::open(location).await.expect("lake");
    let mut out = Snapshot::default();
    for s in lake.list_segments().await.expect("listing") {
        let events = lake.read_events(&s).await.expect("segment").len() as u64;
        let files = 1 + u64::from(s.accounts_path.is_some());
        let bytes = s.transfers_bytes + s.accounts_bytes;
        out.files += files;
        out.bytes += bytes;
        out.events += events;
        if is_merged(&s) {
            out.merged_files += files;
            out.merged_bytes += bytes;
            out.merged_events += events;
            out.merged.push(json!({
                "first_timestamp": s.first_timestamp.to_string(),
                "last_timestamp": s.last_timestamp.to_string(),
                "window_start_utc": ledgerlake::timefmt::rfc3339(s.first_timestamp / WINDOW_NS * WINDOW_NS),
                "events": events, "bytes": bytes, "path": s.transfers_path.to_string(),
            }));
        }
    }
    out
}

/// A segment of a one-second trickle spans about a second; a merged file spans more than 5 s.
fn is_merged(s: &SegmentInfo) -> bool {
    s.last_timestamp - s.first_timestamp > 5_000_000_000
}

fn export_command(lake: &Path, queue: &str, cluster: u128, log: &Path) -> Command {
    let log = std::fs::File::create(log).expect("exporter log file");
    let mut c = Command::new(common::ledgerlake_bin());
    c.args([
        "export",
        "--queue",
        queue,
        "--lake",
        &lake.display().to_string(),
        "--cluster-id",
        &cluster.to_string(),
    ])
    .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::from(log))
    .kill_on_drop(true);
    c
}

/// The exporter's final report: the last JSON line of its log.
fn export_report(log: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(log).expect("exporter log");
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("events_committed").is_some())
        .unwrap_or_else(|| panic!("no export report in {}", log.display()))
}

async fn run(args: Args) {
    // Opt-in: a plain `cargo bench` must not hold the stack for minutes.
    if args.get("run") != Some("yes") {
        eprintln!("bench trickle: opt-in, holds the stack for minutes: pass `--run yes` (see BENCHMARKS.md)");
        return;
    }
    let minutes: u64 = match (args.get("minutes"), args.scale) {
        (Some(m), _) => m.parse().expect("--minutes N"),
        (None, Scale::Small) => 2,
        (None, Scale::Full) => 10,
    };
    let compact_interval = args.get("compact-interval").unwrap_or("1m").to_string();
    let interval = humantime::parse_duration(&compact_interval).expect("--compact-interval");
    let work = tempfile::tempdir_in(&args.work).expect("work dir");
    let trickle_dir = work.path().join("trickle");
    let bulk_dir = work.path().join("bulk");
    let trickle_log = work.path().join("export-trickle.log");
    let bulk_log = work.path().join("export-bulk.log");

    let cluster = testbed::random_cluster_id();
    let broker = Broker::connect()
        .await
        .expect("RabbitMQ (run scripts/setup.sh)");
    let exchange = testbed::unique_name("bench-trickle");
    let queue_trickle = testbed::unique_name("bench-trickle-export");
    let queue_bulk = testbed::unique_name("bench-trickle-bulk");
    broker.declare_exchange(&exchange).await.expect("exchange");
    for q in [&queue_trickle, &queue_bulk] {
        broker
            .declare_queue_bound(q, &exchange)
            .await
            .expect("queue");
    }
    let replica = Replica::start(cluster).await.expect("replica");
    let client = replica.client().expect("client");
    let accounts: Vec<Account> = (1..=ACCOUNTS).map(|id| Account::new(id, 1, 1)).collect();
    client.create_accounts(accounts).await.expect("accounts");
    let mut cdc = CdcJob::start(&replica, &exchange, Some(0))
        .await
        .expect("CDC job");
    let mut exporter = export_command(&trickle_dir, &queue_trickle, cluster, &trickle_log)
        .args(["--compact-interval", &compact_interval])
        .spawn()
        .expect("spawn ledgerlake export");
    let pid = exporter.id().expect("pid");

    // The trickle: 5 transfers a second, on an absolute schedule. Each tick sends, in one
    // request, every transfer due by then, so a request slower than a tick (a loaded machine)
    // delays transfers by a tick but never lowers the rate.
    let events = minutes * 60 * EVENTS_PER_SECOND;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = Instant::now();
    let mut printed = Instant::now();
    let mut sent: u64 = 0;
    let mut requests: u64 = 0;
    let mut batch_max: u64 = 0;
    while sent < events {
        ticker.tick().await;
        let due = (started.elapsed().as_millis() as u64 * EVENTS_PER_SECOND / 1000 + 1).min(events);
        if due <= sent {
            continue;
        }
        let batch: Vec<Transfer> = (sent..due)
            .map(|n| {
                let id = u128::from(n) + 1;
                let debit = 1 + (id * 7_919) % ACCOUNTS;
                let credit = 1 + debit % ACCOUNTS;
                Transfer::new(id)
                    .with_debit_account_id(debit)
                    .with_credit_account_id(credit)
                    .with_amount(1 + id % 1_000)
                    .with_ledger(1)
                    .with_code(1)
            })
            .collect();
        batch_max = batch_max.max(due - sent);
        client
            .create_transfers(batch)
            .await
            .unwrap_or_else(|e| panic!("transfers {sent}..{due}: {e}"));
        sent = due;
        requests += 1;
        if printed.elapsed() >= Duration::from_secs(60) {
            eprintln!(
                "bench trickle: {sent} transfers in {:.0} s ({requests} requests, at most {batch_max} in one)",
                started.elapsed().as_secs_f64()
            );
            printed = Instant::now();
            cdc.check_alive().expect("CDC job alive");
            assert!(
                exporter.try_wait().expect("exporter status").is_none(),
                "the exporter exited"
            );
        }
    }
    let trickle_s = started.elapsed().as_secs_f64();
    let rate = events as f64 / trickle_s;
    assert!(
        rate > EVENTS_PER_SECOND as f64 * 0.9,
        "the client sent {rate:.2} events/s, not {EVENTS_PER_SECOND}"
    );

    // Every event in the lake, then one more compaction interval (the last closed window).
    let location = trickle_dir.display().to_string();
    let deadline = Instant::now() + CATCH_UP_MAX;
    loop {
        let held = snapshot(&location).await.events;
        if held >= events {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lake holds {held} of {events} events"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(interval + Duration::from_secs(10)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(60), exporter.wait())
        .await
        .expect("the exporter stops on SIGTERM")
        .expect("exporter status");
    assert!(
        status.success(),
        "export failed: see {}",
        trickle_log.display()
    );
    let report = export_report(&trickle_log);
    let trickle = snapshot(&location).await;
    assert_eq!(trickle.events, events, "exactly once");
    cdc.stop().await;
    drop(client);
    replica.stop().await;

    // The anchor: the same messages, in bulk.
    let bulk_started = Instant::now();
    let status = export_command(&bulk_dir, &queue_bulk, cluster, &bulk_log)
        .args(["--until-idle", "3s", "--no-compact"])
        .status()
        .await
        .expect("bulk export");
    assert!(
        status.success(),
        "bulk export failed: see {}",
        bulk_log.display()
    );
    let bulk_s = bulk_started.elapsed().as_secs_f64();
    let bulk = snapshot(&bulk_dir.display().to_string()).await;
    assert_eq!(bulk.events, events, "the anchor holds the same events");
    for q in [&queue_trickle, &queue_bulk] {
        broker.delete_queue(q).await.expect("delete queue");
    }
    broker
        .delete_exchange(&exchange)
        .await
        .expect("delete exchange");
    broker
        .delete_cdc_queues(cluster)
        .await
        .expect("delete CDC queue");
    let _ = broker.close().await;

    // The day's close, now: every window merged.
    let output = Command::new(common::ledgerlake_bin())
        .args(["compact", "--lake", &location, "--all-windows"])
        .env("LEDGERLAKE_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("ledgerlake compact");
    assert!(
        output.status.success(),
        "compact failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let closed = snapshot(&location).await;
    assert_eq!(closed.events, events);

    let per = |bytes: u64, events: u64| bytes as f64 / events.max(1) as f64;
    let bulk_per_event = per(bulk.bytes, bulk.events);
    let segments = report["segments_committed"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .or_else(|| report["segments_committed"].as_u64())
        .unwrap_or(0);
    eprintln!(
        "bench trickle: {events} events in {trickle_s:.0} s; {segments} segments committed; \
         snapshot {} files ({} merged, holding {} events), {:.1} B/event (merged part {:.1}); \
         bulk {} files, {:.1} B/event in {bulk_s:.1} s; after compact --all-windows {} files, {:.1} B/event",
        trickle.files,
        trickle.merged_files,
        trickle.merged_events,
        per(trickle.bytes, trickle.events),
        per(trickle.merged_bytes, trickle.merged_events),
        bulk.files,
        bulk_per_event,
        closed.files,
        per(closed.bytes, closed.events),
    );
    let mut out = Report::new("trickle", args.scale);
    out.row(Row {
        id: "trickle bytes per event".into(),
        what: format!("bytes/event of the whole snapshot after {minutes} min at 5 ev/s (closed windows merged, the open window's segments not)"),
        unit: "B/event".into(),
        ours: per(trickle.bytes, trickle.events),
        anchor: Some(bulk_per_event),
        anchor_what: "the same messages exported in bulk".into(),
        target: Some((1.2, true)),
        better: Better::Lower,
    });
    out.row(Row {
        id: "trickle merged bytes per event".into(),
        what: "bytes/event of the merged files (closed five-minute windows)".into(),
        unit: "B/event".into(),
        ours: per(trickle.merged_bytes, trickle.merged_events),
        anchor: Some(bulk_per_event),
        anchor_what: "the same messages exported in bulk".into(),
        target: Some((1.2, true)),
        better: Better::Lower,
    });
    out.row(Row {
        id: "trickle files".into(),
        what: "data files (transfers + accounts) in the snapshot".into(),
        unit: "files".into(),
        ours: trickle.files as f64,
        anchor: Some(2.0 * segments as f64),
        anchor_what: "files without compaction (two per segment committed)".into(),
        target: Some((48.0, false)),
        better: Better::Lower,
    });
    out.row(Row {
        id: "trickle closed bytes per event".into(),
        what: "bytes/event after `ledgerlake compact --all-windows` (the day's close)".into(),
        unit: "B/event".into(),
        ours: per(closed.bytes, closed.events),
        anchor: Some(bulk_per_event),
        anchor_what: "the same messages exported in bulk".into(),
        target: Some((1.2, true)),
        better: Better::Lower,
    });
    out.row(Row {
        id: "trickle closed files".into(),
        what: "data files after `ledgerlake compact --all-windows`".into(),
        unit: "files".into(),
        ours: closed.files as f64,
        anchor: Some(bulk.files as f64),
        anchor_what: "files of the bulk export".into(),
        target: Some((48.0, false)),
        better: Better::Lower,
    });
    out.detail(
        "trickle",
        json!({"minutes": minutes, "events": events, "trickle_s": trickle_s,
               "client_rate": rate, "client_requests": requests, "client_batch_max": batch_max,
               "compact_interval": compact_interval, "export_report": report,
               "files": trickle.files, "bytes": trickle.bytes,
               "merged_files": trickle.merged_files, "merged_bytes": trickle.merged_bytes,
               "merged_events": trickle.merged_events, "merged": trickle.merged,
               "bulk_files": bulk.files, "bulk_bytes": bulk.bytes, "bulk_s": bulk_s,
               "closed_files": closed.files, "closed_bytes": closed.bytes}),
    );
    out.finish(&args);
}
