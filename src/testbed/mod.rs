//! The real stack for tests, benchmarks and the demo: a single-replica TigerBeetle cluster
//! ([`Replica`]), the `tigerbeetle amqp` CDC job ([`CdcJob`]) and AMQP helpers over RabbitMQ
//! ([`Broker`]); and a store that counts what a lake read costs in objects ([`CountedStore`]).
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
//!
//! Built only with the `testbed` cargo feature (the crate's tests and benchmarks turn it on):
//! it is no part of the `ledgerlake` binary.

mod broker;
mod cdc_job;
mod counted;
mod process;
mod replica;

pub use broker::{cdc_progress_queue, Broker};
pub use cdc_job::{CdcJob, CdcOptions};
pub use counted::{CountedStore, Counts};
pub use replica::{Replica, ReplicaOptions};

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

/// Environment variable naming the `tigerbeetle` binary (printed by `scripts/setup.sh`).
pub const TIGERBEETLE_ENV: &str = "LEDGERLAKE_TIGERBEETLE";
/// Environment variable naming the AMQP broker used by tests.
pub const AMQP_URL_ENV: &str = "LEDGERLAKE_TEST_AMQP_URL";
/// The broker used when [`AMQP_URL_ENV`] is not set: a local RabbitMQ with its default user.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How many replicas one process may run at once. Each takes about 1.7 GiB of memory; with the
/// 24 GiB of a developer machine or CI and tests running in parallel threads, 4 (about 7 GiB)
/// leaves room for everything else. [`Replica::start`] waits (without a time limit) until a
/// permit is free.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ() {
        let a = unique_name("x");
        let b = unique_name("x");
        assert_ne!(a, b);
        assert!(a.starts_with("x-"));
        assert_ne!(random_cluster_id(), random_cluster_id());
    }
}
