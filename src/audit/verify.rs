//! `ledgerlake verify`: proves a lake whole, or names where it is not. First the chained log
//! (tamper evidence, `lake::chain`): every commit of every table carries the digest of the one
//! before it and of every file it adds, so a rewritten, removed or added data file or log entry
//! is named by table, version and file; the report gives each table's head digest. Then three
//! checks, in one pass over the segments in time order:
//! - structure: every segment readable and agreeing with its name and metadata, no overlaps,
//!   no timestamp twice, every file of the lake's cluster and a known format version;
//! - completeness: every account's balances move, event after event, by exactly the event's
//!   effect (see `effect`), starting from zero — a missing, duplicated or altered event breaks
//!   the chain where it happened;
//! - double entry: on every ledger, Σ debits = Σ credits (posted and pending) after every
//!   event (hence at every segment boundary), in exact 192-bit sums.
//!
//! With `--since REPORT.json` (an earlier verify's JSON report of a whole lake, kept by the
//! auditor outside the lake) the chained log is walked only from each table's recorded head
//! (`since`); the other checks read the whole snapshot as always.

use std::collections::HashMap;

use futures::StreamExt;
use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};

use super::problem::Problem;
use super::progress::{Progress, ReadProgress};
use super::replay::{Findings, Replay};
use super::segments::read_in_order;
pub use super::since::{Since, SinceSummary};
use crate::lake::chain::{ChainFile, ChainReport, ChainStart, CHAIN_FORMAT_VERSION_MIN};
use crate::lake::{
    AuditedFileMeta, Lake, LakeError, LakeMeta, SegmentInfo, SweptInfo, FORMAT_VERSION,
};

/// What `verify` needs.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub lake: String,
    /// An earlier `verify --format json` report to start the chain walk from (`since`).
    pub since: Option<std::path::PathBuf>,
}

/// Why verification could not run at all (what it finds wrong is in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("there is no lake at {location}: it holds no _ledgerlake.json and no segments (check --lake)")]
    NoLake { location: String },
    #[error(transparent)]
    Since(#[from] super::since::SinceError),
}

/// The head of one table's chained log, as `verify` reports it: record `head_sha256` to prove
/// later that no commit up to it (and no data file they name) has changed.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub table: String,
    /// Commit files in the log.
    #[serde_as(as = "DisplayFromStr")]
    pub versions: u64,
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub head_version: Option<u64>,
    /// The SHA-256 (hex) of the newest commit file's bytes.
    pub head_sha256: Option<String>,
    /// Data files the log holds as part of the table.
    #[serde_as(as = "DisplayFromStr")]
    pub active_files: u64,
    /// Those files with the digest and size the log records: what `--since` starts from.
    pub files: Vec<ChainFile>,
    /// With `--since`: the recorded head the walk started from.
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub since_version: Option<u64>,
    /// With `--since`: objects older than the recorded head that no walked commit names, not
    /// checked (a full verify checks them).
    #[serde_as(as = "DisplayFromStr")]
    pub objects_not_checked: u64,
    /// Checkpoints compared with the chain (readers start from the newest): each must list
    /// exactly the files the chain has active at its version.
    #[serde_as(as = "DisplayFromStr")]
    pub checkpoints_checked: u64,
    /// Older checkpoints (superseded, for readers of old versions), and with `--since` those
    /// before the recorded head: not read.
    #[serde_as(as = "DisplayFromStr")]
    pub checkpoints_not_checked: u64,
}

#[serde_as]
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub lake: String,
    pub ok: bool,
    pub cluster_id: Option<String>,
    pub format_version: Option<u32>,
    /// Whether the chained log was checked (a format-1 lake has none).
    pub chain_checked: bool,
    /// With `--since`: the report the chain walk started from, and what that leaves unproven.
    pub since: Option<SinceSummary>,
    /// Each table's chain head (its problems are in `problems`, kind `chain`).
    pub chain: Vec<ChainHead>,
    /// What is worth knowing but not a problem: data files left by an interrupted export (kind
    /// `chain`, check `file_uncommitted`).
    pub notes: Vec<Problem>,
    pub segments: usize,
    #[serde_as(as = "DisplayFromStr")]
    pub events: u64,
    pub accounts: usize,
    /// Accounts recorded by the exporter's account sweep (`swept_accounts/`).
    pub swept_accounts: usize,
    pub ledgers: usize,
    /// Pending transfers neither posted, voided nor expired by the lake's last event.
    pub open_pending_transfers: usize,
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub first_timestamp: Option<u64>,
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub last_timestamp: Option<u64>,
    /// False if an unreadable segment made the sums unknowable after it.
    pub double_entry_checked: bool,
    #[serde_as(as = "DisplayFromStr")]
    pub problems_total: u64,
    /// The first problems found (see `replay::PROBLEMS_REPORTED_MAX`).
    pub problems: Vec<Problem>,
    #[serde_as(as = "DisplayFromStr")]
    pub elapsed_ms: u64,
    pub events_per_second: f64,
}

/// Opens the lake and verifies it; refuses a location that holds no lake at all, which is a
/// mistake in `--lake` rather than a lake that failed verification.
pub async fn run(
    options: &VerifyOptions,
    progress: &dyn ReadProgress,
) -> Result<VerifyReport, VerifyError> {
    let lake = Lake::open(&options.lake).await?;
    // An object under a table directory (even one no commit names) makes it a broken lake,
    // not a wrong `--lake`. Checked cheapest first and only as far as needed: the snapshots
    // behind the listings are read again by the verify itself.
    let no_lake = matches!(lake.read_meta().await, Ok(None))
        && matches!(lake.holds_table_objects().await, Ok(false))
        && matches!(lake.list_segments().await, Ok(s) if s.is_empty())
        && matches!(lake.list_swept().await, Ok(s) if s.is_empty());
    if no_lake {
        return Err(VerifyError::NoLake {
            location: lake.location().to_string(),
        });
    }
    let since = match &options.since {
        Some(path) => Some(Since::read(path)?),
        None => None,
    };
    Ok(verify_since(&lake, since.as_ref(), progress).await)
}

/// Verifies the whole lake. Never fails: whatever is wrong is a problem in the report.
pub async fn verify(lake: &Lake, progress: &dyn ReadProgress) -> VerifyReport {
    verify_since(lake, None, progress).await
}

/// `verify`, the chained log walked from the heads of `since` (an earlier report) if given.
pub async fn verify_since(
    lake: &Lake,
    since: Option<&Since>,
    progress: &dyn ReadProgress,
) -> VerifyReport {
    let mut findings = Findings::default();
    let mut report = VerifyReport {
        lake: lake.location().to_string(),
        ok: false,
        cluster_id: None,
        format_version: None,
        chain_checked: false,
        since: since.map(Since::summary),
        chain: Vec::new(),
        notes: Vec::new(),
        segments: 0,
        events: 0,
        accounts: 0,
        swept_accounts: 0,
        ledgers: 0,
        open_pending_transfers: 0,
        first_timestamp: None,
        last_timestamp: None,
        double_entry_checked: true,
        problems_total: 0,
        problems: Vec::new(),
        elapsed_ms: 0,
        events_per_second: 0.0,
    };
    let meta = lake.read_meta().await;
    let starts = since.map(|s| s.starts.clone()).unwrap_or_default();
    let chain = check_chain(lake, &meta, &starts, &mut report, &mut findings).await;
    let lake_cluster = match meta {
        Ok(Some(meta)) => {
            report.cluster_id = Some(meta.cluster_id.to_string());
            report.format_version = Some(meta.format_version);
            Some(meta.cluster_id)
        }
        Ok(None) => {
            findings.push(Problem::LakeMeta {
                reason: "_ledgerlake.json is missing: the lake was never bound to a cluster"
                    .to_string(),
            });
            None
        }
        Err(e @ LakeError::UnsupportedFormat { .. }) => {
            findings.push(Problem::LakeMeta {
                reason: e.to_string(),
            });
            return finish(report, findings, None, 0.0);
        }
        Err(e) => {
            findings.push(Problem::LakeMeta {
                reason: e.to_string(),
            });
            None
        }
    };
    // A whole chain already holds the active files (what a reader's snapshot holds: its
    // checkpoints were compared with it), so no snapshot is built for them.
    let of_chain = chain.and_then(|c| lake.segments_of_chain(&c).ok().flatten());
    let listed = match of_chain {
        Some(segments) => Ok(segments),
        None => lake.list_segments().await,
    };
    let segments = match listed {
        Ok(segments) => segments,
        Err(e) => {
            findings.push(Problem::Listing {
                reason: e.to_string(),
            });
            return finish(report, findings, None, 0.0);
        }
    };
    report.segments = segments.len();
    report.first_timestamp = segments.first().map(|s| s.first_timestamp);
    report.last_timestamp = segments.iter().map(|s| s.last_timestamp).max();
    check_overlaps(&segments, &mut findings);

    let mut replay = Replay::default();
    report.swept_accounts = record_swept(lake, lake_cluster, &mut replay, &mut findings).await;
    let mut progress = Progress::new("verify", segments.len(), progress);
    let mut last_event: Option<u64> = None;
    let mut reads = read_in_order(lake, &segments);
    let mut done = 0;
    while let Some((seg, read)) = reads.next().await {
        done += 1;
        let name = seg.transfers_path.to_string();
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                findings.push(Problem::SegmentUnreadable {
                    segment: name,
                    error: e.to_string(),
                });
                replay.mark_gap();
                continue;
            }
        };
        replay.begin_segment(&name);
        check_file_meta(&name, &read.transfers_meta, lake_cluster, &mut findings);
        if let (Some(meta), Some(path)) = (&read.accounts_meta, &seg.accounts_path) {
            check_file_meta(path.as_ref(), meta, lake_cluster, &mut findings);
        }
        for record in &read.accounts {
            replay.record_account(record, &name, &mut findings);
        }
        let mut late: Option<(u64, u64, u64)> = None; // rows, first such timestamp, previous
        for row in &read.events {
            match last_event {
                Some(previous) if row.timestamp <= previous => {
                    let l = late.get_or_insert((0, row.timestamp, previous));
                    l.0 += 1;
                }
                _ => {
                    last_event = Some(row.timestamp);
                    replay.apply(row, &mut findings);
                }
            }
        }
        if let Some((rows, timestamp, previous)) = late {
            findings.push(Problem::TimestampNotIncreasing {
                segment: name.clone(),
                rows,
                timestamp,
                previous,
            });
        }
        replay.check_double_entry(&mut findings);
        progress.tick(done, replay.events);
    }
    progress.finish(done, replay.events);
    report.events = replay.events;
    report.accounts = replay.accounts();
    report.ledgers = replay.ledgers();
    report.open_pending_transfers = replay.open_pending();
    report.double_entry_checked = !replay.double_entry_suspended();
    let rate = progress.rate(replay.events);
    finish(
        report,
        findings,
        Some(progress.elapsed().as_millis() as u64),
        rate,
    )
}

/// The chain check, first: each of its problems becomes a verify problem; returns the chain
/// if it was checked. Skipped for a lake whose metadata says format 1, and for one whose
/// metadata does not say format 2 or newer (missing, unreadable) that has no log object at
/// all: format 1 has no log, and the later checks report what is wrong with such a lake.
async fn check_chain(
    lake: &Lake,
    meta: &Result<Option<LakeMeta>, LakeError>,
    starts: &HashMap<String, ChainStart>,
    report: &mut VerifyReport,
    findings: &mut Findings,
) -> Option<ChainReport> {
    if matches!(meta, Ok(Some(m)) if m.format_version < CHAIN_FORMAT_VERSION_MIN) {
        return None;
    }
    let chain: ChainReport = match lake.check_chain_from(starts).await {
        Ok(chain) => chain,
        Err(e) => {
            findings.push(Problem::Listing {
                reason: format!("the chained log cannot be checked: {e}"),
            });
            return None;
        }
    };
    let chained_format =
        matches!(meta, Ok(Some(m)) if m.format_version >= CHAIN_FORMAT_VERSION_MIN);
    if !chained_format && !chain.has_log() {
        return None;
    }
    report.chain_checked = true;
    report.chain = chain
        .tables
        .iter()
        .map(|t| ChainHead {
            table: t.table.clone(),
            versions: t.versions,
            head_version: t.head_version,
            head_sha256: t.head_sha256.clone(),
            active_files: t.active_files,
            files: t.files.clone(),
            since_version: t.since_version,
            objects_not_checked: t.objects_not_checked,
            checkpoints_checked: t.checkpoints_checked,
            checkpoints_not_checked: t.checkpoints_not_checked,
        })
        .collect();
    for table in &chain.tables {
        for p in &table.problems {
            findings.push(Problem::Chain(p.clone()));
        }
        report
            .notes
            .extend(table.notes.iter().cloned().map(Problem::Chain));
    }
    Some(chain)
}

fn finish(
    mut report: VerifyReport,
    findings: Findings,
    elapsed_ms: Option<u64>,
    rate: f64,
) -> VerifyReport {
    report.ok = findings.total == 0;
    report.problems_total = findings.total;
    report.problems = findings.problems;
    report.elapsed_ms = elapsed_ms.unwrap_or(0);
    report.events_per_second = rate;
    report
}

/// Records every swept account before the segments (a swept account is recorded as of its
/// creation, before any event can use it), checking each file like a segment's; returns how
/// many were read.
async fn record_swept(
    lake: &Lake,
    lake_cluster: Option<u128>,
    replay: &mut Replay,
    findings: &mut Findings,
) -> usize {
    let files: Vec<SweptInfo> = match lake.list_swept().await {
        Ok(files) => files,
        Err(e) => {
            findings.push(Problem::Listing {
                reason: e.to_string(),
            });
            return 0;
        }
    };
    for w in files.windows(2) {
        if w[0].last_timestamp >= w[1].first_timestamp {
            findings.push(Problem::SegmentsOverlap {
                segment: w[1].path.to_string(),
                previous: w[0].path.to_string(),
            });
        }
    }
    let mut count = 0;
    for file in &files {
        let name = file.path.to_string();
        match lake.read_swept_audited(file).await {
            Ok((meta, accounts)) => {
                check_file_meta(&name, &meta, lake_cluster, findings);
                for a in &accounts {
                    replay.record_account(a, &name, findings);
                }
                count += accounts.len();
            }
            Err(e) => findings.push(Problem::SegmentUnreadable {
                segment: name,
                error: e.to_string(),
            }),
        }
    }
    count
}

/// Segment names are sorted by first timestamp; each must start after every earlier one ends.
fn check_overlaps(segments: &[SegmentInfo], findings: &mut Findings) {
    let mut furthest: Option<&SegmentInfo> = None;
    for seg in segments {
        if let Some(prev) = furthest.filter(|p| p.last_timestamp >= seg.first_timestamp) {
            findings.push(Problem::SegmentsOverlap {
                segment: seg.transfers_path.to_string(),
                previous: prev.transfers_path.to_string(),
            });
        }
        if furthest.is_none_or(|p| seg.last_timestamp > p.last_timestamp) {
            furthest = Some(seg);
        }
    }
}

fn check_file_meta(
    name: &str,
    meta: &AuditedFileMeta,
    lake_cluster: Option<u128>,
    findings: &mut Findings,
) {
    if !(1..=FORMAT_VERSION).contains(&meta.format_version) {
        findings.push(Problem::WrongFileMeta {
            segment: name.to_string(),
            reason: format!("unknown format version {}", meta.format_version),
        });
    }
    if let Some(cluster) = lake_cluster.filter(|&c| c != meta.cluster_id) {
        findings.push(Problem::WrongFileMeta {
            segment: name.to_string(),
            reason: format!(
                "written for cluster {}, the lake is cluster {cluster}",
                meta.cluster_id
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::path::Path;

    fn seg(first: u64, last: u64) -> SegmentInfo {
        SegmentInfo {
            date: "1970-01-01".into(),
            first_timestamp: first,
            last_timestamp: last,
            transfers_path: Path::from(format!("t/{first}-{last}")),
            accounts_path: None,
            transfers_bytes: 0,
            accounts_bytes: 0,
        }
    }

    /// A foreign commit and an object no commit names: both are verify problems naming their
    /// file and version, and the report carries each table's head digest.
    #[tokio::test]
    async fn chain_problems_are_verify_problems_and_heads_are_reported() {
        use crate::audit::progress::NoProgress;
        use crate::lake::chain::{sha256_hex, ChainCheck};
        use object_store::memory::InMemory;
        use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
        use std::sync::Arc;

        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let commit = b"{\"commitInfo\":{\"operation\":\"WRITE\"}}\n".to_vec();
        let commit_path = Path::from("transfers/_delta_log/00000000000000000000.json");
        store
            .put(&commit_path, PutPayload::from(commit.clone()))
            .await
            .unwrap();
        let stray = Path::from("accounts/date=2026-11-21/x.parquet");
        store
            .put(&stray, PutPayload::from(b"PAR1".to_vec()))
            .await
            .unwrap();
        let lake = Lake::from_store(store, "memory");
        let report = verify(&lake, &NoProgress).await;
        assert!(!report.ok);
        assert!(report.chain_checked);
        let chain: Vec<_> = report
            .problems
            .iter()
            .filter_map(|p| match p {
                Problem::Chain(c) => Some((c.table.as_str(), c.version, c.check, c.file.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            chain,
            vec![
                (
                    "transfers",
                    Some(0),
                    ChainCheck::NotChained,
                    commit_path.to_string()
                ),
                (
                    "accounts",
                    None,
                    ChainCheck::FileUnreferenced,
                    stray.to_string()
                ),
            ]
        );
        // They come first, before what the other checks find.
        assert!(matches!(report.problems[0], Problem::Chain(_)));
        assert!(matches!(report.problems[1], Problem::Chain(_)));
        assert_eq!(report.chain.len(), 3);
        assert_eq!(report.chain[0].head_version, Some(0));
        assert_eq!(report.chain[0].head_sha256, Some(sha256_hex(&commit)));
        assert_eq!(report.chain[1].head_sha256, None);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["problems"][0]["kind"], "chain");
        assert_eq!(json["problems"][0]["check"], "not_chained");
        assert_eq!(json["problems"][0]["version"], "0");
        assert_eq!(json["problems"][0]["file"], commit_path.to_string());
        assert_eq!(json["chain"][0]["head_sha256"], sha256_hex(&commit));
        let text = report.problems[0].to_string();
        assert!(
            text.contains("transfers version 0: transfers/_delta_log/00000000000000000000.json"),
            "{text}"
        );
    }

    /// A lake without a log anywhere (format 1) is not chain-checked.
    #[tokio::test]
    async fn a_lake_without_a_log_is_not_chain_checked() {
        use crate::audit::progress::NoProgress;
        let lake = Lake::open("memory://").await.unwrap();
        let report = verify(&lake, &NoProgress).await;
        assert!(!report.chain_checked);
        assert!(report.chain.is_empty());
        assert!(!report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Chain(_))));
    }

    #[test]
    fn overlaps_are_found_even_behind_a_long_segment() {
        let mut f = Findings::default();
        check_overlaps(
            &[seg(1, 100), seg(10, 20), seg(30, 40), seg(101, 102)],
            &mut f,
        );
        let names: Vec<String> = f
            .problems
            .iter()
            .map(|p| match p {
                Problem::SegmentsOverlap { segment, previous } => format!("{segment}<{previous}"),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, vec!["t/10-20<t/1-100", "t/30-40<t/1-100"]);
        let mut f = Findings::default();
        check_overlaps(&[seg(1, 5), seg(6, 6), seg(7, 9)], &mut f);
        assert_eq!(f.total, 0);
    }
}
