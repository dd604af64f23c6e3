//! `ledgerlake generate`: its arguments, progress while it runs, and its summary.

use clap::Args;

use super::exit::Outcome;
use super::output;
use super::progress::{Reporter, Step};
use super::time::parse_u128;
use super::CliError;
use crate::generate::GenerateOptions;
use crate::workload::{WorkloadProgress, WorkloadSummary};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Replica addresses of the cluster to write to, e.g. 127.0.0.1:3000.
    #[arg(long)]
    pub addresses: String,
    /// The cluster's id (decimal).
    #[arg(long, value_parser = parse_u128)]
    pub cluster_id: u128,
    /// How many transfers to attempt (each successful one is one CDC event; expiries add more).
    #[arg(long, default_value_t = 20_000)]
    pub transfers: usize,
    /// Seed of the generator: the same seed gives the same ledger.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl From<GenerateArgs> for GenerateOptions {
    fn from(args: GenerateArgs) -> GenerateOptions {
        GenerateOptions {
            addresses: args.addresses,
            cluster_id: args.cluster_id,
            transfers: args.transfers,
            seed: args.seed,
        }
    }
}

pub async fn run(args: GenerateArgs) -> Result<Outcome, CliError> {
    let reporter = Reporter::new();
    let result =
        crate::generate::run(&GenerateOptions::from(args), |p| reporter.show(step(&p))).await;
    reporter.finish();
    let summary = result?;
    output::write_stdout(summary_line(&summary).as_bytes())?;
    Ok(Outcome::Done)
}

fn step(p: &WorkloadProgress) -> Step {
    Step {
        label: format!("generate ({:?}, {} accounts)", p.phase, p.accounts_created),
        done: p.transfers_sent as u64,
        total: p.transfers_target as u64,
        unit: "transfers",
        events: p.transfers_sent as u64,
    }
}

pub fn summary_line(summary: &WorkloadSummary) -> String {
    let events = &summary.events;
    format!(
        "generated {} accounts ({} never in a transfer) and {} CDC events: {} single_phase, {} two_phase_pending, {} two_phase_posted, {} two_phase_voided, {} two_phase_expired ({} transfers rejected on purpose) in {:.1} s\n",
        summary.account_ids.len(),
        summary.untouched_account_ids.len(),
        events.total(),
        events.single_phase,
        events.two_phase_pending,
        events.two_phase_posted,
        events.two_phase_voided,
        events.two_phase_expired,
        summary.rejected.total(),
        summary.elapsed.as_secs_f64()
    )
}
