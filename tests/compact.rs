//! Compaction and vacuum against the real stack: a workload exported by the real CDC job into
//! many small segments, then `ledgerlake compact` killed with SIGKILL at every step of a merge
//! and at random moments, then run to the end. After every kill the lake reads whole (every
//! event and account, nothing twice); at the end it equals the source field by field, `verify`
//! passes, `balances` is unchanged, a rebuild from it equals the source, and vacuum deletes
//! exactly the replaced files.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::stack::{lake_path, wait_for_event_count, InProcessExporter, Stack};
use ledgerlake::lake::{Lake, TEST_KILL_AT_ENV};
use ledgerlake::testbed::{self, Replica};
use rand::{Rng, SeedableRng};

/// The steps of a merge a kill is aimed at (see `lake::compact`).
const KILL_STEPS: [&str; 5] = [
    "planned",
    "read",
    "written",
    "accounts-committed",
    "transfers-committed",
];

/// `CARGO_BIN_EXE_ledgerlake` may be replaced by a build of another worktree sharing the
/// target directory: take a copy first, and check it knows `compact`.
fn ledgerlake_bin() -> std::path::PathBuf {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let built = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ledgerlake"));
        let copy =
            std::env::temp_dir().join(format!("ledgerlake-compact-test-{}", std::process::id()));
        std::fs::copy(&built, &copy).expect("copy the ledgerlake binary");
        let help = Command::new(&copy)
            .args(["compact", "--help"])
            .output()
            .expect("run ledgerlake");
        assert!(
            help.status.success(),
            "{} is not this worktree's build: rerun the test",
            built.display()
        );
        copy
    })
    .clone()
}

fn run(args: &[&str]) -> Output {
    Command::new(ledgerlake_bin())
        .args(args)
        .env("LEDGERLAKE_LOG", "warn")
        .output()
        .expect("run ledgerlake")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What readers see must be the whole lake, whatever state a kill left.
async fn assert_lake_whole(
    location: &str,
    want: &(
        Vec<ledgerlake::cdc::Event>,
        Vec<ledgerlake::lake::AccountRecord>,
    ),
    when: &str,
) {
    let lake = Lake::open(location).await.expect("lake");
    let got = lake
        .read_all()
        .await
        .unwrap_or_else(|e| panic!("{when}: {e}"));
    assert_eq!(got.0.len(), want.0.len(), "{when}: events");
    assert!(got.0 == want.0, "{when}: the events differ");
    assert!(got.1 == want.1, "{when}: the account records differ");
    // Read as of the latest lake version (transfers and the accounts version it pins): the same.
    let version = lake
        .transfers_version()
        .await
        .expect("version")
        .expect("a table");
    let at = Lake::open(location)
        .await
        .expect("lake")
        .at_version(version);
    assert!(
        at.read_all().await.expect("read at version").0 == want.0,
        "{when}: at version"
    );
}

/// The newest log version of `transfers` and `accounts` in a local lake.
fn log_heads(root: &std::path::Path) -> (Option<u64>, Option<u64>) {
    let head = |table: &str| {
        std::fs::read_dir(root.join(table).join("_delta_log"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let v = name.strip_suffix(".json")?.to_string();
                (v.len() == 20).then(|| v.parse::<u64>().ok()).flatten()
            })
            .max()
    };
    (head("transfers"), head("accounts"))
}

/// Where a SIGKILL left a compaction, from the log heads before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillOutcome {
    /// No swap committed (killed while planning, reading, encoding or writing).
    NoSwap,
    /// The accounts swap committed, the transfers swap not: the next run completes it.
    BetweenTheSwaps,
    /// A merge committed whole (or more).
    MergeCommitted,
    /// The process ended before the signal.
    FinishedFirst,
}

impl KillOutcome {
    fn of(before: (Option<u64>, Option<u64>), after: (Option<u64>, Option<u64>)) -> KillOutcome {
        if after.0 != before.0 {
            KillOutcome::MergeCommitted
        } else if after.1 != before.1 {
            KillOutcome::BetweenTheSwaps
        } else {
            KillOutcome::NoSwap
        }
    }

    fn text(self) -> &'static str {
        match self {
            KillOutcome::NoSwap => "no swap committed",
            KillOutcome::BetweenTheSwaps => "between the swaps",
            KillOutcome::MergeCommitted => "a merge committed",
            KillOutcome::FinishedFirst => "finished before the kill",
        }
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_killed_anywhere_loses_nothing_and_the_lake_still_equals_the_source() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let location = lake_path(dir.path());
    let mut options = stack.export_options(&location);
    // Small segments, as an active stream writes them.
    options.seal.age_max = Duration::from_millis(100);
    options.seal.idle_max = Duration::from_millis(20);
    options.seal.events_max = 200;
    let exporter = InProcessExporter::start(options);
    let summary = stack.run_workload(0xc0_4ac7, 6_000).await;
    let expected = summary.events.total() as u64;
    let lake = Lake::open(&location).await.expect("lake");
    wait_for_event_count(&lake, expected, Duration::from_secs(180)).await;
    exporter.stop().await;
    let client = stack.replica.client().expect("client");
    common::assert_lake_matches_source(&lake, &client).await;
    let whole = lake.read_all().await.expect("read");
    let segments_before = lake.list_segments().await.expect("listing").len();
    assert!(segments_before >= 20, "{segments_before} segments");
    let last = whole.0.last().expect("events").timestamp.to_string();
    let balances_args = [
        "balances", "--lake", &location, "--at", &last, "--format", "json",
    ];
    let balances_before = run(&balances_args);
    assert!(balances_before.status.success(), "{balances_before:?}");

    // A copy of the lake as the exporter left it, for the random kills below.
    let pristine = dir.path().join("pristine");
    copy_dir(std::path::Path::new(&location), &pristine);

    // SIGKILL at each step of the first merge of a run.
    let mut step_kills = Vec::new();
    for step in KILL_STEPS {
        let before = log_heads(std::path::Path::new(&location));
        let status = Command::new(ledgerlake_bin())
            .args(["compact", "--lake", &location, "--all-windows"])
            .env(TEST_KILL_AT_ENV, step)
            .env("LEDGERLAKE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run compact");
        assert_eq!(status.signal(), Some(9), "killed at {step}: {status:?}");
        let after = log_heads(std::path::Path::new(&location));
        step_kills.push(format!("{step}: {}", KillOutcome::of(before, after).text()));
        assert_lake_whole(&location, &whole, &format!("after a kill at {step}")).await;
    }
    // And at random moments of a whole compaction: each on a fresh copy of the uncompacted
    // lake (on the lake above the steps have left nothing to merge), killed at a moment drawn
    // over the time a run takes, and then run to the end.
    let timed = dir.path().join("timed");
    copy_dir(&pristine, &timed);
    let started = std::time::Instant::now();
    let full = run(&[
        "compact",
        "--lake",
        &timed.to_string_lossy(),
        "--all-windows",
    ]);
    let full_run = started.elapsed();
    assert!(full.status.success(), "{full:?}");
    let full_run_ms = u64::try_from(full_run.as_millis())
        .unwrap_or(u64::MAX)
        .max(50);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut outcomes: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let random_kills = 8;
    for round in 0..random_kills {
        let copy = dir.path().join(format!("random-{round}"));
        copy_dir(&pristine, &copy);
        let copy_location = copy.to_string_lossy().into_owned();
        let before = log_heads(&copy);
        let mut child = Command::new(ledgerlake_bin())
            .args(["compact", "--lake", &copy_location, "--all-windows"])
            .env("LEDGERLAKE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn compact");
        let delay_ms = rng.random_range(0..full_run_ms + full_run_ms / 4);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let outcome = if status.success() {
            KillOutcome::FinishedFirst
        } else {
            assert_eq!(status.signal(), Some(9), "round {round}: {status:?}");
            KillOutcome::of(before, log_heads(&copy))
        };
        *outcomes.entry(outcome.text()).or_default() += 1;
        assert_lake_whole(
            &copy_location,
            &whole,
            &format!("after random kill {round} at {delay_ms} ms ({status:?})"),
        )
        .await;
        let done = run(&["compact", "--lake", &copy_location, "--all-windows"]);
        assert!(done.status.success(), "round {round}: {done:?}");
        assert_lake_whole(&copy_location, &whole, &format!("round {round} completed")).await;
        let verify = run(&["verify", "--lake", &copy_location]);
        assert!(
            verify.status.success(),
            "round {round}: {}",
            stdout(&verify)
        );
    }
    eprintln!(
        "SIGKILL during compaction ({segments_before} segment files, {} events): {} kills at \
         the steps [{}]; {random_kills} at random moments over a {full_run:.1?} run, each on a \
         fresh copy: {outcomes:?}; the lake read whole after every kill, each copy completed \
         and verified",
        whole.0.len(),
        step_kills.len(),
        step_kills.join("; ")
    );

    // To the end.
    let done = run(&["compact", "--lake", &location, "--all-windows"]);
    assert!(done.status.success(), "{done:?}");
    assert!(stdout(&done).contains("files:"), "{}", stdout(&done));
    eprintln!(
        "the run to the end after the step kills: {}",
        stdout(&done).replace('\n', "; ")
    );
    let lake = Lake::open(&location).await.expect("lake");
    let segments_after = lake.list_segments().await.expect("listing");
    let dates: std::collections::BTreeSet<_> = segments_after.iter().map(|s| &s.date).collect();
    assert!(
        segments_after.len() <= dates.len() * 2,
        "{} files after: {segments_after:?}",
        segments_after.len()
    );
    assert_lake_whole(&location, &whole, "after compaction").await;
    common::assert_lake_matches_source(&lake, &client).await;
    let verify = run(&["verify", "--lake", &location]);
    assert!(
        verify.status.success(),
        "verify: {}\n{}",
        stdout(&verify),
        String::from_utf8_lossy(&verify.stderr)
    );
    // Every account's balances as of the last event: unchanged (the report's `segments_read`
    // is the one thing that changes: far fewer files).
    let accounts_of = |o: &Output| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("balances json");
        v["accounts"].clone()
    };
    let balances_after = run(&balances_args);
    assert_eq!(
        accounts_of(&balances_after),
        accounts_of(&balances_before),
        "balances changed"
    );
    assert!(accounts_of(&balances_before)
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    // A second run has nothing to do.
    let again = run(&[
        "compact",
        "--lake",
        &location,
        "--all-windows",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(
        report["merges"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );

    // A rebuild from the compacted lake equals the source: every account's fields and balances.
    let target = Replica::start(testbed::random_cluster_id())
        .await
        .expect("target");
    let rebuild = run(&[
        "rebuild",
        "--lake",
        &location,
        "--addresses",
        target.address(),
        "--cluster-id",
        &target.cluster_id().to_string(),
        "--lake-cluster-id",
        &stack.replica.cluster_id().to_string(),
        "--until",
        "latest",
    ]);
    assert!(
        rebuild.status.success(),
        "rebuild: {}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    let source_accounts = common::source_accounts(&client).await;
    let target_accounts = common::source_accounts(&target.client().expect("client")).await;
    let key = |a: &tigerbeetle_unofficial::Account| {
        let r = a.as_raw();
        (
            r.id,
            r.ledger,
            r.code,
            r.user_data_128,
            r.user_data_64,
            r.user_data_32,
            r.debits_pending,
            r.debits_posted,
            r.credits_pending,
            r.credits_posted,
        )
    };
    let mut want: Vec<_> = source_accounts.iter().map(key).collect();
    let mut got: Vec<_> = target_accounts.iter().map(key).collect();
    want.sort_unstable();
    got.sort_unstable();
    // Accounts no event shows are not in a lake exported without the sweep.
    let seen: std::collections::HashSet<u128> = whole.1.iter().map(|a| a.id).collect();
    want.retain(|k| seen.contains(&k.0));
    assert_eq!(got, want, "the rebuilt accounts differ from the source");

    // Vacuum: nothing is old enough yet; with no retention, exactly the replaced files go.
    let kept = run(&[
        "vacuum", "--lake", &location, "--retain", "1h", "--format", "json",
    ]);
    let kept: serde_json::Value = serde_json::from_slice(&kept.stdout).expect("json");
    assert_eq!(kept["deleted"].as_array().map(Vec::len), Some(0), "{kept}");
    let vacuumed = run(&[
        "vacuum", "--lake", &location, "--retain", "0s", "--format", "json",
    ]);
    assert!(vacuumed.status.success(), "{vacuumed:?}");
    let vacuumed: serde_json::Value = serde_json::from_slice(&vacuumed.stdout).expect("json");
    let deleted = vacuumed["deleted"].as_array().expect("deleted").len();
    assert!(deleted >= segments_before, "{deleted} deleted");
    // The first run recorded where its kept files were removed: the second read from there.
    let read_from = |report: &serde_json::Value| -> u64 {
        report["tables"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["table"] == "transfers"))
            .and_then(|t| t["read_from_version"].as_str())
            .and_then(|v| v.parse().ok())
            .expect("the transfers table's read_from_version")
    };
    assert_eq!(read_from(&kept), 0, "{kept}");
    assert!(read_from(&vacuumed) > 0, "{vacuumed}");
    assert_eq!(vacuumed["recorded"], true, "{vacuumed}");
    assert_lake_whole(&location, &whole, "after vacuum").await;
    let verify = run(&["verify", "--lake", &location]);
    assert!(
        verify.status.success(),
        "verify after vacuum: {}",
        stdout(&verify)
    );
    // Time travel to before the compaction names what vacuum deleted.
    let ls = run(&[
        "balances",
        "--lake",
        &location,
        "--at",
        "latest",
        "--lake-version",
        "3",
    ]);
    assert_eq!(ls.status.code(), Some(2));
    let err = String::from_utf8_lossy(&ls.stderr);
    assert!(err.contains("ledgerlake vacuum"), "{err}");
    stack.cleanup().await;
}
