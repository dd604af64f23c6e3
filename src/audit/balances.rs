//! `ledgerlake balances`: every account's balances as of any moment, from the lake alone —
//! each account's balances are those its last event at or before the moment carries (events
//! carry balances *after* themselves). Segments after the moment are never opened.

use std::collections::BTreeSet;
use std::fmt::Write;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::effect::Balances;
use super::progress::Progress;
use super::state::{AccountAsOf, LakeState, Selection, StateError};
use crate::cli::parse_u128;
use crate::lake::{Lake, LakeError};
use crate::timefmt::{parse_rfc3339, rfc3339};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BalancesFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct BalancesArgs {
    /// The lake (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// The moment: a TigerBeetle timestamp (nanoseconds since the epoch) or RFC 3339
    /// (e.g. 2026-11-21T21:02:30.5Z). Inclusive: an event at exactly this time counts.
    #[arg(long, value_parser = parse_at)]
    pub at: u64,
    /// Only this account (decimal id); repeat for several.
    #[arg(long = "account", value_parser = parse_u128)]
    pub accounts: Vec<u128>,
    /// Only accounts of this ledger; repeat for several.
    #[arg(long = "ledger")]
    pub ledgers: Vec<u32>,
    #[arg(long, value_enum, default_value_t = BalancesFormat::Table)]
    pub format: BalancesFormat,
}

/// `--at`: all digits is nanoseconds since the epoch, anything else RFC 3339.
pub fn parse_at(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| format!("{s:?} is above the largest timestamp, 2^64-1 ns"));
    }
    parse_rfc3339(s).map_err(|e| e.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum BalancesError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the lake at {lake} holds no events")]
    EmptyLake { lake: String },
    #[error(
        "--at {at} ({}) is after the lake's last event at {last} ({}): the lake cannot know \
         what happened since; use --at {last} or wait for the exporter",
        rfc3339(*at), rfc3339(*last)
    )]
    AtAfterLake { at: u64, last: u64 },
    #[error("cannot write the output: {0}")]
    Output(#[from] serde_json::Error),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountBalance {
    #[serde(with = "super::json::dec")]
    pub account: u128,
    pub ledger: u32,
    #[serde(flatten)]
    pub balances: Balances,
    pub flags: u16,
    /// The event whose balances these are.
    #[serde(with = "super::json::dec")]
    pub as_of_timestamp: u64,
    pub as_of_time: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BalancesReport {
    pub lake: String,
    #[serde(with = "super::json::dec")]
    pub at: u64,
    pub at_time: String,
    #[serde(with = "super::json::dec")]
    pub lake_last_timestamp: u64,
    pub segments_read: usize,
    pub accounts: Vec<AccountBalance>,
    /// Requested accounts with no event at or before `at` (their balances were zero, or they
    /// did not exist).
    #[serde(with = "super::json::vec_dec")]
    pub without_events: Vec<u128>,
}

/// Balances of the selected accounts as of `at`, sorted by ledger then account.
pub async fn balances_at(
    lake: &Lake,
    at: u64,
    selection: &Selection,
    progress: bool,
) -> Result<BalancesReport, BalancesError> {
    let segments = lake.list_segments().await?;
    let last =
        segments
            .last()
            .map(|s| s.last_timestamp)
            .ok_or_else(|| BalancesError::EmptyLake {
                lake: lake.location().to_string(),
            })?;
    if at > last {
        return Err(BalancesError::AtAfterLake { at, last });
    }
    let mut state = LakeState::default();
    let mut progress = Progress::new("balances", segments.len(), progress);
    state
        .advance(lake, &segments, at, selection, &mut progress)
        .await?;
    let mut accounts: Vec<AccountBalance> = state.accounts.values().map(line).collect();
    accounts.sort_by_key(|a| (a.ledger, a.account));
    let without_events = selection
        .accounts
        .iter()
        .filter(|id| !state.accounts.contains_key(id))
        .copied()
        .collect();
    Ok(BalancesReport {
        lake: lake.location().to_string(),
        at,
        at_time: rfc3339(at),
        lake_last_timestamp: last,
        segments_read: state.segments_read,
        accounts,
        without_events,
    })
}

fn line(a: &AccountAsOf) -> AccountBalance {
    AccountBalance {
        account: a.id,
        ledger: a.ledger,
        balances: a.balances,
        flags: a.flags,
        as_of_timestamp: a.last_event_timestamp,
        as_of_time: rfc3339(a.last_event_timestamp),
    }
}

pub async fn run(args: &BalancesArgs) -> Result<(), BalancesError> {
    let lake = Lake::open(&args.lake).await?;
    let selection = Selection {
        accounts: args.accounts.iter().copied().collect::<BTreeSet<_>>(),
        ledgers: args.ledgers.iter().copied().collect(),
    };
    let report = balances_at(&lake, args.at, &selection, true).await?;
    match args.format {
        BalancesFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        BalancesFormat::Csv => print!("{}", render_csv(&report)),
        BalancesFormat::Table => print!("{}", render_table(&report)),
    }
    if !report.without_events.is_empty() {
        eprintln!(
            "note: {} requested account(s) have no event at or before {}: {:?}",
            report.without_events.len(),
            report.at_time,
            report.without_events
        );
    }
    Ok(())
}

pub fn render_csv(report: &BalancesReport) -> String {
    let mut out = String::from(
        "account,ledger,debits_pending,debits_posted,credits_pending,credits_posted,flags,as_of_timestamp,as_of_time\n",
    );
    for a in &report.accounts {
        let b = &a.balances;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            a.account,
            a.ledger,
            b.debits_pending,
            b.debits_posted,
            b.credits_pending,
            b.credits_posted,
            a.flags,
            a.as_of_timestamp,
            a.as_of_time
        );
    }
    out
}

pub fn render_table(report: &BalancesReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "balances as of {} ({}), lake {} (last event {})",
        report.at_time,
        report.at,
        report.lake,
        rfc3339(report.lake_last_timestamp)
    );
    let _ = writeln!(
        out,
        "{:>39}  {:>10}  {:>39}  {:>39}  {:>39}  {:>39}  {:>5}  as of",
        "account",
        "ledger",
        "debits_pending",
        "debits_posted",
        "credits_pending",
        "credits_posted",
        "flags"
    );
    for a in &report.accounts {
        let b = &a.balances;
        let _ = writeln!(
            out,
            "{:>39}  {:>10}  {:>39}  {:>39}  {:>39}  {:>39}  {:>5}  {}",
            a.account,
            a.ledger,
            b.debits_pending,
            b.debits_posted,
            b.credits_pending,
            b.credits_posted,
            a.flags,
            a.as_of_time
        );
    }
    let _ = writeln!(out, "{} accounts", report.accounts.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_is_nanoseconds_or_rfc3339() {
        assert_eq!(
            parse_at("1795294950000000001"),
            Ok(1_795_294_950_000_000_001)
        );
        assert_eq!(
            parse_at("2026-11-21T21:02:30.000000001Z"),
            Ok(1_795_294_950_000_000_001)
        );
        assert_eq!(parse_at("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_at("18446744073709551616").is_err());
        assert!(parse_at("-1").is_err());
        assert!(parse_at("yesterday").is_err());
        assert!(parse_at("").is_err());
    }
}
