//! `ledgerlake balances`: every account's balances as of any moment, from the lake alone —
//! each account's balances are those its last event at or before the moment carries (events
//! carry balances *after* themselves). Segments after the moment are never opened.

use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};

use super::effect::Balances;
use super::progress::{Progress, ReadProgress};
use super::state::{AccountAsOf, LakeState, Selection, StateError};
use crate::lake::{Lake, LakeError, SegmentInfo};
use crate::timefmt::{rfc3339, Moment};

/// What `balances` needs, validated.
#[derive(Debug, Clone)]
pub struct BalancesOptions {
    pub lake: String,
    /// Inclusive: an event at exactly this moment counts.
    pub at: Moment,
    pub selection: Selection,
    /// Read the lake as it stood at this `transfers` table version (`None`: the latest).
    pub lake_version: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BalancesError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the lake at {lake} holds no events")]
    EmptyLake { lake: String },
    #[error(
        "--at {at} ({}) is after the lake's last event at {last} ({}): the lake cannot know \
         what happened since; use --at latest (= {last}) or wait for the exporter",
        rfc3339(*at), rfc3339(*last)
    )]
    AtAfterLake { at: u64, last: u64 },
}

#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountBalance {
    #[serde_as(as = "DisplayFromStr")]
    pub account: u128,
    pub ledger: u32,
    #[serde(flatten)]
    pub balances: Balances,
    pub flags: u16,
    /// The event whose balances these are.
    #[serde_as(as = "DisplayFromStr")]
    pub as_of_timestamp: u64,
    pub as_of_time: String,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct BalancesReport {
    pub lake: String,
    #[serde_as(as = "DisplayFromStr")]
    pub at: u64,
    pub at_time: String,
    #[serde_as(as = "DisplayFromStr")]
    pub lake_last_timestamp: u64,
    pub segments_read: usize,
    pub accounts: Vec<AccountBalance>,
    /// Requested accounts with no event at or before `at` (their balances were zero, or they
    /// did not exist).
    #[serde(with = "super::json::vec_dec")]
    pub without_events: Vec<u128>,
}

/// Opens the lake and reads the balances the options select.
pub async fn run(
    options: &BalancesOptions,
    progress: &dyn ReadProgress,
) -> Result<BalancesReport, BalancesError> {
    let mut lake = Lake::open(&options.lake).await?;
    if let Some(version) = options.lake_version {
        lake = lake.at_version(version);
    }
    balances_as_of(&lake, options.at, &options.selection, progress).await
}

/// Balances of the selected accounts as of `at`, sorted by ledger then account.
pub async fn balances_at(
    lake: &Lake,
    at: u64,
    selection: &Selection,
    progress: &dyn ReadProgress,
) -> Result<BalancesReport, BalancesError> {
    balances_as_of(lake, Moment::At(at), selection, progress).await
}

/// Balances of the selected accounts as of `at` (`latest`: the lake's last event), sorted by
/// ledger then account.
pub async fn balances_as_of(
    lake: &Lake,
    at: Moment,
    selection: &Selection,
    progress: &dyn ReadProgress,
) -> Result<BalancesReport, BalancesError> {
    let segments: Vec<SegmentInfo> = lake.list_segments().await?;
    let last =
        segments
            .last()
            .map(|s| s.last_timestamp)
            .ok_or_else(|| BalancesError::EmptyLake {
                lake: lake.location().to_string(),
            })?;
    let at = match at {
        Moment::Latest => last,
        Moment::At(at) if at > last => return Err(BalancesError::AtAfterLake { at, last }),
        Moment::At(at) => at,
    };
    let mut state = LakeState::default();
    let mut progress = Progress::new("balances", segments.len(), progress);
    state
        .advance(lake, &segments, at, selection, &mut progress)
        .await?;
    progress.finish(state.segments_read, state.events_read);
    let mut accounts: Vec<AccountBalance> = state.accounts.values().map(line).collect();
    accounts.sort_by_key(|a| (a.ledger, a.account));
    let without_events = selection
        .accounts
        .iter()
        .filter(|id| !state.accounts.contains_key(id))
        .copied()
        .collect();
    Ok(BalancesReport {
        lake: lake.location().to_string(),
        at,
        at_time: rfc3339(at),
        lake_last_timestamp: last,
        segments_read: state.segments_read,
        accounts,
        without_events,
    })
}

fn line(a: &AccountAsOf) -> AccountBalance {
    AccountBalance {
        account: a.id,
        ledger: a.ledger,
        balances: a.balances,
        flags: a.flags,
        as_of_timestamp: a.last_event_timestamp,
        as_of_time: rfc3339(a.last_event_timestamp),
    }
}
