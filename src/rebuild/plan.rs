//! The pure part of a rebuild: which objects are created, in which order, in which batches, and
//! every way they differ from the source. No I/O here: the caller feeds account records and event
//! rows (from the lake, or from tests), so the same code counts the plan and drives the replay.
//!
//! Order: one global timestamp order, accounts (by creation timestamp) interleaved with transfers
//! (by event timestamp), so that a target stopped at any batch boundary is the source as it stood
//! at some instant. A linked chain is a unit: it is never split across batches, and an account
//! whose timestamp falls inside a chain (possible only if the source itself imported events) is
//! created before the chain.

use crate::cdc::EventType;
use crate::lake::AccountRecord;
pub use crate::tb::limits::BATCH_EVENTS_MAX;

/// XORed with a pending transfer's id to give the id of the void that reproduces its expiry:
/// the 16 ASCII bytes `ledgerlake:void!`, big-endian. XOR is a bijection, so two expiries never
/// get the same void id; a clash with a transfer of the lake is checked by the plan.
pub const EXPIRY_VOID_ID_XOR: u128 = u128::from_be_bytes(*b"ledgerlake:void!");

/// The id of the void transfer that stands for the expiry of `pending_id`.
pub fn expiry_void_id(pending_id: u128) -> u128 {
    pending_id ^ EXPIRY_VOID_ID_XOR
}

/// Why a plan cannot be made. Every variant names what an operator needs to find the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the lake holds no events and no accounts: there is nothing to rebuild")]
    EmptyLake,
    #[error(
        "--until {requested} is outside the lake's range {first}..={last} \
         ({first_time} .. {last_time})"
    )]
    UntilOutOfRange {
        requested: u64,
        first: u64,
        last: u64,
        first_time: String,
        last_time: String,
    },
    #[error("the event at timestamp {timestamp} does not follow the event at {previous}")]
    EventsOutOfOrder { previous: u64, timestamp: u64 },
    #[error("the event at timestamp {timestamp} is a {event_type} event whose transfer has timestamp {transfer_timestamp}; only an expiry may differ")]
    TransferTimestampMismatch {
        timestamp: u64,
        event_type: EventType,
        transfer_timestamp: u64,
    },
    #[error("the linked chain ending at timestamp {timestamp} holds more than {BATCH_EVENTS_MAX} transfers")]
    ChainTooLong { timestamp: u64 },
    #[error(
        "the linked chain ending at timestamp {timestamp} holds {len} transfers, more than \
         --batch-events-max {batch_max}: a chain is never split across requests"
    )]
    ChainLongerThanBatch {
        timestamp: u64,
        len: usize,
        batch_max: usize,
    },
    #[error("the expiry at timestamp {timestamp} falls inside a linked chain")]
    ChainInterrupted { timestamp: u64 },
    #[error(
        "account {id} is recorded twice with different fields (timestamps {first_timestamp} \
         and {second_timestamp})"
    )]
    AccountConflict {
        id: u128,
        first_timestamp: u64,
        second_timestamp: u64,
    },
    #[error("accounts {first_id} and {second_id} share the timestamp {timestamp}")]
    AccountTimestampClash {
        first_id: u128,
        second_id: u128,
        timestamp: u64,
    },
    #[error(
        "transfer {transfer_id} at timestamp {timestamp} uses account {account_id}, which the \
         lake does not record as created before it"
    )]
    MissingAccount {
        transfer_id: u128,
        timestamp: u64,
        account_id: u128,
    },
    #[error(
        "the void standing for the expiry of pending transfer {pending_id} (at {timestamp}) \
         would get id {void_id}, which {why}; the lake cannot be rebuilt with this id scheme"
    )]
    ExpiryVoidIdUnusable {
        pending_id: u128,
        void_id: u128,
        timestamp: u64,
        why: &'static str,
    },
    #[error(
        "the resumed target holds transfer {timestamp} inside a linked chain that continues \
         past it: it was not left by a rebuild of this lake"
    )]
    ResumeInsideChain { timestamp: u64 },
}

/// `--until`, before it is resolved against the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    Latest,
    At(u64),
}

/// Parses `latest`, a decimal TigerBeetle timestamp (ns since the epoch) or an RFC 3339 instant.
pub fn parse_until(s: &str) -> Result<Until, String> {
    let s = s.trim();
    if s == "latest" {
        return Ok(Until::Latest);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Until::At)
            .map_err(|_| format!("{s:?} does not fit a 64-bit timestamp"));
    }
    crate::timefmt::parse_rfc3339(s)
        .map(Until::At)
        .map_err(|e| e.to_string())
}

/// The instants the lake can be rebuilt to: from its oldest object (an account's creation) to its
/// newest event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LakeRange {
    pub first: u64,
    pub last: u64,
}

impl LakeRange {
    /// `None` for an empty lake. `events` is the (first, last) event timestamp, if any.
    pub fn new(events: Option<(u64, u64)>, accounts: &[AccountRecord]) -> Option<LakeRange> {
        let account_first = accounts.iter().map(|a| a.timestamp).min();
        let account_last = accounts.iter().map(|a| a.timestamp).max();
        let first = [events.map(|e| e.0), account_first]
            .into_iter()
            .flatten()
            .min()?;
        let last = [events.map(|e| e.1), account_last]
            .into_iter()
            .flatten()
            .max()?;
        Some(LakeRange { first, last })
    }

    pub fn resolve(range: Option<LakeRange>, until: Until) -> Result<u64, PlanError> {
        let range = range.ok_or(PlanError::EmptyLake)?;
        let requested = match until {
            Until::Latest => return Ok(range.last),
            Until::At(t) => t,
        };
        if (range.first..=range.last).contains(&requested) {
            Ok(requested)
        } else {
            Err(PlanError::UntilOutOfRange {
                requested,
                first: range.first,
                last: range.last,
                first_time: crate::timefmt::rfc3339(range.first),
                last_time: crate::timefmt::rfc3339(range.last),
            })
        }
    }
}

mod accounts;
mod batches;
mod builder;
mod transfers;

pub use accounts::{plan_accounts, plan_accounts_with_swept, AccountDeviations, PlannedAccount};
pub use batches::{Batch, Batcher, ResumePoint, Skipped};
pub use builder::{PlanBuilder, PlanSummary};
pub use transfers::{
    ChainCut, ChainCutReason, ExpiryVoid, OpenPending, PlannedTransfer, Sequencer, TransferTally,
    ZeroedTimeout,
};

#[cfg(test)]
mod tests;
