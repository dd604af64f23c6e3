//! The real stack for tests, benchmarks and the demo: a single-replica TigerBeetle cluster
//! ([`Replica`]), the `tigerbeetle amqp` CDC job ([`CdcJob`]) and AMQP helpers over RabbitMQ
//! ([`Broker`]).
//!
//! Every process is started from the binary named by `LEDGERLAKE_TIGERBEETLE` (built by
//! `scripts/setup.sh`); nothing here skips silently: without the binary or the broker, the
//! functions return an error that says what to run.
//!
//! Isolation rules that follow from the stack:
//! - The CDC job holds an exclusive per-cluster locker queue, so only one job per cluster id and
//!   vhost can run; it also keeps its progress in a durable queue named after the cluster id.
//!   Every test therefore uses its own random cluster id ([`random_cluster_id`]) and its own
//!   exchange and queue names ([`unique_name`]), and removes them with
//!   [`Broker::delete_cdc_queues`], [`Broker::delete_queue`] and [`Broker::delete_exchange`].
//! - Each replica takes about 1.7 GiB of memory (resident, with the 256 MiB grid cache) and a
//!   1.1 GiB data file that `format` really allocates (removing it takes seconds on a slow disk),
//!   so a process holds at most [`MAX_LIVE_REPLICAS`] replicas at once: [`Replica::start`] waits
//!   for a permit of a process-wide semaphore and the replica keeps it until it is dropped.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tigerbeetle_unofficial::Client;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Environment variable naming the `tigerbeetle` binary (printed by `scripts/setup.sh`).
pub const TIGERBEETLE_ENV: &str = "LEDGERLAKE_TIGERBEETLE";
/// Environment variable naming the AMQP broker used by tests.
pub const AMQP_URL_ENV: &str = "LEDGERLAKE_TEST_AMQP_URL";
/// The broker used when [`AMQP_URL_ENV`] is not set: a local RabbitMQ with its default user.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How many replicas one process may run at once. Each takes about 1.7 GiB of memory; with the
/// 24 GiB of a developer machine or CI and tests running in parallel threads, 4 (about 7 GiB)
/// leaves room for everything else. [`Replica::start`] waits (without a time limit) until a permit is free.
pub const MAX_LIVE_REPLICAS: usize = 4;
static REPLICA_PERMITS: Semaphore = Semaphore::const_new(MAX_LIVE_REPLICAS);

/// How long [`Replica::start`] waits for the first client request to succeed.
pub const REPLICA_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`CdcJob::start`] waits for the job to report that it started.
pub const CDC_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many lines of a process's output are kept for error messages.
const TAIL_LINES: usize = 40;
/// How many ports [`Replica::start`] tries before giving up.
const PORT_ATTEMPTS: usize = 5;

/// What went wrong with the test bed, with what an operator needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error(
        "{TIGERBEETLE_ENV} is not set: run scripts/setup.sh and export the lines it prints \
         (it builds the TigerBeetle server and starts RabbitMQ)"
    )]
    BinaryNotConfigured,
    #[error(
        "{TIGERBEETLE_ENV}={path} does not exist or is not a file: run scripts/setup.sh and \
         export the lines it prints"
    )]
    BinaryMissing { path: PathBuf },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed with {status}; output tail:\n{tail}")]
    CommandFailed {
        command: String,
        status: String,
        tail: String,
    },
    #[error("`{command}` exited early with {status}; output tail:\n{tail}")]
    ProcessExited {
        command: String,
        status: String,
        tail: String,
    },
    #[error(
        "replica at {address} did not answer a client request within {waited:?} \
         (`{command}`); output tail:\n{tail}"
    )]
    ReplicaNotReady {
        address: String,
        command: String,
        waited: Duration,
        tail: String,
    },
    #[error("CDC job did not start within {waited:?} (`{command}`); output tail:\n{tail}")]
    CdcNotReady {
        command: String,
        waited: Duration,
        tail: String,
    },
    #[error("TigerBeetle client for {address}: {message}")]
    Client { address: String, message: String },
    #[error(
        "AMQP {what} on {url}: {source} (is RabbitMQ running? run scripts/setup.sh; the broker \
         comes from {AMQP_URL_ENV})"
    )]
    Amqp {
        what: String,
        url: String,
        #[source]
        source: Box<lapin::Error>,
    },
    #[error("invalid AMQP url {url:?}: {message}")]
    InvalidAmqpUrl { url: String, message: String },
    #[error("the broker refused (nack) a message published to {exchange}")]
    PublishNacked { exchange: String },
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
}

/// The `tigerbeetle` binary named by [`TIGERBEETLE_ENV`].
pub fn tigerbeetle_binary() -> Result<PathBuf, TestbedError> {
    let path = match std::env::var_os(TIGERBEETLE_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => return Err(TestbedError::BinaryNotConfigured),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestbedError::BinaryMissing { path })
    }
}

/// The AMQP url of the test broker: [`AMQP_URL_ENV`] or [`DEFAULT_AMQP_URL`].
pub fn amqp_url() -> String {
    match std::env::var(AMQP_URL_ENV) {
        Ok(u) if !u.is_empty() => u,
        _ => DEFAULT_AMQP_URL.to_string(),
    }
}

/// A process-unique, run-unique name such as `prefix-3f2a…-7`, for exchanges and queues.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:016x}-{n}", entropy64())
}

/// A random cluster id (never 0), so that concurrent tests never share a CDC locker queue.
pub fn random_cluster_id() -> u128 {
    loop {
        let id = (u128::from(entropy64()) << 64) | u128::from(entropy64());
        if id != 0 {
            return id;
        }
    }
}

/// 64 bits that differ between calls, processes and runs (time, pid, counter, address-space
/// randomisation mixed by splitmix64). Not cryptographic; only for unique names.
fn entropy64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ addr.rotate_left(17);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Polls `f` (every 50 ms at first, backing off to 250 ms) until it returns `true`, or fails
/// with [`TestbedError::Timeout`] naming `what` once `timeout` has passed.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<(), TestbedError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        if f().await {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(TestbedError::Timeout {
                what: what.to_string(),
                waited,
            });
        }
        tokio::time::sleep(pause.min(timeout - waited)).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// The last lines a child process printed (stdout and stderr interleaved), filled by reader
/// threads.
#[derive(Clone, Default)]
struct OutputTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl OutputTail {
    fn follow(&self, stream: impl Read + Send + 'static) {
        let lines = Arc::clone(&self.lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let Ok(mut lines) = lines.lock() else { break };
                if lines.len() == TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        });
    }

    fn text(&self) -> String {
        match self.lines.lock() {
            Ok(lines) => lines.iter().fold(String::new(), |mut s, l| {
                let _ = writeln!(s, "  {l}");
                s
            }),
            Err(_) => String::from("  <output unavailable>"),
        }
    }

    fn contains(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .map(|lines| lines.iter().any(|l| l.contains(needle)))
            .unwrap_or(false)
    }
}

/// A child process that is killed (and reaped) when dropped.
struct Process {
    child: Child,
    command: String,
    tail: OutputTail,
}

impl Process {
    fn spawn(binary: &Path, args: &[String], cwd: &Path) -> Result<Process, TestbedError> {
        let command = command_line(binary, args);
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| TestbedError::Io {
                what: format!("spawning `{command}`"),
                source,
            })?;
        let tail = OutputTail::default();
        if let Some(out) = child.stdout.take() {
            tail.follow(out);
        }
        if let Some(err) = child.stderr.take() {
            tail.follow(err);
        }
        Ok(Process {
            child,
            command,
            tail,
        })
    }

    /// `Some(status)` once the process has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn exited_error(&mut self, status: ExitStatus) -> TestbedError {
        // Give the reader threads a moment to drain the last lines.
        std::thread::sleep(Duration::from_millis(50));
        TestbedError::ProcessExited {
            command: self.command.clone(),
            status: status.to_string(),
            tail: self.tail.text(),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill()
    }

    fn kill(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn command_line(binary: &Path, args: &[String]) -> String {
    let mut s = binary.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// A directory under the system temp dir, removed (with its contents) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Result<TempDir, TestbedError> {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).map_err(|source| TestbedError::Io {
            what: format!("creating {}", path.display()),
            source,
        })?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> Result<u16, TestbedError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| TestbedError::Io {
        what: "binding 127.0.0.1:0 to find a free port".into(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| TestbedError::Io {
            what: "reading the bound port".into(),
            source,
        })?
        .port();
    Ok(port)
}

// ---------------------------------------------------------------------------------------------
// Replica

/// How [`Replica::start_with`] starts the replica.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// `--limit-request` (with `--experimental`, which that flag needs). `--development` alone
    /// lowers the request limit to 32 KiB, i.e. about 250 transfers per request, and the client
    /// then fails larger batches with "Too much data provided on this batch". The default,
    /// `Some("1MiB")`, restores the production limit (8,189 transfers per request); `None`
    /// keeps the development limit.
    pub limit_request: Option<String>,
    /// `--cache-grid`.
    pub cache_grid: String,
}

impl Default for ReplicaOptions {
    fn default() -> ReplicaOptions {
        ReplicaOptions {
            limit_request: Some("1MiB".into()),
            cache_grid: "256MiB".into(),
        }
    }
}

/// A single-replica TigerBeetle cluster (`--development`) on a free loopback port, with its data
/// file in its own temp dir. Killed, and its dir removed, on drop.
pub struct Replica {
    // Field order matters for drop: kill the process, then remove its files, then free the permit.
    process: Process,
    _dir: TempDir,
    _permit: SemaphorePermit<'static>,
    cluster_id: u128,
    address: String,
    data_file: PathBuf,
}

impl Replica {
    /// Formats and starts a replica of cluster `cluster_id`, and waits (at most
    /// [`REPLICA_READY_TIMEOUT`]) until a client request succeeds. Waits first for one of the
    /// [`MAX_LIVE_REPLICAS`] permits. Uses [`ReplicaOptions::default`]: `tigerbeetle start
    /// --addresses=127.0.0.1:PORT --development --cache-grid=256MiB --experimental
    /// --limit-request=1MiB FILE`.
    pub async fn start(cluster_id: u128) -> Result<Replica, TestbedError> {
        Self::start_with(cluster_id, &ReplicaOptions::default()).await
    }

    /// [`Replica::start`] with options.
    pub async fn start_with(
        cluster_id: u128,
        options: &ReplicaOptions,
    ) -> Result<Replica, TestbedError> {
        let binary = tigerbeetle_binary()?;
        let permit = REPLICA_PERMITS
            .acquire()
            .await
            .map_err(|_| TestbedError::Timeout {
                what: "a replica permit (semaphore closed)".into(),
                waited: Duration::ZERO,
            })?;
        let dir = TempDir::new("ledgerlake-replica")?;
        let data_file = dir.0.join("0_0.tigerbeetle");
        let data_arg = data_file.display().to_string();

        let format_args = vec![
            "format".to_string(),
            format!("--cluster={cluster_id}"),
            "--replica=0".into(),
            "--replica-count=1".into(),
            "--development".into(),
            data_arg.clone(),
        ];
        let output = Command::new(&binary)
            .args(&format_args)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| TestbedError::Io {
                what: format!("running `{}`", command_line(&binary, &format_args)),
                source,
            })?;
        if !output.status.success() {
            return Err(TestbedError::CommandFailed {
                command: command_line(&binary, &format_args),
                status: output.status.to_string(),
                tail: last_lines(&output.stderr, TAIL_LINES),
            });
        }

        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let address = format!("127.0.0.1:{port}");
            let mut start_args = vec![
                "start".to_string(),
                format!("--addresses={address}"),
                "--development".into(),
                format!("--cache-grid={}", options.cache_grid),
            ];
            if let Some(limit) = &options.limit_request {
                start_args.push("--experimental".into());
                start_args.push(format!("--limit-request={limit}"));
            }
            start_args.push(data_arg.clone());
            let mut process = Process::spawn(&binary, &start_args, &dir.0)?;
            match wait_ready(&mut process, cluster_id, &address).await {
                Ok(()) => {
                    return Ok(Replica {
                        process,
                        _dir: dir,
                        _permit: permit,
                        cluster_id,
                        address,
                        data_file,
                    })
                }
                Err(e) => {
                    let port_taken = process.tail.contains("AddressInUse")
                        || process.tail.contains("address in use")
                        || process.tail.contains("AddressNotAvailable");
                    drop(process);
                    if !port_taken {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(TestbedError::Timeout {
            what: "a free port for the replica".into(),
            waited: Duration::ZERO,
        }))
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn cluster_id(&self) -> u128 {
        self.cluster_id
    }

    /// The replica's data file.
    pub fn data_file(&self) -> &Path {
        &self.data_file
    }

    /// A new client of this cluster.
    pub fn client(&self) -> Result<Client, TestbedError> {
        Client::new(self.cluster_id, self.address.as_str()).map_err(|e| TestbedError::Client {
            address: self.address.clone(),
            message: e.to_string(),
        })
    }

    /// The last lines the replica printed.
    pub fn output_tail(&self) -> String {
        self.process.tail.text()
    }

    /// An error if the replica process has exited.
    pub fn check_alive(&mut self) -> Result<(), TestbedError> {
        match self.process.exited() {
            Some(status) => Err(self.process.exited_error(status)),
            None => Ok(()),
        }
    }

    /// Kills the replica and removes its data file off the async worker threads (dropping does
    /// the same, but blocks the calling thread for the seconds the removal can take).
    pub async fn stop(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("cluster_id", &self.cluster_id)
            .field("address", &self.address)
            .field("data_file", &self.data_file)
            .finish_non_exhaustive()
    }
}

/// Waits until a `lookup_accounts` request succeeds, the process exits, or the time is up.
async fn wait_ready(
    process: &mut Process,
    cluster_id: u128,
    address: &str,
) -> Result<(), TestbedError> {
    let start = Instant::now();
    let client = Client::new(cluster_id, address).map_err(|e| TestbedError::Client {
        address: address.to_string(),
        message: e.to_string(),
    })?;
    // The client retries until the replica answers; the request resolves once it is up.
    let request = client.lookup_accounts(vec![1u128]);
    tokio::pin!(request);
    loop {
        tokio::select! {
            reply = &mut request => {
                return match reply {
                    Ok(_) => Ok(()),
                    Err(e) => Err(TestbedError::Client {
                        address: address.to_string(),
                        message: format!("first request failed: {e}"),
                    }),
                };
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if let Some(status) = process.exited() {
                    return Err(process.exited_error(status));
                }
                if start.elapsed() >= REPLICA_READY_TIMEOUT {
                    return Err(TestbedError::ReplicaNotReady {
                        address: address.to_string(),
                        command: process.command.clone(),
                        waited: start.elapsed(),
                        tail: process.tail.text(),
                    });
                }
            }
        }
    }
}

fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .fold(String::new(), |mut s, l| {
            let _ = writeln!(s, "  {l}");
            s
        })
}

// ---------------------------------------------------------------------------------------------
// CDC job

/// Options of the `tigerbeetle amqp` CDC job beyond the exchange.
#[derive(Debug, Clone, Default)]
pub struct CdcOptions {
    /// `--timestamp-last`: publish the events after this timestamp (0 replays everything).
    /// `None` resumes from the progress the job stored in the broker.
    pub timestamp_last: Option<u64>,
    /// `--idle-interval-ms` (TigerBeetle's default is 1000 ms).
    pub idle_interval_ms: Option<u32>,
    /// `--event-count-max` (TigerBeetle's default is 2730).
    pub event_count_max: Option<u32>,
}

/// The `tigerbeetle amqp` CDC job publishing one cluster's transfer events to an exchange of
/// the broker named by [`amqp_url`]. Killed on drop.
pub struct CdcJob {
    process: Process,
    exchange: String,
    cluster_id: u128,
}

impl CdcJob {
    /// Starts the job (the exchange must exist) and waits until it reports `Starting CDC.`.
    pub async fn start(
        replica: &Replica,
        exchange: &str,
        timestamp_last: Option<u64>,
    ) -> Result<CdcJob, TestbedError> {
        let options = CdcOptions {
            timestamp_last,
            ..CdcOptions::default()
        };
        Self::start_with(replica, exchange, &options).await
    }

    /// [`CdcJob::start`] with every option.
    pub async fn start_with(
        replica: &Replica,
        exchange: &str,
        options: &CdcOptions,
    ) -> Result<CdcJob, TestbedError> {
        let binary = tigerbeetle_binary()?;
        let amqp = AmqpParts::parse(&amqp_url())?;
        let mut args = vec![
            "amqp".to_string(),
            format!("--addresses={}", replica.address()),
            format!("--cluster={}", replica.cluster_id()),
            format!("--host={}", amqp.host),
            format!("--vhost={}", amqp.vhost),
            format!("--user={}", amqp.user),
            format!("--password={}", amqp.password),
            format!("--publish-exchange={exchange}"),
        ];
        if let Some(t) = options.timestamp_last {
            args.push(format!("--timestamp-last={t}"));
        }
        if let Some(ms) = options.idle_interval_ms {
            args.push(format!("--idle-interval-ms={ms}"));
        }
        if let Some(n) = options.event_count_max {
            args.push(format!("--event-count-max={n}"));
        }
        let cwd = std::env::temp_dir();
        let mut process = Process::spawn(&binary, &args, &cwd)?;
        // The password is on the command line; keep it out of error messages.
        process.command = process
            .command
            .replace(&format!("--password={}", amqp.password), "--password=***");

        let start = Instant::now();
        loop {
            if process.tail.contains("Starting CDC.") {
                break;
            }
            if let Some(status) = process.exited() {
                return Err(process.exited_error(status));
            }
            if start.elapsed() >= CDC_READY_TIMEOUT {
                return Err(TestbedError::CdcNotReady {
                    command: process.command.clone(),
                    waited: start.elapsed(),
                    tail: process.tail.text(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(CdcJob {
            process,
            exchange: exchange.to_string(),
            cluster_id: replica.cluster_id(),
        })
    }

    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    pub fn cluster_id(&self) -> u128 {
        self.cluster_id
    }

    /// An error (with the job's output tail) if the job has exited.
    pub fn check_alive(&mut self) -> Result<(), TestbedError> {
        match self.process.exited() {
            Some(status) => Err(self.process.exited_error(status)),
            None => Ok(()),
        }
    }

    /// The last lines the job printed.
    pub fn output_tail(&self) -> String {
        self.process.tail.text()
    }

    /// SIGTERM, then SIGKILL after 5 s. Returns the exit status, if one could be read.
    pub async fn stop(mut self) -> Option<ExitStatus> {
        self.process.terminate(Duration::from_secs(5)).await
    }
}

impl std::fmt::Debug for CdcJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdcJob")
            .field("cluster_id", &self.cluster_id)
            .field("exchange", &self.exchange)
            .field("command", &self.process.command)
            .finish_non_exhaustive()
    }
}

/// The parts of an AMQP url that `tigerbeetle amqp` takes as flags.
struct AmqpParts {
    host: String,
    vhost: String,
    user: String,
    password: String,
}

impl AmqpParts {
    fn parse(raw: &str) -> Result<AmqpParts, TestbedError> {
        let invalid = |message: &str| TestbedError::InvalidAmqpUrl {
            url: raw.to_string(),
            message: message.to_string(),
        };
        let url = url::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "amqp" {
            return Err(invalid("only amqp:// is supported by the CDC job"));
        }
        let host = url.host_str().ok_or_else(|| invalid("no host"))?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let decode = |s: &str| -> Result<String, TestbedError> {
            percent_decode(s).ok_or_else(|| invalid("bad percent-encoding"))
        };
        let vhost = match url.path().strip_prefix('/') {
            None | Some("") => "/".to_string(),
            Some(v) => decode(v)?,
        };
        let user = if url.username().is_empty() {
            "guest".to_string()
        } else {
            decode(url.username())?
        };
        let password = decode(url.password().unwrap_or("guest"))?;
        Ok(AmqpParts {
            host,
            vhost,
            user,
            password,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------------------------
// Broker

/// AMQP helpers over one lapin connection to the broker named by [`amqp_url`].
pub struct Broker {
    url: String,
    connection: Connection,
    channel: Channel,
    publisher: Channel,
}

impl Broker {
    /// Connects to [`amqp_url`].
    pub async fn connect() -> Result<Broker, TestbedError> {
        Self::connect_to(&amqp_url()).await
    }

    /// Connects to `url`.
    pub async fn connect_to(url: &str) -> Result<Broker, TestbedError> {
        let amqp_err = |what: &str, source| TestbedError::Amqp {
            what: what.to_string(),
            url: redact(url),
            source: Box::new(source),
        };
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(|e| amqp_err("connect", e))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| amqp_err("create channel", e))?;
        let publisher = connection
            .create_channel()
            .await
            .map_err(|e| amqp_err("create channel", e))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| amqp_err("confirm.select", e))?;
        Ok(Broker {
            url: url.to_string(),
            connection,
            channel,
            publisher,
        })
    }

    fn err(&self, what: impl Into<String>, source: lapin::Error) -> TestbedError {
        TestbedError::Amqp {
            what: what.into(),
            url: redact(&self.url),
            source: Box::new(source),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying connection, for consumers.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// A new channel on the connection.
    pub async fn channel(&self) -> Result<Channel, TestbedError> {
        self.connection
            .create_channel()
            .await
            .map_err(|e| self.err("create channel", e))
    }

    /// Declares a durable fanout exchange. Fanout because the CDC job publishes every event with
    /// the same (empty, unless `--publish-routing-key`) routing key and each bound queue must get
    /// every event whatever its binding key; a topic exchange would only add a `#` binding to get
    /// the same. Durable, like the exchange an operator would give the job.
    pub async fn declare_exchange(&self, name: &str) -> Result<(), TestbedError> {
        self.channel
            .exchange_declare(
                name.into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.err(format!("exchange.declare {name}"), e))
    }

    /// Declares a durable queue and binds it to `exchange` (routing key `""`).
    pub async fn declare_queue_bound(
        &self,
        queue: &str,
        exchange: &str,
    ) -> Result<(), TestbedError> {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.err(format!("queue.declare {queue}"), e))?;
        self.channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.err(format!("queue.bind {queue} to {exchange}"), e))
    }

    /// Messages ready in `queue` (a passive declare; an error if the queue does not exist).
    pub async fn queue_depth(&self, queue: &str) -> Result<u32, TestbedError> {
        // A failed passive declare closes its channel: use a throw-away one.
        let channel = self.channel().await?;
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.err(format!("passive queue.declare {queue}"), e))?;
        let _ = channel.close(200, "done".into()).await;
        Ok(q.message_count())
    }

    /// Publishes `body` to `exchange` (routing key `""`, persistent, the given headers) and waits
    /// for the broker's confirm.
    pub async fn publish_raw(
        &self,
        exchange: &str,
        body: &[u8],
        headers: FieldTable,
    ) -> Result<(), TestbedError> {
        let what = || format!("basic.publish to {exchange}");
        let confirm = self
            .publisher
            .basic_publish(
                exchange.into(),
                "".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(headers),
            )
            .await
            .map_err(|e| self.err(what(), e))?
            .await
            .map_err(|e| self.err(what(), e))?;
        if confirm.is_nack() {
            return Err(TestbedError::PublishNacked {
                exchange: exchange.to_string(),
            });
        }
        Ok(())
    }

    /// Deletes `queue` (also when not empty); no error if it does not exist.
    pub async fn delete_queue(&self, queue: &str) -> Result<(), TestbedError> {
        self.channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| self.err(format!("queue.delete {queue}"), e))
    }

    /// Deletes `exchange`; no error if it does not exist.
    pub async fn delete_exchange(&self, exchange: &str) -> Result<(), TestbedError> {
        self.channel
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await
            .map_err(|e| self.err(format!("exchange.delete {exchange}"), e))
    }

    /// Deletes the durable progress queue the CDC job keeps for `cluster_id`
    /// (`tigerbeetle.internal.progress.<cluster_id>`), so a finished test leaves nothing behind.
    /// Stop the job first.
    pub async fn delete_cdc_queues(&self, cluster_id: u128) -> Result<(), TestbedError> {
        self.delete_queue(&cdc_progress_queue(cluster_id)).await
    }

    /// Closes the connection.
    pub async fn close(self) -> Result<(), TestbedError> {
        self.connection
            .close(200, "bye".into())
            .await
            .map_err(|e| TestbedError::Amqp {
                what: "connection.close".into(),
                url: redact(&self.url),
                source: Box::new(e),
            })
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

/// The durable queue in which the CDC job of `cluster_id` stores its progress.
pub fn cdc_progress_queue(cluster_id: u128) -> String {
    format!("tigerbeetle.internal.progress.{cluster_id}")
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amqp_url_parts() {
        let p = AmqpParts::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(
            (
                p.host.as_str(),
                p.vhost.as_str(),
                p.user.as_str(),
                p.password.as_str()
            ),
            ("127.0.0.1:5672", "/", "guest", "guest")
        );
        let p = AmqpParts::parse("amqp://u%40x:p%3Aw@10.0.0.1/prod").unwrap();
        assert_eq!(
            (
                p.host.as_str(),
                p.vhost.as_str(),
                p.user.as_str(),
                p.password.as_str()
            ),
            ("10.0.0.1", "prod", "u@x", "p:w")
        );
        assert!(AmqpParts::parse("amqps://h/").is_err());
    }

    #[test]
    fn unique_names_differ() {
        let a = unique_name("x");
        let b = unique_name("x");
        assert_ne!(a, b);
        assert!(a.starts_with("x-"));
        assert_ne!(random_cluster_id(), random_cluster_id());
    }

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
    }
}
