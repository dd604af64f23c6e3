//! The drill's throwaway target: a single-replica TigerBeetle cluster that the drill formats and
//! starts itself from a `tigerbeetle` binary, on a free loopback port, with its data file in a
//! directory of its own; killed and removed when dropped.
//!
//! Started as `tigerbeetle start --addresses=127.0.0.1:PORT --development --cache-grid=256MiB
//! --experimental --limit-request=1MiB FILE`: `--development` lets it run on any machine (no
//! direct I/O requirement), and the request limit is restored to the production one so the time to
//! recover measured is that of full requests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::tb::Cluster;

/// How long the replica may take to answer its first request.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("the throwaway replica at {address} did not answer within {waited_s} s")]
    NotReady { address: String, waited_s: u64 },
}

/// A running throwaway replica.
pub struct ThrowawayReplica {
    child: Child,
    dir: PathBuf,
    pub address: String,
    pub cluster_id: u128,
    /// Formatting and starting it, until its first reply.
    pub started_in: Duration,
}

impl ThrowawayReplica {
    /// Formats a data file for cluster `cluster_id` and starts the replica from `binary`; returns
    /// once it answers a request.
    pub async fn start(binary: &Path, cluster_id: u128) -> Result<ThrowawayReplica, ReplicaError> {
        let start = Instant::now();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("ledgerlake-drill-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| ReplicaError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let data = dir.join("0_0.tigerbeetle");
        let format_args = vec![
            "format".to_string(),
            format!("--cluster={cluster_id}"),
            "--replica=0".into(),
            "--replica-count=1".into(),
            "--development".into(),
            data.display().to_string(),
        ];
        let output = Command::new(binary)
            .args(&format_args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| io(binary, source))?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(failed(binary, &format_args, &output.status, &output.stderr));
        }
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        let start_args = vec![
            "start".to_string(),
            format!("--addresses={address}"),
            "--development".into(),
            "--cache-grid=256MiB".into(),
            "--experimental".into(),
            "--limit-request=1MiB".into(),
            data.display().to_string(),
        ];
        let log_path = dir.join("replica.log");
        let log = std::fs::File::create(&log_path).map_err(|source| ReplicaError::Io {
            what: format!("creating {}", log_path.display()),
            source,
        })?;
        let child = Command::new(binary)
            .args(&start_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| io(binary, source))?;
        let mut replica = ThrowawayReplica {
            child,
            dir,
            address,
            cluster_id,
            started_in: Duration::ZERO,
        };
        replica.wait_ready(binary, &start_args).await?;
        replica.started_in = start.elapsed();
        Ok(replica)
    }

    async fn wait_ready(&mut self, binary: &Path, args: &[String]) -> Result<(), ReplicaError> {
        let start = Instant::now();
        let client =
            Cluster::connect(self.cluster_id, &self.address, READY_TIMEOUT).map_err(|e| {
                ReplicaError::Failed {
                    command: command_line(binary, args),
                    status: "no client".into(),
                    stderr: e.to_string(),
                }
            })?;
        let request = client.last_account();
        tokio::pin!(request);
        loop {
            tokio::select! {
                reply = &mut request => {
                    return reply.map(|_| ()).map_err(|_| ReplicaError::NotReady {
                        address: self.address.clone(),
                        waited_s: start.elapsed().as_secs(),
                    });
                }
                _ = tokio::time::sleep(READY_POLL) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        let log = std::fs::read(self.dir.join("replica.log")).unwrap_or_default();
                        return Err(failed(binary, args, &status, &log));
                    }
                    if start.elapsed() >= READY_TIMEOUT {
                        return Err(ReplicaError::NotReady {
                            address: self.address.clone(),
                            waited_s: start.elapsed().as_secs(),
                        });
                    }
                }
            }
        }
    }
}

impl Drop for ThrowawayReplica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16, ReplicaError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| ReplicaError::Io {
            what: "finding a free loopback port".into(),
            source,
        })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| ReplicaError::Io {
            what: "finding a free loopback port".into(),
            source,
        })
}

fn command_line(binary: &Path, args: &[String]) -> String {
    format!("{} {}", binary.display(), args.join(" "))
}

fn io(binary: &Path, source: std::io::Error) -> ReplicaError {
    ReplicaError::Io {
        what: format!("running {}", binary.display()),
        source,
    }
}

fn failed(
    binary: &Path,
    args: &[String],
    status: &std::process::ExitStatus,
    stderr: &[u8],
) -> ReplicaError {
    let text = String::from_utf8_lossy(stderr);
    let tail: Vec<&str> = text.lines().rev().take(10).collect();
    ReplicaError::Failed {
        command: command_line(binary, args),
        status: status.to_string(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    }
}
