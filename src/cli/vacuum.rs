//! `ledgerlake vacuum`: deletes the data files removed from the lake's tables longer ago than
//! `--retain` (never by default, never an active file), or lists them with `--dry-run`.

use std::time::Duration;

use clap::Args;

use super::exit::Outcome;
use super::output::{self, ReportFormat};
use super::{parse_duration, require_existing_lake, CliError};
use crate::lake::{Lake, VacuumOptions, VacuumReport};

#[derive(Debug, Args)]
#[command(
    long_about = "Delete the data files that a compaction (or an orphan removal) removed from the \
lake's tables more than --retain ago, as the log's remove actions record, and the log \
checkpoints that a newer checkpoint superseded more than --retain ago (a checkpoint is derived \
from the commits; commits are never deleted). Active files and each table's newest checkpoint \
are never deleted, and nothing is deleted by any other command.\n\n\
Reading the lake at an earlier version (--lake-version, time travel) needs the files that \
version listed: after a vacuum, versions older than the retention may name deleted files and \
fail, naming the file. On an object-lock (WORM) bucket, set --retain at least as long as the \
bucket's retention: a delete before then is refused by the store. Delta readers apply their own \
rule (delta.deletedFileRetentionDuration, which ledgerlake sets to 1 hour on the tables it \
creates; 7 days when unset): keep --retain at least that. \
See docs/DESIGN.md, \"The life of a file\".\n\n\
A vacuum that deleted what it found writes _ledgerlake_vacuum.json at the lake root: for each \
table, the first log version the next run reads (the oldest commit whose removed files it kept, \
or the one after the newest). So a scheduled vacuum reads only the commits since the oldest kept \
removal, not the whole history. Only a hint: a record beyond a table's log is ignored (the \
report says why), and --rescan reads every commit."
)]
pub struct VacuumArgs {
    /// The lake (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// Delete files removed from their table longer ago than this (e.g. 7d, 168h, 30d).
    #[arg(long, value_parser = parse_duration)]
    pub retain: Duration,
    /// List what would be deleted; delete nothing, record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read every commit of every table, ignoring where _ledgerlake_vacuum.json says the
    /// previous run left off (it is rewritten afterwards).
    #[arg(long)]
    pub rescan: bool,
    /// `table` for people, `json` for scripts (every u64 a decimal string).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

pub fn render_table(location: &str, r: &VacuumReport) -> String {
    let mut out = format!("lake {location}\n");
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    let files = r.deleted.iter().map(|f| {
        let why = format!("removed in version {}", f.removed_in_version);
        (&f.path, f.bytes, why)
    });
    let checkpoints = r.checkpoints_deleted.iter().map(|c| {
        let why = format!("superseded checkpoint of version {}", c.version);
        (&c.path, c.bytes, why)
    });
    for (path, bytes, why) in files.chain(checkpoints) {
        out.push_str(&format!("{verb} {path} ({bytes} bytes, {why})\n"));
    }
    for t in &r.tables {
        out.push_str(&format!(
            "read {} from version {}: {} commits",
            t.table, t.read_from_version, t.commits_read
        ));
        if let Some(why) = &t.record_ignored {
            out.push_str(&format!(
                " (the record of an earlier run was ignored: {why})"
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{verb}: {} files, {} bytes, and {} superseded checkpoints, {} bytes; kept {} files \
         removed within the retention; {} already deleted; {} active files untouched\n",
        r.deleted.len(),
        r.bytes_deleted,
        r.checkpoints_deleted.len(),
        r.checkpoint_bytes_deleted,
        r.kept_recent,
        r.already_deleted,
        r.active
    ));
    out
}

pub async fn run(args: VacuumArgs) -> Result<Outcome, CliError> {
    require_existing_lake(&args.lake)?;
    let lake = Lake::open(&args.lake).await?;
    let options = VacuumOptions {
        retain: args.retain,
        dry_run: args.dry_run,
        rescan: args.rescan,
    };
    let report = lake.vacuum_with(&options, crate::timefmt::now_ms()).await?;
    let bytes = match args.format {
        ReportFormat::Json => output::json(&report)?,
        ReportFormat::Table => render_table(lake.location(), &report).into_bytes(),
    };
    output::write_stdout(&bytes)?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::{VacuumedCheckpoint, VacuumedFile, VacuumedTable};

    #[test]
    fn json_counts_sizes_and_times_are_exact_strings() {
        let report = VacuumReport {
            retain_ms: u64::MAX,
            deleted: vec![VacuumedFile {
                table: "transfers",
                path: "transfers/date=2026-12-03/a.parquet".into(),
                removed_at_ms: i64::MAX,
                removed_in_version: u64::MAX,
                bytes: 12,
            }],
            checkpoints_deleted: vec![VacuumedCheckpoint {
                table: "transfers",
                path: "transfers/_delta_log/00000000000000000100.checkpoint.parquet".into(),
                version: 100,
                bytes: 34,
            }],
            checkpoint_bytes_deleted: 34,
            tables: vec![VacuumedTable {
                table: "transfers",
                read_from_version: u64::MAX,
                commits_read: 7,
                record_ignored: Some("why".into()),
            }],
            ..VacuumReport::default()
        };
        let json: serde_json::Value =
            serde_json::from_slice(&output::json(&report).unwrap()).unwrap();
        assert_eq!(json["retain_ms"], u64::MAX.to_string());
        assert_eq!(json["deleted"][0]["removed_at_ms"], i64::MAX.to_string());
        assert_eq!(
            json["deleted"][0]["removed_in_version"],
            u64::MAX.to_string()
        );
        assert_eq!(json["checkpoints_deleted"][0]["version"], "100");
        assert_eq!(json["checkpoint_bytes_deleted"], "34");
        assert_eq!(json["kept_recent"], "0");
        assert_eq!(json["tables"][0]["read_from_version"], u64::MAX.to_string());
        assert_eq!(json["tables"][0]["commits_read"], "7");
        let table = render_table("lake", &report);
        assert!(
            table.contains("superseded checkpoint of version 100"),
            "{table}"
        );
        assert!(
            table.contains(&format!(
                "read transfers from version {}: 7 commits (the record of an earlier run was ignored: why)",
                u64::MAX
            )),
            "{table}"
        );
    }
}
