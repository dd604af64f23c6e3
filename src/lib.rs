//! ledgerlake: an independent, queryable, point-in-time history of a TigerBeetle ledger.
//!
//! `export` consumes the CDC stream into Parquet segments on an object store (`lake`);
//! the other modules read, rebuild from and audit that lake.

pub mod audit;
pub mod cdc;
pub mod cli;
pub mod export;
pub mod lake;
pub mod ls;
pub mod timefmt;
