//! The soak run (opt-in, `scripts/soak.sh [SECONDS] [SEED]`): a steady stream of transfers for
//! a set time while the exporter process is SIGKILLed at random moments (at least
//! `KILLS_MIN`), then a drain, then the CDC job replayed from timestamp 0 (every event delivered
//! again); the lake must equal the source field by field, the replay must add nothing, `verify`
//! must pass, and a rebuild to `latest` on a new cluster must give every account the source's
//! balances. Prints its figures; exits non-zero (a panic) on any difference.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::stack::{lake_event_count, Stack};
use ledgerlake::lake::Lake;
use ledgerlake::rebuild::plan::Until;
use ledgerlake::rebuild::{self, RebuildOptions};
use ledgerlake::testbed::{self, CdcJob, CdcOptions, Replica};
use ledgerlake::workload::{self, WorkloadConfig};
use rand::{Rng, SeedableRng};

/// Fewer kills than this in the set time fails the run.
const KILLS_MIN: usize = 20;
/// Transfers per workload round of the steady stream, and the pause between rounds.
const ROUND_TRANSFERS: usize = 400;
const ROUND_PAUSE: Duration = Duration::from_millis(500);

/// The `ledgerlake` binary: `LEDGERLAKE_BIN`, else next to this example's directory
/// (`target/debug/ledgerlake`, which scripts/soak.sh builds first).
fn binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("LEDGERLAKE_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/examples");
    dir.join("ledgerlake")
}

fn exporter(stack: &Stack, lake: &str, until_idle: Option<&str>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary());
    command
        .args(["export", "--queue", &stack.queue, "--lake", lake])
        .args(["--cluster-id", &stack.replica.cluster_id().to_string()])
        .args(["--segment-events-max", "500", "--prefetch", "500"])
        .args(["--segment-age-max", "300ms"])
        .env("LEDGERLAKE_AMQP_URL", testbed::amqp_url())
        .env("LEDGERLAKE_LOG", "error")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(idle) = until_idle {
        command.args(["--until-idle", idle]);
    }
    command
}

/// One round of `ROUND_TRANSFERS` transfers, each between two accounts created for it (ids
/// above any the workload uses); returns the events it makes.
async fn fresh_round(client: &tigerbeetle_unofficial::Client, round: u64) -> u64 {
    use tigerbeetle_unofficial::{Account, Transfer};
    let per_round = ROUND_TRANSFERS as u128;
    let base = (1u128 << 100) + u128::from(round) * per_round * 2;
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
                .with_amount(1 + (i % 97))
                .with_ledger(1)
                .with_code(1)
        })
        .collect();
    client
        .create_transfers(transfers)
        .await
        .expect("create transfers");
    ROUND_TRANSFERS as u64
}

/// Runs the exporter until the queue is idle for 5 s; returns its final report (the JSON line it
/// prints on stderr).
async fn drain(stack: &Stack, lake: &str) -> serde_json::Value {
    let output = exporter(stack, lake, Some("5s"))
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("export runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    assert!(
        output.status.success(),
        "draining export: {}",
        output.status
    );
    stderr
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .expect("the export report")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args
        .next()
        .map(|s| s.parse().expect("SECONDS is a number"))
        .unwrap_or(600);
    let seed: u64 = args
        .next()
        .map(|s| s.parse().expect("SEED is a number"))
        .unwrap_or_else(rand::random);
    eprintln!("soak: {seconds} s, kill schedule seed {seed}");
    assert!(
        binary().is_file(),
        "{} is missing: build it first (scripts/soak.sh does)",
        binary().display()
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let mut stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_location = dir.path().join("lake").to_string_lossy().into_owned();
    let lake = Lake::open(&lake_location).await.expect("lake");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);

    // The steady stream: the workload once (every kind of event; it creates its own fixed
    // accounts, so it runs once per cluster), then rounds of transfers between new accounts.
    let client = stack.replica.client().expect("client");
    let stream = tokio::spawn(async move {
        let config = WorkloadConfig::new(seed, ROUND_TRANSFERS * 4);
        let summary = workload::run(&client, &config, |_| {})
            .await
            .expect("workload");
        let mut events = summary.events.total() as u64;
        let mut rounds = 1u64;
        while Instant::now() < deadline {
            events += fresh_round(&client, rounds).await;
            rounds += 1;
            tokio::time::sleep(ROUND_PAUSE).await;
        }
        (rounds, events)
    });

    // The exporter, killed at random moments.
    let mut kills = 0usize;
    let mut counts_at_kill = Vec::new();
    while Instant::now() < deadline {
        let mut child = exporter(&stack, &lake_location, None)
            .spawn()
            .expect("exporter starts");
        let lifetime = Duration::from_millis(rng.random_range(300..6_000));
        tokio::time::sleep(lifetime.min(deadline.saturating_duration_since(Instant::now()))).await;
        if child.try_wait().expect("try_wait").is_some() {
            panic!("the exporter exited by itself: {:?}", child.wait().await);
        }
        child.start_kill().expect("SIGKILL");
        let _ = child.wait().await;
        kills += 1;
        counts_at_kill.push(lake_event_count(&lake).await);
    }
    let (rounds, expected) = stream.await.expect("stream task");
    assert!(kills >= KILLS_MIN, "{kills} kills, at least {KILLS_MIN}");
    drain(&stack, &lake_location).await;
    let client = stack.replica.client().expect("client");
    let committed = lake_event_count(&lake).await;
    assert_eq!(committed, expected, "the lake holds every event once");
    let comparison = common::assert_lake_matches_source(&lake, &client).await;
    let segments_before = lake.list_segments().await.expect("listing").len();
    let whole_before = lake.read_all().await.expect("read the lake");
    let streamed = started.elapsed();

    // The CDC job replays everything from timestamp 0: nothing changes.
    stack.cdc.take().expect("cdc").stop().await;
    let replay = CdcOptions {
        timestamp_last: Some(0),
        ..CdcOptions::default()
    };
    stack.cdc = Some(
        CdcJob::start_with(&stack.replica, &stack.exchange, &replay)
            .await
            .expect("CDC replay"),
    );
    let broker = &stack.broker;
    testbed::wait_until(
        "the replay to be queued",
        Duration::from_secs(600),
        || async {
            broker
                .queue_depth(&stack.queue)
                .await
                .is_ok_and(|depth| u64::from(depth) >= expected)
        },
    )
    .await
    .expect("replayed events queued");
    // The exporter compacts in the background (`--compact-interval`, 1 m by default), so the
    // files may be merged meanwhile; what they hold must not change, and nothing is committed.
    let replayed = drain(&stack, &lake_location).await;
    assert_eq!(
        replayed["events_committed"], "0",
        "the replay from 0 committed nothing: {replayed}"
    );
    let whole_after = lake.read_all().await.expect("read the lake");
    assert!(
        whole_after.0 == whole_before.0,
        "the replay from 0 changed no event"
    );
    assert!(
        whole_after.1 == whole_before.1,
        "the replay from 0 changed no account record"
    );
    let segments_after = lake.list_segments().await.expect("listing").len();
    common::assert_lake_matches_source(&lake, &client).await;

    // verify, then a rebuild to latest on a new cluster.
    let report =
        ledgerlake::audit::verify::verify(&lake, &ledgerlake::audit::progress::NoProgress).await;
    assert!(report.ok, "verify: {:?}", report.problems);
    let target = Replica::start(testbed::random_cluster_id())
        .await
        .expect("target replica");
    let rebuilt = rebuild::rebuild(
        &RebuildOptions {
            lake: lake_location.clone(),
            addresses: Some(target.address().to_string()),
            cluster_id: target.cluster_id(),
            lake_cluster_id: Some(stack.replica.cluster_id()),
            until: Until::Latest,
            ledgers: None,
            dry_run: false,
            batch_events_max: 8189,
            reply_timeout: Duration::from_secs(60),
        },
        Vec::new(),
        &mut |_| {},
    )
    .await
    .expect("rebuild to latest");
    let target_client = target.client().expect("target client");
    let source: std::collections::HashMap<u128, [u128; 4]> = common::source_accounts(&client)
        .await
        .iter()
        .map(|a| {
            let r = a.as_raw();
            (
                r.id,
                [
                    r.debits_pending,
                    r.debits_posted,
                    r.credits_pending,
                    r.credits_posted,
                ],
            )
        })
        .collect();
    let got = common::source_accounts(&target_client).await;
    assert_eq!(
        got.len(),
        comparison.accounts,
        "every account of the lake rebuilt"
    );
    for a in &got {
        let r = a.as_raw();
        assert_eq!(
            Some(&[
                r.debits_pending,
                r.debits_posted,
                r.credits_pending,
                r.credits_posted
            ]),
            source.get(&r.id),
            "balances of account {} after the rebuild",
            r.id
        );
    }
    let rebuilt_transfers = common::source_transfers(&target_client).await.len();
    println!(
        "soak: {:?} of stream ({rounds} rounds), {kills} SIGKILLs (lake events at each kill: \
         first {:?}, last {:?}); {expected} events = {} transfers + {} expiries, {} accounts; \
         CDC replay from 0 added nothing ({} duplicates dropped; {segments_before} -> \
         {segments_after} segment files, compacted in the background); verify ok ({} \
         events); rebuild to latest: {} transfers, {} accounts with the source's balances \
         ({:?})",
        streamed,
        counts_at_kill.first(),
        counts_at_kill.last(),
        comparison.transfers,
        comparison.expired,
        comparison.accounts,
        replayed["duplicates_dropped"],
        report.events,
        rebuilt_transfers,
        got.len(),
        rebuilt.run.as_ref().map(|r| r.accounts_created)
    );
    target.stop().await;
    stack.cleanup().await;
}
