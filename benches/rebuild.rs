//! Rebuild next to its ceiling, in the same run: on each workload shape, `ledgerlake rebuild`
//! (the release binary, a fresh replica) and a bare client of the same crate that sends the very
//! same imported accounts and transfers, pre-built in memory, in batches of 8,189 with one request
//! in flight (another fresh replica, its session registered before the clock starts): the fastest
//! any replay could go on that cluster; and the same requests without `imported` (flag cleared,
//! timestamps left to the cluster), which shows what TigerBeetle's import path costs. On the
//! single-phase shape of `tigerbeetle benchmark`, that benchmark too; and the same lake rebuilt
//! from `s3://` (an `s3s-fs` server over a copy of the lake) next to local disk.
//!
//! Shapes (lakes written directly, so the numbers are of the replay alone):
//! - `benchmark`: `--accounts` accounts, `--transfers` single-phase transfers between random
//!   pairs, as `tigerbeetle benchmark` makes;
//! - `mixed`: the same accounts, and in every 10 events a linked chain of three, a pending
//!   transfer and its post, and five single-phase transfers.
//!
//! `cargo bench --bench rebuild -- --transfers 300000 --accounts 10000 [--shape benchmark|mixed]
//! [--out FILE]` (both shapes by default)
//! (`LEDGERLAKE_BIN` or `target/release/ledgerlake`, `LEDGERLAKE_TIGERBEETLE`, and `s3s-fs` from
//! `LEDGERLAKE_S3S_FS` or `~/.cargo/bin` for the S3 row; without it the row is skipped).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Args;
use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::lake::{AccountRecord, Lake, Segment};
use ledgerlake::rebuild::plan::{Batch, Until};
use ledgerlake::rebuild::{self, RebuildOptions};
use ledgerlake::testbed::{self, Replica, ReplicaOptions};
use serde_json::json;
use tigerbeetle_unofficial as tbc;
use tokio::process::Command;

/// Events per lake segment: the exporter's default `--segment-events-max`.
const SEGMENT_EVENTS: usize = 32_768;
const BATCH: usize = ledgerlake::tb::limits::BATCH_EVENTS_MAX;
const BASE: u64 = 1_760_000_000_000_000_000;
const S3_ACCESS_KEY: &str = "ledgerlake-bench";
const S3_SECRET_KEY: &str = "ledgerlake-bench-secret";
const S3_BUCKET: &str = "ledgers";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Benchmark,
    Mixed,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let transfers: u64 = args
        .get("transfers")
        .map_or(300_000, |v| v.parse().expect("--transfers N"));
    let accounts: u128 = args
        .get("accounts")
        .map_or(10_000, |v| v.parse().expect("--accounts N"));
    let shapes: &[Shape] = match args.get("shape").unwrap_or("both") {
        "both" => &[Shape::Benchmark, Shape::Mixed],
        "benchmark" => &[Shape::Benchmark],
        "mixed" => &[Shape::Mixed],
        other => panic!("--shape {other}: expected benchmark, mixed or both"),
    };
    let mut results = Vec::new();
    for &shape in shapes {
        let cluster_id = testbed::random_cluster_id();
        let dir = args
            .work
            .join(format!("rebuild-bench-{shape:?}-{cluster_id}"));
        std::fs::create_dir_all(&dir).expect("work dir");
        let lake = write_lake(&dir, cluster_id, shape, accounts, transfers).await;
        let rebuilt = cli_rebuild(&lake, cluster_id, &[]).await;
        let ceiling = bare_client(&lake, cluster_id, true).await;
        // The same requests without `imported` (flag cleared, timestamp 0: the cluster assigns
        // it): what TigerBeetle's import path costs on these events.
        let not_imported = bare_client(&lake, cluster_id, false).await;
        let mut row = json!({
            "shape": format!("{shape:?}").to_lowercase(),
            "accounts": accounts as u64,
            "transfers": transfers,
            "rebuild_events_per_s": rebuilt.0,
            "rebuild_report": rebuilt.1,
            "ceiling_events_per_s": ceiling,
            "rebuild_over_ceiling": rebuilt.0 / ceiling,
            "bare_client_not_imported_events_per_s": not_imported,
            "ceiling_over_not_imported": ceiling / not_imported,
        });
        if shape == Shape::Benchmark {
            let tb = tigerbeetle_benchmark(&dir, transfers, accounts as u64).await;
            row["tigerbeetle_benchmark_tx_per_s"] = json!(tb);
            // The benchmark counts transfers only; the rebuild's events include the accounts.
            let rebuild_tps =
                transfers as f64 / rebuilt.1["run"]["replay_s"].as_f64().unwrap_or(f64::NAN);
            row["rebuild_transfers_per_s"] = json!(rebuild_tps);
            row["rebuild_over_tigerbeetle_benchmark"] = json!(rebuild_tps / tb);
            // Events (the accounts are 3 % of them at the default sizes) against transfers.
            row["not_imported_over_tigerbeetle_benchmark"] = json!(not_imported / tb);
            if let Some(s3) = S3Server::start(&dir).await {
                let key = "lake";
                copy_dir(Path::new(&lake), &s3.root.join(S3_BUCKET).join(key));
                let url = format!("s3://{S3_BUCKET}/{key}");
                let from_s3 = cli_rebuild(&url, cluster_id, &s3.env()).await;
                row["rebuild_from_s3_events_per_s"] = json!(from_s3.0);
                row["s3_over_local"] = json!(from_s3.0 / rebuilt.0);
            }
        }
        eprintln!("{row:#}");
        results.push(row);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let out = json!({ "rebuild": results });
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_vec_pretty(&out).expect("JSON")).expect("--out");
    }
    println!("{out:#}");
}

/// As `tigerbeetle benchmark` starts its own replica: production defaults (no `--development`,
/// whose defaults drop the account and transfer caches and most compaction memory), TigerBeetle's
/// default 1 GiB grid cache.
fn replica_options() -> ReplicaOptions {
    ReplicaOptions {
        cache_grid: "1GiB".into(),
        development: false,
        ..ReplicaOptions::default()
    }
}

/// A tiny deterministic generator (xorshift), so every run writes the same lake.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Default, Clone, Copy)]
struct Balances([u128; 4]);

fn fields(id: u128, b: &Balances) -> AccountFields {
    AccountFields {
        id,
        debits_pending: b.0[0],
        debits_posted: b.0[1],
        credits_pending: b.0[2],
        credits_posted: b.0[3],
        code: 1,
        timestamp: BASE + id as u64,
        ..AccountFields::default()
    }
}

/// Writes the shape's lake; returns its location.
async fn write_lake(
    dir: &Path,
    cluster_id: u128,
    shape: Shape,
    accounts: u128,
    transfers: u64,
) -> String {
    let location = dir.join("lake").to_string_lossy().into_owned();
    let lake = Lake::open(&location).await.expect("lake");
    lake.bind_cluster(cluster_id).await.expect("bind");
    let mut rng = Rng(0x5eed_0011);
    let mut balances = vec![Balances::default(); accounts as usize + 1];
    let mut seen = vec![false; accounts as usize + 1];
    let mut pending: Option<(u128, u128, u128)> = None;
    let mut events = Vec::with_capacity(SEGMENT_EVENTS);
    for i in 0..transfers {
        let timestamp = BASE + accounts as u64 + 1_000 + i;
        let id = u128::from(i) + 1;
        let debit = 1 + u128::from(rng.next()) % accounts;
        let credit = 1 + (debit + u128::from(rng.next()) % (accounts - 1)) % accounts;
        let (mut event_type, mut flags, mut pending_id, amount) =
            (EventType::SinglePhase, 0u16, 0u128, 1 + u128::from(i % 100));
        let (mut d, mut c) = (debit, credit);
        if shape == Shape::Mixed {
            match i % 10 {
                3 | 4 => flags = 1, // linked
                7 => {
                    (event_type, flags) = (EventType::TwoPhasePending, 1 << 1);
                    pending = Some((id, d, c));
                }
                8 => {
                    let (p, pd, pc) = pending.take().expect("a pending transfer first");
                    (event_type, flags, pending_id, d, c) =
                        (EventType::TwoPhasePosted, 1 << 2, p, pd, pc);
                }
                _ => {}
            }
        }
        let amount = if event_type == EventType::TwoPhasePosted {
            1 + u128::from((i - 1) % 100)
        } else {
            amount
        };
        let (di, ci) = (d as usize, c as usize);
        match event_type {
            EventType::TwoPhasePending => {
                balances[di].0[0] += amount;
                balances[ci].0[2] += amount;
            }
            EventType::TwoPhasePosted => {
                balances[di].0[0] -= amount;
                balances[ci].0[2] -= amount;
                balances[di].0[1] += amount;
                balances[ci].0[3] += amount;
            }
            _ => {
                balances[di].0[1] += amount;
                balances[ci].0[3] += amount;
            }
        }
        events.push(Event {
            timestamp,
            event_type,
            ledger: 1,
            transfer: TransferFields {
                id,
                amount,
                pending_id,
                code: 1,
                flags,
                timestamp,
                ..TransferFields::default()
            },
            debit_account: fields(d, &balances[di]),
            credit_account: fields(c, &balances[ci]),
        });
        if events.len() == SEGMENT_EVENTS || i + 1 == transfers {
            let mut new_accounts = Vec::new();
            for e in &events {
                for a in [&e.debit_account, &e.credit_account] {
                    if !seen[a.id as usize] {
                        seen[a.id as usize] = true;
                        new_accounts.push(AccountRecord::from_event_account(a, 1, e.timestamp));
                    }
                }
            }
            let segment = Segment {
                events: std::mem::take(&mut events),
                new_accounts,
            };
            lake.commit(&segment, cluster_id).await.expect("commit");
        }
    }
    location
}

/// `ledgerlake rebuild` (the release binary) into a fresh replica: (accounts and transfers per
/// second of replay, the JSON report).
async fn cli_rebuild(
    lake: &str,
    cluster_id: u128,
    env: &[(&str, String)],
) -> (f64, serde_json::Value) {
    let target = Replica::start_with(cluster_id, &replica_options())
        .await
        .expect("target replica");
    let output = Command::new(common::ledgerlake_bin())
        .args([
            "rebuild",
            "--lake",
            lake,
            "--addresses",
            target.address(),
            "--cluster-id",
            &cluster_id.to_string(),
            "--until",
            "latest",
            "--format",
            "json",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LEDGERLAKE_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("ledgerlake rebuild runs");
    assert!(
        output.status.success(),
        "rebuild failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    target.stop().await;
    (
        report["run"]["events_per_second"]
            .as_f64()
            .expect("events_per_second"),
        report,
    )
}

/// The ceiling: the rebuild's own batches, built in memory before the clock starts, sent by a
/// bare client one request at a time into a fresh replica. Accounts and transfers per second.
async fn bare_client(lake_location: &str, cluster_id: u128, imported: bool) -> f64 {
    let lake = Lake::open(lake_location).await.expect("lake");
    let options = RebuildOptions {
        lake: lake_location.to_string(),
        addresses: None,
        cluster_id,
        lake_cluster_id: None,
        until: Until::Latest,
        ledgers: None,
        dry_run: true,
        batch_events_max: BATCH,
        reply_timeout: Duration::from_secs(60),
    };
    let prepared = rebuild::prepare(&lake, &options, [])
        .await
        .expect("prepare");
    let mut builder = prepared.builder(&options, Some(Default::default()));
    for seg in &prepared.segments {
        let rows = lake
            .read_events_of_cluster(seg, cluster_id)
            .await
            .expect("segment");
        builder.push_rows(&rows).expect("rows");
    }
    builder.finish_rows().expect("finish");
    enum Raw {
        Accounts(Vec<tbc::Account>),
        Transfers(Vec<tbc::Transfer>),
    }
    let mut requests = Vec::new();
    let mut events = 0usize;
    while let Some(batch) = builder.pop_batch() {
        events += batch.len();
        requests.push(match batch {
            Batch::Accounts(a) => Raw::Accounts(
                a.iter()
                    .map(|a| {
                        let mut a = tbc::Account::from(a);
                        if !imported {
                            a.set_flags(a.flags() - tbc::account::Flags::IMPORTED);
                            a.as_raw_mut().timestamp = 0;
                        }
                        a
                    })
                    .collect(),
            ),
            Batch::Transfers(t) => Raw::Transfers(
                t.iter()
                    .map(|t| {
                        let mut t = tbc::Transfer::from(&t.transfer);
                        if !imported {
                            t.set_flags(t.flags() - tbc::transfer::Flags::IMPORTED);
                            t.as_raw_mut().timestamp = 0;
                        }
                        t
                    })
                    .collect(),
            ),
        });
    }
    let target = Replica::start_with(cluster_id, &replica_options())
        .await
        .expect("target replica");
    let client = target.client().expect("client");
    // The client connects and registers its session on its first request: done before the
    // clock starts, as the rebuild's inspection of the target does before its replay.
    let none = client
        .lookup_accounts(vec![u128::MAX - 1])
        .await
        .expect("a first request");
    assert!(none.is_empty(), "a fresh replica holds no account");
    let start = Instant::now();
    for request in requests {
        match request {
            Raw::Accounts(a) => client.create_accounts(a).await.expect("accounts created"),
            Raw::Transfers(t) => client.create_transfers(t).await.expect("transfers created"),
        }
    }
    let elapsed = start.elapsed();
    drop(client);
    target.stop().await;
    events as f64 / elapsed.as_secs_f64()
}

/// `tigerbeetle benchmark` (self-contained): its `load accepted` transfers per second.
async fn tigerbeetle_benchmark(dir: &Path, transfers: u64, accounts: u64) -> f64 {
    let dir = dir.join("tb-benchmark");
    std::fs::create_dir_all(&dir).expect("benchmark dir");
    let output = Command::new(testbed::tigerbeetle_binary().expect("LEDGERLAKE_TIGERBEETLE"))
        .args([
            "benchmark".to_string(),
            format!("--transfer-count={transfers}"),
            format!("--account-count={accounts}"),
            format!("--transfer-batch-count={BATCH}"),
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("tigerbeetle benchmark runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "tigerbeetle benchmark failed:\n{text}"
    );
    text.lines()
        .find_map(|l| l.trim().strip_prefix("load accepted = "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no `load accepted` line in:\n{text}"))
}

/// An `s3s-fs` server over a directory; `None` if the binary is not installed.
struct S3Server {
    root: PathBuf,
    port: u16,
    _process: tokio::process::Child,
}

impl S3Server {
    async fn start(dir: &Path) -> Option<S3Server> {
        let binary = std::env::var_os("LEDGERLAKE_S3S_FS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("CARGO_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
                    });
                home.join("bin").join("s3s-fs")
            });
        if !binary.is_file() {
            eprintln!("{} not installed: no S3 row", binary.display());
            return None;
        }
        let root = dir.join("s3");
        std::fs::create_dir_all(root.join(S3_BUCKET)).expect("bucket dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let process = Command::new(&binary)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                S3_ACCESS_KEY,
                "--secret-key",
                S3_SECRET_KEY,
            ])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        testbed::wait_until("s3s-fs to listen", Duration::from_secs(20), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await
        .ok()?;
        Some(S3Server {
            root,
            port,
            _process: process,
        })
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_string()),
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ALLOW_HTTP", "true".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
        ]
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("copy target");
    for entry in std::fs::read_dir(from).expect("read lake dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
