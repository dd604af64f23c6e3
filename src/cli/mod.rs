//! The command line, and the only module that knows clap and prints: each command's arguments
//! (one file per command) are validated into the plain options of its module, the command runs
//! and returns a report, and the report is rendered here (`output`) with progress on stderr
//! (`progress`). `exit` maps the outcome to the process's exit status and prints errors.

pub mod audit;
pub mod drill;
pub mod exit;
pub mod export;
pub mod generate;
pub mod logging;
pub mod ls;
pub mod output;
pub mod progress;
pub mod rebuild;
pub mod time;
pub mod upgrade;

use std::path::PathBuf;

/// The TigerBeetle client ledgerlake is built with (the `+0.16.78` of `tigerbeetle-unofficial`'s
/// version; a unit test holds the two together).
pub const TIGERBEETLE_CLIENT_VERSION: &str = "0.16.78";

/// The lake format this build writes (`lake::FORMAT_VERSION`, as text for `--version`; a unit
/// test holds the two together).
pub const LAKE_FORMAT_TEXT: &str = "2";

/// What `--version` prints after the name.
pub const VERSION_TEXT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (lake format 2, TigerBeetle client 0.16.78)"
);

/// The log filter when `LEDGERLAKE_LOG` is not set: ledgerlake's own progress at `info`; the
/// Delta kernel, which logs every snapshot and scan at `info`, only from `warn`.
pub const DEFAULT_LOG_FILTER: &str = "info,delta_kernel=warn,delta_kernel_default_engine=warn";

use clap::{Parser, Subcommand};

use crate::audit::balances::BalancesError;
use crate::audit::reconcile::ReconcileError;
use crate::audit::verify::VerifyError;
use crate::drill::DrillError;
use crate::export::{ExportError, Shutdown};
use crate::generate::GenerateError;
use crate::lake::LakeError;
use crate::rebuild::RebuildError;
use crate::upgrade::UpgradeError;
pub use exit::Outcome;
pub use export::{ExportArgs, OptionsError};
pub use logging::{init_logging, LogFormat, LOG_FORMAT_ENV};
pub use output::{OutputError, OutputFormat, ReportFormat};
pub use time::{parse_duration, parse_moment, parse_u128};

/// The exit statuses, as `--help` tells them.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (for verify: the lake is whole; for reconcile: it agrees with the cluster)
  1  the check ran and found problems (verify, reconcile, drill); the report lists each one
  2  the command could not run: bad arguments, no lake at --lake, an unreachable cluster or
     broker, refused credentials, or any other error (printed on stderr, one cause per line)";

#[derive(Debug, Parser)]
#[command(
    name = "ledgerlake",
    version = VERSION_TEXT,
    about = "An independent, queryable, point-in-time history of a TigerBeetle ledger",
    long_about = "ledgerlake keeps a copy of a TigerBeetle ledger outside the cluster: `export` consumes the \
CDC stream that `tigerbeetle amqp` publishes to RabbitMQ and writes every transfer event, exactly once and in \
commit-timestamp order, into immutable Parquet segments on an object store (a local directory, s3://, ...). \
The other commands read that lake: list it, rebuild a cluster from it, and audit it.\n\n\
Moments (--at, --until) are a TigerBeetle timestamp (nanoseconds since the epoch), an RFC 3339 instant \
(up to 9 fraction digits, any UTC offset, e.g. 2026-11-21T21:02:30.5Z) or `latest` (the lake's last event). \
Durations are written like 500ms, 5s, 2m or 1h. In JSON output every u64 and u128 is a decimal string.",
    after_help = EXIT_STATUS_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume the CDC stream from a RabbitMQ queue into the lake (runs until SIGINT/SIGTERM, or
    /// until idle with --until-idle).
    Export(ExportArgs),
    /// List the lake's segments, time range, event counts, sizes and quarantined messages.
    Ls(ls::LsArgs),
    /// Replay the lake into a fresh TigerBeetle cluster up to a commit timestamp (or resume a
    /// rebuild left part-way); --dry-run prints the plan only.
    Rebuild(rebuild::RebuildArgs),
    /// Restore test: rebuild the lake into a fresh target (or a throwaway replica), compare it
    /// with the lake as of a moment, report pass or fail and the time to recover (exits 1 on a
    /// mismatch).
    Drill(drill::DrillArgs),
    /// Every account's balances as of any moment, from the lake alone.
    Balances(audit::BalancesArgs),
    /// Prove the lake whole: structure, every account's balance chain, double entry per ledger.
    /// Exits 1 with a report naming each problem.
    Verify(audit::VerifyArgs),
    /// Compare the lake with the live cluster as of the lake's last event; list every difference
    /// (exits 1 if there is any).
    Reconcile(audit::ReconcileArgs),
    /// Drive a TigerBeetle cluster with a generated ledger that has every kind of transfer
    /// event (for trying ledgerlake out, demos and benchmarks; never point it at a real ledger).
    Generate(generate::GenerateArgs),
    /// Turn a format-1 lake into format 2 in place, losing nothing (resumable, idempotent).
    Upgrade(upgrade::UpgradeArgs),
    /// Print a shell completion script on stdout (e.g. `ledgerlake completions bash >
    /// /etc/bash_completion.d/ledgerlake`).
    Completions(CompletionsArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "ledgerlake", out);
}

/// Why a command could not run (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("there is no lake at {location}: no such directory (check --lake)")]
    NoLake { location: String },
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Export(Box<ExportError>),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Rebuild(Box<RebuildError>),
    #[error(transparent)]
    Drill(Box<DrillError>),
    #[error(transparent)]
    Balances(#[from] BalancesError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("{LOG_FORMAT_ENV}={value:?} is not a log format (text or json)")]
    LogFormat { value: String },
}

/// The process's arguments; on bad arguments, prints the usage and exits with status 2
/// (`--help` and `--version` print and exit 0).
pub fn parse_args() -> Cli {
    Cli::parse()
}

// The two largest errors are boxed, to keep every `Result` of the CLI small.
impl From<ExportError> for CliError {
    fn from(error: ExportError) -> CliError {
        CliError::Export(Box::new(error))
    }
}

impl From<DrillError> for CliError {
    fn from(error: DrillError) -> CliError {
        CliError::Drill(Box::new(error))
    }
}

impl From<RebuildError> for CliError {
    fn from(error: RebuildError) -> CliError {
        CliError::Rebuild(Box::new(error))
    }
}

/// Runs one command to its outcome. `shutdown` resolves when the exporter should seal, commit,
/// acknowledge and stop (SIGINT, SIGTERM in the binary).
pub async fn run(command: Command, shutdown: Shutdown) -> Result<Outcome, CliError> {
    match command {
        Command::Export(args) => export::run(args, shutdown).await,
        Command::Ls(args) => ls::run(args).await,
        Command::Rebuild(args) => rebuild::run(args).await,
        Command::Drill(args) => drill::run(args).await,
        Command::Balances(args) => audit::balances(args).await,
        Command::Verify(args) => audit::verify(args).await,
        Command::Reconcile(args) => audit::reconcile(args).await,
        Command::Generate(args) => generate::run(args).await,
        Command::Upgrade(args) => upgrade::run(args).await,
        Command::Completions(args) => {
            write_completions(args.shell, &mut std::io::stdout().lock());
            Ok(Outcome::Done)
        }
    }
}

/// The local directory a lake location names (a plain path or a `file://` URL); `None` for an
/// object store.
fn local_dir(location: &str) -> Option<PathBuf> {
    if !location.contains("://") {
        return Some(PathBuf::from(location));
    }
    url::Url::parse(location)
        .ok()
        .filter(|url| url.scheme() == "file")
        .and_then(|url| url.to_file_path().ok())
}

/// Commands that read a lake refuse a local directory that does not exist, instead of creating
/// it and reporting an empty lake.
pub fn require_existing_lake(location: &str) -> Result<(), CliError> {
    match local_dir(location) {
        Some(dir) if !dir.is_dir() => Err(CliError::NoLake {
            location: location.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_local_directory_is_no_lake() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().to_string_lossy().into_owned();
        assert!(require_existing_lake(&present).is_ok());
        assert!(require_existing_lake(&format!("file://{present}")).is_ok());
        let missing = dir.path().join("absent").to_string_lossy().into_owned();
        let err = require_existing_lake(&missing).unwrap_err();
        assert!(matches!(err, CliError::NoLake { .. }));
        assert!(err.to_string().starts_with("there is no lake at "), "{err}");
        assert!(require_existing_lake(&format!("file://{missing}")).is_err());
        assert!(!dir.path().join("absent").exists(), "nothing is created");
        // Object stores are checked by the command (an empty prefix is not an error here).
        assert!(require_existing_lake("s3://bucket/prefix").is_ok());
        assert!(require_existing_lake("memory://").is_ok());
    }

    #[test]
    fn the_version_names_the_lake_format_and_the_client() {
        assert_eq!(LAKE_FORMAT_TEXT, crate::lake::FORMAT_VERSION.to_string());
        assert!(VERSION_TEXT.contains(&format!("lake format {LAKE_FORMAT_TEXT},")));
        assert!(VERSION_TEXT.contains(&format!("TigerBeetle client {TIGERBEETLE_CLIENT_VERSION}")));
        // The client version is the build metadata of the locked tigerbeetle-unofficial crate.
        let lock = include_str!("../../Cargo.lock");
        let locked = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"tigerbeetle-unofficial\"\n"))
            .expect("tigerbeetle-unofficial in Cargo.lock");
        assert!(
            locked.contains(&format!("+{TIGERBEETLE_CLIENT_VERSION}\"")),
            "{locked}"
        );
        use clap::CommandFactory;
        let version = Cli::command().render_version().to_string();
        assert!(version.starts_with("ledgerlake 0."), "{version}");
        assert!(version.contains("lake format 2"), "{version}");
    }

    #[test]
    fn completions_cover_every_command() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            write_completions(shell, &mut out);
            let script = String::from_utf8(out).unwrap();
            for command in ["export", "rebuild", "verify", "reconcile", "completions"] {
                assert!(script.contains(command), "{shell}: {command}");
            }
        }
    }

    #[test]
    fn help_explains_the_exit_statuses() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit status:"), "{help}");
        for status in [
            "0  success",
            "1  the check ran",
            "2  the command could not run",
        ] {
            assert!(help.contains(status), "{status}: {help}");
        }
    }

    #[test]
    fn every_command_parses_its_moments_the_same_way() {
        for (command, flag) in [("balances", "--at"), ("rebuild", "--until")] {
            for moment in [
                "latest",
                "1795294950000000001",
                "2026-11-21T21:02:30.5+01:00",
            ] {
                let mut argv = vec!["ledgerlake", command, "--lake", "/l", flag, moment];
                if command == "rebuild" {
                    argv.extend(["--cluster-id", "1", "--dry-run"]);
                }
                assert!(Cli::try_parse_from(&argv).is_ok(), "{argv:?}");
            }
            let argv = ["ledgerlake", command, "--lake", "/l", flag, "yesterday"];
            assert!(Cli::try_parse_from(argv).is_err());
        }
    }
}
