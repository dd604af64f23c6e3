//! The `rss` part of the `open` bench: the release exporter's peak RSS on a lake of 10^7
//! accounts (see the bench's header).

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::lake::{AccountRecord, Lake, Segment};
use ledgerlake::testbed::{self, Broker};
use serde_json::json;
use tokio::process::Command;

use super::common::{self, Args, Better, Report, Row, Scale};

const CLUSTER: u128 = 10;
/// 2026-02-01T00:00:00Z: the accounts' creation timestamps start here.
const CREATED_NS: u64 = 1_769_904_000 * 1_000_000_000;
/// 2026-02-02T00:00:00Z: the events start here (all within one UTC day).
const EVENTS_NS: u64 = CREATED_NS + 86_400 * 1_000_000_000;
const EVENTS_PER_SEGMENT: u64 = 32_768;
const SWEEP_PAGE: u64 = 8_189;
/// Events the exporter consumes.
const EVENTS_CONSUMED: u64 = 20_000;
const RSS_BOUND_BYTES: f64 = 256.0 * 1024.0 * 1024.0;

/// Account `n` (from 0) as every record and event shows it.
fn fields(n: u64) -> AccountFields {
    AccountFields {
        id: u128::from(n) + 1,
        code: 1 + (n % 7) as u16,
        user_data_64: n,
        timestamp: CREATED_NS + n,
        ..Default::default()
    }
}

fn event(i: u64, debit: u64, credit: u64) -> Event {
    let timestamp = EVENTS_NS + i * 1_000;
    Event {
        timestamp,
        event_type: EventType::SinglePhase,
        ledger: 1,
        transfer: TransferFields {
            id: u128::from(i) + 1,
            amount: 1,
            timestamp,
            ..Default::default()
        },
        debit_account: AccountFields {
            debits_posted: 1,
            ..fields(debit)
        },
        credit_account: AccountFields {
            credits_posted: 1,
            ..fields(credit)
        },
    }
}

/// Writes the lake: accounts `0..half` in segments (event `i` uses accounts `2i` and
/// `2i + 1`), accounts `half..total` in sweep pages. Returns the events committed.
async fn fill(lake: &Lake, total: u64) -> u64 {
    let half = total / 2;
    let events = half / 2;
    let mut i = 0;
    while i < events {
        let end = (i + EVENTS_PER_SEGMENT).min(events);
        let events: Vec<Event> = (i..end).map(|i| event(i, 2 * i, 2 * i + 1)).collect();
        let new_accounts = events
            .iter()
            .flat_map(|e| {
                [&e.debit_account, &e.credit_account]
                    .map(|a| AccountRecord::from_event_account(a, e.ledger, e.timestamp))
            })
            .collect();
        lake.commit(
            &Segment {
                events,
                new_accounts,
            },
            CLUSTER,
        )
        .await
        .expect("segment");
        i = end;
    }
    let mut n = 2 * events;
    while n < total {
        let end = (n + SWEEP_PAGE).min(total);
        let page: Vec<AccountRecord> = (n..end)
            .map(|n| {
                let f = fields(n);
                AccountRecord::from_event_account(&f, 1, f.timestamp)
            })
            .collect();
        let through = page[page.len() - 1].timestamp;
        lake.commit_swept(&page, through, CLUSTER)
            .await
            .expect("sweep page");
        n = end;
    }
    events
}

/// Bytes of this process's resident set (VmRSS).
fn own_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// What the previous exporter kept: every account id of the lake in a `HashSet<u128>`.
fn id_set_bytes(total: u64) -> u64 {
    let before = own_rss_bytes();
    let set: HashSet<u128> = (0..total).map(|n| u128::from(n) + 1).collect();
    let after = own_rss_bytes();
    assert_eq!(set.len() as u64, total);
    drop(set);
    after.saturating_sub(before)
}

/// Polls a process's VmHWM until stopped.
fn watch_rss(
    pid: u32,
    stop: Arc<AtomicBool>,
    peak: Arc<Mutex<u64>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(v) = common::peak_rss_bytes(pid) {
                *peak.lock().expect("rss lock") = v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

pub async fn run(args: &Args, report: &mut Report) {
    let total: u64 = match (args.get("accounts"), args.scale) {
        (Some(n), _) => n.parse().expect("--accounts N"),
        (None, Scale::Small) => 1_000_000,
        (None, Scale::Full) => 10_000_000,
    };
    let dir = args.work.join("open-rss-lake");
    let _ = std::fs::remove_dir_all(&dir);
    let lake = Lake::open(&dir.display().to_string()).await.expect("lake");
    let started = Instant::now();
    let committed = fill(&lake, total).await;
    let fill_s = started.elapsed().as_secs_f64();
    let (lake_bytes, lake_files) = common::dir_bytes(&dir, "");
    eprintln!(
        "bench open rss: {total} accounts ({committed} events) written in {fill_s:.0} s, \
         {lake_files} files, {} MiB",
        lake_bytes >> 20
    );
    let set_bytes = id_set_bytes(total);

    // 20,000 events after the lake's last, between accounts recorded by segments and by sweeps.
    let broker = Broker::connect()
        .await
        .expect("broker (run scripts/setup.sh)");
    let exchange = testbed::unique_name("ledgerlake-bench-rss");
    let queue = testbed::unique_name("ledgerlake-bench-rss");
    broker.declare_exchange(&exchange).await.expect("exchange");
    broker
        .declare_queue_bound(&queue, &exchange)
        .await
        .expect("queue");
    for k in 0..EVENTS_CONSUMED {
        let i = committed + k;
        let debit = (k * 7_919) % total;
        let credit = (debit + total / 2 + 1) % total;
        let body = ledgerlake::cdc::encode(&event(i, debit, credit));
        broker
            .publish_raw(&exchange, body.as_bytes(), Default::default())
            .await
            .expect("publish");
    }
    let child = Command::new(common::ledgerlake_bin())
        .args([
            "export",
            "--queue",
            &queue,
            "--lake",
            &dir.display().to_string(),
            "--cluster-id",
            &CLUSTER.to_string(),
            "--until-idle",
            "3s",
        ])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ledgerlake export");
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(Mutex::new(0));
    let watcher = watch_rss(child.id().expect("pid"), stop.clone(), peak.clone());
    let export_started = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .expect("export finishes in time")
        .expect("export output");
    let export_s = export_started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let rss = *peak.lock().expect("rss lock");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "export failed: {stderr}");
    let exported: serde_json::Value = stderr
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the export report on stderr");
    assert_eq!(
        exported["events_committed"].as_str(),
        Some(EVENTS_CONSUMED.to_string().as_str()),
        "export report {exported}"
    );
    let _ = broker.delete_queue(&queue).await;
    let _ = broker.delete_exchange(&exchange).await;
    eprintln!(
        "bench open rss: export of {EVENTS_CONSUMED} events on a lake of {total} accounts: \
         peak RSS {} MiB in {export_s:.1} s (a HashSet of the ids: {} MiB)",
        rss >> 20,
        set_bytes >> 20
    );
    report.rows.push(Row {
        id: "export rss with many accounts".into(),
        what: format!(
            "VmHWM of `ledgerlake export` consuming {EVENTS_CONSUMED} events on a lake of \
             {total} accounts"
        ),
        unit: "MiB".into(),
        ours: rss as f64 / 1048576.0,
        anchor: Some(set_bytes as f64 / 1048576.0),
        anchor_what: "a HashSet<u128> of the lake's account ids (what the exporter held before)"
            .into(),
        target: Some((RSS_BOUND_BYTES / 1048576.0, false)),
        better: Better::Lower,
    });
    report.details.insert(
        "rss".into(),
        json!({"accounts": total, "events_in_lake": committed, "fill_seconds": fill_s,
               "lake_bytes": lake_bytes, "lake_files": lake_files,
               "events_consumed": EVENTS_CONSUMED, "export_seconds": export_s,
               "peak_rss_bytes": rss, "id_set_bytes": set_bytes, "report": exported}),
    );
    remove(&dir);
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
