//! The pure part of a rebuild: which objects are created, in which order, in which batches, and
//! every way they differ from the source. No I/O here: the caller feeds account records and event
//! rows (from the lake, or from tests), so the same code counts the plan and drives the replay.
//!
//! Order: one global timestamp order, accounts (by creation timestamp) interleaved with transfers
//! (by event timestamp), so that a target stopped at any batch boundary is the source as it stood
//! at some instant. A linked chain is a unit: it is never split across batches, and an account
//! whose timestamp falls inside a chain (possible only if the source itself imported events) is
//! created before the chain.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use crate::cdc::EventType;
use crate::lake::{AccountRecord, EventRow};

/// The most events TigerBeetle accepts in one request (1 MiB messages, 128-byte events).
pub const BATCH_EVENTS_MAX: usize = 8189;

/// TigerBeetle `AccountFlags` bits this module reads or writes.
pub mod account_flags {
    pub const LINKED: u16 = 1 << 0;
    pub const HISTORY: u16 = 1 << 3;
    pub const IMPORTED: u16 = 1 << 4;
    pub const CLOSED: u16 = 1 << 5;
}

/// TigerBeetle `TransferFlags` bits this module reads or writes.
pub mod transfer_flags {
    pub const LINKED: u16 = 1 << 0;
    pub const PENDING: u16 = 1 << 1;
    pub const VOID_PENDING_TRANSFER: u16 = 1 << 3;
    pub const IMPORTED: u16 = 1 << 8;
}

/// XORed with a pending transfer's id to give the id of the void that reproduces its expiry:
/// the 16 ASCII bytes `ledgerlake:void!`, big-endian. XOR is a bijection, so two expiries never
/// get the same void id; a clash with a transfer of the lake is checked by the plan.
pub const EXPIRY_VOID_ID_XOR: u128 = u128::from_be_bytes(*b"ledgerlake:void!");

/// The id of the void transfer that stands for the expiry of `pending_id`.
pub fn expiry_void_id(pending_id: u128) -> u128 {
    pending_id ^ EXPIRY_VOID_ID_XOR
}

const NS_PER_SECOND: u64 = 1_000_000_000;

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

/// An account as it will be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedAccount {
    pub id: u128,
    pub ledger: u32,
    pub code: u16,
    /// As created, minus `closed` and `linked`, plus `imported`.
    pub flags: u16,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub timestamp: u64,
}

impl PlannedAccount {
    /// From a record of the `accounts` table (its flags as of its first event): created open,
    /// since the replayed closing transfer closes it again.
    pub fn from_record(r: &AccountRecord) -> PlannedAccount {
        PlannedAccount {
            flags: (r.flags & !(account_flags::CLOSED | account_flags::LINKED))
                | account_flags::IMPORTED,
            ..PlannedAccount::from_swept(r)
        }
    }

    /// From a record of the `swept_accounts` table (its flags as created): `closed` is kept, as
    /// the sweep records it only for an account created closed, which no transfer can reopen.
    pub fn from_swept(r: &AccountRecord) -> PlannedAccount {
        PlannedAccount {
            id: r.id,
            ledger: r.ledger,
            code: r.code,
            flags: (r.flags & !account_flags::LINKED) | account_flags::IMPORTED,
            user_data_128: r.user_data_128,
            user_data_64: r.user_data_64,
            user_data_32: r.user_data_32,
            timestamp: r.timestamp,
        }
    }
}

/// A transfer as it will be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedTransfer {
    pub id: u128,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    /// Always 0: imported transfers cannot have one.
    pub timeout: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: u16,
    pub timestamp: u64,
    /// The lake event it comes from (`TwoPhaseExpired` for the void standing for an expiry).
    pub event_type: EventType,
}

impl PlannedTransfer {
    /// The transfer an event row becomes (for an expiry: the void that reproduces it).
    pub fn from_row(row: &EventRow) -> Result<PlannedTransfer, PlanError> {
        let t = &row.transfer;
        let expiry = row.event_type == EventType::TwoPhaseExpired;
        if !expiry && t.timestamp != row.timestamp {
            return Err(PlanError::TransferTimestampMismatch {
                timestamp: row.timestamp,
                event_type: row.event_type,
                transfer_timestamp: t.timestamp,
            });
        }
        let base = PlannedTransfer {
            id: t.id,
            debit_account_id: row.debit_account.id,
            credit_account_id: row.credit_account.id,
            amount: t.amount,
            pending_id: t.pending_id,
            user_data_128: t.user_data_128,
            user_data_64: t.user_data_64,
            user_data_32: t.user_data_32,
            timeout: 0,
            ledger: row.ledger,
            code: t.code,
            flags: t.flags | transfer_flags::IMPORTED,
            timestamp: row.timestamp,
            event_type: row.event_type,
        };
        Ok(if expiry {
            // Accounts, amount, ledger, code and user data are the pending transfer's: what
            // TigerBeetle would store for a void that left them 0.
            PlannedTransfer {
                id: expiry_void_id(t.id),
                pending_id: t.id,
                flags: transfer_flags::VOID_PENDING_TRANSFER | transfer_flags::IMPORTED,
                ..base
            }
        } else {
            base
        })
    }

    pub fn is_linked(&self) -> bool {
        self.flags & transfer_flags::LINKED != 0
    }
}

/// Requests, in replay order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    Accounts(Vec<PlannedAccount>),
    Transfers(Vec<PlannedTransfer>),
}

impl Batch {
    pub fn len(&self) -> usize {
        match self {
            Batch::Accounts(a) => a.len(),
            Batch::Transfers(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A pending transfer whose timeout was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroedTimeout {
    pub transfer_id: u128,
    pub timestamp: u64,
    pub timeout_s: u32,
    /// When the source would expire it: timestamp + timeout.
    pub expires_at: u64,
}

/// A void added to reproduce an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryVoid {
    pub void_id: u128,
    pub pending_id: u128,
    pub timestamp: u64,
}

/// Why a transfer lost its `linked` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainCutReason {
    /// The chain continues after `--until`.
    Until,
    /// The chain continues with a transfer of a ledger not rebuilt.
    LedgerFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainCut {
    pub transfer_id: u128,
    pub timestamp: u64,
    pub reason: ChainCutReason,
}

/// A pending transfer neither posted, voided nor expired at `--until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPending {
    pub transfer_id: u128,
    pub timestamp: u64,
    pub amount: u128,
    pub ledger: u32,
    /// The source's timeout (seconds), dropped in the target; 0 if it had none.
    pub timeout_s: u32,
    /// When the source expires it, if it had a timeout (possibly after `--until`).
    pub expires_at: Option<u64>,
}

/// Counts per event type, in `EventType` discriminant order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTypeCounts(pub [u64; 5]);

impl EventTypeCounts {
    pub fn add(&mut self, t: EventType) {
        self.0[t as usize] += 1;
    }

    pub fn get(&self, t: EventType) -> u64 {
        self.0[t as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// What the transfers of a replay amount to, and every way they differ from the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferTally {
    pub events: EventTypeCounts,
    pub first_timestamp: Option<u64>,
    pub last_timestamp: Option<u64>,
    pub timeouts_zeroed: Vec<ZeroedTimeout>,
    pub expiry_voids: Vec<ExpiryVoid>,
    pub chain_cuts: Vec<ChainCut>,
    /// Keyed by transfer id.
    pub open_pending: BTreeMap<u128, OpenPending>,
}

impl TransferTally {
    fn record(&mut self, row: &EventRow) {
        let t = &row.transfer;
        self.events.add(row.event_type);
        self.first_timestamp.get_or_insert(row.timestamp);
        self.last_timestamp = Some(row.timestamp);
        match row.event_type {
            EventType::SinglePhase => {}
            EventType::TwoPhasePending => {
                let expires_at =
                    (t.timeout > 0).then(|| t.timestamp + u64::from(t.timeout) * NS_PER_SECOND);
                if let Some(expires_at) = expires_at {
                    self.timeouts_zeroed.push(ZeroedTimeout {
                        transfer_id: t.id,
                        timestamp: t.timestamp,
                        timeout_s: t.timeout,
                        expires_at,
                    });
                }
                self.open_pending.insert(
                    t.id,
                    OpenPending {
                        transfer_id: t.id,
                        timestamp: t.timestamp,
                        amount: t.amount,
                        ledger: row.ledger,
                        timeout_s: t.timeout,
                        expires_at,
                    },
                );
            }
            EventType::TwoPhasePosted | EventType::TwoPhaseVoided => {
                self.open_pending.remove(&t.pending_id);
            }
            EventType::TwoPhaseExpired => {
                self.open_pending.remove(&t.id);
                self.expiry_voids.push(ExpiryVoid {
                    void_id: expiry_void_id(t.id),
                    pending_id: t.id,
                    timestamp: row.timestamp,
                });
            }
        }
    }
}

/// Turns event rows (in timestamp order, all ≤ `--until`) into units of transfers: a single
/// transfer, or a whole linked chain. Rows of ledgers not rebuilt are dropped, and a chain that
/// loses its end (to `--until` or to the ledger filter) is closed on its last kept transfer.
pub struct Sequencer {
    ledgers: Option<BTreeSet<u32>>,
    previous: Option<u64>,
    in_chain: bool,
    chain: Vec<PlannedTransfer>,
    ready: VecDeque<Vec<PlannedTransfer>>,
    pub tally: TransferTally,
}

impl Sequencer {
    pub fn new(ledgers: Option<BTreeSet<u32>>) -> Sequencer {
        Sequencer {
            ledgers,
            previous: None,
            in_chain: false,
            chain: Vec::new(),
            ready: VecDeque::new(),
            tally: TransferTally::default(),
        }
    }

    pub fn keeps_ledger(&self, ledger: u32) -> bool {
        self.ledgers.as_ref().is_none_or(|l| l.contains(&ledger))
    }

    pub fn push(&mut self, row: &EventRow) -> Result<(), PlanError> {
        if let Some(previous) = self.previous.filter(|&p| p >= row.timestamp) {
            return Err(PlanError::EventsOutOfOrder {
                previous,
                timestamp: row.timestamp,
            });
        }
        self.previous = Some(row.timestamp);
        let kept = self.keeps_ledger(row.ledger);
        let transfer = PlannedTransfer::from_row(row)?;
        if kept {
            self.tally.record(row);
        }
        let linked = transfer.is_linked();
        if self.in_chain && row.event_type == EventType::TwoPhaseExpired {
            return Err(PlanError::ChainInterrupted {
                timestamp: row.timestamp,
            });
        }
        if self.in_chain || linked {
            self.in_chain = true;
            if kept {
                if self.chain.len() == BATCH_EVENTS_MAX {
                    return Err(PlanError::ChainTooLong {
                        timestamp: row.timestamp,
                    });
                }
                self.chain.push(transfer);
            }
            if !linked {
                self.close_chain(if kept {
                    None
                } else {
                    Some(ChainCutReason::LedgerFilter)
                });
            }
        } else if kept {
            self.ready.push_back(vec![transfer]);
        }
        Ok(())
    }

    /// No more rows: a chain still open continues after `--until`.
    pub fn finish(&mut self) {
        if self.in_chain {
            self.close_chain(Some(ChainCutReason::Until));
        }
    }

    /// Ends the open chain; `cut` says why its last kept transfer must lose `linked`, if its
    /// real end is not replayed.
    fn close_chain(&mut self, cut: Option<ChainCutReason>) {
        self.in_chain = false;
        let mut chain = std::mem::take(&mut self.chain);
        if let (Some(reason), Some(last)) = (cut, chain.last_mut()) {
            assert!(last.is_linked());
            last.flags &= !transfer_flags::LINKED;
            self.tally.chain_cuts.push(ChainCut {
                transfer_id: last.id,
                timestamp: last.timestamp,
                reason,
            });
        }
        if !chain.is_empty() {
            self.ready.push_back(chain);
        }
    }

    pub fn pop_unit(&mut self) -> Option<Vec<PlannedTransfer>> {
        self.ready.pop_front()
    }
}

/// Where a resumed target stands: everything up to these timestamps is already there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumePoint {
    pub accounts_through: Option<u64>,
    pub transfers_through: Option<u64>,
}

/// What was skipped because the target already holds it: the resume check compares this with
/// the target before anything is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    pub accounts: u64,
    pub transfers: u64,
    pub last_account: Option<PlannedAccount>,
    pub last_transfer: Option<PlannedTransfer>,
}

/// Merges accounts (sorted by timestamp) with transfer units into batches of one kind, at most
/// `batch_max` (≤ [`BATCH_EVENTS_MAX`]) events each, never splitting a unit; skips what a resumed
/// target holds.
pub struct Batcher {
    batch_max: usize,
    accounts: Vec<PlannedAccount>,
    next_account: usize,
    current: Option<Batch>,
    done: VecDeque<Batch>,
    resume: ResumePoint,
    pub skipped: Skipped,
}

impl Batcher {
    /// `accounts` must be sorted by timestamp (the plan sorts them).
    pub fn new(accounts: Vec<PlannedAccount>, resume: ResumePoint, batch_max: usize) -> Batcher {
        assert!(accounts.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert!((1..=BATCH_EVENTS_MAX).contains(&batch_max));
        Batcher {
            batch_max,
            accounts,
            next_account: 0,
            current: None,
            done: VecDeque::new(),
            resume,
            skipped: Skipped::default(),
        }
    }

    pub fn push_unit(&mut self, unit: Vec<PlannedTransfer>) -> Result<(), PlanError> {
        assert!(!unit.is_empty());
        let last = unit[unit.len() - 1].timestamp;
        if unit.len() > self.batch_max {
            return Err(PlanError::ChainLongerThanBatch {
                timestamp: last,
                len: unit.len(),
                batch_max: self.batch_max,
            });
        }
        self.accounts_before(Some(last));
        let through = self.resume.transfers_through.unwrap_or(0);
        let held = unit.iter().filter(|t| t.timestamp <= through).count();
        if held == unit.len() {
            self.skipped.transfers += held as u64;
            self.skipped.last_transfer = Some(unit[held - 1]);
            return Ok(());
        }
        if held > 0 {
            return Err(PlanError::ResumeInsideChain { timestamp: through });
        }
        if !matches!(&self.current, Some(Batch::Transfers(t)) if t.len() + unit.len() <= self.batch_max)
        {
            self.flush();
            self.current = Some(Batch::Transfers(Vec::with_capacity(self.batch_max)));
        }
        match &mut self.current {
            Some(Batch::Transfers(t)) => t.extend(unit),
            _ => unreachable!("a transfers batch was just opened"),
        }
        Ok(())
    }

    /// Adds every account created before `timestamp` (all of them for `None`).
    fn accounts_before(&mut self, timestamp: Option<u64>) {
        while let Some(account) = self.accounts.get(self.next_account).copied() {
            if timestamp.is_some_and(|t| account.timestamp >= t) {
                break;
            }
            self.next_account += 1;
            if account.timestamp <= self.resume.accounts_through.unwrap_or(0) {
                self.skipped.accounts += 1;
                self.skipped.last_account = Some(account);
                continue;
            }
            if !matches!(&self.current, Some(Batch::Accounts(a)) if a.len() < self.batch_max) {
                self.flush();
                self.current = Some(Batch::Accounts(Vec::with_capacity(self.batch_max)));
            }
            match &mut self.current {
                Some(Batch::Accounts(a)) => a.push(account),
                _ => unreachable!("an accounts batch was just opened"),
            }
        }
    }

    fn flush(&mut self) {
        if let Some(batch) = self.current.take() {
            assert!(!batch.is_empty() && batch.len() <= self.batch_max);
            self.done.push_back(batch);
        }
    }

    /// No more units: the remaining accounts, then the last batch.
    pub fn finish(&mut self) {
        self.accounts_before(None);
        self.flush();
    }

    pub fn pop_batch(&mut self) -> Option<Batch> {
        self.done.pop_front()
    }
}

/// The accounts to create up to `until` (by creation timestamp) in the chosen ledgers, sorted,
/// from records of the `accounts` table or any other source whose flags are as of an event.
pub fn plan_accounts(
    records: impl IntoIterator<Item = AccountRecord>,
    until: u64,
    ledgers: Option<&BTreeSet<u32>>,
) -> Result<(Vec<PlannedAccount>, AccountDeviations), PlanError> {
    plan_accounts_with_swept(records, [], until, ledgers)
}

/// [`plan_accounts`] with the lake's swept accounts too (flags as created, see
/// [`PlannedAccount::from_swept`]). The same account recorded twice, in any source, must agree
/// on its immutable fields; the first record wins (`records` before `swept`).
pub fn plan_accounts_with_swept(
    records: impl IntoIterator<Item = AccountRecord>,
    swept: impl IntoIterator<Item = AccountRecord>,
    until: u64,
    ledgers: Option<&BTreeSet<u32>>,
) -> Result<(Vec<PlannedAccount>, AccountDeviations), PlanError> {
    let mut by_id: HashMap<u128, (AccountRecord, bool)> = HashMap::new();
    let tagged = records
        .into_iter()
        .map(|r| (r, false))
        .chain(swept.into_iter().map(|r| (r, true)));
    for (r, is_swept) in tagged {
        if r.timestamp > until || ledgers.is_some_and(|l| !l.contains(&r.ledger)) {
            continue;
        }
        match by_id.get(&r.id).map(|(seen, _)| seen) {
            None => {
                by_id.insert(r.id, (r, is_swept));
            }
            Some(seen) => {
                let immutable = |a: &AccountRecord| {
                    (
                        a.ledger,
                        a.code,
                        a.user_data_128,
                        a.user_data_64,
                        a.user_data_32,
                        a.timestamp,
                    )
                };
                if immutable(seen) != immutable(&r) {
                    return Err(PlanError::AccountConflict {
                        id: r.id,
                        first_timestamp: seen.timestamp,
                        second_timestamp: r.timestamp,
                    });
                }
            }
        }
    }
    let mut deviations = AccountDeviations::default();
    let mut accounts: Vec<PlannedAccount> = by_id
        .values()
        .map(|(r, is_swept)| {
            deviations.linked_dropped += u64::from(r.flags & account_flags::LINKED != 0);
            if *is_swept {
                return PlannedAccount::from_swept(r);
            }
            deviations.closed_dropped += u64::from(r.flags & account_flags::CLOSED != 0);
            PlannedAccount::from_record(r)
        })
        .collect();
    accounts.sort_by_key(|a| a.timestamp);
    if let Some(w) = accounts
        .windows(2)
        .find(|w| w[0].timestamp == w[1].timestamp)
    {
        return Err(PlanError::AccountTimestampClash {
            first_id: w[0].id,
            second_id: w[1].id,
            timestamp: w[0].timestamp,
        });
    }
    Ok((accounts, deviations))
}

/// Account flags that differ from the source's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountDeviations {
    /// Recorded as `closed` (closed by a transfer): created open, closed again by the replay.
    pub closed_dropped: u64,
    /// Created in a linked chain of accounts: created alone.
    pub linked_dropped: u64,
}

/// The whole plan's numbers, computed by feeding every row once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSummary {
    pub until: u64,
    pub accounts: u64,
    pub account_deviations: AccountDeviations,
    pub transfers: TransferTally,
    /// Transfers created: one per event, the void of an expiry included.
    pub transfers_created: u64,
    pub account_batches: u64,
    pub transfer_batches: u64,
    pub first_timestamp: Option<u64>,
    pub last_timestamp: Option<u64>,
}

/// Builds a [`PlanSummary`] from the planned accounts and the event rows: runs the same sequencer
/// and batcher as the replay, and checks what the replay would otherwise discover half-way
/// (unknown accounts, clashing void ids).
pub struct PlanBuilder {
    until: u64,
    accounts: Vec<PlannedAccount>,
    account_deviations: AccountDeviations,
    account_timestamps: HashMap<u128, u64>,
    sequencer: Sequencer,
    batcher: Batcher,
    /// Every transfer id of the lake up to `until`, in every ledger: what a void id must avoid.
    transfer_ids: HashSet<u128>,
    transfers_created: u64,
    account_batches: u64,
    transfer_batches: u64,
}

impl PlanBuilder {
    pub fn new(
        until: u64,
        ledgers: Option<BTreeSet<u32>>,
        accounts: Vec<PlannedAccount>,
        account_deviations: AccountDeviations,
        batch_max: usize,
    ) -> PlanBuilder {
        PlanBuilder {
            until,
            account_timestamps: accounts.iter().map(|a| (a.id, a.timestamp)).collect(),
            batcher: Batcher::new(accounts.clone(), ResumePoint::default(), batch_max),
            accounts,
            account_deviations,
            sequencer: Sequencer::new(ledgers),
            transfer_ids: HashSet::new(),
            transfers_created: 0,
            account_batches: 0,
            transfer_batches: 0,
        }
    }

    /// Feeds rows in timestamp order; rows after `until` are ignored.
    pub fn push_rows(&mut self, rows: &[EventRow]) -> Result<(), PlanError> {
        for row in rows.iter().take_while(|r| r.timestamp <= self.until) {
            if row.event_type != EventType::TwoPhaseExpired {
                self.transfer_ids.insert(row.transfer.id);
            }
            self.sequencer.push(row)?;
        }
        self.drain()
    }

    fn drain(&mut self) -> Result<(), PlanError> {
        while let Some(unit) = self.sequencer.pop_unit() {
            for t in &unit {
                self.check_accounts(t)?;
            }
            self.transfers_created += unit.len() as u64;
            self.batcher.push_unit(unit)?;
        }
        while let Some(batch) = self.batcher.pop_batch() {
            match batch {
                Batch::Accounts(_) => self.account_batches += 1,
                Batch::Transfers(_) => self.transfer_batches += 1,
            }
        }
        Ok(())
    }

    fn check_accounts(&self, t: &PlannedTransfer) -> Result<(), PlanError> {
        for account_id in [t.debit_account_id, t.credit_account_id] {
            match self.account_timestamps.get(&account_id) {
                Some(&created) if created < t.timestamp => {}
                _ => {
                    return Err(PlanError::MissingAccount {
                        transfer_id: t.id,
                        timestamp: t.timestamp,
                        account_id,
                    })
                }
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<PlanSummary, PlanError> {
        self.sequencer.finish();
        self.drain()?;
        self.batcher.finish();
        self.drain()?;
        for v in &self.sequencer.tally.expiry_voids {
            let why = if v.void_id == 0 {
                Some("is 0")
            } else if v.void_id == u128::MAX {
                Some("is 2^128-1")
            } else if self.transfer_ids.contains(&v.void_id) {
                Some("is already the id of a transfer in the lake")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(PlanError::ExpiryVoidIdUnusable {
                    pending_id: v.pending_id,
                    void_id: v.void_id,
                    timestamp: v.timestamp,
                    why,
                });
            }
        }
        let tally = self.sequencer.tally;
        let account_ts = |f: fn(&[PlannedAccount]) -> Option<&PlannedAccount>| {
            f(&self.accounts).map(|a| a.timestamp)
        };
        let first = [account_ts(<[_]>::first), tally.first_timestamp];
        let last = [account_ts(<[_]>::last), tally.last_timestamp];
        Ok(PlanSummary {
            until: self.until,
            accounts: self.accounts.len() as u64,
            account_deviations: self.account_deviations,
            transfers_created: self.transfers_created,
            account_batches: self.account_batches,
            transfer_batches: self.transfer_batches,
            first_timestamp: first.into_iter().flatten().min(),
            last_timestamp: last.into_iter().flatten().max(),
            transfers: tally,
        })
    }
}

#[cfg(test)]
mod tests;
