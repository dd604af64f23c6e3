//! Other engines read the lake exactly: delta-rs (PyPI `deltalake`), Sail through the Spark API
//! and, opt-in, JVM Spark (the scripts in `tests/readers/`) each compute accounts' statements and
//! the trial balance as of two moments from the Delta tables' snapshots, and their JSON must equal
//! what the lake's own events (`Lake::read_all`) and `ledgerlake balances --format json` say,
//! every u128 exactly — including values at and above 10^38, u128::MAX, and sums beyond 2^128.
//!
//! Two lakes: one committed directly (`Lake::commit`) with chosen extremes, and one that the
//! exporter wrote from the real stack after a workload.
//!
//! The readers are installed by `scripts/setup-test.sh`; a missing one fails its test naming it.
//! JVM Spark (about 460 MB and a JVM start per run) is installed and tested only with
//! `LEDGERLAKE_HEAVY_READERS=1` (e.g. `LEDGERLAKE_HEAVY_READERS=1 scripts/test.sh --test readers`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::stack::{wait_for_event_count, InProcessExporter, Stack};
use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::lake::{AccountRecord, Lake, Segment};
use ledgerlake::timefmt::date_partition;
use serde_json::{json, Value};

const E38: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;
const CLUSTER: u128 = 0x5ead_e125;
/// TigerBeetle transfer flags.
const PENDING: u16 = 1 << 1;
const POST_PENDING: u16 = 1 << 2;
const VOID_PENDING: u16 = 1 << 3;
/// Opt-in for the heavy readers (JVM Spark), in `scripts/setup-test.sh` and here.
const HEAVY_READERS_VAR: &str = "LEDGERLAKE_HEAVY_READERS";

// --- a ledger's history, by TigerBeetle's rules --------------------------------------------------

/// Builds events as TigerBeetle's CDC job would send them: each carries both accounts' balances
/// after it.
struct History {
    accounts: HashMap<u128, AccountFields>,
    ledger_of: HashMap<u128, u32>,
    pending: HashMap<u128, (Event, u128)>,
    events: Vec<Event>,
    timestamp: u64,
    next_transfer_id: u128,
}

impl History {
    fn new(start: u64) -> History {
        History {
            accounts: HashMap::new(),
            ledger_of: HashMap::new(),
            pending: HashMap::new(),
            events: Vec::new(),
            timestamp: start,
            next_transfer_id: 1,
        }
    }

    fn open(&mut self, id: u128, ledger: u32) {
        self.timestamp += 1_000;
        let fields = AccountFields {
            id,
            code: 10,
            user_data_128: id ^ u128::MAX,
            user_data_64: u64::MAX,
            user_data_32: u32::MAX,
            timestamp: self.timestamp,
            ..AccountFields::default()
        };
        assert!(self.accounts.insert(id, fields).is_none());
        self.ledger_of.insert(id, ledger);
    }

    /// Moves the clock by `step_ns` and returns the new event timestamp.
    fn tick(&mut self, step_ns: u64) -> u64 {
        self.timestamp += step_ns;
        self.timestamp
    }

    /// A new transfer (the event, not the transfer, names its accounts).
    fn transfer(&mut self, amount: u128, flags: u16) -> TransferFields {
        let id = self.next_transfer_id;
        self.next_transfer_id += 1;
        TransferFields {
            id,
            amount,
            user_data_128: if id.is_multiple_of(2) { u128::MAX } else { id },
            user_data_64: u64::MAX - id as u64,
            user_data_32: id as u32,
            code: 7,
            flags,
            timestamp: self.timestamp,
            ..TransferFields::default()
        }
    }

    fn push(&mut self, event_type: EventType, transfer: TransferFields, debit: u128, credit: u128) {
        let ledger = self.ledger_of[&debit];
        assert_eq!(ledger, self.ledger_of[&credit]);
        self.events.push(Event {
            timestamp: self.timestamp,
            event_type,
            ledger,
            transfer,
            debit_account: self.accounts[&debit],
            credit_account: self.accounts[&credit],
        });
    }

    fn single(&mut self, step_ns: u64, debit: u128, credit: u128, amount: u128) {
        self.tick(step_ns);
        self.account(debit).debits_posted += amount;
        self.account(credit).credits_posted += amount;
        let t = self.transfer(amount, 0);
        self.push(EventType::SinglePhase, t, debit, credit);
    }

    /// Returns the pending transfer's id.
    fn pending(&mut self, step_ns: u64, debit: u128, credit: u128, amount: u128) -> u128 {
        self.tick(step_ns);
        self.account(debit).debits_pending += amount;
        self.account(credit).credits_pending += amount;
        let mut t = self.transfer(amount, PENDING);
        t.timeout = 60;
        self.push(EventType::TwoPhasePending, t, debit, credit);
        let event = *self.events.last().expect("just pushed");
        self.pending.insert(t.id, (event, amount));
        t.id
    }

    /// Posts `amount` of the pending transfer (all of it is released).
    fn post(&mut self, step_ns: u64, pending_id: u128, amount: u128) {
        self.tick(step_ns);
        let (p, held) = self.pending.remove(&pending_id).expect("open pending");
        let (debit, credit) = (p.debit_account.id, p.credit_account.id);
        assert!(amount <= held);
        self.account(debit).debits_pending -= held;
        self.account(debit).debits_posted += amount;
        self.account(credit).credits_pending -= held;
        self.account(credit).credits_posted += amount;
        let mut t = self.transfer(amount, POST_PENDING);
        t.pending_id = pending_id;
        self.push(EventType::TwoPhasePosted, t, debit, credit);
    }

    fn void(&mut self, step_ns: u64, pending_id: u128) {
        self.tick(step_ns);
        let (p, held) = self.pending.remove(&pending_id).expect("open pending");
        let (debit, credit) = (p.debit_account.id, p.credit_account.id);
        self.account(debit).debits_pending -= held;
        self.account(credit).credits_pending -= held;
        let mut t = self.transfer(held, VOID_PENDING);
        t.pending_id = pending_id;
        self.push(EventType::TwoPhaseVoided, t, debit, credit);
    }

    /// An expiry: the event carries the pending transfer itself, at the expiry's timestamp.
    fn expire(&mut self, step_ns: u64, pending_id: u128) {
        self.tick(step_ns);
        let (p, held) = self.pending.remove(&pending_id).expect("open pending");
        let (debit, credit) = (p.debit_account.id, p.credit_account.id);
        self.account(debit).debits_pending -= held;
        self.account(credit).credits_pending -= held;
        self.push(EventType::TwoPhaseExpired, p.transfer, debit, credit);
    }

    fn account(&mut self, id: u128) -> &mut AccountFields {
        self.accounts.get_mut(&id).expect("opened")
    }
}

/// Accounts the readers are asked about.
const SMALL: u128 = 11;
const AT_E38: u128 = E38;
const BELOW_E38: u128 = E38 - 1;
const LARGEST_ID: u128 = u128::MAX - 1;
const HOLDER: u128 = 3 * E38 + 17;
const SILENT: u128 = 999;

/// Three ledgers: 1 in the common case (small amounts, sums far below 10^38), 2 with amounts at
/// and above 10^38, u128::MAX balances and sums beyond 2^128, 3 with every value below 10^38 but
/// sums above it. Every event type; the history crosses a UTC midnight. Returns the events and
/// the two moments the readers are asked about (an event's own timestamp, and the last event).
fn history() -> (Vec<Event>, u64, u64) {
    // 2026-11-30T23:58:00Z: the history crosses midnight.
    let mut h = History::new(1_796_083_080_000_000_000);
    for id in [SMALL, 12, 13, AT_E38] {
        h.open(id, 1);
    }
    for id in [BELOW_E38, LARGEST_ID, HOLDER, 21, 22] {
        h.open(id, 2);
    }
    for id in [31, 32, 33, 34, SILENT] {
        h.open(id, 3);
    }
    let second = 1_000_000_000;
    for i in 0..40u128 {
        h.single(second, SMALL, 12, 100 + i);
        h.single(second, 13, SMALL, 7 * i + 1);
        if i.is_multiple_of(5) {
            let p = h.pending(second, AT_E38, SMALL, 50);
            match i % 3 {
                0 => h.post(second, p, 20),
                1 => h.void(second, p),
                _ => h.expire(second, p),
            }
        }
    }
    h.single(second, LARGEST_ID, HOLDER, u128::MAX);
    h.single(second, BELOW_E38, LARGEST_ID, E38);
    h.single(second, BELOW_E38, 21, E38 - 1);
    h.single(second, 22, BELOW_E38, 2 * E38 + 5);
    let p = h.pending(second, 21, 22, u128::MAX - E38);
    h.post(second, p, 2 * E38);
    let p = h.pending(second, 21, BELOW_E38, 3 * E38);
    let middle = h.timestamp;
    h.void(second, p);
    let p = h.pending(second, 22, 21, E38 + 1);
    h.expire(second, p);
    h.pending(second, 22, 21, 7);
    for i in 0..10u128 {
        h.single(second, 31, 32, E38 / 100 * 6 + i);
        h.single(second, 33, 34, E38 / 100 * 6 - i);
        h.single(second, SMALL, 13, 1 + i);
    }
    let last = h.timestamp;
    assert_ne!(
        date_partition(h.events[0].timestamp),
        date_partition(last),
        "the history crosses midnight"
    );
    assert!(
        h.pending.len() == 1,
        "one transfer is still pending at the end"
    );
    (h.events, middle, last)
}

/// Commits the history in segments of at most `events_max` events (never across midnight), each
/// account recorded in the segment where it first appears, and leaves in `transfers` a data file
/// the log does not name (a copy of a committed one, as an interrupted write could leave): a
/// reader that listed the directory instead of reading the snapshot would count it twice.
async fn write_lake(dir: &Path, events: &[Event], events_max: usize) -> (String, Lake) {
    let location = dir.join("lake").to_string_lossy().into_owned();
    let lake = Lake::open(&location).await.expect("lake");
    lake.bind_cluster(CLUSTER).await.expect("bind");
    let mut segments: Vec<Vec<Event>> = Vec::new();
    for e in events {
        match segments.last_mut() {
            Some(s)
                if s.len() < events_max
                    && date_partition(s[0].timestamp) == date_partition(e.timestamp) =>
            {
                s.push(*e)
            }
            _ => segments.push(vec![*e]),
        }
    }
    let mut known = HashSet::new();
    for events in segments {
        let mut new_accounts = Vec::new();
        for e in &events {
            for side in [&e.debit_account, &e.credit_account] {
                if known.insert(side.id) {
                    new_accounts.push(AccountRecord::from_event_account(
                        side,
                        e.ledger,
                        e.timestamp,
                    ));
                }
            }
        }
        lake.commit(
            &Segment {
                events,
                new_accounts,
            },
            CLUSTER,
        )
        .await
        .expect("commit");
    }
    let stray = stray_copy(&dir.join("lake").join("transfers"));
    eprintln!("left an uncommitted copy at {}", stray.display());
    (location, lake)
}

/// Copies one data file of the table to a name the log does not know.
fn stray_copy(table: &Path) -> PathBuf {
    let partition = std::fs::read_dir(table)
        .expect("table dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir() && !p.ends_with("_delta_log"))
        .min()
        .expect("a partition");
    let file = std::fs::read_dir(&partition)
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .min()
        .expect("a data file");
    let stray = partition.join("00000000000000000000-99999999999999999999-stray.parquet");
    std::fs::copy(&file, &stray).expect("copy");
    stray
}

// --- what the readers must print -----------------------------------------------------------------

/// A sum of u128s, exact beyond 2^128: `e38`·10^38 + `low`, `low` < 10^38.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sum {
    e38: u128,
    low: u128,
}

impl Sum {
    fn add(&mut self, v: u128) {
        self.e38 += v / E38;
        self.low += v % E38;
        if self.low >= E38 {
            self.low -= E38;
            self.e38 += 1;
        }
    }
}

impl std::fmt::Display for Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.e38 == 0 {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}{:038}", self.e38, self.low)
        }
    }
}

const BALANCES: [&str; 4] = [
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
];

fn balances_of(a: &AccountFields) -> [u128; 4] {
    [
        a.debits_pending,
        a.debits_posted,
        a.credits_pending,
        a.credits_posted,
    ]
}

/// Per ledger: the number of accounts and the sums of their balances, from (ledger, balances).
fn trial_balance<'a>(accounts: impl Iterator<Item = (u32, [u128; 4])> + 'a) -> Value {
    let mut ledgers: BTreeMap<u32, (usize, [Sum; 4])> = BTreeMap::new();
    for (ledger, balances) in accounts {
        let (count, sums) = ledgers.entry(ledger).or_default();
        *count += 1;
        for (sum, v) in sums.iter_mut().zip(balances) {
            sum.add(v);
        }
    }
    Value::Array(
        ledgers
            .into_iter()
            .map(|(ledger, (count, sums))| {
                let mut line = json!({"ledger": ledger, "accounts": count});
                for (name, sum) in BALANCES.iter().zip(sums) {
                    line[*name] = Value::String(sum.to_string());
                }
                line
            })
            .collect(),
    )
}

/// What a reader must print for `account` as of `at`, from the lake's own events.
fn expected_from_events(events: &[Event], account: u128, at: u64) -> Value {
    let mut statement = Vec::new();
    let mut latest: HashMap<u128, (u32, [u128; 4])> = HashMap::new();
    for e in events.iter().take_while(|e| e.timestamp <= at) {
        for (side, a) in [("debit", &e.debit_account), ("credit", &e.credit_account)] {
            latest.insert(a.id, (e.ledger, balances_of(a)));
            if a.id == account {
                let mut line = json!({
                    "timestamp": e.timestamp.to_string(),
                    "event_type": e.event_type.as_str(),
                    "transfer_id": e.transfer.id.to_string(),
                    "ledger": e.ledger,
                    "side": side,
                    "amount": e.transfer.amount.to_string(),
                });
                for (name, v) in BALANCES.iter().zip(balances_of(a)) {
                    line[*name] = Value::String(v.to_string());
                }
                statement.push(line);
            }
        }
    }
    json!({
        "account": account.to_string(),
        "at": at.to_string(),
        "statement": statement,
        "trial_balance": trial_balance(latest.into_values()),
    })
}

/// `ledgerlake balances --lake L --at T --format json`, every account.
fn balances_report(location: &str, at: u64) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(["balances", "--lake", location, "--at", &at.to_string()])
        .args(["--format", "json"])
        .output()
        .expect("ledgerlake runs");
    assert!(
        output.status.success(),
        "ledgerlake balances: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("balances prints JSON")
}

fn u128_of(v: &Value) -> u128 {
    v.as_str()
        .expect("a u128 is a decimal string")
        .parse()
        .expect("decimal u128")
}

/// What `balances` says of the expected answer: the account's balances are those of its last
/// statement line (and it is listed only if it has one), and the trial balance is the sum of
/// its accounts' balances.
fn assert_agrees_with_balances(expected: &Value, report: &Value) {
    let account = &expected["account"];
    let lines = report["accounts"].as_array().expect("accounts");
    let listed: Vec<&Value> = lines.iter().filter(|a| &a["account"] == account).collect();
    match expected["statement"].as_array().expect("statement").last() {
        None => assert!(listed.is_empty(), "{account} has no event yet: {listed:?}"),
        Some(last) => {
            assert_eq!(listed.len(), 1, "{account} is listed once");
            let line = listed[0];
            assert_eq!(line["as_of_timestamp"], last["timestamp"], "{account}");
            assert_eq!(line["ledger"], last["ledger"], "{account}");
            for name in BALANCES {
                assert_eq!(line[name], last[name], "{account} {name}");
            }
        }
    }
    let from_report = trial_balance(lines.iter().map(|a| {
        let ledger = u32::try_from(a["ledger"].as_u64().expect("ledger")).expect("u32");
        (ledger, BALANCES.map(|name| u128_of(&a[name])))
    }));
    assert_eq!(
        expected["trial_balance"], from_report,
        "the trial balance from the events equals the one from `balances` at {}",
        expected["at"]
    );
}

// --- running the readers -------------------------------------------------------------------------

struct Reader {
    name: &'static str,
    script: &'static str,
    /// The Python that has the engine, and where `scripts/setup-test.sh` puts it.
    python: PathBuf,
    /// What must import for the reader to run.
    needs: &'static str,
}

fn cache_dir() -> PathBuf {
    match std::env::var_os("LEDGERLAKE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/ledgerlake"),
    }
}

fn python_from(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
}

fn delta_rs() -> Reader {
    Reader {
        name: "delta-rs",
        script: "deltalake_reader.py",
        python: python_from("PYTHON", PathBuf::from("python3")),
        needs: "import deltalake, pyarrow",
    }
}

fn sail() -> Reader {
    Reader {
        name: "Sail",
        script: "sail_reader.py",
        python: python_from(
            "LEDGERLAKE_SAIL_PYTHON",
            cache_dir().join("readers/sail/bin/python"),
        ),
        needs: "from pysail.spark import SparkConnectServer; from pyspark.sql import SparkSession",
    }
}

fn jvm_spark() -> Reader {
    Reader {
        name: "JVM Spark",
        script: "spark_reader.py",
        python: python_from(
            "LEDGERLAKE_SPARK_PYTHON",
            cache_dir().join("readers/spark/bin/python"),
        ),
        needs: "import pyspark, deltalake",
    }
}

impl Reader {
    /// Fails (naming `scripts/setup-test.sh`) unless the reader's engine is installed.
    fn assert_installed(&self) {
        let probe = Command::new(&self.python).args(["-c", self.needs]).output();
        let installed = matches!(&probe, Ok(o) if o.status.success());
        assert!(
            installed,
            "the {} reader is not installed ({} cannot `{}`): run scripts/setup-test.sh{}\n{}",
            self.name,
            self.python.display(),
            self.needs,
            if self.name == "JVM Spark" {
                format!(" with {HEAVY_READERS_VAR}=1")
            } else {
                String::new()
            },
            match &probe {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            }
        );
    }

    /// Runs the reader once for all the queries; one JSON line per query, in order.
    fn run(&self, location: &str, queries: &[(u128, u64)]) -> Vec<Value> {
        let mut args = vec![location.to_string()];
        for (account, at) in queries {
            args.extend([account.to_string(), at.to_string()]);
        }
        let started = Instant::now();
        let stdout = self.script_stdout(self.script, &args);
        eprintln!(
            "{} answered {} queries in {:.1?}",
            self.name,
            queries.len(),
            started.elapsed()
        );
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    }

    /// Runs `tests/readers/<script>` with this reader's Python; its standard output.
    fn script_stdout(&self, script: &str, args: &[String]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/readers")
            .join(script);
        let output = Command::new(&self.python)
            // No `__pycache__` in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(&script)
            .args(args)
            .output()
            .expect("the reader runs");
        assert!(
            output.status.success(),
            "{} ({}) failed: {}",
            self.name,
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    }
}

/// Builds the lake, asks the reader about a few accounts at two moments, and compares its every
/// answer exactly with the lake's events and with `ledgerlake balances`.
async fn reader_agrees_with_the_lake(reader: Reader) {
    reader.assert_installed();
    let (events, middle, last) = history();
    let dir = tempfile::tempdir().expect("tempdir");
    // One event per segment, so that the tables have over 100 commits (and a checkpoint).
    let (location, lake) = write_lake(dir.path(), &events, 1).await;
    let checkpoint = dir
        .path()
        .join("lake/transfers/_delta_log/_last_checkpoint");
    assert!(
        checkpoint.exists(),
        "the readers open the table through a checkpoint"
    );
    let (lake_events, _) = lake.read_all().await.expect("read_all");
    assert_eq!(lake_events, events, "the lake holds the history");

    let mut queries = Vec::new();
    for at in [middle, last] {
        for account in [SMALL, AT_E38, BELOW_E38, LARGEST_ID, HOLDER, SILENT] {
            queries.push((account, at));
        }
    }
    let expected = expected_answers(&location, &lake_events, &queries);
    assert_history_reaches_the_extremes(&expected);
    assert_answers(&reader, &location, &queries, &expected);
}

/// The answers to `queries` from the lake's events, each checked against `ledgerlake balances`.
fn expected_answers(location: &str, events: &[Event], queries: &[(u128, u64)]) -> Vec<Value> {
    let mut reports: HashMap<u64, Value> = HashMap::new();
    let mut expected = Vec::new();
    for &(account, at) in queries {
        let answer = expected_from_events(events, account, at);
        let report = reports
            .entry(at)
            .or_insert_with(|| balances_report(location, at));
        assert_agrees_with_balances(&answer, report);
        expected.push(answer);
    }
    expected
}

/// Runs the reader on the queries and compares its every answer exactly with `expected`.
fn assert_answers(reader: &Reader, location: &str, queries: &[(u128, u64)], expected: &[Value]) {
    let answers = reader.run(location, queries);
    assert_eq!(answers.len(), queries.len(), "one answer per query");
    for (mut answer, expected) in answers.into_iter().zip(expected) {
        let engine = answer
            .as_object_mut()
            .and_then(|o| o.remove("engine"))
            .expect("the answer names its engine");
        assert!(
            answer == *expected,
            "{} ({engine}) differs for account {} at {}:\nreader:   {answer:#}\nexpected: {expected:#}",
            reader.name,
            expected["account"],
            expected["at"]
        );
    }
}

/// The answers cover what the readers must get exactly: amounts and balances of u128::MAX and
/// at and above 10^38, trial balance sums beyond 2^128 and sums above 10^38 of values below it.
fn assert_history_reaches_the_extremes(expected: &[Value]) {
    let lines = || {
        expected
            .iter()
            .flat_map(|e| e["statement"].as_array().expect("statement"))
    };
    let max = u128::MAX.to_string();
    assert!(lines().any(|l| l["amount"] == max.as_str()));
    assert!(lines().any(|l| l["credits_posted"] == max.as_str()));
    assert!(lines().any(|l| u128_of(&l["amount"]) == E38));
    assert!(lines().any(|l| u128_of(&l["credits_pending"]) > E38));
    let sums = || {
        expected.iter().flat_map(|e| {
            e["trial_balance"]
                .as_array()
                .expect("trial balance")
                .iter()
                .flat_map(|l| BALANCES.map(|name| l[name].as_str().expect("sum").to_string()))
                .collect::<Vec<_>>()
        })
    };
    assert!(
        sums().any(|s| s.parse::<u128>().is_err()),
        "a sum is beyond 2^128"
    );
    let ledger_3_above_e38 = expected.iter().any(|e| {
        e["trial_balance"]
            .as_array()
            .expect("trial balance")
            .iter()
            .any(|l| {
                l["ledger"] == 3
                    && BALANCES
                        .iter()
                        .any(|name| l[name].as_str().expect("sum").len() > 38)
            })
    });
    assert!(
        ledger_3_above_e38,
        "ledger 3 sums values below 10^38 to more than 10^38"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_rs_reads_statements_and_the_trial_balance_exactly() {
    reader_agrees_with_the_lake(delta_rs()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sail_reads_statements_and_the_trial_balance_exactly() {
    reader_agrees_with_the_lake(sail()).await;
}

/// Opt-in: runs only with `LEDGERLAKE_HEAVY_READERS=1` (which also makes `scripts/setup-test.sh`
/// install pyspark 4.3); then a missing install fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jvm_spark_reads_statements_and_the_trial_balance_exactly() {
    if std::env::var(HEAVY_READERS_VAR).as_deref() != Ok("1") {
        eprintln!("JVM Spark reader not run: set {HEAVY_READERS_VAR}=1 to run it");
        return;
    }
    reader_agrees_with_the_lake(jvm_spark()).await;
}

/// The readers that run by default, and JVM Spark with `LEDGERLAKE_HEAVY_READERS=1`.
fn readers_to_run() -> Vec<Reader> {
    let mut readers = vec![delta_rs(), sail()];
    if std::env::var(HEAVY_READERS_VAR).as_deref() == Ok("1") {
        readers.push(jvm_spark());
    }
    readers
}

/// A lake the exporter wrote from the real stack (a TigerBeetle replica, the CDC job, RabbitMQ)
/// after a workload with every kind of event and amounts above 10^38: every reader's statements
/// of its busiest accounts, and its trial balances, at an event's moment and at the last event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_agree_on_an_exported_lake() {
    let readers = readers_to_run();
    for reader in &readers {
        reader.assert_installed();
    }
    let stack = Stack::start().await;
    let summary = stack.run_workload(0x5ead_0001, 1_500).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let location = common::stack::lake_path(dir.path());
    let lake = Lake::open(&location).await.expect("lake");
    let exporter = InProcessExporter::start(stack.export_options(&location));
    let expected_events = summary.events.total();
    wait_for_event_count(&lake, expected_events, Duration::from_secs(180)).await;
    exporter.stop().await;
    let (events, _) = lake.read_all().await.expect("read_all");
    assert_eq!(events.len() as u64, expected_events);

    // The busiest accounts of each ledger, and the one with the largest balance.
    let mut event_counts: HashMap<u128, (u32, usize)> = HashMap::new();
    let mut largest = (0u128, 0u128);
    for e in &events {
        for a in [&e.debit_account, &e.credit_account] {
            event_counts.entry(a.id).or_insert((e.ledger, 0)).1 += 1;
            let top = balances_of(a).into_iter().max().expect("four balances");
            if top > largest.1 {
                largest = (a.id, top);
            }
        }
    }
    let mut busiest: BTreeMap<u32, (usize, u128)> = BTreeMap::new();
    for (&id, &(ledger, count)) in &event_counts {
        let best = busiest.entry(ledger).or_insert((count, id));
        if (count, id) > *best {
            *best = (count, id);
        }
    }
    let mut accounts: Vec<u128> = busiest.values().map(|&(_, id)| id).collect();
    accounts.push(largest.0);
    assert!(largest.1 >= E38, "the workload moves amounts above 10^38");
    let middle = events[events.len() / 2].timestamp;
    let last = events[events.len() - 1].timestamp;
    let queries: Vec<(u128, u64)> = [middle, last]
        .into_iter()
        .flat_map(|at| accounts.iter().map(move |&account| (account, at)))
        .collect();
    let expected = expected_answers(&location, &events, &queries);
    for reader in &readers {
        assert_answers(reader, &location, &queries, &expected);
    }
    stack.cleanup().await;
}

/// Another engine's VACUUM follows the tables' tombstone retention, which ledgerlake sets to an
/// hour (`TOMBSTONE_RETENTION`) so that checkpoints stay small: delta-rs reads the property,
/// its default VACUUM keeps files compacted away a moment ago, it refuses a shorter retention
/// unless told, and forced to zero it lists exactly the files ledgerlake's own vacuum would
/// delete (no active file). All dry runs: the lake is not changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_rs_vacuum_keeps_the_files_the_tombstone_retention_protects() {
    let reader = delta_rs();
    reader.assert_installed();
    let (events, _, _) = history();
    let dir = tempfile::tempdir().expect("tempdir");
    let (location, lake) = write_lake(dir.path(), &events, 1).await;
    // The stray copy `write_lake` leaves is not part of this test.
    for partition in std::fs::read_dir(dir.path().join("lake/transfers")).expect("table dir") {
        let stray = partition
            .expect("entry")
            .path()
            .join("00000000000000000000-99999999999999999999-stray.parquet");
        if stray.exists() {
            std::fs::remove_file(&stray).expect("remove the stray copy");
        }
    }
    let mut merges = 0;
    lake.compact_pass(CLUSTER, &mut |_| {
        merges += 1;
        true
    })
    .await
    .expect("compaction");
    assert!(merges > 0, "the history has closed windows to merge");

    let ours = lake
        .vacuum(Duration::ZERO, true, ledgerlake::timefmt::now_ms() + 1)
        .await
        .expect("vacuum dry run");
    let mut removed: Vec<String> = ours
        .deleted
        .iter()
        .filter(|f| f.table == "transfers")
        .map(|f| f.path.rsplit('/').next().expect("a name").to_string())
        .collect();
    removed.sort();
    assert!(!removed.is_empty());

    let stdout = reader.script_stdout("deltalake_vacuum.py", &[format!("{location}/transfers")]);
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    eprintln!("delta-rs vacuum dry runs: {report}");
    assert_eq!(report["retention"], json!("interval 3600 seconds"));
    assert_eq!(report["default"], json!([]), "removed a moment ago: kept");
    let refused = report["zero_refused"].as_str().unwrap_or_default();
    assert!(!refused.is_empty(), "a zero retention is refused: {report}");
    assert_eq!(
        report["zero"],
        json!(removed),
        "forced to zero: the removed files"
    );
    let active: HashSet<&str> = report["active"]
        .as_array()
        .expect("active")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(removed.iter().all(|r| !active.contains(r.as_str())));
    // Nothing changed: the lake still holds the history.
    assert_eq!(lake.read_all().await.expect("read_all").0, events);
}
