//! `ledgerlake ls`: what the lake holds — segments with their time ranges, event counts and sizes,
//! the account sweep's files, totals, and quarantined messages — as a table for people or JSON for
//! scripts.

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::cli::{LsArgs, OutputFormat};
use crate::lake::{Lake, SegmentInfo, SweptInfo};
use crate::timefmt::rfc3339;

/// Footers read at once: enough to hide object-store latency, few enough to stay polite.
const FOOTER_READS_IN_FLIGHT: usize = 8;

#[derive(Debug, Serialize)]
pub struct Listing {
    pub lake: String,
    pub cluster_id: Option<String>,
    pub format_version: Option<u32>,
    pub segments: Vec<SegmentLine>,
    /// The account sweep's files (`swept_accounts/`).
    pub swept: Vec<SweptLine>,
    pub totals: Totals,
    pub quarantine: Vec<QuarantineLine>,
}

#[derive(Debug, Serialize)]
pub struct SegmentLine {
    pub date: String,
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub first_time: String,
    pub last_time: String,
    pub events: u64,
    pub accounts: u64,
    pub bytes: u64,
    pub object: String,
}

/// One swept accounts file: its accounts' creation range.
#[derive(Debug, Serialize)]
pub struct SweptLine {
    pub first_timestamp: u64,
    pub last_timestamp: u64,
    pub first_time: String,
    pub last_time: String,
    pub accounts: u64,
    pub bytes: u64,
    pub object: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub segments: u64,
    pub events: u64,
    /// Accounts recorded in both tables: first seen in an event, or swept.
    pub accounts: u64,
    pub swept_accounts: u64,
    pub bytes: u64,
    pub first_timestamp: Option<u64>,
    pub last_timestamp: Option<u64>,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct QuarantineLine {
    pub object: String,
    pub received_time: String,
    pub bytes: u64,
    pub reason: String,
}

pub async fn run(args: &LsArgs) -> anyhow::Result<()> {
    let lake = Lake::open(&args.lake).await?;
    let listing = list(&lake).await?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
        OutputFormat::Table => print!("{}", render_table(&listing)),
    }
    Ok(())
}

/// Reads the lake's listing and every segment's footer (counts), without reading any rows.
pub async fn list(lake: &Lake) -> anyhow::Result<Listing> {
    let meta = lake.read_meta().await?;
    let segments: Vec<SegmentInfo> = lake.list_segments().await?;
    let lines: Vec<SegmentLine> = futures::stream::iter(segments.iter())
        .map(|segment| async move {
            let counts = lake.segment_counts(segment).await?;
            Ok::<_, anyhow::Error>(SegmentLine {
                date: segment.date.clone(),
                first_timestamp: segment.first_timestamp,
                last_timestamp: segment.last_timestamp,
                first_time: rfc3339(segment.first_timestamp),
                last_time: rfc3339(segment.last_timestamp),
                events: counts.events,
                accounts: counts.accounts,
                bytes: segment.transfers_bytes + segment.accounts_bytes,
                object: segment.transfers_path.to_string(),
            })
        })
        .buffered(FOOTER_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let swept_files: Vec<SweptInfo> = lake.list_swept().await?;
    let swept: Vec<SweptLine> = futures::stream::iter(swept_files.iter())
        .map(|file| async move {
            let accounts = lake.footer_rows(&file.path, file.bytes).await?;
            Ok::<_, anyhow::Error>(SweptLine {
                first_timestamp: file.first_timestamp,
                last_timestamp: file.last_timestamp,
                first_time: rfc3339(file.first_timestamp),
                last_time: rfc3339(file.last_timestamp),
                accounts,
                bytes: file.bytes,
                object: file.path.to_string(),
            })
        })
        .buffered(FOOTER_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut totals = Totals {
        segments: lines.len() as u64,
        first_timestamp: lines.first().map(|l| l.first_timestamp),
        last_timestamp: lines.last().map(|l| l.last_timestamp),
        ..Totals::default()
    };
    totals.first_time = totals.first_timestamp.map(rfc3339);
    totals.last_time = totals.last_timestamp.map(rfc3339);
    for line in &lines {
        totals.events += line.events;
        totals.accounts += line.accounts;
        totals.bytes += line.bytes;
    }
    for line in &swept {
        totals.accounts += line.accounts;
        totals.swept_accounts += line.accounts;
        totals.bytes += line.bytes;
    }
    let quarantine = lake
        .list_quarantine()
        .await?
        .into_iter()
        .map(|q| QuarantineLine {
            object: q.path.to_string(),
            received_time: rfc3339(q.received_ns),
            bytes: q.bytes,
            reason: q.reason,
        })
        .collect();
    Ok(Listing {
        lake: lake.location().to_string(),
        cluster_id: meta.as_ref().map(|m| m.cluster_id.to_string()),
        format_version: meta.as_ref().map(|m| m.format_version),
        segments: lines,
        swept,
        totals,
        quarantine,
    })
}

fn render_table(listing: &Listing) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lake {}  cluster {}  format {}",
        listing.lake,
        listing.cluster_id.as_deref().unwrap_or("-"),
        listing
            .format_version
            .map_or("-".to_string(), |v| v.to_string())
    );
    let _ = writeln!(
        out,
        "{:<10}  {:<30}  {:<30}  {:>8}  {:>8}  {:>10}  object",
        "date", "first", "last", "events", "accounts", "bytes"
    );
    for line in &listing.segments {
        let _ = writeln!(
            out,
            "{:<10}  {:<30}  {:<30}  {:>8}  {:>8}  {:>10}  {}",
            line.date,
            line.first_time,
            line.last_time,
            line.events,
            line.accounts,
            line.bytes,
            line.object
        );
    }
    for line in &listing.swept {
        let _ = writeln!(
            out,
            "{:<10}  {:<30}  {:<30}  {:>8}  {:>8}  {:>10}  {}",
            "swept", line.first_time, line.last_time, "-", line.accounts, line.bytes, line.object
        );
    }
    let totals = &listing.totals;
    let per_event = if totals.events > 0 {
        totals.bytes as f64 / totals.events as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "total: {} segments, {} events, {} accounts ({} swept), {} bytes ({per_event:.1} bytes/event)",
        totals.segments, totals.events, totals.accounts, totals.swept_accounts, totals.bytes
    );
    if let (Some(first), Some(last)) = (totals.first_timestamp, totals.last_timestamp) {
        let _ = writeln!(out, "first: {first} ({})", rfc3339(first));
        let _ = writeln!(out, "last:  {last} ({})", rfc3339(last));
    }
    let _ = writeln!(out, "quarantine: {} messages", listing.quarantine.len());
    for q in &listing.quarantine {
        let _ = writeln!(
            out,
            "  {}  {}  {} bytes  {}",
            q.object, q.received_time, q.bytes, q.reason
        );
    }
    out
}
