//! The `ledgerlake` binary: parse the command line, run the command, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use ledgerlake::cli::{Cli, Command};
use ledgerlake::{audit, export, generate, ls, rebuild};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEDGERLAKE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Export(args) => {
            let options = export::ExportOptions::try_from(args)?;
            let report = export::run(options, Box::pin(shutdown_signal())).await?;
            eprintln!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Ls(args) => ls::run(&args).await,
        Command::Rebuild(args) => rebuild::run(args).await,
        Command::Generate(args) => generate::run(&args).await,
        Command::Balances(args) => Ok(audit::balances::run(&args).await?),
        Command::Verify(args) => Ok(audit::verify::run(&args).await?),
        Command::Reconcile(args) => Ok(audit::reconcile::run(&args).await?),
    }
}

/// Resolves on SIGINT or SIGTERM: the exporter then seals, commits, acknowledges and exits 0.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => {
            // Without signal handlers the process still stops on a signal, just without a final seal.
            tracing::warn!(
                "cannot install signal handlers; SIGINT/SIGTERM will stop without sealing"
            );
            std::future::pending::<()>().await
        }
    }
    tracing::info!("shutdown requested: sealing the open segment");
}
