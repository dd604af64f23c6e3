//! An exporter's start-up and memory on a lake that has grown (issue "a lake that scales with
//! time"): both must not grow with the lake.
//!
//! - `open`: a lake of 10^5 commits (full scale; 2,000 small), committed through `Lake::commit`
//!   into a directory under `--work` (the local default store, fsync off while the history is
//!   written: only the session start is measured), behind a wrapper that counts what the store
//!   serves, then one exporter session start
//!   (`Lake::resume_state`): the log objects it reads (anchor: the commits in the lake, what
//!   opening would read without checkpoints; bound: per table `_last_checkpoint`, one checkpoint
//!   and fewer than `CHECKPOINT_INTERVAL_COMMITS` commits, twice), the data objects it reads
//!   (none), its listings, and its time (goal ≤ 1 s). With `--compact-every`, then a vacuum
//!   with no retention (it reads every commit), 100 more segments and a compaction pass, a pass
//!   with nothing left to merge by the writer (which reads the snapshots its commits left) and
//!   by a fresh `Lake` (anchor: it builds them from the log; log listings and seconds), and a
//!   second vacuum, which reads from the first one's record: commits read and seconds, the
//!   first run as the anchor.
//! - `rss`: a lake on disk with 10^7 accounts (full; 10^6 small), half recorded by segments
//!   (2 new accounts per event, 32,768 events per segment), half by sweep pages (8,189 per
//!   commit), all through the commit path; then the release `ledgerlake export --until-idle`
//!   consuming 20,000 events from RabbitMQ that use the lake's accounts, its peak RSS (VmHWM,
//!   polled from /proc) against 256 MiB. The anchor is what the exporter held before this
//!   design, a `HashSet<u128>` of every account id, measured in this process.
//!
//! `--part open|rss|both` (default both); `--commits N`, `--accounts N` override the scale;
//! `--compact-every N` runs a compaction pass (`Lake::compact_pass`, what `export
//! --compact-interval` runs) every N segment commits while the lake is written, as a running
//! exporter does: the lake's active files stay few; the merges are commits of the log too. The
//! history is on disk, not in memory, and it is large: each checkpoint (every
//! `CHECKPOINT_INTERVAL_COMMITS`) holds the remove action of every file removed within the
//! tables' tombstone retention (with Delta's default of 7 days, every file ever removed here, so
//! the checkpoints grew with the history and their sum quadratically: 52 GB of transfers
//! checkpoints at 6.6×10^4 commits while removes carried statistics; BENCHMARKS.md).
//! `--tombstone-retention-s N` sets that retention (default ledgerlake's, an hour; the history
//! here is written ~50× faster than a live stream, so ~72 s holds an hour of a live stream's
//! tombstones); the report gives the transfers checkpoints' sizes and the newest one's removes.
//! `--reuse yes` measures the session start on the lake a stopped run left under `--work` (data
//! files may be deleted: a start reads none) without writing anything.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{Args, Better, Report, Row, Scale};
use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::lake::{
    AccountRecord, Lake, Segment, CHECKPOINT_INTERVAL_COMMITS, TOMBSTONE_RETENTION,
};
use ledgerlake::testbed::CountedStore;
use object_store::local::LocalFileSystem;
use serde_json::json;

const CLUSTER: u128 = 9;
/// 2026-01-01T00:00:00Z.
const START_NS: u64 = 1_767_225_600 * 1_000_000_000;

fn account(id: u128, posted: u128, timestamp: u64) -> AccountFields {
    AccountFields {
        id,
        debits_posted: posted,
        credits_posted: posted,
        timestamp,
        ..Default::default()
    }
}

/// Commit `i`: one event a second, two accounts of its own.
fn segment(i: u64) -> Segment {
    let ts = START_NS + i * 1_000_000_000;
    let (debit, credit) = (u128::from(i) * 2 + 1, u128::from(i) * 2 + 2);
    let event = Event {
        timestamp: ts,
        event_type: EventType::SinglePhase,
        ledger: 1,
        transfer: TransferFields {
            id: u128::from(i) + 1,
            amount: 10,
            timestamp: ts,
            ..Default::default()
        },
        debit_account: account(debit, 10, ts - 2),
        credit_account: account(credit, 10, ts - 1),
    };
    let new_accounts = vec![
        AccountRecord::from_event_account(&event.debit_account, 1, ts),
        AccountRecord::from_event_account(&event.credit_account, 1, ts),
    ];
    Segment {
        events: vec![event],
        new_accounts,
    }
}

fn main() {
    let args = Args::parse();
    let part = args.get("part").unwrap_or("both").to_string();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut report = Report::new("open", args.scale);
    if part == "open" || part == "both" {
        runtime.block_on(open(&args, &mut report));
    }
    if part == "rss" || part == "both" {
        runtime.block_on(rss::run(&args, &mut report));
    }
    report.finish(&args);
}

async fn open(args: &Args, report: &mut Report) {
    let commits: u64 = match (args.get("commits"), args.scale) {
        (Some(n), _) => n.parse().expect("--commits N"),
        (None, Scale::Small) => 2_000,
        (None, Scale::Full) => 100_000,
    };
    let dir = args.work.join("open-lake");
    // `--reuse yes`: measure the session start on the lake a stopped run left in `--work`
    // (its data files may be gone: a session start reads none), without writing a history.
    let reuse = args.get("reuse") == Some("yes");
    if dir.exists() && !reuse {
        std::fs::remove_dir_all(&dir).expect("remove the previous run's lake");
    }
    assert!(
        !reuse || dir.exists(),
        "--reuse yes: no lake at {}",
        dir.display()
    );
    std::fs::create_dir_all(&dir).expect("create the lake directory");
    let store = Arc::new(CountedStore::new(Arc::new(
        LocalFileSystem::new_with_prefix(&dir).expect("a local store"),
    )));
    let compact_every: u64 = args
        .get("compact-every")
        .map_or(0, |n| n.parse().expect("--compact-every N"));
    // `--tombstone-retention-s N`: the tables' tombstone retention (default ledgerlake's,
    // `TOMBSTONE_RETENTION`). This history is written ~50× faster than a live stream commits, so
    // an hour of a live stream's tombstones (3,600 at a segment a second) is modelled by ~72 s.
    let retention_s: u64 = args
        .get("tombstone-retention-s")
        .map_or(TOMBSTONE_RETENTION.as_secs(), |n| {
            n.parse().expect("--tombstone-retention-s N")
        });
    let lake = Lake::from_store(store.clone(), "local directory (counted)")
        .with_tombstone_retention(std::time::Duration::from_secs(retention_s));
    let started = Instant::now();
    let mut merges = 0u64;
    // Each segment commit's time (both tables; every 100th of a table writes its checkpoint).
    let mut commit_ms: Vec<f64> = Vec::new();
    for i in (0..commits).filter(|_| !reuse) {
        let segment = segment(i);
        let one = Instant::now();
        lake.commit(&segment, CLUSTER).await.expect("commit");
        commit_ms.push(one.elapsed().as_secs_f64() * 1000.0);
        if compact_every > 0 && i % compact_every == compact_every - 1 {
            lake.compact_pass(CLUSTER, &mut |_| {
                merges += 1;
                true
            })
            .await
            .expect("compaction pass");
        }
        if i % 10_000 == 9_999 {
            eprintln!(
                "bench open: {} commits ({merges} merges) in {:.0} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let commit_s = started.elapsed().as_secs_f64();
    // The commit-time distribution, and the last tenth of the history on its own (where the
    // checkpoints are largest).
    let percentiles = |ms: &[f64]| {
        let mut sorted = ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
                .copied()
        };
        json!({"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": sorted.last().copied()})
    };
    let commit_times = json!({
        "all": percentiles(&commit_ms),
        "last_tenth": percentiles(&commit_ms[commit_ms.len() - commit_ms.len() / 10..]),
    });
    eprintln!("bench open: segment commit times {commit_times}");
    // Two session starts, each on a fresh `Lake` (nothing cached): the first may warm the
    // allocator; the second is reported, with the first in the details.
    let mut starts = Vec::new();
    for _ in 0..2 {
        let fresh = Lake::from_store(store.clone(), "local directory (counted)");
        store.reset();
        let started = Instant::now();
        let state = fresh.resume_state(CLUSTER).await.expect("resume");
        let open_ms = started.elapsed().as_secs_f64() * 1000.0;
        // Every segment and every merge is one commit of the transfers table.
        assert!(reuse || state.transfers_version == commits + merges);
        eprintln!(
            "bench open: session start at transfers version {} in {open_ms:.0} ms",
            state.transfers_version
        );
        let counts = store.counts();
        starts.push((
            counts.log_reads,
            counts.data_reads.len() as u64,
            counts.lists,
            open_ms,
            counts.log_bytes_read,
        ));
    }
    let (log_reads, data_reads, lists, open_ms, log_bytes_read) = starts[1];
    // Vacuum on the grown lake: a first run reads every commit and deletes every removed file
    // (retention 0); after 100 more segments (and a compaction pass), a second run reads from
    // the first one's record. Then time and commits read, side by side.
    let vacuum = if !reuse && compact_every > 0 {
        let first = timed_vacuum(&lake).await;
        for i in commits..commits + 100 {
            lake.commit(&segment(i), CLUSTER).await.expect("commit");
        }
        lake.compact_pass(CLUSTER, &mut |_| true)
            .await
            .expect("compaction pass");
        // A pass with nothing left to merge (most of a running exporter's passes), by the
        // writer, which reads the snapshots its commits left, and by a fresh `Lake` on the same
        // store, which builds them from the log: what every pass did before (anchor).
        let idle_writer = timed_idle_pass(&lake, &store).await;
        let idle_fresh = timed_idle_pass(
            &Lake::from_store(store.clone(), "local directory (counted)"),
            &store,
        )
        .await;
        eprintln!(
            "bench open: a compaction pass with nothing to merge: the writer's {:.3} s, {} log listings; a fresh lake's {:.3} s, {} log listings",
            idle_writer.0, idle_writer.1, idle_fresh.0, idle_fresh.1
        );
        report.rows.push(Row {
            id: "idle compaction pass log listings".into(),
            what: "log listings of a compaction pass with nothing to merge, by the exporter".into(),
            unit: "lists".into(),
            ours: idle_writer.1 as f64,
            anchor: Some(idle_fresh.1 as f64),
            anchor_what: "the same pass by a process that has not committed".into(),
            target: Some((0.0, false)),
            better: Better::Lower,
        });
        report.rows.push(Row {
            id: "idle compaction pass seconds".into(),
            what: "that pass's time".into(),
            unit: "s".into(),
            ours: idle_writer.0,
            anchor: Some(idle_fresh.0),
            anchor_what: "the same pass by a process that has not committed".into(),
            target: None,
            better: Better::Lower,
        });
        let second = timed_vacuum(&lake).await;
        eprintln!(
            "bench open: vacuum read {} commits in {:.3} s (deleted {}); after 100 more segments, {} commits in {:.3} s (deleted {})",
            first.1, first.0, first.2, second.1, second.0, second.2
        );
        report.rows.push(Row {
            id: "vacuum commits read again".into(),
            what: "commits a vacuum reads after 100 more segments, from the previous run's record"
                .into(),
            unit: "commits".into(),
            ours: second.1 as f64,
            anchor: Some(first.1 as f64),
            anchor_what: "commits the first vacuum read (the whole history)".into(),
            target: None,
            better: Better::Lower,
        });
        report.rows.push(Row {
            id: "vacuum seconds again".into(),
            what: "that vacuum's time".into(),
            unit: "s".into(),
            ours: second.0,
            anchor: Some(first.0),
            anchor_what: "the first vacuum's time".into(),
            target: None,
            better: Better::Lower,
        });
        json!({"first": {"seconds": first.0, "commits_read": first.1, "deleted": first.2},
               "after_100_segments": {"seconds": second.0, "commits_read": second.1, "deleted": second.2},
               "idle_compaction_pass": {"writer": {"seconds": idle_writer.0, "log_lists": idle_writer.1},
                                        "fresh": {"seconds": idle_fresh.0, "log_lists": idle_fresh.1}}})
    } else {
        serde_json::Value::Null
    };
    let checkpoints = checkpoint_sizes(&dir.join("transfers").join("_delta_log"));
    let (lake_bytes, lake_objects) = common::dir_bytes(&dir, "");
    let (log_bytes, log_objects) = common::dir_bytes(&dir, "_delta_log");
    if !reuse {
        std::fs::remove_dir_all(&dir).expect("remove the lake");
    }
    // Three tables, each opened for its snapshot and again for its position.
    let bound = 3 * 2 * (2 + CHECKPOINT_INTERVAL_COMMITS) + 4;
    eprintln!(
        "bench open: {commits} commits and {merges} merges in {commit_s:.1} s; a session start read {log_reads} log \
         objects ({log_bytes_read} bytes) and {data_reads} data objects and made {lists} listings in {open_ms:.0} ms; the lake held {lake_objects} objects \
         ({log_objects} in the logs), {lake_bytes} bytes"
    );
    report.rows.push(Row {
        id: "open log objects read".into(),
        what: format!("log objects read to open a lake of {commits} commits"),
        unit: "objects".into(),
        ours: log_reads as f64,
        anchor: Some(commits as f64),
        anchor_what: "commits in the lake".into(),
        target: Some((bound as f64, false)),
        better: Better::Lower,
    });
    report.rows.push(Row {
        id: "open data objects read".into(),
        what: "data files (accounts, swept, transfers) read by one session start".into(),
        unit: "objects".into(),
        ours: data_reads as f64,
        anchor: Some((2 * commits) as f64),
        anchor_what: "data files in the lake".into(),
        target: Some((0.0, false)),
        better: Better::Lower,
    });
    report.rows.push(Row {
        id: "open listings".into(),
        what: "listings made by one session start".into(),
        unit: "lists".into(),
        ours: lists as f64,
        anchor: None,
        anchor_what: String::new(),
        target: Some((8.0, false)),
        better: Better::Lower,
    });
    report.rows.push(Row {
        id: "open seconds".into(),
        what: format!("one session start on a lake of {commits} commits"),
        unit: "s".into(),
        ours: open_ms / 1000.0,
        anchor: None,
        anchor_what: String::new(),
        target: Some((1.0, false)),
        better: Better::Lower,
    });
    report.details.insert(
        "open".into(),
        json!({"commits": commits, "log_reads": log_reads, "log_bytes_read": log_bytes_read,
               "data_reads": data_reads,
               "lists": lists, "open_ms": open_ms, "first_start": starts[0],
               "commit_seconds": commit_s, "bound": bound,
               "compact_every": compact_every, "merges": merges,
               "lake_objects": lake_objects, "lake_bytes": lake_bytes,
               "log_objects": log_objects, "log_bytes": log_bytes,
               "checkpoint_interval_commits": CHECKPOINT_INTERVAL_COMMITS,
               "tombstone_retention_s": retention_s,
               "segment_commit_times": commit_times,
               "vacuum": vacuum,
               "transfers_checkpoints": checkpoints}),
    );
}

/// A vacuum with no retention (every removed file goes): its seconds, the commits it read and
/// the files it deleted.
/// A compaction pass that must merge nothing: its seconds and its listings of a `_delta_log`.
async fn timed_idle_pass(lake: &Lake, store: &CountedStore) -> (f64, u64) {
    store.reset();
    let started = Instant::now();
    let report = lake
        .compact_pass(CLUSTER, &mut |_| true)
        .await
        .expect("compaction pass");
    let seconds = started.elapsed().as_secs_f64();
    assert!(report.merges.is_empty(), "{report:?}");
    (seconds, store.counts().log_lists)
}

async fn timed_vacuum(lake: &Lake) -> (f64, u64, usize) {
    let started = Instant::now();
    let report = lake
        .vacuum(
            std::time::Duration::ZERO,
            false,
            ledgerlake::timefmt::now_ms() + 1,
        )
        .await
        .expect("vacuum");
    let read: u64 = report.tables.iter().map(|t| t.commits_read).sum();
    (started.elapsed().as_secs_f64(), read, report.deleted.len())
}

/// The transfers table's checkpoints: how many, their total and largest size, and the newest's
/// size and remove actions.
fn checkpoint_sizes(log: &std::path::Path) -> serde_json::Value {
    let mut found: Vec<(String, u64)> = std::fs::read_dir(log)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.ends_with(".checkpoint.parquet")
                        .then(|| (name, e.metadata().map_or(0, |m| m.len())))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    let Some((newest, newest_bytes)) = found.last().cloned() else {
        return json!({"count": 0});
    };
    let file = std::fs::File::open(log.join(&newest)).expect("open the newest checkpoint");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a checkpoint")
        .build()
        .expect("a checkpoint reader");
    let (mut removes, mut adds) = (0, 0);
    for batch in reader {
        let batch = batch.expect("a checkpoint batch");
        let live = |name: &str| {
            batch
                .column_by_name(name)
                .map_or(0, |c| c.len() - c.null_count())
        };
        removes += live("remove");
        adds += live("add");
    }
    eprintln!(
        "bench open: {} transfers checkpoints, {} bytes in all, the newest ({newest}) {newest_bytes} \
         bytes with {adds} adds and {removes} removes",
        found.len(),
        found.iter().map(|(_, b)| b).sum::<u64>()
    );
    json!({"count": found.len(),
           "bytes": found.iter().map(|(_, b)| b).sum::<u64>(),
           "largest_bytes": found.iter().map(|(_, b)| *b).max(),
           "newest": newest, "newest_bytes": newest_bytes,
           "newest_adds": adds, "newest_removes": removes})
}

#[path = "open/rss.rs"]
mod rss;
