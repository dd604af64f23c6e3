//! The auditors' DuckDB cookbook (`schemas/duckdb/cookbook/*.sql`, quoted in docs/AUDIT.md), run
//! with the real DuckDB CLI by `tests/duckdb/check_cookbook.py`:
//!
//! - on a synthetic lake (written with delta-rs) whose answers come from a Python reference ledger
//!   (`tests/duckdb/run_synthetic.sh`): every query with plain DuckDB at the latest version and at
//!   an earlier transfers version (time travel, answers from the events committed up to it), and a
//!   subset through DuckDB's delta extension at both;
//! - on a lake exported from the real stack (TigerBeetle replica, the `tigerbeetle amqp` CDC job,
//!   RabbitMQ, the exporter in-process), with every expected answer computed from the source
//!   cluster through the client (`query_transfers`, `query_accounts`, `lookup_accounts`,
//!   `get_account_transfers`, `get_account_balances`) and the workload's list of expired
//!   transfers, never from the lake; every query with plain DuckDB, the subset with the delta
//!   extension.
//!
//! What the source cannot tell: when the cluster expired a pending transfer (TigerBeetle keeps no
//! balance point for an expiry and `query_transfers` returns the pending transfer only). The
//! expiry happens at or after `expires_at` and, since the workload waits for its expiries, before
//! any later commit, so the cases below avoid depending on the exact expiry timestamp: statements
//! and "as of" times are chosen before the first possible expiry, or after all of them.

mod common;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An account's balances after each of its events: (timestamp, [debits pending, debits posted,
/// credits pending, credits posted]).
type BalanceHistory = Vec<(u64, [u128; 4])>;

use common::stack::{wait_for_event_count, InProcessExporter, Stack};
use futures::FutureExt;
use ledgerlake::lake::Lake;
use ledgerlake::workload::WorkloadSummary;
use serde_json::{json, Value};
use tigerbeetle_unofficial::account::Filter as AccountFilter;
use tigerbeetle_unofficial::{Account, Client, QueryFilter, Transfer};

const TRANSFER_PENDING: u16 = 1 << 1;
const TRANSFER_POST: u16 = 1 << 2;
const TRANSFER_VOID: u16 = 1 << 3;
const ACCOUNT_HISTORY: u16 = common::ACCOUNT_HISTORY;
/// 2100-01-01T00:00:00Z in ns: "as of the latest state" (after every event, expiries included).
const LATEST: u64 = 4_102_444_800_000_000_000;
const NS_PER_S: u64 = 1_000_000_000;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The DuckDB CLI and the Python package must be there: a missing tool fails the test.
fn require_duckdb() {
    let cli = Command::new("duckdb").arg("--version").output();
    assert!(
        cli.as_ref().is_ok_and(|o| o.status.success()),
        "the DuckDB CLI is missing ({cli:?}): run scripts/setup.sh"
    );
    let py = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output();
    assert!(
        py.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with the duckdb package is missing ({py:?}): run scripts/setup.sh"
    );
}

/// The DuckDB 1.5.5 CLI and the delta extension that loads into it (scripts/setup.sh fetches both;
/// the extension sits next to the httpfs one when LEDGERLAKE_DUCKDB_DELTA is not set).
fn delta_reader() -> (String, String) {
    let cli = std::env::var("LEDGERLAKE_DUCKDB_S3_CLI")
        .expect("LEDGERLAKE_DUCKDB_S3_CLI (run scripts/setup.sh)");
    let extension = std::env::var("LEDGERLAKE_DUCKDB_DELTA").unwrap_or_else(|_| {
        std::env::var("LEDGERLAKE_DUCKDB_HTTPFS")
            .expect("LEDGERLAKE_DUCKDB_DELTA or LEDGERLAKE_DUCKDB_HTTPFS (run scripts/setup.sh)")
            .replace("httpfs", "delta")
    });
    assert!(
        Path::new(&cli).is_file() && Path::new(&extension).is_file(),
        "the DuckDB 1.5.5 CLI ({cli}) or the delta extension ({extension}) is missing: run scripts/setup.sh"
    );
    (cli, extension)
}

#[test]
fn synthetic_lake_cookbook_matches_the_reference_ledger() {
    require_duckdb();
    let (delta_cli, delta_extension) = delta_reader();
    let out = Command::new("bash")
        .arg("tests/duckdb/run_synthetic.sh")
        .env("DELTA_CLI", delta_cli)
        .env("DELTA_EXTENSION", delta_extension)
        .current_dir(repo_root())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "run_synthetic.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Plain at the latest version and at an earlier one, then the delta extension at both.
    assert_eq!(
        stdout.matches(" passed, 0 failed").count(),
        4,
        "unexpected output:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("97 passed, 0 failed") && stdout.contains("5 passed, 0 failed"),
        "every cookbook case ran:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
}

// ------------------------------------------------------------------------------------------------
// The views over a lake written by ledgerlake itself (`Lake::commit`, the exporter's commit path):
// enough commits for the kernel's checkpoints, time travel to versions before, at and after one.

/// A lake of `segments` single-phase segments, each committed by `Lake::commit`; returns the
/// events of each segment, in commit order. Amounts and balances reach past 10^38.
async fn committed_lake(location: &str, segments: usize) -> Vec<Vec<ledgerlake::cdc::Event>> {
    use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
    use ledgerlake::lake::{AccountRecord, Segment};
    const CLUSTER: u128 = 0x00c0_ffee;
    let lake = Lake::open(location).await.expect("lake");
    lake.bind_cluster(CLUSTER).await.expect("bind");
    // 2024-03-01T00:00:00Z; one segment every 10 minutes, so none straddles midnight.
    let base = 1_709_251_200 * NS_PER_S;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for k in 0..segments as u64 {
        let mut events = Vec::new();
        for i in 0..(1 + k % 3) {
            let timestamp = base + k * 600 * NS_PER_S + i * NS_PER_S;
            // Accounts 1..=40 on two ledgers; amounts small, near 10^38 and near u128::MAX.
            let (debit, credit) = (1 + (k * 7 + i) % 40, 1 + (k * 11 + i + 1) % 40);
            let (debit, credit) = if debit == credit {
                (debit, 1 + debit % 40)
            } else {
                (debit, credit)
            };
            let amount = match (k + i) % 4 {
                0 => u128::from(k + i + 1),
                1 => 10u128.pow(38) + u128::from(k),
                2 => 10u128.pow(38) - 1,
                _ => u128::MAX / 7 - u128::from(i),
            };
            let side = |id: u64, debits: bool| AccountFields {
                id: u128::from(id) << 100 | u128::from(id),
                debits_posted: if debits { amount } else { 0 },
                credits_posted: if debits { 0 } else { amount },
                timestamp: base - 1_000 + id,
                ..AccountFields::default()
            };
            events.push(Event {
                timestamp,
                event_type: EventType::SinglePhase,
                ledger: 1,
                transfer: TransferFields {
                    id: u128::from(timestamp),
                    amount,
                    timestamp,
                    user_data_128: u128::MAX,
                    user_data_64: u64::MAX,
                    user_data_32: u32::MAX,
                    ..TransferFields::default()
                },
                debit_account: side(debit, true),
                credit_account: side(credit, false),
            });
        }
        let mut new_accounts = Vec::new();
        for e in &events {
            for a in [&e.debit_account, &e.credit_account] {
                if seen.insert(a.id) {
                    new_accounts.push(AccountRecord::from_event_account(a, e.ledger, e.timestamp));
                }
            }
        }
        let segment = Segment {
            events: events.clone(),
            new_accounts,
        };
        lake.commit(&segment, CLUSTER).await.expect("commit");
        out.push(events);
    }
    out
}

/// Runs `queries` over the views at `lake_version` (None: latest), plain or through the delta
/// extension; returns the JSON DuckDB printed.
fn views_answer(lake: &str, lake_version: Option<u64>, delta: bool, queries: &str) -> String {
    let mut command;
    if delta {
        let (cli, extension) = delta_reader();
        command = Command::new(cli);
        command.args(["-json", "-cmd", &format!("LOAD '{extension}'")]);
    } else {
        command = Command::new("duckdb");
        command.arg("-json");
    }
    if let Some(version) = lake_version {
        command.args(["-cmd", &format!("SET VARIABLE lake_version = {version}")]);
    }
    let schema = if delta { "lake_delta.sql" } else { "lake.sql" };
    let out = command
        .args(["-cmd", &format!("SET VARIABLE lake = '{lake}'")])
        .args(["-cmd", &format!(".read schemas/duckdb/{schema}")])
        .args(["-c", queries])
        .current_dir(repo_root())
        .output()
        .expect("duckdb runs");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "duckdb over {lake} at {lake_version:?} (delta: {delta}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_read_a_committed_lake_at_every_kind_of_version() {
    require_duckdb();
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().join("lake").to_string_lossy().into_owned();
    // Past two checkpoints of `transfers` (every 100 commits).
    let segments = committed_lake(&location, 215).await;
    let log = dir.path().join("lake/transfers/_delta_log");
    assert!(
        log.join("_last_checkpoint").is_file(),
        "the writer checkpointed transfers"
    );
    let queries = "SELECT count(*) AS events, CAST(exact_sum(amount) AS VARCHAR) AS volume, \
                          CAST(max(timestamp) AS VARCHAR) AS last FROM events; \
                   SELECT count(*) AS accounts FROM accounts; \
                   SELECT transfers_version, versions_from FROM lake_info;";
    // Version v of transfers holds the first v segments (version 0 creates the table).
    for version in [
        None,
        Some(1),
        Some(99),
        Some(100),
        Some(150),
        Some(200),
        Some(201),
    ] {
        let upto = version.map_or(segments.len(), |v| v as usize);
        let events: Vec<_> = segments[..upto].iter().flatten().collect();
        let mut volume = Wide::default();
        let mut accounts = HashSet::new();
        for e in &events {
            volume.add(e.transfer.amount);
            accounts.insert(e.debit_account.id);
            accounts.insert(e.credit_account.id);
        }
        let expected = format!(
            "[{{\"events\":{},\"volume\":\"{}\",\"last\":\"{}\"}}]\n\
             [{{\"accounts\":{}}}]\n[{{\"transfers_version\":{},\"versions_from\":{}}}]\n",
            events.len(),
            volume.decimal(),
            events.last().expect("events").timestamp,
            accounts.len(),
            upto,
            // Every transfers commit records the accounts versions it follows.
            if version.is_some() {
                "\"tableVersions\""
            } else {
                "null"
            }
        );
        let plain = views_answer(&location, version, false, queries);
        assert_eq!(plain, expected, "plain DuckDB at {version:?}");
        let delta = views_answer(&location, version, true, queries);
        assert_eq!(delta, expected, "delta extension at {version:?}");
    }
}

// ------------------------------------------------------------------------------------------------
// Exact arithmetic beyond u128, and dates.

/// An unsigned 256-bit integer (little-endian u64 limbs): sums of u128 values, exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Wide([u64; 4]);

impl Wide {
    fn from_u128(x: u128) -> Wide {
        Wide([x as u64, (x >> 64) as u64, 0, 0])
    }

    fn add(&mut self, x: u128) {
        self.add_wide(&Wide::from_u128(x));
    }

    fn add_wide(&mut self, other: &Wide) {
        let mut carry = 0u128;
        for (limb, a) in self.0.iter_mut().zip(other.0) {
            let s = u128::from(*limb) + u128::from(a) + carry;
            *limb = s as u64;
            carry = s >> 64;
        }
        assert_eq!(carry, 0, "Wide overflow");
    }

    /// self - other, requires self >= other.
    fn sub(&self, other: &Wide) -> Wide {
        let mut out = [0u64; 4];
        let mut borrow = 0i128;
        for (i, limb) in out.iter_mut().enumerate() {
            let d = i128::from(self.0[i]) - i128::from(other.0[i]) - borrow;
            if d < 0 {
                *limb = (d + (1i128 << 64)) as u64;
                borrow = 1;
            } else {
                *limb = d as u64;
                borrow = 0;
            }
        }
        assert_eq!(borrow, 0, "Wide underflow");
        Wide(out)
    }

    fn fits_u128(&self) -> bool {
        self.0[2] == 0 && self.0[3] == 0
    }

    fn decimal(&self) -> String {
        let mut limbs = self.0;
        if limbs == [0; 4] {
            return "0".into();
        }
        let mut digits = Vec::new();
        while limbs != [0; 4] {
            // Divide by 10^19 (fits a u64), collecting the remainder's 19 digits.
            const D: u128 = 10_000_000_000_000_000_000;
            let mut rem = 0u128;
            for limb in limbs.iter_mut().rev() {
                let cur = (rem << 64) | u128::from(*limb);
                *limb = (cur / D) as u64;
                rem = cur % D;
            }
            digits.push(rem as u64);
        }
        let mut s = digits.last().unwrap().to_string();
        for d in digits.iter().rev().skip(1) {
            s.push_str(&format!("{d:019}"));
        }
        s
    }
}

impl PartialOrd for Wide {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Wide {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

/// a - b as signed decimal text, exactly.
fn signed_difference(a: &Wide, b: &Wide) -> String {
    if a >= b {
        a.sub(b).decimal()
    } else {
        format!("-{}", b.sub(a).decimal())
    }
}

/// A TigerBeetle timestamp as DuckDB's JSON output prints a TIMESTAMP_NS: UTC,
/// `YYYY-MM-DD HH:MM:SS[.fraction]`, the fraction's trailing zeros dropped, all 9 digits kept.
fn utc_time_text(ns: u64) -> String {
    let secs = ns / NS_PER_S;
    let frac = ns % NS_PER_S;
    let tod = secs % 86_400;
    let mut text = format!(
        "{} {:02}:{:02}:{:02}",
        utc_date(ns),
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    );
    if frac != 0 {
        text.push_str(format!(".{frac:09}").trim_end_matches('0'));
    }
    text
}

/// The UTC date (YYYY-MM-DD) of a TigerBeetle timestamp (civil-from-days, H. Hinnant).
fn utc_date(ns: u64) -> String {
    let days = (ns / NS_PER_S / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn s<T: ToString>(x: T) -> Value {
    Value::String(x.to_string())
}

// ------------------------------------------------------------------------------------------------
// The source cluster, as read through the client.

/// What a transfer is, by its flags (the CDC event type it produced).
fn event_type(flags: u16) -> u8 {
    if flags & TRANSFER_POST != 0 {
        2
    } else if flags & TRANSFER_VOID != 0 {
        3
    } else if flags & TRANSFER_PENDING != 0 {
        1
    } else {
        0
    }
}

fn event_name(event_type: u8) -> &'static str {
    [
        "single_phase",
        "two_phase_pending",
        "two_phase_posted",
        "two_phase_voided",
        "two_phase_expired",
    ][event_type as usize]
}

fn expires_at(t: &tigerbeetle_unofficial::transfer::Raw) -> Option<u64> {
    (t.flags & TRANSFER_PENDING != 0 && t.timeout > 0)
        .then(|| t.timestamp + u64::from(t.timeout) * NS_PER_S)
}

/// Every transfer touching an account with from <= timestamp <= to, oldest first.
async fn account_transfers(client: &Client, account: u128, from: u64, to: u64) -> Vec<Transfer> {
    let mut all = Vec::new();
    let mut timestamp_min = from;
    loop {
        let mut filter = AccountFilter::new(account, common::PAGE);
        filter.as_raw_mut().timestamp_min = timestamp_min;
        // TigerBeetle reads 0 as "no upper bound" (u64::MAX is out of its range).
        filter.as_raw_mut().timestamp_max = if to == u64::MAX { 0 } else { to };
        filter.as_raw_mut().flags = 0b11; // debits and credits
        let page = client
            .get_account_transfers(Box::new(filter))
            .await
            .expect("get_account_transfers");
        let Some(last) = page.last() else { break };
        timestamp_min = last.as_raw().timestamp + 1;
        let full = page.len() == common::PAGE as usize;
        all.extend(page);
        if !full {
            break;
        }
    }
    all
}

/// Every transfer with the given user_data_128 (not 0: 0 means "any" to TigerBeetle).
async fn transfers_with_user_data(client: &Client, user_data_128: u128) -> Vec<Transfer> {
    assert_ne!(user_data_128, 0);
    let mut all = Vec::new();
    let mut timestamp_min = 0;
    loop {
        let mut filter = QueryFilter::new(common::PAGE).with_user_data_128(user_data_128);
        filter.as_raw_mut().timestamp_min = timestamp_min;
        let page = client
            .query_transfers(Box::new(filter))
            .await
            .expect("query_transfers");
        let Some(last) = page.last() else { break };
        timestamp_min = last.as_raw().timestamp + 1;
        let full = page.len() == common::PAGE as usize;
        all.extend(page);
        if !full {
            break;
        }
    }
    all
}

/// The source, read whole after the workload.
struct Source {
    transfers: Vec<tigerbeetle_unofficial::transfer::Raw>,
    by_id: HashMap<u128, tigerbeetle_unofficial::transfer::Raw>,
    accounts: HashMap<u128, tigerbeetle_unofficial::account::Raw>,
    /// Pending transfer id → timestamp of the post or void that resolved it.
    resolved_at: HashMap<u128, u64>,
    /// The expired pending transfers (from the workload's summary, checked against the source).
    expired: Vec<tigerbeetle_unofficial::transfer::Raw>,
    /// The earliest moment any expiry can have happened (the smallest `expires_at` among them).
    first_possible_expiry: u64,
    /// A cluster timestamp after every expiry (the creation of a marker account).
    after_all_expiries: u64,
}

impl Source {
    async fn read(client: &Client, summary: &WorkloadSummary, marker_account: u128) -> Source {
        let transfers: Vec<_> = common::source_transfers(client)
            .await
            .iter()
            .map(|t| *t.as_raw())
            .collect();
        let by_id: HashMap<u128, _> = transfers.iter().map(|t| (t.id, *t)).collect();
        let mut accounts: HashMap<u128, _> = common::source_accounts(client)
            .await
            .iter()
            .map(|a| (a.as_raw().id, *a.as_raw()))
            .collect();
        let marker = accounts.remove(&marker_account).expect("marker account");
        let resolved_at: HashMap<u128, u64> = transfers
            .iter()
            .filter(|t| t.flags & (TRANSFER_POST | TRANSFER_VOID) != 0)
            .map(|t| (t.pending_id, t.timestamp))
            .collect();

        assert!(
            !summary.expired_transfer_ids.is_empty(),
            "the workload expires transfers"
        );
        let mut expired = Vec::new();
        for id in &summary.expired_transfer_ids {
            let t = by_id
                .get(id)
                .unwrap_or_else(|| panic!("expired transfer {id} is not in the source"));
            assert!(
                t.flags & TRANSFER_PENDING != 0 && t.timeout > 0,
                "expired transfer {id} is a pending transfer with a timeout in the source"
            );
            assert!(
                !resolved_at.contains_key(id),
                "expired transfer {id} was posted or voided in the source"
            );
            expired.push(*t);
        }
        let first_possible_expiry = expired
            .iter()
            .map(|t| expires_at(t).unwrap())
            .min()
            .unwrap();
        Source {
            transfers,
            by_id,
            accounts,
            resolved_at,
            expired,
            first_possible_expiry,
            after_all_expiries: marker.timestamp,
        }
    }

    fn expired_ids(&self) -> HashSet<u128> {
        self.expired.iter().map(|t| t.id).collect()
    }

    /// The smallest `expires_at` among the expired transfers that touch an account (no expiry of
    /// the account can have happened before it).
    fn first_possible_expiry_of(&self, account: u128) -> u64 {
        self.expired
            .iter()
            .filter(|t| t.debit_account_id == account || t.credit_account_id == account)
            .map(|t| expires_at(t).unwrap())
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The amount of pending money a post, void or expiry releases: the pending transfer's.
    fn pending_amount(&self, pending_id: u128) -> u128 {
        self.by_id
            .get(&pending_id)
            .unwrap_or_else(|| panic!("pending transfer {pending_id} in the source"))
            .amount
    }
}

// ------------------------------------------------------------------------------------------------
// Expected answers, one builder per cookbook query.

fn balance_row(account: u128, ledger: u32, b: [u128; 4]) -> serde_json::Map<String, Value> {
    let [dp, dpo, cp, cpo] = b;
    let mut row = serde_json::Map::new();
    row.insert("account_id".into(), s(account));
    row.insert("ledger".into(), s(ledger));
    row.insert("debits_pending".into(), s(dp));
    row.insert("debits_posted".into(), s(dpo));
    row.insert("credits_pending".into(), s(cp));
    row.insert("credits_posted".into(), s(cpo));
    row.insert(
        "net_debit_posted".into(),
        s(signed_difference(
            &Wide::from_u128(dpo),
            &Wide::from_u128(cpo),
        )),
    );
    row
}

/// A statement row for `account` from one source transfer (effect as the cookbook defines it:
/// posted_increase for single-phase and posts, pending_increase for pending, pending_decrease =
/// the pending transfer's amount for posts and voids).
fn statement_row(
    source: &Source,
    account: u128,
    t: &tigerbeetle_unofficial::transfer::Raw,
) -> serde_json::Map<String, Value> {
    let kind = event_type(t.flags);
    let debit = t.debit_account_id == account;
    assert!(debit || t.credit_account_id == account);
    let (posted_increase, pending_increase, pending_decrease) = match kind {
        0 => (t.amount, 0, 0),
        1 => (0, t.amount, 0),
        2 => (t.amount, 0, source.pending_amount(t.pending_id)),
        3 => (0, 0, source.pending_amount(t.pending_id)),
        _ => unreachable!(),
    };
    let mut row = serde_json::Map::new();
    row.insert("timestamp".into(), s(t.timestamp));
    row.insert("time".into(), s(utc_time_text(t.timestamp)));
    row.insert("event".into(), s(event_name(kind)));
    row.insert("event_type".into(), s(kind));
    row.insert("transfer_id".into(), s(t.id));
    row.insert("side".into(), s(if debit { "debit" } else { "credit" }));
    row.insert(
        "counterparty_id".into(),
        s(if debit {
            t.credit_account_id
        } else {
            t.debit_account_id
        }),
    );
    row.insert("amount".into(), s(t.amount));
    row.insert("posted_increase".into(), s(posted_increase));
    row.insert("pending_increase".into(), s(pending_increase));
    row.insert("pending_decrease".into(), s(pending_decrease));
    row
}

struct Cases {
    cases: Vec<Value>,
}

impl Cases {
    fn push(&mut self, name: String, query: &str, params: Value, ordered: bool, rows: Vec<Value>) {
        self.cases.push(json!({
            "name": name,
            "query": query,
            "params": params,
            "ordered": ordered,
            "rows": rows,
        }));
    }
}

async fn balance_cases(cases: &mut Cases, client: &Client, source: &Source) {
    // History accounts: at points of their get_account_balances history.
    let mut history_accounts: Vec<(u128, BalanceHistory)> = Vec::new();
    for a in source
        .accounts
        .values()
        .filter(|a| a.flags & ACCOUNT_HISTORY != 0)
    {
        let history = common::account_history(client, a.id).await;
        if !history.is_empty() {
            history_accounts.push((a.id, history));
        }
    }
    assert!(
        !history_accounts.is_empty(),
        "the workload has history accounts with transfers"
    );
    history_accounts.sort_by_key(|(id, h)| (std::cmp::Reverse(h.len()), *id));
    for (id, history) in history_accounts.iter().take(3) {
        let ledger = source.accounts[id].ledger;
        let n = history.len();
        let mut picks: Vec<usize> = vec![0, n / 3, n / 2, n - 1];
        picks.dedup();
        for i in picks {
            let (t, b) = history[i];
            let mut row = balance_row(*id, ledger, b);
            row.insert("last_event_timestamp".into(), s(t));
            row.insert("last_event_time".into(), s(utc_time_text(t)));
            cases.push(
                format!("history account {id} as of its balance point {i} of {n} (get_account_balances)"),
                "account_balance_as_of",
                json!({"account": id.to_string(), "as_of": t}),
                false,
                vec![Value::Object(row)],
            );
        }
        // Before its first point: no row.
        cases.push(
            format!("history account {id} as of 1 ns before its first balance point: no row"),
            "account_balance_as_of",
            json!({"account": id.to_string(), "as_of": history[0].0 - 1}),
            false,
            vec![],
        );
    }

    // Non-history accounts at the latest state (lookup_accounts): the busiest one without
    // expiries (its last event is its last transfer), one touched by an expiry (its last event may
    // be the expiry, whose time the source does not know), the busiest of the extreme ledger.
    let mut touches: HashMap<u128, (usize, u64)> = HashMap::new();
    for t in &source.transfers {
        for a in [t.debit_account_id, t.credit_account_id] {
            let e = touches.entry(a).or_default();
            e.0 += 1;
            e.1 = e.1.max(t.timestamp);
        }
    }
    let expired_touch: HashSet<u128> = source
        .expired
        .iter()
        .flat_map(|t| [t.debit_account_id, t.credit_account_id])
        .collect();
    let extreme = u32::MAX;
    let non_history = |a: &tigerbeetle_unofficial::account::Raw| a.flags & ACCOUNT_HISTORY == 0;
    let busiest = |pred: &dyn Fn(&tigerbeetle_unofficial::account::Raw) -> bool| {
        source
            .accounts
            .values()
            .filter(|a| touches.contains_key(&a.id) && pred(a))
            .max_by_key(|a| (touches[&a.id].0, a.id))
            .map(|a| a.id)
    };
    let picks = [
        (
            "busiest non-history account without expiries",
            busiest(&|a| non_history(a) && !expired_touch.contains(&a.id) && a.ledger != extreme),
        ),
        (
            "busiest non-history account touched by an expiry",
            busiest(&|a| non_history(a) && expired_touch.contains(&a.id)),
        ),
        (
            "busiest account of the extreme ledger",
            busiest(&|a| a.ledger == extreme),
        ),
    ];
    for (what, id) in picks {
        let id = id.unwrap_or_else(|| panic!("the workload has a {what}"));
        let a = client
            .lookup_accounts(vec![id])
            .await
            .expect("lookup_accounts")
            .pop()
            .expect("account found");
        let a = a.as_raw();
        let mut row = balance_row(
            id,
            a.ledger,
            [
                a.debits_pending,
                a.debits_posted,
                a.credits_pending,
                a.credits_posted,
            ],
        );
        if !expired_touch.contains(&id) {
            row.insert("last_event_timestamp".into(), s(touches[&id].1));
            row.insert("last_event_time".into(), s(utc_time_text(touches[&id].1)));
        }
        cases.push(
            format!("{what} {id} at the latest state (lookup_accounts)"),
            "account_balance_as_of",
            json!({"account": id.to_string(), "as_of": LATEST}),
            false,
            vec![Value::Object(row)],
        );
    }
}

async fn statement_cases(cases: &mut Cases, client: &Client, source: &Source) {
    // A history account: its transfers in a range (get_account_transfers), each with the balances
    // that get_account_balances records at it. The range ends before the account's first possible
    // expiry, so that no expiry (an event the source cannot place) falls in it.
    let mut best: Option<(u128, BalanceHistory)> = None;
    for a in source
        .accounts
        .values()
        .filter(|a| a.flags & ACCOUNT_HISTORY != 0)
    {
        let cutoff = source.first_possible_expiry_of(a.id);
        let history: Vec<_> = common::account_history(client, a.id)
            .await
            .into_iter()
            .filter(|(t, _)| *t < cutoff)
            .collect();
        if best
            .as_ref()
            .is_none_or(|(id, h)| (history.len(), a.id) > (h.len(), *id))
        {
            best = Some((a.id, history));
        }
    }
    let (id, history) = best.expect("a history account");
    assert!(
        history.len() >= 4,
        "history account {id} has {} points",
        history.len()
    );
    let from = history[history.len() / 4].0;
    let to = history[history.len() * 3 / 4].0;
    let at: HashMap<u64, [u128; 4]> = history.iter().copied().collect();
    let transfers = account_transfers(client, id, from, to).await;
    assert!(!transfers.is_empty());
    let rows: Vec<Value> = transfers
        .iter()
        .map(|t| {
            let t = t.as_raw();
            let mut row = statement_row(source, id, t);
            let [dp, dpo, cp, cpo] = *at
                .get(&t.timestamp)
                .unwrap_or_else(|| panic!("a balance point of {id} at transfer {}", t.id));
            row.insert("debits_pending".into(), s(dp));
            row.insert("debits_posted".into(), s(dpo));
            row.insert("credits_pending".into(), s(cp));
            row.insert("credits_posted".into(), s(cpo));
            Value::Object(row)
        })
        .collect();
    cases.push(
        format!(
            "statement of history account {id} from {from} to {to} inclusive ({} transfers)",
            rows.len()
        ),
        "account_statement",
        json!({"account": id.to_string(), "from_ns": from, "to_ns": to}),
        true,
        rows,
    );

    // The busiest non-history account: everything before its first possible expiry.
    let mut count: HashMap<u128, usize> = HashMap::new();
    for t in &source.transfers {
        *count.entry(t.debit_account_id).or_default() += 1;
        *count.entry(t.credit_account_id).or_default() += 1;
    }
    let id = source
        .accounts
        .values()
        .filter(|a| a.flags & ACCOUNT_HISTORY == 0 && count.contains_key(&a.id))
        .max_by_key(|a| (count[&a.id], a.id))
        .expect("a non-history account")
        .id;
    let to = source
        .first_possible_expiry_of(id)
        .min(source.after_all_expiries)
        - 1;
    let transfers = account_transfers(client, id, 1, to).await;
    let rows: Vec<Value> = transfers
        .iter()
        .map(|t| Value::Object(statement_row(source, id, t.as_raw())))
        .collect();
    assert!(!rows.is_empty());
    cases.push(
        format!(
            "statement of account {id} from its start to {to} ({} transfers)",
            rows.len()
        ),
        "account_statement",
        json!({"account": id.to_string(), "from_ns": 1, "to_ns": to}),
        true,
        rows,
    );
}

#[derive(Default)]
struct LedgerSums {
    accounts: BTreeSet<u128>,
    dp: Wide,
    dpo: Wide,
    cp: Wide,
    cpo: Wide,
}

fn trial_balance_rows(sums: &BTreeMap<u32, LedgerSums>) -> Vec<Value> {
    sums.iter()
        .map(|(ledger, l)| {
            json!({
                "ledger": ledger.to_string(),
                "accounts": l.accounts.len().to_string(),
                "debits_posted": l.dpo.decimal(),
                "credits_posted": l.cpo.decimal(),
                "debits_pending": l.dp.decimal(),
                "credits_pending": l.cp.decimal(),
                "balanced": l.dpo == l.cpo && l.dp == l.cp,
            })
        })
        .collect()
}

fn trial_balance_cases(cases: &mut Cases, source: &Source, mid: u64) {
    // Latest: every account's four balances (query_accounts), summed per ledger exactly; the
    // ledgers and accounts that have had an event are those of the source's transfers.
    let mut sums: BTreeMap<u32, LedgerSums> = BTreeMap::new();
    for t in &source.transfers {
        let l = sums.entry(t.ledger).or_default();
        l.accounts.insert(t.debit_account_id);
        l.accounts.insert(t.credit_account_id);
    }
    for a in source.accounts.values() {
        if let Some(l) = sums.get_mut(&a.ledger) {
            l.dp.add(a.debits_pending);
            l.dpo.add(a.debits_posted);
            l.cp.add(a.credits_pending);
            l.cpo.add(a.credits_posted);
        } else {
            assert_eq!(
                [
                    a.debits_pending,
                    a.debits_posted,
                    a.credits_pending,
                    a.credits_posted
                ],
                [0; 4],
                "account {} of a ledger without transfers",
                a.id
            );
        }
    }
    let extreme = &sums[&u32::MAX];
    assert!(
        !extreme.dpo.fits_u128(),
        "the extreme ledger's posted total exceeds u128::MAX (it is {})",
        extreme.dpo.decimal()
    );
    let rows = trial_balance_rows(&sums);
    cases.push(
        "trial balance per ledger at the latest state (query_accounts, exact sums; the extreme \
         ledger's beyond u128::MAX)"
            .into(),
        "trial_balance",
        json!({"as_of": LATEST}),
        true,
        rows,
    );

    // At `mid` (before any expiry can have happened): replay the source's transfers.
    let mut sums: BTreeMap<u32, LedgerSums> = BTreeMap::new();
    for t in source.transfers.iter().filter(|t| t.timestamp <= mid) {
        let l = sums.entry(t.ledger).or_default();
        l.accounts.insert(t.debit_account_id);
        l.accounts.insert(t.credit_account_id);
        match event_type(t.flags) {
            0 => {
                l.dpo.add(t.amount);
                l.cpo.add(t.amount);
            }
            1 => {
                l.dp.add(t.amount);
                l.cp.add(t.amount);
            }
            2 | 3 => {
                if event_type(t.flags) == 2 {
                    l.dpo.add(t.amount);
                    l.cpo.add(t.amount);
                }
                // The pending amount leaves both sides' pending balances.
                let released = Wide::from_u128(source.pending_amount(t.pending_id));
                l.dp = l.dp.sub(&released);
                l.cp = l.cp.sub(&released);
            }
            _ => unreachable!(),
        }
    }
    cases.push(
        format!("trial balance per ledger at {mid}, before any expiry (replayed source transfers)"),
        "trial_balance",
        json!({"as_of": mid}),
        true,
        trial_balance_rows(&sums),
    );
}

fn daily_volume_case(cases: &mut Cases, source: &Source) {
    #[derive(Default)]
    struct Day {
        events: u64,
        posted_count: u64,
        posted: Wide,
        pending: Wide,
        voided: Wide,
        expired: Wide,
    }
    let mut days: BTreeMap<(String, u32, u16), Day> = BTreeMap::new();
    for t in &source.transfers {
        let d = days
            .entry((utc_date(t.timestamp), t.ledger, t.code))
            .or_default();
        d.events += 1;
        match event_type(t.flags) {
            0 | 2 => {
                d.posted_count += 1;
                d.posted.add(t.amount);
            }
            1 => d.pending.add(t.amount),
            3 => d.voided.add(source.pending_amount(t.pending_id)),
            _ => unreachable!(),
        }
    }
    // An expiry is dated by when the cluster expired the transfer: between its expires_at and
    // the marker's creation. Only when both fall on the same UTC day is its day known.
    for t in &source.expired {
        let day = utc_date(expires_at(t).unwrap());
        if day != utc_date(source.after_all_expiries) {
            eprintln!(
                "daily_volume not checked: the expiry of {} falls between {} and {}, across midnight UTC",
                t.id,
                expires_at(t).unwrap(),
                source.after_all_expiries
            );
            return;
        }
        let d = days.entry((day, t.ledger, t.code)).or_default();
        d.events += 1;
        d.expired.add(t.amount);
    }
    let first = days.keys().next().unwrap().0.clone();
    let last = days.keys().last().unwrap().0.clone();
    let rows = days
        .iter()
        .map(|((date, ledger, code), d)| {
            json!({
                "date": date,
                "ledger": ledger.to_string(),
                "code": code.to_string(),
                "events": d.events.to_string(),
                "posted_count": d.posted_count.to_string(),
                "posted_amount": d.posted.decimal(),
                "pending_amount": d.pending.decimal(),
                "voided_amount": d.voided.decimal(),
                "expired_amount": d.expired.decimal(),
            })
        })
        .collect();
    cases.push(
        format!("daily volume by ledger and code, {first} to {last} (query_transfers + expiries)"),
        "daily_volume",
        json!({"day_from": first, "day_to": last}),
        true,
        rows,
    );
}

fn expired_case(cases: &mut Cases, source: &Source) {
    // expired_at (and so the order, expiry_lag_ns, expired_time) is not known to the source.
    let rows = source
        .expired
        .iter()
        .map(|t| {
            json!({
                "transfer_id": t.id.to_string(),
                "ledger": t.ledger.to_string(),
                "code": t.code.to_string(),
                "debit_account_id": t.debit_account_id.to_string(),
                "credit_account_id": t.credit_account_id.to_string(),
                "amount": t.amount.to_string(),
                "created": t.timestamp.to_string(),
                "timeout": t.timeout.to_string(),
                "expires_at": expires_at(t).unwrap().to_string(),
            })
        })
        .collect();
    cases.push(
        format!(
            "expired pending transfers ({} in the workload summary)",
            source.expired.len()
        ),
        "expired_pending",
        json!({}),
        false,
        rows,
    );
}

fn pending_open_cases(cases: &mut Cases, source: &Source, mid: u64) {
    let expired = source.expired_ids();
    let open_at = |as_of: u64, expired_by_then: &dyn Fn(u128) -> bool| -> Vec<Value> {
        source
            .transfers
            .iter()
            .filter(|t| event_type(t.flags) == 1 && t.timestamp <= as_of)
            .filter(|t| source.resolved_at.get(&t.id).is_none_or(|r| *r > as_of))
            .filter(|t| !expired_by_then(t.id))
            .map(|t| {
                let exp = expires_at(t);
                json!({
                    "transfer_id": t.id.to_string(),
                    "ledger": t.ledger.to_string(),
                    "code": t.code.to_string(),
                    "debit_account_id": t.debit_account_id.to_string(),
                    "credit_account_id": t.credit_account_id.to_string(),
                    "amount": t.amount.to_string(),
                    "created": t.timestamp.to_string(),
                    "created_time": utc_time_text(t.timestamp),
                    "timeout": t.timeout.to_string(),
                    "expires_at": exp.map(s).unwrap_or(Value::Null),
                    "past_expiry": exp.map(|e| Value::Bool(e <= as_of)).unwrap_or(Value::Null),
                })
            })
            .collect()
    };
    // Before the first possible expiry nothing has expired (an expiry happens at or after
    // expires_at); at the latest state every expired transfer has.
    let rows = open_at(mid, &|_| false);
    cases.push(
        format!(
            "pending transfers open at {mid}, before any expiry ({} open)",
            rows.len()
        ),
        "pending_open_at",
        json!({"as_of": mid}),
        true,
        rows,
    );
    let rows = open_at(LATEST, &|id| expired.contains(&id));
    cases.push(
        format!(
            "pending transfers open at the latest state ({} open)",
            rows.len()
        ),
        "pending_open_at",
        json!({"as_of": LATEST}),
        true,
        rows,
    );
}

async fn top_counterparty_cases(cases: &mut Cases, client: &Client, source: &Source) {
    // Posted money per counterparty (single-phase transfers and posts), from get_account_transfers.
    let mut posted_partners: HashMap<u128, HashSet<u128>> = HashMap::new();
    for t in source
        .transfers
        .iter()
        .filter(|t| matches!(event_type(t.flags), 0 | 2))
    {
        posted_partners
            .entry(t.debit_account_id)
            .or_default()
            .insert(t.credit_account_id);
        posted_partners
            .entry(t.credit_account_id)
            .or_default()
            .insert(t.debit_account_id);
    }
    let pick = |extreme: bool| {
        posted_partners
            .iter()
            .filter(|(id, _)| (source.accounts[*id].ledger == u32::MAX) == extreme)
            .max_by_key(|(id, p)| (p.len(), **id))
            .map(|(id, _)| *id)
            .expect("an account with posted transfers")
    };
    for (account, n, what) in [
        (pick(false), 5u32, "the account with most counterparties"),
        (
            pick(true),
            3,
            "the extreme ledger's account with most counterparties",
        ),
    ] {
        #[derive(Default)]
        struct Partner {
            transfers: u64,
            paid: Wide,
            received: Wide,
        }
        let mut partners: BTreeMap<u128, Partner> = BTreeMap::new();
        for t in account_transfers(client, account, 1, u64::MAX).await {
            let t = t.as_raw();
            if !matches!(event_type(t.flags), 0 | 2) {
                continue;
            }
            if t.debit_account_id == account {
                let p = partners.entry(t.credit_account_id).or_default();
                p.transfers += 1;
                p.paid.add(t.amount);
            } else {
                let p = partners.entry(t.debit_account_id).or_default();
                p.transfers += 1;
                p.received.add(t.amount);
            }
        }
        let mut ranked: Vec<(u128, Partner, Wide)> = partners
            .into_iter()
            .map(|(id, p)| {
                let mut total = p.paid;
                total.add_wide(&p.received);
                (id, p, total)
            })
            .collect();
        ranked.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let rows = ranked
            .iter()
            .take(n as usize)
            .map(|(id, p, total)| {
                json!({
                    "counterparty_id": id.to_string(),
                    "transfers": p.transfers.to_string(),
                    "paid": p.paid.decimal(),
                    "received": p.received.decimal(),
                    "total": total.decimal(),
                    "net": signed_difference(&p.received, &p.paid),
                })
            })
            .collect();
        cases.push(
            format!("top {n} counterparties of {what} {account} (get_account_transfers)"),
            "top_counterparties",
            json!({"account": account.to_string(), "n": n}),
            true,
            rows,
        );
    }
}

async fn user_data_cases(cases: &mut Cases, client: &Client, source: &Source) {
    let expired = source.expired_ids();
    let row = |t: &tigerbeetle_unofficial::transfer::Raw, kind: u8, with_timestamp: bool| {
        let mut row = json!({
            "event": event_name(kind),
            "event_type": kind.to_string(),
            "transfer_id": t.id.to_string(),
            "amount": t.amount.to_string(),
            "ledger": t.ledger.to_string(),
            "code": t.code.to_string(),
            "debit_account_id": t.debit_account_id.to_string(),
            "credit_account_id": t.credit_account_id.to_string(),
            "user_data_128": t.user_data_128.to_string(),
            "user_data_64": t.user_data_64.to_string(),
            "user_data_32": t.user_data_32.to_string(),
        });
        if with_timestamp {
            row["timestamp"] = s(t.timestamp);
            row["time"] = s(utc_time_text(t.timestamp));
        }
        row
    };

    // u128::MAX: many transfers, some of which expired (their expiry events carry the pending
    // transfer's user data, at a time the source does not know: no timestamps compared).
    let matching = transfers_with_user_data(client, u128::MAX).await;
    assert!(matching.len() >= 2);
    let mut rows: Vec<Value> = Vec::new();
    let mut expiries = 0;
    for t in &matching {
        let t = t.as_raw();
        rows.push(row(t, event_type(t.flags), false));
        if expired.contains(&t.id) {
            rows.push(row(t, 4, false));
            expiries += 1;
        }
    }
    cases.push(
        format!(
            "events with user_data_128 = u128::MAX ({} transfers, {expiries} expiries)",
            matching.len()
        ),
        "transfers_by_user_data",
        json!({"user_data_128": u128::MAX.to_string()}),
        false,
        rows,
    );

    // The most frequent other value whose transfers did not expire: in order, with timestamps.
    let mut freq: HashMap<u128, usize> = HashMap::new();
    for t in &source.transfers {
        *freq.entry(t.user_data_128).or_default() += 1;
    }
    let value = source
        .transfers
        .iter()
        .filter(|t| t.user_data_128 != 0 && t.user_data_128 != u128::MAX)
        .filter(|t| {
            source
                .transfers
                .iter()
                .all(|o| o.user_data_128 != t.user_data_128 || !expired.contains(&o.id))
        })
        .max_by_key(|t| (freq[&t.user_data_128], t.user_data_128))
        .expect("a transfer with ordinary user data")
        .user_data_128;
    let matching = transfers_with_user_data(client, value).await;
    let rows: Vec<Value> = matching
        .iter()
        .map(|t| row(t.as_raw(), event_type(t.as_raw().flags), true))
        .collect();
    cases.push(
        format!(
            "events with user_data_128 = {value} ({} transfers)",
            rows.len()
        ),
        "transfers_by_user_data",
        json!({"user_data_128": value.to_string()}),
        true,
        rows,
    );
}

fn posted_volume_case(cases: &mut Cases, source: &Source) {
    let mut ledgers: BTreeMap<u32, (u64, Wide, u128)> = BTreeMap::new();
    for t in source
        .transfers
        .iter()
        .filter(|t| matches!(event_type(t.flags), 0 | 2))
    {
        let l = ledgers.entry(t.ledger).or_default();
        l.0 += 1;
        l.1.add(t.amount);
        l.2 = l.2.max(t.amount);
    }
    assert!(
        !ledgers[&u32::MAX].1.fits_u128(),
        "the extreme ledger's volume exceeds u128::MAX"
    );
    let rows = ledgers
        .iter()
        .map(|(ledger, (n, volume, largest))| {
            json!({
                "ledger": ledger.to_string(),
                "posted_transfers": n.to_string(),
                "posted_volume": volume.decimal(),
                "largest_amount": largest.to_string(),
                "fits_u128": volume.fits_u128(),
            })
        })
        .collect();
    cases.push(
        "posted volume per ledger, exact beyond u128::MAX (query_transfers)".into(),
        "posted_volume_per_ledger",
        json!({}),
        true,
        rows,
    );
}

// ------------------------------------------------------------------------------------------------

/// Runs the cookbook checker with plain DuckDB, or (`delta`) the subset through the delta extension.
fn run_checker(lake: &str, expected: &Path, delta: bool) -> (bool, String) {
    let mut command = Command::new("python3");
    command
        .arg(repo_root().join("tests/duckdb/check_cookbook.py"))
        .arg(lake)
        .arg(expected);
    if delta {
        let (cli, extension) = delta_reader();
        command
            .args(["--duckdb", &cli, "--delta-extension", &extension])
            .arg("--subset");
    }
    let out = command
        .current_dir(repo_root())
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookbook_on_an_exported_lake_agrees_with_the_source() {
    require_duckdb();
    let started = Instant::now();
    let stack = Stack::start().await;
    // The queue and exchange are deleted whatever happens.
    let outcome = AssertUnwindSafe(export_and_check(&stack, started))
        .catch_unwind()
        .await;
    stack.cleanup().await;
    let (ok, output) = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert!(ok, "the cookbook disagrees with the source:\n{output}");
    assert!(
        !output.contains("without an expected answer"),
        "every cookbook query has a case:\n{output}"
    );
}

/// Runs a workload, exports it, computes the expected answers from the source and runs the
/// checker: (whether it passed, its output).
async fn export_and_check(stack: &Stack, started: Instant) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().join("lake").to_string_lossy().into_owned();
    let mut options = stack.export_options(&location);
    // Small segments: the lake has several files, which the pruning check counts.
    options.seal.events_max = 1_000;
    let exporter = InProcessExporter::start(options);

    let summary = stack.run_workload(0x000c_00cb_00c4, 3_000).await;
    let client = stack.replica.client().expect("client");
    // A marker account, created after the workload (which waits for its expiries): its timestamp
    // is later than every expiry. It has no transfer, so the lake never sees it.
    let marker = u128::from_be_bytes(*b"ledgerlake:mark!");
    client
        .create_accounts(vec![Account::new(marker, 9_999, 1)])
        .await
        .expect("marker account");

    let expected_events = summary.events.total() as u64;
    let lake = Lake::open(&location).await.expect("lake");
    wait_for_event_count(&lake, expected_events, Duration::from_secs(60)).await;
    let report = exporter.stop().await;
    assert_eq!(report.events_committed, expected_events);
    assert_eq!(report.quarantined, 0);
    eprintln!(
        "stack, workload and export: {:?} ({expected_events} events)",
        started.elapsed()
    );

    // Expected answers, from the source cluster only.
    let source = Source::read(&client, &summary, marker).await;
    assert_eq!(source.transfers.len(), summary.transfer_ids.len());
    // A time inside the run, before any expiry can have happened.
    let median = source.transfers[source.transfers.len() / 2].timestamp;
    let mid = median.min(source.first_possible_expiry - 1);
    let before_mid = source
        .transfers
        .iter()
        .filter(|t| t.timestamp <= mid)
        .count();
    assert!(before_mid > 0, "{mid} is inside the run");
    eprintln!(
        "mid-run time {mid}: {before_mid} of {} transfers at or before it",
        source.transfers.len()
    );
    let mut cases = Cases { cases: Vec::new() };
    balance_cases(&mut cases, &client, &source).await;
    statement_cases(&mut cases, &client, &source).await;
    trial_balance_cases(&mut cases, &source, mid);
    daily_volume_case(&mut cases, &source);
    expired_case(&mut cases, &source);
    pending_open_cases(&mut cases, &source, mid);
    top_counterparty_cases(&mut cases, &client, &source).await;
    user_data_cases(&mut cases, &client, &source).await;
    posted_volume_case(&mut cases, &source);
    // Not from the source: a complete lake has no break in any account's balance chain.
    cases.push(
        "no balance chain breaks in a complete lake".into(),
        "balance_chain_breaks",
        json!({}),
        false,
        vec![],
    );

    // Pruning: the files of the lake's (first) day, as the lake lists them.
    let segments = lake.list_segments().await.expect("listing");
    let day = segments[0].date.clone();
    let files = segments.iter().filter(|s| s.date == day).count();
    assert!(files >= 2, "the lake has several files ({files})");
    let spec = json!({
        "format": 1,
        "cases": cases.cases,
        "pruning": {"day": day, "files": files},
    });
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, serde_json::to_vec_pretty(&spec).unwrap()).expect("write");
    if let Ok(keep) = std::env::var("LEDGERLAKE_COOKBOOK_KEEP") {
        // For debugging: keep the lake and the expected answers.
        let keep = PathBuf::from(keep);
        let _ = std::fs::remove_dir_all(&keep);
        Command::new("cp")
            .arg("-r")
            .arg(dir.path())
            .arg(&keep)
            .status()
            .expect("cp");
    }

    let checked = Instant::now();
    let (plain_ok, plain) = run_checker(&location, &expected_path, false);
    let (delta_ok, delta) = run_checker(&location, &expected_path, true);
    let output = format!("plain DuckDB:\n{plain}\ndelta extension (subset):\n{delta}");
    let ok = plain_ok && delta_ok;
    eprintln!("{output}");
    eprintln!(
        "{} cases checked in {:?}; total {:?}",
        spec["cases"].as_array().unwrap().len(),
        checked.elapsed(),
        started.elapsed()
    );
    (ok, output)
}

#[test]
fn wide_arithmetic_is_exact() {
    let mut w = Wide::default();
    w.add(u128::MAX);
    w.add(u128::MAX);
    assert_eq!(w.decimal(), "680564733841876926926749214863536422910");
    assert!(!w.fits_u128());
    assert_eq!(Wide::from_u128(u128::MAX).decimal(), u128::MAX.to_string());
    assert_eq!(Wide::from_u128(0).decimal(), "0");
    assert_eq!(
        Wide::from_u128(10_000_000_000_000_000_000).decimal(),
        "10000000000000000000"
    );
    assert_eq!(
        signed_difference(&Wide::from_u128(3), &w),
        "-680564733841876926926749214863536422907"
    );
    assert_eq!(
        w.sub(&Wide::from_u128(u128::MAX)),
        Wide::from_u128(u128::MAX)
    );
    assert_eq!(utc_date(1_709_251_199_999_999_999), "2024-02-29");
    assert_eq!(utc_date(1_709_251_200_000_000_000), "2024-03-01");
    assert_eq!(utc_date(0), "1970-01-01");
    assert_eq!(
        utc_time_text(1_709_251_200_000_000_000),
        "2024-03-01 00:00:00"
    );
    assert_eq!(
        utc_time_text(1_709_251_199_100_000_000),
        "2024-02-29 23:59:59.1"
    );
    assert_eq!(
        utc_time_text(1_795_298_506_766_243_993),
        "2026-11-21 22:01:46.766243993"
    );
}
