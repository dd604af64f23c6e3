//! Export, rebuild, size and scaling against the real stack, each next to its anchor in the same
//! run (issue 5, measurements 2, 3, 4 and 6):
//!
//! - a fresh replica runs the standard workload; the real CDC job (`tigerbeetle amqp
//!   --timestamp-last=0`) publishes its events to one fanout exchange bound to two queues, so both
//!   hold the same real messages in the same order;
//! - the exchange is bound to 2R + 1 queues (R rounds, `--rounds`; default 3 up to 2×10^5
//!   transfers, 1 above): a plain lapin
//!   consumer that only acknowledges drains one (the anchor), the release `ledgerlake export`
//!   the next into a fresh local lake, and so on, ending with a drain, so every export sits
//!   between two drains. The broker's delivery rate swings by 2× from one drain to the next on
//!   this machine (it pages the fill to disk), so one pair proves nothing: the figures are the
//!   medians of each kind, and their ratio; the exporter's peak RSS;
//! - the lake is rebuilt into a fresh replica with `ledgerlake rebuild`, next to `tigerbeetle
//!   benchmark` (self-contained, same transfer count, batch 8,189);
//! - sizes: lake bytes, the raw CDC JSON bytes the anchor received, the source data file's growth;
//! - all of that at two sizes (scaling); then, once, the lag from commit to lake under a steady
//!   publish rate, next to the lag to a plain consumer of the same exchange.
//!
//! Run through `scripts/bench.sh`, which builds the release binary and passes `--work`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Args, Better, Report, Row, Scale};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use ledgerlake::lake::Lake;
use ledgerlake::testbed::{self, Broker, CdcJob, Replica, ReplicaOptions};
use ledgerlake::workload::{self, WorkloadConfig};
use serde_json::json;
use tigerbeetle_unofficial::{Account, Transfer};
use tokio::process::Command;

/// The AMQP prefetch of the plain drain: the exporter's default, so both have as much in flight.
const DRAIN_PREFETCH: u16 = 65_535;
/// The plain drain acknowledges every this many deliveries (`multiple`), as a good plain consumer does.
const DRAIN_ACK_EVERY: u64 = 1024;
/// The largest workload (transfers) measured in 3 rounds by default; larger ones in one.
const ROUNDS_DEFAULT_UP_TO: usize = 200_000;
/// How often the lake directory is listed to time commits (the commit time is over-estimated
/// by at most this).
const LAKE_POLL: Duration = Duration::from_millis(20);
/// The request size of the rebuild and of `tigerbeetle benchmark`.
const BATCH: usize = ledgerlake::tb::limits::BATCH_EVENTS_MAX;
/// A TigerBeetle `Transfer` is a fixed 128-byte record (before its LSM indexes). The data file
/// preallocates a 1 GiB WAL and writes grid blocks only at checkpoints, so at these sizes its
/// `st_size` does not move; the measured growth is kept in the details.
const TB_TRANSFER_BYTES: f64 = 128.0;

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(run(args));
}

struct Sizes {
    /// Transfers submitted by the workload at each step of the scaling series.
    series: Vec<usize>,
    lag_rate_per_s: u64,
    lag_duration: Duration,
}

fn sizes(scale: Scale) -> Sizes {
    match scale {
        Scale::Small => Sizes {
            series: vec![10_000, 50_000],
            lag_rate_per_s: 1_000,
            lag_duration: Duration::from_secs(15),
        },
        Scale::Full => Sizes {
            series: vec![100_000, 1_000_000],
            lag_rate_per_s: 2_000,
            lag_duration: Duration::from_secs(60),
        },
    }
}

async fn run(args: Args) {
    let mut s = sizes(args.scale);
    // `--series 1000000` reruns one size; `--lag no` skips the lag runs (for before/after checks).
    if let Some(series) = args.get("series") {
        s.series = series
            .split(',')
            .map(|n| n.parse().expect("--series N[,N...]"))
            .collect();
    }
    let with_lag = args.get("lag") != Some("no");
    // `--rounds N` for every size; by default 3 up to 2×10^5 transfers and 1 above (each
    // round at 10^6 holds another ~860 MB of messages in the broker, twice).
    let rounds_arg: Option<usize> = args.get("rounds").map(|r| r.parse().expect("--rounds N"));
    let mut report = Report::new("pipeline", args.scale);
    let mut steps = Vec::new();
    for &n in &s.series {
        let rounds = rounds_arg.unwrap_or(if n <= ROUNDS_DEFAULT_UP_TO { 3 } else { 1 });
        let step = step(&args.work, n, rounds).await;
        eprintln!(
            "bench pipeline: step {n}: {}",
            serde_json::to_string(&step.json()).unwrap_or_default()
        );
        steps.push(step);
    }
    let (lag_default, lag_short_age) = if with_lag {
        let default = lag(&args.work, s.lag_rate_per_s, s.lag_duration, &[]).await;
        let short_age = lag(
            &args.work,
            s.lag_rate_per_s,
            s.lag_duration,
            &["--segment-age-max", "250ms"],
        )
        .await;
        (default, short_age)
    } else {
        (Lag::skipped(), Lag::skipped())
    };
    let lag = &lag_default;
    let last = steps.last().expect("at least one step");
    let first = &steps[0];

    report.row(Row {
        id: "2 export events/s".into(),
        what: "ledgerlake export draining a pre-filled queue into a local lake (median of the rounds)"
            .into(),
        unit: "events/s".into(),
        ours: last.export_rate(),
        anchor: Some(last.drain_rate()),
        anchor_what: "plain lapin drain of the same messages (ack only), interleaved with the exports; median"
            .into(),
        target: Some((0.95, true)),
        better: Better::Higher,
    });
    report.row(Row {
        id: "2 export peak RSS".into(),
        what: "VmHWM of the exporter process".into(),
        unit: "MiB".into(),
        ours: mib(steps.iter().map(|s| s.export_rss).max().unwrap_or(0)),
        anchor: None,
        anchor_what: "target 256 MiB".into(),
        target: Some((256.0, false)),
        better: Better::Lower,
    });
    report.row(Row {
        id: "2 lag p50".into(),
        what: "event timestamp to lake commit, steady publish".into(),
        unit: "s".into(),
        ours: lag.lake_p50,
        anchor: Some(lag.plain_p50),
        anchor_what: "event timestamp to delivery at a plain consumer".into(),
        target: None,
        better: Better::Lower,
    });
    report.row(Row {
        id: "2 lag p99".into(),
        what: "event timestamp to lake commit, steady publish".into(),
        unit: "s".into(),
        ours: lag.lake_p99,
        anchor: Some(lag.plain_p99),
        anchor_what: "event timestamp to delivery at a plain consumer".into(),
        target: Some((2.0, false)),
        better: Better::Lower,
    });
    report.row(Row {
        id: "3 rebuild transfers/s".into(),
        what: "ledgerlake rebuild into a fresh replica: transfers / replay time".into(),
        unit: "transfers/s".into(),
        ours: last.rebuild_transfers_per_s(),
        anchor: Some(last.tb_benchmark_tps),
        anchor_what: "tigerbeetle benchmark, same transfer count, batch 8189".into(),
        target: Some((0.8, true)),
        better: Better::Higher,
    });
    report.row(Row {
        id: "4 lake bytes/event".into(),
        what: "transfers + accounts files / events".into(),
        unit: "B/event".into(),
        ours: last.lake_bytes as f64 / last.events as f64,
        anchor: Some(last.json_bytes as f64 / last.events as f64),
        anchor_what: "raw CDC JSON bodies / events".into(),
        target: Some((64.0, false)),
        better: Better::Lower,
    });
    report.row(Row {
        id: "4 lake vs data file".into(),
        what: "lake bytes/event vs TigerBeetle data file growth/transfer".into(),
        unit: "B/event".into(),
        ours: last.lake_bytes as f64 / last.events as f64,
        anchor: Some(if last.data_file_growth > 0 {
            last.data_file_growth as f64 / last.transfers_submitted as f64
        } else {
            TB_TRANSFER_BYTES
        }),
        anchor_what: if last.data_file_growth > 0 {
            "source data file growth (st_size) / transfers submitted".into()
        } else {
            "TigerBeetle's fixed 128-byte transfer record (the data file did not grow: see details)"
                .into()
        },
        target: None,
        better: Better::Lower,
    });
    let growth = last.events as f64 / first.events as f64;
    report.row(Row {
        id: "6 export time growth".into(),
        what: format!(
            "export time at {} / at {} events",
            last.events, first.events
        ),
        unit: "x".into(),
        ours: last.export_s / first.export_s,
        anchor: Some(growth),
        anchor_what: "event-count growth (linear)".into(),
        target: Some((1.1, true)),
        better: Better::Lower,
    });
    report.row(Row {
        id: "6 rebuild time growth".into(),
        what: format!(
            "rebuild replay time at {} / at {} events",
            last.events, first.events
        ),
        unit: "x".into(),
        ours: last.rebuild_replay_s / first.rebuild_replay_s,
        anchor: Some(growth),
        anchor_what: "event-count growth (linear)".into(),
        target: Some((1.1, true)),
        better: Better::Lower,
    });
    report.row(Row {
        id: "6 export RSS growth".into(),
        what: "exporter peak RSS, largest / smallest run".into(),
        unit: "x".into(),
        ours: last.export_rss as f64 / first.export_rss.max(1) as f64,
        anchor: Some(1.0),
        anchor_what: "flat".into(),
        target: Some((1.25, true)),
        better: Better::Lower,
    });
    report.detail(
        "steps",
        json!(steps.iter().map(Step::json).collect::<Vec<_>>()),
    );
    report.detail("lag", lag_default.json());
    report.detail("lag_segment_age_max_250ms", lag_short_age.json());
    report.finish(&args);
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------------------------
// One step of the series: workload, fill, drain, export, rebuild, benchmark.

#[derive(Debug, Default)]
struct Step {
    transfers_submitted: usize,
    accounts: usize,
    events: u64,
    workload_s: f64,
    data_file_growth: u64,
    data_file_allocated_growth: u64,
    cdc_fill_s: f64,
    /// The median of the plain drains (the anchor).
    drain_s: f64,
    drains_s: Vec<f64>,
    json_bytes: u64,
    /// The median of the exports.
    export_s: f64,
    exports_s: Vec<f64>,
    export_rss: u64,
    export_report: serde_json::Value,
    lake_bytes: u64,
    lake_files: usize,
    rebuild_accounts: u64,
    rebuild_transfers: u64,
    rebuild_replay_s: f64,
    rebuild_plan_s: f64,
    rebuild_wall_s: f64,
    rebuild_events_per_s: f64,
    tb_benchmark_tps: f64,
    tb_benchmark_output: String,
}

impl Step {
    fn drain_rate(&self) -> f64 {
        self.events as f64 / self.drain_s
    }
    fn export_rate(&self) -> f64 {
        self.events as f64 / self.export_s
    }
    /// Each export's rate over the mean rate of the drains just before and after it: the
    /// broker's rate drifts during a run, and this pairs each export with its own moment.
    fn paired_ratios(&self) -> Vec<f64> {
        let rate = |s: f64| self.events as f64 / s;
        self.exports_s
            .iter()
            .enumerate()
            .map(|(i, &e)| {
                let drains = (rate(self.drains_s[i]) + rate(self.drains_s[i + 1])) / 2.0;
                rate(e) / drains
            })
            .collect()
    }
    fn rebuild_transfers_per_s(&self) -> f64 {
        self.rebuild_transfers as f64 / self.rebuild_replay_s
    }
    fn json(&self) -> serde_json::Value {
        json!({
            "transfers_submitted": self.transfers_submitted,
            "accounts": self.accounts,
            "events": self.events,
            "workload_s": self.workload_s,
            "data_file_growth_bytes": self.data_file_growth,
            "data_file_allocated_growth_bytes": self.data_file_allocated_growth,
            "cdc_fill_s": self.cdc_fill_s,
            "cdc_publish_events_per_s": self.events as f64 / self.cdc_fill_s,
            "drain_s": self.drain_s,
            "drains_s": self.drains_s,
            "exports_s": self.exports_s,
            "export_vs_neighbour_drains": self.paired_ratios(),
            "drain_events_per_s": self.drain_rate(),
            "json_bytes": self.json_bytes,
            "export_s": self.export_s,
            "export_events_per_s": self.export_rate(),
            "export_peak_rss_bytes": self.export_rss,
            "export_report": self.export_report,
            "lake_bytes": self.lake_bytes,
            "lake_files": self.lake_files,
            "rebuild_accounts": self.rebuild_accounts,
            "rebuild_transfers": self.rebuild_transfers,
            "rebuild_plan_s": self.rebuild_plan_s,
            "rebuild_replay_s": self.rebuild_replay_s,
            "rebuild_wall_s": self.rebuild_wall_s,
            "rebuild_objects_per_s": self.rebuild_events_per_s,
            "rebuild_transfers_per_s": self.rebuild_transfers_per_s(),
            "tigerbeetle_benchmark_tx_per_s": self.tb_benchmark_tps,
            "tigerbeetle_benchmark_output": self.tb_benchmark_output,
        })
    }
}

/// The median of some timings (the mean of the middle two of an even count).
fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty());
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

async fn step(work: &Path, transfers: usize, rounds: usize) -> Step {
    assert!(rounds >= 1);
    let mut out = Step {
        transfers_submitted: transfers,
        ..Step::default()
    };
    let cluster = testbed::random_cluster_id();
    let broker = Broker::connect()
        .await
        .expect("RabbitMQ (run scripts/setup.sh)");
    let exchange = testbed::unique_name("bench-cdc");
    // Drain, export, drain, …, drain.
    let queues: Vec<String> = (0..2 * rounds + 1)
        .map(|i| {
            let kind = if i.is_multiple_of(2) {
                "drain"
            } else {
                "export"
            };
            testbed::unique_name(&format!("bench-{kind}-{i}"))
        })
        .collect();
    let lakes: Vec<PathBuf> = (0..rounds)
        .map(|r| work.join(format!("lake-{transfers}-{r}")))
        .collect();
    for lake in &lakes {
        let _ = std::fs::remove_dir_all(lake);
    }
    // Sizes and the rebuild use the first round's lake.
    let lake_dir = lakes[0].clone();

    // The source: the standard workload, then the CDC job replaying everything into both queues.
    let replica = Replica::start(cluster).await.expect("source replica");
    let data_before = file_sizes(replica.data_file());
    let client = replica.client().expect("client");
    let config = WorkloadConfig::new(1, transfers);
    let started = Instant::now();
    let mut printed = Instant::now();
    let summary = workload::run(&client, &config, |p| {
        if printed.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "bench pipeline: workload {:?} {}/{}",
                p.phase, p.transfers_sent, p.transfers_target
            );
            printed = Instant::now();
        }
    })
    .await
    .expect("workload");
    out.workload_s = started.elapsed().as_secs_f64();
    drop(client);
    out.accounts = summary.account_ids.len();
    out.events = summary.events.total() as u64;
    let data_after = file_sizes(replica.data_file());
    out.data_file_growth = data_after.0.saturating_sub(data_before.0);
    out.data_file_allocated_growth = data_after.1.saturating_sub(data_before.1);

    broker.declare_exchange(&exchange).await.expect("exchange");
    for queue in &queues {
        broker
            .declare_queue_bound(queue, &exchange)
            .await
            .expect("queue");
    }
    let started = Instant::now();
    let mut cdc = CdcJob::start(&replica, &exchange, Some(0))
        .await
        .expect("CDC job");
    let fill_limit = Duration::from_secs(120) + Duration::from_millis(out.events / 2);
    loop {
        let mut depths = Vec::with_capacity(queues.len());
        for queue in &queues {
            depths.push(broker.queue_depth(queue).await.expect("depth"));
        }
        if depths.iter().all(|&d| u64::from(d) >= out.events) {
            break;
        }
        cdc.check_alive().expect("CDC job alive");
        assert!(
            started.elapsed() < fill_limit,
            "CDC fill: {depths:?} of {} after {fill_limit:?}",
            out.events
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out.cdc_fill_s = started.elapsed().as_secs_f64();
    cdc.stop().await;
    replica.stop().await;
    broker
        .delete_cdc_queues(cluster)
        .await
        .expect("delete CDC progress queue");

    // The anchor and ours in turn, on the same messages.
    for (i, queue) in queues.iter().enumerate() {
        if i.is_multiple_of(2) {
            let (drain, json_bytes) = plain_drain(&testbed::amqp_url(), queue, out.events).await;
            assert!(
                i == 0 || json_bytes == out.json_bytes,
                "every queue holds the same messages"
            );
            out.json_bytes = json_bytes;
            out.drains_s.push(drain.as_secs_f64());
        } else {
            let export = export_drain(&lakes[i / 2], queue, cluster, out.events).await;
            assert!(
                i == 1 || export.2["events_committed"] == out.export_report["events_committed"],
                "every export commits the same events"
            );
            out.exports_s.push(export.0.as_secs_f64());
            out.export_rss = out.export_rss.max(export.1);
            if i == 1 {
                out.export_report = export.2;
            }
        }
    }
    out.drain_s = median(&out.drains_s);
    out.export_s = median(&out.exports_s);
    let (b, n) = common::dir_bytes(&lake_dir, "transfers/");
    let (ba, na) = common::dir_bytes(&lake_dir, "accounts/");
    out.lake_bytes = b + ba;
    out.lake_files = n + na;
    for queue in &queues {
        broker.delete_queue(queue).await.expect("delete queue");
    }
    for lake in &lakes[1..] {
        let _ = std::fs::remove_dir_all(lake);
    }
    broker
        .delete_exchange(&exchange)
        .await
        .expect("delete exchange");
    let _ = broker.close().await;

    // Rebuild into a fresh replica, then the anchor with the same transfer count.
    // Started as `tigerbeetle benchmark` starts its own replica: production defaults (not
    // `--development`) and TigerBeetle's default 1 GiB grid cache, not the test bed's 256 MiB.
    let options = ReplicaOptions {
        cache_grid: "1GiB".into(),
        development: false,
        ..ReplicaOptions::default()
    };
    let target = Replica::start_with(cluster, &options)
        .await
        .expect("target replica");
    let started = Instant::now();
    let rebuilt = run_json(
        Command::new(common::ledgerlake_bin()).args([
            "rebuild",
            "--lake",
            &lake_dir.display().to_string(),
            "--addresses",
            target.address(),
            "--cluster-id",
            &cluster.to_string(),
            "--until",
            "latest",
            "--format",
            "json",
        ]),
        Duration::from_secs(300) + Duration::from_millis(out.events),
    )
    .await;
    out.rebuild_wall_s = started.elapsed().as_secs_f64();
    target.stop().await;
    let run = &rebuilt["run"];
    out.rebuild_accounts = decimal(&run["accounts_created"]).expect("accounts_created");
    out.rebuild_transfers = decimal(&run["transfers_created"]).expect("transfers_created");
    out.rebuild_replay_s = run["replay_s"].as_f64().expect("replay_s");
    out.rebuild_plan_s = run["plan_s"].as_f64().expect("plan_s");
    out.rebuild_events_per_s = run["events_per_second"]
        .as_f64()
        .expect("events_per_second");
    let (tps, text) =
        tigerbeetle_benchmark(work, out.rebuild_transfers, out.rebuild_accounts).await;
    out.tb_benchmark_tps = tps;
    out.tb_benchmark_output = text;
    out
}

/// `(st_size, allocated bytes)` of a file.
fn file_sizes(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or((0, 0), |m| (m.len(), m.blocks() * 512))
}

/// A plain consumer: prefetch like the exporter, acknowledges (multiple) every
/// [`DRAIN_ACK_EVERY`] deliveries and the last one, does nothing else. Returns the time from
/// connecting to the last acknowledgement, and the body bytes received.
async fn plain_drain(url: &str, queue: &str, expected: u64) -> (Duration, u64) {
    let started = Instant::now();
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("AMQP connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .basic_qos(DRAIN_PREFETCH, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "ledgerlake-bench-drain".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let (mut count, mut bytes) = (0u64, 0u64);
    while count < expected {
        let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("a delivery within 30 s")
            .expect("the consumer is open")
            .expect("a delivery");
        count += 1;
        bytes += delivery.data.len() as u64;
        if count % DRAIN_ACK_EVERY == 0 || count == expected {
            channel
                .basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true })
                .await
                .expect("ack");
        }
    }
    let elapsed = started.elapsed();
    let _ = channel.close(200, "done".into()).await;
    let _ = connection.close(200, "done".into()).await;
    (elapsed, bytes)
}

/// Watches a lake's `transfers/` log for new commits and a process's peak RSS: a data file's
/// first-seen time is when the commit that adds it appeared (the commit point), not when the file
/// was written.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<PathBuf, u64>>>,
    rss: Arc<Mutex<u64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(lake: &Path, pid: u32) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let rss = Arc::new(Mutex::new(0));
        let (s, m, r, dir) = (
            stop.clone(),
            seen.clone(),
            rss.clone(),
            lake.join("transfers"),
        );
        let thread = std::thread::spawn(move || {
            let mut read_commits = std::collections::HashSet::new();
            while !s.load(Ordering::Relaxed) {
                if let Some(v) = common::peak_rss_bytes(pid) {
                    *r.lock().expect("rss lock") = v;
                }
                let now = common::now_ns();
                let mut added = Vec::new();
                if let Ok(entries) = std::fs::read_dir(dir.join("_delta_log")) {
                    for commit in entries.flatten().map(|e| e.path()) {
                        if commit.extension().is_none_or(|e| e != "json")
                            || !read_commits.insert(commit.clone())
                        {
                            continue;
                        }
                        let text = std::fs::read_to_string(&commit).unwrap_or_default();
                        for line in text.lines() {
                            let Ok(action) = serde_json::from_str::<serde_json::Value>(line) else {
                                continue;
                            };
                            if let Some(path) = action["add"]["path"].as_str() {
                                added.push(dir.join(path));
                            }
                        }
                    }
                }
                let mut map = m.lock().expect("seen lock");
                for f in added {
                    map.entry(f).or_insert(now);
                }
                drop(map);
                std::thread::sleep(LAKE_POLL);
            }
        });
        Watcher {
            stop,
            seen,
            rss,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (HashMap<PathBuf, u64>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let seen = std::mem::take(&mut *self.seen.lock().expect("seen lock"));
        let rss = *self.rss.lock().expect("rss lock");
        (seen, rss)
    }
}

fn export_command(lake: &Path, queue: &str, cluster: u128) -> Command {
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
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    c
}

/// `ledgerlake export --until-idle` on a pre-filled queue, default settings. Returns the time from
/// spawning to the last commit (first seen in the lake), the peak RSS and the exporter's report.
async fn export_drain(
    lake: &Path,
    queue: &str,
    cluster: u128,
    expected: u64,
) -> (Duration, u64, serde_json::Value) {
    let idle = Duration::from_secs(3);
    let started_ns = common::now_ns();
    let mut command = export_command(lake, queue, cluster);
    command.args(["--until-idle", "3s"]);
    let child = command.spawn().expect("spawn ledgerlake export");
    let watcher = Watcher::start(lake, child.id().expect("pid"));
    let limit = Duration::from_secs(120) + Duration::from_millis(expected / 2) + idle;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("export finishes in time")
        .expect("export output");
    let (seen, rss) = watcher.finish();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // `LEDGERLAKE_LOG=debug` logs every seal and commit; this keeps the log for a look.
    // Written to that path with the lake's name appended.
    if let Some(path) = std::env::var_os("LEDGERLAKE_BENCH_EXPORT_LOG") {
        let mut path = path;
        path.push(format!(
            ".{}",
            lake.file_name().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(&path, stderr.as_bytes()).expect("write the export log");
    }
    assert!(output.status.success(), "export failed: {stderr}");
    let report: serde_json::Value = stderr
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the export report on stderr");
    assert_eq!(
        decimal(&report["events_committed"]),
        Some(expected),
        "export report {report}"
    );
    let last_ns = seen.values().copied().max().expect("files in the lake");
    (Duration::from_nanos(last_ns - started_ns), rss, report)
}

/// A u64 of ledgerlake's JSON output, which writes every u64 as a decimal string.
fn decimal(value: &serde_json::Value) -> Option<u64> {
    value.as_str()?.parse().ok()
}

/// Runs a command to completion within `limit` and parses its stdout as JSON.
async fn run_json(command: &mut Command, limit: Duration) -> serde_json::Value {
    command.stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(limit, command.output())
        .await
        .expect("command finishes in time")
        .expect("command runs");
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// `tigerbeetle benchmark` in its self-contained mode (it formats and starts its own replica):
/// the `load accepted = N tx/s` figure, and the output.
async fn tigerbeetle_benchmark(work: &Path, transfers: u64, accounts: u64) -> (f64, String) {
    let dir = work.join(format!("tb-benchmark-{transfers}"));
    std::fs::create_dir_all(&dir).expect("benchmark dir");
    let output = tokio::time::timeout(
        Duration::from_secs(300) + Duration::from_millis(transfers / 2),
        Command::new(testbed::tigerbeetle_binary().expect("LEDGERLAKE_TIGERBEETLE"))
            .args([
                "benchmark".to_string(),
                format!("--transfer-count={transfers}"),
                format!("--account-count={}", accounts.max(2)),
                format!("--transfer-batch-count={BATCH}"),
            ])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("tigerbeetle benchmark finishes in time")
    .expect("tigerbeetle benchmark runs");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "tigerbeetle benchmark failed:\n{text}"
    );
    let tps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("load accepted = "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no `load accepted` line in:\n{text}"));
    let summary: String = text
        .lines()
        .filter(|l| l.contains("batch") || l.contains("load accepted"))
        .take(6)
        .collect::<Vec<_>>()
        .join("\n");
    (tps, summary)
}

// ---------------------------------------------------------------------------------------------
// Lag under a steady publish rate.

struct Lag {
    rate_per_s: u64,
    duration_s: f64,
    events: usize,
    lake_p50: f64,
    lake_p99: f64,
    lake_max: f64,
    plain_p50: f64,
    plain_p99: f64,
    segments: usize,
    export_rss: u64,
}

impl Lag {
    fn skipped() -> Lag {
        Lag {
            rate_per_s: 0,
            duration_s: 0.0,
            events: 0,
            lake_p50: f64::NAN,
            lake_p99: f64::NAN,
            lake_max: f64::NAN,
            plain_p50: f64::NAN,
            plain_p99: f64::NAN,
            segments: 0,
            export_rss: 0,
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "rate_per_s": self.rate_per_s,
            "duration_s": self.duration_s,
            "events": self.events,
            "lake_lag_p50_s": self.lake_p50,
            "lake_lag_p99_s": self.lake_p99,
            "lake_lag_max_s": self.lake_max,
            "plain_consumer_lag_p50_s": self.plain_p50,
            "plain_consumer_lag_p99_s": self.plain_p99,
            "segments": self.segments,
            "export_peak_rss_bytes": self.export_rss,
            "lake_poll_ms": LAKE_POLL.as_millis() as u64,
        })
    }
}

/// A fresh replica with the CDC job running (default options) into an exchange bound to two
/// queues: `ledgerlake export` (default options) consumes one, a plain consumer that records
/// arrival times the other. A paced client submits single-phase transfers at `rate` per second
/// (a request every 100 ms) for `duration`. Lag = commit (or arrival) time − event timestamp.
async fn lag(work: &Path, rate: u64, duration: Duration, export_args: &[&str]) -> Lag {
    const ACCOUNTS: u128 = 1000;
    let cluster = testbed::random_cluster_id();
    let broker = Broker::connect().await.expect("RabbitMQ");
    let exchange = testbed::unique_name("bench-lag");
    let queue_export = testbed::unique_name("bench-lag-export");
    let queue_plain = testbed::unique_name("bench-lag-plain");
    let lake_dir = work.join("lake-lag");
    let _ = std::fs::remove_dir_all(&lake_dir);
    broker.declare_exchange(&exchange).await.expect("exchange");
    broker
        .declare_queue_bound(&queue_export, &exchange)
        .await
        .expect("queue");
    broker
        .declare_queue_bound(&queue_plain, &exchange)
        .await
        .expect("queue");

    let replica = Replica::start(cluster).await.expect("replica");
    let client = replica.client().expect("client");
    let accounts: Vec<Account> = (1..=ACCOUNTS).map(|id| Account::new(id, 1, 1)).collect();
    client.create_accounts(accounts).await.expect("accounts");
    let mut cdc = CdcJob::start(&replica, &exchange, Some(0))
        .await
        .expect("CDC job");

    let child = export_command(&lake_dir, &queue_export, cluster)
        .args(export_args)
        .spawn()
        .expect("spawn ledgerlake export");
    let pid = child.id().expect("pid");
    let watcher = Watcher::start(&lake_dir, pid);

    // The plain consumer records when each event timestamp arrived.
    let arrivals: Arc<Mutex<Vec<(u64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let plain = {
        let arrivals = arrivals.clone();
        let queue = queue_plain.clone();
        tokio::spawn(async move {
            let connection =
                Connection::connect(&testbed::amqp_url(), ConnectionProperties::default())
                    .await
                    .expect("AMQP connect");
            let channel = connection.create_channel().await.expect("channel");
            channel
                .basic_qos(DRAIN_PREFETCH, BasicQosOptions::default())
                .await
                .expect("qos");
            let mut consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    "ledgerlake-bench-lag".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consume");
            while let Some(Ok(delivery)) = consumer.next().await {
                let at = common::now_ns();
                if let Ok(event) = ledgerlake::cdc::decode(&delivery.data) {
                    arrivals
                        .lock()
                        .expect("arrivals")
                        .push((event.timestamp, at));
                }
                let _ = channel
                    .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                    .await;
            }
        })
    };

    // Steady publishing: a request every 100 ms.
    let per_tick = (rate / 10).max(1) as usize;
    let ticks = (duration.as_millis() / 100) as u64;
    let mut next_id: u128 = 1;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    for tick in 0..ticks {
        interval.tick().await;
        let batch: Vec<Transfer> = (0..per_tick)
            .map(|i| {
                let id = next_id + i as u128;
                let dr = 1 + (id * 7919) % ACCOUNTS;
                let cr = 1 + (dr % ACCOUNTS);
                Transfer::new(id)
                    .with_debit_account_id(dr)
                    .with_credit_account_id(cr)
                    .with_amount(1 + (id % 1000))
                    .with_ledger(1)
                    .with_code(1)
            })
            .collect();
        next_id += per_tick as u128;
        client
            .create_transfers(batch)
            .await
            .unwrap_or_else(|e| panic!("tick {tick}: {e}"));
    }
    let duration_s = started.elapsed().as_secs_f64();
    let events = (next_id - 1) as usize;

    // Wait until the lake and the plain consumer hold every event (bounded), then stop.
    let lake = Lake::open(&lake_dir.display().to_string())
        .await
        .expect("lake");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut committed = BTreeMap::new();
    loop {
        let segments = lake.list_segments().await.expect("segments");
        let mut total = 0;
        for s in &segments {
            if !committed.contains_key(&s.transfers_path) {
                let rows = lake.read_events(s).await.expect("segment");
                committed.insert(
                    s.transfers_path.clone(),
                    rows.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
                );
            }
            total += committed[&s.transfers_path].len();
        }
        let plain_n = arrivals.lock().expect("arrivals").len();
        if total >= events && plain_n >= events {
            break;
        }
        cdc.check_alive().expect("CDC job alive");
        assert!(
            Instant::now() < deadline,
            "lag run: lake {total}, plain {plain_n} of {events}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await;
    let (seen, rss) = watcher.finish();
    plain.abort();
    cdc.stop().await;
    replica.stop().await;
    for q in [&queue_export, &queue_plain] {
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

    let mut lake_lags = Vec::with_capacity(events);
    for (path, timestamps) in &committed {
        let file = lake_dir.join(path.as_ref());
        let at = *seen
            .get(&file)
            .unwrap_or_else(|| panic!("{} was never seen", file.display()));
        lake_lags.extend(timestamps.iter().map(|&t| (at as f64 - t as f64) / 1e9));
    }
    let mut plain_lags: Vec<f64> = arrivals
        .lock()
        .expect("arrivals")
        .iter()
        .map(|&(t, at)| (at as f64 - t as f64) / 1e9)
        .collect();
    lake_lags.sort_by(f64::total_cmp);
    plain_lags.sort_by(f64::total_cmp);
    let _ = std::fs::remove_dir_all(&lake_dir);
    Lag {
        rate_per_s: rate,
        duration_s,
        events,
        lake_p50: common::percentile(&lake_lags, 50.0),
        lake_p99: common::percentile(&lake_lags, 99.0),
        lake_max: lake_lags.last().copied().unwrap_or(f64::NAN),
        plain_p50: common::percentile(&plain_lags, 50.0),
        plain_p99: common::percentile(&plain_lags, 99.0),
        segments: committed.len(),
        export_rss: rss,
    }
}
