//! The replay: reads the plan's segments again, turns them into batches with the same sequencer
//! and batcher that counted the plan, and sends them to the target one request at a time while the
//! next batch is read and built. Stops at the first result other than success.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, TryStreamExt};
use tigerbeetle_unofficial as tbc;

use super::plan::{
    Batch, Batcher, PlanError, PlannedAccount, PlannedTransfer, Sequencer, Skipped, TransferTally,
};
use super::target::{check_resume, TargetError, TargetState};
use crate::lake::{EventRow, Lake, LakeError, SegmentInfo};
use crate::tb::client::root_cause;
use crate::tb::{Cluster, Rejected};
use crate::timefmt::rfc3339;

/// Segments read ahead of the replay: enough to hide object-store latency behind a request.
const SEGMENT_READS_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(
        "TigerBeetle refused {object} {id} ({origin}, timestamp {timestamp}, {time}): \
         {result} (result code {code}); the run stopped there and the target holds part of \
         this request — rebuild into a fresh cluster after fixing the cause"
    )]
    Rejected {
        object: &'static str,
        id: u128,
        origin: String,
        timestamp: u64,
        time: String,
        result: String,
        code: u32,
    },
    #[error(
        "the lake changed between the plan and the replay: the plan counted {planned} \
         transfers, the replay built {replayed}"
    )]
    LakeChanged { planned: u64, replayed: u64 },
}

/// Where the replay is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Objects (accounts and transfers) in the target, those of earlier runs included.
    pub done: u64,
    pub total: u64,
    pub elapsed: Duration,
}

/// What the replay did.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    pub skipped: Skipped,
    pub accounts_created: u64,
    pub transfers_created: u64,
    pub account_requests: u64,
    pub transfer_requests: u64,
    pub tally: TransferTally,
}

type Rows<'a> = Pin<Box<dyn Stream<Item = Result<Vec<EventRow>, LakeError>> + Send + 'a>>;

/// Builds batches from the lake, one at a time, in replay order.
struct Builder<'a> {
    rows: Rows<'a>,
    until: u64,
    sequencer: Sequencer,
    batcher: Batcher,
    finished: bool,
}

impl<'a> Builder<'a> {
    async fn next_batch(&mut self) -> Result<Option<Batch>, ExecuteError> {
        loop {
            if let Some(batch) = self.batcher.pop_batch() {
                return Ok(Some(batch));
            }
            if self.finished {
                return Ok(None);
            }
            match self.rows.try_next().await? {
                Some(rows) => {
                    for row in rows.iter().take_while(|r| r.timestamp <= self.until) {
                        self.sequencer.push(row)?;
                    }
                }
                None => {
                    self.sequencer.finish();
                    self.finished = true;
                }
            }
            while let Some(unit) = self.sequencer.pop_unit() {
                self.batcher.push_unit(unit)?;
            }
            if self.finished {
                self.batcher.finish();
            }
        }
    }
}

/// What the replay needs from the plan.
pub struct ReplayInput<'a> {
    pub lake: &'a Lake,
    pub lake_cluster_id: u128,
    pub segments: &'a [SegmentInfo],
    pub accounts: Vec<PlannedAccount>,
    pub until: u64,
    pub ledgers: Option<BTreeSet<u32>>,
    pub total: u64,
    pub planned_transfers: u64,
    pub batch_max: usize,
}

/// Replays into `cluster`, which holds `target` (checked against the plan before the first
/// write).
pub async fn replay(
    input: ReplayInput<'_>,
    cluster: &Cluster,
    target: &TargetState,
    progress: &mut dyn FnMut(Progress),
) -> Result<Replayed, ExecuteError> {
    let start = Instant::now();
    let lake = input.lake;
    let lake_cluster = input.lake_cluster_id;
    let rows: Rows<'_> = Box::pin(
        futures::stream::iter(input.segments.iter())
            .map(move |seg| lake.read_events_of_cluster(seg, lake_cluster))
            .buffered(SEGMENT_READS_IN_FLIGHT),
    );
    let mut builder = Builder {
        rows,
        until: input.until,
        sequencer: Sequencer::new(input.ledgers.clone()),
        batcher: Batcher::new(input.accounts, target.resume_point(), input.batch_max),
        finished: false,
    };
    let mut out = Replayed::default();
    let mut in_flight: Option<Batch> = None;
    let mut checked = false;
    loop {
        let (sent, next) = tokio::join!(send(cluster, in_flight.as_ref()), builder.next_batch());
        sent?;
        if let Some(batch) = in_flight.take() {
            count(&mut out, &batch);
            tracing::debug!(
                accounts_created = out.accounts_created,
                transfers_created = out.transfers_created,
                "request committed"
            );
        }
        let next = next?;
        if !checked {
            // Everything the target holds has been skipped by now, and nothing was written.
            check_resume(target, &builder.batcher.skipped)?;
            checked = true;
            out.skipped = builder.batcher.skipped;
        }
        progress(Progress {
            done: out.skipped.accounts
                + out.skipped.transfers
                + out.accounts_created
                + out.transfers_created,
            total: input.total,
            elapsed: start.elapsed(),
        });
        match next {
            Some(batch) => in_flight = Some(batch),
            None => break,
        }
    }
    if builder.batcher.skipped != out.skipped {
        // Objects the target should hold came after the first write: not a prefix after all.
        return Err(TargetError::NotThisRebuild {
            detail: "objects at or before its last timestamps came after the resume point".into(),
        }
        .into());
    }
    out.tally = builder.sequencer.tally;
    let replayed = out.skipped.transfers + out.transfers_created;
    if replayed != input.planned_transfers {
        return Err(ExecuteError::LakeChanged {
            planned: input.planned_transfers,
            replayed,
        });
    }
    Ok(out)
}

fn count(out: &mut Replayed, batch: &Batch) {
    match batch {
        Batch::Accounts(a) => {
            out.accounts_created += a.len() as u64;
            out.account_requests += 1;
        }
        Batch::Transfers(t) => {
            out.transfers_created += t.len() as u64;
            out.transfer_requests += 1;
        }
    }
}

async fn send(cluster: &Cluster, batch: Option<&Batch>) -> Result<(), ExecuteError> {
    match batch {
        None => Ok(()),
        Some(Batch::Accounts(accounts)) => {
            let raw: Vec<tbc::Account> = accounts.iter().map(tbc::Account::from).collect();
            let rejected = cluster
                .create_accounts(raw)
                .await
                .map_err(TargetError::from)?;
            match root_cause(&rejected) {
                None => Ok(()),
                Some(r) => Err(rejected_account(accounts, r)),
            }
        }
        Some(Batch::Transfers(transfers)) => {
            let raw: Vec<tbc::Transfer> = transfers
                .iter()
                .map(|t| tbc::Transfer::from(&t.transfer))
                .collect();
            let rejected = cluster
                .create_transfers(raw)
                .await
                .map_err(TargetError::from)?;
            match root_cause(&rejected) {
                None => Ok(()),
                Some(r) => Err(rejected_transfer(transfers, r)),
            }
        }
    }
}

fn rejected_account(accounts: &[PlannedAccount], r: &Rejected) -> ExecuteError {
    let a = &accounts[r.index];
    ExecuteError::Rejected {
        object: "account",
        id: a.id,
        origin: "account creation".to_string(),
        timestamp: a.timestamp,
        time: rfc3339(a.timestamp),
        result: r.result.clone(),
        code: r.code,
    }
}

fn rejected_transfer(transfers: &[PlannedTransfer], r: &Rejected) -> ExecuteError {
    let t = &transfers[r.index];
    ExecuteError::Rejected {
        object: "transfer",
        id: t.transfer.id,
        origin: format!("{} event", t.event_type),
        timestamp: t.transfer.timestamp,
        time: rfc3339(t.transfer.timestamp),
        result: r.result.clone(),
        code: r.code,
    }
}
