//! `ledgerlake rebuild`: its arguments, their validation into the rebuild's options, the
//! progress bar while it replays, and the report as a table or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;

use super::exit::Outcome;
use super::output::{self, ReportFormat};
use super::progress::{Reporter, Step};
use super::time::{parse_duration, parse_moment, parse_u128};
use super::{require_existing_lake, CliError};
use crate::rebuild::plan::{self, Until};
use crate::rebuild::report::{Report, LIST_MAX};
use crate::rebuild::{RebuildError, RebuildOptions};
use crate::timefmt::{rfc3339, Moment};

/// Open pending transfers the table report lists; JSON lists up to `LIST_MAX`.
const TABLE_OPEN_PENDING_MAX: usize = 20;

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The lake to rebuild from (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// The target cluster's addresses (as given to `tigerbeetle start`). Not used by --dry-run.
    #[arg(long, required_unless_present = "dry_run")]
    pub addresses: Option<String>,
    /// The target cluster's id (decimal). It must be the lake's cluster id, unless
    /// --lake-cluster-id confirms a rebuild under another id.
    #[arg(long, value_parser = parse_u128)]
    pub cluster_id: u128,
    /// The lake's cluster id, to confirm rebuilding it into a cluster with a different id (a
    /// recovery drill next to the live cluster, for example).
    #[arg(long, value_parser = parse_u128)]
    pub lake_cluster_id: Option<u128>,
    /// Replay every event with a timestamp at or before this: a TigerBeetle timestamp (ns since
    /// the epoch), an RFC 3339 instant (any offset), or `latest` (the lake's last event).
    #[arg(long, value_parser = parse_moment)]
    pub until: Moment,
    /// Print the plan and stop: no connection to the target, nothing written.
    #[arg(long)]
    pub dry_run: bool,
    /// Rebuild only this ledger (repeat for several). A transfer and its accounts share a ledger,
    /// so the subset is consistent.
    #[arg(long = "ledger")]
    pub ledgers: Vec<u32>,
    /// `table` for people, `json` for scripts (every u64 and u128 a decimal string).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// The most events per request (TigerBeetle's maximum is 8189, with a 1 MiB request limit).
    /// A target with a smaller --limit-request (32 KiB under --development) is found out: the
    /// requests shrink to its limit, and the report says which size was used.
    #[arg(long, default_value_t = plan::BATCH_EVENTS_MAX)]
    pub batch_events_max: usize,
    /// Give up when the target sends no reply for this long (the TigerBeetle client retries
    /// forever, and a wrong cluster id is never answered).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub reply_timeout: Duration,
}

impl TryFrom<RebuildArgs> for RebuildOptions {
    type Error = RebuildError;

    fn try_from(args: RebuildArgs) -> Result<Self, Self::Error> {
        if args.cluster_id == u128::MAX {
            return Err(RebuildError::Option {
                name: "cluster-id",
                reason: "2^128-1 is reserved by TigerBeetle".into(),
            });
        }
        if let Some(&ledger) = args.ledgers.iter().find(|&&l| l == 0) {
            return Err(RebuildError::Option {
                name: "ledger",
                reason: format!("{ledger} is not a ledger TigerBeetle accepts"),
            });
        }
        if !(1..=plan::BATCH_EVENTS_MAX).contains(&args.batch_events_max) {
            return Err(RebuildError::Option {
                name: "batch-events-max",
                reason: format!("must be between 1 and {}", plan::BATCH_EVENTS_MAX),
            });
        }
        if args.reply_timeout.is_zero() {
            return Err(RebuildError::Option {
                name: "reply-timeout",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(RebuildOptions {
            lake: args.lake,
            addresses: args.addresses,
            cluster_id: args.cluster_id,
            lake_cluster_id: args.lake_cluster_id,
            until: match args.until {
                Moment::Latest => Until::Latest,
                Moment::At(t) => Until::At(t),
            },
            ledgers: (!args.ledgers.is_empty()).then(|| args.ledgers.into_iter().collect()),
            dry_run: args.dry_run,
            batch_events_max: args.batch_events_max,
            reply_timeout: args.reply_timeout,
        })
    }
}

/// Runs the rebuild with a progress bar on a terminal, then prints the report.
pub async fn run(args: RebuildArgs) -> Result<Outcome, CliError> {
    let format = args.format;
    require_existing_lake(&args.lake)?;
    let options = RebuildOptions::try_from(args)?;
    let reporter = Reporter::new();
    let result = crate::rebuild::rebuild(&options, Vec::new(), &mut |p| {
        reporter.show(step("rebuild", p))
    })
    .await;
    reporter.finish();
    let report = result?;
    let bytes = match format {
        ReportFormat::Json => output::json(&report)?,
        ReportFormat::Table => render_table(&report).into_bytes(),
    };
    output::write_stdout(&bytes)?;
    Ok(Outcome::Done)
}

/// A replay's progress as a step: the lake's bytes read (what the ETA follows: the replay reads
/// the lake once, and its size is known before), the objects in the target as the rate.
pub fn step(label: &str, p: crate::rebuild::execute::Progress) -> Step {
    Step {
        label: label.to_string(),
        done: p.bytes_read,
        total: p.bytes_total,
        unit: "bytes of the lake read",
        events: p.done,
    }
}

fn time_or_dash(ts: Option<u64>) -> String {
    ts.map_or("-".to_string(), |t| format!("{t} ({})", rfc3339(t)))
}

/// The report for people: the plan, the deviations from the source, then what the run did.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let p = &report.plan;
    let d = &p.deviations;
    let _ = writeln!(
        out,
        "rebuild of lake {} (cluster {}) into cluster {}",
        p.lake, p.lake_cluster_id, p.target_cluster_id
    );
    let _ = writeln!(
        out,
        "lake range:  {} .. {}",
        time_or_dash(Some(p.lake_first_timestamp)),
        time_or_dash(Some(p.lake_last_timestamp))
    );
    let _ = writeln!(out, "until:       {} ({})", p.until, p.until_time);
    if let Some(ledgers) = &p.ledgers {
        let _ = writeln!(out, "ledgers:     {ledgers:?}");
    }
    let _ = writeln!(
        out,
        "segments:    {} of {} to read",
        p.segments_to_read, p.segments_in_lake
    );
    let _ = writeln!(
        out,
        "replays:     {} accounts, {} transfers ({} account requests, {} transfer requests)",
        p.accounts, p.transfers, p.account_batches, p.transfer_batches
    );
    let e = &p.events;
    let _ = writeln!(
        out,
        "events:      {} single_phase, {} two_phase_pending, {} two_phase_posted, {} two_phase_voided, {} two_phase_expired",
        e.single_phase, e.two_phase_pending, e.two_phase_posted, e.two_phase_voided, e.two_phase_expired
    );
    let _ = writeln!(out, "first:       {}", time_or_dash(p.first_timestamp));
    let _ = writeln!(out, "last:        {}", time_or_dash(p.last_timestamp));
    let _ = writeln!(out, "deviations from the source:");
    let _ = writeln!(out, "  every account and transfer has flags.imported");
    let _ = writeln!(
        out,
        "  {} accounts created without `closed` (the replay closes them), {} without `linked`",
        d.accounts_closed_flag_dropped, d.accounts_linked_flag_dropped
    );
    let _ = writeln!(
        out,
        "  {} pending transfers with their timeout set to 0",
        d.timeouts_zeroed_total
    );
    let _ = writeln!(
        out,
        "  {} voids added for expiries, id = {}",
        d.expiry_voids_total, d.expiry_void_id
    );
    for c in &d.chain_cuts {
        let _ = writeln!(
            out,
            "  transfer {} at {} replayed without `linked` ({})",
            c.transfer_id, c.timestamp, c.reason
        );
    }
    let _ = writeln!(out, "pending at --until: {}", p.open_pending_total);
    for o in p.open_pending.iter().take(TABLE_OPEN_PENDING_MAX) {
        let expiry = o.expires_time.as_deref().map_or(String::new(), |t| {
            format!(
                ", timeout {} s dropped, the source expires it at {t}",
                o.timeout_s
            )
        });
        let _ = writeln!(
            out,
            "  {} (ledger {}, amount {}, at {}{expiry})",
            o.transfer_id, o.ledger, o.amount, o.timestamp
        );
    }
    let listed = p.open_pending.len().min(TABLE_OPEN_PENDING_MAX);
    if p.open_pending_total > listed {
        let _ = writeln!(
            out,
            "  ... ({} more; --format json lists up to {LIST_MAX})",
            p.open_pending_total - listed
        );
    }
    match &report.run {
        None => {
            let _ = writeln!(out, "dry run: nothing written");
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "target:      {} ({} accounts and {} transfers already present)",
                r.target, r.accounts_already_present, r.transfers_already_present
            );
            let limit = match r.batch_events_limit_learned {
                Some(_) => format!(
                    "the target's limit, learned after {} requests refused as too large",
                    r.requests_refused_too_large
                ),
                None if r.requests_refused_too_large > 0 => format!(
                    "{} requests refused as too large",
                    r.requests_refused_too_large
                ),
                None => "--batch-events-max".to_string(),
            };
            let _ = writeln!(
                out,
                "requests:    {} events each at most ({limit})",
                r.batch_events_used
            );
            let _ = writeln!(
                out,
                "created:     {} accounts, {} transfers in {:.2} s ({:.0} events/s; plan {:.2} s, target inspection {:.2} s)",
                r.accounts_created,
                r.transfers_created,
                r.replay_s,
                r.events_per_second,
                r.plan_s,
                r.inspect_s
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn options(extra: &[&str]) -> Result<RebuildOptions, Box<RebuildError>> {
        let mut argv = vec!["ledgerlake", "rebuild", "--lake", "/l", "--dry-run"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Rebuild(args) => RebuildOptions::try_from(args).map_err(Box::new),
            other => panic!("expected rebuild, got {other:?}"),
        }
    }

    fn report(ts: u64) -> Report {
        use crate::cdc::EventCounts;
        use crate::rebuild::report::*;
        Report {
            plan: PlanReport {
                lake: "/l".into(),
                lake_cluster_id: "1".into(),
                target_cluster_id: "1".into(),
                lake_first_timestamp: ts,
                lake_last_timestamp: ts,
                until: ts,
                until_time: rfc3339(ts),
                ledgers: None,
                segments_in_lake: 1,
                segments_to_read: 1,
                accounts: 2,
                events: EventCounts {
                    single_phase: 1,
                    ..EventCounts::default()
                },
                transfers: 1,
                first_timestamp: Some(ts),
                last_timestamp: Some(ts),
                account_batches: 1,
                transfer_batches: 1,
                deviations: Deviations {
                    imported_flag: true,
                    accounts_closed_flag_dropped: 0,
                    accounts_linked_flag_dropped: 0,
                    timeouts_zeroed_total: 0,
                    timeouts_zeroed: Vec::new(),
                    expiry_voids_total: 0,
                    expiry_void_id: "x".into(),
                    expiry_voids: Vec::new(),
                    chain_cuts: Vec::new(),
                },
                open_pending_total: 0,
                open_pending: Vec::new(),
            },
            run: None,
        }
    }

    #[test]
    fn the_json_report_has_timestamps_above_2_pow_53_as_exact_strings() {
        let ts = (1u64 << 53) + 1;
        let json: serde_json::Value =
            serde_json::from_slice(&output::json(&report(ts)).unwrap()).unwrap();
        assert_eq!(json["plan"]["until"], ts.to_string());
        assert_eq!(json["plan"]["lake_first_timestamp"], ts.to_string());
        assert_eq!(json["plan"]["first_timestamp"], ts.to_string());
        assert_eq!(json["plan"]["events"]["single_phase"], "1");
        assert_eq!(json["run"], serde_json::Value::Null);
        let table = render_table(&report(ts));
        assert!(
            table.contains(&format!("until:       {ts} ({})", rfc3339(ts))),
            "{table}"
        );
        assert!(table.contains("dry run: nothing written"), "{table}");
    }

    #[test]
    fn until_is_a_moment_like_every_other() {
        let latest = options(&["--cluster-id", "1", "--until", "latest"]).unwrap();
        assert_eq!(latest.until, Until::Latest);
        let at = options(&["--cluster-id", "1", "--until", "1970-01-01T00:00:01+00:00"]).unwrap();
        assert_eq!(at.until, Until::At(1_000_000_000));
        assert_eq!(at.batch_events_max, plan::BATCH_EVENTS_MAX);
        assert_eq!(at.reply_timeout, Duration::from_secs(60));
    }

    #[test]
    fn options_tigerbeetle_refuses_are_refused_first() {
        let refused = |extra: &[&str]| match options(extra).map_err(|e| *e) {
            Err(RebuildError::Option { name, .. }) => name,
            other => panic!("{extra:?} accepted: {other:?}"),
        };
        let max = u128::MAX.to_string();
        assert_eq!(
            refused(&["--cluster-id", &max, "--until", "latest"]),
            "cluster-id"
        );
        assert_eq!(
            refused(&["--cluster-id", "1", "--until", "latest", "--ledger", "0"]),
            "ledger"
        );
        assert_eq!(
            refused(&[
                "--cluster-id",
                "1",
                "--until",
                "latest",
                "--batch-events-max",
                "8190"
            ]),
            "batch-events-max"
        );
        assert_eq!(
            refused(&[
                "--cluster-id",
                "1",
                "--until",
                "latest",
                "--reply-timeout",
                "0s"
            ]),
            "reply-timeout"
        );
    }
}
