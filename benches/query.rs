//! DuckDB over the lake: one account's balance as of a time, a one-day statement, a full trial
//! balance, on a synthetic lake of 10^6 (small) or 10^7 (full) events, in format 2 (Delta
//! tables, `decimal(38,0)` + `_e38` columns) next to the same events in format 1 (plain Parquet,
//! `_hi`/`_lo` UINT64 columns): format 2's queries must stay within 1.2× of format 1's.
//!
//! The generator makes each segment once and writes it twice: into a format-2 lake through
//! `Lake::commit` (the exporter's own commit path, so files, names, encodings, partitions and
//! log are exactly the exporter's) and into a format-1 lake through the format-1 writer kept for
//! the tests (`Format1Lake::write_segment`, format 1's own encoder and settings). The events:
//! single-phase transfers between 10,000 accounts on 3 ledgers, balances carried exactly, spread
//! evenly over 7 (small) or 30 (full) UTC days, segments of 32,768 events (the exporter's
//! default at a sustained rate) cut at midnight.
//!
//! Format 1 is queried as its readers did, `read_parquet('<lake>/transfers/*/*.parquet',
//! hive_partitioning = true)` with `_hi`/`_lo`; format 2 as the DuckDB views do after replaying
//! the log, `read_parquet([<the snapshot's active files>], hive_partitioning = true)`, the file
//! list taken from the log by `Lake::list_segments`, with the format-2 columns. Every answer is
//! exact in both, and the bench fails unless both formats give the same answer to every query.
//! DuckDB CLI, `.timer on`, the two formats' runs interleaved in one session, median of
//! [`RUNS`]. The anchor of the absolute figures is a full scan of the same files (`count(*)` and
//! a sum of one column): the least any query that must look at every event pays.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Args, Better, Report, Row, Scale};
use ledgerlake::cdc::{AccountFields, Event, EventType, TransferFields};
use ledgerlake::lake::format1::Format1Lake;
use ledgerlake::lake::{AccountRecord, Lake, Segment};
use serde_json::json;

const ACCOUNTS: u64 = 10_000;
const LEDGERS: u64 = 3;
const SEGMENT_EVENTS: usize = 32_768;
const RUNS: usize = 7;
const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;
/// 2026-01-01T00:00:00Z.
const START_NS: u64 = 1_767_225_600 * 1_000_000_000;
const CLUSTER: u128 = 5;
/// The bar: format 2's query time over format 1's on the same events.
const RATIO_MAX: f64 = 1.2;
/// 10^38, the base of format 2's `_e38` columns, as DuckDB text.
const E38: &str = "CAST('100000000000000000000000000000000000000' AS UHUGEINT)";

/// 10^18, the base of format 2's `_e18` identifier columns, as DuckDB text.
const E18: &str = "CAST(1000000000000000000 AS UHUGEINT)";

/// How a lake format stores a u128 column `x`: the SQL that names and combines its two parts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `x_hi`, `x_lo` UINT64: value = hi·2^64 + lo.
    Format1,
    /// Amounts and balances: `x_e38` byte, `x` decimal(38,0): value = e38·10^38 + x.
    /// Identifiers (`*_id`): `x_e18` decimal(21,0), `x` INT64: value = e18·10^18 + x.
    /// Values are built as the views' `u128` and `id128` macros build them.
    Format2,
    /// Format 2, values built with plain casts (`x_e38::UHUGEINT * 10^38 + x::UHUGEINT`), the
    /// views' form before their macros skipped DuckDB's slow `decimal(38,0)` casts: shown next
    /// to the macros' form, not a bar.
    Format2PlainCasts,
}

/// Whether format 2 stores column `col` as an identifier (`_e18`) rather than a quantity.
fn is_id(col: &str) -> bool {
    col.ends_with("_id") || col == "user_data_128"
}

impl Layout {
    /// (high part, low part) column names of u128 column `col`.
    fn parts(self, col: &str) -> (String, String) {
        match self {
            Layout::Format1 => (format!("{col}_hi"), format!("{col}_lo")),
            Layout::Format2 | Layout::Format2PlainCasts if is_id(col) => {
                (format!("{col}_e18"), col.to_string())
            }
            Layout::Format2 | Layout::Format2PlainCasts => (format!("{col}_e38"), col.to_string()),
        }
    }

    /// The base of the high part of a quantity, to rebuild a value from the parts' sums.
    fn base(self) -> u128 {
        match self {
            Layout::Format1 => 1u128 << 64,
            Layout::Format2 | Layout::Format2PlainCasts => 10u128.pow(38),
        }
    }

    /// `col = v` for a u128 column and a small `v` (high part zero).
    fn equals(self, col: &str, v: u64) -> String {
        let (hi, lo) = self.parts(col);
        format!("({hi} = 0 AND {lo} = {v})")
    }

    /// The exact value of a u128 column, as a `UHUGEINT`.
    fn value(self, col: &str) -> String {
        let (hi, lo) = self.parts(col);
        // schemas/duckdb/lake.sql, `dec38_u128`: DuckDB's decimal(38,0) -> UHUGEINT cast is exact
        // but slow; below 10^18 the value goes through DECIMAL(18,0) and BIGINT instead.
        let dec38 = |x: &str| {
            format!(
                "CASE WHEN {x} < 1000000000000000000 \
                 THEN {x}::DECIMAL(18,0)::BIGINT::UHUGEINT ELSE {x}::UHUGEINT END"
            )
        };
        match self {
            Layout::Format1 => format!("(({hi}::UHUGEINT << 64) | {lo}::UHUGEINT)"),
            Layout::Format2 if is_id(col) => format!(
                "(CASE WHEN {hi} = 0 THEN {lo}::UHUGEINT \
                 ELSE {hi}::UHUGEINT * {E18} + {lo}::UHUGEINT END)"
            ),
            Layout::Format2 => format!(
                "(CASE WHEN {hi} = 0 THEN {d} ELSE {hi}::UHUGEINT * {E38} + {d} END)",
                d = dec38(&lo)
            ),
            Layout::Format2PlainCasts if is_id(col) => {
                format!("({hi}::UHUGEINT * {E18} + {lo}::UHUGEINT)")
            }
            Layout::Format2PlainCasts => format!("({hi}::UHUGEINT * {E38} + {lo}::UHUGEINT)"),
        }
    }

    /// An exact sum of one part of a u128 column (format 1: UINT64 parts summed as HUGEINT;
    /// format 2: `sum` of a byte is a HUGEINT, of a decimal(38,0) exact below 10^38).
    fn sum(self, part: &str) -> String {
        match self {
            Layout::Format1 => format!("sum({part}::HUGEINT)"),
            Layout::Format2 | Layout::Format2PlainCasts => format!("sum({part})"),
        }
    }
}

/// The four queries of the bench over one lake.
struct Queries {
    balance_as_of: String,
    statement: String,
    /// The same statement with both sides in one `OR` filter, which DuckDB cannot push into the
    /// scan: every column of the day is decoded. Shown for comparison, not a bar.
    statement_one_filter: String,
    trial_balance: String,
    full_scan: String,
}

const BALANCES: [&str; 4] = [
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
];
/// Short names of [`BALANCES`] in the trial balance.
const KEYS: [&str; 4] = ["dp", "dpo", "cp", "cpo"];

fn queries(layout: Layout, src: &str, as_of: u64, account: u64, day: &str) -> Queries {
    let is_account = |side: &str| layout.equals(&format!("{side}_account_id"), account);
    let (d, c) = (is_account("debit"), is_account("credit"));
    let balances = BALANCES
        .map(|name| {
            format!(
                "CASE WHEN {d} THEN {dv} ELSE {cv} END AS {name}",
                dv = layout.value(&format!("debit_account_{name}")),
                cv = layout.value(&format!("credit_account_{name}")),
            )
        })
        .join(", ");
    let balance_as_of = format!(
        "SELECT timestamp, {balances} FROM {src} WHERE timestamp <= {as_of} AND ({d} OR {c}) \
         ORDER BY timestamp DESC LIMIT 1;"
    );
    // As the views' `statement` macro reads it (`movements`: one side at a time, so each side's
    // filter on the account is pushed into the scan).
    let side_rows = |side: &str, is_side: &str| {
        let balances = BALANCES
            .map(|name| {
                format!(
                    "{} AS {name}",
                    layout.value(&format!("{side}_account_{name}"))
                )
            })
            .join(", ");
        format!(
            "SELECT timestamp, event_type, {tid} AS transfer_id, '{side}' AS side, \
             {amount} AS amount, {balances} FROM {src} WHERE date = DATE '{day}' AND {is_side}",
            tid = layout.value("transfer_id"),
            amount = layout.value("amount"),
        )
    };
    let statement = format!(
        "SELECT * FROM ({} UNION ALL {}) ORDER BY timestamp;",
        side_rows("debit", &d),
        side_rows("credit", &c),
    );
    let statement_one_filter = format!(
        "SELECT timestamp, event_type, {tid} AS transfer_id, \
         CASE WHEN {d} THEN 'debit' ELSE 'credit' END AS side, {amount} AS amount, {balances} \
         FROM {src} WHERE date = DATE '{day}' AND ({d} OR {c}) ORDER BY timestamp;",
        tid = layout.value("transfer_id"),
        amount = layout.value("amount"),
    );
    let side = |s: &str| {
        let (id_hi, id_lo) = layout.parts(&format!("{s}_account_id"));
        let fields = BALANCES
            .iter()
            .zip(KEYS)
            .map(|(name, k)| {
                let (hi, lo) = layout.parts(&format!("{s}_account_{name}"));
                format!("'{k}_hi': {hi}, '{k}_lo': {lo}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!("SELECT ledger, {id_hi} AS id_hi, {id_lo} AS id_lo, timestamp, {{{fields}}} AS b FROM t")
    };
    let sums = KEYS
        .map(|k| {
            format!(
                "{} AS {k}_hi_sum, {} AS {k}_lo_sum",
                layout.sum(&format!("b.{k}_hi")),
                layout.sum(&format!("b.{k}_lo"))
            )
        })
        .join(", ");
    let trial_balance = format!(
        "WITH t AS (SELECT * FROM {src} WHERE timestamp <= {as_of}), \
         sides AS ({debit} UNION ALL {credit}), \
         latest AS (SELECT ledger, id_hi, id_lo, arg_max(b, timestamp) AS b FROM sides GROUP BY ALL) \
         SELECT ledger, count(*) AS accounts, {sums}, \
         {dpo_lo} = {cpo_lo} AND {dpo_hi} = {cpo_hi} AS balanced \
         FROM latest GROUP BY ledger ORDER BY ledger;",
        debit = side("debit"),
        credit = side("credit"),
        dpo_lo = layout.sum("b.dpo_lo"),
        cpo_lo = layout.sum("b.cpo_lo"),
        dpo_hi = layout.sum("b.dpo_hi"),
        cpo_hi = layout.sum("b.cpo_hi"),
    );
    let (_, amount_lo) = layout.parts("amount");
    let full_scan = format!("SELECT count(*), {} FROM {src};", layout.sum(&amount_lo));
    Queries {
        balance_as_of,
        statement,
        statement_one_filter,
        trial_balance,
        full_scan,
    }
}

/// The trial balance's CSV rows with each (high sum, low sum) pair turned into the exact total,
/// so that both formats' answers compare as numbers: `ledger, accounts, dp, dpo, cp, cpo,
/// balanced`.
fn trial_balance_totals(layout: Layout, csv: &str) -> Vec<String> {
    csv.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 3 + 2 * KEYS.len(), "a trial balance row: {line}");
            let mut out = vec![f[0].to_string(), f[1].to_string()];
            for pair in f[2..2 + 2 * KEYS.len()].chunks(2) {
                let parse = |s: &str| -> u128 {
                    s.parse()
                        .unwrap_or_else(|e| panic!("a sum in {line:?}: {s:?}: {e}"))
                };
                let total = parse(pair[0])
                    .checked_mul(layout.base())
                    .and_then(|h| h.checked_add(parse(pair[1])))
                    .unwrap_or_else(|| panic!("a total above u128::MAX in {line:?}"));
                out.push(total.to_string());
            }
            out.push(f[f.len() - 1].to_string());
            out.join(",")
        })
        .collect()
}

fn main() {
    let args = Args::parse();
    let (mut events, days) = match args.scale {
        Scale::Small => (1_000_000u64, 7u64),
        Scale::Full => (10_000_000u64, 30u64),
    };
    // `--events N`: another size (a quick check of the harness).
    if let Some(n) = args.get("events") {
        events = n.parse().expect("--events N");
        assert!(events >= days * 1_000, "--events: at least 1,000 per day");
    }
    let dir2 = args.work.join("lake-query-f2");
    let dir1 = args.work.join("lake-query-f1");
    for d in [&dir1, &dir2] {
        let _ = std::fs::remove_dir_all(d);
    }
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let lake2 = runtime.block_on(generate(&dir2, &dir1, events, days));
    let generate_s = started.elapsed().as_secs_f64();
    let segments = runtime
        .block_on(lake2.list_segments())
        .expect("the format-2 lake's active files");
    let (bytes2, files2) = common::dir_bytes(&dir2, "");
    let (bytes1, files1) = common::dir_bytes(&dir1, "");
    let transfers2: u64 = segments.iter().map(|s| s.transfers_bytes).sum();
    let (transfers1, transfers1_files) = common::dir_bytes(&dir1.join("transfers"), "");
    assert_eq!(
        transfers1_files,
        segments.len(),
        "both lakes hold the same segments"
    );
    eprintln!(
        "bench query: {events} events in {} segments; format 2: {files2} files, {bytes2} bytes; \
         format 1: {files1} files, {bytes1} bytes; generated in {generate_s:.1} s",
        segments.len()
    );

    let src1 = format!(
        "read_parquet('{}/transfers/*/*.parquet', hive_partitioning = true)",
        dir1.display()
    );
    let list = segments
        .iter()
        .map(|s| format!("'{}/{}'", dir2.display(), s.transfers_path))
        .collect::<Vec<_>>()
        .join(", ");
    // As the views read it (schemas/duckdb/lake.sql): the snapshot's files, `date` typed.
    let src2 =
        format!("read_parquet([{list}], hive_partitioning = true, hive_types = {{'date': DATE}})");
    let span = days * NS_PER_DAY;
    let as_of = START_NS + span / 4 * 3;
    let account = 42u64;
    let day = ledgerlake::timefmt::date_partition(START_NS + span / 2);
    let q1 = queries(Layout::Format1, &src1, as_of, account, &day);
    let q2 = queries(Layout::Format2, &src2, as_of, account, &day);
    let q2_plain = queries(Layout::Format2PlainCasts, &src2, as_of, account, &day);
    let pairs = [
        (
            "balance as of",
            "balance_as_of",
            &q1.balance_as_of,
            &q2.balance_as_of,
            0.5,
        ),
        (
            "one-day statement",
            "statement",
            &q1.statement,
            &q2.statement,
            0.5,
        ),
        (
            "trial balance",
            "trial_balance",
            &q1.trial_balance,
            &q2.trial_balance,
            5.0,
        ),
        (
            "full scan",
            "full_scan",
            &q1.full_scan,
            &q2.full_scan,
            f64::NAN,
        ),
        (
            "one-day statement, one OR filter",
            "statement_one_filter",
            &q1.statement_one_filter,
            &q2.statement_one_filter,
            f64::NAN,
        ),
        (
            "one-day statement, plain casts",
            "statement_plain_casts",
            &q1.statement,
            &q2_plain.statement,
            f64::NAN,
        ),
        (
            "balance as of, plain casts",
            "balance_as_of_plain_casts",
            &q1.balance_as_of,
            &q2_plain.balance_as_of,
            f64::NAN,
        ),
    ];
    // The rows after the first five compare other forms of the same queries: shown, not bars.
    let is_bar = |key: &str| {
        !matches!(
            key,
            "statement_one_filter" | "statement_plain_casts" | "balance_as_of_plain_casts"
        )
    };

    // The answers first: both formats must give the same, exactly (the bench fails otherwise).
    let mut answers = serde_json::Map::new();
    for (what, key, sql1, sql2, _) in &pairs {
        let a1 = answer(sql1);
        let a2 = answer(sql2);
        let (c1, c2) = if *key == "trial_balance" {
            (
                trial_balance_totals(Layout::Format1, &a1),
                trial_balance_totals(Layout::Format2, &a2),
            )
        } else {
            let lines = |a: &str| a.lines().map(str::to_string).collect::<Vec<_>>();
            (lines(&a1), lines(&a2))
        };
        assert!(!c1.is_empty(), "{what}: format 1 gives no rows");
        assert_eq!(
            c1, c2,
            "{what}: format 1 and format 2 answer differently\n{sql1}\n{sql2}"
        );
        if *key == "trial_balance" {
            assert!(
                c1.iter().all(|r| r.ends_with(",true")),
                "the trial balance must balance: {c1:?}"
            );
        }
        if key.starts_with("statement_") {
            assert_eq!(
                Some(&json!(c2)),
                answers.get("statement"),
                "{what}: the statement's forms answer differently"
            );
        }
        if *key == "balance_as_of_plain_casts" {
            assert_eq!(
                Some(&json!(c2)),
                answers.get("balance_as_of"),
                "{what}: the balance's forms answer differently"
            );
        }
        let shown = if key.starts_with("statement") {
            format!("{} rows", c1.len())
        } else {
            c1.join("; ")
        };
        eprintln!("bench query: {what}: same answer in both formats: {shown}");
        answers.insert(key.to_string(), json!(c1));
    }

    let mut report = Report::new("query", args.scale);
    let mut timings = serde_json::Map::new();
    let mut medians = Vec::new();
    for (what, key, sql1, sql2, _) in &pairs {
        let (t1, t2) = time_pair(sql1, sql2);
        timings.insert(key.to_string(), json!({"format_1": t1, "format_2": t2}));
        medians.push((median(&t1), median(&t2)));
        report.row(Row {
            id: format!("9 {what}: f2 vs f1 (s)"),
            what: format!(
                "DuckDB CLI, median of {RUNS}, {events} events, format 2 (snapshot file list) vs \
                 format 1 (glob)"
            ),
            unit: "s".into(),
            ours: median(&t2),
            anchor: Some(median(&t1)),
            anchor_what: format!("format 1, the same events and query ({what})"),
            // Other forms of the queries than the views': shown, not bars.
            target: is_bar(key).then_some((RATIO_MAX, true)),
            better: Better::Lower,
        });
    }
    let (_, scan2) = medians[3];
    for (i, (what, _, _, _, target)) in pairs.iter().take(3).enumerate() {
        report.row(Row {
            id: format!("5 {what} (s)"),
            what: format!("DuckDB CLI, median of {RUNS}, {events} events, format 2"),
            unit: "s".into(),
            ours: medians[i].1,
            anchor: Some(scan2),
            anchor_what: "format 2 full scan: count(*) + sum(amount) over the same files".into(),
            target: Some((*target, false)),
            better: Better::Lower,
        });
    }
    let per_event = |b: u64| b as f64 / events as f64;
    report.row(Row {
        id: "9 transfers B/event: f2 vs f1".into(),
        what: "transfers data files / events".into(),
        unit: "B/event".into(),
        ours: per_event(transfers2),
        anchor: Some(per_event(transfers1)),
        anchor_what: "format 1 transfers files, the same events".into(),
        target: None,
        better: Better::Lower,
    });
    report.row(Row {
        id: "9 lake B/event: f2 vs f1".into(),
        what: "every file of the lake (format 2: with its logs) / events".into(),
        unit: "B/event".into(),
        ours: per_event(bytes2),
        anchor: Some(per_event(bytes1)),
        anchor_what: "the format 1 lake, the same events".into(),
        target: None,
        better: Better::Lower,
    });
    report.detail("events", json!(events));
    report.detail("days", json!(days));
    report.detail("segments", json!(segments.len()));
    report.detail(
        "format_2",
        json!({"files": files2, "lake_bytes": bytes2, "transfers_bytes": transfers2}),
    );
    report.detail(
        "format_1",
        json!({"files": files1, "lake_bytes": bytes1, "transfers_bytes": transfers1}),
    );
    report.detail("generate_s", json!(generate_s));
    report.detail("timings_s", json!(timings));
    report.detail("answers", json!(answers));
    report.detail(
        "load_average",
        json!(std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()),
    );
    report.detail("duckdb_version", json!(answer("SELECT version();").trim()));
    // The format-2 SQL with its file list shortened (it names every file).
    let short = |sql: &str| sql.replace(&list, "<active files>");
    report.detail(
        "sql",
        json!({
            "format_1": {
                "balance_as_of": q1.balance_as_of,
                "statement": q1.statement,
                "statement_one_filter": q1.statement_one_filter,
                "trial_balance": q1.trial_balance,
                "full_scan": q1.full_scan,
            },
            "format_2": {
                "balance_as_of": short(&q2.balance_as_of),
                "statement": short(&q2.statement),
                "statement_one_filter": short(&q2.statement_one_filter),
                "trial_balance": short(&q2.trial_balance),
                "full_scan": short(&q2.full_scan),
            },
        }),
    );
    report.finish(&args);
    // `--keep yes`: leave both lakes in the work directory (to query them by hand).
    if args.get("keep") != Some("yes") {
        for d in [&dir1, &dir2] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// One query's answer as CSV rows, without the header.
fn answer(sql: &str) -> String {
    duckdb(&format!(".mode csv\n.headers off\n{sql}\n"), false).1
}

fn median(t: &[f64]) -> f64 {
    let mut t = t.to_vec();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// The wall times DuckDB reports for `sql1` and `sql2`, [`RUNS`] runs of each, interleaved in
/// one session (so that the machine's load falls on both alike).
fn time_pair(sql1: &str, sql2: &str) -> (Vec<f64>, Vec<f64>) {
    let script = format!(
        ".timer on\n.output /dev/null\n{}",
        format!("{sql1}\n{sql2}\n").repeat(RUNS)
    );
    let (timings, _) = duckdb(&script, true);
    assert_eq!(timings.len(), 2 * RUNS, "one timing per run");
    let t1 = timings.iter().step_by(2).copied().collect();
    let t2 = timings.iter().skip(1).step_by(2).copied().collect();
    (t1, t2)
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

/// The two lakes the generator writes every segment into.
struct Lakes {
    format2: Lake,
    format1: Format1Lake,
}

/// Writes `events` single-phase transfers over `days` days, segment by segment, into a format-2
/// lake at `dir2` (through `Lake::commit`) and a format-1 lake at `dir1` (through the format-1
/// writer); returns the format-2 lake.
async fn generate(dir2: &Path, dir1: &Path, events: u64, days: u64) -> Lake {
    let format2 = Lake::open(&dir2.display().to_string()).await.expect("lake");
    format2.bind_cluster(CLUSTER).await.expect("bind");
    std::fs::create_dir_all(dir1).expect("the format-1 lake's directory");
    let format1_root = Lake::open(&dir1.display().to_string()).await.expect("lake");
    let format1 = Format1Lake::of(&format1_root);
    assert!(
        format1.write_meta(CLUSTER).await.expect("format-1 meta"),
        "a fresh format-1 lake"
    );
    let lakes = Lakes { format2, format1 };
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
            commit(&lakes, &mut open, &mut new_accounts).await;
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
    commit(&lakes, &mut open, &mut new_accounts).await;
    lakes.format2
}

async fn commit(lakes: &Lakes, open: &mut Vec<Event>, new_accounts: &mut Vec<AccountRecord>) {
    if open.is_empty() {
        return;
    }
    let segment = Segment {
        events: std::mem::take(open),
        new_accounts: std::mem::take(new_accounts),
    };
    lakes
        .format2
        .commit(&segment, CLUSTER)
        .await
        .expect("format-2 commit");
    assert!(
        lakes
            .format1
            .write_segment(&segment, CLUSTER)
            .await
            .expect("format-1 write"),
        "a new format-1 segment"
    );
    open.reserve(SEGMENT_EVENTS);
}
