//! The Prometheus metrics and health endpoints of a long-running ledgerlake (`export
//! --metrics-addr`), in one place: every metric's name and help text, one recording function per
//! thing that happens (called from the code with one line each), and the small HTTP server that
//! serves `/metrics` (Prometheus text), `/ready` (200 while consuming) and `/live` (200 while the
//! process runs).
//!
//! Recording goes through the `metrics` facade: until [`serve`] installs the Prometheus
//! recorder, every recording function is a no-op, so commands that serve no metrics (and the
//! tests) pay nothing. This module depends on no other module of the crate, so any command can
//! record (the export, compaction, a drill). docs/OPERATING.md lists every metric and gives alert
//! rules; keep it in step with [`METRICS`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const EVENTS_RECEIVED: &str = "ledgerlake_events_received_total";
pub const EVENTS_COMMITTED: &str = "ledgerlake_events_committed_total";
pub const DUPLICATES_DROPPED: &str = "ledgerlake_duplicates_dropped_total";
pub const QUARANTINED: &str = "ledgerlake_quarantined_total";
pub const SEGMENTS_COMMITTED: &str = "ledgerlake_segments_committed_total";
pub const BYTES_COMMITTED: &str = "ledgerlake_bytes_committed_total";
pub const COMMIT_DURATION: &str = "ledgerlake_commit_duration_seconds";
pub const LAKE_WRITE_ERRORS: &str = "ledgerlake_lake_write_errors_total";
pub const BROKER_UP: &str = "ledgerlake_broker_up";
pub const BROKER_CONNECTIONS_LOST: &str = "ledgerlake_broker_connections_lost_total";
pub const BROKER_RECONNECTS: &str = "ledgerlake_broker_reconnects_total";
pub const LAST_COMMITTED_EVENT: &str = "ledgerlake_last_committed_event_timestamp_seconds";
pub const LAG: &str = "ledgerlake_lag_seconds";
pub const OPEN_SEGMENT_EVENTS: &str = "ledgerlake_open_segment_events";
pub const SWEEP_LAST_SUCCESS: &str = "ledgerlake_sweep_last_success_timestamp_seconds";
pub const COMPACTION_RUNS: &str = "ledgerlake_compaction_runs_total";
pub const COMPACTION_BYTES: &str = "ledgerlake_compaction_bytes_total";
pub const READY: &str = "ledgerlake_ready";

/// Every metric: name, type, labels, help. docs/OPERATING.md repeats this table.
pub const METRICS: [(&str, &str, &str, &str); 18] = [
    (
        EVENTS_RECEIVED,
        "counter",
        "",
        "CDC messages received from the broker (redeliveries included)",
    ),
    (
        EVENTS_COMMITTED,
        "counter",
        "",
        "Transfer events committed to the lake (acknowledged after)",
    ),
    (
        DUPLICATES_DROPPED,
        "counter",
        "",
        "Redelivered events dropped because the lake already holds them",
    ),
    (
        QUARANTINED,
        "counter",
        "reason",
        "Messages set aside in quarantine/, by reason (undecodable, late)",
    ),
    (
        SEGMENTS_COMMITTED,
        "counter",
        "table",
        "Delta commits, by table (transfers, swept_accounts)",
    ),
    (
        BYTES_COMMITTED,
        "counter",
        "",
        "Bytes of Parquet committed to the lake",
    ),
    (
        COMMIT_DURATION,
        "histogram",
        "",
        "Time to commit one unit of work to the lake, retries included",
    ),
    (
        LAKE_WRITE_ERRORS,
        "counter",
        "",
        "Failed lake writes (each retry counts; the last one too)",
    ),
    (
        BROKER_UP,
        "gauge",
        "",
        "1 while a broker session is open, 0 otherwise",
    ),
    (
        BROKER_CONNECTIONS_LOST,
        "counter",
        "",
        "Broker sessions lost",
    ),
    (
        BROKER_RECONNECTS,
        "counter",
        "",
        "Broker sessions reopened after a loss",
    ),
    (
        LAST_COMMITTED_EVENT,
        "gauge",
        "",
        "Commit timestamp of the last event in the lake (Unix seconds)",
    ),
    (
        LAG,
        "gauge",
        "",
        "Now minus the last committed event's timestamp, in seconds (at scrape time)",
    ),
    (
        OPEN_SEGMENT_EVENTS,
        "gauge",
        "",
        "Events in the segment being filled (not yet committed)",
    ),
    (
        SWEEP_LAST_SUCCESS,
        "gauge",
        "",
        "When the last account sweep pass completed (Unix seconds)",
    ),
    (COMPACTION_RUNS, "counter", "", "Compaction runs completed"),
    (
        COMPACTION_BYTES,
        "counter",
        "",
        "Bytes rewritten by compaction",
    ),
    (
        READY,
        "gauge",
        "",
        "1 while consuming (what /ready answers 200 for)",
    ),
];

/// The commit-duration histogram's buckets, in seconds.
pub const COMMIT_DURATION_BUCKETS_S: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Connections served at once, at most; more wait for the listener's backlog.
pub const CONNECTIONS_MAX: usize = 16;
/// How long a client may take to send its request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the process is consuming (what `/ready` tells).
static READY_NOW: AtomicBool = AtomicBool::new(false);
/// Commit timestamp (ns since the epoch) of the last committed event; 0: none yet.
static LAST_COMMITTED_NS: AtomicU64 = AtomicU64::new(0);
/// The installed recorder (once per process).
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// When the recorder was installed; `export_totals` rates itself against it.
static STARTED: OnceLock<Instant> = OnceLock::new();
/// When `export_totals` last recorded (ms since `STARTED`; 0: never).
static TOTALS_RECORDED_MS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics-addr {addr}: not a HOST:PORT address")]
    BadAddress { addr: String },
    #[error("cannot listen for metrics on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder")]
    Recorder(#[source] metrics_exporter_prometheus::BuildError),
}

// ---- recording (one call per thing that happens) -------------------------------------------

/// A CDC message arrived from the broker.
pub fn message_received() {
    if HANDLE.get().is_none() {
        return; // the common case without --metrics-addr: not even a lookup per message
    }
    counter!(EVENTS_RECEIVED).increment(1);
}

/// A message is set aside in quarantine (`reason`: `undecodable` or `late`).
pub fn quarantined(reason: &'static str) {
    counter!(QUARANTINED, "reason" => reason).increment(1);
}

/// A lake write failed (it may be retried).
pub fn lake_write_failed() {
    counter!(LAKE_WRITE_ERRORS).increment(1);
}

/// A broker session is open: the exporter consumes.
pub fn broker_connected() {
    gauge!(BROKER_UP).set(1.0);
    set_ready(true);
}

/// The broker session is lost (the exporter reconnects).
pub fn broker_lost() {
    gauge!(BROKER_UP).set(0.0);
    counter!(BROKER_CONNECTIONS_LOST).increment(1);
    set_ready(false);
}

/// The exporter stops consuming (shutdown, idleness, a fatal error).
pub fn stopped() {
    gauge!(BROKER_UP).set(0.0);
    set_ready(false);
}

/// Whether `/ready` answers 200.
pub fn set_ready(ready: bool) {
    READY_NOW.store(ready, Ordering::Relaxed);
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

/// A sweep pass read every account created since the previous one.
pub fn sweep_pass_done() {
    gauge!(SWEEP_LAST_SUCCESS).set(unix_seconds_now());
}

/// A compaction run finished, having rewritten `bytes` bytes.
pub fn compaction_done(bytes: u64) {
    counter!(COMPACTION_RUNS).increment(1);
    counter!(COMPACTION_BYTES).increment(bytes);
}

/// The exporter's running totals (its report), set as absolute values: the metrics then say
/// exactly what the final report will.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportTotals {
    pub events_committed: u64,
    pub duplicates_dropped: u64,
    pub transfer_segments_committed: u64,
    pub swept_files_committed: u64,
    pub bytes_committed: u64,
    pub reconnects: u64,
    /// Commit timestamp (ns) of the last committed event.
    pub last_committed_timestamp: Option<u64>,
    pub open_segment_events: usize,
}

/// How often [`export_totals`] records at most (it is called after every input of the exporter;
/// the exporter's 50 ms ticks keep the values fresh).
pub const TOTALS_INTERVAL: Duration = Duration::from_millis(50);

pub fn export_totals(totals: ExportTotals) {
    let Some(started) = STARTED.get() else {
        return; // no recorder: nothing to record
    };
    let now_ms = started.elapsed().as_millis() as u64;
    let last_ms = TOTALS_RECORDED_MS.load(Ordering::Relaxed);
    if now_ms.saturating_sub(last_ms) < TOTALS_INTERVAL.as_millis() as u64 && last_ms != 0 {
        return;
    }
    TOTALS_RECORDED_MS.store(now_ms.max(1), Ordering::Relaxed);
    record_totals(totals);
}

fn record_totals(totals: ExportTotals) {
    counter!(EVENTS_COMMITTED).absolute(totals.events_committed);
    counter!(DUPLICATES_DROPPED).absolute(totals.duplicates_dropped);
    counter!(SEGMENTS_COMMITTED, "table" => "transfers")
        .absolute(totals.transfer_segments_committed);
    counter!(SEGMENTS_COMMITTED, "table" => "swept_accounts")
        .absolute(totals.swept_files_committed);
    counter!(BYTES_COMMITTED).absolute(totals.bytes_committed);
    counter!(BROKER_RECONNECTS).absolute(totals.reconnects);
    gauge!(OPEN_SEGMENT_EVENTS).set(totals.open_segment_events as f64);
    if let Some(timestamp) = totals.last_committed_timestamp {
        LAST_COMMITTED_NS.store(timestamp, Ordering::Relaxed);
        gauge!(LAST_COMMITTED_EVENT).set(timestamp as f64 / 1e9);
    }
}

/// Times one commit; records its duration when dropped (success or failure alike).
#[must_use = "the duration is recorded when the timer is dropped"]
pub struct CommitTimer {
    started: Instant,
}

impl CommitTimer {
    pub fn start() -> CommitTimer {
        CommitTimer {
            started: Instant::now(),
        }
    }
}

impl Drop for CommitTimer {
    fn drop(&mut self) {
        histogram!(COMMIT_DURATION).record(self.started.elapsed().as_secs_f64());
    }
}

fn unix_seconds_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---- serving ----------------------------------------------------------------------------------

/// Installs the Prometheus recorder (once per process; later calls return the same handle).
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(COMMIT_DURATION.to_string()),
            &COMMIT_DURATION_BUCKETS_S,
        )
        .map_err(MetricsError::Recorder)?
        .install_recorder()
        .map_err(MetricsError::Recorder)?;
    for (name, kind, _, help) in METRICS {
        match kind {
            "counter" => metrics::describe_counter!(name, help),
            "gauge" => metrics::describe_gauge!(name, help),
            _ => metrics::describe_histogram!(name, metrics::Unit::Seconds, help),
        }
    }
    // Present from the first scrape, so that alert rules see 0 rather than no series.
    counter!(EVENTS_RECEIVED).absolute(0);
    counter!(LAKE_WRITE_ERRORS).absolute(0);
    counter!(BROKER_CONNECTIONS_LOST).absolute(0);
    for reason in ["undecodable", "late"] {
        counter!(QUARANTINED, "reason" => reason).absolute(0);
    }
    record_totals(ExportTotals::default());
    STARTED.get_or_init(Instant::now);
    set_ready(false);
    gauge!(BROKER_UP).set(0.0);
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The metrics text of one scrape: the lag is computed now.
pub fn render(handle: &PrometheusHandle) -> String {
    let last = LAST_COMMITTED_NS.load(Ordering::Relaxed);
    if last > 0 {
        gauge!(LAG).set((unix_seconds_now() - last as f64 / 1e9).max(0.0));
    }
    handle.run_upkeep();
    handle.render()
}

/// The serving task; it stops when dropped.
pub struct MetricsServer {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Installs the recorder and serves `/metrics`, `/ready` and `/live` on `addr` (HOST:PORT;
/// port 0 picks a free one, see `local_addr`).
pub async fn serve(addr: &str) -> Result<MetricsServer, MetricsError> {
    let bind: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| MetricsError::BadAddress {
            addr: addr.to_string(),
        })?;
    let handle = install()?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| MetricsError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| MetricsError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    tracing::info!(addr = %local_addr, "serving metrics at /metrics, health at /ready and /live");
    let task = tokio::spawn(accept_loop(listener, handle));
    Ok(MetricsServer { local_addr, task })
}

async fn accept_loop(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = respond(&handle, request.method(), request.uri().path());
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

fn respond(handle: &PrometheusHandle, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match path {
        "/metrics" => {
            let mut response = text(StatusCode::OK, render(handle));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/ready" if READY_NOW.load(Ordering::Relaxed) => text(StatusCode::OK, "ready\n".into()),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not consuming\n".into()),
        "/live" => text(StatusCode::OK, "live\n".into()),
        _ => text(
            StatusCode::NOT_FOUND,
            "try /metrics, /ready or /live\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_named_once_with_a_known_type() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for (name, kind, _, help) in METRICS {
            assert!(name.starts_with("ledgerlake_"), "{name}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{name}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            assert!(!help.is_empty());
        }
    }

    #[test]
    fn the_operating_guide_lists_every_metric() {
        let guide = include_str!("../docs/OPERATING.md");
        for (name, ..) in METRICS {
            assert!(
                guide.contains(name),
                "docs/OPERATING.md does not list {name}"
            );
        }
    }

    #[tokio::test]
    async fn the_server_answers_health_and_metrics() {
        let server = serve("127.0.0.1:0").await.unwrap();
        let get = |path: &'static str| {
            let addr = server.local_addr;
            async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let request =
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).await.unwrap();
                answer
            }
        };
        assert!(get("/live").await.starts_with("HTTP/1.1 200"));
        set_ready(false);
        assert!(get("/ready").await.starts_with("HTTP/1.1 503"));
        broker_connected();
        assert!(get("/ready").await.starts_with("HTTP/1.1 200"));
        assert!(get("/nothing").await.starts_with("HTTP/1.1 404"));
        quarantined("late");
        compaction_done(1234);
        TOTALS_RECORDED_MS.store(0, Ordering::Relaxed);
        export_totals(ExportTotals {
            events_committed: 42,
            last_committed_timestamp: Some(1_000_000_000),
            ..ExportTotals::default()
        });
        drop(CommitTimer::start());
        let body = get("/metrics").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        for line in [
            "ledgerlake_events_committed_total 42",
            "ledgerlake_quarantined_total{reason=\"late\"} 1",
            "ledgerlake_quarantined_total{reason=\"undecodable\"} 0",
            "ledgerlake_compaction_bytes_total 1234",
            "ledgerlake_compaction_runs_total 1",
            "ledgerlake_last_committed_event_timestamp_seconds 1",
            "ledgerlake_commit_duration_seconds_count 1",
            "ledgerlake_ready 1",
        ] {
            assert!(body.lines().any(|l| l == line), "{line} missing:\n{body}");
        }
        let lag = body
            .lines()
            .find_map(|l| l.strip_prefix("ledgerlake_lag_seconds "))
            .expect("a lag line");
        assert!(lag.parse::<f64>().unwrap() > 1e9, "{lag}");
        stopped();
        assert!(get("/ready").await.starts_with("HTTP/1.1 503"));
    }
}
