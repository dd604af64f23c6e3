//! `ledgerlake upgrade`: its arguments, its progress on stderr, and the report as text or JSON.

use clap::Args;

use super::exit::Outcome;
use super::output::{self, ReportFormat};
use super::progress::{Reporter, Step};
use super::{require_existing_lake, CliError};
use crate::upgrade::{UpgradeOptions, UpgradeOutcome, UpgradeProgress, UpgradeReport};

#[derive(Debug, Args)]
#[command(
    long_about = "Turn a format-1 lake (plain Parquet files, schemas/lake-format-1.md) \
into format 2 (Delta Lake tables, schemas/lake.md) in place, losing nothing.\n\n\
Every event and account of the format-1 lake is replayed, in timestamp order, through the same \
commit path the exporter uses; consecutive segments of one UTC date become one file of up to a \
million events. Once everything is in the Delta logs, _ledgerlake.json is replaced by the \
format-2 one and the format-1 files are deleted (orphan accounts files included).\n\n\
Safe to interrupt and to rerun: a rerun skips what is committed and goes on; on a format-2 lake \
it deletes format-1 files an interrupted run left, or says the lake is already format 2. Stop \
the exporter first (it refuses a format-1 lake anyway), and run one upgrade at a time. \
See docs/UPGRADE.md."
)]
pub struct UpgradeArgs {
    /// The lake (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// Stop after this many commits (an upgrade in steps: run it again to go on).
    #[arg(long)]
    pub commits_max: Option<u64>,
    /// `table` for people, `json` for scripts (every u64 a decimal string).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

impl From<&UpgradeArgs> for UpgradeOptions {
    fn from(args: &UpgradeArgs) -> UpgradeOptions {
        UpgradeOptions {
            lake: args.lake.clone(),
            commits_max: args.commits_max,
        }
    }
}

impl UpgradeProgress for Reporter {
    fn segments_replayed(&self, segments_done: usize, segments_total: usize, events_done: u64) {
        self.show(Step {
            label: "upgrade".to_string(),
            done: segments_done as u64,
            total: segments_total as u64,
            unit: "format-1 segments",
            events: events_done,
        });
    }

    fn finished(&self) {
        self.finish();
    }
}

pub async fn run(args: UpgradeArgs) -> Result<Outcome, CliError> {
    require_existing_lake(&args.lake)?;
    let reporter = Reporter::new();
    let report = crate::upgrade::run(&UpgradeOptions::from(&args), &reporter).await?;
    let bytes = match args.format {
        ReportFormat::Json => output::json(&report)?,
        ReportFormat::Table => render_table(&report).into_bytes(),
    };
    output::write_stdout(&bytes)?;
    Ok(Outcome::Done)
}

pub fn render_table(r: &UpgradeReport) -> String {
    let mut out = format!("lake {}  cluster {}\n", r.lake, r.cluster_id);
    let replayed = format!(
        "replayed: {} events, {} accounts, {} swept accounts from {} format-1 segments and {} \
         swept files\ncommits: {} written ({} bytes), {} already written by an earlier run\n",
        r.events,
        r.accounts,
        r.swept_accounts,
        r.format1_segments,
        r.format1_swept_files,
        r.commits,
        r.bytes_written,
        r.already_committed
    );
    let deleted = format!(
        "deleted: {} format-1 files ({} orphan accounts files)\n",
        r.format1_files_deleted, r.format1_orphans
    );
    match r.outcome {
        UpgradeOutcome::Upgraded => {
            out.push_str(&format!(
                "upgraded: format {} -> format {} in {} ms\n",
                r.format_before, r.format_after, r.elapsed_ms
            ));
            out.push_str(&replayed);
            out.push_str(&deleted);
        }
        UpgradeOutcome::Stopped => {
            out.push_str(&format!(
                "stopped after {} commits (--commits-max): the lake is still format {}; run \
                 `ledgerlake upgrade` again to go on\n",
                r.commits, r.format_after
            ));
            out.push_str(&replayed);
        }
        UpgradeOutcome::LeftoversRemoved => {
            out.push_str(&format!(
                "already format {}: deleted the {} format-1 files an interrupted upgrade left\n",
                r.format_after, r.format1_files_deleted
            ));
        }
        UpgradeOutcome::AlreadyCurrent => {
            out.push_str(&format!(
                "already format {}: nothing to do\n",
                r.format_after
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: UpgradeOutcome) -> UpgradeReport {
        UpgradeReport {
            lake: "/l".into(),
            cluster_id: u128::MAX.to_string(),
            outcome,
            format_before: 1,
            format_after: 2,
            format1_segments: 3,
            format1_swept_files: 1,
            format1_orphans: 1,
            events: u64::MAX,
            accounts: 4,
            swept_accounts: 2,
            commits: 3,
            already_committed: 1,
            bytes_written: 1000,
            format1_files_deleted: 7,
            elapsed_ms: 5,
        }
    }

    #[test]
    fn the_table_says_what_happened() {
        let table = render_table(&report(UpgradeOutcome::Upgraded));
        assert!(table.contains("upgraded: format 1 -> format 2"), "{table}");
        assert!(
            table.contains("3 written (1000 bytes), 1 already"),
            "{table}"
        );
        assert!(
            table.contains("deleted: 7 format-1 files (1 orphan"),
            "{table}"
        );
        let table = render_table(&report(UpgradeOutcome::AlreadyCurrent));
        assert!(table.contains("already format 2: nothing to do"), "{table}");
        let table = render_table(&report(UpgradeOutcome::Stopped));
        assert!(table.contains("run `ledgerlake upgrade` again"), "{table}");
    }

    #[test]
    fn json_counts_are_exact_strings() {
        let json: serde_json::Value =
            serde_json::from_slice(&output::json(&report(UpgradeOutcome::Upgraded)).unwrap())
                .unwrap();
        assert_eq!(json["events"], u64::MAX.to_string());
        assert_eq!(json["outcome"], "upgraded");
        assert_eq!(json["cluster_id"], u128::MAX.to_string());
    }

    #[test]
    fn the_command_parses() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "ledgerlake",
            "upgrade",
            "--lake",
            "/l",
            "--commits-max",
            "3",
            "--format",
            "json",
        ])
        .unwrap();
        match cli.command {
            crate::cli::Command::Upgrade(args) => {
                assert_eq!(UpgradeOptions::from(&args).commits_max, Some(3));
            }
            other => panic!("{other:?}"),
        }
    }
}
