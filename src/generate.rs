//! `ledgerlake generate`: drives a TigerBeetle cluster with the reusable ledger workload (every
//! kind of transfer event), to try ledgerlake out, to demo it, and to feed benchmarks.

use std::time::{Duration, Instant};

use crate::cli::GenerateArgs;
use crate::workload::{self, WorkloadConfig, WorkloadPhase};

/// How often progress is printed on stderr.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

pub async fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let client = tigerbeetle_unofficial::Client::new(args.cluster_id, args.addresses.as_str())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create a TigerBeetle client for {}: {e}",
                args.addresses
            )
        })?;
    let config = WorkloadConfig::new(args.seed, args.transfers);
    let mut last_print = Instant::now();
    let summary = workload::run(&client, &config, |progress| {
        let phase_done = matches!(progress.phase, WorkloadPhase::Done);
        if phase_done || last_print.elapsed() >= PROGRESS_INTERVAL {
            eprintln!(
                "generate: {:?}: {} accounts, {}/{} transfers, {:.1} s",
                progress.phase,
                progress.accounts_created,
                progress.transfers_sent,
                progress.transfers_target,
                progress.elapsed.as_secs_f64()
            );
            last_print = Instant::now();
        }
    })
    .await?;
    let events = &summary.events;
    println!(
        "generated {} accounts ({} never in a transfer) and {} CDC events: {} single_phase, {} two_phase_pending, {} two_phase_posted, {} two_phase_voided, {} two_phase_expired ({} transfers rejected on purpose) in {:.1} s",
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
    );
    Ok(())
}
