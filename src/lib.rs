//! ledgerlake: an independent, queryable, point-in-time history of a TigerBeetle ledger.
//!
//! `export` consumes the CDC stream into Parquet segments on an object store (`lake`);
//! the other modules read, rebuild from and audit that lake. `testbed` and `workload` run the
//! real stack and drive a ledger, for the tests, the demo and the benchmarks.

pub mod audit;
pub mod cdc;
pub mod cli;
pub mod export;
pub mod generate;
pub mod lake;
pub mod ls;
pub mod rebuild;
pub mod tb;
pub mod testbed;
pub mod timefmt;
pub mod workload;
