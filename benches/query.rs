//! DuckDB over the lake (issue 5, measurement 5): one account's balance as of a time, a one-day
//! statement, a full trial balance, on a synthetic lake of ≥ 10,000,000 events (full scale).
//!
//! The generator writes the lake directly through `Lake::commit` (the exporter's own commit
//! path, so files, names, encodings and partitions are exactly the exporter's): single-phase
//! transfers between 10,000 accounts on 3 ledgers, balances carried exactly, spread evenly over
//! 30 UTC days, segments of 32,768 events (the exporter's default at a sustained rate) cut at
//! midnight. The queries go straight over `read_parquet(...)` with the `_hi`/`_lo` columns, as
//! `schemas/lake.md` describes, through the DuckDB CLI (`.timer on`, 3 runs each, median).
//!
//! The anchor is a full scan of the same files (`count(*)` and a sum of one column): the least
//! any query that must look at every event pays. The targets are the issue's.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Args, Better, Report, Row, Scale};
use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::lake::{AccountRecord, Lake, Segment};
use serde_json::json;

const ACCOUNTS: u64 = 10_000;
const LEDGERS: u64 = 3;
const SEGMENT_EVENTS: usize = 32_768;
const RUNS: usize = 3;
const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;
/// 2026-01-01T00:00:00Z.
const START_NS: u64 = 1_767_225_600 * 1_000_000_000;
const CLUSTER: u128 = 5;

fn main() {
    let args = Args::parse();
    let (events, days) = match args.scale {
        Scale::Small => (1_000_000u64, 7u64),
        Scale::Full => (10_000_000u64, 30u64),
    };
    let lake_dir = args.work.join("lake-query");
    let _ = std::fs::remove_dir_all(&lake_dir);
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(generate(&lake_dir, events, days));
    let generate_s = started.elapsed().as_secs_f64();
    let (bytes, files) = common::dir_bytes(&lake_dir, "");
    eprintln!("bench query: {events} events in {files} files, {bytes} bytes, generated in {generate_s:.1} s");

    let glob = format!("{}/transfers/*/*.parquet", lake_dir.display());
    let src = format!("read_parquet('{glob}', hive_partitioning = true)");
    let span = days * NS_PER_DAY;
    let as_of = START_NS + span / 4 * 3;
    let account = 42u64;
    let day = ledgerlake::timefmt::date_partition(START_NS + span / 2);
    let is_account =
        |side: &str| format!("({side}_account_id_hi = 0 AND {side}_account_id_lo = {account})");
    let u128_of = |col: &str| format!("(({col}_hi::UHUGEINT << 64) | {col}_lo::UHUGEINT)");
    let side_balance = |name: &str| {
        format!(
            "CASE WHEN {d} THEN {dv} ELSE {cv} END AS {name}",
            d = is_account("debit"),
            dv = u128_of(&format!("debit_account_{name}")),
            cv = u128_of(&format!("credit_account_{name}")),
        )
    };
    let balances = [
        "debits_pending",
        "debits_posted",
        "credits_pending",
        "credits_posted",
    ]
    .map(side_balance)
    .join(", ");
    let balance_as_of = format!(
        "SELECT timestamp, {balances} FROM {src} WHERE timestamp <= {as_of} AND ({} OR {}) \
         ORDER BY timestamp DESC LIMIT 1;",
        is_account("debit"),
        is_account("credit")
    );
    let statement = format!(
        "SELECT timestamp, event_type, {tid} AS transfer_id, \
         CASE WHEN {d} THEN 'debit' ELSE 'credit' END AS side, {amount} AS amount, {balances} \
         FROM {src} WHERE date = DATE '{day}' AND ({d} OR {c}) ORDER BY timestamp;",
        tid = u128_of("transfer_id"),
        amount = u128_of("amount"),
        d = is_account("debit"),
        c = is_account("credit"),
    );
    let side = |s: &str| {
        format!(
            "SELECT ledger, {s}_account_id_hi AS id_hi, {s}_account_id_lo AS id_lo, timestamp, \
             {{'dp_hi': {s}_account_debits_pending_hi, 'dp_lo': {s}_account_debits_pending_lo, \
               'dpo_hi': {s}_account_debits_posted_hi, 'dpo_lo': {s}_account_debits_posted_lo, \
               'cp_hi': {s}_account_credits_pending_hi, 'cp_lo': {s}_account_credits_pending_lo, \
               'cpo_hi': {s}_account_credits_posted_hi, 'cpo_lo': {s}_account_credits_posted_lo}} AS b \
             FROM t"
        )
    };
    let sums = ["dp", "dpo", "cp", "cpo"]
        .map(|k| {
            format!("sum(b.{k}_hi::HUGEINT) AS {k}_hi_sum, sum(b.{k}_lo::HUGEINT) AS {k}_lo_sum")
        })
        .join(", ");
    let trial_balance = format!(
        "WITH t AS (SELECT * FROM {src} WHERE timestamp <= {as_of}), \
         sides AS ({debit} UNION ALL {credit}), \
         latest AS (SELECT ledger, id_hi, id_lo, arg_max(b, timestamp) AS b FROM sides GROUP BY ALL) \
         SELECT ledger, count(*) AS accounts, {sums}, \
         sum(b.dpo_lo::HUGEINT) = sum(b.cpo_lo::HUGEINT) AND sum(b.dpo_hi::HUGEINT) = sum(b.cpo_hi::HUGEINT) AS balanced \
         FROM latest GROUP BY ledger ORDER BY ledger;",
        debit = side("debit"),
        credit = side("credit"),
    );
    let full_scan = format!("SELECT count(*), sum(amount_lo::HUGEINT) FROM {src};");

    // Check the answers once (printed), then time.
    let check = duckdb(&format!(
        "SELECT count(*) AS rows FROM ({}); {balance_as_of} SELECT count(*) AS statement_rows FROM ({}); {trial_balance}",
        full_scan.trim_end_matches(';'),
        statement.trim_end_matches(';')
    ), false);
    eprintln!("bench query: answers:\n{}", check.1);
    assert!(
        check.1.contains("true"),
        "the trial balance must balance:\n{}",
        check.1
    );

    let mut report = Report::new("query", args.scale);
    let reference = time(&full_scan);
    for (id, sql, target) in [
        ("5 balance as of (s)", &balance_as_of, 0.5),
        ("5 one-day statement (s)", &statement, 0.5),
        ("5 trial balance (s)", &trial_balance, 5.0),
    ] {
        let t = time(sql);
        report.row(Row {
            id: id.into(),
            what: format!("DuckDB CLI, median of {RUNS}, {events} events"),
            unit: "s".into(),
            ours: t,
            anchor: Some(reference),
            anchor_what: "full scan: count(*) + sum(amount_lo) over the same files".into(),
            target: Some((target, false)),
            better: Better::Lower,
        });
    }
    report.detail("events", json!(events));
    report.detail("days", json!(days));
    report.detail("files", json!(files));
    report.detail("lake_bytes", json!(bytes));
    report.detail("generate_s", json!(generate_s));
    report.detail(
        "duckdb_version",
        json!(duckdb("SELECT version();", false).1.trim()),
    );
    report.detail(
        "sql",
        json!({
            "balance_as_of": balance_as_of,
            "statement": statement,
            "trial_balance": trial_balance,
            "full_scan": full_scan,
        }),
    );
    report.finish(&args);
    let _ = std::fs::remove_dir_all(&lake_dir);
}

/// Median wall time DuckDB reports for `sql`, over [`RUNS`] runs in one session.
fn time(sql: &str) -> f64 {
    let script = format!(
        ".timer on\n.output /dev/null\n{}",
        format!("{sql}\n").repeat(RUNS)
    );
    let (timings, _) = duckdb(&script, true);
    let mut t: Vec<f64> = timings;
    assert_eq!(t.len(), RUNS, "one timing per run");
    t.sort_by(f64::total_cmp);
    t[RUNS / 2]
}

/// Runs a script through the DuckDB CLI; returns the `Run Time` figures and the output.
fn duckdb(script: &str, timed: bool) -> (Vec<f64>, String) {
    let mut child = Command::new("duckdb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the DuckDB CLI (`duckdb`, from PyPI duckdb-cli; scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    let output = child.wait_with_output().expect("duckdb runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && err.trim().is_empty(),
        "duckdb failed: {err}\n{script}"
    );
    let timings = if timed {
        text.lines()
            .filter_map(|l| l.strip_prefix("Run Time (s): real "))
            .filter_map(|r| r.split_whitespace().next()?.parse().ok())
            .collect()
    } else {
        Vec::new()
    };
    (timings, text)
}

/// splitmix64: deterministic, fast, good enough to pick accounts and amounts.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[derive(Clone, Copy, Default)]
struct Balance {
    debits_posted: u128,
    credits_posted: u128,
}

fn account_fields(id: u64, b: Balance) -> AccountFields {
    AccountFields {
        id: u128::from(id),
        debits_posted: b.debits_posted,
        credits_posted: b.credits_posted,
        code: 10,
        timestamp: START_NS - 1_000_000 + id,
        ..AccountFields::default()
    }
}

/// Writes `events` single-phase transfers over `days` days through `Lake::commit`.
async fn generate(dir: &Path, events: u64, days: u64) {
    let lake = Lake::open(&dir.display().to_string()).await.expect("lake");
    lake.bind_cluster(CLUSTER).await.expect("bind");
    let step = days * NS_PER_DAY / events;
    let mut balances = vec![Balance::default(); ACCOUNTS as usize + 1];
    let mut seen = vec![false; ACCOUNTS as usize + 1];
    let mut open: Vec<Event> = Vec::with_capacity(SEGMENT_EVENTS);
    let mut new_accounts: Vec<AccountRecord> = Vec::new();
    let per_ledger = ACCOUNTS / LEDGERS;
    for i in 0..events {
        let ts = START_NS + i * step + 1;
        if open.len() == SEGMENT_EVENTS
            || open
                .first()
                .is_some_and(|f| f.timestamp / NS_PER_DAY != ts / NS_PER_DAY)
        {
            commit(&lake, &mut open, &mut new_accounts).await;
        }
        let r = mix(i);
        let ledger = r % LEDGERS;
        // Accounts 1..=ACCOUNTS; ledger L holds ids with (id - 1) / per_ledger == L.
        let pick = |x: u64| 1 + ledger * per_ledger + x % per_ledger;
        let dr = pick(r >> 8);
        let mut cr = pick(r >> 24);
        if cr == dr {
            cr = 1 + ledger * per_ledger + (dr - ledger * per_ledger) % per_ledger;
            debug_assert_ne!(cr, dr);
        }
        let amount = u128::from(1 + (r >> 40) % 100_000);
        balances[dr as usize].debits_posted += amount;
        balances[cr as usize].credits_posted += amount;
        let ledger = ledger as u32 + 1;
        let event = Event {
            timestamp: ts,
            event_type: EventType::SinglePhase,
            ledger,
            transfer: TransferFields {
                id: u128::from(i + 1),
                amount,
                code: 1,
                timestamp: ts,
                ..TransferFields::default()
            },
            debit_account: account_fields(dr, balances[dr as usize]),
            credit_account: account_fields(cr, balances[cr as usize]),
        };
        for a in [&event.debit_account, &event.credit_account] {
            if !seen[a.id as usize] {
                seen[a.id as usize] = true;
                new_accounts.push(AccountRecord::from_event_account(a, ledger, ts));
            }
        }
        open.push(event);
    }
    commit(&lake, &mut open, &mut new_accounts).await;
}

async fn commit(lake: &Lake, open: &mut Vec<Event>, new_accounts: &mut Vec<AccountRecord>) {
    if open.is_empty() {
        return;
    }
    let segment = Segment {
        events: std::mem::take(open),
        new_accounts: std::mem::take(new_accounts),
    };
    lake.commit(&segment, CLUSTER).await.expect("commit");
    open.reserve(SEGMENT_EVENTS);
}
