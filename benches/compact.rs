//! Compaction over a simulated trickle (issue "Compaction, retention …", bar 1 and 2): one
//! segment per second at 5 events/s, committed through `Lake::commit` into a lake on disk, with
//! a background-style compaction pass every 60 simulated seconds (as `export
//! --compact-interval 1m` runs); then the day closes (one segment on the next date) and one more
//! pass. The anchor is the same events committed in bulk (segments of 32,768 events), in the
//! same run. Figures: data files of the day in the snapshot, bytes per event, and `verify`, a
//! DuckDB trial balance and `ledgerlake rebuild` (the release binary, into fresh TigerBeetle
//! replicas, `--rebuild-runs` each, alternating, the median reported) on the compacted day vs the
//! bulk lake. The rebuilds take the stack lock (`--stack-lock`, default
//! `/tmp/ledgerlake-stack.lock`; `none` when the caller holds it already; `--rebuild off` skips
//! them), so the rest of the bench runs without holding the stack.
//!
//! Small scale simulates 20 minutes (1,200 segments), full scale 2 hours (7,200 segments); a
//! day is 86,400 segments, and the file count of a day is extrapolated from the plan's rule (a
//! closed day is one file per 16 MiB merged, the open hour at most 12 + 300), not measured.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::day::{
    median, second, ACCOUNTS, BULK_EVENTS, CLUSTER, EVENTS_PER_SECOND, NS_PER_S, START_NS,
};
use common::{Args, Better, Report, Row, Scale};
use ledgerlake::audit::progress::NoProgress;
use ledgerlake::cdc::{Event, TransferFields};
use ledgerlake::lake::{Lake, Segment};
use ledgerlake::testbed::{Replica, ReplicaOptions};
use serde_json::json;

const RUNS: usize = 5;

/// Active files of the day and their bytes (transfers and accounts), from the snapshot.
async fn day_files(lake: &Lake, date: &str) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for s in lake.list_segments().await.expect("listing") {
        if s.date == date {
            files += 1 + u64::from(s.accounts_path.is_some());
            bytes += s.transfers_bytes + s.accounts_bytes;
        }
    }
    (files, bytes)
}

/// Median wall time of `verify` on the lake.
async fn time_verify(location: &str) -> f64 {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let lake = Lake::open(location).await.expect("lake");
        let started = Instant::now();
        let report = ledgerlake::audit::verify::verify(&lake, &NoProgress).await;
        times.push(started.elapsed().as_secs_f64());
        assert!(report.ok, "verify found problems: {:?}", report.problems);
    }
    median(times)
}

/// A trial balance (the latest posted balances of every account, summed per ledger) over the
/// snapshot's transfers files, in DuckDB: the answer and the median wall time of the query.
fn trial_balance(dir: &str, files: &[String]) -> (String, f64) {
    let list = files
        .iter()
        .map(|f| format!("'{dir}/{f}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH t AS (SELECT * FROM read_parquet([{list}])), \
         sides AS (SELECT ledger, debit_account_id AS id, timestamp, debit_account_debits_posted AS dpo, \
                   debit_account_credits_posted AS cpo FROM t \
                   UNION ALL SELECT ledger, credit_account_id, timestamp, credit_account_debits_posted, \
                   credit_account_credits_posted FROM t), \
         latest AS (SELECT ledger, id, arg_max(dpo, timestamp) AS dpo, arg_max(cpo, timestamp) AS cpo \
                    FROM sides GROUP BY ALL) \
         SELECT ledger, count(*), sum(dpo), sum(cpo) FROM latest GROUP BY ledger ORDER BY ledger;"
    );
    let mut script = String::from(".mode csv\n.headers off\n.timer on\n");
    for _ in 0..RUNS {
        script.push_str(&sql);
        script.push('\n');
    }
    let mut child = Command::new("duckdb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the DuckDB CLI (scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("script");
    let out = child.wait_with_output().expect("duckdb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut times = Vec::new();
    let mut answer = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Run Time (s): real ") {
            let real = rest.split_whitespace().next().unwrap_or("0");
            times.push(real.parse::<f64>().unwrap_or(f64::NAN));
        } else if times.is_empty() {
            answer.push_str(line);
            answer.push('\n');
        }
    }
    assert_eq!(times.len(), RUNS, "{text}");
    (answer, median(times))
}

async fn transfers_files(lake: &Lake, date: &str) -> Vec<String> {
    lake.list_segments()
        .await
        .expect("listing")
        .into_iter()
        .filter(|s| s.date == date)
        .map(|s| s.transfers_path.to_string())
        .collect()
}

/// The stack lock, held by a `flock` child until dropped (the lock is per open file, so it is
/// held by a process of its own: no new dependency, and released if this process dies).
struct StackLock(Option<Child>);

impl StackLock {
    fn take(path: &str) -> StackLock {
        if path == "none" {
            return StackLock(None);
        }
        let mut child = Command::new("flock")
            .args([path, "sh", "-c", "echo locked; exec cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("flock(1)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("flock output");
        assert_eq!(line.trim(), "locked", "flock {path}");
        StackLock(Some(child))
    }
}

impl Drop for StackLock {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// `ledgerlake rebuild` (the release binary) of the lake into a fresh replica: events (accounts
/// and transfers) per second of replay, and the run's report.
async fn rebuild(location: &str) -> (f64, serde_json::Value) {
    let options = ReplicaOptions {
        cache_grid: "1GiB".into(),
        ..ReplicaOptions::default()
    };
    let target = Replica::start_with(CLUSTER, &options)
        .await
        .expect("target replica");
    let output = tokio::process::Command::new(common::ledgerlake_bin())
        .args([
            "rebuild",
            "--lake",
            location,
            "--addresses",
            target.address(),
            "--cluster-id",
            &CLUSTER.to_string(),
            "--until",
            "latest",
            "--format",
            "json",
        ])
        .env("LEDGERLAKE_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("ledgerlake rebuild runs");
    target.stop().await;
    assert!(
        output.status.success(),
        "rebuild failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let rate = report["run"]["events_per_second"]
        .as_f64()
        .expect("events_per_second");
    (rate, report["run"].clone())
}

fn main() {
    let args = Args::parse();
    let seconds: u64 = match (args.get("seconds"), args.scale) {
        (Some(n), _) => n.parse().expect("--seconds N"),
        (None, Scale::Small) => 1_200,
        (None, Scale::Full) => 7_200,
    };
    let rebuild_runs: usize = match args.get("rebuild") {
        Some("off") => 0,
        _ => args
            .get("rebuild-runs")
            .map_or(3, |n| n.parse().expect("--rebuild-runs N")),
    };
    let stack_lock = args
        .get("stack-lock")
        .unwrap_or("/tmp/ledgerlake-stack.lock")
        .to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let work = tempfile::tempdir_in(&args.work).expect("work dir");
    let trickle = work.path().join("trickle").to_string_lossy().into_owned();
    let bulk = work.path().join("bulk").to_string_lossy().into_owned();
    let date = ledgerlake::timefmt::date_partition(START_NS);
    runtime.block_on(async {
        // The trickle: a segment a second, a compaction pass a minute.
        let lake = Lake::open(&trickle).await.expect("lake");
        let mut posted = vec![[0u128; 2]; ACCOUNTS as usize];
        let mut known = HashSet::new();
        let mut all = Vec::new();
        let started = Instant::now();
        let mut commit_s = 0.0;
        let mut compact_s = 0.0;
        let mut peak_files = 0;
        for s in 0..seconds {
            let events = second(START_NS, s, &mut posted);
            all.extend(events.iter().cloned());
            let t = Instant::now();
            lake.commit(&Segment::recording_first_seen(events, &mut known), CLUSTER).await.expect("commit");
            commit_s += t.elapsed().as_secs_f64();
            if s % 60 == 59 {
                let t = Instant::now();
                lake.compact_pass(CLUSTER, &mut |_| true).await.expect("compact");
                compact_s += t.elapsed().as_secs_f64();
                peak_files = peak_files.max(day_files(&lake, &date).await.0);
            }
        }
        let (files_open, _) = day_files(&lake, &date).await;
        // The day closes: the next segment is on the next date; one more pass.
        let next = Event {
            timestamp: START_NS + 86_400 * NS_PER_S + 5,
            ..all[all.len() - 1]
        };
        let next = Event {
            // Amount 0: the accounts' balances stay what the last event left them.
            transfer: TransferFields {
                id: 1,
                amount: 0,
                timestamp: next.timestamp,
                ..next.transfer
            },
            ..next
        };
        lake.commit(&Segment::recording_first_seen(vec![next], &mut known), CLUSTER).await.expect("commit");
        let t = Instant::now();
        lake.compact_pass(CLUSTER, &mut |_| true).await.expect("compact");
        compact_s += t.elapsed().as_secs_f64();
        let (files, bytes) = day_files(&lake, &date).await;
        let trickle_s = started.elapsed().as_secs_f64();
        let events = all.len() as u64;

        // The same events in bulk.
        let bulk_lake = Lake::open(&bulk).await.expect("lake");
        let mut known = HashSet::new();
        for chunk in all.chunks(BULK_EVENTS) {
            bulk_lake
                .commit(&Segment::recording_first_seen(chunk.to_vec(), &mut known), CLUSTER)
                .await
                .expect("commit");
        }
        let (bulk_files, bulk_bytes) = day_files(&bulk_lake, &date).await;
        let per_event = bytes as f64 / events as f64;
        let bulk_per_event = bulk_bytes as f64 / events as f64;

        // Readers: verify (before and after vacuum: it checks every compaction whose replaced
        // files are still in the store) and the trial balance.
        let verify_compacted = time_verify(&trickle).await;
        let vacuum = lake
            .vacuum(std::time::Duration::ZERO, false, ledgerlake::timefmt::now_ms() + 1)
            .await
            .expect("vacuum");
        let verify_vacuumed = time_verify(&trickle).await;
        let verify_bulk = time_verify(&bulk).await;
        let (answer, tb) = trial_balance(&trickle, &transfers_files(&lake, &date).await);
        let (bulk_answer, tb_bulk) = trial_balance(&bulk, &transfers_files(&bulk_lake, &date).await);
        assert_eq!(answer, bulk_answer, "the trial balances must agree");
        assert_eq!(lake.read_all().await.expect("read").0[..all.len()], all[..]);

        // Rebuilds of both lakes into fresh replicas, alternating, under the stack lock.
        let (mut rebuild_trickle, mut rebuild_bulk, mut rebuild_runs_json) =
            (Vec::new(), Vec::new(), Vec::new());
        if rebuild_runs > 0 {
            let _lock = StackLock::take(&stack_lock);
            for _ in 0..rebuild_runs {
                let (rate, run) = rebuild(&trickle).await;
                rebuild_trickle.push(rate);
                rebuild_runs_json.push(json!({"lake": "compacted", "run": run}));
                let (rate, run) = rebuild(&bulk).await;
                rebuild_bulk.push(rate);
                rebuild_runs_json.push(json!({"lake": "bulk", "run": run}));
            }
        }

        eprintln!(
            "bench compact: {seconds} s at {EVENTS_PER_SECOND} ev/s = {events} events in {trickle_s:.1} s \
             (commits {commit_s:.1} s, compaction {compact_s:.1} s); files of the day: {files} \
             (peak {peak_files}, {files_open} before the day closed), bulk {bulk_files}; \
             bytes/event {per_event:.1} vs bulk {bulk_per_event:.1}; verify {verify_compacted:.3} s \
             ({verify_vacuumed:.3} s after vacuuming {} files) vs {verify_bulk:.3} s; trial balance \
             {tb:.3} s vs {tb_bulk:.3} s; rebuild {:?} vs {:?} events/s",
            vacuum.deleted.len(),
            rebuild_trickle,
            rebuild_bulk,
        );
        let mut report = Report::new("compact", args.scale);
        report.row(Row {
            id: "compact bytes per event".into(),
            what: format!("bytes/event of a compacted trickle day ({seconds} one-second segments at 5 ev/s)"),
            unit: "B/event".into(),
            ours: per_event,
            anchor: Some(bulk_per_event),
            anchor_what: "the same events committed in bulk".into(),
            target: Some((1.2, true)),
            better: Better::Lower,
        });
        report.row(Row {
            id: "compact files per day".into(),
            what: "data files (transfers + accounts) of the closed day in the snapshot".into(),
            unit: "files".into(),
            ours: files as f64,
            anchor: Some(seconds as f64 * 2.0),
            anchor_what: "files without compaction".into(),
            target: Some((48.0, false)),
            better: Better::Lower,
        });
        report.row(Row {
            id: "compact peak files".into(),
            what: "data files of the open day at most, between passes".into(),
            unit: "files".into(),
            ours: peak_files as f64,
            anchor: None,
            anchor_what: String::new(),
            target: None,
            better: Better::Lower,
        });
        report.row(Row {
            id: "compact verify".into(),
            what: "verify on the compacted day, replaced files vacuumed".into(),
            unit: "s".into(),
            ours: verify_vacuumed,
            anchor: Some(verify_bulk),
            anchor_what: "verify on the bulk lake".into(),
            target: Some((1.5, true)),
            better: Better::Lower,
        });
        report.row(Row {
            id: "compact verify unvacuumed".into(),
            what: "verify on the compacted day, replaced files still in the store (each compaction re-checked)".into(),
            unit: "s".into(),
            ours: verify_compacted,
            anchor: Some(verify_bulk),
            anchor_what: "verify on the bulk lake".into(),
            target: None,
            better: Better::Lower,
        });
        report.row(Row {
            id: "compact trial balance".into(),
            what: "DuckDB trial balance on the compacted day".into(),
            unit: "s".into(),
            ours: tb,
            anchor: Some(tb_bulk),
            anchor_what: "the same on the bulk lake".into(),
            target: Some((1.5, true)),
            better: Better::Lower,
        });
        if rebuild_runs > 0 {
            report.row(Row {
                id: "compact rebuild".into(),
                what: format!(
                    "`ledgerlake rebuild` of the compacted lake into a fresh replica (median of {rebuild_runs})"
                ),
                unit: "events/s".into(),
                ours: median(rebuild_trickle.clone()),
                anchor: Some(median(rebuild_bulk.clone())),
                anchor_what: "the same on the bulk lake".into(),
                // ≤ 1.5× the bulk lake's time: a rate at least 1/1.5 of its rate.
                target: Some((1.0 / 1.5, true)),
                better: Better::Higher,
            });
        }
        report.detail("rebuild_runs", json!(rebuild_runs_json));
        report.detail(
            "compact",
            json!({"seconds": seconds, "events": events, "files": files, "bytes": bytes,
                   "bulk_files": bulk_files, "bulk_bytes": bulk_bytes, "peak_files": peak_files,
                   "files_before_close": files_open, "commit_seconds": commit_s,
                   "compact_seconds": compact_s, "vacuumed": vacuum.deleted.len(),
                   "verify_unvacuumed_s": verify_compacted}),
        );
        report.finish(&args);
    });
}
