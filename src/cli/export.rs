//! `ledgerlake export`: its arguments, and their validation into the exporter's options. Every
//! default is written here, next to the help text that explains it.

use std::time::Duration;

use clap::Args;

use super::exit::Outcome;
use super::output::{self, OutputError};
use super::time::{parse_duration, parse_u128};
use super::CliError;
use crate::export::broker::{BrokerError, BrokerOptions};
use crate::export::segment::SealPolicy;
use crate::export::sweep::SweepOptions;
use crate::export::{ExportOptions, Shutdown};

/// AMQP caps the prefetch count at 65,535 (a 16-bit field).
const AMQP_PREFETCH_MAX: u32 = 65_535;
/// How long one sweep request may go unanswered: the TigerBeetle client retries forever, and a
/// wrong cluster id is never answered. A pass that times out is retried at the next interval.
const SWEEP_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// AMQP URL of the broker. The password is never printed; prefer the environment variable.
    #[arg(
        long,
        env = "LEDGERLAKE_AMQP_URL",
        hide_env_values = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// Queue to consume (bound to the exchange the CDC job publishes to).
    #[arg(long)]
    pub queue: String,
    /// The exchange the CDC job publishes to (`tigerbeetle amqp --publish-exchange`); used with --declare.
    #[arg(long)]
    pub exchange: Option<String>,
    /// Declare the durable queue (and, with --exchange, the durable fanout exchange) and bind them.
    #[arg(long)]
    pub declare: bool,
    /// The lake: a directory path, file://, s3://bucket/prefix, gs://bucket/prefix,
    /// az://container/prefix (credentials from each cloud's usual AWS_*, GOOGLE_*, AZURE_*
    /// variables, never in the URL), or memory:// (tests).
    #[arg(long, env = "LEDGERLAKE_LAKE")]
    pub lake: String,
    /// The source cluster's id (decimal). A lake belongs to one cluster; another id is refused.
    #[arg(long, value_parser = parse_u128)]
    pub cluster_id: u128,
    /// Seal a segment when it holds this many events.
    #[arg(long, default_value_t = 32_768)]
    pub segment_events_max: usize,
    /// Seal a segment when its events take about this many bytes in memory.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub segment_bytes_max: usize,
    /// Seal a segment this long after its first event arrived: the bound on commit-to-lake lag.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub segment_age_max: Duration,
    /// Seal a segment once no event has arrived for this long (the CDC job publishes in bursts:
    /// a pause ends one, and waiting longer only adds lag).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub segment_idle_max: Duration,
    /// Unacknowledged messages the broker may send ahead (AMQP maximum 65535). Must be at least
    /// --segment-events-max, and twice that lets the next segment fill while one is committed.
    #[arg(long, default_value_t = 65_535)]
    pub prefetch: u32,
    /// Drain the queue, then exit 0 once nothing has arrived for this long (e.g. 5s).
    #[arg(long, value_parser = parse_duration)]
    pub until_idle: Option<Duration>,
    /// Keep retrying a failing lake write this long, then exit non-zero (nothing unwritten is acknowledged).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub lake_retry_max: Duration,
    /// Keep reconnecting to an unreachable broker this long, then exit non-zero.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub broker_retry_max: Duration,
    /// How often to log progress.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub progress_interval: Duration,
    /// Replica addresses of the source cluster (e.g. 127.0.0.1:3000): enables the account sweep,
    /// which records in the lake every account of the cluster, including those no transfer event
    /// shows (never used, or only in rejected transfers). Without it, such accounts are absent
    /// from the lake and from a rebuild.
    #[arg(long)]
    pub addresses: Option<String>,
    /// Time between the starts of two sweep passes (with --addresses). Each pass reads the
    /// accounts created since the previous one, 8,189 per request.
    #[arg(long, default_value = "1m", value_parser = parse_duration, requires = "addresses")]
    pub sweep_interval: Duration,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics, and health at /ready (200 while
    /// consuming) and /live (docs/OPERATING.md lists the metrics). Off by default.
    #[arg(long, value_name = "HOST:PORT", env = "LEDGERLAKE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
}

/// Options refused before any work starts.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("--prefetch {prefetch} is above the AMQP maximum of {AMQP_PREFETCH_MAX}")]
    PrefetchTooLarge { prefetch: u32 },
    #[error("--prefetch {prefetch} is below --segment-events-max {events_max}: a segment could never fill")]
    PrefetchBelowSegment { prefetch: u32, events_max: usize },
    #[error("--{name} must be greater than zero")]
    Zero { name: &'static str },
    #[error("--amqp-url (or LEDGERLAKE_AMQP_URL) is not usable")]
    AmqpUrl(#[source] BrokerError),
}

impl TryFrom<ExportArgs> for ExportOptions {
    type Error = OptionsError;

    fn try_from(args: ExportArgs) -> Result<Self, Self::Error> {
        if args.prefetch > AMQP_PREFETCH_MAX {
            return Err(OptionsError::PrefetchTooLarge {
                prefetch: args.prefetch,
            });
        }
        if (args.prefetch as usize) < args.segment_events_max {
            return Err(OptionsError::PrefetchBelowSegment {
                prefetch: args.prefetch,
                events_max: args.segment_events_max,
            });
        }
        for (name, zero) in [
            ("segment-events-max", args.segment_events_max == 0),
            ("segment-bytes-max", args.segment_bytes_max == 0),
            ("segment-age-max", args.segment_age_max.is_zero()),
            ("segment-idle-max", args.segment_idle_max.is_zero()),
            ("prefetch", args.prefetch == 0),
            ("progress-interval", args.progress_interval.is_zero()),
            ("sweep-interval", args.sweep_interval.is_zero()),
        ] {
            if zero {
                return Err(OptionsError::Zero { name });
            }
        }
        let broker = BrokerOptions {
            consumer_tag: format!("ledgerlake-{}", std::process::id()),
            url: args.amqp_url,
            queue: args.queue,
            exchange: args.exchange,
            declare: args.declare,
            prefetch: args.prefetch as u16,
        };
        broker.validate().map_err(OptionsError::AmqpUrl)?;
        Ok(ExportOptions {
            broker,
            lake: args.lake,
            cluster_id: args.cluster_id,
            seal: SealPolicy {
                events_max: args.segment_events_max,
                bytes_max: args.segment_bytes_max,
                age_max: args.segment_age_max,
                idle_max: args.segment_idle_max,
            },
            until_idle: args.until_idle,
            lake_retry_max: args.lake_retry_max,
            broker_retry_max: args.broker_retry_max,
            progress_interval: args.progress_interval,
            sweep: args.addresses.map(|addresses| SweepOptions {
                addresses,
                interval: args.sweep_interval,
                request_timeout: SWEEP_REQUEST_TIMEOUT,
            }),
        })
    }
}

/// Exports until shut down (or idle); the final report goes to stderr as one JSON line (stdout
/// stays free for nothing: export prints no data), its counts as decimal strings.
pub async fn run(args: ExportArgs, shutdown: Shutdown) -> Result<Outcome, CliError> {
    let metrics_addr = args.metrics_addr.clone();
    let options = ExportOptions::try_from(args)?;
    // Served for as long as the export runs.
    let _metrics = match metrics_addr {
        Some(addr) => Some(crate::metrics::serve(&addr).await?),
        None => None,
    };
    let report = crate::export::run(options, shutdown).await?;
    let value = serde_json::to_value(&report).map_err(OutputError::Json)?;
    let line =
        serde_json::to_string(&output::integers_as_strings(value)).map_err(OutputError::Json)?;
    output::note(&line);
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn export_args(extra: &[&str]) -> ExportArgs {
        let mut argv = vec![
            "ledgerlake",
            "export",
            "--queue",
            "q",
            "--lake",
            "/tmp/l",
            "--cluster-id",
            "7",
        ];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Export(args) => args,
            other => panic!("expected export, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_bad_combinations_refused() {
        let options = ExportOptions::try_from(export_args(&[])).expect("defaults are valid");
        assert_eq!(options.seal.events_max, 32_768);
        assert_eq!(options.broker.prefetch, 65_535);
        assert!(matches!(
            ExportOptions::try_from(export_args(&[
                "--prefetch",
                "100",
                "--segment-events-max",
                "200"
            ])),
            Err(OptionsError::PrefetchBelowSegment {
                prefetch: 100,
                events_max: 200
            })
        ));
        assert!(matches!(
            ExportOptions::try_from(export_args(&["--amqp-url", "amqp://guest:secret@/"])),
            Err(OptionsError::AmqpUrl(_))
        ));
        assert!(matches!(
            ExportOptions::try_from(export_args(&[
                "--prefetch",
                "70000",
                "--segment-events-max",
                "10"
            ])),
            Err(OptionsError::PrefetchTooLarge { .. })
        ));
        assert!(ExportOptions::try_from(export_args(&["--segment-age-max", "0s"])).is_err());
    }

    #[test]
    fn the_sweep_is_on_only_with_addresses() {
        let options = ExportOptions::try_from(export_args(&[])).expect("valid");
        assert!(options.sweep.is_none());
        let options = ExportOptions::try_from(export_args(&["--addresses", "127.0.0.1:3000"]))
            .expect("valid");
        let sweep = options.sweep.expect("sweep on");
        assert_eq!(sweep.addresses, "127.0.0.1:3000");
        assert_eq!(sweep.interval, Duration::from_secs(60));
        let options = ExportOptions::try_from(export_args(&[
            "--addresses",
            "127.0.0.1:3000",
            "--sweep-interval",
            "5s",
        ]))
        .expect("valid");
        assert_eq!(options.sweep.unwrap().interval, Duration::from_secs(5));
        assert!(Cli::try_parse_from([
            "ledgerlake",
            "export",
            "--queue",
            "q",
            "--lake",
            "/tmp/l",
            "--cluster-id",
            "7",
            "--sweep-interval",
            "5s"
        ])
        .is_err());
    }
}
