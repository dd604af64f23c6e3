//! The real stack a test exports from: a replica, an exchange with a bound queue, the CDC job,
//! and the exporter in-process, plus helpers that wait on the lake.

use std::path::Path;
use std::time::Duration;

use ledgerlake::export::broker::BrokerOptions;
use ledgerlake::export::segment::SealPolicy;
use ledgerlake::export::{self, ExportOptions, ExportReport};
use ledgerlake::lake::Lake;
use ledgerlake::testbed::{self, Broker, CdcJob, Replica};
use ledgerlake::workload::{self, WorkloadConfig, WorkloadSummary};
use tokio::sync::oneshot;

/// A replica, an exchange with a bound queue, and a CDC job publishing to it.
pub struct Stack {
    pub replica: Replica,
    pub broker: Broker,
    pub exchange: String,
    pub queue: String,
    pub cdc: Option<CdcJob>,
}

impl Stack {
    pub async fn start() -> Stack {
        let replica = Replica::start(testbed::random_cluster_id())
            .await
            .expect("replica starts");
        let broker = Broker::connect()
            .await
            .expect("broker reachable (run scripts/setup.sh)");
        let exchange = testbed::unique_name("ledgerlake-test");
        let queue = testbed::unique_name("ledgerlake-test-lake");
        broker.declare_exchange(&exchange).await.expect("exchange");
        broker
            .declare_queue_bound(&queue, &exchange)
            .await
            .expect("queue");
        let cdc = CdcJob::start(&replica, &exchange, None)
            .await
            .expect("CDC job starts");
        Stack {
            replica,
            broker,
            exchange,
            queue,
            cdc: Some(cdc),
        }
    }

    pub fn export_options(&self, lake: &str) -> ExportOptions {
        export_options(&self.queue, self.replica.cluster_id(), lake)
    }

    pub async fn run_workload(&self, seed: u64, transfer_count: usize) -> WorkloadSummary {
        let client = self.replica.client().expect("client");
        let config = WorkloadConfig::new(seed, transfer_count);
        workload::run(&client, &config, |_| {})
            .await
            .expect("workload runs")
    }

    pub async fn cleanup(mut self) {
        if let Some(cdc) = self.cdc.take() {
            cdc.stop().await;
        }
        let _ = self.broker.delete_queue(&self.queue).await;
        let _ = self.broker.delete_exchange(&self.exchange).await;
        let _ = self
            .broker
            .delete_cdc_queues(self.replica.cluster_id())
            .await;
    }
}

/// The exporter in-process, stopped through a channel (as SIGTERM would).
pub struct InProcessExporter {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<ExportReport, export::ExportError>>,
}

impl InProcessExporter {
    pub fn start(options: ExportOptions) -> InProcessExporter {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(export::run(options, shutdown));
        InProcessExporter { stop, task }
    }

    pub async fn stop(self) -> ExportReport {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("exporter task")
            .expect("exporter ends cleanly")
    }
}

pub async fn lake_event_count(lake: &Lake) -> u64 {
    let mut total = 0;
    for segment in lake.list_segments().await.expect("listing") {
        total += lake.segment_counts(&segment).await.expect("footer").events;
    }
    total
}

pub async fn wait_for_event_count(lake: &Lake, expected: u64, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let count = lake_event_count(lake).await;
        if count >= expected {
            assert_eq!(
                count, expected,
                "the lake holds more events than the source produced"
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lake reached {count} of {expected} events within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn lake_path(dir: &Path) -> String {
    dir.join("lake").to_string_lossy().into_owned()
}

/// Exporter options for tests: the test broker, small time-based segments, short retry limits.
pub fn export_options(queue: &str, cluster_id: u128, lake: &str) -> ExportOptions {
    ExportOptions {
        broker: BrokerOptions {
            url: testbed::amqp_url(),
            queue: queue.to_string(),
            exchange: None,
            declare: false,
            prefetch: 65_535,
            consumer_tag: testbed::unique_name("ledgerlake-test-consumer"),
        },
        lake: lake.to_string(),
        cluster_id,
        seal: SealPolicy {
            events_max: 32_768,
            bytes_max: 64 << 20,
            age_max: Duration::from_millis(500),
            idle_max: Duration::from_millis(100),
        },
        until_idle: None,
        lake_retry_max: Duration::from_secs(30),
        broker_retry_max: Duration::from_secs(30),
        progress_interval: Duration::from_secs(5),
        sweep: None,
        compact: None,
    }
}
