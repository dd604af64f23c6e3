//! The audit commands' arguments (`balances`, `verify`, `reconcile`), their options, and their
//! reports as a table, CSV or JSON. `verify` and `reconcile` end with [`Outcome::ProblemsFound`]
//! (exit status 1) when the check found something.

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Args;

use super::exit::Outcome;
use super::output::{self, number, text, OutputFormat, ReportFormat};
use super::progress::Reporter;
use super::time::{parse_duration, parse_moment, parse_u128};
use super::{require_existing_lake, CliError};
use crate::audit::balances::{self, BalancesOptions, BalancesReport};
use crate::audit::reconcile::{self, Difference, ReconcileOptions, ReconcileReport};
use crate::audit::state::Selection;
use crate::audit::verify::{self, VerifyOptions, VerifyReport};
use crate::timefmt::{rfc3339, Moment};

#[derive(Debug, Args)]
pub struct BalancesArgs {
    /// The lake (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// The moment: a TigerBeetle timestamp (nanoseconds since the epoch), an RFC 3339 instant
    /// (e.g. 2026-11-21T21:02:30.5Z, any offset) or `latest` (the lake's last event).
    /// Inclusive: an event at exactly this time counts.
    #[arg(long, value_parser = parse_moment)]
    pub at: Moment,
    /// Only this account (decimal id); repeat for several.
    #[arg(long = "account", value_parser = parse_u128)]
    pub accounts: Vec<u128>,
    /// Only accounts of this ledger; repeat for several.
    #[arg(long = "ledger")]
    pub ledgers: Vec<u32>,
    /// Read the lake as it stood at this version of its transfers table (time travel; `ls
    /// --versions` lists them). Default: the latest.
    #[arg(long)]
    pub lake_version: Option<u64>,
    /// `table` for people, `json` for scripts (every u64 and u128 a decimal string), `csv` for
    /// spreadsheets.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The lake (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// `table` for people, `json` for scripts (every u64 and u128 a decimal string).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Incremental: walk the chained log only after the heads of this earlier `verify --format
    /// json` report of the whole lake (kept outside the lake). Proves less than a full verify:
    /// see docs/AUDIT-COMMANDS.md.
    #[arg(long, value_name = "REPORT.json")]
    pub since: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The lake (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// The cluster's replica addresses (as for `tigerbeetle --addresses`).
    #[arg(long, env = "LEDGERLAKE_ADDRESSES")]
    pub addresses: String,
    /// The cluster id (decimal); must be the lake's.
    #[arg(long, value_parser = parse_u128)]
    pub cluster_id: u128,
    /// How long to wait for the lake to catch up with accounts that moved since its last event.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub wait: Duration,
    /// Timeout of each request to the cluster.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// `table` for people, `json` for scripts (every u64 and u128 a decimal string), `csv`
    /// for the differences alone.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

impl From<BalancesArgs> for BalancesOptions {
    fn from(args: BalancesArgs) -> BalancesOptions {
        BalancesOptions {
            lake: args.lake,
            at: args.at,
            selection: Selection {
                accounts: args.accounts.into_iter().collect::<BTreeSet<_>>(),
                ledgers: args.ledgers.into_iter().collect(),
            },
            lake_version: args.lake_version,
        }
    }
}

impl From<VerifyArgs> for VerifyOptions {
    fn from(args: VerifyArgs) -> VerifyOptions {
        VerifyOptions {
            lake: args.lake,
            since: args.since,
        }
    }
}

impl From<ReconcileArgs> for ReconcileOptions {
    fn from(args: ReconcileArgs) -> ReconcileOptions {
        ReconcileOptions {
            lake: args.lake,
            addresses: args.addresses,
            cluster_id: args.cluster_id,
            wait: args.wait,
            request_timeout: args.request_timeout,
        }
    }
}

pub async fn balances(args: BalancesArgs) -> Result<Outcome, CliError> {
    let format = args.format;
    require_existing_lake(&args.lake)?;
    let reporter = Reporter::new();
    let report = balances::run(&BalancesOptions::from(args), &reporter).await;
    reporter.finish();
    let report = report?;
    let bytes = match format {
        OutputFormat::Json => output::json(&report)?,
        OutputFormat::Csv => balances_csv(&report)?,
        OutputFormat::Table => balances_table(&report).into_bytes(),
    };
    output::write_stdout(&bytes)?;
    if !report.without_events.is_empty() {
        output::note(&format!(
            "note: {} requested account(s) have no event at or before {}: {:?}",
            report.without_events.len(),
            report.at_time,
            report.without_events
        ));
    }
    Ok(Outcome::Done)
}

pub async fn verify(args: VerifyArgs) -> Result<Outcome, CliError> {
    let format = args.format;
    require_existing_lake(&args.lake)?;
    let reporter = Reporter::new();
    let report = verify::run(&VerifyOptions::from(args), &reporter).await;
    reporter.finish();
    let report = report?;
    let bytes = match format {
        ReportFormat::Json => output::json(&report)?,
        ReportFormat::Table => verify_table(&report).into_bytes(),
    };
    output::write_stdout(&bytes)?;
    if report.ok {
        return Ok(Outcome::Done);
    }
    output::note(&format!(
        "the lake failed verification: {} problem(s), listed in the report",
        report.problems_total
    ));
    Ok(Outcome::ProblemsFound)
}

pub async fn reconcile(args: ReconcileArgs) -> Result<Outcome, CliError> {
    let format = args.format;
    require_existing_lake(&args.lake)?;
    let reporter = Reporter::new();
    let report = reconcile::run(&ReconcileOptions::from(args), &reporter).await;
    reporter.finish();
    let report = report?;
    let bytes = match format {
        OutputFormat::Json => output::json(&report)?,
        OutputFormat::Csv => differences_csv(&report.differences)?,
        OutputFormat::Table => reconcile_table(&report).into_bytes(),
    };
    output::write_stdout(&bytes)?;
    if report.ok {
        return Ok(Outcome::Done);
    }
    output::note(&format!(
        "the lake and the cluster differ: {} difference(s), listed in the report",
        report.differences.len()
    ));
    Ok(Outcome::ProblemsFound)
}

const BALANCE_COLUMNS: [&str; 9] = [
    "account",
    "ledger",
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
    "flags",
    "as_of_timestamp",
    "as_of_time",
];

fn balance_rows(report: &BalancesReport) -> impl Iterator<Item = Vec<String>> + '_ {
    report.accounts.iter().map(|a| {
        let b = &a.balances;
        vec![
            a.account.to_string(),
            a.ledger.to_string(),
            b.debits_pending.to_string(),
            b.debits_posted.to_string(),
            b.credits_pending.to_string(),
            b.credits_posted.to_string(),
            a.flags.to_string(),
            a.as_of_timestamp.to_string(),
            a.as_of_time.clone(),
        ]
    })
}

pub fn balances_csv(report: &BalancesReport) -> Result<Vec<u8>, output::OutputError> {
    output::csv(&BALANCE_COLUMNS, balance_rows(report))
}

pub fn balances_table(report: &BalancesReport) -> String {
    let mut out = format!(
        "balances as of {} ({}), lake {} (last event {})\n",
        report.at_time,
        report.at,
        report.lake,
        rfc3339(report.lake_last_timestamp)
    );
    let columns = [
        number("account"),
        number("ledger"),
        number("debits_pending"),
        number("debits_posted"),
        number("credits_pending"),
        number("credits_posted"),
        number("flags"),
        text("as of"),
    ];
    // The table shows the time of the event, not its timestamp (the CSV and JSON have both).
    let rows = balance_rows(report).map(|mut row| {
        row.remove(7);
        row
    });
    out.push_str(&output::table(&columns, rows));
    out.push_str(&format!("{} accounts\n", report.accounts.len()));
    out
}

pub fn verify_table(report: &VerifyReport) -> String {
    let range = match (report.first_timestamp, report.last_timestamp) {
        (Some(f), Some(l)) => format!("{} .. {}", rfc3339(f), rfc3339(l)),
        _ => "empty".to_string(),
    };
    let mut out = format!(
        "lake {}  cluster {}  format {}\n",
        report.lake,
        report.cluster_id.as_deref().unwrap_or("-"),
        report
            .format_version
            .map_or("-".to_string(), |v| v.to_string())
    );
    out.push_str(&format!(
        "{} segments, {} events, {} accounts with events, {} swept accounts, {} ledgers, {} open pending transfers; {range}\n",
        report.segments,
        report.events,
        report.accounts,
        report.swept_accounts,
        report.ledgers,
        report.open_pending_transfers
    ));
    out.push_str(&format!(
        "read in {:.1} s ({:.0} events/s)\n",
        report.elapsed_ms as f64 / 1000.0,
        report.events_per_second
    ));
    out.push_str(&chain_heads(report));
    if let Some(since) = &report.since {
        let heads: Vec<String> = since
            .heads
            .iter()
            .map(|h| format!("{} version {}", h.table, h.version))
            .collect();
        out.push_str(&format!(
            "incremental: the chained log from the heads of {} ({})
  proves: {}
  a full verify also proves: {}
",
            since.report,
            heads.join(", "),
            since.proves,
            since.not_proven
        ));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if !report.double_entry_checked {
        out.push_str("double entry: not checked after the first unreadable segment\n");
    }
    if report.ok {
        let chain = if report.chain_checked {
            "the chained log (every commit and data file digest), "
        } else {
            ""
        };
        out.push_str(&format!(
            "OK: {chain}structure, completeness (every account's balance chain) and double entry verified\n",
        ));
        return out;
    }
    out.push_str(&format!("FAILED: {} problem(s)\n", report.problems_total));
    for p in &report.problems {
        out.push_str(&format!("  {p}\n"));
    }
    let listed = report.problems.len() as u64;
    if report.problems_total > listed {
        out.push_str(&format!(
            "  ... and {} more\n",
            report.problems_total - listed
        ));
    }
    out
}

/// Each table's chain head, with what it is for.
fn chain_heads(report: &VerifyReport) -> String {
    if !report.chain_checked {
        return "chained log: none (a format-1 lake has no log)\n".to_string();
    }
    let mut out = String::from(
        "chained log heads (record these to prove later that nothing before them changed):\n",
    );
    for head in &report.chain {
        let at = match (head.head_version, &head.head_sha256) {
            (Some(v), Some(sha)) => format!("version {v}  sha256 {sha}"),
            (Some(v), None) => format!("version {v}  (unreadable)"),
            _ => "no commits".to_string(),
        };
        out.push_str(&format!(
            "  {:<15} {at}  ({} commits, {} active files)\n",
            head.table, head.versions, head.active_files
        ));
    }
    out
}

const DIFFERENCE_COLUMNS: [&str; 5] = ["account", "kind", "field", "lake", "cluster"];

fn difference_rows(differences: &[Difference]) -> impl Iterator<Item = Vec<String>> + '_ {
    differences.iter().map(|d| {
        let kind = serde_json::to_value(d.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        vec![
            d.account.to_string(),
            kind,
            d.field.to_string(),
            d.lake.clone().unwrap_or_else(|| "-".to_string()),
            d.cluster.clone().unwrap_or_else(|| "-".to_string()),
        ]
    })
}

pub fn differences_csv(differences: &[Difference]) -> Result<Vec<u8>, output::OutputError> {
    output::csv(&DIFFERENCE_COLUMNS, difference_rows(differences))
}

pub fn reconcile_table(report: &ReconcileReport) -> String {
    let mut out = format!(
        "lake {} vs cluster {} as of {} ({})\n",
        report.lake, report.cluster_id, report.lake_last_time, report.lake_last_timestamp
    );
    out.push_str(&format!(
        "{} accounts in the lake, {} in the cluster ({} history accounts compared as of T, {} others by current balances, {} without events by T); waited {:.1} s\n",
        report.accounts_in_lake,
        report.accounts_in_cluster,
        report.history_accounts_compared,
        report.other_accounts_compared,
        report.accounts_without_events,
        report.waited_ms as f64 / 1000.0
    ));
    if report.ok {
        out.push_str("OK: no differences\n");
        return out;
    }
    out.push_str(&format!("{} difference(s):\n", report.differences.len()));
    let columns = [
        number("account"),
        text("kind"),
        text("field"),
        number("lake"),
        number("cluster"),
    ];
    out.push_str(&output::table(
        &columns,
        difference_rows(&report.differences),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::balances::AccountBalance;
    use crate::audit::effect::Balances;
    use crate::audit::reconcile::DifferenceKind;
    use clap::Parser;

    fn report() -> BalancesReport {
        BalancesReport {
            lake: "/l".into(),
            at: 10,
            at_time: rfc3339(10),
            lake_last_timestamp: 20,
            segments_read: 1,
            accounts: vec![AccountBalance {
                account: u128::MAX,
                ledger: 1,
                balances: Balances {
                    debits_pending: 0,
                    debits_posted: u128::MAX,
                    credits_pending: 0,
                    credits_posted: 5,
                },
                flags: 0,
                as_of_timestamp: 9,
                as_of_time: rfc3339(9),
            }],
            without_events: vec![3],
        }
    }

    #[test]
    fn balances_csv_has_a_header_and_exact_u128s() {
        let csv = String::from_utf8(balances_csv(&report()).unwrap()).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], BALANCE_COLUMNS.join(","));
        assert_eq!(
            lines[1],
            format!(
                "{max},1,0,{max},0,5,0,9,1970-01-01T00:00:00.000000009Z",
                max = u128::MAX
            )
        );
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn balances_json_has_every_u128_and_u64_as_a_string() {
        let json: serde_json::Value =
            serde_json::from_slice(&output::json(&report()).unwrap()).unwrap();
        assert_eq!(json["at"], "10");
        assert_eq!(json["lake_last_timestamp"], "20");
        assert_eq!(json["accounts"][0]["account"], u128::MAX.to_string());
        assert_eq!(json["accounts"][0]["debits_posted"], u128::MAX.to_string());
        assert_eq!(json["accounts"][0]["as_of_timestamp"], "9");
        assert_eq!(json["without_events"][0], "3");
    }

    #[test]
    fn the_balances_table_shows_each_account() {
        let table = balances_table(&report());
        assert!(table.contains(&u128::MAX.to_string()), "{table}");
        assert!(table.ends_with("1 accounts\n"), "{table}");
    }

    #[test]
    fn differences_render_as_csv_and_table() {
        let differences = vec![Difference {
            account: 7,
            kind: DifferenceKind::MovedSince,
            field: "debits_posted",
            lake: Some("1".into()),
            cluster: None,
        }];
        let csv = String::from_utf8(differences_csv(&differences).unwrap()).unwrap();
        assert_eq!(
            csv,
            "account,kind,field,lake,cluster\n7,moved_since,debits_posted,1,-\n"
        );
    }

    #[tokio::test]
    async fn the_verify_table_prints_each_chain_head() {
        use crate::audit::progress::NoProgress;
        use object_store::memory::InMemory;
        use object_store::path::Path;
        use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
        use std::sync::Arc;

        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let commit = b"{\"commitInfo\":{}}\n".to_vec();
        store
            .put(
                &Path::from("accounts/_delta_log/00000000000000000000.json"),
                PutPayload::from(commit.clone()),
            )
            .await
            .unwrap();
        let lake = crate::lake::Lake::from_store(store, "memory");
        let report = crate::audit::verify::verify(&lake, &NoProgress).await;
        let table = verify_table(&report);
        let sha = crate::lake::chain::sha256_hex(&commit);
        assert!(
            table.contains("record these to prove later that nothing before them changed"),
            "{table}"
        );
        assert!(
            table.contains(&format!("accounts        version 0  sha256 {sha}")),
            "{table}"
        );
        assert!(table.contains("transfers       no commits"), "{table}");
        assert!(
            table.contains("chained log (not_chained): accounts version 0"),
            "{table}"
        );
    }

    #[test]
    fn balances_accepts_latest() {
        let cli = crate::cli::Cli::try_parse_from([
            "ledgerlake",
            "balances",
            "--lake",
            "/l",
            "--at",
            "latest",
            "--account",
            "5",
        ])
        .unwrap();
        let crate::cli::Command::Balances(args) = cli.command else {
            panic!("balances")
        };
        let options = BalancesOptions::from(args);
        assert_eq!(options.at, Moment::Latest);
        assert_eq!(options.selection.accounts, BTreeSet::from([5]));
    }
}
