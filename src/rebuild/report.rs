//! What a rebuild tells its operator: the plan (all `--dry-run` prints), then what the run did
//! (the CLI renders it as a table for people or JSON for scripts).
//!
//! Every u64 and u128 (ids, amounts, timestamps, counts) is a decimal string in JSON, as in the
//! lake, because most JSON parsers round numbers above 2^53.
//! Lists are capped at [`LIST_MAX`] entries; their totals are always given.

use std::time::Duration;

use serde::Serialize;
use serde_with::{serde_as, DisplayFromStr};

use super::execute::Replayed;
use super::plan::{ChainCutReason, EXPIRY_VOID_ID_XOR};
use super::RebuildPlan;
use crate::cdc::EventCounts;
use crate::timefmt::rfc3339;

/// The most entries of one list a report prints.
pub const LIST_MAX: usize = 1000;

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plan: PlanReport,
    /// Absent for a dry run.
    pub run: Option<RunReport>,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub lake: String,
    pub lake_cluster_id: String,
    pub target_cluster_id: String,
    #[serde_as(as = "DisplayFromStr")]
    pub lake_first_timestamp: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub lake_last_timestamp: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub until: u64,
    pub until_time: String,
    pub ledgers: Option<Vec<u32>>,
    pub segments_in_lake: usize,
    pub segments_to_read: usize,
    #[serde_as(as = "DisplayFromStr")]
    pub accounts: u64,
    /// Events replayed, by type (an expiry is replayed as a void).
    pub events: EventCounts,
    /// Transfers created: one per event.
    #[serde_as(as = "DisplayFromStr")]
    pub transfers: u64,
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub first_timestamp: Option<u64>,
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub last_timestamp: Option<u64>,
    #[serde_as(as = "DisplayFromStr")]
    pub account_batches: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub transfer_batches: u64,
    pub deviations: Deviations,
    /// Pending transfers neither posted, voided nor expired at `--until`.
    pub open_pending_total: usize,
    pub open_pending: Vec<OpenPendingLine>,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct Deviations {
    /// Every account and transfer carries `flags.imported` (TigerBeetle requires it to keep the
    /// original timestamps).
    pub imported_flag: bool,
    /// Accounts recorded as `closed`, created open (the replayed closing transfer closes them).
    #[serde_as(as = "DisplayFromStr")]
    pub accounts_closed_flag_dropped: u64,
    /// Accounts created in a linked chain, created alone.
    #[serde_as(as = "DisplayFromStr")]
    pub accounts_linked_flag_dropped: u64,
    /// Pending transfers replayed with `timeout = 0`.
    pub timeouts_zeroed_total: usize,
    pub timeouts_zeroed: Vec<ZeroedTimeoutLine>,
    /// Voids added, each standing for a `two_phase_expired` event.
    pub expiry_voids_total: usize,
    pub expiry_void_id: String,
    pub expiry_voids: Vec<ExpiryVoidLine>,
    /// Transfers replayed without `linked` because their chain's end is not replayed.
    pub chain_cuts: Vec<ChainCutLine>,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct ZeroedTimeoutLine {
    pub transfer_id: String,
    #[serde_as(as = "DisplayFromStr")]
    pub timestamp: u64,
    pub timeout_s: u32,
    #[serde_as(as = "DisplayFromStr")]
    pub expires_at: u64,
    pub expires_time: String,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct ExpiryVoidLine {
    pub void_id: String,
    pub pending_id: String,
    #[serde_as(as = "DisplayFromStr")]
    pub timestamp: u64,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct ChainCutLine {
    pub transfer_id: String,
    #[serde_as(as = "DisplayFromStr")]
    pub timestamp: u64,
    /// `until` or `ledger_filter`.
    pub reason: &'static str,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct OpenPendingLine {
    pub transfer_id: String,
    #[serde_as(as = "DisplayFromStr")]
    pub timestamp: u64,
    pub amount: String,
    pub ledger: u32,
    /// The source's timeout, dropped in the target (0: it had none).
    pub timeout_s: u32,
    #[serde_as(as = "Option<DisplayFromStr>")]
    pub expires_at: Option<u64>,
    pub expires_time: Option<String>,
}

#[serde_as]
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `fresh`, or `resumed` after what an earlier run left.
    pub target: &'static str,
    #[serde_as(as = "DisplayFromStr")]
    pub accounts_already_present: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub transfers_already_present: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub accounts_created: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub transfers_created: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub account_requests: u64,
    #[serde_as(as = "DisplayFromStr")]
    pub transfer_requests: u64,
    /// `--batch-events-max`: the most events per request asked for.
    pub batch_events_max: usize,
    /// The events per request the run used at its end: `batch_events_max`, or the target's
    /// limit if it refused larger requests.
    pub batch_events_used: usize,
    /// The target's limit, if it refused a request as too large and the search found it.
    pub batch_events_limit_learned: Option<usize>,
    /// Requests the target's client refused as too large (nothing of them was applied; they
    /// were sent again in smaller ones).
    #[serde_as(as = "DisplayFromStr")]
    pub requests_refused_too_large: u64,
    /// Reading the lake's accounts and listing its segments.
    pub plan_s: f64,
    /// Inspecting the target (and, to resume, counting what it holds).
    pub inspect_s: f64,
    /// The replay proper: reading the transfers (once), building and sending the requests.
    pub replay_s: f64,
    /// Objects created per second of replay.
    pub events_per_second: f64,
}

/// How long each phase of a run took.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub plan: Duration,
    pub inspect: Duration,
    pub replay: Duration,
}

impl PlanReport {
    pub fn new(plan: &RebuildPlan) -> PlanReport {
        let s = &plan.summary;
        let t = &s.transfers;
        let open: Vec<_> = t.open_pending.values().collect();
        PlanReport {
            lake: plan.lake.clone(),
            lake_cluster_id: plan.lake_cluster_id.to_string(),
            target_cluster_id: plan.target_cluster_id.to_string(),
            lake_first_timestamp: plan.range.first,
            lake_last_timestamp: plan.range.last,
            until: plan.until,
            until_time: rfc3339(plan.until),
            ledgers: plan.ledgers.as_ref().map(|l| l.iter().copied().collect()),
            segments_in_lake: plan.segments_in_lake,
            segments_to_read: plan.segments.len(),
            accounts: s.accounts,
            events: t.events,
            transfers: s.transfers_created,
            first_timestamp: s.first_timestamp,
            last_timestamp: s.last_timestamp,
            account_batches: s.account_batches,
            transfer_batches: s.transfer_batches,
            deviations: Deviations {
                imported_flag: true,
                accounts_closed_flag_dropped: s.account_deviations.closed_dropped,
                accounts_linked_flag_dropped: s.account_deviations.linked_dropped,
                timeouts_zeroed_total: t.timeouts_zeroed.len(),
                timeouts_zeroed: t
                    .timeouts_zeroed
                    .iter()
                    .take(LIST_MAX)
                    .map(|z| ZeroedTimeoutLine {
                        transfer_id: z.transfer_id.to_string(),
                        timestamp: z.timestamp,
                        timeout_s: z.timeout_s,
                        expires_at: z.expires_at,
                        expires_time: rfc3339(z.expires_at),
                    })
                    .collect(),
                expiry_voids_total: t.expiry_voids.len(),
                expiry_void_id: format!(
                    "pending_id XOR {EXPIRY_VOID_ID_XOR:#034x} (\"ledgerlake:void!\")"
                ),
                expiry_voids: t
                    .expiry_voids
                    .iter()
                    .take(LIST_MAX)
                    .map(|v| ExpiryVoidLine {
                        void_id: v.void_id.to_string(),
                        pending_id: v.pending_id.to_string(),
                        timestamp: v.timestamp,
                    })
                    .collect(),
                chain_cuts: t
                    .chain_cuts
                    .iter()
                    .take(LIST_MAX)
                    .map(|c| ChainCutLine {
                        transfer_id: c.transfer_id.to_string(),
                        timestamp: c.timestamp,
                        reason: match c.reason {
                            ChainCutReason::Until => "until",
                            ChainCutReason::LedgerFilter => "ledger_filter",
                        },
                    })
                    .collect(),
            },
            open_pending_total: open.len(),
            open_pending: open
                .into_iter()
                .take(LIST_MAX)
                .map(|p| OpenPendingLine {
                    transfer_id: p.transfer_id.to_string(),
                    timestamp: p.timestamp,
                    amount: p.amount.to_string(),
                    ledger: p.ledger,
                    timeout_s: p.timeout_s,
                    expires_at: p.expires_at,
                    expires_time: p.expires_at.map(rfc3339),
                })
                .collect(),
        }
    }
}

impl RunReport {
    pub fn new(fresh: bool, batch_events_max: usize, r: &Replayed, t: Timings) -> RunReport {
        let created = r.accounts_created + r.transfers_created;
        RunReport {
            target: if fresh { "fresh" } else { "resumed" },
            accounts_already_present: r.skipped.accounts,
            transfers_already_present: r.skipped.transfers,
            accounts_created: r.accounts_created,
            transfers_created: r.transfers_created,
            account_requests: r.account_requests,
            transfer_requests: r.transfer_requests,
            batch_events_max,
            batch_events_used: if r.sizer.was_refused() {
                r.sizer.size()
            } else {
                batch_events_max
            },
            batch_events_limit_learned: r.sizer.learned(),
            requests_refused_too_large: r.sizer.refusals,
            plan_s: t.plan.as_secs_f64(),
            inspect_s: t.inspect.as_secs_f64(),
            replay_s: t.replay.as_secs_f64(),
            events_per_second: created as f64 / t.replay.as_secs_f64().max(1e-9),
        }
    }
}
