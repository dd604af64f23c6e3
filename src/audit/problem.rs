//! What `verify` can find wrong with a lake, each with the place an operator must look at: the
//! object, the account, the timestamps around the break.

use std::fmt;

use serde::Serialize;

use crate::lake::chain::ChainProblem;
use crate::timefmt::rfc3339;

/// One field that does not move as the event says it must.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldBreak {
    pub field: &'static str,
    #[serde(with = "super::json::dec")]
    pub expected: u128,
    #[serde(with = "super::json::dec")]
    pub found: u128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// `_ledgerlake.json` is missing, unreadable, or of a newer format.
    LakeMeta { reason: String },
    /// The lake cannot be listed (e.g. an object outside the layout).
    Listing { reason: String },
    /// A break in a table's chained log (tamper evidence, see `lake::chain`): a rewritten,
    /// removed or added data file or log entry, named by `table`, `version` and `file`; `check`
    /// says which rule it breaks.
    Chain(ChainProblem),
    /// A segment file cannot be read, or disagrees with its name or metadata.
    SegmentUnreadable { segment: String, error: String },
    /// Two segments' time ranges overlap.
    SegmentsOverlap { segment: String, previous: String },
    /// A file written for another cluster or format than the lake's.
    WrongFileMeta { segment: String, reason: String },
    /// Rows whose timestamp is not after the lake's previous event (a duplicated or misplaced
    /// event); they are skipped by the chain check.
    TimestampNotIncreasing {
        segment: String,
        rows: u64,
        #[serde(with = "super::json::dec")]
        timestamp: u64,
        #[serde(with = "super::json::dec")]
        previous: u64,
    },
    /// Two records of one account (in accounts or swept files) that disagree on its immutable
    /// fields (ledger, code, user data, creation timestamp). An account may be recorded many
    /// times (every segment records the accounts it touches); readers keep the record first
    /// seen, which is meaningless if the records disagree.
    AccountRecordsDisagree {
        #[serde(with = "super::json::dec")]
        account: u128,
        /// The file of the record that disagrees with the one kept so far.
        segment: String,
        /// `first_seen_timestamp` of the record kept so far.
        #[serde(with = "super::json::dec")]
        kept_first_seen: u64,
    },
    /// An event uses an account that no accounts file records by then.
    AccountNotRecorded {
        #[serde(with = "super::json::dec")]
        account: u128,
        #[serde(with = "super::json::dec")]
        timestamp: u64,
    },
    /// An account's balances do not move by exactly the event's effect: an event is missing,
    /// duplicated or altered between `previous_timestamp` and `timestamp`.
    ChainBreak {
        #[serde(with = "super::json::dec")]
        account: u128,
        ledger: u32,
        #[serde(with = "super::json::opt_dec")]
        previous_timestamp: Option<u64>,
        #[serde(with = "super::json::dec")]
        timestamp: u64,
        event_type: &'static str,
        #[serde(with = "super::json::dec")]
        transfer_id: u128,
        fields: Vec<FieldBreak>,
    },
    /// The event's movement would take a balance below zero or above u128::MAX.
    ImpossibleMovement {
        #[serde(with = "super::json::dec")]
        account: u128,
        #[serde(with = "super::json::opt_dec")]
        previous_timestamp: Option<u64>,
        #[serde(with = "super::json::dec")]
        timestamp: u64,
        event_type: &'static str,
        #[serde(with = "super::json::dec")]
        transfer_id: u128,
    },
    /// A post, void or expiry of a pending transfer the lake does not hold as open.
    UnknownPending {
        #[serde(with = "super::json::dec")]
        timestamp: u64,
        event_type: &'static str,
        #[serde(with = "super::json::dec")]
        transfer_id: u128,
        #[serde(with = "super::json::dec")]
        pending_id: u128,
    },
    /// Two open pending transfers with one id.
    PendingTwice {
        #[serde(with = "super::json::dec")]
        timestamp: u64,
        #[serde(with = "super::json::dec")]
        transfer_id: u128,
    },
    /// An event whose debit and credit account are the same.
    SameAccount {
        #[serde(with = "super::json::dec")]
        timestamp: u64,
        #[serde(with = "super::json::dec")]
        account: u128,
    },
    /// An account seen on two ledgers.
    LedgerChanged {
        #[serde(with = "super::json::dec")]
        account: u128,
        #[serde(with = "super::json::dec")]
        timestamp: u64,
        previous_ledger: u32,
        ledger: u32,
    },
    /// Σ debits ≠ Σ credits over a ledger's accounts, after an event or at a segment's end.
    Unbalanced {
        ledger: u32,
        segment: String,
        #[serde(with = "super::json::opt_dec")]
        after_event: Option<u64>,
        /// `posted` or `pending`.
        balance: &'static str,
        debits: String,
        credits: String,
    },
}

fn at(ts: u64) -> String {
    format!("{ts} ({})", rfc3339(ts))
}

fn opt_at(ts: Option<u64>) -> String {
    ts.map_or_else(|| "the account's start (zero balances)".to_string(), at)
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::LakeMeta { reason } => write!(f, "lake metadata: {reason}"),
            Problem::Listing { reason } => write!(f, "listing the lake: {reason}"),
            Problem::Chain(p) => write!(f, "chained log ({}): {p}", p.check),
            Problem::SegmentUnreadable { segment, error } => {
                write!(f, "{segment}: unreadable: {error}")
            }
            Problem::SegmentsOverlap { segment, previous } => {
                write!(f, "{segment}: overlaps {previous}")
            }
            Problem::WrongFileMeta { segment, reason } => write!(f, "{segment}: {reason}"),
            Problem::TimestampNotIncreasing {
                segment,
                rows,
                timestamp,
                previous,
            } => write!(
                f,
                "{segment}: {rows} event(s) not after the previous event, the first at {} after {}",
                at(*timestamp),
                at(*previous)
            ),
            Problem::AccountRecordsDisagree {
                account,
                segment,
                kept_first_seen,
            } => write!(
                f,
                "{segment}: account {account} is recorded with other immutable fields (ledger, \
                 code, user data or creation timestamp) than its record first seen at {}",
                at(*kept_first_seen)
            ),
            Problem::AccountNotRecorded { account, timestamp } => write!(
                f,
                "account {account}, used at {}, is in no accounts file",
                at(*timestamp)
            ),
            Problem::ChainBreak {
                account,
                ledger,
                previous_timestamp,
                timestamp,
                event_type,
                transfer_id,
                fields,
            } => {
                write!(
                    f,
                    "account {account} (ledger {ledger}): balances break between {} and the {event_type} event of transfer {transfer_id} at {}:",
                    opt_at(*previous_timestamp),
                    at(*timestamp)
                )?;
                for b in fields {
                    write!(f, " {} expected {} found {};", b.field, b.expected, b.found)?;
                }
                Ok(())
            }
            Problem::ImpossibleMovement {
                account,
                previous_timestamp,
                timestamp,
                event_type,
                transfer_id,
            } => write!(
                f,
                "account {account}: the {event_type} event of transfer {transfer_id} at {} would take a balance below 0 or above 2^128-1 (previous event {})",
                at(*timestamp),
                opt_at(*previous_timestamp)
            ),
            Problem::UnknownPending {
                timestamp,
                event_type,
                transfer_id,
                pending_id,
            } => write!(
                f,
                "the {event_type} event of transfer {transfer_id} at {} resolves pending transfer {pending_id}, which the lake does not hold as open",
                at(*timestamp)
            ),
            Problem::PendingTwice {
                timestamp,
                transfer_id,
            } => write!(
                f,
                "pending transfer {transfer_id} at {} is already open",
                at(*timestamp)
            ),
            Problem::SameAccount { timestamp, account } => write!(
                f,
                "the event at {} debits and credits the same account {account}",
                at(*timestamp)
            ),
            Problem::LedgerChanged {
                account,
                timestamp,
                previous_ledger,
                ledger,
            } => write!(
                f,
                "account {account} moves on ledger {ledger} at {}, earlier on ledger {previous_ledger}",
                at(*timestamp)
            ),
            Problem::Unbalanced {
                ledger,
                segment,
                after_event,
                balance,
                debits,
                credits,
            } => {
                let place = after_event.map_or_else(|| format!("at the end of {segment}"), |t| {
                    format!("after the event at {} in {segment}", at(t))
                });
                write!(
                    f,
                    "ledger {ledger} {place}: Σ debits_{balance} {debits} ≠ Σ credits_{balance} {credits}"
                )
            }
        }
    }
}
