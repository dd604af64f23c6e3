//! The replay: reads the plan's segments once (several in flight, so an object store's latency
//! is hidden), builds the plan and its batches from them as they come, and sends the batches to
//! the target one request at a time while the next batch is read and built. The requests are as
//! large as the target accepts (`send`). Stops at the first result other than success.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, TryStreamExt};
use tigerbeetle_unofficial as tbc;

use super::plan::{
    Batch, PlanBuilder, PlanError, PlanSummary, PlannedAccount, PlannedTransfer, Skipped,
};
use super::send::{chunk_end, unit_len, Sizer};
use super::target::{check_resume, TargetError, TargetState};
use crate::lake::{EventRow, Lake, LakeError, SegmentInfo};
use crate::tb::client::root_cause;
use crate::tb::{Cluster, ClusterError, Rejected};
use crate::timefmt::rfc3339;

/// Segments read ahead of the replay, concurrently: enough to hide an object store's latency
/// per object behind the requests. Memory: this many decoded segments.
pub const SEGMENT_READS_IN_FLIGHT: usize = 8;

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
        "the target refuses requests of {refused} events as too large{chain}; start it with a \
         larger --limit-request"
    )]
    RequestLimitTooSmall { refused: usize, chain: String },
}

/// Where the replay is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Objects (accounts and transfers) in the target, those of earlier runs included.
    pub done: u64,
    /// Bytes of the lake's transfers files read so far, and in all.
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub elapsed: Duration,
}

/// What the replay did.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub skipped: Skipped,
    pub accounts_created: u64,
    pub transfers_created: u64,
    pub account_requests: u64,
    pub transfer_requests: u64,
    /// The request size at the end of the run, and what was learned of the target's limit.
    pub sizer: Sizer,
    /// The plan, counted on the way.
    pub summary: PlanSummary,
}

type Rows<'a> = Pin<Box<dyn Stream<Item = Result<(Vec<EventRow>, u64), LakeError>> + Send + 'a>>;

/// Builds batches from the lake, one at a time, in replay order.
struct Builder<'a> {
    rows: Rows<'a>,
    plan: PlanBuilder,
    bytes_read: u64,
    finished: bool,
}

impl<'a> Builder<'a> {
    async fn next_batch(&mut self) -> Result<Option<Batch>, ExecuteError> {
        loop {
            if let Some(batch) = self.plan.pop_batch() {
                return Ok(Some(batch));
            }
            if self.finished {
                return Ok(None);
            }
            match self.rows.try_next().await? {
                Some((rows, bytes)) => {
                    self.plan.push_rows(&rows)?;
                    self.bytes_read += bytes;
                }
                None => {
                    self.plan.finish_rows()?;
                    self.finished = true;
                }
            }
        }
    }
}

/// What the replay needs.
pub struct ReplayInput<'a> {
    pub lake: &'a Lake,
    pub lake_cluster_id: u128,
    pub segments: &'a [SegmentInfo],
    /// Made with [`PlanBuilder::for_replay`] and the target's resume point.
    pub plan: PlanBuilder,
    /// The most events per request.
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
    let bytes_total = input.segments.iter().map(|s| s.transfers_bytes).sum();
    let rows: Rows<'_> = Box::pin(
        futures::stream::iter(input.segments.iter())
            .map(move |seg| async move {
                let rows = lake.read_transfers_of_cluster(seg, lake_cluster).await?;
                Ok((rows, seg.transfers_bytes))
            })
            .buffered(SEGMENT_READS_IN_FLIGHT),
    );
    let mut builder = Builder {
        rows,
        plan: input.plan,
        bytes_read: 0,
        finished: false,
    };
    let mut out = Counts::default();
    let mut sizer = Sizer::new(input.batch_max);
    let mut in_flight: Option<Batch> = None;
    let mut skipped: Option<Skipped> = None;
    loop {
        let (sent, next) = tokio::join!(
            send(cluster, in_flight.as_ref(), &mut sizer, &mut out),
            builder.next_batch()
        );
        sent?;
        if in_flight.take().is_some() {
            tracing::debug!(
                accounts_created = out.accounts_created,
                transfers_created = out.transfers_created,
                "request committed"
            );
        }
        if sizer.was_refused() {
            builder.plan.set_batch_max(sizer.batch_bound());
        }
        let next = next?;
        let skipped = match skipped {
            Some(s) => s,
            None => {
                // Everything the target holds has been skipped by now, and nothing was written.
                let s = *builder.plan.skipped();
                check_resume(target, &s)?;
                skipped = Some(s);
                s
            }
        };
        progress(Progress {
            done: skipped.accounts
                + skipped.transfers
                + out.accounts_created
                + out.transfers_created,
            bytes_read: builder.bytes_read,
            bytes_total,
            elapsed: start.elapsed(),
        });
        match next {
            Some(batch) => in_flight = Some(batch),
            None => break,
        }
    }
    let skipped = skipped.unwrap_or_default();
    if *builder.plan.skipped() != skipped {
        // Objects the target should hold came after the first write: not a prefix after all.
        return Err(TargetError::NotThisRebuild {
            detail: "objects at or before its last timestamps came after the resume point".into(),
        }
        .into());
    }
    let summary = builder.plan.finish()?;
    Ok(Replayed {
        skipped,
        accounts_created: out.accounts_created,
        transfers_created: out.transfers_created,
        account_requests: out.account_requests,
        transfer_requests: out.transfer_requests,
        sizer,
        summary,
    })
}

#[derive(Debug, Default)]
struct Counts {
    accounts_created: u64,
    transfers_created: u64,
    account_requests: u64,
    transfer_requests: u64,
}

/// Sends `batch` in requests as large as the target takes, never splitting a unit.
async fn send(
    cluster: &Cluster,
    batch: Option<&Batch>,
    sizer: &mut Sizer,
    out: &mut Counts,
) -> Result<(), ExecuteError> {
    let Some(batch) = batch else {
        return Ok(());
    };
    let mut start = 0;
    while start < batch.len() {
        let size = sizer.size();
        let unit = unit_len(batch, start);
        let end = match (size, chunk_end(batch, start, size.max(1))) {
            (1.., Some(end)) => end,
            // A chain longer than the size being tried, but shorter than every refusal: try it
            // whole (the search has not reached the limit yet).
            _ if sizer.may_accept(unit) => start + unit,
            _ => return Err(limit_too_small(batch, start, sizer)),
        };
        match send_chunk(cluster, batch, start, end).await {
            Ok(()) => {
                sizer.accepted(end - start);
                match batch {
                    Batch::Accounts(_) => {
                        out.accounts_created += (end - start) as u64;
                        out.account_requests += 1;
                    }
                    Batch::Transfers(_) => {
                        out.transfers_created += (end - start) as u64;
                        out.transfer_requests += 1;
                    }
                }
                start = end;
            }
            Err(ExecuteError::Target(TargetError::Cluster(ClusterError::TooMuchData {
                ..
            }))) => {
                tracing::debug!(
                    events = end - start,
                    "the target refused a request as too large"
                );
                sizer.refused(end - start);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn limit_too_small(batch: &Batch, start: usize, sizer: &Sizer) -> ExecuteError {
    let refused = sizer.size() + 1;
    let chain = match batch {
        Batch::Transfers(t) if sizer.size() > 0 => {
            let len = unit_len(batch, start);
            format!(
                ", and the linked chain at timestamp {} holds {len} transfers (a chain is never \
                 split across requests)",
                t[start].transfer.timestamp
            )
        }
        _ => String::new(),
    };
    ExecuteError::RequestLimitTooSmall { refused, chain }
}

async fn send_chunk(
    cluster: &Cluster,
    batch: &Batch,
    start: usize,
    end: usize,
) -> Result<(), ExecuteError> {
    match batch {
        Batch::Accounts(accounts) => {
            let accounts = &accounts[start..end];
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
        Batch::Transfers(transfers) => {
            let transfers = &transfers[start..end];
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
