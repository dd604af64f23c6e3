//! `ledgerlake export`: the consume loop that moves CDC events from a RabbitMQ queue into the lake,
//! exactly once, acknowledging a message only after the segment that holds it is committed.
//!
//! The loop (one task) owns all state and decides; `segment` computes where an event goes, `broker`
//! talks AMQP, the lake writes; with `--addresses`, `sweep` reads the source cluster's accounts
//! in the background and the loop records those no event has shown. See docs/DESIGN.md for the
//! argument that nothing is lost or written twice.

pub mod broker;
pub mod segment;
pub mod sweep;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use lapin::message::Delivery;
use tokio::task::JoinHandle;

use crate::cdc;
use crate::lake::{AccountRecord, CommitOutcome, Lake, LakeError, Quarantined, Segment};
use crate::tb::{Cluster, ClusterError};
use crate::timefmt;
use broker::{BrokerError, BrokerOptions, Session};
use segment::{Append, OpenSegment, SealPolicy};
use sweep::{SweepMessage, SweepOptions, Sweeper};

/// Everything `export` needs, validated. Every default lives in the CLI, where it is documented.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub broker: BrokerOptions,
    pub lake: String,
    pub cluster_id: u128,
    pub seal: SealPolicy,
    /// Exit once no message has arrived for this long and everything received is committed.
    pub until_idle: Option<Duration>,
    /// How long a failing lake write is retried before the exporter gives up (exit non-zero).
    pub lake_retry_max: Duration,
    /// How long the broker may stay unreachable before the exporter gives up.
    pub broker_retry_max: Duration,
    pub progress_interval: Duration,
    /// Sweep the source cluster's accounts into the lake; `None`: accounts that no transfer
    /// event shows are not recorded.
    pub sweep: Option<SweepOptions>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("the lake rejected writes for {elapsed_s} s (limit {limit_s} s); nothing after {} was acknowledged: {source}", describe_position(*.committed_last))]
    LakeWriteFailed {
        elapsed_s: u64,
        limit_s: u64,
        committed_last: Option<u64>,
        source: LakeError,
    },
    #[error("the broker stayed unreachable for {elapsed_s} s (limit {limit_s} s): {source}")]
    BrokerUnavailable {
        elapsed_s: u64,
        limit_s: u64,
        source: BrokerError,
    },
    #[error("the commit task failed: {0}")]
    CommitTask(String),
    #[error("account sweep: {0}")]
    SweepClient(#[from] ClusterError),
    #[error("the account sweep task stopped")]
    SweepStopped,
}

/// What one run did; printed at the end and returned to tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    pub events_committed: u64,
    pub segments_committed: u64,
    pub bytes_committed: u64,
    pub duplicates_dropped: u64,
    pub quarantined: u64,
    pub reconnects: u64,
    pub orphans_removed: u64,
    pub last_committed_timestamp: Option<u64>,
    /// Accounts recorded by the sweep (in `swept_accounts/`).
    pub accounts_swept: u64,
    pub swept_files_committed: u64,
}

/// Why a consuming session ended.
enum SessionEnd {
    Shutdown,
    Idle,
    Broker(BrokerError),
}

/// A shutdown signal (SIGINT/SIGTERM in the binary, a channel in tests).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the exporter until shutdown, idleness (`until_idle`) or a fatal error.
pub async fn run(
    options: ExportOptions,
    mut shutdown: Shutdown,
) -> Result<ExportReport, ExportError> {
    let lake = Arc::new(Lake::open(&options.lake).await?);
    lake.bind_cluster(options.cluster_id).await?;
    let mut report = ExportReport::default();
    let orphans = lake.remove_orphan_accounts().await?;
    report.orphans_removed = orphans.len() as u64;
    for orphan in &orphans {
        tracing::warn!(object = %orphan, "removed an accounts file left by an interrupted commit");
    }

    let cluster = match &options.sweep {
        Some(sweep) => Some(Arc::new(Cluster::connect(
            options.cluster_id,
            &sweep.addresses,
            sweep.request_timeout,
        )?)),
        None => None,
    };

    let mut unreachable_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        // Every session starts from what the lake holds: the lake is the consumer position.
        let committed_last = lake.last_committed_timestamp().await?;
        let seen_accounts = lake.load_account_ids().await?;
        report.last_committed_timestamp = committed_last;
        let session = match Session::open(&options.broker).await {
            Ok(session) => session,
            Err(error) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= options.broker_retry_max {
                    return Err(ExportError::BrokerUnavailable {
                        elapsed_s: since.elapsed().as_secs(),
                        limit_s: options.broker_retry_max.as_secs(),
                        source: error,
                    });
                }
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "broker unreachable");
                tokio::select! {
                    _ = &mut shutdown => return Ok(report),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        unreachable_since = None;
        backoff = Duration::from_millis(250);
        tracing::info!(
            queue = %options.broker.queue,
            lake = %lake.location(),
            resume_after = %committed_last.map_or_else(|| "the start".to_string(), timefmt::rfc3339),
            accounts_known = seen_accounts.len(),
            "consuming"
        );
        let sweeper = match (&cluster, &options.sweep) {
            (Some(cluster), Some(sweep)) => {
                let after = lake.swept_through().await?;
                Some(Sweeper::start(cluster.clone(), after, sweep.interval))
            }
            _ => None,
        };
        let mut exporter = Exporter {
            lake: lake.clone(),
            options: &options,
            session,
            open: OpenSegment::default(),
            open_ack_tag: None,
            held: None,
            seen_accounts,
            sealed_last: committed_last,
            inflight: None,
            sweeper,
            swept_pending: None,
            sweep_pass_started: None,
            report: &mut report,
        };
        let end = exporter.consume(&mut shutdown).await?;
        let session = exporter.session;
        match end {
            SessionEnd::Shutdown | SessionEnd::Idle => {
                session.close().await;
                return Ok(report);
            }
            SessionEnd::Broker(error) => {
                tracing::warn!(%error, "lost the broker session; reconnecting and resuming from the lake");
                report.reconnects += 1;
                unreachable_since.get_or_insert_with(Instant::now);
            }
        }
    }
}

/// A commit running in the background while the next segment fills: one at a time.
struct Inflight {
    task: JoinHandle<Result<CommitOutcome, ExportError>>,
    work: Work,
}

/// What the commit in flight writes.
enum Work {
    Segment {
        ack_tag: u64,
        event_count: u64,
        last_timestamp: u64,
    },
    Swept {
        account_count: u64,
    },
}

/// One consuming session's state. Dropped (and rebuilt from the lake) when the session is lost.
struct Exporter<'a> {
    lake: Arc<Lake>,
    options: &'a ExportOptions,
    session: Session,
    open: OpenSegment,
    /// Highest delivery tag received since the last seal (events, duplicates, quarantined).
    open_ack_tag: Option<u64>,
    /// An event for the next UTC day, waiting for the open segment to be sealed.
    held: Option<(u64, cdc::Event)>,
    seen_accounts: HashSet<u128>,
    /// Last timestamp committed or being committed: anything at or before it is a duplicate.
    sealed_last: Option<u64>,
    inflight: Option<Inflight>,
    sweeper: Option<Sweeper>,
    /// New accounts of a sweep page, already in `seen_accounts`: committed in the next free
    /// commit slot, before any segment sealed after they were taken.
    swept_pending: Option<Vec<AccountRecord>>,
    /// Start of the last sweep pass that reached the newest account.
    sweep_pass_started: Option<Instant>,
    report: &'a mut ExportReport,
}

impl Exporter<'_> {
    async fn consume(&mut self, shutdown: &mut Shutdown) -> Result<SessionEnd, ExportError> {
        let policy = self.options.seal;
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_delivery_at = Instant::now();
        let mut last_received_at: Option<Instant> = None;
        let mut last_progress_at = Instant::now();
        let mut progress_events = self.report.events_committed;
        loop {
            let can_take = self.held.is_none() && self.open.has_room(&policy);
            tokio::select! {
                biased;
                _ = &mut *shutdown => return self.finish(SessionEnd::Shutdown).await,
                joined = wait_inflight(&mut self.inflight), if self.inflight.is_some() => {
                    if let Err(error) = self.on_committed(joined).await? {
                        return Ok(self.abandon(error).await);
                    }
                }
                delivery = self.session.consumer.next(), if can_take => {
                    last_delivery_at = Instant::now();
                    last_received_at = Some(last_delivery_at);
                    match delivery {
                        Some(Ok(delivery)) => {
                            if let Err(error) = self.on_delivery(delivery).await? {
                                return Ok(self.abandon(error).await);
                            }
                        }
                        Some(Err(source)) => {
                            let error = BrokerError::Protocol { action: "receive deliveries".into(), source };
                            return Ok(self.abandon(error).await);
                        }
                        None => return Ok(self.abandon(BrokerError::ConsumerCancelled).await),
                    }
                }
                message = recv_sweep(&mut self.sweeper), if self.swept_pending.is_none() => {
                    self.on_sweep(message.ok_or(ExportError::SweepStopped)?);
                }
                _ = ticker.tick() => {}
            }
            let now = Instant::now();
            if self.inflight.is_none() {
                if self.swept_pending.is_some() {
                    // First: segments sealed from now on may use these accounts.
                    self.start_swept_commit();
                } else {
                    if self.held.is_some() || self.open.should_seal(&policy, now) {
                        self.start_commit();
                    } else if self.open.is_empty() {
                        if let Err(error) = self.ack_pending_drops().await {
                            return Ok(self.abandon(error).await);
                        }
                    }
                    if let Some((tag, event)) = self.held.take() {
                        if let Err(error) = self.place(tag, event).await? {
                            return Ok(self.abandon(error).await);
                        }
                    }
                }
            }
            if let Some(idle) = self.options.until_idle {
                let drained = self.open.is_empty()
                    && self.inflight.is_none()
                    && self.held.is_none()
                    && self.open_ack_tag.is_none()
                    && self.swept_pending.is_none();
                // With a sweep, also wait for a pass that started after the last delivery.
                let swept = self.sweeper.is_none()
                    || self
                        .sweep_pass_started
                        .is_some_and(|s| last_received_at.is_none_or(|r| s >= r));
                if drained && swept && now.duration_since(last_delivery_at) >= idle {
                    return self.finish(SessionEnd::Idle).await;
                }
            }
            if now.duration_since(last_progress_at) >= self.options.progress_interval {
                let rate = (self.report.events_committed - progress_events) as f64
                    / now.duration_since(last_progress_at).as_secs_f64();
                tracing::info!(
                    committed = self.report.events_committed,
                    events_per_s = rate.round() as u64,
                    last = %self.report.last_committed_timestamp.map_or_else(|| "-".to_string(), timefmt::rfc3339),
                    duplicates = self.report.duplicates_dropped,
                    quarantined = self.report.quarantined,
                    "progress"
                );
                last_progress_at = now;
                progress_events = self.report.events_committed;
            }
        }
    }

    /// Decodes one delivery and places it: in the open segment, dropped as a duplicate, or in
    /// quarantine. The outer error is fatal; the inner one is a broker error (reconnect).
    async fn on_delivery(
        &mut self,
        delivery: Delivery,
    ) -> Result<Result<(), BrokerError>, ExportError> {
        let tag = delivery.delivery_tag;
        match cdc::decode_delivery(&delivery.data, delivery.properties.headers().as_ref()) {
            Ok(event) => self.place(tag, event).await,
            Err(error) => {
                let reason = error.to_string();
                self.quarantine(tag, &delivery, reason).await
            }
        }
    }

    async fn place(
        &mut self,
        tag: u64,
        event: cdc::Event,
    ) -> Result<Result<(), BrokerError>, ExportError> {
        let outcome = self.open.append(
            &event,
            self.sealed_last,
            &mut self.seen_accounts,
            Instant::now(),
        );
        match outcome {
            Append::Appended => self.open_ack_tag = Some(tag),
            Append::AlreadyCommitted | Append::DuplicateInSegment => {
                self.report.duplicates_dropped += 1;
                self.open_ack_tag = Some(tag);
            }
            Append::NeedsSeal => {
                assert!(
                    self.held.is_none(),
                    "one held event at most: the loop stops taking deliveries while one is held"
                );
                self.held = Some((tag, event));
            }
            Append::Late => {
                let body = cdc::encode(&event).into_bytes();
                let reason = format!(
                    "late event: timestamp {} ({}) arrived after events of a later UTC day; it is kept here, not in the ordered lake",
                    event.timestamp,
                    timefmt::rfc3339(event.timestamp)
                );
                let record =
                    self.quarantine_record(reason, String::new(), String::new(), Vec::new(), body);
                return self.store_quarantine(tag, record).await;
            }
        }
        Ok(Ok(()))
    }

    async fn quarantine(
        &mut self,
        tag: u64,
        delivery: &Delivery,
        reason: String,
    ) -> Result<Result<(), BrokerError>, ExportError> {
        tracing::warn!(%reason, delivery_tag = tag, "quarantining an undecodable message");
        let headers = delivery
            .properties
            .headers()
            .as_ref()
            .map(|table| {
                table
                    .inner()
                    .iter()
                    .map(|(k, v)| (k.to_string(), format!("{v:?}")))
                    .collect()
            })
            .unwrap_or_default();
        let record = self.quarantine_record(
            reason,
            delivery.exchange.to_string(),
            delivery.routing_key.to_string(),
            headers,
            delivery.data.clone(),
        );
        self.store_quarantine(tag, record).await
    }

    fn quarantine_record(
        &self,
        reason: String,
        exchange: String,
        routing_key: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Quarantined {
        let received_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Quarantined {
            received_ns,
            reason,
            exchange,
            routing_key,
            headers,
            body,
        }
    }

    /// Writes a quarantine record durably (retried like a segment), then acknowledges that one delivery.
    async fn store_quarantine(
        &mut self,
        tag: u64,
        record: Quarantined,
    ) -> Result<Result<(), BrokerError>, ExportError> {
        let lake = self.lake.clone();
        retry_lake_write(self.options.lake_retry_max, self.sealed_last, || {
            lake.quarantine(&record)
        })
        .await?;
        self.report.quarantined += 1;
        Ok(self.session.ack_one(tag).await)
    }

    /// A sweep page: its accounts that no file or open segment records become the pending swept
    /// commit (and are seen from now on, so no segment records them again).
    fn on_sweep(&mut self, message: SweepMessage) {
        match message {
            SweepMessage::Page(page) => {
                let new = sweep::take_new(page, &mut self.seen_accounts);
                if !new.is_empty() {
                    self.swept_pending = Some(new);
                }
            }
            SweepMessage::PassDone { started } => self.sweep_pass_started = Some(started),
        }
    }

    /// Commits the pending swept accounts in the background. Only called with nothing in flight.
    fn start_swept_commit(&mut self) {
        assert!(self.inflight.is_none());
        let Some(accounts) = self.swept_pending.take() else {
            return;
        };
        let account_count = accounts.len() as u64;
        let lake = self.lake.clone();
        let cluster_id = self.options.cluster_id;
        let retry_max = self.options.lake_retry_max;
        let committed_before = self.report.last_committed_timestamp;
        let task = tokio::spawn(async move {
            retry_lake_write(retry_max, committed_before, || {
                lake.commit_swept(&accounts, cluster_id)
            })
            .await
        });
        self.inflight = Some(Inflight {
            task,
            work: Work::Swept { account_count },
        });
    }

    /// Seals the open segment and commits it in the background. Only called with nothing in flight,
    /// so acknowledgements stay in delivery order.
    fn start_commit(&mut self) {
        assert!(self.inflight.is_none());
        if self.open.is_empty() {
            return;
        }
        let ack_tag = self
            .open_ack_tag
            .take()
            .expect("a non-empty segment has a delivery tag");
        let segment: Segment = self.open.seal();
        let last_timestamp = segment
            .events
            .last()
            .map(|e| e.timestamp)
            .expect("non-empty");
        let event_count = segment.events.len() as u64;
        self.sealed_last = Some(last_timestamp);
        let lake = self.lake.clone();
        let cluster_id = self.options.cluster_id;
        let retry_max = self.options.lake_retry_max;
        let committed_before = self.report.last_committed_timestamp;
        let task = tokio::spawn(async move {
            retry_lake_write(retry_max, committed_before, || {
                lake.commit(&segment, cluster_id)
            })
            .await
        });
        self.inflight = Some(Inflight {
            task,
            work: Work::Segment {
                ack_tag,
                event_count,
                last_timestamp,
            },
        });
    }

    /// The background commit finished: count it and acknowledge everything it covered.
    async fn on_committed(
        &mut self,
        joined: Result<Result<CommitOutcome, ExportError>, tokio::task::JoinError>,
    ) -> Result<Result<(), BrokerError>, ExportError> {
        let inflight = self
            .inflight
            .take()
            .expect("on_committed without a commit in flight");
        let outcome = joined.map_err(|e| ExportError::CommitTask(e.to_string()))??;
        let (ack_tag, event_count, last_timestamp) = match inflight.work {
            Work::Segment {
                ack_tag,
                event_count,
                last_timestamp,
            } => (ack_tag, event_count, last_timestamp),
            Work::Swept { account_count } => {
                self.count_swept(outcome, account_count);
                return Ok(Ok(()));
            }
        };
        match outcome {
            CommitOutcome::Committed { bytes } => {
                self.report.bytes_committed += bytes;
                self.report.segments_committed += 1;
                self.report.events_committed += event_count;
            }
            CommitOutcome::AlreadyCommitted => {
                tracing::warn!(
                    last = last_timestamp,
                    "segment was already committed by an earlier attempt"
                );
            }
        }
        self.report.last_committed_timestamp = Some(last_timestamp);
        Ok(self.session.ack_through(ack_tag).await)
    }

    fn count_swept(&mut self, outcome: CommitOutcome, account_count: u64) {
        if let CommitOutcome::Committed { bytes } = outcome {
            self.report.bytes_committed += bytes;
        }
        // AlreadyCommitted: a retried write whose first attempt succeeded; the file holds them.
        self.report.accounts_swept += account_count;
        self.report.swept_files_committed += 1;
        tracing::info!(accounts = account_count, "recorded swept accounts");
    }

    /// Acknowledges deliveries that were all dropped (duplicates): nothing to write, nothing in flight.
    async fn ack_pending_drops(&mut self) -> Result<(), BrokerError> {
        debug_assert!(self.open.is_empty() && self.inflight.is_none());
        match self.open_ack_tag.take() {
            Some(tag) => self.session.ack_through(tag).await,
            None => Ok(()),
        }
    }

    /// Shutdown or idle: commit everything received, acknowledge it, close the session.
    async fn finish(&mut self, end: SessionEnd) -> Result<SessionEnd, ExportError> {
        if let Some(inflight) = self.inflight.as_mut() {
            let joined = (&mut inflight.task).await;
            if let Err(error) = self.on_committed(joined).await? {
                return Ok(self.abandon(error).await);
            }
        }
        // Before the open segment, whose events may use these accounts.
        if self.swept_pending.is_some() {
            self.start_swept_commit();
            let joined = (&mut self.inflight.as_mut().expect("just started").task).await;
            if let Err(error) = self.on_committed(joined).await? {
                return Ok(self.abandon(error).await);
            }
        }
        if !self.open.is_empty() {
            self.start_commit();
            let joined = (&mut self.inflight.as_mut().expect("just started").task).await;
            if let Err(error) = self.on_committed(joined).await? {
                return Ok(self.abandon(error).await);
            }
        }
        if let Err(error) = self.ack_pending_drops().await {
            return Ok(self.abandon(error).await);
        }
        if let Some((_, event)) = &self.held {
            // Held events are not acknowledged: the broker redelivers them to the next run.
            tracing::info!(
                timestamp = event.timestamp,
                "left one unacknowledged event for the next run"
            );
        }
        Ok(end)
    }

    /// The session is lost: let a commit in flight finish (it is durable either way), then give up
    /// the session. Unacknowledged deliveries are redelivered to the next session and deduplicated.
    async fn abandon(&mut self, error: BrokerError) -> SessionEnd {
        if let Some(inflight) = self.inflight.take() {
            if let Ok(Ok(outcome)) = inflight.task.await {
                match inflight.work {
                    Work::Segment {
                        event_count,
                        last_timestamp,
                        ..
                    } => {
                        self.report.last_committed_timestamp = Some(last_timestamp);
                        self.report.events_committed += event_count;
                        self.report.segments_committed += 1;
                    }
                    Work::Swept { account_count } => self.count_swept(outcome, account_count),
                }
            }
        }
        // A pending swept page is dropped with the session: its accounts are not in the lake,
        // so the next session's sweep (or their events) records them.
        SessionEnd::Broker(error)
    }
}

/// The last committed timestamp, for messages.
fn describe_position(committed_last: Option<u64>) -> String {
    match committed_last {
        Some(timestamp) => format!("timestamp {timestamp} ({})", timefmt::rfc3339(timestamp)),
        None => "the start of the stream".to_string(),
    }
}

/// The sweep's next message; never, without a sweep.
async fn recv_sweep(sweeper: &mut Option<Sweeper>) -> Option<SweepMessage> {
    match sweeper {
        Some(sweeper) => sweeper.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the commit in flight finishes; never, when there is none (the branch is disabled then).
async fn wait_inflight(
    inflight: &mut Option<Inflight>,
) -> Result<Result<CommitOutcome, ExportError>, tokio::task::JoinError> {
    match inflight {
        Some(inflight) => (&mut inflight.task).await,
        None => std::future::pending().await,
    }
}

/// Retries a lake write with exponential backoff for at most `retry_max`, then fails with the
/// position that is known to be committed.
async fn retry_lake_write<T, F, Fut>(
    retry_max: Duration,
    committed_last: Option<u64>,
    mut write: F,
) -> Result<T, ExportError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LakeError>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match write().await {
            Ok(value) => return Ok(value),
            Err(source) if started.elapsed() + delay < retry_max => {
                tracing::warn!(error = %source, retry_in_ms = delay.as_millis() as u64, "lake write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(source) => {
                return Err(ExportError::LakeWriteFailed {
                    elapsed_s: started.elapsed().as_secs(),
                    limit_s: retry_max.as_secs(),
                    committed_last,
                    source,
                })
            }
        }
    }
}
