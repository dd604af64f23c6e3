//! The `tigerbeetle amqp` CDC job of the test bed: publishes one cluster's transfer events to
//! an exchange of the test broker.

use std::process::ExitStatus;
use std::str::FromStr;
use std::time::{Duration, Instant};

use amq_protocol_uri::{AMQPAuthority, AMQPScheme, AMQPUri};

use super::broker::redact;
use super::process::Process;
use super::replica::Replica;
use super::{amqp_url, tigerbeetle_binary, TestbedError, CDC_READY_TIMEOUT};

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

/// The parts of an AMQP url that `tigerbeetle amqp` takes as flags, read with lapin's own
/// parser (`amq-protocol-uri`), so the job and [`super::Broker`] see the same broker.
struct AmqpParts {
    host: String,
    vhost: String,
    user: String,
    password: String,
}

impl AmqpParts {
    fn parse(raw: &str) -> Result<AmqpParts, TestbedError> {
        let invalid = |message: String| TestbedError::InvalidAmqpUrl {
            url: redact(raw),
            // The parser quotes a url it cannot read at all; never repeat its password.
            message: message.replace(raw, "the url"),
        };
        let uri = AMQPUri::from_str(raw).map_err(invalid)?;
        if uri.scheme != AMQPScheme::AMQP {
            return Err(invalid("only amqp:// is supported by the CDC job".into()));
        }
        let AMQPAuthority {
            userinfo,
            host,
            port,
        } = uri.authority;
        // `amqp://host/` names the empty vhost; the job, like the test broker, uses `/`.
        let vhost = if uri.vhost.is_empty() {
            "/".to_string()
        } else {
            uri.vhost
        };
        Ok(AmqpParts {
            host: format!("{host}:{port}"),
            vhost,
            user: userinfo.username,
            password: userinfo.password,
        })
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
        // Without a port, the AMQP default (5672) is passed on explicitly.
        let p = AmqpParts::parse("amqp://u%40x:p%3Aw@10.0.0.1/prod").unwrap();
        assert_eq!(
            (
                p.host.as_str(),
                p.vhost.as_str(),
                p.user.as_str(),
                p.password.as_str()
            ),
            ("10.0.0.1:5672", "prod", "u@x", "p:w")
        );
        assert!(AmqpParts::parse("amqps://h/").is_err());
    }

    #[test]
    fn amqp_url_defaults_and_errors() {
        let p = AmqpParts::parse("amqp://h/").unwrap();
        assert_eq!(
            (
                p.host.as_str(),
                p.vhost.as_str(),
                p.user.as_str(),
                p.password.as_str()
            ),
            ("h:5672", "/", "guest", "guest")
        );
        match AmqpParts::parse("amqp://u:secret@h:99999/") {
            Err(TestbedError::InvalidAmqpUrl { url, message }) => {
                assert!(
                    !url.contains("secret") && !message.contains("secret"),
                    "{url}: {message}"
                );
            }
            other => panic!("expected an invalid url, got {:?}", other.map(|_| ())),
        }
        // A vhost that is not UTF-8 once decoded.
        assert!(AmqpParts::parse("amqp://h/%ff").is_err());
    }
}
