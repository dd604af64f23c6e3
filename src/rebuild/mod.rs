//! `ledgerlake rebuild`: replays the lake into a fresh TigerBeetle cluster up to a chosen commit
//! timestamp, with `flags.imported` and the original timestamps, as fast as the cluster accepts.
//!
//! First the accounts and the segments to read (from the lake's accounts tables and listing),
//! then the target is inspected (`target`: fresh, or a part-way rebuild to resume), then the
//! replay (`execute`), which reads the transfers once and counts the plan (`plan`: pure, the
//! same code `--dry-run` prints) while it sends the requests (`send`: as large as the target
//! takes), then the report (`report`). The semantics and every deviation from the source are in
//! docs/REBUILD.md.

pub mod execute;
pub mod plan;
pub mod report;
pub mod send;
pub mod target;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use crate::lake::{AccountRecord, Lake, LakeError, SegmentInfo};
use execute::{ExecuteError, Progress, ReplayInput};
use plan::{LakeRange, PlanBuilder, PlanError, PlanSummary, PlannedAccount, ResumePoint, Until};
use report::{PlanReport, Report, RunReport, Timings};
use target::{TargetAddress, TargetError};

/// Accounts files read at once while planning.
const ACCOUNT_READS_IN_FLIGHT: usize = 8;
use execute::SEGMENT_READS_IN_FLIGHT;

/// What a rebuild needs, validated.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    pub lake: String,
    /// `None` only for a dry run.
    pub addresses: Option<String>,
    pub cluster_id: u128,
    pub lake_cluster_id: Option<u128>,
    pub until: Until,
    pub ledgers: Option<BTreeSet<u32>>,
    pub dry_run: bool,
    /// The most events per request; lowered to the target's limit if it refuses more.
    pub batch_events_max: usize,
    pub reply_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("--{name}: {reason}")]
    Option { name: &'static str, reason: String },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(
        "{location} is not a lake: it has no _ledgerlake.json (nothing was ever exported there)"
    )]
    NotALake { location: String },
    #[error(
        "the lake belongs to cluster {lake}, the target is cluster {target}; to rebuild it into a \
         cluster with another id, confirm with --lake-cluster-id {lake}"
    )]
    ClusterMismatch { lake: u128, target: u128 },
    #[error("--lake-cluster-id {given} does not match the lake, which belongs to cluster {lake}")]
    LakeClusterMismatch { lake: u128, given: u128 },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Execute(#[from] ExecuteError),
}

/// Everything the replay will do, computed from the lake alone.
#[derive(Debug, Clone)]
pub struct RebuildPlan {
    pub lake: String,
    pub lake_cluster_id: u128,
    pub target_cluster_id: u128,
    pub range: LakeRange,
    pub until: u64,
    pub ledgers: Option<BTreeSet<u32>>,
    pub segments_in_lake: usize,
    /// The segments the replay reads: those starting at or before `until`.
    pub segments: Vec<SegmentInfo>,
    /// Sorted by timestamp.
    pub accounts: Vec<PlannedAccount>,
    pub summary: PlanSummary,
}

impl RebuildPlan {
    /// Objects the target holds once the replay is done.
    pub fn total(&self) -> u64 {
        self.summary.accounts + self.summary.transfers_created
    }
}

/// The lake's cluster, checked against the target's.
async fn lake_cluster(lake: &Lake, options: &RebuildOptions) -> Result<u128, RebuildError> {
    let meta = lake
        .read_meta()
        .await?
        .ok_or_else(|| RebuildError::NotALake {
            location: lake.location().to_string(),
        })?;
    match options.lake_cluster_id {
        Some(given) if given != meta.cluster_id => Err(RebuildError::LakeClusterMismatch {
            lake: meta.cluster_id,
            given,
        }),
        None if meta.cluster_id != options.cluster_id => Err(RebuildError::ClusterMismatch {
            lake: meta.cluster_id,
            target: options.cluster_id,
        }),
        _ => Ok(meta.cluster_id),
    }
}

/// What a rebuild knows before it reads the transfers: the accounts and the segments.
pub struct Prepared {
    pub lake_cluster_id: u128,
    pub range: LakeRange,
    pub until: u64,
    pub segments_in_lake: usize,
    /// The segments the replay reads: those starting at or before `until`.
    pub segments: Vec<SegmentInfo>,
    /// Sorted by timestamp.
    pub accounts: Vec<PlannedAccount>,
    pub deviations: plan::AccountDeviations,
}

impl Prepared {
    /// The builder of the plan, counting only (`resume`: `None`) or for a replay.
    pub fn builder(&self, options: &RebuildOptions, resume: Option<ResumePoint>) -> PlanBuilder {
        let (until, ledgers, accounts) =
            (self.until, options.ledgers.clone(), self.accounts.clone());
        match resume {
            None => PlanBuilder::new(
                until,
                ledgers,
                accounts,
                self.deviations,
                options.batch_events_max,
            ),
            Some(resume) => PlanBuilder::for_replay(
                until,
                ledgers,
                accounts,
                self.deviations,
                options.batch_events_max,
                resume,
            ),
        }
    }

    /// The plan, once its summary is counted.
    pub fn into_plan(
        self,
        lake: &Lake,
        options: &RebuildOptions,
        summary: PlanSummary,
    ) -> RebuildPlan {
        RebuildPlan {
            lake: lake.location().to_string(),
            lake_cluster_id: self.lake_cluster_id,
            target_cluster_id: options.cluster_id,
            range: self.range,
            until: self.until,
            ledgers: options.ledgers.clone(),
            segments_in_lake: self.segments_in_lake,
            segments: self.segments,
            accounts: self.accounts,
            summary,
        }
    }
}

/// Reads the lake's accounts (both account tables: `accounts` and the sweep's
/// `swept_accounts`) and lists its segments. `extra_accounts` are records from outside the lake
/// (flags as of an event, like the `accounts` table's), merged in.
pub async fn prepare(
    lake: &Lake,
    options: &RebuildOptions,
    extra_accounts: impl IntoIterator<Item = AccountRecord>,
) -> Result<Prepared, RebuildError> {
    let cluster = lake_cluster(lake, options).await?;
    let segments = lake.list_segments().await?;
    if let Some(w) = segments
        .windows(2)
        .find(|w| w[0].last_timestamp >= w[1].first_timestamp)
    {
        return Err(LakeError::Corrupt {
            path: w[1].transfers_path.to_string(),
            reason: format!("overlaps {}", w[0].transfers_path),
        }
        .into());
    }
    let mut records: Vec<AccountRecord> = futures::stream::iter(segments.iter())
        .map(|seg| lake.read_accounts_of_cluster(seg, cluster))
        .buffered(ACCOUNT_READS_IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    records.extend(extra_accounts);
    let swept = lake.read_all_swept(Some(cluster)).await?;
    let events = segments
        .first()
        .zip(segments.last())
        .map(|(f, l)| (f.first_timestamp, l.last_timestamp));
    let all_records: Vec<AccountRecord> = records.iter().chain(&swept).copied().collect();
    let range = LakeRange::new(events, &all_records).ok_or(PlanError::EmptyLake)?;
    let until = LakeRange::resolve(Some(range), options.until)?;
    let (accounts, deviations) =
        plan::plan_accounts_with_swept(records, swept, until, options.ledgers.as_ref())?;
    let segments_in_lake = segments.len();
    let to_read: Vec<SegmentInfo> = segments
        .into_iter()
        .filter(|s| s.first_timestamp <= until)
        .collect();
    Ok(Prepared {
        lake_cluster_id: cluster,
        range,
        until,
        segments_in_lake,
        segments: to_read,
        accounts,
        deviations,
    })
}

/// Reads the lake and computes the plan (what `--dry-run` prints), writing nothing.
pub async fn plan(
    lake: &Lake,
    options: &RebuildOptions,
    extra_accounts: impl IntoIterator<Item = AccountRecord>,
) -> Result<RebuildPlan, RebuildError> {
    let prepared = prepare(lake, options, extra_accounts).await?;
    let mut builder = prepared.builder(options, None);
    let cluster = prepared.lake_cluster_id;
    let mut rows = futures::stream::iter(prepared.segments.iter())
        .map(|seg| lake.read_transfers_of_cluster(seg, cluster))
        .buffered(SEGMENT_READS_IN_FLIGHT);
    while let Some(rows) = rows.try_next().await? {
        builder.push_rows(&rows)?;
    }
    drop(rows);
    let summary = builder.finish()?;
    Ok(prepared.into_plan(lake, options, summary))
}

/// Plans, then (unless a dry run) inspects the target and replays into it, reading the lake's
/// transfers once.
pub async fn rebuild(
    options: &RebuildOptions,
    extra_accounts: impl IntoIterator<Item = AccountRecord>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, RebuildError> {
    let lake = Lake::open(&options.lake).await?;
    let Some(addresses) = options.addresses.as_ref().filter(|_| !options.dry_run) else {
        let plan = plan(&lake, options, extra_accounts).await?;
        return Ok(Report {
            plan: PlanReport::new(&plan),
            run: None,
        });
    };
    let start = Instant::now();
    let prepared = prepare(&lake, options, extra_accounts).await?;
    let planned = start.elapsed();
    let at = TargetAddress {
        addresses: addresses.clone(),
        cluster_id: options.cluster_id,
        reply_timeout: options.reply_timeout,
    };
    let start = Instant::now();
    let client = target::connect(&at)?;
    let state = target::inspect(&client).await?;
    let inspected = start.elapsed();
    state.check_until(prepared.until)?;
    let input = ReplayInput {
        lake: &lake,
        lake_cluster_id: prepared.lake_cluster_id,
        segments: &prepared.segments,
        plan: prepared.builder(options, Some(state.resume_point())),
        batch_max: options.batch_events_max,
    };
    let replayed = execute::replay(input, &client, &state, progress)
        .await
        .map_err(|e| match e {
            // A refused target is a refused target, whether found before or during the replay.
            ExecuteError::Target(e) => RebuildError::Target(e),
            e => RebuildError::Execute(e),
        })?;
    let plan = prepared.into_plan(&lake, options, replayed.summary.clone());
    Ok(Report {
        plan: PlanReport::new(&plan),
        run: Some(RunReport::new(
            state.is_fresh(),
            options.batch_events_max,
            &replayed,
            Timings {
                plan: planned,
                inspect: inspected,
                replay: start.elapsed() - inspected,
            },
        )),
    })
}
