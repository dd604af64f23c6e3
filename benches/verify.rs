//! `verify` on a compacted trickle day (the lake `benches/compact.rs` builds: one segment per
//! second at 5 events/s through `Lake::commit`, a compaction pass every 60 simulated seconds,
//! then the day closes), against the same events committed in bulk (the anchor, same run).
//! Rows: the full verify with the replaced files still in the store and after vacuuming them,
//! and `verify --since` from the report of a full verify — with nothing committed since, and
//! after one more simulated minute of segments on the next day. Also the time of the chain
//! walk alone (`Lake::check_chain`), to show where a full verify's time goes.
//!
//! Small scale simulates 20 minutes (1,200 segments), full scale 2 hours (7,200 segments).
//! `--keep yes` leaves the two lakes in `--work` (their path is printed), to profile on them.

mod common;

use std::collections::HashSet;
use std::time::Instant;

use common::day::{median, second, ACCOUNTS, BULK_EVENTS, CLUSTER, NS_PER_S, START_NS};
use common::{Args, Better, Report, Row, Scale};
use ledgerlake::audit::progress::NoProgress;
use ledgerlake::audit::verify::{verify_since, Since, VerifyReport};
use ledgerlake::lake::{Lake, Segment};
use serde_json::json;

const NS_PER_DAY: u64 = 86_400 * NS_PER_S;
const RUNS: usize = 3;

/// Median wall time of `verify` (from `since` if given) on the lake, and the last report.
async fn time_verify(location: &str, since: Option<&Since>) -> (f64, VerifyReport) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let lake = Lake::open(location).await.expect("lake");
        let started = Instant::now();
        let report = verify_since(&lake, since, &NoProgress).await;
        times.push(started.elapsed().as_secs_f64());
        assert!(report.ok, "verify found problems: {:?}", report.problems);
        last = Some(report);
    }
    (median(times), last.expect("runs"))
}

/// Median wall time of the chain walk alone.
async fn time_chain(location: &str) -> f64 {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let lake = Lake::open(location).await.expect("lake");
        let started = Instant::now();
        let report = lake.check_chain().await.expect("chain");
        times.push(started.elapsed().as_secs_f64());
        assert!(report.ok());
    }
    median(times)
}

/// The report as `verify --format json` writes it, read back as `--since` reads it.
fn since_of(report: &VerifyReport) -> Since {
    let json = serde_json::to_vec(report).expect("json");
    Since::parse("report.json", &json).expect("a report to start from")
}

fn main() {
    let args = Args::parse();
    let seconds: u64 = match args.scale {
        Scale::Small => 1_200,
        Scale::Full => 7_200,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let work = tempfile::tempdir_in(&args.work).expect("work dir");
    // `--keep yes` leaves both lakes in the work directory, to profile a reader on them.
    let keep = args.get("keep") == Some("yes");
    let trickle = work.path().join("trickle").to_string_lossy().into_owned();
    let bulk = work.path().join("bulk").to_string_lossy().into_owned();
    runtime.block_on(async {
        let lake = Lake::open(&trickle).await.expect("lake");
        let mut posted = vec![[0u128; 2]; ACCOUNTS as usize];
        let mut known = HashSet::new();
        let mut all = Vec::new();
        for s in 0..seconds {
            let events = second(START_NS, s, &mut posted);
            all.extend(events.iter().cloned());
            lake.commit(&Segment::recording_first_seen(events, &mut known), CLUSTER)
                .await
                .expect("commit");
            if s % 60 == 59 {
                lake.compact_pass(CLUSTER, &mut |_| true)
                    .await
                    .expect("compact");
            }
        }
        // The day closes: one second of the next day; one more pass.
        let next_day = START_NS + NS_PER_DAY;
        let events = second(next_day, 0, &mut posted);
        let next_segment = events.clone();
        lake.commit(&Segment::recording_first_seen(events, &mut known), CLUSTER)
            .await
            .expect("commit");
        lake.compact_pass(CLUSTER, &mut |_| true)
            .await
            .expect("compact");
        let bulk_lake = Lake::open(&bulk).await.expect("lake");
        let mut bulk_known = HashSet::new();
        for chunk in all.chunks(BULK_EVENTS) {
            bulk_lake
                .commit(
                    &Segment::recording_first_seen(chunk.to_vec(), &mut bulk_known),
                    CLUSTER,
                )
                .await
                .expect("commit");
        }
        bulk_lake
            .commit(
                &Segment::recording_first_seen(next_segment, &mut bulk_known),
                CLUSTER,
            )
            .await
            .expect("commit");

        let (unvacuumed, _) = time_verify(&trickle, None).await;
        let vacuum = lake
            .vacuum(
                std::time::Duration::ZERO,
                false,
                ledgerlake::timefmt::now_ms() + 1,
            )
            .await
            .expect("vacuum");
        let (vacuumed, report) = time_verify(&trickle, None).await;
        let chain_s = time_chain(&trickle).await;
        let (bulk_s, _) = time_verify(&bulk, None).await;
        let bulk_chain_s = time_chain(&bulk).await;
        let versions: u64 = report.chain.iter().map(|h| h.versions).sum();

        // Incremental: from the report just made (nothing since), then after one more minute
        // of one-second segments on the next day.
        let since = since_of(&report);
        let (since_none, _) = time_verify(&trickle, Some(&since)).await;
        for s in 1..=60 {
            let events = second(next_day, s, &mut posted);
            lake.commit(&Segment::recording_first_seen(events, &mut known), CLUSTER)
                .await
                .expect("commit");
        }
        let (since_minute, since_report) = time_verify(&trickle, Some(&since)).await;
        let (full_after_minute, _) = time_verify(&trickle, None).await;
        let walked: u64 = since_report
            .chain
            .iter()
            .map(|h| h.head_version.unwrap_or(0) - h.since_version.unwrap_or(0))
            .sum();

        eprintln!(
            "bench verify: {seconds} one-second segments, {versions} commits in the logs; verify \
             {unvacuumed:.3} s unvacuumed, {vacuumed:.3} s vacuumed ({} files; chain walk alone \
             {chain_s:.3} s) vs bulk {bulk_s:.3} s (chain {bulk_chain_s:.3} s); --since: \
             {since_none:.3} s with nothing since, {since_minute:.3} s after 60 more segments \
             ({walked} commits walked; full verify then {full_after_minute:.3} s)",
            vacuum.deleted.len()
        );
        let mut out = Report::new("verify", args.scale);
        let row = |id: &str, what: &str, ours: f64, target: Option<(f64, bool)>| Row {
            id: id.into(),
            what: what.into(),
            unit: "s".into(),
            ours,
            anchor: Some(bulk_s),
            anchor_what: "verify on the bulk lake".into(),
            target,
            better: Better::Lower,
        };
        out.row(row(
            "verify compacted",
            "full verify on the compacted day, replaced files vacuumed",
            vacuumed,
            Some((1.5, true)),
        ));
        out.row(row(
            "verify compacted unvacuumed",
            "full verify on the compacted day, replaced files still in the store",
            unvacuumed,
            None,
        ));
        out.row(row(
            "verify since",
            "verify --since the last full verify's report, nothing committed since",
            since_none,
            Some((1.5, true)),
        ));
        out.row(row(
            "verify since a minute",
            "verify --since that report after 60 more one-second segments",
            since_minute,
            Some((1.5, true)),
        ));
        out.detail(
            "verify",
            json!({"seconds": seconds, "commits": versions, "vacuumed": vacuum.deleted.len(),
                   "chain_walk_s": chain_s, "bulk_chain_walk_s": bulk_chain_s,
                   "since_commits_walked": walked, "full_after_minute_s": full_after_minute}),
        );
        out.finish(&args);
    });
    if keep {
        eprintln!("bench verify: lakes kept in {}", work.keep().display());
    }
}
