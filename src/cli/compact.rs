//! `ledgerlake compact`: compaction of a lake whose exporter is stopped (a running exporter
//! compacts in the background), with a line per merge, a progress bar (or periodic lines when
//! stderr is not a terminal) over the lake's segment files, and a summary.

use clap::Args;

use super::exit::Outcome;
use super::output::{self, ReportFormat};
use super::progress::{Reporter, Step};
use super::{require_existing_lake, CliError};
use crate::lake::{CompactReport, Lake, MergeDone};
use crate::timefmt::rfc3339;

#[derive(Debug, Args)]
#[command(
    long_about = "Merge the lake's small data files (one per segment: an active stream seals one \
every second) into one file per closed time window: five minutes, then an hour, then a UTC day, \
each at most 16 MiB of input. Each merge is checked (the new file is read back and must hold \
exactly the events of the files it replaces, in order) and swapped in with one Delta commit per \
table (dataChange = false); the replaced files stay in the store, removed from the tables, \
until `ledgerlake vacuum` deletes them.\n\n\
Safe to interrupt and to rerun. A running exporter compacts in the background by itself \
(`export --compact-interval`); run this only while the exporter is stopped: a compaction commit \
by another process makes the exporter stop with \"another exporter is writing this lake\"."
)]
pub struct CompactArgs {
    /// The lake (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// Also merge the windows still open (the current five minutes, hour and UTC day): fewer
    /// files now; the files an exporter adds to those windows later are merged with them again.
    #[arg(long)]
    pub all_windows: bool,
    /// `table` for people, `json` for scripts (every u64 a decimal string).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

fn merge_line(done: &MergeDone) -> String {
    format!(
        "compact: {} {}..{}: {} files, {} events, {} accounts: {} -> {} bytes{}",
        done.date,
        rfc3339(done.first_timestamp),
        rfc3339(done.last_timestamp),
        done.inputs,
        done.events,
        done.accounts,
        done.bytes_before,
        done.bytes_after,
        if done.recovered {
            " (completed an interrupted compaction)"
        } else {
            ""
        }
    )
}

pub fn render_table(location: &str, r: &CompactReport) -> String {
    let events: u64 = r.merges.iter().map(|m| m.events).sum();
    let inputs: u64 = r.merges.iter().map(|m| m.inputs).sum();
    format!(
        "lake {location}\nmerges: {} ({inputs} transfers files, {events} events)\nfiles: {} -> {}\n\
         bytes: {} -> {}\n",
        r.merges.len(),
        r.files_before,
        r.files_after,
        r.bytes_before,
        r.bytes_after
    )
}

pub async fn run(args: CompactArgs) -> Result<Outcome, CliError> {
    require_existing_lake(&args.lake)?;
    let lake = Lake::open(&args.lake).await?;
    // Progress counts segment files merged against the segment files the lake holds: files of
    // windows still open are not merged (without --all-windows), so it may end below the total.
    let total = lake.list_segments().await?.len() as u64;
    let reporter = Reporter::new();
    let (mut files, mut events) = (0u64, 0u64);
    let report = lake
        .compact(args.all_windows, &mut |done| {
            output::note(&merge_line(done));
            files += done.inputs;
            events += done.events;
            reporter.show(Step {
                label: "compact".to_string(),
                done: files.min(total),
                total,
                unit: "segment files merged",
                events,
            });
            true
        })
        .await;
    reporter.finish();
    let report = report?;
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

    #[test]
    fn json_timestamps_above_2_pow_53_are_exact_strings() {
        let report = CompactReport {
            files_before: 3,
            merges: vec![MergeDone {
                date: "2026-12-03".into(),
                first_timestamp: 1_796_083_080_000_000_001,
                last_timestamp: u64::MAX,
                inputs: 2,
                events: 5,
                accounts: 4,
                bytes_before: 100,
                bytes_after: 60,
                recovered: false,
            }],
            ..CompactReport::default()
        };
        let json: serde_json::Value =
            serde_json::from_slice(&output::json(&report).unwrap()).unwrap();
        assert_eq!(json["merges"][0]["first_timestamp"], "1796083080000000001");
        assert_eq!(json["merges"][0]["last_timestamp"], u64::MAX.to_string());
        assert_eq!(json["files_before"], "3");
        assert_eq!(json["merges"][0]["recovered"], false);
    }
}
