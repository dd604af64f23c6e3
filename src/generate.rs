//! `ledgerlake generate`: drives a TigerBeetle cluster with the reusable ledger workload (every
//! kind of transfer event), to try ledgerlake out, to demo it, and to feed benchmarks.

use crate::workload::{self, WorkloadConfig, WorkloadError, WorkloadProgress, WorkloadSummary};

/// What `generate` needs.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Replica addresses of the cluster to write to.
    pub addresses: String,
    pub cluster_id: u128,
    /// Transfers to attempt.
    pub transfers: usize,
    /// The same seed gives the same ledger.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot create a TigerBeetle client for {addresses}: {reason}")]
    Client { addresses: String, reason: String },
    #[error(transparent)]
    Workload(#[from] WorkloadError),
}

/// Runs the workload; `progress` is called after every request and at each phase.
pub async fn run(
    options: &GenerateOptions,
    progress: impl FnMut(WorkloadProgress),
) -> Result<WorkloadSummary, GenerateError> {
    let client =
        tigerbeetle_unofficial::Client::new(options.cluster_id, options.addresses.as_str())
            .map_err(|e| GenerateError::Client {
                addresses: options.addresses.clone(),
                reason: e.to_string(),
            })?;
    let config = WorkloadConfig::new(options.seed, options.transfers);
    Ok(workload::run(&client, &config, progress).await?)
}
