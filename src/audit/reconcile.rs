//! `ledgerlake reconcile`: compares the lake with the live cluster as of the lake's last event
//! timestamp T, and lists every difference (account, field, lake value, cluster value).
//!
//! - `history` accounts: the cluster's balances as of T (`get_account_balances`), exactly —
//!   at the account's last transfer by T, since TigerBeetle's balance history lists transfers
//!   only, not expiries (the lake's balances after a later expiry are checked by `verify`).
//! - other accounts: the cluster only has current balances. If they differ from the lake's,
//!   the lake may just be behind: reconcile waits (bounded by `--wait`) while the exporter
//!   catches up, re-reading new segments. What still differs is either *moved since* (the
//!   cluster has a transfer after T, or a pending transfer open at T can have expired) or a
//!   plain difference.
//! - accounts in the lake but not the cluster, and accounts of the cluster created by T with
//!   movements by T that the lake does not hold.
//!
//! Immutable fields (ledger, code, user data, creation timestamp, flags but `closed`) are
//! compared too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};

use super::effect::{Balances, BALANCE_FIELDS};
use super::progress::{Progress, ReadProgress};
use super::state::{LakeState, Selection, StateError};
use crate::lake::{AccountRecord, Lake, LakeError};
use crate::tb::flags::account::{CLOSED as FLAG_CLOSED, HISTORY as FLAG_HISTORY};
use crate::tb::{Cluster, ClusterAccount, ClusterError};
use crate::timefmt::rfc3339;

/// Per-account cluster requests in flight.
pub const CLUSTER_REQUESTS_IN_FLIGHT: usize = 16;
/// How often the lake is re-listed while waiting for it to catch up.
pub const CATCH_UP_POLL: Duration = Duration::from_millis(500);

/// What `reconcile` needs, validated.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub lake: String,
    /// The cluster's replica addresses.
    pub addresses: String,
    /// Must be the lake's.
    pub cluster_id: u128,
    /// How long to wait for the lake to catch up with accounts that moved since its last event.
    pub wait: Duration,
    /// Timeout of each request to the cluster.
    pub request_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("the lake at {lake} was never bound to a cluster (no _ledgerlake.json)")]
    NotBound { lake: String },
    #[error("the lake belongs to cluster {lake}, not {requested}")]
    ClusterMismatch { lake: u128, requested: u128 },
    #[error("the lake at {lake} holds no events")]
    EmptyLake { lake: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// The values differ as of the lake's last timestamp.
    Differs,
    /// A non-history account that moved after the lake's last event and that the lake did
    /// not catch up with while reconcile waited.
    MovedSince,
    /// The cluster has movements by the lake's last timestamp of an account the lake lacks.
    MissingFromLake,
    /// The lake has an account the cluster does not.
    MissingFromCluster,
}

#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Difference {
    #[serde_as(as = "DisplayFromStr")]
    pub account: u128,
    pub kind: DifferenceKind,
    pub field: &'static str,
    pub lake: Option<String>,
    pub cluster: Option<String>,
}

#[serde_as]
#[derive(Debug, Serialize)]
pub struct ReconcileReport {
    pub lake: String,
    #[serde_as(as = "DisplayFromStr")]
    pub cluster_id: u128,
    /// T: the comparison is as of this timestamp.
    #[serde_as(as = "DisplayFromStr")]
    pub lake_last_timestamp: u64,
    pub lake_last_time: String,
    pub accounts_in_lake: usize,
    pub accounts_in_cluster: usize,
    /// Compared as of T through `get_account_balances`.
    pub history_accounts_compared: usize,
    /// Compared through their current balances.
    pub other_accounts_compared: usize,
    /// Cluster accounts with no movement by T (the lake has no event of them, rightly).
    pub accounts_without_events: usize,
    #[serde_as(as = "DisplayFromStr")]
    pub waited_ms: u64,
    pub ok: bool,
    pub differences: Vec<Difference>,
}

/// Opens the lake, connects to the cluster and compares them.
pub async fn run(
    options: &ReconcileOptions,
    progress: &dyn ReadProgress,
) -> Result<ReconcileReport, ReconcileError> {
    let lake = Lake::open(&options.lake).await?;
    let cluster = Cluster::connect(
        options.cluster_id,
        &options.addresses,
        options.request_timeout,
    )?;
    reconcile(&lake, &cluster, options.cluster_id, options.wait, progress).await
}

/// Compares the lake with the cluster. `wait` bounds the time spent waiting for the lake to
/// catch up with non-history accounts that moved since its last event.
pub async fn reconcile(
    lake: &Lake,
    cluster: &Cluster,
    cluster_id: u128,
    wait: Duration,
    progress: &dyn ReadProgress,
) -> Result<ReconcileReport, ReconcileError> {
    let location = lake.location().to_string();
    let meta = lake
        .read_meta()
        .await?
        .ok_or_else(|| ReconcileError::NotBound {
            lake: location.clone(),
        })?;
    if meta.cluster_id != cluster_id {
        return Err(ReconcileError::ClusterMismatch {
            lake: meta.cluster_id,
            requested: cluster_id,
        });
    }
    let started = Instant::now();
    let mut state = LakeState::default();
    let mut applied = 0;
    let mut accounts: HashMap<u128, ClusterAccount> = cluster
        .all_accounts()
        .await?
        .into_iter()
        .map(|a| (a.account.id, a))
        .collect();
    loop {
        let segments = lake.list_segments().await?;
        let mut p = Progress::new("reconcile: reading the lake", segments.len(), progress);
        state
            .advance(
                lake,
                &segments[applied..],
                u64::MAX,
                &Selection::default(),
                &mut p,
            )
            .await?;
        applied = segments.len();
        let lagging = lagging_accounts(&state, &accounts);
        if lagging.is_empty() || started.elapsed() >= wait {
            break;
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
        for a in cluster.lookup(&lagging).await? {
            accounts.insert(a.account.id, a);
        }
    }
    let through = state.through.ok_or_else(|| ReconcileError::EmptyLake {
        lake: location.clone(),
    })?;
    let waited_ms = started.elapsed().as_millis() as u64;
    // Accounts the lake gained while waiting may be newer than the first cluster listing.
    let unlisted: Vec<u128> = state
        .accounts
        .keys()
        .filter(|id| !accounts.contains_key(id))
        .copied()
        .collect();
    for a in cluster.lookup(&unlisted).await? {
        accounts.insert(a.account.id, a);
    }
    let mut report = ReconcileReport {
        lake: location,
        cluster_id,
        lake_last_timestamp: through,
        lake_last_time: rfc3339(through),
        accounts_in_lake: state.accounts.len(),
        accounts_in_cluster: accounts.len(),
        history_accounts_compared: 0,
        other_accounts_compared: 0,
        accounts_without_events: 0,
        waited_ms,
        ok: false,
        differences: Vec::new(),
    };
    compare(&state, &accounts, cluster, through, &mut report).await?;
    report.differences.sort();
    report.ok = report.differences.is_empty();
    Ok(report)
}

/// Non-history accounts whose current cluster balances are not the lake's latest.
fn lagging_accounts(state: &LakeState, accounts: &HashMap<u128, ClusterAccount>) -> Vec<u128> {
    state
        .accounts
        .values()
        .filter_map(|l| {
            let c = accounts.get(&l.id)?;
            (c.account.flags & FLAG_HISTORY == 0 && c.balances != l.balances).then_some(l.id)
        })
        .collect()
}

/// What one account contributes to the report.
enum Outcome {
    History(Vec<Difference>),
    Other(Vec<Difference>),
    WithoutEvents,
    Skipped,
}

async fn compare(
    state: &LakeState,
    accounts: &HashMap<u128, ClusterAccount>,
    cluster: &Cluster,
    through: u64,
    report: &mut ReconcileReport,
) -> Result<(), ReconcileError> {
    for l in state.accounts.values() {
        if !accounts.contains_key(&l.id) {
            report.differences.push(Difference {
                account: l.id,
                kind: DifferenceKind::MissingFromCluster,
                field: "account",
                lake: Some("present".to_string()),
                cluster: None,
            });
        }
    }
    let outcomes: Vec<Outcome> = stream::iter(accounts.values())
        .map(|c| compare_account(state, c, cluster, through))
        .buffer_unordered(CLUSTER_REQUESTS_IN_FLIGHT)
        .try_collect()
        .await?;
    for outcome in outcomes {
        match outcome {
            Outcome::History(d) => {
                report.history_accounts_compared += 1;
                report.differences.extend(d);
            }
            Outcome::Other(d) => {
                report.other_accounts_compared += 1;
                report.differences.extend(d);
            }
            Outcome::WithoutEvents => report.accounts_without_events += 1,
            Outcome::Skipped => {}
        }
    }
    Ok(())
}

async fn compare_account(
    state: &LakeState,
    c: &ClusterAccount,
    cluster: &Cluster,
    through: u64,
) -> Result<Outcome, ClusterError> {
    let history = c.account.flags & FLAG_HISTORY != 0;
    let Some(l) = state.accounts.get(&c.account.id) else {
        if c.account.timestamp > through {
            return Ok(Outcome::Skipped); // created after the lake's horizon
        }
        let cluster_balances = if history {
            cluster
                .balances_at(c.account.id, through)
                .await?
                .map(|(_, b)| b)
        } else if cluster.has_transfer_in(c.account.id, 0, through).await? {
            Some(c.balances)
        } else {
            None
        };
        return Ok(match cluster_balances {
            None => Outcome::WithoutEvents,
            Some(b) => Outcome::Other(balance_differences(
                c.account.id,
                DifferenceKind::MissingFromLake,
                &Balances::default(),
                &b,
                true,
            )),
        });
    };
    let mut differences = state
        .records
        .get(&c.account.id)
        .map(|r| immutable_differences(r, c))
        .unwrap_or_default();
    if history {
        // Compared at the account's last transfer by T (expiries after it are not in the
        // cluster's balance history; `verify` checks them against the chain).
        let (timestamp, at_t) = cluster
            .balances_at(c.account.id, through)
            .await?
            .unwrap_or_default();
        differences.extend(balance_differences(
            c.account.id,
            DifferenceKind::Differs,
            &l.last_transfer_balances,
            &at_t,
            false,
        ));
        if timestamp != l.last_transfer_timestamp {
            differences.push(Difference {
                account: c.account.id,
                kind: DifferenceKind::Differs,
                field: "last_transfer_timestamp",
                lake: Some(l.last_transfer_timestamp.to_string()),
                cluster: Some(timestamp.to_string()),
            });
        }
        return Ok(Outcome::History(differences));
    }
    if l.balances != c.balances {
        let moved = state.may_expire(c.account.id)
            || cluster
                .has_transfer_in(c.account.id, through + 1, 0)
                .await?;
        let kind = if moved {
            DifferenceKind::MovedSince
        } else {
            DifferenceKind::Differs
        };
        differences.extend(balance_differences(
            c.account.id,
            kind,
            &l.balances,
            &c.balances,
            false,
        ));
    }
    Ok(Outcome::Other(differences))
}

fn balance_differences(
    account: u128,
    kind: DifferenceKind,
    lake: &Balances,
    cluster: &Balances,
    lake_absent: bool,
) -> Vec<Difference> {
    BALANCE_FIELDS
        .iter()
        .zip(lake.values().into_iter().zip(cluster.values()))
        .filter(|(_, (l, c))| l != c)
        .map(|(&field, (l, c))| Difference {
            account,
            kind,
            field,
            lake: (!lake_absent).then(|| l.to_string()),
            cluster: Some(c.to_string()),
        })
        .collect()
}

fn immutable_differences(r: &AccountRecord, c: &ClusterAccount) -> Vec<Difference> {
    let pairs: [(&'static str, String, String); 7] = [
        ("ledger", r.ledger.to_string(), c.account.ledger.to_string()),
        ("code", r.code.to_string(), c.account.code.to_string()),
        (
            "flags",
            (r.flags & !FLAG_CLOSED).to_string(),
            (c.account.flags & !FLAG_CLOSED).to_string(),
        ),
        (
            "user_data_128",
            r.user_data_128.to_string(),
            c.account.user_data_128.to_string(),
        ),
        (
            "user_data_64",
            r.user_data_64.to_string(),
            c.account.user_data_64.to_string(),
        ),
        (
            "user_data_32",
            r.user_data_32.to_string(),
            c.account.user_data_32.to_string(),
        ),
        (
            "timestamp",
            r.timestamp.to_string(),
            c.account.timestamp.to_string(),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, l, c)| l != c)
        .map(|(field, l, c)| Difference {
            account: r.id,
            kind: DifferenceKind::Differs,
            field,
            lake: Some(l),
            cluster: Some(c),
        })
        .collect()
}
