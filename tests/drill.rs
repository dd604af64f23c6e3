//! `ledgerlake drill` and the rebuild's adaptive request size against the real stack: a lake
//! written directly (single-phase transfers, linked chains, pending transfers and their posts,
//! over several segments) is rebuilt into a `--development` replica (32 KiB requests: the rebuild
//! must learn the limit), compared, then changed behind the drill's back and compared again; and
//! the CLI with a throwaway replica it starts itself, and its exit statuses.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::drill::{self, DrillError, DrillOptions, DrillTarget};
use ledgerlake::lake::{AccountRecord, Lake, Segment};
use ledgerlake::rebuild::plan::Until;
use ledgerlake::testbed::{self, Replica, ReplicaOptions};
use tigerbeetle_unofficial::{transfer, Transfer};

const LINKED: u16 = 1;
const PENDING: u16 = 1 << 1;
const POST_PENDING: u16 = 1 << 2;
const ACCOUNTS: u128 = 20;
const BASE: u64 = 1_760_000_000_000_000_000;

#[derive(Default, Clone, Copy)]
struct Balances {
    debits_pending: u128,
    debits_posted: u128,
    credits_pending: u128,
    credits_posted: u128,
}

fn fields(id: u128, b: &Balances) -> AccountFields {
    AccountFields {
        id,
        debits_pending: b.debits_pending,
        debits_posted: b.debits_posted,
        credits_pending: b.credits_pending,
        credits_posted: b.credits_posted,
        code: 1,
        timestamp: BASE + id as u64,
        ..AccountFields::default()
    }
}

/// Writes a lake of `transfers` events in segments of `per_segment`: every 10 events, a chain of
/// three linked transfers, a pending transfer and its post, and five single-phase transfers.
/// Returns the location, the timestamp of every event, and how many accounts they touch.
async fn write_lake(
    dir: &std::path::Path,
    cluster_id: u128,
    transfers: u64,
    per_segment: usize,
) -> (String, Vec<u64>, usize) {
    let location = dir.join("lake").to_string_lossy().into_owned();
    let lake = Lake::open(&location).await.unwrap();
    lake.bind_cluster(cluster_id).await.unwrap();
    let mut balances = vec![Balances::default(); ACCOUNTS as usize + 1];
    let mut seen = vec![false; ACCOUNTS as usize + 1];
    let mut events = Vec::new();
    let mut pending: Option<(u128, u128, u128, u128)> = None;
    for i in 0..transfers {
        let timestamp = BASE + 1_000 + i;
        let id = u128::from(i) + 1_000;
        let (event_type, flags, debit, credit, amount, pending_id) = match i % 10 {
            3 | 4 => (
                EventType::SinglePhase,
                LINKED,
                1 + u128::from(i) % ACCOUNTS,
                1 + u128::from(i + 3) % ACCOUNTS,
                7,
                0,
            ),
            7 => (
                EventType::TwoPhasePending,
                PENDING,
                1 + u128::from(i) % ACCOUNTS,
                1 + u128::from(i + 5) % ACCOUNTS,
                11,
                0,
            ),
            8 => {
                let (pid, d, c, a) = pending.take().expect("a pending transfer before its post");
                (EventType::TwoPhasePosted, POST_PENDING, d, c, a, pid)
            }
            _ => (
                EventType::SinglePhase,
                0,
                1 + u128::from(i) % ACCOUNTS,
                1 + u128::from(i + 1) % ACCOUNTS,
                u128::from(i) + 1,
                0,
            ),
        };
        let (d, c) = (debit as usize, credit as usize);
        match event_type {
            EventType::TwoPhasePending => {
                balances[d].debits_pending += amount;
                balances[c].credits_pending += amount;
                pending = Some((id, debit, credit, amount));
            }
            EventType::TwoPhasePosted => {
                balances[d].debits_pending -= amount;
                balances[c].credits_pending -= amount;
                balances[d].debits_posted += amount;
                balances[c].credits_posted += amount;
            }
            _ => {
                balances[d].debits_posted += amount;
                balances[c].credits_posted += amount;
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
            debit_account: fields(debit, &balances[d]),
            credit_account: fields(credit, &balances[c]),
        });
    }
    let timestamps: Vec<u64> = events.iter().map(|e| e.timestamp).collect();
    for chunk in events.chunks(per_segment) {
        let mut new_accounts = Vec::new();
        for e in chunk {
            for a in [&e.debit_account, &e.credit_account] {
                if !seen[a.id as usize] {
                    seen[a.id as usize] = true;
                    new_accounts.push(AccountRecord::from_event_account(a, 1, e.timestamp));
                }
            }
        }
        lake.commit(
            &Segment {
                events: chunk.to_vec(),
                new_accounts,
            },
            cluster_id,
        )
        .await
        .unwrap();
    }
    (location, timestamps, seen.iter().filter(|s| **s).count())
}

fn options(lake: &str, target: DrillTarget, compare_only: bool) -> DrillOptions {
    DrillOptions {
        lake: lake.to_string(),
        target,
        until: Until::Latest,
        compare_only,
        transfers_compared_max: 1_000_000,
        batch_events_max: 8189,
        reply_timeout: Duration::from_secs(60),
    }
}

/// The `ledgerlake` binary built with this test, copied aside first (a build of another work
/// tree sharing the target directory may replace it).
fn ledgerlake_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let built = PathBuf::from(env!("CARGO_BIN_EXE_ledgerlake"));
        let copy =
            std::env::temp_dir().join(format!("ledgerlake-drill-test-{}", std::process::id()));
        std::fs::copy(&built, &copy).expect("copy the ledgerlake binary");
        copy
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_into_a_development_replica_learns_its_limit_passes_and_catches_a_changed_target() {
    let cluster_id = testbed::random_cluster_id();
    let dir = tempfile::tempdir().unwrap();
    let (lake, timestamps, accounts) = write_lake(dir.path(), cluster_id, 3_000, 700).await;
    // `--development` without `--limit-request`: 32 KiB requests, about 250 events.
    let target = Replica::start_with(
        cluster_id,
        &ReplicaOptions {
            limit_request: None,
            ..ReplicaOptions::default()
        },
    )
    .await
    .expect("development replica");
    let at = || DrillTarget::Addresses {
        addresses: target.address().to_string(),
        cluster_id: None,
    };
    let report = drill::drill(&options(&lake, at(), false), &mut |_| {})
        .await
        .expect("drill runs");
    let c = &report.comparison;
    assert!(report.passed, "{:#?}", c.differences);
    assert_eq!((c.transfers_in_lake, c.transfers_in_target), (3_000, 3_000));
    assert_eq!(c.transfers_fields_compared, 3_000);
    assert_eq!(
        (
            c.accounts_compared,
            c.accounts_in_lake,
            c.accounts_in_target
        ),
        (accounts, accounts, accounts)
    );
    assert!(report.rto_s.is_some() && report.replica_start_s.is_none());
    let run = report
        .rebuild
        .as_ref()
        .and_then(|r| r.run.as_ref())
        .expect("a rebuild ran");
    assert_eq!(run.transfers_created, 3_000);
    // The search ends within a few requests of the limit (32 KiB: 253 events); 3,000 transfers
    // may end it a step short of the exact figure.
    let learned = run.batch_events_used;
    assert!((100..=253).contains(&learned), "{run:?}");
    assert!(
        run.batch_events_limit_learned.is_none_or(|l| l == learned),
        "{run:?}"
    );
    assert!(run.requests_refused_too_large > 0);
    eprintln!(
        "development replica: {learned} events per request after {} refusals; RTO {:?} s",
        run.requests_refused_too_large, report.rto_s
    );

    // A drill never writes into a target that holds something.
    let err = drill::drill(&options(&lake, at(), false), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, DrillError::TargetNotFresh { .. }), "{err}");

    // Changed behind the drill's back: a new transfer between accounts 1 and 2.
    let client = target.client().unwrap();
    let extra = Transfer::new(9_999_999)
        .with_debit_account_id(1)
        .with_credit_account_id(2)
        .with_amount(5)
        .with_ledger(1)
        .with_code(1)
        .with_flags(transfer::Flags::empty());
    client
        .create_transfers(vec![extra])
        .await
        .expect("the extra transfer is created");
    let report = drill::drill(&options(&lake, at(), true), &mut |_| {})
        .await
        .expect("compare-only runs");
    assert!(!report.passed);
    assert!(report.rebuild.is_none() && report.rto_s.is_none());
    let d = &report.comparison.differences;
    let extra_found = d.iter().any(|d| {
        d.object == "transfer"
            && d.field == "presence"
            && d.id == Some(9_999_999)
            && d.lake.is_none()
    });
    assert!(extra_found, "{d:#?}");
    for (account, field) in [(1, "debits_posted"), (2, "credits_posted")] {
        assert!(
            d.iter()
                .any(|d| d.object == "account" && d.id == Some(account) && d.field == field),
            "account {account} {field}: {d:#?}"
        );
    }
    assert_eq!(report.comparison.differences_total, 3, "{d:#?}");

    // The CLI says the same with exit status 1, as JSON.
    let output = Command::new(ledgerlake_bin())
        .args([
            "drill",
            "--lake",
            &lake,
            "--addresses",
            target.address(),
            "--compare-only",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["passed"], false);
    assert_eq!(json["comparison"]["differences_total"], "3");
    // As of an earlier moment, the extra transfer and the later ones are all differences.
    let mid = timestamps[1_499];
    let output = Command::new(ledgerlake_bin())
        .args([
            "drill",
            "--lake",
            &lake,
            "--addresses",
            target.address(),
            "--compare-only",
            "--until",
            &mid.to_string(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["comparison"]["transfers_in_lake"], "1500");
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drill_starts_a_throwaway_replica_and_exits_by_its_result() {
    let binary = std::env::var(testbed::TIGERBEETLE_ENV)
        .expect("LEDGERLAKE_TIGERBEETLE (run scripts/setup.sh)");
    let cluster_id = testbed::random_cluster_id();
    let dir = tempfile::tempdir().unwrap();
    let (lake, timestamps, _) = write_lake(dir.path(), cluster_id, 2_000, 300).await;
    let until = timestamps[1_234].to_string();
    let output = Command::new(ledgerlake_bin())
        .args([
            "drill",
            "--lake",
            &lake,
            "--tigerbeetle",
            &binary,
            "--until",
            &until,
            "--transfers-compared-max",
            "100",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["passed"], true, "{json:#}");
    assert_eq!(json["target"]["throwaway"], true);
    assert_eq!(json["until"], until);
    assert_eq!(json["comparison"]["transfers_in_lake"], "1235");
    assert_eq!(json["comparison"]["transfers_in_target"], "1235");
    // 1,235 transfers, at most 100 compared field by field: every 16th.
    assert_eq!(json["comparison"]["transfers_sample_every"], "16");
    assert_eq!(json["comparison"]["transfers_fields_compared"], "78");
    assert!(json["rto_s"].as_f64().unwrap() >= json["replica_start_s"].as_f64().unwrap());
    assert_eq!(
        json["rebuild"]["run"]["batch_events_used"], 8189,
        "the throwaway replica takes full requests"
    );
    // The table for people.
    let output = Command::new(ledgerlake_bin())
        .args(["drill", "--lake", &lake, "--tigerbeetle", &binary])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("result:      PASS") && table.contains("RTO:"),
        "{table}"
    );
    // Could not run: no lake there.
    let output = Command::new(ledgerlake_bin())
        .args([
            "drill",
            "--lake",
            &dir.path().join("none").to_string_lossy(),
            "--tigerbeetle",
            &binary,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
