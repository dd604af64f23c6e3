//! A single-replica TigerBeetle cluster for the test bed, started from the binary named by
//! `LEDGERLAKE_TIGERBEETLE` and waited for until a client request succeeds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tigerbeetle_unofficial::Client;
use tokio::sync::SemaphorePermit;

use super::process::{command_line, free_port, Process, TempDir};
use super::{
    tigerbeetle_binary, TestbedError, PORT_ATTEMPTS, REPLICA_PERMITS, REPLICA_READY_TIMEOUT,
    TAIL_LINES,
};

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
    /// `--development` (the default, `true`): direct I/O optional, and TigerBeetle's small
    /// development defaults for everything not given here — no account or transfer caches, the
    /// least compaction memory, no extra pipelined requests. `false` starts the replica as
    /// `tigerbeetle benchmark` starts its own, with the production defaults (direct I/O
    /// required, so the data file's file system must support it; `limit_request` is then not
    /// passed, the production limit being the 1 MiB maximum): for benchmarks, which must not
    /// measure a replica slowed by the development defaults.
    pub development: bool,
}

impl Default for ReplicaOptions {
    fn default() -> ReplicaOptions {
        ReplicaOptions {
            limit_request: Some("1MiB".into()),
            cache_grid: "256MiB".into(),
            development: true,
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
    /// How the process was started, for [`Replica::restart`].
    binary: PathBuf,
    start_args: Vec<String>,
}

impl Replica {
    /// Formats and starts a replica of cluster `cluster_id`, and waits (at most
    /// [`REPLICA_READY_TIMEOUT`]) until a client request succeeds. Waits first for one of the
    /// [`MAX_LIVE_REPLICAS`](super::MAX_LIVE_REPLICAS) permits. Uses
    /// [`ReplicaOptions::default`]: `tigerbeetle start --addresses=127.0.0.1:PORT --development
    /// --cache-grid=256MiB --experimental --limit-request=1MiB FILE`.
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

        let mut format_args = vec![
            "format".to_string(),
            format!("--cluster={cluster_id}"),
            "--replica=0".into(),
            "--replica-count=1".into(),
        ];
        if options.development {
            format_args.push("--development".into());
        }
        format_args.push(data_arg.clone());
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
            let mut start_args = vec!["start".to_string(), format!("--addresses={address}")];
            if options.development {
                start_args.push("--development".into());
            }
            start_args.push(format!("--cache-grid={}", options.cache_grid));
            match &options.limit_request {
                Some(limit) if options.development => {
                    start_args.push("--experimental".into());
                    start_args.push(format!("--limit-request={limit}"));
                }
                _ => {}
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
                        binary,
                        start_args,
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

    /// Kills the replica process (SIGKILL), keeps it down for `down`, then starts it again over
    /// the same data file and address and waits until a client request succeeds: a replica
    /// crash and restart, as clients and the CDC job see it.
    pub async fn restart(&mut self, down: Duration) -> Result<(), TestbedError> {
        self.process.terminate(Duration::ZERO).await;
        tokio::time::sleep(down).await;
        let cwd = self._dir.0.clone();
        self.process = Process::spawn(&self.binary, &self.start_args, &cwd)?;
        wait_ready(&mut self.process, self.cluster_id, &self.address).await
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
