//! ledgerlake: an independent, queryable, point-in-time history of a TigerBeetle ledger.
//!
//! `export` consumes the CDC stream into Parquet segments on an object store (`lake`);
//! the other modules read, rebuild from and audit that lake. `workload` drives a ledger (for
//! `ledgerlake generate`); `testbed` (cargo feature `testbed`, on for the tests and benchmarks)
//! runs the real stack.

pub mod audit;
pub mod cdc;
pub mod cli;
pub mod drill;
pub mod errors;
pub mod export;
pub mod generate;
pub mod lake;
pub mod ls;
pub mod metrics;
pub mod rebuild;
pub mod secret;
pub mod tb;
#[cfg(feature = "testbed")]
pub mod testbed;
pub mod timefmt;
pub mod upgrade;
pub mod workload;
