//! `ledgerlake ls`: what the lake holds — segments with their time ranges, event counts and sizes,
//! the account sweep's files, totals, and quarantined messages (the CLI renders the listing as a
//! table for people or JSON for scripts, every u64 a decimal string).

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};

use crate::lake::{Lake, LakeError, SegmentInfo, SweptInfo, Table};
use crate::timefmt::rfc3339;

/// What `ls` needs.
#[derive(Debug, Clone)]
pub struct LsOptions {
    pub lake: String,
    /// Also list every version of each table with its commit time (reads every commit).
    pub versions: bool,
    /// List the lake as it stood at this `transfers` version (`None`: the latest).
    pub lake_version: Option<u64>,
}

/// Footers read at once: enough to hide object-store latency, few enough to stay polite.
const FOOTER_READS_IN_FLIGHT: usize = 8;

#[serde_as]
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
    /// The `transfers` version listed (`None`: the lake has no table yet).
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub transfers_version: Option<u64>,
    /// Every table version, when asked for (`ls --versions`).
    pub versions: Vec<VersionLine>,
}

/// One version of one table's log.
#[serde_as]
#[derive(Debug, Serialize)]
pub struct VersionLine {
    pub table: String,
    #[serde_as(as = "DisplayFromStr")]
    pub version: u64,
    /// Commit time, milliseconds since the epoch.
    #[serde_as(as = "DisplayFromStr")]
    pub committed_ms: i64,
    pub committed_at: String,
}

#[serde_as]
#[derive(Debug, Serialize)]
pub struct SegmentLine {
    pub date: String,
    #[serde_as(as = "DisplayFromStr")]
    pub first_timestamp: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub last_timestamp: u64,
    pub first_time: String,
    pub last_time: String,
    #[serde_as(as = "DisplayFromStr")]
    pub events: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub accounts: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub bytes: u64,
    pub object: String,
}

/// One swept accounts file: its accounts' creation range.
#[serde_as]
#[derive(Debug, Serialize)]
pub struct SweptLine {
    #[serde_as(as = "DisplayFromStr")]
    pub first_timestamp: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub last_timestamp: u64,
    pub first_time: String,
    pub last_time: String,
    #[serde_as(as = "DisplayFromStr")]
    pub accounts: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub bytes: u64,
    pub object: String,
}

#[serde_as]
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    #[serde_as(as = "DisplayFromStr")]
    pub segments: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub events: u64,
    /// Accounts recorded in both tables: first seen in an event, or swept.
    #[serde_as(as = "DisplayFromStr")]
    pub accounts: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub swept_accounts: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub bytes: u64,
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub first_timestamp: Option<u64>,
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub last_timestamp: Option<u64>,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
}

#[serde_as]
#[derive(Debug, Serialize)]
pub struct QuarantineLine {
    pub object: String,
    pub received_time: String,
    #[serde_as(as = "DisplayFromStr")]
    pub bytes: u64,
    pub reason: String,
}

/// Opens the lake and lists it.
pub async fn run(options: &LsOptions) -> Result<Listing, LakeError> {
    let mut lake = Lake::open(&options.lake).await?;
    if let Some(v) = options.lake_version {
        lake = lake.at_version(v);
    }
    let mut listing = list(&lake).await?;
    if options.versions {
        for table in [Table::Transfers, Table::Accounts, Table::SweptAccounts] {
            for v in lake.table_versions(table).await? {
                listing.versions.push(VersionLine {
                    table: table.dir().to_string(),
                    version: v.version,
                    committed_ms: v.timestamp_ms,
                    committed_at: rfc3339_ms(v.timestamp_ms),
                });
            }
        }
    }
    Ok(listing)
}

fn rfc3339_ms(ms: i64) -> String {
    u64::try_from(ms)
        .ok()
        .and_then(|ms| ms.checked_mul(1_000_000))
        .map_or_else(|| "-".to_string(), rfc3339)
}

/// Reads the lake's listing and every segment's footer (counts), without reading any rows.
pub async fn list(lake: &Lake) -> Result<Listing, LakeError> {
    let meta = lake.read_meta().await?;
    let segments: Vec<SegmentInfo> = lake.list_segments().await?;
    let lines: Vec<SegmentLine> = futures::stream::iter(segments.iter())
        .map(|segment| async move {
            let counts = lake.segment_counts(segment).await?;
            Ok::<_, LakeError>(SegmentLine {
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
            Ok::<_, LakeError>(SweptLine {
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
        transfers_version: lake.transfers_version().await?,
        versions: Vec::new(),
    })
}
