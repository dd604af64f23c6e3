//! `ledgerlake export`: moves CDC events from a RabbitMQ queue into the lake, exactly once,
//! acknowledging a message only after the segment that holds it is committed.
//!
//! `machine` decides (placement, sealing, acknowledgement, the commit slot, idleness, the report)
//! and does no I/O; this module is the driver that does only I/O: it selects over deliveries, the
//! commit task, the sweep, a ticker and shutdown, feeds each as an input to the machine and
//! executes the actions it returns. `segment` computes where an event goes, `broker` talks AMQP,
//! the lake writes; with `--addresses`, `sweep` reads the source cluster's accounts in the
//! background. See docs/DESIGN.md for the argument that nothing is lost or written twice.

pub mod broker;
pub mod machine;
pub mod segment;
pub mod sweep;

#[cfg(test)]
mod sim;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::cdc;
use crate::errors;
use crate::lake::{CommitOutcome, CompactOptions, Lake, LakeError};
use crate::tb::{Cluster, ClusterError};
use crate::timefmt;
use broker::{BrokerError, BrokerOptions, Session};
pub use machine::ExportReport;
use machine::{
    Action, Delivery, End, Failure, Input, Machine, MachineOptions, Payload, SessionStart,
    Undecodable, Work,
};
use segment::SealPolicy;
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
    /// Only transient errors are retried; a permanent one fails at once.
    pub lake_retry_max: Duration,
    /// How long the broker may stay unreachable before the exporter gives up.
    pub broker_retry_max: Duration,
    pub progress_interval: Duration,
    /// Sweep the source cluster's accounts into the lake; `None`: accounts that no transfer
    /// event shows are not recorded.
    pub sweep: Option<SweepOptions>,
    /// Compact the lake in the background (`lake::start_compactor`); `None`: no compaction.
    pub compact: Option<CompactOptions>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("the lake rejected writes for {elapsed_s} s (limit {limit_s} s); nothing after {} was acknowledged", describe_position(*.committed_last))]
    LakeWriteFailed {
        elapsed_s: u64,
        limit_s: u64,
        committed_last: Option<u64>,
        #[source]
        source: LakeError,
    },
    #[error("the lake refused a write (a permanent error, not retried); nothing after {} was acknowledged", describe_position(*.committed_last))]
    LakeWriteRefused {
        committed_last: Option<u64>,
        #[source]
        source: LakeError,
    },
    #[error("the broker stayed unreachable for {elapsed_s} s (limit {limit_s} s)")]
    BrokerUnavailable {
        elapsed_s: u64,
        limit_s: u64,
        #[source]
        source: BrokerError,
    },
    #[error("the broker refused the session (a permanent error, not retried)")]
    BrokerRefused {
        #[source]
        source: BrokerError,
    },
    #[error("the commit task failed: {0}")]
    CommitTask(String),
    #[error("account sweep")]
    SweepClient(#[from] ClusterError),
    #[error("the account sweep task stopped")]
    SweepStopped,
}

/// A shutdown signal (SIGINT/SIGTERM in the binary, a channel in tests).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How often the machine gets a `Tick` (time-based sealing and idleness).
const TICK_INTERVAL: Duration = Duration::from_millis(50);

/// Runs the exporter until shutdown, idleness (`until_idle`) or a fatal error.
pub async fn run(options: ExportOptions, shutdown: Shutdown) -> Result<ExportReport, ExportError> {
    let lake = Arc::new(Lake::open(&options.lake).await?);
    run_on(lake, options, shutdown).await
}

/// [`run`] on a lake already opened (over any store; `options.lake` is not used), for tests
/// that watch what the exporter reads and writes.
pub async fn run_on(
    lake: Arc<Lake>,
    options: ExportOptions,
    shutdown: Shutdown,
) -> Result<ExportReport, ExportError> {
    // Completes a compaction a crash interrupted, then compacts on its own task until dropped.
    let _compactor =
        crate::lake::start_compactor(lake.clone(), options.cluster_id, options.compact, |done| {
            crate::metrics::compaction_done(done.bytes_after)
        })
        .await?;
    let mut report = ExportReport::default();
    // The first session's state is read before the broker is reached, so a lake that cannot be
    // exported to (another cluster's, a newer format) is refused at once.
    let first = lake.resume_state(options.cluster_id).await?;
    for (table, retention) in &first.long_tombstone_retention {
        tracing::warn!(
            table,
            retention = %retention.map_or_else(|| "unset (Delta's default, 7 days)".to_string(), |r| format!("{} s", r.as_secs())),
            "this table's checkpoints keep a remove action for every file compacted away within its tombstone retention (delta.deletedFileRetentionDuration), so they grow with that much history; tables created by this version keep one hour (docs/DESIGN.md, \"The life of a file\")"
        );
    }
    let mut resume = Some(first);

    let cluster = match &options.sweep {
        Some(sweep) => Some(Arc::new(Cluster::connect(
            options.cluster_id,
            &sweep.addresses,
            sweep.request_timeout,
        )?)),
        None => None,
    };
    let machine_options = MachineOptions {
        seal: options.seal,
        until_idle: options.until_idle,
        sweep: options.sweep.is_some(),
    };

    let mut shutdown = ShutdownSignal {
        signal: shutdown,
        requested: false,
    };
    loop {
        let Some(session) = connect(&options, &mut shutdown).await? else {
            return Ok(report);
        };
        // Every session starts from what the lake holds (the lake is the consumer position):
        // one listing of the lake per session, after the broker is reached, never per attempt.
        let resume = match resume.take() {
            Some(resume) => resume,
            None => lake.resume_state(options.cluster_id).await?,
        };
        report.orphans_removed += resume.orphans_removed.len() as u64;
        for orphan in &resume.orphans_removed {
            tracing::warn!(object = %orphan, "removed an accounts file left by an interrupted commit");
        }
        let start = SessionStart {
            committed_last: resume.committed_last,
        };
        tracing::info!(
            queue = %options.broker.queue,
            lake = %lake.location(),
            resume_after = %start.committed_last.map_or_else(|| "the start".to_string(), timefmt::rfc3339),
            transfers_version = resume.transfers_version,
            "consuming"
        );
        let sweeper = match (&cluster, &options.sweep) {
            (Some(cluster), Some(sweep)) => Some(Sweeper::start(
                cluster.clone(),
                resume.swept_through,
                sweep.interval,
            )),
            _ => None,
        };
        let mut machine = Machine::new(machine_options, start, report, Instant::now());
        let mut driver = Driver {
            lake: lake.clone(),
            options: &options,
            session,
            sweeper,
            commit: None,
            failure: None,
            broker_error: None,
        };
        crate::metrics::broker_connected();
        let end = driver.drive(&mut machine, &mut shutdown).await;
        crate::metrics::stopped();
        report = machine.into_report();
        match end? {
            End::Shutdown | End::Idle => {
                driver.session.close().await;
                return Ok(report);
            }
            End::BrokerLost => {
                crate::metrics::broker_lost();
                let error = driver
                    .broker_error
                    .take()
                    .map_or_else(|| "unknown".to_string(), |e| errors::one_line(&e));
                tracing::warn!(%error, "lost the broker session; reconnecting and resuming from the lake");
                if shutdown.requested {
                    return Ok(report);
                }
            }
            End::LakeFailed(_) => {
                let error = driver.failure.take();
                return Err(error.unwrap_or_else(|| {
                    ExportError::CommitTask("a commit failed without an error".into())
                }));
            }
        }
    }
}

/// The shutdown future, polled until it fires once.
struct ShutdownSignal {
    signal: Shutdown,
    requested: bool,
}

impl ShutdownSignal {
    /// Resolves when shutdown is requested; never again after that.
    async fn wait(&mut self) {
        if self.requested {
            std::future::pending::<()>().await;
        }
        (&mut self.signal).await;
        self.requested = true;
    }
}

/// Opens a broker session, retrying with exponential backoff for at most `--broker-retry-max`.
/// `None`: shutdown was requested meanwhile.
async fn connect(
    options: &ExportOptions,
    shutdown: &mut ShutdownSignal,
) -> Result<Option<Session>, ExportError> {
    if shutdown.requested {
        return Ok(None);
    }
    let started = Instant::now();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(10))
        .with_total_delay(Some(options.broker_retry_max))
        .without_max_times();
    // Refused credentials, a missing vhost or queue: retrying cannot help, so fail at once.
    let open = (|| Session::open(&options.broker))
        .retry(backoff)
        .when(|error: &BrokerError| !error.is_permanent())
        .notify(|error: &BrokerError, delay: Duration| {
            let error = errors::one_line(error);
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "broker unreachable");
        });
    tokio::select! {
        _ = shutdown.wait() => Ok(None),
        opened = open => opened.map(Some).map_err(|source| {
            if source.is_permanent() {
                ExportError::BrokerRefused { source }
            } else {
                ExportError::BrokerUnavailable {
                    elapsed_s: started.elapsed().as_secs(),
                    limit_s: options.broker_retry_max.as_secs(),
                    source,
                }
            }
        }),
    }
}

/// One session's I/O: the broker session, the sweep task and the commit task.
struct Driver<'a> {
    lake: Arc<Lake>,
    options: &'a ExportOptions,
    session: Session,
    sweeper: Option<Sweeper>,
    commit: Option<JoinHandle<Result<CommitOutcome, ExportError>>>,
    /// Why the last commit failed, for `End::LakeFailed`.
    failure: Option<ExportError>,
    /// Why the session was lost, for the log.
    broker_error: Option<BrokerError>,
}

impl Driver<'_> {
    /// Feeds the machine until it finishes.
    async fn drive(
        &mut self,
        machine: &mut Machine,
        shutdown: &mut ShutdownSignal,
    ) -> Result<End, ExportError> {
        let mut ticker = tokio::time::interval(TICK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut progress = Progress::new(machine.report(), self.options.progress_interval);
        loop {
            let input = tokio::select! {
                biased;
                _ = shutdown.wait() => Input::Shutdown,
                joined = wait_commit(&mut self.commit), if self.commit.is_some() => {
                    self.commit = None;
                    match joined {
                        Ok(Ok(outcome)) => Input::CommitDone(outcome),
                        Ok(Err(error)) => {
                            let failure = match error {
                                ExportError::LakeWriteRefused { .. } => Failure::Permanent,
                                _ => Failure::RetriesExhausted,
                            };
                            self.failure = Some(error);
                            Input::CommitFailed(failure)
                        }
                        Err(join) => return Err(ExportError::CommitTask(join.to_string())),
                    }
                }
                delivery = self.session.consumer.next(), if machine.can_take() => match delivery {
                    Some(Ok(delivery)) => Input::Delivery(input_of(delivery)),
                    Some(Err(source)) => {
                        self.broker_error = Some(BrokerError::Protocol {
                            action: "receive deliveries".into(),
                            source,
                        });
                        Input::BrokerLost
                    }
                    None => {
                        self.broker_error = Some(BrokerError::ConsumerCancelled);
                        Input::BrokerLost
                    }
                },
                message = recv_sweep(&mut self.sweeper), if machine.wants_sweep() => match message {
                    Some(SweepMessage::Page(page)) => Input::SweepPage(page),
                    Some(SweepMessage::PassDone { started }) => { crate::metrics::sweep_pass_done(); Input::SweepPassDone { started } }
                    None => return Err(ExportError::SweepStopped),
                },
                _ = ticker.tick() => Input::Tick,
            };
            if let Some(end) = self.feed(machine, input).await {
                return Ok(end);
            }
            progress.log(machine.report());
            crate::metrics::export_totals(metric_totals(machine));
        }
    }

    /// Steps the machine with `input` and executes its actions; a failed acknowledgement becomes
    /// a `BrokerLost` input. `Some`: the machine finished.
    async fn feed(&mut self, machine: &mut Machine, input: Input) -> Option<End> {
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let lost = input == Input::BrokerLost;
            for action in machine.step(input, Instant::now()) {
                match action {
                    Action::StartCommit(work) => self.start_commit(work, machine.report()),
                    Action::AckThrough(tag) if !lost && next.is_none() => {
                        if let Err(error) = self.session.ack_through(tag).await {
                            self.broker_error = Some(error);
                            next = Some(Input::BrokerLost);
                        }
                    }
                    Action::AckOne(tag) if !lost && next.is_none() => {
                        if let Err(error) = self.session.ack_one(tag).await {
                            self.broker_error = Some(error);
                            next = Some(Input::BrokerLost);
                        }
                    }
                    // The session is gone: the broker redelivers what these would acknowledge.
                    Action::AckThrough(_) | Action::AckOne(_) => {}
                    Action::Finish(end) => return Some(end),
                }
            }
        }
        None
    }

    fn start_commit(&mut self, work: Work, report: &ExportReport) {
        assert!(self.commit.is_none(), "one commit in flight at most");
        let lake = self.lake.clone();
        let cluster_id = self.options.cluster_id;
        let retry_max = self.options.lake_retry_max;
        let committed_last = report.last_committed_timestamp;
        self.commit = Some(tokio::spawn(async move {
            let _timer = crate::metrics::CommitTimer::start();
            let started = Instant::now();
            let written = write(&lake, &work, cluster_id, retry_max, committed_last).await;
            tracing::debug!(
                work = work.describe(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                ok = written.is_ok(),
                "commit finished"
            );
            written
        }));
    }
}

/// Writes one unit of work, retrying transient errors.
async fn write(
    lake: &Lake,
    work: &Work,
    cluster_id: u128,
    retry_max: Duration,
    committed_last: Option<u64>,
) -> Result<CommitOutcome, ExportError> {
    match work {
        Work::Segment(segment) => {
            retry_lake_write(retry_max, committed_last, || {
                lake.commit(segment, cluster_id)
            })
            .await
        }
        Work::Swept(page) => {
            retry_lake_write(retry_max, committed_last, || {
                lake.commit_swept(&page.accounts, page.through, cluster_id)
            })
            .await
        }
        Work::Quarantine(records) => {
            // One record at a time, each retried on its own, so a retry rewrites no other.
            for record in records {
                retry_lake_write(retry_max, committed_last, || lake.quarantine(record)).await?;
            }
            Ok(CommitOutcome::Committed { bytes: 0 })
        }
    }
}

/// A delivery as the machine sees it: decoded, or the raw message for quarantine.
fn input_of(delivery: lapin::message::Delivery) -> Delivery {
    crate::metrics::message_received();
    let received_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let headers = delivery.properties.headers().as_ref();
    let payload = match cdc::decode_delivery(&delivery.data, headers) {
        Ok(event) => Payload::Event(event),
        Err(error) => Payload::Undecodable(Undecodable {
            reason: error.to_string(),
            exchange: delivery.exchange.to_string(),
            routing_key: delivery.routing_key.to_string(),
            headers: headers
                .map(|table| {
                    table
                        .inner()
                        .iter()
                        .map(|(k, v)| (k.to_string(), format!("{v:?}")))
                        .collect()
                })
                .unwrap_or_default(),
            body: delivery.data,
        }),
    };
    Delivery {
        tag: delivery.delivery_tag,
        received_ns,
        payload,
    }
}

/// The periodic progress line.
struct Progress {
    interval: Duration,
    logged_at: Instant,
    events_committed: u64,
}

impl Progress {
    fn new(report: &ExportReport, interval: Duration) -> Progress {
        Progress {
            interval,
            logged_at: Instant::now(),
            events_committed: report.events_committed,
        }
    }

    fn log(&mut self, report: &ExportReport) {
        let elapsed = self.logged_at.elapsed();
        if elapsed < self.interval {
            return;
        }
        let rate = (report.events_committed - self.events_committed) as f64 / elapsed.as_secs_f64();
        tracing::info!(
            committed = report.events_committed,
            events_per_s = rate.round() as u64,
            last = %report.last_committed_timestamp.map_or_else(|| "-".to_string(), timefmt::rfc3339),
            duplicates = report.duplicates_dropped,
            quarantined = report.quarantined,
            "progress"
        );
        self.logged_at = Instant::now();
        self.events_committed = report.events_committed;
    }
}

/// The machine's totals, for the metrics (`crate::metrics`).
fn metric_totals(machine: &Machine) -> crate::metrics::ExportTotals {
    let report = machine.report();
    crate::metrics::ExportTotals {
        events_committed: report.events_committed,
        duplicates_dropped: report.duplicates_dropped,
        transfer_segments_committed: report.segments_committed,
        swept_files_committed: report.swept_files_committed,
        bytes_committed: report.bytes_committed,
        reconnects: report.reconnects,
        last_committed_timestamp: report.last_committed_timestamp,
        open_segment_events: machine.open_segment_events(),
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
async fn wait_commit(
    commit: &mut Option<JoinHandle<Result<CommitOutcome, ExportError>>>,
) -> Result<Result<CommitOutcome, ExportError>, tokio::task::JoinError> {
    match commit {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

/// Retries a lake write with exponential backoff while its errors are transient, for at most
/// `retry_max` in total; a permanent error fails at once. The error names the position that is
/// known to be committed.
async fn retry_lake_write<T, F, Fut>(
    retry_max: Duration,
    committed_last: Option<u64>,
    write: F,
) -> Result<T, ExportError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LakeError>>,
{
    let started = Instant::now();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_total_delay(Some(retry_max))
        .without_max_times();
    write
        .retry(backoff)
        .when(LakeError::is_transient)
        .notify(|error: &LakeError, delay: Duration| {
            crate::metrics::lake_write_failed();
            let error = errors::one_line(error);
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "lake write failed; retrying");
        })
        .await
        .map_err(|source| {
            crate::metrics::lake_write_failed();
            if source.is_transient() {
                ExportError::LakeWriteFailed {
                    elapsed_s: started.elapsed().as_secs(),
                    limit_s: retry_max.as_secs(),
                    committed_last,
                    source,
                }
            } else {
                ExportError::LakeWriteRefused {
                    committed_last,
                    source,
                }
            }
        })
}

#[cfg(test)]
mod tests;
