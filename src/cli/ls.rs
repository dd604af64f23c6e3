//! `ledgerlake ls`: its arguments, and the listing as a table or JSON.

use clap::Args;

use super::exit::Outcome;
use super::output::{self, number, text, ReportFormat};
use super::{require_existing_lake, CliError};
use crate::ls::{Listing, LsOptions};
use crate::timefmt::rfc3339;

#[derive(Debug, Args)]
pub struct LsArgs {
    /// The lake (see `export --lake`).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// Also list every version of each table's Delta log with its commit time (reads every
    /// commit of the log: slow on a long history).
    #[arg(long)]
    pub versions: bool,
    /// List the lake as it stood at this version of its transfers table (time travel).
    #[arg(long)]
    pub lake_version: Option<u64>,
    /// `table` for people, `json` for scripts (every u64 a decimal string).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

impl From<LsArgs> for LsOptions {
    fn from(args: LsArgs) -> LsOptions {
        LsOptions {
            lake: args.lake,
            versions: args.versions,
            lake_version: args.lake_version,
        }
    }
}

pub async fn run(args: LsArgs) -> Result<Outcome, CliError> {
    let format = args.format;
    require_existing_lake(&args.lake)?;
    let listing = crate::ls::run(&LsOptions::from(args)).await?;
    let bytes = match format {
        ReportFormat::Json => output::json(&listing)?,
        ReportFormat::Table => render_table(&listing).into_bytes(),
    };
    output::write_stdout(&bytes)?;
    Ok(Outcome::Done)
}

pub fn render_table(listing: &Listing) -> String {
    let mut out = format!(
        "lake {}  cluster {}  format {}  transfers version {}\n",
        listing.lake,
        listing.cluster_id.as_deref().unwrap_or("-"),
        listing
            .format_version
            .map_or("-".to_string(), |v| v.to_string()),
        listing
            .transfers_version
            .map_or("-".to_string(), |v| v.to_string())
    );
    let segments = listing.segments.iter().map(|line| {
        vec![
            line.date.clone(),
            line.first_time.clone(),
            line.last_time.clone(),
            line.events.to_string(),
            line.accounts.to_string(),
            line.bytes.to_string(),
            line.object.clone(),
        ]
    });
    let swept = listing.swept.iter().map(|line| {
        vec![
            "swept".to_string(),
            line.first_time.clone(),
            line.last_time.clone(),
            "-".to_string(),
            line.accounts.to_string(),
            line.bytes.to_string(),
            line.object.clone(),
        ]
    });
    out.push_str(&output::table(
        &[
            text("date"),
            text("first"),
            text("last"),
            number("events"),
            number("accounts"),
            number("bytes"),
            text("object"),
        ],
        segments.chain(swept),
    ));
    let totals = &listing.totals;
    let per_event = if totals.events > 0 {
        totals.bytes as f64 / totals.events as f64
    } else {
        0.0
    };
    out.push_str(&format!(
        "total: {} segments, {} events, {} accounts ({} swept), {} bytes ({per_event:.1} bytes/event)\n",
        totals.segments, totals.events, totals.accounts, totals.swept_accounts, totals.bytes
    ));
    if let (Some(first), Some(last)) = (totals.first_timestamp, totals.last_timestamp) {
        out.push_str(&format!("first: {first} ({})\n", rfc3339(first)));
        out.push_str(&format!("last:  {last} ({})\n", rfc3339(last)));
    }
    if !listing.versions.is_empty() {
        out.push_str(&output::table(
            &[text("table"), number("version"), text("committed")],
            listing.versions.iter().map(|v| {
                vec![
                    v.table.clone(),
                    v.version.to_string(),
                    v.committed_at.clone(),
                ]
            }),
        ));
    }
    out.push_str(&format!(
        "quarantine: {} messages\n",
        listing.quarantine.len()
    ));
    if !listing.quarantine.is_empty() {
        out.push_str(&output::table(
            &[
                text("object"),
                text("received"),
                number("bytes"),
                text("reason"),
            ],
            listing.quarantine.iter().map(|q| {
                vec![
                    q.object.clone(),
                    q.received_time.clone(),
                    q.bytes.to_string(),
                    q.reason.clone(),
                ]
            }),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ls::{QuarantineLine, SegmentLine, Totals};

    fn listing() -> Listing {
        let ts = u64::MAX - 1;
        Listing {
            lake: "/l".into(),
            cluster_id: Some("7".into()),
            format_version: Some(2),
            segments: vec![SegmentLine {
                date: "2554-07-21".into(),
                first_timestamp: ts,
                last_timestamp: ts,
                first_time: rfc3339(ts),
                last_time: rfc3339(ts),
                events: 3,
                accounts: 2,
                bytes: 1000,
                object: "transfers/x.parquet".into(),
            }],
            swept: Vec::new(),
            totals: Totals {
                segments: 1,
                events: 3,
                accounts: 2,
                swept_accounts: 0,
                bytes: 1000,
                first_timestamp: Some(ts),
                last_timestamp: Some(ts),
                first_time: Some(rfc3339(ts)),
                last_time: Some(rfc3339(ts)),
            },
            quarantine: vec![QuarantineLine {
                object: "quarantine/q.json".into(),
                received_time: rfc3339(0),
                bytes: 12,
                reason: "not JSON".into(),
            }],
            transfers_version: Some(4),
            versions: Vec::new(),
        }
    }

    #[test]
    fn json_timestamps_above_2_pow_53_are_exact_strings() {
        let json: serde_json::Value =
            serde_json::from_slice(&output::json(&listing()).unwrap()).unwrap();
        let exact = (u64::MAX - 1).to_string();
        assert_eq!(json["segments"][0]["first_timestamp"], exact.as_str());
        assert_eq!(json["totals"]["last_timestamp"], exact.as_str());
        assert_eq!(json["segments"][0]["events"], "3");
        assert_eq!(json["quarantine"][0]["bytes"], "12");
    }

    #[test]
    fn the_table_lists_segments_totals_and_quarantine() {
        let table = render_table(&listing());
        assert!(
            table.starts_with("lake /l  cluster 7  format 2  transfers version 4\n"),
            "{table}"
        );
        assert!(table.contains("transfers/x.parquet"), "{table}");
        assert!(
            table.contains(
                "total: 1 segments, 3 events, 2 accounts (0 swept), 1000 bytes (333.3 bytes/event)"
            ),
            "{table}"
        );
        assert!(table.contains("quarantine: 1 messages"), "{table}");
        assert!(table.contains("not JSON"), "{table}");
    }
}
