//! `ledgerlake drill`: the restore test. Rebuilds the lake into a fresh target (given by its
//! addresses, or a throwaway replica the drill formats and starts itself), as of a moment, then
//! compares the target with the lake as of that moment (`compare`) and reports pass or fail, the
//! time to recover it measured (RTO: from the start of the drill to a target holding the rebuilt
//! ledger, the throwaway replica's start included) and every difference.
//!
//! `compare_only` skips the rebuild: it checks a target a drill (or a rebuild) filled before, so
//! a target changed since is caught. The semantics are in docs/DRILL.md.

pub mod compare;
pub mod replica;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};

use crate::lake::{Lake, LakeError};
use crate::rebuild::execute::Progress;
use crate::rebuild::plan::{PlanError, Until};
use crate::rebuild::report::Report;
use crate::rebuild::target::{self, TargetAddress, TargetError};
use crate::rebuild::{self as rebuild_mod, RebuildError, RebuildOptions};
use crate::tb::ClusterError;
use crate::timefmt::rfc3339;
use compare::Comparison;
use replica::{ReplicaError, ThrowawayReplica};

/// Where the drill rebuilds.
#[derive(Debug, Clone)]
pub enum DrillTarget {
    /// A cluster the operator started (it must be empty unless `compare_only`).
    Addresses {
        addresses: String,
        /// `None`: the lake's cluster id.
        cluster_id: Option<u128>,
    },
    /// A replica the drill formats and starts from this `tigerbeetle` binary, and removes after.
    Throwaway { binary: PathBuf },
}

/// What a drill needs, validated.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub lake: String,
    pub target: DrillTarget,
    pub until: Until,
    /// Compare the target with the lake without rebuilding first.
    pub compare_only: bool,
    /// Transfers whose every field is compared before the drill samples.
    pub transfers_compared_max: u64,
    pub batch_events_max: usize,
    pub reply_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("--{name}: {reason}")]
    Option { name: &'static str, reason: String },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(
        "{location} is not a lake: it has no _ledgerlake.json (nothing was ever exported there)"
    )]
    NotALake { location: String },
    #[error(transparent)]
    Rebuild(Box<RebuildError>),
    #[error(transparent)]
    Plan(PlanError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(
        "the drill's target at {addresses} already holds {accounts} accounts and {transfers} \
         transfers: a drill rebuilds into a fresh cluster (or pass --compare-only to check what \
         it holds)"
    )]
    TargetNotFresh {
        addresses: String,
        accounts: u64,
        transfers: u64,
    },
}

impl From<RebuildError> for DrillError {
    fn from(error: RebuildError) -> DrillError {
        DrillError::Rebuild(Box::new(error))
    }
}

/// The target a drill used.
#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct TargetLine {
    pub addresses: String,
    #[serde_as(as = "DisplayFromStr")]
    pub cluster_id: u128,
    /// Formatted and started by the drill, removed after it.
    pub throwaway: bool,
}

/// What a drill tells its operator (JSON for schedulers: every u64 and u128 a decimal string).
#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub lake: String,
    #[serde_as(as = "DisplayFromStr")]
    pub lake_cluster_id: u128,
    #[serde_as(as = "DisplayFromStr")]
    pub until: u64,
    pub until_time: String,
    pub target: TargetLine,
    /// The target agrees with the lake.
    pub passed: bool,
    /// Time to recover: from the drill's start to a target holding the rebuilt ledger (the
    /// throwaway replica's start included). `None` with `compare_only`.
    pub rto_s: Option<f64>,
    pub replica_start_s: Option<f64>,
    pub rebuild_s: Option<f64>,
    pub compare_s: f64,
    /// The rebuild's own report (`None` with `compare_only`).
    pub rebuild: Option<Report>,
    pub comparison: Comparison,
}

/// Runs a drill. `progress` sees the rebuild's progress.
pub async fn drill(
    options: &DrillOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<DrillReport, DrillError> {
    if options.transfers_compared_max == 0 {
        return Err(DrillError::Option {
            name: "transfers-compared-max",
            reason: "must be at least 1".into(),
        });
    }
    let start = Instant::now();
    let lake = Lake::open(&options.lake).await?;
    let meta = lake
        .read_meta()
        .await?
        .ok_or_else(|| DrillError::NotALake {
            location: options.lake.clone(),
        })?;
    let (replica, addresses, cluster_id) = match &options.target {
        DrillTarget::Addresses {
            addresses,
            cluster_id,
        } => (
            None,
            addresses.clone(),
            cluster_id.unwrap_or(meta.cluster_id),
        ),
        DrillTarget::Throwaway { binary } => {
            let r = ThrowawayReplica::start(binary, meta.cluster_id).await?;
            let address = r.address.clone();
            (Some(r), address, meta.cluster_id)
        }
    };
    let replica_start = replica.as_ref().map(|r| r.started_in);
    let mut rebuild_options = RebuildOptions {
        lake: options.lake.clone(),
        addresses: Some(addresses.clone()),
        cluster_id,
        lake_cluster_id: Some(meta.cluster_id),
        until: options.until,
        ledgers: None,
        dry_run: false,
        batch_events_max: options.batch_events_max,
        reply_timeout: options.reply_timeout,
    };
    let at = TargetAddress {
        addresses: addresses.clone(),
        cluster_id,
        reply_timeout: options.reply_timeout,
    };
    let cluster = target::connect(&at)?;
    let mut rebuild_s = None;
    let report = if options.compare_only {
        None
    } else {
        let state = target::inspect(&cluster).await?;
        if !state.is_fresh() {
            return Err(DrillError::TargetNotFresh {
                addresses,
                accounts: state.accounts,
                transfers: state.transfers,
            });
        }
        let rebuild_start = Instant::now();
        let report = rebuild_mod::rebuild(&rebuild_options, [], progress).await?;
        rebuild_s = Some(rebuild_start.elapsed().as_secs_f64());
        // The comparison is as of the moment the rebuild resolved, even if the lake grew since.
        rebuild_options.until = Until::At(report.plan.until);
        Some(report)
    };
    let rto_s = report.as_ref().map(|_| start.elapsed().as_secs_f64());
    let compare_start = Instant::now();
    let prepared = rebuild_mod::prepare(&lake, &rebuild_options, []).await?;
    let until = prepared.until;
    let comparison =
        compare::compare(&lake, &prepared, &cluster, options.transfers_compared_max).await?;
    let compare_s = compare_start.elapsed().as_secs_f64();
    drop(cluster);
    if let Some(r) = replica {
        let _ = tokio::task::spawn_blocking(move || drop(r)).await;
    }
    Ok(DrillReport {
        lake: options.lake.clone(),
        lake_cluster_id: meta.cluster_id,
        until,
        until_time: rfc3339(until),
        target: TargetLine {
            addresses: at.addresses,
            cluster_id,
            throwaway: matches!(options.target, DrillTarget::Throwaway { .. }),
        },
        passed: comparison.passed(),
        rto_s,
        replica_start_s: replica_start.map(|d| d.as_secs_f64()),
        rebuild_s,
        compare_s,
        rebuild: report,
        comparison,
    })
}
