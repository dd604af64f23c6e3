//! `ledgerlake drill`: its arguments, their validation into the drill's options, the progress
//! bar while it rebuilds, and the report as a table or JSON; exits 0 on pass, 1 on a mismatch.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::exit::Outcome;
use super::output::{self, ReportFormat};
use super::progress::Reporter;
use super::time::{parse_duration, parse_moment, parse_u128};
use super::{require_existing_lake, CliError};
use crate::drill::compare::TRANSFERS_COMPARED_MAX_DEFAULT;
use crate::drill::{DrillError, DrillOptions, DrillReport, DrillTarget};
use crate::rebuild::plan::{self, Until};
use crate::timefmt::Moment;

/// Differences the table lists; JSON lists up to `compare::DIFFERENCES_LISTED_MAX`.
const TABLE_DIFFERENCES_MAX: usize = 20;

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The lake to rebuild from (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// A fresh target cluster's addresses (as given to `tigerbeetle start`); without it the
    /// drill starts a throwaway replica from --tigerbeetle. Given both, --addresses is used.
    #[arg(long)]
    pub addresses: Option<String>,
    /// The target's cluster id (decimal); the lake's by default.
    #[arg(long, value_parser = parse_u128)]
    pub cluster_id: Option<u128>,
    /// The `tigerbeetle` binary to format and start a throwaway replica with (on a free loopback
    /// port, its data file in a temporary directory, removed after the drill).
    #[arg(long, env = "LEDGERLAKE_TIGERBEETLE")]
    pub tigerbeetle: Option<PathBuf>,
    /// Rebuild and compare as of this moment: a TigerBeetle timestamp, an RFC 3339 instant, or
    /// `latest` (the lake's last event).
    #[arg(long, value_parser = parse_moment, default_value = "latest")]
    pub until: Moment,
    /// Do not rebuild: compare what the target at --addresses holds with the lake (a target a
    /// drill or a rebuild filled earlier).
    #[arg(long)]
    pub compare_only: bool,
    /// Compare every field of up to this many transfers; above it, every field of a
    /// deterministic sample (every k-th transfer in timestamp order, k a power of two) and the
    /// presence of every transfer.
    #[arg(long, default_value_t = TRANSFERS_COMPARED_MAX_DEFAULT)]
    pub transfers_compared_max: u64,
    /// The most events per request (requests shrink to the target's limit if it is lower).
    #[arg(long, default_value_t = plan::BATCH_EVENTS_MAX)]
    pub batch_events_max: usize,
    /// Give up when the target sends no reply for this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub reply_timeout: Duration,
    /// `table` for people, `json` for schedulers (every u64 and u128 a decimal string).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

impl TryFrom<DrillArgs> for DrillOptions {
    type Error = DrillError;

    fn try_from(args: DrillArgs) -> Result<Self, Self::Error> {
        for (name, given) in [
            ("compare-only", args.compare_only),
            ("cluster-id", args.cluster_id.is_some()),
        ] {
            if given && args.addresses.is_none() {
                return Err(DrillError::Option {
                    name,
                    reason: "needs --addresses (the target to compare)".into(),
                });
            }
        }
        let target = match (args.addresses, args.tigerbeetle) {
            (Some(addresses), _) => DrillTarget::Addresses {
                addresses,
                cluster_id: args.cluster_id,
            },
            (None, Some(binary)) => DrillTarget::Throwaway { binary },
            (None, None) => {
                return Err(DrillError::Option {
                    name: "addresses",
                    reason: "give a fresh target's --addresses, or a `tigerbeetle` binary \
                             (--tigerbeetle or LEDGERLAKE_TIGERBEETLE) to start a throwaway one"
                        .into(),
                })
            }
        };
        if !(1..=plan::BATCH_EVENTS_MAX).contains(&args.batch_events_max) {
            return Err(DrillError::Option {
                name: "batch-events-max",
                reason: format!("must be between 1 and {}", plan::BATCH_EVENTS_MAX),
            });
        }
        if args.transfers_compared_max == 0 {
            return Err(DrillError::Option {
                name: "transfers-compared-max",
                reason: "must be at least 1".into(),
            });
        }
        if args.reply_timeout.is_zero() {
            return Err(DrillError::Option {
                name: "reply-timeout",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(DrillOptions {
            lake: args.lake,
            target,
            until: match args.until {
                Moment::Latest => Until::Latest,
                Moment::At(t) => Until::At(t),
            },
            compare_only: args.compare_only,
            transfers_compared_max: args.transfers_compared_max,
            batch_events_max: args.batch_events_max,
            reply_timeout: args.reply_timeout,
        })
    }
}

/// Runs the drill with a progress bar on a terminal, then prints the report.
pub async fn run(args: DrillArgs) -> Result<Outcome, CliError> {
    let format = args.format;
    require_existing_lake(&args.lake)?;
    let options = DrillOptions::try_from(args)?;
    let reporter = Reporter::new();
    let result = crate::drill::drill(&options, &mut |p| {
        reporter.show(super::rebuild::step("drill: rebuild", p))
    })
    .await;
    reporter.finish();
    let report = result?;
    let bytes = match format {
        ReportFormat::Json => output::json(&report)?,
        ReportFormat::Table => render_table(&report).into_bytes(),
    };
    output::write_stdout(&bytes)?;
    Ok(if report.passed {
        Outcome::Done
    } else {
        Outcome::ProblemsFound
    })
}

fn seconds(s: Option<f64>) -> String {
    s.map_or("-".to_string(), |s| format!("{s:.2} s"))
}

/// The report for people.
pub fn render_table(r: &DrillReport) -> String {
    let mut out = String::new();
    let c = &r.comparison;
    let _ = writeln!(
        out,
        "drill of lake {} (cluster {}) into {} (cluster {}{})",
        r.lake,
        r.lake_cluster_id,
        r.target.addresses,
        r.target.cluster_id,
        if r.target.throwaway {
            ", throwaway"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "as of:       {} ({})", r.until, r.until_time);
    let _ = writeln!(
        out,
        "result:      {}",
        if r.passed { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(
        out,
        "RTO:         {} (replica start {}, rebuild {}); compare {:.2} s",
        seconds(r.rto_s),
        seconds(r.replica_start_s),
        seconds(r.rebuild_s),
        r.compare_s
    );
    if let Some(run) = r.rebuild.as_ref().and_then(|b| b.run.as_ref()) {
        let _ = writeln!(
            out,
            "rebuilt:     {} accounts, {} transfers ({:.0} events/s, {} events per request)",
            run.accounts_created,
            run.transfers_created,
            run.events_per_second,
            run.batch_events_used
        );
    }
    let _ = writeln!(
        out,
        "accounts:    {} compared ({} in the lake, {} in the target)",
        c.accounts_compared, c.accounts_in_lake, c.accounts_in_target
    );
    let _ = writeln!(
        out,
        "transfers:   {} in the lake, {} in the target; every field of {} compared (every {})",
        c.transfers_in_lake,
        c.transfers_in_target,
        c.transfers_fields_compared,
        c.transfers_sample_every
    );
    let _ = writeln!(out, "differences: {}", c.differences_total);
    for d in c.differences.iter().take(TABLE_DIFFERENCES_MAX) {
        let id = d.id.map_or("?".to_string(), |i| i.to_string());
        let at = d.timestamp.map_or(String::new(), |t| format!(" at {t}"));
        let _ = writeln!(
            out,
            "  {} {id}{at}: {} lake {} target {}",
            d.object,
            d.field,
            d.lake.as_deref().unwrap_or("-"),
            d.target.as_deref().unwrap_or("-")
        );
    }
    if c.differences_total > TABLE_DIFFERENCES_MAX as u64 {
        let _ = writeln!(
            out,
            "  ... ({} more; --format json lists up to {})",
            c.differences_total - TABLE_DIFFERENCES_MAX as u64,
            crate::drill::compare::DIFFERENCES_LISTED_MAX
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn options(extra: &[&str]) -> Result<DrillOptions, Box<DrillError>> {
        let mut argv = vec!["ledgerlake", "drill", "--lake", "/l"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Drill(args) => DrillOptions::try_from(args).map_err(Box::new),
            other => panic!("expected drill, got {other:?}"),
        }
    }

    #[test]
    fn a_drill_needs_a_target_or_a_binary_and_defaults_to_latest() {
        let o = options(&["--addresses", "3000"]).unwrap();
        assert!(matches!(
            o.target,
            DrillTarget::Addresses {
                cluster_id: None,
                ..
            }
        ));
        assert_eq!(o.until, Until::Latest);
        assert_eq!(o.transfers_compared_max, TRANSFERS_COMPARED_MAX_DEFAULT);
        let o = options(&["--tigerbeetle", "/bin/tb", "--until", "5"]).unwrap();
        assert!(matches!(o.target, DrillTarget::Throwaway { .. }));
        assert_eq!(o.until, Until::At(5));
        if std::env::var_os("LEDGERLAKE_TIGERBEETLE").is_none() {
            assert!(matches!(
                options(&[]).map_err(|e| *e),
                Err(DrillError::Option {
                    name: "addresses",
                    ..
                })
            ));
        }
        assert!(matches!(
            options(&["--addresses", "3000", "--transfers-compared-max", "0"]).map_err(|e| *e),
            Err(DrillError::Option {
                name: "transfers-compared-max",
                ..
            })
        ));
    }

    #[test]
    fn compare_only_and_a_cluster_id_need_addresses() {
        for (extra, flag) in [
            (&["--compare-only"][..], "compare-only"),
            (&["--cluster-id", "5"][..], "cluster-id"),
        ] {
            let mut argv = vec!["--tigerbeetle", "/x"];
            argv.extend_from_slice(extra);
            assert!(
                matches!(options(&argv).map_err(|e| *e), Err(DrillError::Option { name, .. }) if name == flag),
                "{extra:?}"
            );
        }
        // Addresses win over a binary (LEDGERLAKE_TIGERBEETLE may be set for other commands).
        let o = options(&[
            "--addresses",
            "3000",
            "--tigerbeetle",
            "/x",
            "--compare-only",
        ])
        .unwrap();
        assert!(matches!(o.target, DrillTarget::Addresses { .. }) && o.compare_only);
    }
}
