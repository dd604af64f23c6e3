//! The `ledgerlake` binary: parse the command line, run the command, print an error once, and
//! exit with the status `--help` documents (0 ok, 1 problems found, 2 could not run).

use std::process::ExitCode;

use ledgerlake::cli::{self, exit};

fn main() -> ExitCode {
    // Bad arguments print the usage and exit 2 (`--help` and `--version` exit 0).
    let cli = cli::parse_args();
    if let Err(error) = cli::init_logging() {
        exit::print_error(&error);
        return ExitCode::from(exit::EXIT_CANNOT_RUN);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            let error = anyhow::Error::new(error).context("cannot start the async runtime");
            exit::print_error(error.as_ref());
            return ExitCode::from(exit::EXIT_CANNOT_RUN);
        }
    };
    let result = runtime.block_on(cli::run(cli.command, Box::pin(shutdown_signal())));
    if let Err(error) = &result {
        exit::print_error(error);
    }
    ExitCode::from(exit::exit_status(&result))
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
